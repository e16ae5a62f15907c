"""core/sync.py: TraitSync, one trait's confirmed value, pending client updates, what each
frontend shows (``broadcast`` unless ``divergent``) and whose own echo is awaited."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_widget_relay.core.buffers import TraitValue
from jupyter_widget_relay.core.trait_sync import Pending, TraitSync


def v(json: Any) -> TraitValue:
    return TraitValue(json)


def fresh(value: Any = 0) -> TraitSync:
    return TraitSync(confirmed=v(value), broadcast=v(value))


def test_a_fresh_trait_is_idle_and_everyone_shows_the_kernels_value() -> None:
    sync = fresh()
    assert sync.idle
    assert sync.current() == v(0) and sync.shown("anyone") == v(0)
    assert sync.stale_clients(["a", "b"]) == []


def test_a_client_update_is_pending_shown_to_all_and_its_echo_awaited() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    assert not sync.idle
    assert sync.current() == v(1), "the table serves the newest unhandled value"
    assert sync.confirmed == v(0)
    assert sync.shown("a") == sync.shown("b") == v(1)
    assert sync.expecting == {"a": "m1"} and sync.divergent == {}
    assert sync.stale_clients(["a", "b"]) == ["a", "b"], "until the kernel confirms"


def test_a_frontend_awaiting_its_own_echo_keeps_what_it_shows() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.client_update(Pending("m2", "b", v(2)))
    assert sync.broadcast == v(2)
    assert sync.divergent == {"a": v(1)}, "a drops b's echo while it awaits m1"
    assert sync.shown("b") == sync.shown("c") == v(2)
    assert sync.expecting == {"a": "m1", "b": "m2"}


def test_an_echo_for_the_awaited_message_reaches_its_waiting_clients() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.echo_to_all(v(1), "m1", sender="b")
    assert sync.shown("a") == v(1), "not dropped: it is the echo a waits for"
    sync.client_update(Pending("m2", "b", v(2)))
    sync.echo_to_all(v(3), "m9", sender=None)
    assert sync.divergent == {"a": v(1), "b": v(2)}
    assert sync.shown("c") == v(3)


def test_the_echo_a_frontend_awaits_is_applied_even_over_a_kernel_update() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.kernel_update(v(5), parent_msg_id=None)
    assert sync.shown("a") == v(5), "plain updates always apply"
    sync.echo_to_all(v(1), "m1", sender=None)
    assert sync.shown("a") == sync.shown("b") == v(1)
    assert sync.divergent == {}


def test_own_echo_ends_the_wait_only_for_the_awaited_message() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.client_update(Pending("m2", "a", v(2)))
    sync.own_echo("a", "m1", v(1))
    assert sync.expecting == {"a": "m2"} and sync.shown("a") == v(2), "a stale echo is dropped"
    sync.own_echo("b", "m2", v(2))
    assert sync.expecting == {"a": "m2"}, "another client's echo is no answer"
    sync.own_echo("a", "m2", v(2))
    assert sync.expecting == {} and sync.shown("a") == v(2)


def test_own_echo_of_a_value_other_than_the_broadcast_one_diverges() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.client_update(Pending("m2", "b", v(2)))
    sync.own_echo("a", "m1", v(1))
    assert sync.divergent == {"a": v(1)}
    sync.set_shown("a", v(2))
    assert sync.divergent == {}, "showing the broadcast value is no divergence"


def test_take_and_rename_pending_updates() -> None:
    sync = fresh()
    first, second = Pending("m1", "a", v(1)), Pending("m2", "b", v(2))
    sync.client_update(first)
    sync.client_update(second)
    sync.rename("m1", "merged")
    assert sync.take("m1") is None
    assert sync.take("merged") is first and first.msg_id == "merged"
    assert sync.pending == [second]
    assert sync.take("unknown") is None and sync.pending == [second]


def test_a_kernel_update_reaches_everyone_and_corrects_the_update_it_answers() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.client_update(Pending("m2", "b", v(2)))
    sync.kernel_update(v(5), parent_msg_id="m1")
    assert sync.confirmed == sync.broadcast == v(5) and sync.divergent == {}
    assert [p.corrected for p in sync.pending] == [True, False]
    assert sync.current() == v(2), "the newest update is not yet handled"
    sync.kernel_update(v(7), parent_msg_id="m2")
    assert sync.current() == v(7), "the kernel's own value for the newest update wins"
    sync.kernel_update(v(8), parent_msg_id=None)
    assert sync.current() == v(8)


def test_stale_clients_show_something_but_the_confirmed_value() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.client_update(Pending("m2", "b", v(2)))
    sync.take("m1")
    sync.take("m2")
    sync.confirmed = v(2)  # the kernel kept b's value
    assert sync.stale_clients(["a", "b", "c"]) == ["a"]
    sync.confirmed = v(1)
    assert sync.stale_clients(["a", "b", "c"]) == ["b", "c"]


def test_forget_removes_a_client_and_lets_the_trait_go_idle() -> None:
    sync = fresh()
    sync.client_update(Pending("m1", "a", v(1)))
    sync.client_update(Pending("m2", "b", v(2)))
    sync.take("m1")
    sync.take("m2")
    sync.confirmed = v(2)
    sync.forget("a")
    assert sync.divergent == {} and sync.expecting == {"b": "m2"}
    assert not sync.idle
    sync.own_echo("b", "m2", v(2))
    assert sync.idle


# Operations on one trait, over three clients: a client update, a client's own echo (of
# its awaited update, or of one it no longer awaits), a kernel update answering a pending
# update or none, the kernel handling a pending update, a client leaving.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.integers(0, 2), st.integers(0, 3)),
        st.tuples(st.just("own_echo"), st.integers(0, 2), st.booleans()),
        st.tuples(st.just("kernel"), st.integers(0, 3), st.integers(-1, 4)),
        st.tuples(st.just("handled"), st.integers(0, 4), st.integers(0, 3)),
        st.tuples(st.just("forget"), st.integers(0, 2), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(ops=operations)
def test_trait_sync_tracks_what_each_frontend_shows(ops: list[tuple[str, int, Any]]) -> None:
    """Against frontends modelled as ipywidgets' widget.ts: a plain update always
    applies, an echo is dropped while a frontend awaits its own, and its own echo ends
    the wait. TraitSync's ``shown``, ``expecting``, ``current`` and ``stale_clients``
    always match the model, and ``divergent`` never repeats the broadcast value."""
    clients = ["a", "b", "c"]
    shown = dict.fromkeys(clients, 0)
    awaiting: dict[str, str] = {}
    sent: dict[str, tuple[str, int]] = {}  # msg_id -> client, value
    pending: list[list[Any]] = []  # [msg_id, value, corrected]
    confirmed = 0
    sync = fresh()
    for step, (kind, first, second) in enumerate(ops):
        if kind == "update" and clients[first] in shown:
            client, msg_id = clients[first], f"m{step}"
            sent[msg_id] = (client, second)
            pending.append([msg_id, second, False])
            for other in shown:
                if other == client or other not in awaiting:
                    shown[other] = second
            awaiting[client] = msg_id
            sync.client_update(Pending(msg_id, client, v(second)))
        elif kind == "own_echo" and clients[first] in shown:
            client = clients[first]
            mine = [m for m, (c, _) in sent.items() if c == client]
            if not mine:
                continue
            msg_id = awaiting.get(client, mine[-1]) if second else mine[0]
            if awaiting.get(client) == msg_id:
                del awaiting[client]
                shown[client] = sent[msg_id][1]
            sync.own_echo(client, msg_id, v(sent[msg_id][1]))
        elif kind == "kernel":
            parent = pending[second][0] if 0 <= second < len(pending) else None
            confirmed = first
            shown = dict.fromkeys(shown, first)
            for entry in pending:
                if entry[0] == parent:
                    entry[2] = True
            sync.kernel_update(v(first), parent)
        elif kind == "handled" and first < len(pending):
            msg_id = pending.pop(first)[0]
            taken = sync.take(msg_id)
            assert taken is not None and taken.msg_id == msg_id
            confirmed = second
            sync.confirmed = v(second)
        elif kind == "forget" and clients[first] in shown:
            del shown[clients[first]]
            awaiting.pop(clients[first], None)
            sync.forget(clients[first])
        assert {c: sync.shown(c) for c in shown} == {c: v(x) for c, x in shown.items()}
        assert sync.expecting == awaiting
        assert all(value != sync.broadcast for value in sync.divergent.values())
        assert set(sync.divergent) <= set(shown), "only attached clients have entries"
        newest = pending[-1] if pending else None
        expected = newest[1] if newest is not None and not newest[2] else confirmed
        assert sync.current() == v(expected)
        stale = sync.stale_clients(list(shown))
        assert sorted(stale) == sorted(c for c, x in shown.items() if x != confirmed)
        if sync.idle:
            assert not pending and not awaiting and len(set(shown.values())) <= 1
