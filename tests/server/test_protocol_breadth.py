"""Output capture, binary buffers, the ipywidgets-7 loading path and anywidget (real kernel)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..client import is_idle_after, state_of


def outputs_of(states: dict[str, Any], model_id: str) -> list[dict[str, Any]]:
    return list(states[model_id]["outputs"])


async def test_interact_output_visible_to_late_joiner(start_kernel: Any, connect: Any) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute(
        "import ipywidgets as W\n"
        "w = W.interactive(lambda n: print('square', n * n), n=(0, 10))\n"
        "w.update()\nout = w.children[-1]"
    )
    model_id = await a.evaluate("out.model_id")
    late = await connect(kernel_id, "json")
    states = state_of(await late.request_states())
    assert outputs_of(states, model_id) == [
        {"output_type": "stream", "name": "stdout", "text": "square 25\n"}
    ]


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_output_captured_while_no_client_is_connected(
    start_kernel: Any, connect: Any, relay_app: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\nout = W.Output()")
    model_id = await a.evaluate("out.model_id")
    relay = relay_manager.link_for(kernel_id).relay
    a.close()
    await wait_until(lambda: not any(p.visible for p in relay.ports()))
    client = relay_app.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.execute_interactive(
            "with out:\n    print('while nobody watched')\n    display({'x': 1}, raw=True)",
            timeout=30,
        )
        assert not any(p.visible for p in relay.ports()), "no browser was connected"
    finally:
        client.stop_channels()
    await wait_until(lambda: len(relay.table.get(model_id).state["outputs"]) == 2)
    late = await connect(kernel_id)
    outputs = outputs_of(state_of(await late.request_states()), model_id)
    assert outputs[0] == {
        "output_type": "stream",
        "name": "stdout",
        "text": "while nobody watched\n",
    }
    assert outputs[1]["output_type"] == "display_data"
    # the relay wrote what it captured back to the kernel's model, as a browser would
    for _ in range(100):
        kept = await late.evaluate("[o.get('text') for o in out.outputs][:1]")
        if kept:
            break
        await asyncio.sleep(0.05)
    assert kept == ["while nobody watched\n"]


async def test_clear_output_wait_with_three_clients(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    clients = [await connect(kernel_id, protocol) for protocol in ("v1", "json", "v1")]
    await clients[0].execute(
        "import ipywidgets as W\nfrom IPython.display import clear_output\nout = W.Output()"
    )
    model_id = await clients[0].evaluate("out.model_id")
    for client in clients:
        await client.request_states()
    request = await clients[0].execute(
        "for i in range(6):\n    with out:\n        clear_output(wait=True)\n        print(i)\n"
        "with out:\n    print('done')"
    )
    for client in clients:
        await client.wait_for(lambda m: is_idle_after(m, request))
    expected = [{"output_type": "stream", "name": "stdout", "text": "5\ndone\n"}]
    for client in clients:
        assert client.view[model_id]["outputs"] == expected
        # a browser writes back what it captured; the relay must not pass N copies on
        client.update(model_id, {"outputs": expected})
    for client in clients:  # the relay has read each client's write before its execute
        await client.execute("pass")
    assert await clients[0].evaluate("list(out.outputs)") == expected
    relay = relay_manager.link_for(kernel_id).relay
    assert relay.counters["relay", "output_write_dropped"] == 3
    assert relay.table.get(model_id).state["outputs"] == expected


async def test_image_updated_fifty_times_snapshot_matches_kernel(
    start_kernel: Any, connect: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute(
        "import ipywidgets as W, os\nimg = W.Image()\n"
        "for i in range(50): img.value = os.urandom(1000 + i)"
    )
    model_id = await a.evaluate("img.model_id")
    kernel_bytes = bytes.fromhex(await a.evaluate("img.value.hex()"))
    states = state_of(await (await connect(kernel_id)).request_states())
    assert states[model_id]["value"] == kernel_bytes and len(kernel_bytes) == 1049


async def test_shared_large_buffer_is_stored_once(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute(
        "import ipywidgets as W, os\ndata = os.urandom(5_000_000)\n"
        "one = W.Image(value=data)\ntwo = W.Image(value=data)"
    )
    store = relay_manager.link_for(kernel_id).relay.table.store
    assert store.referenced_bytes == 10_000_000
    assert store.unique_bytes == 5_000_000
    summary = relay_manager.kernel_summary(kernel_id)
    assert summary["buffer_bytes"] == 5_000_000


async def test_client_update_with_buffer_reaches_peers_and_kernel(
    start_kernel: Any, connect: Any
) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id, "json")
    await a.execute("import ipywidgets as W\nimg = W.Image()")
    model_id = await a.evaluate("img.model_id")
    await b.request_states()
    payload = bytes(range(256)) * 40
    a.update(model_id, {}, buffer_paths=[["value"]], buffers=[payload])
    echo = await b.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "comm_msg"
            and m["content"]["data"].get("method") == "echo_update"
        )
    )
    assert echo["content"]["data"]["buffer_paths"] == [["value"]]
    assert echo["buffers"] == [payload]
    assert bytes.fromhex(await a.evaluate("img.value.hex()")) == payload


async def test_ipywidgets7_loading_path_answered_while_busy(
    start_kernel: Any, connect: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\ns = W.IntSlider(value=12)")
    model_id = await a.evaluate("s.model_id")
    cell = await a.start_running("import time; time.sleep(5)")
    c = await connect(kernel_id, "json")
    info = c.send("comm_info_request", {"target_name": "jupyter.widget"})
    reply = await c.wait_for(lambda m: m["header"]["msg_type"] == "comm_info_reply")
    assert reply["parent_header"]["msg_id"] == info["header"]["msg_id"]
    await c.wait_for(lambda m: is_idle_after(m, info))
    assert model_id in reply["content"]["comms"]
    request = c.send("comm_msg", {"comm_id": model_id, "data": {"method": "request_state"}})
    state = await c.wait_for(
        lambda m: (
            m["parent_header"].get("msg_id") == request["header"]["msg_id"]
            and m["header"]["msg_type"] == "comm_msg"
        )
    )
    assert state["content"]["data"]["state"]["value"] == 12
    assert not any(is_idle_after(m, cell) for m in a.messages)


ANYWIDGET = """
import anywidget, traitlets
class Counter(anywidget.AnyWidget):
    _esm = "export default { render({ model, el }) { el.textContent = model.get('value'); } }"
    _css = ".counter { color: red }"
    value = traitlets.Int(0).tag(sync=True)
