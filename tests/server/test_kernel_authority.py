"""The kernel stays the authority: the table holds only what the kernel holds.

Real server, real ipykernel + ipywidgets. Each case ends with the kernel, the table, every
client's view, a late joiner's snapshot, the REST state document and a saved notebook in
agreement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_widget_relay.core.messages import WIDGET_STATE_MIME

from ..client import KernelClient, state_of
from .helpers import SLIDER, eventually, settle, stderr_notices

JUNK = "x" * 1000


@pytest.fixture
def relay_config() -> dict[str, Any]:
    return {"save_widget_state": "all"}


async def start(start_kernel: Any, connect: Any, env: dict[str, str] | None = None) -> Any:
    kernel_id = await start_kernel(env)
    a = await connect(kernel_id)
    b = await connect(kernel_id, "json")
    await a.execute(SLIDER)
    model_id = await a.evaluate("s.model_id")
    for client in (a, b):
        await client.request_states()
    return kernel_id, a, b, model_id


async def saved_state(jp_fetch: Any, jp_root_dir: Path, kernel_id: str, path: str) -> Any:
    """Save a notebook on the kernel's session through REST; its stored widget state."""
    body = {"path": path, "type": "notebook", "name": "", "kernel": {"id": kernel_id}}
    await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    content = json.loads(json.dumps(nbformat.v4.new_notebook()))
    put = {"type": "notebook", "format": "json", "content": content}
    await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(put))
    stored = json.loads((jp_root_dir / path).read_text(encoding="utf-8"))
    return stored["metadata"]["widgets"][WIDGET_STATE_MIME]["state"]


async def everyone_agrees(
    kernel_id: str,
    model_id: str,
    clients: list[KernelClient],
    connect: Any,
    jp_fetch: Any,
    jp_root_dir: Path,
    relay_manager: Any,
    expected: dict[str, Any],
    absent: tuple[str, ...] = (),
) -> None:
    kernel_state = await clients[0].evaluate("s.get_state()")
    for name, value in expected.items():
        assert kernel_state[name] == value, f"the kernel has {name}={kernel_state[name]!r}"
    model = relay_manager.link_for(kernel_id).relay.table.get(model_id)
    await eventually(lambda: all(model.state.get(n) == v for n, v in expected.items()), timeout=15)
    await settle(clients[:1], *clients[1:])
    late = await connect(kernel_id)
    snapshot = state_of(await late.request_states())[model_id]
    response = await jp_fetch("api", "widget-relay", "kernels", kernel_id, "state")
    document = json.loads(response.body)["state"][model_id]["state"]
    saved = (await saved_state(jp_fetch, jp_root_dir, kernel_id, "authority.ipynb"))[model_id]
    views = {client.session: client.view[model_id] for client in clients}
    for where, state in [
        ("table", model.state),
        ("late joiner", snapshot),
        ("REST", document),
        ("saved notebook", saved["state"]),
        *views.items(),
    ]:
        for name, value in expected.items():
            assert state.get(name) == value, f"{where} has {name}={state.get(name)!r}"
        # (the sender's own frontend keeps what it set locally: no message can unset it)
        for name in absent if where != clients[0].session else ():
            assert name not in state, f"{where} has {name}"


@pytest.mark.parametrize("echo", ["1", "0"])
async def test_refused_value_and_unknown_trait_end_on_the_kernel(
    echo: str,
    start_kernel: Any,
    connect: Any,
    jp_fetch: Any,
    jp_root_dir: Path,
    relay_manager: Any,
) -> None:
    """The kernel echoes a value it then fails to validate (or, echo off, says nothing):
    the relay asks the kernel for the model's state and every copy ends on the kernel's."""
    kernel_id, a, b, model_id = await start(start_kernel, connect, {"JUPYTER_WIDGETS_ECHO": echo})
    request = a.update(model_id, {"value": "not-an-int", "junk_trait": JUNK})
    await a.wait_for(lambda m: bool(stderr_notices(a, request)), timeout=10)
    assert "junk_trait" in stderr_notices(a, request)[0]
    # peers see the change at once (the kernel decides afterwards); never the junk trait
    await b.wait_for(
        lambda m: m["content"].get("data", {}).get("state", {}).get("value") == "not-an-int"
    )
    assert all(
        "junk_trait" not in m["content"]["data"].get("state", {}) for m in b.widget_messages()
    )
    await everyone_agrees(
        kernel_id,
        model_id,
        [a, b],
        connect,
        jp_fetch,
        jp_root_dir,
        relay_manager,
        {"value": 5},
        absent=("junk_trait",),
    )
    assert await a.evaluate("hasattr(s, 'junk_trait')") is False
    counters = relay_manager.counters()
    assert counters["rejected", "client", "unknown_trait"] == 1
    assert counters["relay", "state_check_corrected"] >= 1

    # A value the kernel keeps costs one check and no correction.
    corrected = counters["relay", "state_check_corrected"]
    a.update(model_id, {"value": 42})
    await everyone_agrees(
        kernel_id, model_id, [a, b], connect, jp_fetch, jp_root_dir, relay_manager, {"value": 42}
    )
    assert relay_manager.counters()["relay", "state_check_corrected"] == corrected


