"""Rejections are all counted, and logged escaped and at most a burst per sender."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from jupyter_widget_relay.core.messages import KERNEL_MSG_TYPES, compose
from jupyter_widget_relay.core.rejections import REASONS, RejectionLog, escaped
from jupyter_widget_relay.core.relay import KernelRelay


def test_burst_then_one_line_for_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    now = [0.0]
    counters: Counter[tuple[str, ...]] = Counter()
    log = RejectionLog(
        "k", counters, logging.getLogger("t"), burst=3, window=60, clock=lambda: now[0]
    )
    for _ in range(10):
        log.reject("client", "malformed", "bad", "alice")
    log.reject("client", "malformed", "bad", "bob")  # another sender has its own window
    assert counters["rejected", "client", "malformed"] == 11
    assert counters["relay", "rejection_log_suppressed"] == 7
    assert len(caplog.records) == 4
    now[0] = 61.0
    log.reject("client", "malformed", "bad", "alice")
    messages = [r.getMessage() for r in caplog.records[4:]]
    assert "7 more rejected messages from alice were not logged" in messages[0]
    assert "rejected client message from alice (malformed): bad" in messages[1]


def test_client_text_is_escaped_and_shortened() -> None:
    assert escaped("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    assert len(escaped("x" * 10_000)) == 303


def test_kernel_message_types_are_counted_from_a_bounded_set() -> None:
    relay = KernelRelay("k")
    for index in range(50):
        relay.handle_kernel_message(compose(f"invented_{index}", {}, session="s"))
    relay.handle_kernel_message(compose("stream", {"name": "stdout", "text": ""}, session="s"))
    kinds = {key[1] for key in relay.counters if key[0] == "from_kernel"}
    assert kinds == {"other", "stream"} and kinds <= KERNEL_MSG_TYPES | {"other"}
    assert relay.counters["from_kernel", "other"] == 50


def test_reason_labels_are_the_public_ones() -> None:
    """The reasons are the ``reason`` label of jupyter_widget_relay_rejections_total:
    renaming one breaks dashboards and alerts."""
    assert set(REASONS) == {
        "malformed",
        "unparsable",
        "too_large",
        "unknown_channel",
        "not_allowed",
        "model_exists",
        "kernel_model",
        "unknown_trait",
        "unknown_control_method",
        "buffer_limit",
        "state_limit",
        "unhandled_limit",
        "model_limit",
        "slow_client",
        "unreadable",
    }
    counters: Counter[tuple[str, ...]] = Counter()
    log = RejectionLog("k", counters, logging.getLogger("test"))
    for reason in REASONS:
        log.reject("client", reason, "detail")
    assert counters == Counter({("rejected", "client", reason): 1 for reason in REASONS}) + Counter(
        {("relay", "rejection_log_suppressed"): len(REASONS) - 10}
    )
