/**
 * The per-kernel events websocket (`/api/widget-relay/kernels/<id>/events`)
 * with reconnection and exponential backoff.
 */
import type { IDisposable } from '@lumino/disposable';
import { type ISignal, Signal } from '@lumino/signaling';

import {
  CLOSE_UNKNOWN_KERNEL,
  type IKernelSummary,
  type ISummaryEvent,
  parseSummaryEvent,
  type RelayClient
} from './api';

/**
 * - `connecting`: first attempt (or an attempt after a kernel change) running
 * - `open`: connected, summaries arrive
 * - `reconnecting`: the socket closed; another attempt is scheduled
 * - `unknown-kernel`: the server closed with 4004; retried slowly
 * - `disposed`: stopped for good
 */
export type ConnectionState =
  'connecting' | 'open' | 'reconnecting' | 'unknown-kernel' | 'disposed';

/** Delays between attempts, in ms. */
export interface IBackoff {
  readonly initial: number;
  readonly max: number;
  /** Delay after a 4004 close (the relay may learn the kernel later). */
  readonly unknownKernel: number;
}

export const DEFAULT_BACKOFF: IBackoff = {
  initial: 500,
  max: 30_000,
  unknownKernel: 15_000
};

/** A connection that stayed open this long resets the backoff. */
const STABLE_MS = 5_000;

/**
 * Keeps one websocket to a kernel's events endpoint open while it is not
 * disposed. Only the latest summary is kept.
 */
export class KernelEventsSocket implements IDisposable {
  constructor(options: KernelEventsSocket.IOptions) {
    this.kernelId = options.kernelId;
    this._client = options.client;
    this._backoff = options.backoff ?? DEFAULT_BACKOFF;
    this._connect();
  }

  readonly kernelId: string;

  /** Emitted for every summary frame. */
  get summaryReceived(): ISignal<this, ISummaryEvent> {
    return this._summaryReceived;
  }

  /** Emitted when `state` changes. */
  get stateChanged(): ISignal<this, ConnectionState> {
    return this._stateChanged;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The latest summary, kept across reconnects (it may be stale). */
  get summary(): IKernelSummary | null {
    return this._summary;
  }

  get isDisposed(): boolean {
    return this._state === 'disposed';
  }

  /** Drop the wait of a pending retry and connect now. */
  reconnectNow(): void {
    if (this.isDisposed || this._socket !== null) {
      return;
    }
    this._clearTimer();
    this._connect();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._clearTimer();
    this._closeSocket();
    this._setState('disposed');
    Signal.clearData(this);
  }

  private _connect(): void {
    let socket: WebSocket;
    try {
      socket = new this._client.settings.WebSocket(
        this._client.eventsUrl(this.kernelId)
      );
    } catch {
      this._scheduleRetry(false);
      return;
    }
    this._socket = socket;
    if (this._state !== 'reconnecting' && this._state !== 'unknown-kernel') {
      this._setState('connecting');
    }
    socket.onopen = () => {
      this._openedAt = Date.now();
    };
    socket.onmessage = (event: MessageEvent) => {
      const summary = parseSummaryEvent(event.data);
      if (summary === null || this.isDisposed) {
        return;
      }
      this._summary = summary.kernel;
      this._setState('open');
      this._summaryReceived.emit(summary);
    };
    // An `error` event is always followed by `close`; nothing to do here.
    socket.onerror = () => undefined;
    socket.onclose = (event: CloseEvent) => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      const stable =
        this._openedAt !== 0 && Date.now() - this._openedAt >= STABLE_MS;
      this._openedAt = 0;
      if (stable) {
        this._attempt = 0;
      }
      this._scheduleRetry(event.code === CLOSE_UNKNOWN_KERNEL);
    };
  }

  private _scheduleRetry(unknownKernel: boolean): void {
    if (this.isDisposed) {
      return;
    }
    let delay: number;
    if (unknownKernel) {
      this._summary = null;
      this._setState('unknown-kernel');
      delay = this._backoff.unknownKernel;
    } else {
      this._setState('reconnecting');
      const base = Math.min(
        this._backoff.max,
        this._backoff.initial * 2 ** this._attempt
      );
      // +-20 % jitter so many tabs do not reconnect in lockstep.
      delay = base * (0.8 + 0.4 * Math.random());
    }
    this._attempt = Math.min(this._attempt + 1, 16);
    this._clearTimer();
    this._timer = window.setTimeout(() => {
      this._timer = 0;
      if (!this.isDisposed) {
        this._connect();
      }
    }, delay);
  }

  private _closeSocket(): void {
    const socket = this._socket;
    this._socket = null;
    if (socket === null) {
      return;
    }
    socket.onopen = null;
    socket.onmessage = null;
    socket.onerror = null;
    socket.onclose = null;
    if (socket.readyState === WebSocket.OPEN) {
      socket.close(1000, 'client closed');
    } else if (socket.readyState === WebSocket.CONNECTING) {
      // Closing a connecting socket makes Chromium log an error: wait for it.
      socket.onopen = () => socket.close(1000, 'client closed');
    }
  }

  private _clearTimer(): void {
    if (this._timer !== 0) {
      window.clearTimeout(this._timer);
      this._timer = 0;
    }
  }

  private _setState(state: ConnectionState): void {
    if (this._state === state || this._state === 'disposed') {
      return;
    }
    this._state = state;
    this._stateChanged.emit(state);
  }

  private readonly _client: RelayClient;
  private readonly _backoff: IBackoff;
  private _socket: WebSocket | null = null;
  private _state: ConnectionState = 'connecting';
  private _summary: IKernelSummary | null = null;
  private _attempt = 0;
  private _openedAt = 0;
  private _timer = 0;
  private readonly _summaryReceived = new Signal<this, ISummaryEvent>(this);
  private readonly _stateChanged = new Signal<this, ConnectionState>(this);
}

export namespace KernelEventsSocket {
  export interface IOptions {
    readonly kernelId: string;
    readonly client: RelayClient;
    readonly backoff?: IBackoff;
  }
}
