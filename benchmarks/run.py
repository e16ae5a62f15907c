"""Benchmarks: the relay against stock jupyter_server (c.WidgetRelay.enabled = False).

Both servers run at once, as separate ``jupyter server`` processes on 127.0.0.1, and every
item is measured on both in the same run, relay and stock one after the other (repetitions
alternate between them). Prints JSON and a markdown table. ``--smoke`` runs a small, fast
version for CI.

    python -m benchmarks.run            # full run
    python -m benchmarks.run --smoke    # seconds; proves the suite still works
    python -m benchmarks.run --only snapshot,memory   # some items only
    python -m benchmarks.run --only soak --soak-minutes 20   # the relay's memory over time
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.client import is_idle_after

from . import memory
from .drag import DRAG_RATE, OBSERVER_S, drag_busy, drag_slow_observer
from .harness import (
    CpuMeter,
    Server,
    children,
    cpu_seconds,
    jupyter_server,
    percentile,
    rss_bytes,
)
from .light import IDLE, LightClient, content_of
from .soak import SoakConfig, soak

SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=0, max=10**6)"
ITEMS = ("late_joiner", "peers", "drag", "snapshot", "burst", "scale", "memory", "soak")


@dataclass(frozen=True)
class Config:
    smoke: bool
    joiner_cell_s: float
    peer_clients: tuple[int, ...]
    peer_updates: int
    peer_cell_s: float
    snapshot_sliders: int
    snapshot_reps: int
    burst_clients: int
    burst_updates: int
    scale_steps: tuple[int, ...]
    scale_seconds: float
    memory_sliders: int
    soak_minutes: float
    soak_clients: int
    drag_clients: int
    drag_cell_s: float
    drag_steps: int


FULL = Config(
    smoke=False,
    joiner_cell_s=5.0,
    peer_clients=(10, 50),
    peer_updates=10,
    peer_cell_s=2.0,
    snapshot_sliders=2000,
    snapshot_reps=5,
    burst_clients=20,
    burst_updates=2000,
    scale_steps=(50, 100, 200, 400, 500, 600),
    scale_seconds=8.0,
    memory_sliders=1667,  # 5,001 models: an IntSlider is 3 (slider, layout, style)
    soak_minutes=20.0,
    soak_clients=50,
    drag_clients=10,
    drag_cell_s=5.0,
    drag_steps=40,
)
SMOKE = Config(
    smoke=True,
    joiner_cell_s=1.0,
    peer_clients=(3,),
    peer_updates=2,
    peer_cell_s=0.5,
    snapshot_sliders=100,
    snapshot_reps=2,
    burst_clients=3,
    burst_updates=100,
    scale_steps=(5,),
    scale_seconds=1.0,
    memory_sliders=100,
    soak_minutes=1.0,
    soak_clients=10,
    drag_clients=3,
    drag_cell_s=1.5,
    drag_steps=10,
)


async def quiesce(clients: list[LightClient], timeout: float = 120) -> None:
    """Wait until every client has the idle status of one more request (a silent, empty
    cell, whose statuses every client gets): the stream has drained. Connecting clients
    each send a kernel_info_request; with stock each one's busy/idle statuses go to every
    client (2·N² frames for N clients), the relay sends them to the requester only.
    Measurements start after that storm."""
    msg_id = uuid.uuid4().hex
    tag = msg_id.encode()
    idle = [c.wait_for(lambda p: tag in p and IDLE.search(p) is not None) for c in clients]
    content = {
        "code": "",
        "silent": True,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": False,
    }
    clients[0].send("execute_request", content, msg_id=msg_id)
    await asyncio.wait_for(asyncio.gather(*idle), timeout)


async def new_kernel(server: Server, setup: str) -> tuple[str, LightClient]:
    kernel_id = await server.start_kernel()
    owner = await server.light(kernel_id)
    await owner.execute(setup)
    return kernel_id, owner


async def drop_kernel(server: Server, kernel_id: str, clients: list[Any]) -> None:
    for client in clients:
        client.close()
    await server.request("DELETE", f"/api/kernels/{kernel_id}")


async def paired(
    servers: dict[str, Server], measure: Callable[[Server], Awaitable[Any]]
) -> dict[str, Any]:
    """Measure on the relay, then on stock, in the same run."""
    return {name: await measure(server) for name, server in servers.items()}


# -- 1. late joiner --------------------------------------------------------------------


async def busy(client: Any, seconds: float) -> dict[str, Any]:
    cell = client.start_execute(f"import time; time.sleep({seconds})")
    await client.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "status"
            and m["parent_header"].get("msg_id") == cell["header"]["msg_id"]
        )
    )
    return cell


async def late_joiner(server: Server, cell_seconds: float) -> dict[str, Any]:
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
    return {"late_joiner_s": elapsed}


# -- 2. peer latency while a cell runs -------------------------------------------------


class PeerSetup:
    """One writer (the test suite's full client) and light peers on one kernel."""

    def __init__(self, server: Server, clients: int) -> None:
        self.server, self.clients = server, clients
        self.latencies: list[float] = []

    async def open(self) -> None:
        self.kernel_id = await self.server.start_kernel()
        self.writer = await self.server.connect(self.kernel_id)
        await self.writer.execute(SLIDER)
        self.model_id = await self.writer.evaluate("s.model_id")
        self.peers = await self.server.lights(self.kernel_id, self.clients - 1)
        await quiesce(self.peers)

    async def once(self, value: int, cell_seconds: float) -> None:
        """One update sent half a cell in; the time until each peer has the value."""
        cell = await busy(self.writer, cell_seconds)
        await asyncio.sleep(cell_seconds / 2)
        arrivals = [peer.wait_for_value(value) for peer in self.peers]
        sent = time.time()
        self.writer.update(self.model_id, {"value": value})
        done = await asyncio.wait_for(asyncio.gather(*arrivals), cell_seconds + 30)
        self.latencies += [arrived - sent for arrived, _ in done]
        await self.writer.wait_for(lambda m: is_idle_after(m, cell), timeout=cell_seconds + 30)

    async def close(self) -> None:
        self.writer.close()
        await drop_kernel(self.server, self.kernel_id, self.peers)


async def peers(servers: dict[str, Server], config: Config) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {name: {} for name in servers}
    for clients in config.peer_clients:
        setups = {name: PeerSetup(server, clients) for name, server in servers.items()}
        for setup in setups.values():
            await setup.open()
        for value in range(1, config.peer_updates + 1):  # alternate relay and stock
            for setup in setups.values():
                await setup.once(value, config.peer_cell_s)
        for name, setup in setups.items():
            await setup.close()
            results[name][f"peer{clients}_p50_s"] = percentile(setup.latencies, 0.5)
            results[name][f"peer{clients}_p99_s"] = percentile(setup.latencies, 0.99)
            results[name][f"peer{clients}_samples"] = len(setup.latencies)
    return results


# -- 2b. slider drags ---------------------------------------------------------------


async def drag_item(server: Server, config: Config) -> dict[str, Any]:
    busy_drag = await drag_busy(server, config.drag_clients, config.drag_cell_s, config.drag_steps)
    idle_drag = await drag_slow_observer(server, config.drag_clients, config.drag_steps)
    return {**busy_drag, **idle_drag}


# -- 3. snapshot of many widgets, kernel idle ------------------------------------------


async def snapshot(servers: dict[str, Server], config: Config) -> dict[str, dict[str, Any]]:
    code = (
        "import ipywidgets as W\n"
        f"sliders = [W.IntSlider(value=i, max=10**6) for i in range({config.snapshot_sliders})]"
    )
    kernels = {name: await new_kernel(server, code) for name, server in servers.items()}
    times: dict[str, list[float]] = {name: [] for name in servers}
    sizes: dict[str, tuple[int, int]] = {}
    for _ in range(config.snapshot_reps):  # alternate relay and stock
        for name, server in servers.items():
            joiner = await server.light(kernels[name][0])
            started = time.time()
            arrived, frame = await joiner.request_states()
            times[name].append(arrived - started)
            sizes[name] = (len(content_of(frame)["data"]["states"]), len(frame))
            joiner.close()
    out = {}
    for name, server in servers.items():
        kernel_id, owner = kernels[name]
        await drop_kernel(server, kernel_id, [owner])
        out[name] = {
            "snapshot_s": statistics.median(times[name]),
            "snapshot_runs_s": [round(t, 4) for t in times[name]],
            "snapshot_models": sizes[name][0],
            "snapshot_bytes": sizes[name][1],
        }
    return out


# -- 4. a burst of kernel-side updates to many clients ---------------------------------


async def burst(server: Server, config: Config) -> dict[str, Any]:
    """The kernel sets a slider ``burst_updates`` times as fast as it can; the time until
    every client shows the final value, and how many update messages each received (the
    relay coalesces queued updates for a client that falls behind)."""
    final = config.burst_updates
    kernel_id, owner = await new_kernel(server, SLIDER)
    clients = [owner, *await server.lights(kernel_id, config.burst_clients - 1)]
    await quiesce(clients)
    for client in clients:
        client.keep_arrivals = False
        client.updates = 0
    timeout = 180.0
    finals = [client.wait_for_value(final) for client in clients]
    with CpuMeter(server) as cpu:
        started = time.time()
        idle = owner.start_execute(f"for i in range(1, {final + 1}):\n    s.value = i")
        try:
            done = await asyncio.wait_for(asyncio.gather(*finals), timeout)
            elapsed = max(arrived for arrived, _ in done) - started
        except asyncio.TimeoutError:
            elapsed = math.inf
        cell_end, _ = await asyncio.wait_for(idle, timeout)
    received = sorted(client.updates for client in clients)
    await drop_kernel(server, kernel_id, clients)
    return {
        "burst_s": elapsed,
        "burst_cell_s": cell_end - started,
        "burst_all_final": all(c.last_value == final for c in clients),
        "burst_updates_received_min": received[0],
        "burst_updates_received_median": received[len(received) // 2],
        "burst_updates_received_max": received[-1],
        "burst_cpu": cpu.as_dict(),
    }


# -- 5. how many clients one kernel serves at 20 updates/s -----------------------------

RATE = 20  # updates per second
P99_LIMIT = 0.25


async def scale_step(server: Server, clients: int, seconds: float) -> dict[str, Any]:
    count = int(seconds * RATE)
    kernel_id, owner = await new_kernel(server, SLIDER)
    members: list[LightClient] = [owner]
    step: dict[str, Any] = {"clients": clients}
    try:
        connect_started = time.monotonic()
        members += await asyncio.wait_for(server.lights(kernel_id, clients - 1), 120)
        step["connect_s"] = round(time.monotonic() - connect_started, 2)
        await quiesce(members)
        step["settle_s"] = round(time.monotonic() - connect_started - step["connect_s"], 2)
        code = (
            "import time\nsent = []\nt0 = time.time()\n"
            f"for i in range(1, {count + 1}):\n"
            "    sent.append(time.time())\n"
            "    s.value = i\n"
            f"    time.sleep(max(0.0, t0 + i / {RATE} - time.time()))"
        )
        finals = [member.wait_for_value(count) for member in members]
        with CpuMeter(server) as cpu:
            await owner.execute(code, timeout=seconds + 60)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*finals), 15)
        sent = await owner.evaluate("sent")
    except (asyncio.TimeoutError, ConnectionError, OSError) as error:
        step.update(ok=False, error=f"{type(error).__name__}: {error}")
        await drop_kernel(server, kernel_id, members)
        return step
    latencies, missing = [], 0
    for member in members:
        for value, at in enumerate(sent, start=1):
            arrived = member.arrivals.get(value)
            if arrived is None:
                missing += 1
                latencies.append(math.inf)
            else:
                latencies.append(arrived - at)
    await drop_kernel(server, kernel_id, members)
    worst = [max(latencies[i :: len(sent)]) for i in range(len(sent))]  # per update
    p99 = percentile(latencies, 0.99)
    all_final = all(member.last_value == count for member in members)
    step.update(
        p50_s=round(percentile(latencies, 0.5), 4),
        p99_s=round(p99, 4),
        missing=missing,
        all_final=all_final,
        worst_update_s=round(max(worst), 4),
        worst_updates=[i + 1 for i in sorted(range(len(worst)), key=worst.__getitem__)[-5:]],
        ok=p99 < P99_LIMIT and all_final,
        cpu=cpu.as_dict(),
    )
    return step


