"""Property-based tests of the pure core against hostile input.

- wire: whatever bytes or text arrive, the parsers raise only MessageError, and whatever
  they accept can be encoded again in both protocols and read back; valid messages
  round-trip exactly.
- buffers: split_state raises only MessageError; join_state(split_state(x)) restores the
  wire form ipywidgets makes; the BufferStore's counts match an independent model.
- relay: random sequences of good and hostile client messages and of good and malformed
  kernel messages, fed to a KernelRelay in front of a simulated ipywidgets kernel, never
  raise; every message the relay sends encodes and reads back in its client's protocol;
  a message the relay does not forward changes nothing; after the kernel has handled
  everything the table, the kernel and every good frontend agree, buffer refcounts match
  the table and no sync bookkeeping is left; a good update afterwards still works.
- peer sync: random interleavings of frontends' and the kernel's updates and of the
  kernel's processing order, with echo on or off, echo opt-outs, clamping, an observer,
  clients joining and leaving, always converge on the kernel's values.

Hypothesis costs ~1 ms per case here even for one integer, so the high-volume tests draw
a seed (or a few small integers) and build the hostile input with ``random.Random``; the
round-trip tests use Hypothesis' own structured strategies. Every test sets
``max_examples`` with ``fuzz`` and fails unless that many cases ran; runs are deterministic
(``derandomize=True``, no example database).

The section before it holds regression tests for bugs the fuzzing found (and that were
fixed) in relay.py, peer_sync.py and output_capture.py; their docstrings describe the bug.
Nothing here depends on timing: the tests are pure computation, with no deadline.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipywidgets.widgets.widget import _put_buffers as ipywidgets_put_buffers
from ipywidgets.widgets.widget import _remove_buffers as ipywidgets_remove_buffers

from jupyter_widget_relay.core import wire
from jupyter_widget_relay.core.buffers import BufferStore, join_state, put_buffers, split_state
from jupyter_widget_relay.core.messages import (
    CONTROL_TARGET,
    MAX_JSON_DEPTH,
    WIDGET_TARGET,
    Envelope,
    MessageError,
    new_header,
)
from jupyter_widget_relay.core.relay import KernelRelay
from jupyter_widget_relay.core.verdict import Forward, Held

from .hostile_frames import (
    CHARS,
    CLEAN_KEYS,
    KEYS,
    header_part,
    hostile_json,
    nested,
    random_json,
    random_legacy_frame,
    random_object,
    random_text,
    random_v1_frame,
)
from .simulation import KERNEL_SESSION, Frontend, Kernel, forwards, receive
from .simulation import world as simulation_world

CHANNELS = frozenset({"shell", "control", "stdin", "iopub"})  # the kernel protocol's

F = TypeVar("F", bound=Callable[..., Any])


def fuzz(examples: int) -> Callable[[F], F]:
    """This file's Hypothesis settings: ``examples`` cases, deterministic, no database.

    The test fails unless Hypothesis ran all ``examples`` cases: a strategy that runs
    out of inputs, or filters most away, must not shrink the fuzzing unnoticed."""

    def decorate(test: F) -> F:
        run = settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )(test)
        inner = run.hypothesis.inner_test  # type: ignore[attr-defined]
        ran = [0]

        def one_case(*args: Any, **kwargs: Any) -> Any:
            ran[0] += 1
            return inner(*args, **kwargs)

        run.hypothesis.inner_test = one_case  # type: ignore[attr-defined]

        @functools.wraps(run)
        def counted(*args: Any, **kwargs: Any) -> None:
            ran[0] = 0
            run(*args, **kwargs)
            assert ran[0] >= examples, f"{ran[0]} of {examples} cases ran"

        return counted  # type: ignore[return-value]

    return decorate


@pytest.fixture(autouse=True, scope="module")
def quiet_relay_log() -> Any:
    """Thousands of rejections: keep their warnings out of the captured log."""
    logger = logging.getLogger("jupyter_widget_relay")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


seeds = st.integers(0, 2**64 - 1)

# -- JSON values ----------------------------------------------------------------------


text = st.text(st.sampled_from(CHARS), max_size=8)
keys = st.sampled_from(CLEAN_KEYS)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(keys, json_values, max_size=4)


def surely(action: Callable[[], Any]) -> Any:
    """Run ``action``; a MessageError is an answer, any other exception a failure."""
    try:
        return action()
    except MessageError:
        return None


def check_accepted(env: Envelope) -> None:
    """Whatever a parser accepted reads fully and re-encodes in both protocols."""
    assert isinstance(env.header, dict) and isinstance(env.parent_header, dict)
    assert isinstance(env.msg_type, str) and env.msg_id
    _ = env.parent_msg_id
    content = surely(lambda: env.content)
    assert isinstance(env.metadata, dict)
    if content is None:
        return
    if env.channel not in CHANNELS:
        env.channel = "shell"  # the connection drops unknown channels; never re-encoded
    again = wire.envelope_from_parts(*wire.parse_v1(wire.v1_frame(env)))
    assert again.header == env.header and again.content == content
    legacy = wire.parse_legacy(wire.legacy_frame(env))
    assert legacy.header == env.header and legacy.content == content
    assert legacy.buffers == env.buffers


# -- wire: hostile frames ---------------------------------------------------------------


@fuzz(2200)
@given(seed=seeds)
def test_v1_parser_raises_only_message_error(seed: int) -> None:
    frame = random_v1_frame(random.Random(seed))
    parsed = surely(lambda: wire.parse_v1(frame))
    if parsed is None:
        return
    channel, parts = parsed
    assert isinstance(channel, str) and len(parts) >= 4
    env = surely(lambda: wire.envelope_from_parts(channel, parts))
    if env is not None:
        check_accepted(env)


@fuzz(2000)
@given(seed=seeds)
def test_legacy_parser_raises_only_message_error(seed: int) -> None:
    frame = random_legacy_frame(random.Random(seed))
    env = surely(lambda: wire.parse_legacy(frame))
    if env is not None:
        check_accepted(env)


@fuzz(1200)
@given(seed=seeds, count=st.integers(0, 7))
def test_envelope_from_parts_raises_only_message_error(seed: int, count: int) -> None:
    rng = random.Random(seed)
    parts = [header_part(rng), *(hostile_json(rng) for _ in range(count))][:count]
    env = surely(lambda: wire.envelope_from_parts(rng.choice(["shell", "iopub"]), parts))
    if env is not None:
        check_accepted(env)


def test_json_limits_are_message_errors() -> None:
    header = wire.pack(new_header("comm_msg", "s"))
    for bad in (
        b'{"a": NaN}',
        "{}".encode("utf-16"),
        b"\xef\xbb\xbf{}",
        nested(MAX_JSON_DEPTH + 1, "[").encode(),
        nested(MAX_JSON_DEPTH + 1, "{").encode(),
        nested(100_000, "[").encode(),
    ):
        with pytest.raises(MessageError):
            wire.envelope_from_parts("shell", [bad, b"{}", b"{}", b"{}"])
        env = wire.envelope_from_parts("shell", [header, b"{}", b"{}", bad])
        with pytest.raises(MessageError):
            _ = env.content
        assert env.msg_type == "comm_msg" and env.metadata == {}
    deepest = (
        b'{"msg_id": "1", "msg_type": "x", "deep": '
        + nested(MAX_JSON_DEPTH - 1, "[").encode()
        + b"}"
    )
    assert wire.envelope_from_parts("shell", [deepest, b"{}", b"{}", b"{}"]).msg_id == "1"
    for bad_header in (
        {"msg_type": "x"},
        {"msg_type": "x", "msg_id": ""},
        {"msg_type": "x", "msg_id": 5},
        {"msg_type": "x", "msg_id": "1", "version": 5},
        {"msg_type": "x", "msg_id": "1", "version": "five"},
    ):
        with pytest.raises(MessageError):
            wire.envelope_from_parts("shell", [wire.pack(bad_header), b"{}", b"{}", b"{}"])
        with pytest.raises(MessageError):
            wire.parse_legacy(json.dumps({"header": bad_header, "content": {}}))


# -- wire: round trips ----------------------------------------------------------------


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    rng = random.Random(draw(seeds))
    header = {
        "msg_id": draw(text.filter(bool)),
        "msg_type": draw(text),
        "session": random_text(rng, clean=True),
        "version": draw(st.sampled_from(["5.3", "5.0"])),
        "extra": random_json(rng, clean=True),
    }
    return Envelope(
        header,
        random_object(rng, clean=True),
        content=draw(json_objects),
        metadata=random_object(rng, clean=True),
        buffers=draw(st.lists(st.binary(max_size=16), max_size=3)),
        channel=draw(st.sampled_from(sorted(CHANNELS))),
    )


@fuzz(300)
@given(channel=st.text(max_size=10), parts=st.lists(st.binary(max_size=20), min_size=4, max_size=8))
def test_v1_encoding_round_trips(channel: str, parts: list[bytes]) -> None:
    assert wire.parse_v1(wire.encode_v1(channel, parts)) == (channel, parts)


@fuzz(200)
@given(env=envelopes())
def test_envelopes_round_trip_in_both_protocols(env: Envelope) -> None:
    channel, parts = wire.parse_v1(wire.v1_frame(env))
    again = wire.envelope_from_parts(channel, parts)
    legacy = wire.parse_legacy(wire.legacy_frame(env))
    for copy_ in (again, legacy):
        assert copy_.channel == env.channel
        assert copy_.header == env.header
        assert copy_.parent_header == env.parent_header
        assert copy_.metadata == env.metadata
        assert copy_.content == env.content
        assert copy_.buffers == env.buffers


def test_lone_surrogates_encode_but_do_not_parse() -> None:
    """The relay can always encode what it holds (pack falls back to ASCII escapes), but
    refuses lone surrogates coming in: the kernel's packer cannot send them back."""
    env = Envelope(
        new_header("stream", "s"), {}, content={"text": "a\ud800b", "\udc80": ["\udfff"]}
    )
    frame = wire.v1_frame(env)
    assert b"\\ud800" in frame
    legacy = wire.legacy_frame(env)
    assert isinstance(legacy, str) and "\\ud800" in legacy and legacy.isascii()
    again = wire.envelope_from_parts(*wire.parse_v1(frame))
    with pytest.raises(MessageError, match="surrogate"):
        _ = again.content
    with pytest.raises(MessageError, match="surrogate"):
        wire.parse_legacy(legacy)
    pair = wire.envelope_from_parts(
        *wire.parse_v1(
            wire.v1_frame(Envelope(new_header("stream", "s"), {}, content={"text": "\U0001f600"}))
        )
    )
    assert pair.content == {"text": "\U0001f600"}


