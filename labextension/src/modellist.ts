/**
 * The model list of the inspector: a filterable, sortable list of two-line
 * rows (name and size; module, id and age) that fits a narrow side panel.
 */
import type { IModelSummary } from './api';
import { el, formatAge, formatBytes, formatTimestamp, shortId } from './format';

type SortKey = 'created' | 'name' | 'size' | 'changed';

const SORTS: ReadonlyArray<{ key: SortKey; label: string }> = [
  { key: 'created', label: 'Oldest first' },
  { key: 'name', label: 'By name' },
  { key: 'size', label: 'Largest first' },
  { key: 'changed', label: 'Recently changed' }
];

function compare(a: IModelSummary, b: IModelSummary, key: SortKey): number {
  switch (key) {
    case 'name':
      return (
        a.model_name.localeCompare(b.model_name) ||
        a.model_id.localeCompare(b.model_id)
      );
    case 'size':
      return b.state_bytes + b.buffer_bytes - (a.state_bytes + a.buffer_bytes);
    case 'changed':
      return (
        (Date.parse(b.last_change) || 0) - (Date.parse(a.last_change) || 0)
      );
    case 'created':
      return 0;
  }
}

export class ModelList {
  constructor(options: ModelList.IOptions) {
    this._onSelect = options.onSelect;
    this.node = el('div', 'jp-WidgetRelay-modelPanel');

    const bar = el('div', 'jp-WidgetRelay-listBar');
    this._filter = el('input', 'jp-WidgetRelay-filter');
    this._filter.type = 'search';
    this._filter.placeholder = 'Filter by name, module or id';
    this._filter.setAttribute('aria-label', 'Filter models');
    this._filter.addEventListener('input', () => this.render());
    this._sort = el('select', 'jp-WidgetRelay-sort');
    this._sort.setAttribute('aria-label', 'Sort models');
    for (const sort of SORTS) {
      const option = el('option', undefined, sort.label);
      option.value = sort.key;
      this._sort.append(option);
    }
    this._sort.addEventListener('change', () => this.render());
    bar.append(this._filter, this._sort);

    this._rows = el('div', 'jp-WidgetRelay-modelList');
    this._rows.setAttribute('role', 'listbox');
    this._rows.setAttribute('aria-label', 'Widget models');
    this._empty = el('div', 'jp-WidgetRelay-empty');
    this.node.append(bar, this._rows, this._empty);
  }

  readonly node: HTMLDivElement;

  /**
   * Replace the models (keeps filter, sort, scroll and focus). `emptyText`
   * is shown when there are no models ('' for nothing).
   */
  setModels(models: readonly IModelSummary[], emptyText = ''): void {
    this._models = models;
    this._emptyText = emptyText;
    this.render();
  }

  setSelected(modelId: string | null): void {
    this._selected = modelId;
    for (const row of this._rows.children) {
      if (row instanceof HTMLElement) {
        const selected = row.dataset.modelId === modelId;
        row.classList.toggle('jp-mod-selected', selected);
        row.setAttribute('aria-selected', String(selected));
      }
    }
  }

  render(): void {
    const active = document.activeElement;
    const focusedId =
      active instanceof HTMLElement && this._rows.contains(active)
        ? (active.dataset.modelId ?? null)
        : null;
    const visible = this._visible();
    const now = Date.now();
    this._rows.replaceChildren(...visible.map(m => this._row(m, now)));
    this._focus(focusedId);

    let empty = this._emptyText;
    if (empty === '' && this._models.length > 0 && visible.length === 0) {
      empty = 'No model matches the filter.';
    }
    this._empty.textContent = empty;
    this._empty.hidden = empty === '' || visible.length > 0;
    this._rows.hidden = visible.length === 0;
  }

  private _visible(): IModelSummary[] {
    const query = this._filter.value.trim().toLowerCase();
    const models = query
      ? this._models.filter(m =>
          [m.model_name, m.model_module, m.model_id].some(s =>
            s.toLowerCase().includes(query)
          )
        )
      : [...this._models];
    const key = this._sort.value as SortKey;
    if (key !== 'created') {
      models.sort((a, b) => compare(a, b, key));
    }
    return models;
  }

  private _row(model: IModelSummary, now: number): HTMLElement {
    const row = el('div', 'jp-WidgetRelay-modelRow');
    const selected = model.model_id === this._selected;
    row.dataset.modelId = model.model_id;
    row.tabIndex = 0;
    row.setAttribute('role', 'option');
    row.setAttribute('aria-selected', String(selected));
    row.classList.toggle('jp-mod-selected', selected);

    const size = el(
      'span',
      'jp-WidgetRelay-modelSize',
      formatBytes(model.state_bytes + model.buffer_bytes)
    );
    size.title = `state ${model.state_bytes} B, buffers ${model.buffer_bytes} B`;
    const main = el('div', 'jp-WidgetRelay-rowMain');
    main.append(el('span', 'jp-WidgetRelay-modelName', model.model_name), size);

    const module = el(
      'span',
      'jp-WidgetRelay-modelModule',
      `${model.model_module} ${model.model_module_version}`.trim()
    );
    const id = el('span', 'jp-WidgetRelay-modelId', shortId(model.model_id));
    id.title = model.model_id;
    const changed = el(
      'span',
      'jp-WidgetRelay-modelChanged',
      formatAge(model.last_change, now)
    );
    changed.title = `last change ${formatTimestamp(model.last_change)}, version ${model.version}`;
    const meta = el('div', 'jp-WidgetRelay-rowMeta');
    meta.append(module, ' · ', id, ' · ', changed);

    row.append(main, meta);
    row.addEventListener('click', () => this._onSelect(model.model_id));
    row.addEventListener('keydown', event => this._onKey(event, row));
    return row;
  }

  private _onKey(event: KeyboardEvent, row: HTMLElement): void {
    let target: Element | null;
    if (event.key === 'Enter' || event.key === ' ') {
      target = row;
    } else if (event.key === 'ArrowDown') {
      target = row.nextElementSibling;
    } else if (event.key === 'ArrowUp') {
      target = row.previousElementSibling;
    } else {
      return;
    }
    event.preventDefault();
    if (target instanceof HTMLElement && target.dataset.modelId) {
      const modelId = target.dataset.modelId;
      this._onSelect(modelId);
      this._focus(modelId);
    }
  }

  private _focus(modelId: string | null): void {
    if (modelId === null) {
      return;
    }
    for (const row of this._rows.children) {
      if (row instanceof HTMLElement && row.dataset.modelId === modelId) {
        row.focus();
        return;
      }
    }
  }

  private readonly _onSelect: (modelId: string) => void;
  private readonly _filter: HTMLInputElement;
  private readonly _sort: HTMLSelectElement;
  private readonly _rows: HTMLDivElement;
  private readonly _empty: HTMLDivElement;
  private _models: readonly IModelSummary[] = [];
  private _selected: string | null = null;
  private _emptyText = '';
}

export namespace ModelList {
  export interface IOptions {
    readonly onSelect: (modelId: string) => void;
  }
}
