"""What a client may make the relay store, and how a refusal reaches that client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .buffers import join_state
from .messages import Envelope, JSONDict, comm_msg, compose
from .table import WidgetModel, WidgetTable
from .verdict import ClientRefusal
from .wire import pack


@dataclass(slots=True)
class Limits:
    """What clients may send and make the relay store; 0 (or empty) means no limit.
    Kernel messages are never refused (the kernel is the authority)."""

    max_buffer_bytes: int = 0
    max_state_bytes: int = 0
    max_models: int = 0
    max_unhandled_bytes_per_client: int = 0
    # The server's MappingKernelManager.allowed_message_types: empty allows every type.
    allowed_msg_types: frozenset[str] = frozenset()


class LimitExceeded(ClientRefusal):
    """A client message over one of the admin's limits."""


def check_new_buffers(limits: Limits, table: WidgetTable, buffers: list[bytes]) -> None:
    if not limits.max_buffer_bytes or not buffers:
        return
    incoming = sum(len(buffer) for buffer in buffers)
    if table.buffer_bytes + incoming > limits.max_buffer_bytes:
        raise LimitExceeded(
            "buffer_limit",
            f"the kernel's widget buffers would exceed {limits.max_buffer_bytes} bytes "
            "(c.WidgetRelay.max_buffer_bytes_per_kernel)",
        )


def json_size(env: Envelope, data: JSONDict) -> int:
    """Bytes of a comm message's JSON (the content as received, where it came as one part)."""
    raw = env.raw_content_size
    return raw if raw is not None else len(pack(data.get("state", {})))


def check_new_state(limits: Limits, table: WidgetTable, incoming: int) -> None:
    if limits.max_state_bytes and table.state_bytes + incoming > limits.max_state_bytes:
        raise LimitExceeded(
            "state_limit",
            f"the kernel's widget state would exceed {limits.max_state_bytes} bytes of JSON "
            "(c.WidgetRelay.max_state_bytes_per_kernel)",
        )


def check_unhandled(limits: Limits, unhandled: int, incoming: int) -> None:
    """A client's updates the kernel has not handled yet are held in the relay (their
    values and buffers): bound them per client."""
    limit = limits.max_unhandled_bytes_per_client
    if limit and unhandled + incoming > limit:
        raise LimitExceeded(
            "unhandled_limit",
            f"this client's updates not yet handled by the kernel would exceed {limit} "
            "bytes (c.WidgetRelay.max_unhandled_bytes_per_client); wait for the kernel",
        )


def check_new_model(limits: Limits, table: WidgetTable) -> None:
    if limits.max_models and len(table) >= limits.max_models:
        raise LimitExceeded(
            "model_limit",
            f"the kernel already has {len(table)} widget models "
            "(c.WidgetRelay.max_models_per_kernel)",
        )


def refusal(
    session: str, request: Envelope, text: str, model: WidgetModel | None, names: list[str]
) -> list[Envelope]:
    """Messages that tell the sender its widget message was not applied.

    A stderr stream parented to the request (what jupyter_server itself sends when it
    drops output), which stock frontends route to the widget's output area; and, for an
    update, an ``echo_update`` answering the request with the table's values, so the
    sender's model shows them again and stops waiting for an echo the kernel never sends.
    """
    notice = compose(
        "stream",
        {"name": "stderr", "text": f"[widget relay] {text}\n"},
        session=session,
        parent=request.header,
    )
    messages = [notice]
    if model is not None and names:
        values = [(name, model.trait(name)) for name in names]
        state, paths, buffers = join_state(values)
        data: JSONDict = {"method": "echo_update", "state": state, "buffer_paths": paths}
        messages.insert(
            0,
            comm_msg(model.model_id, data, session=session, parent=request.header, buffers=buffers),
        )
    return messages


def state_names(data: Any) -> list[str]:
    state = data.get("state") if isinstance(data, dict) else None
    names = [name for name in state if isinstance(name, str)] if isinstance(state, dict) else []
    paths = data.get("buffer_paths") if isinstance(data, dict) else None
    for path in paths if isinstance(paths, list) else []:
        if isinstance(path, list) and path and isinstance(path[0], str) and path[0] not in names:
            names.append(path[0])
    return names
