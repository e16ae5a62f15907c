"""Trait defaults of the installed widget packages' model classes, for saving lean state.

JupyterLab's "Save Widget State Automatically" and ipywidgets' own embedding
(``get_state(drop_defaults=True)``) leave out trait values equal to the model class's
defaults; a frontend that loads the state fills them in from the same defaults. The
server knows a model only by its wire state, so it looks the class up in ipywidgets'
registry of model classes (by module, module version, model and view name) and takes
each synced trait's class-level default, without creating a widget. Traits whose default
is computed per instance (child widgets such as ``layout``), binary values and models of
unknown classes (anywidget and other custom widgets) keep their full state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from . import upstream

log = logging.getLogger(__name__)

_UNKNOWN = object()


def _json_like(value: Any) -> Any:
    """The value as it arrives in a model's JSON state (tuples are lists), or _UNKNOWN."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_json_like(item) for item in value]
        return _UNKNOWN if any(item is _UNKNOWN for item in items) else items
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        entries = {key: _json_like(item) for key, item in value.items()}
        return _UNKNOWN if any(item is _UNKNOWN for item in entries.values()) else entries
    return _UNKNOWN


def _class_default(trait: Any) -> Any:
    import traitlets

    if isinstance(trait, (traitlets.Instance, traitlets.Union)):
        return _UNKNOWN  # made per instance (a child widget), or ambiguous
    value = trait.default_value
    if value is traitlets.Undefined:
        if not isinstance(trait, (traitlets.Container, traitlets.Dict)):
            return _UNKNOWN
        value = trait.make_dynamic_default()
    return _json_like(value)


def _leaves(tree: Any) -> Iterator[Any]:
    if isinstance(tree, dict):
        for branch in tree.values():
            yield from _leaves(branch)
    else:
        yield tree


@lru_cache(maxsize=1)
def _registered() -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """(model module, model module version, model name, view name) -> trait defaults."""
    found: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for module, versions in (upstream.widget_registry() or {}).items():
        for names in versions.values():
            for model_name, views in names.items():
                for cls in _leaves(views):
                    try:
                        traits = cls.class_traits(sync=True)
                        key = (
                            module,
                            str(traits["_model_module_version"].default_value),
                            model_name,
                            str(traits["_view_name"].default_value),
                        )
                        found[key] = {name: _class_default(t) for name, t in traits.items()}
                    except Exception as error:  # a class the registry holds but we cannot read
                        log.debug("widget relay: no defaults for %s: %s", cls, error)
    return found


def default_traits(
    model_module: str, model_module_version: str, model_name: str, state: dict[str, Any]
) -> set[str]:
    """Names of ``state``'s traits whose value is the model class's default."""
    view_name = state.get("_view_name")
    defaults = _registered().get((model_module, model_module_version, model_name, str(view_name)))
    if defaults is None:
        return set()
    return {
        name
        for name, value in state.items()
        if name in defaults
        and defaults[name] is not _UNKNOWN
        and defaults[name] == value
        # bool == int in Python: compare types too, as JSON would
        and type(defaults[name]) is type(value)
    }
