"""core/status_routes.py: which client gets the kernel's statuses for a request."""

from __future__ import annotations

from jupyter_widget_relay.core.messages import Envelope, compose, new_header
from jupyter_widget_relay.core.status_routes import MAX_ROUTES, RELAY_OWN_REQUEST, StatusRoutes


def request(msg_type: str = "kernel_info_request") -> dict[str, object]:
    return new_header(msg_type, "client-session")


def status(parent: dict[str, object], state: str) -> Envelope:
    return compose("status", {"execution_state": state}, session="k", parent=parent)


def test_a_clients_kernel_info_statuses_go_to_that_client_until_idle() -> None:
    routes = StatusRoutes()
    asked = request()
    routes.add(str(asked["msg_id"]), "c1")
    assert routes.recipient(status(asked, "busy")) == "c1"
    assert routes.recipient(status(asked, "idle")) == "c1"
    assert routes.recipient(status(asked, "busy")) is None, "the route ends at idle"


def test_the_relays_own_requests_statuses_go_to_nobody() -> None:
    routes = StatusRoutes()
    own = request("comm_msg")  # e.g. a request_state the relay sent
    routes.add(str(own["msg_id"]), RELAY_OWN_REQUEST)
    assert routes.recipient(status(own, "busy")) == RELAY_OWN_REQUEST
    assert routes.recipient(status(own, "idle")) == RELAY_OWN_REQUEST
    assert routes.recipient(status(own, "idle")) is None


def test_a_clients_other_requests_are_seen_by_everyone() -> None:
    routes = StatusRoutes()
    execute = request("execute_request")
    routes.add(str(execute["msg_id"]), "c1")
    assert routes.recipient(status(execute, "busy")) is None
    assert routes.recipient(status(execute, "idle")) is None


def test_statuses_of_unrouted_or_parentless_requests_go_to_everyone() -> None:
    routes = StatusRoutes()
    assert routes.recipient(status(request(), "busy")) is None
    routes.add("other", "c1")
    assert routes.recipient(status(request(), "busy")) is None
    assert routes.recipient(compose("status", {"execution_state": "busy"}, session="k")) is None


def test_a_msg_id_two_clients_use_is_not_routed() -> None:
    routes = StatusRoutes()
    shared = request()
    routes.add(str(shared["msg_id"]), "c1")
    routes.add(str(shared["msg_id"]), "c1")
    assert routes.recipient(status(shared, "busy")) == "c1", "the same client again is fine"
    routes.add(str(shared["msg_id"]), "c2")
    routes.add(str(shared["msg_id"]), "c1")
    assert routes.recipient(status(shared, "busy")) is None
    assert routes.recipient(status(shared, "idle")) is None


def test_the_oldest_routes_are_forgotten_and_clear_forgets_all() -> None:
    routes = StatusRoutes()
    requests = [request() for _ in range(MAX_ROUTES + 1)]
    for index, asked in enumerate(requests):
        routes.add(str(asked["msg_id"]), f"c{index}")
    assert routes.recipient(status(requests[0], "busy")) is None
    assert routes.recipient(status(requests[1], "busy")) == "c1"
    assert routes.recipient(status(requests[-1], "busy")) == f"c{MAX_ROUTES}"
    routes.clear()
    assert routes.recipient(status(requests[-1], "busy")) is None
