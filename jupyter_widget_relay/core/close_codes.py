"""Websocket close codes the relay uses (the labextension's ``api.ts`` names the same).

Codes 4000-4999 are for applications (RFC 6455, section 7.4.2); 1011 is the standard
"the server met an unexpected condition".
"""

from __future__ import annotations

UNKNOWN_KERNEL = 4004
"""Events websocket: the relay does not follow this kernel, or the kernel stopped."""

CLIENT_TOO_SLOW = 4008
"""Kernel websocket: the client fell too far behind (``max_pending_bytes_per_client``)."""

SEND_FAILED = 1011
"""Kernel websocket: a message could not be sent to the client."""

ALL = {
    "UNKNOWN_KERNEL": UNKNOWN_KERNEL,
    "CLIENT_TOO_SLOW": CLIENT_TOO_SLOW,
    "SEND_FAILED": SEND_FAILED,
}
