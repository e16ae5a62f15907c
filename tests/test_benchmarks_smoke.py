"""The benchmark suite's smoke mode, so it cannot rot (figures are not asserted tightly)."""

from __future__ import annotations

from benchmarks.run import main


async def test_benchmark_smoke_mode_runs_and_relay_wins() -> None:
    results = await main(smoke=True)
    relay, stock = results["relay"], results["stock"]
    assert relay["peer_samples"] == stock["peer_samples"] > 0
    # stock answers only after the busy cell: the relay must not be slower than that
    assert relay["late_joiner_s"] < stock["late_joiner_s"]
    assert relay["peer_p99_s"] < stock["peer_p99_s"]
