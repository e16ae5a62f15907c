"""Hostile and broken clients against a live server.

A hostile client on each wire protocol throws a few hundred bad frames while two good
clients keep changing a slider; the server refuses what it cannot use (logged and
counted), keeps serving, and ends with the table, the kernel and both views agreeing.
Bad REST parameters get clean 4xx answers.

Every wait is for a condition, with a generous timeout (only a hang reaches it): the
server parses megabytes of garbage here, and on a loaded machine that takes a while.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct
import uuid
from typing import Any

import pytest

from jupyter_widget_relay.core import close_codes, wire
from jupyter_widget_relay.core.messages import new_header

from ..client import KernelClient, is_idle_after, state_of
from ..core.hostile_frames import random_legacy_frame, random_v1_frame

SETUP = (
    "import ipywidgets as W\n"
    "s = W.IntSlider(value=0, max=10**6)\n"
    "gone = W.Text('closed soon')\n"
    "gone_id = gone.model_id\n"
    "gone.close()"
)
HUGE = "x" * 3_000_000
RELAY_LOGGERS = ("jupyter_widget_relay", "WidgetRelay", "ServerApp", "tornado.application")
# Generous limits for waits that are expected to end (seconds).
KERNEL_TIMEOUT = 120  # the kernel imports ipywidgets, or works through a backlog of frames
REPLY_TIMEOUT = 60  # a reply or a relayed change


def nested_state(depth: int) -> Any:
    value: Any = 1
    for index in range(depth):
        value = [value] if index % 2 else {"k": value}
    return value


def v1_message(
    msg_type: str, content: Any, buffers: list[bytes] | None = None, channel: str = "shell"
) -> bytes:
    parts = [wire.pack(new_header(msg_type, "hostile")), b"{}", b"{}", wire.pack(content)]
    return wire.encode_v1(channel, [*parts, *(buffers or [])])


def legacy_message(msg_type: str, content: Any, buffers: list[bytes] | None = None) -> Any:
    message = {
        "header": new_header(msg_type, "hostile"),
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": "shell",
    }
    text = json.dumps(message)
    if not buffers:
        return text
    chunks = [text.encode(), *buffers]
    offsets = [4 * (len(chunks) + 1)]
    for chunk in chunks[:-1]:
        offsets.append(offsets[-1] + len(chunk))
    return struct.pack("!" + "I" * (len(chunks) + 1), len(chunks), *offsets) + b"".join(chunks)


def targeted(slider: str, gone: str, control: str) -> list[tuple[str, Any, list[bytes]]]:
    """Messages aimed at the live slider that the relay must refuse, and well-formed ones
    at comms that do not exist (any more), which go to the kernel and change nothing."""
    update = {"method": "update"}
    bad: list[tuple[str, Any, list[bytes]]] = [
        ("comm_msg", {"data": {**update, "state": {"value": 5}}}, []),
        ("comm_msg", {"comm_id": 7, "data": {**update, "state": {"value": 5}}}, []),
        ("comm_msg", {"comm_id": slider, "data": [1, 2]}, []),
        ("comm_msg", {"comm_id": slider, "data": {**update, "state": "value=5"}}, []),
        ("comm_msg", {"comm_id": slider, "data": {**update, "state": None}}, []),
        ("comm_msg", {"comm_id": slider, "data": {**update, "state": [5]}}, []),
    ]
    for paths in (
        [["value", 3]],
        [["nope", "deeper"]],
        [[5]],
        [[]],
        "notalist",
        [["value"], ["value"]],
        [["layout"], ["layout", "x"]],
    ):
        data = {**update, "state": {"value": 5, "layout": {}}, "buffer_paths": paths}
        bad.append(("comm_msg", {"comm_id": slider, "data": data}, [b"\x01", b"\x02"]))
    data = {**update, "state": {"value": 5}, "buffer_paths": [["value"]]}
    bad.append(("comm_msg", {"comm_id": slider, "data": data}, []))  # fewer buffers than paths
    bad.append(
        ("comm_msg", {"comm_id": slider, "data": {**update, "state": nested_state(500)}}, [])
    )
    deep = {**update, "state": {"value": nested_state(300)}}
    bad.append(("comm_msg", {"comm_id": slider, "data": deep}, []))
    huge = {**update, "state": {"value": HUGE}, "buffer_paths": [["value", 0]]}
    bad.append(("comm_msg", {"comm_id": slider, "data": huge}, [b"x"]))
    bad.append(("comm_msg", {"comm_id": slider, "data": {**update, "state": {"v": "\ud800"}}}, []))
    bad.append(("comm_open", {"comm_id": "x1", "target_name": "jupyter.widget", "data": {}}, []))
    bad.append(("comm_open", {"comm_id": "x2", "target_name": "jupyter.widget"}, []))
    bad.append(("comm_close", {"data": {}}, []))
    bad.append(("comm_msg", {"comm_id": control, "data": {"method": "bogus"}}, []))
    ok_elsewhere: list[tuple[str, Any, list[bytes]]] = [
        ("comm_msg", {"comm_id": gone, "data": {**update, "state": {"value": "ghost"}}}, []),
        ("comm_msg", {"comm_id": "no-such-comm", "data": {**update, "state": {"v": HUGE}}}, []),
        ("comm_msg", {"comm_id": gone, "data": {"method": "request_state"}}, []),
        ("comm_msg", {"comm_id": "no-such-comm", "data": {"method": "custom", "content": {}}}, []),
        ("comm_close", {"comm_id": gone, "data": {}}, []),
        ("comm_info_request", {"target_name": 5}, []),
        ("comm_msg", {"comm_id": slider, "data": {"method": "bogus"}}, []),
        ("comm_msg", {"comm_id": slider, "data": {"method": "request_state"}}, []),
    ]
    return bad + ok_elsewhere


def raw_garbage(rng: random.Random) -> list[tuple[bool, Any]]:
    """(v1?, frame): undecodable frames for both protocols."""
    frames: list[tuple[bool, Any]] = [
        (False, "{not json"),
        (False, "[]"),
        (False, json.dumps({"header": {"msg_type": "comm_msg"}, "content": {}})),
        (False, b"\x00\x00\x00\x09" + b"\x00" * 8),
        (False, b"\xff\xff\xff\xff"),
        (True, "a text frame on the binary protocol"),
        (True, b""),
        (True, (2**64 - 1).to_bytes(8, "little") + b"\x00" * 64),
        (True, (6).to_bytes(8, "little") + (999).to_bytes(8, "little") * 6),
    ]
    frames += [(True, random_v1_frame(rng)) for _ in range(140)]
    for _ in range(140):
        frame = random_legacy_frame(rng)
        if isinstance(frame, str):  # a text frame is UTF-8 on the wire: no lone surrogates
            frame = frame.encode("utf-8", "replace").decode("utf-8")
        frames.append((False, frame))
    return frames


async def settle(*clients: KernelClient) -> None:
    """Every message each client sent has been handled by the kernel and seen by all."""
    for sender in clients:
        request = sender.start_execute("pass")
        for client in clients:
            await client.wait_for(lambda m, r=request: is_idle_after(m, r), KERNEL_TIMEOUT)


async def test_hostile_clients_do_not_disturb_good_ones(
    start_kernel: Any,
    connect: Any,
    relay_manager: Any,
    jp_fetch: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    kernel_id = await start_kernel()
    a = await connect(kernel_id, "v1")
    b = await connect(kernel_id, "json")
    await a.execute(SETUP, timeout=KERNEL_TIMEOUT)
    slider, gone = await a.evaluate("[s.model_id, gone_id]", timeout=REPLY_TIMEOUT)
    await a.request_states(REPLY_TIMEOUT)
    await b.request_states(REPLY_TIMEOUT)
    hostile_v1 = await connect(kernel_id, "v1")
    hostile_json = await connect(kernel_id, "json")
    control = uuid.uuid4().hex
    for hostile in (hostile_v1, hostile_json):
        hostile.send(
            "comm_open", {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}}
        )
    relay = relay_manager.link_for(kernel_id).relay
    rng = random.Random(7)
    garbage = raw_garbage(rng)
    messages = targeted(slider, gone, control)
    rounds = 8
    sent = 0
    for round_ in range(rounds):
        for v1, frame in garbage[round_::rounds]:
            (hostile_v1 if v1 else hostile_json).ws.write_message(
                frame, binary=isinstance(frame, bytes)
            )
            sent += 1
        for msg_type, content, buffers in messages[round_::rounds]:
            hostile_v1.ws.write_message(v1_message(msg_type, content, buffers), binary=True)
            frame = legacy_message(msg_type, content, buffers)
            hostile_json.ws.write_message(frame, binary=isinstance(frame, bytes))
            sent += 2
        # the good clients keep working and see each other's changes at once
        for writer, reader, value in ((a, b, 100 + round_), (b, a, 200 + round_)):
            # (a reader still awaiting the echo of its own last change drops the peer's
            # echo, as widget.ts does, and shows the value when the relay corrects it)
            writer.update(slider, {"value": value})
            await reader.wait_for(
                lambda _, r=reader, v=value: r.view[slider]["value"] == v, REPLY_TIMEOUT
            )
    assert sent > 300
    await settle(a, b, hostile_v1, hostile_json)
    final = 200 + rounds - 1
    assert await a.evaluate("s.value", timeout=REPLY_TIMEOUT) == final
    model = relay.table.get(slider)
    assert model is not None and model.state["value"] == final
    assert a.view[slider]["value"] == b.view[slider]["value"] == final
    assert model.sync is None, "no sync bookkeeping left"
    late = await connect(kernel_id)
    assert state_of(await late.request_states(REPLY_TIMEOUT))[slider]["value"] == final
    assert gone not in relay.table

    counters = relay.counters
    assert counters[("rejected", "client", "unparsable")] >= 150, counters
    assert counters[("rejected", "client", "malformed")] >= 2 * 15, counters
    logged = [r for r in caplog.records if "rejected client message" in r.getMessage()]
    assert 2 <= len(logged) <= 2 * 10, "at most 10 lines per client per minute"
    assert counters["relay", "rejection_log_suppressed"] >= 150, counters
    assert all("\n" not in r.getMessage() for r in logged), "client text is escaped"
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(RELAY_LOGGERS)
    ]
    assert not errors, [r.getMessage()[:300] for r in errors[:5]]
    assert not hostile_v1.closed and not hostile_json.closed, "refused, not disconnected"
    status = await jp_fetch("api", "status", request_timeout=REPLY_TIMEOUT)
    assert status.code == 200
    summary = json.loads(
        (
            await jp_fetch(
                "api", "widget-relay", "kernels", kernel_id, request_timeout=REPLY_TIMEOUT
            )
        ).body
    )
    assert summary["models"] == len(relay.table)


# Raw URL paths under /api/widget-relay/kernels/ (sent as is, percent-junk included).
BAD_KERNEL_PATHS = [
    "no-such-kernel",
    "no-such-kernel/models",
    "no-such-kernel/state",
    "no-such-kernel/events",
    "00000000-0000-0000-0000-000000000000/models/x",
    "%00",
    "..%2F..%2Fetc",
    "x" * 5000,
    "%ZZ/state",
    "%C3%A9%C3%A9",
    "%FF%FE/models",
]
BAD_MODEL_IDS = [
    "nope",
    "%00",
    "%2F..%2F..%2Fetc%2Fpasswd",
    "%ZZ",
    "%FF%FE",
    "%C3%28",
    "a%20b%0D%0AX-Injected:%201",
    "x" * 5000,
    "%25",
    "..",
    "%C3%A9",
    "%ED%A0%80",
]


async def test_bad_rest_parameters_get_clean_4xx(
    start_kernel: Any,
    connect: Any,
    http_server_client: Any,
    jp_auth_header: dict[str, str],
    jp_base_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\ns = W.IntSlider()", timeout=KERNEL_TIMEOUT)
    base = jp_base_url.rstrip("/") + "/api/widget-relay/kernels"
    paths = [f"{base}/{path}" for path in BAD_KERNEL_PATHS]
    paths += [f"{base}/{kernel_id}/models/{model_id}" for model_id in BAD_MODEL_IDS]
    paths += [f"{base}?kernel_id=%00&x=%FF%FE", f"{base}/{kernel_id}/state?%ZZ=%ZZ"]
    codes: dict[str, int] = {}
    for path in paths:
        response = await http_server_client.fetch(
            path, headers=jp_auth_header, raise_error=False, request_timeout=REPLY_TIMEOUT
        )
        codes[path[len(base) :][:60]] = response.code
        if response.code >= 400:
            assert "Traceback" not in response.body.decode("utf-8", "replace")
    failures = {path: code for path, code in codes.items() if code >= 500}
    assert not failures, failures
    assert codes["?kernel_id=%00&x=%FF%FE"] == 200  # no parameters taken: ignored
    assert codes[f"/{kernel_id}/state?%ZZ=%ZZ"] == 200
    others = {p: c for p, c in codes.items() if "?" not in p}
    assert all(400 <= code < 500 for code in others.values()), others
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and not stock_404(r)]
    assert not errors, [r.getMessage()[:200] for r in errors[:5]]


def stock_404(record: logging.LogRecord) -> bool:
    """jupyter_server's own catch-all Template404 (paths no relay route matches, such as
    kernels/%FF%FE/models) answers 400 but logs an error from its write_error (it calls
    the deprecated get_current_user): stock behaviour for any undecodable URL."""
    text = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return record.getMessage() == "Uncaught exception in write_error" and "Template404" in text


async def test_events_socket_for_unknown_kernel_closes_cleanly(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("api", "widget-relay", "kernels", "no-such-kernel", "events")
    assert await asyncio.wait_for(ws.read_message(), REPLY_TIMEOUT) is None
    assert ws.close_code == close_codes.UNKNOWN_KERNEL


async def test_client_chosen_msg_types_do_not_grow_counters(
    start_kernel: Any, connect: Any, relay_manager: Any, jp_fetch: Any
) -> None:
    """Regression test for a connection.py bug (fixed): handle_incoming_message counted
    every parsed client message as ``relay.count_message("from_client", msg_type)`` with the
    client's own msg_type, and metrics.RelayCollector exports those keys as the
    ``msg_type`` label of ``jupyter_widget_relay_messages``. A client that sent messages
    with made-up types (each one is also forwarded to the kernel, which ignores it) grew
    the relay's Counter, the manager's retired_counters (kept after the kernel is gone)
    and the /metrics page without bound: 300 frames here added 300 label values, one of
    them 100 kB long. Types outside the Jupyter protocol count under one key."""
    kernel_id = await start_kernel()
    hostile = await connect(kernel_id, "v1")
    relay = relay_manager.link_for(kernel_id).relay
    before = {key for key in relay.counters if key[0] == "from_client"}
    for index in range(300):
        msg_type = f"made-up-{index}" if index else "y" * 100_000
        hostile.ws.write_message(v1_message(msg_type, {}), binary=True)
    probe = hostile.start_execute("pass")
    await hostile.wait_for(lambda m: is_idle_after(m, probe), KERNEL_TIMEOUT)
    added = {key for key in relay.counters if key[0] == "from_client"} - before
    assert len(added) <= 5, f"{len(added)} new counter keys from one client"
    metrics = (await jp_fetch("metrics", request_timeout=REPLY_TIMEOUT)).body
    assert len(metrics) < 200_000, f"/metrics is {len(metrics)} bytes"
