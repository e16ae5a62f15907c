"""Another kernel: xeus-python (kernel ``xpython``), which implements the widget protocol in
C++ with ipywidgets' Python side. The core scenarios run against it as against ipykernel."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from ..client import is_idle_after, state_of
from ..server.helpers import Notebook

# Found before pytest-jupyter isolates the Jupyter paths (its servers see only python3).
XPYTHON_SPEC = Path(KernelSpecManager().get_kernel_spec("xpython").resource_dir)


@pytest.fixture(autouse=True)
def xpython_kernelspec(jp_data_dir: Path) -> None:
    """The installed xpython kernel spec, in the test server's data dir."""
    shutil.copytree(XPYTHON_SPEC, jp_data_dir / "kernels" / "xpython")


SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=0, max=1000)"


async def test_late_joiner_and_peers_while_an_xpython_cell_runs(
    start_kernel: Any, connect: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel(name="xpython")
    a, b = await connect(kernel_id), await connect(kernel_id, "json")
    await a.execute(SLIDER)
    model_id = await a.evaluate("s.model_id")
    for client in (a, b):
        await client.request_states()
    cell = await a.start_running("import time; time.sleep(3)")
    for step in range(1, 6):
        b.change(model_id, {"value": step})
        await a.wait_for(
            lambda m, s=step: (
                m["header"]["msg_type"] == "comm_msg"
                and m["content"]["data"].get("state", {}).get("value") == s
            ),
            timeout=2,
        )
    late = await connect(kernel_id)
    assert state_of(await late.request_states())[model_id]["value"] == 5
    assert not any(is_idle_after(m, cell) for m in a.messages), "the cell ended first"
    await a.wait_for(lambda m: is_idle_after(m, cell), timeout=20)
    assert await a.evaluate("s.value") == 5
    relay = relay_manager.link_for(kernel_id).relay
    assert relay.table.get(model_id).state["value"] == 5
    assert not b.awaits_echo()


async def test_xpython_output_capture_reaches_a_late_joiner(
    start_kernel: Any, connect: Any
) -> None:
    kernel_id = await start_kernel(name="xpython")
    a = await connect(kernel_id)
    await a.execute("import ipywidgets as W\nout = W.Output()")
    model_id = await a.evaluate("out.model_id")
    await a.execute("with out:\n    print('from xeus')")
    await asyncio.sleep(0.3)
    late = await connect(kernel_id, "json")
    outputs = state_of(await late.request_states())[model_id]["outputs"]
    assert outputs == [{"output_type": "stream", "name": "stdout", "text": "from xeus\n"}]


async def test_saving_an_xpython_notebook_writes_its_widget_state(
    start_kernel: Any, connect: Any, relay_app: Any, jp_root_dir: Path, jp_fetch: Any
) -> None:
    kernel_id = await start_kernel(name="xpython")
    a = await connect(kernel_id)
    nb = Notebook(jp_root_dir, "xeus.ipynb", jp_fetch)
    await nb.run(a, [f"{SLIDER}\ns.value = 12\ns"])
    await nb.session(kernel_id)
    await nb.put()
    saved = nb.state()
    model_id = await a.evaluate("s.model_id")
    assert saved[model_id]["state"]["value"] == 12
