"""One kernel's relay: the pure core fed by the relay's own iopub subscription."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from jupyter_client.session import Session

from .core.limits import Limits
from .core.messages import Envelope, MessageError, compose
from .core.relay import DEFAULT_RELEASE_TYPE, KernelRelay
from .core.status_routes import RELAY_OWN_REQUEST
from .kernel_channel import ChannelEvents, KernelChannel
from .zmq_channel import ZmqKernelChannel

KERNEL_DIED = "the kernel died"
TRACEBACK_SCRUBBED = {"ename": "ExecutionError", "evalue": "Execution error"}


class ParkedPort:
    """Collects a disconnected client's iopub stream until that session reconnects."""

    visible = False

    def __init__(self, session_key: str, limit: int, log: logging.Logger) -> None:
        self.client_id = f"parked:{session_key}"
        self.session_key = session_key
        self.backlog: list[Envelope] = []
        self.overflowed = False
        self._limit = limit
        self._log = log

    def send(self, envelope: Envelope) -> None:
        if self._limit and len(self.backlog) >= self._limit:
            if not self.overflowed:
                self._log.warning(
                    "widget relay: more than %d messages buffered for %s; dropping the backlog"
                    " (raise c.WidgetRelay.buffered_messages_limit to keep more)",
                    self._limit,
                    self.session_key,
                )
            self.overflowed = True
            self.backlog.clear()
            return
        if not self.overflowed:
            self.backlog.append(envelope)


