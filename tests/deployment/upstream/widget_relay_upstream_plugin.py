"""A pytest plugin for jupyter_server's own test suite (``-p widget_relay_upstream_plugin``),
used by ``tests/deployment/test_upstream_kernels.py``.

``WIDGET_RELAY_UPSTREAM=on``: every server the upstream tests start loads
jupyter-widget-relay the way an installed package does (the package's own
``jupyter_server_config.d`` file, in the environment's config directory that the tests'
``jp_environ`` sets up) and starts it the way a running server does (the extension's start
hook, which pytest-jupyter never calls). ``off``: the tests run as they are, and the plugin
only watches.

Either way it records, per test, every server that reached ``start_app``: whether the relay
was linked and started, and which kernel websocket connection class the server's web app
uses. A server that does not match the mode fails that test's teardown, and the whole record
goes to ``WIDGET_RELAY_UPSTREAM_REPORT`` (JSON lines) for the calling test to check.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jupyter_server
import pytest
from jupyter_server.serverapp import ServerApp

import jupyter_widget_relay
from jupyter_widget_relay.connection import RelayWebsocketConnection

EXTENSION = "jupyter_widget_relay"
CONFIG_FILE = Path("jupyter_server_config.d") / "jupyter_widget_relay.json"

_mode = os.environ.get("WIDGET_RELAY_UPSTREAM", "")
_report = os.environ.get("WIDGET_RELAY_UPSTREAM_REPORT", "")
_servers: list[ServerApp] = []
_started: set[int] = set()


def _relay_source() -> Path:
    """The checkout whose package is under test: its ``jupyter-config`` file is what a wheel
    installs into ``<prefix>/etc/jupyter``."""
    return Path(jupyter_widget_relay.__file__).resolve().parents[1]


def _write(record: dict[str, Any]) -> None:
    with open(_report, "a", encoding="utf-8") as report:
        report.write(json.dumps(record) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if _mode not in ("on", "off") or not _report:
        raise pytest.UsageError(
            "widget_relay_upstream_plugin needs WIDGET_RELAY_UPSTREAM=on|off and "
            "WIDGET_RELAY_UPSTREAM_REPORT=<file>"
        )
    _write(
        {
            "mode": _mode,
            "relay_module": jupyter_widget_relay.__file__,
            "jupyter_server_module": jupyter_server.__file__,
            "jupyter_server_version": jupyter_server.__version__,
            "rootdir": str(config.rootpath),
        }
    )
    original = ServerApp.start_app

    def start_app(self: ServerApp) -> None:
        original(self)
        _servers.append(self)
        if _mode == "on":
            _start_relay(self)

    ServerApp.start_app = start_app  # type: ignore[method-assign]


def _start_relay(app: ServerApp) -> None:
    """What ``ServerApp._post_start`` does for the relay once the server's loop runs."""
    manager = app.extension_manager
    if not manager.linked_extensions.get(EXTENSION):
        raise RuntimeError(f"{EXTENSION} was not linked into this server")
    extension = manager.extensions[EXTENSION]

    async def start() -> None:
        await extension.start_all_points(app)
        _started.add(id(app))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        app.io_loop.run_sync(start)
    else:  # a test that builds its server inside itself: started once it awaits
        app.io_loop.add_callback(start)


def _describe(app: ServerApp) -> dict[str, Any]:
    settings = app.web_app.settings
    connection_class = settings.get(
        "kernel_websocket_connection_class", app.kernel_websocket_connection_class
    )
    relay_app = next(iter(app.extension_manager.extension_apps.get(EXTENSION, ())), None)
    return {
        "relay_linked": bool(app.extension_manager.linked_extensions.get(EXTENSION)),
        "relay_started": id(app) in _started,
        "relay_manager": settings.get("widget_relay_manager") is not None,
        "relay_off_reason": getattr(relay_app, "off_reason", None),
        "connection_class": f"{connection_class.__module__}.{connection_class.__qualname__}",
        "relay_connection": isinstance(connection_class, type)
        and issubclass(connection_class, RelayWebsocketConnection),
    }


@pytest.fixture(autouse=True)
def _widget_relay_in_every_server(
    request: pytest.FixtureRequest, jp_env_config_path: Path
) -> Iterator[None]:
    if _mode == "on":
        target = Path(jp_env_config_path) / CONFIG_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((_relay_source() / "jupyter-config" / CONFIG_FILE).read_text())
    _servers.clear()
    yield
    servers = [_describe(app) for app in _servers]
    _servers.clear()
    _write({"nodeid": request.node.nodeid, "servers": servers})
    for server in servers:
        relay_on = server["relay_linked"] and server["relay_manager"]
        if _mode == "on" and not (relay_on and server["relay_started"]):
            pytest.fail(f"a server ran without the widget relay started: {server}")
        if _mode == "on" and not server["relay_connection"]:
            pytest.fail(f"a server's kernel websockets bypass the widget relay: {server}")
        if _mode == "off" and (relay_on or server["relay_connection"]):
            pytest.fail(f"the widget relay was loaded although it should be off: {server}")
