"""Steps that several browser scenarios share: a relay that must be there, running a cell
without waiting for it, a cell's output widgets, saving from the page, a late joiner's
in-page timings and the measured figures they produce."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from .lab import ARTIFACTS_DIR, LabServer, LabUser, cell_selector, current_notebook, focus_editor


def require_relay(lab: LabServer) -> None:
    code, body = lab.relay_status()
    if code != 200 or not body.get("enabled"):
        pytest.fail("widget relay server extension not available (is it installed and enabled?)")


def start_cell(page: Page, index: int, timeout_ms: int = 15_000) -> None:
    """Run code cell ``index`` (Ctrl-Enter) without waiting for it to end:
    return once its prompt shows ``[*]``."""
    cell = page.locator(cell_selector(page, index))
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        focus_editor(page, index)
        page.keyboard.press("Control+Enter")
        try:
            expect(prompt).to_have_text("[*]:", timeout=5_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def cell(page: Page, index: int) -> Locator:
    return page.locator(cell_selector(page, index))


def readout(page: Page, index: int) -> Locator:
    return cell(page, index).locator(".jp-OutputArea-output .widget-readout").first


def nudge_slider(page: Page, index: int, presses: int = 1) -> None:
    """Move the slider of cell ``index`` with the keyboard (noUiSlider handle)."""
    handle = cell(page, index).locator(".jp-OutputArea-output .noUi-handle").first
    handle.focus()
    for _ in range(presses):
        page.keyboard.press("ArrowRight")


def save_notebook(user: LabUser, path: str, needle: str) -> None:
    """Save the visible notebook (Ctrl-S) and wait until the file on disk
    contains ``needle``."""
    deadline = time.monotonic() + 20
    while True:
        user.page.locator(f"{current_notebook(user.page)} .jp-Notebook").click(
            position={"x": 5, "y": 5}
        )
        user.page.keyboard.press("Escape")
        user.page.keyboard.press("ControlOrMeta+s")
        retry_at = time.monotonic() + 5
        while time.monotonic() < retry_at:
            code, body = user.server.get("api/contents/" + path)
            if code == 200 and needle in json.dumps(body["content"]):
                return
            user.page.wait_for_timeout(200)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not saved with {needle!r}")


def record_figure(name: str, seconds: float | None, note: str = "") -> None:
    """Append a measured figure to tests/artifacts/late_joiner_times.jsonl."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS_DIR / "late_joiner_times.jsonl").open("a") as out:
        out.write(
            json.dumps({"test": name, "seconds": seconds, "note": note, "at": time.time()}) + "\n"
        )
    print(f"\n{name}: {seconds if seconds is None else round(seconds, 2)} s {note}")


def late_join_probe(expected: str) -> str:
    """Init script: in-page timestamps (ms, performance.now()) of when the
    notebook panel first shows cells and when a widget readout inside it
    first shows ``expected``."""
    return (
        f"window.__lateJoinExpected = {json.dumps(expected)};"
        + """
        (() => {
          const times = (window.__lateJoin = {});
          const expected = window.__lateJoinExpected;
          const tick = () => {
            const now = performance.now();
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            if (!panel || panel.offsetParent === null || !panel.querySelector('.jp-Cell')) return;
            if (times.panel === undefined) times.panel = now;
            if (times.readout === undefined) {
              for (const el of panel.querySelectorAll('.widget-readout')) {
                if (el.offsetParent !== null && el.textContent.trim() === expected) {
                  times.readout = now;
                }
              }
            }
          };
          setInterval(tick, 20);
        })();
        """
    )
