"""The relay in a real jupyter_server with real ipykernel kernels and ipywidgets."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from ..client import is_idle_after, state_of

SLIDERS = "import ipywidgets as W\ns = W.IntSlider(value=1, max=10**6)"


def widget_stream(client: Any) -> list[str]:
    return [m["header"]["msg_id"] for m in client.widget_messages()]


async def test_v1_and_json_clients_see_one_stream(start_kernel: Any, connect: Any) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id, "v1")
    b = await connect(kernel_id, "json")
    request = await a.execute(SLIDERS + "\nfor i in range(40): s.value = i")
    await b.wait_for(lambda m: is_idle_after(m, request))
    assert len(widget_stream(a)) >= 40
    assert widget_stream(a) == widget_stream(b)
    stream_a = [m["header"]["msg_id"] for m in a.messages if m["channel"] == "iopub"]
    stream_b = [m["header"]["msg_id"] for m in b.messages if m["channel"] == "iopub"]
    end_a = stream_a.index(stream_b[-1]) + 1  # b joined later: it sees a's suffix
    assert stream_a[end_a - len(stream_b) : end_a] == stream_b, "one iopub order for both"


async def test_late_joiner_gets_snapshot_while_kernel_busy(start_kernel: Any, connect: Any) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    b = await connect(kernel_id, "json")
    await a.execute(SLIDERS)
    model_id = await a.evaluate("s.model_id")
    cell = await a.start_running("import time; time.sleep(5)")
    b.update(model_id, {"value": 42})
    c = await connect(kernel_id)
    reply = await c.request_states()
    assert state_of(reply)[model_id]["value"] == 42
    assert not any(is_idle_after(m, cell) for m in a.messages), "cell finished before snapshot"
    await a.wait_for(lambda m: is_idle_after(m, cell), timeout=15)
    assert await a.evaluate("s.value") == 42


async def test_image_bytes_survive_snapshot(start_kernel: Any, connect: Any) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W, os\nimg = W.Image(value=os.urandom(300_000))")
    model_id = await a.evaluate("img.model_id")
    expected = base64.b64decode(
        await a.evaluate("__import__('base64').b64encode(img.value).decode()")
    )
    for protocol in ("v1", "json"):
        c = await connect(kernel_id, protocol)
        reply = await c.request_states()
        assert state_of(reply)[model_id]["value"] == expected


async def test_comm_close_and_restart_clear_the_table(
    start_kernel: Any, connect: Any, relay_manager: Any, jp_fetch: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\nt = W.Text()\ns = W.IntSlider()")
    table = relay_manager.link_for(kernel_id).relay.table
    text_id = await a.evaluate("t.model_id")
    assert text_id in table and len(table) == 6
    await a.execute("t.close()")
    assert text_id not in table
    assert any(
        m["header"]["msg_type"] == "comm_close" and m["content"]["comm_id"] == text_id
        for m in a.messages
    )
    await jp_fetch("api", "kernels", kernel_id, "restart", method="POST", body="{}")
    await a.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "status" and m["content"]["execution_state"] == "restarting"
        )
    )
    assert len(relay_manager.link_for(kernel_id).relay.table) == 0
    fresh = await connect(kernel_id)
    assert (await fresh.request_states())["content"]["data"]["states"] == {}


def check_widget_state_document(document: dict[str, Any]) -> None:
    assert document["version_major"] == 2 and document["version_minor"] == 0
    for entry in document["state"].values():
        assert {"model_name", "model_module", "model_module_version", "state"} <= set(entry)
        assert isinstance(entry["state"], dict)
        for buffer in entry.get("buffers", []):
            assert buffer["encoding"] == "base64" and isinstance(buffer["path"], list)
            base64.b64decode(buffer["data"], validate=True)


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    for entry in document["state"].values():
        if "buffers" in entry:
            entry["buffers"].sort(key=lambda b: json.dumps(b["path"]))
    return document


async def test_rest_document_matches_kernel(start_kernel: Any, connect: Any, jp_fetch: Any) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute(
        "import ipywidgets as W\n"
        "s = W.IntSlider(value=7, description='n')\n"
        "img = W.Image(value=b'\\x89PNG-not-really', format='png')\n"
        "box = W.HBox([s, img, W.Text('hi')])\n"
        "s.value = 9"
    )
    response = await jp_fetch("api", "widget-relay", "kernels", kernel_id, "state")
    document = json.loads(response.body)
    check_widget_state_document(document)
    kernel_document = await a.evaluate("W.Widget.get_manager_state()")
    assert normalized(document) == normalized(kernel_document)


async def test_rest_summaries_and_404(start_kernel: Any, connect: Any, jp_fetch: Any) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute(SLIDERS)
    listing = json.loads((await jp_fetch("api", "widget-relay", "kernels")).body)
    assert listing["enabled"] is True
    [summary] = [k for k in listing["kernels"] if k["kernel_id"] == kernel_id]
    assert summary["models"] == 3 and len(summary["clients"]) == 1
    assert summary["state_bytes"] > 0
    models = json.loads(
        (await jp_fetch("api", "widget-relay", "kernels", kernel_id, "models")).body
    )["models"]
    slider = next(m for m in models if m["model_name"] == "IntSliderModel")
    detail = json.loads(
        (
            await jp_fetch(
                "api", "widget-relay", "kernels", kernel_id, "models", slider["model_id"]
            )
        ).body
    )
    assert detail["state"]["value"] == 1
    for path in (
        ("kernels", "no-such-kernel"),
        ("kernels", "no-such-kernel", "state"),
        ("kernels", kernel_id, "models", "nope"),
    ):
        try:
            await jp_fetch("api", "widget-relay", *path)
        except Exception as error:  # tornado.httpclient.HTTPClientError
            assert getattr(error, "code", None) == 404
        else:
            raise AssertionError(f"{path} did not 404")


async def test_connected_client_never_sees_widget_message_twice_or_out_of_order(
    start_kernel: Any, connect: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    b = await connect(kernel_id, "json")
    await a.execute(SLIDERS)
    model_id = await a.evaluate("s.model_id")
    churn = []
    request = a.start_execute(
        "import time\nfor i in range(2, 302):\n    s.value = i\n"
        "    if i % 50 == 0: time.sleep(0.05)"
    )
    for _ in range(5):  # clients joining and leaving must not disturb the others
        churn.append(await connect(kernel_id))
        await asyncio.sleep(0.05)
        churn[-1].close()
    for client in (a, b):
        await client.wait_for(lambda m: is_idle_after(m, request), timeout=30)
        ids = [m["header"]["msg_id"] for m in client.widget_messages(model_id)]
        assert len(ids) == len(set(ids))
        values = [
            m["content"]["data"]["state"]["value"]
            for m in client.widget_messages(model_id)
            if m["header"]["msg_type"] == "comm_msg"
            and "value" in m["content"]["data"].get("state", {})
        ]
        assert values == list(range(2, 302))


async def test_kernel_info_answered_while_busy(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    kernel = relay_manager.link_for(kernel_id).kernel_manager
    for _ in range(600):  # the relay's own startup requests may still be running
        if kernel.execution_state == "idle":
            break
        await asyncio.sleep(0.05)
    idle_request = a.send("kernel_info_request", {})
    own = await a.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "kernel_info_reply"
            and m["parent_header"]["msg_id"] == idle_request["header"]["msg_id"]
        )
    )
    relay = relay_manager.link_for(kernel_id).relay
    assert relay.counters["relay", "kernel_info"] == 0, "an idle kernel answers for itself"
    # long enough that a loaded machine still answers the late joiner first
    cell = await a.start_running("import time; time.sleep(30)")
    late = await connect(kernel_id, "json")
    request = late.send("kernel_info_request", {})
    reply = await late.wait_for(lambda m: m["header"]["msg_type"] == "kernel_info_reply")
    await late.wait_for(lambda m: is_idle_after(m, request))
    assert reply["parent_header"]["msg_id"] == request["header"]["msg_id"]
    assert reply["content"]["protocol_version"] == own["content"]["protocol_version"]
    assert reply["content"]["language_info"]["name"] == "python"
    assert not any(is_idle_after(m, cell) for m in a.messages)
