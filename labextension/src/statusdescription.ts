/**
 * What the widget sync status item shows for a view state: a pure function,
 * kept apart from the widget so its unit tests run in plain Node.
 */
import type { IRelayViewState } from './binding';
import { clientLabel, formatBytes, shortId } from './format';

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
