"""Helpers for browser tests: a real ``jupyter lab`` subprocess and page helpers.

Nothing here is a pytest fixture (see ``conftest.py``); everything can also be
used from a plain script to poke at a running lab by hand::

    with start_lab(tmp_path, relay_enabled=False) as lab:
        print(lab.lab_url())
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    Playwright,
    expect,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "tests" / "artifacts"
#: The labextension build of this checkout (``jlpm build`` / ``pip install -e .``).
LOCAL_LABEXTENSION = REPO_ROOT / "jupyter_widget_relay" / "labextension"
LABEXTENSION_NAME = "jupyter-widget-relay"

#: Server extensions of jupyter-collaboration (v3+: ``jupyter_server_ydoc``;
#: older releases: ``jupyter_collaboration``).
COLLABORATION_SERVER_EXTENSIONS = ("jupyter_server_ydoc", "jupyter_collaboration")
#: Its frontend extensions. Disabling them also drops their own
#: ``disabledExtensions`` (the collaborative file browser and cell executor
#: replace the default ones), so the stock plugins come back.
COLLABORATION_LAB_EXTENSIONS = (
    "@jupyter/collaboration-extension",
    "@jupyter/docprovider-extension",
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

DEFAULT_TIMEOUT_MS = 60_000


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM`` or the Debian package."""
    candidates = [os.environ.get("CHROMIUM", ""), "/usr/bin/chromium"]
    candidates += [shutil.which(name) or "" for name in ("chromium", "chromium-browser")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch the system Chromium (never a Playwright-downloaded one)."""
    executable = find_chromium()
    if executable is None:
        raise RuntimeError("Chromium not found: apt-get install chromium, or set $CHROMIUM")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notebook_json(sources: Sequence[str]) -> dict[str, Any]:
    """An nbformat 4 notebook for the python3 kernel, one code cell per source."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        },
        "cells": [
            {
                "cell_type": "code",
                "id": uuid.uuid4().hex[:8],
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
            for source in sources
        ],
    }


@dataclass
class LabServer:
    """A running ``jupyter lab`` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    root_dir: Path
    home_dir: Path
    log_path: Path
    relay_enabled: bool | None
    collaborative: bool

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def lab_url(self, path: str = "") -> str:
        """URL of the lab page (optionally a document), token included."""
        tail = "lab" if not path else "lab/tree/" + urllib.parse.quote(path)
        return f"{self.base_url}{tail}?token={self.token}"

    def request(
        self, method: str, path: str, body: Any | None = None, timeout: float = 10.0
    ) -> tuple[int, Any]:
        """REST call with the token; returns ``(status, parsed JSON or None)``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path.lstrip("/"),
            data=data,
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw = err.read()
            status = err.code
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, parsed

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def relay_status(self) -> tuple[int, Any]:
        """``GET /api/widget-relay/status`` (404 when the server side is not loaded)."""
        return self.get("api/widget-relay/status")

    def write_notebook(self, path: str, sources: Sequence[str] = ()) -> str:
        """Create a notebook with one code cell per source via the contents API."""
        notebook = notebook_json(sources or [""])
        status, _ = self.request(
            "PUT",
            "api/contents/" + urllib.parse.quote(path),
            {"type": "notebook", "format": "json", "content": notebook},
        )
        if status not in (200, 201):
            raise RuntimeError(f"could not create {path}: HTTP {status}")
        return path

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (graceful: kernels are shut down; SIGINT
        would ask for a confirmation on stdin), then SIGKILL for the whole
        process group (kernels included) if it is still there."""
        proc = self.process
        if proc.poll() is not None:
            return
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
            how = "exited"
        except subprocess.TimeoutExpired:
            how = "killed"
        # The server runs in its own session: take its kernels down with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        with contextlib.suppress(OSError), self.log_path.open("a") as log:
            log.write(f"\n# test harness: server {how} after {time.monotonic() - started:.1f} s\n")


def _user_settings(settings_dir: Path) -> None:
    """Quiet user settings: no news / update toasts over the page."""
    notification = settings_dir / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def _labconfig(config_dir: Path, collaborative: bool) -> None:
    """Write the page config of this server's private JUPYTER_CONFIG_DIR."""
    disabled: dict[str, bool] = {}
    if not collaborative:
        disabled.update(dict.fromkeys(COLLABORATION_LAB_EXTENSIONS, True))
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))


