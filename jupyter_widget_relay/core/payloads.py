"""The shapes of the REST answers and event frames under ``/api/widget-relay/``.

One home for each: the handlers and the manager build these, ``rest-api.yml`` (next to
the package) describes them for people and other clients, and the labextension's
``api.ts`` reads them; tests check that the three agree.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class ClientInfo(TypedDict):
    """One connected kernel websocket; names are empty for users who may only read."""

    client_id: str
    username: str
    display_name: str
    protocol: str


class Unsettled(TypedDict):
    """Bookkeeping a kernel's relay still has open."""

    updates: int
    waiting: int
    traits: int
    state_checks: int


class KernelSummary(TypedDict):
    kernel_id: str
    models: int
    state_bytes: int
    buffer_bytes: int
    clients: list[ClientInfo]
    execution_state: str
    unsettled: Unsettled


class KernelList(TypedDict):
    enabled: bool
    kernels: list[KernelSummary]


class GatewayInfo(TypedDict):
    url: str
    off: list[str]


class _StatusBase(TypedDict):
    enabled: bool
    version: str


class Status(_StatusBase, total=False):
    """``reason`` when the relay is off for a reason other than the switch; ``gateway``
    when kernels run behind a gateway."""

    reason: str
    gateway: GatewayInfo


class ModelSummary(TypedDict):
    model_id: str
    model_name: str
    model_module: str
    model_module_version: str
    state_bytes: int
    buffer_bytes: int
    version: int
    last_change: str


class ModelDetail(ModelSummary):
    state: dict[str, Any]


class ModelList(TypedDict):
    kernel_id: str
    models: list[ModelSummary]


class BufferRef(TypedDict):
    """What stands for a binary buffer in a model's readable state, under ``$buffer``."""

    bytes: int
    sha256: str


class SummaryEvent(TypedDict):
    """One frame of the events websocket; ``kernel`` is None once the kernel stopped."""

    type: Literal["summary"]
    kernel: KernelSummary | None
    changed_models: list[str]


class RelayCounts(TypedDict):
    """A kernel's sizes, as the Prometheus gauges report them."""

    models: int
    state_bytes: int
    buffer_bytes: int
    clients: int


__all__ = [
    "BufferRef",
    "ClientInfo",
    "GatewayInfo",
    "KernelList",
    "KernelSummary",
    "ModelDetail",
    "ModelList",
    "ModelSummary",
    "RelayCounts",
    "Status",
    "SummaryEvent",
    "Unsettled",
]
