"""Every private attribute of another package the relay uses, behind one named accessor.

tornado, jupyter_server, pyzmq and ipywidgets do not promise these names; a release may
rename one. Each is checked once when the extension loads (``check_all``, from
``WidgetRelay.initialize_settings``): a missing or changed one is named in one warning
and the relay uses the fallback written next to its check, or, where no fallback is safe,
stays off and the server works as stock. The accessors below use an attribute only while
its check passed (until the next load), so a fallback is the same code path at load and
later. See docs/compatibility.md for the versions these checks were made with.
"""

from __future__ import annotations

import inspect
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.gateway.connections import GatewayWebSocketConnection
from jupyter_server.services.contents import handlers as contents_handlers
from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.concurrent import Future
from tornado.websocket import WebSocketClosedError, WebSocketProtocol13
from traitlets import TraitType

SUPPORTED_VERSIONS = (
    "jupyter_server >=2.14,<3 (checked with 2.21.1), tornado >=6.2 (checked with 6.6.1), "
    "pyzmq (checked with 27.3.0) and ipywidgets 8 (checked with 8.1.9)"
)

# Checks whose failure turns the relay off (no safe fallback).
REFUSING = frozenset({"connection-hooks", "gateway-read-loop"})

# What each failed check costs (the fallback), as the warning says it.
FALLBACKS = {
    "websocket-frames": "frames are written with tornado's write_message (slower, same order)",
    "iopub-rate-limit": (
        "ServerApp.iopub_msg_rate_limit and iopub_data_rate_limit do not apply to the "
        "relay's iopub (widget messages never did)"
    ),
    "iopub-rate-window": "every idle status goes through jupyter_server's own rate limiter",
    "kernel-buffers": (
        "a dropped browser session gets the kernel's replies replayed when it reconnects, "
        "but not the iopub messages it missed"
    ),
    "contents-os-path": (
        "the widget state stored in a notebook is read through the contents manager "
        "(asynchronous managers: read ahead, as for remote contents)"
    ),
    "contents-saves": (
        "REST saves cannot tell the user who saves: the server writes no widget state into "
        "notebooks (as with c.WidgetRelay.save_widget_state = 'none')"
    ),
    "session-table": (
        "notebooks are saved without widget state from kernels (the state the client sent is kept)"
    ),
    "extension-link": (
        "an invalid c.WidgetRelay setting is logged by jupyter_server instead of stopping the "
        "server"
    ),
    "zmq-sockets": (
        "the warning that c.WidgetRelay.zmq_max_sockets came too late counts running kernels, "
        "not the ZMQ context's sockets"
    ),
    "widget-registry": "saved widget state keeps every trait (class defaults are not left out)",
}
FALLBACKS.update(
    dict.fromkeys(REFUSING, "the relay is off; browsers talk to the kernels as without it")
)

_unusable: set[str] = set()  # checks that failed at the last load
_checked: set[str] = set()  # checks run since the last load
_load_log = logging.getLogger("jupyter_widget_relay")


def usable(name: str) -> bool:
    """Whether check ``name`` passed at the last load (True before any load)."""
    return name not in _unusable


