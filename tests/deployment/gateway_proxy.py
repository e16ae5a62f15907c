"""A small HTTP and websocket proxy in front of a real kernel gateway, which can refuse
some websocket connections (as a gateway, a load balancer or a policy in between may)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from tornado import httpserver, web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import HTTPServerRequest
from tornado.websocket import WebSocketClientConnection, WebSocketHandler, websocket_connect

Refuse = Callable[[HTTPServerRequest], bool]


#: The open channel connections, so that a test can cut some.
OPEN: set[ChannelsProxy] = set()


class ChannelsProxy(WebSocketHandler):
    def initialize(self, upstream: str, refuse: Refuse) -> None:
        self.upstream = upstream
        self.refuse = refuse
        self.peer: WebSocketClientConnection | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.refuse(self.request):
            self.set_status(403)
            self.finish()
            return
        await super().get(*args, **kwargs)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        url = self.upstream.replace("http", "ws", 1) + self.request.uri
        self.peer = await websocket_connect(url, max_message_size=1 << 30)
        self.pump = asyncio.ensure_future(self._pump(self.peer))
        OPEN.add(self)

    async def _pump(self, peer: WebSocketClientConnection) -> None:
        while True:
            message = await peer.read_message()
            if message is None:
                self.close()
                return
            self.write_message(message, binary=isinstance(message, bytes))

    def on_message(self, message: str | bytes) -> None:
        if self.peer is not None:
            self.peer.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        OPEN.discard(self)
        if self.peer is not None:
            self.peer.close()


def cut(matching: Refuse) -> int:
    """Close the open channel connections whose request matches, at both ends."""
    cut = [handler for handler in OPEN if matching(handler.request)]
    for handler in cut:
        handler.close()
        handler.on_close()
    return len(cut)


class HttpProxy(web.RequestHandler):
    def initialize(self, upstream: str, refuse: Refuse) -> None:
        self.upstream = upstream

    async def _forward(self) -> None:
        request = HTTPRequest(
            self.upstream + self.request.uri,
            method=self.request.method,
            headers={k: v for k, v in self.request.headers.items() if k.lower() != "host"},
            body=self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None,
            allow_nonstandard_methods=True,
            request_timeout=120,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as error:
            if error.response is None:
                raise
            response = error.response
        self.set_status(response.code)
        if "Content-Type" in response.headers:
            self.set_header("Content-Type", response.headers["Content-Type"])
        if response.body:
            self.write(response.body)

    get = post = delete = patch = put = _forward  # type: ignore[assignment]


def start_proxy(upstream: str, refuse: Refuse) -> tuple[str, httpserver.HTTPServer]:
    """Serve the proxy on a loopback port of the running event loop; returns its URL."""
    args = {"upstream": upstream, "refuse": refuse}
    app = web.Application(
        [(r"/api/kernels/[^/]+/channels", ChannelsProxy, args), (r"/.*", HttpProxy, args)]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    server = httpserver.HTTPServer(app)
    server.add_sockets([sock])
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server
