"""The relay's own channel to a kernel in a Jupyter Kernel (or Enterprise) Gateway.

One websocket to the gateway's ``{kernels_endpoint}/{id}/channels``, opened with the
server's ``GatewayClient`` settings (URL, headers, auth token, TLS), as jupyter_server's
own ``GatewayWebSocketConnection`` opens one per browser. It speaks the legacy JSON
websocket format (jupyter_server does not ask the gateway for the v1 subprotocol): text
frames, or binary frames with an offsets table when a message has buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.utils import url_path_join
from tornado.escape import url_escape
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .core import wire
from .core.messages import Envelope, MessageError
from .kernel_channel import ChannelEvents, Message

# The relay's one upstream carries every message of the kernel: a larger message than
# tornado's client default (10 MiB) must not cut it.
MAX_MESSAGE_SIZE = 1 << 30
# The session id the relay's own websocket announces to the gateway (seen in its logs).
SESSION_PREFIX = "widget-relay-"


class GatewayKernelChannel:
    """A websocket to the kernel's channels on the gateway, reconnected when it drops."""

    def __init__(self, kernel_id: str, session_id: str, log: logging.Logger) -> None:
        self.kernel_id = kernel_id
        self.session_id = SESSION_PREFIX + session_id
        self._log = log
        self._ws: WebSocketClientConnection | None = None
        self._events: ChannelEvents | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def url(self) -> str:
        client = GatewayClient.instance()
        return (
            url_path_join(
                client.ws_url or "",
                client.kernels_endpoint,
                url_escape(self.kernel_id),
                "channels",
            )
            + f"?session_id={url_escape(self.session_id)}"
        )

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def open(self, events: ChannelEvents) -> None:
        self.close()
        self._closed = False
        self._events = events
        self._task = asyncio.ensure_future(self._run())

    def send(self, message: Message) -> bool:
        if self._ws is None:
            return False
        envelope = Envelope(
            message["header"],
            message.get("parent_header") or {},
            content=message.get("content") or {},
            metadata=message.get("metadata") or {},
            buffers=list(message.get("buffers") or []),
            channel="shell",
        )
        frame = wire.legacy_frame(envelope)
        try:
            self._ws.write_message(frame, binary=isinstance(frame, bytes))
        except Exception as error:  # closed under us: the reader reconnects
            self._log.debug("widget relay: gateway write failed: %s", error)
            return False
        return True

    def moved(self) -> bool:
        return False  # the gateway follows its kernel's restarts; the URL stays

    def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    # -- the connection ------------------------------------------------------------------

    async def _connect(self) -> WebSocketClientConnection:
        kwargs: dict[str, Any] = GatewayClient.instance().load_connection_args()  # type: ignore[no-untyped-call]
        request = HTTPRequest(self.url, **kwargs)
        return await websocket_connect(request, max_message_size=MAX_MESSAGE_SIZE)

    async def _run(self) -> None:
        """Connect, then read until the socket drops. A failed connection or a dropped
        one is reported lost at once, not retried: the kernel's browsers then take iopub
        from their own gateway connections at once, where a reconnecting relay would
        leave them without it until its stream is shown live, and the next browser
        connection makes a new link, which fills its table from the kernel."""
        try:
            ws = await self._connect()
        except Exception as error:
            self._lost(f"could not connect to {self.url}: {error}")
            return
        if self._closed:
            ws.close()
            return
        self._ws = ws
        await self._read(ws)
        self._ws = None
        self._lost("the relay's websocket to the gateway closed")

    async def _read(self, ws: WebSocketClientConnection) -> None:
        while True:
            frame = await ws.read_message()
            if frame is None or self._closed:
                return
            self._deliver(frame)

    def _deliver(self, frame: bytes | str) -> None:
        events = self._events
        if events is None:
            return
        try:
            envelope = wire.parse_legacy(frame)
        except MessageError as error:
            events.on_unreadable("iopub", str(error))
            return
        if envelope.channel == "iopub":
            events.on_iopub(envelope)
        elif envelope.channel == "shell":
            events.on_shell_reply(envelope)

    def _lost(self, reason: str) -> None:
        self._ws = None
        if not self._closed and self._events is not None:
            with contextlib.suppress(Exception):
                self._events.on_lost(reason)
