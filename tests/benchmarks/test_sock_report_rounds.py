"""bench_sockets.py's reliability figures (issue 9: "C=64 >= 1.0x asyncio, reliably"; c64): a
target counts the rounds whose own ratio meets its bound, of the rounds both rows ran in, and a
row keeps its server CPU per echo round by round (user, kernel, total) so that CPU can be paired
between rows as the rates are; ``sock_threads.py`` counts the rounds at or above its reference.
Built from hand-made rounds: no server runs here.

Not a benchmark: nothing here asserts anything about speed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def bench(bench_import: Callable[[str], Any]) -> Any:
    return bench_import("bench_sockets")


def _run(rate: float, cpu: float | None = None) -> dict[str, Any]:
    got: dict[str, Any] = {
        "calls_per_s": rate, "p50_us": 500.0, "p99_us": 900.0, "client_cpu_pct": 90.0
    }  # fmt: skip
    if cpu is not None:
        got.update(
            server_cpu_us_per_call=cpu,
            server_user_us_per_call=cpu / 4,
            server_sys_us_per_call=cpu * 3 / 4,
        )
    return got


def _pairs(bench: Any, a: list[float], b: list[float], skip_b: int = -1) -> dict[str, Any]:
    pairs = {k: bench.Pair(k, "raw") for k in ("winaio.core.t1", "asyncio_protocol")}
    for rnd, (x, y) in enumerate(zip(a, b, strict=True)):
        pairs["winaio.core.t1"].runs["c64"].append((rnd, _run(x, 10.0)))
        if rnd != skip_b:  # a round the other row did not run (it failed there)
            pairs["asyncio_protocol"].runs["c64"].append((rnd, _run(y, 10.0)))
    return pairs


def _rows(bench: Any, pairs: dict[str, Any]) -> dict[str, Any]:
    return {p.row("c64"): bench.summarize(p, "c64", None) for p in pairs.values()}


def _target(bench: Any, pairs: dict[str, Any], at_most: bool = False) -> dict[str, Any]:
    """``sock_report.target`` of winaio.core.t1 against asyncio_protocol at C=64, in calls/s
    with the bound 1.0 (at least, or ``at_most``)."""
    import sock_report

    rows = _rows(bench, pairs)
    got: dict[str, Any] = sock_report.target(
        "c64", rows, pairs, "winaio.core.t1", "asyncio_protocol", "c64", "calls_per_s", 1.0,
        at_most,
    )  # fmt: skip
    return got


def test_a_target_counts_the_rounds_that_meet_it(bench: Any) -> None:
    # Per-round ratios 1.2, 0.9, 1.0 (met: >= 1.0, equality included), 0.5, 1.1.
    pairs = _pairs(bench, [120, 90, 100, 50, 110], [100, 100, 100, 100, 100])
    got = _target(bench, pairs)
    assert (got["rounds_meeting"], got["rounds_compared"]) == (3, 5)
    assert got["ratio_median_of_rounds"] == 1.0
    # At most (a latency bound): the rounds at or under it.
    got = _target(bench, pairs, at_most=True)
    assert (got["rounds_meeting"], got["rounds_compared"]) == (3, 5)
    # Only rounds both rows ran in are compared.
    pairs = _pairs(bench, [120, 90, 100], [100, 100, 100], skip_b=0)
    got = _target(bench, pairs)
    assert (got["rounds_meeting"], got["rounds_compared"]) == (1, 2)


def test_a_target_with_a_row_missing_compares_no_round(bench: Any) -> None:
    pairs = _pairs(bench, [120, 90], [100, 100])
    del pairs["asyncio_protocol"]
    got = _target(bench, pairs)
    assert (got["rounds_meeting"], got["rounds_compared"]) == (0, 0)
    assert got["status"] == "no ratio"


def test_a_row_keeps_its_server_cpu_round_by_round(bench: Any) -> None:
    pair = bench.Pair("winaio.core.t1", "raw")
    for rnd, cpu in enumerate([8.0, 12.0, 10.0]):
        pair.runs["c64"].append((rnd, _run(100.0, cpu)))
    row = bench.summarize(pair, "c64", None)
    assert row["server_cpu_us_per_call_rounds"] == [8.0, 12.0, 10.0]
    assert row["server_user_us_per_call_rounds"] == [2.0, 3.0, 2.5]
    assert row["server_sys_us_per_call_rounds"] == [6.0, 9.0, 7.5]
    assert row["server_cpu_us_per_call_median"] == 10.0
    # A round without the server's CPU (no call counted): no per-round list, the median stays.
    pair.runs["c64"].append((3, _run(100.0)))
    row = bench.summarize(pair, "c64", None)
    assert "server_cpu_us_per_call_rounds" not in row
    assert row["server_cpu_us_per_call_median"] == 10.0


def test_sock_threads_counts_the_rounds_at_or_above_the_reference(bench: Any) -> None:
    import sock_threads

    cpu = {
        "asyncio_protocol": [{"calls_per_s": 100.0}] * 4,
        "winaio.core.t1": [{"calls_per_s": x} for x in (120.0, 90.0, 100.0, 50.0)],
    }
    got = sock_threads.ratios(cpu)["winaio.core.t1 / asyncio_protocol"]
    assert got["per_round"] == [1.2, 0.9, 1.0, 0.5]
    assert got["rounds_at_or_above_1"] == 2