# -- buffers --------------------------------------------------------------------------


def random_path_key(rng: random.Random) -> Any:
    return rng.choice(
        [rng.choice(KEYS), rng.randint(-2, 6), True, None, 1.0, [], {}, random_json(rng, 1)]
    )


def random_paths(rng: random.Random, state: Any) -> Any:
    """Buffer paths, some that fit ``state``, some that point nowhere or are ill-typed."""
    if rng.random() < 0.1:
        return random_json(rng)
    paths: list[Any] = []
    for _ in range(rng.randint(0, 4)):
        if isinstance(state, dict) and state and rng.random() < 0.6:
            path: list[Any] = [rng.choice(list(state))]  # walk into the state
            node = state[path[0]]
            while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
                key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
                path.append(key)
                node = node[key]
            if rng.random() < 0.3:
                path.append(random_path_key(rng))
        else:
            path = [random_path_key(rng) for _ in range(rng.randint(0, 3))]
        paths.append(path)
    if paths and rng.random() < 0.15:
        paths.append([*paths[0], 0])  # one path inside another
    return paths


@fuzz(1500)
@given(seed=seeds)
def test_split_state_raises_only_message_error(seed: int) -> None:
    rng = random.Random(seed)
    state = random_object(rng) if rng.random() < 0.85 else random_json(rng)
    buffer_paths = random_paths(rng, state)
    buffers = [rng.randbytes(rng.randint(0, 6)) for _ in range(rng.randint(0, 5))]
    store = BufferStore()
    traits = surely(lambda: split_state(state, buffer_paths, buffers, store))
    if traits is None:
        assert len(store) == 0 and store.unique_bytes == 0, "a refused split keeps nothing"
        return
    used = buffers[: len(buffer_paths or [])]
    assert store.referenced_bytes == sum(len(b) for b in used)
    joined, paths, data = join_state(traits.items())
    assert joined == state
    pairs = sorted(map(repr, zip(map(tuple, paths), data, strict=True)))
    assert pairs == sorted(map(repr, zip(map(tuple, buffer_paths or []), used, strict=False)))
    # what the kernel does with it must work too: ipywidgets' _put_buffers
    ipywidgets_put_buffers(copy.deepcopy(state), buffer_paths or [], used)


