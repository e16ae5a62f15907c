"""Hostile input for the core's parsers (the fuzz tests here and the server's hostile-client
tests): random JSON, damaged headers, and damaged v1 and legacy websocket frames."""

from __future__ import annotations

import json
import random
import struct
import uuid
from typing import Any

from jupyter_widget_relay.core import wire
from jupyter_widget_relay.core.messages import (
    MAX_JSON_DEPTH,
)

# Hostile text includes lone surrogates: JSON allows "\ud800" and a browser sends it for
# half an emoji; the parsers refuse it (the kernel could not send it back). Valid messages
# (the round trips) use CHARS and CLEAN_KEYS only.
CHARS = ["a", "b", "7", " ", '"', "\\", "/", "\x00", "\n", "\u2028", "é", "\U0001f600"]


ALPHABET = [*CHARS, "\ud800", "\udc80", "\udfff"]


CLEAN_KEYS = ["", "a", "value", "k", "_model_name", "é", "0"]


KEYS = [*CLEAN_KEYS, "\ud800"]


def random_text(rng: random.Random, clean: bool = False) -> str:
    alphabet = CHARS if clean or rng.random() < 0.8 else ALPHABET  # 1 in 5 may be refused
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


def random_json(rng: random.Random, depth: int = 3, clean: bool = False) -> Any:
    """A JSON value from a seeded generator (what json_values gives, far cheaper)."""
    roll = rng.random()
    if depth > 0 and roll < 0.2:
        return [random_json(rng, depth - 1, clean) for _ in range(rng.randint(0, 3))]
    if depth > 0 and roll < 0.4:
        names = CLEAN_KEYS if clean else KEYS
        return {
            rng.choice(names): random_json(rng, depth - 1, clean) for _ in range(rng.randint(0, 3))
        }
    kind = rng.randint(0, 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 2**53, -(2**63), 2**64, rng.randint(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, 5e-324, rng.uniform(-1e6, 1e6)])
    return random_text(rng, clean)


def random_object(rng: random.Random, clean: bool = False) -> dict[str, Any]:
    names = CLEAN_KEYS if clean else KEYS
    return {rng.choice(names): random_json(rng, 3, clean) for _ in range(rng.randint(0, 4))}


def nested(depth: int, kind: str) -> str:
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE_CONSTANTS = [
    b"",
    b"NaN",
    b'{"a": NaN}',
    b'{"a": [Infinity]}',
    b'{"a": -Infinity}',
    b"\xef\xbb\xbf{}",
    "{}".encode("utf-16"),
    '{"a": 1}'.encode("utf-32"),
    b'{"a": "\\ud800"}',
    b'{"a": "\xed\xa0\x80"}',
    b'{"k": 1, "k": 2}',
    b'{"a": ' + b"1" * 5000 + b"}",
    b"[" * 3000,
    b'{"a": "' + b"x" * 100_000 + b'"}',
    b"{}",
    b"[]",
    b"null",
]


def hostile_json(rng: random.Random) -> bytes:
    """Bytes a hostile peer might put where a JSON part belongs."""
    kind = rng.randint(0, 6)
    if kind == 0:
        return wire.pack(random_object(rng))
    if kind == 1:
        return wire.pack(random_json(rng))
    if kind == 2:
        return rng.randbytes(rng.randint(0, 32))
    if kind == 3:
        return random_text(rng).encode("utf-8", "surrogatepass")
    if kind == 4:
        depth = rng.choice([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 990, 5000])
        return nested(depth, rng.choice("[{")).encode()
    return rng.choice(HOSTILE_CONSTANTS)


def random_header(rng: random.Random) -> dict[str, Any]:
    header: dict[str, Any] = {
        "msg_id": rng.choice(["1", "\ud800", uuid.UUID(int=rng.getrandbits(128)).hex]),
        "msg_type": rng.choice(["comm_msg", "comm_open", "comm_close", "status", "x"]),
        "session": random_text(rng),
    }
    if rng.random() < 0.7:
        header["version"] = rng.choice(["5.3", "5", "4.1", 5, None, "x.y", ""])
    if rng.random() < 0.3:
        header[rng.choice(["msg_id", "msg_type"])] = random_json(rng)
    if rng.random() < 0.2:
        del header[rng.choice(["msg_id", "msg_type"])]
    return header


def header_part(rng: random.Random) -> bytes:
    return wire.pack(random_header(rng)) if rng.random() < 0.6 else hostile_json(rng)


def random_v1_frame(rng: random.Random) -> bytes:
    """Noise, or a frame with a plausible layout whose table or bytes are then damaged."""
    if rng.random() < 0.15:
        return rng.randbytes(rng.randint(0, 120))
    count = rng.randint(0, 7)
    parts = [header_part(rng), *(hostile_json(rng) for _ in range(count - 1))][:count]
    channel = rng.choice(["shell", "iopub", "control", "stdin", "", "x" * 40, "\xe9"])
    frame = bytearray(wire.encode_v1(channel, parts))
    slots = len(parts) + 3
    for _ in range(rng.choice([0, 0, 1, 2])):
        slot = rng.randrange(slots)
        value = rng.choice(
            [0, 1, 5, 6, 7, len(frame), len(frame) + 1, 2**63, 2**64 - 1, rng.randint(0, 400)]
        )
        frame[8 * slot : 8 * slot + 8] = value.to_bytes(8, "little")
    if rng.random() < 0.2:
        del frame[rng.choice([0, 7, 8, len(frame) - 1, len(frame) - 3]) :]
    if frame and rng.random() < 0.3:
        frame[rng.randrange(len(frame))] ^= rng.randint(1, 255)
    return bytes(frame)


def random_legacy_frame(rng: random.Random) -> bytes | str:
    message: Any = {
        "header": random_header(rng) if rng.random() < 0.7 else random_json(rng),
        "parent_header": random_object(rng) if rng.random() < 0.7 else random_json(rng),
        "metadata": random_json(rng),
        "content": random_object(rng) if rng.random() < 0.7 else random_json(rng),
        "channel": rng.choice(["shell", "iopub", "", None, 5, random_text(rng)]),
    }
    for _ in range(rng.choice([0, 0, 1, 2])):
        message.pop(rng.choice(list(message)), None)
    kind = rng.randint(0, 5)
    if kind == 0:
        return random_text(rng)
    body = json.dumps(message if kind != 1 else random_json(rng))
    if kind == 2:
        body = body[: rng.randint(0, len(body))]
    buffers = [rng.randbytes(rng.randint(0, 8)) for _ in range(rng.randint(0, 3))]
    if kind < 4 and not buffers:
        return body
    body_bytes = hostile_json(rng) if kind == 5 else body.encode("utf-8", "surrogatepass")
    chunks = [body_bytes, *buffers]
    offsets = [4 * (len(chunks) + 1)]
    for chunk in chunks[:-1]:
        offsets.append(offsets[-1] + len(chunk))
    table = [len(chunks), *offsets]
    if rng.random() < 0.4:
        table[rng.randrange(len(table))] = rng.choice([0, 1, 2**32 - 1, rng.randint(0, 300)])
    return struct.pack("!" + "I" * len(table), *table) + b"".join(chunks)
