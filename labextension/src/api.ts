/**
 * Typed client for the jupyter-widget-relay REST API (`/api/widget-relay/...`).
 *
 * Every request goes through `ServerConnection.makeRequest`, so the base URL,
 * token and XSRF handling are the ones @jupyterlab/services uses for the
 * kernels API. Responses are checked with small type guards: a malformed
 * answer is reported as an error instead of crashing a view. The shapes and
 * guards live in `payloads.ts`, re-exported here.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  describeError,
  isKernelSummary,
  isModelDetail,
  isModelSummary,
  isRecord,
  isString,
  type Availability,
  type IKernelSummary,
  type IModelDetail,
  type IModelSummary
} from './payloads';

export * from './payloads';

/** Path of the relay API below the server base URL. */
export const API_PATH = 'api/widget-relay';

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
