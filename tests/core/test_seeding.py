"""core/seeding.py through KernelRelay: a relay that began following a kernel late fills
its table from the kernel, and until then lets the kernel answer widget loading."""

from __future__ import annotations

import uuid
from typing import Any

from jupyter_widget_relay.core.messages import Envelope, comm_msg, compose
from jupyter_widget_relay.core.relay import KernelRelay
from jupyter_widget_relay.core.seeding import split_update_states
from jupyter_widget_relay.core.verdict import Forward

from .helpers import Port
from .simulation import KERNEL_SESSION, receive

SLIDER = {
    "_model_name": "IntSliderModel",
    "_model_module": "@jupyter-widgets/controls",
    "_model_module_version": "2.0.0",
    "value": 5,
}


def kernel_opens(relay: KernelRelay, model_id: str, state: dict[str, Any]) -> None:
    relay.handle_kernel_message(
        compose(
            "comm_open",
            {"comm_id": model_id, "target_name": "jupyter.widget", "data": {"state": state}},
            session=KERNEL_SESSION,
        )
    )


def reply(request: Envelope, msg_type: str, content: dict[str, Any]) -> Envelope:
    return compose(
        msg_type, content, session=KERNEL_SESSION, parent=request.header, channel="shell"
    )


def widget_comms_reply(request: Envelope, *model_ids: str) -> Envelope:
    """The kernel's comm_info_reply: ``model_ids`` are its widget comms."""
    comms = {model_id: {"target_name": "jupyter.widget"} for model_id in model_ids}
    return reply(request, "comm_info_reply", {"status": "ok", "comms": comms})


def loading_requests(session: str) -> tuple[Envelope, Envelope]:
    control = uuid.uuid4().hex
    opened = compose(
        "comm_open",
        {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
        session=session,
    )
    info = compose("comm_info_request", {"target_name": "jupyter.widget"}, session=session)
    return opened, info


def test_a_late_relay_asks_the_kernel_and_lets_it_answer_until_seeded() -> None:
    relay = KernelRelay("k")
    port = Port("a")
    relay.attach(port)
    relay.begin_seeding()
    [info_request] = relay.take_kernel_writes()
    assert info_request.msg_type == "comm_info_request" and info_request.channel == "shell"
    assert not relay.seed.complete
    for request in loading_requests("a"):
        assert isinstance(receive(relay, port, request), Forward), "the kernel answers"

    relay.handle_kernel_reply(widget_comms_reply(info_request, "s"))
    opened, asked = relay.take_kernel_writes()
    assert opened.msg_type == "comm_open"
    assert opened.content["target_name"] == "jupyter.widget.control"
    assert opened.metadata == {"version": "1.0.0"}, "ipywidgets checks the version"
    assert asked.content["data"] == {"method": "request_states"}
    control = opened.content["comm_id"]
    assert not relay.seed.complete

    # the answer, on iopub: a slider with a binary trait; another model opened since wins
    kernel_opens(relay, "newer", {**SLIDER, "value": 9})
    answer = comm_msg(
        control,
        {
            "method": "update_states",
            "states": {
                "s": {"model_name": "IntSliderModel", "state": {**SLIDER, "data": None}},
                "newer": {"model_name": "IntSliderModel", "state": {**SLIDER, "value": 1}},
            },
            "buffer_paths": [["s", "state", "data"]],
        },
        session=KERNEL_SESSION,
        parent=asked.header,
        buffers=[b"\x01\x02"],
    )
    before = len(port.sent)
    relay.handle_kernel_message(answer)
    assert len(port.sent) == before, "the answer to the relay goes to no client"
    assert relay.seed.complete
    assert relay.table.get("s") is not None and relay.table.get("s").state["value"] == 5
    assert relay.table.get("s").buffers["data"], "the buffer is kept"
    assert relay.table.get("newer").state["value"] == 9
    [closed] = relay.take_kernel_writes()
    assert closed.msg_type == "comm_close" and closed.content["comm_id"] == control

    # complete: the relay answers widget loading from the table
    opened_again, info = loading_requests("a")
    assert not isinstance(receive(relay, port, opened_again), Forward)
    assert not isinstance(receive(relay, port, info), Forward)
    answered = port.sent[-2]
    assert set(answered.content["comms"]) == {"s", "newer"}


def test_a_table_that_knows_every_comm_is_complete_without_asking_for_states() -> None:
    relay = KernelRelay("k")
    kernel_opens(relay, "s", SLIDER)
    relay.begin_seeding()
    [info_request] = relay.take_kernel_writes()
    relay.handle_kernel_reply(widget_comms_reply(info_request, "s"))
    assert relay.seed.complete and relay.take_kernel_writes() == []


def test_a_failed_comm_info_leaves_the_kernel_answering() -> None:
    relay = KernelRelay("k")
    relay.begin_seeding()
    [info_request] = relay.take_kernel_writes()
    relay.handle_kernel_reply(reply(info_request, "comm_info_reply", {"status": "error"}))
    assert not relay.seed.complete
    port = Port("a")
    relay.attach(port)
    assert all(isinstance(receive(relay, port, r), Forward) for r in loading_requests("a"))


def test_replies_to_others_and_a_restart() -> None:
    relay = KernelRelay("k")
    relay.begin_seeding()
    assert len(relay.take_kernel_writes()) == 1
    other = compose("comm_info_request", {}, session="x", channel="shell")
    relay.handle_kernel_reply(reply(other, "comm_info_reply", {"status": "ok", "comms": {}}))
    assert not relay.seed.complete, "a reply to another request is not the answer"
    relay.reset()  # the kernel restarted: it has no widgets
    assert relay.seed.complete and relay.take_kernel_writes() == []


def test_split_update_states_gives_each_model_its_buffers() -> None:
    models = list(
        split_update_states(
            {
                "states": {"a": {"state": {"x": None}}, "b": {"state": {}}, "bad": 3},
                "buffer_paths": [["a", "state", "x"], ["b", "state", "y", 0], "junk", ["b", "y"]],
            },
            [b"1", b"2", b"3"],
        )
    )
    assert models == [
        ("a", {"state": {"x": None}, "buffer_paths": [["x"]]}, [b"1"]),
        ("b", {"state": {}, "buffer_paths": [["y", 0]]}, [b"2"]),
    ]


def test_the_answer_may_come_on_a_browsers_control_comm() -> None:
    """ipywidgets answers on the control comm opened last: the relay's answer on a
    browser's comm (parent: the relay's request) seeds the table and still reaches the
    browsers; a browser's answer on the relay's comm seeds it and reaches nobody."""
    for on_browser_comm in (True, False):
        relay = KernelRelay("k")
        port = Port("a")
        relay.attach(port)
        relay.begin_seeding()
        [info_request] = relay.take_kernel_writes()
        relay.handle_kernel_reply(widget_comms_reply(info_request, "s"))
        opened, asked = relay.take_kernel_writes()
        browser_request = compose("comm_msg", {}, session="a", channel="shell")
        comm = "browser-control" if on_browser_comm else opened.content["comm_id"]
        parent = asked.header if on_browser_comm else browser_request.header
        answer = comm_msg(
            comm,
            {"method": "update_states", "states": {"s": {"state": SLIDER}}, "buffer_paths": []},
            session=KERNEL_SESSION,
            parent=parent,
        )
        before = len(port.sent)
        relay.handle_kernel_message(answer)
        assert relay.seed.complete and relay.table.get("s") is not None
        assert len(port.sent) == before + (1 if on_browser_comm else 0)
