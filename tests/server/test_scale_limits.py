"""Serving many browsers: the ZMQ socket cap (c.WidgetRelay.zmq_max_sockets) and statuses
of a client's own kernel_info_request, which go to that client only."""

from __future__ import annotations

import logging
import re
import resource
import uuid
from typing import Any

import pytest
import zmq
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from jupyter_widget_relay.app import WidgetRelay
from jupyter_widget_relay.core import wire
from jupyter_widget_relay.process_tuning import STARTUP_SETTLE_S, raise_zmq_socket_cap

from ..client import KernelClient, is_idle_after
from .server_process import run_server, server_log_until

LIBZMQ_DEFAULT = 1023


def test_default_cap_is_raised_before_kernels_start(relay_app: Any) -> None:
    context = relay_app.kernel_manager.context
    assert context.get(zmq.MAX_SOCKETS) == WidgetRelay.zmq_max_sockets.default_value == 65535
    # each socket holds a file descriptor: make room for them (jupyter_server's own
    # min_open_files_limit is 4096), as an admin serving this many browsers would
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * LIBZMQ_DEFAULT
    assert hard == resource.RLIM_INFINITY or hard >= wanted, f"open-files hard limit {hard}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    sockets = []
    try:  # more than libzmq's default allows: the cap really took effect
        for _ in range(LIBZMQ_DEFAULT + 1):
            sockets.append(context.socket(zmq.DEALER))
    finally:
        for socket in sockets:
            socket.close(linger=0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class TestZero:
    @pytest.fixture
    def relay_config(self) -> dict[str, Any]:
        return {"zmq_max_sockets": 0}

    def test_zero_leaves_the_context_alone(self, relay_app: Any) -> None:
        assert relay_app.kernel_manager.context.get(zmq.MAX_SOCKETS) == LIBZMQ_DEFAULT


class TestConfigured:
    @pytest.fixture
    def relay_config(self) -> dict[str, Any]:
        return {"zmq_max_sockets": 4096}

    def test_configured_cap(self, relay_app: Any) -> None:
        assert relay_app.kernel_manager.context.get(zmq.MAX_SOCKETS) == 4096


@pytest.mark.parametrize("value", ["-1", "70000"])
def test_out_of_range_cap_stops_the_server(value: str) -> None:
    result = run_server(f"--WidgetRelay.zmq_max_sockets={value}")
    assert result.returncode != 0
    assert f"c.WidgetRelay.zmq_max_sockets = {value} is out of range" in result.stderr


def test_a_context_that_already_has_sockets_is_reported(caplog: Any) -> None:
    manager = AsyncMappingKernelManager()
    socket = manager.context.socket(zmq.DEALER)  # libzmq sizes its table now
    try:
        with caplog.at_level(logging.WARNING):
            raise_zmq_socket_cap(manager, 5000, logging.getLogger("test_scale_limits"))
        assert "zmq_max_sockets = 5000 may not take effect" in caplog.text
    finally:
        socket.close(linger=0)
        manager.context.term()


# -- kernel_info statuses ----------------------------------------------------------------


def send_kernel_info(client: KernelClient, msg_id: str) -> None:
    header = {
        "msg_id": msg_id,
        "msg_type": "kernel_info_request",
        "session": client.session,
        "username": "test",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    parts = [wire.pack(header), wire.pack({}), wire.pack({}), wire.pack({})]
    client.ws.write_message(wire.encode_v1("shell", parts), binary=True)


def statuses_for(client: KernelClient, msg_id: str) -> list[str]:
    return [
        m["content"]["execution_state"]
        for m in client.messages
        if m["header"]["msg_type"] == "status" and m["parent_header"].get("msg_id") == msg_id
    ]


async def test_kernel_info_statuses_go_to_the_requester_only(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id)
    await a.execute("x = 1")
    await b.execute("y = 2")  # both clients are live and the kernel is idle
    msg_id = uuid.uuid4().hex
    send_kernel_info(a, msg_id)
    await a.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "kernel_info_reply"
            and m["parent_header"].get("msg_id") == msg_id
        )
    )
    await a.wait_for(
        lambda m: (
            m["header"]["msg_type"] == "status"
            and m["content"].get("execution_state") == "idle"
            and m["parent_header"].get("msg_id") == msg_id
        )
    )
    # One stream, one order: once b has the idle of a later cell it has everything before.
    later = a.start_execute("z = 3")
    await b.wait_for(lambda m: is_idle_after(m, later))
    assert statuses_for(b, msg_id) == []
    assert statuses_for(a, msg_id)[-1] == "idle"
    # Statuses of ordinary requests still reach everyone.
    assert statuses_for(b, later["header"]["msg_id"]) == ["busy", "idle"]


async def test_a_msg_id_two_clients_use_is_broadcast(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id)
    await a.execute("x = 1")
    await b.execute("y = 2")
    relay = relay_manager.link_for(kernel_id).relay
    msg_id = uuid.uuid4().hex
    relay.route_status(msg_id, "some-other-client")  # as if another client had used it
    send_kernel_info(a, msg_id)
    for client in (a, b):
        await client.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "status"
                and m["content"].get("execution_state") == "idle"
                and m["parent_header"].get("msg_id") == msg_id
            )
        )


# -- the startup heap and the garbage collector ------------------------------------------


def test_startup_objects_are_frozen_once_the_server_runs() -> None:
    log = server_log_until("exempt from garbage collection", "--log-level=INFO")
    frozen = re.search(r"widget relay: (\d+) objects from the server's startup are exempt", log)
    assert frozen is not None, log[-3000:]
    assert int(frozen.group(1)) > 10_000, "the server's modules and classes are frozen"


def test_startup_freeze_can_be_turned_off() -> None:
    log = server_log_until(
        "is running at",
        "--log-level=INFO",
        "--WidgetRelay.freeze_startup_objects=False",
        linger=3 * STARTUP_SETTLE_S,
    )
    assert "widget relay: enabled" in log
    assert "is running at" in log
    assert "exempt from garbage collection" not in log
