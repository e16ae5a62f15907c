"""Saved widget state is never lost: with contents managers that only ``await`` can read,
and for users who may not take a kernel's state.

Real server and kernels; an asynchronous file manager (jupyter_server's
``AsyncLargeFileManager``) and one that keeps notebooks in memory (tests/server/memory_contents.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_widget_relay.core.saved_state import WIDGET_STATE_MIME

from .helpers import AllowByHeader, add_session, kernel_with_text
from .memory_contents import MemoryContentsManager

MANAGERS = {
    "memory": "tests.server.memory_contents.MemoryContentsManager",
    "async-files": "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager",
}
STORED = {
    "version_major": 2,
    "version_minor": 0,
    "state": {
        "a" * 32: {
            "model_name": "IntSliderModel",
            "model_module": "@jupyter-widgets/controls",
            "model_module_version": "2.0.0",
            "state": {"value": 7},
        }
    },
}


@pytest.fixture(params=list(MANAGERS))
def manager_name(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def jp_server_config(manager_name: str) -> dict[str, Any]:
    MemoryContentsManager.files = {}
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_widget_relay": True},
            "contents_manager_class": MANAGERS[manager_name],
        },
    }


def notebook(widgets: dict[str, Any] | None = None) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    if widgets is not None:
        nb.metadata["widgets"] = {WIDGET_STATE_MIME: widgets}
    return json.loads(json.dumps(nb))  # type: ignore[no-any-return]


def store_earlier(manager_name: str, root: Path, path: str) -> None:
    """A notebook saved with widget state before this server started."""
    if manager_name == "memory":
        MemoryContentsManager.files[path] = notebook(STORED)
    else:
        (root / path).write_text(json.dumps(notebook(STORED)), encoding="utf-8")


def stored_state(manager_name: str, root: Path, path: str) -> Any:
    if manager_name == "memory":
        content = MemoryContentsManager.files[path]
    else:
        content = json.loads((root / path).read_text(encoding="utf-8"))
    return content["metadata"].get("widgets", {}).get(WIDGET_STATE_MIME)


async def put(jp_fetch: Any, path: str, content: dict[str, Any]) -> None:
    body = {"type": "notebook", "format": "json", "content": content}
    await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(body))


async def test_no_kernel_saves_keep_the_stored_state(
    relay_app: Any, manager_name: str, jp_fetch: Any, jp_root_dir: Path
) -> None:
    """No kernel runs: saves whose content has no widget state (a collaboration room's,
    a client that does not save widget state) keep what the file holds."""
    for path in ("opened.ipynb", "unopened.ipynb", "room.ipynb"):
        store_earlier(manager_name, jp_root_dir, path)

    await jp_fetch("api", "contents", "opened.ipynb")  # JupyterLab opens it, then saves
    await put(jp_fetch, "opened.ipynb", notebook())
    await put(jp_fetch, "unopened.ipynb", notebook())  # saved without being read first

    cm = relay_app.contents_manager  # a room loads the file, then saves its document
    await cm.get("room.ipynb", content=True, type="notebook")
    await asyncio.sleep(0.2)  # the contents service's event reaches listeners as a task
    await cm.save({"type": "notebook", "format": "json", "content": notebook()}, "room.ipynb")

    for path in ("opened.ipynb", "unopened.ipynb", "room.ipynb"):
        assert stored_state(manager_name, jp_root_dir, path) == STORED, path

    # a client's own state is still what gets saved when it sends one
    newer = json.loads(json.dumps(STORED).replace('"value": 7', '"value": 8'))
    await put(jp_fetch, "opened.ipynb", notebook(newer))
    assert stored_state(manager_name, jp_root_dir, "opened.ipynb") == newer


class TestPermission:
    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_widget_relay": True},
                "authorizer_class": AllowByHeader,
            },
            "WidgetRelay": {"save_widget_state": "all"},
        }

    async def test_a_user_who_may_not_execute_saves_no_kernel_state(
        self,
        relay_app: Any,
        start_kernel: Any,
        connect: Any,
        jp_fetch: Any,
        jp_root_dir: Path,
    ) -> None:
        kernel_id, models = await kernel_with_text(start_kernel, connect, "secret")
        (jp_root_dir / "nb.ipynb").write_text(json.dumps(notebook(STORED)), encoding="utf-8")
        await add_session(relay_app, "nb.ipynb", kernel_id)

        def saved() -> Any:
            stored = json.loads((jp_root_dir / "nb.ipynb").read_text(encoding="utf-8"))
            return stored["metadata"].get("widgets", {}).get(WIDGET_STATE_MIME)

        body = {"type": "notebook", "format": "json", "content": notebook()}
        writer = {"X-Allow": "read,write"}  # may write files, may not execute on kernels
        await jp_fetch(
            "api", "contents", "nb.ipynb", method="PUT", body=json.dumps(body), headers=writer
        )
        assert saved() == STORED, "the file's state is kept; no kernel state leaks in"
        executor = {"X-Allow": "read,write,execute"}
        await jp_fetch(
            "api", "contents", "nb.ipynb", method="PUT", body=json.dumps(body), headers=executor
        )
        assert set(saved()["state"]) == models
