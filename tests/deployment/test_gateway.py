"""Kernels behind a gateway: a real Jupyter Kernel Gateway on a loopback port, and a real
``jupyter server --gateway-url`` with the relay installed and enabled.

The relay follows each kernel through its own websocket to the gateway; browsers' requests
and replies go through their own gateway connections, as stock. The core scenarios run
through it: late join and peers while a cell runs, Output capture, saving, restart, and
kernels that die or are shut down on the gateway.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
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

from ..client import is_idle_after, state_of
from ..server.helpers import eventually
from .gateway_proxy import cut, start_proxy


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
async def server_behind(
    gateway_url: str, logs: Path, extra: list[str] | None = None
) -> AsyncIterator[Any]:
    os.makedirs(logs, exist_ok=True)
    os.environ["RELAY_BENCH_LOG_DIR"] = str(logs)
    try:
        async with jupyter_server(
            True,
            extra=[
                f"--gateway-url={gateway_url}",
                "--WidgetRelay.follow_gateway_kernels=True",
                *(extra or []),
            ],
        ) as server:
            yield server
    finally:
        os.environ.pop("RELAY_BENCH_LOG_DIR", None)  # read when a server starts


def server_log(logs: Path) -> str:
    return "".join(path.read_text() for path in logs.iterdir())


def assert_clean(log: str) -> None:
    """Exactly one startup warning about the gateway, and no errors while it served
    (other extensions' shutdown noise after the stop signal is not ours)."""
    log = log.split("received signal 15")[0]
    warnings = [line for line in log.splitlines() if "behind a gateway" in line]
    assert len(warnings) == 1 and "Off behind a gateway" in warnings[0], log[-3000:]
    assert "Traceback" not in log and "[E " not in log, log[-3000:]


def gateway_kernels(gateway: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{gateway}/api/kernels", timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


async def relay_kernel(server: Any, kernel_id: str) -> dict[str, Any] | None:
    try:
        return await server.request("GET", f"/api/widget-relay/kernels/{kernel_id}")  # type: ignore[no-any-return]
    except Exception:
        return None


def is_status(message: dict[str, Any], state: str) -> bool:
    return bool(
        message["header"]["msg_type"] == "status" and message["content"]["execution_state"] == state
    )


def value_is(value: int) -> Any:
    return lambda m: (
        m["header"]["msg_type"] == "comm_msg"
        and m["content"]["data"].get("state", {}).get("value") == value
    )


SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=3, max=1000)"


async def a_slider_round_trip(server: Any, kernel_id: str) -> None:
    """Two browsers: one makes a slider, the other gets its state and changes it."""
    a = await server.connect(kernel_id, "json")
    b = await server.connect(kernel_id, "json")
    await a.execute(SLIDER)
    model_id = await a.evaluate("s.model_id")
    states = await b.request_states(timeout=30)
    assert states["content"]["data"]["states"][model_id]["state"]["value"] == 3
    b.update(model_id, {"value": 7})
    await b.execute("pass")
    assert await a.evaluate("s.value") == 7
    a.close()
    b.close()


async def test_late_joiners_and_peers_are_served_while_a_gateway_kernel_runs_a_cell(
    kernel_gateway: str, tmp_path: Path
) -> None:
    async with server_behind(kernel_gateway, tmp_path / "logs") as server:
        status = await server.request("GET", "/api/widget-relay/status")
        assert status["enabled"] is True and status["gateway"]["url"] == kernel_gateway
        kernel_id = await server.start_kernel()
        assert kernel_id in {k["id"] for k in gateway_kernels(kernel_gateway)}
        a = await server.connect(kernel_id, "json")
        b = await server.connect(kernel_id, "json")
        await a.execute(SLIDER)
        model_id = await a.evaluate("s.model_id")
        await b.request_states()
        cell = await a.start_running("import time; time.sleep(3)")
        started = time.monotonic()
        late = await server.connect(kernel_id, "json")
        joined = time.monotonic()
        states = state_of(await late.request_states(timeout=2.5))
        late_s = time.monotonic() - joined
        assert states[model_id]["value"] == 3
        sent = time.monotonic()
        b.update(model_id, {"value": 7})
        await a.wait_for(value_is(7), timeout=2)
        await late.wait_for(value_is(7), timeout=2)
        peer_s = time.monotonic() - sent
        assert time.monotonic() - started < 2.5, "answered well before the cell ends"
        assert not any(is_idle_after(m, cell) for m in a.messages), "the cell ended first"
        print(f"\nthrough the gateway, while busy: late joiner {late_s:.3f} s, peer {peer_s:.3f} s")
        await a.wait_for(lambda m: is_idle_after(m, cell), timeout=30)
        assert await a.evaluate("s.value") == 7, "the kernel ends on the peer's value"
        summary = await relay_kernel(server, kernel_id)
        assert summary is not None and len(summary["clients"]) == 3
        for client in (a, b, late):
            client.close()
    assert_clean(server_log(tmp_path / "logs"))


async def test_a_kernel_with_widgets_before_the_relay_followed_it_is_seeded(
    kernel_gateway: str, tmp_path: Path
) -> None:
    """A second server behind the same gateway begins to follow a kernel that already has
    widgets (as after a restart of the server, which the gateway outlives): the relay
    fills its table from the kernel, and late joiners get every model with the kernel's
    values, also while the kernel runs a cell."""
    async with server_behind(kernel_gateway, tmp_path / "first") as first:
        kernel_id = await first.start_kernel()
        owner = await first.connect(kernel_id, "json")
        await owner.execute(SLIDER + "\ns.value = 8\nimport os\nimg = W.Image(value=b'png')")
        model_id = await owner.evaluate("s.model_id")
        image_id = await owner.evaluate("img.model_id")
        models = set(await owner.evaluate("sorted(W.Widget.widgets)"))
        async with server_behind(kernel_gateway, tmp_path / "second") as second:
            # a session on the gateway's kernel, as a frontend that knows its id makes one
            session = await second.request(
                "POST",
                "/api/sessions",
                {"path": "seeded.ipynb", "type": "notebook", "kernel": {"id": kernel_id}},
            )
            assert session["kernel"]["id"] == kernel_id
            joiner = await second.connect(kernel_id, "json")

            async def seeded() -> bool:
                summary = await relay_kernel(second, kernel_id)
                return summary is not None and summary["models"] == len(models)

            # (a request while the relay seeds goes to the kernel, which answers on the
            # control comm opened last: a stock race between any two askers)
            await eventually(seeded, timeout=15)
            states = state_of(await joiner.request_states(timeout=30))
            assert states[model_id]["value"] == 8 and states[image_id]["value"] == b"png"
            cell = await owner.start_running("import time; time.sleep(3)")
            started = time.monotonic()
            late = await second.connect(kernel_id, "json")
            states = state_of(await late.request_states(timeout=2.5))
            assert set(states) == models and states[model_id]["value"] == 8
            assert time.monotonic() - started < 2.5, "answered from the table while busy"
            assert not any(is_idle_after(m, cell) for m in owner.messages), "the cell ended"
            late.update(model_id, {"value": 11})
            await owner.wait_for(lambda m: is_idle_after(m, cell), timeout=30)
            await joiner.execute("pass")
            assert await joiner.evaluate("s.value") == 11
            for client in (joiner, late):
                client.close()
        owner.close()
    assert_clean(server_log(tmp_path / "second"))


async def test_binary_buffers_both_ways_through_a_gateway(
    kernel_gateway: str, tmp_path: Path
) -> None:
    """Messages with buffers are binary frames on the gateway's websocket: the kernel's
    reach browsers whole, and a browser's reach the kernel."""
    async with server_behind(kernel_gateway, tmp_path / "logs") as server:
        kernel_id = await server.start_kernel()
        a = await server.connect(kernel_id, "json")
        await a.execute("import ipywidgets as W, os\nimg = W.Image(value=os.urandom(100_000))")
        model_id = await a.evaluate("img.model_id")
        expected = base64.b64decode(
            await a.evaluate("__import__('base64').b64encode(img.value).decode()")
        )
        late = await server.connect(kernel_id, "json")
        assert state_of(await late.request_states())[model_id]["value"] == expected
        picture = os.urandom(1000)
        late.update(model_id, {}, buffer_paths=[["value"]], buffers=[picture])
        await late.execute("pass")
        assert await a.evaluate("img.value.hex()") == picture.hex()
        a.close()
        late.close()
    assert_clean(server_log(tmp_path / "logs"))


async def test_output_capture_and_saving_through_a_gateway(
    kernel_gateway: str, tmp_path: Path
) -> None:
    async with server_behind(kernel_gateway, tmp_path / "logs") as server:
        kernel_id = await server.start_kernel()
        a = await server.connect(kernel_id, "json")
        await a.execute("import ipywidgets as W\nout = W.Output()")
        out_id = await a.evaluate("out.model_id")
        a.close()  # no browser is connected while the output is captured
        b = await server.connect(kernel_id, "json")
        await b.execute("with out:\n    print('captured')")
        b.close()
        await asyncio.sleep(0.3)
        late = await server.connect(kernel_id, "json")
        outputs = state_of(await late.request_states())[out_id]["outputs"]
        assert outputs == [{"output_type": "stream", "name": "stdout", "text": "captured\n"}]
        request = await late.execute(f"{SLIDER}\ns.value = 12\ns")
        model_id = await late.evaluate("s.model_id")
        view = next(
            m
            for m in late.messages
            if m["parent_header"].get("msg_id") == request["header"]["msg_id"]
            and m["header"]["msg_type"] == "execute_result"
        )
        path = "saved.ipynb"
        await server.request(
            "POST",
            "/api/sessions",
            {"path": path, "type": "notebook", "name": "", "kernel": {"id": kernel_id}},
        )
        cell = {
            "cell_type": "code",
            "execution_count": 1,
            "metadata": {},
            "source": "s",
            "outputs": [
                {
                    "output_type": "execute_result",
                    "execution_count": 1,
                    "metadata": {},
                    "data": view["content"]["data"],
                }
            ],
        }
        notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        await server.request(
            "PUT",
            f"/api/contents/{path}",
            {"type": "notebook", "format": "json", "content": notebook},
        )
        stored = await server.request("GET", f"/api/contents/{path}?content=1")
        saved = stored["content"]["metadata"]["widgets"][
            "application/vnd.jupyter.widget-state+json"
        ]["state"]
        assert saved[model_id]["state"]["value"] == 12
        late.close()
    assert_clean(server_log(tmp_path / "logs"))


async def test_a_restart_through_the_server_clears_the_table_and_tells_clients(
    kernel_gateway: str, tmp_path: Path
) -> None:
    async with server_behind(kernel_gateway, tmp_path / "logs") as server:
        kernel_id = await server.start_kernel()
        a = await server.connect(kernel_id, "json")
        await a.execute(SLIDER)
        old_id = await a.evaluate("s.model_id")
        summary = await relay_kernel(server, kernel_id)
        assert summary is not None and summary["models"] >= 1
        before = summary["models"]  # the slider, its layout and style
        since = len(a.messages)
        await server.request("POST", f"/api/kernels/{kernel_id}/restart", {})
        await a.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "status"
                and m["content"]["execution_state"] == "restarting"
            ),
            start=since,
        )
        summary = await relay_kernel(server, kernel_id)
        assert summary is not None and summary["models"] == 0
        await a.execute(SLIDER.replace("3", "5"))
        new_id = await a.evaluate("s.model_id")
        late = await server.connect(kernel_id, "json")
        states = state_of(await late.request_states())
        assert new_id in states and old_id not in states and len(states) == before
        assert states[new_id]["value"] == 5
        late.update(new_id, {"value": 9})
        await a.wait_for(value_is(9), timeout=2)
        await late.execute("pass")  # after the update, on the same connection
        assert await a.evaluate("s.value") == 9
        restarts = [m for m in a.messages[since:] if is_status(m, "restarting")]
        assert len(restarts) == 1, "clients are told once"
        # Restarted on the gateway itself (no kernel action in this server): the same.
        since = len(a.messages)
        await asyncio.to_thread(
            lambda: urllib.request.urlopen(
                urllib.request.Request(
                    f"{kernel_gateway}/api/kernels/{kernel_id}/restart", data=b"{}", method="POST"
                ),
                timeout=30,
            ).read()
        )
        await a.wait_for(lambda m: is_status(m, "restarting"), start=since, timeout=30)
        summary = await relay_kernel(server, kernel_id)
        assert summary is not None and summary["models"] == 0
        await a.execute(SLIDER)
        assert await a.evaluate("s.value") == 3
        a.close()
        late.close()
    assert_clean(server_log(tmp_path / "logs"))