async def quiet(servers: dict[str, Server], timeout: float = 30) -> float:
    """Wait until no server (nor its kernels) uses more than 10 % of a CPU, so that one
    server still tearing down a step (a failed stock step can keep it busy for many
    seconds) does not take CPU from the next step of the other. Returns the wait."""
    started = time.monotonic()
    pids = [pid for server in servers.values() for pid in (server.pid, *children(server.pid))]
    while time.monotonic() - started < timeout:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(0.5)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.05:
            break
    return round(time.monotonic() - started, 2)


async def scale(servers: dict[str, Server], config: Config) -> dict[str, dict[str, Any]]:
    steps: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for clients in config.scale_steps:
        for name, server in servers.items():  # relay, then stock, at each size
            last = steps[name][-1] if steps[name] else None
            if last is not None and ("error" in last or last["p99_s"] > 10 * P99_LIMIT):
                continue  # hopeless: stop this server's search
            waited = await quiet(servers)
            result = await scale_step(server, clients, config.scale_seconds)
            result["quiet_wait_s"] = waited
            print(f"scale {name} {json.dumps(result)}", flush=True)
            steps[name].append(result)
    out = {}
    for name in servers:
        passed = [step["clients"] for step in steps[name] if step["ok"]]
        out[name] = {"scale_max_clients": max(passed, default=0), "scale_steps": steps[name]}
    return out


