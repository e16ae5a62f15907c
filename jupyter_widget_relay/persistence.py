"""Widget state written into notebooks by the server, on every save, from the widget table.

Hooked in with ``ContentsManager.register_pre_save_hook``, so it runs inside every save that
goes through the contents manager: REST ``PUT /api/contents`` (JupyterLab, Notebook 7,
nbclassic) and jupyter-collaboration, whose rooms save with ``contents_manager.save``. Hooks
are synchronous; everything here is too (the session lookup reads the session manager's
sqlite table directly), and runs on the server's event loop thread, as contents saves do.

The notebook's kernel is found through the sessions on its exact path (notebook_kernels.py);
the file's stored state is known without blocking (stored_state.py); REST saves say whether
the saving user may execute on kernels (contents_saves.py). What gets written:

* a table exists for the kernel: the models the notebook's widget views need
  (``save_widget_state = "referenced"``) or all models (``"all"``), from the table. Views whose
  models this kernel's table does not have and never had here (state stored by an earlier
  session: the notebook was reopened with a fresh kernel) keep their stored state, taken from
  the incoming content or the file. Models this server saved from the same kernel's table
  that are gone from it now (kernel restarted, widget closed) are not written again.
* no table (no session, kernel stopped or not started yet): the incoming content's state is
  kept, unless it has none or it is a copy of a state this server wrote or replaced earlier (a
  stale echo, e.g. from a collaboration room's document); then the file's state is kept.
* sessions of several kernels on the path, or a REST save by a user who may not execute on
  kernels: nothing from any table; the file's state is kept.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import upstream
from .contents_saves import SAVE_REQUEST
from .core.notebook_kernels import NotebookKernels
from .core.saved_state import (
    Document,
    Fitted,
    carried_entries,
    closure,
    digest,
    document_of,
    fit,
    linked_models,
    put_document,
    view_model_ids,
)
from .core.table import WidgetModel, WidgetTable
from .stored_state import COLLABORATION_SCHEMA, CONTENTS_SCHEMA, StoredState
from .widget_defaults import default_traits

MAX_DIGESTS = 16
MAX_LIVE_IDS = 100_000
SHOWN_IDS = 8


def _norm(path: Any) -> str:
    return str(path or "").strip("/")


def _shown(ids: list[str]) -> str:
    more = f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
    return ", ".join(ids[:SHOWN_IDS]) + more


@dataclass
class _PathRecord:
    """What this server has written for one notebook path."""

    live: dict[str, str] = field(default_factory=dict)  # model id -> kernel id it lived in
    digests: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_DIGESTS))
    built: tuple[Any, Fitted, str | None] | None = None  # last document built from a table

    def saw_live(self, model_ids: list[str], kernel_id: str) -> None:
        self.live.update(dict.fromkeys(model_ids, kernel_id))
        while len(self.live) > MAX_LIVE_IDS:
            del self.live[next(iter(self.live))]

    def remember(self, document_digest: str) -> None:
        """A document this server wrote or replaced (a later copy of it is a stale echo)."""
        if document_digest not in self.digests:
            self.digests.append(document_digest)

    def died_in(self, model_id: str, kernel_id: str) -> bool:
        """Saved earlier from this kernel's table, and gone from it now (restart, close)."""
        return self.live.get(model_id) == kernel_id


@dataclass
class SaveReport:
    """What the last save of a path did (for logs, tests and debugging)."""

    path: str
    action: str  # "table", "kept-incoming", "kept-file", "no-state"
    kernel_id: str | None = None
    models: int = 0
    carried: int = 0
    size: int | None = None  # bytes of compact JSON, when measured (a cap is set)
    dropped: list[str] = field(default_factory=list)


