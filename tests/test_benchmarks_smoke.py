"""The benchmark suite's smoke mode, so it cannot rot (figures are not asserted tightly)."""

from __future__ import annotations

from benchmarks.run import main


async def test_benchmark_smoke_mode_runs_and_relay_wins() -> None:
    results = await main(smoke=True)
    relay, stock = results["relay"], results["stock"]
    assert relay["peer3_samples"] == stock["peer3_samples"] > 0
    # stock answers only after the busy cell: the relay must not be slower than that
    assert relay["late_joiner_s"] < stock["late_joiner_s"]
    assert relay["peer3_p99_s"] < stock["peer3_p99_s"]
    # every item ran on both servers and measured what it claims
    # 100 IntSliders, each with the models ipywidgets gives it (layout, style)
    assert relay["snapshot_models"] == stock["snapshot_models"] > 100
    assert relay["burst_all_final"] and stock["burst_all_final"]
    assert relay["scale_max_clients"] >= 5
    assert 0 < relay["memory_bytes_per_model_over_state"] < relay["memory_bytes_per_model"]
    # the soak ran on the relay and left no bookkeeping, with the kernel's value in the table
    assert relay["soak_updates_sent"] > 0 and relay["soak_joins"] > 0
    assert relay["soak_unsettled_at_end"] == {
        "updates": 0,
        "waiting": 0,
        "traits": 0,
        "state_checks": 0,
    }
    assert relay["soak_table_equals_kernel"] is True
    # a drag during a busy cell reaches peers step by step with the relay, not with stock
    assert relay["drag_busy_p99_s"] < stock["drag_busy_p50_s"]
    assert relay["drag_busy_updates_sent"] == relay["drag_busy_steps"], "released each step"
    assert stock["drag_busy_updates_sent"] < stock["drag_busy_steps"], "stock holds them back"
    assert relay["drag_idle_steps_seen_per_s"] > stock["drag_idle_steps_seen_per_s"]
