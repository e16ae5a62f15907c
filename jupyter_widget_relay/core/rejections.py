"""Counting and logging what the relay rejects, so that no sender can flood the log.

Every rejection is counted. The log gets at most ``burst`` lines per sender (a client, or
the kernel) per ``window`` seconds, then, when that sender's window ends, one line saying
how many were left out. Text a sender chose is escaped (no line breaks or terminal
control characters reach the log) and shortened.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from .counters import ACTED, REJECTED, Action

MAX_DETAIL_CHARS = 300
MAX_SENDERS = 1000  # windows kept at once; the oldest are forgotten
LOG_SUPPRESSED: Action = "rejection_log_suppressed"  # counted for each line left out

Source = Literal["client", "kernel"]
"""Who sent a rejected message: the ``source`` label of the rejections metric."""

Reason = Literal[
    # client messages the relay will not carry out
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
    # kernel messages the relay could not use (also "malformed", "unparsable")
    "unreadable",
]
"""Why: the ``reason`` label of the rejections metric (public: keep the strings)."""

REASONS: tuple[Reason, ...] = get_args(Reason)


def escaped(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` safe for one log line: control characters escaped, at most ``limit``."""
    shown = repr(text)[1:-1]
    return shown if len(shown) <= limit else shown[:limit] + "..."


@dataclass(slots=True)
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


class RejectionLog:
    def __init__(
        self,
        kernel_id: str,
        counters: Counter[tuple[str, ...]],
        log: logging.Logger,
        *,
        burst: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kernel_id = kernel_id
        self._counters = counters
        self._log = log
        self._burst = burst
        self._window = window
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def reject(self, source: Source, reason: Reason, detail: str, sender: str = "") -> None:
        """Count a rejected message from ``source`` ("client" or "kernel") and log it,
        unless ``sender`` (default: the source) already filled its window."""
        self._counters[REJECTED, source, reason] += 1
        key = sender or source
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self._window:
            if window is not None and window.suppressed:
                self._log_suppressed(key, window)
            window = self._windows[key] = _Window(now)
            while len(self._windows) > MAX_SENDERS:
                del self._windows[next(iter(self._windows))]
        if window.logged >= self._burst:
            window.suppressed += 1
            self._counters[ACTED, LOG_SUPPRESSED] += 1
            return
        window.logged += 1
        who = f" from {escaped(sender, 64)}" if sender else ""
        self._log.warning(
            "widget relay %s: rejected %s message%s (%s): %s",
            self._kernel_id,
            source,
            who,
            reason,
            escaped(detail),
        )

    def _log_suppressed(self, key: str, window: _Window) -> None:
        self._log.warning(
            "widget relay %s: %d more rejected messages from %s were not logged",
            self._kernel_id,
            window.suppressed,
            escaped(key, 64),
        )
