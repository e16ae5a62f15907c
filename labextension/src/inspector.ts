/**
 * The widget state inspector: a side panel listing the widget models of the
 * current notebook's kernel as the relay holds them, with the selected
 * model's state as a collapsible JSON tree. Updates live from the kernel's
 * events socket.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { describeError, type IModelDetail, type IModelSummary } from './api';
import { type IRelayChange, RelayBinding } from './binding';
import { clientName, el, formatBytes, plural, shortId } from './format';
import { renderJSONTree } from './jsontree';
import { ModelList } from './modellist';
import type { IWidgetRelayService } from './service';
import { describeStatus } from './statusdescription';

export const INSPECTOR_ID = 'jp-widget-relay-inspector';

/** Minimum time between two reloads triggered by events (ms). */
const RELOAD_THROTTLE_MS = 300;
/** How often the "last change" ages are refreshed while visible (ms). */
const AGE_REFRESH_MS = 15_000;

export class WidgetRelayInspector extends Widget {
  constructor(options: WidgetRelayInspector.IOptions) {
    super();
    this.id = INSPECTOR_ID;
    this.addClass('jp-WidgetRelay-inspector');
    this.title.caption = 'Widget state inspector';

    const header = el('div', 'jp-WidgetRelay-inspectorHeader');
    this._context = el('div', 'jp-WidgetRelay-context');
    this._message = el('div', 'jp-WidgetRelay-message');
    this._clientList = el('div', 'jp-WidgetRelay-clientList');
    header.append(
      el('h2', 'jp-WidgetRelay-title', 'Widget state'),
      this._context,
      this._message,
      this._clientList
    );

    this._list = new ModelList({
      onSelect: modelId => this.selectModel(modelId)
    });
    this._stateView = el('div', 'jp-WidgetRelay-stateView');
    this.node.append(header, this._list.node, this._stateView);

    this._binding = new RelayBinding(options.service);
    this._service = options.service;
    this._binding.changed.connect(this._onChange, this);
    this._renderHeader();
    this._renderList();
    this._renderState();
  }

  /** Follow another notebook (or none). */
  setSessionContext(context: ISessionContext | null): void {
    this._binding.setSessionContext(context);
  }

