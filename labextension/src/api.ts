/**
 * Typed client for the jupyter-widget-relay REST API (`/api/widget-relay/...`).
 *
 * Every request goes through `ServerConnection.makeRequest`, so the base URL,
 * token and XSRF handling are the ones @jupyterlab/services uses for the
 * kernels API. Responses are checked with small type guards: a malformed
 * answer is reported as an error instead of crashing a view.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import type { ReadonlyJSONObject, ReadonlyJSONValue } from '@lumino/coreutils';

/** Path of the relay API below the server base URL. */
export const API_PATH = 'api/widget-relay';

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

/** An HTTP answer the client could not use. */
export class RelayApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'RelayApiError';
  }
}

type JSONRecord = { readonly [key: string]: unknown };

function isRecord(value: unknown): value is JSONRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isNumber(value: unknown): value is number {
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

/**
 * REST client. Methods resolve to `null` for a 404 (unknown kernel / model)
 * and reject with `RelayApiError` or `ServerConnection.NetworkError` otherwise.
 */
export class RelayClient {
  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  readonly settings: ServerConnection.ISettings;

  /** Whether the server extension is installed and enabled. Never rejects. */
  async getAvailability(): Promise<Availability> {
    try {
      const body = await this._get(['status']);
      if (body === null) {
        return { kind: 'missing' };
      }
      if (!isRecord(body) || typeof body.enabled !== 'boolean') {
        return { kind: 'error', message: 'Malformed status answer' };
      }
      const version = isString(body.version) ? body.version : '';
      return body.enabled
        ? { kind: 'enabled', version }
        : { kind: 'disabled', version };
    } catch (reason) {
      return { kind: 'error', message: describeError(reason) };
    }
  }

  /** Summaries of every kernel the relay serves. */
  async listKernels(): Promise<IKernelSummary[]> {
    const body = await this._get(['kernels']);
    if (body === null) {
      return [];
    }
    if (!isRecord(body) || !Array.isArray(body.kernels)) {
      throw new RelayApiError('Malformed kernel list', 200);
    }
    return body.kernels.filter(isKernelSummary);
  }

  /** The relay's summary of one kernel, `null` if it does not serve it. */
  async getKernel(kernelId: string): Promise<IKernelSummary | null> {
    const body = await this._get(['kernels', kernelId]);
    if (body === null) {
      return null;
    }
    if (!isKernelSummary(body)) {
      throw new RelayApiError('Malformed kernel summary', 200);
    }
    return body;
  }

  /** The models of one kernel, `null` if the kernel is unknown. */
  async listModels(kernelId: string): Promise<IModelSummary[] | null> {
    const body = await this._get(['kernels', kernelId, 'models']);
    if (body === null) {
      return null;
    }
    if (!isRecord(body) || !Array.isArray(body.models)) {
      throw new RelayApiError('Malformed model list', 200);
    }
    return body.models.filter(isModelSummary);
  }

  /** One model with its state, `null` if it is gone. */
  async getModel(
    kernelId: string,
    modelId: string
  ): Promise<IModelDetail | null> {
    const body = await this._get(['kernels', kernelId, 'models', modelId]);
    if (body === null) {
      return null;
    }
    if (!isModelDetail(body)) {
      throw new RelayApiError('Malformed model', 200);
    }
    return body;
  }

  /**
   * The events websocket URL of a kernel, with the token appended the way
   * @jupyterlab/services does it for kernel websockets.
   */
  eventsUrl(kernelId: string): string {
    const url = URLExt.join(
      this.settings.wsUrl,
      API_PATH,
      'kernels',
      encodeURIComponent(kernelId),
      'events'
    );
    const token = this.settings.token;
    if (this.settings.appendToken && token !== '') {
      return `${url}?token=${encodeURIComponent(token)}`;
    }
    return url;
  }

  private async _get(parts: readonly string[]): Promise<unknown> {
    const url = URLExt.join(
      this.settings.baseUrl,
      API_PATH,
      ...parts.map(part => encodeURIComponent(part))
    );
    const response = await ServerConnection.makeRequest(
      url,
      { method: 'GET', cache: 'no-store' },
      this.settings
    );
    if (response.status === 404) {
      return null;
    }
    if (!response.ok) {
      throw new RelayApiError(
        `GET ${url} failed: ${response.status} ${response.statusText}`,
        response.status
      );
    }
    return (await response.json()) as unknown;
  }
}

/** A one-line description of a failure for tooltips. */
export function describeError(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  return String(reason);
}
