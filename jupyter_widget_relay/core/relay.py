"""The fan-out core: one per kernel, fed in order by the kernel's iopub and by its clients."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .buffers import split_state
from .limits import LimitExceeded, Limits, check_new_buffers, check_new_model, refusal, state_names
from .messages import (
    CONTROL_TARGET,
    WIDGET_TARGET,
    Envelope,
    JSONDict,
    MessageError,
    comm_msg,
    compose,
)
from .output_relay import OutputRelay
from .peer_sync import PeerSync
from .status_routes import StatusRoutes
from .table import WidgetModel, WidgetTable

log = logging.getLogger(__name__)

MAX_CONTROL_COMMS_PER_CLIENT = 16


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
    ) -> None:
        self.kernel_id = kernel_id
        self.limits = limits or Limits()
        self._timer = timer
        self.table = WidgetTable()
        self.kernel_session = uuid.uuid4().hex
        self.relay_session = uuid.uuid4().hex
        self.counters: Counter[tuple[str, ...]] = Counter()
        self._clients: dict[str, _ClientInfo] = {}
        self._sync = PeerSync(self)
        self._on_dirty = on_dirty
        self._dirty_models: set[str] = set()
        self._dirty_clients = False
        self._status_routes = StatusRoutes()
        self.outputs = OutputRelay(self, self._mark, on_kernel_write)

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
            info.port.send(envelope)

    def broadcast(self, envelope: Envelope, exclude: str | None = None) -> None:
        started = time.perf_counter()
        for client_id, info in list(self._clients.items()):
            if client_id != exclude:
                try:
                    info.port.send(envelope)
                except MessageError as error:  # unreadable content a JSON client needs parsed
                    self.reject("kernel", "unreadable", f"not sent to {client_id}: {error}")
        if self._timer is not None:
            self._timer("fanout", time.perf_counter() - started)

    # -- kernel -> clients ---------------------------------------------------------------

    def handle_kernel_message(self, env: Envelope) -> None:
        session = env.header.get("session")
        if isinstance(session, str) and session:
            self.kernel_session = session
        msg_type = env.msg_type
        self.count("from_kernel", msg_type)
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

    def take_kernel_writes(self) -> list[Envelope]:
        return self.outputs.take_kernel_writes()

    # -- clients -> kernel ---------------------------------------------------------------

    def handle_client_message(self, port: ClientPort, env: Envelope) -> bool:
        """Handle a frontend's shell message; return whether it should go on to the kernel.

        A message the relay refuses (malformed, or over a limit) goes nowhere; its sender
        is told why, and its model is put back to the table's values."""
        msg_type = env.msg_type
        try:
            if msg_type == "comm_msg":
                return self._client_comm_msg(port, env)
            if msg_type == "comm_open":
                return self._client_comm_open(port, env)
            if msg_type == "comm_close":
                return self._client_comm_close(port, env)
            if msg_type == "comm_info_request":
                return self._client_comm_info(port, env)
        except MessageError as error:
            self.refuse(port, env, "malformed", f"malformed {msg_type}: {error}")
            return False
        except LimitExceeded as error:
            self.refuse(port, env, error.reason, str(error))
            return False
        finally:
            self._sync.flush(env.header)
        return True

    def refuse(self, port: ClientPort, env: Envelope, reason: str, text: str) -> None:
        self.reject("client", reason, f"{port.client_id}: {text}")
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

    def _control_comms(self, port: ClientPort) -> dict[str, None]:
        info = self._clients.get(port.client_id)
        return info.control_comms if info is not None else {}

    def _client_comm_open(self, port: ClientPort, env: Envelope) -> bool:
        comm_id, data = _comm_data(env)
        target = env.content.get("target_name")
        if target == CONTROL_TARGET:
            controls = self._control_comms(port)
            controls[comm_id] = None
            while len(controls) > MAX_CONTROL_COMMS_PER_CLIENT:
                del controls[next(iter(controls))]
            return False
        if target == WIDGET_TARGET:
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
        return True

    def _client_comm_close(self, port: ClientPort, env: Envelope) -> bool:
        comm_id, _ = _comm_data(env)
        controls = self._control_comms(port)
        if comm_id in controls:
            del controls[comm_id]
            return False
        if self._close_model(comm_id):
            peer_copy = compose(
                "comm_close",
                {"comm_id": comm_id, "data": {}},
                session=self.kernel_session,
                parent=env.header,
            )
            self.broadcast(peer_copy, exclude=port.client_id)
        return True

    def _client_comm_info(self, port: ClientPort, env: Envelope) -> bool:
        """The ipywidgets-7 loading path asks which widget comms exist: answer from the
        table at once (it lists every live widget comm); other targets go to the kernel."""
        if env.content.get("target_name") != WIDGET_TARGET:
            return True
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
        return False

    def _client_comm_msg(self, port: ClientPort, env: Envelope) -> bool:
        comm_id, data = _comm_data(env)
        method = data.get("method")
        if comm_id in self._control_comms(port):
            if method == "request_states":
                self.send_snapshot(port, comm_id, env.header)
            else:
                self.reject("client", "unknown_control_method", f"{method!r}")
            return False
        model = self.table.get(comm_id)
        if model is None:
            return True
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
            return False
        if method != "update":
            return True
        if "buffer_paths" in data and not isinstance(data["buffer_paths"], list):
            raise MessageError("'buffer_paths' must be a list")  # ipywidgets would fail on it
        if self._sync.is_pending(env.msg_id):
            raise MessageError(f"msg_id {env.msg_id!r} is already in use by a pending update")
        if self.outputs.is_output(comm_id):
            stripped = self.outputs.strip_client_write(env, data)
            if stripped is None:
                return False
            data = stripped
        check_new_buffers(self.limits, self.table, env.buffers)
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), env.buffers, self.table.store
        )
        if traits:
            self._sync.client_update(port.client_id, env, model, traits, data)
            self._mark(comm_id)
        return True

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
        for info in self._clients.values():
            info.control_comms.clear()
        for model_id in changed:
            self._mark(model_id)
        self._mark(clients=True)

    def count(self, *key: str, by: int = 1) -> None:
        self.counters[key] += by

    def reject(self, source: str, reason: str, detail: str) -> None:
        self.count("rejected", source, reason)
        log.warning(
            "widget relay %s: rejected %s message (%s): %s", self.kernel_id, source, reason, detail
        )

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
