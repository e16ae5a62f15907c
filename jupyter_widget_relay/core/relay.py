"""The fan-out core: one per kernel, fed in order by the kernel's iopub and by its clients."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .buffers import TraitValue, join_state, split_state
from .messages import (
    CONTROL_TARGET,
    WIDGET_TARGET,
    Envelope,
    JSONDict,
    MessageError,
    comm_msg,
    compose,
)
from .sync import Pending, TraitSync
from .table import WidgetModel, WidgetTable

log = logging.getLogger(__name__)


class ClientPort(Protocol):
    """What the core needs of a connected frontend; transports implement it."""

    @property
    def client_id(self) -> str: ...

    def send(self, envelope: Envelope) -> None: ...


@dataclass(slots=True, eq=False)
class _ClientInfo:
    port: ClientPort
    control_comms: set[str] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class _PendingRef:
    model_id: str
    client_id: str
    names: tuple[str, ...]


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

    def __init__(self, kernel_id: str, *, on_dirty: Callable[[], None] | None = None) -> None:
        self.kernel_id = kernel_id
        self.table = WidgetTable()
        self.kernel_session = uuid.uuid4().hex
        self.counters: Counter[tuple[str, ...]] = Counter()
        self._clients: dict[str, _ClientInfo] = {}
        self._pending: dict[str, _PendingRef] = {}
        self._in_flux: set[str] = set()
        self._on_dirty = on_dirty
        self._dirty_models: set[str] = set()
        self._dirty_clients = False
        self._corrections: dict[str, dict[str, dict[str, TraitValue]]] = {}

    # -- clients -------------------------------------------------------------------------

    @property
    def client_ids(self) -> list[str]:
        return list(self._clients)

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
        for model in self._models_in_flux():
            for name, sync in list((model.sync or {}).items()):
                sync.forget(port.client_id)
                self._settle(model, name, sync)
        self._flush_corrections({})
        self._mark(clients=True)

    # -- kernel -> clients ---------------------------------------------------------------

    def handle_kernel_message(self, env: Envelope) -> None:
        session = env.header.get("session")
        if isinstance(session, str) and session:
            self.kernel_session = session
        msg_type = env.msg_type
        self.counters["kernel", msg_type] += 1
        try:
            if msg_type == "comm_msg":
                self._kernel_comm_msg(env)
            elif msg_type == "comm_open":
                self._kernel_comm_open(env)
            elif msg_type == "comm_close":
                self._kernel_comm_close(env)
            elif msg_type == "status":
                self.broadcast(env)
                if env.content.get("execution_state") == "idle" and env.parent_msg_id:
                    self._kernel_handled(env.parent_msg_id, env.parent_header)
            else:
                self.broadcast(env)
        except MessageError as error:
            self.reject("kernel", "malformed", str(error))
            self.broadcast(env)
        self._flush_corrections(env.parent_header)

    def _kernel_comm_open(self, env: Envelope) -> None:
        comm_id, data = _comm_data(env)
        if env.content.get("target_name") == WIDGET_TARGET:
            traits = split_state(
                data.get("state", {}), data.get("buffer_paths"), env.buffers, self.table.store
            )
            self.table.open(comm_id, traits)
            self._mark(comm_id)
        self.broadcast(env)

    def _kernel_comm_close(self, env: Envelope) -> None:
        comm_id, _ = _comm_data(env)
        if self.table.close(comm_id) is not None:
            self._in_flux.discard(comm_id)
            self._mark(comm_id)
        self.broadcast(env)

    def _kernel_comm_msg(self, env: Envelope) -> None:
        comm_id, data = _comm_data(env)
        model = self.table.get(comm_id)
        method = data.get("method")
        if model is None or method not in ("update", "echo_update"):
            self.broadcast(env)
            return
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), env.buffers, self.table.store
        )
        parent_id = env.parent_msg_id
        ref = self._pending.get(parent_id) if parent_id and method == "echo_update" else None
        if ref is not None and ref.model_id == comm_id:
            self._own_echo(env, model, traits, ref)
            return
        self.broadcast(env)
        unsettled: dict[str, TraitValue] = {}
        for name, value in traits.items():
            sync = model.sync.get(name) if model.sync else None
            if sync is None:
                unsettled[name] = value
                continue
            if method == "update":
                sync.kernel_update(value, parent_id)
            else:
                sync.confirmed = value
                sync.echo_to_all(value, parent_id or "", None)
            self._refresh(model, name, sync)
            self.table.store.release_all(value.buffers)
            self._settle(model, name, sync)
        if unsettled:
            self.table.apply(model, unsettled)
        self._mark(comm_id)

    def _own_echo(
        self, env: Envelope, model: WidgetModel, traits: dict[str, TraitValue], ref: _PendingRef
    ) -> None:
        """The kernel echoes an update the relay already fanned out: only its sender gets it."""
        sender = self._clients.get(ref.client_id)
        if sender is not None:
            sender.port.send(env)
        msg_id = env.parent_msg_id or ""
        for name, value in traits.items():
            sync = model.sync.get(name) if model.sync else None
            if sync is not None and sync.take(msg_id) is not None:
                sync.confirmed = value
                sync.own_echo(ref.client_id, msg_id, value)
                self._refresh(model, name, sync)
                self._settle(model, name, sync)
            self.table.store.release_all(value.buffers)
        remaining = tuple(n for n in ref.names if n not in traits)
        if remaining:
            ref.names = remaining
        else:
            self._pending.pop(msg_id, None)
        self._mark(model.model_id)

    def _kernel_handled(self, msg_id: str, parent: JSONDict) -> None:
        """The kernel went idle after ``msg_id``: updates it did not echo are now final."""
        ref = self._pending.pop(msg_id, None)
        if ref is None:
            return
        model = self.table.get(ref.model_id)
        if model is None or not model.sync:
            return
        echoed: dict[str, TraitValue] = {}
        for name in ref.names:
            sync = model.sync.get(name)
            pending = sync.take(msg_id) if sync else None
            if sync is None or pending is None:
                continue
            if not pending.corrected:
                sync.confirmed = pending.value
            if sync.expecting.get(ref.client_id) == msg_id:
                echoed[name] = sync.confirmed
                sync.own_echo(ref.client_id, msg_id, sync.confirmed)
            self._refresh(model, name, sync)
            self._settle(model, name, sync)
        sender = self._clients.get(ref.client_id)
        if echoed and sender is not None:
            # The kernel sent no echo (echo off, ipywidgets 7, or echo_update=False):
            # without one the sender's frontend would drop every later echo_update.
            sender.port.send(self._update_message(model, echoed, parent, "echo_update"))

    # -- clients -> kernel ---------------------------------------------------------------

    def handle_client_message(self, port: ClientPort, env: Envelope) -> bool:
        """Handle a frontend's shell message; return whether it should go on to the kernel."""
        msg_type = env.msg_type
        self.counters["client", msg_type] += 1
        try:
            if msg_type == "comm_msg":
                return self._client_comm_msg(port, env)
            if msg_type == "comm_open":
                return self._client_comm_open(port, env)
            if msg_type == "comm_close":
                return self._client_comm_close(port, env)
        except MessageError as error:
            self.reject("client", "malformed", f"{port.client_id}: {error}")
            return False
        finally:
            self._flush_corrections(env.header)
        return True

    def _control_comms(self, port: ClientPort) -> set[str]:
        info = self._clients.get(port.client_id)
        return info.control_comms if info is not None else set()

    def _client_comm_open(self, port: ClientPort, env: Envelope) -> bool:
        comm_id, data = _comm_data(env)
        target = env.content.get("target_name")
        if target == CONTROL_TARGET:
            self._control_comms(port).add(comm_id)
            return False
        if target == WIDGET_TARGET:
            traits = split_state(
                data.get("state", {}), data.get("buffer_paths"), env.buffers, self.table.store
            )
            self.table.open(comm_id, traits)
            self._mark(comm_id)
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
            controls.discard(comm_id)
            return False
        if self.table.close(comm_id) is not None:
            self._in_flux.discard(comm_id)
            self._mark(comm_id)
            peer_copy = compose(
                "comm_close",
                {"comm_id": comm_id, "data": {}},
                session=self.kernel_session,
                parent=env.header,
            )
            self.broadcast(peer_copy, exclude=port.client_id)
        return True

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
            reply = comm_msg(
                comm_id,
                {"method": "update", "state": state, "buffer_paths": paths},
                session=self.kernel_session,
                parent=env.header,
                buffers=buffers,
            )
            port.send(reply)
            self.counters["relay", "request_state"] += 1
            return False
        if method == "update":
            self._client_update(port, env, model, data)
        return True

    def _client_update(
        self, port: ClientPort, env: Envelope, model: WidgetModel, data: JSONDict
    ) -> None:
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), env.buffers, self.table.store
        )
        if not traits:
            return
        msg_id = env.msg_id
        if model.sync is None:
            model.sync = {}
        for name, value in traits.items():
            sync = model.sync.get(name)
            if sync is None:
                current = model.trait(name)
                sync = model.sync[name] = TraitSync(confirmed=current, broadcast=current)
            sync.client_update(Pending(msg_id, port.client_id, value))
        self._in_flux.add(model.model_id)
        self._pending[msg_id] = _PendingRef(model.model_id, port.client_id, tuple(traits))
        self.table.apply(model, traits)
        self._mark(model.model_id)
        echo = comm_msg(
            model.model_id,
            {
                "method": "echo_update",
                "state": data.get("state", {}),
                "buffer_paths": data.get("buffer_paths") or [],
            },
            session=self.kernel_session,
            parent=env.header,
            buffers=env.buffers[: len(data.get("buffer_paths") or [])],
        )
        self.broadcast(echo, exclude=port.client_id)
        self.counters["relay", "echo_fanout"] += 1

    # -- snapshots -----------------------------------------------------------------------

    def send_snapshot(self, port: ClientPort, control_comm_id: str, parent: JSONDict) -> None:
        """Answer ``request_states`` from the table, in ``port``'s place in the stream."""
        states, paths, buffers = self.table.snapshot()
        reply = comm_msg(
            control_comm_id,
            {"method": "update_states", "states": states, "buffer_paths": paths},
            session=self.kernel_session,
            parent=parent,
            buffers=buffers,
        )
        port.send(reply)
        for model in self._models_in_flux():
            for name, sync in (model.sync or {}).items():
                sync.set_shown(port.client_id, model.trait(name))
        self.counters["relay", "snapshot"] += 1

    # -- plumbing ------------------------------------------------------------------------

    def broadcast(self, env: Envelope, exclude: str | None = None) -> None:
        for client_id, info in list(self._clients.items()):
            if client_id != exclude:
                info.port.send(env)

    def reset(self) -> None:
        """Forget every model (kernel restarted or gone); clients stay attached."""
        changed = set(self.table.models)
        self.table.clear()
        self._pending.clear()
        self._in_flux.clear()
        self._corrections.clear()
        for info in self._clients.values():
            info.control_comms.clear()
        for model_id in changed:
            self._mark(model_id)
        self._mark(clients=True)

    def reject(self, source: str, reason: str, detail: str) -> None:
        self.counters["rejected", source, reason] += 1
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

    def _models_in_flux(self) -> list[WidgetModel]:
        models = (self.table.get(model_id) for model_id in list(self._in_flux))
        return [model for model in models if model is not None]

    def _refresh(self, model: WidgetModel, name: str, sync: TraitSync) -> None:
        current = sync.current()
        if model.trait(name) != current:
            self.table.set_trait(model, name, current)

    def _settle(self, model: WidgetModel, name: str, sync: TraitSync) -> None:
        """Once nothing is pending, every client must show the kernel's value."""
        if sync.pending:
            return
        for client_id in sync.stale_clients(self._clients):
            per_client = self._corrections.setdefault(client_id, {})
            per_client.setdefault(model.model_id, {})[name] = sync.confirmed
            sync.set_shown(client_id, sync.confirmed)
        sync.broadcast = sync.confirmed
        sync.divergent = {c: v for c, v in sync.divergent.items() if v != sync.confirmed}
        if sync.idle and model.sync is not None:
            del model.sync[name]
            if not model.sync:
                model.sync = None
                self._in_flux.discard(model.model_id)

    def _flush_corrections(self, parent: JSONDict) -> None:
        if not self._corrections:
            return
        corrections, self._corrections = self._corrections, {}
        groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for client_id, by_model in corrections.items():
            for model_id, traits in by_model.items():
                groups.setdefault((model_id, tuple(sorted(traits))), []).append(client_id)
        for (model_id, names), client_ids in groups.items():
            model = self.table.get(model_id)
            if model is None:
                continue
            values = {name: corrections[client_ids[0]][model_id][name] for name in names}
            update = self._update_message(model, values, parent, "update")
            for client_id in client_ids:
                info = self._clients.get(client_id)
                if info is not None:
                    info.port.send(update)
            self.counters["relay", "correction"] += len(client_ids)

    def _update_message(
        self, model: WidgetModel, values: dict[str, TraitValue], parent: JSONDict, method: str
    ) -> Envelope:
        state, paths, buffers = join_state(values.items())
        return comm_msg(
            model.model_id,
            {"method": method, "state": state, "buffer_paths": paths},
            session=self.kernel_session,
            parent=parent,
            buffers=buffers,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "models": len(self.table),
            "state_bytes": self.table.state_bytes,
            "buffer_bytes": self.table.buffer_bytes,
            "clients": len(self._clients),
        }
