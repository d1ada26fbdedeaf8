"""benchmarks/sock_instructions.py's workloads run (not under valgrind here: nothing is timed or
counted) and release what they open: the QD1 pended receive and the C=64 echo, whose receives
pend on the port thread. The callgrind arithmetic (each thread and their sum, difference of two
runs) is checked on made-up callgrind output files. The ``--opcodes`` count covers every thread
of the process, not the port thread only (what misled: docs/design.md, "The receive slot, the
Python twin..."): a thread's opcodes are counted under its name, a thread started before the
tracer makes the count refuse, and the tool's own run lists the ring thread as traced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from winaio import _runtime
from winaio.testing import available_backends, wait_until

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


def test_instructions_per_iteration_are_each_threads_difference_and_their_sum(
    tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {1000: (5_000_000, 700, 1_000_000), 3000: (9_000_000, 900, 3_000_000)}

    def fake_run(cmd: list[str], **kwargs: Any) -> None:
        out = next(a for a in cmd if a.startswith("--callgrind-out-file="))
        prefix = out.split("=", 1)[1]
        n = int(cmd[cmd.index("--iterations") + 1])
        for thread, total in enumerate(counts[n], start=1):
            Path(f"{prefix}-{thread:02d}").write_text(f"events: Ir\ntotals: {total}\n")

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    row = tool.measure("qd1", "valgrind", tmp_path)
    expected = {"workload": "qd1", "per": "pended receive", "main_thread": 2000}
    assert row == {**expected, "ring_thread": 0, "all_threads": 3000}


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def test_opcodes_are_counted_on_every_thread_under_its_name(tool: Any) -> None:
    early_stop = threading.Event()
    early = threading.Thread(target=early_stop.wait, name="test-early", daemon=True)
    early.start()  # before the tracer: cannot be traced on 3.11
    go, done = threading.Event(), threading.Event()

    def worker() -> None:
        go.wait()
        _spin(1000)
        done.set()

    tracer = tool.Opcodes(exclude=tool.__file__)
    tracer.install()
    try:
        late = threading.Thread(target=worker, name="test-late", daemon=True)
        late.start()
        tracer.count(True)
        go.set()
        _spin(10)
        assert done.wait(10.0)
        tracer.count(False)
        _spin(1000)  # not counted
        untraced = tracer.untraced()
    finally:
        tracer.uninstall()
        early_stop.set()
    late.join(10.0)
    early.join(10.0)
    assert "test-early" in untraced
    assert "test-late" not in untraced and "MainThread" not in untraced
    report = tracer.report(1)
    spin = f"{os.path.basename(__file__)}:_spin"
    threads = report["threads"]
    # The other thread's loop (~10 opcodes an iteration) against the port thread's 10
    # iterations: counted where it ran, and the total is every thread's.
    assert threads["test-late"]["functions"][spin] > 5000
    assert 50 < threads["MainThread"]["functions"][spin] < 500
    assert report["functions"][spin] == pytest.approx(
        threads["test-late"]["functions"][spin] + threads["MainThread"]["functions"][spin]
    )
    assert report["total"] == pytest.approx(sum(t["total"] for t in threads.values()), abs=0.5)


def test_opcodes_refuse_a_count_missing_a_thread(tool: Any) -> None:
    _runtime.backend()  # its ring thread (or the thread backend's) runs before the tracer
    assert any(t is not threading.current_thread() for t in threading.enumerate())
    tracer = tool.Opcodes(exclude=tool.__file__)
    tracer.install()
    try:
        with pytest.raises(RuntimeError, match="threads not traced"):
            tool.opcodes("qd1", 2, tracer)
    finally:
        tracer.uninstall()


def _opcodes_run(backend: str, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH / "sock_instructions.py"), "--opcodes", "c64"]
    cmd += ["--iterations", "2", *extra]
    env = {**os.environ, "WINAIO_BACKEND": backend}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=50, check=True, env=env)
    report: dict[str, Any] = json.loads(done.stdout)
    threads = report["threads"]
    assert "MainThread" in threads
    assert report["total"] == pytest.approx(sum(t["total"] for t in threads.values()), abs=0.5)
    return report


def test_the_opcodes_run_counts_the_thread_backends_reactor() -> None:
    # The thread backend's reactor thread does most of a C=64 echo's Python (readiness, the
    # receive, the delivery): a count of the port thread alone would miss it.
    report = _opcodes_run("threads")
    threads = report["threads"]
    reactor = [t["total"] for name, t in threads.items() if name.startswith("winaio-io-reactor")]
    assert reactor and reactor[0] > 0, threads
    assert report["total"] > threads["MainThread"]["total"] + reactor[0] / 2


@pytest.mark.parametrize("free", [False, True])
def test_the_opcodes_run_traces_the_ring_thread(free: bool) -> None:
    if "io_uring" not in available_backends():
        pytest.fail("io_uring unavailable: this benchmark's backend")
    report = _opcodes_run("io_uring", *(["--free-ring"] if free else []))
    assert any(name.startswith("winaio-uring") for name in report["threads"]), report
    assert ("held at 100 s" in report["note"]) is not free
