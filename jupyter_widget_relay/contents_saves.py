"""REST saves of notebooks, seen from the widget state hook: who is saving.

The pre-save hook sees only the model and path. This subclass of jupyter_server's
``ContentsHandler`` (registered on the same routes, which an extension's handlers take
over, with the checkpoint and trust routes kept before it as upstream orders them) tells
the hook, for the duration of a REST save, whether the saving user may ``execute`` on
kernels (the right that gives a kernel's widget state over its websocket), and first
reads the file's stored state ahead where only ``await`` can. Saves that are not REST
requests (jupyter-collaboration's rooms) carry no request.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jupyter_server.services.contents import handlers as upstream
from jupyter_server.services.contents.handlers import ContentsHandler

from .handlers import may_execute


@dataclass(frozen=True, slots=True)
class SaveRequest:
    may_execute: bool


SAVE_REQUEST: ContextVar[SaveRequest | None] = ContextVar("widget_relay_save", default=None)


class SavingContentsHandler(ContentsHandler):
    # ``_save`` and ``_upload`` are private methods of ContentsHandler: checked at load
    # (upstream.check_contents_saves); without them no widget state is written.

    async def _save(self, model: Any, path: str) -> None:
        await self._within_request(super()._save, model, path)

    async def _upload(self, model: Any, path: str) -> None:
        await self._within_request(super()._upload, model, path)

    async def _within_request(self, save: Any, model: Any, path: str) -> None:
        persistence = self.settings.get("widget_state_persistence")
        if persistence is not None and model.get("type") == "notebook":
            await persistence.stored.before_save(path.strip("/"))
        token = SAVE_REQUEST.set(SaveRequest(await may_execute(self)))
        try:
            await save(model, path)
        finally:
            SAVE_REQUEST.reset(token)


def contents_handlers() -> list[tuple[str, type]]:
    """jupyter_server's contents routes, in their order, with this handler for contents
    itself (its pattern also matches the checkpoint and trust routes listed before it)."""
    return [
        (pattern, SavingContentsHandler if handler is ContentsHandler else handler)
        for pattern, handler in upstream.default_handlers
    ]
