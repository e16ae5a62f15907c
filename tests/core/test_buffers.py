"""core/buffers.py: splitting binary buffers out of widget state and joining them back."""

from __future__ import annotations

import pytest

from jupyter_widget_relay.core.buffers import BufferStore, join_state, split_state
from jupyter_widget_relay.core.messages import MessageError


def test_split_and_join_round_trip_nested_buffers() -> None:
    store = BufferStore()
    state = {"a": 1, "x": {"keep": 2}, "y": [None, 3]}
    paths = [["img"], ["x", "data"], ["y", 0]]
    traits = split_state(state, paths, [b"I", b"D", b"Y"], store)
    assert set(traits) == {"a", "x", "y", "img"}
    joined, joined_paths, data = join_state(sorted(traits.items()))
    assert joined == state
    assert sorted(zip(map(tuple, joined_paths), data, strict=True)) == sorted(
        [(("img",), b"I"), (("x", "data"), b"D"), (("y", 0), b"Y")]
    )


@pytest.mark.parametrize(
    "paths",
    [
        [["y", 5]],
        [["nope", "deeper"]],
        [[]],
        [[3]],
        "notalist",
        [["x", 0]],
        [["y", "k"]],
    ],
)
def test_buffer_paths_that_point_nowhere_are_rejected(paths: object) -> None:
    with pytest.raises(MessageError):
        split_state({"x": {}, "y": [None]}, paths, [b"1"], BufferStore())


def test_fewer_buffers_than_paths_is_rejected() -> None:
    with pytest.raises(MessageError, match="only 0 buffers"):
        split_state({}, [["a"]], [], BufferStore())
