"""core/wire.py: the v1 and legacy websocket formats, as jupyter_server reads and writes them."""

from __future__ import annotations

import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

from jupyter_widget_relay.core import wire
from jupyter_widget_relay.core.messages import Envelope, MessageError


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
