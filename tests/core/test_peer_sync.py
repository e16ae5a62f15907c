"""Peer sync in the pure core, against simulated frontends and kernels (no server)."""

from __future__ import annotations

import random

import pytest

from .simulation import world


def table_value(relay, model_id="m", attr="value"):  # type: ignore[no-untyped-def]
    return relay.table.get(model_id).state[attr]


def echoes_to(frontend):  # type: ignore[no-untyped-def]
    return [
        e
        for e in frontend.received
        if e.msg_type == "comm_msg" and e.content["data"].get("method") == "echo_update"
    ]


@pytest.mark.parametrize("throttle", [True, False])
def test_peer_sees_change_before_kernel_handles_it(throttle: bool) -> None:
    relay, kernel, (a, b, c) = world(3, throttle=throttle)
    sent = a.set("m", value=7)
    assert sent is not None
    assert b.value("m") == 7 and c.value("m") == 7
    assert table_value(relay) == 7
    before_kernel = echoes_to(a)
    assert len(before_kernel) == (1 if throttle else 0), "the relay echoes a released update"
    kernel.process_next("c0")
    assert kernel.models["m"]["value"] == 7
    assert [a.value("m"), b.value("m"), c.value("m")] == [7, 7, 7]
    echoes = echoes_to(a)
    assert len(echoes) == 1 and echoes[0].parent_header["msg_id"] == sent.msg_id, "one echo"


def test_kernel_echo_is_not_replayed_to_peers() -> None:
    _relay, kernel, (a, b) = world(2)
    for value in range(1, 201):
        a.set("m", value=value)
    seen_by_b = [
        e.content["data"]["state"]["value"]
        for e in b.received
        if e.msg_type == "comm_msg" and "state" in e.content["data"]
    ]
    while kernel.pending():
        kernel.process_any()
    seen_after = [
        e.content["data"]["state"]["value"]
        for e in b.received
        if e.msg_type == "comm_msg" and "state" in e.content["data"]
    ]
    assert seen_by_b == list(range(1, 201))
    assert seen_after == seen_by_b, "peer received values again"
    assert a.value("m") == b.value("m") == kernel.models["m"]["value"] == 200


def test_clamped_value_reaches_everyone() -> None:
    relay, kernel, (a, b, c) = world(3, maximum=100)
    a.set("m", value=150)
    assert b.value("m") == 150
    kernel.process_next("c0")
    assert [f.value("m") for f in (a, b, c)] == [100, 100, 100]
    assert table_value(relay) == 100


@pytest.mark.parametrize("echo", [True, False])
def test_echo_off_still_converges(echo: bool) -> None:
    relay, kernel, (a, b) = world(2, echo=echo)
    a.set("m", value=5)
    assert b.value("m") == 5
    kernel.process_next("c0")
    b.set("m", value=9)
    assert a.value("m") == 9, "sender frontend must not keep dropping echoes"
    kernel.process_next("c1")
    assert a.value("m") == b.value("m") == kernel.models["m"]["value"] == table_value(relay) == 9


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("echo", [True, False])
def test_concurrent_writers_converge_on_kernel_value(seed: int, echo: bool) -> None:
    rng = random.Random(seed)
    maximum = rng.choice([None, 60])
    relay, kernel, frontends = world(3, echo=echo, maximum=maximum)
    writers = frontends[:2]
    for _ in range(rng.randint(1, 40)):
        action = rng.random()
        if action < 0.5:
            rng.choice(writers).set("m", value=rng.randint(0, 100))
        elif action < 0.6:
            kernel.set("m", value=rng.randint(0, 100))
        else:
            busy = [cid for cid, q in kernel.inbox.items() if q]
            if busy:
                kernel.process_next(rng.choice(busy))
    while kernel.pending():
        kernel.process_next(rng.choice([cid for cid, q in kernel.inbox.items() if q]))
    final = kernel.models["m"]["value"]
    assert table_value(relay) == final
    assert [f.value("m") for f in frontends] == [final] * 3
    assert relay.table.get("m").sync is None, "settled traits keep no bookkeeping"


def test_late_joiner_during_flux_converges() -> None:
    relay, kernel, (a, b) = world(2)
    a.set("m", value=3)
    kernel.set("m", value=50)
    from collections import deque

    from .simulation import Frontend

    c = Frontend("late", relay, kernel)
    kernel.inbox["late"] = deque()
    c.join()
    assert c.value("m") == 3
    kernel.process_next("c0")
    assert [f.value("m") for f in (a, b, c)] == [3, 3, 3] == [kernel.models["m"]["value"]] * 3


def test_detached_client_is_forgotten() -> None:
    relay, kernel, (a, b) = world(2)
    a.set("m", value=3)
    relay.detach(a)
    kernel.process_next("c0")
    assert b.value("m") == 3
    assert relay.table.get("m").sync is None


@pytest.mark.parametrize("echo", [True, False])
@pytest.mark.parametrize("sent_after_leaving", [False, True])
def test_departed_sender_leaves_no_bookkeeping(echo: bool, sent_after_leaving: bool) -> None:
    """A client leaves with an update in the kernel's queue (or, as a slow client being
    closed can, sends one after the relay detached it); the kernel handles it between two
    other updates. Its echo must not bring back the frontend that left: no correction can
    reach it, so the trait would keep bookkeeping forever."""
    relay, kernel, (a, b, c) = world(3, echo=echo)
    c.set("m", value=1)
    if sent_after_leaving:
        b.leave()
        b.set("m", value=2)
    else:
        b.set("m", value=2)
        b.leave()
    a.set("m", value=3)
    for client_id in ("c0", "c1", "c2"):
        kernel.process_next(client_id)
    assert kernel.models["m"]["value"] == 1
    assert [a.value("m"), c.value("m"), table_value(relay)] == [1, 1, 1]
    assert relay.table.get("m").sync is None, "settled traits keep no bookkeeping"
    assert not relay.sync._in_flux
