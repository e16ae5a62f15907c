"""The kernel websocket connection: stock shell/control/stdin, iopub from the kernel's relay."""

from __future__ import annotations

import asyncio
from typing import Any

import zmq
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web

from .browser_requests import RelayedRequests
from .core import wire
from .core.messages import Envelope
from .websocket_port import WebsocketPort

OWN_CHANNELS = ("shell", "control", "stdin")


class RelayWebsocketConnection(RelayedRequests, ZMQChannelsWebsocketConnection):
    """Like the stock connection, except that iopub comes from the kernel's single relay
    subscription (one total order for all clients, widget messages never rate limited)
    and widget requests are answered from the relay's table."""

    def create_stream(self) -> None:
        identity = self.session.bsession
        for channel in OWN_CHANNELS:
            stream = getattr(self.kernel_manager, "connect_" + channel)(identity=identity)
            stream.channel = channel
            self.channels[channel] = stream

    def nudge(self) -> asyncio.Future[None]:
        return asyncio.ensure_future(self._wait_for_link())

    def connect(self) -> asyncio.Future[None] | None:  # type: ignore[override]
        manager = self.relay_manager
        if manager is None:
            return super().connect()
        mkm = self.multi_kernel_manager
        mkm.notify_connect(self.kernel_id)
        self._link = link = manager.ensure_link(self.kernel_id)
        buffer_info = mkm.get_buffer(self.kernel_id, self.session_key)
        replay: list[tuple[str, list[bytes]]] = []
        backlog: list[Envelope] = []
        if buffer_info and buffer_info["session_key"] == self.session_key:
            self.log.info("Restoring connection for %s", self.session_key)
            if mkm.ports_changed(self.kernel_id):
                for stream in buffer_info["channels"].values():
                    if not stream.closed():
                        stream.close()
                self.create_stream()
            else:
                self.channels = buffer_info["channels"]
            replay = buffer_info["buffer"]
            backlog = link.unpark(self.session_key)
        else:
            link.discard_parked()
            try:
                self.create_stream()
            except web.HTTPError as error:
                self.log.error("Error opening stream: %s", error)
                for stream in self.channels.values():
                    if not stream.closed():
                        stream.close()
                self.disconnect()
                return None
        self._port = WebsocketPort(self, manager.limits.max_pending_bytes_per_client)
        link.relay.attach(self._port, backlog)
        mkm.add_restart_callback(self.kernel_id, self.on_restart_failed, "dead")
        connected = self.nudge()

        def subscribe(_: Any) -> None:
            for channel, msg_list in replay:
                stream = self.channels.get(channel)
                if stream is not None:
                    self.handle_outgoing_message(stream, msg_list)
            for stream in self.channels.values():
                stream.on_recv_stream(self.handle_outgoing_message)

        connected.add_done_callback(subscribe)
        ZMQChannelsWebsocketConnection._open_sockets.add(self)
        return connected

    def on_kernel_restarted(self) -> None:
        """The relay tells every client about restarts, once, in stream order."""

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
        if self.kernel_id in self.multi_kernel_manager:
            self.multi_kernel_manager.remove_restart_callback(
                self.kernel_id, self.on_restart_failed, "dead"
            )
        self._deliver_accepted()
        super().disconnect()  # type: ignore[no-untyped-call]
        buffers = getattr(self.multi_kernel_manager, "_kernel_buffers", {})
        keep = port is not None and not port.too_slow  # a slow client reloads from a snapshot
        info = buffers.get(self.kernel_id) if keep else None
        if info is not None and info.get("session_key") == self.session_key:
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
