"""core/saved_state.py: which saved models a notebook's views need, the document in a
notebook's metadata, and fitting a document under a size cap."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_widget_relay.core.saved_state import (
    WIDGET_STATE_MIME,
    carried_entries,
    closure,
    digest,
    document_of,
    encoded_size,
    fit,
    linked_models,
    new_document,
    put_document,
    references,
    view_model_ids,
)


def ref(model_id: str) -> str:
    return f"IPY_MODEL_{model_id}"


def entry(state: dict[str, Any], pad: int = 0) -> dict[str, Any]:
    return {
        "model_name": "M",
        "model_module": "m",
        "model_module_version": "1",
        "state": {**state, "pad": "x" * pad},
    }


def view(model_id: str) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {
            "text/plain": "w",
            "application/vnd.jupyter.widget-view+json": {
                "model_id": model_id,
                "version_major": 2,
                "version_minor": 0,
            },
        },
    }


def test_references_find_model_strings_and_view_bundles() -> None:
    state = {
        "children": [ref("a"), ref("b")],
        "layout": ref("l"),
        "source": [ref("c"), "value"],
        "nested": {"deep": [[{"x": ref("d")}]]},
        "outputs": [view("e")],
        "text": "IPY_MODEL_",
        "other": "not IPY_MODEL_x",
    }
    assert list(references(state)) == ["a", "b", "l", "c", "d", "e"]
    assert list(references(state, strings=False)) == ["e"]
    as_text = {"application/vnd.jupyter.widget-view+json": json.dumps({"model_id": "t"})}
    assert list(references(as_text)) == ["t"]


def test_view_model_ids_in_notebook_order_without_repeats() -> None:
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "IPY_MODEL_zz"},
            {"cell_type": "code", "outputs": [view("b"), {"output_type": "stream"}]},
            {"cell_type": "code", "outputs": [view("a"), view("b")]},
            {"cell_type": "code", "outputs": [{"text": ref("printed")}]},
        ]
    }
    assert view_model_ids(nb) == ["b", "a"]


def test_closure_is_transitive_ordered_and_skips_unknown_ids() -> None:
    states = {
        "box": {"children": [ref("s1"), ref("out"), ref("gone")], "layout": ref("L")},
        "s1": {"layout": ref("L"), "style": ref("S")},
        "out": {"outputs": [view("inner")]},
        "inner": {"layout": ref("L2")},
        "L": {},
        "S": {},
        "L2": {},
        "loop": {"x": ref("loop2")},
        "loop2": {"x": ref("loop")},
        "hidden": {},
    }
    assert closure(["box"], states) == ["box", "s1", "L", "S", "out", "inner", "L2"]
    assert closure(["loop", "missing"], states) == ["loop", "loop2"]
    assert closure([], states) == []


def test_linked_models_are_viewless_models_between_saved_ones() -> None:
    states = {
        "a": {"_view_name": "IntSliderView"},
        "b": {"_view_name": "IntSliderView"},
        "link": {"_view_name": None, "source": [ref("a"), "value"], "target": [ref("b"), "v"]},
        "half": {"_view_name": None, "source": [ref("a"), "value"], "target": [ref("z"), "v"]},
        "viewed": {"_view_name": "BoxView", "children": [ref("a")]},
        "plain": {"_view_name": None},
    }
    assert linked_models(["a", "b"], states) == ["link"]


def test_linked_models_leave_out_models_already_selected() -> None:
    states = {
        "a": {"_view_name": "IntSliderView"},
        "b": {"_view_name": "IntSliderView"},
        "link": {"_view_name": None, "source": [ref("a"), "value"], "target": [ref("b"), "v"]},
    }
    assert linked_models(["a", "b", "link"], states) == []


def test_put_document_sets_and_removes_without_leaving_empty_metadata() -> None:
    nb: dict[str, Any] = {"metadata": {"kernelspec": {}}}
    doc = new_document({"a": entry({})})
    put_document(nb, doc)
    assert document_of(nb) == doc
    put_document(nb, new_document())
    assert "widgets" not in nb["metadata"]
    nb["metadata"]["widgets"] = {"other/mime": 1, WIDGET_STATE_MIME: doc}
    put_document(nb, None)
    assert nb["metadata"]["widgets"] == {"other/mime": 1}
    assert document_of({"metadata": {"widgets": {WIDGET_STATE_MIME: {"state": {}}}}}) is None


def test_fit_without_cap_or_under_it_keeps_everything() -> None:
    doc = new_document({"a": entry({}, 100), "b": entry({}, 100)})
    unmeasured = fit(doc, ["a"], 0)
    assert unmeasured.document is doc and unmeasured.size is None
    fitted = fit(doc, ["a"], encoded_size(doc))
    assert fitted.dropped == [] and fitted.size == fitted.full_size == encoded_size(doc)


def test_fit_drops_whole_views_and_keeps_dependencies_consistent() -> None:
    doc = new_document(
        {
            "v1": entry({"children": [ref("shared"), ref("c1")]}),
            "shared": entry({}, 50),
            "c1": entry({}, 50),
            "big": entry({"layout": ref("shared"), "child": ref("bigchild")}, 400),
            "bigchild": entry({}, 400),
            "v3": entry({"layout": ref("shared")}, 10),
            "link": entry({"_view_name": None, "source": [ref("big")], "target": [ref("v1")]}),
        }
    )
    small = new_document({k: doc["state"][k] for k in ("v1", "shared", "c1", "v3")})
    cap = encoded_size(small) + 20
    fitted = fit(doc, ["v1", "big", "v3"], cap)
    assert list(fitted.document["state"]) == ["v1", "shared", "c1", "v3"]
    assert fitted.dropped == ["big", "bigchild", "link"]
    assert fitted.dropped_roots == ["big"]
    assert fitted.size == encoded_size(fitted.document) <= cap
    assert fitted.full_size == encoded_size(doc)
    # Nothing fits: everything is dropped, and the document stays valid.
    tiny = fit(doc, ["v1", "big", "v3"], 10)
    assert tiny.document["state"] == {} and tiny.dropped_roots == ["v1", "big", "v3"]


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    edges=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=25),
    pads=st.lists(st.integers(0, 300), min_size=10, max_size=10),
    roots=st.lists(st.integers(0, 9), max_size=5),
    cap=st.integers(0, 4000),
)
def test_fit_property_every_kept_model_has_its_references(
    edges: list[tuple[int, int]], pads: list[int], roots: list[int], cap: int
) -> None:
    refs: dict[str, list[str]] = {f"m{i}": [] for i in range(10)}
    for a, b in edges:
        refs[f"m{a}"].append(ref(f"m{b}"))
    doc = new_document({k: entry({"r": v}, pads[int(k[1:])]) for k, v in refs.items()})
    fitted = fit(doc, [f"m{r}" for r in roots], cap)
    kept = fitted.document["state"]
    if cap <= 0:
        assert fitted.document is doc and fitted.size is None
        return
    assert fitted.size == encoded_size(fitted.document)
    assert fitted.size <= max(cap, encoded_size(new_document()))
    assert set(kept) | set(fitted.dropped) == set(doc["state"])
    assert not set(kept) & set(fitted.dropped)
    assert fitted.dropped_roots == [f"m{r}" for r in roots if f"m{r}" not in kept]
    for model_id in kept:
        assert all(r in kept for r in references(kept[model_id]["state"]))


def test_a_document_put_into_a_notebook_reads_back_after_a_json_round_trip() -> None:
    doc = new_document({"a": entry({"value": 1, "text": "\u00e9"}), "b": entry({})})
    nb: dict[str, Any] = {"cells": [], "metadata": {}}
    put_document(nb, doc)
    saved = json.loads(json.dumps(nb))
    assert document_of(saved) == doc
    assert digest(document_of(saved) or {}) == digest(doc)
    assert saved["metadata"]["widgets"] == {WIDGET_STATE_MIME: doc}


def test_document_of_ignores_missing_and_malformed_documents() -> None:
    for nb in (
        {},
        {"metadata": []},
        {"metadata": {"widgets": "x"}},
        {"metadata": {"widgets": {WIDGET_STATE_MIME: []}}},
        {"metadata": {"widgets": {WIDGET_STATE_MIME: {"state": []}}}},
    ):
        assert document_of(nb) is None, nb


def test_digest_ignores_key_order_and_sees_every_change() -> None:
    doc = new_document({"a": entry({"x": 1, "y": 2}), "b": entry({})})
    reordered = json.loads(json.dumps(doc, sort_keys=True))
    reordered["state"] = dict(reversed(list(reordered["state"].items())))
    assert digest(reordered) == digest(doc)
    changed = json.loads(json.dumps(doc))
    changed["state"]["a"]["state"]["x"] = 3
    assert digest(changed) != digest(doc)


def test_encoded_size_is_compact_utf8() -> None:
    assert encoded_size({"a": [1, 2]}) == len(b'{"a":[1,2]}')
    assert encoded_size("\u00e9") == len('"\u00e9"'.encode())


def test_carried_entries_are_the_roots_closure_and_links_minus_exclusions() -> None:
    source = new_document(
        {
            "box": entry({"_view_name": "BoxView", "children": [ref("s")]}),
            "s": entry({"_view_name": "SliderView", "layout": ref("L")}),
            "L": entry({"_view_name": None}),
            "t": entry({"_view_name": "TextView"}),
            "link": entry({"_view_name": None, "source": [ref("s")], "target": [ref("L")]}),
            "other": entry({"_view_name": "TextView"}),
        }
    )
    assert list(carried_entries(["box"], source)) == ["box", "s", "L", "link"]
    assert carried_entries(["box"], source)["s"] is source["state"]["s"]
    assert list(carried_entries(["box"], source, exclude={"s"})) == ["box"]
    assert carried_entries([], source) == {}
    assert carried_entries(["box"], None) == {}
    assert carried_entries(["box"], {"state": []}) == {}
