/**
 * The shapes of the relay's REST answers and event frames, with type guards.
 *
 * They mirror `rest-api.yml` in the server package (a server test checks the
 * field names and close codes); this module imports nothing at run time, so
 * its unit tests run in plain Node.
 */
import type { ReadonlyJSONObject, ReadonlyJSONValue } from '@lumino/coreutils';

/**
 * Websocket close codes the server uses (`close_codes.py` on the server).
 * Events websocket: the relay does not follow the kernel, or it stopped.
 */
export const CLOSE_UNKNOWN_KERNEL = 4004;

/** Kernel websocket: the client fell too far behind; it should reconnect. */
export const CLOSE_CLIENT_TOO_SLOW = 4008;

/** Kernel websocket: a message could not be sent to the client. */
export const CLOSE_SEND_FAILED = 1011;

/** One browser (or other websocket client) connected to a kernel. */
export interface IClientInfo {
  readonly client_id: string;
  readonly username: string;
  readonly display_name: string;
  readonly protocol: string;
}

/** Bookkeeping the kernel's relay still has open; all 0 once settled. */
export interface IUnsettled {
  readonly updates: number;
  readonly waiting: number;
  readonly traits: number;
  readonly state_checks: number;
}

/** What the relay knows about one kernel. */
export interface IKernelSummary {
  readonly kernel_id: string;
  readonly models: number;
  readonly state_bytes: number;
  readonly buffer_bytes: number;
  readonly clients: readonly IClientInfo[];
  readonly execution_state: string;
  readonly unsettled: IUnsettled;
}

/** One widget model in the relay's state table. */
export interface IModelSummary {
  readonly model_id: string;
  readonly model_name: string;
  readonly model_module: string;
  readonly model_module_version: string;
  readonly state_bytes: number;
  readonly buffer_bytes: number;
  readonly version: number;
  readonly last_change: string;
}

/** A model with its state (binary buffers replaced by `{"$buffer": ...}`). */
export interface IModelDetail extends IModelSummary {
  readonly state: ReadonlyJSONObject;
}

/**
 * A frame of the per-kernel events websocket. The server's last frame, once
 * the kernel has stopped, has `kernel: null`; the parser drops it (the close
 * with `CLOSE_UNKNOWN_KERNEL` that follows says the same).
 */
export interface ISummaryEvent {
  readonly type: 'summary';
  readonly kernel: IKernelSummary;
  readonly changed_models: readonly string[];
}

/** Whether the server side of the relay is there and switched on. */
export type Availability =
  | { readonly kind: 'enabled'; readonly version: string }
  | { readonly kind: 'disabled'; readonly version: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'error'; readonly message: string };

export type JSONRecord = { readonly [key: string]: unknown };

export function isRecord(value: unknown): value is JSONRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isString(value: unknown): value is string {
  return typeof value === 'string';
}

export function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Type guard for a connected client entry. */
export function isClientInfo(value: unknown): value is IClientInfo {
  return (
    isRecord(value) &&
    isString(value.client_id) &&
    isString(value.username) &&
    isString(value.display_name) &&
    isString(value.protocol)
  );
}

/** Type guard for a kernel's unsettled bookkeeping. */
export function isUnsettled(value: unknown): value is IUnsettled {
  return (
    isRecord(value) &&
    isNumber(value.updates) &&
    isNumber(value.waiting) &&
    isNumber(value.traits) &&
    isNumber(value.state_checks)
  );
}

/** Type guard for a kernel summary. */
export function isKernelSummary(value: unknown): value is IKernelSummary {
  return (
    isRecord(value) &&
    isString(value.kernel_id) &&
    isNumber(value.models) &&
    isNumber(value.state_bytes) &&
    isNumber(value.buffer_bytes) &&
    Array.isArray(value.clients) &&
    value.clients.every(isClientInfo) &&
    isString(value.execution_state) &&
    isUnsettled(value.unsettled)
  );
}

/** Type guard for a model summary. */
export function isModelSummary(value: unknown): value is IModelSummary {
  return (
    isRecord(value) &&
    isString(value.model_id) &&
    isString(value.model_name) &&
    isString(value.model_module) &&
    isString(value.model_module_version) &&
    isNumber(value.state_bytes) &&
    isNumber(value.buffer_bytes) &&
    isNumber(value.version) &&
    isString(value.last_change)
  );
}

/** Type guard for a model with its state. */
export function isModelDetail(value: unknown): value is IModelDetail {
  return isRecord(value) && isRecord(value.state) && isModelSummary(value);
}

/** Type guard for an events websocket frame. */
export function isSummaryEvent(value: unknown): value is ISummaryEvent {
  return (
    isRecord(value) &&
    value.type === 'summary' &&
    isKernelSummary(value.kernel) &&
    Array.isArray(value.changed_models) &&
    value.changed_models.every(isString)
  );
}

/** Parse one websocket text frame; `null` for anything that is not a summary. */
export function parseSummaryEvent(data: unknown): ISummaryEvent | null {
  if (!isString(data)) {
    return null;
  }
  try {
    const parsed: unknown = JSON.parse(data);
    return isSummaryEvent(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/** `{"$buffer": {"bytes": N, "sha256": "..."}}` as the server sends it. */
export interface IBufferRef {
  readonly bytes: number;
  readonly sha256: string;
}

/** Return the buffer reference if `value` is a `$buffer` placeholder. */
export function asBufferRef(value: ReadonlyJSONValue): IBufferRef | null {
  if (!isRecord(value)) {
    return null;
  }
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== '$buffer') {
    return null;
  }
  const ref = value.$buffer;
  if (isRecord(ref) && isNumber(ref.bytes)) {
    return { bytes: ref.bytes, sha256: isString(ref.sha256) ? ref.sha256 : '' };
  }
  return null;
}

/** A one-line description of a failure for tooltips. */
export function describeError(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  return String(reason);
}