# -- 6. memory per idle model ----------------------------------------------------------


async def server_memory(server: Server, sliders: int) -> dict[str, Any]:
    """RSS growth of the server process while a kernel creates ``sliders`` IntSliders, with
    one client connected (stock then has the messages pass through it, as with a browser)."""
    kernel_id, owner = await new_kernel(server, "import ipywidgets as W")
    settle = 1.0 if sliders > 500 else 0.2
    await asyncio.sleep(settle)
    before = rss_bytes(server.pid)
    await owner.execute(f"sliders = [W.IntSlider(value=i) for i in range({sliders})]")
    await asyncio.sleep(settle)
    after = rss_bytes(server.pid)
    result: dict[str, Any] = {"rss_delta_bytes": after - before}
    if server.relay:
        listing = await server.request("GET", "/api/widget-relay/kernels")
        entry = next(k for k in listing["kernels"] if k["kernel_id"] == kernel_id)
        result.update(models=entry["models"], state_bytes=entry["state_bytes"])
    await drop_kernel(server, kernel_id, [owner])
    return result


async def memory_item(servers: dict[str, Server], config: Config) -> dict[str, dict[str, Any]]:
    traced = memory.traced_table(config.memory_sliders)
    real = await paired(servers, lambda server: server_memory(server, config.memory_sliders))
    relay, stock = real["relay"], real["stock"]
    models = relay.get("models") or traced["models"]
    extra = (relay["rss_delta_bytes"] - stock["rss_delta_bytes"]) / models
    return {
        "relay": {
            **{f"memory_{key}": value for key, value in traced.items()},
            "memory_rss_delta_bytes": relay["rss_delta_bytes"],
            "memory_rss_per_model_over_stock": extra,
            "memory_rss_models": models,
            "memory_rss_state_bytes_per_model": relay.get("state_bytes", 0) / models,
        },
        "stock": {"memory_rss_delta_bytes": stock["rss_delta_bytes"]},
    }