  /** Select a model by id (also used by tests through the DOM). */
  selectModel(modelId: string | null): void {
    if (modelId === this._selected) {
      return;
    }
    this._selected = modelId;
    this._detail = null;
    this._detailError = null;
    this._openPaths = new Set();
    this._list.setSelected(modelId);
    this._renderState();
    this._stateView.scrollTop = 0;
    if (modelId !== null) {
      this._requestReload(false, true);
    }
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this._reloadTimer);
    window.clearInterval(this._ageTimer);
    this._binding.dispose();
    super.dispose();
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this._dirtyList || this._dirtyDetail) {
      this._requestReload(this._dirtyList, this._dirtyDetail);
    }
    window.clearInterval(this._ageTimer);
    this._ageTimer = window.setInterval(
      () => this._renderList(),
      AGE_REFRESH_MS
    );
  }

  protected override onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearInterval(this._ageTimer);
    this._ageTimer = 0;
  }

  private _onChange(_: RelayBinding, change: IRelayChange): void {
    const { state, changedModels } = change;
    if (state.kernelId !== this._kernelId) {
      // Another kernel: forget everything about the previous one.
      this._kernelId = state.kernelId;
      this._generation += 1;
      this._models = [];
      this._listError = null;
      this._loaded = false;
      this._selected = null;
      this._detail = null;
      this._detailError = null;
      this._openPaths = new Set();
      this._renderList();
      this._renderState();
    }
    this._renderHeader();
    if (state.connection !== 'open' || state.kernelId === null) {
      return;
    }
    if (changedModels === null) {
      this._requestReload(true, true);
      return;
    }
    const countChanged = state.summary?.models !== this._models.length;
    const listChanged = changedModels.length > 0 || countChanged;
    const detailChanged =
      this._selected !== null && changedModels.includes(this._selected);
    if (listChanged || detailChanged) {
      this._requestReload(listChanged, detailChanged);
    }
  }

  /** Coalesce reload requests; only load while the panel is visible. */
  private _requestReload(list: boolean, detail: boolean): void {
    this._dirtyList ||= list;
    this._dirtyDetail ||= detail;
    if (!this.isVisible || this._reloadTimer !== 0) {
      return;
    }
    const wait = Math.max(
      0,
      this._lastReload + RELOAD_THROTTLE_MS - Date.now()
    );
    this._reloadTimer = window.setTimeout(() => {
      this._reloadTimer = 0;
      void this._reload();
    }, wait);
  }

  private async _reload(): Promise<void> {
    if (this._reloading) {
      // Picked up again when the running reload ends.
      return;
    }
    const kernelId = this._kernelId;
    const generation = this._generation;
    if (kernelId === null || this.isDisposed) {
      return;
    }
    this._reloading = true;
    this._lastReload = Date.now();
    const loadList = this._dirtyList;
    const selected = this._selected;
    const loadDetail = this._dirtyDetail && selected !== null;
    this._dirtyList = false;
    this._dirtyDetail = false;
    const client = this._service.client;
    const stale = (): boolean =>
      generation !== this._generation || this.isDisposed;
    try {
      if (loadList) {
        try {
          const models = await client.listModels(kernelId);
          if (stale()) {
            return;
          }
          this._models = models ?? [];
          this._listError =
            models === null ? 'The relay does not serve this kernel.' : null;
          this._loaded = true;
        } catch (reason) {
          if (stale()) {
            return;
          }
          this._listError = `Could not load models: ${describeError(reason)}`;
        }
        this._renderList();
      }
      if (!loadDetail || selected === null || selected !== this._selected) {
        return;
      }
      // Asking for a model the list no longer has would only earn a 404.
      if (this._loaded && !this._models.some(m => m.model_id === selected)) {
        this._detail = null;
        this._detailError = 'This model has been closed.';
        this._renderState();
        return;
      }
      try {
        const detail = await client.getModel(kernelId, selected);
        if (stale() || selected !== this._selected) {
          return;
        }
        this._detail = detail;
        this._detailError =
          detail === null ? 'This model has been closed.' : null;
      } catch (reason) {
        if (stale() || selected !== this._selected) {
          return;
        }
        this._detailError = `Could not load the state: ${describeError(reason)}`;
      }
      this._renderState();
    } finally {
      this._reloading = false;
      if (this._dirtyList || this._dirtyDetail) {
        this._requestReload(false, false);
      }
    }
  }

  private _renderHeader(): void {
    const state = this._binding.state;
    const path = state.path;
    const parts: string[] = [];
    parts.push(
      path === null ? 'No notebook selected' : (path.split('/').pop() ?? path)
    );
    if (state.kernelId !== null) {
      parts.push(`kernel ${shortId(state.kernelId)}`);
    }
    this._context.textContent = parts.join(' · ');
    this._context.title = [path ?? '', state.kernelId ?? ''].join('\n').trim();

    const status = describeStatus(state);
    this.node.dataset.state = status.kind;
    this._message.textContent = status.kind === 'connected' ? '' : status.label;
    this._message.title = status.tooltip;
    this._message.hidden = status.kind === 'connected';

    const summary = state.summary;
    this._clientList.replaceChildren();
    if (summary !== null && status.kind === 'connected') {
      this._clientList.append(
        el(
          'span',
          'jp-WidgetRelay-clientHeading',
          `${plural(summary.clients.length, 'client')}: `
        )
      );
      summary.clients.forEach((client, index) => {
        const chip = el('span', 'jp-WidgetRelay-client', clientName(client));
        chip.title = `${client.username} · ${client.protocol} · ${client.client_id}`;
        if (index > 0) {
          this._clientList.append(', ');
        }
        this._clientList.append(chip);
      });
      this._clientList.append(
        el(
          'span',
          'jp-WidgetRelay-totals',
          ` · ${plural(summary.models, 'model')}, ${formatBytes(
            summary.state_bytes + summary.buffer_bytes
          )}`
        )
      );
    }
  }

  private _renderList(): void {
    let empty = '';
    if (this._listError !== null) {
      empty = this._listError;
    } else if (this._kernelId === null) {
      empty = 'Open a notebook with a running kernel to see its widgets.';
    } else if (!this._loaded) {
      empty = this._binding.state.connection === 'open' ? 'Loading…' : '';
    } else if (this._models.length === 0) {
      empty = 'This kernel has no widget models.';
    }
    this._list.setSelected(this._selected);
    this._list.setModels(this._models, empty);
  }

  private _renderState(): void {
    const view = this._stateView;
    const scrollTop = view.scrollTop;
    view.replaceChildren();
    const selected = this._selected;
    view.dataset.modelId = selected ?? '';
    if (selected === null) {
      view.append(
        el('div', 'jp-WidgetRelay-empty', 'Select a model to see its state.')
      );
      return;
    }
    const detail: IModelDetail | null = this._detail;
    if (detail === null || detail.model_id !== selected) {
      view.append(
        el('div', 'jp-WidgetRelay-empty', this._detailError ?? 'Loading state…')
      );
      return;
    }
    const head = el('div', 'jp-WidgetRelay-stateHeader');
    head.append(
      el('span', 'jp-WidgetRelay-stateName', detail.model_name),
      el(
        'span',
        'jp-WidgetRelay-stateMeta',
        `${detail.model_module}@${detail.model_module_version} · ${
          detail.model_id
        } · v${detail.version} · ${formatBytes(detail.state_bytes)} state, ${formatBytes(
          detail.buffer_bytes
        )} buffers`
      )
    );
    view.append(head);
    if (this._detailError !== null) {
      view.append(el('div', 'jp-WidgetRelay-message', this._detailError));
    }
    view.append(renderJSONTree(detail.state, { openPaths: this._openPaths }));
    // A live refresh of the same model keeps the reader's place.
    view.scrollTop = scrollTop;
  }

  private readonly _binding: RelayBinding;
  private readonly _service: IWidgetRelayService;
  private readonly _context: HTMLDivElement;
  private readonly _message: HTMLDivElement;
  private readonly _clientList: HTMLDivElement;
  private readonly _list: ModelList;
  private readonly _stateView: HTMLDivElement;
  private _kernelId: string | null = null;
  private _generation = 0;
  private _models: IModelSummary[] = [];
  private _loaded = false;
  private _listError: string | null = null;
  private _selected: string | null = null;
  private _detail: IModelDetail | null = null;
  private _detailError: string | null = null;
  private _openPaths = new Set<string>();
  private _dirtyList = false;
  private _dirtyDetail = false;
  private _reloading = false;
  private _reloadTimer = 0;
  private _lastReload = 0;
  private _ageTimer = 0;
}

export namespace WidgetRelayInspector {
  export interface IOptions {
    readonly service: IWidgetRelayService;
  }
}
