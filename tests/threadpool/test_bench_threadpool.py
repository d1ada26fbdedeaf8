"""bench_threadpool.py survives its third-party anchors: aiofile and aiofiles run in their own
process; a crashed or missing one makes its row ``unavailable`` with the reason and the run goes
on. Not a benchmark: durations are hundredths of a second and nothing is asserted about speed.
The crash and the missing package are simulated through the child's test hooks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_threadpool

    return bench_threadpool


def test_crashed_and_missing_anchors_are_unavailable(
    bench: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(bench.CRASH_ENV, "aiofile")
    monkeypatch.setenv(bench.MISSING_ENV, "aiofiles")
    report = bench.bench_aio_reads(qd=4, seconds=0.02, rounds=1, size_mib=1)
    rows = report["rows"]
    assert rows["aiofile"] == {"unavailable": "unavailable: crashed with signal 4"}
    assert rows["aiofiles"]["unavailable"].startswith("unavailable: not installed")
    for method in ("winaio.aio", "run_in_executor", "pread"):
        assert rows[method]["median"] > 0 and not math.isnan(rows[method]["median"])
    assert report["winaio_over_aiofile"] is None


def test_targets_are_computed_from_one_report(bench: Any) -> None:
    report = {
        "throughput": {
            "rows": {"winaio.submit": {"ratio_to_tpe": 1.5}, "winaio.call": {"ratio_to_tpe": 0.9}}
        },
        "latency": {"p50_ratio_winaio_over_tpe": 0.95},
        "aio_reads": {
            "rows": {"winaio.aio": {"ratio_to_run_in_executor": 2.5}},
            "winaio_over_aiofile": None,
        },
    }
    met = {t["target"]: t["met"] for t in bench.targets(report)}
    assert met == {
        "throughput winaio.submit / tpe": True,
        "throughput winaio.call / tpe": False,
        "latency p50 winaio / tpe": True,
        "aio reads winaio / run_in_executor": True,
        "aio reads winaio / aiofile": None,
    }