# -- the run ---------------------------------------------------------------------------


async def soak_item(servers: dict[str, Server], config: Config) -> dict[str, dict[str, Any]]:
    """Memory over time on both servers; the relay's bookkeeping at the end."""
    soak_config = SoakConfig(minutes=config.soak_minutes, clients=config.soak_clients)
    return await paired(servers, lambda server: soak(server, soak_config))


def merge(results: dict[str, dict[str, Any]], part: dict[str, dict[str, Any]]) -> None:
    for name, values in part.items():
        results.setdefault(name, {}).update(values)


async def main(
    smoke: bool,
    only: tuple[str, ...] = ITEMS,
    zmq_max_sockets: int = 0,
    scale_steps: str = "",
    soak_minutes: float = 0,
) -> dict[str, Any]:
    config = SMOKE if smoke else FULL
    if soak_minutes:
        config = dataclasses.replace(config, soak_minutes=soak_minutes)
    if scale_steps:
        config = dataclasses.replace(
            config, scale_steps=tuple(int(n) for n in scale_steps.split(","))
        )
    results: dict[str, dict[str, Any]] = {"relay": {}, "stock": {}}
    started = time.monotonic()
    timings: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        relay, stock = await asyncio.gather(  # start both at once
            stack.enter_async_context(jupyter_server(True, zmq_max_sockets=zmq_max_sockets)),
            stack.enter_async_context(jupyter_server(False, zmq_max_sockets=zmq_max_sockets)),
        )
        servers = {"relay": relay, "stock": stock}
        timings["servers_started"] = round(time.monotonic() - started, 1)
        mark = time.monotonic()
        items: dict[str, Callable[[], Awaitable[dict[str, dict[str, Any]]]]] = {
            "late_joiner": lambda: paired(servers, lambda s: late_joiner(s, config.joiner_cell_s)),
            "peers": lambda: peers(servers, config),
            "drag": lambda: paired(servers, lambda s: drag_item(s, config)),
            "snapshot": lambda: snapshot(servers, config),
            "burst": lambda: paired(servers, lambda s: burst(s, config)),
            "scale": lambda: scale(servers, config),
            "memory": lambda: memory_item(servers, config),
            "soak": lambda: soak_item(servers, config),
        }
        for item, measure in items.items():
            if item in only:
                merge(results, await measure())
                timings[item] = round(time.monotonic() - mark, 1)
                mark = time.monotonic()
    run = {
        "mode": "smoke" if smoke else "full",
        "seconds": round(time.monotonic() - started, 1),
        "item_seconds": timings,
        "machine": machine(),
        "zmq_max_sockets": zmq_max_sockets
        or "as shipped (relay: WidgetRelay.zmq_max_sockets default; stock: libzmq's 1023)",
    }
    output = {"run": run, **results}
    print(json.dumps(output, indent=2, default=str))
    print(table(results, config))
    return output


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
    }


