"""Helpers shared by the test modules that run the relay in a real server (and by
tests/deployment/): waits, widget cells, authorizers, notebooks saved through REST.

Nothing here is a pytest fixture: the fixtures live in tests/conftest.py and in each test
module, which keeps each module's server configuration in that module.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.auth.authorizer import Authorizer

from jupyter_widget_relay.core.saved_state import WIDGET_STATE_MIME, document_of, view_model_ids

from ..client import KernelClient, is_idle_after

# -- waiting -------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float,
    what: str = "condition",
    retry_on: tuple[type[Exception], ...] = (),
) -> None:
    """Wait until ``check()`` (awaited when it returns an awaitable) is true; TimeoutError
    after ``timeout`` seconds. An exception of a ``retry_on`` type counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        except retry_on:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.05)


async def settle(senders: list[Any], *others: Any) -> None:
    """Wait until the kernel handled everything the senders sent (each shell queue is FIFO)
    and every client has read everything the kernel and relay sent until then."""
    for sender in senders:
        request = sender.start_execute("pass")
        for client in {id(c): c for c in [*senders, *others]}.values():
            await client.wait_for(lambda m, r=request: is_idle_after(m, r), timeout=30)
    await asyncio.sleep(0.2)


# -- widgets in a kernel -------------------------------------------------------------------

#: A slider the cell displays.
SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=5)\ns"
#: A slider with room for long streams of values, not displayed.
WIDE_SLIDER = "import ipywidgets as W\ns = W.IntSlider(value=0, max=10**6)"
TEXT_CELL = "import ipywidgets as W\nt = W.Text({name!r})\nt"


async def setup_clients(
    start_kernel: Any,
    connect: Any,
    count: int,
    code: str = WIDE_SLIDER,
    env: dict[str, str] | None = None,
) -> tuple[str, list[Any], str]:
    """A kernel that ran ``code`` (which makes ``s``), ``count`` clients alternating the
    protocols that have each asked for the state; the kernel, the clients, ``s``'s id."""
    kernel_id = await start_kernel(env)
    clients = [await connect(kernel_id, "v1" if i % 2 == 0 else "json") for i in range(count)]
    await clients[0].execute(code)
    model_id = await clients[0].evaluate("s.model_id")
    for client in clients:
        await client.request_states()
    return kernel_id, clients, model_id


async def kernel_with_text(start_kernel: Any, connect: Any, name: str) -> tuple[str, set[str]]:
    """A kernel holding a Text widget; its model ids."""
    kernel_id = await start_kernel()
    client = await connect(kernel_id)
    await client.execute(TEXT_CELL.format(name=name))
    return kernel_id, set(await client.evaluate("sorted(W.widgets.widget._instances)"))


def stderr_notices(client: KernelClient, request: dict[str, Any]) -> list[str]:
    """The stderr texts a client got in answer to its request."""
    return [
        m["content"]["text"]
        for m in client.messages
        if m["header"]["msg_type"] == "stream"
        and m["content"].get("name") == "stderr"
        and m["parent_header"].get("msg_id") == request["header"]["msg_id"]
    ]


# -- the server ----------------------------------------------------------------------------


class AllowByHeader(Authorizer):  # type: ignore[misc]
    """Allows the actions named in the X-Allow request header (all without one)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        allowed = handler.request.headers.get("X-Allow")
        return allowed is None or action in allowed.split(",")


def fault_relay_config() -> dict[str, Any]:
    """c.WidgetRelay.* where kernels fail: the relay checks its kernels often."""
    return {"kernel_check_interval": 0.5}


def fault_server_config(relay_config: dict[str, Any]) -> dict[str, Any]:
    """The server configuration where kernels fail: the restarter notices them soon."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_widget_relay": True}},
        "WidgetRelay": relay_config,
        # the restarter polls every time_to_dead seconds (default 3)
        "KernelRestarter": {"time_to_dead": 0.5},
    }


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """ERROR records from any logger (the relay's, jupyter_server's, tornado's)."""
    return [
        f"{record.name}: {record.getMessage()[:300]}"
        for record in caplog.records
        if record.levelno >= logging.ERROR
    ]


def log_records(persistence: Any) -> list[logging.LogRecord]:
    """Every record the persistence's logger emits from now on, INFO and above."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = persistence.log
    logger.addHandler(handler)
    logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    return records


async def add_session(app: Any, path: str, kernel_id: str) -> None:
    """A session row as the session manager keeps it (the REST API would reuse one that
    exists on the path; a second one on the same path comes e.g. from another frontend)."""
    await app.session_manager.create_session(
        path=path, name=path, type="notebook", kernel_id=kernel_id
    )


def partial_frame(payload: bytes) -> bytes:
    """The first half of a masked binary websocket frame announcing all of ``payload``."""
    header = bytes([0x82, 0x80 | 127]) + len(payload).to_bytes(8, "big") + b"\x00" * 4
    return header + payload[: len(payload) // 2]  # mask key 0: payload as is


# -- notebooks -----------------------------------------------------------------------------


class Notebook:
    """A notebook path on a real server with a session, saved the ways clients save it."""

    def __init__(self, root: Path, path: str, fetch: Any) -> None:
        self.root = root
        self.path = path
        self.fetch = fetch
        self.cells: list[Any] = []

    async def run(self, client: KernelClient, sources: list[str]) -> None:
        for source in sources:
            start = len(client.messages)
            request = await client.execute(source)
            msg_id = request["header"]["msg_id"]
            outputs = [
                nbformat.v4.output_from_msg(m)
                for m in client.messages[start:]
                if m["channel"] == "iopub"
                and m["parent_header"].get("msg_id") == msg_id
                and m["header"]["msg_type"] in ("display_data", "execute_result", "stream")
            ]
            self.cells.append(nbformat.v4.new_code_cell(source, outputs=outputs))

    async def run_and_save(self, client: KernelClient, kernel_id: str, sources: list[str]) -> None:
        """Run ``sources``, give the notebook a session on ``kernel_id``, save it over REST."""
        await self.run(client, sources)
        await self.session(kernel_id)
        await self.put()

    def content(self, widgets: dict[str, Any] | None = None) -> dict[str, Any]:
        nb = nbformat.v4.new_notebook(cells=copy.deepcopy(self.cells))
        if widgets is not None:
            nb.metadata["widgets"] = {WIDGET_STATE_MIME: widgets}
        return json.loads(json.dumps(nb))

    async def session(self, kernel_id: str) -> None:
        body = {"path": self.path, "type": "notebook", "name": "", "kernel": {"id": kernel_id}}
        await self.fetch("api", "sessions", method="POST", body=json.dumps(body))

    async def put(self, content: dict[str, Any] | None = None, path: str | None = None) -> None:
        body = {"type": "notebook", "format": "json", "content": content or self.content()}
        await self.fetch("api", "contents", path or self.path, method="PUT", body=json.dumps(body))

    def stored(self) -> dict[str, Any]:
        return json.loads((self.root / self.path).read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def state(self) -> dict[str, Any]:
        return (document_of(self.stored()) or {}).get("state", {})

    def view_ids(self) -> list[str]:
        return view_model_ids(self.content())