@dataclass
class Report:
    """What ``check_all`` found: check name -> the problem (missing or changed)."""

    problems: dict[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> list[str]:
        return [name for name in self.problems if name in REFUSING]

    def off_reason(self) -> str:
        problems = "; ".join(self.problems[name] for name in self.refused)
        return f"{problems} (supported: {SUPPORTED_VERSIONS})"


def _params(function: Any) -> list[str]:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return []


def _names_used(function: Any) -> set[str]:
    """Attribute and global names a function's code uses, its nested functions' included."""
    found: set[str] = set()
    codes = [getattr(function, "__code__", None)]
    while codes:
        code = codes.pop()
        if isinstance(code, CodeType):
            found.update(code.co_names)
            codes.extend(const for const in code.co_consts if isinstance(const, CodeType))
    return found


# -- tornado: one websocket frame without write_message's coroutine ------------------------

FRAME_ATTRIBUTES = ("_message_bytes_out", "_compressor")


def check_websocket_frames() -> str | None:
    write_frame = getattr(WebSocketProtocol13, "_write_frame", None)
    if not callable(write_frame):
        return "tornado's WebSocketProtocol13._write_frame is missing"
    if _params(write_frame)[:4] != ["self", "fin", "opcode", "data"]:
        return "tornado's WebSocketProtocol13._write_frame(fin, opcode, data) changed"
    missing = [n for n in FRAME_ATTRIBUTES if n not in _names_used(WebSocketProtocol13.__init__)]
    if missing:
        return f"tornado's WebSocketProtocol13 no longer sets {', '.join(missing)}"
    return None


def write_frame(protocol: Any, frame: bytes | str) -> Future[None] | None:
    """What ``WebSocketProtocol13.write_message`` does, minus the coroutine and task it wraps
    around every write: one frame, the stream's own future. None where that is not
    possible (compression, another protocol class, a failed check): use write_message.
    Raises WebSocketClosedError once the protocol is closing, as write_message does."""
    if not (
        usable("websocket-frames")
        and isinstance(protocol, WebSocketProtocol13)
        and getattr(protocol, "_compressor", True) is None
        and hasattr(protocol, "_message_bytes_out")
    ):
        return None
    if protocol.is_closing():
        raise WebSocketClosedError()
    binary = isinstance(frame, bytes)
    data = frame if isinstance(frame, bytes) else frame.encode()
    protocol._message_bytes_out += len(data)
    return protocol._write_frame(True, 0x2 if binary else 0x1, data)


# -- jupyter_server: the stock connection's iopub rate limit -------------------------------

RATE_WINDOW_EMPTY: dict[str, Any] = {
    "_iopub_window_byte_queue": [],
    "_iopub_window_msg_count": 0,
    "_iopub_window_byte_count": 0,
    "_iopub_msgs_exceeded": False,
    "_iopub_data_exceeded": False,
}


def check_iopub_rate_limit() -> str | None:
    limit_rate = getattr(ZMQChannelsWebsocketConnection, "_limit_rate", None)
    if not callable(limit_rate):
        return "jupyter_server's ZMQChannelsWebsocketConnection._limit_rate is missing"
    if _params(limit_rate) != ["self", "channel", "msg", "msg_list"]:
        return "ZMQChannelsWebsocketConnection._limit_rate(channel, msg, msg_list) changed"
    return None


def check_iopub_rate_window() -> str | None:
    cls = ZMQChannelsWebsocketConnection
    missing = [n for n in RATE_WINDOW_EMPTY if not isinstance(getattr(cls, n, None), TraitType)]
    if missing:
        return f"ZMQChannelsWebsocketConnection has no {', '.join(missing)}"
    return None


def rate_limited(connection: Any, msg: dict[str, Any], parts: list[bytes]) -> bool:
    """Stock's per-connection iopub limit for one message (False if unavailable)."""
    if not usable("iopub-rate-limit"):
        return False
    return bool(connection._limit_rate("iopub", msg, parts))


def reset_rate_window(connection: Any) -> None:
    """What stock's ``_limit_rate`` does on an idle status, skipped when nothing was
    counted since the last reset (without the window's fields: ``_limit_rate`` itself)."""
    if not usable("iopub-rate-window"):
        idle = {"header": {"msg_type": "status"}, "content": {"execution_state": "idle"}}
        rate_limited(connection, idle, [])
        return
    if (
        connection._iopub_window_byte_queue
        or connection._iopub_window_msg_count
        or connection._iopub_window_byte_count
        or connection._iopub_msgs_exceeded
        or connection._iopub_data_exceeded
    ):
        for name, value in RATE_WINDOW_EMPTY.items():
            setattr(connection, name, [] if isinstance(value, list) else value)


# -- jupyter_server: the stock connection's connect() hooks --------------------------------

CONNECT_HOOKS = ("create_stream", "nudge", "add_restart_callback", "get_buffer")


def check_connection_hooks() -> str | None:
    """RelayWebsocketConnection extends stock connect() through create_stream and nudge:
    if stock stopped calling them, browsers would get a second iopub."""
    used = _names_used(ZMQChannelsWebsocketConnection.connect)
    missing = [name for name in CONNECT_HOOKS if name not in used]
    if missing:
        return f"ZMQChannelsWebsocketConnection.connect no longer calls {', '.join(missing)}"
    return None


# -- jupyter_server: the kernel manager's buffer for a dropped session ---------------------


def check_kernel_buffers(kernel_manager: Any) -> str | None:
    buffers = getattr(kernel_manager, "_kernel_buffers", None)
    if not isinstance(buffers, Mapping):
        return f"{type(kernel_manager).__name__}._kernel_buffers is missing"
    factory = getattr(buffers, "default_factory", None)
    if factory is not None and "session_key" not in factory():
        return f"{type(kernel_manager).__name__}._kernel_buffers entries have no session_key"
    return None


def buffered_session(kernel_manager: Any, kernel_id: str) -> str | None:
    """The session whose messages the kernel manager buffers for ``kernel_id`` (the one
    stock ``connect`` restores), or None."""
    if not usable("kernel-buffers"):
        return None
    buffers = getattr(kernel_manager, "_kernel_buffers", None)
    info = buffers.get(kernel_id) if isinstance(buffers, Mapping) else None
    session_key = info.get("session_key") if isinstance(info, Mapping) else None
    return str(session_key) if session_key else None


# -- jupyter_server: contents ----------------------------------------------------------------


def check_contents_os_path(contents_manager: Any) -> str | None:
    if not isinstance(contents_manager, FileManagerMixin):
        return None  # other managers are read through their own API
    get_os_path = getattr(contents_manager, "_get_os_path", None)
    try:
        if callable(get_os_path) and isinstance(get_os_path(""), str):
            return None
    except Exception as error:
        return f"{type(contents_manager).__name__}._get_os_path('') failed: {error}"
    return f"{type(contents_manager).__name__}._get_os_path(path) is missing or changed"


def os_path_reader(contents_manager: Any) -> Callable[[str], str] | None:
    """The file-system path of a notebook, for managers that have one (else None)."""
    get_os_path = getattr(contents_manager, "_get_os_path", None)
    if not callable(get_os_path) or not usable("contents-os-path"):
        return None
    return get_os_path  # type: ignore[no-any-return]


SAVE_METHODS = ("_save", "_upload")


def check_contents_saves() -> str | None:
    """contents_saves.SavingContentsHandler wraps these to know who saves."""
    handler = contents_handlers.ContentsHandler
    for name in SAVE_METHODS:
        method = getattr(handler, name, None)
        if not inspect.iscoroutinefunction(method) or _params(method) != ["self", "model", "path"]:
            return f"jupyter_server's ContentsHandler.{name}(model, path) is missing or changed"
    if not any(h is handler for _, h in getattr(contents_handlers, "default_handlers", [])):
        return "jupyter_server's contents default_handlers do not list ContentsHandler"
    return None


SESSION_ROWS = "SELECT path, kernel_id FROM session"


def check_session_table(session_manager: Any) -> str | None:
    try:
        session_rows(session_manager, limit=0)
    except (AttributeError, sqlite3.Error) as error:
        return f"cannot read {type(session_manager).__name__}'s session table: {error}"
    return None


def session_rows(session_manager: Any, limit: int | None = None) -> list[tuple[Any, Any]]:
    """(path, kernel_id) of every session, read synchronously from the session manager's
    sqlite table (its own methods are coroutines). Raises AttributeError or sqlite3.Error."""
    if not usable("session-table"):
        raise AttributeError("the session table is not readable (see the startup warning)")
    session_manager.cursor  # noqa: B018 - creates the session table on first use
    query = SESSION_ROWS if limit is None else f"{SESSION_ROWS} LIMIT {int(limit)}"
    rows: list[tuple[Any, Any]] = session_manager.connection.execute(query).fetchall()
    return rows


# -- jupyter_server: the extension's link step, and the gateway connection's loop --------


def check_extension_link() -> str | None:
    if not callable(getattr(ExtensionApp, "_link_jupyter_server_extension", None)):
        return "jupyter_server's ExtensionApp._link_jupyter_server_extension is missing"
    return None


def check_gateway_read_loop() -> str | None:
    """RelayGatewayWebSocketConnection replaces stock's reading loop (binary frames)."""
    loop = getattr(GatewayWebSocketConnection, "_read_messages", None)
    if not inspect.iscoroutinefunction(loop):
        return "jupyter_server's GatewayWebSocketConnection._read_messages is missing"
    if "_read_messages" not in _names_used(GatewayWebSocketConnection.connect):
        return "GatewayWebSocketConnection.connect no longer reads with _read_messages"
    return None


# -- pyzmq and ipywidgets ------------------------------------------------------------------


def check_zmq_sockets(context: Any) -> str | None:
    if context is not None and not hasattr(getattr(context, "_sockets", None), "__len__"):
        return f"pyzmq's {type(context).__name__}._sockets is missing"
    return None


def zmq_socket_count(context: Any) -> int | None:
    """Sockets the ZMQ context has open (None if unknown)."""
    sockets: Any = getattr(context, "_sockets", None) if usable("zmq-sockets") else None
    return len(sockets) if hasattr(sockets, "__len__") else None


def check_widget_registry() -> str | None:
    if not isinstance(_widget_registry(), dict):
        return "ipywidgets.widgets.widget._registry._registry is missing"
    return None


def _widget_registry() -> Any:
    try:
        from ipywidgets.widgets.widget import _registry
    except ImportError:
        return None
    return getattr(_registry, "_registry", None)


def widget_registry() -> dict[str, Any] | None:
    """ipywidgets' registry of model classes: module -> version -> model -> views.

    Checked on first use, not at load: importing ipywidgets takes the server a noticeable
    time, and only saving notebooks needs it."""
    if "widget-registry" not in _checked:
        _run({"widget-registry": check_widget_registry}, _load_log)
    registry = _widget_registry() if usable("widget-registry") else None
    return registry if isinstance(registry, dict) else None


# -- at load ----------------------------------------------------------------------------------


def check_all(
    serverapp: Any, log: logging.Logger, *, gateway: bool, save_state: bool, zmq_sockets: bool
) -> Report:
    """Run every check that applies to this server, warn about each failure in ``log``,
    and return what failed."""
    checks: dict[str, Callable[[], str | None]] = {"extension-link": check_extension_link}
    if gateway:
        checks["gateway-read-loop"] = check_gateway_read_loop
    else:
        checks.update(
            {
                "connection-hooks": check_connection_hooks,
                "websocket-frames": check_websocket_frames,
                "iopub-rate-limit": check_iopub_rate_limit,
                "iopub-rate-window": check_iopub_rate_window,
                "kernel-buffers": lambda: check_kernel_buffers(serverapp.kernel_manager),
            }
        )
        if zmq_sockets:
            context = getattr(serverapp.kernel_manager, "context", None)
            checks["zmq-sockets"] = lambda: check_zmq_sockets(context)
    if save_state:
        checks.update(
            {
                "contents-saves": check_contents_saves,
                "contents-os-path": lambda: check_contents_os_path(serverapp.contents_manager),
                "session-table": lambda: check_session_table(serverapp.session_manager),
            }
        )
    global _load_log
    _load_log = log
    _unusable.clear()
    _checked.clear()
    return _run(checks, log)


def _run(checks: dict[str, Callable[[], str | None]], log: logging.Logger) -> Report:
    """Run ``checks``; each failure is marked unusable and named in one warning."""
    report = Report()
    for name, check in checks.items():
        _checked.add(name)
        try:
            problem = check()
        except Exception as error:  # a check must not stop the server
            problem = f"the check failed: {error!r}"
        if problem is not None:
            report.problems[name] = problem
            _unusable.add(name)
            log.warning(
                "widget relay: %s; %s. Checked with %s.",
                problem,
                FALLBACKS[name],
                SUPPORTED_VERSIONS,
            )
    return report
