"""The relay paces browser updates to the kernel (core/throttle.py), against frontends that
keep widget.ts's own throttle (``paced``) and a simulated kernel that is busy until told."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_widget_relay.core.limits import Limits
from jupyter_widget_relay.core.messages import Envelope, compose
from jupyter_widget_relay.core.relay import KernelRelay
from jupyter_widget_relay.core.throttle import UpdateThrottle, release_type_for
from jupyter_widget_relay.core.verdict import Forward, Held

from .simulation import Frontend, Kernel, world


def kernel_updates(kernel: Kernel, log: list[Envelope]) -> None:
    """Record every update the kernel handles (wraps its processing)."""
    process_next = kernel.process_next

    def recording(client_id: str) -> None:
        request = kernel.inbox[client_id][0]
        if request.content["data"].get("method") == "update":
            log.append(request)
        process_next(client_id)

    kernel.process_next = recording  # type: ignore[method-assign]


def settle(kernel: Kernel, frontends: list[Frontend]) -> None:
    """Run the kernel and the browsers until nothing is left to do."""
    while True:
        kernel.collect()
        moved = any([frontend.pump() for frontend in frontends])
        if kernel.pending():
            kernel.process_any()
        elif not moved:
            return


def drag(frontend: Frontend, steps: list[int]) -> None:
    """One value per key press; widget.ts sends what its throttle lets through."""
    for step in steps:
        frontend.set("m", value=step)
        frontend.pump()


def updates_sent_by(frontend: Frontend) -> list[Any]:
    return [e.content["data"]["state"].get("value") for e in frontend.sent]


def assert_settled(relay: KernelRelay, kernel: Kernel, frontends: list[Frontend]) -> None:
    final = kernel.models["m"]
    assert relay.table.get("m").state["value"] == final["value"]
    for frontend in frontends:
        assert frontend.models["m"]["value"] == final["value"], frontend.client_id
        assert not frontend.expected, f"{frontend.client_id} still awaits an echo"
        assert not frontend.in_flight and not frontend.waiting, frontend.client_id
    assert relay.unsettled() == {"updates": 0, "waiting": 0, "traits": 0, "state_checks": 0}
    assert not relay.throttle


@pytest.mark.parametrize("echo", [True, False])
def test_every_step_of_a_drag_reaches_peers_while_the_kernel_is_busy(echo: bool) -> None:
    relay, kernel, (a, b) = world(2, echo=echo, maximum=1000, paced=True)
    handled: list[Envelope] = []
    kernel_updates(kernel, handled)
    seen_by_b = []
    for step in range(1, 11):
        drag(a, [step])
        seen_by_b.append(b.value("m"))
    assert seen_by_b == list(range(1, 11)), "the peer shows each step at once"
    assert updates_sent_by(a) == list(range(1, 11)), "the browser was released each time"
    assert len(kernel.inbox["c0"]) == 1, "the kernel has one update at a time per browser"
    settle(kernel, [a, b])
    assert [e.content["data"]["state"]["value"] for e in handled] == [1, 10]
    assert kernel.models["m"]["value"] == 10
    assert_settled(relay, kernel, [a, b])


def test_without_the_relay_throttle_the_browser_holds_the_steps_back() -> None:
    """Stock pacing (c.WidgetRelay.throttle_updates = False): the later steps wait in the
    browser until the kernel is free."""
    relay, kernel, (a, b) = world(2, maximum=1000, paced=True, throttle=False)
    drag(a, list(range(1, 11)))
    assert b.value("m") == 1 and updates_sent_by(a) == [1]
    settle(kernel, [a, b])
    assert updates_sent_by(a) == [1, 10] and b.value("m") == 10
    assert_settled(relay, kernel, [a, b])


def test_the_release_leaves_the_kernel_status_alone() -> None:
    _relay, _kernel, (a, _b) = world(2, paced=True)
    sent = a.set("m", value=3)
    assert sent is not None
    status = [e for e in a.received if e.msg_type == "status" and e.parent_msg_id == sent.msg_id]
    assert len(status) == 1 and status[0].content == {"execution_state": "idle"}
    parent = status[0].parent_header
    assert parent["msg_id"] == sent.msg_id and parent["msg_type"] == "comm_info_request"
    echo = a.received[-2]
    assert echo.content["data"]["method"] == "echo_update" and echo.parent_header == sent.header


def test_traits_merge_and_the_newest_header_goes_to_the_kernel() -> None:
    relay, kernel, (a, b) = world(2, paced=True)
    handled: list[Envelope] = []
    kernel_updates(kernel, handled)
    a.set("m", value=1)
    a.pump()
    a.set("m", description="x")
    a.pump()
    last = a.set("m", value=3)
    assert last is not None
    assert b.models["m"]["description"] == "x" and b.value("m") == 3
    settle(kernel, [a, b])
    merged = handled[-1]
    assert merged.header == last.header, "the kernel's echo and statuses name the newest"
    assert merged.content["data"]["state"] == {"description": "x", "value": 3}
    assert_settled(relay, kernel, [a, b])


def test_merged_buffers_keep_the_latest() -> None:
    relay, _kernel, (a, _b) = world(2, paced=True)

    def binary(value: bytes) -> Envelope:
        env = Envelope(
            {"msg_id": f"bin-{value!r}", "msg_type": "comm_msg", "session": "c0"},
            {},
            content={
                "comm_id": "m",
                "data": {"method": "update", "state": {}, "buffer_paths": [["value"]]},
            },
            buffers=[value],
            channel="shell",
        )
        return env

    assert isinstance(relay.receive(a, binary(b"first")), Forward)
    for chunk in (b"second", b"third"):
        assert isinstance(relay.receive(a, binary(chunk)), Held)
    relay.handle_kernel_message(_idle("bin-b'first'"))
    merged, check = relay.take_kernel_writes()
    assert check.content["data"] == {"method": "request_state"}, "after the update"
    assert merged.buffers == [b"third"] and merged.content["data"]["buffer_paths"] == [["value"]]


def test_a_waiting_update_reaches_the_kernel_after_its_sender_left() -> None:
    relay, kernel, (a, b) = world(2, paced=True)
    drag(a, [1, 2, 3])
    a.leave()
    settle(kernel, [b])
    assert kernel.models["m"]["value"] == 3 and b.value("m") == 3
    assert relay.unsettled() == {"updates": 0, "waiting": 0, "traits": 0, "state_checks": 0}


def test_a_restart_drops_what_waited_for_the_old_kernel() -> None:
    relay, _kernel, (a, _b) = world(2, paced=True)
    drag(a, [1, 2, 3])
    assert relay.unsettled()["waiting"] == 1
    relay.reset()
    relay.handle_kernel_message(_idle(a.sent[0].msg_id))
    assert relay.take_kernel_writes() == [] and not relay.throttle


def test_a_closed_model_sends_nothing_that_waited() -> None:
    relay, kernel, (a, _b) = world(2, paced=True)
    drag(a, [1, 2, 3])
    kernel.publish("comm_close", {"comm_id": "m", "data": {}})
    relay.handle_kernel_message(_idle(a.sent[0].msg_id))
    assert relay.take_kernel_writes() == []


def test_a_coerced_merged_value_ends_everywhere() -> None:
    relay, kernel, (a, b, c) = world(3, maximum=5, paced=True)
    drag(a, [1, 7, 9])
    assert b.value("m") == 9 and c.value("m") == 9
    settle(kernel, [a, b, c])
    assert kernel.models["m"]["value"] == 5
    assert_settled(relay, kernel, [a, b, c])


def test_a_refused_update_does_not_hold_the_browser_back() -> None:
    """Refused before the kernel sees it, an update gets no idle from the kernel: without
    the relay's, widget.ts would keep every later change of that model to itself."""
    relay, kernel, (a, b) = world(2, paced=True, throttle=False)
    relay.limits = Limits(allowed_msg_types=frozenset({"execute_request"}))
    a.set("m", value=4)
    relay.limits = Limits()
    a.pump()
    a.set("m", value=6)
    a.pump()
    assert updates_sent_by(a) == [4, 6] and b.value("m") == 6
    settle(kernel, [a, b])
    assert_settled(relay, kernel, [a, b])


