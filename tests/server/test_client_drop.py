"""A client that drops in the middle of a flood: what it sent before it left still reaches
the kernel, so the table never keeps a value the kernel did not get."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jupyter_widget_relay.core import wire
from jupyter_widget_relay.core.messages import new_header

from ..client import is_idle_after
from .helpers import fault_relay_config, fault_server_config, partial_frame, server_errors


@pytest.fixture
def relay_config() -> dict[str, Any]:
    return fault_relay_config()


@pytest.fixture
def jp_server_config(relay_config: dict[str, Any]) -> dict[str, Any]:
    return fault_server_config(relay_config)


async def test_client_dropping_mid_flood_does_not_affect_others(
    start_kernel: Any,
    connect: Any,
    relay_manager: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two clients flood slider updates and vanish mid-frame (TCP closed, no close
    handshake); the others keep working and the table ends where the kernel is.

    The relay applies and fans out a client's update when it reads it, before the ZMQ
    send; the connection's queued sends must reach the kernel when it closes, or the
    table would keep a flood value the kernel never had and the trait's bookkeeping
    would wait forever for the kernel's idle."""
    kernel_id = await start_kernel()
    a = await connect(kernel_id, "v1")
    b = await connect(kernel_id, "json")
    await a.execute(
        "import ipywidgets as W\ns = W.IntSlider(value=0, max=10**6)\n"
        "seen = []\ns.observe(lambda change: seen.append(change['new']), 'value')"
    )
    model_id = await a.evaluate("s.model_id")
    await a.request_states()
    await b.request_states()
    floods = {"v1": range(1000, 1300), "json": range(2000, 2300)}
    for protocol, flood in floods.items():
        flooder = await connect(kernel_id, protocol)
        await flooder.request_states()
        for value in flood:
            flooder.update(model_id, {"value": value})
        # cut while the relay reads the flood
        await b.wait_for(lambda _, f=flood: b.view[model_id]["value"] in f, timeout=30)
        parts = [
            wire.pack(new_header("comm_msg", flooder.session)),
            b"{}",
            b"{}",
            wire.pack({"comm_id": model_id, "data": {"method": "update", "state": {}}}),
            b"\x00" * 2_000_000,
        ]
        stream = flooder.ws.protocol.stream  # type: ignore[union-attr]
        stream.write(partial_frame(wire.encode_v1("shell", parts)))
        stream.close()  # gone mid-message, no close handshake
        flooder.close()
    for value in (7, 8):  # the others keep working while the flood is handled
        a.update(model_id, {"value": value})
        await b.wait_for(lambda _, v=value: b.view[model_id]["value"] == v, timeout=30)
    # whatever of the flood reached the kernel is handled, in some order with a's updates
    last, same = None, 0
    while same < 3:
        value = await a.evaluate("s.value")
        same, last = (same + 1 if value == last else 0), value
        await asyncio.sleep(0.3)
    relay = relay_manager.link_for(kernel_id).relay
    model = relay.table.get(model_id)
    # Each flooder's updates the relay read (and showed b) before the TCP stream was cut:
    # the last of them reached the kernel, and nothing else did.
    kernel_saw = await a.evaluate("seen")
    for flood in floods.values():
        shown = [
            message["content"]["data"].get("state", {}).get("value")
            for message in b.widget_messages(model_id)
        ]
        read = [value for value in shown if value in flood]
        assert read, "b saw part of the flood"
        assert max(read) in kernel_saw, f"the last update read from a flooder: {max(read)}"
    assert all(v in (7, 8) or any(v in f for f in floods.values()) for v in kernel_saw)
    await b.wait_for(lambda _: b.view[model_id]["value"] == last, timeout=10)
    assert model.state["value"] == a.view[model_id]["value"] == last, "table and views: kernel's"
    a.update(model_id, {"value": 9})
    for client in (a, b):
        request = client.start_execute("pass")
        await client.wait_for(lambda m, r=request: is_idle_after(m, r), timeout=60)
    await b.wait_for(lambda _: b.view[model_id]["value"] == 9, timeout=10)
    assert await a.evaluate("s.value") == 9
    assert a.view[model_id]["value"] == 9
    assert model.state["value"] == 9, "the table follows the kernel"
    assert model.sync is None, f"sync bookkeeping left: {model.sync}"
    assert len([p for p in relay.ports() if getattr(p, "visible", False)]) == 2
    assert not server_errors(caplog), server_errors(caplog)
