"""The relay paces browsers' widget updates to the kernel, so browsers need not.

ipywidgets' frontend (widget.ts) keeps one update per model in flight: it sends the next
only after the kernel's idle status for the last one, keeping just the latest values
meanwhile. While a cell runs, the other steps of a drag would wait in the browser, and no
other browser would see them. The relay instead releases the browser as soon as it has
accepted an update (see ``release_status``) and takes over the pacing toward the kernel:
per model and browser at most one update is with the kernel; later ones wait here,
merged (the latest value of each trait, buffers included), and go when the kernel has
handled the one it has. What the kernel receives is what the browser itself would have
sent.

A merged update keeps the header of the newest update in it (the kernel's echo and
statuses then name that update); it is sent on the relay's own shell connection, so it
reaches the kernel even if its browser has gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .buffers import MISSING, TraitValue, join_state
from .messages import Envelope, JSONDict, compose
from .wire import pack

Key = tuple[str, str]  # (model id, client id)


def release_status(session: str, update: Envelope, parent_type: str) -> Envelope:
    """The idle status that ends a browser's update for widget.ts without changing the
    kernel status it shows.

    widget.ts counts an update as handled on an iopub ``idle`` whose parent is that
    update (``parent_header.msg_id``); JupyterLab's kernel connection lets an idle change
    the displayed kernel status unless the parent's ``msg_type`` is in the page's
    ``untracked_message_types``. So the parent is the update's header with ``msg_type``
    set to ``parent_type``, a type of that list."""
    parent = {**update.header, "msg_type": parent_type}
    return compose("status", {"execution_state": "idle"}, session=session, parent=parent)


PREFERRED_RELEASE_TYPES = ("comm_msg", "comm_info_request", "kernel_info_request")


def release_type_for(untracked_message_types: Iterable[str]) -> str | None:
    """The parent msg_type for ``release_status``, given the server's
    ``untracked_message_types`` (what JupyterLab's page config lists): None if the list
    is empty, and then no status can end an update without changing the kernel status."""
    untracked = list(untracked_message_types)
    for msg_type in PREFERRED_RELEASE_TYPES:
        if msg_type in untracked:
            return msg_type
    return untracked[0] if untracked else None


@dataclass(slots=True, eq=False)
class _Waiting:
    header: JSONDict
    parent_header: JSONDict
    metadata: JSONDict
    traits: dict[str, TraitValue]
    sizes: dict[str, int]  # bytes of each trait's JSON and buffers, counted once


class UpdateThrottle:
    """Which browser updates are with the kernel, and which wait for it."""

    def __init__(self) -> None:
        self._with_kernel: dict[str, Key] = {}  # msg_id -> key, until the kernel's idle
        self._busy: dict[Key, str] = {}  # key -> msg_id of the update the kernel has
        self._waiting: dict[Key, _Waiting] = {}
        self._due: list[Envelope] = []

    def __bool__(self) -> bool:
        return bool(self._with_kernel or self._waiting or self._due)

    @property
    def waiting_count(self) -> int:
        return len(self._waiting) + len(self._due)

    def admit(self, key: Key, msg_id: str) -> bool:
        """Whether the update ``msg_id`` may go to the kernel now; if so it is the one
        the kernel has for ``key`` until it is handled."""
        if key in self._busy:
            return False
        self._busy[key] = msg_id
        self._with_kernel[msg_id] = key
        return True

    def hold(self, key: Key, env: Envelope, traits: dict[str, TraitValue]) -> str | None:
        """Keep ``env``'s ``traits`` for ``key`` until the kernel has handled the update it
        has. Returns the msg_id of the waiting update this one was merged into, if any."""
        waiting = self._waiting.get(key)
        older = waiting.header.get("msg_id") if waiting is not None else None
        sizes = {name: _size(value) for name, value in traits.items()}
        if waiting is not None:
            traits, sizes = {**waiting.traits, **traits}, {**waiting.sizes, **sizes}
        self._waiting[key] = _Waiting(env.header, env.parent_header, env.metadata, traits, sizes)
        return older if isinstance(older, str) else None

    def waiting_size(self, key: Key) -> int:
        """Bytes of the JSON and buffers of the update waiting for ``key``."""
        waiting = self._waiting.get(key)
        return sum(waiting.sizes.values()) if waiting is not None else 0

    def handled(self, msg_id: str) -> bool:
        """The kernel went idle after ``msg_id``: the update waiting behind it (if any) is
        due. Returns whether one became due."""
        key = self._with_kernel.pop(msg_id, None)
        if key is None or self._busy.get(key) != msg_id:
            return False
        del self._busy[key]
        waiting = self._waiting.pop(key, None)
        if waiting is None:
            return False
        update = _message(key[0], waiting)
        self.admit(key, update.msg_id)
        self._due.append(update)
        return True

    def take(self) -> list[Envelope]:
        """The merged updates due to go to the kernel, in order."""
        due, self._due = self._due, []
        return due

    def forget_model(self, model_id: str) -> None:
        """The model is gone: its waiting updates have nothing left to change."""
        for key in [key for key in self._waiting if key[0] == model_id]:
            del self._waiting[key]
        self._due = [env for env in self._due if env.content.get("comm_id") != model_id]

    def clear(self) -> None:
        """The kernel restarted or went away: what waited for it goes with it."""
        self._with_kernel.clear()
        self._busy.clear()
        self._waiting.clear()
        self._due.clear()


def _size(value: TraitValue) -> int:
    json_bytes = len(pack(value.json)) if value.json is not MISSING else 0
    return json_bytes + sum(len(blob) for _, blob in value.buffers)


def _message(model_id: str, waiting: _Waiting) -> Envelope:
    state, paths, buffers = join_state(waiting.traits.items())
    data = {"method": "update", "state": state, "buffer_paths": paths}
    return Envelope(
        waiting.header,
        waiting.parent_header,
        content={"comm_id": model_id, "data": data},
        metadata=waiting.metadata,
        buffers=buffers,
        channel="shell",
    )