async def test_coerced_value_needs_no_check(
    start_kernel: Any, connect: Any, jp_fetch: Any, jp_root_dir: Path, relay_manager: Any
) -> None:
    """When the kernel's own ``update`` states the value it kept, no check is sent."""
    kernel_id, a, b, model_id = await start(start_kernel, connect)
    checks = relay_manager.counters()["relay", "state_check"]
    a.update(model_id, {"value": 1000})  # clamped to max=100 by the kernel
    await everyone_agrees(
        kernel_id, model_id, [a, b], connect, jp_fetch, jp_root_dir, relay_manager, {"value": 100}
    )
    assert relay_manager.counters()["relay", "state_check"] == checks


async def test_a_model_a_client_opens_reaches_peers_with_the_protocol_version(
    start_kernel: Any, connect: Any
) -> None:
    """jupyterlab_widgets refuses a widget comm_open whose metadata lacks the widget protocol
    version, and closes the comm; the relay would then close the model for everyone. A
    peer's copy of a client's comm_open carries the opener's metadata."""
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    peers = [await connect(kernel_id), await connect(kernel_id, "json")]
    for client in (a, *peers):
        await client.request_states()
    state = {
        "_model_name": "IntSliderModel",
        "_model_module": "@jupyter-widgets/controls",
        "_model_module_version": "2.0.0",
        "value": 3,
    }
    a.send(
        "comm_open",
        {"comm_id": "frontend-made", "target_name": "jupyter.widget", "data": {"state": state}},
        metadata={"version": "2.1.0"},
    )

    def opened(message: dict[str, Any]) -> bool:
        return bool(
            message["header"]["msg_type"] == "comm_open"
            and message["content"].get("comm_id") == "frontend-made"
        )

    for peer in peers:
        copy = await peer.wait_for(opened, timeout=10)
        assert copy["metadata"].get("version") == "2.1.0"


async def test_client_comm_open_with_an_existing_model_id_is_refused(
    start_kernel: Any, connect: Any, jp_fetch: Any, jp_root_dir: Path, relay_manager: Any
) -> None:
    kernel_id, a, b, model_id = await start(start_kernel, connect)
    before = len(b.messages)
    state = {
        "_model_name": "IntSliderModel",
        "_model_module": "@jupyter-widgets/controls",
        "_model_module_version": "2.0.0",
        "value": 99,
    }
    request = a.send(
        "comm_open",
        {"comm_id": model_id, "target_name": "jupyter.widget", "data": {"state": state}},
        metadata={"version": "2.1.0"},
    )
    await a.wait_for(lambda m: bool(stderr_notices(a, request)), timeout=10)
    assert "already exists" in stderr_notices(a, request)[0]
    assert relay_manager.counters()["rejected", "client", "model_exists"] == 1
    await everyone_agrees(
        kernel_id, model_id, [a, b], connect, jp_fetch, jp_root_dir, relay_manager, {"value": 5}
    )
    assert not [
        m for m in b.messages[before:] if m["header"]["msg_type"] in ("comm_open", "comm_close")
    ], "a peer heard of the refused comm_open"
    # the kernel kept its model and still serves it
    a.update(model_id, {"value": 7})
    await everyone_agrees(
        kernel_id, model_id, [a, b], connect, jp_fetch, jp_root_dir, relay_manager, {"value": 7}
    )


async def test_a_browser_cannot_close_the_kernels_widget_for_everyone(
    start_kernel: Any, connect: Any, jp_fetch: Any, jp_root_dir: Path, relay_manager: Any
) -> None:
    """JupyterLab's kernel connection answers a widget comm_open it has no handler for (a page
    without a widget manager) with a comm_close: the kernel's widget stays, for everyone."""
    kernel_id, a, b, model_id = await start(start_kernel, connect)
    before = len(b.messages)
    request = a.send("comm_close", {"comm_id": model_id, "data": {}})
    await a.wait_for(lambda m: bool(stderr_notices(a, request)), timeout=10)
    assert "opened by the kernel" in stderr_notices(a, request)[0]
    assert relay_manager.counters()["rejected", "client", "kernel_model"] == 1
    assert await a.evaluate(f"{model_id!r} in get_ipython().kernel.comm_manager.comms")
    assert not [m for m in b.messages[before:] if m["header"]["msg_type"] == "comm_close"]
    # the kernel still hears the widget, and every copy, late joiners included, has it
    b.update(model_id, {"value": 7})
    await everyone_agrees(
        kernel_id, model_id, [a, b], connect, jp_fetch, jp_root_dir, relay_manager, {"value": 7}
    )
