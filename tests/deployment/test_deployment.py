"""Startup checks of the server's setup (deployment.py), in a real jupyter_server."""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from ..server.server_process import server_log_until


class OtherConnection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    """Another extension's kernel websocket connection class."""


def test_replacing_a_chosen_connection_class_is_said_at_startup() -> None:
    log = server_log_until(
        "widget relay: enabled",
        "--ServerApp.kernel_websocket_connection_class=tests.deployment.test_deployment.OtherConnection",
    )
    replaced = [line for line in log.splitlines() if "in place of" in line]
    assert len(replaced) == 1, log[-3000:]
    assert "tests.deployment.test_deployment.OtherConnection" in replaced[0]
    assert "c.WidgetRelay.enabled = False" in replaced[0]


async def test_a_class_installed_after_the_relay_is_said_at_start(
    jp_serverapp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = jp_serverapp.extension_manager.extension_apps["jupyter_widget_relay"]
    relay = next(iter(app))
    relay.log.addHandler(caplog.handler)
    jp_serverapp.web_app.settings["kernel_websocket_connection_class"] = OtherConnection
    await jp_serverapp.extension_manager.start_all_extensions()
    try:
        bypass = [r.getMessage() for r in caplog.records if "bypass the relay" in r.getMessage()]
        assert len(bypass) == 1 and "OtherConnection" in bypass[0]
    finally:
        relay.log.removeHandler(caplog.handler)
        await jp_serverapp.extension_manager.stop_all_extensions()
