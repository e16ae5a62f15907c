"""Fixtures for browser tests: a real ``jupyter lab`` and Chromium users.

- ``lab``: a started server. Options come from ``@pytest.mark.lab(...)`` or
  indirect parametrization (``@pytest.mark.parametrize("lab", [{...}],
  indirect=True)``), keyword arguments of ``lab.start_lab``:
  ``relay_enabled`` (``--WidgetRelay.enabled``; ``None`` = configured
  default), ``collaborative`` (jupyter-collaboration on/off),
  ``extra_args``, ``env``.
- ``lab_factory``: start more servers in one test.
- ``users``: ``users("alice")`` opens a new browser context (a "user");
  ``user`` is one of them. Screenshots of every page and the server log go to
  ``tests/artifacts/`` when the test fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from .lab import (
    ARTIFACTS_DIR,
    LabServer,
    LabUser,
    artifact_name,
    find_chromium,
    launch_chromium,
    new_user,
    start_lab,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a real jupyter lab with headless Chromium (slow)"
    )
    config.addinivalue_line(
        "markers",
        "lab(**options): options of the `lab` fixture (relay_enabled, collaborative, "
        "extra_args, env)",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the item so fixtures can see failures.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(
        getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
    )


# pytest-jupyter (loaded by tests/conftest.py) has two autouse fixtures that
# grab "the" asyncio loop of the thread and close it after each test. With
# Playwright's sync API alive that loop is Playwright's own, so closing it
# breaks the browser. Browser tests run no in-process server: turn them off.
@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None


# Module scope: Playwright's sync API runs its own event loop; it must not
# stay open while the asyncio-based server tests of other modules run.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if find_chromium() is None:
        pytest.fail("Chromium not found (apt-get install chromium, or set $CHROMIUM)")
    instance = launch_chromium(playwright)
    yield instance
    instance.close()


@pytest.fixture
def lab_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., LabServer]]:
    servers: list[LabServer] = []

    def factory(**options: Any) -> LabServer:
        server = start_lab(tmp_path / f"lab{len(servers)}", **options)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
    if _failed(request):
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        stem = artifact_name(request.node.nodeid)
        for index, server in enumerate(servers):
            if server.log_path.exists():
                shutil.copyfile(server.log_path, ARTIFACTS_DIR / f"{stem}-lab{index}.log")


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_factory: Callable[..., LabServer]) -> LabServer:
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker("lab")
    if marker is not None:
        options.update(marker.kwargs)
    param = getattr(request, "param", None)
    if isinstance(param, dict):
        options.update(param)
    return lab_factory(**options)


@pytest.fixture
def users(
    browser: Browser, lab: LabServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., LabUser]]:
    created: list[LabUser] = []

    def factory(name: str | None = None, server: LabServer | None = None) -> LabUser:
        user = new_user(browser, server or lab, name or f"user{len(created)}")
        created.append(user)
        return user

    yield factory
    failed = _failed(request)
    stem = artifact_name(request.node.nodeid)
    for user in created:
        if failed:
            user.screenshot(ARTIFACTS_DIR / f"{stem}-{user.name}.png")
            (ARTIFACTS_DIR / f"{stem}-{user.name}-console.txt").write_text(
                "\n".join(map(str, user.console))
            )
        user.context.close()


@pytest.fixture
def user(users: Callable[..., LabUser]) -> LabUser:
    return users("alice")
