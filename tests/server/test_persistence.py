"""Widget state written into notebooks on save: real server, real kernels.

The pure functions of ``core.saved_state`` are tested in tests/core/test_saved_state.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Decoder, Encoder, Provider
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from jupyter_widget_relay.core.saved_state import (
    WIDGET_STATE_MIME,
    encoded_size,
    new_document,
)

from ..client import KernelClient
from .helpers import Notebook, eventually, log_records


def entry(state: dict[str, Any], pad: int = 0) -> dict[str, Any]:
    return {
        "model_name": "M",
        "model_module": "m",
        "model_module_version": "1",
        "state": {**state, "pad": "x" * pad},
    }


# -- server fixtures -----------------------------------------------------------------------


@pytest.fixture
def rtc_enabled() -> bool:
    """Parametrize to True to load jupyter-collaboration's server extension."""
    return False


@pytest.fixture
def extra_config() -> dict[str, Any]:
    return {}


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any],
    rtc_enabled: bool,
    extra_config: dict[str, Any],
    jp_root_dir: Path,
) -> dict[str, Any]:
    config = copy.deepcopy(jp_server_config)
    if rtc_enabled:
        config["ServerApp"]["jpserver_extensions"].update(
            {"jupyter_server_ydoc": True, "jupyter_server_fileid": True}
        )
        config["ServerApp"].update(token="", password="", disable_check_xsrf=True)
        config["BaseFileIdManager"] = {
            "root_dir": str(jp_root_dir),
            "db_path": str(jp_root_dir / ".fid_test.db"),
            "db_journal_mode": "OFF",
        }
        config["SQLiteYStore"] = {"db_path": str(jp_root_dir / ".rtc_test.db")}
        config["YDocExtension"] = {"document_save_delay": 0.2, "document_cleanup_delay": 60}
    for section, values in extra_config.items():
        config.setdefault(section, {}).update(values)
    return config


def user_pre_save_hook(model: dict[str, Any], **kwargs: Any) -> None:
    """A user's own c.ContentsManager.pre_save_hook (must keep running)."""
    if model.get("type") == "notebook":
        model["content"]["metadata"]["user_hook"] = True


PNG = """
import struct, zlib
def png(w, h):
    rows = b''.join(b'\\x00' + bytes(v for x in range(w) for v in (x * 255 // w, y * 255 // h, 90))
                    for y in range(h))
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    head = struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)
    body = chunk(b'IHDR', head) + chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b'')
    return b'\\x89PNG\\r\\n\\x1a\\n' + body
"""

SAMPLE = [
    "import ipywidgets as W\nfrom ipywidgets import interact\n"
    "@interact(x=(0, 20))\ndef square(x=4):\n    print(x * x)",
    "import ipywidgets as W\n"
    "sliders = [W.IntSlider(value=i, description=f's{i}') for i in range(3)]\n"
    "link = W.jslink((sliders[0], 'value'), (sliders[1], 'value'))\n"
    "display(W.VBox(sliders))",
    "import ipywidgets as W\n"
    + PNG
    + "img = W.Image(value=png(96, 96), format='png', width=96)\ndisplay(img)",
    "import ipywidgets as W\nhidden = W.FloatSlider(value=0.5)",
]

ROOTS = "[w for w in W.widgets.widget._instances.values() if w.model_id in ROOT_IDS]"


#: What reading a file the server is writing right now raises (bad JSON).
PARTIAL_FILE = (ValueError,)


@pytest.fixture
def notebook(relay_app: Any, jp_root_dir: Path, jp_fetch: Any) -> Callable[[str], Notebook]:
    return lambda path: Notebook(jp_root_dir, path, jp_fetch)


def canonical(entry: dict[str, Any]) -> dict[str, Any]:
    result = dict(entry)
    if "buffers" in result:
        result["buffers"] = sorted(result["buffers"], key=lambda b: json.dumps(b["path"]))
    return result


