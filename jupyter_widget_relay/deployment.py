"""What the server's setup lets the relay do: checked once, at startup, and said once.

The relay follows each kernel through its own connection (the kernel's ZMQ channels, or a
websocket to the gateway the kernels run in) and installs its own kernel websocket
connection class. Where part of that is impossible or would replace another extension's
choice, it says so at startup, and it never breaks a kernel connection: what cannot work
is off and the server behaves there as stock.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.gateway.connections import GatewayWebSocketConnection
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

CONNECTION_CLASS_SETTING = "kernel_websocket_connection_class"
STOCK_CONNECTION_CLASSES = (ZMQChannelsWebsocketConnection, GatewayWebSocketConnection)

# What does not work when kernels run in a gateway (named in the startup warning and in
# the status endpoint).
OFF_BEHIND_GATEWAY = (
    "replaying a dropped browser session's messages when it reconnects (jupyter_server's "
    "gateway connections do not either)",
    "c.WidgetRelay.zmq_max_sockets (this server opens no kernel ZMQ sockets)",
    "ServerApp.iopub_msg_rate_limit and iopub_data_rate_limit (the gateway's own limits "
    "apply, to the relay's one connection per kernel)",
)


def gateway_url(serverapp: Any) -> str | None:
    """The gateway the server's kernels run in, or None for kernels it runs itself."""
    gateway = getattr(serverapp, "gateway_config", None)
    if gateway is not None and getattr(gateway, "gateway_enabled", False):
        return str(gateway.url)
    return None


def behind_gateway_warning(url: str) -> str:
    """The one startup warning for kernels in a gateway: how the relay follows them and
    what is off."""
    return (
        f"kernels run behind a gateway ({url}): the relay follows each kernel through its "
        "own websocket to the gateway (GatewayClient settings). Off behind a gateway: "
        + "; ".join(OFF_BEHIND_GATEWAY)
    )


def _name(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)


def connection_class_conflict(serverapp: Any, ours: type) -> str | None:
    """A warning if installing ``ours`` replaces a connection class someone chose.

    jupyter_server's own defaults (``ZMQChannelsWebsocketConnection``, or
    ``GatewayWebSocketConnection`` with a gateway) are replaced quietly;
    a class configured as ``ServerApp.kernel_websocket_connection_class`` or set by
    another extension is named, with how to choose."""
    chosen = serverapp.web_app.settings.get(CONNECTION_CLASS_SETTING)
    if chosen is None or chosen in STOCK_CONNECTION_CLASSES or chosen is ours:
        return None
    if isinstance(chosen, type) and issubclass(ours, chosen):
        return None
    return (
        f"installing {_name(ours)} as the kernel websocket connection class, in place of "
        f"{_name(chosen)} (from ServerApp.kernel_websocket_connection_class or "
        "another extension). To keep that one, set c.WidgetRelay.enabled = False; to give "
        "it the relay's behaviour, make it a subclass of the relay's class and set "
        "c.WidgetRelay.connection_class to it"
    )


def replaced_after_us(serverapp: Any, ours: type) -> str | None:
    """A warning if another extension replaced the relay's connection class after it
    installed it: browsers' kernel connections then bypass the relay."""
    current = serverapp.web_app.settings.get(CONNECTION_CLASS_SETTING)
    if current is ours or (isinstance(current, type) and issubclass(current, ours)):
        return None
    return (
        f"another extension replaced the widget relay's kernel websocket connection class "
        f"with {_name(current)}: browsers' kernel connections bypass the relay (late "
        "joiners wait for the kernel, peers see changes only through it). Disable one of "
        "the two (c.WidgetRelay.enabled = False, or that extension)"
    )
