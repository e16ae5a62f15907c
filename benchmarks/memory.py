"""Memory the relay's table holds per idle model, measured with tracemalloc in-process.

The comm_open messages are the ones ipykernel would send for ``IntSlider``s (state from
ipywidgets itself, serialized as jupyter_client does), parsed by the same code the server
runs for its iopub subscription (``wire.envelope_from_parts`` then
``KernelRelay.handle_kernel_message``), with no client attached.

    python -m benchmarks.memory 1667
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
import uuid
from typing import Any

from jupyter_widget_relay.core import wire
from jupyter_widget_relay.core.relay import KernelRelay


def comm_open_parts(sliders: int) -> list[list[bytes]]:
    """The iopub parts (header, parent, metadata, content) of ``sliders`` IntSliders'
    comm_opens: 3 models each (IntSlider, its Layout and its SliderStyle)."""
    import ipywidgets as W
    from ipywidgets.widgets.widget import _remove_buffers

    session = uuid.uuid4().hex
    messages = []
    for i in range(sliders):
        slider = W.IntSlider(value=i)
        for widget in (slider.layout, slider.style, slider):
            state, buffer_paths, buffers = _remove_buffers(widget.get_state())
            assert not buffers
            header = {
                "msg_id": uuid.uuid4().hex,
                "msg_type": "comm_open",
                "session": session,
                "username": "kernel",
                "date": "2026-01-01T00:00:00.000000Z",
                "version": "5.3",
            }
            content = {
                "data": {"state": state, "buffer_paths": buffer_paths},
                "comm_id": widget.model_id,
                "target_name": "jupyter.widget",
                "target_module": None,
            }
            messages.append(
                [
                    json.dumps(part, ensure_ascii=False).encode()
                    for part in (header, {}, {"version": "2.1.0"}, content)
                ]
            )
    return messages


def traced_table(sliders: int) -> dict[str, Any]:
    """Bytes the table holds per model (tracemalloc), and how much of that is state."""
    messages = comm_open_parts(sliders)
    relay = KernelRelay("bench")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for parts in messages:
        relay.handle_kernel_message(wire.envelope_from_parts("iopub", list(parts)))
    relay.take_changes()  # the server's change notifier does this every 0.2 s
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    models = len(relay.table)
    state_bytes = relay.table.state_bytes
    per_model = (after - before) / models
    return {
        "models": models,
        "bytes_per_model": round(per_model, 1),
        "state_bytes_per_model": round(state_bytes / models, 1),
        "bytes_per_model_over_state": round(per_model - state_bytes / models, 1),
    }


if __name__ == "__main__":
    print(json.dumps(traced_table(int(sys.argv[1]) if len(sys.argv) > 1 else 1667), indent=2))
