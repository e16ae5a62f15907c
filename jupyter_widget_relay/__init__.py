"""jupyter-widget-relay: multi-user Jupyter widgets through one widget table per kernel."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import WidgetRelay

    return [{"module": "jupyter_widget_relay", "app": WidgetRelay}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-widget-relay"}]
