"""A cheap load client: a raw asyncio websocket that counts frames and reads widget values.

The test suite's ``KernelClient`` decodes every message (five JSON parses each) and keeps
them all; with hundreds of clients in one process that, not the server, would be measured.
This client speaks just enough of RFC 6455 (no extensions, client frames masked) and of the
``v1.kernel.websocket.jupyter.org`` protocol: it counts frames and bytes, and for widget
``comm_msg`` frames it reads the first ``"value": <int>`` with a regular expression, keeping
the arrival time of each value and the last value seen.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from jupyter_widget_relay.core import wire
from tests.client import execute_content

VALUE = re.compile(rb'"value": ?(-?\d+)')  # the kernel writes compact JSON, the relay not
IDLE = re.compile(rb'"execution_state": ?"idle"')
Waiter = tuple[Callable[[bytes], bool], "asyncio.Future[tuple[float, bytes]]"]


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(n, "big")


class LightClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.session = uuid.uuid4().hex
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.frames = 0
        self.bytes = 0
        self.updates = 0  # widget comm_msg frames carrying a "value"
        self.last_value: int | None = None
        self.arrivals: dict[int, float] = {}  # value -> first arrival (time.time())
        self.keep_arrivals = True
        self._buffer = bytearray()
        self._upgraded = False
        self._waiters: list[Waiter] = []
        self._value_waiters: dict[int, list[asyncio.Future[tuple[float, bytes]]]] = {}

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("closed during handshake"))
        futures = [future for _, future in self._waiters]
        futures += [future for waiting in self._value_waiters.values() for future in waiting]
        for future in futures:
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))
        self._waiters.clear()
        self._value_waiters.clear()

    def data_received(self, data: bytes) -> None:
        if self._upgraded and not self._buffer and len(data) >= 2 and data[0] & 0x0F in (1, 2):
            # the usual case: exactly one whole short text/binary frame, parsed in place
            length = data[1] & 0x7F
            start = 2 if length < 126 else 4 if length == 126 else 10
            if length == 126 and len(data) >= 4:
                length = int.from_bytes(data[2:4], "big")
            elif length == 127 and len(data) >= 10:
                length = int.from_bytes(data[2:10], "big")
            if start + length == len(data):
                self._on_message(data[start:])
                return
        buf = self._buffer
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            self._upgraded = True
            if not head.startswith(b"HTTP/1.1 101"):
                self.handshake.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                return
            self.handshake.set_result(head)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, start = b1 & 0x7F, pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
            if size - start < length:
                break
            payload = bytes(buf[start : start + length])
            pos = start + length
            opcode = b0 & 0x0F
            if opcode == 9:  # ping
                self._write_frame(0xA, payload)
            elif opcode == 8:
                self.closed = True
            elif opcode in (1, 2):  # the server never fragments kernel messages
                self._on_message(payload)
        if pos:
            del buf[:pos]

    # -- frames ----------------------------------------------------------------------------

    def _on_message(self, payload: bytes) -> None:
        now = time.time()
        self.frames += 1
        self.bytes += len(payload)
        if b'"comm_msg"' in payload:
            match = VALUE.search(payload)
            if match is not None:
                value = int(match.group(1))
                self.updates += 1
                self.last_value = value
                if self.keep_arrivals and value not in self.arrivals:
                    self.arrivals[value] = now
                waiting = self._value_waiters.pop(value, None) if self._value_waiters else None
                for future in waiting or ():
                    if not future.done():
                        future.set_result((now, payload))
        if self._waiters:
            for waiter in list(self._waiters):
                predicate, future = waiter
                if not future.done() and predicate(payload):
                    future.set_result((now, payload))
                    self._waiters.remove(waiter)

    def wait_for(self, predicate: Callable[[bytes], bool]) -> asyncio.Future[tuple[float, bytes]]:
        """A future for the (arrival time, frame) of the next frame matching ``predicate``."""
        future: asyncio.Future[tuple[float, bytes]] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    def wait_for_value(self, value: int) -> asyncio.Future[tuple[float, bytes]]:
        """Like ``wait_for`` a widget ``comm_msg`` whose first ``"value"`` is ``value``,
        without a predicate run on every frame."""
        future: asyncio.Future[tuple[float, bytes]] = asyncio.get_running_loop().create_future()
        self._value_waiters.setdefault(value, []).append(future)
        return future

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 1 << 16:
            head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        key = os.urandom(4)
        self.transport.write(head + key + _mask(payload, key))

    def send(
        self,
        msg_type: str,
        content: dict[str, Any],
        channel: str = "shell",
        metadata: dict[str, Any] | None = None,
        msg_id: str | None = None,
    ) -> str:
        msg_id = msg_id or uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "session": self.session,
            "username": "bench",
            "date": "2026-01-01T00:00:00Z",
            "version": "5.3",
        }
        parts = [wire.pack(header), wire.pack({}), wire.pack(metadata or {}), wire.pack(content)]
        self._write_frame(0x2, wire.encode_v1(channel, parts))
        return msg_id

    async def ready(self, timeout: float = 60) -> None:
        """Round trip a kernel_info_request: the server has set up this connection."""
        msg_id = self.send("kernel_info_request", {})
        tag = msg_id.encode()
        await asyncio.wait_for(
            self.wait_for(lambda p: b'"kernel_info_reply"' in p and tag in p), timeout
        )

    def start_execute(self, code: str) -> asyncio.Future[tuple[float, bytes]]:
        """Send a cell; returns a future for the kernel's idle status after it."""
        msg_id = self.send("execute_request", execute_content(code))
        tag = msg_id.encode()
        return self.wait_for(lambda p: tag in p and IDLE.search(p) is not None)

    async def execute(self, code: str, timeout: float = 120) -> float:
        """Run a cell; returns the arrival time of the idle status after it."""
        arrived, _ = await asyncio.wait_for(self.start_execute(code), timeout)
        return arrived

    async def evaluate(self, expression: str, timeout: float = 120) -> Any:
        """The JSON value of a Python expression, printed by the kernel."""
        marker = uuid.uuid4().hex
        tag = marker.encode()
        printed = self.wait_for(lambda p: b'"stream"' in p and tag in p)
        done = self.start_execute(f"import json as _j; print({marker!r}, _j.dumps({expression}))")
        _, frame = await asyncio.wait_for(printed, timeout)
        await asyncio.wait_for(done, timeout)
        return json.loads(content_of(frame)["text"].split(" ", 1)[1])

    async def request_states(self, timeout: float = 120) -> tuple[float, bytes]:
        """Load every widget as a frontend does; returns (arrival time, reply frame)."""
        comm_id = uuid.uuid4().hex
        self.send(
            "comm_open",
            {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}},
            metadata={"version": "1.0.0"},
        )
        tag = comm_id.encode()
        reply = self.wait_for(lambda p: b'"update_states"' in p and tag in p)
        self.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})
        result = await asyncio.wait_for(reply, timeout)
        self.send("comm_close", {"comm_id": comm_id, "data": {}})
        return result

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write_frame(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()


async def connect(url: str, token: str, kernel_id: str) -> LightClient:
    """Open a v1 kernel websocket to ``url`` (``http://127.0.0.1:port``)."""
    host_port = url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(LightClient, host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /api/kernels/{kernel_id}/channels?session_id={client.session} HTTP/1.1\r\n"
        f"Host: {host_port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {wire.V1_PROTOCOL}\r\n"
        f"Authorization: token {token}\r\n"
        "\r\n"
    )
    assert client.transport is not None
    client.transport.write(request.encode())
    await asyncio.wait_for(client.handshake, 60)
    return client


def content_of(frame: bytes) -> dict[str, Any]:
    """The content of a v1 frame (for the rare frame that needs reading in full)."""
    _, parts = wire.parse_v1(frame)
    content: dict[str, Any] = json.loads(parts[3])
    return content
