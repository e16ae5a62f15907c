"""What the relay decides about one frontend message: policy first, then the protocol.

Every check that can refuse a message (its channel, the server's
``allowed_message_types``, the protocol, the admin's limits, the widget model's identity
and traits) runs before anything changes; the answer is a verdict for the transport
adapter (see verdict.py). Messages it answers from the table are answered through the
sender's port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .buffers import split_state, without_traits
from .limits import (
    check_new_buffers,
    check_new_model,
    check_new_state,
    check_unhandled,
    json_size,
    refusal,
    state_names,
)
from .messages import (
    CLIENT_MSG_TYPES,
    CONTROL_TARGET,
    WIDGET_TARGET,
    Envelope,
    JSONDict,
    MessageError,
    comm_data,
    comm_msg,
    compose,
    counted_type,
)
from .rejections import Reason
from .table import WidgetModel
from .throttle import release_status
from .verdict import ANSWERED, HELD, ClientRefusal, Forward, Refused, Verdict

if TYPE_CHECKING:
    from .relay import ClientPort, KernelRelay

CLIENT_CHANNELS = frozenset({"shell", "control", "stdin"})
RELAYED_REQUEST_TYPES = frozenset({"comm_open", "comm_msg", "comm_close", "comm_info_request"})
MAX_CONTROL_COMMS_PER_CLIENT = 16
MAX_TOLD_UNKNOWN = 256  # (model, trait) pairs a client was told of, per client


def is_loading_request(env: Envelope) -> bool:
    """A request a frontend loads widgets with, which the relay answers from a complete
    table: opening the control comm, or asking which widget comms exist."""
    target = env.content.get("target_name")
    if env.msg_type == "comm_open":
        return bool(target == CONTROL_TARGET)
    return env.msg_type == "comm_info_request" and target == WIDGET_TARGET


class ClientRequests:
    """A kernel relay's handling of its clients' messages."""

    def __init__(self, relay: KernelRelay) -> None:
        self._relay = relay

    def receive(self, port: ClientPort, env: Envelope) -> Verdict:
        """Decide what becomes of a frontend's message (policy first, then the protocol).

        A refused message touches neither the table nor any peer; its sender is told why,
        and a refused update's model is shown the table's values again."""
        msg_type = env.msg_type
        self._relay.count_message("from_client", counted_type(msg_type, CLIENT_MSG_TYPES))
        try:
            self._check_policy(env)
            if env.channel != "shell":
                return Forward(env)
            if msg_type in RELAYED_REQUEST_TYPES:
                return self._client_request(port, env)
            if msg_type == "kernel_info_request":
                return self._client_kernel_info(port, env)
            return Forward(env)
        except MessageError as error:
            return self.refuse(port, env, "malformed", f"malformed {msg_type}: {error}")
        except ClientRefusal as error:
            return self.refuse(port, env, error.reason, str(error))
        finally:
            self._relay.sync.flush(env.header)

    def _check_policy(self, env: Envelope) -> None:
        if env.channel not in CLIENT_CHANNELS:
            raise ClientRefusal("unknown_channel", f"no channel {env.channel!r}")
        allowed = self._relay.limits.allowed_msg_types
        if allowed and env.msg_type not in allowed:
            raise ClientRefusal(
                "not_allowed",
                f"messages of type {env.msg_type!r} are not allowed "
                "(MappingKernelManager.allowed_message_types)",
            )

    def _client_request(self, port: ClientPort, env: Envelope) -> Verdict:
        msg_type = env.msg_type
        if not self._relay.seed.complete and is_loading_request(env):
            return Forward(env)  # the table may miss models: the kernel answers
        if msg_type == "comm_msg":
            return self._client_comm_msg(port, env)
        if msg_type == "comm_open":
            return self._client_comm_open(port, env)
        if msg_type == "comm_close":
            return self._client_comm_close(port, env)
        return self._client_comm_info(port, env)

    def refuse(self, port: ClientPort, env: Envelope, reason: Reason, text: str) -> Refused:
        self._relay.reject("client", reason, text, port.client_id)
        try:
            content = env.content
        except MessageError:
            content = {}
        comm_id = content.get("comm_id")
        model = self._relay.table.get(comm_id) if isinstance(comm_id, str) else None
        data = content.get("data")
        is_update = isinstance(data, dict) and data.get("method") == "update"
        known = (model.state.keys() | model.buffers.keys()) if model and is_update else set()
        names = [name for name in state_names(data) if name in known]
        for message in refusal(
            self._relay.kernel_session, env, f"not applied: {text}", model, names
        ):
            self._relay.deliver(port, message)
        if is_update or env.msg_type == "comm_close":
            self._release(port, env)
        return Refused(reason, text)

    def _release(self, port: ClientPort, env: Envelope) -> None:
        """End a browser's request the kernel never gets, as the kernel's idle would (see
        throttle.py), without changing the kernel status the browser shows. For an update,
        widget.ts would otherwise hold every later change of the model back; for other
        requests the frontend would keep their futures forever."""
        if self._relay.release_type is not None:
            self._relay.deliver(
                port, release_status(self._relay.kernel_session, env, self._relay.release_type)
            )

    def _client_kernel_info(self, port: ClientPort, env: Envelope) -> Verdict:
        """While a cell runs, answer kernel_info_request from the kernel's kept reply:
        JupyterLab holds a new connection's messages until that reply (up to 3 s), and the
        kernel would answer only after the cell. Otherwise the kernel answers, and its
        statuses for the request go to the asking client only."""
        busy = self._relay.is_busy()
        if self._relay.kernel_info is None or not busy:
            if env.msg_id:
                self._relay.route_status(env.msg_id, port.client_id)
            return Forward(env)
        session = self._relay.kernel_session
        self._relay.deliver(
            port,
            compose(
                "kernel_info_reply",
                dict(self._relay.kernel_info),
                session=session,
                parent=env.header,
                channel="shell",
            ),
        )
        # kernel_info_request is an "untracked" type: this idle finishes the request without
        # changing the kernel status the frontend shows.
        self._relay.deliver(
            port, compose("status", {"execution_state": "idle"}, session=session, parent=env.header)
        )
        self._relay.count_action("kernel_info")
        return ANSWERED

    def _client_comm_open(self, port: ClientPort, env: Envelope) -> Verdict:
        comm_id, data = comm_data(env)
        target = env.content.get("target_name")
        if target == CONTROL_TARGET:
            controls = self._relay.control_comms(port)
            controls[comm_id] = None
            while len(controls) > MAX_CONTROL_COMMS_PER_CLIENT:
                del controls[next(iter(controls))]
            self._release(port, env)
            return ANSWERED
        if target == WIDGET_TARGET:
            if comm_id in self._relay.table:
                # A model exists because the kernel opened it; the kernel refuses a second
                # comm with its id, and the table must keep the one it has.
                raise ClientRefusal("model_exists", f"widget model {comm_id} already exists")
            limits, table = self._relay.limits, self._relay.table
            check_new_model(limits, table)
            check_new_state(limits, table, json_size(env, data))
            check_new_buffers(limits, table, env.buffers)
            self._relay.open_model(comm_id, data, env.buffers, by_kernel=False)
            # Peers get the opener's metadata too: a widget manager refuses (and closes) a
            # widget comm_open without the protocol version, and the relay would then close
            # the model for everyone.
            peer_copy = compose(
                "comm_open",
                dict(env.content),
                session=self._relay.kernel_session,
                parent=env.header,
                buffers=env.buffers,
                metadata=env.metadata,
            )
            self._relay.broadcast(peer_copy, exclude=port.client_id)
        return Forward(env)

    def _client_comm_close(self, port: ClientPort, env: Envelope) -> Verdict:
        comm_id, _ = comm_data(env)
        controls = self._relay.control_comms(port)
        if comm_id in controls:
            del controls[comm_id]
            self._release(port, env)
            return ANSWERED
        model = self._relay.table.get(comm_id)
        if model is not None and model.opened_by_kernel:
            # A kernel connection closes every comm it has no handler for (JupyterLab's
            # KernelConnection does so when a comm_open's target is not registered or its
            # model cannot be created), so one page without a widget manager would end the
            # kernel's widget for everyone. The kernel alone ends the models it opened.
            raise ClientRefusal(
                "kernel_model",
                f"widget model {comm_id} was opened by the kernel, which alone closes it",
            )
        if self._relay.close_model(comm_id):
            peer_copy = compose(
                "comm_close",
                {"comm_id": comm_id, "data": {}},
                session=self._relay.kernel_session,
                parent=env.header,
            )
            self._relay.broadcast(peer_copy, exclude=port.client_id)
        return Forward(env)

    def _client_comm_info(self, port: ClientPort, env: Envelope) -> Verdict:
        """The ipywidgets-7 loading path asks which widget comms exist: answer from the
        table at once (it lists every live widget comm); other targets go to the kernel."""
        if env.content.get("target_name") != WIDGET_TARGET:
            return Forward(env)
        comms = {model_id: {"target_name": WIDGET_TARGET} for model_id in self._relay.table.models}
        reply = compose(
            "comm_info_reply",
            {"status": "ok", "comms": comms},
            session=self._relay.kernel_session,
            parent=env.header,
            channel="shell",
        )
        self._relay.deliver(port, reply)
        # Frontends finish the request on an idle status; comm_info_request is an
        # "untracked" type, so this does not change the kernel status they display.
        self._relay.deliver(
            port,
            compose(
                "status",
                {"execution_state": "idle"},
                session=self._relay.kernel_session,
                parent=env.header,
            ),
        )
        self._relay.count_action("comm_info")
        return ANSWERED

    def _client_comm_msg(self, port: ClientPort, env: Envelope) -> Verdict:
        comm_id, data = comm_data(env)
        method = data.get("method")
        if comm_id in self._relay.control_comms(port):
            if method == "request_states":
                self._relay.send_snapshot(port, comm_id, env.header)
            else:
                self._relay.reject(
                    "client", "unknown_control_method", f"{method!r}", port.client_id
                )
            self._release(port, env)
            return ANSWERED
        model = self._relay.table.get(comm_id)
        if model is None:
            return Forward(env)
        if method == "request_state":
            state, paths, buffers = model.wire_state()
            self._relay.deliver(
                port,
                comm_msg(
                    comm_id,
                    {"method": "update", "state": state, "buffer_paths": paths},
                    session=self._relay.kernel_session,
                    parent=env.header,
                    buffers=buffers,
                ),
            )
            self._relay.count_action("request_state")
            self._release(port, env)
            return ANSWERED
        if method != "update":
            return Forward(env)
        return self._client_update(port, env, model, data)

    def _client_update(
        self, port: ClientPort, env: Envelope, model: WidgetModel, data: JSONDict
    ) -> Verdict:
        """Every check that can refuse the update runs before anything changes."""
        if "buffer_paths" in data and not isinstance(data["buffer_paths"], list):
            raise MessageError("'buffer_paths' must be a list")  # ipywidgets would fail on it
        if self._relay.sync.is_pending(env.msg_id):
            raise MessageError(f"msg_id {env.msg_id!r} is already in use by a pending update")
        limits, table = self._relay.limits, self._relay.table
        check_new_buffers(limits, table, env.buffers)
        json_bytes = json_size(env, data)
        check_new_state(limits, table, json_bytes)
        size = json_bytes + sum(len(buffer) for buffer in env.buffers)
        check_unhandled(limits, self._relay.sync.unhandled_bytes(port.client_id), size)
        if self._relay.outputs.is_output(model.model_id):
            stripped = self._relay.outputs.strip_client_write(env, data)
            if stripped is None:
                self._release(port, env)
                return ANSWERED
            data = stripped
        traits = split_state(
            data.get("state", {}), data.get("buffer_paths"), env.buffers, self._relay.table.store
        )
        buffers = env.buffers
        unknown = [name for name in traits if not model.has_trait(name)]
        if unknown:
            # The kernel ignores traits its model does not have: so must the table and the
            # peers. The message still goes to the kernel as sent, as stock would send it.
            for name in unknown:
                self._relay.table.store.release_all(traits.pop(name).buffers)
            self._refuse_traits(port, env, model.model_id, unknown)
            data, buffers = without_traits(data, buffers, unknown)
        if not traits:
            return Forward(env)
        sync, paced = self._relay.sync, self._relay.paces_updates
        sync.client_update(port.client_id, env, model, traits, data, buffers, size, paced)
        self._relay.mark(model.model_id)
        if not paced:
            return Forward(env)
        self._release(port, env)
        key = (model.model_id, port.client_id)
        throttle = self._relay.throttle
        if throttle.admit(key, env.msg_id):
            return Forward(env)
        older = throttle.hold(key, env, traits)
        if older is not None:
            sync.absorb(older, env.msg_id, throttle.waiting_size(key))
        self._relay.count_action("update_held")
        return HELD

    def _refuse_traits(
        self, port: ClientPort, env: Envelope, model_id: str, names: list[str]
    ) -> None:
        """Count every refusal; tell the sender once per model and trait (a custom widget
        may set a frontend-only attribute on every change)."""
        shown = ", ".join(repr(name)[:80] for name in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        text = f"the widget model has no trait {shown}{more}: not applied"
        self._relay.reject("client", "unknown_trait", text, port.client_id)
        told = self._relay.told_unknown(port)
        new = [(model_id, name) for name in names if (model_id, name) not in told]
        if not new:
            return
        told.update(dict.fromkeys(new))
        while len(told) > MAX_TOLD_UNKNOWN:
            del told[next(iter(told))]
        self._relay.deliver(
            port,
            compose(
                "stream",
                {"name": "stderr", "text": f"[widget relay] {text}\n"},
                session=self._relay.kernel_session,
                parent=env.header,
            ),
        )
