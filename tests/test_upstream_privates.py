"""The other packages' private attributes the relay uses (jupyter_widget_relay/upstream.py).

With the installed versions every check passes. For each check, the attribute is taken away
from the real class or object (monkeypatch) and the check names it in one warning, and the
relay uses the fallback written next to the check, or stays off where none is safe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets.widgets.widget as ipywidgets_widget
import pytest
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.gateway.connections import GatewayWebSocketConnection
from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.services.kernels.kernelmanager import MappingKernelManager
from tornado.websocket import WebSocketProtocol13

from jupyter_widget_relay import upstream, widget_defaults
from jupyter_widget_relay.connection import RelayWebsocketConnection
from jupyter_widget_relay.stored_state import StoredState

LOG = logging.getLogger("test_upstream_privates")

LOCAL_CHECKS = {
    "extension-link",
    "connection-hooks",
    "websocket-frames",
    "iopub-rate-limit",
    "iopub-rate-window",
    "kernel-buffers",
    "zmq-sockets",
    "contents-saves",
    "contents-os-path",
    "session-table",
}


@pytest.fixture(autouse=True)
def fresh_checks() -> Iterator[None]:
    """No check result leaks into the next test (a server's load runs them again)."""
    yield
    upstream._unusable.clear()
    upstream._checked.clear()
    widget_defaults._registered.cache_clear()


def check(serverapp: Any, *, gateway: bool = False) -> upstream.Report:
    return upstream.check_all(serverapp, LOG, gateway=gateway, save_state=True, zmq_sockets=True)


def warned(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOG.name
        and r.levelno == logging.WARNING
        and upstream.FALLBACKS[name] in r.getMessage()
        and upstream.SUPPORTED_VERSIONS in r.getMessage()
    ]


def test_every_check_passes_with_the_installed_versions(
    relay_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = relay_app.web_app.settings
    assert settings["kernel_websocket_connection_class"] is RelayWebsocketConnection
    assert settings["widget_state_persistence"] is not None
    report = check(relay_app)
    assert report.problems == {}
    assert upstream._checked == LOCAL_CHECKS
    assert check(relay_app, gateway=True).problems == {}
    assert upstream.check_widget_registry() is None
    assert upstream.widget_registry()
    assert "widget relay: " not in "".join(
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    )


# name -> how to take the attribute away from the real class or object
Breaker = Callable[[pytest.MonkeyPatch, Any], None]
BREAKERS: dict[str, Breaker] = {
    "extension-link": lambda mp, app: mp.delattr(ExtensionApp, "_link_jupyter_server_extension"),
    "websocket-frames": lambda mp, app: mp.delattr(WebSocketProtocol13, "_write_frame"),
    "iopub-rate-limit": lambda mp, app: mp.delattr(ZMQChannelsWebsocketConnection, "_limit_rate"),
    "iopub-rate-window": lambda mp, app: mp.delattr(
        ZMQChannelsWebsocketConnection, "_iopub_window_msg_count"
    ),
    "kernel-buffers": lambda mp, app: mp.delattr(MappingKernelManager, "_kernel_buffers"),
    "zmq-sockets": lambda mp, app: mp.delattr(app.kernel_manager.context, "_sockets"),
    "contents-saves": lambda mp, app: mp.delattr(ContentsHandler, "_upload"),
    "contents-os-path": lambda mp, app: mp.delattr(FileManagerMixin, "_get_os_path"),
    "session-table": lambda mp, app: app.session_manager.connection.execute(
        "ALTER TABLE session RENAME COLUMN path TO location"
    ),
    "connection-hooks": lambda mp, app: mp.setattr(
        ZMQChannelsWebsocketConnection, "connect", lambda self: None
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKERS))
def test_a_missing_attribute_is_named_once(
    name: str, relay_app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    relay_app.session_manager.cursor  # noqa: B018 - the session table exists
    BREAKERS[name](monkeypatch, relay_app)
    report = check(relay_app)
    assert list(report.problems) == [name]
    assert not upstream.usable(name)
    assert len(warned(caplog, name)) == 1, caplog.text
    assert report.refused == ([name] if name in upstream.REFUSING else [])


def test_gateway_read_loop_missing_refuses(
    jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(GatewayWebSocketConnection, "_read_messages")
    report = check(jp_serverapp, gateway=True)
    assert report.refused == ["gateway-read-loop"]
    assert len(warned(caplog, "gateway-read-loop")) == 1


def test_widget_registry_missing_keeps_every_trait(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ipywidgets

    slider = ipywidgets.IntSlider()
    args = (slider._model_module, slider._model_module_version, slider._model_name)
    state = slider.get_state()
    assert "value" in widget_defaults.default_traits(*args, state)
    widget_defaults._registered.cache_clear()
    upstream._checked.clear()
    monkeypatch.setattr(upstream, "_load_log", LOG)
    monkeypatch.delattr(ipywidgets_widget._registry, "_registry")
    assert widget_defaults.default_traits(*args, state) == set()
    assert len(warned(caplog, "widget-registry")) == 1
    slider.close()


# -- fallbacks in use -------------------------------------------------------------------


def test_without_the_rate_limiter_nothing_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = ZMQChannelsWebsocketConnection()
    connection._iopub_msgs_exceeded = True  # stock would drop a stream message now
    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "_limit_rate", None)
    upstream._unusable.add("iopub-rate-limit")
    header = {"msg_type": "stream"}
    assert upstream.rate_limited(connection, {"header": header, "parent_header": {}}, []) is False


def test_without_the_rate_window_an_idle_goes_through_stock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = ZMQChannelsWebsocketConnection()
    connection._iopub_msgs_exceeded = True
    connection._iopub_window_byte_queue = [(1.0, 10)]
    upstream._unusable.add("iopub-rate-window")
    upstream.reset_rate_window(connection)  # stock's _limit_rate resets on the idle
    assert connection._iopub_msgs_exceeded is False
    assert connection._iopub_window_byte_queue == []


def test_without_kernel_buffers_no_session_is_restored(relay_app: Any) -> None:
    km = relay_app.kernel_manager
    km._kernel_buffers["k"]["session_key"] = "k:s"
    assert upstream.buffered_session(km, "k") == "k:s"
    upstream._unusable.add("kernel-buffers")
    assert upstream.buffered_session(km, "k") is None
    km._kernel_buffers.pop("k")


def test_without_the_zmq_socket_list_kernels_are_counted(relay_app: Any) -> None:
    context = relay_app.kernel_manager.context
    assert upstream.zmq_socket_count(context) == len(context._sockets)
    upstream._unusable.add("zmq-sockets")
    assert upstream.zmq_socket_count(context) is None


async def test_without_os_paths_the_contents_manager_reads_the_file(
    relay_app: Any, jp_root_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = {"model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls"}
    model.update(model_module_version="2.0.0", state={"value": 4})
    state = {"version_major": 2, "version_minor": 0, "state": {"m": model}}
    notebook = {
        "cells": [],
        "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": state}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (jp_root_dir / "a.ipynb").write_text(json.dumps(notebook))
    contents_manager = relay_app.contents_manager
    direct = StoredState(contents_manager, LOG)
    assert direct._os_path is not None
    monkeypatch.delattr(FileManagerMixin, "_get_os_path")
    assert "contents-os-path" in check(relay_app).problems
    monkeypatch.undo()  # the manager itself still needs it to read
    through_manager = StoredState(contents_manager, LOG)
    assert through_manager._os_path is None
    await through_manager.before_save("a.ipynb")  # asynchronous managers: read ahead
    assert through_manager.read("a.ipynb") == direct.read("a.ipynb")
    assert direct.read("a.ipynb")[0] is True


def test_without_the_session_table_saves_keep_the_clients_state(relay_app: Any) -> None:
    persistence = relay_app.web_app.settings["widget_state_persistence"]
    relay_app.session_manager.cursor  # noqa: B018 - the session table exists
    assert persistence._session_rows() == []
    upstream._unusable.add("session-table")
    with pytest.raises(AttributeError):
        upstream.session_rows(relay_app.session_manager)
    assert "sessions" not in persistence._warned
    assert persistence._session_rows() == []  # saves go on, without kernels' state
    assert "sessions" in persistence._warned


# -- at load: the server's own startup ----------------------------------------------------


@pytest.fixture
def connect_without_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """An upstream connect() that no longer calls create_stream / nudge."""
    stock = ZMQChannelsWebsocketConnection.connect

    def connect(self: Any) -> Any:
        return stock(self)

    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "connect", connect)


def test_changed_connect_leaves_the_server_stock(
    connect_without_hooks: None, relay_app: Any
) -> None:
    settings = relay_app.web_app.settings
    assert settings["widget_relay_manager"] is None
    assert "no longer calls create_stream" in settings["widget_relay_off_reason"]
    assert settings.get("kernel_websocket_connection_class") is not RelayWebsocketConnection


@pytest.fixture
def saves_without_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(ContentsHandler, "_upload")


def test_changed_contents_handler_writes_no_widget_state(
    saves_without_upload: None, relay_app: Any
) -> None:
    settings = relay_app.web_app.settings
    assert settings["widget_relay_manager"] is not None  # the relay itself is on
    assert settings["widget_state_persistence"] is None
    assert settings["kernel_websocket_connection_class"] is RelayWebsocketConnection


@pytest.fixture
def changed_write_frame(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """tornado's _write_frame with another signature (tornado's own write_message still
    calls it): the relay must write through write_message."""
    stock = WebSocketProtocol13._write_frame
    calls: list[bool] = []

    def write_frame(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(
            "flags" in kwargs
        )  # write_message passes flags; the relay's fast path does not
        return stock(self, *args, **kwargs)

    monkeypatch.setattr(WebSocketProtocol13, "_write_frame", write_frame)
    return calls


async def test_changed_write_frame_clients_get_every_message(
    changed_write_frame: list[bool], start_kernel: Any, connect: Any
) -> None:
    assert not upstream.usable("websocket-frames")
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    b = await connect(kernel_id, "json")
    await a.execute("import ipywidgets as W; s = W.IntSlider(value=3)")
    model_id = await a.evaluate("s.model_id")
    await b.wait_for(lambda m: m["content"].get("comm_id") == model_id)
    assert changed_write_frame and all(changed_write_frame)  # all through write_message
