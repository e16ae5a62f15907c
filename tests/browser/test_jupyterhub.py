"""A shared single-user server of a real JupyterHub, in Chromium: alice shares her server
with bob (JupyterHub 5+ sharing), both log in through the hub's login form and open the
same notebook with jupyter-collaboration (RTC), everything through the hub's proxy.

- bob sees alice's slider change while a cell runs;
- a second window of bob's, opened while the cell runs, shows the widget at once;
- the relay's status item names both users;
- no page logs a console error.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, expect

from ..deployment.hub import Hub, proxy_cache_dir, proxy_command, running_hub
from .lab import (
    ARTIFACTS_DIR,
    DEFAULT_TIMEOUT_MS,
    ConsoleEntry,
    artifact_name,
    cell_selector,
    current_notebook,
    run_cell,
    wait_for_lab,
    wait_for_notebook,
    wait_for_widget,
)
from .scenarios import late_join_probe, nudge_slider, readout, record_figure, start_cell

pytestmark = pytest.mark.browser

SLEEP_S = 20
PEER_BUDGET_S = 2.0
LATE_JOIN_BUDGET_S = 2.0
NOTEBOOK = "shared.ipynb"
#: The status item's tooltip lists the connected clients, one per line.
BOTH_USERS = re.compile(r"• alice[\s\S]*• bob|• bob[\s\S]*• alice")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Hub]:
    proxy = proxy_command(proxy_cache_dir(request.config, tmp_path_factory.getbasetemp()))
    with running_hub(tmp_path_factory.mktemp("hub"), proxy) as running:
        running.share("alice", "bob")
        yield running
        if request.session.testsfailed:
            ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(
                running.log_path, ARTIFACTS_DIR / f"{artifact_name(request.node.name)}-hub.log"
            )


class HubUser:
    """One browser context, logged in to the hub as ``name``, with its console."""

    def __init__(self, browser: Browser, hub: Hub, name: str, label: str) -> None:
        self.hub = hub
        self.name = name
        self.label = label
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.console: list[ConsoleEntry] = []

        def on_console(message: ConsoleMessage) -> None:
            location = message.location or {}
            self.console.append(ConsoleEntry(message.type, message.text, location.get("url", "")))

        def on_page_error(error: Error) -> None:
            self.console.append(ConsoleEntry("pageerror", f"{error.name}: {error.message}", ""))

        self.page.on("console", on_console)
        self.page.on("pageerror", on_page_error)

    def log_in(self, next_path: str) -> None:
        """The hub's login form, then (for a server shared with this user) the hub's
        authorization page; ends on ``next_path`` of alice's server."""
        page = self.page
        page.goto(self.hub.url("hub/login?next=" + urllib.parse.quote(next_path)))
        page.fill("#username_input", self.name)
        page.fill("#password_input", self.hub.password)
        page.click("#login_submit")
        page.wait_for_url(re.compile(r"/(user/alice/|hub/api/oauth2/authorize)"))
        if "oauth2/authorize" in page.url:
            page.click("form button[type=submit]")
        page.wait_for_url(re.compile(r"/user/alice/"))

    def notebook_url(self) -> str:
        return self.hub.url(f"user/alice/lab/tree/{NOTEBOOK}")

    def errors(self) -> list[ConsoleEntry]:
        return [entry for entry in self.console if entry.type in ("error", "pageerror")]

    def close(self, failed: bool, stem: str) -> None:
        if failed:
            ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS_DIR / f"{stem}-{self.label}.png"))
            (ARTIFACTS_DIR / f"{stem}-{self.label}-console.txt").write_text(
                "\n".join(map(str, self.console))
            )
        self.context.close()


def test_shared_server_peers_late_joiner_and_status_through_the_hub(
    hub: Hub, browser: Browser, request: pytest.FixtureRequest
) -> None:
    hub.start_server("alice")
    hub.write_notebook(
        "alice",
        NOTEBOOK,
        [
            "import ipywidgets as W; s = W.IntSlider(); s",
            f"s.value = 37; import time; time.sleep({SLEEP_S})",
        ],
    )
    users: list[HubUser] = []
    failed = True
    try:
        a = HubUser(browser, hub, "alice", "alice")
        b = HubUser(browser, hub, "bob", "bob")
        late = HubUser(browser, hub, "bob", "bob-late")
        users += [a, b, late]
        a.log_in(f"/user/alice/lab/tree/{NOTEBOOK}")
        wait_for_lab(a.page)
        kernel_id = wait_for_notebook(a.page)
        run_cell(a.page, 0)
        wait_for_widget(a.page, 0, ".widget-slider")

        b.log_in(f"/user/alice/lab/tree/{NOTEBOOK}")
        wait_for_lab(b.page)
        assert wait_for_notebook(b.page) == kernel_id
        wait_for_widget(b.page, 0, ".widget-slider")  # alice's output, shared by RTC

        # The late joiner logs in (and authorizes) now; it opens the notebook later.
        late.log_in("/user/alice/api/status")
        # That JSON page's own request (a 403 without the xsrf cookie) is not the late
        # joiner's: its console starts with the notebook.
        late.console.clear()
        late.context.add_init_script(late_join_probe("38"))

        status = a.page.locator(f"{current_notebook(a.page)} .jp-WidgetRelay-status")
        expect(status).to_have_attribute("title", BOTH_USERS)
        try:
            start_cell(a.page, 1)
            expect(readout(a.page, 0)).to_have_text("37", timeout=10_000)
            expect(readout(b.page, 0)).to_have_text("37", timeout=10_000)
            started = time.monotonic()
            nudge_slider(a.page, 0)
            expect(readout(b.page, 0)).to_have_text("38", timeout=int(PEER_BUDGET_S * 1000))
            record_figure("hub peer update (relay on)", time.monotonic() - started)

            late.page.goto(late.notebook_url(), wait_until="domcontentloaded")
            late.page.wait_for_function(
                "window.__lateJoin && window.__lateJoin.panel !== undefined"
            )
            late.page.wait_for_function("window.__lateJoin.readout !== undefined")
            times = late.page.evaluate("window.__lateJoin")
            seconds = (times["readout"] - times["panel"]) / 1000
            prompt = a.page.locator(cell_selector(a.page, 1)).locator(".jp-InputPrompt")
            busy = (prompt.text_content() or "").strip() == "[*]:"
            record_figure("hub late joiner (relay on)", seconds, f"(cell still running: {busy})")
            assert busy, "the cell ended before the late joiner showed the widget"
            assert seconds < LATE_JOIN_BUDGET_S, seconds
        finally:
            hub.user_api("alice", "POST", f"api/kernels/{kernel_id}/interrupt", as_user="alice")
        expect(
            late.page.locator(f"{current_notebook(late.page)} .jp-WidgetRelay-status")
        ).to_have_attribute("title", BOTH_USERS)
        for user in users:
            assert not user.errors(), f"console errors for {user.label}:\n" + "\n".join(
                map(str, user.errors())
            )
        failed = False
    finally:
        stem = artifact_name(request.node.nodeid)
        for user in users:
            user.close(failed, stem)
        seconds = hub.stop_server("alice")
        print(f"\nalice's server stopped through the hub in {seconds:.2f} s")
