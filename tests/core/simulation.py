"""Frontends and a kernel simulated at the message level, to drive the pure core.

``Frontend`` follows ipywidgets' widget.ts: plain ``update``s always apply; while a
frontend awaits the echo of its own update for an attribute it drops other
``echo_update``s for it. A ``paced`` frontend also keeps widget.ts's throttle: per model
one update in flight until an iopub idle whose parent is that update; later changes
wait merged in ``waiting`` (the latest value per attribute) and go on ``pump()``.
``Kernel`` handles each client's updates in per-client FIFO
order (shell sockets) the way ipywidgets' ``Widget.set_state`` does: it echoes first
(or not: ``echo=False`` is ipywidgets 7 / ``JUPYTER_WIDGETS_ECHO=0``; ``no_echo`` lists
traits tagged ``echo_update=False``), then sets the traits (or, for a value in
``refused``, fails validation and keeps them all), sends a correction when
validation changed a value (``maximum`` clamps ``value``), lets observers change other
traits (``derived``: an observer of ``value`` that sets ``description``), and goes idle.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Hashable
from typing import Any

from jupyter_widget_relay.core.messages import Envelope, comm_msg, compose
from jupyter_widget_relay.core.relay import ClientPort, KernelRelay
from jupyter_widget_relay.core.verdict import Forward, Verdict

KERNEL_SESSION = "kernel-session"


def receive(relay: KernelRelay, port: ClientPort, envelope: Envelope) -> Verdict:
    """A client's shell message, as the websocket adapter hands it to the core."""
    envelope.channel = "shell"
    return relay.receive(port, envelope)


def forwards(relay: KernelRelay, port: ClientPort, envelope: Envelope) -> bool:
    """Whether the core sends the client's shell message on to the kernel."""
    return isinstance(receive(relay, port, envelope), Forward)


def header(msg_type: str, session: str) -> dict[str, Any]:
    return {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "username": "u",
        "date": "",
        "version": "5.3",
    }


