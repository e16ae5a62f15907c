"""The relay paces widget updates (core/throttle.py), against a real server and kernel, with
websocket clients that keep widget.ts's own throttle and echo rules (``change``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ..client import KernelClient, is_idle_after
from .helpers import settle, setup_clients

# The kernel records every value it is given and every observer call.
SLIDER = """
import ipywidgets as W
s = W.IntSlider(value=0, max=1000)
seen = []
s.observe(lambda change: seen.append(change['new']), 'value')
"""


async def setup(
    start_kernel: Any, connect: Any, count: int, env: dict[str, str] | None = None
) -> tuple[str, list[KernelClient], str]:
    return await setup_clients(start_kernel, connect, count, SLIDER, env)


def shows(client: KernelClient, model_id: str, value: int) -> bool:
    return bool(client.view.get(model_id, {}).get("value") == value)


async def wait_until(predicate: Any, timeout: float = 5) -> float:
    """Seconds until ``predicate()`` holds."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.002)
    return time.monotonic() - started


@pytest.mark.parametrize("echo", ["1", "0"])
async def test_a_drag_during_a_busy_cell_reaches_peers_step_by_step(
    start_kernel: Any, connect: Any, relay_manager: Any, echo: str
) -> None:
    kernel_id, (a, b), model_id = await setup(
        start_kernel, connect, 2, {"JUPYTER_WIDGETS_ECHO": echo}
    )
    cell = await a.start_running("import time; time.sleep(4)")
    busy_from = time.monotonic()
    latencies = []
    for step in range(1, 11):
        a.change(model_id, {"value": step})
        latencies.append(await wait_until(lambda s=step: shows(b, model_id, s), timeout=2))
        await asyncio.sleep(0.05)
    assert not any(is_idle_after(m, cell) for m in b.messages), "the cell ended first"
    assert len(a.sent_updates) == 10, "widget.ts was released after every step"
    assert max(latencies) < 2
    cell_idle = await a.wait_for(lambda m: is_idle_after(m, cell), timeout=15)
    await settle([a], b)
    assert await a.evaluate("s.value") == 10
    seen = await a.evaluate("seen")
    assert seen[-1] == 10 and len(seen) <= 2, f"the kernel handled {seen}"
    for client in (a, b):
        assert client.view[model_id]["value"] == 10
        assert not client.awaits_echo(), "a trait still waits for its echo"
        assert not client.in_flight and not client.waiting
    # JupyterLab's kernel indicator for the sender: busy for the whole cell, then idle
    shown = [state for at, state in a.kernel_status if at <= busy_from]
    during = [state for at, state in a.kernel_status if busy_from < at < cell_idle["received_at"]]
    assert shown[-1] == "busy" and during == [], during
    assert (cell_idle["received_at"], "idle") in a.kernel_status
    relay = relay_manager.link_for(kernel_id).relay
    assert relay.table.get(model_id).state["value"] == 10


async def test_a_slow_observer_runs_once_per_kernel_turn_not_per_step(
    start_kernel: Any, connect: Any
) -> None:
    """An ``interact`` whose callback takes its time is not run once per step."""
    _kernel_id, (a, b), model_id = await setup(start_kernel, connect, 2)
    await a.execute("import time\ns.observe(lambda change: time.sleep(0.3), 'value')")
    for step in range(1, 21):
        a.change(model_id, {"value": step})
        await asyncio.sleep(0.02)
    await wait_until(lambda: shows(b, model_id, 20), timeout=2)
    await settle([a], b)
    seen = await a.evaluate("seen")
    assert seen[-1] == 20 and len(seen) <= 4, seen
    assert not a.awaits_echo()


async def test_a_waiting_update_reaches_the_kernel_after_its_sender_closed(
    start_kernel: Any, connect: Any
) -> None:
    _kernel_id, (a, b), model_id = await setup(start_kernel, connect, 2)
    cell = await b.start_running("import time; time.sleep(1.5)")
    for step in (5, 6, 7):
        a.change(model_id, {"value": step})
        await wait_until(lambda s=step: shows(b, model_id, s))
    a.close()
    await b.wait_for(lambda m: is_idle_after(m, cell), timeout=15)
    await settle([b])
    assert await b.evaluate("seen") == [5, 7]


async def test_two_users_dragging_at_once_converge(start_kernel: Any, connect: Any) -> None:
    _kernel_id, (a, b, c), model_id = await setup(start_kernel, connect, 3)
    cell = await c.start_running("import time; time.sleep(1.5)")
    for step in range(1, 8):
        a.change(model_id, {"value": step})
        b.change(model_id, {"value": 100 + step})
        await asyncio.sleep(0.03)
    await c.wait_for(lambda m: is_idle_after(m, cell), timeout=15)
    await settle([a, b], c)
    final = await c.evaluate("s.value")
    assert [client.view[model_id]["value"] for client in (a, b, c)] == [final] * 3
    assert not a.awaits_echo() and not b.awaits_echo()
    assert len(await c.evaluate("seen")) <= 4


class TestStockPacing:
    """``c.WidgetRelay.throttle_updates = False``: browsers pace their own updates."""

    @pytest.fixture
    def relay_config(self) -> dict[str, Any]:
        return {"throttle_updates": False}

    async def test_the_steps_wait_in_the_browser(self, start_kernel: Any, connect: Any) -> None:
        _kernel_id, (a, b), model_id = await setup(start_kernel, connect, 2)
        cell = await a.start_running("import time; time.sleep(1.5)")
        for step in range(1, 6):
            a.change(model_id, {"value": step})
            await asyncio.sleep(0.05)
        await wait_until(lambda: shows(b, model_id, 1))
        await asyncio.sleep(0.3)
        assert shows(b, model_id, 1) and len(a.sent_updates) == 1
        await a.wait_for(lambda m: is_idle_after(m, cell), timeout=15)
        await wait_until(lambda: shows(b, model_id, 5), timeout=5)
        await settle([a], b)
        assert await a.evaluate("seen") == [1, 5]
