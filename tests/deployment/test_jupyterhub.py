"""A real JupyterHub with configurable-http-proxy, on loopback ports: alice shares her
single-user server with bob (JupyterHub 5+ sharing); carol may log in but has no access.

Everything goes through the hub's proxy, under ``/user/alice/``, with the users' own
API tokens (``Authorization: token ...``; JupyterHub 5+ refuses tokens in URLs):

- the relay's REST API and ``/metrics`` answer the users the hub lets in, nobody else;
- kernel websockets of alice and bob: bob's change reaches alice while a cell runs, and a
  late joiner's snapshot comes at once;
- repeated stop/start cycles through the hub's REST API, relay on and off: the relay
  does not make a stop slower than without it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Iterator

import pytest

from jupyter_widget_relay.core import wire

from ..browser.lab import ARTIFACTS_DIR, artifact_name
from ..client import KernelClient, is_idle_after
from .hub import Hub, proxy_cache_dir, proxy_command, running_hub

#: Relay-on stops may take this much longer than the slowest relay-off stop (seconds):
#: generous, since stops vary with the machine's load; a relay that held a stop up
#: would exceed it by far (the hub waits for SIGINT, then SIGTERM, before SIGKILL).
STOP_MARGIN_S = 5.0
STOP_CYCLES = 3


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Hub]:
    # The real proxy is required: installed with npm into the pytest cache if it is not
    # on $PATH (a RuntimeError says what to do if that fails).
    proxy = proxy_command(proxy_cache_dir(request.config, tmp_path_factory.getbasetemp()))
    base = tmp_path_factory.mktemp("hub")
    with running_hub(base, proxy) as running:
        running.share("alice", "bob")
        yield running
        if request.session.testsfailed:
            ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(
                running.log_path, ARTIFACTS_DIR / f"{artifact_name(request.node.name)}-hub.log"
            )


async def open_client(hub: Hub, kernel_id: str, user: str) -> KernelClient:
    session = uuid.uuid4().hex
    ws = await hub.kernel_websocket(
        "alice", kernel_id, as_user=user, session=session, subprotocols=[wire.V1_PROTOCOL]
    )
    return KernelClient(ws, "v1", session)


def start_kernel(hub: Hub) -> str:
    code, body = hub.user_api("alice", "POST", "api/kernels", {"name": "python3"}, as_user="alice")
    assert code == 201, (code, body)
    return str(body["id"])


async def widget_session(hub: Hub, kernel_id: str, busy_s: float) -> dict[str, float]:
    """alice and bob on one kernel: bob moves a slider while alice's cell runs, then a
    second window of bob's joins; returns the seconds each took."""
    alice = await open_client(hub, kernel_id, "alice")
    bob = await open_client(hub, kernel_id, "bob")
    try:
        await alice.execute("import ipywidgets as W; s = W.IntSlider(); display(s)")
        model_id = await alice.evaluate("s.model_id")
        await bob.request_states()
        cell = await alice.start_running(f"import time; time.sleep({busy_s})")
        since = len(alice.messages)
        started = time.monotonic()
        bob.update(model_id, {"value": 7})
        await alice.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "comm_msg"
                and m["content"].get("comm_id") == model_id
                and m["content"]["data"].get("state", {}).get("value") == 7
            ),
            timeout=busy_s + 10,
            start=since,
        )
        peer = time.monotonic() - started
        late = await open_client(hub, kernel_id, "bob")
        try:
            started = time.monotonic()
            reply = await late.request_states(timeout=busy_s + 10)
            late_s = time.monotonic() - started
        finally:
            late.close()
        assert reply["content"]["data"]["states"][model_id]["state"]["value"] == 7
        ran_during_cell = not any(is_idle_after(m, cell) for m in alice.messages)
        await alice.wait_for(lambda m: is_idle_after(m, cell), timeout=busy_s + 20)
        return {"peer": peer, "late": late_s, "during_cell": float(ran_during_cell)}
    finally:
        alice.close()
        bob.close()


def test_shared_server_rest_metrics_and_websockets_behind_the_hub(hub: Hub) -> None:
    hub.start_server("alice")
    try:
        for user in ("alice", "bob"):
            code, body = hub.user_api("alice", "GET", "api/widget-relay/status", as_user=user)
            assert (code, body["enabled"]) == (200, True), (user, code, body)
        # The hub's auth: no token, or a user the server is not shared with.
        code, _ = hub.user_api("alice", "GET", "api/widget-relay/status", as_user="carol")
        assert code == 403
        code, _ = hub.request("GET", "user/alice/api/widget-relay/kernels", token="")
        assert code in (302, 403), code

        kernel_id = start_kernel(hub)
        figures = asyncio.run(widget_session(hub, kernel_id, busy_s=5))
        print(f"\nthrough the hub, relay on: {figures}")
        assert figures["during_cell"], "the cell ended before the late joiner was answered"
        assert figures["peer"] < 2.0, figures
        assert figures["late"] < 2.0, figures

        async def names() -> list[str]:
            clients = [await open_client(hub, kernel_id, user) for user in ("alice", "bob")]
            try:
                for client in clients:
                    await client.request_states()
                code, body = hub.user_api("alice", "GET", "api/widget-relay/kernels", as_user="bob")
                assert code == 200, (code, body)
                (kernel,) = [k for k in body["kernels"] if k["kernel_id"] == kernel_id]
                return sorted(c.get("username", "") for c in kernel["clients"])
            finally:
                for client in clients:
                    client.close()

        assert asyncio.run(names()) == ["alice", "bob"]

        code, text = hub.user_api("alice", "GET", "metrics", as_user="alice")
        assert code == 200
        assert f'jupyter_widget_relay_models{{kernel_id="{kernel_id}"}} 3.0' in text, text[:2000]
        code, _ = hub.user_api("alice", "GET", "metrics", as_user="carol")
        assert code == 403
    finally:
        hub.stop_server("alice")


def test_the_relay_does_not_slow_down_stops_through_the_hub(hub: Hub) -> None:
    """Stop/start cycles through the hub's REST API, each after websocket sessions of
    alice and bob; relay on and off in turn. The relay-on stops are measured as the
    relay-off ones, and must not be slower than the slowest relay-off stop by more than
    a margin."""
    stops: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(STOP_CYCLES):
        for relay in (True, False):
            hub.start_server("alice", relay=relay)
            code, body = hub.user_api("alice", "GET", "api/widget-relay/status", as_user="alice")
            assert (code, body["enabled"]) == (200, relay), body
            kernel_id = start_kernel(hub)
            asyncio.run(widget_session(hub, kernel_id, busy_s=1))
            stops[relay].append(hub.stop_server("alice"))
    print(
        "\nstops through the hub (s): relay on "
        + ", ".join(f"{s:.2f}" for s in stops[True])
        + "; relay off "
        + ", ".join(f"{s:.2f}" for s in stops[False])
    )
    assert max(stops[True]) <= max(stops[False]) + STOP_MARGIN_S, stops
