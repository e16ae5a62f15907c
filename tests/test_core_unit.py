"""The pure core on its own: buffers, table, wire formats and relay routing (no server)."""

from __future__ import annotations

import base64
import json

import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

from jupyter_widget_relay.core import wire
from jupyter_widget_relay.core.buffers import BufferStore, join_state, split_state
from jupyter_widget_relay.core.messages import Envelope, MessageError, comm_msg
from jupyter_widget_relay.core.relay import KernelRelay
from jupyter_widget_relay.core.table import WidgetTable

from .simulation import KERNEL_SESSION, forwards, header


class Port:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.sent: list[Envelope] = []

    def send(self, envelope: Envelope) -> None:
        self.sent.append(envelope)


def model_state(**extra: object) -> dict[str, object]:
    return {
        "_model_name": "ImageModel",
        "_model_module": "@jupyter-widgets/controls",
        "_model_module_version": "2.0.0",
        **extra,
    }


def test_split_and_join_round_trip_nested_buffers() -> None:
    store = BufferStore()
    state = {"a": 1, "x": {"keep": 2}, "y": [None, 3]}
    paths = [["img"], ["x", "data"], ["y", 0]]
    traits = split_state(state, paths, [b"I", b"D", b"Y"], store)
    assert set(traits) == {"a", "x", "y", "img"}
    joined, joined_paths, data = join_state(sorted(traits.items()))
    assert joined == state
    assert sorted(zip(map(tuple, joined_paths), data, strict=True)) == sorted(
        [(("img",), b"I"), (("x", "data"), b"D"), (("y", 0), b"Y")]
    )


@pytest.mark.parametrize(
    "paths",
    [
        [["y", 5]],
        [["nope", "deeper"]],
        [[]],
        [[3]],
        "notalist",
        [["x", 0]],
        [["y", "k"]],
    ],
)
def test_buffer_paths_that_point_nowhere_are_rejected(paths: object) -> None:
    with pytest.raises(MessageError):
        split_state({"x": {}, "y": [None]}, paths, [b"1"], BufferStore())


def test_fewer_buffers_than_paths_is_rejected() -> None:
    with pytest.raises(MessageError, match="only 0 buffers"):
        split_state({}, [["a"]], [], BufferStore())


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


def test_v1_wire_matches_jupyter_server() -> None:
    parts = [b'{"msg_type":"x"}', b"{}", b"{}", b'{"a":1}', b"BUF1", b"BUF2"]
    frame = wire.encode_v1("iopub", parts)
    assert frame == serialize_msg_to_ws_v1(parts, "iopub")
    assert wire.parse_v1(frame) == deserialize_msg_from_ws_v1(frame)


def test_legacy_wire_matches_jupyter_server() -> None:
    env = Envelope(
        {"msg_type": "comm_msg", "msg_id": "1"},
        {},
        content={"a": 1},
        metadata={},
        buffers=[b"xyz"],
        channel="shell",
    )
    frame = wire.legacy_frame(env)
    assert isinstance(frame, bytes)
    decoded = deserialize_binary_message(frame)
    assert decoded["content"] == {"a": 1} and decoded["buffers"] == [b"xyz"]
    again = wire.parse_legacy(
        serialize_binary_message(
            {
                "header": {"msg_type": "comm_msg", "msg_id": "2"},
                "parent_header": {},
                "content": {"b": 2},
                "metadata": {},
                "channel": "shell",
                "buffers": [b"q"],
            }
        )
    )
    assert again.content == {"b": 2} and again.buffers == [b"q"]


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x01" * 7,
        (3).to_bytes(8, "little") + b"\x00" * 24,
        (6).to_bytes(8, "little") + (9999).to_bytes(8, "little") * 6,
        wire.encode_v1("shell", [b"not json", b"{}", b"{}", b"{}"]),
        wire.encode_v1("shell", [b"[]", b"{}", b"{}", b"{}"]),
        wire.encode_v1("shell", [b'{"msg_type": 3}', b"{}", b"{}", b"{}"]),
    ],
)
def test_bad_v1_frames_raise_message_errors(frame: bytes) -> None:
    with pytest.raises(MessageError):
        channel, parts = wire.parse_v1(frame)
        wire.envelope_from_parts(channel, parts)


