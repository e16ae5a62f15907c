"""Peer sync: fan a client's update out at once, then converge on what the kernel decides.

The per-trait state machine is in ``trait_sync.TraitSync``; this module routes messages to it
and sends what it concludes (the sender's echo, synthesized echoes, corrections).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from .buffers import TraitValue, join_state
from .counters import Action
from .messages import Envelope, JSONDict, comm_msg
from .table import WidgetModel, WidgetTable
from .trait_sync import Pending, TraitSync


class SyncHost(Protocol):
    """What peer sync needs from the relay that owns it."""

    table: WidgetTable
    kernel_session: str

    @property
    def client_ids(self) -> list[str]: ...

    def is_attached(self, client_id: str) -> bool: ...

    def send_to(self, client_id: str, envelope: Envelope) -> None: ...

    def broadcast(self, envelope: Envelope, exclude: str | None = None) -> None: ...

    def count_action(self, action: Action, by: int = 1) -> None: ...

    def check_model(self, model_id: str) -> None: ...


@dataclass(slots=True, eq=False)
class _PendingRef:
    """A client update the kernel has not yet handled (until its idle status)."""

    model_id: str
    client_id: str
    names: tuple[str, ...]
    size: int  # bytes of its JSON state and buffers, held until the kernel handled it
    # traits for which the kernel published a plain ``update`` while handling it: their
    # value is the kernel's own word; for the others only an echo (or nothing) came
    stated: set[str] = field(default_factory=set)
    # the relay echoed it to its sender at once (see throttle.py): the kernel's echo is
    # then for nobody
    released: bool = False


class PeerSync:
    def __init__(self, host: SyncHost) -> None:
        self._host = host
        self._pending: dict[str, _PendingRef] = {}
        self._in_flux: set[str] = set()
        self._corrections: dict[str, dict[str, dict[str, TraitValue]]] = {}
        self._unhandled: Counter[str] = Counter()  # client id -> bytes of its pending updates

    def reset(self) -> None:
        self._pending.clear()
        self._unhandled.clear()
        self._in_flux.clear()
        self._corrections.clear()

    def forget_model(self, model_id: str) -> None:
        self._in_flux.discard(model_id)

    # -- clients -------------------------------------------------------------------------

    def client_update(
        self,
        client_id: str,
        env: Envelope,
        model: WidgetModel,
        traits: dict[str, TraitValue],
        data: JSONDict,
        buffers: list[bytes],
        size: int = 0,
        released: bool = False,
    ) -> None:
        """Apply a client's update to the table and send it to every peer at once.

        A ``released`` update is echoed to its sender as well, at once: its frontend then
        awaits no echo from the kernel (the relay paces the kernel, see throttle.py)."""
        msg_id = env.msg_id
        # A port the relay has already detached (a slow client closing) may still send:
        # its update counts, but its frontend is gone and must leave no bookkeeping.
        departed = not self._host.is_attached(client_id)
        if model.sync is None:
            model.sync = {}
        for name, value in traits.items():
            sync = model.sync.get(name)
            if sync is None:
                current = model.trait(name)
                sync = model.sync[name] = TraitSync(confirmed=current, broadcast=current)
            sync.client_update(Pending(msg_id, client_id, value))
            if departed:
                sync.forget(client_id)
        self._in_flux.add(model.model_id)
        self._pending[msg_id] = _PendingRef(
            model.model_id, client_id, tuple(traits), size, released=released
        )
        self._unhandled[client_id] += size
        self._host.table.apply(model, traits)
        paths = data.get("buffer_paths") or []
        echo = comm_msg(
            model.model_id,
            {"method": "echo_update", "state": data.get("state", {}), "buffer_paths": paths},
            session=self._host.kernel_session,
            parent=env.header,
            buffers=buffers[: len(paths)],
        )
        self._host.broadcast(echo, exclude=None if released else client_id)
        self._host.count_action("echo_fanout")
        if released and not departed:
            for name, value in traits.items():
                model.sync[name].own_echo(client_id, msg_id, value)

    def absorb(self, older: str, newer: str, size: int) -> None:
        """The client update ``older``, which was waiting for the kernel, is merged into
        ``newer`` (see throttle.py): the kernel will handle both as ``newer``, and
        ``older``'s values of traits ``newer`` also sets are never sent. ``size`` is the
        merged update's bytes."""
        old = self._pending.pop(older, None)
        new = self._pending.get(newer)
        if old is None:
            return
        self._count_unhandled(old.client_id, -old.size)
        if new is None:
            return
        self._count_unhandled(new.client_id, size - new.size)
        new.size = size
        model = self._host.table.get(old.model_id)
        for name in old.names:
            sync = model.sync.get(name) if model is not None and model.sync else None
            if sync is None:
                continue
            if name in new.names:
                sync.take(older)
            else:
                sync.rename(older, newer)
        new.names = tuple(dict.fromkeys(new.names + old.names))

    def joined(self, client_id: str) -> None:
        """A client loaded a snapshot: it shows the table's current values."""
        for model in self.models_in_flux():
            for name, sync in (model.sync or {}).items():
                sync.set_shown(client_id, model.trait(name))

    def _count_unhandled(self, client_id: str, change: int) -> None:
        self._unhandled[client_id] += change
        if self._unhandled[client_id] <= 0:
            del self._unhandled[client_id]

    def unhandled_bytes(self, client_id: str) -> int:
        return self._unhandled.get(client_id, 0)

    def is_pending(self, msg_id: str) -> bool:
        return msg_id in self._pending

    def left(self, client_id: str) -> None:
        for model in self.models_in_flux():
            for name, sync in list((model.sync or {}).items()):
                sync.forget(client_id)
                self._settle(model, name, sync)
        self.flush({})

    # -- kernel --------------------------------------------------------------------------

    def owns_echo(self, env: Envelope, model: WidgetModel) -> _PendingRef | None:
        parent_id = env.parent_msg_id
        ref = self._pending.get(parent_id) if parent_id else None
        return ref if ref is not None and ref.model_id == model.model_id else None

    def own_echo(
        self, env: Envelope, model: WidgetModel, traits: dict[str, TraitValue], ref: _PendingRef
    ) -> None:
        """The kernel echoes an update the relay already fanned out: only its sender gets
        it, unless the relay echoed it to the sender already."""
        if not ref.released:
            self._host.send_to(ref.client_id, env)
        msg_id = env.parent_msg_id or ""
        for name, value in traits.items():
            sync = model.sync.get(name) if model.sync else None
            if sync is not None and sync.take(msg_id) is not None:
                sync.confirmed = value
                sync.own_echo(ref.client_id, msg_id, value)
                self._refresh(model, name, sync)
                self._settle(model, name, sync)
            self._host.table.store.release_all(value.buffers)

    def kernel_values(
        self, model: WidgetModel, traits: dict[str, TraitValue], method: str, parent_id: str | None
    ) -> dict[str, TraitValue]:
        """Kernel values (already sent to every client) for traits in flux; returns the rest."""
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
            self._host.table.store.release_all(value.buffers)
            self._settle(model, name, sync)
        return unsettled

    def kernel_stated(
        self, parent_id: str | None, model_id: str, traits: dict[str, TraitValue]
    ) -> None:
        """The kernel published a plain ``update`` of ``model_id`` while handling
        ``parent_id``: for those traits, that is the value it kept."""
        ref = self._pending.get(parent_id) if parent_id else None
        if ref is not None and ref.model_id == model_id:
            ref.stated.update(traits)

    def kernel_handled(self, msg_id: str, parent: JSONDict) -> None:
        """The kernel went idle after ``msg_id``: its values are now final.

        An echo carries the client's raw value, before the kernel validated it, and a
        kernel without echoes says nothing: a value the kernel refused (a failed
        validation raises, and sends no correction) looks just like one it kept. Where
        the kernel did not state a trait's value with a plain ``update``, the relay asks
        it for the model's state (``check_model``) and ends on that."""
        ref = self._pending.pop(msg_id, None)
        if ref is None:
            return
        self._count_unhandled(ref.client_id, -ref.size)
        if any(name not in ref.stated for name in ref.names) and ref.model_id in self._host.table:
            self._host.check_model(ref.model_id)
        model = self._host.table.get(ref.model_id)
        if model is None or not model.sync:
            return
        echoed: dict[str, TraitValue] = {}
        for name in ref.names:
            sync = model.sync.get(name) if model.sync else None  # settling empties it
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
        if echoed:
            # The kernel sent no echo (echo off, ipywidgets 7, or echo_update=False):
            # without one the sender's frontend would drop every later echo_update.
            self._host.send_to(
                ref.client_id,
                update_message(self._host.kernel_session, model, echoed, parent, "echo_update"),
            )

    def kernel_state(
        self, model: WidgetModel, traits: dict[str, TraitValue]
    ) -> dict[str, TraitValue]:
        """The kernel's whole state of ``model`` (the answer to ``check_model``).

        Traits a client update is still pending for are left to that update's own check.
        Traits in flux end on the kernel's value through the usual corrections; returns
        the other traits whose table value differs (the caller applies and sends them)."""
        changed: dict[str, TraitValue] = {}
        store = self._host.table.store
        for name, value in traits.items():
            sync = model.sync.get(name) if model.sync else None
            if sync is None:
                if model.trait(name) != value:
                    changed[name] = value
                    continue
            elif not sync.pending:
                sync.confirmed = value
                self._refresh(model, name, sync)
                self._settle(model, name, sync)
            store.release_all(value.buffers)
        return changed

    # -- convergence ---------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def models_in_flux(self) -> list[WidgetModel]:
        models = (self._host.table.get(model_id) for model_id in list(self._in_flux))
        return [model for model in models if model is not None]

    def _refresh(self, model: WidgetModel, name: str, sync: TraitSync) -> None:
        current = sync.current()
        if model.trait(name) != current:
            self._host.table.set_trait(model, name, current)

    def _settle(self, model: WidgetModel, name: str, sync: TraitSync) -> None:
        """Once nothing is pending, every client must show the kernel's value."""
        if sync.pending:
            return
        for client_id in sync.stale_clients(self._host.client_ids):
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

    def flush(self, parent: JSONDict) -> None:
        """Send the corrections concluded while handling one message, grouped by content."""
        if not self._corrections:
            return
        corrections, self._corrections = self._corrections, {}
        groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for client_id, by_model in corrections.items():
            for model_id, traits in by_model.items():
                groups.setdefault((model_id, tuple(sorted(traits))), []).append(client_id)
        for (model_id, names), client_ids in groups.items():
            model = self._host.table.get(model_id)
            if model is None:
                continue
            values = {name: corrections[client_ids[0]][model_id][name] for name in names}
            update = update_message(self._host.kernel_session, model, values, parent, "update")
            for client_id in client_ids:
                self._host.send_to(client_id, update)
            self._host.count_action("correction", by=len(client_ids))


def update_message(
    session: str,
    model: WidgetModel,
    values: dict[str, TraitValue],
    parent: JSONDict,
    method: str = "update",
) -> Envelope:
    state, paths, buffers = join_state(values.items())
    data: dict[str, Any] = {"method": method, "state": state, "buffer_paths": paths}
    return comm_msg(model.model_id, data, session=session, parent=parent, buffers=buffers)
