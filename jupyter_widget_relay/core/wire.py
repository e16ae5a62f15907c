"""The two kernel websocket wire protocols, parsed and encoded without any server library.

- ``v1.kernel.websocket.jupyter.org``: 8-byte little-endian offset table, channel, then
  the message parts (header, parent_header, metadata, content, buffers...).
- legacy: a JSON text frame, or, with buffers, a binary frame with a 4-byte big-endian
  count and offsets followed by the JSON and the buffers.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
from typing import Any

import orjson

from .messages import MAX_JSON_DEPTH, Envelope, MessageError, load_json

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
LEGACY_DEPTH = MAX_JSON_DEPTH + 1  # the legacy message object holds the parts one level down


# Datetimes, dataclasses and subclasses of builtins go to ``default=str``, as with json.dumps.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def pack(obj: Any) -> bytes:
    # Anything orjson refuses (lone surrogates, integers over 64 bits, non-string keys,
    # nesting past 254) falls back to json.
    try:
        return orjson.dumps(obj, default=str, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError):
        pass
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=str)
    try:
        return text.encode("utf8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows "\ud800"; browsers send it for a split emoji) has
        # no UTF-8 form: escape non-ASCII instead, which every JSON reader decodes the same.
        return json.dumps(obj, ensure_ascii=True, allow_nan=False, default=str).encode("ascii")


def _json_object(data: bytes | str, what: str, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    value = load_json(data, what, max_depth)
    if not isinstance(value, dict):
        raise MessageError(f"{what} is not a JSON object")
    return value


def _check_header(header: dict[str, Any]) -> None:
    """What ``jupyter_client.Session.deserialize`` needs, so the relay never acts on a
    message the kernel then drops (its parent would never come back to settle it)."""
    if not isinstance(header.get("msg_type"), str):
        raise MessageError("header has no string msg_type")
    msg_id = header.get("msg_id")
    if not isinstance(msg_id, str) or not msg_id:
        raise MessageError("header has no non-empty string msg_id")
    version = header.get("version", "5")
    try:
        int(version.split(".")[0])
    except (AttributeError, ValueError):
        raise MessageError(f"header version {version!r} is not a protocol version") from None


def parse_v1(frame: bytes) -> tuple[str, list[bytes]]:
    """Channel and parts of a v1 frame; its offset table ends with the end of the last part."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise MessageError("v1 protocol frames must be binary")
    frame = bytes(frame)
    if len(frame) < 8:
        raise MessageError("v1 frame shorter than its offset count")
    count = int.from_bytes(frame[:8], "little")
    if count < 6 or 8 * (count + 1) > len(frame):
        raise MessageError(f"v1 frame declares {count} offsets, which does not fit")
    offsets = [int.from_bytes(frame[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    if offsets[0] != 8 * (count + 1):
        raise MessageError("v1 frame's first offset does not follow the offset table")
    if offsets[-1] > len(frame) or any(a > b for a, b in itertools.pairwise(offsets)):
        raise MessageError("v1 frame offsets are not increasing or point past the end")
    try:
        channel = frame[offsets[0] : offsets[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise MessageError("v1 frame channel is not UTF-8") from None
    return channel, [frame[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]


def encode_v1(channel: str, parts: list[bytes]) -> bytes:
    name = channel.encode("utf-8")
    offsets = [8 * (1 + 1 + len(parts) + 1)]
    offsets.append(offsets[-1] + len(name))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    table = b"".join(o.to_bytes(8, "little") for o in [len(offsets), *offsets])
    return b"".join([table, name, *parts])


def envelope_from_parts(channel: str, parts: list[bytes]) -> Envelope:
    """An envelope from [header, parent_header, metadata, content, *buffers]."""
    if len(parts) < 4:
        raise MessageError(f"message has {len(parts)} parts; at least 4 are required")
    header = _json_object(parts[0], "header")
    parent = _json_object(parts[1], "parent_header") if parts[1] else {}
    _check_header(header)
    env = Envelope(
        header,
        parent,
        raw_metadata=parts[2],
        raw_content=parts[3],
        buffers=parts[4:],
        channel=channel,
    )
    env.wire["parts"] = parts
    return env


def parse_legacy(frame: bytes | str) -> Envelope:
    if isinstance(frame, str):
        msg = _json_object(frame, "message", LEGACY_DEPTH)
        buffers: list[bytes] = []
    else:
        frame = bytes(frame)
        if len(frame) < 4:
            raise MessageError("binary frame shorter than its buffer count")
        count = struct.unpack("!I", frame[:4])[0]
        if count < 1 or 4 * (count + 1) > len(frame):
            raise MessageError(f"binary frame declares {count} parts, which does not fit")
        offsets = list(struct.unpack("!" + "I" * count, frame[4 : 4 * (count + 1)]))
        offsets.append(len(frame))
        if any(a > b for a, b in itertools.pairwise(offsets)):
            raise MessageError("binary frame offsets are not increasing")
        chunks = [frame[a:b] for a, b in itertools.pairwise(offsets)]
        msg = _json_object(chunks[0], "message", LEGACY_DEPTH)
        buffers = chunks[1:]
    header = msg.get("header")
    if not isinstance(header, dict):
        raise MessageError("message header is missing")
    _check_header(header)
    parent = msg.get("parent_header") or {}
    content = msg.get("content") or {}
    metadata = msg.get("metadata") or {}
    if not isinstance(parent, dict) or not isinstance(content, dict):
        raise MessageError("parent_header and content must be JSON objects")
    channel = msg.get("channel") or "shell"
    if not isinstance(channel, str):
        raise MessageError("channel must be a string")
    return Envelope(
        header,
        parent,
        content=content,
        metadata=metadata if isinstance(metadata, dict) else {},
        buffers=buffers,
        channel=channel,
    )


def parts_of(env: Envelope) -> list[bytes]:
    parts: list[bytes] | None = env.wire.get("parts")
    if parts is None:
        parts = [
            pack(env.header),
            pack(env.parent_header),
            pack(env.metadata),
            pack(env.content),
            *env.buffers,
        ]
        env.wire["parts"] = parts
    return parts


def v1_frame(env: Envelope) -> bytes:
    frame: bytes | None = env.wire.get("v1")
    if frame is None:
        frame = env.wire["v1"] = encode_v1(env.channel, parts_of(env))
    return frame


def legacy_frame(env: Envelope) -> bytes | str:
    frame: bytes | str | None = env.wire.get("legacy")
    if frame is None:
        msg = {
            "header": env.header,
            "parent_header": env.parent_header,
            "metadata": env.metadata,
            "content": env.content,
            "channel": env.channel,
            "msg_id": env.msg_id,
            "msg_type": env.msg_type,
            "buffers": [],
        }
        text = json.dumps(msg, ensure_ascii=False, default=str)
        if _SURROGATE.search(text):  # not encodable as UTF-8: see pack()
            text = json.dumps(msg, ensure_ascii=True, default=str)
        if env.buffers:
            chunks = [text.encode("utf8"), *env.buffers]
            offsets = [4 * (len(chunks) + 1)]
            for chunk in chunks[:-1]:
                offsets.append(offsets[-1] + len(chunk))
            head = struct.pack("!" + "I" * (len(chunks) + 1), len(chunks), *offsets)
            frame = b"".join([head, *chunks])
        else:
            frame = text
        env.wire["legacy"] = frame
    return frame
