"""Binary buffers: wire-form paths, per-trait values, and a content-addressed store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .messages import MessageError

Path = tuple[str | int, ...]


class Blob:
    """Bytes with their digest; equal blobs are the same bytes."""

    __slots__ = ("data", "digest")

    def __init__(self, data: bytes, digest: str) -> None:
        self.data = data
        self.digest = digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Blob) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Blob({len(self.data)} bytes, {self.digest[:12]})"


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BufferStore:
    """Keeps each distinct buffer once, however many models or traits hold it."""

    def __init__(self) -> None:
        self._blobs: dict[str, list[Any]] = {}  # digest -> [Blob, refcount]
        self.unique_bytes = 0
        self.referenced_bytes = 0

    def intern(self, data: bytes | bytearray | memoryview) -> Blob:
        raw = bytes(data)
        digest = digest_of(raw)
        entry = self._blobs.get(digest)
        if entry is None:
            entry = [Blob(raw, digest), 0]
            self._blobs[digest] = entry
            self.unique_bytes += len(raw)
        entry[1] += 1
        self.referenced_bytes += len(raw)
        blob: Blob = entry[0]
        return blob

    def retain(self, blob: Blob) -> Blob:
        entry = self._blobs.get(blob.digest)
        if entry is None:
            return self.intern(blob.data)
        entry[1] += 1
        self.referenced_bytes += len(blob)
        return blob

    def release(self, blob: Blob) -> None:
        entry = self._blobs.get(blob.digest)
        if entry is None:
            return
        entry[1] -= 1
        self.referenced_bytes -= len(blob)
        if entry[1] <= 0:
            del self._blobs[blob.digest]
            self.unique_bytes -= len(blob)

    def release_all(self, buffers: Iterable[tuple[Path, Blob]]) -> None:
        for _, blob in buffers:
            self.release(blob)

    def __len__(self) -> int:
        return len(self._blobs)

    def clear(self) -> None:
        self._blobs.clear()
        self.unique_bytes = 0
        self.referenced_bytes = 0


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class TraitValue:
    """One top-level trait in wire form: its JSON (MISSING when the whole value is a
    buffer) and the buffers cut out of it, by full path."""

    __slots__ = ("buffers", "json")

    def __init__(self, json: Any, buffers: tuple[tuple[Path, Blob], ...] = ()) -> None:
        self.json = json
        self.buffers = buffers

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraitValue):
            return NotImplemented
        return self.json == other.json and self.buffers == other.buffers

    def __repr__(self) -> str:
        return f"TraitValue({self.json!r}, {self.buffers!r})"


def _check_path(state: Mapping[str, Any], path: Sequence[Any]) -> Path:
    if not isinstance(path, (list, tuple)) or not path:
        raise MessageError(f"buffer path {path!r} is not a non-empty list")
    if not isinstance(path[0], str):
        raise MessageError(f"buffer path {path!r} must start with a trait name")
    for key in path[1:]:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise MessageError(f"buffer path {path!r} has a key that is neither str nor int")
    if len(path) > 1:
        container: Any = state.get(path[0], MISSING)
        for key in path[1:-1]:
            container = _step(container, key, path)
        last = path[-1]
        if isinstance(container, dict):
            if not isinstance(last, str):
                raise MessageError(f"buffer path {path!r} indexes an object with a number")
        elif isinstance(container, list):
            if not isinstance(last, int) or not 0 <= last < len(container):
                raise MessageError(f"buffer path {path!r} points past the end of a list")
        else:
            raise MessageError(f"buffer path {path!r} points nowhere in the state")
    return tuple(path)


def _step(container: Any, key: str | int, path: Sequence[Any]) -> Any:
    if isinstance(container, dict) and isinstance(key, str) and key in container:
        return container[key]
    if isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
        return container[key]
    raise MessageError(f"buffer path {path!r} points nowhere in the state")


def _check_disjoint(paths: list[Path]) -> None:
    """No buffer may sit inside another: the kernel's ``_put_buffers`` would fail on it (or
    keep only one), so the relay must not store it. ipywidgets never sends such paths."""
    if len(paths) < 2:
        return
    seen = set(paths)
    if len(seen) < len(paths):
        raise MessageError("buffer paths repeat")
    for path in paths:
        for end in range(1, len(path)):
            if path[:end] in seen:
                raise MessageError(f"buffer path {list(path)!r} lies inside another buffer")


def split_state(
    state: Any,
    buffer_paths: Any,
    buffers: Sequence[bytes],
    store: BufferStore,
) -> dict[str, TraitValue]:
    """Group a wire-form ``{state, buffer_paths}`` + buffers by top-level trait.

    Buffers are interned in ``store``; the caller owns the returned references.
    """
    if not isinstance(state, dict):
        raise MessageError("'state' must be a JSON object")
    if buffer_paths is None:
        buffer_paths = []
    if not isinstance(buffer_paths, list):
        raise MessageError("'buffer_paths' must be a list")
    if len(buffers) < len(buffer_paths):
        raise MessageError(
            f"message has {len(buffer_paths)} buffer paths but only {len(buffers)} buffers"
        )
    checked = [_check_path(state, path) for path in buffer_paths]
    _check_disjoint(checked)
    grouped: dict[str, list[tuple[Path, Blob]]] = {}
    for path, data in zip(checked, buffers, strict=False):
        grouped.setdefault(str(path[0]), []).append((path, store.intern(data)))
    traits = {name: TraitValue(value) for name, value in state.items()}
    for name, blobs in grouped.items():
        current = traits.get(name)
        traits[name] = TraitValue(MISSING if current is None else current.json, tuple(blobs))
    return traits


def without_traits(
    data: Mapping[str, Any], buffers: Sequence[bytes], names: Iterable[str]
) -> tuple[dict[str, Any], list[bytes]]:
    """An update's ``data`` and buffers without the traits ``names`` (state keys and the
    buffers whose path starts with one of them)."""
    drop = set(names)
    state = data.get("state")
    paths = data.get("buffer_paths") or []
    kept = [
        index
        for index, path in enumerate(paths)
        if not (isinstance(path, list) and path[:1] and path[0] in drop)
    ]
    rest = (
        {key: value for key, value in state.items() if key not in drop}
        if isinstance(state, dict)
        else state
    )
    new_data = {**data, "state": rest, "buffer_paths": [paths[index] for index in kept]}
    return new_data, [buffers[index] for index in kept if index < len(buffers)]


def join_state(
    traits: Iterable[tuple[str, TraitValue]], prefix: Path = ()
) -> tuple[dict[str, Any], list[list[str | int]], list[bytes]]:
    """The inverse of split_state: wire-form state, buffer paths (each behind ``prefix``)
    and buffers."""
    state: dict[str, Any] = {}
    paths: list[list[str | int]] = []
    data: list[bytes] = []
    for name, value in traits:
        if value.json is not MISSING:
            state[name] = value.json
        for path, blob in value.buffers:
            paths.append([*prefix, *path])
            data.append(blob.data)
    return state, paths, data


def put_buffers(state: dict[str, Any], paths: Sequence[Path], blobs: Sequence[Any]) -> None:
    """Put values back at their paths (the state must be a private copy)."""
    for path, value in zip(paths, blobs, strict=False):
        container: Any = state
        for key in path[:-1]:
            container = container[key]
        container[path[-1]] = value
