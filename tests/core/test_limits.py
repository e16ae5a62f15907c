"""core/limits.py: the checks of what a client may make the relay store, the refusal a
client gets, and these bounds as the relay applies them (JSON state per kernel,
unhandled bytes per client, one snapshot in flight per client; the table's state total
kept exact)."""

from __future__ import annotations

import json
from typing import Any

from jupyter_widget_relay.core.buffers import split_state
from jupyter_widget_relay.core.limits import (
    LimitExceeded,
    Limits,
    check_new_buffers,
    check_new_model,
    check_new_state,
    check_unhandled,
    json_size,
    refusal,
    state_names,
)
from jupyter_widget_relay.core.messages import Envelope, comm_msg, compose
from jupyter_widget_relay.core.table import WidgetTable
from jupyter_widget_relay.core.verdict import ClientRefusal, Forward, Held, Refused
from jupyter_widget_relay.core.wire import pack

from .helpers import model_state
from .simulation import header, receive, world


def update(client: str, **state: Any) -> Envelope:
    return Envelope(
        header("comm_msg", client),
        {},
        content={"comm_id": "m", "data": {"method": "update", "state": state}},
    )


def table_with(model_id: str = "m", buffer: bytes = b"", **state: Any) -> WidgetTable:
    table = WidgetTable()
    paths = [["data"]] if buffer else []
    table.open(
        model_id, split_state(model_state(**state), paths, [buffer] * bool(buffer), table.store)
    )
    return table


def refused_reason(check: Any, *args: Any) -> str | None:
    try:
        check(*args)
    except LimitExceeded as error:
        assert isinstance(error, ClientRefusal) and str(error)
        return str(error.reason)
    return None


def test_no_limit_is_the_default_and_never_refuses() -> None:
    table = table_with(buffer=b"x" * 1000, description="y" * 1000)
    limits = Limits()
    assert refused_reason(check_new_buffers, limits, table, [b"z" * 10**6]) is None
    assert refused_reason(check_new_state, limits, table, 10**9) is None
    assert refused_reason(check_unhandled, limits, 10**9, 10**9) is None
    assert refused_reason(check_new_model, limits, table) is None


def test_new_buffers_count_against_the_kernels_buffer_total() -> None:
    table = table_with(buffer=b"x" * 60)
    limits = Limits(max_buffer_bytes=100)
    assert refused_reason(check_new_buffers, limits, table, [b"1" * 20, b"2" * 20]) is None
    reason = refused_reason(check_new_buffers, limits, table, [b"1" * 20, b"2" * 21])
    assert reason == "buffer_limit"
    assert refused_reason(check_new_buffers, limits, table, []) is None


def test_new_state_counts_against_the_kernels_json_total() -> None:
    table = table_with()
    limits = Limits(max_state_bytes=table.state_bytes + 10)
    assert refused_reason(check_new_state, limits, table, 10) is None
    assert refused_reason(check_new_state, limits, table, 11) == "state_limit"


def test_unhandled_bytes_are_bounded_per_client() -> None:
    limits = Limits(max_unhandled_bytes_per_client=100)
    assert refused_reason(check_unhandled, limits, 60, 40) is None
    assert refused_reason(check_unhandled, limits, 60, 41) == "unhandled_limit"


def test_models_are_bounded_per_kernel() -> None:
    table = table_with()
    assert refused_reason(check_new_model, Limits(max_models=2), table) is None
    assert refused_reason(check_new_model, Limits(max_models=1), table) == "model_limit"


def test_json_size_is_the_raw_content_or_the_packed_state() -> None:
    data = {"method": "update", "state": {"value": "x" * 10}}
    raw = Envelope(header("comm_msg", "c"), {}, raw_content=b'{"comm_id": "m", "data": 1234}')
    assert json_size(raw, data) == len(b'{"comm_id": "m", "data": 1234}')
    parsed = comm_msg("m", data, session="c")
    assert json_size(parsed, data) == len(pack({"value": "x" * 10}))
    assert json_size(parsed, {"method": "update"}) == len(pack({}))


def test_state_names_are_the_state_keys_then_buffer_only_traits() -> None:
    data = {
        "state": {"value": 1, "description": "d"},
        "buffer_paths": [["data"], ["value", 0], ["data", 1], [], [3], "x"],
    }
    assert state_names(data) == ["value", "description", "data"]
    assert state_names({"buffer_paths": [["data"]]}) == ["data"]
    assert state_names({"state": [1], "buffer_paths": None}) == []
    assert state_names(None) == []


