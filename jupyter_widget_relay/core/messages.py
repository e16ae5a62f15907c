"""Jupyter messages as the relay sees them, and the few it composes itself."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

PROTOCOL_VERSION = "5.3"
WIDGET_TARGET = "jupyter.widget"
CONTROL_TARGET = "jupyter.widget.control"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
COMM_MSG_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
# Message types counted by name (counters, /metrics labels); a sender's other types are
# counted as "other", so neither a client nor a kernel can grow the label set.
CLIENT_MSG_TYPES = COMM_MSG_TYPES | {
    "comm_info_request",
    "execute_request",
    "inspect_request",
    "complete_request",
    "history_request",
    "is_complete_request",
    "kernel_info_request",
    "shutdown_request",
    "interrupt_request",
    "debug_request",
    "input_reply",
    "create_subshell_request",
    "delete_subshell_request",
    "list_subshell_request",
}
KERNEL_MSG_TYPES = COMM_MSG_TYPES | {
    "status",
    "stream",
    "display_data",
    "update_display_data",
    "execute_input",
    "execute_result",
    "error",
    "clear_output",
    "debug_event",
    "iopub_welcome",
    "shutdown_reply",
}


def counted_type(msg_type: str, known: frozenset[str]) -> str:
    return msg_type if msg_type in known else "other"


JSONDict = dict[str, Any]
Unpacker = Callable[[bytes], Any]


# Deeper JSON is refused: Python's json, ``==`` and ``copy.deepcopy`` recurse once or twice
# per level against a recursion limit of ~1000 frames, so a value parsed near that limit
# would raise RecursionError later, wherever it is compared, copied or encoded.
MAX_JSON_DEPTH = 256


def _refuse_constant(name: str) -> Any:
    raise MessageError(f"{name} is not valid JSON")


def _nested_deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


# A surrogate escape ("\ud83d") in JSON text; Python combines a high and a low one into
# one character, so only lone ones survive parsing, and the kernel cannot send them back.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_json(
    data: bytes | bytearray | memoryview | str,
    what: str = "message part",
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON the way the kernel's ``jupyter_client.Session`` can: UTF-8 text (no other
    encodings, no byte order mark), no NaN or Infinity, nested at most ``max_depth``
    levels, no lone surrogates (the kernel's packer cannot encode them, so it could
    neither echo nor store such a value). Anything else raises MessageError."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant)
    except MessageError as error:
        raise MessageError(f"{what}: {error}") from None
    except RecursionError:
        raise MessageError(f"{what} is nested too deeply") from None
    except ValueError as error:  # includes JSONDecodeError and UnicodeDecodeError
        raise MessageError(f"{what} is not valid JSON: {error}") from None
    if (
        isinstance(value, (dict, list))
        and text.count("[") + text.count("{") > max_depth
        and _nested_deeper_than(value, max_depth)
    ):
        raise MessageError(f"{what} is nested deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(value):
        raise MessageError(f"{what} holds a lone UTF-16 surrogate, which is not Unicode text")
    return value


def unpack_json(data: bytes) -> Any:
    return load_json(data, "message content")


class Envelope:
    """One message: parsed header and parent header, lazily parsed metadata and content.

    ``wire`` is a cache the transport adapters fill with serialized forms, so a
    message fanned out to many clients is encoded once per wire protocol.
    """

    __slots__ = (
        "_content",
        "_metadata",
        "_raw_content",
        "_raw_metadata",
        "_unpack",
        "buffers",
        "channel",
        "header",
        "parent_header",
        "wire",
    )

    def __init__(
        self,
        header: JSONDict,
        parent_header: JSONDict,
        *,
        content: JSONDict | None = None,
        metadata: JSONDict | None = None,
        raw_content: bytes | None = None,
        raw_metadata: bytes | None = None,
        buffers: Sequence[bytes] = (),
        channel: str = "iopub",
        unpack: Unpacker = unpack_json,
    ) -> None:
        self.header = header
        self.parent_header = parent_header
        self._content = content
        self._metadata = metadata
        self._raw_content = raw_content
        self._raw_metadata = raw_metadata
        self._unpack = unpack
        self.buffers: list[bytes] = list(buffers)
        self.channel = channel
        self.wire: dict[str, Any] = {}

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))

    @property
    def parent_msg_id(self) -> str | None:
        value = self.parent_header.get("msg_id") if self.parent_header else None
        return value if isinstance(value, str) else None

    @property
    def content(self) -> JSONDict:
        if self._content is None:
            try:
                parsed = self._unpack(self._raw_content) if self._raw_content else {}
            except MessageError:
                raise
            except (ValueError, RecursionError) as error:  # from another unpacker
                raise MessageError(f"message content is not valid JSON: {error}") from None
            if not isinstance(parsed, dict):
                raise MessageError("message content is not a JSON object")
            self._content = parsed
        return self._content

    @property
    def metadata(self) -> JSONDict:
        if self._metadata is None:
            try:
                parsed = self._unpack(self._raw_metadata) if self._raw_metadata else {}
            except (ValueError, RecursionError):
                parsed = {}  # like metadata that is not an object: nothing the relay reads
            self._metadata = parsed if isinstance(parsed, dict) else {}
        return self._metadata

    @property
    def raw_content_size(self) -> int | None:
        """Bytes of the content as received, if it came as one JSON part (v1 frames)."""
        return len(self._raw_content) if self._raw_content is not None else None

    def replace_content(self, content: JSONDict) -> None:
        """Swap the content (e.g. a scrubbed traceback) and drop cached wire forms."""
        self._content = content
        self._raw_content = None
        self.wire.clear()


class MessageError(ValueError):
    """A message does not have the shape the widget protocol requires."""


def new_header(msg_type: str, session: str, username: str = "widget-relay") -> JSONDict:
    return {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": username,
        "session": session,
        "date": datetime.now(timezone.utc).isoformat(),
        "version": PROTOCOL_VERSION,
    }


def compose(
    msg_type: str,
    content: JSONDict,
    *,
    session: str,
    parent: JSONDict | None = None,
    buffers: Sequence[bytes] = (),
    channel: str = "iopub",
    metadata: JSONDict | None = None,
) -> Envelope:
    """A message from the relay. ``session`` must be the kernel's session id:
    JupyterLab cancels handling of messages whose session differs from the last one seen."""
    return Envelope(
        new_header(msg_type, session),
        dict(parent) if parent else {},
        content=content,
        metadata=dict(metadata) if metadata else {},
        buffers=buffers,
        channel=channel,
    )


def comm_msg(
    comm_id: str,
    data: JSONDict,
    *,
    session: str,
    parent: JSONDict | None = None,
    buffers: Sequence[bytes] = (),
) -> Envelope:
    return compose(
        "comm_msg",
        {"comm_id": comm_id, "data": data},
        session=session,
        parent=parent,
        buffers=buffers,
    )


def comm_data(env: Envelope) -> tuple[str, JSONDict]:
    """A comm message's ``comm_id`` and ``data`` (MessageError if malformed)."""
    content = env.content
    comm_id = content.get("comm_id")
    if not isinstance(comm_id, str):
        raise MessageError(f"{env.msg_type} without a string comm_id")
    data = content.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MessageError(f"{env.msg_type} data is not a JSON object")
    return comm_id, data
