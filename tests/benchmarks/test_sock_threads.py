"""benchmarks/sock_threads.py (watch): the per-thread report of a bench_sockets server under the
C=64 client names winaio's threads (the ring thread and the port thread, ``sock_winaio
.name_threads``), gives each its CPU and switches per echo, and reads ``perf stat
--per-thread`` output into syscalls per echo by thread and type.

Not a benchmark: nothing here asserts anything about speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent.parent / "benchmarks"


@pytest.fixture
def threads(bench_import: Callable[[str], Any]) -> Any:
    return bench_import("sock_threads")


PERF_TEXT = """\
# started on Sun Dec  6 08:18:40 2026

python-100,<not counted>,,raw_syscalls:sys_enter,0,100.00,,
echo-port-0-102,3000,,raw_syscalls:sys_enter,25377933,100.00,,
echo-port-0-102,40,,syscalls:sys_enter_futex,25377933,100.00,,
winaio-uring-0-101,10,,syscalls:sys_enter_futex,25377933,100.00,,
echo-port-0-102,30,,syscalls:sys_enter_futex,25402760,100.00,,
winaio-uring-0-101,4,,syscalls:sys_enter_futex,25402760,100.00,,
echo-port-0-102,2000,,syscalls:sys_enter_sendto,25402760,100.00,,
"""


def test_parse_perf_by_thread_and_type(threads: Any) -> None:
    names = {100: "main", 101: "winaio-uring-0", 102: "echo-port-0"}
    got = threads.parse_perf(PERF_TEXT, names, 1000)
    assert got["main"] == {"syscalls": 0.0}
    port = got["echo-port-0"]
    # futex twice: the first line all of them, the second the filtered wakes
    assert port["futex"] == 0.04 and port["futex_wake"] == 0.03
    assert port["futex_wait"] == pytest.approx(0.01)
    assert port["sendto"] == 2.0 and port["syscalls"] == 3.0
    assert got["winaio-uring-0"]["futex_wait"] == pytest.approx(0.006)


def test_parse_perf_unknown_thread_keeps_its_tid(threads: Any) -> None:
    got = threads.parse_perf("x-7,5,,sched:sched_switch,1,100.00,,\n", {}, 5)
    assert got == {"7": {"switches": 1.0}}


def test_one_round_names_the_threads(tmp_path: Path) -> None:
    out = tmp_path / "threads.json"
    args = ["--servers", "winaio.core.t1,asyncio_protocol", "--rounds", "1", "--duration", "0.3"]
    args += ["--server-warmup", "0", "--no-syscalls", "--output", str(out)]
    run = subprocess.run(
        [sys.executable, str(BENCH / "sock_threads.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert json.loads(run.stdout) == result
    winaio = result["rows"]["winaio.core.t1"]
    assert {"main", "winaio-uring-0", "echo-port-0"} <= set(winaio["threads"])
    port = winaio["threads"]["echo-port-0"]
    assert set(port) == {"user_us", "sys_us", "voluntary_per_kecho", "involuntary_per_kecho"}
    assert winaio["calls_per_s_rounds"][0] > 0
    assert set(result["rows"]["asyncio_protocol"]["threads"]) == {"main"}
    assert "syscalls_per_echo" not in winaio
    ratio = result["ratios"]["winaio.core.t1 / asyncio_protocol"]
    assert len(ratio["per_round"]) == 1
