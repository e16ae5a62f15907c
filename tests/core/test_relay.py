"""core/relay.py: routing between kernel and clients, and the kernel kept the authority
(verdicts, identity, values, isolation)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_widget_relay.core.limits import Limits
from jupyter_widget_relay.core.messages import Envelope, comm_msg, compose
from jupyter_widget_relay.core.relay import KernelRelay
from jupyter_widget_relay.core.verdict import Answered, Forward, Held, Refused

from .helpers import kernel_open, model_state
from .simulation import KERNEL_SESSION, Frontend, forwards, header, receive, world


class Port:
    def __init__(self, client_id: str, fail: bool = False) -> None:
        self.client_id = client_id
        self.sent: list[Envelope] = []
        self.fail = fail
        self.aborted = False

    def send(self, envelope: Envelope) -> None:
        if self.fail:
            raise RuntimeError("socket state went wrong")
        self.sent.append(envelope)

    def abort(self) -> None:
        self.aborted = True


def update(client: str, value: Any, **extra: Any) -> Envelope:
    state = {"value": value, **extra}
    return Envelope(
        header("comm_msg", client),
        {},
        content={"comm_id": "m", "data": {"method": "update", "state": state}},
        channel="shell",
    )


def fingerprint(relay: KernelRelay) -> Any:
    return {mid: dict(m.state) for mid, m in relay.table.models.items()}


# -- verdicts: policy first ------------------------------------------------------------


def test_disallowed_type_is_refused_before_anything_changes() -> None:
    relay, _kernel, (a, b) = world(2)
    relay.limits = Limits(allowed_msg_types=frozenset({"execute_request"}))
    before, seen_by_b = fingerprint(relay), len(b.received)
    refused = update("c0", 9)
    verdict_msg_id = refused.msg_id
    verdict = receive(relay, a, refused)
    assert isinstance(verdict, Refused) and verdict.reason == "not_allowed"
    assert fingerprint(relay) == before and len(b.received) == seen_by_b
    assert not relay.sync._pending
    restore, notice, release = a.received[-3:]
    assert notice.msg_type == "stream" and "not allowed" in notice.content["text"]
    assert release.msg_type == "status" and release.parent_header["msg_id"] == verdict_msg_id
    assert release.parent_header["msg_type"] == "comm_info_request", "an untracked type"
    assert restore.content["data"] == {
        "method": "echo_update",
        "state": {"value": 0},
        "buffer_paths": [],
    }


def test_unknown_channel_is_refused() -> None:
    relay, _kernel, (a,) = world(1)
    env = update("c0", 3)
    env.channel = "iopub"
    assert isinstance(relay.receive(a, env), Refused)
    assert relay.table.get("m").state["value"] == 0


def test_control_and_stdin_go_to_the_kernel_untouched() -> None:
    relay, _kernel, (a,) = world(1)
    for channel in ("control", "stdin"):
        env = Envelope(header("input_reply", "c0"), {}, content={"value": "x"}, channel=channel)
        verdict = relay.receive(a, env)
        assert isinstance(verdict, Forward) and verdict.envelope is env


def test_answered_from_the_table() -> None:
    relay, _kernel, (a,) = world(1)
    env = Envelope(
        header("comm_msg", "c0"), {}, content={"comm_id": "m", "data": {"method": "request_state"}}
    )
    assert isinstance(receive(relay, a, env), Answered)
    reply, release = a.received[-2:]
    assert reply.content["data"]["state"]["value"] == 0
    assert release.msg_type == "status" and release.parent_header["msg_id"] == env.msg_id


# -- identity ----------------------------------------------------------------------------


def test_comm_open_reusing_a_model_id_is_refused() -> None:
    relay, _kernel, (a, b) = world(2)
    seen_by_b = len(b.received)
    state = {
        "_model_name": "IntSliderModel",
        "_model_module": "@jupyter-widgets/controls",
        "_model_module_version": "2.0.0",
        "value": 99,
    }
    env = Envelope(
        header("comm_open", "c0"),
        {},
        content={"comm_id": "m", "target_name": "jupyter.widget", "data": {"state": state}},
    )
    verdict = receive(relay, a, env)
    assert isinstance(verdict, Refused) and verdict.reason == "model_exists"
    assert relay.table.get("m").state["value"] == 0
    assert len(b.received) == seen_by_b
    assert relay.counters["rejected", "client", "model_exists"] == 1


def test_unknown_traits_are_refused_alone() -> None:
    relay, _kernel, (a, b) = world(2)
    env = update("c0", 4, junk="x" * 100)
    env.content["data"]["buffer_paths"] = [["blob"]]
    env.buffers = [b"\x00" * 10]
    verdict = receive(relay, a, env)
    assert isinstance(verdict, Forward) and verdict.envelope is env, "the kernel gets it as sent"
    model = relay.table.get("m")
    assert model.state["value"] == 4 and "junk" not in model.state and not model.buffers
    assert len(relay.table.store) == 0, "the refused buffer is not kept"
    echo = b.received[-1]
    assert echo.content["data"]["state"] == {"value": 4} and echo.buffers == []
    notice, own_echo, release = a.received[-3:]
    assert "'junk'" in notice.content["text"]
    assert own_echo.content["data"]["state"] == {"value": 4}, "no echo awaited for junk"
    assert release.msg_type == "status"
    assert relay.counters["rejected", "client", "unknown_trait"] == 1
    again = update("c0", 5, junk="y")
    assert isinstance(receive(relay, a, again), Held), "the kernel has one already"
    assert relay.counters["rejected", "client", "unknown_trait"] == 2, "every one counted"
    notices = [e for e in a.received if e.msg_type == "stream"]
    assert len(notices) == 1, "the sender is told once per model and trait"
    assert relay.table.get("m").state["value"] == 5


# -- values ------------------------------------------------------------------------------


def test_value_refused_after_its_echo_is_corrected_by_a_state_check() -> None:
    relay, kernel, (a, b) = world(2, refused=frozenset({"bad"}), value=5)
    a.set("m", value="bad")
    assert b.value("m") == "bad", "peers see the change at once"
    kernel.process_next("c0")
    assert [w.content["data"] for w in kernel.inbox["relay"]] == [{"method": "request_state"}]
    kernel.process_next("relay")
    assert relay.table.get("m").state["value"] == 5
    assert a.value("m") == 5 and b.value("m") == 5
    assert not relay.checks
    late = Frontend("c2", relay, kernel)
    late.join()
    assert late.value("m") == 5


def test_a_check_does_not_override_a_newer_pending_update() -> None:
    relay, kernel, (a,) = world(1)
    a.set("m", value=1)
    kernel.process_next("c0")  # the check is queued
    a.set("m", value=2)  # not yet handled when the check's answer comes
    kernel.process_next("relay")
    assert relay.table.get("m").state["value"] == 2 and a.value("m") == 2
    kernel.process_next("c0")
    kernel.process_next("relay")
    assert relay.table.get("m").state["value"] == 2 == kernel.models["m"]["value"]
    assert relay.table.get("m").sync is None


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    echo=st.booleans(),
    writers=st.integers(2, 3),
    ops=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([1, 2, "bad", 4, "worse"]))),
    order=st.lists(st.integers(0, 9), max_size=30),
)
def test_writers_and_a_refusing_kernel_converge(
    echo: bool, writers: int, ops: list[tuple[int, Any]], order: list[int]
) -> None:
    """Random writers, some values the kernel refuses after echoing them, any processing
    order: table, every frontend, a late joiner and the kernel agree; nothing is left."""
    relay, kernel, frontends = world(writers, echo=echo, refused=frozenset({"bad", "worse"}))
    choices = iter(order)
    for who, value in ops:
        if who == 3:
            busy = [client for client, queue in kernel.inbox.items() if queue]
            if busy:
                kernel.process_next(busy[next(choices, 0) % len(busy)])
        else:
            frontends[who % writers].set("m", value=value)
    while any(kernel.inbox.values()):
        busy = [client for client, queue in kernel.inbox.items() if queue]
        kernel.process_next(busy[next(choices, 0) % len(busy)])
    expected = kernel.models["m"]["value"]
    assert relay.table.get("m").state["value"] == expected
    for frontend in frontends:
        assert frontend.value("m") == expected, frontend.client_id
        assert not frontend.expected, "a frontend would drop echoes forever"
    late = Frontend("late", relay, kernel)
    late.join()
    assert late.value("m") == expected
    assert relay.table.get("m").sync is None
    assert not relay.sync._pending and not relay.checks


# -- isolation ---------------------------------------------------------------------------


def test_a_failing_port_is_detached_and_the_others_still_served() -> None:
    relay, kernel, (a, b) = world(2)
    broken = Port("broken", fail=True)
    relay.attach(broken)
    kernel.set("m", value=8)
    assert a.value("m") == 8 and b.value("m") == 8
    assert relay.table.get("m").state["value"] == 8
    assert not relay.is_attached("broken") and broken.aborted
    assert relay.counters["relay", "send_failed"] == 1
    kernel.set("m", value=9)
    assert b.value("m") == 9


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    opens=st.lists(
        st.tuples(st.sampled_from(["m", "n", "fresh", "m"]), st.integers(0, 1), st.integers(0, 99)),
        max_size=12,
    )
)
def test_client_comm_opens_never_replace_a_kernel_model(opens: list[tuple[str, int, int]]) -> None:
    """Whatever ids clients open comms with, the kernel's models keep their state, and
    peers never hear of a refused open."""
    relay, kernel, frontends = world(2)
    kernel.create_slider("n", 3)
    kept = {mid: dict(m.state) for mid, m in relay.table.models.items()}
    for comm_id, who, value in opens:
        sender, peer = frontends[who], frontends[1 - who]
        seen_by_peer = len(peer.received)
        state = {
            "_model_name": "IntSliderModel",
            "_model_module": "@jupyter-widgets/controls",
            "_model_module_version": "2.0.0",
            "value": value,
        }
        env = Envelope(
            header("comm_open", sender.client_id),
            {},
            content={"comm_id": comm_id, "target_name": "jupyter.widget", "data": {"state": state}},
        )
        existed = comm_id in relay.table
        verdict = receive(relay, sender, env)
        if existed:
            assert isinstance(verdict, Refused) and len(peer.received) == seen_by_peer
        for model_id, state_before in kept.items():
            assert relay.table.get(model_id).state == state_before


def test_a_state_check_never_takes_an_output_models_outputs_back() -> None:
    """The relay captured outputs the kernel's Output model may not have been written yet:
    a check's answer (the kernel's older list) must not replace them."""
    relay, kernel, (a,) = world(1)
    state = {
        "_model_name": "OutputModel",
        "_model_module": "@jupyter-widgets/output",
        "_model_module_version": "1.0.0",
        "outputs": [],
        "msg_id": "",
        "tabbable": None,
    }
    kernel.models["out"] = dict(state)
    kernel.publish(
        "comm_open",
        {"comm_id": "out", "target_name": "jupyter.widget", "data": {"state": state}},
    )
    relay.handle_kernel_message(
        comm_msg("out", {"method": "update", "state": {"msg_id": "cell"}}, session="k")
    )
    kernel.models["out"]["msg_id"] = "cell"
    printed = {"name": "stdout", "text": "captured\\n"}
    relay.handle_kernel_message(compose("stream", printed, session="k", parent={"msg_id": "cell"}))
    assert relay.table.get("out").state["outputs"], "captured by the relay"
    a.models["out"] = dict(relay.table.get("out").state)
    a.set("out", tabbable=True)
    kernel.process_next("c0")
    queue = kernel.inbox["relay"]  # the check overtakes the relay's outputs write
    queue.rotate(-[w.content["data"]["method"] for w in queue].index("request_state"))
    kernel.process_next("relay")  # the kernel answers with its (empty) outputs
    assert relay.table.get("out").state["outputs"][0]["text"] == "captured\\n"


def test_relay_routes_kernel_messages_to_all_and_snapshots_to_one() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    kernel_open(relay, "m", value=1)
    assert len(a.sent) == len(b.sent) == 1
    control = Envelope(
        header("comm_open", "a"),
        {},
        content={"comm_id": "ctl", "target_name": "jupyter.widget.control", "data": {}},
    )
    assert forwards(relay, a, control) is False
    request = Envelope(
        header("comm_msg", "a"),
        {},
        content={"comm_id": "ctl", "data": {"method": "request_states"}},
    )
    assert forwards(relay, a, request) is False
    reply, release = a.sent[-2:]
    assert release.content == {"execution_state": "idle"}, "the request's future completes"
    assert release.parent_header["msg_id"] == request.msg_id
    assert release.parent_header["msg_type"] == "comm_info_request", "an untracked type"
    assert reply.content["data"]["method"] == "update_states"
    assert reply.parent_header["msg_id"] == request.msg_id
    assert reply.header["session"] == KERNEL_SESSION, "frontends drop other sessions' messages"
    assert len(b.sent) == 1
    close = Envelope(header("comm_close", "a"), {}, content={"comm_id": "ctl", "data": {}})
    assert forwards(relay, a, close) is False
    per_model = Envelope(
        header("comm_msg", "b"), {}, content={"comm_id": "m", "data": {"method": "request_state"}}
    )
    assert forwards(relay, b, per_model) is False
    assert b.sent[-1].msg_type == "status"
    assert b.sent[-2].content["data"] == {
        "method": "update",
        "state": model_state(value=1),
        "buffer_paths": [],
    }


def test_unknown_comms_and_custom_messages_pass_through() -> None:
    relay = KernelRelay("k")
    a = Port("a")
    relay.attach(a)
    kernel_open(relay, "m")
    custom = Envelope(
        header("comm_msg", "a"),
        {},
        content={"comm_id": "m", "data": {"method": "custom", "content": {}}},
    )
    assert forwards(relay, a, custom) is True
    other = Envelope(header("comm_msg", "a"), {}, content={"comm_id": "zzz", "data": {}})
    assert forwards(relay, a, other) is True
    version = relay.table.get("m").version
    relay.handle_kernel_message(
        comm_msg("m", {"method": "custom", "content": {"x": 1}}, session=KERNEL_SESSION)
    )
    assert relay.table.get("m").version == version
    assert a.sent[-1].content["data"]["method"] == "custom"


def test_malformed_client_widget_message_is_rejected_and_counted() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    kernel_open(relay, "m", value=1)
    bad = Envelope(
        header("comm_msg", "a"),
        {},
        content={
            "comm_id": "m",
            "data": {"method": "update", "state": {"value": 2}, "buffer_paths": [["value", 9]]},
        },
    )
    assert forwards(relay, a, bad) is False
    assert relay.counters["rejected", "client", "malformed"] == 1
    assert relay.table.get("m").state["value"] == 1
    assert len(b.sent) == 1


def test_client_closing_a_widget_it_opened_tells_peers() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    opened = Envelope(
        header("comm_open", "a"),
        {"version": "2.1.0"},
        content={
            "comm_id": "m",
            "target_name": "jupyter.widget",
            "data": {"state": model_state(), "buffer_paths": []},
        },
    )
    assert forwards(relay, a, opened) is True
    assert "m" in relay.table and not relay.table.get("m").opened_by_kernel
    close = Envelope(header("comm_close", "a"), {}, content={"comm_id": "m", "data": {}})
    assert forwards(relay, a, close) is True
    assert "m" not in relay.table
    assert [m.msg_type for m in b.sent] == ["comm_open", "comm_close"] and not a.sent


def test_a_client_cannot_close_a_model_the_kernel_opened() -> None:
    """JupyterLab closes every comm it has no handler for: one page without a widget
    manager must not end the kernel's widget for everyone."""
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    kernel_open(relay, "m")
    close = Envelope(header("comm_close", "a"), {}, content={"comm_id": "m", "data": {}})
    assert forwards(relay, a, close) is False
    assert "m" in relay.table
    assert [m.msg_type for m in b.sent] == ["comm_open"]
    assert relay.counters["rejected", "client", "kernel_model"] == 1
    notice = [m for m in a.sent if m.msg_type == "stream"]
    assert "opened by the kernel" in notice[0].content["text"]


def test_reset_forgets_models_and_marks_changes() -> None:
    calls = []
    relay = KernelRelay("k", on_dirty=lambda: calls.append(1))
    kernel_open(relay, "m")
    models, _ = relay.take_changes()
    assert models == {"m"} and calls == [1]
    relay.reset()
    assert len(relay.table) == 0
    assert relay.take_changes()[0] == {"m"}
    json.dumps(relay.summary())
