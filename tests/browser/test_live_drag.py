"""Live drags in real pages: every step of A's slider reaches B (and a late joiner C) while
a cell runs, and A's kernel indicator stays "busy" for the whole cell.

The relay releases each browser update at once (core/throttle.py); without it widget.ts
would send the steps after the first only when the cell ends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .lab import ARTIFACTS_DIR, LabServer, LabUser, current_notebook
from .scenarios import cell, readout, require_relay, save_notebook, start_cell

pytestmark = pytest.mark.browser

CELL_S = 20
STEPS = 10
STEP_INTERVAL_MS = 150  # one step per 150 ms, as a user drags
PEER_STEP_TIMEOUT_MS = 3_000

#: In-page record of the notebook's kernel indicator and of cell 2's prompt, every 20 ms.
STATUS_PROBE = """
(() => {
  const seen = (window.__status = []);
  setInterval(() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    if (!panel) return;
    const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    const cells = panel.querySelectorAll('.jp-Notebook .jp-Cell');
    const prompt = cells[2] && cells[2].querySelector('.jp-InputPrompt');
    const entry = [
      indicator ? indicator.getAttribute('data-status') : null,
      prompt ? prompt.textContent.trim() : null,
    ];
    const last = seen[seen.length - 1];
    if (!last || last[1] !== entry[0] || last[2] !== entry[1]) {
      seen.push([performance.now(), ...entry]);
    }
  }, 20);
})();
"""


def open_notebook_page(user: LabUser, path: str, frontend: str) -> None:
    if frontend == "lab":
        user.open_lab(path)
    else:
        url = f"{user.server.base_url}notebooks/{path}?token={user.server.token}"
        user.page.goto(url, wait_until="domcontentloaded")
        user.page.wait_for_selector(f"{current_notebook(user.page)} .jp-Cell", timeout=60_000)
    indicator = f"{current_notebook(user.page)} .jp-Notebook-ExecutionIndicator"
    user.page.wait_for_selector(f"{indicator}[data-status='idle']", timeout=60_000)


class Drag:
    """A mouse drag of cell 0's slider (``max=STEPS``): ``to(k)`` moves it to value k."""

    def __init__(self, page: Page) -> None:
        self.page = page
        output = cell(page, 0).locator(".jp-OutputArea-output")
        handle = output.locator(".noUi-handle").first.bounding_box()
        track = output.locator(".noUi-base").first.bounding_box()
        assert handle is not None and track is not None
        self.left, self.width = track["x"], track["width"]
        self.y = track["y"] + track["height"] / 2
        page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
        page.mouse.down()

    def to(self, value: int) -> None:
        self.page.mouse.move(self.left + self.width * value / STEPS, self.y, steps=3)

    def end(self) -> None:
        self.page.mouse.up()


#: Console errors from Notebook 7 with jupyter-collaboration, not from this package: the
#: collaboration timeline needs JupyterLab's status bar, and a page error follows it.
NOTEBOOK7_UPSTREAM_ERRORS = [
    re.compile(r"@jupyter/docprovider-extension:statusBarTimeline' failed to activate"),
    re.compile(r"Cannot read properties of undefined \(reading 'schema'\)"),
]


def record(name: str, figures: dict[str, object]) -> None:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS_DIR / "live_drag.jsonl").open("a") as out:
        out.write(json.dumps({"test": name, **figures, "at": time.time()}) + "\n")
    print(f"\n{name}: {figures}")


@pytest.mark.parametrize(
    ("lab", "frontend"),
    [
        ({"collaborative": True}, "lab"),
        ({"collaborative": False}, "lab"),
        ({"collaborative": True}, "notebook"),
        ({"collaborative": False}, "notebook"),
    ],
    ids=["lab-rtc", "lab-no-rtc", "notebook7-rtc", "notebook7-no-rtc"],
    indirect=["lab"],
)
def test_every_step_of_a_drag_reaches_peers_during_a_busy_cell(
    lab: LabServer, users: Callable[..., LabUser], frontend: str, request: pytest.FixtureRequest
) -> None:
    require_relay(lab)
    path = lab.write_notebook(
        "drag.ipynb",
        [
            f"import ipywidgets as W; s = W.IntSlider(value=0, max={STEPS}); s",
            "s",
            f"import time; time.sleep({CELL_S})",
        ],
    )
    a, b = users("A"), users("B")
    a.context.add_init_script(STATUS_PROBE)
    open_notebook_page(a, path, frontend)
    a.run_cell(0)
    a.wait_for_widget(0, ".widget-slider")
    if not lab.collaborative:
        save_notebook(a, path, "application/vnd.jupyter.widget-view+json")
    open_notebook_page(b, path, frontend)
    b_index = 0
    if not lab.collaborative:
        b_index = 1  # outputs are not shared: B displays the same model itself
        b.run_cell(1)
    b.wait_for_widget(b_index, ".widget-slider")
    expect(readout(b.page, b_index)).to_have_text("0", timeout=30_000)

    start_cell(a.page, 2)
    cell_started = a.page.evaluate("performance.now()")
    latencies = []
    c = None
    drag = Drag(a.page)
    for step in range(1, STEPS + 1):
        moved = time.monotonic()
        drag.to(step)
        expect(readout(a.page, 0)).to_have_text(str(step), timeout=PEER_STEP_TIMEOUT_MS)
        expect(readout(b.page, b_index)).to_have_text(str(step), timeout=PEER_STEP_TIMEOUT_MS)
        latencies.append(round(time.monotonic() - moved, 3))
        a.page.wait_for_timeout(STEP_INTERVAL_MS)
        if step == STEPS // 2:
            # a late joiner opens the notebook mid-drag, A still holding the slider
            c = users("C")
            open_notebook_page(c, path, frontend)
            c.wait_for_widget(0, ".widget-slider")
            expect(readout(c.page, 0)).to_have_text(str(step), timeout=5_000)
    drag.end()
    assert c is not None
    expect(readout(c.page, 0)).to_have_text(str(STEPS), timeout=PEER_STEP_TIMEOUT_MS)
    prompt = cell(a.page, 2).locator(".jp-InputPrompt")
    assert (prompt.text_content() or "").strip() == "[*]:", "the cell ended before the drag"
    expect(prompt).not_to_have_text("[*]:", timeout=(CELL_S + 20) * 1000)

    panel = current_notebook(a.page)
    expect(a.page.locator(f"{panel} .jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=10_000
    )
    a.page.wait_for_timeout(200)
    seen = a.page.evaluate("window.__status")
    # from the kernel's busy for the cell (the prompt shows [*] a little earlier) to its end
    began = next(at for at, status, text in seen if status == "busy" and text == "[*]:")
    ended = next(at for at, _status, text in seen if at > cell_started and text != "[*]:")
    during = [status for at, status, _text in seen if began <= at < ended]
    assert during and set(during) == {"busy"}, f"A's kernel indicator during the cell: {during}"
    for user in (a, b, c):
        expect(readout(user.page, b_index if user is b else 0)).to_have_text(str(STEPS))
    record(
        request.node.name,
        {"per_step_peer_s": latencies, "max_s": max(latencies), "steps": STEPS},
    )
    ignore = NOTEBOOK7_UPSTREAM_ERRORS if frontend == "notebook" else []
    for user in (a, b, c):
        user.assert_no_console_errors(ignore)
