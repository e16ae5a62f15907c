"""What the server's setup lets the relay do: checked once, at startup, and said once.

The relay reads each kernel's ZMQ channels and installs its own kernel websocket
connection class. Where either is impossible or would replace another extension's choice,
it says so at startup, and it never breaks a kernel connection: it stays off and the
server behaves as stock.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

CONNECTION_CLASS_SETTING = "kernel_websocket_connection_class"


def reason_to_stay_off(serverapp: Any) -> str | None:
    """Why the relay cannot follow this server's kernels, or None if it can."""
    gateway = getattr(serverapp, "gateway_config", None)
    if gateway is not None and getattr(gateway, "gateway_enabled", False):
        return (
            f"kernels run behind a gateway ({gateway.url}); the relay reads kernels' ZMQ "
            "channels, which a gateway does not expose"
        )
    return None


def _name(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)


def connection_class_conflict(serverapp: Any, ours: type) -> str | None:
    """A warning if installing ``ours`` replaces a connection class someone chose.

    jupyter_server's own default (``ZMQChannelsWebsocketConnection``) is replaced quietly;
    a class configured as ``ServerApp.kernel_websocket_connection_class`` or set by
    another extension is named, with how to choose."""
    chosen = serverapp.web_app.settings.get(CONNECTION_CLASS_SETTING)
    if chosen is None or chosen is ZMQChannelsWebsocketConnection or chosen is ours:
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
