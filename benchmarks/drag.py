"""Slider drags: one writer that keeps widget.ts's own throttle (``KernelClient.change``)
and light peers that record when each value arrives.

- ``drag_busy``: the writer drags at ``DRAG_RATE`` steps per second while a cell runs. A
  step's peer latency is the time until a peer shows that step or a later one (with stock
  pacing the browser holds the later steps back until the kernel is free).
- ``drag_slow_observer``: the kernel is idle but its observer of ``value`` takes
  ``OBSERVER_S``: the steps peers see per second, and how often the observer ran.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.client import is_idle_after

from .harness import Server, percentile

DRAG_RATE = 20  # steps per second, a brisk drag
OBSERVER_S = 0.2
BASE = 1000  # drag values start above anything the setup shows
SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=0, max=10**6)"


async def _setup(server: Server, clients: int, code: str) -> tuple[str, Any, str, list[Any]]:
    from .run import quiesce

    kernel_id = await server.start_kernel()
    writer = await server.connect(kernel_id)
    await writer.execute(code)
    model_id = await writer.evaluate("s.model_id")
    peers = await server.lights(kernel_id, clients - 1)
    for peer in peers:
        peer.keep_arrivals = True
    await quiesce(peers)
    return kernel_id, writer, model_id, peers


async def _drag(writer: Any, model_id: str, steps: int) -> list[float]:
    """Move the slider through BASE+1 .. BASE+steps; the wall-clock time of each step."""
    sent = []
    for step in range(1, steps + 1):
        sent.append(time.time())
        writer.change(model_id, {"value": BASE + step})
        await asyncio.sleep(1 / DRAG_RATE)
    return sent


async def _all_show(peers: list[Any], value: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(value in peer.arrivals for peer in peers):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every peer received {value}")
        await asyncio.sleep(0.01)


def _step_latencies(peers: list[Any], sent: list[float]) -> list[float]:
    latencies = []
    for peer in peers:
        arrivals = sorted(peer.arrivals.items())
        for step, at in enumerate(sent, start=1):
            later = [t for value, t in arrivals if value >= BASE + step]
            latencies.append(min(later) - at if later else float("inf"))
    return latencies


async def _close(server: Server, kernel_id: str, writer: Any, peers: list[Any]) -> None:
    writer.close()
    for peer in peers:
        peer.close()
    await server.request("DELETE", f"/api/kernels/{kernel_id}")


async def drag_busy(server: Server, clients: int, cell_s: float, steps: int) -> dict[str, Any]:
    kernel_id, writer, model_id, peers = await _setup(server, clients, SLIDER)
    cell = writer.start_execute(f"import time; time.sleep({cell_s})")
    await writer.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "status"
            and m["parent_header"].get("msg_id") == cell["header"]["msg_id"]
        )
    )
    sent = await _drag(writer, model_id, steps)
    await writer.wait_for(lambda m: is_idle_after(m, cell), timeout=cell_s + 60)
    await _all_show(peers, BASE + steps, 30)
    latencies = _step_latencies(peers, sent)
    await _close(server, kernel_id, writer, peers)
    return {
        "drag_busy_p50_s": percentile(latencies, 0.5),
        "drag_busy_p99_s": percentile(latencies, 0.99),
        "drag_busy_steps": steps,
        "drag_busy_clients": clients,
        "drag_busy_updates_sent": len(writer.sent_updates),
    }


async def drag_slow_observer(server: Server, clients: int, steps: int) -> dict[str, Any]:
    code = (
        f"{SLIDER}\nimport time\ncalls = []\n"
        f"s.observe(lambda c: (calls.append(c.new), time.sleep({OBSERVER_S})), 'value')"
    )
    kernel_id, writer, model_id, peers = await _setup(server, clients, code)
    started = time.time()
    await _drag(writer, model_id, steps)
    seconds = time.time() - started
    final = BASE + steps
    await _all_show(peers, final, 60)
    for _ in range(100):  # until the kernel has run the last call
        calls = await writer.evaluate("calls")
        if calls and calls[-1] == final:
            break
        await asyncio.sleep(0.1)
    seen = [
        len(
            [
                value
                for value, at in peer.arrivals.items()
                if value > BASE and at <= started + seconds
            ]
        )
        for peer in peers
    ]
    await _close(server, kernel_id, writer, peers)
    return {
        "drag_idle_steps_seen_per_s": sorted(seen)[len(seen) // 2] / seconds,
        "drag_idle_observer_calls": len(calls),
        "drag_idle_steps": steps,
    }
