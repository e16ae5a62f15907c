"""The names of the relay's counters: ``KernelRelay.counters`` keys, which the server's
/metrics endpoint shows as labels (public: keep the strings).

A key is ``(direction, msg_type)`` for a message the relay handled, ``("rejected", source,
reason)`` for one it refused (``rejections.Source`` and ``rejections.Reason``), and
``("relay", action)`` for something the relay did itself.
"""

from __future__ import annotations

from typing import Literal, get_args

Direction = Literal["from_kernel", "from_client"]
"""Which way a handled message went: the ``direction`` label of the messages metric."""

DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

REJECTED = "rejected"
"""First part of a rejection's key."""

ACTED = "relay"
"""First part of an action's key."""

Action = Literal[
    # answered or sent by the relay
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
    # the relay's own questions to the kernel
    "state_check",
    "state_check_corrected",
    "state_check_unanswered",
    "seeded_model",
    "seed_complete",
    # Output widgets
    "output_captured",
    "output_write",
    "output_write_dropped",
    # trouble
    "send_failed",
    "rejection_log_suppressed",
]
"""Something the relay did itself: the ``action`` label of the actions metric."""

ACTIONS: tuple[Action, ...] = get_args(Action)
