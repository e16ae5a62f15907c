/**
 * The widget sync status item: a notebook toolbar item (and, in JupyterLab,
 * a status bar item) telling whether the relay serves the notebook's kernel,
 * how many clients are connected and how many widget models it holds.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { RelayBinding, type IRelayViewState } from './binding';
import { clientLabel, el, formatBytes, noun, plural, shortId } from './format';
import type { IWidgetRelayService } from './service';

/** Short `data-state` values, also used by the browser tests. */
export type StatusKind =
  | 'checking'
  | 'missing'
  | 'disabled'
  | 'error'
  | 'no-kernel'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'not-served';

export interface IStatusDescription {
  readonly kind: StatusKind;
  readonly label: string;
  /** `null` hides the counts. */
  readonly clients: number | null;
  readonly models: number | null;
  readonly tooltip: string;
}

export const NOT_ENABLED_TEXT = 'Widget relay: not enabled on server';

/** Turn the view state into what the item shows. Pure, for testing. */
export function describeStatus(state: IRelayViewState): IStatusDescription {
  const availability = state.availability;
  const none = { clients: null, models: null };
  if (availability === null) {
    return {
      kind: 'checking',
      label: 'Widget relay: checking…',
      tooltip: 'Asking the server whether the widget relay is enabled.',
      ...none
    };
  }
  switch (availability.kind) {
    case 'missing':
      return {
        kind: 'missing',
        label: NOT_ENABLED_TEXT,
        tooltip:
          'The jupyter_widget_relay server extension is not installed or not ' +
          'enabled (GET /api/widget-relay/status returned 404). Widgets work ' +
          'as usual but are not shared between browsers by the relay.',
        ...none
      };
    case 'disabled':
      return {
        kind: 'disabled',
        label: NOT_ENABLED_TEXT,
        tooltip:
          'The jupyter_widget_relay server extension is installed but switched ' +
          'off (c.WidgetRelay.enabled = False).',
        ...none
      };
    case 'error':
      return {
        kind: 'error',
        label: 'Widget relay: server unreachable',
        tooltip: `Could not ask the server about the widget relay: ${availability.message}. Retrying.`,
        ...none
      };
    case 'enabled':
      break;
  }
  if (state.kernelId === null) {
    return {
      kind: 'no-kernel',
      label: 'Widget relay: no kernel',
      tooltip: 'This notebook has no running kernel.',
      ...none
    };
  }
  const kernel = shortId(state.kernelId);
  const summary = state.summary;
  switch (state.connection) {
    case 'none':
    case 'connecting':
      return {
        kind: 'connecting',
        label: 'Widget relay: connecting…',
        tooltip: `Connecting to the widget relay for kernel ${kernel}.`,
        ...none
      };
    case 'unknown-kernel':
    case 'disposed':
      return {
        kind: 'not-served',
        label: 'Widget relay: kernel not served',
        tooltip: `The widget relay does not serve kernel ${kernel} (yet); checking again periodically.`,
        ...none
      };
    case 'reconnecting':
      return {
        kind: 'reconnecting',
        label: 'Widget relay: reconnecting…',
        tooltip:
          `Lost the connection to the widget relay for kernel ${kernel}; reconnecting. ` +
          'Click to retry now.',
        clients: summary?.clients.length ?? null,
        models: summary?.models ?? null
      };
    case 'open':
      break;
  }
  if (summary === null) {
    return {
      kind: 'connecting',
      label: 'Widget relay: connecting…',
      tooltip: `Waiting for the first summary of kernel ${kernel}.`,
      ...none
    };
  }
  const lines = [
    `Widget relay serves kernel ${kernel}.`,
    `Connected clients (${summary.clients.length}):`,
    ...summary.clients.map(client => `  • ${clientLabel(client)}`),
    `Widget models: ${summary.models} (state ${formatBytes(
      summary.state_bytes
    )}, buffers ${formatBytes(summary.buffer_bytes)})`,
    'Click to open the widget state inspector.'
  ];
  return {
    kind: 'connected',
    label: 'Widget relay',
    clients: summary.clients.length,
    models: summary.models,
    tooltip: lines.join('\n')
  };
}

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
