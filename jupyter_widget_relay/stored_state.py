"""The widget state stored in each notebook file, known without blocking a save.

A pre-save hook is synchronous. File-system contents managers are read directly; managers
with a synchronous ``get`` are asked. Managers that can only be read with ``await``
(remote or non-file, e.g. S3 backends) are read ahead, asynchronously: whenever the
contents service reports a notebook read (``get`` events), jupyter-collaboration loads a
notebook into a room (its ``load`` and ``initialize`` events), and before a REST save
(``before_save``); and every save through this server remembers what it put in the file.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Coroutine
from typing import Any

from jupyter_core.utils import ensure_async

from . import upstream
from .core.saved_state import WIDGET_STATE_MIME, Document, document_of

CONTENTS_SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"
COLLABORATION_SCHEMA = "https://schema.jupyter.org/jupyter_collaboration/session/v1"
ROOM_LOAD_ACTIONS = ("load", "initialize")
MAX_REMEMBERED = 10_000


def _norm(path: Any) -> str:
    return str(path or "").strip("/")


class StoredState:
    def __init__(self, contents_manager: Any, log: logging.Logger) -> None:
        self.contents_manager = contents_manager
        self.log = log
        self._known: dict[str, Document | None] = {}
        self._reading: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._warned = False
        self._os_path = upstream.os_path_reader(contents_manager)
        self.read_ahead = self._os_path is None and inspect.iscoroutinefunction(
            contents_manager.get
        )

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    # -- what is in the file -------------------------------------------------------------

    def read(self, path: str) -> tuple[bool, Document | None]:
        """(known, document) of the notebook as stored now, before the save under way."""
        try:
            if self._os_path is not None:  # file-system managers: read the JSON directly
                with open(self._os_path(path), "rb") as file:
                    raw = file.read()
                if WIDGET_STATE_MIME.encode() not in raw:
                    return True, None  # most notebooks: no need to parse them
                stored = json.loads(raw)
            elif not self.read_ahead:
                stored = self.contents_manager.get(path, content=True, type="notebook")["content"]
            elif path in self._known:
                return True, self._known[path]
            else:
                if not self._warned:
                    self._warned = True
                    self.log.warning(
                        "widget relay: %s can only be read asynchronously, and %s was saved "
                        "before the server read it; the widget state the client sent is kept",
                        type(self.contents_manager).__name__,
                        path,
                    )
                return False, None
        except FileNotFoundError:
            return True, None
        except Exception as error:
            if getattr(error, "status_code", None) == 404:
                return True, None
            self.log.warning("widget relay: cannot read the stored %s: %s", path, error)
            return False, None
        return True, document_of(stored) if isinstance(stored, dict) else None

    def saved(self, path: str, document: Document | None) -> None:
        """A save through this server puts ``document`` into the file."""
        if self.read_ahead:
            self._remember(path, document)

    async def before_save(self, path: str) -> None:
        """Read the file's state ahead of a save, if only ``await`` can read it."""
        if self.read_ahead and path not in self._known:
            await self._refresh(path)

    # -- following the files -------------------------------------------------------------

    def moved(self, old: str, new: str) -> None:
        for name in [p for p in self._known if p == old or p.startswith(old + "/")]:
            self._known[new + name[len(old) :]] = self._known.pop(name)

    def deleted(self, path: str) -> None:
        for name in [p for p in self._known if p == path or p.startswith(path + "/")]:
            del self._known[name]

    def on_event(self, schema_id: str, data: dict[str, Any]) -> None:
        """A contents ``get`` or a room's load: read that notebook's state ahead."""
        path = _norm(data.get("path"))
        if not self.read_ahead or not path.endswith(".ipynb") or path in self._reading:
            return
        action = data.get("action")
        if (schema_id == CONTENTS_SCHEMA and action == "get") or (
            schema_id == COLLABORATION_SCHEMA and action in ROOM_LOAD_ACTIONS
        ):
            self._spawn(self._refresh(path))

    async def _refresh(self, path: str) -> None:
        if path in self._reading:
            return
        self._reading.add(path)
        try:
            model = await ensure_async(
                self.contents_manager.get(path, content=True, type="notebook")
            )
            content = model.get("content") if isinstance(model, dict) else None
            self._remember(path, document_of(content) if isinstance(content, dict) else None)
        except Exception as error:
            if getattr(error, "status_code", None) == 404:
                self._remember(path, None)
            else:
                self.log.debug("widget relay: cannot read %s ahead: %s", path, error)
        finally:
            self._reading.discard(path)

    def _remember(self, path: str, document: Document | None) -> None:
        self._known[path] = document
        while len(self._known) > MAX_REMEMBERED:
            del self._known[next(iter(self._known))]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
