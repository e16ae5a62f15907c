/**
 * Small formatting helpers shared by the views.
 */
import type { IClientInfo } from './api';

/** `1234` -> `1.2 kB` (powers of 1000, like JupyterLab's file browser). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    return '?';
  }
  if (bytes < 1000) {
    return `${bytes} B`;
  }
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** The singular or plural noun for a count. */
export function noun(n: number, singular: string, pluralForm?: string): string {
  return n === 1 ? singular : (pluralForm ?? `${singular}s`);
}

/** `n` plus the singular or plural noun. */
export function plural(
  n: number,
  singular: string,
  pluralForm?: string
): string {
  return `${n} ${noun(n, singular, pluralForm)}`;
}

/**
 * An ISO-8601 time as a short relative age ("12 s ago", "3 min ago"), or the
 * local date and time past a day. Returns the input if it does not parse.
 */
export function formatAge(iso: string, now: number = Date.now()): string {
  const time = Date.parse(iso);
  if (Number.isNaN(time)) {
    return iso;
  }
  const seconds = Math.max(0, Math.round((now - time) / 1000));
  if (seconds < 60) {
    return `${seconds} s ago`;
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ago`;
  }
  const hours = Math.round(minutes / 60);
  if (hours < 24) {
    return `${hours} h ago`;
  }
  return new Date(time).toLocaleString();
}

/** The local time of an ISO-8601 string, for tooltips. */
export function formatTimestamp(iso: string): string {
  const time = Date.parse(iso);
  return Number.isNaN(time) ? iso : new Date(time).toLocaleString();
}

/** First characters of a long id. */
export function shortId(id: string, length = 8): string {
  return id.length > length ? `${id.slice(0, length)}…` : id;
}

/** Create an element with a class and optional text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className !== undefined && className !== '') {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** The name to show for a connected client. */
export function clientName(client: IClientInfo): string {
  return client.display_name || client.username || 'anonymous';
}

/**
 * Name plus user name when it adds something (not for anonymous users,
 * whose user name is a random hex id).
 */
export function clientLabel(client: IClientInfo): string {
  const name = clientName(client);
  const user = client.username;
  if (!user || user === name || /^[0-9a-f]{32}$/.test(user)) {
    return name;
  }
  return `${name} (${user})`;
}