@pytest.mark.parametrize(
    "frame", ["{", "[]", '{"header": 1}', '{"header": {}}', b"\x00\x00", b"\x00\x00\x00\x09abc"]
)
def test_bad_legacy_frames_raise_message_errors(frame: bytes | str) -> None:
    with pytest.raises(MessageError):
        wire.parse_legacy(frame)


def kernel_open(relay: KernelRelay, model_id: str, **state: object) -> None:
    relay.handle_kernel_message(
        Envelope(
            header("comm_open", KERNEL_SESSION),
            {},
            content={
                "comm_id": model_id,
                "target_name": "jupyter.widget",
                "data": {"state": model_state(**state), "buffer_paths": []},
            },
        )
    )


def test_relay_routes_kernel_messages_to_all_and_snapshots_to_one() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    kernel_open(relay, "m", value=1)
    assert len(a.sent) == len(b.sent) == 1
    control = Envelope(
        header("comm_open", "a"),
        {},
        content={"comm_id": "ctl", "target_name": "jupyter.widget.control", "data": {}},
    )
    assert forwards(relay, a, control) is False
    request = Envelope(
        header("comm_msg", "a"),
        {},
        content={"comm_id": "ctl", "data": {"method": "request_states"}},
    )
    assert forwards(relay, a, request) is False
    reply, release = a.sent[-2:]
    assert release.content == {"execution_state": "idle"}, "the request's future completes"
    assert release.parent_header["msg_id"] == request.msg_id
    assert release.parent_header["msg_type"] == "comm_info_request", "an untracked type"
    assert reply.content["data"]["method"] == "update_states"
    assert reply.parent_header["msg_id"] == request.msg_id
    assert reply.header["session"] == KERNEL_SESSION, "frontends drop other sessions' messages"
    assert len(b.sent) == 1
    close = Envelope(header("comm_close", "a"), {}, content={"comm_id": "ctl", "data": {}})
    assert forwards(relay, a, close) is False
    per_model = Envelope(
        header("comm_msg", "b"), {}, content={"comm_id": "m", "data": {"method": "request_state"}}
    )
    assert forwards(relay, b, per_model) is False
    assert b.sent[-1].msg_type == "status"
    assert b.sent[-2].content["data"] == {
        "method": "update",
        "state": model_state(value=1),
        "buffer_paths": [],
    }


def test_unknown_comms_and_custom_messages_pass_through() -> None:
    relay = KernelRelay("k")
    a = Port("a")
    relay.attach(a)
    kernel_open(relay, "m")
    custom = Envelope(
        header("comm_msg", "a"),
        {},
        content={"comm_id": "m", "data": {"method": "custom", "content": {}}},
    )
    assert forwards(relay, a, custom) is True
    other = Envelope(header("comm_msg", "a"), {}, content={"comm_id": "zzz", "data": {}})
    assert forwards(relay, a, other) is True
    version = relay.table.get("m").version
    relay.handle_kernel_message(
        comm_msg("m", {"method": "custom", "content": {"x": 1}}, session=KERNEL_SESSION)
    )
    assert relay.table.get("m").version == version
    assert a.sent[-1].content["data"]["method"] == "custom"


def test_malformed_client_widget_message_is_rejected_and_counted() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    kernel_open(relay, "m", value=1)
    bad = Envelope(
        header("comm_msg", "a"),
        {},
        content={
            "comm_id": "m",
            "data": {"method": "update", "state": {"value": 2}, "buffer_paths": [["value", 9]]},
        },
    )
    assert forwards(relay, a, bad) is False
    assert relay.counters["rejected", "client", "malformed"] == 1
    assert relay.table.get("m").state["value"] == 1
    assert len(b.sent) == 1