def lab_command(
    *,
    port: int,
    token: str,
    root_dir: Path,
    home_dir: Path,
    relay_enabled: bool | None = True,
    collaborative: bool = True,
    extra_labextensions_path: Path | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The ``jupyter lab`` command line (see ``start_lab``)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.open_browser=False",
        # CI and the dev machines run as root.
        "--ServerApp.allow_root=True",
        # Nothing leaves the machine: no update checks, no news feed.
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        f"--LabApp.user_settings_dir={home_dir / 'lab-settings'}",
        f"--LabApp.workspaces_dir={home_dir / 'lab-workspaces'}",
        # Kernels of a test server die with it.
        "--MappingKernelManager.cull_idle_timeout=0",
    ]
    if relay_enabled is not None:
        cmd.append(f"--WidgetRelay.enabled={relay_enabled}")
    if not collaborative:
        for name in COLLABORATION_SERVER_EXTENSIONS:
            cmd.append(f"--ServerApp.jpserver_extensions={name}=False")
    if extra_labextensions_path is not None:
        cmd.append(f"--LabApp.extra_labextensions_path={extra_labextensions_path}")
    cmd.extend(extra_args)
    return cmd


def start_lab(
    base_dir: Path,
    *,
    relay_enabled: bool | None = True,
    collaborative: bool = True,
    use_local_build: bool = True,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
) -> LabServer:
    """Start ``jupyter lab`` on 127.0.0.1 with a random token and wait until ready.

    - ``base_dir`` gets ``root/`` (the server root), ``home/`` (private
      JUPYTER_CONFIG_DIR, runtime dir, settings, workspaces) and ``lab.log``.
    - ``relay_enabled``: passed as ``--WidgetRelay.enabled=...``; ``None``
      leaves the configured default.
    - ``collaborative=False`` disables jupyter-collaboration on both sides
      (server extensions ``jupyter_server_ydoc``/``jupyter_collaboration`` and
      the ``@jupyter/collaboration-extension``/``@jupyter/docprovider-extension``
      labextensions). With ``True`` it is on whenever it is installed.
    - ``use_local_build``: serve this checkout's
      ``jupyter_widget_relay/labextension`` build ahead of any installed copy
      (an editable install copies the build once; this keeps tests on the
      current build).
    """
    root_dir = base_dir / "root"
    home_dir = base_dir / "home"
    for directory in (root_dir, home_dir):
        directory.mkdir(parents=True, exist_ok=True)
    config_dir = home_dir / "config"
    _labconfig(config_dir, collaborative)
    _user_settings(home_dir / "lab-settings")

    extra_path: Path | None = None
    if use_local_build and (LOCAL_LABEXTENSION / "package.json").exists():
        extra_path = home_dir / "labextensions"
        extra_path.mkdir(exist_ok=True)
        # A copy, not a symlink: Voilà's static handler refuses files outside its root.
        copy = extra_path / LABEXTENSION_NAME
        if not copy.exists():
            shutil.copytree(LOCAL_LABEXTENSION, copy)

    port = free_port()
    token = uuid.uuid4().hex
    cmd = lab_command(
        port=port,
        token=token,
        root_dir=root_dir,
        home_dir=home_dir,
        relay_enabled=relay_enabled,
        collaborative=collaborative,
        extra_labextensions_path=extra_path,
        extra_args=extra_args,
    )
    proc_env = dict(os.environ)
    proc_env.update(
        {
            "JUPYTER_CONFIG_DIR": str(config_dir),
            # user-level data (file id database, ...) private to this server
            "JUPYTER_DATA_DIR": str(home_dir / "data"),
            "JUPYTER_RUNTIME_DIR": str(home_dir / "runtime"),
            "IPYTHONDIR": str(home_dir / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    proc_env.pop("JUPYTER_TOKEN", None)
    if extra_path is not None:
        # Voilà reads labextensions only from the Jupyter data path: put the build first
        # there too.
        proc_env["JUPYTER_PATH"] = os.pathsep.join(
            [str(home_dir), *filter(None, [os.environ.get("JUPYTER_PATH")])]
        )
    if env:
        proc_env.update(env)
    log_path = base_dir / "lab.log"
    with log_path.open("wb") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        process = subprocess.Popen(
            cmd,
            cwd=root_dir,
            env=proc_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(
        process=process,
        port=port,
        token=token,
        root_dir=root_dir,
        home_dir=home_dir,
        log_path=log_path,
        relay_enabled=relay_enabled,
        collaborative=collaborative,
    )
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"jupyter lab exited with {server.process.returncode}:\n{server.log_text()[-4000:]}"
            )
        try:
            status, _ = server.request("GET", "api/status", timeout=2)
            if status == 200:
                status, _ = server.request("GET", "lab/api/settings", timeout=10)
                if status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"jupyter lab not ready after {timeout} s:\n{server.log_text()[-4000:]}")


@contextlib.contextmanager
def running_lab(base_dir: Path, **kwargs: Any) -> Iterator[LabServer]:
    """``start_lab`` as a context manager that always stops the server."""
    server = start_lab(base_dir, **kwargs)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------
# Browser side


@dataclass
class ConsoleEntry:
    type: str
    text: str
    url: str

    def __str__(self) -> str:
        return f"[{self.type}] {self.text}" + (f" ({self.url})" if self.url else "")


@dataclass
class LabUser:
    """One browser context (one "user") with its console log."""

    name: str
    context: BrowserContext
    page: Page
    server: LabServer
    console: list[ConsoleEntry] = field(default_factory=list)

    def errors(self, ignore: Sequence[str | re.Pattern[str]] = ()) -> list[ConsoleEntry]:
        """Console errors and uncaught page errors, minus ``ignore`` patterns
        (matched against text and URL)."""
        patterns = [re.compile(p) if isinstance(p, str) else p for p in ignore]
        return [
            entry
            for entry in self.console
            if entry.type in ("error", "pageerror")
            and not any(p.search(entry.text) or p.search(entry.url) for p in patterns)
        ]

    def assert_no_console_errors(self, ignore: Sequence[str | re.Pattern[str]] = ()) -> None:
        errors = self.errors(ignore)
        assert not errors, f"console errors for {self.name}:\n" + "\n".join(map(str, errors))

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Error):
            self.page.screenshot(path=str(path), full_page=True)

    # ---- navigation

    def open_lab(self, path: str = "") -> None:
        """Load JupyterLab (optionally with a document) and wait for the shell."""
        self.page.goto(self.server.lab_url(path), wait_until="domcontentloaded")
        wait_for_lab(self.page)

    def open_notebook(self, path: str) -> str:
        """Open a notebook, wait until its kernel is idle; return the kernel id."""
        self.open_lab(path)
        return wait_for_notebook(self.page)

    # ---- cells

    def run_cell(self, index: int, source: str | None = None, timeout_ms: int = 60_000) -> None:
        run_cell(self.page, index, source, timeout_ms=timeout_ms)

    def wait_for_widget(
        self, index: int, selector: str = ".jupyter-widgets", timeout_ms: int = 30_000
    ) -> None:
        wait_for_widget(self.page, index, selector, timeout_ms=timeout_ms)


def new_user(browser: Browser, server: LabServer, name: str) -> LabUser:
    """A fresh browser context (own cookies / storage) with console capture."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    user = LabUser(name=name, context=context, page=page, server=server)

    def on_console(message: ConsoleMessage) -> None:
        location = message.location or {}
        user.console.append(ConsoleEntry(message.type, message.text, location.get("url", "")))

    def on_page_error(error: Error) -> None:
        user.console.append(ConsoleEntry("pageerror", f"{error.name}: {error.message}", ""))

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return user


def wait_for_lab(page: Page, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
    """Wait for the JupyterLab shell and for the splash screen to go."""
    page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=timeout_ms)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=timeout_ms)


def current_notebook(page: Page) -> str:
    """Selector of the visible notebook panel."""
    return ".jp-NotebookPanel:not(.lm-mod-hidden)"


def wait_for_notebook(page: Page, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> str:
    """Wait for a visible notebook whose kernel is connected and idle; return
    the kernel id.

    The execution indicator alone is not enough: it says "idle" before the
    session has a kernel, and running a cell then opens a "Select Kernel"
    dialog. The relay's status item carries the session's kernel id in
    ``data-kernel-id`` whatever the relay state.
    """
    panel = current_notebook(page)
    page.wait_for_selector(f"{panel} .jp-Notebook .jp-Cell", timeout=timeout_ms)
    status = page.locator(f"{panel} .jp-WidgetRelay-status")
    expect(status).to_have_attribute("data-kernel-id", re.compile(".+"), timeout=timeout_ms)
    page.wait_for_selector(
        f"{panel} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms
    )
    return status.get_attribute("data-kernel-id") or ""


def cell_selector(page: Page, index: int) -> str:
    return f"{current_notebook(page)} .jp-Notebook .jp-Cell >> nth={index}"


def _prompt(cell: Locator) -> str:
    return (cell.locator(".jp-InputPrompt").text_content() or "").strip()


def focus_editor(page: Page, index: int, timeout_ms: int = 10_000) -> Locator:
    """Put cell ``index`` in edit mode (the page may still move focus right
    after loading, so retry until the notebook reports edit mode)."""
    cell = page.locator(cell_selector(page, index))
    notebook = page.locator(f"{current_notebook(page)} .jp-Notebook")
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        cell.locator(".jp-InputArea-editor .cm-content").click()
        try:
            expect(notebook).to_have_class(re.compile(r"\bjp-mod-editMode\b"), timeout=1_000)
            expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"), timeout=1_000)
            return cell
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def run_cell(page: Page, index: int, source: str | None = None, timeout_ms: int = 60_000) -> None:
    """Optionally replace the source of code cell ``index``, run it (Ctrl-Enter)
    and wait until it has finished (prompt shows a number)."""
    cell = focus_editor(page, index)
    if source is not None:
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(source)
    before = _prompt(cell)
    page.keyboard.press("Control+Enter")
    deadline = time.monotonic() + timeout_ms / 1000
    started = False
    retry_at = time.monotonic() + 5
    text = before
    while time.monotonic() < deadline:
        text = _prompt(cell)
        if text == "[*]:" or text != before:
            started = True
        if started and re.fullmatch(r"\[\d+\]:", text):
            return
        if not started and time.monotonic() > retry_at:
            # The key press was lost (focus moved): press again.
            focus_editor(page, index)
            page.keyboard.press("Control+Enter")
            retry_at = time.monotonic() + 5
        page.wait_for_timeout(100)
    dialogs = page.locator(".jp-Dialog").all_inner_texts()
    detail = f"; dialog open: {' | '.join(dialogs)!r}" if dialogs else ""
    raise TimeoutError(f"cell {index} did not finish in {timeout_ms} ms (prompt {text!r}){detail}")


def wait_for_widget(
    page: Page, index: int, selector: str = ".jupyter-widgets", timeout_ms: int = 30_000
) -> None:
    """Wait until cell ``index`` shows a rendered widget view matching ``selector``."""
    cell = page.locator(cell_selector(page, index))
    cell.locator(f".jp-OutputArea-output {selector}").first.wait_for(
        state="visible", timeout=timeout_ms
    )


def artifact_name(nodeid: str) -> str:
    """A file-name-safe version of a pytest node id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[-150:]