async def kernel_expectation(client: KernelClient, roots: list[str]) -> tuple[set[str], Any]:
    """What ipywidgets itself would embed for these views: dependency_state's ids, and
    get_manager_state(drop_defaults=True) of every model (the kernel's own serialization,
    class defaults left out, as JupyterLab's saveState and ipywidgets' embedding do)."""
    await client.execute(f"ROOT_IDS = {roots!r}\nfrom ipywidgets.embed import dependency_state")
    ids = await client.evaluate(f"sorted(dependency_state({ROOTS}, drop_defaults=False))")
    manager = await client.evaluate("W.Widget.get_manager_state(drop_defaults=True)")
    return set(ids), manager["state"]


# -- saving through the REST API -----------------------------------------------------------


async def test_rest_save_writes_referenced_state_matching_kernel(
    start_kernel: Any, connect: Any, notebook: Any, relay_manager: Any, jp_root_dir: Path
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("sample.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE)

    saved = nb.state()
    roots = nb.view_ids()
    assert len(roots) == 3
    expected_ids, kernel_states = await kernel_expectation(a, roots)
    assert set(saved) == expected_ids, "saved set = ipywidgets' dependency_state of the views"
    assert await a.evaluate("link.model_id") in saved
    assert await a.evaluate("hidden.model_id") not in saved
    for model_id, saved_entry in saved.items():
        assert canonical(saved_entry) == canonical(kernel_states[model_id]), model_id
    image = saved[await a.evaluate("img.model_id")]
    assert image["buffers"][0]["path"] == ["value"] and image["buffers"][0]["encoding"] == "base64"

    # A change made in the kernel is in the next save.
    await a.execute("sliders[2].value = 77")
    await nb.put()
    assert nb.state()[await a.evaluate("sliders[2].model_id")]["state"]["value"] == 77

    # nbconvert renders every view from the saved state (no kernel involved).
    jupyter = shutil.which("jupyter")
    command = [jupyter] if jupyter else [sys.executable, "-m", "jupyter"]
    process = await asyncio.create_subprocess_exec(
        *command,
        "nbconvert",
        "--to",
        "html",
        "--stdout",
        str(jp_root_dir / "sample.ipynb"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    html = out.decode()
    assert f'<script type="{WIDGET_STATE_MIME}">' in html
    # nbconvert shows a widget view only when the saved state has its model (else text/plain)
    assert html.count('<script type="application/vnd.jupyter.widget-view+json">') == len(roots)
    for model_id in roots:
        assert f'"model_id": "{model_id}"' in html


async def test_saving_without_kernel_keeps_stored_state(
    start_kernel: Any, connect: Any, notebook: Any, relay_manager: Any, jp_fetch: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("keep.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE[1:2])
    first = nb.stored()["metadata"]["widgets"][WIDGET_STATE_MIME]
    await a.execute("sliders[2].value = 9")
    await nb.put()
    newest = nb.state()
    assert newest != first["state"]

    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    await eventually(
        lambda: relay_manager.link_for(kernel_id) is None, timeout=10, retry_on=PARTIAL_FILE
    )
    await nb.put()  # a client without widget state (JupyterLab's default)
    assert nb.state() == newest
    await nb.put(nb.content(widgets=first))  # a stale copy this server wrote earlier
    assert nb.state() == newest
    persistence = relay_manager.parent.settings["widget_state_persistence"]
    assert persistence.reports["keep.ipynb"].action == "kept-file"

    # State that did not come from this server (an upload) is the client's to set.
    foreign = copy.deepcopy(first)
    foreign["state"] = {"f" * 32: next(iter(first["state"].values()))}
    await nb.put(nb.content(widgets=foreign))
    assert nb.state() == foreign["state"]

    # A notebook that never had a kernel here keeps what its file has.
    other = notebook("never-run.ipynb")
    other.cells = nb.cells
    await other.put(other.content(widgets=foreign))
    await other.put()
    assert other.state() == foreign["state"]


async def test_restart_then_save_writes_new_state(
    start_kernel: Any, connect: Any, notebook: Any, relay_manager: Any, jp_fetch: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("restart.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE[1:2])
    assert nb.state()
    old_views = nb.view_ids()

    await jp_fetch("api", "kernels", kernel_id, "restart", method="POST", body="{}")
    await eventually(
        lambda: len(relay_manager.link_for(kernel_id).relay.table) == 0,
        timeout=10,
        retry_on=PARTIAL_FILE,
    )
    await nb.put()  # outputs still show the dead widgets
    assert "widgets" not in nb.stored()["metadata"], "stale state must not be written again"

    await a.execute("import ipywidgets as W")
    await nb.run(a, ["display(W.Checkbox(value=True))"])
    await nb.put()
    new_view = nb.view_ids()[-1]
    assert new_view not in old_views
    state = nb.state()
    assert new_view in state and state[new_view]["model_name"] == "CheckboxModel"
    assert not set(state) & set(old_views)


async def test_reopened_notebook_with_fresh_kernel_keeps_stored_views(
    start_kernel: Any, connect: Any, notebook: Any, relay_manager: Any, jp_fetch: Any
) -> None:
    """ipywidgets#3888: reopening and saving must not delete the stored state."""
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("reopen.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE[1:2])
    stored = nb.state()
    assert stored
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    await eventually(
        lambda: relay_manager.link_for(kernel_id) is None, timeout=10, retry_on=PARTIAL_FILE
    )

    fresh = await start_kernel()
    b = await connect(fresh)
    await nb.session(fresh)
    await eventually(
        lambda: relay_manager.link_for(fresh) is not None, timeout=10, retry_on=PARTIAL_FILE
    )
    await nb.put()  # the reopened notebook, saved by a client that sends no widget state
    assert nb.state() == stored
    persistence = relay_manager.parent.settings["widget_state_persistence"]
    assert persistence.reports["reopen.ipynb"].carried == len(stored)

    await nb.run(b, ["import ipywidgets as W\ndisplay(W.ToggleButton())"])
    await nb.put()
    both = nb.state()
    assert set(stored) < set(both) and nb.view_ids()[-1] in both


async def test_renamed_notebook_still_finds_its_kernel(
    start_kernel: Any, connect: Any, notebook: Any, jp_fetch: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("dir/before.ipynb")
    (nb.root / "dir").mkdir()
    await nb.run_and_save(a, kernel_id, SAMPLE[1:2])
    # Renamed by another client: the session still says the old path.
    await jp_fetch("api", "contents", "dir", method="PATCH", body=json.dumps({"path": "moved"}))
    nb.path = "moved/before.ipynb"
    await asyncio.sleep(0.2)  # the contents service's rename event is delivered as a task
    await a.execute("sliders[0].value = 5")
    await nb.put()
    assert nb.state()[await a.evaluate("sliders[0].model_id")]["state"]["value"] == 5


@pytest.mark.parametrize(
    "extra_config",
    [{"ContentsManager": {"pre_save_hook": "tests.server.test_persistence.user_pre_save_hook"}}],
)
async def test_user_pre_save_hook_still_runs(
    start_kernel: Any, connect: Any, notebook: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("hooked.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE[1:2])
    assert nb.stored()["metadata"]["user_hook"] is True
    assert nb.state()


@pytest.mark.parametrize("relay_config", [{"save_widget_state": "none"}])
async def test_mode_none_leaves_widget_state_alone(
    start_kernel: Any, connect: Any, notebook: Any, relay_manager: Any
) -> None:
    assert relay_manager.parent.settings["widget_state_persistence"] is None
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("none.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE[1:2])
    assert "widgets" not in nb.stored()["metadata"]
    client_state = new_document({"c" * 32: entry({})})
    await nb.put(nb.content(widgets=client_state))
    assert nb.state() == client_state["state"]


@pytest.mark.parametrize("relay_config", [{"save_widget_state": "all"}])
async def test_mode_all_saves_every_model(
    start_kernel: Any, connect: Any, notebook: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("all.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE[1:2] + SAMPLE[3:])
    everything = await a.evaluate("sorted(W.widgets.widget._instances)")
    assert sorted(nb.state()) == everything
    assert await a.evaluate("hidden.model_id") in nb.state()


@pytest.mark.parametrize("relay_config", [{"saved_state_max_bytes": 15000}])
async def test_cap_drops_whole_views_and_says_so(
    start_kernel: Any, connect: Any, notebook: Any, relay_manager: Any
) -> None:
    persistence = relay_manager.parent.settings["widget_state_persistence"]
    records = log_records(persistence)
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("capped.ipynb")
    # the sliders fit under the cap; the image, displayed after them, does not
    await nb.run_and_save(a, kernel_id, SAMPLE[1:3])
    state = nb.state()
    image_id = await a.evaluate("img.model_id")
    slider_ids = await a.evaluate("[s.model_id for s in sliders]")
    assert image_id not in state and set(slider_ids) <= set(state)
    assert encoded_size(nb.stored()["metadata"]["widgets"][WIDGET_STATE_MIME]) <= 15000
    [warning] = [r for r in records if "saved_state_max_bytes" in r.getMessage()]
    message = warning.getMessage()
    assert warning.levelno == logging.WARNING
    assert "capped.ipynb" in message and image_id in message and "= 15000" in message


# -- saving through a jupyter-collaboration room -------------------------------------------

ROOM_RAW = 2


class RoomChannel:
    """pycrdt's Channel over a tornado websocket; answers to "save" requests are kept."""

    def __init__(self, ws: Any, path: str) -> None:
        self.ws = ws
        self._path = path
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> RoomChannel:
        return self

    async def __anext__(self) -> bytes:
        while True:
            frame = await self.ws.read_message()
            if frame is None:
                raise StopAsyncIteration
            if frame[0] == ROOM_RAW:
                decoder = Decoder(frame)
                decoder.read_var_uint()
                self.replies.put_nowait(json.loads(decoder.read_var_string()))
                continue
            return bytes(frame)

    async def recv(self) -> bytes:
        return await self.__anext__()

    async def send(self, message: bytes) -> None:
        await self.ws.write_message(message, binary=True)

    async def save(self, request_id: int) -> dict[str, Any]:
        """What JupyterLab sends on Ctrl+S in a collaborative notebook."""
        encoder = Encoder()
        encoder.write_var_uint(ROOM_RAW)
        encoder.write_var_string("save")
        encoder.write_var_uint(request_id)
        await self.send(encoder.to_bytes())
        return await asyncio.wait_for(self.replies.get(), 10)


ASYNC_FILES = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"


@pytest.mark.parametrize("rtc_enabled", [True])
@pytest.mark.parametrize(
    "extra_config",
    [{}, {"ServerApp": {"contents_manager_class": ASYNC_FILES}}],
    ids=["sync-files", "async-files"],
)
async def test_collaboration_room_saves_carry_widget_state(
    start_kernel: Any,
    connect: Any,
    notebook: Any,
    relay_manager: Any,
    jp_fetch: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
) -> None:
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("room.ipynb")
    await nb.run(a, SAMPLE[:2])
    (nb.root / nb.path).write_text(json.dumps(nb.content()), encoding="utf-8")
    await nb.session(kernel_id)

    response = await jp_fetch(
        "api",
        "collaboration",
        "session",
        nb.path,
        method="PUT",
        body=json.dumps({"format": "json", "type": "notebook"}),
    )
    session = json.loads(response.body)
    room = f"json:notebook:{session['fileId']}"
    # As JupyterLab does, with the room id's colons unescaped (jp_ws_fetch would escape them,
    # and the server would then open a transient room instead of the document's).
    url = (
        f"ws://127.0.0.1:{jp_http_port}{jp_base_url}api/collaboration/room/{room}"
        f"?sessionId={session['sessionId']}"
    )
    ws = await websocket_connect(HTTPRequest(url, headers=jp_auth_header))
    channel = RoomChannel(ws, room)
    ynotebook = YNotebook()
    try:
        async with Provider(ynotebook.ydoc, channel):
            await eventually(lambda: len(ynotebook.ycells) == 2, timeout=10, retry_on=PARTIAL_FILE)
            # Ctrl+S: the room saves the ydoc's content through the contents manager.
            assert (await channel.save(1))["status"] == "success"
            roots = nb.view_ids()
            expected_ids, kernel_states = await kernel_expectation(a, roots)
            assert set(nb.state()) == expected_ids
            for model_id, saved_entry in nb.state().items():
                assert canonical(saved_entry) == canonical(kernel_states[model_id])

            # An edit autosaves (document_save_delay); the kernel's newest values go with it.
            await a.execute("sliders[1].value = 42")
            source = ynotebook.ycells[0]["source"]
            source.insert(len(source), "\n# edited")
            slider = await a.evaluate("sliders[1].model_id")
            await eventually(
                lambda: "# edited" in json.dumps(nb.stored()["cells"][0]),
                timeout=10,
                retry_on=PARTIAL_FILE,
            )
            await eventually(
                lambda: nb.state()[slider]["state"]["value"] == 42,
                timeout=10,
                retry_on=PARTIAL_FILE,
            )
            assert "widgets" not in ynotebook.get()["metadata"], "the ydoc stays state-free"
            newest = nb.state()

            # Kernel gone: the room's content has no widget state; the file's is kept.
            await jp_fetch("api", "kernels", kernel_id, method="DELETE")
            await eventually(
                lambda: relay_manager.link_for(kernel_id) is None, timeout=10, retry_on=PARTIAL_FILE
            )
            source.insert(len(source), "\n# edited again")
            await eventually(
                lambda: "edited again" in json.dumps(nb.stored()["cells"][0]),
                timeout=10,
                retry_on=PARTIAL_FILE,
            )
            assert (await channel.save(2))["status"] == "success"
            assert nb.state() == newest
    finally:
        ws.close()


# -- size of a sample ------------------------------------------------------------------------


async def test_sample_notebook_widget_state_size(
    start_kernel: Any, connect: Any, notebook: Any, capsys: Any
) -> None:
    """Measure:
    python -m pytest tests/server/test_persistence.py -k size -s -q -p no:cacheprovider
    """
    kernel_id = await start_kernel()
    a = await connect(kernel_id)
    nb = notebook("size.ipynb")
    await nb.run_and_save(a, kernel_id, SAMPLE)
    document = nb.stored()["metadata"]["widgets"]
    compact = encoded_size(document)
    as_stored = len(json.dumps(document, indent=1, ensure_ascii=False).encode())
    image = nb.state()[await a.evaluate("img.model_id")]
    buffer_bytes = sum(len(b["data"]) for b in image.get("buffers", []))
    all_state = await a.evaluate("W.Widget.get_manager_state()")
    lean = await a.evaluate("W.Widget.get_manager_state(drop_defaults=True)")
    with capsys.disabled():
        print(
            f"\nsample (interact, 3 sliders in a VBox + jslink, 96x96 PNG Image, 1 hidden"
            f" slider): {len(nb.state())} models saved; metadata.widgets = {compact} bytes"
            f" compact JSON, {as_stored} bytes as stored in the .ipynb (indent=1), of which"
            f" {buffer_bytes} bytes base64 image; all {len(all_state['state'])} kernel models"
            f" = {encoded_size(all_state)} bytes, with drop_defaults (what JupyterLab's"
            f" saveState writes) = {encoded_size(lean)} bytes"
        )
    assert 0 < compact < encoded_size(all_state)
