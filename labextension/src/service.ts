/**
 * One `WidgetRelayService` per page: it knows whether the server side is
 * enabled and shares one events websocket per kernel between all views.
 */
import { Token } from '@lumino/coreutils';
import { DisposableDelegate, type IDisposable } from '@lumino/disposable';
import { type ISignal, Signal } from '@lumino/signaling';

import { type Availability, RelayClient } from './api';
import { KernelEventsSocket } from './events';

/** Public interface of the service, provided to other plugins. */
export interface IWidgetRelayService {
  /** REST client bound to the page's server settings. */
  readonly client: RelayClient;
  /** `null` until the first status request answered. */
  readonly availability: Availability | null;
  readonly availabilityChanged: ISignal<IWidgetRelayService, Availability>;
  /** (Re)query `/api/widget-relay/status`. */
  refreshAvailability(): Promise<Availability>;
  /**
   * Get the shared events socket of a kernel. It stays open until every
   * returned handle is disposed.
   */
  subscribe(kernelId: string): IKernelSubscription;
}

/** A reference to a shared events socket. */
export interface IKernelSubscription extends IDisposable {
  readonly socket: KernelEventsSocket;
}

export const IWidgetRelayService = new Token<IWidgetRelayService>(
  'jupyter-widget-relay:IWidgetRelayService',
  'Widget relay server status and per-kernel event streams.'
);

/** Retry delays (ms) for a status request that failed on the network. */
const STATUS_RETRY_MS = [2_000, 5_000, 15_000, 60_000];

export class WidgetRelayService implements IWidgetRelayService, IDisposable {
  constructor(client?: RelayClient) {
    this.client = client ?? new RelayClient();
  }

  readonly client: RelayClient;

  get availability(): Availability | null {
    return this._availability;
  }

  get availabilityChanged(): ISignal<IWidgetRelayService, Availability> {
    return this._availabilityChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  refreshAvailability(): Promise<Availability> {
    if (this._pending === null) {
      this._pending = this.client.getAvailability().then(availability => {
        this._pending = null;
        this._setAvailability(availability);
        return availability;
      });
    }
    return this._pending;
  }

  subscribe(kernelId: string): IKernelSubscription {
    let entry = this._sockets.get(kernelId);
    if (entry === undefined || entry.socket.isDisposed) {
      entry = {
        socket: new KernelEventsSocket({ kernelId, client: this.client }),
        refs: 0
      };
      this._sockets.set(kernelId, entry);
    }
    const shared = entry;
    shared.refs += 1;
    const handle = new DisposableDelegate(() => {
      shared.refs -= 1;
      if (shared.refs <= 0) {
        shared.socket.dispose();
        if (this._sockets.get(kernelId) === shared) {
          this._sockets.delete(kernelId);
        }
      }
    });
    return Object.assign(handle, { socket: shared.socket });
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    window.clearTimeout(this._retryTimer);
    for (const entry of this._sockets.values()) {
      entry.socket.dispose();
    }
    this._sockets.clear();
    Signal.clearData(this);
  }

  private _setAvailability(availability: Availability): void {
    if (this._isDisposed) {
      return;
    }
    const previous = this._availability;
    this._availability = availability;
    if (availability.kind === 'error') {
      // Network trouble: ask again later, slower each time.
      const delay =
        STATUS_RETRY_MS[Math.min(this._retries, STATUS_RETRY_MS.length - 1)];
      this._retries += 1;
      window.clearTimeout(this._retryTimer);
      this._retryTimer = window.setTimeout(() => {
        void this.refreshAvailability();
      }, delay);
    } else {
      this._retries = 0;
    }
    if (
      previous === null ||
      JSON.stringify(previous) !== JSON.stringify(availability)
    ) {
      this._availabilityChanged.emit(availability);
    }
  }

  private _availability: Availability | null = null;
  private _pending: Promise<Availability> | null = null;
  private _retries = 0;
  private _retryTimer = 0;
  private _isDisposed = false;
  private readonly _sockets = new Map<
    string,
    { socket: KernelEventsSocket; refs: number }
  >();
  private readonly _availabilityChanged = new Signal<
    IWidgetRelayService,
    Availability
  >(this);
}
