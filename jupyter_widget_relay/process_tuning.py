"""Settings of the server process that matter once hundreds of browsers share it."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from typing import Any

import zmq

from . import upstream

STARTUP_SETTLE_S = 1.0  # seconds after the extension starts: other extensions finish theirs


@functools.cache
def zmq_socket_limit() -> int:
    """The largest MAX_SOCKETS libzmq accepts (65535 with libzmq 4.x)."""
    context = zmq.Context()
    try:
        return int(context.get(zmq.SOCKET_LIMIT))
    except (zmq.ZMQError, AttributeError):
        return 65535
    finally:
        context.term()


def raise_zmq_socket_cap(kernel_manager: Any, wanted: int, log: logging.Logger) -> None:
    """Set MAX_SOCKETS on the kernel manager's ZMQ context. libzmq sizes a context's
    socket table when the first socket is created; later changes are accepted but
    have no effect, hence the checks."""
    context = getattr(kernel_manager, "context", None) if wanted else None
    if context is None:
        return
    existing = upstream.zmq_socket_count(context) or len(kernel_manager.list_kernel_ids())
    try:
        before = context.get(zmq.MAX_SOCKETS)
        if before != wanted:
            context.set(zmq.MAX_SOCKETS, wanted)
        now = context.get(zmq.MAX_SOCKETS)
    except zmq.ZMQError as error:
        log.warning(
            "widget relay: could not set c.WidgetRelay.zmq_max_sockets = %d: %s", wanted, error
        )
        return
    if now != wanted:
        log.warning(
            "widget relay: c.WidgetRelay.zmq_max_sockets = %d did not take effect (the ZMQ "
            "context allows %d sockets)",
            wanted,
            now,
        )
    elif existing and before != wanted:
        log.warning(
            "widget relay: c.WidgetRelay.zmq_max_sockets = %d may not take effect: the "
            "kernel manager's ZMQ context already had sockets, and libzmq keeps the cap "
            "it started with (%d)",
            wanted,
            before,
        )
    else:
        log.debug("widget relay: ZMQ context allows %d sockets", now)


def schedule_startup_freeze(log: logging.Logger) -> asyncio.TimerHandle:
    """Soon after start, move every object the server holds to the garbage collector's
    permanent generation: full collections then only walk what came later (browsers'
    connections, widget tables), not the startup heap."""
    return asyncio.get_running_loop().call_later(STARTUP_SETTLE_S, freeze_startup_objects, log)


def freeze_startup_objects(log: logging.Logger) -> None:
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()
    log.info(
        "widget relay: %d objects from the server's startup are exempt from garbage "
        "collection (c.WidgetRelay.freeze_startup_objects)",
        gc.get_freeze_count(),
    )