def random_binary(rng: random.Random) -> Any:
    data = rng.randbytes(rng.randint(0, 12))
    return rng.choice([bytes, bytearray, memoryview])(data)


def random_state_with_buffers(rng: random.Random, depth: int = 3) -> Any:
    roll = rng.random()
    if roll < 0.25:
        return random_binary(rng)
    if depth > 0 and roll < 0.45:
        return [random_state_with_buffers(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    if depth > 0 and roll < 0.65:
        return {
            rng.choice(KEYS): random_state_with_buffers(rng, depth - 1)
            for _ in range(rng.randint(0, 3))
        }
    return random_json(rng, 0)


def plain(value: Any) -> Any:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@fuzz(1000)
@given(seed=seeds)
def test_split_then_join_restores_the_wire_form(seed: int) -> None:
    """Wire form as ipywidgets makes it (its own _remove_buffers); the table must hand out
    the same state, paths and buffers, and a frontend rebuilds the same value."""
    rng = random.Random(seed)
    full = {rng.choice(KEYS): random_state_with_buffers(rng) for _ in range(rng.randint(0, 4))}
    state, paths, buffers = ipywidgets_remove_buffers(full)
    store = BufferStore()
    traits = split_state(state, paths, buffers, store)
    joined, joined_paths, data = join_state(traits.items())
    assert joined == state
    assert sorted(zip(map(repr, joined_paths), data, strict=True)) == sorted(
        zip(map(repr, paths), map(bytes, buffers), strict=True)
    )
    rebuilt = copy.deepcopy(joined)
    put_buffers(rebuilt, [tuple(p) for p in joined_paths], data)
    assert plain(rebuilt) == plain(full)
    assert store.unique_bytes == sum(len(b) for b in {bytes(b) for b in buffers})


BLOBS = [b"", b"a", b"bb", b"a", b"ccc" * 10, b"\x00" * 7]  # equal contents on purpose
STORE_OPS = ["intern", "retain", "release", "release_all"]


@fuzz(700)
@given(ops=st.lists(st.integers(0, 4 * len(BLOBS) - 1), max_size=40))
def test_buffer_store_counts_match_a_model(ops: list[int]) -> None:
    store = BufferStore()
    model: Counter[bytes] = Counter()
    held: list[Any] = []  # Blobs handed out, some of them stale
    for number in ops:
        op, index = STORE_OPS[number // len(BLOBS)], number % len(BLOBS)
        if op == "intern":
            held.append(store.intern(BLOBS[index]))
            model[BLOBS[index]] += 1
        elif held and op == "retain":
            blob = held[index % len(held)]
            store.retain(blob)
            model[blob.data] += 1
        elif held:
            blob = held[index % len(held)]
            if op == "release":
                store.release(blob)
            else:
                store.release_all([((), blob)])
            if model[blob.data] > 0:
                model[blob.data] -= 1
        model += Counter()  # drop zero counts
        counts = {entry[0].data: entry[1] for entry in store._blobs.values()}
        assert all(count > 0 for count in counts.values()), "a refcount went to 0 or below"
        assert counts == dict(model)
        assert store.unique_bytes == sum(len(data) for data in model)
        assert store.referenced_bytes == sum(len(d) * n for d, n in model.items())
        assert len(store) == len(model)


# -- the relay, in front of a simulated ipywidgets kernel -----------------------------

SLIDER = {
    "_model_name": "IntSliderModel",
    "_model_module": "@jupyter-widgets/controls",
    "_model_module_version": "2.0.0",
    "_view_name": "IntSliderView",
    "value": 0,
    "description": "",
}
GOOD = ("m0", "m1")
IMAGE = "img"
VICTIM = "victim"


def with_buffers(state: Any, paths: Any, buffers: list[bytes]) -> Any:
    """A deep copy of a wire state with its buffers put back (as bytes)."""
    full = copy.deepcopy(state)
    put_buffers(full, [tuple(p) for p in paths], [bytes(b) for b in buffers])
    return full


def table_state(relay: KernelRelay, model_id: str) -> Any:
    model = relay.table.get(model_id)
    assert model is not None, f"{model_id} missing from the table"
    return with_buffers(*model.wire_state())


class CheckedPort:
    """A client on one wire protocol: every message the relay sends it must encode and
    read back unchanged; a stock frontend's view (widget.ts) follows what it reads."""

    def __init__(self, client_id: str, v1: bool) -> None:
        self.client_id = client_id
        self.v1 = v1
        self.view: dict[str, dict[str, Any]] = {}
        self.expected: dict[tuple[str, str], str] = {}

    def send(self, envelope: Envelope) -> None:
        if self.v1:
            got = wire.envelope_from_parts(*wire.parse_v1(wire.v1_frame(envelope)))
        else:
            got = wire.parse_legacy(wire.legacy_frame(envelope))
        assert got.header == envelope.header and got.buffers == envelope.buffers
        assert got.content == envelope.content
        self.apply(got)

    def apply(self, env: Envelope) -> None:
        content = env.content
        comm_id = content.get("comm_id")
        data = content.get("data")
        if not isinstance(comm_id, str) or not isinstance(data, dict):
            return
        if env.msg_type == "comm_close":
            self.view.pop(comm_id, None)
            return
        try:
            if env.msg_type == "comm_open" and content.get("target_name") == WIDGET_TARGET:
                self.view[comm_id] = with_buffers(
                    data["state"], data.get("buffer_paths") or [], env.buffers
                )
            elif env.msg_type == "comm_msg" and data.get("method") == "update_states":
                entries = {
                    mid: {"state": dict(entry["state"])} for mid, entry in data["states"].items()
                }
                entries = copy.deepcopy(entries)
                put_buffers(entries, [tuple(p) for p in data["buffer_paths"]], env.buffers)
                self.view.update({mid: entry["state"] for mid, entry in entries.items()})
            elif env.msg_type == "comm_msg" and data.get("method") in ("update", "echo_update"):
                if comm_id not in self.view:
                    return
                state = with_buffers(data["state"], data.get("buffer_paths") or [], env.buffers)
                if data["method"] == "echo_update":
                    for attr in list(state):
                        awaited = self.expected.get((comm_id, attr))
                        if awaited is None:
                            continue
                        if awaited != env.parent_msg_id:
                            del state[attr]
                        else:
                            del self.expected[(comm_id, attr)]
                self.view[comm_id].update(state)
        except (KeyError, TypeError, IndexError, AttributeError):
            return  # widget.ts would fail on this message too and change nothing

    def message(self, msg_type: str, content: Any, buffers: list[bytes] | None = None) -> Envelope:
        """A message from this client, as the connection parses it off the wire."""
        parts = [wire.pack(new_header(msg_type, self.client_id)), b"{}", b"{}"]
        return wire.envelope_from_parts("shell", [*parts, wire.pack(content), *(buffers or [])])

    def update(self, model_id: str, state: dict[str, Any]) -> Envelope:
        paths = [[name] for name in state if isinstance(state[name], bytes)]
        wire_state = {k: v for k, v in state.items() if not isinstance(v, bytes)}
        data = {"method": "update", "state": wire_state, "buffer_paths": paths}
        env = self.message(
            "comm_msg", {"comm_id": model_id, "data": data}, [state[p[0]] for p in paths]
        )
        if model_id in self.view:
            self.view[model_id].update(state)
        for attr in state:
            self.expected[(model_id, attr)] = env.msg_id
        return env


class SimKernel:
    """What ipykernel + ipywidgets 8 do with the messages the relay forwards: per-client
    FIFO, busy/idle around each, ``_handle_msg`` → ``_put_buffers`` → ``set_state`` (echo
    first, unless off) for any trait; kernel messages reach the relay through the wire."""

    def __init__(self, relay: KernelRelay, echo: bool) -> None:
        self.relay = relay
        self.echo = echo
        self.models: dict[str, dict[str, Any]] = {}
        self.inbox: dict[str, deque[Envelope]] = {}

    def publish(
        self,
        msg_type: str,
        content: Any,
        parent: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        header = new_header(msg_type, KERNEL_SESSION)
        parts = [wire.pack(header), wire.pack(parent or {}), b"{}", wire.pack(content)]
        env = wire.envelope_from_parts("iopub", [*parts, *(buffers or [])])
        self.relay.handle_kernel_message(env)

    def send_state(
        self, model_id: str, state: dict[str, Any], method: str = "update", parent: Any = None
    ) -> None:
        wire_state, paths, buffers = ipywidgets_remove_buffers(state)
        data = {"method": method, "state": wire_state, "buffer_paths": paths}
        self.publish("comm_msg", {"comm_id": model_id, "data": data}, parent, buffers)

    def open(self, model_id: str, state: dict[str, Any]) -> None:
        self.models[model_id] = copy.deepcopy(state)
        wire_state, paths, buffers = ipywidgets_remove_buffers(state)
        data = {"state": wire_state, "buffer_paths": paths}
        content = {"comm_id": model_id, "target_name": WIDGET_TARGET, "data": data}
        self.publish("comm_open", content, None, buffers)

    def set(self, model_id: str, **state: Any) -> None:
        self.models[model_id].update(copy.deepcopy(state))
        self.send_state(model_id, state)

    def close(self, model_id: str) -> None:
        self.models.pop(model_id, None)
        self.publish("comm_close", {"comm_id": model_id, "data": {}})

    def pending(self) -> list[str]:
        return [client for client, queue in self.inbox.items() if queue]

    def process_next(self, client_id: str) -> None:
        request = self.inbox[client_id].popleft()
        parent = request.header
        self.publish("status", {"execution_state": "busy"}, parent)
        # an exception is ipywidgets' _show_traceback: an error output, nothing changes
        with contextlib.suppress(KeyError, TypeError, IndexError, AttributeError, ValueError):
            self._handle(request)
        self.publish("status", {"execution_state": "idle"}, parent)

    def _handle(self, request: Envelope) -> None:
        content = request.content
        comm_id = content["comm_id"]
        data = content["data"]
        if request.msg_type == "comm_open":
            if content.get("target_name") != WIDGET_TARGET:
                # comm's CommManager: no such target → the comm is closed again
                self.models.pop(comm_id, None)
                self.publish("comm_close", {"comm_id": comm_id, "data": {}}, request.header)
                return
            state = copy.deepcopy(data["state"])
            if "buffer_paths" in data:
                ipywidgets_put_buffers(state, data["buffer_paths"], request.buffers)
            self.models[comm_id] = plain(state)
            return
        if request.msg_type == "comm_close":
            self.models.pop(comm_id, None)
            return
        model = self.models.get(comm_id)
        if request.msg_type != "comm_msg" or model is None:
            return
        if data["method"] == "request_state":
            self.send_state(comm_id, copy.deepcopy(model), "update", request.header)
            return
        if data["method"] != "update":
            return
        if "state" not in data:
            return
        state = copy.deepcopy(data["state"])
        if "buffer_paths" in data:
            ipywidgets_put_buffers(state, data["buffer_paths"], request.buffers)
        # ipywidgets' set_state: names the widget has no trait for are neither echoed
        # nor set
        state = {name: value for name, value in state.items() if name in model}
        if self.echo and state:
            self.send_state(comm_id, state, "echo_update", request.header)
        model.update(plain(state))


# Hostile client messages: a valid template, then damage.
HOSTILE_TARGETS = [*GOOD, IMAGE, VICTIM, "nope", "", "closed", "ctl", "x" * 300]
HUGE_SIZES = [0, 10, 1000, 1000, 1000, 70_000, 1_100_000]


DEPTHS = [3, 40, MAX_JSON_DEPTH - 4, MAX_JSON_DEPTH + 1, 500]  # deeper: hostile_json bytes


def hostile_value(rng: random.Random, depths: list[int] = DEPTHS) -> Any:
    kind = rng.randint(0, 3)
    if kind == 0:
        return "x" * rng.choice(HUGE_SIZES)
    if kind == 1:
        depth = rng.choice(depths)
        value: Any = 1
        for _ in range(depth):
            value = [value] if rng.random() < 0.5 else {"k": value}
        return value
    return random_json(rng)


def hostile_message(rng: random.Random) -> tuple[str, Any, list[bytes]]:
    """(msg_type, content, buffers): shapes a broken or malicious client sends."""
    target = rng.choice(HOSTILE_TARGETS)
    buffers = [rng.randbytes(rng.randint(0, 6)) for _ in range(rng.randint(0, 3))]
    kind = rng.choice(["update"] * 4 + ["open", "control", "close", "info", "other"])
    data: Any
    if kind == "update":
        state = {rng.choice(["value", "description", "zzz"]): hostile_value(rng)}
        paths = rng.choice(
            [[], [["value"]], [["zzz", 0]], [["value"], ["value", 0]], random_paths(rng, state)]
        )
        data = {"method": "update", "state": state, "buffer_paths": paths}
        msg_type, content = "comm_msg", {"comm_id": target, "data": data}
    elif kind == "open":
        state = dict(SLIDER) if rng.random() < 0.6 else {"value": 1}
        if rng.random() < 0.5:
            state["value"] = hostile_value(rng)
        fresh = rng.choice([f"new-{rng.randint(0, 3)}", "nope", "closed"])
        target_name = rng.choice([WIDGET_TARGET, WIDGET_TARGET, CONTROL_TARGET, "x"])
        data = {"state": state, "buffer_paths": rng.choice([[], [["img"]]])}
        msg_type = "comm_open"
        content = {"comm_id": fresh, "target_name": target_name, "data": data}
    elif kind == "control":
        method = rng.choice(["request_states", "update", None, 5, ["x"]])
        msg_type, content = "comm_msg", {"comm_id": "ctl", "data": {"method": method}}
    elif kind == "close":
        closing = rng.choice(["nope", "closed", "ctl", "new-1", ""])
        msg_type, content = "comm_close", {"comm_id": closing, "data": {}}
    elif kind == "info":
        name = rng.choice([WIDGET_TARGET, None, 5, "other"])
        msg_type, content = "comm_info_request", {"target_name": name}
    else:
        method = rng.choice(["request_state", "custom", "echo_update", "bogus"])
        data = {"method": method, "content": random_json(rng)}
        msg_type, content = "comm_msg", {"comm_id": target, "data": data}
    for _ in range(rng.choice([0, 0, 1, 2])):  # damage: drop or retype a field
        holder: Any = content
        for step in range(rng.randint(0, 2)):
            inner = holder.get(("data", "state")[step]) if isinstance(holder, dict) else None
            if isinstance(inner, dict):
                holder = inner
        if not isinstance(holder, dict) or not holder:
            continue
        key = rng.choice(sorted(holder, key=str))
        if rng.random() < 0.5:
            holder.pop(key)
        else:
            holder[key] = random_json(rng, 1)
    if rng.random() < 0.05:
        content = random_json(rng)  # not even an object
    data = content.get("data") if isinstance(content, dict) else None
    if msg_type == "comm_open" and isinstance(data, dict) and data.get("buffer_paths", 0) is None:
        # ipywidgets fails on this after making the widget, and ipykernel's CommManager
        # then closes the comm (a comm_close the relay follows); SimKernel does not model
        # that close. (A comm_msg with "buffer_paths": null is refused by the relay: kept.)
        del data["buffer_paths"]
    return msg_type, content, buffers


def kernel_garbage(rng: random.Random) -> tuple[str, Any, list[bytes]]:
    """Malformed messages from a broken kernel, whose content the relay can still read."""
    target = rng.choice(["nope", "closed", VICTIM, 5, None, ""])
    msg_type = rng.choice(["comm_msg", "comm_open", "comm_close", "status"])
    data: Any = rng.choice(
        [
            {"method": "update", "state": 5},
            {"method": "update", "state": {"value": 1}, "buffer_paths": [["value", 3]]},
            {"method": "update", "state": {"value": 1}, "buffer_paths": "x"},
            {"method": "echo_update", "state": [1]},
            {"method": "update", "state": {}, "buffer_paths": [["a"]] * 3},
            {"state": {"value": 1}},
            # (content the relay cannot parse, e.g. nested too deeply, is the subject of
            # test_unreadable_kernel_content_reaches_every_client_once)
            {"method": "update", "state": {"value": hostile_value(rng, DEPTHS[:3])}},
            None,
            [],
            "x",
        ]
    )
    if msg_type in ("comm_open", "comm_close") and target in (VICTIM, "closed"):
        target = "nope"  # a kernel closing its model, or reopening one, is not garbage
    valid = isinstance(data, dict) and isinstance(data.get("state"), dict)
    if msg_type == "comm_msg" and target == VICTIM and valid and "buffer_paths" not in data:
        target = "nope"  # a valid kernel update is not garbage
    content: Any = {"comm_id": target, "data": data}
    if msg_type == "comm_open":
        content["target_name"] = rng.choice([WIDGET_TARGET, CONTROL_TARGET, 3])
    if msg_type == "status":
        content = {"execution_state": rng.choice(["idle", "busy", 5, None])}
    return msg_type, content, [rng.randbytes(rng.randint(0, 4)) for _ in range(rng.randint(0, 2))]


def fingerprint(relay: KernelRelay) -> dict[str, Any]:
    return {
        mid: (dict(model.state), dict(model.buffers), model.model_name)
        for mid, model in relay.table.models.items()
    }


def rejections(relay: KernelRelay) -> int:
    """Refused messages; an update's unknown traits are refused alone (the message goes
    to the kernel as sent, which ignores them)."""
    return sum(
        n for key, n in relay.counters.items() if key[0] == "rejected" and key[2] != "unknown_trait"
    )


class RelayWorld:
    def __init__(self, echo: bool) -> None:
        self.relay = KernelRelay("fuzz")
        self.kernel = SimKernel(self.relay, echo)
        self.good: list[CheckedPort] = []
        self.hostile = CheckedPort("hostile", v1=True)
        self.kernel.inbox["hostile"] = deque()
        self.kernel.inbox["relay"] = deque()
        self.relay.attach(self.hostile)
        opened = self.hostile.message(
            "comm_open", {"comm_id": "ctl", "target_name": CONTROL_TARGET}
        )
        assert forwards(self.relay, self.hostile, opened) is False
        for model_id in GOOD:
            self.kernel.open(model_id, dict(SLIDER))
        self.kernel.open(IMAGE, {**SLIDER, "_model_name": "ImageModel", "value": b"\x89PNG"})
        self.kernel.open(VICTIM, dict(SLIDER))
        self.kernel.open("closed", dict(SLIDER))
        self.kernel.close("closed")
        for _ in range(2):
            self.join()

    def join(self) -> None:
        index = len(self.good)
        port = CheckedPort(f"good{index}", v1=index % 2 == 0)
        self.kernel.inbox[port.client_id] = deque()
        self.relay.attach(port)
        control = uuid.uuid4().hex
        opened = port.message("comm_open", {"comm_id": control, "target_name": CONTROL_TARGET})
        assert forwards(self.relay, port, opened) is False
        request = port.message(
            "comm_msg", {"comm_id": control, "data": {"method": "request_states"}}
        )
        assert forwards(self.relay, port, request) is False
        assert set(port.view) == set(self.relay.table.models)
        self.good.append(port)

    def client_sends(self, port: CheckedPort, env: Envelope) -> bool:
        """Whether the relay accepted ``env``: forwarded now, or held to send itself."""
        verdict = receive(self.relay, port, env)
        if isinstance(verdict, Forward):
            self.kernel.inbox[port.client_id].append(env)
        return isinstance(verdict, (Forward, Held))

    def good_update(self, index: int, model_id: str, state: dict[str, Any]) -> None:
        port = self.good[index % len(self.good)]
        assert self.client_sends(port, port.update(model_id, state)), "a good update was refused"
        for peer in self.good:
            if not any(key[0] == model_id for key in peer.expected):
                assert peer.view[model_id] == {**peer.view[model_id], **state}, "peer missed it"

    def hostile_envelope(self, env: Envelope) -> None:
        """What RelayWebsocketConnection.handle_incoming_message does with a parsed frame."""
        before, refused = fingerprint(self.relay), rejections(self.relay)
        forwarded = False
        if env.channel == "shell" and env.msg_type in (
            "comm_open",
            "comm_msg",
            "comm_close",
            "comm_info_request",
        ):
            forwarded = self.client_sends(self.hostile, env)
        if rejections(self.relay) > refused:
            assert not forwarded, "a refused message went on to the kernel"
        if not forwarded:  # refused, or answered from the table
            assert fingerprint(self.relay) == before, "a message not forwarded changed the table"

    def hostile_frame(self, frame: bytes | str, v1: bool) -> None:
        try:
            if v1:
                assert isinstance(frame, bytes)
                env = wire.envelope_from_parts(*wire.parse_v1(frame))
            else:
                env = wire.parse_legacy(frame)
        except MessageError as error:
            self.relay.reject("client", "unparsable", str(error))
            return
        self.hostile_envelope(env)

    def process(self, choice: int) -> None:
        # the relay's own requests (state checks) reach the kernel on their own socket
        self.kernel.inbox["relay"].extend(self.relay.take_kernel_writes())
        busy = self.kernel.pending()
        if busy:
            self.kernel.process_next(busy[choice % len(busy)])

    def drain(self, choice: int) -> None:
        """Until the kernel has handled everything, also what the relay sends it itself
        (state checks, updates that waited)."""
        self.kernel.inbox["relay"].extend(self.relay.take_kernel_writes())
        while self.kernel.pending():
            self.process(choice)
            choice = choice * 7 + 3
            self.kernel.inbox["relay"].extend(self.relay.take_kernel_writes())

    def check_settled(self) -> None:
        relay, kernel = self.relay, self.kernel
        assert set(relay.table.models) == set(kernel.models)
        for model_id, state in kernel.models.items():
            assert table_state(relay, model_id) == state, f"table and kernel differ: {model_id}"
            model = relay.table.get(model_id)
            assert model is not None and model.sync is None, f"sync left on {model_id}"
        sync = relay.sync
        assert not sync._pending and not sync._in_flux and not sync._corrections
        for port in self.good:
            for model_id in (*GOOD, IMAGE):
                assert port.view.get(model_id) == kernel.models[model_id], port.client_id
            assert not port.expected, f"{port.client_id} still drops echoes"
        refs: Counter[str] = Counter(
            blob.digest
            for model in relay.table.models.values()
            for blobs in model.buffers.values()
            for _, blob in blobs
        )
        store = relay.table.store
        assert {d: e[1] for d, e in store._blobs.items()} == dict(refs), "buffer refcounts"
        assert store.unique_bytes == sum(len(e[0]) for e in store._blobs.values())


OP_KINDS = [
    "good",
    "good",
    "good_image",
    "kernel",
    "process",
    "process",
    "process",
    "hostile",
    "hostile",
    "hostile",
    "v1_frame",
    "legacy_frame",
    "kernel_garbage",
    "join",
]


@fuzz(600)
@given(echo=st.booleans(), ops=st.lists(seeds, max_size=24), final=st.integers(0, 99))
def test_relay_survives_hostile_traffic(echo: bool, ops: list[int], final: int) -> None:
    world = RelayWorld(echo)
    for seed in ops:
        rng = random.Random(seed)
        kind = OP_KINDS[seed % len(OP_KINDS)]
        if kind == "good":
            world.good_update(seed, rng.choice(GOOD), {"value": rng.choice([0, 1, 2, 50, 99])})
        elif kind == "good_image":
            world.good_update(seed, IMAGE, {"value": rng.randbytes(rng.randint(0, 8))})
        elif kind == "kernel":
            world.kernel.set(rng.choice([*GOOD, VICTIM]), value=rng.randint(0, 99))
        elif kind == "process":
            world.process(seed)
        elif kind == "hostile":
            msg_type, content, buffers = hostile_message(rng)
            world.hostile_envelope(world.hostile.message(msg_type, content, buffers))
        elif kind == "v1_frame":
            world.hostile_frame(random_v1_frame(rng), v1=True)
        elif kind == "legacy_frame":
            world.hostile_frame(random_legacy_frame(rng), v1=False)
        elif kind == "kernel_garbage":
            before = fingerprint(world.relay)
            msg_type, content, buffers = kernel_garbage(rng)
            world.kernel.publish(msg_type, content, None, buffers)
            assert fingerprint(world.relay) == before, "malformed kernel message changed it"
        elif kind == "join" and len(world.good) < 4:
            world.join()
    world.drain(final)
    world.check_settled()
    # The relay keeps serving: a good update after all that is fanned out and settles.
    world.good_update(final, "m0", {"value": 77})
    world.drain(final)
    world.check_settled()
    assert world.kernel.models["m0"]["value"] == 77


# -- peer sync convergence -------------------------------------------------------------

SYNC_VALUES = [0, 1, 2, 59, 60, 61, 100]
SYNC_KINDS = ["client", "client", "client", "kernel", "process", "process", "process", "join"]
SYNC_KINDS += ["leave"]


@fuzz(1100)
@given(
    setup=st.integers(0, 2**10),
    ops=st.lists(st.integers(0, 2**16), max_size=40),
    order=st.lists(st.integers(0, 9), max_size=20),
)
def test_peer_sync_converges(setup: int, ops: list[int], order: list[int]) -> None:
    clients, echo, maximum = 2 + setup % 3, (setup >> 2) % 2 == 0, (None, 60)[(setup >> 3) % 2]
    no_echo = (frozenset(), frozenset({"description"}), frozenset({"value"}))[(setup >> 4) % 3]
    derived = (setup >> 6) % 2 == 1
    relay = KernelRelay("k")
    kernel = Kernel(relay, echo=echo, maximum=maximum, no_echo=no_echo, derived=derived)
    kernel.create_slider("m0", 0)
    kernel.create_slider("m1", 5)
    frontends: list[Frontend] = []

    def join() -> None:
        frontend = Frontend(f"c{len(frontends)}", relay, kernel)
        kernel.inbox[frontend.client_id] = deque()
        frontend.join()
        frontends.append(frontend)

    def process(choice: int) -> None:
        busy = [cid for cid, queue in kernel.inbox.items() if queue]
        if busy:
            kernel.process_next(busy[choice % len(busy)])

    for _ in range(clients):
        join()
    for number in ops:
        kind, rest = SYNC_KINDS[number % len(SYNC_KINDS)], number // len(SYNC_KINDS)
        model_id, value = ("m0", "m1")[rest & 1], SYNC_VALUES[(rest >> 1) % len(SYNC_VALUES)]
        attached = [f for f in frontends if f.attached]
        if kind == "client":
            state: dict[str, Any] = {"value": value}
            description = (None, None, "a", "v60")[rest >> 4 & 3]
            if description is not None:
                state["description"] = description
            attached[(rest >> 6) % len(attached)].set(model_id, **state)
        elif kind == "kernel":
            kernel.set(model_id, value=value)
        elif kind == "process":
            process(rest)
        elif kind == "join" and len(frontends) < 6:
            join()
        elif kind == "leave" and len(attached) > 1:
            attached[rest % len(attached)].leave()
    choices = iter(order)
    while any(kernel.inbox.values()):
        process(next(choices, 0))
    for model_id in ("m0", "m1"):
        expected = kernel.models[model_id]
        model = relay.table.get(model_id)
        assert model is not None
        assert {k: model.state.get(k) for k in expected} == expected, "table != kernel"
        for frontend in frontends:
            if frontend.attached:
                shown = {k: frontend.models[model_id].get(k) for k in expected}
                assert shown == expected, f"{frontend.client_id} shows {shown}, kernel {expected}"
        assert model.sync is None, "settled traits keep no bookkeeping"
    for frontend in frontends:
        if frontend.attached:
            assert not frontend.expected, f"{frontend.client_id} would drop echoes forever"
    assert not relay.sync._pending and not relay.sync._in_flux and not relay.sync._corrections


# -- regression tests: relay bugs found by fuzzing (fixed) ------------------------------


class FramePort:
    """A client as RelayWebsocketConnection's WebsocketPort sees it: each message is
    encoded for its protocol (an exception there propagates, as in WebsocketPort.send)."""

    def __init__(self, client_id: str, v1: bool) -> None:
        self.client_id = client_id
        self.v1 = v1
        self.frames: list[bytes | str] = []

    def send(self, envelope: Envelope) -> None:
        self.frames.append(wire.v1_frame(envelope) if self.v1 else wire.legacy_frame(envelope))


def kernel_envelope(msg_type: str, content: bytes, parent: Any = None) -> Envelope:
    header = wire.pack(new_header(msg_type, KERNEL_SESSION))
    return wire.envelope_from_parts("iopub", [header, wire.pack(parent or {}), b"{}", content])


@pytest.mark.parametrize("msg_type", ["status", "stream", "comm_msg", "comm_open"])
def test_unreadable_kernel_content_reaches_every_client_once(msg_type: str) -> None:
    """relay.py bug: handle_kernel_message broadcasts a message whose content it could not
    read (not an object, nested too deeply, not JSON) from its ``except MessageError``
    branch; a JSON-protocol client needs the parsed content (legacy_frame), so the
    MessageError escapes handle_kernel_message (the iopub callback), the clients after
    that one in the broadcast miss the message, and for ``status`` (and captured outputs)
    v1 clients, already served before the content was read, get it twice."""
    relay = KernelRelay("k")
    v1, legacy = FramePort("v1", v1=True), FramePort("json", v1=False)
    relay.attach(v1)
    relay.attach(legacy)
    bad_contents = [b"[]", b'"text"', nested(MAX_JSON_DEPTH + 1, "{").encode(), b'{"a": NaN}']
    for content in bad_contents:
        relay.handle_kernel_message(kernel_envelope(msg_type, content))
    assert len(v1.frames) == len(bad_contents), "v1 clients get each message exactly once"
    assert len(legacy.frames) <= len(bad_contents)
    assert relay.counters[("rejected", "kernel", "malformed")] == len(bad_contents)
    relay.handle_kernel_message(kernel_envelope("status", b'{"execution_state": "idle"}'))
    assert wire.parse_legacy(legacy.frames[-1]).content == {"execution_state": "idle"}


def test_reused_msg_id_does_not_freeze_the_table() -> None:
    """peer_sync.py bug: a second client update under a msg_id that is still pending
    overwrites ``PeerSync._pending[msg_id]`` and leaves a ``Pending`` in the trait's
    ``TraitSync.pending`` that no kernel idle ever settles (the first idle for that
    msg_id pops the ref; an identical resend is even dropped by the kernel's Session as a
    duplicate signature). From then on ``TraitSync.current()`` returns that stale pending
    value, so every later kernel update is broadcast to clients but ``_refresh`` puts
    the stale value back into the table: late joiners load the wrong value, forever."""
    relay, kernel, (a, b) = simulation_world(2)
    first = a.set("m", value=5)
    again = Envelope(
        dict(first.header),
        {},
        content={"comm_id": "m", "data": {"method": "update", "state": {"value": 7}}},
    )
    if forwards(relay, a, again):
        kernel.inbox["c0"].append(again)
    while kernel.pending():
        kernel.process_any()
    kernel.set("m", value=9)
    model = relay.table.get("m")
    assert model is not None
    assert kernel.models["m"]["value"] == 9 == b.value("m")
    assert model.state["value"] == 9, "the table must follow the kernel"
    assert model.sync is None and not relay.sync._pending


def test_null_buffer_paths_are_refused() -> None:
    """relay.py bug: ``_client_comm_msg`` passes ``data.get("buffer_paths")`` to
    split_state, so an explicit ``"buffer_paths": null`` is taken as no buffers and the
    update is applied and fanned out. ipywidgets' ``_handle_msg`` does
    ``if 'buffer_paths' in data: _put_buffers(state, data['buffer_paths'], ...)``, which
    raises TypeError on None: the kernel applies nothing, goes idle, and the relay's
    kernel_handled() then confirms the client's value. Table and peers keep 42 while the
    kernel has 0. (Refuse a present but non-list buffer_paths; split_state could then
    stop mapping None to [] if the relay passed ``data.get("buffer_paths", [])``.)"""
    world = RelayWorld(echo=True)
    data = {"method": "update", "state": {"value": 42}, "buffer_paths": None}
    world.hostile_envelope(world.hostile.message("comm_msg", {"comm_id": "m0", "data": data}))
    world.drain(0)
    world.check_settled()


def test_output_capture_survives_a_non_object_transient() -> None:
    """output_capture.py bug: ``(content.get("transient") or {}).get("display_id")``
    raises AttributeError when a captured display_data (or update_display_data) carries
    a ``transient`` that is not an object, e.g. from user code calling
    ``IPython.display.publish_display_data(data, transient=[1])`` inside ``with out:``.
    The AttributeError is not a MessageError: it escapes handle_kernel_message."""
    relay, kernel, _ = simulation_world(1)
    state = {
        "_model_name": "OutputModel",
        "_model_module": "@jupyter-widgets/output",
        "_model_module_version": "1.0.0",
        "msg_id": "cell-1",
        "outputs": [],
    }
    kernel.publish(
        "comm_open",
        {"comm_id": "out", "target_name": WIDGET_TARGET, "data": {"state": state}},
    )
    for msg_type in ("display_data", "update_display_data"):
        kernel.publish(
            msg_type,
            {"data": {"text/plain": "x"}, "metadata": {}, "transient": [1]},
            parent={"msg_id": "cell-1"},
        )
    model = relay.table.get("out")
    assert model is not None and len(model.state["outputs"]) == 1
