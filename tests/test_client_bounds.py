"""Per-client bounds against a real server: a client over one is refused or closed, the
others are served, and no accepted state is lost."""

from __future__ import annotations

from typing import Any

import pytest

from .client import is_idle_after
from .test_kernel_authority import eventually

UNHANDLED = 50_000
PENDING = 500_000


@pytest.fixture
def relay_config() -> dict[str, Any]:
    return {"max_unhandled_bytes_per_client": UNHANDLED, "max_pending_bytes_per_client": PENDING}


async def test_updates_the_kernel_has_not_handled_are_bounded_per_client(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    bad, good = await connect(kernel_id), await connect(kernel_id, "json")
    await bad.execute("import ipywidgets as W\nt = W.Text('start')")
    model_id = await bad.evaluate("t.model_id")
    for client in (bad, good):
        await client.request_states()
    relay = relay_manager.link_for(kernel_id).relay
    cell = await good.start_running("import time; time.sleep(3)")
    requests = [bad.update(model_id, {"value": f"{index}" + "x" * 20_000}) for index in range(6)]
    await eventually(lambda: relay.counters["rejected", "client", "unhandled_limit"] >= 4)
    held = max(relay.sync._unhandled.values())
    assert held <= UNHANDLED, "the relay holds no more than the limit for one client"
    refused = [
        m
        for m in bad.messages
        if m["header"]["msg_type"] == "stream"
        and "max_unhandled_bytes_per_client" in m["content"]["text"]
    ]
    assert {m["parent_header"]["msg_id"] for m in refused} == {
        r["header"]["msg_id"] for r in requests[2:]
    }
    # the other client is served as usual, at once
    good.update(model_id, {"value": "good"})
    await bad.wait_for(
        lambda m: m["content"].get("data", {}).get("state", {}).get("value") == "good"
    )
    await good.wait_for(lambda m: is_idle_after(m, cell), timeout=20)
    kernel_value = await good.evaluate("t.value")
    assert kernel_value in ("good", requests[1]["content"]["data"]["state"]["value"])
    await eventually(lambda: relay.table.get(model_id).state["value"] == kernel_value)
    await eventually(lambda: not relay.sync._unhandled)
    assert bad.view[model_id]["value"] == good.view[model_id]["value"] == kernel_value


async def test_one_frame_over_the_pending_limit_closes_the_client(
    start_kernel: Any, connect: Any, jp_fetch: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\nt = W.Text('small')")
    a.start_execute(f"t.value = 'x' * {PENDING + 1}")
    await eventually(lambda: a.closed, timeout=20)
    assert a.ws.close_code == 4008
    # the server goes on serving: a new client runs code, REST answers
    b = await connect(kernel_id)
    assert await b.evaluate("len(t.value)") == PENDING + 1
    assert (await jp_fetch("api", "widget-relay", "status")).code == 200
