"""The kernel websocket connection: stock shell/control/stdin, iopub from the kernel's relay."""

from __future__ import annotations

import asyncio
from typing import Any

import zmq
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from . import upstream
from .browser_requests import RelayedRequests
from .core import wire
from .core.messages import Envelope
from .websocket_port import WebsocketPort

OWN_CHANNELS = ("shell", "control", "stdin")


class RelayWebsocketConnection(RelayedRequests, ZMQChannelsWebsocketConnection):
    """Like the stock connection, except that iopub comes from the kernel's single relay
    subscription (one total order for all clients, widget messages never rate limited)
    and widget requests are answered from the relay's table."""

    # jupyter_server's connect() does the rest: the kernel manager's connection count and
    # buffered session, the replay of a restored session's replies, the restart callbacks
    # and the open-sockets registry. These hooks are what differs.

    def create_stream(self) -> None:
        """Open shell, control and stdin only: iopub comes from the relay."""
        if self._link is None:
            super().create_stream()  # type: ignore[no-untyped-call]
            return
        identity = self.session.bsession
        for channel in OWN_CHANNELS:
            stream = getattr(self.kernel_manager, "connect_" + channel)(identity=identity)
            stream.channel = channel
            self.channels[channel] = stream

    def nudge(self) -> asyncio.Future[None]:
        """Wait for the relay's iopub subscription (stock's nudge watches its own iopub)."""
        if self._link is None:
            return super().nudge()
        return asyncio.ensure_future(self._wait_for_link())

    def connect(self) -> asyncio.Future[None] | None:  # type: ignore[override]
        manager = self.relay_manager
        if manager is None:
            return super().connect()
        self._link = link = manager.ensure_link(self.kernel_id)
        # Stock restores the session whose messages the kernel manager buffers; the relay
        # then hands this browser the iopub it kept for that session, else forgets it.
        restoring = (
            upstream.buffered_session(self.multi_kernel_manager, self.kernel_id) == self.session_key
        )
        if not restoring:
            link.discard_parked()
        connected = super().connect()
        if connected is None:  # no streams: stock closed the connection
            return None
        backlog = link.unpark(self.session_key) if restoring else []
        # Before the loop turns (no iopub can arrive in between) and before the nudge
        # resolves, as stock subscribes its own iopub.
        self._port = WebsocketPort(self, manager.limits.max_pending_bytes_per_client)
        link.relay.attach(self._port, backlog)
        return connected

    def on_kernel_restarted(self) -> None:
        """The relay tells every client about restarts, once, in stream order (stock
        registers this callback and would send each client a second status)."""

    def disconnect(self) -> None:  # type: ignore[override]
        link, port = self._link, self._port
        if link is None:
            super().disconnect()  # type: ignore[no-untyped-call]
            return
        self._stop_holding()  # what it sent is accepted: it goes to the kernel
        self._port = None
        if port is not None:
            port.closed = True
            link.relay.detach(port)
        self._deliver_accepted()
        super().disconnect()  # type: ignore[no-untyped-call]
        keep = port is not None and not port.too_slow  # a slow client reloads from a snapshot
        buffered = upstream.buffered_session(self.multi_kernel_manager, self.kernel_id)
        if keep and buffered == self.session_key:
            link.park(self.session_key)

    def _deliver_accepted(self) -> None:
        """Hand the kernel every message this client sent before it left.

        The relay already applied and fanned out the client's widget updates; ZMQ streams
        queue sends until the next loop turn and closing one drops that queue, so without
        this the table would keep values the kernel never received."""
        for stream in self.channels.values():
            if stream is not None and not stream.closed():
                try:
                    stream.flush(zmq.POLLOUT)
                except zmq.ZMQError as error:
                    self.log.warning("widget relay: could not flush %s: %s", stream.channel, error)

    def handle_incoming_message(self, incoming_msg: Any) -> None:
        if self._link is None or self._port is None:
            super().handle_incoming_message(incoming_msg)
            return
        self._relay_incoming(incoming_msg)

    def _can_forward(self) -> bool:
        return bool(self.channels)

    def _parse(self, incoming_msg: Any) -> Envelope:
        assert self._port is not None
        if self._port.v1:
            channel, parts = wire.parse_v1(incoming_msg)
            return wire.envelope_from_parts(channel, parts)
        return wire.parse_legacy(incoming_msg)

    def _forward(self, forward: Envelope) -> None:
        assert self._port is not None
        stream = self.channels.get(forward.channel)
        if stream is None:
            self.log.warning("No such channel: %r", forward.channel)
            return
        if self._port.v1:
            self.session.send_raw(stream, wire.parts_of(forward))
        else:
            message = {
                "header": forward.header,
                "parent_header": forward.parent_header,
                "metadata": forward.metadata,
                "content": forward.content,
                "buffers": forward.buffers,
            }
            self.session.send(stream, message)