class WidgetStatePersistence:
    """Writes ``metadata.widgets`` on notebook saves; see the module docstring."""

    def __init__(
        self,
        *,
        relay_manager: Any,
        contents_manager: Any,
        session_manager: Any,
        event_logger: Any = None,
        mode: str = "referenced",
        max_bytes: int = 0,
        log: logging.Logger | None = None,
    ) -> None:
        if mode not in ("referenced", "all"):
            raise ValueError(f"save mode must be 'referenced' or 'all', not {mode!r}")
        self.relay_manager = relay_manager
        self.contents_manager = contents_manager
        self.session_manager = session_manager
        self.event_logger = event_logger
        self.mode = mode
        self.max_bytes = max_bytes
        self.log = log or logging.getLogger(__name__)
        self.reports: dict[str, SaveReport] = {}
        self._records: dict[str, _PathRecord] = {}
        self.notebooks = NotebookKernels()
        self.stored = StoredState(contents_manager, self.log)
        self._warned: set[str] = set()
        self.active = False

    @classmethod
    def install(
        cls, serverapp: Any, relay_manager: Any, *, mode: str, max_bytes: int, log: logging.Logger
    ) -> WidgetStatePersistence | None:
        """Hook into ``serverapp``'s contents manager (None for mode ``"none"``)."""
        if mode == "none" or relay_manager is None:
            log.info("widget relay: not writing widget state into saved notebooks")
            return None
        persistence = cls(
            relay_manager=relay_manager,
            contents_manager=serverapp.contents_manager,
            session_manager=serverapp.session_manager,
            event_logger=getattr(serverapp, "event_logger", None),
            mode=mode,
            max_bytes=max_bytes,
            log=log,
        )
        persistence.start()
        return persistence

    def start(self) -> None:
        # register_pre_save_hook appends to the manager's hook list: a user's
        # c.ContentsManager.pre_save_hook still runs (first), and so do other extensions' hooks.
        self.contents_manager.register_pre_save_hook(self.pre_save)
        if self.event_logger is not None:
            self.event_logger.add_listener(schema_id=CONTENTS_SCHEMA, listener=self._on_contents)
            self.event_logger.add_listener(schema_id=COLLABORATION_SCHEMA, listener=self._on_room)
        self.active = True

    def stop(self) -> None:
        """Stop writing (the registered hook then does nothing)."""
        self.active = False
        self.stored.stop()
        if self.event_logger is not None:
            for schema_id, listener in (
                (CONTENTS_SCHEMA, self._on_contents),
                (COLLABORATION_SCHEMA, self._on_room),
            ):
                with contextlib.suppress(Exception):
                    self.event_logger.remove_listener(schema_id=schema_id, listener=listener)

    # -- the hook ------------------------------------------------------------------------

    def pre_save(self, model: dict[str, Any], path: str, **kwargs: Any) -> None:
        """``pre_save_hook(model=, path=, contents_manager=)``: fills in the widget state."""
        if not self.active or model.get("type") != "notebook":
            return
        notebook = model.get("content")
        if not isinstance(notebook, dict):
            return
        path = _norm(path)
        record = self._records.setdefault(path, _PathRecord())
        incoming = document_of(notebook)
        found = self._table_for(path)
        request = SAVE_REQUEST.get()
        if found is not None and request is not None and not request.may_execute:
            self.log.debug(
                "widget relay: the user saving %s may not execute on kernels; keeping the "
                "widget state stored in the file",
                path,
            )
            report = self._keep(notebook, path, None, record)
        elif found is None:
            report = self._keep(notebook, path, incoming, record)
        elif isinstance(found, str):
            self.log.warning(
                "widget relay: not saving widget state from a kernel into %s: %s; keeping the "
                "state stored in the file",
                path,
                found,
            )
            report = self._keep(notebook, path, None, record)
        else:
            report = self._from_table(notebook, path, incoming, record, *found)
        self.reports[path] = report
        self.stored.saved(path, document_of(notebook))

    def _from_table(
        self,
        notebook: dict[str, Any],
        path: str,
        incoming: Document | None,
        record: _PathRecord,
        kernel_id: str,
        table: WidgetTable,
    ) -> SaveReport:
        states = {model_id: model.state for model_id, model in table.models.items()}
        views = view_model_ids(notebook)
        live = closure(views, states)
        live += linked_models(live, states)
        if self.mode == "all":
            chosen = set(live)
            live += [model_id for model_id in states if model_id not in chosen]
        # Views this kernel's table cannot serve and never served: state stored by an
        # earlier session (another kernel). Keep it until the outputs showing them are gone.
        stored = [v for v in views if v not in states and not record.died_in(v, kernel_id)]
        table_models = table.models
        stamp = (
            kernel_id,
            tuple(views),
            tuple((m, table_models[m].version, table_models[m].last_change) for m in live),
        )
        if not stored and record.built is not None and record.built[0] == stamp:
            fitted, written = record.built[1], record.built[2]  # nothing changed: no re-encoding
            carried: dict[str, Any] = {}
        else:
            document = table.document(set(live), leave_out=_class_defaults)
            carried = carried_entries(stored, incoming, exclude=states)
            missing = [v for v in stored if v not in carried]
            if missing:
                _, on_disk = self.stored.read(path)
                carried.update(carried_entries(missing, on_disk, exclude=states.keys() | carried))
            document["state"].update(carried)
            fitted = fit(document, [*views, *live], self.max_bytes)
            if fitted.dropped:
                self._log_cap(path, fitted)
            written = digest(fitted.document) if fitted.document["state"] else None
            record.built = (stamp, fitted, written) if not stored else None
        record.saw_live(live, kernel_id)
        if incoming is not None:
            record.remember(digest(incoming))
        if written is not None:
            record.remember(written)
        put_document(notebook, fitted.document if written is not None else None)
        models = len(fitted.document["state"]) if written is not None else 0
        self.log.debug(
            "widget relay: saving %d widget models into %s from kernel %s", models, path, kernel_id
        )
        return SaveReport(
            path,
            "table",
            kernel_id,
            models=models,
            carried=len([mid for mid in carried if mid in fitted.document["state"]]),
            size=fitted.size,
            dropped=fitted.dropped,
        )

    def _keep(
        self,
        notebook: dict[str, Any],
        path: str,
        incoming: Document | None,
        record: _PathRecord,
    ) -> SaveReport:
        """No table: keep the incoming state unless the file's is as new or newer. For an
        ambiguous path (``incoming`` None), the file's state in any case."""
        if incoming is not None and digest(incoming) not in record.digests:
            return SaveReport(path, "kept-incoming", models=len(incoming["state"]))
        readable, on_disk = self.stored.read(path)
        if not readable:
            return SaveReport(path, "kept-incoming" if document_of(notebook) else "no-state")
        put_document(notebook, on_disk)
        if on_disk is None:
            return SaveReport(path, "no-state")
        self.log.debug(
            "widget relay: no widget table for %s (kernel not running); keeping the widget "
            "state stored in the file (%d models)",
            path,
            len(on_disk["state"]),
        )
        return SaveReport(path, "kept-file", models=len(on_disk["state"]))

    def _log_cap(self, path: str, fitted: Fitted) -> None:
        self.log.warning(
            "widget relay: widget state for %s is %d bytes, over "
            "c.WidgetRelay.saved_state_max_bytes = %d; saved %d bytes and dropped %d models "
            "(%s), so %d displayed widgets (%s) will not render without a kernel",
            path,
            fitted.full_size,
            self.max_bytes,
            fitted.size,
            len(fitted.dropped),
            _shown(fitted.dropped),
            len(fitted.dropped_roots),
            _shown(fitted.dropped_roots),
        )

    # -- notebook -> kernel --------------------------------------------------------------

    def _table_for(self, path: str) -> tuple[str, WidgetTable] | str | None:
        """The widget table of the one kernel whose session is on ``path`` (see
        notebook_kernels.py); None without one, a warning text when several are."""
        kernels = self.notebooks.kernels_for(path, self._session_rows())
        if len(kernels) > 1:
            return f"sessions of kernels {', '.join(kernels)} are all on {path}"
        link = self.relay_manager.link_for(kernels[0]) if kernels else None
        if link is None or getattr(link, "closed", False):
            return None
        return kernels[0], link.relay.table

    def _session_rows(self) -> list[tuple[str, str]]:
        """(path, kernel_id) of every session, read synchronously from the session manager's
        sqlite table (``get_session``/``list_sessions`` are coroutines and a hook cannot
        await; both read this same table)."""
        manager = self.session_manager
        try:
            rows = upstream.session_rows(manager)
        except (AttributeError, sqlite3.Error) as error:
            self._warn_once(
                "sessions",
                "widget relay: cannot read sessions from %s (%s); notebooks are saved without "
                "widget state from kernels",
                type(manager).__name__,
                error,
            )
            return []
        return [(_norm(row[0]), str(row[1])) for row in rows if row[0] and row[1]]

    async def _on_room(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        self.stored.on_event(schema_id, data)

    async def _on_contents(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        action, path = data.get("action"), _norm(data.get("path"))
        self.stored.on_event(schema_id, data)
        if action == "rename":
            old = _norm(data.get("source_path"))
            self.notebooks.renamed(old, path, self._session_rows())
            self.stored.moved(old, path)
            for name in list(self._records):
                if name == old or name.startswith(old + "/"):
                    self._records[path + name[len(old) :]] = self._records.pop(name)
        elif action == "delete":
            self.notebooks.deleted(path)
            self.stored.deleted(path)
            self._records.pop(path, None)
            self.reports.pop(path, None)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(message, *args)


def _class_defaults(model: WidgetModel) -> set[str]:
    """Traits left out of saved state, as JupyterLab leaves them out: class defaults."""
    return default_traits(
        model.model_module, model.model_module_version, model.model_name, model.state
    )
