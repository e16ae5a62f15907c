"""The relay's own channel to a kernel this server runs: its ZMQ iopub and shell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_client.session import Session

from .core.messages import Envelope, MessageError
from .core.wire import envelope_from_parts
from .kernel_channel import ChannelEvents, Message


class ZmqKernelChannel:
    """Subscribes to the kernel's iopub and opens a shell stream, with the kernel's key."""

    def __init__(self, kernel_manager: Any) -> None:
        self.kernel_manager = kernel_manager
        self.session = Session(config=kernel_manager.session.config, key=kernel_manager.session.key)
        self.ports: list[int] = []
        self._iopub: Any = None
        self._shell: Any = None
        self._events: ChannelEvents | None = None

    @property
    def connected(self) -> bool:
        return self._shell is not None and not self._shell.closed()

    def open(self, events: ChannelEvents) -> None:
        self.close()
        self._events = events
        self.session.key = self.kernel_manager.session.key
        self.ports = list(self.kernel_manager.ports)
        self._iopub = self.kernel_manager.connect_iopub()
        self._iopub.on_recv(self._on_iopub)
        self._shell = self.kernel_manager.connect_shell()
        self._shell.on_recv(self._on_shell)

    def send(self, message: Message) -> bool:
        if not self.connected:
            return False
        return self.session.send(self._shell, message) is not None

    def moved(self) -> bool:
        return list(self.kernel_manager.ports) != self.ports

    def close(self) -> None:
        for stream in (self._iopub, self._shell):
            if stream is not None and not stream.closed():
                stream.on_recv(None)
                stream.close()
        self._iopub = self._shell = None

    def _parts(self, msg_list: list[bytes]) -> list[bytes]:
        _, parts = self.session.feed_identities(msg_list)
        return [part for part in parts[1:] if isinstance(part, bytes)]

    def _on_iopub(self, msg_list: list[bytes]) -> None:
        assert self._events is not None
        self._receive("iopub", msg_list, self._events.on_iopub)

    def _on_shell(self, msg_list: list[bytes]) -> None:
        assert self._events is not None
        self._receive("shell", msg_list, self._events.on_shell_reply)

    def _receive(
        self, channel: str, msg_list: list[bytes], deliver: Callable[[Envelope], None]
    ) -> None:
        """Hand one message from ``channel`` to ``deliver``, or report it as unreadable."""
        assert self._events is not None
        try:
            envelope = envelope_from_parts(channel, self._parts(msg_list))
        except (MessageError, ValueError) as error:
            self._events.on_unreadable(channel, str(error))
            return
        deliver(envelope)
