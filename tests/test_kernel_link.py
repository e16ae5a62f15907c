"""``KernelLink`` (kernel_link.py) with a channel that records what the link sends and
lets the test deliver what the kernel publishes: when the relay counts its iopub
subscription as live, which decides when browsers' held requests go on to the kernel."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jupyter_client.session import Session

from jupyter_widget_relay.core.messages import Envelope
from jupyter_widget_relay.kernel_channel import ChannelEvents, Message
from jupyter_widget_relay.kernel_link import KernelLink


class RecordingChannel:
    """A ``KernelChannel`` that is always connected and keeps what is sent."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.events: ChannelEvents | None = None

    def open(self, events: ChannelEvents) -> None:
        self.events = events

    def send(self, message: Message) -> bool:
        self.sent.append(message)
        return True

    def moved(self) -> bool:
        return False

    def close(self) -> None:
        self.events = None


class IdleKernelManager:
    def __init__(self) -> None:
        self.session = Session()
        self.execution_state = "idle"


def status(parent_msg_id: str, parent_type: str, state: str = "idle") -> Envelope:
    session = Session()
    return Envelope(
        session.msg_header("status"),
        {"msg_id": parent_msg_id, "msg_type": parent_type},
        content={"execution_state": state},
        channel="iopub",
    )


def make_link() -> tuple[KernelLink, RecordingChannel]:
    channel = RecordingChannel()
    link = KernelLink(
        "k",
        IdleKernelManager(),
        allow_tracebacks=lambda: True,
        traceback_message=lambda: "",
        log=logging.getLogger("test"),
        channel=channel,
    )
    return link, channel


async def nudged(channel: RecordingChannel, count: int) -> list[Any]:
    for _ in range(100):
        if len(channel.sent) >= count:
            break
        await asyncio.sleep(0.01)
    assert len(channel.sent) >= count, "the link sent no kernel_info_request"
    return [m["header"]["msg_id"] for m in channel.sent]


def test_any_message_proves_a_new_subscription_live() -> None:
    async def scenario() -> None:
        link, channel = make_link()
        link.open()
        await nudged(channel, 1)
        assert channel.events is not None and not link.ready.is_set()
        channel.events.on_iopub(status("another-client", "execute_request", "busy"))
        assert link.ready.is_set()
        link.close()

    asyncio.run(scenario())


def test_after_a_restart_only_the_new_kernels_answer_proves_it_live() -> None:
    """The old kernel's last statuses (for its shutdown_request) can arrive after its
    shutdown_reply, before the subscription reaches the new kernel: a browser request let
    through then would have its outputs published where the relay does not listen yet."""

    async def scenario() -> None:
        link, channel = make_link()
        link.open()
        await nudged(channel, 1)
        assert channel.events is not None
        channel.events.on_iopub(status("x", "execute_request"))
        link.restarted()
        assert not link.ready.is_set()
        sent = len(channel.sent)
        ids = await nudged(channel, sent + 1)
        channel.events.on_iopub(status("old-shutdown", "shutdown_request"))
        assert not link.ready.is_set(), "a stale status counted as proof"
        channel.events.on_iopub(status(ids[-1], "kernel_info_request", "busy"))
        assert link.ready.is_set()
        # Once live, every message is just a message again.
        channel.events.on_iopub(status("y", "execute_request"))
        assert link.ready.is_set()
        link.close()

    asyncio.run(scenario())
