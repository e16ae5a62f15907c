"""Per-client bounds against a real server: a client over one is refused or closed, the
others are served, and no accepted state is lost."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_widget_relay.core import close_codes

from ..client import is_idle_after
from .helpers import eventually

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
    # one update per widget: a later update of the same widget would replace the earlier
    # one while it waits for the kernel (throttle.py), and only the latest counts
    await bad.execute("import ipywidgets as W\nts = [W.Text('start') for _ in range(6)]")
    model_ids = await bad.evaluate("[t.model_id for t in ts]")
    model_id = model_ids[1]
    for client in (bad, good):
        await client.request_states()
    relay = relay_manager.link_for(kernel_id).relay
    cell = await good.start_running("import time; time.sleep(3)")
    requests = [
        bad.update(model_ids[index], {"value": f"{index}" + "x" * 20_000}) for index in range(6)
    ]
    await eventually(
        lambda: relay.counters["rejected", "client", "unhandled_limit"] >= 4, timeout=15
    )
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
    kernel_value = await good.evaluate("ts[1].value")
    assert kernel_value in ("good", requests[1]["content"]["data"]["state"]["value"])
    await eventually(lambda: relay.table.get(model_id).state["value"] == kernel_value, timeout=15)
    await eventually(lambda: not relay.sync._unhandled, timeout=15)
    assert bad.view[model_id]["value"] == good.view[model_id]["value"] == kernel_value


async def test_one_frame_over_the_pending_limit_closes_the_client(
    start_kernel: Any, connect: Any, jp_fetch: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\nt = W.Text('small')")
    a.start_execute(f"t.value = 'x' * {PENDING + 1}")
    await eventually(lambda: a.closed, timeout=20)
    assert a.ws.close_code == close_codes.CLIENT_TOO_SLOW
    # the server goes on serving: a new client runs code, REST answers
    b = await connect(kernel_id)
    assert await b.evaluate("len(t.value)") == PENDING + 1
    assert (await jp_fetch("api", "widget-relay", "status")).code == 200


class TestStateAndSnapshots:
    @pytest.fixture
    def relay_config(self) -> dict[str, Any]:
        return {"max_state_bytes_per_kernel": 300_000}

    async def test_client_json_state_is_bounded_per_kernel(
        self, start_kernel: Any, connect: Any, relay_manager: Any
    ) -> None:
        kernel_id = await start_kernel()
        bad, good = await connect(kernel_id), await connect(kernel_id, "json")
        await bad.execute("import ipywidgets as W\nt = W.Text('start')\ns = W.IntSlider()")
        text_id, slider_id = await bad.evaluate("[t.model_id, s.model_id]")
        for client in (bad, good):
            await client.request_states()
        relay = relay_manager.link_for(kernel_id).relay
        request = bad.update(text_id, {"value": "x" * 400_000})
        await bad.wait_for(
            lambda m: (
                "max_state_bytes_per_kernel" in m["content"].get("text", "")
                and m["parent_header"].get("msg_id") == request["header"]["msg_id"]
            )
        )
        good.update(slider_id, {"value": 9})  # small: still accepted, and relayed at once
        await bad.wait_for(
            lambda m: m["content"].get("data", {}).get("state", {}).get("value") == 9
        )
        await bad.execute("t.value = 'y' * 500_000")  # the kernel's own state: never refused
        await eventually(
            lambda: len(relay.table.get(text_id).state["value"]) == 500_000, timeout=15
        )
        assert relay.table.state_bytes > 300_000, "kernel state is kept, and measured"
        assert await good.evaluate("[len(t.value), s.value]") == [500_000, 9]

    async def test_repeated_request_states_cost_one_snapshot_in_flight(
        self, start_kernel: Any, connect: Any, relay_manager: Any
    ) -> None:
        kernel_id = await start_kernel()
        bad, good = await connect(kernel_id), await connect(kernel_id)
        await good.execute("import ipywidgets as W\nt = W.Text('z' * 600_000)")
        relay = relay_manager.link_for(kernel_id).relay
        bad.pause()  # a tab that stopped reading, and asks for snapshots over and over
        for index in range(40):
            comm_id = f"ctl-{index}"
            bad.send(
                "comm_open",
                {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}},
            )
            bad.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})
        await eventually(lambda: relay.counters["from_client", "comm_msg"] >= 40, timeout=15)
        built = relay.counters["relay", "snapshot"]
        assert built < 40, "the snapshots were not all built"
        assert relay.counters["relay", "snapshot_coalesced"] >= 1
        await good.request_states()  # the other client is served as usual
        bad.resume()
        await eventually(lambda: relay.counters["relay", "snapshot"] >= built, timeout=15)
