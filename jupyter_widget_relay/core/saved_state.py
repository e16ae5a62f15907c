"""Widget state saved in a notebook: which models it needs, and fitting them under a cap.

Pure functions on JSON values (no tornado, zmq or jupyter_server). A *document* is the
``application/vnd.jupyter.widget-state+json`` v2 value kept in a notebook's
``metadata.widgets``: ``{version_major: 2, version_minor: 0, state: {model_id: entry}}``, each
entry ``{model_name, model_module, model_module_version, state, buffers?}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
MODEL_PREFIX = "IPY_MODEL_"

Document = dict[str, Any]


def new_document(entries: Mapping[str, Any] | None = None) -> Document:
    return {"version_major": 2, "version_minor": 0, "state": dict(entries or {})}


def _view_id(value: Any) -> str | None:
    """The model id of a widget-view mime value (a dict, or JSON text as some writers store)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    model_id = value.get("model_id") if isinstance(value, dict) else None
    return model_id if isinstance(model_id, str) and model_id else None


def references(value: Any, *, strings: bool = True) -> Iterator[str]:
    """Model ids a JSON value refers to, in document order (repeats possible).

    A reference is an ``"IPY_MODEL_<id>"`` string (how widget traits serialize other widgets;
    skipped when ``strings`` is False) or a widget-view mime bundle ``{model_id}`` (how outputs,
    including an Output widget's ``outputs``, show a widget).
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if strings and item.startswith(MODEL_PREFIX) and len(item) > len(MODEL_PREFIX):
                yield item[len(MODEL_PREFIX) :]
        elif isinstance(item, dict):
            if WIDGET_VIEW_MIME in item:
                model_id = _view_id(item[WIDGET_VIEW_MIME])
                if model_id is not None:
                    yield model_id
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def view_model_ids(notebook: Mapping[str, Any]) -> list[str]:
    """Models the notebook's outputs display, in order of first appearance."""
    seen: dict[str, None] = {}
    for cell in notebook.get("cells") or ():
        if isinstance(cell, dict):
            for model_id in references(cell.get("outputs") or [], strings=False):
                seen.setdefault(model_id)
    return list(seen)


def closure(roots: Iterable[str], states: Mapping[str, Any]) -> list[str]:
    """``roots`` and every model they reference, transitively, depth first in reference order.

    ``states`` maps model id to that model's state; ids not in it are skipped (their state is
    unknown, so they cannot be saved).
    """
    found: dict[str, None] = {}
    stack = list(reversed(list(roots)))
    while stack:
        model_id = stack.pop()
        if model_id in found or model_id not in states:
            continue
        found[model_id] = None
        stack.extend(reversed([ref for ref in references(states[model_id]) if ref not in found]))
    return list(found)


def linked_models(selected: Collection[str], states: Mapping[str, Any]) -> list[str]:
    """View-less models whose references all lie in ``selected`` (jslink/jsdlink links).

    ipywidgets' own ``embed.dependency_state`` adds such links the same way, so linked
    widgets stay linked in a static page.
    """
    linked = []
    for model_id, state in states.items():
        if model_id in selected or not isinstance(state, dict):
            continue
        if state.get("_view_name") is not None:
            continue
        refs = set(references(state))
        if refs and refs <= set(selected):
            linked.append(model_id)
    return linked


def document_of(notebook: Mapping[str, Any]) -> Document | None:
    """The notebook's saved widget-state document, or None if absent, malformed or empty."""
    metadata = notebook.get("metadata")
    widgets = metadata.get("widgets") if isinstance(metadata, dict) else None
    document = widgets.get(WIDGET_STATE_MIME) if isinstance(widgets, dict) else None
    if not isinstance(document, dict):
        return None
    state = document.get("state")
    return document if isinstance(state, dict) and state else None


def put_document(notebook: dict[str, Any], document: Document | None) -> None:
    """Store ``document`` in the notebook; None or an empty state removes the key.

    ``metadata.widgets`` is dropped when nothing else is left in it, so a notebook without
    widgets gains no metadata.
    """
    metadata = notebook.setdefault("metadata", {})
    widgets = metadata.get("widgets")
    if document is not None and document.get("state"):
        if not isinstance(widgets, dict):
            widgets = metadata["widgets"] = {}
        widgets[WIDGET_STATE_MIME] = document
        return
    if isinstance(widgets, dict):
        widgets.pop(WIDGET_STATE_MIME, None)
        if not widgets:
            del metadata["widgets"]


def digest(document: Document) -> str:
    """A digest of a document's content (key order and whitespace do not matter)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode("utf-8"))


def carried_entries(
    roots: Sequence[str], source: Document | None, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """Entries of ``source`` needed to render ``roots`` (closure plus links), minus ``exclude``."""
    if source is None or not roots:
        return {}
    entries = source.get("state")
    if not isinstance(entries, dict):
        return {}
    states = {
        model_id: entry.get("state", {})
        for model_id, entry in entries.items()
        if isinstance(entry, dict) and model_id not in exclude
    }
    ids = closure(roots, states)
    ids += linked_models(ids, states)
    return {model_id: entries[model_id] for model_id in ids}


@dataclass
class Fitted:
    """A document cut down to fit ``max_bytes`` (sizes in bytes of compact UTF-8 JSON; None
    when there was no cap, so nothing was measured)."""

    document: Document
    size: int | None
    full_size: int | None
    dropped: list[str] = field(default_factory=list)
    dropped_roots: list[str] = field(default_factory=list)


def fit(document: Document, roots: Sequence[str], max_bytes: int) -> Fitted:
    """Keep whole views, in ``roots`` order, while the document stays within ``max_bytes``.

    Each root brings the models it needs that no earlier kept root brought; a root whose models
    do not fit is dropped whole (later, smaller ones may still fit). Models no root reaches come
    last, one at a time. A kept model that references a dropped one is dropped too, so every
    saved view has its dependencies. ``max_bytes`` <= 0 means no cap.
    """
    if max_bytes <= 0:
        return Fitted(document, None, None)
    entries: dict[str, Any] = document.get("state") or {}
    full_size = encoded_size(document)
    if full_size <= max_bytes:
        return Fitted(document, full_size, full_size)
    states = {mid: e.get("state", {}) if isinstance(e, dict) else {} for mid, e in entries.items()}
    groups: list[list[str]] = []
    placed: set[str] = set()
    for root in [*roots, *entries]:
        group = [mid for mid in closure([root], states) if mid not in placed]
        if group:
            placed.update(group)
            groups.append(group)
    sizes = {mid: encoded_size({mid: entry}) - 1 for mid, entry in entries.items()}
    used = encoded_size(new_document())
    kept: dict[str, None] = {}
    for group in groups:
        cost = sum(sizes[mid] for mid in group)
        if used + cost <= max_bytes:
            used += cost
            kept.update(dict.fromkeys(group))
    changed = True
    while changed:
        changed = False
        for mid in list(kept):
            if any(ref in entries and ref not in kept for ref in references(states[mid])):
                del kept[mid]
                changed = True
    result = new_document({mid: entries[mid] for mid in entries if mid in kept})
    for key, value in document.items():
        if key != "state":
            result[key] = value
    dropped = [mid for mid in entries if mid not in kept]
    dropped_roots = [root for root in roots if root in entries and root not in kept]
    return Fitted(result, encoded_size(result), full_size, dropped, dropped_roots)
