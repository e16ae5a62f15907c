"""Soak: many clients changing a widget for a long time; the relay's memory must stay flat.

Clients (light load clients) send slider updates at a steady total rate, one client leaves
and a new one joins every few seconds, and a busy cell runs every minute. The server's
RSS is sampled throughout; after the warm-up it should not grow. At the end, once the
kernel is idle, the relay must have no bookkeeping left (the kernel summary's
``unsettled`` counts) and its table must hold the kernel's value.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from .harness import Server, rss_bytes
from .light import LightClient

SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=0, max=10**9)"


@dataclass(frozen=True)
class SoakConfig:
    minutes: float
    clients: int = 50
    updates_per_second: float = 20.0
    churn_seconds: float = 5.0  # one client leaves and another joins this often
    cell_every_seconds: float = 60.0
    cell_seconds: float = 5.0
    sample_seconds: float = 5.0


def slope_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, bytes) samples, in bytes per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_b = sum(b for _, b in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (b - mean_b) for t, b in samples)
    return 60.0 * cov / var if var else 0.0


async def _unsettled(server: Server, kernel_id: str, timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        summary = await server.request("GET", f"/api/widget-relay/kernels/{kernel_id}")
        unsettled: dict[str, int] = summary["unsettled"]
        if not any(unsettled.values()) or time.monotonic() > deadline:
            return unsettled
        await asyncio.sleep(0.5)


async def soak(server: Server, config: SoakConfig) -> dict[str, Any]:
    rng = random.Random(7)
    kernel_id = await server.start_kernel()
    owner = await server.light(kernel_id)
    await owner.execute(SLIDER)
    model_id = await owner.evaluate("s.model_id")
    clients: list[LightClient] = await server.lights(kernel_id, config.clients)
    for client in clients:
        await client.request_states()
    started = time.monotonic()
    duration = config.minutes * 60
    warm_up = max(15.0, duration / 4)
    samples: list[tuple[float, int]] = []
    sent = joins = cells = 0
    next_update = next_churn = next_sample = started
    next_cell = started + min(config.cell_every_seconds / 2, duration / 3)
    cell: asyncio.Future[Any] | None = None
    while (now := time.monotonic()) < started + duration:
        if now >= next_sample:
            samples.append((now - started, rss_bytes(server.pid)))
            next_sample += config.sample_seconds
        if now >= next_cell:
            cell = owner.start_execute(f"import time; time.sleep({config.cell_seconds})")
            cells += 1
            next_cell += config.cell_every_seconds
        if now >= next_churn:
            leaving = clients.pop(rng.randrange(len(clients)))
            leaving.close()
            joining = await server.light(kernel_id)
            await joining.request_states()
            clients.append(joining)
            joins += 1
            next_churn += config.churn_seconds
        while next_update <= now:
            sent += 1
            writer = clients[rng.randrange(len(clients))]
            update = {"method": "update", "state": {"value": sent}, "buffer_paths": []}
            writer.send("comm_msg", {"comm_id": model_id, "data": update})
            next_update += 1 / config.updates_per_second
        await asyncio.sleep(0.01)
    if cell is not None:
        await asyncio.wait_for(cell, config.cell_seconds + 60)
    await owner.execute("pass")  # the kernel has handled everything sent before it
    checks: dict[str, Any] = {}
    if server.relay:  # stock keeps no table and no bookkeeping to check
        kernel_value = await owner.evaluate("s.value")
        path = f"/api/widget-relay/kernels/{kernel_id}/models/{model_id}"
        model = await server.request("GET", path)
        checks = {
            "soak_unsettled_at_end": await _unsettled(server, kernel_id),
            "soak_table_equals_kernel": model["state"]["value"] == kernel_value,
        }
    after = [(t, b) for t, b in samples if t >= warm_up]
    for client in [*clients, owner]:
        client.close()
    await server.request("DELETE", f"/api/kernels/{kernel_id}")
    return {
        "soak_minutes": config.minutes,
        "soak_clients": config.clients,
        "soak_updates_sent": sent,
        "soak_joins": joins,
        "soak_busy_cells": cells,
        "soak_rss_after_warm_up_bytes": after[0][1] if after else None,
        "soak_rss_end_bytes": samples[-1][1] if samples else None,
        "soak_rss_growth_bytes": (after[-1][1] - after[0][1]) if after else None,
        "soak_rss_slope_bytes_per_min": round(slope_per_minute(after)),
        "soak_rss_samples": [(round(t), b) for t, b in samples],
        **checks,
    }
