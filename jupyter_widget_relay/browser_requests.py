"""What every relayed browser connection does with the messages its browser sends.

Shared by the ZMQ connection (``connection.py``) and the gateway one
(``gateway_connection.py``): each message is read, given to the core's verdict
(``KernelRelay.receive``), and only a ``Forward``'s envelope goes on to the kernel, by the
connection's own ``_forward``. Until the relay's iopub subscription is live, requests
wait: what the kernel publishes for them would be lost otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .core.messages import Envelope, MessageError, compose
from .core.verdict import Forward

if TYPE_CHECKING:
    from .kernel_link import KernelLink
    from .manager import RelayManager
    from .websocket_port import WebsocketPort

LINK_READY_TIMEOUT = 5.0  # seconds


class RelayedRequests:
    """Mixin for a kernel websocket connection whose browser is a port of a relay."""

    _link: KernelLink | None = None
    _port: WebsocketPort | None = None
    _held: list[Any] | None = None  # requests waiting for the relay's iopub to be live
    _release: asyncio.Future[None] | None = None

    # provided by jupyter_server's connection classes
    log: logging.Logger
    kernel_id: str
    websocket_handler: Any

    @property
    def relay_manager(self) -> RelayManager | None:
        manager: RelayManager | None = self.websocket_handler.settings.get("widget_relay_manager")
        return manager

    # -- hooks -------------------------------------------------------------------------

    def _parse(self, incoming_msg: Any) -> Envelope:
        """The browser's frame as an envelope (MessageError if unreadable)."""
        raise NotImplementedError

    def _forward(self, envelope: Envelope) -> None:
        """Send a Forward's envelope to the kernel."""
        raise NotImplementedError

    def _can_forward(self) -> bool:
        return True

    # -- the flow ----------------------------------------------------------------------

    async def _wait_for_link(self) -> None:
        if self._link is None:
            return
        try:
            # The relay's subscription is normally live long before; do not hold a new
            # connection's replies for long if it is not (stock does not block on iopub).
            await asyncio.wait_for(self._link.ready.wait(), timeout=LINK_READY_TIMEOUT)
        except asyncio.TimeoutError:
            self.log.warning("widget relay: kernel %s iopub not ready", self.kernel_id)

    def _relay_incoming(self, incoming_msg: Any) -> None:
        """Hold the message until the relay's iopub is live, else handle it now."""
        assert self._link is not None
        if self._held is not None or not self._link.ready.is_set():
            self._hold(incoming_msg)
            return
        self._handle(incoming_msg)

    def _hold(self, incoming_msg: Any) -> None:
        """Keep a request until the relay's iopub subscription is live (after a restart, or
        while it is first made): what the kernel publishes for it would be lost otherwise."""
        if self._held is None:
            self._held = []
            self._release = asyncio.ensure_future(self._release_when_ready())
        self._held.append(incoming_msg)

    async def _release_when_ready(self) -> None:
        await self._wait_for_link()
        self._release_held()

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        for incoming_msg in held:
            self._handle(incoming_msg)

    def _stop_holding(self) -> None:
        """The connection closes: what its browser sent is accepted and goes on."""
        if self._release is not None:
            self._release.cancel()
        self._release_held()

    def _notify_refused(self, text: str) -> None:
        """Tell a client about a message that could not even be read (no parent to cite)."""
        if self._link is None or self._port is None:
            return
        notice = compose(
            "stream",
            {"name": "stderr", "text": f"[widget relay] {text}\n"},
            session=self._link.relay.kernel_session,
        )
        self._port.send(notice)

    def _handle(self, incoming_msg: Any) -> None:
        if self._link is None or self._port is None or not self._can_forward():
            return
        relay = self._link.relay
        limit = self.relay_manager.limits.max_message_bytes if self.relay_manager else 0
        if limit and len(incoming_msg) > limit:
            relay.reject(
                "client",
                "too_large",
                f"a {len(incoming_msg)}-byte message is over "
                f"c.WidgetRelay.max_message_bytes = {limit}",
                self._port.client_id,
            )
            self._notify_refused(
                f"a {len(incoming_msg)} byte message is over the limit of "
                f"{limit} bytes (c.WidgetRelay.max_message_bytes)"
            )
            return
        try:
            envelope = self._parse(incoming_msg)
        except MessageError as error:
            relay.reject("client", "unparsable", str(error), self._port.client_id)
            self._notify_refused(f"unreadable message: {error}")
            return
        verdict = relay.receive(self._port, envelope)
        if isinstance(verdict, Forward):
            self._forward(verdict.envelope)