s = Counter()
"""


async def test_anywidget_counter_syncs(start_kernel: Any, connect: Any) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id, "json")
    await a.execute(ANYWIDGET)
    model_id = await a.evaluate("s.model_id")
    for client in (a, b):
        states = state_of(await client.request_states())
        assert states[model_id]["_esm"].startswith("export default")
    a.update(model_id, {"value": 3})
    await b.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "comm_msg"
            and m["content"]["data"].get("state", {}).get("value") == 3
        ),
        timeout=2,
    )
    assert b.view[model_id]["value"] == 3
    assert await a.evaluate("s.value") == 3


async def test_snapshot_buffer_paths_are_the_kernels_own(
    start_kernel: Any, connect: Any, relay_app: Any
) -> None:
    """The relay's ``update_states`` puts each buffer where ipywidgets' own answer does
    (``[model_id, "state", *path]``, into the model's entry), which is where
    jupyterlab_widgets' ``_loadFromKernel`` puts buffers back: a late joiner's Image
    then has its bytes."""
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\nimg = W.Image(value=b'\\x89PNG')")
    model_id = await a.evaluate("img.model_id")
    relay_answer = await (await connect(kernel_id, "json")).request_states()
    client = relay_app.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        control = "kernel-own-control"
        client.session.send(
            client.shell_channel.socket,
            client.session.msg(
                "comm_open",
                {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
                metadata={"version": "1.0.0"},
            ),
        )
        client.session.send(
            client.shell_channel.socket,
            client.session.msg(
                "comm_msg", {"comm_id": control, "data": {"method": "request_states"}}
            ),
        )
        while True:
            message = await client.get_iopub_msg(timeout=30)
            content = message["content"]
            if message["msg_type"] == "comm_msg" and content.get("comm_id") == control:
                break
    finally:
        client.stop_channels()
    kernel_paths = [p for p in content["data"]["buffer_paths"] if p[0] == model_id]
    relay_paths = relay_answer["content"]["data"]["buffer_paths"]
    assert kernel_paths == [[model_id, "state", "value"]]
    assert relay_paths == kernel_paths
    assert relay_answer["buffers"] == [b"\x89PNG"]
