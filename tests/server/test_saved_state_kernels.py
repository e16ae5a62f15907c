"""Saved widget state always comes from the right kernel: the sessions on the exact path.

Real server, real kernels, ``save_widget_state = "all"`` (every model of the kernel goes
into the file, so which kernel a save took its state from is plain to see).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from .helpers import Notebook, add_session, kernel_with_text, log_records


@pytest.fixture
def relay_config() -> dict[str, Any]:
    return {"save_widget_state": "all"}


async def rename(jp_fetch: Any, old: str, new: str) -> None:
    await jp_fetch("api", "contents", old, method="PATCH", body=json.dumps({"path": new}))


def saved_ids(root: Path, path: str) -> set[str]:
    stored = json.loads((root / path).read_text(encoding="utf-8"))
    widgets = stored["metadata"].get("widgets", {})
    return set(widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {}))


async def test_renamed_file_whose_session_stayed_gets_only_its_own_kernel(
    relay_app: Any, start_kernel: Any, connect: Any, jp_fetch: Any, jp_root_dir: Path
) -> None:
    k1, k1_models = await kernel_with_text(start_kernel, connect, "k1")
    k2, k2_models = await kernel_with_text(start_kernel, connect, "k2")
    a = Notebook(jp_root_dir, "a.ipynb", jp_fetch)
    await a.put()
    await add_session(relay_app, "a.ipynb", k1)
    await a.put()
    assert saved_ids(jp_root_dir, "a.ipynb") == k1_models

    await rename(jp_fetch, "a.ipynb", "b.ipynb")  # the session stays on a.ipynb
    await a.put()  # a new a.ipynb ...
    await add_session(relay_app, "a.ipynb", k2)  # ... with a kernel of its own
    b = Notebook(jp_root_dir, "b.ipynb", jp_fetch)
    await b.put()
    await a.put()
    assert saved_ids(jp_root_dir, "b.ipynb") == k1_models, "b has its old kernel's state only"
    assert saved_ids(jp_root_dir, "a.ipynb") == k2_models, "the new a has its own kernel's"

    # b -> c follows the link; then the session is moved along (as JupyterLab does)
    await rename(jp_fetch, "b.ipynb", "c.ipynb")
    c = Notebook(jp_root_dir, "c.ipynb", jp_fetch)
    await c.put()
    assert saved_ids(jp_root_dir, "c.ipynb") == k1_models
    sessions = await relay_app.session_manager.list_sessions()
    [left] = [s for s in sessions if s["kernel"]["id"] == k1]
    await relay_app.session_manager.update_session(left["id"], path="c.ipynb")
    await c.put()
    await a.put()
    assert saved_ids(jp_root_dir, "c.ipynb") == k1_models
    assert saved_ids(jp_root_dir, "a.ipynb") == k2_models


async def test_a_colon_in_a_file_name_is_no_drive_prefix(
    relay_app: Any, start_kernel: Any, connect: Any, jp_fetch: Any, jp_root_dir: Path
) -> None:
    k3, k3_models = await kernel_with_text(start_kernel, connect, "k3")
    (jp_root_dir / "notes").mkdir()
    for path in ("notes:c.ipynb", "c.ipynb", "notes/c.ipynb"):
        await Notebook(jp_root_dir, path, jp_fetch).put()
    await add_session(relay_app, "notes:c.ipynb", k3)
    await add_session(relay_app, "RTC:notes/c.ipynb", k3)  # an old collaboration drive path
    for path in ("notes:c.ipynb", "c.ipynb", "notes/c.ipynb"):
        await Notebook(jp_root_dir, path, jp_fetch).put()
    assert saved_ids(jp_root_dir, "notes:c.ipynb") == k3_models
    assert saved_ids(jp_root_dir, "c.ipynb") == set()
    assert saved_ids(jp_root_dir, "notes/c.ipynb") == k3_models


async def test_two_kernels_on_one_path_write_nothing_from_either(
    relay_app: Any,
    relay_manager: Any,
    start_kernel: Any,
    connect: Any,
    jp_fetch: Any,
    jp_root_dir: Path,
) -> None:
    k1, k1_models = await kernel_with_text(start_kernel, connect, "k1")
    k2, _ = await kernel_with_text(start_kernel, connect, "k2")
    nb = Notebook(jp_root_dir, "both.ipynb", jp_fetch)
    await nb.put()
    await add_session(relay_app, "both.ipynb", k1)
    await nb.put()
    assert saved_ids(jp_root_dir, "both.ipynb") == k1_models
    persistence = relay_manager.parent.settings["widget_state_persistence"]
    records = log_records(persistence)
    await add_session(relay_app, "both.ipynb", k2)
    await nb.put()  # a client that sends no widget state
    assert saved_ids(jp_root_dir, "both.ipynb") == k1_models, "the file's state is kept"
    [warning] = [r for r in records if r.levelno == logging.WARNING]
    assert "both.ipynb" in warning.getMessage()
    assert k1 in warning.getMessage() and k2 in warning.getMessage()


async def test_two_notebooks_sharing_one_kernel_both_get_it(
    relay_app: Any, start_kernel: Any, connect: Any, jp_fetch: Any, jp_root_dir: Path
) -> None:
    kernel_id, models = await kernel_with_text(start_kernel, connect, "shared")
    for path in ("x.ipynb", "y.ipynb"):
        await Notebook(jp_root_dir, path, jp_fetch).put()
        await add_session(relay_app, path, kernel_id)
    for path in ("x.ipynb", "y.ipynb"):
        await Notebook(jp_root_dir, path, jp_fetch).put()
        assert saved_ids(jp_root_dir, path) == models
