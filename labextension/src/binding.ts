/**
 * `RelayBinding` follows one notebook's session context (its kernel may
 * change, go away or come back) and turns the server status plus the
 * kernel's events socket into one `IRelayViewState` for a view to render.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { IDisposable } from '@lumino/disposable';
import { type ISignal, Signal } from '@lumino/signaling';

import type { Availability, IKernelSummary, ISummaryEvent } from './api';
import type { ConnectionState, KernelEventsSocket } from './events';
import type { IKernelSubscription, IWidgetRelayService } from './service';

/** Everything a view needs to render the relay status of one notebook. */
export interface IRelayViewState {
  readonly availability: Availability | null;
  /** `null` when there is no notebook or it has no kernel. */
  readonly kernelId: string | null;
  /** Notebook path, for labels. */
  readonly path: string | null;
  /** `none` when there is no socket (no kernel or relay not enabled). */
  readonly connection: ConnectionState | 'none';
  readonly summary: IKernelSummary | null;
}

/** Why `changed` fired. */
export interface IRelayChange {
  readonly state: IRelayViewState;
  /**
   * Models reported changed by the latest event; `null` when the whole view
   * should be reloaded (new kernel, reconnect, first summary).
   */
  readonly changedModels: readonly string[] | null;
}

export class RelayBinding implements IDisposable {
  constructor(service: IWidgetRelayService) {
    this._service = service;
    service.availabilityChanged.connect(this._onAvailability, this);
  }

  get changed(): ISignal<this, IRelayChange> {
    return this._changed;
  }

  get state(): IRelayViewState {
    const socket = this._subscription?.socket ?? null;
    return {
      availability: this._service.availability,
      kernelId: this._kernelId,
      path: this._context?.path ?? null,
      connection: socket === null ? 'none' : socket.state,
      summary: socket?.summary ?? null
    };
  }

  get sessionContext(): ISessionContext | null {
    return this._context;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Follow another notebook (or none). */
  setSessionContext(context: ISessionContext | null): void {
    if (context === this._context || this._isDisposed) {
      return;
    }
    if (this._context !== null) {
      this._context.kernelChanged.disconnect(this._onKernelChanged, this);
      this._context.sessionChanged.disconnect(this._onKernelChanged, this);
      this._context.disposed.disconnect(this._onContextDisposed, this);
    }
    this._context = context;
    if (context !== null) {
      context.kernelChanged.connect(this._onKernelChanged, this);
      context.sessionChanged.connect(this._onKernelChanged, this);
      context.disposed.connect(this._onContextDisposed, this);
    }
    this._update(true);
  }

  /** Reconnect at once if a retry is pending (e.g. on a user click). */
  retry(): void {
    this._subscription?.socket.reconnectNow();
    if (this._service.availability?.kind === 'error') {
      void this._service.refreshAvailability();
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this.setSessionContext(null);
    this._isDisposed = true;
    this._dropSubscription();
    Signal.clearData(this);
  }

  private _onAvailability(): void {
    this._update(true);
  }

  private _onKernelChanged(): void {
    this._update(false);
  }

  private _onContextDisposed(): void {
    this.setSessionContext(null);
  }

  /** Re-evaluate which kernel to watch; emit if anything changed. */
  private _update(force: boolean): void {
    if (this._isDisposed) {
      return;
    }
    const kernelId = this._context?.session?.kernel?.id ?? null;
    const enabled = this._service.availability?.kind === 'enabled';
    const wanted = enabled ? kernelId : null;
    const current = this._subscription?.socket.kernelId ?? null;
    const kernelChanged = kernelId !== this._kernelId;
    this._kernelId = kernelId;
    if (wanted !== current) {
      this._dropSubscription();
      this._needsReload = true;
      if (wanted !== null) {
        const subscription = this._service.subscribe(wanted);
        subscription.socket.summaryReceived.connect(this._onSummary, this);
        subscription.socket.stateChanged.connect(this._onSocketState, this);
        this._subscription = subscription;
      }
    }
    if (force || kernelChanged || wanted !== current) {
      this._emit(null);
    }
  }

  private _dropSubscription(): void {
    const subscription = this._subscription;
    this._subscription = null;
    if (subscription !== null) {
      subscription.socket.summaryReceived.disconnect(this._onSummary, this);
      subscription.socket.stateChanged.disconnect(this._onSocketState, this);
      subscription.dispose();
    }
  }

  private _onSummary(_: KernelEventsSocket, event: ISummaryEvent): void {
    // The first summary after (re)connecting describes a fresh state.
    const fresh = this._needsReload;
    this._needsReload = false;
    this._emit(fresh ? null : event.changed_models);
  }

  private _onSocketState(_: KernelEventsSocket, state: ConnectionState): void {
    if (state !== 'open') {
      this._needsReload = true;
      this._emit([]);
    }
  }

  private _emit(changedModels: readonly string[] | null): void {
    this._changed.emit({ state: this.state, changedModels });
  }

  private readonly _service: IWidgetRelayService;
  private _context: ISessionContext | null = null;
  private _kernelId: string | null = null;
  private _subscription: IKernelSubscription | null = null;
  private _needsReload = true;
  private _isDisposed = false;
  private readonly _changed = new Signal<this, IRelayChange>(this);
}
