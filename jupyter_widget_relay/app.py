"""The server extension: configuration (``c.WidgetRelay.*``) and wiring into jupyter_server."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Float, Int, TraitError, Type, validate

from . import upstream
from .connection import RelayWebsocketConnection
from .contents_saves import contents_handlers
from .core import close_codes
from .deployment import (
    OFF_BEHIND_GATEWAY,
    behind_gateway_warning,
    connection_class_conflict,
    gateway_url,
    replaced_after_us,
)
from .gateway_connection import RelayGatewayWebSocketConnection
from .handlers import handlers
from .manager import RelayLimits, RelayManager
from .persistence import WidgetStatePersistence
from .process_tuning import raise_zmq_socket_cap, schedule_startup_freeze, zmq_socket_limit


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

    gateway_connection_class = Type(
        default_value=RelayGatewayWebSocketConnection,
        klass=RelayGatewayWebSocketConnection,
        config=True,
        help=(
            "The kernel websocket connection class installed while the relay is enabled "
            "and kernels run behind a gateway (ServerApp.gateway_url). Default "
            "RelayGatewayWebSocketConnection."
        ),
    )

    follow_gateway_kernels = Bool(
        False,
        config=True,
        help=(
            "Whether the relay follows kernels that run behind a gateway "
            "(ServerApp.gateway_url), through its own websocket to each. Off by default: "
            "there the relay's table holds only what it saw since it began following a "
            "kernel, so a kernel that already had widgets (one the gateway kept across a "
            "restart of this server) or a relay connection that dropped would leave late "
            "joiners with a partial snapshot. Turn it on where this server starts the "
            "gateway's kernels and the connection to the gateway is reliable. While off, "
            "the relay stays off behind a gateway and browsers talk to the kernels as "
            "without it."
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

    throttle_updates = Bool(
        True,
        config=True,
        help=(
            "Pace browsers' widget updates in the relay instead of in each browser. "
            "Default True: the relay tells a browser at once that its update is handled, "
            "so every step of a drag reaches the other browsers immediately, also while a "
            "cell runs; toward the kernel it keeps one update per widget and browser "
            "outstanding and merges later ones (latest value per trait), as the browser "
            "would. False: browsers pace themselves (stock): while the kernel is busy, the "
            "steps after the first wait in the browser until the kernel is free."
        ),
    )

    # -- admin limits ------------------------------------------------------------------

    max_message_bytes = Int(
        64 * 2**20,
        config=True,
        help=(
            "Largest websocket message, in bytes, the relay accepts from a browser; a larger "
            "one is refused (logged, counted, and the sender is told). Default 67108864 "
            "(64 MiB); 0 = no limit of the relay's own (tornado's websocket_max_message_size "
            "still applies)."
        ),
    )

    max_buffer_bytes_per_kernel = Int(
        2**30,
        config=True,
        help=(
            "Most binary buffer bytes (distinct, after de-duplication) a kernel's widget table "
            "may hold because of browser updates; a browser update that would pass it is "
            "refused. Kernel-side changes are never refused. Default 1073741824 (1 GiB); "
            "0 = no limit."
        ),
    )

    max_state_bytes_per_kernel = Int(
        2**30,
        config=True,
        help=(
            "Most bytes of JSON state (compact JSON, binary buffers not included) a kernel's "
            "widget table may hold for a browser update or a browser-created model to be "
            "accepted: one that would take the table past it is refused. Kernel-side changes "
            "are never refused (and are counted). Default 1073741824 (1 GiB); 0 = no limit."
        ),
    )

    max_models_per_kernel = Int(
        100_000,
        config=True,
        help=(
            "Most widget models a kernel's table may hold before browsers may not create "
            "more (comm_open from a browser is refused). Models the kernel creates are always "
            "kept. Default 100000; 0 = no limit."
        ),
    )

    max_pending_bytes_per_client = Int(
        64 * 2**20,
        config=True,
        help=(
            "Bytes that may wait for one slow browser (written but not yet sent, plus queued "
            "after coalescing widget updates). Past it, or for one message larger than it, "
            f"the relay closes that connection with code {close_codes.CLIENT_TOO_SLOW} and the "
            "browser reloads from a fresh snapshot when it reconnects. "
            "Default 67108864 (64 MiB); 0 = no limit."
        ),
    )

    max_unhandled_bytes_per_client = Int(
        64 * 2**20,
        config=True,
        help=(
            "Bytes of one browser's widget updates (JSON state and binary buffers) that the "
            "relay holds while the kernel has not handled them yet (a busy kernel handles "
            "them after the running cell). Past it, that browser's further updates are "
            "refused with a notice until the kernel catches up. Default 67108864 (64 MiB); "
            "0 = no limit."
        ),
    )

    @validate(
        "max_message_bytes",
        "max_buffer_bytes_per_kernel",
        "max_models_per_kernel",
        "max_pending_bytes_per_client",
        "max_unhandled_bytes_per_client",
        "max_state_bytes_per_kernel",
        "buffered_messages_limit",
        "saved_state_max_bytes",
    )
    def _non_negative(self, proposal: Any) -> int:
        value = proposal["value"]
        if value < 0:
            raise TraitError(
                f"c.WidgetRelay.{proposal['trait'].name} = {value} is out of range: "
                "use a whole number >= 0 (0 = no limit)"
            )
        return int(value)

    @validate("kernel_check_interval")
    def _interval(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if value < 0:
            raise TraitError(
                f"c.WidgetRelay.kernel_check_interval = {value} is out of range: use seconds "
                ">= 0 (0 turns the check off)"
            )
        return value

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        # jupyter_server logs and ignores exceptions from extensions; a wrong setting must
        # stop the server instead of silently serving widgets without the relay.
        # (A private method of ExtensionApp: upstream.check_extension_link.)
        try:
            super()._link_jupyter_server_extension(serverapp)
        except TraitError as error:
            message = f"widget relay: invalid configuration: {error}"
            self.log.critical(message)
            raise SystemExit(message) from error

    zmq_max_sockets = Int(
        65535,
        config=True,
        help=(
            "Most ZMQ sockets the server's kernel connections may open (libzmq's "
            "MAX_SOCKETS of the kernel manager's ZMQ context), applied when the extension "
            "loads, before any kernel socket exists. Each browser connection opens 3 (shell, "
            "control, stdin; the relay shares iopub), so libzmq's own default of 1023 refuses "
            "the ~340th browser with 'Too many open files'. Each socket also uses about two "
            "file descriptors: raise the process's open-files limit too (ulimit -n, or "
            "ServerApp.min_open_files_limit, default 4096). Default 65535 (libzmq's "
            "largest); 0 = leave the context as it is (libzmq's default: 1023)."
        ),
    )

    @validate("zmq_max_sockets")
    def _zmq_max_sockets(self, proposal: Any) -> int:
        value, limit = proposal["value"], zmq_socket_limit()
        if not 0 <= value <= limit:
            raise TraitError(
                f"c.WidgetRelay.zmq_max_sockets = {value} is out of range: use a whole number "
                f"from 1 to {limit} (sockets), or 0 to leave libzmq's setting"
            )
        return int(value)

    freeze_startup_objects = Bool(
        True,
        config=True,
        help=(
            "Once the server has started, exempt the objects it holds then (modules, "
            "classes, configuration) from Python's garbage collector (gc.freeze()). A full "
            "collection walks every tracked object while the event loop waits, so with many "
            "browsers per server each one otherwise pauses every kernel's fan-out; frozen, "
            "collections walk only what came later. "
            "Default True; False leaves the garbage collector alone."
        ),
    )

    # -- saved widget state ------------------------------------------------------------

    save_widget_state = Enum(
        ["referenced", "all", "none"],
        default_value="referenced",
        config=True,
        help=(
            "Which widget state the server writes into a notebook's metadata.widgets on every "
            "save (REST, JupyterLab, jupyter-collaboration), from the kernel's widget table. "
            "Default 'referenced': the models the notebook's widget outputs show plus every "
            "model they reference, so the file renders its widgets without a kernel. 'all': "
            "every model of the kernel. 'none': the server does not touch widget state "
            "(stock behaviour). With no kernel running, the state already stored in the file "
            "is kept."
        ),
    )

    saved_state_max_bytes = Int(
        0,
        config=True,
        help=(
            "Upper bound, in bytes of compact JSON (buffers base64), on the widget state "
            "written into one notebook. Over it, whole widget views are left out (earlier "
            "outputs are kept first) and a warning names them. Default 0 = no cap."
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
        gateway = gateway_url(serverapp)
        if gateway is not None and not self.follow_gateway_kernels:
            reason = (
                f"kernels run behind a gateway ({gateway}) and "
                "c.WidgetRelay.follow_gateway_kernels is False"
            )
            self._stay_off(reason)
            return
        checked = upstream.check_all(
            serverapp,
            self.log,
            gateway=gateway is not None,
            save_state=self.save_widget_state != "none",
            zmq_sockets=gateway is None and self.zmq_max_sockets != 0,
        )
        if checked.refused:
            self._stay_off(checked.off_reason(), warn=False)  # check_all said why
            return
        connection_class = self.gateway_connection_class if gateway else self.connection_class
        if gateway is not None:
            self.log.warning("widget relay: %s", behind_gateway_warning(gateway))
            self.settings["widget_relay_gateway"] = {
                "url": gateway,
                "off": list(OFF_BEHIND_GATEWAY),
            }
        conflict = connection_class_conflict(serverapp, connection_class)
        if conflict is not None:
            self.log.warning("widget relay: %s", conflict)
        if gateway is None:
            raise_zmq_socket_cap(serverapp.kernel_manager, self.zmq_max_sockets, self.log)
        self.relay_manager = self.relay_manager_class(
            parent=self,
            log=self.log,
            kernel_manager=serverapp.kernel_manager,
            event_logger=getattr(serverapp, "event_logger", None),
            kernel_check_interval=self.kernel_check_interval,
            buffered_messages_limit=self.buffered_messages_limit,
            throttle_updates=self.throttle_updates,
            behind_gateway=gateway is not None,
            limits=RelayLimits(
                max_message_bytes=self.max_message_bytes,
                max_buffer_bytes_per_kernel=self.max_buffer_bytes_per_kernel,
                max_state_bytes_per_kernel=self.max_state_bytes_per_kernel,
                max_models_per_kernel=self.max_models_per_kernel,
                max_pending_bytes_per_client=self.max_pending_bytes_per_client,
                max_unhandled_bytes_per_client=self.max_unhandled_bytes_per_client,
            ),
        )
        self.settings["widget_relay_manager"] = self.relay_manager
        self.widget_state_persistence = WidgetStatePersistence.install(
            serverapp,
            self.relay_manager,
            # without knowing who saves, a read-only user's save would get kernels' state
            mode="none" if "contents-saves" in checked.problems else self.save_widget_state,
            max_bytes=self.saved_state_max_bytes,
            log=self.log,
        )
        self.settings["widget_state_persistence"] = self.widget_state_persistence
        self.settings["kernel_websocket_connection_class"] = connection_class
        self.log.info("widget relay: enabled")

    def _stay_off(self, reason: str, warn: bool = True) -> None:
        if warn:
            self.log.warning(
                "widget relay: off, %s. Browsers talk to the kernels as without the relay.",
                reason,
            )
        self.relay_manager = None
        self.settings["widget_relay_manager"] = None
        self.settings["widget_relay_off_reason"] = reason

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())
        if getattr(self, "widget_state_persistence", None) is not None:
            self.handlers.extend(contents_handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.relay_manager is not None:
            behind = gateway_url(serverapp) is not None
            ours = self.gateway_connection_class if behind else self.connection_class
            replaced = replaced_after_us(serverapp, ours)
            if replaced is not None:
                self.log.warning("widget relay: %s", replaced)
            await self.relay_manager.start()
            if self.freeze_startup_objects:
                self._freeze = schedule_startup_freeze(self.log)

    _freeze: asyncio.TimerHandle | None = None
    # Set by initialize_settings; None until then (a server whose start failed still
    # stops its extensions).
    relay_manager: RelayManager | None = None

    async def stop_extension(self) -> None:
        if self._freeze is not None:
            self._freeze.cancel()
        persistence = getattr(self, "widget_state_persistence", None)
        if persistence is not None:
            persistence.stop()
        if self.relay_manager is not None:
            await self.relay_manager.stop()
