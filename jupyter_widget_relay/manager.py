"""Creates one KernelLink per running kernel and follows the kernels' lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Instance, Int
from traitlets.config import LoggingConfigurable

from . import metrics
from .core.limits import Limits
from .core.payloads import KernelSummary, RelayCounts
from .core.throttle import release_type_for
from .gateway_channel import GatewayKernelChannel
from .kernel_link import KERNEL_DIED, KernelLink

KERNEL_ACTIONS_SCHEMA = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
ChangeListener = Callable[[str, set[str], bool], None]


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """Admin limits (see WidgetRelay's traits); 0 means no limit."""

    max_message_bytes: int = 0
    max_buffer_bytes_per_kernel: int = 0
    max_state_bytes_per_kernel: int = 0
    max_models_per_kernel: int = 0
    max_pending_bytes_per_client: int = 0
    max_unhandled_bytes_per_client: int = 0


class RelayManager(LoggingConfigurable):
    """Owns the relays of all kernels of one server."""

    kernel_manager = AnyTrait(help="The server's MappingKernelManager.")
    event_logger = AnyTrait(allow_none=True, help="The server's jupyter_events EventLogger.")
    kernel_check_interval = Float(5.0, help="Seconds between checks for dead kernels; 0 = off.")
    change_interval = Float(0.2, help="Seconds over which change notifications coalesce.")
    buffered_messages_limit = Int(10000, help="Messages kept for a reconnecting session.")
    limits = Instance(RelayLimits, kw={}, help="Admin limits.")
    throttle_updates = Bool(True, help="The relay paces browsers' widget updates.")
    behind_gateway = Bool(
        False, help="Kernels run in a gateway: links use a websocket to it, not ZMQ."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.links: dict[str, KernelLink] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: dict[str, set[ChangeListener]] = {}
        self._flush_scheduled: set[str] = set()
        self._started = False
        self.retired_counters: Counter[tuple[str, ...]] = Counter()
        self._collector = metrics.RelayCollector(self._summaries, self.counters)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def release_type(self) -> str | None:
        untracked = getattr(self.kernel_manager, "untracked_message_types", None)
        return release_type_for(untracked or ())

    async def start(self) -> None:
        self._started = True
        if self.throttle_updates and self.release_type is None:
            self.log.warning(
                "widget relay: MappingKernelManager.untracked_message_types is empty, so the "
                "relay cannot pace widget updates without changing the kernel status "
                "browsers show; browsers pace their own (c.WidgetRelay.throttle_updates)"
            )
        metrics.register(self._collector)
        if self.event_logger is not None:
            self.event_logger.add_listener(
                schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_kernel_action
            )
        for kernel_id in list(self.kernel_manager.list_kernel_ids()):
            self.ensure_link(kernel_id)
        if self.kernel_check_interval > 0:
            self._spawn(self._watch_kernels())

    async def stop(self) -> None:
        self._started = False
        metrics.unregister(self._collector)
        if self.event_logger is not None:
            with contextlib.suppress(Exception):
                self.event_logger.remove_listener(
                    schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_kernel_action
                )
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        for kernel_id in list(self.links):
            self.drop_link(kernel_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- links ---------------------------------------------------------------------------

    def link_for(self, kernel_id: str) -> KernelLink | None:
        return self.links.get(kernel_id)

    def ensure_link(self, kernel_id: str) -> KernelLink:
        """The kernel's link, subscribing to its iopub on first use (KeyError if unknown)."""
        link = self.links.get(kernel_id)
        if link is not None:
            return link
        km = self.kernel_manager.get_kernel(kernel_id)
        mkm = self.kernel_manager
        gateway: dict[str, Any] = {}
        if self.behind_gateway:
            gateway = {
                "channel": GatewayKernelChannel(kernel_id, uuid.uuid4().hex, self.log),
                "untracked_message_types": frozenset(mkm.untracked_message_types or ()),
                "on_lost": partial(self._link_lost, kernel_id),
                "seed": True,
            }
        link = KernelLink(
            kernel_id,
            km,
            allow_tracebacks=lambda: bool(mkm.allow_tracebacks),
            traceback_message=lambda: str(mkm.traceback_replacement_message),
            log=self.log,
            on_dirty=partial(self._schedule_flush, kernel_id),
            buffered_messages_limit=self.buffered_messages_limit,
            limits=Limits(
                max_buffer_bytes=self.limits.max_buffer_bytes_per_kernel,
                max_state_bytes=self.limits.max_state_bytes_per_kernel,
                max_models=self.limits.max_models_per_kernel,
                allowed_msg_types=frozenset(mkm.allowed_message_types or ()),
                max_unhandled_bytes_per_client=self.limits.max_unhandled_bytes_per_client,
            ),
            timer=metrics.observe,
            throttle=self.throttle_updates,
            release_type=self.release_type,
            **gateway,
        )
        self.links[kernel_id] = link
        self.kernel_manager.add_restart_callback(
            kernel_id, partial(self._kernel_died, kernel_id), "dead"
        )
        # A gateway's kernel manager never resolves ``ready``: its kernel runs elsewhere.
        ready = None if self.behind_gateway else getattr(km, "ready", None)
        if ready is not None and not ready.done():
            self._spawn(self._open_when_ready(link, ready))
        else:
            link.open()
        self.log.debug("widget relay: following kernel %s", kernel_id)
        return link

    async def _open_when_ready(self, link: KernelLink, ready: Any) -> None:
        try:
            await (ready if isinstance(ready, asyncio.Future) else asyncio.wrap_future(ready))
        except Exception:
            self.drop_link(link.kernel_id)
            return
        if not link.closed:
            link.open()

    def drop_link(self, kernel_id: str) -> None:
        link = self.links.pop(kernel_id, None)
        if link is None:
            return
        link.close()
        self.retired_counters.update(link.relay.counters)
        self._schedule_flush(kernel_id)
        self.log.debug("widget relay: stopped following kernel %s", kernel_id)

    def _kernel_died(self, kernel_id: str) -> None:
        self.log.warning("widget relay: kernel %s died; clearing its widget table", kernel_id)
        self.drop_link(kernel_id)

    def _link_lost(self, kernel_id: str, reason: str) -> None:
        """The link's channel cannot reach the kernel: its browsers go on without the
        relay (see the gateway connection); a later browser connection tries again."""
        if reason == KERNEL_DIED:
            self._kernel_died(kernel_id)
            return
        self.log.warning(
            "widget relay: kernel %s: %s; its browsers talk to the kernel without the relay",
            kernel_id,
            reason,
        )
        self.drop_link(kernel_id)

    async def _on_kernel_action(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        kernel_id = data.get("kernel_id")
        if data.get("status") != "success" or not isinstance(kernel_id, str):
            return
        action = data.get("action")
        if action == "start" and kernel_id in self.kernel_manager:
            self.ensure_link(kernel_id)
        elif action == "restart":
            link = self.links.get(kernel_id)
            if link is not None:
                link.restart_event()
        elif action == "shutdown":
            self.drop_link(kernel_id)

    async def _watch_kernels(self) -> None:
        """Kernels can die for good without an event; notice it within one interval."""
        while True:
            await asyncio.sleep(self.kernel_check_interval)
            if self.behind_gateway and self.links:
                # The gateway's kernel manager learns of kernels gone from the gateway
                # when it lists them (a kernel shut down there keeps its websockets open).
                try:
                    await self.kernel_manager.list_kernels()
                except Exception as error:
                    self.log.debug("widget relay: could not list the gateway's kernels: %s", error)
                    continue
            for kernel_id, link in list(self.links.items()):
                if kernel_id not in self.kernel_manager:
                    self._kernel_died(kernel_id)
                elif link.ports_changed():
                    link.restarted()

    # -- change notifications ------------------------------------------------------------

    def add_listener(self, kernel_id: str, listener: ChangeListener) -> None:
        self._listeners.setdefault(kernel_id, set()).add(listener)

    def remove_listener(self, kernel_id: str, listener: ChangeListener) -> None:
        listeners = self._listeners.get(kernel_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[kernel_id]

    def _schedule_flush(self, kernel_id: str) -> None:
        if kernel_id in self._flush_scheduled:
            return
        self._flush_scheduled.add(kernel_id)
        asyncio.get_event_loop().call_later(self.change_interval, self._flush, kernel_id)

    def _flush(self, kernel_id: str) -> None:
        self._flush_scheduled.discard(kernel_id)
        link = self.links.get(kernel_id)
        models, clients = link.relay.take_changes() if link else (set(), True)
        for listener in list(self._listeners.get(kernel_id, ())):
            try:
                listener(kernel_id, models, clients)
            except Exception:
                self.log.exception("widget relay: change listener failed")

    # -- views ---------------------------------------------------------------------------

    def counters(self) -> Counter[tuple[str, ...]]:
        """Everything every relay counted, including relays of kernels that are gone."""
        total = Counter(self.retired_counters)
        for link in self.links.values():
            total.update(link.relay.counters)
        return total

    def _summaries(self) -> dict[str, RelayCounts]:
        summaries = {}
        for kernel_id, link in list(self.links.items()):
            summary = link.relay.summary()
            summary["clients"] = sum(1 for p in link.relay.ports() if getattr(p, "visible", False))
            summaries[kernel_id] = summary
        return summaries

    def kernel_summary(self, kernel_id: str) -> KernelSummary | None:
        link = self.links.get(kernel_id)
        if link is None:
            return None
        relay = link.relay
        clients = [
            port.describe()
            for port in relay.ports()
            if getattr(port, "visible", False) and hasattr(port, "describe")
        ]
        known = kernel_id in self.kernel_manager
        return {
            "kernel_id": kernel_id,
            "models": len(relay.table),
            "state_bytes": relay.table.state_bytes,
            "buffer_bytes": relay.table.buffer_bytes,
            "clients": clients,
            "execution_state": str((known and link.current_execution_state()) or "unknown"),
            "unsettled": relay.unsettled(),
        }
