"""Prometheus metrics on the server's existing /metrics endpoint.

Gauges and counters are read from the relays when Prometheus scrapes (nothing is
updated on the hot path); the two latency histograms are observed as things happen.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .core.counters import ACTED, DIRECTIONS, REJECTED

LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

SNAPSHOT_SECONDS = Histogram(
    "jupyter_widget_relay_snapshot_seconds",
    "Time to build and queue one widget-state snapshot for a joining client.",
    buckets=LATENCY_BUCKETS,
)
FANOUT_SECONDS = Histogram(
    "jupyter_widget_relay_fanout_seconds",
    "Time to hand one message to every client of a kernel.",
    buckets=LATENCY_BUCKETS,
)
HISTOGRAMS = {"snapshot": SNAPSHOT_SECONDS, "fanout": FANOUT_SECONDS}


def observe(name: str, seconds: float) -> None:
    histogram = HISTOGRAMS.get(name)
    if histogram is not None:
        histogram.observe(seconds)


class RelayCollector(Collector):
    """Reads a RelayManager's kernels and counters at scrape time."""

    def __init__(
        self,
        kernels: Callable[[], dict[str, Any]],
        counters: Callable[[], Counter[tuple[str, ...]]],
    ) -> None:
        self._kernels = kernels
        self._counters = counters

    def collect(self) -> Iterator[Any]:
        gauges = {
            "models": GaugeMetricFamily(
                "jupyter_widget_relay_models",
                "Widget models in the kernel's table.",
                labels=["kernel_id"],
            ),
            "state_bytes": GaugeMetricFamily(
                "jupyter_widget_relay_state_bytes",
                "JSON state bytes in the kernel's table.",
                labels=["kernel_id"],
            ),
            "buffer_bytes": GaugeMetricFamily(
                "jupyter_widget_relay_buffer_bytes",
                "Distinct binary buffer bytes in the kernel's table.",
                labels=["kernel_id"],
            ),
            "clients": GaugeMetricFamily(
                "jupyter_widget_relay_clients",
                "Browser connections the kernel's relay serves.",
                labels=["kernel_id"],
            ),
        }
        for kernel_id, summary in self._kernels().items():
            for key, gauge in gauges.items():
                gauge.add_metric([kernel_id], float(summary[key]))
        yield from gauges.values()
        messages = CounterMetricFamily(
            "jupyter_widget_relay_messages",
            "Messages the relay handled, by direction and type.",
            labels=["direction", "msg_type"],
        )
        rejections = CounterMetricFamily(
            "jupyter_widget_relay_rejections",
            "Messages the relay refused, by source and reason.",
            labels=["source", "reason"],
        )
        actions = CounterMetricFamily(
            "jupyter_widget_relay_actions",
            "Things the relay did itself (snapshots, echo fan-outs, "
            "corrections, captured outputs...).",
            labels=["action"],
        )
        for counted, value in sorted(self._counters().items()):
            if counted[0] in DIRECTIONS and len(counted) == 2:
                messages.add_metric([counted[0], counted[1]], value)
            elif counted[0] == REJECTED and len(counted) == 3:
                rejections.add_metric([counted[1], counted[2]], value)
            elif counted[0] == ACTED and len(counted) == 2:
                actions.add_metric([counted[1]], value)
        yield from (messages, rejections, actions)


def register(collector: RelayCollector) -> None:
    REGISTRY.register(collector)


def unregister(collector: RelayCollector) -> None:
    with contextlib.suppress(KeyError):
        REGISTRY.unregister(collector)
