"""core/output_relay.py: browsers' writes to an Output widget's outputs are dropped."""

from __future__ import annotations

from jupyter_widget_relay.core.messages import Envelope
from jupyter_widget_relay.core.relay import KernelRelay

from .helpers import Port, kernel_open
from .simulation import forwards, header


def test_output_writes_are_stripped_also_as_buffers() -> None:
    relay = KernelRelay("k")
    a, b = Port("a"), Port("b")
    relay.attach(a)
    relay.attach(b)
    output = {"_model_name": "OutputModel", "_model_module": "@jupyter-widgets/output"}
    kernel_open(relay, "out", outputs=[], msg_id="", **output)
    write = Envelope(
        header("comm_msg", "a"),
        {},
        content={
            "comm_id": "out",
            "data": {
                "method": "update",
                "state": {"msg_id": "x"},
                "buffer_paths": [["outputs"], ["extra"]],
            },
        },
        buffers=[b"not outputs", b"kept"],
    )
    assert forwards(relay, a, write) is True
    model = relay.table.get("out")
    assert model.state["outputs"] == [] and "outputs" not in model.buffers
    assert model.state["msg_id"] == "x"
    assert write.content["data"]["buffer_paths"] == [["extra"]]
    assert write.buffers == [b"kept"]
    assert relay.counters["relay", "output_write_dropped"] == 1
    only_outputs = Envelope(
        header("comm_msg", "a"),
        {},
        content={
            "comm_id": "out",
            "data": {"method": "update", "state": {}, "buffer_paths": [["outputs"]]},
        },
        buffers=[b"x"],
    )
    assert forwards(relay, a, only_outputs) is False, "nothing left to forward"
