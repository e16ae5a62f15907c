"""A websocket kernel client for tests: speaks both wire protocols like a browser does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from jupyter_server.services.kernels.kernelmanager import MappingKernelManager
from tornado.websocket import WebSocketClientConnection

from jupyter_widget_relay.core import wire

Message = dict[str, Any]


# What JupyterLab reads from its page config: idles for requests of these types leave the
# kernel status it shows alone (jupyter_server's default).
UNTRACKED_MESSAGE_TYPES = frozenset(
    MappingKernelManager.class_traits()["untracked_message_types"].default()
)


class KernelClient:
    def __init__(self, ws: WebSocketClientConnection, protocol: str, session: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.session = session
        self.messages: list[Message] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())
        self.closed = False
        # What a stock ipywidgets frontend (widget.ts) would show, model by model
        self.view: dict[str, dict[str, Any]] = {}
        self._expected_echo: dict[tuple[str, str], str] = {}
        # widget.ts's throttle (used by ``change``): one update per model in flight
        # until an idle whose parent is that update; later changes wait, merged
        self.in_flight: dict[str, str] = {}  # msg_id -> model id
        self.waiting: dict[str, dict[str, Any]] = {}
        self.sent_updates: list[Message] = []
        # the kernel status JupyterLab would show: (time, state) each time it changes
        self.kernel_status: list[tuple[float, str]] = []

    @classmethod
    async def open(
        cls,
        jp_ws_fetch: Any,
        kernel_id: str,
        protocol: str = "v1",
        session: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> KernelClient:
        session = session or uuid.uuid4().hex
        kwargs: dict[str, Any] = {}
        if protocol == "v1":
            kwargs["subprotocols"] = [wire.V1_PROTOCOL]
        ws = await jp_ws_fetch(
            "api",
            "kernels",
            kernel_id,
            "channels",
            params={"session_id": session},
            headers=headers or {},
            **kwargs,
        )
        return cls(ws, protocol, session)

    async def _read(self) -> None:
        while True:
            frame = await self.ws.read_message()
            if frame is None:
                self.closed = True
                async with self._changed:
                    self._changed.notify_all()
                return
            message = self._decode(frame)
            message["received_at"] = time.monotonic()
            self._apply_to_view(message)
            if message["header"]["msg_type"] == "status":
                self._status(message)
            async with self._changed:
                self.messages.append(message)
                self._changed.notify_all()

    def _decode(self, frame: bytes | str) -> Message:
        if self.protocol == "v1":
            assert isinstance(frame, bytes)
            channel, parts = wire.parse_v1(frame)
            return {
                "channel": channel,
                "header": json.loads(parts[0]),
                "parent_header": json.loads(parts[1]),
                "metadata": json.loads(parts[2]),
                "content": json.loads(parts[3]),
                "buffers": [bytes(b) for b in parts[4:]],
            }
        envelope = wire.parse_legacy(frame)
        return {
            "channel": envelope.channel,
            "header": envelope.header,
            "parent_header": envelope.parent_header,
            "metadata": envelope.metadata,
            "content": envelope.content,
            "buffers": [bytes(b) for b in envelope.buffers],
        }

    def _apply_to_view(self, message: Message) -> None:
        msg_type = message["header"]["msg_type"]
        content = message["content"]
        if msg_type == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.view[content["comm_id"]] = dict(content["data"]["state"])
            return
        if msg_type == "comm_close":
            self.view.pop(content.get("comm_id"), None)
            return
        if msg_type != "comm_msg":
            return
        data = content.get("data", {})
        method = data.get("method")
        if method == "update_states":
            for model_id, state in state_of(message).items():
                self.view[model_id] = state
            return
        model_id = content.get("comm_id")
        if model_id not in self.view or method not in ("update", "echo_update"):
            return
        state = dict(data.get("state", {}))
        if method == "echo_update":
            parent_id = message["parent_header"].get("msg_id")
            for attr in list(state):
                awaited = self._expected_echo.get((model_id, attr))
                if awaited is None:
                    continue
                if awaited != parent_id:
                    del state[attr]
                else:
                    del self._expected_echo[(model_id, attr)]
                    if attr in self.waiting.get(model_id, {}):
                        del state[attr]
        self.view[model_id].update(state)

    def _status(self, message: Message) -> None:
        state = message["content"].get("execution_state")
        parent = message["parent_header"]
        tracked = parent.get("msg_type") not in UNTRACKED_MESSAGE_TYPES
        if tracked and (not self.kernel_status or self.kernel_status[-1][1] != state):
            self.kernel_status.append((message["received_at"], state))
        if state != "idle":
            return
        model_id = self.in_flight.pop(parent.get("msg_id"), None)
        if model_id is None or model_id in self.in_flight.values():
            return
        waiting = self.waiting.pop(model_id, None)
        if waiting:
            self._send_update(model_id, waiting)

    def change(self, model_id: str, state: dict[str, Any]) -> Message | None:
        """The user changes a widget, with widget.ts's throttle: the update is sent now
        (returned) or waits for the idle of the one in flight (None)."""
        self.view[model_id].update(state)
        if model_id in self.in_flight.values():
            self.waiting.setdefault(model_id, {}).update(state)
            return None
        return self._send_update(model_id, state)

    def _send_update(self, model_id: str, state: dict[str, Any]) -> Message:
        request = self.update(model_id, state)
        self.in_flight[request["header"]["msg_id"]] = model_id
        self.sent_updates.append(request)
        return request

    def awaits_echo(self) -> list[tuple[str, str]]:
        """Attributes whose echo this frontend still waits for (and drops peers' for)."""
        return list(self._expected_echo)

    def send(
        self,
        msg_type: str,
        content: dict[str, Any],
        channel: str = "shell",
        buffers: list[bytes] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "session": self.session,
            "username": "test",
            "date": "2026-01-01T00:00:00Z",
            "version": "5.3",
        }
        buffers = buffers or []
        msg = {
            "header": header,
            "parent_header": {},
            "metadata": metadata or {},
            "content": content,
            "channel": channel,
            "buffers": buffers,
        }
        if self.protocol == "v1":
            parts = [
                wire.pack(header),
                wire.pack({}),
                wire.pack(msg["metadata"]),
                wire.pack(content),
                *buffers,
            ]
            self.ws.write_message(wire.encode_v1(channel, parts), binary=True)
        else:
            from jupyter_widget_relay.core.messages import Envelope

            env = Envelope(
                header,
                {},
                content=content,
                metadata=msg["metadata"],
                buffers=buffers,
                channel=channel,
            )
            frame = wire.legacy_frame(env)
            self.ws.write_message(frame, binary=isinstance(frame, bytes))
        return msg

    async def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float = 10, start: int = 0
    ) -> Message:
        deadline = time.monotonic() + timeout
        index = start
        async with self._changed:
            while True:
                while index < len(self.messages):
                    if predicate(self.messages[index]):
                        return self.messages[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise TimeoutError(f"no matching message within {timeout}s")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def execute(self, code: str, timeout: float = 30) -> Message:
        """Run code and wait for its execute_reply; returns the request."""
        request = self.start_execute(code)
        await self.wait_for(lambda m: is_reply_to(m, request, "execute_reply"), timeout)
        await self.wait_for(lambda m: is_idle_after(m, request), timeout)
        return request

    async def start_running(self, code: str, timeout: float = 10) -> Message:
        """Send a cell and return its request once the kernel has started it (its first
        status), so that what follows happens while the cell runs."""
        request = self.start_execute(code)
        await self.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "status"
                and m["parent_header"].get("msg_id") == request["header"]["msg_id"]
            ),
            timeout,
        )
        return request

    def start_execute(self, code: str) -> Message:
        return self.send("execute_request", execute_content(code))

    async def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate a Python expression in the kernel and return its JSON value."""
        request = self.start_execute(f"import json as _j; print(_j.dumps({expression}))")
        reply = await self.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "stream"
                and m["parent_header"].get("msg_id") == request["header"]["msg_id"]
            ),
            timeout,
        )
        await self.wait_for(lambda m: is_idle_after(m, request), timeout)
        return json.loads(reply["content"]["text"])

    async def request_states(self, timeout: float = 10) -> Message:
        comm_id = uuid.uuid4().hex
        self.send(
            "comm_open",
            {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}},
            metadata={"version": "1.0.0"},
        )
        request = self.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})
        reply = await self.wait_for(
            lambda m: (
                m["header"]["msg_type"] == "comm_msg"
                and m["content"].get("comm_id") == comm_id
                and m["content"]["data"].get("method") == "update_states"
            ),
            timeout,
        )
        assert reply["parent_header"]["msg_id"] == request["header"]["msg_id"]
        self.send("comm_close", {"comm_id": comm_id, "data": {}})
        return reply

    def update(
        self,
        model_id: str,
        state: dict[str, Any],
        buffer_paths: list[Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> Message:
        """Send an update as widget.ts does: remember it awaits the echo, show it at once."""
        if model_id in self.view:
            self.view[model_id].update(state)
        request = self.send(
            "comm_msg",
            {
                "comm_id": model_id,
                "data": {"method": "update", "state": state, "buffer_paths": buffer_paths or []},
            },
            buffers=buffers,
        )
        for attr in state:
            self._expected_echo[(model_id, attr)] = request["header"]["msg_id"]
        return request

    def widget_messages(self, model_id: str | None = None, since: int = 0) -> list[Message]:
        return [
            m
            for m in self.messages[since:]
            if m["header"]["msg_type"] in ("comm_open", "comm_msg", "comm_close")
            and (model_id is None or m["content"].get("comm_id") == model_id)
        ]

    def pause(self) -> None:
        """Stop reading, like a browser tab that froze; the server's writes back up."""
        self._reader.cancel()

    def resume(self) -> None:
        self._reader = asyncio.ensure_future(self._read())

    def close(self) -> None:
        self.ws.close()
        self._reader.cancel()


def is_reply_to(message: Message, request: Message, msg_type: str) -> bool:
    return (
        message["header"]["msg_type"] == msg_type
        and message["parent_header"].get("msg_id") == request["header"]["msg_id"]
    )


def execute_content(code: str) -> dict[str, Any]:
    """An ``execute_request``'s content as JupyterLab sends it for a cell, without history."""
    return {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


def is_idle_after(message: Message, request: Message) -> bool:
    return (
        message["header"]["msg_type"] == "status"
        and message["content"].get("execution_state") == "idle"
        and message["parent_header"].get("msg_id") == request["header"]["msg_id"]
    )


def state_of(update_states: Message) -> dict[str, Any]:
    """update_states → {model_id: state with buffers put back}."""
    data = update_states["content"]["data"]
    entries = {mid: {"state": dict(entry["state"])} for mid, entry in data["states"].items()}
    # as jupyterlab_widgets' _loadFromKernel: [model_id, *path into the model's entry]
    for path, buffer in zip(data["buffer_paths"], update_states["buffers"], strict=False):
        target: Any = entries[path[0]]
        for key in path[1:-1]:
            target = target[key]
        target[path[-1]] = buffer
    return {mid: entry["state"] for mid, entry in entries.items()}
