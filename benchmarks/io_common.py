"""Pieces shared by bench_io.py and its rows: the test file, the page cache, the machine's CPU
use, the offset table, aligned buffers and the Runner protocol.

Imports nothing from winaio: the third-party anchors run in child processes that load this
module and their own package only (``io_anchors.child_main``).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import mmap
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BLOCK = 4096
MODES = ("buffered", "direct")
OFFSET_TABLE = 1 << 20  # random offsets, drawn over the whole file, shared by every row
CLOCK_EVERY = 64  # completion routines look at the clock once per this many completions


# ---------------------------------------------------------------------------------------------
# the file, the page cache, the machine


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def make_file(directory: str, size: int) -> str:
    """A file of ``size`` random bytes (written once; 4 MiB of fresh random data per chunk)."""
    fd, path = tempfile.mkstemp(prefix="winaio-bench-io-", suffix=".dat", dir=directory)
    chunk = 4 << 20
    try:
        with os.fdopen(fd, "wb") as f:
            left = size
            while left:
                n = min(chunk, left)
                f.write(os.urandom(n))
                left -= n
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(path)
        raise
    return path


def resident_fraction(path: str) -> float:
    """The fraction of the file's pages in the page cache (mincore, as ``fincore`` does).

    The file is mapped copy-on-write (never written): ctypes can then take its address, and
    mincore on a file mapping reports the page cache of the file.
    """
    size = os.path.getsize(path)
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vec = (ctypes.c_ubyte * pages)()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as m:
        first = ctypes.c_char.from_buffer(m)
        ok = libc.mincore(ctypes.addressof(first), size, vec) == 0
        del first  # release the export before the mmap closes
    if not ok:
        return float("nan")
    return sum(b & 1 for b in bytes(vec)) / pages


def warm(path: str) -> float:
    """perf-anchors page-cache trap 1: re-read the whole file, return its resident fraction."""
    if shutil.which("cat"):
        with open(path, "rb") as src:
            subprocess.run(["cat"], stdin=src, stdout=subprocess.DEVNULL, check=True)
    else:
        with open(path, "rb", buffering=0) as f:
            buf = bytearray(1 << 20)
            while f.readinto(buf):
                pass
    return resident_fraction(path)


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat; steal counts as busy."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return total - idle, total


def _steal_jiffies() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) if len(fields) > 8 else 0


def _own_cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class CpuSample:
    """Machine-wide CPU use around a run, minus this process (and fio): the other tenants."""

    busy: int
    total: int
    steal: int
    own: float
    wall: float

    @classmethod
    def now(cls) -> CpuSample:
        busy, total = _cpu_jiffies()
        return cls(busy, total, _steal_jiffies(), _own_cpu_seconds(), time.monotonic())

    def other_cpu_pct(self, end: CpuSample) -> tuple[float, float]:
        """(% of all CPUs used by others, % stolen by the hypervisor) between self and end."""
        hz = os.sysconf("SC_CLK_TCK")
        ncpu = os.cpu_count() or 1
        wall = max(end.wall - self.wall, 1e-9)
        busy_s = (end.busy - self.busy) / hz
        other = max(0.0, busy_s - (end.own - self.own)) / (wall * ncpu)
        steal = (end.steal - self.steal) / hz / (wall * ncpu)
        return round(100 * other, 1), round(100 * steal, 1)


# ---------------------------------------------------------------------------------------------
# shared pieces of the Python loops


def make_offsets(size: int, seed: int) -> list[int]:
    """The table of random 4 KiB-aligned offsets every row reads (same seed, same table)."""
    rng = random.Random(seed)
    nblocks = size // BLOCK
    return [rng.randrange(nblocks) * BLOCK for _ in range(OFFSET_TABLE)]


def save_offsets(offsets: list[int], path: str) -> None:
    """Write the table for child processes (8-byte native integers)."""
    with open(path, "wb") as f:
        array.array("q", offsets).tofile(f)


def load_offsets(path: str) -> list[int]:
    table = array.array("q")
    with open(path, "rb") as f:
        table.fromfile(f, os.fstat(f.fileno()).st_size // table.itemsize)
    return table.tolist()


@dataclass
class Context:
    path: str
    size: int
    offsets: list[int]
    thread_workers: int
    cursor: int = 0
    #: The offset table on disk, for rows measured in a child process.
    offsets_file: str = ""

    def start(self) -> int:
        """A starting index into the offset table, different for every run."""
        self.cursor = (self.cursor + 7919 * 131) & (OFFSET_TABLE - 1)
        return self.cursor


class Buffers:
    """``qd`` page-aligned 4 KiB buffers in one anonymous mmap (O_DIRECT-ready)."""

    def __init__(self, qd: int) -> None:
        self.mem = mmap.mmap(-1, qd * BLOCK)
        whole = memoryview(self.mem)
        self.views = [whole[i * BLOCK : (i + 1) * BLOCK] for i in range(qd)]
        whole.release()

    def close(self) -> None:
        for v in self.views:
            v.release()
        self.views = []
        with contextlib.suppress(BufferError):  # a backend may still hold an export: GC it
            self.mem.close()


@dataclass
class Measured:
    iops: float
    ops: int
    seconds: float
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Runner:
    """One configured method: ``loop(seconds)`` keeps QD reads in flight for that long, then
    drains what is in flight; returns (completed reads, failed or short reads)."""

    backend: str | None = None

    def loop(self, seconds: float) -> tuple[int, int]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def measure(
        self, warmup: float, duration: float, mark: Callable[[], None] | None = None
    ) -> Measured:
        """Warm up (not measured), call ``mark`` (counters snapshot), then measure."""
        if warmup > 0:
            self.loop(warmup)
        if mark is not None:
            mark()
        start = time.perf_counter()
        ops, errors = self.loop(duration)
        seconds = time.perf_counter() - start
        return Measured(ops / seconds, ops, seconds, errors)


def open_flags(mode: str) -> int:
    return os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECT if mode == "direct" else 0)
