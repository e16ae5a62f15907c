"""The fan-out core: one per kernel, fed in order by the kernel's iopub and by its clients."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .buffers import TraitValue, split_state
from .client_requests import ClientRequests
from .counters import ACTED, Action, Direction
from .limits import (
    Limits,
)
from .messages import (
    KERNEL_MSG_TYPES,
    WIDGET_TARGET,
    Envelope,
    JSONDict,
    MessageError,
    comm_data,
    comm_msg,
    counted_type,
)
from .output_relay import OutputRelay
from .payloads import RelayCounts, Unsettled
from .peer_sync import PeerSync, update_message
from .rejections import Reason, RejectionLog, Source
from .seeding import TableSeed
from .state_checks import StateChecks
from .status_routes import RELAY_OWN_REQUEST, StatusRoutes
from .table import WidgetModel, WidgetTable
from .throttle import UpdateThrottle
from .verdict import Verdict

log = logging.getLogger(__name__)

# The parent msg_type of the status that releases a browser's update (see throttle.py):
# one of jupyter_server's default untracked_message_types.
DEFAULT_RELEASE_TYPE = "comm_info_request"


class ClientPort(Protocol):
    """What the core needs of a connected frontend; transports implement it."""

    @property
    def client_id(self) -> str: ...

    def send(self, envelope: Envelope) -> None: ...


@dataclass(slots=True, eq=False)
class _ClientInfo:
    port: ClientPort
    # insertion-ordered set: a client that opens control comms without closing them
    # loses its oldest ones (a frontend uses one per request_states)
    control_comms: dict[str, None] = field(default_factory=dict)
    # At most one snapshot in flight per client: while the last one is not yet handed to
    # the socket, a new request_states waits here (the latest replaces an earlier one)
    snapshot_unsent: bool = False
    snapshot_due: tuple[str, JSONDict] | None = None
    told_unknown: dict[tuple[str, str], None] = field(default_factory=dict)


class KernelRelay:
    """Keeps the widget table of one kernel and the ordered stream every client receives.

    All methods run on one event loop thread; each call finishes its fan-out before
    returning, so a snapshot taken in a call is consistent with everything sent before it.
    """

    def __init__(
        self,
        kernel_id: str,
        *,
        on_dirty: Callable[[], None] | None = None,
        on_kernel_write: Callable[[bool], None] | None = None,
        limits: Limits | None = None,
        timer: Callable[[str, float], None] | None = None,
        is_busy: Callable[[], bool] | None = None,
        throttle: bool = True,
        release_type: str | None = DEFAULT_RELEASE_TYPE,
    ) -> None:
        self.kernel_id = kernel_id
        # The parent msg_type of the status that ends a browser update the kernel never
        # gets (refused, answered, merged): None if no type leaves the kernel status
        # alone, and then browsers must pace their own updates (stock).
        self.release_type = release_type
        self.paces_updates = throttle and release_type is not None
        self.limits = limits or Limits()
        self._timer = timer
        self.is_busy = is_busy or (lambda: False)
        # The kernel's kernel_info_reply content, kept by the adapter that asked for it.
        self.kernel_info: JSONDict | None = None
        self.table = WidgetTable()
        self.kernel_session = uuid.uuid4().hex
        self.relay_session = uuid.uuid4().hex
        self.counters: Counter[tuple[str, ...]] = Counter()
        self.rejections = RejectionLog(kernel_id, self.counters, log)
        self._clients: dict[str, _ClientInfo] = {}
        self.sync = PeerSync(self)
        self._on_dirty = on_dirty
        self._dirty_models: set[str] = set()
        self._dirty_clients = False
        self._status_routes = StatusRoutes()
        self._on_kernel_write = on_kernel_write
        self.outputs = OutputRelay(self, self.mark, self.kernel_write_due)
        self.checks = StateChecks()
        self.throttle = UpdateThrottle()
        self.seed = TableSeed()
        self._requests = ClientRequests(self)

    # -- clients -------------------------------------------------------------------------

    @property
    def client_ids(self) -> list[str]:
        return list(self._clients)

    def is_attached(self, client_id: str) -> bool:
        return client_id in self._clients

    def ports(self) -> list[ClientPort]:
        return [info.port for info in self._clients.values()]

    def attach(self, port: ClientPort, backlog: Iterable[Envelope] = ()) -> None:
        """Start sending the ordered stream to ``port`` (after replaying ``backlog``)."""
        for envelope in backlog:
            port.send(envelope)  # not attached yet: a failure is the caller's
        self._clients[port.client_id] = _ClientInfo(port)
        self.mark(clients=True)

    def detach(self, port: ClientPort) -> None:
        info = self._clients.get(port.client_id)
        if info is None or info.port is not port:
            return
        del self._clients[port.client_id]
        self.sync.left(port.client_id)
        self.mark(clients=True)

    def send_to(self, client_id: str, envelope: Envelope) -> None:
        info = self._clients.get(client_id)
        if info is not None:
            self.deliver(info.port, envelope)

    def deliver(self, port: ClientPort, envelope: Envelope) -> None:
        """Send to one port; a port that fails is detached, never the caller's problem."""
        try:
            port.send(envelope)
        except MessageError as error:  # unreadable content a JSON client needs parsed
            self.reject("kernel", "unreadable", f"not sent to {port.client_id}: {error}")
        except Exception as error:  # one broken port must not stop the others
            self._drop_failed(port, error)

    def _drop_failed(self, port: ClientPort, error: Exception) -> None:
        """A port that raised on send is detached (and closed where it can be): it would
        otherwise miss messages and show a state that never converges."""
        self.count_action("send_failed")
        log.error(
            "widget relay %s: sending to client %s failed; detaching it: %r",
            self.kernel_id,
            port.client_id,
            error,
        )
        self.detach(port)
        abort = getattr(port, "abort", None)
        if callable(abort):
            try:
                abort()
            except Exception:
                log.exception(
                    "widget relay %s: closing client %s failed", self.kernel_id, port.client_id
                )

    def broadcast(self, envelope: Envelope, exclude: str | None = None) -> None:
        started = time.perf_counter()
        for client_id, info in list(self._clients.items()):
            if client_id != exclude:
                self.deliver(info.port, envelope)
        if self._timer is not None:
            self._timer("fanout", time.perf_counter() - started)

    # -- kernel -> clients ---------------------------------------------------------------

    def handle_kernel_message(self, env: Envelope) -> None:
        session = env.header.get("session")
        if isinstance(session, str) and session:
            self.kernel_session = session
        msg_type = env.msg_type
        self.count_message("from_kernel", counted_type(msg_type, KERNEL_MSG_TYPES))
        try:
            env.content  # noqa: B018 - parse once, before anything is sent
        except MessageError as error:
            # v1 clients get the raw bytes, as stock would send them; JSON clients need the
            # content parsed and are skipped (counted) in broadcast().
            self.reject("kernel", "malformed", str(error))
            self.broadcast(env)
            return
        try:
            if msg_type == "comm_msg":
                self._kernel_comm_msg(env)
            elif msg_type == "comm_open":
                self._kernel_comm_open(env)
            elif msg_type == "comm_close":
                self._kernel_comm_close(env)
            elif msg_type == "status":
                self._send_status(env)
                if env.content.get("execution_state") == "idle" and env.parent_msg_id:
                    self.outputs.kernel_idle(env.parent_msg_id)
                    self._check_done(env.parent_msg_id)
                    self.sync.kernel_handled(env.parent_msg_id, env.parent_header)
                    if self.throttle.handled(env.parent_msg_id):
                        self.kernel_write_due(urgent=True)
            else:
                self.broadcast(env)
                try:
                    self.outputs.capture_output(env)
                except MessageError as error:
                    self.reject("kernel", "malformed", f"not captured: {error}")
        except MessageError as error:
            self.reject("kernel", "malformed", str(error))
            self.broadcast(env)
        self.sync.flush(env.parent_header)

    def route_status(self, parent_msg_id: str, client_id: str) -> None:
        """The kernel's statuses for ``client_id``'s own request go to it alone."""
        self._status_routes.add(parent_msg_id, client_id)

    def _send_status(self, env: Envelope) -> None:
        client_id = self._status_routes.recipient(env)
        if client_id is None:
            self.broadcast(env)
        else:
            self.send_to(client_id, env)
            self.count_action("private_status")

    def _kernel_comm_open(self, env: Envelope) -> None:
        comm_id, data = comm_data(env)
        if env.content.get("target_name") == WIDGET_TARGET:
            self.open_model(comm_id, data, env.buffers)
        self.broadcast(env)

    def open_model(
        self, comm_id: str, data: JSONDict, buffers: list[bytes], *, by_kernel: bool = True
    ) -> None:
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), buffers, self.table.store
        )
        model = self.table.open(comm_id, traits, by_kernel=by_kernel)
        self.outputs.opened(model)
        self.mark(comm_id)

    def close_model(self, comm_id: str) -> bool:
        if self.table.close(comm_id) is None:
            return False
        self.sync.forget_model(comm_id)
        self.throttle.forget_model(comm_id)
        self.outputs.closed(comm_id)
        self.mark(comm_id)
        return True

    def _kernel_comm_close(self, env: Envelope) -> None:
        comm_id, _ = comm_data(env)
        self.close_model(comm_id)
        self.broadcast(env)

    def _kernel_comm_msg(self, env: Envelope) -> None:
        comm_id, data = comm_data(env)
        if self.seed.is_answer(comm_id, data, env.parent_msg_id):
            own = self.seed.is_own_comm(comm_id)
            self._seeded(data, env.buffers)
            if own:
                return  # no browser has the relay's comm
        elif self.seed.is_own_comm(comm_id):
            return
        model = self.table.get(comm_id)
        method = data.get("method")
        if model is None or method not in ("update", "echo_update"):
            self.broadcast(env)
            return
        if method == "echo_update" and self.outputs.is_own_echo(env.parent_msg_id):
            return
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), env.buffers, self.table.store
        )
        if method == "update" and self.checks.answers(env, comm_id):
            self._checked(env, model, traits)
            return
        if method == "update":
            self.sync.kernel_stated(env.parent_msg_id, comm_id, traits)
        ref = self.sync.owns_echo(env, model) if method == "echo_update" else None
        if ref is not None:
            self.sync.own_echo(env, model, traits, ref)
        else:
            self.broadcast(env)
            unsettled = self.sync.kernel_values(model, traits, method, env.parent_msg_id)
            if unsettled:
                self.table.apply(model, unsettled)
        self.outputs.changed(model, traits)
        self.mark(comm_id)

    # -- the relay's own requests to the kernel -------------------------------------------

    def begin_seeding(self) -> None:
        """The table may miss models the kernel already has: fill it from the kernel
        (seeding.py); until then clients' widget-loading requests go to the kernel."""
        self.seed.begin(self.relay_session)
        self.kernel_write_due(urgent=True)

    def handle_kernel_reply(self, env: Envelope) -> None:
        """A shell reply to one of the relay's own requests."""
        if env.msg_type == "comm_info_reply" and self.seed.comm_info(
            env, self.table.models, self.relay_session
        ):
            if self.seed.complete:
                self.count_action("seed_complete")
            self.kernel_write_due(urgent=True)

    def _seeded(self, data: JSONDict, buffers: list[bytes]) -> None:
        for model_id, model_data, model_buffers in self.seed.states(
            data, buffers, self.relay_session
        ):
            if model_id not in self.table:  # one opened since is newer
                self.open_model(model_id, model_data, model_buffers)
                self.count_action("seeded_model")
        self.count_action("seed_complete")
        self.kernel_write_due(urgent=True)

    def check_model(self, model_id: str) -> None:
        """Ask the kernel for ``model_id``'s state (see state_checks.py)."""
        if self.checks.add(model_id):
            self.kernel_write_due()

    def kernel_write_due(self, urgent: bool = False) -> None:
        """The relay has shell messages for the kernel (``take_kernel_writes``); an
        ``urgent`` one (a browser update that waited) goes without the usual delay."""
        if self._on_kernel_write is not None:
            self._on_kernel_write(urgent)

    def take_kernel_writes(self) -> list[Envelope]:
        """The relay's own shell messages for the kernel: Output writes, browser updates
        that waited (throttle.py), state checks."""
        updates = self.throttle.take()
        checks = self.checks.take(self.relay_session, self.table.models)
        seeding = self.seed.take()
        for request in (*checks, *seeding):
            self.route_status(request.msg_id, RELAY_OWN_REQUEST)
        self.count_action("state_check", by=len(checks))
        self.count_action("merged_update_sent", by=len(updates))
        return self.outputs.take_kernel_writes() + updates + checks + seeding

    def _checked(self, env: Envelope, model: WidgetModel, traits: dict[str, TraitValue]) -> None:
        """The kernel's whole state of ``model``, which the relay asked for: where it differs
        from what clients were told, the kernel's value is sent to all of them. An Output
        model's ``outputs`` are the relay's own capture (the kernel may not have the
        latest write yet): they are not taken from the answer."""
        if self.outputs.is_output(model.model_id) and "outputs" in traits:
            self.table.store.release_all(traits.pop("outputs").buffers)
        changed = self.sync.kernel_state(model, traits)
        if changed:
            self.table.apply(model, changed)
            self.broadcast(update_message(self.kernel_session, model, changed, env.parent_header))
            self.count_action("state_check_corrected")
            self.outputs.changed(model, changed)
            self.mark(model.model_id)

    def _check_done(self, parent_msg_id: str) -> None:
        if self.checks and self.checks.unanswered(parent_msg_id):
            self.count_action("state_check_unanswered")

    # -- clients -> kernel ---------------------------------------------------------------

    def receive(self, port: ClientPort, env: Envelope) -> Verdict:
        """Decide what becomes of a frontend's message (see client_requests.py)."""
        return self._requests.receive(port, env)

    def told_unknown(self, port: ClientPort) -> dict[tuple[str, str], None]:
        """(model, trait) pairs ``port``'s client was told the model does not have."""
        info = self._clients.get(port.client_id)
        return info.told_unknown if info is not None else {}

    def control_comms(self, port: ClientPort) -> dict[str, None]:
        info = self._clients.get(port.client_id)
        return info.control_comms if info is not None else {}

    # -- snapshots -----------------------------------------------------------------------

    def send_snapshot(self, port: ClientPort, control_comm_id: str, parent: JSONDict) -> None:
        """Answer ``request_states`` from the table, in ``port``'s place in the stream.

        A client whose previous snapshot is still waiting to be written gets this one
        when that is done (``port_drained``), built then: repeated requests cost one."""
        info = self._clients.get(port.client_id)
        backlogged = getattr(port, "backlogged", None)
        if info is not None and info.snapshot_unsent and callable(backlogged) and backlogged():
            if info.snapshot_due is not None:
                self.count_action("snapshot_coalesced")
            info.snapshot_due = (control_comm_id, parent)
            return
        started = time.perf_counter()
        states, paths, buffers = self.table.snapshot()
        self.deliver(
            port,
            comm_msg(
                control_comm_id,
                {"method": "update_states", "states": states, "buffer_paths": paths},
                session=self.kernel_session,
                parent=parent,
                buffers=buffers,
            ),
        )
        if info is not None:
            info.snapshot_unsent = True
        self.sync.joined(port.client_id)
        self.count_action("snapshot")
        if self._timer is not None:
            self._timer("snapshot", time.perf_counter() - started)

    def port_drained(self, port: ClientPort) -> None:
        """Everything sent to ``port`` so far has been handed to its socket."""
        info = self._clients.get(port.client_id)
        if info is None or info.port is not port:
            return
        info.snapshot_unsent = False
        due, info.snapshot_due = info.snapshot_due, None
        if due is not None:
            self.send_snapshot(port, *due)

    # -- plumbing ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every model (kernel restarted or gone); clients stay attached."""
        changed = set(self.table.models)
        self.table.clear()
        self.sync.reset()
        self.outputs.clear()
        self._status_routes.clear()
        self.checks.clear()
        self.throttle.clear()
        self.seed.clear()
        for info in self._clients.values():
            info.control_comms.clear()
        for model_id in changed:
            self.mark(model_id)
        self.mark(clients=True)

    def count_message(self, direction: Direction, msg_type: str) -> None:
        self.counters[direction, msg_type] += 1

    def count_action(self, action: Action, by: int = 1) -> None:
        self.counters[ACTED, action] += by

    def reject(self, source: Source, reason: Reason, detail: str, sender: str = "") -> None:
        """Count and (rate-limited, escaped) log a message the relay would not use."""
        self.rejections.reject(source, reason, detail, sender)

    def take_changes(self) -> tuple[set[str], bool]:
        models, clients = self._dirty_models, self._dirty_clients
        self._dirty_models, self._dirty_clients = set(), False
        return models, clients

    def mark(self, model_id: str | None = None, *, clients: bool = False) -> None:
        was_clean = not self._dirty_models and not self._dirty_clients
        if model_id is not None:
            self._dirty_models.add(model_id)
        self._dirty_clients = self._dirty_clients or clients
        if was_clean and self._on_dirty is not None:
            self._on_dirty()

    def unsettled(self) -> Unsettled:
        """Bookkeeping still open: client updates the kernel has not handled (of which
        ``waiting``: merged, not yet sent to it), traits whose browsers are not yet known
        to show the kernel's value, state checks awaited."""
        return {
            "updates": self.sync.pending_count,
            "waiting": self.throttle.waiting_count,
            "traits": sum(len(model.sync or ()) for model in self.sync.models_in_flux()),
            "state_checks": self.checks.open_count,
        }

    def summary(self) -> RelayCounts:
        return {
            "models": len(self.table),
            "state_bytes": self.table.state_bytes,
            "buffer_bytes": self.table.buffer_bytes,
            "clients": len(self._clients),
        }


__all__ = ["ClientPort", "KernelRelay", "WidgetModel"]
