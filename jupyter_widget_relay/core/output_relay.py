"""The relay's side of Output widgets: capture once, tell every client, write the kernel once.

``OutputCapture`` (output_capture.py) turns kernel messages into nbformat outputs; this
module keeps which models are Output models, sends clients the captured list, batches the
relay's own ``outputs`` writes to the kernel, drops the kernel's echoes of those writes,
and strips browsers' own ``outputs`` writes (each browser would write what it captured).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .buffers import TraitValue, without_traits
from .counters import Action
from .messages import Envelope, JSONDict, comm_msg
from .output_capture import OutputCapture, is_output_model
from .table import WidgetModel, WidgetTable


class OutputHost(Protocol):
    """What Output handling needs from the relay that owns it."""

    table: WidgetTable
    kernel_session: str
    relay_session: str

    def broadcast(self, envelope: Envelope, exclude: str | None = None) -> None: ...

    def count_action(self, action: Action, by: int = 1) -> None: ...


class OutputRelay:
    def __init__(
        self,
        host: OutputHost,
        mark: Callable[[str], None],
        on_kernel_write: Callable[[], None] | None = None,
    ) -> None:
        self._host = host
        self._mark = mark
        self._on_kernel_write = on_kernel_write
        self.capture = OutputCapture()
        self._outputs: set[str] = set()
        self._own_writes: dict[str, str] = {}
        self._writes_due: set[str] = set()

    def clear(self) -> None:
        self.capture.clear()
        self._outputs.clear()
        self._own_writes.clear()
        self._writes_due.clear()

    def is_output(self, model_id: str) -> bool:
        return model_id in self._outputs

    # -- models --------------------------------------------------------------------------

    def opened(self, model: WidgetModel) -> None:
        if is_output_model(model.model_name, model.model_module):
            self._outputs.add(model.model_id)
            self.capture.watch(model.model_id, model.state.get("msg_id"))

    def closed(self, model_id: str) -> None:
        self._outputs.discard(model_id)
        self.capture.forget(model_id)

    def changed(self, model: WidgetModel, names: set[str] | dict[str, TraitValue]) -> None:
        """The model's traits ``names`` changed: follow a new ``msg_id``."""
        if model.model_id in self._outputs and "msg_id" in names:
            self.capture.watch(model.model_id, model.state.get("msg_id"))

    # -- kernel --------------------------------------------------------------------------

    def is_own_echo(self, parent_msg_id: str | None) -> bool:
        """An ``echo_update`` of the relay's own write: clients already have the list."""
        return parent_msg_id in self._own_writes

    def kernel_idle(self, parent_msg_id: str) -> None:
        self._own_writes.pop(parent_msg_id, None)

    def capture_output(self, env: Envelope) -> None:
        """Put a captured output into its Output model, then send every client the list."""
        model_id = self.capture.target(env)
        table = self._host.table
        model = table.get(model_id) if model_id else None
        if model is None:
            return
        current = model.state.get("outputs")
        outputs = self.capture.apply(model.model_id, list(current or []), env)
        if outputs is None:
            return
        table.apply(model, {"outputs": TraitValue(outputs)})
        self._mark(model.model_id)
        update = comm_msg(
            model.model_id,
            {"method": "update", "state": {"outputs": outputs}, "buffer_paths": []},
            session=self._host.kernel_session,
            parent=env.parent_header,
        )
        self._host.broadcast(update)
        self._host.count_action("output_captured")
        if model.model_id not in self._writes_due:
            self._writes_due.add(model.model_id)
            if len(self._writes_due) == 1 and self._on_kernel_write is not None:
                self._on_kernel_write()

    def take_kernel_writes(self) -> list[Envelope]:
        """One ``outputs`` write per captured Output model since the last call, for the
        kernel's shell channel (so the kernel's ``Output.outputs`` follows, once)."""
        writes = []
        for model_id in sorted(self._writes_due):
            model = self._host.table.get(model_id)
            if model is None:
                continue
            state = {"outputs": model.state.get("outputs", [])}
            write = comm_msg(
                model_id,
                {"method": "update", "state": state, "buffer_paths": []},
                session=self._host.relay_session,
            )
            write.channel = "shell"
            self._own_writes[write.msg_id] = model_id
            writes.append(write)
        self._writes_due.clear()
        self._host.count_action("output_write", by=len(writes))
        return writes

    # -- clients -------------------------------------------------------------------------

    def strip_client_write(self, env: Envelope, data: JSONDict) -> JSONDict | None:
        """Browsers write the ``outputs`` they captured; the relay captured them already
        and writes them to the kernel once. Drop that key (also when a client sends it as
        a binary buffer). Returns the update's data to go on with, or None if nothing
        else is left."""
        state = data.get("state")
        if not isinstance(state, dict):
            return data
        paths = data.get("buffer_paths") or []
        in_buffers = any(isinstance(path, list) and path[:1] == ["outputs"] for path in paths)
        if "outputs" not in state and not in_buffers:
            return data
        self._host.count_action("output_write_dropped")
        data, env.buffers = without_traits(data, env.buffers, ["outputs"])
        if not data["state"] and not data["buffer_paths"]:
            return None
        env.replace_content({**env.content, "data": data})
        return data