async def test_a_kernel_that_dies_or_is_shut_down_in_the_gateway(
    kernel_gateway: str, tmp_path: Path
) -> None:
    async with server_behind(
        kernel_gateway, tmp_path / "logs", ["--WidgetRelay.kernel_check_interval=0.5"]
    ) as server:
        kernel_id = await server.start_kernel()
        a = await server.connect(kernel_id, "json")
        await a.execute(SLIDER)
        # Its process dies: the gateway restarts it and says so on iopub.
        since = len(a.messages)
        a.start_execute("import os; os._exit(1)")
        await a.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "status"
                and m["content"]["execution_state"] == "restarting"
            ),
            start=since,
            timeout=30,
        )
        summary = await relay_kernel(server, kernel_id)
        assert summary is not None and summary["models"] == 0
        await a.execute(SLIDER)
        model_id = await a.evaluate("s.model_id")
        late = await server.connect(kernel_id, "json")
        assert model_id in state_of(await late.request_states())
        # Shut down on the gateway itself: the relay drops the table.
        await asyncio.to_thread(
            lambda: urllib.request.urlopen(
                urllib.request.Request(
                    f"{kernel_gateway}/api/kernels/{kernel_id}", method="DELETE"
                ),
                timeout=10,
            ).read()
        )

        async def dropped() -> bool:
            return await relay_kernel(server, kernel_id) is None

        await eventually(dropped, timeout=15)
        a.close()
        late.close()
        # The server keeps serving.
        other = await server.start_kernel()
        c = await server.connect(other, "json")
        await c.execute(SLIDER)
        assert await c.evaluate("s.value") == 3
        c.close()
    log = server_log(tmp_path / "logs")
    assert_clean(log)
    assert "restarted in the gateway" in log and "clearing its widget table" in log


