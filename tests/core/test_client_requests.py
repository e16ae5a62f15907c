"""core/client_requests.py: the widget control comms a client opens."""

from __future__ import annotations

from jupyter_widget_relay.core.messages import Envelope
from jupyter_widget_relay.core.relay import KernelRelay

from .helpers import Port, kernel_open
from .simulation import forwards, header


def test_control_comms_per_client_are_bounded() -> None:
    from jupyter_widget_relay.core.client_requests import MAX_CONTROL_COMMS_PER_CLIENT

    relay = KernelRelay("k")
    a = Port("a")
    relay.attach(a)
    kernel_open(relay, "m", value=1)
    for index in range(MAX_CONTROL_COMMS_PER_CLIENT + 5):
        opened = Envelope(
            header("comm_open", "a"),
            {},
            content={"comm_id": f"ctl{index}", "target_name": "jupyter.widget.control"},
        )
        assert forwards(relay, a, opened) is False
    assert len(relay._clients["a"].control_comms) == MAX_CONTROL_COMMS_PER_CLIENT
    newest = f"ctl{MAX_CONTROL_COMMS_PER_CLIENT + 4}"
    request = Envelope(
        header("comm_msg", "a"),
        {},
        content={"comm_id": newest, "data": {"method": "request_states"}},
    )
    assert forwards(relay, a, request) is False
    assert a.sent[-2].content["data"]["method"] == "update_states"
    oldest = Envelope(
        header("comm_msg", "a"), {}, content={"comm_id": "ctl0", "data": {"method": "x"}}
    )
    assert forwards(relay, a, oldest) is True, "a forgotten control comm is unknown"
