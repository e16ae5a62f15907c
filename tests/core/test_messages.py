"""core/messages.py: Envelope's lazy parsing, the messages the relay composes, comm_data,
and the JSON the relay accepts (what the kernel's Session could send back)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_widget_relay.core.messages import (
    CLIENT_MSG_TYPES,
    KERNEL_MSG_TYPES,
    MAX_JSON_DEPTH,
    PROTOCOL_VERSION,
    Envelope,
    MessageError,
    comm_data,
    comm_msg,
    compose,
    counted_type,
    load_json,
    new_header,
)


def raw(content: bytes | None = None, metadata: bytes | None = None, **kw: Any) -> Envelope:
    return Envelope(
        new_header("comm_msg", "s"), {}, raw_content=content, raw_metadata=metadata, **kw
    )


def test_content_is_parsed_once_on_first_read() -> None:
    calls: list[bytes] = []

    def unpack(data: bytes) -> Any:
        calls.append(data)
        return json.loads(data)

    env = raw(b'{"comm_id": "m"}', b'{"k": 1}', unpack=unpack)
    assert calls == []
    assert env.content == {"comm_id": "m"} and env.content is env.content
    assert env.metadata == {"k": 1} and env.metadata is env.metadata
    assert calls == [b'{"comm_id": "m"}', b'{"k": 1}']
    assert env.raw_content_size == len(b'{"comm_id": "m"}')


def test_missing_parts_read_as_empty_objects() -> None:
    env = raw()
    assert env.content == {} and env.metadata == {} and env.raw_content_size is None
    assert env.msg_type == "comm_msg" and env.channel == "iopub" and env.buffers == []


@pytest.mark.parametrize("content", [b"[1]", b'"text"', b"{", b'{"a": NaN}', b"\xff"])
def test_content_that_is_not_a_json_object_raises_message_error(content: bytes) -> None:
    env = raw(content)
    for _ in range(2):  # and again: nothing half-parsed is kept
        with pytest.raises(MessageError):
            _ = env.content


def test_another_unpackers_errors_become_message_errors() -> None:
    def failing(data: bytes) -> Any:
        raise ValueError("bad msgpack")

    def recursing(data: bytes) -> Any:
        raise RecursionError

    for unpack in (failing, recursing):
        with pytest.raises(MessageError, match="not valid JSON"):
            _ = raw(b"x", unpack=unpack).content


@pytest.mark.parametrize("metadata", [b"[1]", b"{", b'"x"'])
def test_unreadable_metadata_reads_as_empty(metadata: bytes) -> None:
    assert raw(b"{}", metadata).metadata == {}


def test_header_fields_and_parent_msg_id() -> None:
    env = Envelope({"msg_type": "status", "msg_id": "1"}, {"msg_id": "p"})
    assert (env.msg_type, env.msg_id, env.parent_msg_id) == ("status", "1", "p")
    assert Envelope({}, {}).parent_msg_id is None and Envelope({}, {}).msg_type == ""
    assert Envelope({}, {"msg_id": 5}).parent_msg_id is None


def test_replace_content_drops_the_raw_part_and_cached_wire_forms() -> None:
    env = raw(b'{"a": 1}')
    env.wire["v1"] = b"cached"
    env.replace_content({"b": 2})
    assert env.content == {"b": 2} and env.raw_content_size is None and env.wire == {}


def test_compose_makes_a_relay_message_in_the_kernels_session() -> None:
    parent = new_header("comm_msg", "client")
    env = compose(
        "stream",
        {"name": "stderr", "text": "x"},
        session="kernel",
        parent=parent,
        buffers=[b"b"],
        channel="shell",
        metadata={"m": 1},
    )
    assert env.header["session"] == "kernel" and env.header["msg_type"] == "stream"
    assert env.header["version"] == PROTOCOL_VERSION and env.header["username"]
    assert env.parent_header == parent and env.parent_header is not parent
    assert env.parent_msg_id == parent["msg_id"]
    assert env.content == {"name": "stderr", "text": "x"} and env.metadata == {"m": 1}
    assert env.buffers == [b"b"] and env.channel == "shell"
    other = compose("stream", {}, session="kernel")
    assert other.msg_id != env.msg_id and other.parent_header == {} and other.metadata == {}


def test_comm_msg_and_comm_data() -> None:
    env = comm_msg("m", {"method": "update", "state": {}}, session="k", buffers=[b"x"])
    assert env.msg_type == "comm_msg" and env.channel == "iopub" and env.buffers == [b"x"]
    assert comm_data(env) == ("m", {"method": "update", "state": {}})
    no_data = compose("comm_close", {"comm_id": "m", "data": None}, session="k")
    assert comm_data(no_data) == ("m", {})
    assert comm_data(compose("comm_close", {"comm_id": "m"}, session="k")) == ("m", {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"data": {}}, "comm_id"),
        ({"comm_id": 5, "data": {}}, "comm_id"),
        ({"comm_id": "m", "data": [1]}, "not a JSON object"),
        ({"comm_id": "m", "data": "x"}, "not a JSON object"),
    ],
)
def test_comm_data_refuses_malformed_comm_messages(content: Any, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        comm_data(compose("comm_msg", content, session="k"))


def test_counted_types_name_only_known_types() -> None:
    assert counted_type("comm_msg", CLIENT_MSG_TYPES) == "comm_msg"
    assert counted_type("made_up_request", CLIENT_MSG_TYPES) == "other"
    assert counted_type("status", KERNEL_MSG_TYPES) == "status"
    assert counted_type("status", CLIENT_MSG_TYPES) == "other"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b"[Infinity]", "Infinity is not valid JSON"),
        ("{}".encode("utf-16"), "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "deeper than"),
        (b'["\\ud800"]', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
    ],
)
def test_load_json_refuses_what_the_kernel_could_not_send(data: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        load_json(data, "part")


def test_load_json_accepts_the_deepest_value_and_surrogate_pairs() -> None:
    deepest = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert load_json(deepest) is not None
    assert load_json(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert load_json(memoryview(b'{"a": [1]}')) == {"a": [1]}
    assert load_json(" 3 ") == 3
    with pytest.raises(MessageError, match="deeper than 2"):
        load_json("[[[]]]", max_depth=2)
    assert load_json("[[], [], [], [[]]]", max_depth=3) == [[], [], [], [[]]]


# Text, sometimes with a lone (high) surrogate, which Hypothesis' own text never holds.
strings = st.text(max_size=6) | st.lists(
    st.sampled_from(["a", "\u00e9", "\ud83d", "\U0001f600"]), max_size=4
).map("".join)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(value=json_values)
def test_load_json_reads_back_what_json_writes_unless_it_holds_a_lone_surrogate(
    value: Any,
) -> None:
    """Every JSON value round-trips, as escaped ASCII or as UTF-8, except one holding a
    lone surrogate, whose escape is always refused (the kernel's packer cannot encode
    it; as raw UTF-8 it is not even valid text)."""
    escaped = json.dumps(value)
    text = json.dumps(value, ensure_ascii=False)
    if any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        with pytest.raises(MessageError, match="surrogate"):
            load_json(escaped.encode())
        with pytest.raises(MessageError):
            load_json(text.encode("utf-8", "surrogatepass"))
    else:
        assert load_json(escaped.encode()) == value
        assert load_json(text.encode("utf-8")) == value
