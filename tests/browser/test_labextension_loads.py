"""The labextension loads in a real JupyterLab, shows its status item on a
notebook and the inspector, without console errors."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .lab import LabServer, LabUser, current_notebook

pytestmark = pytest.mark.browser

UI_TIMEOUT_MS = 30_000


def allowed_errors(lab: LabServer) -> list[str]:
    """Console errors that are expected for this server.

    Without the server extension ``/api/widget-relay/status`` answers 404,
    which Chromium logs as a failed resource load. The UI then says so.
    """
    status, _ = lab.relay_status()
    return [r"/api/widget-relay/status"] if status == 404 else []


@pytest.mark.parametrize(
    "lab",
    [
        {"relay_enabled": True, "collaborative": True},
        {"relay_enabled": False, "collaborative": False},
    ],
    ids=["relay-on-collab", "relay-off-nocollab"],
    indirect=True,
)
def test_status_item_on_notebook(lab: LabServer, user: LabUser) -> None:
    lab.write_notebook("loads.ipynb", ["1 + 1"])
    user.open_notebook("loads.ipynb")

    status = user.page.locator(f"{current_notebook(user.page)} .jp-WidgetRelay-status")
    expect(status).to_have_count(1)
    # The status bar item (its module is loaded on demand) follows the notebook too.
    expect(user.page.locator("#jp-main-statusbar .jp-WidgetRelay-statusbar")).to_have_count(1)

    code, body = lab.relay_status()
    if lab.relay_enabled:
        assert (code, body["enabled"]) == (200, True), "the server extension is loaded"
        expect(status).to_have_attribute("data-state", "connected", timeout=UI_TIMEOUT_MS)
        expect(status.locator(".jp-WidgetRelay-clients")).to_have_text("1")
        expect(status.locator(".jp-WidgetRelay-models")).to_have_text("0")
    else:
        expect(status).to_have_attribute(
            "data-state", re.compile("^(missing|disabled)$"), timeout=UI_TIMEOUT_MS
        )
        expect(status).to_contain_text("Widget relay: not enabled on server")
        if lab.relay_enabled is False:
            assert (code, body["enabled"]) == (200, False)

    # Run a cell so kernel traffic happens while the console is watched.
    user.run_cell(0)
    user.page.wait_for_timeout(500)
    user.assert_no_console_errors(ignore=allowed_errors(lab))


@pytest.mark.lab(relay_enabled=True)
def test_inspector_lists_models(lab: LabServer, user: LabUser) -> None:
    code, body = lab.relay_status()
    if code != 200 or not body["enabled"]:
        pytest.fail("widget relay server extension not available (is it installed and enabled?)")
    lab.write_notebook(
        "inspect.ipynb",
        [
            "import ipywidgets as w\nslider = w.IntSlider(value=7, description='seven')\nslider",
            "slider.value = 42",
        ],
    )
    user.open_notebook("inspect.ipynb")
    user.run_cell(0)
    user.wait_for_widget(0, ".widget-slider")

    status = user.page.locator(f"{current_notebook(user.page)} .jp-WidgetRelay-status")
    # IntSlider + its Layout + SliderStyle models.
    expect(status.locator(".jp-WidgetRelay-models")).to_have_text("3", timeout=UI_TIMEOUT_MS)

    # The palette command / the status item open the inspector.
    status.click()
    inspector = user.page.locator("#jp-widget-relay-inspector")
    expect(inspector).to_be_visible()
    rows = inspector.locator(".jp-WidgetRelay-modelRow")
    expect(rows).to_have_count(3, timeout=UI_TIMEOUT_MS)
    slider_row = rows.filter(has_text="IntSliderModel")
    model_id = slider_row.get_attribute("data-model-id")
    assert model_id
    slider_row.click()
    state_view = inspector.locator(".jp-WidgetRelay-stateView")
    expect(state_view).to_have_attribute("data-model-id", model_id)
    expect(state_view).to_contain_text('"seven"', timeout=UI_TIMEOUT_MS)
    expect(state_view).to_contain_text("value: 7")

    # Live update: a change made by the kernel reaches the open state view.
    user.run_cell(1)
    expect(state_view).to_contain_text("value: 42", timeout=UI_TIMEOUT_MS)

    user.assert_no_console_errors()