def test_a_refusal_tells_the_sender_and_restores_its_values() -> None:
    table = table_with(buffer=b"PNG", value=3)
    model = table.get("m")
    assert model is not None
    request = comm_msg("m", {"method": "update", "state": {"value": 9}}, session="client")
    echo, notice = refusal("kernel", request, "too big", model, ["value", "data"])
    assert notice.msg_type == "stream" and notice.content == {
        "name": "stderr",
        "text": "[widget relay] too big\n",
    }
    assert echo.msg_type == "comm_msg" and echo.content["comm_id"] == "m"
    assert echo.content["data"] == {
        "method": "echo_update",
        "state": {"value": 3},
        "buffer_paths": [["data"]],
    }
    assert echo.buffers == [b"PNG"]
    for env in (echo, notice):
        assert env.parent_msg_id == request.msg_id and env.header["session"] == "kernel"
    [only_notice] = refusal("kernel", request, "no", None, ["value"])
    assert only_notice.msg_type == "stream"
    [no_names] = refusal("kernel", request, "no", model, [])
    assert no_names.msg_type == "stream"


def test_state_total_follows_every_change() -> None:
    relay, kernel, (a,) = world(1)
    table = relay.table

    def exact() -> int:
        return sum(len(json.dumps(m.state, separators=(",", ":"))) for m in table.models.values())

    assert table.state_bytes == exact()
    kernel.set("m", description="x" * 500)
    a.set("m", value=3)
    assert table.state_bytes == exact()
    kernel.create_slider("n", 1)
    assert table.state_bytes == exact()
    table.close("n")
    assert table.state_bytes == exact()
    table.clear()
    assert table.state_bytes == 0


def test_client_json_state_is_bounded_per_kernel() -> None:
    relay, kernel, (a, b) = world(2)
    relay.limits = Limits(max_state_bytes=relay.table.state_bytes + 1000)
    a.set("m", description="x" * 500)
    assert relay.table.get("m").state["description"] == "x" * 500
    before, seen_by_b = dict(relay.table.get("m").state), len(b.received)
    verdict = receive(relay, a, update("c0", description="y" * 2000))
    assert isinstance(verdict, Refused) and verdict.reason == "state_limit"
    assert relay.table.get("m").state == before and len(b.received) == seen_by_b
    while kernel.pending():
        kernel.process_any()
    kernel.set("m", description="z" * 5000)  # the kernel is never refused
    assert relay.table.get("m").state["description"] == "z" * 5000


def test_unhandled_bytes_are_bounded_per_client_until_the_kernel_catches_up() -> None:
    relay, _kernel, (a, b) = world(2)
    relay.limits = Limits(max_unhandled_bytes_per_client=3000)
    first = update("c0", description="x" * 1200)
    assert isinstance(receive(relay, a, first), Forward)
    assert isinstance(receive(relay, a, update("c0", value=3)), Held)
    assert isinstance(receive(relay, a, update("c0", description="y" * 1200)), Held)
    verdict = receive(relay, a, update("c0", description="z" * 1200))
    assert isinstance(verdict, Refused) and verdict.reason == "unhandled_limit"
    assert isinstance(receive(relay, b, update("c1", value=4)), Forward), "b has its own"
    relay.handle_kernel_message(
        compose("status", {"execution_state": "idle"}, session="k", parent=first.header)
    )
    assert relay.sync.unhandled_bytes("c0") < 1400, "only the merged update waits"
    assert not isinstance(receive(relay, a, update("c0", description="w" * 1200)), Refused)


def test_merged_updates_hold_only_their_latest_values() -> None:
    """A drag during a busy cell: superseded steps cost nothing while they wait."""
    relay, _kernel, (a, _b) = world(2)
    relay.limits = Limits(max_unhandled_bytes_per_client=5000)
    assert isinstance(receive(relay, a, update("c0", value=1)), Forward)
    for step in range(50):
        verdict = receive(relay, a, update("c0", description=str(step) * 300))
        assert isinstance(verdict, Held), step
    assert relay.sync.unhandled_bytes("c0") < 1500


class SlowPort:
    """A client whose socket takes its time: frames wait until ``drain``."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.sent: list[Envelope] = []
        self.waiting = 0

    def send(self, envelope: Envelope) -> None:
        self.sent.append(envelope)
        self.waiting += 1

    def backlogged(self) -> bool:
        return self.waiting > 0


def control(client: str, comm_id: str, method: str | None = None) -> Envelope:
    if method is None:
        content = {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}}
        return Envelope(header("comm_open", client), {}, content=content)
    return Envelope(
        header("comm_msg", client), {}, content={"comm_id": comm_id, "data": {"method": method}}
    )


def test_repeated_request_states_cost_one_snapshot_in_flight() -> None:
    relay, _kernel, _ = world(0)
    port = SlowPort("slow")
    relay.attach(port)
    for index in range(5):
        receive(relay, port, control("slow", f"ctl{index}"))
        receive(relay, port, control("slow", f"ctl{index}", "request_states"))
    snapshots = [e for e in port.sent if e.content.get("data", {}).get("method") == "update_states"]
    assert [e.content["comm_id"] for e in snapshots] == ["ctl0"]
    assert relay.counters["relay", "snapshot_coalesced"] == 3
    port.waiting = 0
    relay.port_drained(port)
    snapshots = [e for e in port.sent if e.content.get("data", {}).get("method") == "update_states"]
    assert [e.content["comm_id"] for e in snapshots] == ["ctl0", "ctl4"], "the latest answered"
