"""Sphinx configuration for the jupyter-widget-relay documentation.

Build (warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

from jupyter_widget_relay import __version__  # noqa: E402

project = "jupyter-widget-relay"
author = "jupyter-widget-relay contributors"
copyright = "jupyter-widget-relay contributors"
version = release = __version__

extensions = [
    "myst_parser",
    "widget_relay_config",  # writes reference/config.md from the WidgetRelay traitlets
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["deflist"]

html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["relay.css"]
html_title = f"jupyter-widget-relay {release}"
html_theme_options = {
    "description": "Multi-user Jupyter widgets: one widget table per kernel.",
    "fixed_sidebar": True,
}
