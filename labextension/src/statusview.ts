/**
 * The widget sync status item: a notebook toolbar item (and, in JupyterLab,
 * a status bar item) telling whether the relay serves the notebook's kernel,
 * how many clients are connected and how many widget models it holds.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { RelayBinding } from './binding';
import { el, noun, plural } from './format';
import { describeStatus, type IStatusDescription } from './statusdescription';
import type { IWidgetRelayService } from './service';

/** The status item. */
export class RelayStatusWidget extends Widget {
  constructor(options: RelayStatusWidget.IOptions) {
    super();
    const variant = options.variant ?? 'toolbar';
    const prefix =
      variant === 'toolbar' ? 'jp-WidgetRelay-' : 'jp-WidgetRelay-statusbar-';
    this.addClass(
      variant === 'toolbar'
        ? 'jp-WidgetRelay-status'
        : 'jp-WidgetRelay-statusbar'
    );
    this.addClass('jp-WidgetRelay-item');
    this._onActivate = options.onActivate ?? null;

    this._label = el('span', 'jp-WidgetRelay-label');
    this._clients = el('span', `${prefix}clients jp-WidgetRelay-count`);
    this._clientsNoun = el('span', 'jp-WidgetRelay-noun');
    this._models = el('span', `${prefix}models jp-WidgetRelay-count`);
    this._modelsNoun = el('span', 'jp-WidgetRelay-noun');
    this._counts = el('span', 'jp-WidgetRelay-counts');
    this._counts.append(
      this._clients,
      this._clientsNoun,
      el('span', 'jp-WidgetRelay-sep'),
      this._models,
      this._modelsNoun
    );
    this.node.append(
      el('span', 'jp-WidgetRelay-dot'),
      this._label,
      this._counts
    );
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', this);
    this.node.addEventListener('keydown', this);

    this._binding = new RelayBinding(options.service);
    this._binding.changed.connect(this._render, this);
    this._binding.setSessionContext(options.sessionContext ?? null);
    this._render();
  }

  /** The notebook this item describes (for the status bar item). */
  setSessionContext(context: ISessionContext | null): void {
    this._binding.setSessionContext(context);
    this._render();
  }

  /** What is shown now (for tests and other plugins). */
  get description(): IStatusDescription {
    return describeStatus(this._binding.state);
  }

  handleEvent(event: Event): void {
    if (event.type === 'keydown') {
      const key = (event as KeyboardEvent).key;
      if (key !== 'Enter' && key !== ' ') {
        return;
      }
      event.preventDefault();
    } else if (event.type !== 'click') {
      return;
    }
    this._binding.retry();
    this._onActivate?.();
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.node.removeEventListener('click', this);
    this.node.removeEventListener('keydown', this);
    this._binding.dispose();
    super.dispose();
  }

  private _render(): void {
    const state = this._binding.state;
    const d = describeStatus(state);
    this.node.dataset.state = d.kind;
    // The notebook's kernel as the front end sees it ('' for none), in every
    // state: tests wait on it before running cells.
    this.node.dataset.kernelId = state.kernelId ?? '';
    this.node.title = d.tooltip;
    this.node.setAttribute(
      'aria-label',
      d.clients !== null && d.models !== null
        ? `${d.label}: ${plural(d.clients, 'client')}, ${plural(d.models, 'model')}`
        : d.label
    );
    this._label.textContent = d.label;
    const showCounts = d.clients !== null && d.models !== null;
    this._counts.hidden = !showCounts;
    this._clients.textContent = d.clients === null ? '' : String(d.clients);
    this._models.textContent = d.models === null ? '' : String(d.models);
    this._clientsNoun.textContent =
      d.clients === null ? '' : noun(d.clients, 'client');
    this._modelsNoun.textContent =
      d.models === null ? '' : noun(d.models, 'model');
  }

  private readonly _binding: RelayBinding;
  private readonly _onActivate: (() => void) | null;
  private readonly _label: HTMLSpanElement;
  private readonly _counts: HTMLSpanElement;
  private readonly _clients: HTMLSpanElement;
  private readonly _clientsNoun: HTMLSpanElement;
  private readonly _models: HTMLSpanElement;
  private readonly _modelsNoun: HTMLSpanElement;
}

export namespace RelayStatusWidget {
  export interface IOptions {
    readonly service: IWidgetRelayService;
    readonly sessionContext?: ISessionContext | null;
    /** `toolbar` carries the stable `jp-WidgetRelay-status` class. */
    readonly variant?: 'toolbar' | 'statusbar';
    /** Called on click / Enter, e.g. to open the inspector. */
    readonly onActivate?: () => void;
  }
}