class Frontend:
    def __init__(self, name: str, relay: KernelRelay, kernel: Kernel, paced: bool = False) -> None:
        self.client_id = name
        self.relay = relay
        self.kernel = kernel
        self.models: dict[str, dict[str, Any]] = {}
        self.expected: dict[tuple[str, str], str] = {}
        self.received: list[Envelope] = []
        self.attached = False
        self.paced = paced
        self.in_flight: dict[str, str] = {}  # msg_id of an update -> its model, until idle
        self.waiting: dict[str, dict[str, Any]] = {}  # model -> changes held back
        self.released: list[str] = []  # models whose waiting changes may go now
        self.sent: list[Envelope] = []  # every update this frontend sent

    # ClientPort
    def send(self, envelope: Envelope) -> None:
        self.received.append(envelope)
        if envelope.msg_type == "status":
            self._status(envelope)
            return
        if envelope.msg_type != "comm_msg":
            return
        content = envelope.content
        data = content["data"]
        model_id = content["comm_id"]
        if data.get("method") == "update_states":
            for mid, entry in data["states"].items():
                self.models[mid] = dict(entry["state"])
            return
        if model_id not in self.models or data.get("method") not in ("update", "echo_update"):
            return
        state = dict(data["state"])
        if data["method"] == "echo_update":
            parent_id = envelope.parent_header.get("msg_id")
            for attr in list(state):
                awaited = self.expected.get((model_id, attr))
                if awaited is None:
                    continue
                if awaited != parent_id:
                    del state[attr]
                else:
                    del self.expected[(model_id, attr)]
                    if attr in self.waiting.get(model_id, {}):
                        del state[attr]
        self.models[model_id].update(state)

    def _status(self, status: Envelope) -> None:
        """widget.ts's ``_handle_status``: the first idle for an update ends it (the
        future is then disposed)."""
        if status.content.get("execution_state") != "idle":
            return
        model_id = self.in_flight.pop(status.parent_header.get("msg_id", ""), None)
        if model_id is None or model_id not in self.waiting or model_id in self.released:
            return
        if not any(m == model_id for m in self.in_flight.values()):
            self.released.append(model_id)

    def pump(self) -> bool:
        """Send the held-back changes whose models were released; whether any went."""
        released, self.released = self.released, []
        for model_id in released:
            state = self.waiting.pop(model_id, None)
            if state:
                self._send_update(model_id, state)
        return bool(released)

    def join(self) -> None:
        self.relay.attach(self)
        self.attached = True
        control = uuid.uuid4().hex
        opened = Envelope(
            header("comm_open", self.client_id),
            {},
            content={"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
        )
        assert forwards(self.relay, self, opened) is False
        request = Envelope(
            header("comm_msg", self.client_id),
            {},
            content={"comm_id": control, "data": {"method": "request_states"}},
        )
        assert forwards(self.relay, self, request) is False

    def leave(self) -> None:
        """The browser tab closes; what it already sent still reaches the kernel."""
        self.relay.detach(self)
        self.attached = False

    def set(self, model_id: str, **state: Any) -> Envelope | None:
        """The user changes the widget; returns the update sent (None if it waits)."""
        self.models[model_id].update(state)
        if self.paced and any(m == model_id for m in self.in_flight.values()):
            self.waiting.setdefault(model_id, {}).update(state)
            return None
        return self._send_update(model_id, state)

    def _send_update(self, model_id: str, state: dict[str, Any]) -> Envelope:
        envelope = Envelope(
            header("comm_msg", self.client_id),
            {},
            content={
                "comm_id": model_id,
                "data": {"method": "update", "state": state, "buffer_paths": []},
            },
        )
        for attr in state:
            self.expected[(model_id, attr)] = envelope.msg_id
        self.sent.append(envelope)
        if self.paced:
            self.in_flight[envelope.msg_id] = model_id
        if forwards(self.relay, self, envelope):
            self.kernel.inbox[self.client_id].append(envelope)
        return envelope

    def value(self, model_id: str, attr: str = "value") -> Any:
        return self.models[model_id][attr]


class Kernel:
    def __init__(
        self,
        relay: KernelRelay,
        echo: bool = True,
        maximum: int | None = None,
        no_echo: frozenset[str] = frozenset(),
        derived: bool = False,
        refused: frozenset[Any] = frozenset(),
    ) -> None:
        self.relay = relay
        self.refused = refused
        self.echo = echo
        self.maximum = maximum
        self.no_echo = no_echo
        self.derived = derived
        self.models: dict[str, dict[str, Any]] = {}
        # one queue per shell socket; "relay" is the relay's own (its state checks)
        self.inbox: dict[str, deque[Envelope]] = {"relay": deque()}

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None = None,
    ) -> None:
        envelope = compose(msg_type, content, session=KERNEL_SESSION, parent=parent)
        self.relay.handle_kernel_message(envelope)

    def create_slider(self, model_id: str, value: int = 0) -> None:
        state = {
            "_model_name": "IntSliderModel",
            "_model_module": "@jupyter-widgets/controls",
            "_model_module_version": "2.0.0",
            "value": value,
            "description": "",
        }
        self.models[model_id] = dict(state)
        self.publish(
            "comm_open",
            {
                "comm_id": model_id,
                "target_name": "jupyter.widget",
                "data": {"state": state, "buffer_paths": []},
            },
        )

    def set(self, model_id: str, **state: Any) -> None:
        self.models[model_id].update(state)
        self.relay.handle_kernel_message(
            comm_msg(
                model_id,
                {"method": "update", "state": state, "buffer_paths": []},
                session=KERNEL_SESSION,
            )
        )

    def pending(self) -> bool:
        return any(self.inbox.values())

    def process_next(self, client_id: str) -> None:
        request = self.inbox[client_id].popleft()
        parent = request.header
        self.publish("status", {"execution_state": "busy"}, parent)
        data = request.content["data"]
        model_id = request.content["comm_id"]
        if data["method"] == "request_state":
            self.relay.handle_kernel_message(
                comm_msg(
                    model_id,
                    {"method": "update", "state": dict(self.models[model_id]), "buffer_paths": []},
                    session=KERNEL_SESSION,
                    parent=parent,
                )
            )
            self.publish("status", {"execution_state": "idle"}, parent)
            self.collect()
            return
        state = data["state"]
        echoed = {attr: value for attr, value in state.items() if attr not in self.no_echo}
        if self.echo and echoed:
            self.relay.handle_kernel_message(
                comm_msg(
                    model_id,
                    {"method": "echo_update", "state": echoed, "buffer_paths": []},
                    session=KERNEL_SESSION,
                    parent=parent,
                )
            )
        corrected = {}
        model = self.models[model_id]
        if any(isinstance(v, Hashable) and v in self.refused for v in state.values()):
            # validation raised inside hold_trait_notifications: every trait of the update
            # is rolled back, and no correction is sent (only the echo went out)
            self.publish("status", {"execution_state": "idle"}, parent)
            self.collect()
            return
        old_value = model.get("value")
        for attr, value in state.items():
            if attr == "value" and self.maximum is not None and value > self.maximum:
                corrected[attr] = self.maximum
            model[attr] = corrected.get(attr, value)
        if self.derived and model.get("value") != old_value:
            # the observer runs only on a change; its value is sent unless the property
            # lock (the client's own description in this update) already holds it
            description = f"v{model['value']}"
            if model.get("description") != description:
                corrected["description"] = model["description"] = description
        if corrected:
            self.relay.handle_kernel_message(
                comm_msg(
                    model_id,
                    {"method": "update", "state": corrected, "buffer_paths": []},
                    session=KERNEL_SESSION,
                    parent=parent,
                )
            )
        self.publish("status", {"execution_state": "idle"}, parent)
        self.collect()

    def process_any(self) -> None:
        """Handle the next request of the first shell socket that has one."""
        self.process_next(next(client for client, queue in self.inbox.items() if queue))

    def collect(self) -> None:
        """Queue the requests the relay sends the kernel on its own shell socket."""
        self.inbox["relay"].extend(self.relay.take_kernel_writes())


def world(
    clients: int,
    *,
    echo: bool = True,
    maximum: int | None = None,
    refused: frozenset[Any] = frozenset(),
    value: int = 0,
    throttle: bool = True,
    paced: bool = False,
) -> tuple[KernelRelay, Kernel, list[Frontend]]:
    relay = KernelRelay("k", throttle=throttle)
    kernel = Kernel(relay, echo=echo, maximum=maximum, refused=refused)
    kernel.create_slider("m", value)
    frontends = []
    for index in range(clients):
        frontend = Frontend(f"c{index}", relay, kernel, paced=paced)
        kernel.inbox[frontend.client_id] = deque()
        frontend.join()
        frontends.append(frontend)
    return relay, kernel, frontends
