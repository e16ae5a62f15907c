"""Filling the table from the kernel, for a kernel the relay began to follow late.

The table is exact when the relay saw every widget message since the kernel started (or
restarted). Where it may not have (a kernel that a gateway kept across a restart of this
server, or a relay connection that was lost and remade), the relay asks the kernel which
widget comms it has (``comm_info_request``, on shell). If the table knows them all, it is
complete; otherwise the relay opens its own control comm and asks for every model's state
(``request_states``): the answer comes on iopub, in the kernel's one order, so every
message after it applies on top. Until then the table is incomplete: the client requests
it would answer (control comm, ``comm_info_request``) go to the kernel, as without the
relay.
"""

from __future__ import annotations

import uuid
from collections.abc import Container, Iterable
from typing import Any

from .messages import (
    CONTROL_TARGET,
    WIDGET_TARGET,
    Envelope,
    JSONDict,
    comm_msg,
    compose,
    new_header,
)

#: The widget control protocol version the relay's own control comm speaks (the one
#: jupyterlab_widgets sends).
CONTROL_PROTOCOL_VERSION = "1.0.0"

#: The widget models of a kernel's ``update_states`` answer, one per model:
#: ``(model_id, {"state": ..., "buffer_paths": ...}, buffers)`` as a ``comm_open`` has them.
SeededModel = tuple[str, JSONDict, list[bytes]]


class TableSeed:
    """Whether the table is complete, and the requests that make it so."""

    def __init__(self) -> None:
        self.complete = True
        self._due: list[Envelope] = []
        self._info_request: str | None = None  # msg_id of the comm_info_request sent
        self._control_comm: str | None = None  # the relay's own control comm, while open
        self._states_request: str | None = None  # msg_id of its request_states

    def clear(self) -> None:
        """The kernel restarted: it has no widgets, and the table none either."""
        self.complete = True
        self._due.clear()
        self._info_request = self._control_comm = self._states_request = None

    def begin(self, session: str) -> None:
        """The table may miss models the kernel has: ask the kernel which it has."""
        self.clear()
        self.complete = False
        request = compose(
            "comm_info_request", {"target_name": WIDGET_TARGET}, session=session, channel="shell"
        )
        self._info_request = request.msg_id
        self._due.append(request)

    def take(self) -> list[Envelope]:
        """The seeding requests due for the kernel's shell."""
        due, self._due = self._due, []
        return due

    def comm_info(self, reply: Envelope, known: Container[str], session: str) -> bool:
        """The kernel's ``comm_info_reply``; True if it answered the relay's request.

        If the table knows every widget comm listed, it is complete; otherwise the whole
        state is requested."""
        if self._info_request is None or reply.parent_msg_id != self._info_request:
            return False
        self._info_request = None
        comms = reply.content.get("comms")
        if reply.content.get("status") != "ok" or not isinstance(comms, dict):
            return True  # stays incomplete: the kernel's own answers serve clients
        if all(comm_id in known for comm_id in comms):
            self.complete = True
            return True
        self._control_comm = control = uuid.uuid4().hex
        opened = Envelope(
            new_header("comm_open", session),
            {},
            content={"comm_id": control, "target_name": CONTROL_TARGET, "data": {}},
            # ipywidgets refuses a control comm without a compatible protocol version
            metadata={"version": CONTROL_PROTOCOL_VERSION},
            channel="shell",
        )
        asked = comm_msg(control, {"method": "request_states"}, session=session)
        asked.channel = "shell"
        self._states_request = asked.msg_id
        self._due += [opened, asked]
        return True

    def is_answer(self, comm_id: str, data: JSONDict, parent_msg_id: str | None) -> bool:
        """Whether a kernel comm message answers the relay's ``request_states``.

        ipywidgets answers on the control comm opened last, whoever asked: the answer
        to the relay can come on a browser's control comm (it has the relay's request
        as parent), and a browser's answer on the relay's comm. Either is the kernel's
        whole state, in iopub order, so either seeds the table."""
        if self._control_comm is None or data.get("method") != "update_states":
            return False
        return comm_id == self._control_comm or (
            parent_msg_id is not None and parent_msg_id == self._states_request
        )

    def is_own_comm(self, comm_id: str) -> bool:
        return comm_id == self._control_comm

    def states(self, data: JSONDict, buffers: list[bytes], session: str) -> list[SeededModel]:
        """The models of the kernel's ``update_states`` answer; the table is then complete
        and the relay's control comm is closed."""
        control, self._control_comm = self._control_comm, None
        if control is not None:
            closed = compose(
                "comm_close", {"comm_id": control, "data": {}}, session=session, channel="shell"
            )
            self._due.append(closed)
        self.complete = True
        return list(split_update_states(data, buffers))


def split_update_states(data: JSONDict, buffers: list[bytes]) -> Iterable[SeededModel]:
    """Each model of an ``update_states`` message with its own buffer paths and buffers
    (the message's paths are ``[model_id, "state", *path]``: into the model's entry)."""
    states = data.get("states")
    if not isinstance(states, dict):
        return
    paths: dict[str, tuple[list[Any], list[bytes]]] = {}
    for path, buffer in zip(data.get("buffer_paths") or [], buffers, strict=False):
        if isinstance(path, list) and len(path) > 2 and path[1] == "state":
            own = paths.setdefault(path[0], ([], []))
            own[0].append(path[2:])
            own[1].append(buffer)
    for model_id, entry in states.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("state"), dict):
            continue
        own_paths, own_buffers = paths.get(model_id, ([], []))
        yield model_id, {"state": entry["state"], "buffer_paths": own_paths}, own_buffers