async def test_a_refused_relay_connection_leaves_browsers_stock(
    kernel_gateway: str, tmp_path: Path
) -> None:
    """The gateway (here a proxy in front of it) refuses the relay's own websocket: the
    kernel's browsers talk to it as without the relay, with one warning."""
    proxy_url, proxy = start_proxy(
        kernel_gateway, lambda request: "widget-relay-" in (request.query or "")
    )
    try:
        async with server_behind(proxy_url, tmp_path / "logs") as server:
            kernel_id = await server.start_kernel()
            await a_slider_round_trip(server, kernel_id)
    finally:
        proxy.stop()
    log = server_log(tmp_path / "logs")
    refused = [line for line in log.splitlines() if "without the relay" in line]
    assert refused and kernel_id in refused[0] and "403" in refused[0], log[-3000:]


def is_relay(request: Any) -> bool:
    return "widget-relay-" in (request.query or "")


async def test_browsers_get_their_iopub_back_when_the_relay_connection_drops(
    kernel_gateway: str, tmp_path: Path
) -> None:
    """The relay's own websocket to the gateway is cut mid-session: the relay stops
    following the kernel at once and its browsers get every later output from their own
    gateway connections; a new browser connection makes a new link (let through, or
    refused by the proxy), and late joiners still get the widgets."""
    refuse_relay = {"on": False}
    proxy_url, proxy = start_proxy(kernel_gateway, lambda r: refuse_relay["on"] and is_relay(r))
    try:
        async with server_behind(proxy_url, tmp_path / "logs") as server:
            kernel_id = await server.start_kernel()
            for refuse in (False, True):  # a new link is let through; then refused
                refuse_relay["on"] = False
                a = await server.connect(kernel_id, "json")
                await a.execute("print('before the cut')", timeout=60)
                refuse_relay["on"] = refuse
                assert cut(is_relay) == 1, "the relay's connection was open"
                deadline = time.monotonic() + 40
                while True:
                    try:
                        await a.execute("pass", timeout=3)
                        break
                    except TimeoutError:
                        assert time.monotonic() < deadline, "iopub never came back"
                for n in range(3):
                    request = await a.execute(f"print('after the cut', {n})", timeout=30)
                    outputs = [
                        m["content"]["text"]
                        for m in a.messages
                        if m["header"]["msg_type"] == "stream"
                        and m["parent_header"].get("msg_id") == request["header"]["msg_id"]
                    ]
                    # Once each, in order; a kernel may publish one print in parts.
                    assert "".join(outputs) == f"after the cut {n}\n", outputs
                a.close()
    finally:
        proxy.stop()


async def test_by_default_the_relay_stays_off_behind_a_gateway(
    kernel_gateway: str, tmp_path: Path
) -> None:
    """Without ``c.WidgetRelay.follow_gateway_kernels`` the relay stays off, with one
    warning, and the server's own gateway connections work as without it."""
    logs = tmp_path / "logs"
    async with server_behind(
        kernel_gateway, logs, extra=["--WidgetRelay.follow_gateway_kernels=False"]
    ) as server:
        status = await server.request("GET", "/api/widget-relay/status")
        assert status["enabled"] is False and "follow_gateway_kernels" in status["reason"]
        kernel_id = await server.start_kernel()
        await a_slider_round_trip(server, kernel_id)
    log = "".join(path.read_text() for path in logs.iterdir())
    warnings = [line for line in log.splitlines() if "widget relay: off" in line]
    assert len(warnings) == 1 and "behind a gateway" in warnings[0], log[-3000:]
