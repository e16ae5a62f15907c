"""The kernel websocket connection behind a gateway: stock requests and replies, iopub
from the kernel's relay.

jupyter_server's ``GatewayWebSocketConnection`` opens one websocket to the gateway per
browser and passes strings both ways. This subclass keeps that websocket for the
browser's requests and their replies (shell, control, stdin), drops the iopub messages it
delivers (the relay's own websocket to the gateway supplies iopub, in one order, to every
browser), and passes the browser's messages through the relay's verdict. If the relay
cannot reach the kernel (its link is lost), the connection behaves exactly as stock.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from jupyter_server.gateway.connections import GatewayWebSocketConnection
from jupyter_server.gateway.gateway_client import GatewayClient
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError

from .browser_requests import LINK_READY_TIMEOUT, RelayedRequests
from .core import wire
from .core.messages import Envelope, MessageError
from .websocket_port import WebsocketPort

# How jupyter_server ends a legacy JSON message: ``channel`` is its last key.
IOPUB_TAIL = '"channel": "iopub"}'


def is_iopub(frame: bytes | str) -> bool:
    if isinstance(frame, str) and frame.endswith(IOPUB_TAIL):
        return True
    try:
        return wire.parse_legacy(frame).channel == "iopub"
    except MessageError:
        return False


class RelayGatewayWebSocketConnection(RelayedRequests, GatewayWebSocketConnection):
    """A browser's kernel connection through a gateway, with iopub from the relay."""

    limit_rate = False  # stock gateway connections do not limit iopub either

    @property
    def subprotocol(self) -> str | None:
        """The browser's wire format: always legacy JSON (the gateway connection's
        ``kernel_ws_protocol`` is ``""``)."""
        selected: str | None = self.websocket_handler.selected_subprotocol
        return selected

    def _relayed(self) -> bool:
        link = self._link
        return link is not None and self._port is not None and not link.closed and link.lost is None

    async def connect(self) -> None:
        manager = self.relay_manager
        if manager is not None and self._link is None:
            try:
                link = manager.ensure_link(self.kernel_id)
            except KeyError:
                link = None
            if link is not None and await link.wait_settled(LINK_READY_TIMEOUT):
                self._link = link
                self._port = WebsocketPort(self, manager.limits.max_pending_bytes_per_client)
                link.relay.attach(self._port)
        await super().connect()  # type: ignore[no-untyped-call]

    def disconnect(self) -> None:  # type: ignore[override]
        link, port = self._link, self._port
        if link is not None:
            self._stop_holding()  # what it sent is accepted: it goes to the kernel
            self._port = None
            if port is not None:
                port.closed = True
                link.relay.detach(port)
        super().disconnect()  # type: ignore[no-untyped-call]

    # -- browser -> gateway ----------------------------------------------------------

    def handle_incoming_message(self, message: Any) -> None:
        if self._relayed():
            self._relay_incoming(message)
        else:
            self._send_upstream(message)

    def _parse(self, incoming_msg: Any) -> Envelope:
        return wire.parse_legacy(incoming_msg)

    def _forward(self, envelope: Envelope) -> None:
        self._send_upstream(wire.legacy_frame(envelope))

    def _send_upstream(self, frame: bytes | str) -> None:
        """Stock's ``handle_incoming_message``, for binary frames too (stock sends every
        message as text, which a message with buffers cannot be)."""
        future = self.ws_future
        if self.ws is None and future is not None:
            if future.done() and future.exception() is not None:
                self.log.warning("Ignoring message on failed connection to %s", self.kernel_id)
                return
            IOLoop.current().add_future(future, lambda _: self._send_upstream(frame))
            return
        if self.disconnected or self.ws is None:
            return
        try:
            self.ws.write_message(frame, binary=isinstance(frame, bytes))
        except Exception as error:
            self.log.error("Exception writing message to websocket: %s", error)

    # -- gateway -> browser ----------------------------------------------------------

    def handle_outgoing_message(self, incoming_msg: Any, *args: Any) -> None:
        if self._relayed() and is_iopub(incoming_msg):
            return  # the relay sends iopub to this browser, in the kernel's one order
        try:
            self.websocket_handler.write_message(
                incoming_msg, binary=isinstance(incoming_msg, bytes)
            )
        except WebSocketClosedError:
            self.log.debug("Notebook client closed websocket connection - message dropped")

    async def _read_messages(self) -> None:
        """Stock's reading loop (jupyter_server's private ``_read_messages``, overridden
        here), except that binary frames stay bytes: stock decodes every frame as UTF-8,
        which fails for a message with buffers and ends the loop. Checked at load
        (upstream.check_gateway_read_loop): without it the relay stays off behind a
        gateway."""
        while self.ws is not None and not self.disconnected:
            message = None
            try:
                message = await self.ws.read_message()
            except Exception as error:
                self.log.error("Exception reading message from websocket: %s", error)
            if message is None:
                if not self.disconnected:
                    self.log.warning("Lost connection to Gateway: %s", self.kernel_id)
                break
            self.handle_outgoing_message(message)
        client = GatewayClient.instance()
        if not self.disconnected and self.retry < client.gateway_retry_max:
            interval = min(
                client.gateway_retry_interval * (2**self.retry), client.gateway_retry_interval_max
            )
            self.retry += 1
            self.log.info("Re-establishing the connection to Gateway: %s", self.kernel_id)
            await asyncio.sleep(interval + random.uniform(0.1, 1.0))  # jitter, as stock
            IOLoop.current().spawn_callback(self.connect)
