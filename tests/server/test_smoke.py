from __future__ import annotations

from typing import Any

from ..client import state_of


async def test_slider_roundtrip(start_kernel: Any, connect: Any) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W; s = W.IntSlider(value=3); s.model_id")
    model_id = await a.evaluate("s.model_id")
    reply = await a.request_states()
    assert state_of(reply)[model_id]["value"] == 3
