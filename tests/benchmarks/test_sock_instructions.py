"""benchmarks/sock_instructions.py's workloads run (not under valgrind here: nothing is timed or
counted) and release what they open: the QD1 pended receive and the C=64 echo, whose receives
pend on the port thread. The callgrind arithmetic (main thread, difference of two runs) is
checked on made-up callgrind output files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from winaio import _runtime
from winaio.testing import wait_until

BENCH = Path(__file__).resolve().parent.parent.parent / "benchmarks"


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCH))
    import sock_instructions

    return sock_instructions


@pytest.mark.parametrize("workload", ["qd1", "c64", "echo1", "echo1_win32"])
def test_each_workload_runs_and_closes_what_it_opened(tool: Any, workload: str) -> None:
    _runtime.backend()  # the process's backend (its ring and eventfds) stays
    before = set(os.listdir("/proc/self/fd"))
    assert tool.run(workload, 3, warmup=2) > 0
    # A socket closed with its receive pending gives its descriptor back once the aborted
    # receive is delivered.
    wait_until(lambda: set(os.listdir("/proc/self/fd")) <= before, 5.0, "descriptors released")


def test_instructions_per_iteration_are_the_main_threads_difference(
    tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {1000: (5_000_000, 700), 3000: (9_000_000, 900)}

    def fake_run(cmd: list[str], **kwargs: Any) -> None:
        out = next(a for a in cmd if a.startswith("--callgrind-out-file="))
        prefix = out.split("=", 1)[1]
        n = int(cmd[cmd.index("--iterations") + 1])
        for thread, total in enumerate(counts[n], start=1):
            Path(f"{prefix}-{thread:02d}").write_text(f"events: Ir\ntotals: {total}\n")

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    row = tool.measure("qd1", "valgrind", tmp_path)
    expected = {"workload": "qd1", "per": "pended receive", "main_thread": 2000}
    assert row == {**expected, "ring_thread": 0}
