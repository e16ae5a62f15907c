"""core/output_capture.py: which Output model captures a kernel output, and the nbformat
outputs list it then has (as a frontend's OutputAreaModel would store them)."""

from __future__ import annotations

from typing import Any

from jupyter_widget_relay.core.messages import Envelope, compose
from jupyter_widget_relay.core.output_capture import OutputCapture, is_output_model


def output(msg_type: str, parent: str | None = "cell", **content: Any) -> Envelope:
    return compose(msg_type, content, session="k", parent={"msg_id": parent} if parent else None)


def stream(text: str, name: str = "stdout") -> Envelope:
    return output("stream", name=name, text=text)


def display(text: str, display_id: str | None = None) -> Envelope:
    transient = {"display_id": display_id} if display_id else {}
    return output("display_data", data={"text/plain": text}, metadata={}, transient=transient)


def run(capture: OutputCapture, *messages: Envelope, outputs: list[Any] | None = None) -> Any:
    """The outputs after each message in turn (unchanged ones stay as they were)."""
    current: list[Any] = list(outputs or [])
    for env in messages:
        changed = capture.apply("out", current, env)
        if changed is not None:
            current = changed
    return current


def test_only_the_output_widget_model_is_one() -> None:
    assert is_output_model("OutputModel", "@jupyter-widgets/output")
    assert not is_output_model("OutputModel", "@jupyter-widgets/controls")
    assert not is_output_model("IntSliderModel", "@jupyter-widgets/output")


def test_each_message_type_becomes_its_nbformat_output() -> None:
    capture = OutputCapture()
    outputs = run(
        capture,
        stream("hi\n"),
        output("display_data", data={"text/plain": "d"}, metadata={"m": 1}),
        output("execute_result", data={"text/plain": "r"}, metadata={}, execution_count=3),
        output("error", ename="ValueError", evalue="bad", traceback=["tb"]),
    )
    assert outputs == [
        {"output_type": "stream", "name": "stdout", "text": "hi\n"},
        {"output_type": "display_data", "data": {"text/plain": "d"}, "metadata": {"m": 1}},
        {
            "output_type": "execute_result",
            "data": {"text/plain": "r"},
            "metadata": {},
            "execution_count": 3,
        },
        {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["tb"]},
    ]


def test_consecutive_streams_of_one_name_merge_and_others_do_not() -> None:
    capture = OutputCapture()
    outputs = run(
        capture,
        stream("a"),
        stream("b"),
        stream("!", name="stderr"),
        stream("c"),
        display("d"),
        stream("e"),
        stream("f"),
    )
    assert [(o["output_type"], o.get("name"), o.get("text")) for o in outputs] == [
        ("stream", "stdout", "ab"),
        ("stream", "stderr", "!"),
        ("stream", "stdout", "c"),
        ("display_data", None, None),
        ("stream", "stdout", "ef"),
    ]


def test_apply_returns_a_new_list_and_leaves_the_given_one_alone() -> None:
    capture = OutputCapture()
    before = [{"output_type": "stream", "name": "stdout", "text": "a"}]
    after = capture.apply("out", before, stream("b"))
    assert after == [{"output_type": "stream", "name": "stdout", "text": "ab"}]
    assert before == [{"output_type": "stream", "name": "stdout", "text": "a"}]


def test_clear_output_empties_now_or_with_the_next_output() -> None:
    capture = OutputCapture()
    full = run(capture, stream("a"), display("b"))
    assert capture.apply("out", full, output("clear_output", wait=False)) == []
    assert capture.apply("out", [], output("clear_output", wait=False)) is None, "no change"
    assert capture.apply("out", full, output("clear_output", wait=True)) is None
    assert run(capture, stream("new"), outputs=full) == [
        {"output_type": "stream", "name": "stdout", "text": "new"}
    ]
    again = run(capture, stream("more"), outputs=full)
    assert len(again) == 3 and again[-1]["text"] == "more", "a pending clear happens once"


def test_update_display_data_replaces_the_displays_with_that_id() -> None:
    capture = OutputCapture()
    outputs = run(capture, display("one", "d1"), display("other", "d2"), display("two", "d1"))
    update = output(
        "update_display_data",
        data={"text/plain": "new"},
        metadata={"u": 1},
        transient={"display_id": "d1"},
    )
    updated = capture.apply("out", outputs, update)
    assert [o["data"]["text/plain"] for o in updated] == ["new", "other", "new"]
    assert updated[0]["metadata"] == {"u": 1} and updated[1]["metadata"] == {}
    unknown = output("update_display_data", data={}, metadata={}, transient={"display_id": "x"})
    assert capture.apply("out", updated, unknown) is None
    assert capture.apply("out", updated, output("clear_output")) == []
    assert capture.apply("out", [], update) is None, "a clear forgets the display ids"


def test_malformed_transients_and_other_types_change_nothing() -> None:
    capture = OutputCapture()
    odd = output("display_data", data={"text/plain": "x"}, metadata={}, transient=[1])
    assert capture.apply("out", [], odd) == [
        {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}}
    ]
    update = output("update_display_data", data={}, metadata={}, transient="d1")
    assert capture.apply("out", [], update) is None
    assert capture.apply("out", [], output("execute_input", code="1")) is None


def test_target_is_the_model_that_started_capturing_the_parent_last() -> None:
    capture = OutputCapture()
    capture.watch("outer", "cell")
    capture.watch("inner", "cell")
    capture.watch("elsewhere", "other-cell")
    assert capture.target(stream("x")) == "inner"
    assert capture.target(output("stream", parent="other-cell", text="x")) == "elsewhere"
    assert capture.target(output("stream", parent="nobody", text="x")) is None
    assert capture.target(output("stream", parent=None, text="x")) is None
    assert capture.target(output("status", execution_state="busy")) is None
    assert capture.target(output("comm_msg", comm_id="m", data={})) is None
    capture.watch("inner", "")
    assert capture.target(stream("x")) == "outer", "the model that stops is out"
    capture.forget("outer")
    assert capture.target(stream("x")) is None
    capture.clear()
    assert capture.target(output("stream", parent="other-cell", text="x")) is None


def test_watching_another_message_moves_the_model() -> None:
    capture = OutputCapture()
    capture.watch("out", "cell-1")
    capture.watch("out", "cell-2")
    assert capture.target(output("stream", parent="cell-1", text="x")) is None
    assert capture.target(output("stream", parent="cell-2", text="x")) == "out"
    capture.watch("out", None)  # not a string: stops capturing
    assert capture.target(output("stream", parent="cell-2", text="x")) is None


def test_forget_drops_a_pending_clear() -> None:
    capture = OutputCapture()
    capture.watch("out", "cell")
    full = run(capture, stream("a"))
    capture.apply("out", full, output("clear_output", wait=True))
    capture.forget("out")
    assert run(capture, stream("b"), outputs=full)[-1]["text"] == "ab"