def _ms(value: float) -> str:
    return "not all received" if math.isinf(value) else f"{value * 1000:.1f} ms"


def table(results: dict[str, dict[str, Any]], config: Config) -> str:
    relay, stock = results["relay"], results["stock"]
    lines = ["| measure | relay | stock | relay / stock |", "|---|---|---|---|"]

    def row(label: str, key: str) -> None:
        if key in relay and key in stock:
            a, b = relay[key], stock[key]
            ratio = f"{a / b:.4f}" if b and not math.isinf(a) and not math.isinf(b) else "n/a"
            lines.append(f"| {label} | {_ms(a)} | {_ms(b)} | {ratio} |")

    row("late joiner gets widget states, kernel busy", "late_joiner_s")
    for n in config.peer_clients:
        row(f"peer sees a change, kernel busy, {n} clients, p50", f"peer{n}_p50_s")
        row(f"peer sees a change, kernel busy, {n} clients, p99", f"peer{n}_p99_s")
    n, steps = config.drag_clients, config.drag_steps
    row(
        f"drag while busy ({n} clients, {steps} steps at {DRAG_RATE}/s): step to peer, p50",
        "drag_busy_p50_s",
    )
    row(
        f"drag while busy ({n} clients, {steps} steps at {DRAG_RATE}/s): step to peer, p99",
        "drag_busy_p99_s",
    )
    if "drag_idle_observer_calls" in relay:
        lines.append(
            f"| drag while idle, {OBSERVER_S * 1000:.0f} ms observer: steps a peer sees per s "
            f"| {relay['drag_idle_steps_seen_per_s']:.1f} "
            f"| {stock['drag_idle_steps_seen_per_s']:.1f} | |"
        )
        lines.append(
            f"| drag while idle, {OBSERVER_S * 1000:.0f} ms observer: observer calls for "
            f"{steps} steps | {relay['drag_idle_observer_calls']} | "
            f"{stock['drag_idle_observer_calls']} | |"
        )
    row(f"snapshot, {config.snapshot_sliders} IntSliders, kernel idle (median)", "snapshot_s")
    row(
        f"{config.burst_updates} kernel updates to {config.burst_clients} clients, "
        "until all show the last",
        "burst_s",
    )
    if "burst_updates_received_min" in relay:
        lines.append(
            "| update messages received per client (min / median / max) | "
            + " | ".join(
                f"{r['burst_updates_received_min']} / {r['burst_updates_received_median']} / "
                f"{r['burst_updates_received_max']}"
                for r in (relay, stock)
            )
            + " | |"
        )
    if "scale_max_clients" in relay:
        a, b = relay["scale_max_clients"], stock["scale_max_clients"]
        ratio = f"{a / b:.2f}" if b else "n/a"
        lines.append(
            f"| most clients at {RATE} updates/s with p99 < {P99_LIMIT * 1000:.0f} ms "
            f"(tried {', '.join(map(str, config.scale_steps))}) | {a} | {b} | {ratio} |"
        )
    if "memory_bytes_per_model_over_state" in relay:
        lines.append(
            "| server memory per idle model beyond its state bytes (tracemalloc) | "
            f"{relay['memory_bytes_per_model_over_state']:.0f} B | | |"
        )
        lines.append(
            "| server RSS growth per model, relay minus stock | "
            f"{relay['memory_rss_per_model_over_stock']:.0f} B | | |"
        )
    if "soak_rss_growth_bytes" in relay and "soak_rss_growth_bytes" in stock:
        growth = [
            f"{r['soak_rss_growth_bytes'] / 2**20:.1f} MiB "
            f"({r['soak_rss_slope_bytes_per_min'] / 2**20:.2f} MiB/min)"
            for r in (relay, stock)
        ]
        lines.append(
            f"| soak, {relay['soak_clients']} clients, {relay['soak_minutes']:g} min: RSS growth "
            f"after warm-up (slope) | {growth[0]} | {growth[1]} | |"
        )
        lines.append(f"| soak: relay bookkeeping left | {relay['soak_unsettled_at_end']} | | |")
    mode = "smoke" if config.smoke else "full"
    return (
        f"Mode: {mode}; machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}\n\n" + "\n".join(lines)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="few clients, short cells")
    parser.add_argument("--only", default=",".join(ITEMS), help=f"comma list of {ITEMS}")
    parser.add_argument(
        "--zmq-max-sockets",
        type=int,
        default=0,
        help=(
            "give both servers this ZMQ socket cap (relay: --WidgetRelay.zmq_max_sockets; "
            "stock: benchmarks/zmq_sockets.py); 0 = each as shipped (relay 65535, stock 1023)"
        ),
    )
    parser.add_argument("--scale-steps", default="", help="client counts, e.g. 400,600")
    parser.add_argument(
        "--soak-minutes", type=float, default=0, help="soak length (default: 20, smoke 1)"
    )
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.smoke,
            tuple(arguments.only.split(",")),
            arguments.zmq_max_sockets,
            arguments.scale_steps,
            arguments.soak_minutes,
        )
    )
