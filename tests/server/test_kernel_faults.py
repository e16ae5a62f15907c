"""Kernel faults against a live server: a kernel killed with SIGKILL in the
middle of an update stream, a restart while a snapshot is being requested, and the relay's
iopub subscription after a restart from busy. (A client that drops in the middle of a
flood: tests/server/test_client_drop.py.)

Every wait is for a condition, with a generous timeout: kernels start, die and restart
slowly on a loaded machine, and nothing here asserts how fast that happens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import pytest

from ..client import KernelClient, Message, is_idle_after, is_reply_to, state_of
from .helpers import (
    eventually,
    fault_relay_config,
    fault_server_config,
    server_errors,
)

# Generous limits for waits that are expected to end (seconds); only a hang reaches them.
KERNEL_TIMEOUT = 120  # a kernel starts, restarts, imports ipywidgets or runs a cell
REPLY_TIMEOUT = 60  # a reply that needs no kernel start (snapshots, statuses)

STREAM = (
    "import ipywidgets as W, time\n"
    "s = W.IntSlider(value=0, max=10**9)\n"
    "for i in range(1, 10**6):\n"
    "    s.value = i\n"
    "    time.sleep(0.002)"
)


@pytest.fixture
def relay_config() -> dict[str, Any]:
    return fault_relay_config()


@pytest.fixture
def jp_server_config(relay_config: dict[str, Any]) -> dict[str, Any]:
    return fault_server_config(relay_config)


def relay_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage()[:200] for r in caplog.records if "widget relay" in r.getMessage()]


def status_seen(client: KernelClient, states: tuple[str, ...], since: int) -> bool:
    return any(
        m["header"]["msg_type"] == "status" and m["content"].get("execution_state") in states
        for m in client.messages[since:]
    )


def restarting_statuses(client: KernelClient, since: int) -> int:
    return sum(
        m["header"]["msg_type"] == "status" and m["content"].get("execution_state") == "restarting"
        for m in client.messages[since:]
    )


def is_child_of(message: Message, request: Message) -> bool:
    return bool(message["parent_header"].get("msg_id") == request["header"]["msg_id"])


def kill_9(relay_app: Any, kernel_id: str) -> int:
    km = relay_app.kernel_manager.get_kernel(kernel_id)
    pid = int(km.provisioner.pid)
    os.kill(pid, signal.SIGKILL)
    return pid


def stuck_tasks(relay_manager: Any) -> list[str]:
    """The relay's unfinished tasks, except the kernel watcher that runs for good."""
    pending = [t for t in relay_manager._tasks if not t.done()]
    for link in relay_manager.links.values():
        pending += [t for t in link._tasks if not t.done()]
    names = [getattr(t.get_coro(), "__qualname__", "?") for t in pending]
    return [name for name in names if not name.endswith("_watch_kernels")]


async def no_stuck_tasks(relay_manager: Any) -> None:
    """Every task the relay started for the fault (nudges, link openings) finishes."""
    try:
        await eventually(
            lambda: not stuck_tasks(relay_manager), timeout=KERNEL_TIMEOUT, what="the relay's tasks"
        )
    except TimeoutError:
        raise AssertionError(f"relay tasks still running: {stuck_tasks(relay_manager)}") from None


