"""The extension app's lifecycle outside the happy path."""

from __future__ import annotations

from jupyter_widget_relay.app import WidgetRelay


async def test_stop_extension_after_a_failed_start() -> None:
    """jupyter_server stops every loaded extension, also when the server failed to start
    before initialize_settings ran."""
    app = WidgetRelay()
    await app.stop_extension()
    assert app.relay_manager is None