def test_two_writers_each_keep_one_update_with_the_kernel() -> None:
    relay, kernel, (a, b, c) = world(3, maximum=1000, paced=True)
    for step in range(1, 6):
        drag(a, [step])
        drag(b, [100 + step])
    assert len(kernel.inbox["c0"]) == 1 and len(kernel.inbox["c1"]) == 1
    settle(kernel, [a, b, c])
    assert_settled(relay, kernel, [a, b, c])


def test_release_type_follows_the_servers_untracked_types() -> None:
    assert release_type_for(["stream", "comm_info_request", "comm_msg"]) == "comm_msg"
    assert release_type_for(["stream", "kernel_info_request"]) == "kernel_info_request"
    assert release_type_for(["stream"]) == "stream"
    assert release_type_for([]) is None
    relay = KernelRelay("k", release_type=None)
    assert not relay.paces_updates, "no type leaves the status alone: browsers pace themselves"


def test_throttle_bookkeeping_is_empty_after_clear() -> None:
    throttle = UpdateThrottle()
    assert throttle.admit(("m", "c"), "u1") and not throttle.admit(("m", "c"), "u2")
    throttle.clear()
    assert not throttle and throttle.admit(("m", "c"), "u3")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    writers=st.integers(2, 3),
    echo=st.booleans(),
    throttle=st.booleans(),
    seed=st.integers(0, 2**32),
    steps=st.integers(1, 30),
)
def test_random_writers_converge_with_no_bookkeeping_left(
    writers: int, echo: bool, throttle: bool, seed: int, steps: int
) -> None:
    rng = random.Random(seed)
    relay, kernel, frontends = world(
        writers + 1, echo=echo, maximum=80, paced=True, throttle=throttle
    )
    for _ in range(steps):
        action = rng.random()
        if action < 0.6:
            writer = rng.choice(frontends[:writers])
            trait = rng.choice(["value", "value", "description"])
            writer.set("m", **{trait: rng.randint(0, 100) if trait == "value" else "d"})
        elif action < 0.8:
            rng.choice(frontends).pump()
        else:
            kernel.collect()
            busy = [client for client, queue in kernel.inbox.items() if queue]
            if busy:
                kernel.process_next(rng.choice(busy))
        if throttle:
            for frontend in frontends:
                queued = [
                    e for e in kernel.inbox[frontend.client_id] if e.content["comm_id"] == "m"
                ]
                assert len(queued) <= 1, "one update per model and browser with the kernel"
    settle(kernel, frontends)
    final = kernel.models["m"]
    for frontend in frontends:
        assert frontend.models["m"]["value"] == final["value"], frontend.client_id
        assert frontend.models["m"]["description"] == final["description"]
        assert not frontend.expected and not frontend.waiting and not frontend.in_flight
    assert relay.table.get("m").state["value"] == final["value"]
    assert relay.unsettled() == {"updates": 0, "waiting": 0, "traits": 0, "state_checks": 0}


def _idle(msg_id: str) -> Envelope:
    """The kernel's idle after the update ``msg_id``."""
    parent = {"msg_id": msg_id, "msg_type": "comm_msg"}
    return compose("status", {"execution_state": "idle"}, session="kernel-session", parent=parent)
