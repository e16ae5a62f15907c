"""Per-trait bookkeeping that lets peers see a change at once while the kernel stays final.

For a trait that clients are changing, the relay remembers:

- ``confirmed``: the last value the kernel published or accepted;
- ``pending``: client updates forwarded to the kernel but not yet handled by it;
- what each client's frontend shows. Every frontend receives the same stream, so
  most show ``broadcast``; ``divergent`` holds the exceptions. A frontend that has
  sent its own update drops other ``echo_update``s for that trait until its own echo
  returns (ipywidgets' widget.ts), which ``expecting`` records.

Only attached clients have entries: ``forget`` removes a client that left, and nothing
may add it again (its frontend is gone, so no correction can reach it and ``idle``
would never hold again).

When the last pending update is handled, the kernel's value is final and every
client that shows something else gets a plain ``update`` (which frontends always apply).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .buffers import TraitValue


@dataclass(slots=True, eq=False)
class Pending:
    msg_id: str
    client_id: str
    value: TraitValue
    corrected: bool = False  # the kernel published its own value while handling it


@dataclass(slots=True, eq=False)
class TraitSync:
    confirmed: TraitValue
    broadcast: TraitValue
    pending: list[Pending] = field(default_factory=list)
    divergent: dict[str, TraitValue] = field(default_factory=dict)
    expecting: dict[str, str] = field(default_factory=dict)

    def shown(self, client_id: str) -> TraitValue:
        return self.divergent.get(client_id, self.broadcast)

    def set_shown(self, client_id: str, value: TraitValue) -> None:
        if value == self.broadcast:
            self.divergent.pop(client_id, None)
        else:
            self.divergent[client_id] = value

    def current(self) -> TraitValue:
        """The value the table serves: the newest unhandled update, else the kernel's."""
        if self.pending and not self.pending[-1].corrected:
            return self.pending[-1].value
        return self.confirmed

    def echo_to_all(self, value: TraitValue, source_msg_id: str, sender: str | None) -> None:
        """An ``echo_update`` for ``source_msg_id`` goes to every client except ``sender``.

        Frontends waiting for their own echo drop it and keep what they showed.
        """
        kept = {
            client: self.shown(client)
            for client, awaited in self.expecting.items()
            if client != sender and awaited != source_msg_id
        }
        self.broadcast = value
        self.divergent = {c: v for c, v in kept.items() if v != value}

    def client_update(self, pending: Pending) -> None:
        self.pending.append(pending)
        self.echo_to_all(pending.value, pending.msg_id, pending.client_id)
        self.divergent.pop(pending.client_id, None)
        self.expecting[pending.client_id] = pending.msg_id

    def own_echo(self, client_id: str, msg_id: str, value: TraitValue) -> None:
        """``client_id`` receives the echo of its own update ``msg_id``.

        A client always awaits its latest update's echo until it arrives, so one that
        awaits another echo drops this one, and one that awaits none has left.
        """
        if self.expecting.get(client_id) != msg_id:
            return
        del self.expecting[client_id]
        self.set_shown(client_id, value)

    def take(self, msg_id: str) -> Pending | None:
        for index, pending in enumerate(self.pending):
            if pending.msg_id == msg_id:
                return self.pending.pop(index)
        return None

    def rename(self, msg_id: str, new_msg_id: str) -> None:
        """The pending update ``msg_id`` reaches the kernel as ``new_msg_id``."""
        for pending in self.pending:
            if pending.msg_id == msg_id:
                pending.msg_id = new_msg_id

    def kernel_update(self, value: TraitValue, parent_msg_id: str | None) -> None:
        """A plain ``update`` from the kernel reached every client."""
        self.confirmed = value
        self.broadcast = value
        self.divergent.clear()
        for pending in self.pending:
            if pending.msg_id == parent_msg_id:
                pending.corrected = True

    def stale_clients(self, clients: Iterable[str]) -> list[str]:
        """Clients that show something other than the kernel's final value."""
        target = self.confirmed
        if self.broadcast != target:
            return [c for c in clients if self.shown(c) != target]
        return [c for c, v in self.divergent.items() if v != target]

    def forget(self, client_id: str) -> None:
        self.divergent.pop(client_id, None)
        self.expecting.pop(client_id, None)

    @property
    def idle(self) -> bool:
        return not self.pending and not self.divergent and not self.expecting
