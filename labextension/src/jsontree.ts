/**
 * A readable, collapsible JSON tree built from `<details>` elements.
 *
 * - Children are rendered when a node is first opened (large states stay
 *   cheap); long arrays / objects show their first `pageSize` entries and a
 *   "show more" button.
 * - `{"$buffer": {"bytes": N, "sha256": ...}}` placeholders are shown as a
 *   binary buffer of N bytes.
 * - Which nodes are open is remembered by JSON path in `openPaths`, so a
 *   live refresh of the same model keeps the user's view.
 */
import type { ReadonlyJSONValue } from '@lumino/coreutils';

import { asBufferRef } from './api';
import { el, formatBytes, plural } from './format';

export interface IJSONTreeOptions {
  /** Paths (see `childPath`) of open nodes; updated as the user toggles. */
  readonly openPaths: Set<string>;
  /** Nodes shallower than this open by default the first time. */
  readonly defaultOpenDepth?: number;
  /** Entries shown before "show more". */
  readonly pageSize?: number;
}

const ROOT_PATH = '$';

/** Stable path of a child, used as the key in `openPaths`. */
export function childPath(parent: string, key: string | number): string {
  return typeof key === 'number'
    ? `${parent}[${key}]`
    : `${parent}.${JSON.stringify(key)}`;
}

/** Render `value` as a tree; the returned element has class `jp-WidgetRelay-json`. */
export function renderJSONTree(
  value: ReadonlyJSONValue,
  options: IJSONTreeOptions
): HTMLElement {
  const root = el('div', 'jp-WidgetRelay-json');
  const context: IContext = {
    openPaths: options.openPaths,
    defaultOpenDepth: options.defaultOpenDepth ?? 1,
    pageSize: options.pageSize ?? 200,
    seeded: options.openPaths.has(ROOT_PATH)
  };
  if (!context.seeded) {
    options.openPaths.add(ROOT_PATH);
  }
  root.append(renderValue(null, value, ROOT_PATH, 0, context));
  return root;
}

interface IContext {
  readonly openPaths: Set<string>;
  readonly defaultOpenDepth: number;
  readonly pageSize: number;
  /** True once openPaths describes a previous rendering. */
  readonly seeded: boolean;
}

type Entries = ReadonlyArray<readonly [string | number, ReadonlyJSONValue]>;

function entriesOf(value: ReadonlyJSONValue): Entries | null {
  if (Array.isArray(value)) {
    return (value as readonly ReadonlyJSONValue[]).map(
      (item, index) => [index, item] as const
    );
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).filter(
      (entry): entry is [string, ReadonlyJSONValue] => entry[1] !== undefined
    );
  }
  return null;
}

function renderKey(key: string | number | null): HTMLElement | null {
  if (key === null) {
    return null;
  }
  const node = el(
    'span',
    typeof key === 'number'
      ? 'jp-WidgetRelay-jsonIndex'
      : 'jp-WidgetRelay-jsonKey',
    typeof key === 'number' ? String(key) : key
  );
  const wrap = el('span', 'jp-WidgetRelay-jsonKeyWrap');
  wrap.append(node, el('span', 'jp-WidgetRelay-jsonColon', ': '));
  return wrap;
}

function renderScalar(value: ReadonlyJSONValue): HTMLElement {
  if (value === null) {
    return el('span', 'jp-WidgetRelay-jsonNull', 'null');
  }
  switch (typeof value) {
    case 'string':
      return el('span', 'jp-WidgetRelay-jsonString', JSON.stringify(value));
    case 'number':
      return el('span', 'jp-WidgetRelay-jsonNumber', String(value));
    case 'boolean':
      return el('span', 'jp-WidgetRelay-jsonBoolean', String(value));
    default:
      return el('span', 'jp-WidgetRelay-jsonOther', JSON.stringify(value));
  }
}

function renderValue(
  key: string | number | null,
  value: ReadonlyJSONValue,
  path: string,
  depth: number,
  context: IContext
): HTMLElement {
  const keyNode = renderKey(key);
  const buffer = asBufferRef(value);
  const entries = buffer === null ? entriesOf(value) : null;
  if (entries === null || entries.length === 0) {
    const leaf = el('div', 'jp-WidgetRelay-jsonLeaf');
    if (keyNode !== null) {
      leaf.append(keyNode);
    }
    if (buffer !== null) {
      const badge = el(
        'span',
        'jp-WidgetRelay-jsonBuffer',
        `binary buffer, ${formatBytes(buffer.bytes)}`
      );
      badge.title = `${buffer.bytes} bytes${
        buffer.sha256 ? `\nsha256 ${buffer.sha256}` : ''
      }`;
      leaf.append(badge);
    } else if (entries !== null) {
      leaf.append(
        el(
          'span',
          'jp-WidgetRelay-jsonEmpty',
          Array.isArray(value) ? '[]' : '{}'
        )
      );
    } else {
      leaf.append(renderScalar(value));
    }
    return leaf;
  }

  const isArray = Array.isArray(value);
  const details = el('details', 'jp-WidgetRelay-jsonNode');
  const summary = el('summary', 'jp-WidgetRelay-jsonSummary');
  if (keyNode !== null) {
    summary.append(keyNode);
  }
  summary.append(
    el(
      'span',
      'jp-WidgetRelay-jsonPreview',
      isArray
        ? `[ ${plural(entries.length, 'item')} ]`
        : `{ ${plural(entries.length, 'key')} }`
    )
  );
  details.append(summary);

  const children = el('div', 'jp-WidgetRelay-jsonChildren');
  details.append(children);
  let rendered = false;
  const renderChildren = (): void => {
    if (rendered) {
      return;
    }
    rendered = true;
    appendEntries(children, entries, 0, path, depth, context);
  };

  const open = context.seeded
    ? context.openPaths.has(path)
    : depth < context.defaultOpenDepth;
  if (open) {
    context.openPaths.add(path);
    details.open = true;
    renderChildren();
  }
  details.addEventListener('toggle', () => {
    if (details.open) {
      context.openPaths.add(path);
      renderChildren();
    } else {
      context.openPaths.delete(path);
    }
  });
  return details;
}

function appendEntries(
  container: HTMLElement,
  entries: Entries,
  start: number,
  path: string,
  depth: number,
  context: IContext
): void {
  const end = Math.min(entries.length, start + context.pageSize);
  for (let i = start; i < end; i++) {
    const [key, child] = entries[i];
    container.append(
      renderValue(key, child, childPath(path, key), depth + 1, context)
    );
  }
  if (end < entries.length) {
    const more = el(
      'button',
      'jp-WidgetRelay-jsonMore jp-mod-styled',
      `show ${Math.min(context.pageSize, entries.length - end)} more of ${
        entries.length - end
      }`
    );
    more.type = 'button';
    more.addEventListener('click', () => {
      more.remove();
      appendEntries(container, entries, end, path, depth, context);
    });
    container.append(more);
  }
}
