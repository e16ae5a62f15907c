"""core/state_checks.py: the relay's own ``request_state``s, one per model per write
interval, each open until the kernel answers it or goes idle without an answer."""

from __future__ import annotations

from jupyter_widget_relay.core.messages import Envelope, comm_msg
from jupyter_widget_relay.core.state_checks import StateChecks


def kernel_update(model_id: str, parent: Envelope | None) -> Envelope:
    data = {"method": "update", "state": {"value": 1}}
    return comm_msg(model_id, data, session="k", parent=parent.header if parent else None)


def test_checks_due_within_one_interval_are_sent_as_one_per_model() -> None:
    checks = StateChecks()
    assert not checks and checks.open_count == 0
    assert checks.add("b") is True, "the first check schedules a write"
    assert checks.add("a") is True
    assert checks.add("b") is False, "already due: nothing more to schedule"
    assert checks and checks.open_count == 2
    requests = checks.take("kernel-session", live={"a", "b"})
    assert [r.content["comm_id"] for r in requests] == ["a", "b"]
    for request in requests:
        assert request.msg_type == "comm_msg" and request.channel == "shell"
        assert request.content["data"] == {"method": "request_state"}
        assert request.header["session"] == "kernel-session"
    assert len({r.msg_id for r in requests}) == 2
    assert checks.take("kernel-session", live={"a", "b"}) == [], "nothing due any more"
    assert checks.open_count == 2, "sent, awaiting answers"


def test_a_model_checked_again_after_its_request_went_out_gets_another() -> None:
    checks = StateChecks()
    checks.add("m")
    [first] = checks.take("k", live={"m"})
    assert checks.add("m") is True
    [second] = checks.take("k", live={"m"})
    assert first.msg_id != second.msg_id and checks.open_count == 2


def test_closed_models_are_not_checked() -> None:
    checks = StateChecks()
    checks.add("gone")
    checks.add("live")
    assert [r.content["comm_id"] for r in checks.take("k", live={"live"})] == ["live"]
    assert checks.open_count == 1


def test_the_kernels_update_answers_its_check_once() -> None:
    checks = StateChecks()
    checks.add("m")
    [request] = checks.take("k", live={"m"})
    assert not checks.answers(kernel_update("m", None), "m"), "no parent: not an answer"
    assert not checks.answers(kernel_update("other", request), "other"), "not this model's"
    assert checks.answers(kernel_update("m", request), "m")
    assert not checks and not checks.answers(kernel_update("m", request), "m")
    assert not checks.unanswered(request.msg_id), "answered, so not unanswered"


def test_an_idle_without_an_answer_ends_the_check() -> None:
    checks = StateChecks()
    checks.add("m")
    [request] = checks.take("k", live={"m"})
    assert not checks.unanswered("some-other-request")
    assert checks.unanswered(request.msg_id)
    assert not checks and not checks.unanswered(request.msg_id)


def test_clear_forgets_due_and_sent_checks() -> None:
    checks = StateChecks()
    checks.add("a")
    [request] = checks.take("k", live={"a"})
    checks.add("b")
    checks.clear()
    assert not checks and checks.open_count == 0
    assert checks.take("k", live={"a", "b"}) == []
    assert not checks.answers(kernel_update("a", request), "a")
