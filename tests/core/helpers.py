"""Helpers the pure-core tests share: a recording client port and a kernel-opened model."""

from __future__ import annotations

from jupyter_widget_relay.core.messages import Envelope
from jupyter_widget_relay.core.relay import KernelRelay

from .simulation import KERNEL_SESSION, header


class Port:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.sent: list[Envelope] = []

    def send(self, envelope: Envelope) -> None:
        self.sent.append(envelope)


def model_state(**extra: object) -> dict[str, object]:
    return {
        "_model_name": "ImageModel",
        "_model_module": "@jupyter-widgets/controls",
        "_model_module_version": "2.0.0",
        **extra,
    }


def kernel_open(relay: KernelRelay, model_id: str, **state: object) -> None:
    relay.handle_kernel_message(
        Envelope(
            header("comm_open", KERNEL_SESSION),
            {},
            content={
                "comm_id": model_id,
                "target_name": "jupyter.widget",
                "data": {"state": model_state(**state), "buffer_paths": []},
            },
        )
    )
