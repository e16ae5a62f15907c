"""Kernels behind a gateway: a real Jupyter Kernel Gateway on a loopback port, and a real
``jupyter server --gateway-url`` with the relay installed and enabled.

The relay reads kernels' ZMQ channels, which a gateway does not expose: it stays off with
one startup warning, and the server's own gateway connections work as without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import jupyter_server

from .client import is_idle_after


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def kernel_gateway(tmp_path: Path) -> Iterator[str]:
    """A Jupyter Kernel Gateway process; yields its URL."""
    port = free_port()
    log = (tmp_path / "gateway.log").open("w")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "gateway-runtime"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernel_gateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={port}",
            "--JupyterWebsocketPersonality.list_kernels=True",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError((tmp_path / "gateway.log").read_text()) from None
            time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@contextlib.asynccontextmanager
async def server_behind(gateway_url: str, logs: Path) -> AsyncIterator[Any]:
    os.makedirs(logs, exist_ok=True)
    os.environ["RELAY_BENCH_LOG_DIR"] = str(logs)
    try:
        async with jupyter_server(True, extra=[f"--gateway-url={gateway_url}"]) as server:
            yield server
    finally:
        del os.environ["RELAY_BENCH_LOG_DIR"]


async def test_the_relay_stays_off_and_never_breaks_a_gateway_kernel(
    kernel_gateway: str, tmp_path: Path
) -> None:
    async with server_behind(kernel_gateway, tmp_path / "logs") as server:
        status = await server.request("GET", "/api/widget-relay/status")
        assert status["enabled"] is False and "gateway" in status["reason"]
        kernel_id = await server.start_kernel()
        gateway_kernels = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"{kernel_gateway}/api/kernels", timeout=10).read()
        )
        assert kernel_id.encode() in gateway_kernels, "the kernel runs in the gateway"
        a = await server.connect(kernel_id, "json")
        b = await server.connect(kernel_id, "json")
        await a.execute("import ipywidgets as W\ns = W.IntSlider(value=3)")
        model_id = await a.evaluate("s.model_id")
        states = await b.request_states(timeout=30)
        assert states["content"]["data"]["states"][model_id]["state"]["value"] == 3
        b.update(model_id, {"value": 7})
        await b.execute("pass")
        assert await a.evaluate("s.value") == 7
        cell = await a.start_running("import time; time.sleep(0.5)")
        await a.wait_for(lambda m: is_idle_after(m, cell), timeout=30)
        a.close()
        b.close()
    log = "".join(path.read_text() for path in (tmp_path / "logs").iterdir())
    warnings = [line for line in log.splitlines() if "widget relay: off" in line]
    assert len(warnings) == 1 and "behind a gateway" in warnings[0], log[-3000:]
