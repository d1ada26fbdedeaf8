"""The benchmarks' latency pieces work: ``_latency_qos.LatencyQoS`` holds the PM QoS request for
its block (writes a 32-bit 0, keeps the descriptor, closes it on exit, exception or not), says
why when it cannot (missing device, a directory) and records it; ``sock_report.c1_cap`` tells a
machine whose C=1 ceilings all sit above the wake-up threshold, and the C=1 targets then say
``capped`` (neither met nor failed) while the C=64 ones are judged as measured.

Not a benchmark. The request is taken on a stand-in file, except in one test that takes the real
``/dev/cpu_dma_latency`` for a moment when it can be opened (root) and checks that the kernel
reports 0 us in force while it is held.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def qos(bench_import: Callable[[str], Any]) -> Any:
    return bench_import("_latency_qos")


@pytest.fixture
def report(bench_import: Callable[[str], Any]) -> Any:
    return bench_import("sock_report")


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_the_request_is_written_held_for_the_block_and_dropped(qos: Any, tmp_path: Path) -> None:
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    before = _fds()
    with qos.LatencyQoS(device=str(device)) as held:
        assert held.held and held.state == qos.HELD
        assert len(_fds() - before) == 1  # the descriptor stays open: the request lasts
        assert device.read_bytes() == struct.pack("i", 0)
    assert not held.held and _fds() == before
    record = held.record()
    assert record["state"] == "held" and record["request_us"] == 0 and "reason" not in record
    assert {"cpuidle_driver", "cpuidle_governor", "effective_us"} <= set(record)


def test_an_exception_in_the_block_still_drops_the_request(qos: Any, tmp_path: Path) -> None:
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    before = _fds()
    with pytest.raises(KeyError), qos.LatencyQoS(device=str(device)) as held:
        raise KeyError("boom")
    assert not held.held and _fds() == before
    held.close()  # idempotent


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_device_that_cannot_be_opened_is_unavailable_with_the_reason(
    qos: Any, tmp_path: Path, kind: str
) -> None:
    device = tmp_path / "nothing" if kind == "missing" else tmp_path
    before = _fds()
    with qos.LatencyQoS(device=str(device)) as held:
        assert not held.held
    assert _fds() == before
    record = held.record()
    assert record["state"] == "unavailable"
    expected = "ENOENT" if kind == "missing" else "EISDIR"
    assert str(device) in record["reason"] and expected in record["reason"], record


def test_off_asks_for_nothing(qos: Any, tmp_path: Path) -> None:
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"untouched")
    with qos.LatencyQoS(False, device=str(device)) as held:
        assert not held.held
    assert device.read_bytes() == b"untouched"
    record = held.record()
    assert record["state"] == "off" and "--no-latency-qos" in record["reason"]


def test_the_cpuidle_facts_come_from_sysfs(qos: Any) -> None:
    info = qos.cpuidle_info()
    assert set(info) >= {"cpuidle_driver", "cpuidle_governor"}
    if os.path.exists(f"{qos.CPUIDLE}/current_driver"):
        with open(f"{qos.CPUIDLE}/current_driver") as f:
            assert info["cpuidle_driver"] == f.read().strip()


def test_the_real_device_reports_zero_while_held(qos: Any) -> None:
    if not os.access(qos.DEVICE, os.W_OK):
        pytest.skip(f"{qos.DEVICE} not writable here (needs root)")
    with qos.LatencyQoS() as held:
        assert held.state == qos.HELD
        assert held.record()["effective_us"] == 0  # the minimum of every holder's request


def _rows(**p50: float) -> dict[str, dict[str, Any]]:
    return {f"{kind}/c1": {"p50_us_median": value} for kind, value in p50.items()}


def test_the_cap_needs_every_measured_ceiling_above_the_threshold(report: Any) -> None:
    capped = report.c1_cap(_rows(raw_threaded=50.4, raw_epoll=54.9, raw_uring=58.1))
    assert capped["capped"] and "wake-up" in capped["why"]
    assert capped["ceilings_c1_p50_us"]["raw_uring"] == 58.1
    # One ceiling under it: the machine does not cap (the others were slow for their own reasons).
    assert not report.c1_cap(_rows(raw_threaded=17.2, raw_epoll=54.9, raw_uring=58.1))["capped"]
    # A missing ceiling does not count; none at all: cannot tell, not capped.
    assert report.c1_cap(_rows(raw_threaded=50.0, raw_uring=45.0))["capped"]
    none = report.c1_cap(_rows(asyncio_protocol=60.0))
    assert not none["capped"] and "cannot be told" in none["why"]
    assert not report.c1_cap(_rows(raw_threaded=50.0), threshold_us=60.0)["capped"]
    assert report.C1_CAP_US == 40.0


class _Pair:
    def __init__(self, c1: float, c64: float) -> None:
        self.runs = {"c1": [(0, {"p50_us": c1})], "c64": [(0, {"calls_per_s": c64})]}


def test_capped_c1_targets_are_neither_met_nor_failed(report: Any) -> None:
    values = {  # server: (C=1 p50, C=64 calls/s)
        "winaio.core.t1": (63.0, 40_000.0),
        "winaio.win32.t1": (62.0, 39_000.0),
        "asyncio_protocol": (59.0, 41_000.0),
        "raw_threaded": (50.0, 60_000.0),
    }
    rows = {}
    for kind, (c1, c64) in values.items():
        rows[f"{kind}/c1"] = {"p50_us_median": c1}
        rows[f"{kind}/c64"] = {"calls_per_s_median": c64}
    pairs = {kind: _Pair(*v) for kind, v in values.items()}
    cap = report.c1_cap(rows)
    assert cap["capped"]
    by_name = {t["target"]: t for t in report.targets(rows, pairs, cap=cap)}
    c1 = by_name["winaio.core.t1 C=1 p50 <= 1.1x asyncio Protocol's"]
    assert c1["status"] == "capped" and c1["met"] is None and c1["ratio"] == round(63 / 59, 3)
    alias = by_name["alias layer: winaio.win32.t1 C=1 p50 <= 1.25x winaio.core.t1's"]
    assert alias["status"] == "capped"
    c64 = by_name["winaio.core.t1 C=64 calls/s >= 1.0x asyncio Protocol's"]
    assert c64["status"] == "not met" and c64["met"] is False
    # The same rows judged without the cap (the request held, ceilings fast): met / not met.
    uncapped = {t["target"]: t for t in report.targets(rows, pairs)}
    assert uncapped[c1["target"]]["status"] == "met" and uncapped[c1["target"]]["met"] is True
