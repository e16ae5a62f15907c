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
async def jupyter_server(relay: bool, extra: list[str] | None = None) -> AsyncIterator[Server]:
    root = tempfile.mkdtemp(prefix="relay-bench-")
    port, token = free_port(), uuid.uuid4().hex
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=os.path.join(root, "config"),
        JUPYTER_RUNTIME_DIR=os.path.join(root, "runtime"),
    )
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
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
