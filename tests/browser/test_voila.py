"""Voilà (as a server extension, ``/voila/render/...``) with the relay on: a notebook
renders its widgets, a slider moved in the page reaches a kernel observer and comes back,
the relay's table follows, and the page logs no console error.

Voilà's page loads every installed labextension but shares only some JupyterLab modules
(no ``@jupyterlab/statusbar``): this package must load there without an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from .lab import LabServer, LabUser

pytestmark = pytest.mark.browser

NOTEBOOK = "dashboard.ipynb"
CELLS = [
    "import ipywidgets as w\n"
    "slider = w.IntSlider(value=3, max=10, description='knob')\n"
    "seen = w.Label('kernel saw 3')\n"
    "def on_value(change):\n"
    "    seen.value = f\"kernel saw {change['new']}\"\n"
    "slider.observe(on_value, 'value')\n"
    "w.VBox([slider, seen])",
]


#: Console errors of other packages, seen with or without the relay: Voilà's template
#: loads fonts and MathJax from CDNs (this machine is offline), and Notebook 7's own
#: labextension does not load in Voilà's page.
NOT_OURS = [
    r"ERR_NAME_NOT_RESOLVED|ERR_INTERNET_DISCONNECTED",
    r"@jupyter-notebook/lab-extension",
]


def voila_url(lab: LabServer, path: str) -> str:
    return f"{lab.base_url}voila/render/{path}?token={lab.token}"


def relay_value(lab: LabServer, description: str) -> Any:
    """The relay's value of the slider with this description, in any of its kernels."""
    _, body = lab.request("GET", "api/widget-relay/kernels")
    for kernel in body["kernels"]:
        code, state = lab.request("GET", f"api/widget-relay/kernels/{kernel['kernel_id']}/state")
        assert code == 200, state
        for model in state["state"].values():
            if model["state"].get("description") == description:
                return model["state"]["value"]
    return None


@pytest.fixture
def voila_lab(lab_factory: Callable[..., LabServer]) -> LabServer:
    lab = lab_factory(relay_enabled=True, collaborative=False)
    code, body = lab.relay_status()
    assert code == 200 and body["enabled"], body
    return lab


def test_voila_renders_and_round_trips_a_slider(
    voila_lab: LabServer, users: Callable[..., LabUser]
) -> None:
    voila_lab.write_notebook(NOTEBOOK, CELLS)
    viewer = users("viewer", voila_lab)
    page = viewer.page
    page.goto(voila_url(voila_lab, NOTEBOOK), wait_until="domcontentloaded")
    handle = page.locator(".widget-slider .noUi-handle")
    expect(handle).to_have_count(1, timeout=60_000)
    seen = page.locator(".widget-label", has_text="kernel saw")
    expect(seen).to_have_text("kernel saw 3")

    handle.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator(".widget-readout")).to_have_text("5")
    expect(seen).to_have_text("kernel saw 5", timeout=30_000)

    deadline_ms = 10_000
    waited = 0
    while relay_value(voila_lab, "knob") != 5 and waited < deadline_ms:
        page.wait_for_timeout(100)
        waited += 100
    assert relay_value(voila_lab, "knob") == 5, "the relay's table follows the page"

    # The relay served this page: it counts one client on the kernel.
    _, body = voila_lab.request("GET", "api/widget-relay/kernels")
    assert [len(k["clients"]) for k in body["kernels"]] == [1], json.dumps(body)

    page.wait_for_timeout(500)
    viewer.assert_no_console_errors(ignore=NOT_OURS)
