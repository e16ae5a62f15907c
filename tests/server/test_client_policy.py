"""Policy before effects: a message the server refuses touches neither table nor peers."""

from __future__ import annotations

from typing import Any

import pytest

from ..client import is_idle_after
from .helpers import SLIDER, eventually, stderr_notices

# Everything JupyterLab needs to run cells and show kernel-made widgets; no comm_msg
ALLOWED = [
    "execute_request",
    "kernel_info_request",
    "comm_open",
    "comm_close",
    "comm_info_request",
    "is_complete_request",
    "complete_request",
    "inspect_request",
    "history_request",
]


@pytest.fixture
def jp_server_config(relay_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_widget_relay": True}},
        "MappingKernelManager": {"allowed_message_types": ALLOWED},
        "WidgetRelay": relay_config,
    }


async def test_disallowed_update_reaches_no_peer(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id, "json")
    await a.execute(SLIDER)
    model_id = await a.evaluate("s.model_id")
    for client in (a, b):
        await client.wait_for(lambda m: m["header"]["msg_type"] == "comm_open")
    relay = relay_manager.link_for(kernel_id).relay
    before = len(b.messages)

    request = a.update(model_id, {"value": 17})
    await a.wait_for(lambda m: bool(stderr_notices(a, request)), timeout=10)
    assert "not allowed" in stderr_notices(a, request)[0]
    # the sender's model is put back to the table's value and stops awaiting an echo
    await a.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "comm_msg"
            and m["parent_header"].get("msg_id") == request["header"]["msg_id"]
        )
    )
    assert a.view[model_id]["value"] == 5
    assert not a._expected_echo

    marker = a.start_execute("pass")
    await b.wait_for(lambda m: is_idle_after(m, marker))
    assert not b.widget_messages(model_id, before), "a peer received the disallowed update"
    assert relay.table.get(model_id).state["value"] == 5
    assert not relay.sync._pending, "a refused update left a pending entry"
    assert relay.counters["rejected", "client", "not_allowed"] == 1
    assert await a.evaluate("s.value") == 5

    # a disallowed request the relay would otherwise answer from its table is refused too
    request = a.send("comm_msg", {"comm_id": model_id, "data": {"method": "request_state"}})
    await eventually(lambda: relay.counters["rejected", "client", "not_allowed"] == 2, timeout=15)
    assert not [
        m
        for m in a.messages
        if m["header"]["msg_type"] == "comm_msg"
        and m["parent_header"].get("msg_id") == request["header"]["msg_id"]
        and m["content"]["data"].get("method") == "update"
    ]
