"""Admin limits, slow clients and Prometheus metrics against a real server and kernel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..client import is_idle_after, state_of
from .server_process import run_server

LIMITS = {
    "max_message_bytes": 50_000,
    "max_buffer_bytes_per_kernel": 100_000,
    "max_models_per_kernel": 8,
    "max_pending_bytes_per_client": 3_000_000,
}


@pytest.fixture
def relay_config() -> dict[str, Any]:
    return dict(LIMITS)


def test_invalid_limit_stops_the_server() -> None:
    result = run_server("--WidgetRelay.max_pending_bytes_per_client=-1")
    assert result.returncode != 0
    assert "c.WidgetRelay.max_pending_bytes_per_client = -1 is out of range" in result.stderr


def refusals(client: Any, since: int) -> list[str]:
    return [
        m["content"]["text"]
        for m in client.messages[since:]
        if m["header"]["msg_type"] == "stream" and "[widget relay]" in m["content"]["text"]
    ]


async def test_over_limit_messages_are_refused_and_explained(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id, "json")
    await a.execute(
        "import ipywidgets as W\nt = W.Text('keep')\nimgs = [W.Image() for _ in range(3)]"
    )
    text_id = await a.evaluate("t.model_id")
    image_ids = await a.evaluate("[i.model_id for i in imgs]")
    await a.request_states()
    mark_a, mark_b = len(a.messages), len(b.messages)

    a.update(text_id, {"value": "x" * 60_000})
    await a.wait_for(lambda m: "max_message_bytes" in m["content"].get("text", ""), start=mark_a)

    for index, image_id in enumerate(image_ids):
        a.update(image_id, {}, buffer_paths=[["value"]], buffers=[bytes([index]) * 40_000])
    refused = await a.wait_for(
        lambda m: "max_buffer_bytes_per_kernel" in m["content"].get("text", ""), start=mark_a
    )
    assert refused["parent_header"]["msg_type"] == "comm_msg"
    restore = [
        m
        for m in a.messages[mark_a:]
        if m["content"].get("data", {}).get("method") == "echo_update"
        and m["parent_header"]["msg_id"] == refused["parent_header"]["msg_id"]
    ]
    assert restore, "the sender's model is put back to the table's value"

    for index in range(10):
        a.send(
            "comm_open",
            {
                "comm_id": f"client-made-{index}",
                "target_name": "jupyter.widget",
                "data": {
                    "state": {
                        "_model_name": "TextModel",
                        "_model_module": "@jupyter-widgets/controls",
                        "_model_module_version": "2.0.0",
                    },
                    "buffer_paths": [],
                },
            },
        )
    await a.wait_for(
        lambda m: "max_models_per_kernel" in m["content"].get("text", ""), start=mark_a
    )
    relay = relay_manager.link_for(kernel_id).relay
    assert len(relay.table) == 9, "kernel-made models are kept, browser-made ones refused"
    assert not [m for m in relay.table.models if m.startswith("client-made")]
    assert relay.counters["rejected", "client", "too_large"] == 1
    assert relay.counters["rejected", "client", "buffer_limit"] >= 1
    assert relay.counters["rejected", "client", "model_limit"] >= 1
    assert not refusals(b, mark_b), "only the sender is told"
    assert relay.table.get(text_id).state["value"] == "keep"
    assert await a.evaluate("t.value") == "keep"
    assert await b.evaluate("[len(i.value) for i in imgs]") == [40_000, 40_000, 0]


async def test_slow_reader_gets_coalesced_latest_values(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    fast, slow = await connect(kernel_id), await connect(kernel_id)
    await fast.execute("import ipywidgets as W\nt = W.Text()")
    model_id = await fast.evaluate("t.model_id")
    await slow.request_states()
    slow.pause()
    request = await fast.execute(
        "for i in range(300): t.value = str(i) + 'x' * 100_000", timeout=120
    )
    ports = [
        p for p in relay_manager.link_for(kernel_id).relay.ports() if getattr(p, "visible", False)
    ]
    assert any(p.outbox.coalesced for p in ports)
    assert all(p.pending_bytes <= LIMITS["max_pending_bytes_per_client"] for p in ports)
    slow.resume()
    await slow.wait_for(lambda m: is_idle_after(m, request), timeout=60)
    assert slow.view[model_id]["value"] == "299" + "x" * 100_000
    updates = [m for m in slow.widget_messages(model_id) if m["header"]["msg_type"] == "comm_msg"]
    assert len(updates) < 300, "queued updates were coalesced"
    await fast.wait_for(lambda m: is_idle_after(m, request), timeout=60)
    assert fast.view[model_id]["value"] == slow.view[model_id]["value"]


async def test_slow_reader_past_its_limit_is_closed_and_reloads(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    fast, slow = await connect(kernel_id), await connect(kernel_id)
    await fast.execute(
        "import ipywidgets as W\nt = W.Text('start')\n"
        "class Chatty(W.DOMWidget):\n    pass\nc = Chatty()"
    )
    await slow.request_states()
    slow.pause()
    # paced so a reading client keeps up while the paused one falls 15 MB behind
    await fast.execute(
        "import time\nfor i in range(150):\n"
        "    c.send({'blob': 'y' * 100_000}); time.sleep(0.004)\n"
        "t.value = 'final'",
        timeout=120,
    )
    relay = relay_manager.link_for(kernel_id).relay
    for _ in range(100):
        if relay.counters["rejected", "client", "slow_client"]:
            break
        await asyncio.sleep(0.05)
    assert relay.counters["rejected", "client", "slow_client"] == 1
    visible = [p for p in relay.ports() if getattr(p, "visible", False)]
    assert len(visible) == 1, [(p.describe(), p.too_slow, p.closed) for p in visible]
    again = await connect(kernel_id, session=slow.session)
    text_id = await fast.evaluate("t.model_id")
    assert state_of(await again.request_states())[text_id]["value"] == "final"


async def test_metrics_move(start_kernel: Any, connect: Any, jp_fetch: Any) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id)
    await a.execute("import ipywidgets as W\ns = W.IntSlider()")
    model_id = await a.evaluate("s.model_id")

    async def scrape() -> dict[str, float]:
        text = (await jp_fetch("metrics")).body.decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("jupyter_widget_relay") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    before = await scrape()
    assert before[f'jupyter_widget_relay_models{{kernel_id="{kernel_id}"}}'] == 3
    assert before[f'jupyter_widget_relay_clients{{kernel_id="{kernel_id}"}}'] == 2
    await b.request_states()
    a.update(model_id, {"value": 5})
    a.send("comm_msg", {"comm_id": model_id, "data": {"method": "update", "state": 3}})
    await b.wait_for(lambda m: m["content"].get("data", {}).get("method") == "echo_update")
    await a.wait_for(lambda m: "malformed comm_msg" in m["content"].get("text", ""))
    after = await scrape()

    def moved(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert (
        moved('jupyter_widget_relay_messages_total{direction="from_client",msg_type="comm_msg"}')
        >= 2
    )
    assert moved('jupyter_widget_relay_rejections_total{reason="malformed",source="client"}') == 1
    assert moved('jupyter_widget_relay_actions_total{action="snapshot"}') == 1
    assert moved("jupyter_widget_relay_snapshot_seconds_count") == 1
    assert moved("jupyter_widget_relay_fanout_seconds_count") >= 1
    assert after[f'jupyter_widget_relay_state_bytes{{kernel_id="{kernel_id}"}}'] > 0
