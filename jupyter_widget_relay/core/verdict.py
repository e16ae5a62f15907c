"""What the core decides about one client message, for the transport adapter to carry out.

Like a sans-IO protocol object, ``KernelRelay.receive`` takes a message and returns what
to do with it; anything it had to tell clients it has already sent through their ports.
The adapter does exactly one thing with a verdict: send a ``Forward``'s envelope on to the
kernel's channel, or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .messages import Envelope
from .rejections import Reason


@dataclass(frozen=True, slots=True)
class Forward:
    """Send ``envelope`` (the message as received, or as the relay rewrote it) to the
    kernel on ``envelope.channel``."""

    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Answered:
    """The relay answered from its table (or the message needed no answer): nothing goes
    to the kernel."""


@dataclass(frozen=True, slots=True)
class Held:
    """A browser update the relay accepted and keeps until the kernel has handled the one
    before it (see throttle.py); the relay sends it to the kernel itself: nothing to do."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The client's message breaks a policy or the protocol: nothing goes anywhere, the
    table and the peers are untouched, and the sender has been told why."""

    reason: Reason
    detail: str


Verdict = Forward | Answered | Held | Refused


class ClientRefusal(Exception):
    """A client's message the relay will not carry out; ``reason`` is its counter key."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


ANSWERED = Answered()
HELD = Held()

__all__ = [
    "ANSWERED",
    "HELD",
    "Answered",
    "ClientRefusal",
    "Forward",
    "Held",
    "Refused",
    "Verdict",
]
