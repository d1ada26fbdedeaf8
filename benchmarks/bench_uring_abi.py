"""Micro benchmark of the raw io_uring ABI layer (``winaio._backends._uring_abi``).

Not a test and not run in CI: it prints one JSON document on stdout.

What it measures, in the same process and with rounds interleaved (every workload once, then
again; the median of the rounds is reported, as in docs/perf-anchors section 0):

- ``nop``: per-op cost of prep + submit + reap for IORING_OP_NOP, at batch 1
  (``prep_nop``, ``submit(1)``, ``reap()``) and batch 32 (32 preps, ``submit(32)``, ``reap()``).
- ``randread``: 4 KiB random reads from a warm temporary file. The io_uring loop keeps ``qd``
  reads in flight: ``submit(1)``, reap every ready CQE, re-arm one read per CQE into the same
  per-slot buffer (the perf-anchors "raw loop"). The baseline is ``os.pread`` in a loop.
  The file is re-read before each run (DAMON may evict cold pages) and its page-cache
  residency is reported (mincore).

Usage: ``python benchmarks/bench_uring_abi.py [--size-mib 256] [--duration 2] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from winaio._backends.uring import abi
from winaio._backends.uring.abi.structs import pin_readonly

BLOCK = 4096

# docs: perf-anchors.md sections 2 and 3 (same kind of machine, medians of 3; use ratios).
ANCHORS = {
    "nop_batch1_us": {"liburing": 1.33, "ctypes_prototype": 2.8},
    "nop_batch32_us_per_op": {"liburing": 0.29, "ctypes_prototype": 0.65},
    "buffered_qd32_iops": {"liburing": 592_000, "uring_api": 531_000, "ctypes_prototype": 464_000},
    "buffered_pread_iops": 631_000,
}


def timed(fn: Callable[[float], int], duration: float) -> float:
    """Run ``fn(deadline)`` (returns ops done) and return ops per second."""
    start = time.perf_counter()
    ops = fn(start + duration)
    return ops / (time.perf_counter() - start)


def nop_batch1(ring: abi.Ring, deadline: float) -> int:
    prep, submit, reap, clock = ring.prep_nop, ring.submit, ring.reap, time.perf_counter
    ops = 0
    while clock() < deadline:
        for i in range(1000):
            prep(i)
            submit(1)
            reap()
        ops += 1000
    return ops


def nop_batch(ring: abi.Ring, deadline: float, batch: int = 32) -> int:
    prep, submit, reap, clock = ring.prep_nop, ring.submit, ring.reap, time.perf_counter
    ops = 0
    while clock() < deadline:
        for _ in range(100):
            for i in range(batch):
                prep(i)
            submit(batch)
            if len(reap()) != batch:
                raise RuntimeError("lost NOP completions")
        ops += 100 * batch
    return ops


def uring_randread(
    ring: abi.Ring, fd: int, offsets: list[int], qd: int, deadline: float
) -> tuple[int, int]:
    """The raw loop: returns (completed reads, failed or short reads)."""
    bufs = mmap.mmap(-1, qd * BLOCK)  # page-aligned per-slot buffers (O_DIRECT-ready)
    base, _, keep = pin_readonly(bufs)
    addrs = [base + slot * BLOCK for slot in range(qd)]
    prep, submit, reap, clock = ring.prep_read, ring.submit, ring.reap, time.perf_counter
    mask = len(offsets) - 1
    k = 0
    for slot in range(qd):
        prep(fd, addrs[slot], BLOCK, offsets[k & mask], slot)
        k += 1
    done = bad = 0
    while True:
        submit(1)
        cqes = reap()
        for slot, res, _ in cqes:
            if res != BLOCK:
                bad += 1
            prep(fd, addrs[slot], BLOCK, offsets[k & mask], slot)
            k += 1
        done += len(cqes)
        if clock() >= deadline:
            break
    # Drain what is still in flight before the buffers go away.
    submit()
    outstanding = qd
    while outstanding:
        submit(1)
        outstanding -= len(reap())
    del keep
    bufs.close()
    return done, bad


def pread_randread(fd: int, offsets: list[int], deadline: float) -> int:
    pread, clock = os.pread, time.perf_counter
    mask = len(offsets) - 1
    k = 0
    while clock() < deadline:
        for _ in range(1000):
            pread(fd, BLOCK, offsets[k & mask])
            k += 1
    return k


def make_file(directory: str | None, size: int) -> str:
    fd, path = tempfile.mkstemp(prefix="winaio-bench-", dir=directory)
    chunk = os.urandom(1 << 20)
    with os.fdopen(fd, "wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return path


def warm(path: str) -> float:
    """Read the whole file (page cache), then return the resident fraction (mincore)."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
        size = os.fstat(f.fileno()).st_size
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as m:
            addr, _, keep = pin_readonly(m)
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = (ctypes.c_ubyte * pages)()
            libc = ctypes.CDLL(None, use_errno=True)
            ok = libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) == 0
            resident = sum(b & 1 for b in vec) / pages if ok else float("nan")
            del keep
    return resident


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=256, help="random-read file size (MiB)")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    ap.add_argument("--qd", type=int, default=32, help="reads in flight for io_uring")
    ap.add_argument("--dir", default=None, help="directory for the temporary file")
    args = ap.parse_args()

    probe = abi.probe()
    if not probe.available:
        print(json.dumps({"error": probe.reason}))
        sys.exit(1)

    rng = random.Random(20261122)
    nblocks = args.size_mib * (1 << 20) // BLOCK
    offsets = [rng.randrange(nblocks) * BLOCK for _ in range(1 << 16)]
    path = make_file(args.dir, args.size_mib << 20)
    results: dict[str, list[float]] = {k: [] for k in ("nop1", "nop32", "uring", "pread")}
    residency: list[float] = []
    bad_reads = 0
    try:
        fd = os.open(path, os.O_RDONLY)
        with abi.Ring(64) as nop_ring, abi.Ring(args.qd) as read_ring:
            for _ in range(args.rounds):
                results["nop1"].append(timed(lambda d: nop_batch1(nop_ring, d), args.duration))
                results["nop32"].append(timed(lambda d: nop_batch(nop_ring, d), args.duration))
                residency.append(warm(path))
                start = time.perf_counter()
                done, bad = uring_randread(read_ring, fd, offsets, args.qd, start + args.duration)
                results["uring"].append(done / (time.perf_counter() - start))
                bad_reads += bad
                residency.append(warm(path))
                results["pread"].append(
                    timed(lambda d: pread_randread(fd, offsets, d), args.duration)
                )
        os.close(fd)
    finally:
        os.unlink(path)

    med = {k: statistics.median(v) for k, v in results.items()}
    nop1_us, nop32_us = 1e6 / med["nop1"], 1e6 / med["nop32"]
    report = {
        "machine": {
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "features": f"{int(probe.features):#x}",
        },
        "config": {**vars(args), "block": BLOCK},
        "nop": {
            "batch1_us_per_op": round(nop1_us, 3),
            "batch32_us_per_op": round(nop32_us, 3),
            "batch1_ops_per_s": round(med["nop1"]),
            "batch32_ops_per_s": round(med["nop32"]),
        },
        "randread_4k": {
            f"uring_qd{args.qd}_iops": round(med["uring"]),
            "pread_iops": round(med["pread"]),
            "uring_bad_reads": bad_reads,
            "page_cache_residency_min": round(min(residency), 4),
        },
        "ratios": {
            f"uring_qd{args.qd}_vs_pread": round(med["uring"] / med["pread"], 3),
            "anchor_prototype_qd32_vs_pread": round(
                ANCHORS["buffered_qd32_iops"]["ctypes_prototype"] / ANCHORS["buffered_pread_iops"],
                3,
            ),
            "anchor_liburing_qd32_vs_pread": round(
                ANCHORS["buffered_qd32_iops"]["liburing"] / ANCHORS["buffered_pread_iops"], 3
            ),
            "nop_batch1_vs_prototype_anchor": round(
                nop1_us / ANCHORS["nop_batch1_us"]["ctypes_prototype"], 3
            ),
            "nop_batch32_vs_prototype_anchor": round(
                nop32_us / ANCHORS["nop_batch32_us_per_op"]["ctypes_prototype"], 3
            ),
            "nop_batch1_vs_liburing_anchor": round(
                nop1_us / ANCHORS["nop_batch1_us"]["liburing"], 3
            ),
        },
        "anchors": ANCHORS,
        "rounds": {k: [round(x) for x in v] for k, v in results.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
