"""The fan-out core: one per kernel, fed in order by the kernel's iopub and by its clients."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .buffers import TraitValue, split_state, without_traits
from .limits import (
    Limits,
    check_new_buffers,
    check_new_model,
    check_unhandled,
    refusal,
    state_names,
    update_size,
)
from .messages import (
    CLIENT_MSG_TYPES,
    CONTROL_TARGET,
    KERNEL_MSG_TYPES,
    WIDGET_TARGET,
    Envelope,
    JSONDict,
    MessageError,
    comm_msg,
    compose,
    counted_type,
)
from .output_relay import OutputRelay
from .peer_sync import PeerSync, update_message
from .rejections import RejectionLog
from .state_checks import StateChecks
from .status_routes import RELAY_OWN_REQUEST, StatusRoutes
from .table import WidgetModel, WidgetTable
from .verdict import ANSWERED, ClientRefusal, Forward, Refused, Verdict

log = logging.getLogger(__name__)

MAX_CONTROL_COMMS_PER_CLIENT = 16
CLIENT_CHANNELS = frozenset({"shell", "control", "stdin"})
RELAYED_REQUEST_TYPES = frozenset({"comm_open", "comm_msg", "comm_close", "comm_info_request"})


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


def _comm_data(env: Envelope) -> tuple[str, JSONDict]:
    content = env.content
    comm_id = content.get("comm_id")
    if not isinstance(comm_id, str):
        raise MessageError(f"{env.msg_type} without a string comm_id")
    data = content.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MessageError(f"{env.msg_type} data is not a JSON object")
    return comm_id, data


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
        on_kernel_write: Callable[[], None] | None = None,
        limits: Limits | None = None,
        timer: Callable[[str, float], None] | None = None,
        is_busy: Callable[[], bool] | None = None,
    ) -> None:
        self.kernel_id = kernel_id
        self.limits = limits or Limits()
        self._timer = timer
        self._is_busy = is_busy
        # The kernel's kernel_info_reply content, kept by the adapter that asked for it.
        self.kernel_info: JSONDict | None = None
        self.table = WidgetTable()
        self.kernel_session = uuid.uuid4().hex
        self.relay_session = uuid.uuid4().hex
        self.counters: Counter[tuple[str, ...]] = Counter()
        self.rejections = RejectionLog(kernel_id, self.counters, log)
        self._clients: dict[str, _ClientInfo] = {}
        self._sync = PeerSync(self)
        self._on_dirty = on_dirty
        self._dirty_models: set[str] = set()
        self._dirty_clients = False
        self._status_routes = StatusRoutes()
        self._on_kernel_write = on_kernel_write
        self.outputs = OutputRelay(self, self._mark, on_kernel_write)
        self.checks = StateChecks()

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
            port.send(envelope)
        self._clients[port.client_id] = _ClientInfo(port)
        self._mark(clients=True)

    def detach(self, port: ClientPort) -> None:
        info = self._clients.get(port.client_id)
        if info is None or info.port is not port:
            return
        del self._clients[port.client_id]
        self._sync.left(port.client_id)
        self._mark(clients=True)

    def send_to(self, client_id: str, envelope: Envelope) -> None:
        info = self._clients.get(client_id)
        if info is not None:
            try:
                info.port.send(envelope)
            except MessageError as error:
                self.reject("kernel", "unreadable", f"not sent to {client_id}: {error}")
            except Exception as error:
                self._drop_failed(info.port, error)

    def _drop_failed(self, port: ClientPort, error: Exception) -> None:
        """A port that raised on send is detached (and closed where it can be): it would
        otherwise miss messages and show a state that never converges."""
        self.count("relay", "send_failed")
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
                try:
                    info.port.send(envelope)
                except MessageError as error:  # unreadable content a JSON client needs parsed
                    self.reject("kernel", "unreadable", f"not sent to {client_id}: {error}")
                except Exception as error:  # one broken port must not stop the others
                    self._drop_failed(info.port, error)
        if self._timer is not None:
            self._timer("fanout", time.perf_counter() - started)

    # -- kernel -> clients ---------------------------------------------------------------

    def handle_kernel_message(self, env: Envelope) -> None:
        session = env.header.get("session")
        if isinstance(session, str) and session:
            self.kernel_session = session
        msg_type = env.msg_type
        self.count("from_kernel", counted_type(msg_type, KERNEL_MSG_TYPES))
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
                    self._sync.kernel_handled(env.parent_msg_id, env.parent_header)
            else:
                self.broadcast(env)
                try:
                    self.outputs.capture_output(env)
                except MessageError as error:
                    self.reject("kernel", "malformed", f"not captured: {error}")
        except MessageError as error:
            self.reject("kernel", "malformed", str(error))
            self.broadcast(env)
        self._sync.flush(env.parent_header)

    def route_status(self, parent_msg_id: str, client_id: str) -> None:
        """The kernel's statuses for ``client_id``'s own request go to it alone."""
        self._status_routes.add(parent_msg_id, client_id)

    def _send_status(self, env: Envelope) -> None:
        client_id = self._status_routes.recipient(env)
        if client_id is None:
            self.broadcast(env)
        else:
            self.send_to(client_id, env)
            self.count("relay", "private_status")

    def _kernel_comm_open(self, env: Envelope) -> None:
        comm_id, data = _comm_data(env)
        if env.content.get("target_name") == WIDGET_TARGET:
            self._open_model(comm_id, data, env.buffers)
        self.broadcast(env)

    def _open_model(self, comm_id: str, data: JSONDict, buffers: list[bytes]) -> None:
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), buffers, self.table.store
        )
        model = self.table.open(comm_id, traits)
        self.outputs.opened(model)
        self._mark(comm_id)

    def _close_model(self, comm_id: str) -> bool:
        if self.table.close(comm_id) is None:
            return False
        self._sync.forget_model(comm_id)
        self.outputs.closed(comm_id)
        self._mark(comm_id)
        return True

    def _kernel_comm_close(self, env: Envelope) -> None:
        comm_id, _ = _comm_data(env)
        self._close_model(comm_id)
        self.broadcast(env)

    def _kernel_comm_msg(self, env: Envelope) -> None:
        comm_id, data = _comm_data(env)
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
            self._sync.kernel_stated(env.parent_msg_id, comm_id, traits)
        ref = self._sync.owns_echo(env, model) if method == "echo_update" else None
        if ref is not None:
            self._sync.own_echo(env, model, traits, ref)
        else:
            self.broadcast(env)
            unsettled = self._sync.kernel_values(model, traits, method, env.parent_msg_id)
            if unsettled:
                self.table.apply(model, unsettled)
        self.outputs.changed(model, traits)
        self._mark(comm_id)

    # -- the relay's own requests to the kernel -------------------------------------------

    def check_model(self, model_id: str) -> None:
        """Ask the kernel for ``model_id``'s state (see state_checks.py)."""
        if self.checks.add(model_id) and self._on_kernel_write is not None:
            self._on_kernel_write()

    def take_kernel_writes(self) -> list[Envelope]:
        """The relay's own shell messages for the kernel: Output writes, state checks."""
        checks = self.checks.take(self.relay_session, self.table.models)
        for request in checks:
            self.route_status(request.msg_id, RELAY_OWN_REQUEST)
        self.count("relay", "state_check", by=len(checks))
        return self.outputs.take_kernel_writes() + checks

    def _checked(self, env: Envelope, model: WidgetModel, traits: dict[str, TraitValue]) -> None:
        """The kernel's whole state of ``model``, which the relay asked for: where it differs
        from what clients were told, the kernel's value is sent to all of them."""
        changed = self._sync.kernel_state(model, traits)
        if changed:
            self.table.apply(model, changed)
            self.broadcast(update_message(self.kernel_session, model, changed, env.parent_header))
            self.count("relay", "state_check_corrected")
            self.outputs.changed(model, changed)
            self._mark(model.model_id)

    def _check_done(self, parent_msg_id: str) -> None:
        if self.checks and self.checks.unanswered(parent_msg_id):
            self.count("relay", "state_check_unanswered")

    # -- clients -> kernel ---------------------------------------------------------------

    def receive(self, port: ClientPort, env: Envelope) -> Verdict:
        """Decide what becomes of a frontend's message (policy first, then the protocol).

        A refused message touches neither the table nor any peer; its sender is told why,
        and a refused update's model is shown the table's values again."""
        msg_type = env.msg_type
        self.count("from_client", counted_type(msg_type, CLIENT_MSG_TYPES))
        try:
            self._check_policy(env)
            if env.channel != "shell":
                return Forward(env)
            if msg_type in RELAYED_REQUEST_TYPES:
                return self._client_request(port, env)
            if msg_type == "kernel_info_request":
                return self._client_kernel_info(port, env)
            return Forward(env)
        except MessageError as error:
            return self.refuse(port, env, "malformed", f"malformed {msg_type}: {error}")
        except ClientRefusal as error:
            return self.refuse(port, env, error.reason, str(error))
        finally:
            self._sync.flush(env.header)

    def _check_policy(self, env: Envelope) -> None:
        if env.channel not in CLIENT_CHANNELS:
            raise ClientRefusal("unknown_channel", f"no channel {env.channel!r}")
        allowed = self.limits.allowed_msg_types
        if allowed and env.msg_type not in allowed:
            raise ClientRefusal(
                "not_allowed",
                f"messages of type {env.msg_type!r} are not allowed "
                "(MappingKernelManager.allowed_message_types)",
            )

    def _client_request(self, port: ClientPort, env: Envelope) -> Verdict:
        msg_type = env.msg_type
        if msg_type == "comm_msg":
            return self._client_comm_msg(port, env)
        if msg_type == "comm_open":
            return self._client_comm_open(port, env)
        if msg_type == "comm_close":
            return self._client_comm_close(port, env)
        return self._client_comm_info(port, env)

    def refuse(self, port: ClientPort, env: Envelope, reason: str, text: str) -> Refused:
        self.reject("client", reason, text, port.client_id)
        try:
            content = env.content
        except MessageError:
            content = {}
        comm_id = content.get("comm_id")
        model = self.table.get(comm_id) if isinstance(comm_id, str) else None
        data = content.get("data")
        is_update = isinstance(data, dict) and data.get("method") == "update"
        known = (model.state.keys() | model.buffers.keys()) if model and is_update else set()
        names = [name for name in state_names(data) if name in known]
        for message in refusal(self.kernel_session, env, f"not applied: {text}", model, names):
            port.send(message)
        return Refused(reason, text)

    def _client_kernel_info(self, port: ClientPort, env: Envelope) -> Verdict:
        """While a cell runs, answer kernel_info_request from the kernel's kept reply:
        JupyterLab holds a new connection's messages until that reply (up to 3 s), and the
        kernel would answer only after the cell. Otherwise the kernel answers, and its
        statuses for the request go to the asking client only."""
        busy = self._is_busy is not None and self._is_busy()
        if self.kernel_info is None or not busy:
            if env.msg_id:
                self.route_status(env.msg_id, port.client_id)
            return Forward(env)
        session = self.kernel_session
        port.send(
            compose(
                "kernel_info_reply",
                dict(self.kernel_info),
                session=session,
                parent=env.header,
                channel="shell",
            )
        )
        # kernel_info_request is an "untracked" type: this idle finishes the request without
        # changing the kernel status the frontend shows.
        port.send(
            compose("status", {"execution_state": "idle"}, session=session, parent=env.header)
        )
        self.count("relay", "kernel_info")
        return ANSWERED

    def _control_comms(self, port: ClientPort) -> dict[str, None]:
        info = self._clients.get(port.client_id)
        return info.control_comms if info is not None else {}

    def _client_comm_open(self, port: ClientPort, env: Envelope) -> Verdict:
        comm_id, data = _comm_data(env)
        target = env.content.get("target_name")
        if target == CONTROL_TARGET:
            controls = self._control_comms(port)
            controls[comm_id] = None
            while len(controls) > MAX_CONTROL_COMMS_PER_CLIENT:
                del controls[next(iter(controls))]
            return ANSWERED
        if target == WIDGET_TARGET:
            if comm_id in self.table:
                # A model exists because the kernel opened it; the kernel refuses a second
                # comm with its id, and the table must keep the one it has.
                raise ClientRefusal("model_exists", f"widget model {comm_id} already exists")
            check_new_model(self.limits, self.table)
            check_new_buffers(self.limits, self.table, env.buffers)
            self._open_model(comm_id, data, env.buffers)
            peer_copy = compose(
                "comm_open",
                dict(env.content),
                session=self.kernel_session,
                parent=env.header,
                buffers=env.buffers,
            )
            self.broadcast(peer_copy, exclude=port.client_id)
        return Forward(env)

    def _client_comm_close(self, port: ClientPort, env: Envelope) -> Verdict:
        comm_id, _ = _comm_data(env)
        controls = self._control_comms(port)
        if comm_id in controls:
            del controls[comm_id]
            return ANSWERED
        if self._close_model(comm_id):
            peer_copy = compose(
                "comm_close",
                {"comm_id": comm_id, "data": {}},
                session=self.kernel_session,
                parent=env.header,
            )
            self.broadcast(peer_copy, exclude=port.client_id)
        return Forward(env)

    def _client_comm_info(self, port: ClientPort, env: Envelope) -> Verdict:
        """The ipywidgets-7 loading path asks which widget comms exist: answer from the
        table at once (it lists every live widget comm); other targets go to the kernel."""
        if env.content.get("target_name") != WIDGET_TARGET:
            return Forward(env)
        comms = {model_id: {"target_name": WIDGET_TARGET} for model_id in self.table.models}
        reply = compose(
            "comm_info_reply",
            {"status": "ok", "comms": comms},
            session=self.kernel_session,
            parent=env.header,
            channel="shell",
        )
        port.send(reply)
        # Frontends finish the request on an idle status; comm_info_request is an
        # "untracked" type, so this does not change the kernel status they display.
        port.send(
            compose(
                "status",
                {"execution_state": "idle"},
                session=self.kernel_session,
                parent=env.header,
            )
        )
        self.count("relay", "comm_info")
        return ANSWERED

    def _client_comm_msg(self, port: ClientPort, env: Envelope) -> Verdict:
        comm_id, data = _comm_data(env)
        method = data.get("method")
        if comm_id in self._control_comms(port):
            if method == "request_states":
                self.send_snapshot(port, comm_id, env.header)
            else:
                self.reject("client", "unknown_control_method", f"{method!r}", port.client_id)
            return ANSWERED
        model = self.table.get(comm_id)
        if model is None:
            return Forward(env)
        if method == "request_state":
            state, paths, buffers = model.wire_state()
            port.send(
                comm_msg(
                    comm_id,
                    {"method": "update", "state": state, "buffer_paths": paths},
                    session=self.kernel_session,
                    parent=env.header,
                    buffers=buffers,
                )
            )
            self.count("relay", "request_state")
            return ANSWERED
        if method != "update":
            return Forward(env)
        return self._client_update(port, env, model, data)

    def _client_update(
        self, port: ClientPort, env: Envelope, model: WidgetModel, data: JSONDict
    ) -> Verdict:
        """Every check that can refuse the update runs before anything changes."""
        if "buffer_paths" in data and not isinstance(data["buffer_paths"], list):
            raise MessageError("'buffer_paths' must be a list")  # ipywidgets would fail on it
        if self._sync.is_pending(env.msg_id):
            raise MessageError(f"msg_id {env.msg_id!r} is already in use by a pending update")
        check_new_buffers(self.limits, self.table, env.buffers)
        size = update_size(env, data)
        check_unhandled(self.limits, self._sync.unhandled_bytes(port.client_id), size)
        if self.outputs.is_output(model.model_id):
            stripped = self.outputs.strip_client_write(env, data)
            if stripped is None:
                return ANSWERED
            data = stripped
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), env.buffers, self.table.store
        )
        buffers = env.buffers
        unknown = [name for name in traits if not model.has_trait(name)]
        if unknown:
            # The kernel ignores traits its model does not have: so must the table and the
            # peers. The message still goes to the kernel as sent, as stock would send it.
            for name in unknown:
                self.table.store.release_all(traits.pop(name).buffers)
            self._refuse_traits(port, env, unknown)
            data, buffers = without_traits(data, buffers, unknown)
        if traits:
            self._sync.client_update(port.client_id, env, model, traits, data, buffers, size)
            self._mark(model.model_id)
        return Forward(env)

    def _refuse_traits(self, port: ClientPort, env: Envelope, names: list[str]) -> None:
        shown = ", ".join(repr(name)[:80] for name in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        text = f"the widget model has no trait {shown}{more}: not applied"
        self.reject("client", "unknown_trait", text, port.client_id)
        port.send(
            compose(
                "stream",
                {"name": "stderr", "text": f"[widget relay] {text}\n"},
                session=self.kernel_session,
                parent=env.header,
            )
        )

    # -- snapshots -----------------------------------------------------------------------

    def send_snapshot(self, port: ClientPort, control_comm_id: str, parent: JSONDict) -> None:
        """Answer ``request_states`` from the table, in ``port``'s place in the stream."""
        started = time.perf_counter()
        states, paths, buffers = self.table.snapshot()
        port.send(
            comm_msg(
                control_comm_id,
                {"method": "update_states", "states": states, "buffer_paths": paths},
                session=self.kernel_session,
                parent=parent,
                buffers=buffers,
            )
        )
        self._sync.joined(port.client_id)
        self.count("relay", "snapshot")
        if self._timer is not None:
            self._timer("snapshot", time.perf_counter() - started)

    # -- plumbing ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every model (kernel restarted or gone); clients stay attached."""
        changed = set(self.table.models)
        self.table.clear()
        self._sync.reset()
        self.outputs.clear()
        self._status_routes.clear()
        self.checks.clear()
        for info in self._clients.values():
            info.control_comms.clear()
        for model_id in changed:
            self._mark(model_id)
        self._mark(clients=True)

    def count(self, *key: str, by: int = 1) -> None:
        self.counters[key] += by

    def reject(self, source: str, reason: str, detail: str, sender: str = "") -> None:
        """Count and (rate-limited, escaped) log a message the relay would not use."""
        self.rejections.reject(source, reason, detail, sender)

    def take_changes(self) -> tuple[set[str], bool]:
        models, clients = self._dirty_models, self._dirty_clients
        self._dirty_models, self._dirty_clients = set(), False
        return models, clients

    def _mark(self, model_id: str | None = None, *, clients: bool = False) -> None:
        was_clean = not self._dirty_models and not self._dirty_clients
        if model_id is not None:
            self._dirty_models.add(model_id)
        self._dirty_clients = self._dirty_clients or clients
        if was_clean and self._on_dirty is not None:
            self._on_dirty()

    def summary(self) -> dict[str, Any]:
        return {
            "models": len(self.table),
            "state_bytes": self.table.state_bytes,
            "buffer_bytes": self.table.buffer_bytes,
            "clients": len(self._clients),
        }


__all__ = ["ClientPort", "KernelRelay", "WidgetModel"]
