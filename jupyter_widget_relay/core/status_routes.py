"""Which client gets the kernel's statuses for a request only that client cares about.

Frontends send a ``kernel_info_request`` on every connect. With stock jupyter_server every
client receives its busy/idle, so N clients connecting cost 2·N² frames; the relay sends
them to the asking client only. The relay's own requests have no client: their statuses
go to nobody.
"""

from __future__ import annotations

from .messages import Envelope

RELAY_OWN_REQUEST = ""  # the client id of the relay's own requests: no client has it
MAX_ROUTES = 1000  # most requests awaiting their idle at once; the oldest are forgotten
PRIVATE_REQUEST_TYPES = frozenset({"kernel_info_request"})


class StatusRoutes:
    def __init__(self) -> None:
        # parent msg_id -> client id, or None once two clients used the same msg_id
        self._routes: dict[str, str | None] = {}

    def clear(self) -> None:
        self._routes.clear()

    def add(self, parent_msg_id: str, client_id: str) -> None:
        """Statuses whose parent is ``parent_msg_id`` go to ``client_id`` only. A msg_id
        two clients use is not routed (stock behaviour: everyone gets its statuses)."""
        routes = self._routes
        if parent_msg_id in routes and routes[parent_msg_id] != client_id:
            routes[parent_msg_id] = None
            return
        routes[parent_msg_id] = client_id
        while len(routes) > MAX_ROUTES:
            del routes[next(iter(routes))]  # the oldest: its kernel never answered

    def recipient(self, status: Envelope) -> str | None:
        """The one client ``status`` is for, or None when every client gets it."""
        parent_id = status.parent_msg_id
        if not self._routes or parent_id not in self._routes:
            return None
        client_id = self._routes[parent_id]
        private = status.parent_header.get("msg_type") in PRIVATE_REQUEST_TYPES
        if not private and client_id != RELAY_OWN_REQUEST:
            return None
        if status.content.get("execution_state") == "idle":
            del self._routes[parent_id]
        return client_id
