"""The authoritative per-kernel widget table: one entry per live widget model."""

from __future__ import annotations

import base64
import copy
import json
import sys
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .buffers import MISSING, Blob, BufferStore, Path, TraitValue, join_state, put_buffers
from .messages import MessageError

if TYPE_CHECKING:
    from .trait_sync import TraitSync


_INTERN_MAX = 64  # characters: trait names, model names, enum-like values


@dataclass(slots=True, eq=False)
class WidgetModel:
    model_id: str
    model_name: str
    model_module: str
    model_module_version: str
    state: dict[str, Any]
    buffers: dict[str, tuple[tuple[Path, Blob], ...]]
    version: int = 0
    last_change: float = field(default_factory=time.time)
    sync: dict[str, TraitSync] | None = None
    opened_by_kernel: bool = True  # False for a model a frontend opened (a client comm_open)
    _state_bytes: int = -1

    def has_trait(self, name: str) -> bool:
        return name in self.state or name in self.buffers

    def trait(self, name: str) -> TraitValue:
        return TraitValue(self.state.get(name, MISSING), self.buffers.get(name, ()))

    def traits(self) -> Iterator[tuple[str, TraitValue]]:
        for name in self.state.keys() | self.buffers.keys():
            yield name, self.trait(name)

    def wire_state(
        self, prefix: Path = ()
    ) -> tuple[dict[str, Any], list[list[str | int]], list[bytes]]:
        if not self.buffers:
            return dict(self.state), [], []
        return join_state(self.traits(), prefix)

    @property
    def buffer_bytes(self) -> int:
        return sum(len(blob) for blobs in self.buffers.values() for _, blob in blobs)

    @property
    def state_bytes(self) -> int:
        if self._state_bytes < 0:
            self._state_bytes = len(json.dumps(self.state, separators=(",", ":"), default=str))
        return self._state_bytes

    def header(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_module": self.model_module,
            "model_module_version": self.model_module_version,
        }

    def readable_state(self) -> dict[str, Any]:
        """State for people: buffers replaced by their size and digest."""
        state = copy.deepcopy(self.state)
        paths = [path for blobs in self.buffers.values() for path, _ in blobs]
        marks = [
            {"$buffer": {"bytes": len(blob), "sha256": blob.digest}}
            for blobs in self.buffers.values()
            for _, blob in blobs
        ]
        put_buffers(state, paths, marks)
        return state