async def test_sigkill_mid_update_stream(
    start_kernel: Any,
    connect: Any,
    relay_app: Any,
    relay_manager: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kill -9 while a cell streams slider updates; jupyter_server's restarter brings the
    kernel back (and emits the kernel_actions restart event the relay follows).
    (The fresh client's execute once waited for kernel_info_timeout, 60 s: see
    test_link_is_ready_after_a_restart_from_busy.)"""
    caplog.set_level(logging.INFO)
    kernel_id = await start_kernel()
    a = await connect(kernel_id, "v1")
    b = await connect(kernel_id, "json")
    a.start_execute(STREAM)
    link = relay_manager.link_for(kernel_id)
    await eventually(
        lambda: any(m.state.get("value", 0) > 50 for m in link.relay.table.models.values()),
        timeout=KERNEL_TIMEOUT,
        what="the update stream",
    )
    mark_a, mark_b = len(a.messages), len(b.messages)
    kill_9(relay_app, kernel_id)
    await eventually(
        lambda: (
            status_seen(a, ("restarting", "dead"), mark_a)
            and status_seen(b, ("restarting", "dead"), mark_b)
        ),
        timeout=KERNEL_TIMEOUT,
        what="a restarting status for both clients",
    )
    link = relay_manager.link_for(kernel_id)
    assert link is not None and len(link.relay.table) == 0, "the table is cleared"
    # the kernel is back: a fresh client sees no stale widgets until new ones are made
    fresh = await connect(kernel_id)
    await fresh.execute("x = 1", timeout=KERNEL_TIMEOUT)
    assert (await fresh.request_states(REPLY_TIMEOUT))["content"]["data"]["states"] == {}
    assert (await a.request_states(REPLY_TIMEOUT))["content"]["data"]["states"] == {}
    await fresh.execute("import ipywidgets as W\nt = W.Text('new')", timeout=KERNEL_TIMEOUT)
    states = state_of(await b.request_states(REPLY_TIMEOUT))
    assert [state.get("value") for state in states.values() if "value" in state] == ["new"]
    # once per client, from the relay (stock's restart callback would send a second one)
    for client, mark in ((a, mark_a), (b, mark_b)):
        assert restarting_statuses(client, mark) == 1, client.messages[mark:]
    await no_stuck_tasks(relay_manager)
    assert not server_errors(caplog), server_errors(caplog)
    assert len(relay_warnings(caplog)) < 5, relay_warnings(caplog)


async def test_restart_while_snapshot_requested(
    start_kernel: Any,
    connect: Any,
    jp_fetch: Any,
    relay_manager: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute(
        "import ipywidgets as W, os\n"
        "sliders = [W.IntSlider(value=i) for i in range(200)]\n"
        "img = W.Image(value=os.urandom(2_000_000))",
        timeout=KERNEL_TIMEOUT,
    )
    b = await connect(kernel_id, "json")
    snapshot = asyncio.ensure_future(b.request_states(timeout=KERNEL_TIMEOUT))
    # the server answers once the new kernel has answered a kernel_info_request
    # (kernel_info_timeout, 60 s), after shutting the old one down: allow for both
    restart = asyncio.ensure_future(
        jp_fetch(
            "api",
            "kernels",
            kernel_id,
            "restart",
            method="POST",
            body="{}",
            request_timeout=3 * KERNEL_TIMEOUT,
        )
    )
    reply, response = await asyncio.gather(snapshot, restart)
    assert response.code == 200
    states = reply["content"]["data"]["states"]
    if states:  # taken before the restart: whole, buffers included
        assert len(states) >= 600
        assert len(reply["buffers"]) == len(reply["content"]["data"]["buffer_paths"]) == 1
        assert len(reply["buffers"][0]) == 2_000_000
    await b.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "status"
            and m["content"].get("execution_state") == "restarting"
        ),
        timeout=REPLY_TIMEOUT,
    )
    # the first request after the restart gets its reply (shell) and its iopub messages
    request = b.start_execute("x = 1")
    await b.wait_for(lambda m: is_reply_to(m, request, "execute_reply"), KERNEL_TIMEOUT)
    try:
        await b.wait_for(lambda m: is_idle_after(m, request), REPLY_TIMEOUT)
    except TimeoutError:
        seen = [m["header"]["msg_type"] for m in b.messages if is_child_of(m, request)]
        raise AssertionError(
            f"iopub of the first request after the restart lost (got {seen}): the relay's "
            "new iopub subscription was not live yet when the kernel published"
        ) from None
    assert (await b.request_states(REPLY_TIMEOUT))["content"]["data"]["states"] == {}
    assert len(relay_manager.link_for(kernel_id).relay.table) == 0
    await no_stuck_tasks(relay_manager)
    assert not server_errors(caplog), server_errors(caplog)


async def test_link_is_ready_after_a_restart_from_busy(
    start_kernel: Any, connect: Any, relay_app: Any, relay_manager: Any
) -> None:
    """Regression test for a kernel_link.py bug (fixed). After kill -9 during a cell,
    jupyter_server still reports ``execution_state == "busy"`` for the restarted kernel
    (its restarter does not reset it). ``KernelLink.restarted()`` → ``open()`` →
    ``_nudge()`` then sent no kernel_info_request and only waited for iopub traffic; but
    the new SUB socket is made while the new kernel may not have bound its iopub port
    yet, so the first messages (even those of a client's first request) could be lost,
    and an idle kernel sends no more: ``link.ready`` stayed unset, and
    ``RelayWebsocketConnection._wait_for_link`` held every new connection's
    shell/control/stdin subscription (then for ``kernel_info_timeout``, 60 s).
    (Stock jupyter_server also skips nudging a busy kernel, but never blocks on it.)
    Here: the same state without the kill (busy flag left set, restart event handled)."""
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("x = 1", timeout=KERNEL_TIMEOUT)
    km = relay_app.kernel_manager.get_kernel(kernel_id)
    link = relay_manager.link_for(kernel_id)
    km.execution_state = "busy"  # what is left after the killed kernel's last cell
    link.restarted()  # what the kernel_actions restart event does
    # (the bug left it unset for good: any wait that ends is a pass, however long)
    await eventually(
        link.ready.is_set, timeout=KERNEL_TIMEOUT, what="the relay's iopub subscription"
    )