def test_client_closing_a_widget_it_opened_tells_peers() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    opened = Envelope(
        header("comm_open", "a"),
        {"version": "2.1.0"},
        content={
            "comm_id": "m",
            "target_name": "jupyter.widget",
            "data": {"state": model_state(), "buffer_paths": []},
        },
    )
    assert forwards(relay, a, opened) is True
    assert "m" in relay.table and not relay.table.get("m").opened_by_kernel
    close = Envelope(header("comm_close", "a"), {}, content={"comm_id": "m", "data": {}})
    assert forwards(relay, a, close) is True
    assert "m" not in relay.table
    assert [m.msg_type for m in b.sent] == ["comm_open", "comm_close"] and not a.sent


def test_a_client_cannot_close_a_model_the_kernel_opened() -> None:
    """JupyterLab closes every comm it has no handler for: one page without a widget
    manager must not end the kernel's widget for everyone."""
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    kernel_open(relay, "m")
    close = Envelope(header("comm_close", "a"), {}, content={"comm_id": "m", "data": {}})
    assert forwards(relay, a, close) is False
    assert "m" in relay.table
    assert [m.msg_type for m in b.sent] == ["comm_open"]
    assert relay.counters["rejected", "client", "kernel_model"] == 1
    notice = [m for m in a.sent if m.msg_type == "stream"]
    assert "opened by the kernel" in notice[0].content["text"]


def test_reset_forgets_models_and_marks_changes() -> None:
    calls = []
    relay = KernelRelay("k", on_dirty=lambda: calls.append(1))
    kernel_open(relay, "m")
    models, _ = relay.take_changes()
    assert models == {"m"} and calls == [1]
    relay.reset()
    assert len(relay.table) == 0
    assert relay.take_changes()[0] == {"m"}
    json.dumps(relay.summary())


def test_output_writes_are_stripped_also_as_buffers() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    output = {"_model_name": "OutputModel", "_model_module": "@jupyter-widgets/output"}
    kernel_open(relay, "out", outputs=[], msg_id="", **output)
    write = Envelope(
        header("comm_msg", "a"),
        {},
        content={
            "comm_id": "out",
            "data": {
                "method": "update",
                "state": {"msg_id": "x"},
                "buffer_paths": [["outputs"], ["extra"]],
            },
        },
        buffers=[b"not outputs", b"kept"],
    )
    assert forwards(relay, a, write) is True
    model = relay.table.get("out")
    assert model.state["outputs"] == [] and "outputs" not in model.buffers
    assert model.state["msg_id"] == "x"
    assert write.content["data"]["buffer_paths"] == [["extra"]]
    assert write.buffers == [b"kept"]
    assert relay.counters["relay", "output_write_dropped"] == 1
    only_outputs = Envelope(
        header("comm_msg", "a"),
        {},
        content={
            "comm_id": "out",
            "data": {"method": "update", "state": {}, "buffer_paths": [["outputs"]]},
        },
        buffers=[b"x"],
    )
    assert forwards(relay, a, only_outputs) is False, "nothing left to forward"


def test_control_comms_per_client_are_bounded() -> None:
    from jupyter_widget_relay.core.client_requests import MAX_CONTROL_COMMS_PER_CLIENT

    relay = KernelRelay("k")
    a = Port("a")
    relay.attach(a)
    kernel_open(relay, "m", value=1)
    for index in range(MAX_CONTROL_COMMS_PER_CLIENT + 5):
        opened = Envelope(
            header("comm_open", "a"),
            {},
            content={"comm_id": f"ctl{index}", "target_name": "jupyter.widget.control"},
        )
        assert forwards(relay, a, opened) is False
    assert len(relay._clients["a"].control_comms) == MAX_CONTROL_COMMS_PER_CLIENT
    newest = f"ctl{MAX_CONTROL_COMMS_PER_CLIENT + 4}"
    request = Envelope(
        header("comm_msg", "a"),
        {},
        content={"comm_id": newest, "data": {"method": "request_states"}},
    )
    assert forwards(relay, a, request) is False
    assert a.sent[-2].content["data"]["method"] == "update_states"
    oldest = Envelope(
        header("comm_msg", "a"), {}, content={"comm_id": "ctl0", "data": {"method": "x"}}
    )
    assert forwards(relay, a, oldest) is True, "a forgotten control comm is unknown"
