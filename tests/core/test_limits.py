"""Client bounds in the pure core: JSON state per kernel, unhandled bytes per client,
one snapshot in flight per client; the table's state total kept exact."""

from __future__ import annotations

import json
from typing import Any

from jupyter_widget_relay.core.limits import Limits
from jupyter_widget_relay.core.messages import Envelope, compose
from jupyter_widget_relay.core.verdict import Forward, Held, Refused

from .simulation import header, receive, world


def update(client: str, **state: Any) -> Envelope:
    return Envelope(
        header("comm_msg", client),
        {},
        content={"comm_id": "m", "data": {"method": "update", "state": state}},
    )


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
