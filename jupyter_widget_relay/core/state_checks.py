"""The relay's own ``request_state``s: asking the kernel which value it kept.

An ``echo_update`` carries a client's raw value, sent before the kernel validates it, and
a kernel without echoes says nothing at all: a value the kernel refused (a failed
validation raises and publishes no correction) looks just like one it kept. Where the
kernel's answer to a client update did not state a trait's value with a plain
``update``, the relay asks for the model's state once the update is handled, and ends on
the kernel's answer. Checks due within one write interval are sent as one per model.
"""

from __future__ import annotations

from collections.abc import Container

from .messages import Envelope, comm_msg


class StateChecks:
    def __init__(self) -> None:
        self._due: set[str] = set()
        self._sent: dict[str, str] = {}  # request msg_id -> model id, until its idle

    def __bool__(self) -> bool:
        return bool(self._due or self._sent)

    @property
    def open_count(self) -> int:
        return len(self._due) + len(self._sent)

    def clear(self) -> None:
        self._due.clear()
        self._sent.clear()

    def add(self, model_id: str) -> bool:
        """Check ``model_id`` on the next write; whether the write must be scheduled."""
        if model_id in self._due:
            return False
        self._due.add(model_id)
        return True

    def take(self, session: str, live: Container[str]) -> list[Envelope]:
        """One ``request_state`` per due model that still exists, for the kernel's shell."""
        requests = []
        for model_id in sorted(self._due):
            if model_id not in live:
                continue
            request = comm_msg(model_id, {"method": "request_state"}, session=session)
            request.channel = "shell"
            self._sent[request.msg_id] = model_id
            requests.append(request)
        self._due.clear()
        return requests

    def answers(self, env: Envelope, model_id: str) -> bool:
        """Whether ``env`` (a kernel ``update``) answers a check of ``model_id``; the
        check is then done."""
        parent_id = env.parent_msg_id
        if parent_id is None or self._sent.get(parent_id) != model_id:
            return False
        del self._sent[parent_id]
        return True

    def unanswered(self, parent_msg_id: str) -> bool:
        """The kernel went idle after ``parent_msg_id``: whether that was a check it
        did not answer (a kernel without ``request_state``, or a model it does not have)."""
        return self._sent.pop(parent_msg_id, None) is not None
