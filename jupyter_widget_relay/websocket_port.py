"""A browser's websocket as the relay core sees it: an ordered, bounded outbox of frames."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from . import upstream
from .core import close_codes, wire
from .core.messages import COMM_MSG_TYPES, Envelope
from .core.outbox import Outbox

if TYPE_CHECKING:
    from typing import TypeAlias

    from .connection import RelayWebsocketConnection
    from .gateway_connection import RelayGatewayWebSocketConnection

    RelayedConnection: TypeAlias = RelayWebsocketConnection | RelayGatewayWebSocketConnection

# iopub types stock's _limit_rate lets through without counting them (see WebsocketPort)
UNLIMITED_IOPUB_TYPES = COMM_MSG_TYPES | {"status", "comm_open", "execute_input"}


class WebsocketPort:
    """A browser as the core sees it: an id, who it is, and an ordered, bounded outbox.

    Frames go straight to the websocket while it keeps up. Once more than
    ``CONGESTED_BYTES`` are written but not yet flushed to the OS, frames wait in an
    ``Outbox`` (where later widget updates supersede earlier ones); past
    ``max_pending_bytes`` the client is closed and reloads from a fresh snapshot.
    """

    visible = True
    CONGESTED_BYTES = 1 << 20

    def __init__(self, connection: RelayedConnection, max_pending_bytes: int) -> None:
        self.client_id = uuid.uuid4().hex
        self._connection = connection
        handler = connection.websocket_handler
        user = getattr(handler, "current_user", None)
        self.username = str(getattr(user, "username", "") or "")
        self.display_name = str(getattr(user, "display_name", "") or self.username)
        self.v1 = connection.subprotocol == wire.V1_PROTOCOL
        self.protocol = "v1" if self.v1 else "json"
        self.closed = False
        self.too_slow = False
        self.in_flight = 0
        self.outbox = Outbox()
        self.max_pending_bytes = max_pending_bytes
        self._limit_rate = bool(connection.limit_rate)  # a setting; read once, not per frame

    def send(self, envelope: Envelope) -> None:
        if self.closed:
            return
        if self._limit_rate and envelope.channel == "iopub" and self._rate_limited(envelope):
            return
        frame = wire.v1_frame(envelope) if self.v1 else wire.legacy_frame(envelope)
        size = len(frame)
        if self.max_pending_bytes and size > self.max_pending_bytes:
            self._close_slow()  # it would be held in memory past the limit all the same
            return
        if self.outbox or self.in_flight > self.CONGESTED_BYTES:
            self.outbox.push(envelope, frame, size)
            if self.max_pending_bytes and self.pending_bytes > self.max_pending_bytes:
                self._close_slow()
            return
        self._write(frame, size)

    def _rate_limited(self, envelope: Envelope) -> bool:
        """Stock's per-connection iopub rate limit (``ServerApp.iopub_msg_rate_limit``).

        Stock's ``_limit_rate`` never drops nor counts ``status``, ``comm_open`` and
        ``execute_input``; an idle status only resets its window. Those are handled here
        without it (widget messages are never limited), so the hot path of a broadcast, a
        status to every client, costs no traitlets assignments."""
        msg_type = envelope.msg_type
        if msg_type in UNLIMITED_IOPUB_TYPES:
            if msg_type == "status" and envelope.content.get("execution_state") == "idle":
                self._reset_rate_window()
            return False
        summary = {"header": envelope.header, "parent_header": envelope.parent_header}
        return upstream.rate_limited(self._connection, summary, wire.parts_of(envelope))

    def _reset_rate_window(self) -> None:
        """What stock's ``_limit_rate`` does on an idle status, skipped when nothing was
        counted since the last reset (the usual case: assigning the traitlets costs more
        than the check)."""
        upstream.reset_rate_window(self._connection)

    @property
    def pending_bytes(self) -> int:
        return self.in_flight + self.outbox.pending_bytes

    def _write(self, frame: bytes | str, size: int) -> None:
        handler = self._connection.websocket_handler
        try:
            future = upstream.write_frame(handler.ws_connection, frame)
            if future is None:
                future = handler.write_message(frame, binary=isinstance(frame, bytes))
        except (WebSocketClosedError, StreamClosedError):
            self.closed = True
            return
        if future.done():
            # The stream handed the frame to the OS at once (the usual case): nothing is
            # in flight, and no callback per frame is needed to say so.
            if not future.cancelled() and future.exception() is not None:
                self.closed = True
            return
        self.in_flight += size
        future.add_done_callback(lambda done: self._flushed(done, size))

    def _flushed(self, done: Any, size: int) -> None:
        self.in_flight -= size
        if not done.cancelled() and done.exception() is not None:
            self.closed = True  # the socket went away; disconnect() follows
            return
        while not self.closed and self.outbox and self.in_flight <= self.CONGESTED_BYTES:
            item = self.outbox.pop()
            if item is None:
                break
            self._write(item.frame, item.size)
        link = self._connection._link
        if not self.closed and not self.backlogged() and link is not None:
            link.relay.port_drained(self)

    def backlogged(self) -> bool:
        """Whether frames sent to this client wait to be handed to its socket."""
        return self.in_flight > 0 or bool(self.outbox)

    def _close_slow(self) -> None:
        self.too_slow = True
        self.closed = True
        self.outbox.clear()
        link = self._connection._link
        if link is not None:
            link.relay.reject(
                "client",
                "slow_client",
                f"{self.username} fell behind by more than "
                f"{self.max_pending_bytes} bytes; closing it",
                self.client_id,
            )
            # Leave the stream now: the close handshake with a stalled peer can take seconds.
            link.relay.detach(self)
        self._connection.websocket_handler.close(
            close_codes.CLIENT_TOO_SLOW,
            "widget relay: client too slow (max_pending_bytes_per_client); reconnect",
        )

    def abort(self) -> None:
        """Close a client the relay could not send to (it has been detached already)."""
        self.closed = True
        self.outbox.clear()
        self._connection.websocket_handler.close(
            close_codes.SEND_FAILED,
            "widget relay: a message could not be sent to this client; reconnect",
        )

    def describe(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "username": self.username,
            "display_name": self.display_name,
            "protocol": self.protocol,
        }
