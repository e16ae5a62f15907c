"""core/verdict.py: what the core decides about one client message."""

from __future__ import annotations

import dataclasses

import pytest

from jupyter_widget_relay.core import verdict
from jupyter_widget_relay.core.messages import compose
from jupyter_widget_relay.core.verdict import (
    ANSWERED,
    HELD,
    Answered,
    ClientRefusal,
    Forward,
    Held,
    Refused,
    Verdict,
)


def describe(decision: Verdict) -> str:
    """What an adapter does with a verdict: the one case that sends something."""
    match decision:
        case Forward(envelope):
            return f"send on {envelope.channel}"
        case Answered() | Held() | Refused():
            return "nothing"


def test_only_a_forward_carries_a_message_for_the_kernel() -> None:
    env = compose("execute_request", {}, session="s", channel="shell")
    assert describe(Forward(env)) == "send on shell"
    assert Forward(env).envelope is env
    for decision in (ANSWERED, HELD, Refused("malformed", "bad")):
        assert describe(decision) == "nothing"


def test_verdicts_are_frozen_values() -> None:
    env = compose("execute_request", {}, session="s")
    assert Forward(env) == Forward(env)
    assert Refused("state_limit", "x") == Refused("state_limit", "x")
    assert Refused("state_limit", "x") != Refused("model_limit", "x")
    assert Answered() == ANSWERED and Held() == HELD and ANSWERED != HELD
    refused = Refused("malformed", "bad")
    with pytest.raises(dataclasses.FrozenInstanceError):
        refused.detail = "other"  # type: ignore[misc]
    assert not hasattr(refused, "__dict__"), "slots: no per-verdict dict"


def test_a_client_refusal_carries_its_reason_and_message() -> None:
    with pytest.raises(ClientRefusal, match="too big") as caught:
        raise ClientRefusal("too_large", "too big")
    assert caught.value.reason == "too_large" and str(caught.value) == "too big"


def test_the_module_exports_the_verdict_types() -> None:
    assert set(verdict.__all__) == {
        "ANSWERED",
        "HELD",
        "Answered",
        "ClientRefusal",
        "Forward",
        "Held",
        "Refused",
        "Verdict",
    }
    assert all(hasattr(verdict, name) for name in verdict.__all__)
