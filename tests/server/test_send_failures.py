"""A browser the relay cannot send to, against a real server: that browser is detached
and closed, every other browser is still served, and the table still follows the kernel."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_widget_relay.core import close_codes

from ..client import state_of
from .helpers import eventually


def break_socket(port: Any) -> None:
    def write(frame: bytes | str, size: int) -> None:
        raise RuntimeError("the socket broke")

    port._write = write  # the port's one way to its websocket


async def test_a_browser_whose_socket_raises_is_closed_and_the_others_are_served(
    start_kernel: Any, connect: Any, relay_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kernel_id = await start_kernel()
    good, broken = await connect(kernel_id), await connect(kernel_id, "json")
    await good.execute("import ipywidgets as W\ns = W.IntSlider(value=1, max=100)")
    model_id = await good.evaluate("s.model_id")
    for client in (good, broken):
        await client.request_states()
    relay = relay_manager.link_for(kernel_id).relay
    ports = {port.protocol: port for port in relay.ports()}
    break_socket(ports["json"])
    # A change from the kernel (fanned out to both) and one from the good browser.
    await good.execute("s.value = 7")
    await eventually(lambda: broken.closed, timeout=10)
    assert broken.ws.close_code == close_codes.SEND_FAILED
    assert relay.counters["relay", "send_failed"] == 1
    assert [p.protocol for p in relay.ports()] == ["v1"], "the broken browser is detached"
    assert "sending to client" in caplog.text
    good.update(model_id, {"value": 9})
    await good.execute("pass")
    assert await good.evaluate("s.value") == 9
    late = await connect(kernel_id)
    assert state_of(await late.request_states())[model_id]["value"] == 9
    await good.execute("s.value = 11")
    assert good.view[model_id]["value"] == 11
