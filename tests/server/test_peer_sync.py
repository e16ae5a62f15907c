"""Peer sync against a real kernel: peers see changes at once, the kernel stays final."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer

from ..client import is_idle_after
from .helpers import settle, setup_clients


def values_seen(client: Any, model_id: str, since: int = 0) -> list[Any]:
    return [
        m["content"]["data"]["state"]["value"]
        for m in client.widget_messages(model_id, since)
        if m["header"]["msg_type"] == "comm_msg"
        and "value" in m["content"]["data"].get("state", {})
    ]


async def test_peers_see_change_while_cell_runs(start_kernel: Any, connect: Any) -> None:
    _kernel_id, (a, b, c), model_id = await setup_clients(start_kernel, connect, 3)
    cell = await a.start_running("import time; time.sleep(5)")
    mark_a = len(a.messages)
    a.update(model_id, {"value": 17})
    for peer in (b, c):
        echo = await peer.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "comm_msg"
                and m["content"]["data"].get("method") == "echo_update"
                and m["content"]["data"]["state"].get("value") == 17
            ),
            timeout=4,
        )
        assert echo["parent_header"]["msg_id"]
        assert peer.view[model_id]["value"] == 17
    assert not any(is_idle_after(m, cell) for m in b.messages), "cell ended first"
    await a.wait_for(lambda m: is_idle_after(m, cell), timeout=15)
    assert await a.evaluate("s.value") == 17
    idle_index = next(i for i, m in enumerate(a.messages) if is_idle_after(m, cell))
    echoes = [
        (i, m)
        for i, m in enumerate(a.messages)
        if i >= mark_a
        and m["header"]["msg_type"] == "comm_msg"
        and m["content"].get("comm_id") == model_id
        and m["content"]["data"].get("method") == "echo_update"
    ]
    await settle([a], b)
    # The relay released the update at once (throttle.py): the sender's one echo is the
    # relay's, before the cell ended; the kernel's own echo goes to nobody.
    assert len(echoes) == 1, "the sender gets exactly one echo"
    assert echoes[0][0] < idle_index, "the relay's echo came while the cell ran"


async def test_peers_see_change_with_echo_off(
    start_kernel: Any, connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_WIDGETS_ECHO", "0")
    _kernel_id, (a, b), model_id = await setup_clients(start_kernel, connect, 2)
    a.update(model_id, {"value": 5})
    await b.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "comm_msg"
            and m["content"]["data"].get("state", {}).get("value") == 5
        ),
        timeout=2,
    )
    await settle([a, b], b)
    b.update(model_id, {"value": 6})
    await settle([a, b], b)
    assert a.view[model_id]["value"] == b.view[model_id]["value"] == 6
    assert await a.evaluate("s.value") == 6


async def test_successive_values_reach_each_peer_once(start_kernel: Any, connect: Any) -> None:
    _kernel_id, (a, b, c), model_id = await setup_clients(start_kernel, connect, 3)
    marks = [len(b.messages), len(c.messages)]
    for value in range(1, 201):
        a.update(model_id, {"value": value})
    await settle([a], b, c)
    for peer, mark in zip((b, c), marks, strict=True):
        seen = values_seen(peer, model_id, mark)
        assert len(seen) == len(set(seen)), "a peer received a value twice"
        assert seen == sorted(seen)
        assert seen[-1] == 200 and peer.view[model_id]["value"] == 200
    assert await a.evaluate("s.value") == 200


async def test_concurrent_writers_converge(
    start_kernel: Any,
    connect: Any,
    relay_manager: Any,
) -> None:
    kernel_id, (a, b, c), model_id = await setup_clients(start_kernel, connect, 3)
    for i in range(300):
        a.update(model_id, {"value": 2 * i})
        b.update(model_id, {"value": 2 * i + 1})
        if i % 25 == 0:
            await asyncio.sleep(0.01)
    await settle([a, b], c)
    kernel_value = await c.evaluate("s.value")
    views = [client.view[model_id]["value"] for client in (a, b, c)]
    assert views == [kernel_value] * 3
    assert (
        relay_manager.link_for(kernel_id).relay.table.get(model_id).state["value"] == kernel_value
    )


async def test_clamped_value_reaches_all(
    start_kernel: Any,
    connect: Any,
    relay_manager: Any,
) -> None:
    kernel_id, (a, b, c), model_id = await setup_clients(
        start_kernel, connect, 3, "import ipywidgets as W\ns = W.IntSlider(value=0, max=100)"
    )
    a.update(model_id, {"value": 150})
    await settle([a], b, c)
    assert [client.view[model_id]["value"] for client in (a, b, c)] == [100, 100, 100]
    assert relay_manager.link_for(kernel_id).relay.table.get(model_id).state["value"] == 100


CUSTOM_WIDGET = """
import ipywidgets as W
class Ping(W.DOMWidget):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.on_msg(lambda w, content, buffers:
                    self.send({'pong': content['n']}, [bytes(buffers[0])[::-1]]))
s = Ping()
"""


async def test_custom_messages_round_trip(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id, (a, b, c), model_id = await setup_clients(start_kernel, connect, 3, CUSTOM_WIDGET)
    marks = [len(x.messages) for x in (a, b, c)]
    version = relay_manager.link_for(kernel_id).relay.table.get(model_id).version
    for n in range(5):
        a.send(
            "comm_msg",
            {"comm_id": model_id, "data": {"method": "custom", "content": {"n": n}}},
            buffers=[bytes([n, 1, 2])],
        )
    await settle([a], b, c)
    for client, mark in zip((a, b, c), marks, strict=True):
        pongs = [
            m
            for m in client.widget_messages(model_id, mark)
            if m["content"]["data"].get("method") == "custom"
        ]
        assert [m["content"]["data"]["content"]["pong"] for m in pongs] == list(range(5))
        assert [m["buffers"][0] for m in pongs] == [bytes([2, 1, n]) for n in range(5)]
    assert relay_manager.link_for(kernel_id).relay.table.get(model_id).version == version


class DenyByHeader(Authorizer):  # type: ignore[misc]
    """Denies the actions named in the X-Deny request header."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        denied = handler.request.headers.get("X-Deny", "")
        return action not in denied.split(",")


@pytest.fixture
def server_app_config() -> dict[str, Any]:
    return {"authorizer_class": DenyByHeader}


async def test_user_without_execute_gets_no_state_and_no_kernel_connection(
    start_kernel: Any, connect: Any, jp_fetch: Any, relay_manager: Any
) -> None:
    """Widget state is reached only with ``execute`` on kernels: the kernel websocket (the
    only way to change it) and REST ``state`` both refuse a user without it, and keep
    serving a user with it."""
    kernel_id, (a,), model_id = await setup_clients(start_kernel, connect, 1)
    with pytest.raises(Exception) as denied:
        await connect(kernel_id, headers={"X-Deny": "execute"})
    assert getattr(denied.value, "code", None) == 403
    with pytest.raises(Exception) as denied_rest:
        await jp_fetch(
            "api", "widget-relay", "kernels", kernel_id, "state", headers={"X-Deny": "execute"}
        )
    assert getattr(denied_rest.value, "code", None) == 403
    document = json.loads(
        (await jp_fetch("api", "widget-relay", "kernels", kernel_id, "state")).body
    )
    assert document["state"][model_id]["state"]["value"] == 0
    assert await a.evaluate("s.value") == 0
