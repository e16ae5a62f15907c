"""Start real jupyter servers (relay on and off) and connect websocket clients to them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from jupyter_widget_relay.core import wire
from tests.client import KernelClient

from .light import LightClient
from .light import connect as light_connect

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    relay: bool
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        response = await AsyncHTTPClient().fetch(
            HTTPRequest(
                f"{self.url}{path}",
                method=method,
                headers={"Authorization": f"token {self.token}"},
                body=None if body is None else json.dumps(body),
                request_timeout=120,
            )
        )
        return json.loads(response.body) if response.body else None

    async def start_kernel(self) -> str:
        return str((await self.request("POST", "/api/kernels", {"name": "python3"}))["id"])

    async def light(self, kernel_id: str) -> LightClient:
        """A cheap load client (see light.py), connected and ready."""
        client = await light_connect(self.url, self.token, kernel_id)
        await client.ready()
        return client

    async def lights(self, kernel_id: str, count: int, batch: int = 25) -> list[LightClient]:
        clients: list[LightClient] = []
        for start in range(0, count, batch):
            size = min(batch, count - start)
            clients += await asyncio.gather(*(self.light(kernel_id) for _ in range(size)))
        return clients

    async def connect(self, kernel_id: str, protocol: str = "v1") -> KernelClient:
        session = uuid.uuid4().hex
        ws_url = self.url.replace("http", "ws", 1)
        request = HTTPRequest(
            f"{ws_url}/api/kernels/{kernel_id}/channels?session_id={session}",
            headers={"Authorization": f"token {self.token}"},
        )
        subprotocols = [wire.V1_PROTOCOL] if protocol == "v1" else None
        ws = await websocket_connect(request, subprotocols=subprotocols, max_message_size=1 << 30)
        return KernelClient(ws, protocol, session)


@asynccontextmanager
async def jupyter_server(
    relay: bool, extra: list[str] | None = None, zmq_max_sockets: int = 0
) -> AsyncIterator[Server]:
    root = tempfile.mkdtemp(prefix="relay-bench-")
    port, token = free_port(), uuid.uuid4().hex
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=os.path.join(root, "config"),
        JUPYTER_RUNTIME_DIR=os.path.join(root, "runtime"),
        PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
    )
    if zmq_max_sockets and relay:
        # the relay's own setting (its default, 65535, applies when this is 0)
        extra = [*(extra or []), f"--WidgetRelay.zmq_max_sockets={zmq_max_sockets}"]
    elif zmq_max_sockets:
        # stock has no such setting: the same cap through a kernel manager subclass
        env["RELAY_BENCH_ZMQ_MAX_SOCKETS"] = str(zmq_max_sockets)
        extra = [
            *(extra or []),
            "--ServerApp.kernel_manager_class=benchmarks.zmq_sockets.ManySocketsKernelManager",
        ]
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--allow-root",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.jpserver_extensions={'jupyter_widget_relay': True}",
        f"--WidgetRelay.enabled={relay}",
        "--log-level=WARN",
        *(extra or []),
    ]
    log_dir = os.environ.get("RELAY_BENCH_LOG_DIR")  # keep the servers' logs there
    log = (
        os.open(
            os.path.join(log_dir, f"server-{'relay' if relay else 'stock'}-{port}.log"),
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        )
        if log_dir
        else subprocess.DEVNULL
    )
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    server = Server(f"http://127.0.0.1:{port}", token, relay, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                await server.request("GET", "/api/status")
                break
            except Exception:
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError("jupyter server did not start") from None
                await asyncio.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
        shutil.rmtree(root, ignore_errors=True)
        if log != subprocess.DEVNULL:
            os.close(log)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# -- process accounting from /proc (Linux), for server, kernel and client CPU and memory --

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0.0 where /proc is unavailable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                found += [int(child) for child in listing.read().split()]
    except OSError:
        pass
    return found


class CpuMeter:
    """CPU seconds used by the server, its kernels and this (client) process over a block."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> CpuMeter:
        self._start = self._read()
        self._wall = time.monotonic()
        return self

    def _read(self) -> tuple[float, float, float]:
        return (
            cpu_seconds(self.server.pid),
            sum(cpu_seconds(pid) for pid in children(self.server.pid)),
            time.process_time(),
        )

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        self.wall = time.monotonic() - self._wall
        self.server_cpu, self.kernel_cpu, self.client_cpu = (
            b - a for a, b in zip(self._start, end, strict=True)
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_s": round(self.wall, 3),
            "server_cpu_s": round(self.server_cpu, 3),
            "kernel_cpu_s": round(self.kernel_cpu, 3),
            "client_cpu_s": round(self.client_cpu, 3),
        }
