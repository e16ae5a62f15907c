"""REST and event endpoints: what the relay holds, for people and the labextension."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketHandler

from ._version import __version__
from .core import close_codes
from .core.payloads import (
    ClientInfo,
    KernelList,
    KernelSummary,
    ModelDetail,
    ModelList,
    ModelSummary,
    Status,
    SummaryEvent,
)
from .manager import RelayManager

AUTH_RESOURCE = "kernels"
KERNEL_ID = r"(?P<kernel_id>[\w-]+)"
MODEL_ID = r"(?P<model_id>[^/]+)"


F = TypeVar("F", bound=Callable[..., Any])


def authorized_to_execute(method: F) -> F:
    """Widget state needs ``execute`` on kernels: what a kernel websocket would carry."""
    return cast(F, authorized("execute")(method))


class RelayHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def relay_manager(self) -> RelayManager | None:
        manager: RelayManager | None = self.settings.get("widget_relay_manager")
        return manager

    def link_or_404(self, kernel_id: str) -> Any:
        manager = self.relay_manager
        link = manager.link_for(kernel_id) if manager is not None else None
        if link is None:
            off = self.settings.get("widget_relay_off_reason") or "c.WidgetRelay.enabled = False"
            reason = (
                f"the widget relay is off: {off}"
                if manager is None
                else f"no running kernel {kernel_id!r} is followed by the widget relay"
            )
            raise web.HTTPError(404, reason)
        return link

    def write_json(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value, default=str))

    async def summary_for_user(self, kernel_id: str) -> KernelSummary | None:
        manager = self.relay_manager
        summary = manager.kernel_summary(kernel_id) if manager is not None else None
        if summary is None or await may_execute(self):
            return summary
        return without_names(summary)


async def may_execute(handler: Any) -> bool:
    """Whether the user may ``execute`` on kernels: the right that opens a kernel
    websocket, which carries every widget's state and the kernel's clients."""
    allowed = await ensure_async(
        handler.authorizer.is_authorized(handler, handler.current_user, "execute", AUTH_RESOURCE)
    )
    return bool(allowed)


def without_names(summary: KernelSummary) -> KernelSummary:
    """A kernel summary for users who may only ``read`` kernels: how many clients are
    connected, not who they are."""
    anonymous: list[ClientInfo] = [
        {"client_id": "", "username": "", "display_name": "", "protocol": client["protocol"]}
        for client in summary["clients"]
    ]
    return {**summary, "clients": anonymous}


class StatusHandler(RelayHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        status: Status = {"enabled": self.relay_manager is not None, "version": __version__}
        reason = self.settings.get("widget_relay_off_reason")
        if reason:
            status["reason"] = reason
        gateway = self.settings.get("widget_relay_gateway")
        if gateway and self.relay_manager is not None:
            status["gateway"] = gateway
        self.write_json(status)


class KernelsHandler(RelayHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        manager = self.relay_manager
        kernels: list[KernelSummary] = []
        if manager is not None:
            for kernel_id in list(manager.links):
                summary = await self.summary_for_user(kernel_id)
                if summary is not None:
                    kernels.append(summary)
        answer: KernelList = {"enabled": manager is not None, "kernels": kernels}
        self.write_json(answer)


class KernelHandler(RelayHandler):
    @web.authenticated
    @authorized
    async def get(self, kernel_id: str) -> None:
        self.link_or_404(kernel_id)
        self.write_json(await self.summary_for_user(kernel_id))


def model_summary(model: Any) -> ModelSummary:
    from datetime import datetime, timezone

    return {
        "model_id": model.model_id,
        "model_name": model.model_name,
        "model_module": model.model_module,
        "model_module_version": model.model_module_version,
        "state_bytes": model.state_bytes,
        "buffer_bytes": model.buffer_bytes,
        "version": model.version,
        "last_change": datetime.fromtimestamp(model.last_change, timezone.utc).isoformat(),
    }


class ModelsHandler(RelayHandler):
    @web.authenticated
    @authorized_to_execute
    async def get(self, kernel_id: str) -> None:
        link = self.link_or_404(kernel_id)
        models = [model_summary(m) for m in link.relay.table.models.values()]
        answer: ModelList = {"kernel_id": kernel_id, "models": models}
        self.write_json(answer)


class ModelHandler(RelayHandler):
    @web.authenticated
    @authorized_to_execute
    async def get(self, kernel_id: str, model_id: str) -> None:
        link = self.link_or_404(kernel_id)
        model = link.relay.table.get(model_id)
        if model is None:
            raise web.HTTPError(404, f"kernel {kernel_id!r} has no widget model {model_id!r}")
        detail: ModelDetail = {**model_summary(model), "state": model.readable_state()}
        self.write_json(detail)


class StateHandler(RelayHandler):
    @web.authenticated
    @authorized_to_execute
    async def get(self, kernel_id: str) -> None:
        link = self.link_or_404(kernel_id)
        self.write_json(link.relay.table.document())


class EventsHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """Pushes a kernel's summary whenever its clients or models change."""

    auth_resource = AUTH_RESOURCE
    kernel_id = ""
    _names = False  # whether this user may see who the kernel's clients are

    @property
    def relay_manager(self) -> RelayManager | None:
        manager: RelayManager | None = self.settings.get("widget_relay_manager")
        return manager

    @ws_authenticated
    async def get(self, kernel_id: str) -> None:
        self.kernel_id = kernel_id
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)
        )
        if not allowed:
            raise web.HTTPError(403)
        self._names = await may_execute(self)
        await super().get(kernel_id=kernel_id)

    def open(self, kernel_id: str) -> None:
        super().open()
        manager = self.relay_manager
        if manager is None or manager.link_for(kernel_id) is None:
            self.close(close_codes.UNKNOWN_KERNEL, "the widget relay does not follow this kernel")
            return
        manager.add_listener(kernel_id, self._on_change)
        self._push(set())

    def _on_change(self, kernel_id: str, models: set[str], clients: bool) -> None:
        self._push(models)

    def _push(self, models: set[str]) -> None:
        manager = self.relay_manager
        summary = manager.kernel_summary(self.kernel_id) if manager is not None else None
        if summary is not None and not self._names:
            summary = without_names(summary)
        message: SummaryEvent = {
            "type": "summary",
            "kernel": summary,
            "changed_models": sorted(models),
        }
        try:
            self.write_message(json.dumps(message, default=str))
        except Exception:
            return
        if summary is None:
            self.close(close_codes.UNKNOWN_KERNEL, "the kernel has stopped")

    def on_message(self, message: Any) -> None:
        """The event stream is one-way."""

    def on_close(self) -> None:
        manager = self.relay_manager
        if manager is not None:
            manager.remove_listener(self.kernel_id, self._on_change)


def handlers() -> list[tuple[str, type]]:
    base = "/api/widget-relay"
    return [
        (f"{base}/status", StatusHandler),
        (f"{base}/kernels", KernelsHandler),
        (f"{base}/kernels/{KERNEL_ID}", KernelHandler),
        (f"{base}/kernels/{KERNEL_ID}/models", ModelsHandler),
        (f"{base}/kernels/{KERNEL_ID}/models/{MODEL_ID}", ModelHandler),
        (f"{base}/kernels/{KERNEL_ID}/state", StateHandler),
        (f"{base}/kernels/{KERNEL_ID}/events", EventsHandler),
    ]
