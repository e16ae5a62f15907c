"""Output widgets captured once, on the server.

While an Output model's ``msg_id`` is set, kernel outputs whose parent is that message
belong in the model's ``outputs`` (ipywidgets' Output context manager; jupyterlab_widgets'
OutputModel captures them with a kernel message hook that hides them from the cell).
The relay keeps that list in the table, so late joiners and browsers that connect later
see it, and the kernel gets one write per change instead of one per browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .messages import Envelope

OUTPUT_MODEL = ("OutputModel", "@jupyter-widgets/output")
CAPTURED_TYPES = frozenset(
    {"stream", "display_data", "execute_result", "error", "clear_output", "update_display_data"}
)


def is_output_model(model_name: str, model_module: str) -> bool:
    return (model_name, model_module) == OUTPUT_MODEL


@dataclass(slots=True)
class _Capture:
    clear_pending: bool = False
    display_ids: dict[str, list[int]] = field(default_factory=dict)


def _display_id(content: dict[str, Any]) -> Any:
    transient = content.get("transient")
    return transient.get("display_id") if isinstance(transient, dict) else None


def _as_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """The nbformat output a frontend's OutputAreaModel stores for an iopub message."""
    if msg_type == "stream":
        return {
            "output_type": "stream",
            "name": content.get("name", "stdout"),
            "text": content.get("text", ""),
        }
    if msg_type in ("display_data", "execute_result"):
        output = {
            "output_type": msg_type,
            "data": content.get("data", {}),
            "metadata": content.get("metadata", {}),
        }
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": content.get("ename", ""),
            "evalue": content.get("evalue", ""),
            "traceback": content.get("traceback", []),
        }
    return None


class OutputCapture:
    """Which Output models capture which parent message, and how their lists change."""

    def __init__(self) -> None:
        self._by_parent: dict[str, list[str]] = {}
        self._capturing: dict[str, str] = {}
        self._state: dict[str, _Capture] = {}

    def watch(self, model_id: str, msg_id: Any) -> None:
        """The model's ``msg_id`` is now ``msg_id`` ('' stops capturing)."""
        previous = self._capturing.pop(model_id, None)
        if previous is not None:
            models = self._by_parent.get(previous, [])
            if model_id in models:
                models.remove(model_id)
            if not models:
                self._by_parent.pop(previous, None)
        if isinstance(msg_id, str) and msg_id:
            self._capturing[model_id] = msg_id
            self._by_parent.setdefault(msg_id, []).append(model_id)
            self._state.setdefault(model_id, _Capture())

    def forget(self, model_id: str) -> None:
        self.watch(model_id, "")
        self._state.pop(model_id, None)

    def clear(self) -> None:
        self._by_parent.clear()
        self._capturing.clear()
        self._state.clear()

    def target(self, env: Envelope) -> str | None:
        """The model that captures this iopub message: the one that started capturing
        last wins, as the frontend's most recently registered message hook does."""
        if env.msg_type not in CAPTURED_TYPES:
            return None
        parent = env.parent_msg_id
        models = self._by_parent.get(parent) if parent else None
        return models[-1] if models else None

    def apply(self, model_id: str, outputs: list[Any], env: Envelope) -> list[Any] | None:
        """The model's new outputs after ``env``, or None when they do not change."""
        capture = self._state.setdefault(model_id, _Capture())
        msg_type, content = env.msg_type, env.content
        if msg_type == "clear_output":
            if content.get("wait"):
                capture.clear_pending = True
                return None
            capture.display_ids.clear()
            capture.clear_pending = False
            return [] if outputs else None
        if msg_type == "update_display_data":
            return self._update_display(capture, outputs, content)
        output = _as_output(msg_type, content)
        if output is None:
            return None
        if capture.clear_pending:
            outputs, capture.clear_pending = [], False
            capture.display_ids.clear()
        outputs = list(outputs)
        last = outputs[-1] if outputs else None
        if (
            output["output_type"] == "stream"
            and isinstance(last, dict)
            and last.get("output_type") == "stream"
            and last.get("name") == output["name"]
        ):
            outputs[-1] = {**last, "text": str(last.get("text", "")) + str(output["text"])}
            return outputs
        display_id = _display_id(content)
        if isinstance(display_id, str) and msg_type == "display_data":
            capture.display_ids.setdefault(display_id, []).append(len(outputs))
        outputs.append(output)
        return outputs

    @staticmethod
    def _update_display(
        capture: _Capture, outputs: list[Any], content: dict[str, Any]
    ) -> list[Any] | None:
        display_id = _display_id(content)
        indices = capture.display_ids.get(display_id, []) if isinstance(display_id, str) else []
        if not indices:
            return None
        outputs = list(outputs)
        for index in indices:
            if index < len(outputs) and isinstance(outputs[index], dict):
                outputs[index] = {
                    **outputs[index],
                    "data": content.get("data", {}),
                    "metadata": content.get("metadata", {}),
                }
        return outputs