class WidgetTable:
    """Models by id, with their state in wire form and buffers held once in ``store``."""

    def __init__(self) -> None:
        self.models: dict[str, WidgetModel] = {}
        self.store = BufferStore()
        # JSON state bytes, kept up to date lazily: each model's size as last counted, and
        # the models changed since (each is measured again only when the total is read)
        self._counted: dict[str, int] = {}
        self._changed: set[str] = set()
        self._total = 0

    def __len__(self) -> int:
        return len(self.models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self.models

    def get(self, model_id: str) -> WidgetModel | None:
        return self.models.get(model_id)

    def open(
        self, model_id: str, traits: dict[str, TraitValue], *, by_kernel: bool = True
    ) -> WidgetModel:
        """Add a model from a comm_open's split state (replacing one with the same id)."""
        names = {}
        for key in ("_model_name", "_model_module", "_model_module_version"):
            value = traits.get(key)
            if value is None or not isinstance(value.json, str):
                self._release(traits.values())
                raise MessageError(f"widget comm_open state lacks a string {key!r}")
            names[key] = value.json
        self.close(model_id)
        model = WidgetModel(
            model_id=model_id,
            model_name=names["_model_name"],
            model_module=names["_model_module"],
            model_module_version=names["_model_module_version"],
            state={},
            buffers={},
            opened_by_kernel=by_kernel,
        )
        self._assign(model, traits)
        self.models[model_id] = model
        return model

    def apply(self, model: WidgetModel, traits: dict[str, TraitValue]) -> None:
        """Set traits on a model; the table takes over the references in ``traits``."""
        self._assign(model, traits)
        model.version += 1
        model.last_change = time.time()

    def set_trait(self, model: WidgetModel, name: str, value: TraitValue) -> None:
        """Set one trait to a value owned elsewhere (the table takes its own references)."""
        for _, blob in value.buffers:
            self.store.retain(blob)
        self.apply(model, {name: value})

    def _assign(self, model: WidgetModel, traits: dict[str, TraitValue]) -> None:
        for name, value in traits.items():
            for _, blob in model.buffers.pop(name, ()):
                self.store.release(blob)
            if value.json is MISSING:
                model.state.pop(name, None)
            else:
                # Every model of a class repeats the same trait names and many of the same
                # short strings ("@jupyter-widgets/controls", "IntSliderModel", ...); each
                # message's JSON parse makes new copies. Interned, a model holds references
                # (interned strings are freed with their last reference: no growth).
                json_value = value.json
                if type(json_value) is str and len(json_value) <= _INTERN_MAX:
                    json_value = sys.intern(json_value)
                model.state[sys.intern(name) if type(name) is str else name] = json_value
            if value.buffers:
                model.buffers[name] = value.buffers
        model._state_bytes = -1
        self._changed.add(model.model_id)

    def _release(self, values: Any) -> None:
        for value in values:
            for _, blob in value.buffers:
                self.store.release(blob)

    def close(self, model_id: str) -> WidgetModel | None:
        model = self.models.pop(model_id, None)
        self._total -= self._counted.pop(model_id, 0)
        self._changed.discard(model_id)
        if model is not None:
            for blobs in model.buffers.values():
                for _, blob in blobs:
                    self.store.release(blob)
        return model

    def clear(self) -> None:
        self.models.clear()
        self.store.clear()
        self._counted.clear()
        self._changed.clear()
        self._total = 0

    def snapshot(self) -> tuple[dict[str, Any], list[list[str | int]], list[bytes]]:
        """All models in the ``update_states`` form ipywidgets' control comm uses: each
        buffer path is ``[model_id, "state", ...path]``, into the model's entry (as the
        kernel's ``_remove_buffers`` of the whole states dict makes it, and as
        jupyterlab_widgets' ``_loadFromKernel`` puts the buffers back)."""
        states: dict[str, Any] = {}
        paths: list[list[str | int]] = []
        data: list[bytes] = []
        for model_id, model in self.models.items():
            state, model_paths, model_data = model.wire_state((model_id, "state"))
            entry = model.header()
            entry["state"] = state
            states[model_id] = entry
            paths.extend(model_paths)
            data.extend(model_data)
        return states, paths, data

    def document(
        self,
        model_ids: Any = None,
        leave_out: Callable[[WidgetModel], Container[str]] | None = None,
    ) -> dict[str, Any]:
        """The ``application/vnd.jupyter.widget-state+json`` v2 document (buffers base64);
        ``leave_out`` names a model's JSON traits not to write (e.g. class defaults)."""
        state: dict[str, Any] = {}
        for model_id, model in self.models.items():
            if model_ids is not None and model_id not in model_ids:
                continue
            model_state, paths, data = model.wire_state()
            if leave_out is not None:
                dropped = leave_out(model)
                if dropped:
                    model_state = {k: v for k, v in model_state.items() if k not in dropped}
            entry = model.header()
            entry["state"] = model_state
            if paths:
                entry["buffers"] = [
                    {
                        "path": path,
                        "data": base64.standard_b64encode(blob).decode("ascii"),
                        "encoding": "base64",
                    }
                    for path, blob in zip(paths, data, strict=True)
                ]
            state[model_id] = entry
        return {"version_major": 2, "version_minor": 0, "state": state}

    @property
    def state_bytes(self) -> int:
        """Bytes of all models' JSON state (compact JSON); measures only changed models."""
        for model_id in self._changed:
            model = self.models.get(model_id)
            if model is not None:
                size = model.state_bytes
                self._total += size - self._counted.get(model_id, 0)
                self._counted[model_id] = size
        self._changed.clear()
        return self._total

    @property
    def buffer_bytes(self) -> int:
        return self.store.unique_bytes
