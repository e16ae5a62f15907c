"""core/counters.py: the names of the relay's counters, which /metrics shows as labels."""

from __future__ import annotations

from jupyter_widget_relay.core.counters import ACTED, ACTIONS, DIRECTIONS, REJECTED
from jupyter_widget_relay.core.messages import compose
from jupyter_widget_relay.core.rejections import REASONS

from .simulation import receive, world


def test_action_labels_are_the_public_ones() -> None:
    """The actions are the ``action`` label of jupyter_widget_relay_actions_total:
    renaming one breaks dashboards and alerts."""
    assert set(ACTIONS) == {
        "snapshot",
        "snapshot_coalesced",
        "kernel_info",
        "comm_info",
        "private_status",
        "echo_fanout",
        "correction",
        "update_held",
        "merged_update_sent",
        "request_state",
        "state_check",
        "state_check_corrected",
        "state_check_unanswered",
        "seeded_model",
        "seed_complete",
        "output_captured",
        "output_write",
        "output_write_dropped",
        "send_failed",
        "rejection_log_suppressed",
    }
    assert len(ACTIONS) == len(set(ACTIONS))


def test_every_key_the_relay_counts_has_a_shape_the_metrics_read() -> None:
    """Messages both ways, an echo fanned out, a correction and a rejection: each key is
    (direction, type), (REJECTED, source, reason) or (ACTED, action)."""
    relay, kernel, (a, b) = world(2, maximum=5)
    a.set("m", value=9)
    while kernel.pending() or a.pump() or b.pump():
        if kernel.pending():
            kernel.process_any()
    unknown = {"comm_id": "m", "data": {"method": "update", "state": {"no_such_trait": 1}}}
    receive(relay, a, compose("comm_msg", unknown, session="c0", channel="shell"))
    assert b.value("m") == 5, "the kernel's correction reached the peer"

    groups = {key[0] for key in relay.counters}
    assert {"from_client", "from_kernel", REJECTED, ACTED} <= groups
    for key in relay.counters:
        if key[0] == REJECTED:
            assert len(key) == 3 and key[1] in ("client", "kernel") and key[2] in REASONS, key
        elif key[0] == ACTED:
            assert len(key) == 2 and key[1] in ACTIONS, key
        else:
            assert len(key) == 2 and key[0] in DIRECTIONS, key
