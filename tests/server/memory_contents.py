"""An asynchronous contents manager that keeps notebooks in memory (no files), like a
remote store: it can only be read with ``await``."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, ClassVar

from jupyter_server.services.contents.manager import AsyncContentsManager
from tornado import web


class MemoryContentsManager(AsyncContentsManager):  # type: ignore[misc]
    # shared by the server's instance and the test (a class attribute, cleared per test)
    files: ClassVar[dict[str, dict[str, Any]]] = {}

    def _model(self, path: str, content: bool) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        if path == "":
            kind = "directory"
            body: Any = [self._model(p, False) for p in sorted(self.files)]
        else:
            kind, body = "notebook", copy.deepcopy(self.files[path])
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "type": kind,
            "format": "json" if content else None,
            "content": body if content else None,
            "mimetype": None,
            "writable": True,
            "created": now,
            "last_modified": now,
            "size": None,
            "hash": None,
            "hash_algorithm": None,
        }

    async def get(self, path: str, content: bool = True, type: Any = None, **kwargs: Any) -> Any:
        path = path.strip("/")
        if path and path not in self.files:
            raise web.HTTPError(404, f"no such file: {path}")
        self.emit(data={"action": "get", "path": path})
        return self._model(path, content)

    async def save(self, model: dict[str, Any], path: str = "") -> Any:
        path = path.strip("/")
        self.run_pre_save_hooks(model=model, path=path)
        self.files[path] = copy.deepcopy(model["content"])
        self.emit(data={"action": "save", "path": path})
        return self._model(path, False)

    async def file_exists(self, path: str = "") -> bool:
        return path.strip("/") in self.files

    async def dir_exists(self, path: str) -> bool:
        return path.strip("/") == ""

    async def is_hidden(self, path: str) -> bool:
        return False

    async def delete_file(self, path: str) -> None:
        self.files.pop(path.strip("/"), None)

    async def rename_file(self, old_path: str, new_path: str) -> None:
        self.files[new_path.strip("/")] = self.files.pop(old_path.strip("/"))
