"""Benchmarks: the relay against stock jupyter_server (c.WidgetRelay.enabled = False).

Prints JSON and a markdown table. ``--smoke`` runs a small, fast version for CI.

    python -m benchmarks.run            # full run
    python -m benchmarks.run --smoke    # seconds; proves the suite still works
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from typing import Any

from tests.client import is_idle_after

from .harness import Server, jupyter_server, percentile

SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=0, max=10**6)"


async def busy(client: Any, seconds: float) -> dict[str, Any]:
    cell = client.start_execute(f"import time; time.sleep({seconds})")
    await client.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "status"
            and m["parent_header"].get("msg_id") == cell["header"]["msg_id"]
        )
    )
    return cell


async def late_joiner(server: Server, cell_seconds: float) -> float:
    """Seconds from a new client's connect until it holds every widget state."""
    kernel_id = await server.start_kernel()
    owner = await server.connect(kernel_id)
    await owner.execute(SLIDER)
    cell = await busy(owner, cell_seconds)
    started = time.monotonic()
    joiner = await server.connect(kernel_id)
    await joiner.request_states(timeout=cell_seconds + 30)
    elapsed = time.monotonic() - started
    await owner.wait_for(lambda m: is_idle_after(m, cell), timeout=cell_seconds + 30)
    for client in (owner, joiner):
        client.close()
    await server.request("DELETE", f"/api/kernels/{kernel_id}")
    return elapsed


async def peer_latency(
    server: Server, clients: int, updates: int, cell_seconds: float
) -> list[float]:
    """Seconds from one client's update until each peer receives the value; every update
    is sent while a cell runs (half a cell in), as a user drags a slider mid-computation."""
    kernel_id = await server.start_kernel()
    members = [await server.connect(kernel_id) for _ in range(clients)]
    await members[0].execute(SLIDER)
    model_id = await members[0].evaluate("s.model_id")
    writer, peers = members[0], members[1:]
    latencies: list[float] = []
    for value in range(1, updates + 1):
        cell = await busy(writer, cell_seconds)
        await asyncio.sleep(cell_seconds / 2)
        marks = [len(p.messages) for p in peers]
        sent = time.monotonic()
        writer.update(model_id, {"value": value})
        for peer, mark in zip(peers, marks, strict=True):
            message = await peer.wait_for(
                lambda m, v=value: (
                    m["header"]["msg_type"] == "comm_msg"
                    and m["content"]["data"].get("state", {}).get("value") == v
                ),
                timeout=cell_seconds + 30,
                start=mark,
            )
            latencies.append(message["received_at"] - sent)
        await writer.wait_for(lambda m, c=cell: is_idle_after(m, c), timeout=cell_seconds + 30)
    for member in members:
        member.close()
    await server.request("DELETE", f"/api/kernels/{kernel_id}")
    return latencies


async def measure(relay: bool, smoke: bool) -> dict[str, Any]:
    async with jupyter_server(relay) as server:
        joiner = await late_joiner(server, 1.5 if smoke else 5.0)
        peers = await peer_latency(
            server, 3 if smoke else 10, 2 if smoke else 10, 0.6 if smoke else 2.0
        )
    return {
        "late_joiner_s": joiner,
        "peer_p50_s": percentile(peers, 0.5),
        "peer_p99_s": percentile(peers, 0.99),
        "peer_samples": len(peers),
    }


def table(results: dict[str, dict[str, Any]], smoke: bool) -> str:
    rows = [
        ("late joiner gets widget states, kernel busy", "late_joiner_s"),
        ("peer sees a change, kernel busy, p50", "peer_p50_s"),
        ("peer sees a change, kernel busy, p99", "peer_p99_s"),
    ]
    lines = ["| measure | relay | stock | relay / stock |", "|---|---|---|---|"]
    for label, key in rows:
        relay, stock = results["relay"][key], results["stock"][key]
        lines.append(
            f"| {label} | {relay * 1000:.1f} ms | {stock * 1000:.1f} ms | {relay / stock:.4f} |"
        )
    mode = "smoke" if smoke else "full"
    return (
        f"Mode: {mode}; machine: {platform.machine()}, Python {platform.python_version()}\n\n"
        + "\n".join(lines)
    )


async def main(smoke: bool) -> dict[str, Any]:
    results = {"relay": await measure(True, smoke), "stock": await measure(False, smoke)}
    print(json.dumps(results, indent=2))
    print(table(results, smoke))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="few clients, short cells")
    asyncio.run(main(parser.parse_args().smoke))
