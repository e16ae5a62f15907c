"""The relay's own connection to one kernel, as ``KernelLink`` uses it.

Two implementations: ``ZmqKernelChannel`` (kernels this server runs: their ZMQ iopub and
shell) and ``GatewayKernelChannel`` (kernels in a Jupyter Kernel or Enterprise Gateway:
one websocket to the gateway's channels endpoint). The link neither knows nor cares
which; the shape follows jupyter_server's own kernel websocket connection interface
(``services/kernels/connection/abc.py``), which its ZMQ and gateway connections share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .core.messages import Envelope

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChannelEvents:
    """What a channel reports to its link. Every callback runs on the event loop."""

    on_iopub: Callable[[Envelope], None]
    on_shell_reply: Callable[[Envelope], None]
    on_unreadable: Callable[[str, str], None]  # (channel, what was wrong)
    # The channel cannot reach the kernel any more, and will not retry.
    on_lost: Callable[[str], None]


class KernelChannel(Protocol):
    """One subscription to a kernel's iopub plus a shell channel for the relay's requests."""

    @property
    def connected(self) -> bool:
        """Whether messages can be sent now (iopub may still be settling: see the link)."""

    def open(self, events: ChannelEvents) -> None:
        """Connect (again), reporting to ``events``; a channel already open is remade."""

    def send(self, message: Message) -> bool:
        """Send a complete message (header, parent_header, metadata, content, buffers) on
        shell; False if it could not be sent now."""

    def moved(self) -> bool:
        """Whether the kernel now listens elsewhere (a restart with new ports), so that
        the channel must be opened again to follow it."""

    def close(self) -> None:
        """Disconnect; no callback runs afterwards."""