class KernelLink:
    """Subscribes once to a kernel's iopub and feeds every message, in order, to the core.

    The subscription is a ``KernelChannel``: the kernel's own ZMQ channels
    (``ZmqKernelChannel``, the default) or a websocket to a gateway
    (``GatewayKernelChannel``)."""

    def __init__(
        self,
        kernel_id: str,
        kernel_manager: Any,
        *,
        allow_tracebacks: Callable[[], bool],
        traceback_message: Callable[[], str],
        log: logging.Logger,
        on_dirty: Callable[[], None] | None = None,
        buffered_messages_limit: int = 10000,
        limits: Limits | None = None,
        timer: Callable[[str, float], None] | None = None,
        throttle: bool = True,
        release_type: str | None = DEFAULT_RELEASE_TYPE,
        channel: KernelChannel | None = None,
        untracked_message_types: frozenset[str] | None = None,
        on_lost: Callable[[str], None] | None = None,
        seed: bool = False,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel_manager = kernel_manager
        # None: the server's kernel manager keeps the execution state (local kernels).
        # A set: the link keeps it from the statuses it sees, skipping those whose parent
        # has one of these types, as jupyter_server does (a gateway's kernel manager only
        # learns it when it polls the gateway).
        self._untracked = untracked_message_types
        self.execution_state = "starting"
        self.relay = KernelRelay(
            kernel_id,
            on_dirty=on_dirty,
            on_kernel_write=self._schedule_kernel_writes,
            limits=limits,
            timer=timer,
            is_busy=lambda: self.current_execution_state() == "busy",
            throttle=throttle,
            release_type=release_type,
        )
        self.session = Session(config=kernel_manager.session.config, key=kernel_manager.session.key)
        self.channel: KernelChannel = channel or ZmqKernelChannel(kernel_manager)
        self.ready = asyncio.Event()
        # Why the channel cannot reach the kernel any more (browsers then go stock).
        self.lost: str | None = None
        self._settled = asyncio.Event()  # ready, or lost
        self._on_lost = on_lost
        # Fill the table from the kernel once iopub is live (see core/seeding.py): for a
        # kernel this link may have begun to follow after it made widgets.
        self._seed = seed
        self._seed_when_ready = False
        # After a restart: the msg_ids of the relay's own kernel_info_requests, the only
        # iopub messages that prove the subscription reaches the new kernel (the old one's
        # last statuses may still arrive after its shutdown_reply). None: any message does.
        self._proof_ids: set[str] | None = None
        self._allow_tracebacks = allow_tracebacks
        self._traceback_message = traceback_message
        self._log = log
        self._writes_scheduled = False
        self._urgent_scheduled = False
        self._parked: ParkedPort | None = None
        self._buffered_messages_limit = buffered_messages_limit
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def current_execution_state(self) -> str | None:
        if self._untracked is None:
            return getattr(self.kernel_manager, "execution_state", None)
        return self.execution_state

    # -- subscription --------------------------------------------------------------------

    def open(self, *, restarted: bool = False) -> None:
        """Subscribe to iopub and nudge the kernel until the subscription is live."""
        self.ready.clear()
        self.relay.kernel_info = None
        self._seed_when_ready = self._seed and not restarted
        self._proof_ids = set() if restarted else None
        self.channel.open(
            ChannelEvents(
                on_iopub=self._on_iopub,
                on_shell_reply=self._on_shell_reply,
                on_unreadable=self._on_unreadable,
                on_lost=self._lost,
            )
        )
        self._spawn(self._nudge(force=restarted))

    async def wait_settled(self, timeout: float) -> bool:
        """Wait until iopub is live or the channel is lost; False if lost."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)
        return self.lost is None

    async def _nudge(self, force: bool = False) -> None:
        """Send kernel_info_requests until an iopub message proves the subscription works.

        After a restart the server may still report the dead kernel's "busy": nudge anyway.
        """
        if not force and self.current_execution_state() == "busy":
            # A busy kernel publishes soon anyway; a request would only queue behind the cell.
            await self.ready.wait()
            return
        for _ in range(240):
            if self.ready.is_set() or self.closed or self.lost is not None:
                return
            request = self.session.msg("kernel_info_request")
            if self._proof_ids is not None:
                self._proof_ids.add(request["header"]["msg_id"])
            if self.channel.send(request):  # no client asked: its statuses go to none of them
                self.relay.route_status(request["header"]["msg_id"], RELAY_OWN_REQUEST)
            try:
                await asyncio.wait_for(self.ready.wait(), timeout=0.5)
            except asyncio.TimeoutError:
                continue

    def _on_unreadable(self, channel: str, error: str) -> None:
        if channel == "iopub":
            self.relay.reject("kernel", "unparsable", error)
        else:
            self._log.debug("widget relay: unreadable shell reply: %s", error)

    def _on_shell_reply(self, reply: Envelope) -> None:
        """Replies to the relay's own requests: keep the kernel's kernel_info_reply, which
        lets browsers that connect while a cell runs start at once."""
        try:
            if reply.msg_type == "kernel_info_reply" and reply.content.get("status") == "ok":
                self.relay.kernel_info = dict(reply.content)
            else:
                self.relay.handle_kernel_reply(reply)
        except MessageError as error:
            self._log.debug("widget relay: unreadable shell reply: %s", error)

    def _proves_live(self, envelope: Envelope) -> bool:
        if self._proof_ids is None:
            return True
        if envelope.parent_header.get("msg_id") not in self._proof_ids:
            return False
        self._proof_ids = None
        return True

    def _on_iopub(self, envelope: Envelope) -> None:
        if not self.ready.is_set() and self._proves_live(envelope):
            self.ready.set()
            self._settled.set()
        if self._seed_when_ready:
            self._seed_when_ready = False
            self.relay.begin_seeding()
        if (
            envelope.msg_type == "status"
            and self._untracked is not None
            and self._follow_status(envelope)
        ):
            return
        if envelope.msg_type == "error" and not self._allow_tracebacks():
            try:
                content = dict(envelope.content)
            except MessageError:
                content = {}
            content.update(TRACEBACK_SCRUBBED, traceback=[self._traceback_message()])
            envelope.replace_content(content)
        self.relay.handle_kernel_message(envelope)
        if envelope.msg_type == "shutdown_reply" and self._untracked is not None:
            self._follow_shutdown(envelope)

    def _follow_shutdown(self, envelope: Envelope) -> None:
        """A kernel publishes its shutdown_reply on iopub: one with ``restart`` means it
        restarts, also when asked by another server or the gateway's own API (no
        kernel action event here then)."""
        try:
            restart = envelope.content.get("restart") is True
        except MessageError:
            return
        if restart:
            self._log.info("widget relay: kernel %s restarts", self.kernel_id)
            self.restarted()
            self._restart_seen = True

    _restart_seen = False

    def restart_event(self) -> None:
        """The server restarted the kernel (its kernel action event). Behind a gateway the
        link may have seen that restart already on iopub: then only once."""
        seen, self._restart_seen = self._restart_seen, False
        if seen and not len(self.relay.table):
            return
        self.restarted()

    def _follow_status(self, envelope: Envelope) -> bool:
        """Keep the execution state; True if the status says the kernel restarted or died
        (what a gateway's connection tells its clients) and was handled here."""
        try:
            state = envelope.content.get("execution_state")
        except MessageError:
            return False
        if state == "restarting":
            self._log.warning("widget relay: kernel %s restarted in the gateway", self.kernel_id)
            self.restarted()
            return True
        if state == "dead":
            self._lost(KERNEL_DIED)
            return True
        parent_type = envelope.parent_header.get("msg_type")
        if isinstance(state, str) and self._untracked is not None:
            if parent_type not in self._untracked:
                self.execution_state = state
            elif self.execution_state == "starting" and state != "starting":
                self.execution_state = "idle"
        return False

    def _lost(self, reason: str) -> None:
        if self.lost is not None or self.closed:
            return
        self.lost = reason
        self._settled.set()
        if self._on_lost is not None:
            self._on_lost(reason)

    # -- lifecycle -----------------------------------------------------------------------

    def restarted(self) -> None:
        """The kernel restarted: forget its widgets, tell clients, resubscribe."""
        self.relay.reset()
        self.execution_state = "starting"
        status = compose(
            "status", {"execution_state": "restarting"}, session=self.relay.kernel_session
        )
        self.relay.broadcast(status)
        if self.channel.connected and not self.ports_changed():
            # Same ports: the subscription reconnects by itself, as stock connections' do.
            # Until it is shown live, clients' requests wait (see the connection's hold).
            self.ready.clear()
            self.relay.kernel_info = None
            self._proof_ids = set()
            self._spawn(self._nudge(force=True))
            return
        self.open(restarted=True)

    def ports_changed(self) -> bool:
        return self.channel.moved()

    def close(self) -> None:
        self.closed = True
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.channel.close()
        self.relay.reset()

    # -- the relay's own writes to the kernel --------------------------------------------

    OUTPUT_WRITE_DELAY = 0.05  # seconds; coalesces a burst of captured outputs into one write

    def _schedule_kernel_writes(self, urgent: bool = False) -> None:
        """Send the relay's writes soon: at once for a browser update that waited for
        the kernel, else after a short delay that coalesces bursts."""
        if self.closed:
            return
        loop = asyncio.get_event_loop()
        if urgent:
            if not self._urgent_scheduled:
                self._urgent_scheduled = True
                loop.call_soon(self._send_kernel_writes)
            return
        if not self._writes_scheduled:
            self._writes_scheduled = True
            loop.call_later(self.OUTPUT_WRITE_DELAY, self._send_delayed_writes)

    def _send_delayed_writes(self) -> None:
        self._writes_scheduled = False
        self._send_kernel_writes()

    def _send_kernel_writes(self) -> None:
        self._urgent_scheduled = False
        writes = self.relay.take_kernel_writes()
        if not self.channel.connected:
            return
        for write in writes:
            message = {
                "header": write.header,
                "parent_header": write.parent_header,
                "metadata": write.metadata,
                "content": write.content,
                "buffers": write.buffers,
            }
            self.channel.send(message)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reconnecting clients ------------------------------------------------------------

    def park(self, session_key: str) -> None:
        """Buffer the stream for a session whose last connection closed (stock behaviour)."""
        self.discard_parked()
        self._parked = ParkedPort(session_key, self._buffered_messages_limit, self._log)
        self.relay.attach(self._parked)

    def unpark(self, session_key: str) -> list[Envelope]:
        parked, self._parked = self._parked, None
        if parked is None:
            return []
        self.relay.detach(parked)
        return parked.backlog if parked.session_key == session_key else []

    def discard_parked(self) -> None:
        if self._parked is not None:
            self.relay.detach(self._parked)
            self._parked = None
