"""A client's outgoing queue while its connection is congested.

Messages wait here when the transport already holds more unsent bytes than it should.
A plain widget ``update`` supersedes earlier queued ``update``s of the same model whose
traits it covers (the frontend would apply both and end on the later one), so a client
that falls behind on a stream of kernel-side changes gets the latest values, not every
value. Nothing else is coalesced: echoes and custom messages carry meaning in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .messages import Envelope


@dataclass(slots=True, eq=False)
class Queued:
    envelope: Envelope
    frame: bytes | str
    size: int
    dropped: bool = False


def _plain_update(envelope: Envelope) -> tuple[str, frozenset[str]] | None:
    if envelope.msg_type != "comm_msg" or envelope.buffers:
        return None
    content = envelope.content
    data = content.get("data")
    if not isinstance(data, dict) or data.get("method") != "update":
        return None
    state = data.get("state")
    comm_id = content.get("comm_id")
    if not isinstance(state, dict) or not isinstance(comm_id, str) or data.get("buffer_paths"):
        return None
    return comm_id, frozenset(state)


class Outbox:
    def __init__(self) -> None:
        self._queue: deque[Queued] = deque()
        self._latest: dict[str, list[tuple[frozenset[str], Queued]]] = {}
        self.pending_bytes = 0
        self.coalesced = 0

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, envelope: Envelope, frame: bytes | str, size: int) -> None:
        item = Queued(envelope, frame, size)
        key = _plain_update(envelope)
        if key is not None:
            model_id, traits = key
            earlier = self._latest.setdefault(model_id, [])
            for covered, queued in earlier:
                if not queued.dropped and covered <= traits:
                    queued.dropped = True
                    self.pending_bytes -= queued.size
                    self.coalesced += 1
            earlier[:] = [(c, q) for c, q in earlier if not q.dropped]
            earlier.append((traits, item))
        self._queue.append(item)
        self.pending_bytes += size

    def pop(self) -> Queued | None:
        while self._queue:
            item = self._queue.popleft()
            if item.dropped:
                continue
            self.pending_bytes -= item.size
            key = _plain_update(item.envelope)
            if key is not None:
                entries = self._latest.get(key[0], [])
                entries[:] = [(c, q) for c, q in entries if q is not item]
                if not entries:
                    self._latest.pop(key[0], None)
            return item
        return None

    def clear(self) -> None:
        self._queue.clear()
        self._latest.clear()
        self.pending_bytes = 0
