"""core/outbox.py: a congested client's queue, where a later plain ``update`` supersedes
earlier queued ones whose traits it covers, and everything else keeps its order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_widget_relay.core.messages import Envelope, comm_msg, compose
from jupyter_widget_relay.core.outbox import Outbox


def update(model_id: str, method: str = "update", **state: Any) -> Envelope:
    return comm_msg(model_id, {"method": method, "state": state}, session="k")


def push(outbox: Outbox, envelope: Envelope, size: int = 10) -> Envelope:
    outbox.push(envelope, f"frame-{envelope.msg_id}", size)
    return envelope


def drain(outbox: Outbox) -> list[Envelope]:
    popped = []
    while (item := outbox.pop()) is not None:
        popped.append(item.envelope)
    return popped


def test_a_later_update_covering_an_earlier_ones_traits_replaces_it() -> None:
    outbox = Outbox()
    first = push(outbox, update("m", value=1), size=30)
    second = push(outbox, update("m", value=2, description="d"), size=50)
    assert outbox.coalesced == 1
    assert outbox.pending_bytes == 50
    assert drain(outbox) == [second]
    assert first not in drain(outbox)
    assert outbox.pending_bytes == 0


def test_an_update_that_covers_only_some_traits_replaces_nothing() -> None:
    outbox = Outbox()
    both = push(outbox, update("m", value=1, description="a"))
    one = push(outbox, update("m", value=2))
    assert outbox.coalesced == 0
    assert drain(outbox) == [both, one]


def test_updates_of_other_models_are_kept() -> None:
    outbox = Outbox()
    a = push(outbox, update("a", value=1))
    b = push(outbox, update("b", value=1))
    assert drain(outbox) == [a, b] and outbox.coalesced == 0


def test_echoes_custom_messages_and_other_types_keep_their_order() -> None:
    outbox = Outbox()
    echo = push(outbox, update("m", "echo_update", value=1))
    custom = push(outbox, comm_msg("m", {"method": "custom", "content": {"x": 1}}, session="k"))
    stream = push(outbox, compose("stream", {"name": "stdout", "text": "x"}, session="k"))
    later_echo = push(outbox, update("m", "echo_update", value=2))
    plain = push(outbox, update("m", value=3))
    assert outbox.coalesced == 0
    assert drain(outbox) == [echo, custom, stream, later_echo, plain]


def test_updates_with_buffers_are_never_coalesced() -> None:
    outbox = Outbox()
    with_buffers = push(
        outbox, comm_msg("m", {"method": "update", "state": {}}, session="k", buffers=[b"png"])
    )
    push(outbox, update("m", value=1))
    data = {"method": "update", "state": {}, "buffer_paths": [["value"]]}
    with_paths = push(outbox, comm_msg("m", data, session="k"))
    later = push(outbox, update("m", value=2))
    assert outbox.coalesced == 1, "only the plain update before the last one is replaced"
    assert drain(outbox) == [with_buffers, with_paths, later]


def test_an_update_already_sent_is_not_counted_again() -> None:
    outbox = Outbox()
    sent = push(outbox, update("m", value=1))
    item = outbox.pop()
    assert item is not None and item.envelope is sent and item.frame == f"frame-{sent.msg_id}"
    later = push(outbox, update("m", value=2))
    assert outbox.coalesced == 0
    assert drain(outbox) == [later]


def test_length_bytes_and_clear() -> None:
    outbox = Outbox()
    assert not outbox and outbox.pop() is None
    push(outbox, update("m", value=1), size=7)
    push(outbox, update("n", value=1), size=5)
    assert len(outbox) == 2 and outbox.pending_bytes == 12
    outbox.clear()
    assert len(outbox) == 0 and outbox.pending_bytes == 0 and outbox.pop() is None
    fresh = push(outbox, update("m", value=2))
    assert drain(outbox) == [fresh], "clear forgets the queued updates too"


# One operation: (kind, model, traits, pop first); kinds: plain update, echo, custom message.
operations = st.lists(
    st.tuples(
        st.sampled_from(["update", "echo_update", "custom"]),
        st.sampled_from(["a", "b"]),
        st.sets(st.sampled_from(["x", "y", "z"]), min_size=1),
        st.booleans(),
    ),
    max_size=25,
)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(ops=operations)
def test_the_frontend_ends_on_the_same_values_and_sees_every_other_message(
    ops: list[tuple[str, str, set[str], bool]],
) -> None:
    """Whatever is pushed and popped, a frontend that applies what comes out ends on the
    values it would have had from every message; only plain updates go missing; the byte
    count is that of what is still queued."""
    outbox = Outbox()
    pushed: list[Envelope] = []
    popped: list[Envelope] = []
    sizes: dict[str, int] = {}
    for step, (kind, model_id, traits, pop_first) in enumerate(ops):
        if pop_first and (item := outbox.pop()) is not None:
            popped.append(item.envelope)
        state = {name: step for name in sorted(traits)}
        if kind == "custom":
            env = comm_msg(model_id, {"method": "custom", "content": state}, session="k")
        else:
            env = update(model_id, kind, **state)
        sizes[env.msg_id] = step + 1
        outbox.push(env, "", step + 1)
        pushed.append(env)
        queued = [e for e in pushed if e not in popped]
        unmergeable = [e for e in queued if e.content["data"]["method"] != "update"]
        assert sum(sizes[e.msg_id] for e in unmergeable) <= outbox.pending_bytes
        assert outbox.pending_bytes <= sum(sizes[e.msg_id] for e in queued)
    popped += drain(outbox)
    assert outbox.pending_bytes == 0 and len(outbox) == 0
    assert len(popped) + outbox.coalesced == len(pushed)
    assert len({e.msg_id for e in popped}) == len(popped), "nothing comes out twice"
    order = {e.msg_id: index for index, e in enumerate(pushed)}
    assert [order[e.msg_id] for e in popped] == sorted(order[e.msg_id] for e in popped)
    kept = [e for e in pushed if e.content["data"]["method"] != "update"]
    assert [e for e in popped if e.content["data"]["method"] != "update"] == kept

    def values(messages: list[Envelope]) -> dict[tuple[str, str], Any]:
        shown: dict[tuple[str, str], Any] = {}
        for env in messages:
            data = env.content["data"]
            for name, value in data.get("state", {}).items():
                shown[env.content["comm_id"], name] = value
        return shown

    assert values(popped) == values(pushed)
