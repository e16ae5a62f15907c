"""core/table.py: the widget table's models, shared buffers, snapshot and document forms."""

from __future__ import annotations

import base64

import pytest

from jupyter_widget_relay.core.buffers import TraitValue, split_state
from jupyter_widget_relay.core.messages import MessageError
from jupyter_widget_relay.core.table import WidgetTable
from jupyter_widget_relay.core.trait_sync import TraitSync

from .helpers import model_state


def test_table_dedups_buffers_across_models_and_releases_them() -> None:
    table = WidgetTable()
    big = b"\x00" * 100_000
    for model_id in ("m1", "m2"):
        table.open(model_id, split_state(model_state(), [["value"]], [big], table.store))
    assert table.store.unique_bytes == 100_000
    assert table.store.referenced_bytes == 200_000
    table.apply(table.get("m1"), split_state({}, [["value"]], [b"new"], table.store))
    assert table.store.unique_bytes == 100_003
    table.close("m2")
    assert table.store.unique_bytes == 3
    assert len(table.store) == 1


def test_snapshot_and_document_forms() -> None:
    table = WidgetTable()
    table.open("m", split_state(model_state(format="png"), [["value"]], [b"PNG"], table.store))
    states, paths, data = table.snapshot()
    assert states["m"]["model_name"] == "ImageModel"
    assert states["m"]["state"]["format"] == "png" and "value" not in states["m"]["state"]
    assert paths == [["m", "state", "value"]] and data == [b"PNG"]
    document = table.document()
    [buffer] = document["state"]["m"]["buffers"]
    assert buffer == {
        "path": ["value"],
        "data": base64.b64encode(b"PNG").decode(),
        "encoding": "base64",
    }
    readable = table.get("m").readable_state()
    assert readable["value"]["$buffer"]["bytes"] == 3


def test_comm_open_without_model_name_is_rejected() -> None:
    table = WidgetTable()
    with pytest.raises(MessageError, match="_model_name"):
        table.open("m", split_state({"value": 1}, [], [], table.store))


def test_trait_sync_lives_on_its_model_until_the_model_is_replaced() -> None:
    """Peer sync keeps each trait's TraitSync on the WidgetModel: absent for a fresh
    model, kept across the table's changes, gone with the model it belongs to."""
    table = WidgetTable()
    model = table.open("m", split_state(model_state(value=1), [], [], table.store))
    assert model.sync is None
    sync = TraitSync(confirmed=model.trait("value"), broadcast=model.trait("value"))
    model.sync = {"value": sync}
    table.apply(model, split_state({"value": 2}, [], [], table.store))
    table.set_trait(model, "description", TraitValue("d"))
    assert table.get("m") is model and model.sync == {"value": sync}
    assert sync.confirmed == TraitValue(1), "the table does not change the bookkeeping"
    reopened = table.open("m", split_state(model_state(value=3), [], [], table.store))
    assert reopened is not model and reopened.sync is None
