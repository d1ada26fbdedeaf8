"""bench_io.py survives its anchors (issue 9): a third-party anchor runs in its own process, one
that crashes (the liburing wheel dies with SIGILL on CPUs without AVX-512) or is missing makes
its rows unavailable with the reason, and the run goes on with every other row.

Not a benchmark: durations are a few hundredths of a second and nothing is asserted about
speed. The crash and the missing package are simulated through the child's test hooks
(``io_thirdparty.CRASH_ENV`` / ``MISSING_ENV``), which the child honours before importing the
package, so the test needs none of the anchors installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_io

    return bench_io


@pytest.fixture
def data_file(tmp_path: Path) -> str:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(1 << 20))
    return str(path)


def _run(bench: Any, data_file: str, tmp_path: Path, methods: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    argv = ["--file", data_file, "--rounds", "1", "--duration", "0.05", "--warmup", "0",
            "--qd", "1", "--modes", "buffered", "--methods", methods, "--backends", "threads",
            "--output", str(out), "--no-latency-qos"]  # fmt: skip
    assert bench.main(argv) == 0
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _row(report: dict[str, Any], method: str) -> dict[str, Any]:
    rows = [r for r in report["rows"] if r["method"] == method]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.slow
def test_a_crashing_anchor_is_unavailable_with_its_signal_and_the_run_goes_on(
    bench: Any, data_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # The crash at import (the probe's child dies), and in the measuring child only.
    monkeypatch.setenv("WINAIO_BENCH_CRASH", "liburing")
    methods = "winaio.a.core,raw_uring,pread,preadv_nowait,liburing"
    report = _run(bench, data_file, tmp_path, methods)
    capsys.readouterr()
    assert _row(report, "liburing")["unavailable"] == "unavailable: crashed with SIGILL (signal 4)"
    for method in ("winaio.a.core", "raw_uring", "pread", "preadv_nowait"):
        row = _row(report, method)
        assert row["iops_median"] > 0 and row["errors"] == 0, row

    monkeypatch.setenv("WINAIO_BENCH_CRASH", "uring-api@child")  # the probe passes
    report = _run(bench, data_file, tmp_path, "winaio.a.core,uring-api")
    capsys.readouterr()
    assert _row(report, "uring-api")["unavailable"] == "unavailable: crashed with SIGILL (signal 4)"
    assert _row(report, "winaio.a.core")["iops_median"] > 0


@pytest.mark.slow
def test_a_missing_anchor_is_unavailable_with_the_reason(
    bench: Any, data_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("WINAIO_BENCH_MISSING", "caio")
    report = _run(bench, data_file, tmp_path, "raw_uring,caio")
    capsys.readouterr()
    assert _row(report, "caio")["unavailable"].startswith("unavailable: not installed")
    assert _row(report, "raw_uring")["iops_median"] > 0
    # Every issue-9 target is listed, measured or not, with the reason when not.
    names = [t["target"] for t in report["targets"]]
    assert any("raw Python io_uring loop" in n for n in names)
    assert any("per-read latency" in n for n in names)
    assert all(t["met"] is None or isinstance(t["met"], bool) for t in report["targets"])
    unmeasured = [t for t in report["targets"] if t["ratio"] is None]
    assert unmeasured and all(t["why_no_ratio"] for t in unmeasured)


def test_the_raw_loop_reads_what_pread_reads(bench: Any, data_file: str) -> None:
    # The Python ceiling must really read the file: same bytes as os.pread at the same offsets.
    import raw_uring

    fd = os.open(data_file, os.O_RDONLY)
    ring, bufs = raw_uring.RawRing(8), raw_uring.AlignedBuffers(4)
    try:
        offsets = [4096 * 17] * (1 << 16)  # a power-of-two table, one block
        done, errors = raw_uring.read_loop(ring, fd, bufs.addresses, offsets, 0, 0.0)
        assert done >= 4 and errors == 0  # QD reads, the re-arms of the first reap, the drain
        expected = os.pread(fd, 4096, 4096 * 17)
        for slot in range(4):
            assert bufs.mem[slot * 4096 : (slot + 1) * 4096] == expected
    finally:
        ring.close()
        bufs.close()
        os.close(fd)
    assert sys.modules["raw_uring"].BLOCK == 4096
