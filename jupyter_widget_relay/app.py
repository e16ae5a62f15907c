"""The server extension: configuration (``c.WidgetRelay.*``) and wiring into jupyter_server."""

from __future__ import annotations

from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, Type

from .connection import RelayWebsocketConnection
from .handlers import handlers
from .manager import RelayManager


class WidgetRelay(ExtensionApp):
    """Serve Jupyter widgets to every client of a kernel from one widget-state table."""

    name = "jupyter_widget_relay"
    load_other_extensions = True

    enabled = Bool(
        True,
        config=True,
        help=(
            "Relay widget traffic through the server's widget table. Default True. When "
            "False the server behaves exactly as stock jupyter_server (each browser talks "
            "to the kernel) and the REST API reports enabled=false."
        ),
    )

    relay_manager_class = Type(
        default_value=RelayManager,
        klass=RelayManager,
        config=True,
        help="The class that creates and follows one relay per kernel. Default RelayManager.",
    )

    connection_class = Type(
        default_value=RelayWebsocketConnection,
        klass=RelayWebsocketConnection,
        config=True,
        help=(
            "The kernel websocket connection class installed while the relay is enabled. "
            "Default RelayWebsocketConnection."
        ),
    )

    kernel_check_interval = Float(
        5.0,
        config=True,
        help=(
            "Seconds between checks for kernels that died without a lifecycle event (their "
            "widget tables are then cleared). Default 5.0; 0 turns the check off."
        ),
    )

    buffered_messages_limit = Int(
        10000,
        config=True,
        help=(
            "Messages kept for a browser session whose last connection dropped, replayed "
            "when it reconnects (as jupyter_server does). Default 10000; 0 = no limit."
        ),
    )

    def initialize_settings(self) -> None:
        if not self.enabled:
            self.log.info("widget relay: disabled (c.WidgetRelay.enabled = False)")
            self.relay_manager = None
            self.settings["widget_relay_manager"] = None
            return
        serverapp = self.serverapp
        assert serverapp is not None, "initialize_settings runs after the server is linked"
        self.relay_manager = self.relay_manager_class(
            parent=self,
            log=self.log,
            kernel_manager=serverapp.kernel_manager,
            event_logger=getattr(serverapp, "event_logger", None),
            kernel_check_interval=self.kernel_check_interval,
            buffered_messages_limit=self.buffered_messages_limit,
        )
        self.settings["widget_relay_manager"] = self.relay_manager
        self.settings["kernel_websocket_connection_class"] = self.connection_class
        self.log.info("widget relay: enabled")

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.relay_manager is not None:
            await self.relay_manager.start()

    async def stop_extension(self) -> None:
        if self.relay_manager is not None:
            await self.relay_manager.stop()
