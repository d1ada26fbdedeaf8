"""4 KiB random-read IOPS: winaio's overlapped file I/O next to its anchors, in one run.

Not a test and not run in CI: it prints one JSON document on stdout (progress goes to stderr).
See benchmarks/README.md for what every row means. The method is the one of
``shared/spec/perf-anchors.md`` section 0:

- one file (default 1 GiB of random data, created once in ``--path``, deleted at the end unless
  ``--keep``), 4 KiB reads at random 4 KiB-aligned offsets;
- two modes: ``buffered`` (page cache warm: the file is re-read with ``cat > /dev/null`` before
  every buffered run, because DAMON evicts cold pages on these VMs, and its residency is checked
  with mincore before and after the run) and ``direct`` (O_DIRECT / FILE_FLAG_NO_BUFFERING,
  4096-aligned mmap buffers);
- queue depths 1, 32 and 128 (reads kept in flight; every completion re-arms one read into the
  same per-slot buffer);
- **interleaved rounds**: every configuration runs once, then again (``--rounds``, >= 3), each
  run ``--duration`` seconds after an unmeasured ``--warmup``; the median is reported. The machine
  is a noisy 2-vCPU VM, so compare ratios between rows, not absolute values.

Rows (``--methods`` selects some of them):

- ``winaio.a.win32``: CreateFile(FILE_FLAG_OVERLAPPED [| FILE_FLAG_NO_BUFFERING]) + ReadFile +
  CreateIoCompletionPort + GetQueuedCompletionStatusEx(OVERLAPPED_ENTRY list), re-arming one
  ReadFile per dequeued entry; on the io_uring backend and on the thread backend.
- ``winaio.a.core``: the same through the Pythonic core: ``winaio.open_file`` +
  ``File.start_read`` + ``CompletionPort.get_many``.
- ``winaio.b.win32``: ReadFileEx + SleepEx(INFINITE, TRUE), re-arming from the completion routine.
- ``winaio.b.core``: ``File.start_read(routine=...)`` + ``winaio.sleep(None, alertable=True)``.
- anchors: ``pread`` (os.preadv loop, QD1), ``threadpool`` (ThreadPoolExecutor with as many
  threads as the thread backend's worker pool; a free-slot queue caps the reads in flight at QD
  and a done-callback releases the slot), ``caio`` (caio linux_uring asyncio context, QD
  coroutines; buffered only), ``liburing`` (the raw loop of perf-anchors section 1-2 on the
  ``liburing`` PyPI binding), ``fio`` (fio io_uring engine, defaults) and ``fio_tuned``
  (``iodepth_batch_submit=QD/4 --fixedbufs --registerfiles``).

A missing anchor (package or tool not installed, or failing here) becomes a row with
``"unavailable": "<reason>"``. ``--install`` installs them first: ``pip install caio==0.12.10
liburing==2026.3.30`` into the running interpreter's environment and ``apt-get install -y fio``.

Usage::

    .venv/bin/python benchmarks/bench_io.py [--install] [--path DIR] [--size-mib 1024]
        [--duration 2] [--warmup 0.3] [--rounds 3] [--qd 1,32,128] [--modes buffered,direct]
        [--methods winaio.a.win32,liburing,...] [--keep] [--file PATH] [--table] [--output F]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import mmap
import os
import platform
import queue
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import winaio
from winaio import testing, win32
from winaio._runtime import backend as _backend_instance

BLOCK = 4096
MODES = ("buffered", "direct")
WINAIO_BACKENDS = ("io_uring", "threads")
PIP_PINS = ("caio==0.12.10", "liburing==2026.3.30")
_OFFSET_TABLE = 1 << 20  # random offsets, drawn over the whole file, shared by every row
_CLOCK_EVERY = 64  # completion routines look at the clock once per this many completions

#: perf-anchors.md section 2 (same kind of VM, medians of 3 x 2 s) - context, not targets.
PUBLISHED_ANCHORS = {
    "buffered": {
        "pread_qd1": 631_000,
        "liburing_qd32": 592_000,
        "liburing_qd128": 620_000,
        "caio_qd32": 225_000,
        "caio_qd128": 233_000,
        "threadpool8_qd32": 44_000,
        "fio_io_uring_qd32": 393_000,
    },
    "direct": {
        "pread_qd1": 17_000,
        "liburing_qd128": 86_000,
        "threadpool8_qd128": 26_000,
        "fio_io_uring_qd128": 88_000,
        "fio_io_uring_tuned_qd128": 87_000,
    },
}


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


@dataclass
class Context:
    path: str
    size: int
    offsets: list[int]
    thread_workers: int
    cursor: int = 0

    def start(self) -> int:
        """A starting index into the offset table, different for every run."""
        self.cursor = (self.cursor + 7919 * 131) & (_OFFSET_TABLE - 1)
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


def _thread_pool_size() -> int:
    """The thread backend's FILE worker count, from its statistics (else its private list)."""
    stats = _backend_instance("threads").statistics()
    found = re.search(r"(\d+) file workers", stats.detail)
    if found:
        return int(found.group(1))
    return max(1, stats.threads - 1)


def _open_flags(mode: str) -> int:
    return os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECT if mode == "direct" else 0)


# ---------------------------------------------------------------------------------------------
# (a) overlapped reads + completion port, batched dequeue


class _SlotOVERLAPPED(win32.OVERLAPPED):
    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        super().__init__()
        self.slot = slot


class _SlotOverlapped(winaio.Overlapped):
    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        super().__init__()
        self.slot = slot


def _win32_open(ctx: Context, mode: str, backend: str) -> int:
    flags = win32.FILE_FLAG_OVERLAPPED
    if mode == "direct":
        flags |= win32.FILE_FLAG_NO_BUFFERING
    with testing.using_backend(backend):
        handle = win32.CreateFile(
            ctx.path,
            win32.GENERIC_READ,
            win32.FILE_SHARE_READ,
            None,
            win32.OPEN_EXISTING,
            flags,
            None,
        )
    if handle == win32.INVALID_HANDLE_VALUE:
        raise OSError(f"CreateFile failed: Win32 error {win32.GetLastError()}")
    return handle


def _core_open(ctx: Context, mode: str, backend: str) -> winaio.DiskFile:
    with testing.using_backend(backend):
        file, _ = winaio.open_file(
            ctx.path,
            read=True,
            write=False,
            disposition=win32.OPEN_EXISTING,
            overlapped=True,
            direct=mode == "direct",
        )
    return file


class Win32PortRunner(Runner):
    """(a) ReadFile + GetQueuedCompletionStatusEx, Win32 names and conventions."""

    def __init__(self, ctx: Context, mode: str, qd: int, backend: str) -> None:
        self.ctx, self.qd, self.backend = ctx, qd, backend
        self.handle = _win32_open(ctx, mode, backend)
        self.port = win32.CreateIoCompletionPort(self.handle, None, 1, 0)
        if not self.port:
            raise OSError(f"CreateIoCompletionPort failed: {win32.GetLastError()}")
        self.bufs = Buffers(qd)
        self.ovs = [_SlotOVERLAPPED(slot) for slot in range(qd)]
        self.entries = [win32.OVERLAPPED_ENTRY() for _ in range(qd)]

    def loop(self, seconds: float) -> tuple[int, int]:
        ReadFile = win32.ReadFile
        GetLastError = win32.GetLastError
        gqcs = win32.GetQueuedCompletionStatusEx
        pending = win32.ERROR_IO_PENDING
        handle, port, qd, entries = self.handle, self.port, self.qd, self.entries
        views, offsets = self.bufs.views, self.ctx.offsets
        mask = _OFFSET_TABLE - 1
        k = self.ctx.start()
        removed = win32.Ref(0)
        infinite = win32.INFINITE
        clock = time.perf_counter
        errors = 0
        for ov in self.ovs:
            ov.Offset = offsets[k & mask]
            k += 1
            if not ReadFile(handle, views[ov.slot], BLOCK, None, ov) and GetLastError() != pending:
                raise OSError(f"ReadFile failed: Win32 error {GetLastError()}")
        in_flight = qd
        done = 0
        rearm = True
        deadline = clock() + seconds
        while in_flight:
            if not gqcs(port, entries, qd, removed, infinite, False):
                raise OSError(f"GetQueuedCompletionStatusEx failed: {GetLastError()}")
            n = removed.value
            done += n
            for i in range(n):
                entry = entries[i]
                if entry.Internal or entry.dwNumberOfBytesTransferred != BLOCK:
                    errors += 1
                if rearm:
                    ov = entry.lpOverlapped
                    ov.Offset = offsets[k & mask]
                    k += 1
                    if (
                        not ReadFile(handle, views[ov.slot], BLOCK, None, ov)
                        and GetLastError() != pending
                    ):
                        raise OSError(f"ReadFile failed: Win32 error {GetLastError()}")
                else:
                    in_flight -= 1
            if rearm and clock() >= deadline:
                rearm = False
        return done, errors

    def close(self) -> None:
        win32.CloseHandle(self.handle)
        win32.CloseHandle(self.port)
        self.bufs.close()


class CorePortRunner(Runner):
    """(a) ``File.start_read`` + ``CompletionPort.get_many`` (the Pythonic core)."""

    def __init__(self, ctx: Context, mode: str, qd: int, backend: str) -> None:
        self.ctx, self.qd, self.backend = ctx, qd, backend
        self.file = _core_open(ctx, mode, backend)
        self.port = winaio.CompletionPort()
        self.file.associate(self.port, 1)
        self.bufs = Buffers(qd)
        self.ovs = [_SlotOverlapped(slot) for slot in range(qd)]

    def loop(self, seconds: float) -> tuple[int, int]:
        start_read = self.file.start_read
        get_many = self.port.get_many
        qd = self.qd
        views, offsets = self.bufs.views, self.ctx.offsets
        mask = _OFFSET_TABLE - 1
        k = self.ctx.start()
        clock = time.perf_counter
        errors = 0
        for ov in self.ovs:
            ov.offset = offsets[k & mask]
            k += 1
            start_read(views[ov.slot], ov)
        in_flight = qd
        done = 0
        rearm = True
        deadline = clock() + seconds
        while in_flight:
            _, packets = get_many(qd, None)
            done += len(packets)
            for packet in packets:
                if packet.status or packet.bytes_transferred != BLOCK:
                    errors += 1
                if rearm:
                    ov = packet.overlapped
                    ov.offset = offsets[k & mask]
                    k += 1
                    start_read(views[ov.slot], ov)
                else:
                    in_flight -= 1
            if rearm and clock() >= deadline:
                rearm = False
        return done, errors

    def close(self) -> None:
        self.file.close()
        self.port.close()
        self.bufs.close()


# ---------------------------------------------------------------------------------------------
# (b) completion routines + alertable wait


class Win32ApcRunner(Runner):
    """(b) ReadFileEx + SleepEx(INFINITE, TRUE), re-arming from the completion routine."""

    def __init__(self, ctx: Context, mode: str, qd: int, backend: str) -> None:
        self.ctx, self.qd, self.backend = ctx, qd, backend
        self.handle = _win32_open(ctx, mode, backend)
        self.bufs = Buffers(qd)
        self.ovs = [_SlotOVERLAPPED(slot) for slot in range(qd)]

    def loop(self, seconds: float) -> tuple[int, int]:
        ReadFileEx = win32.ReadFileEx
        SleepEx = win32.SleepEx
        handle = self.handle
        views, offsets = self.bufs.views, self.ctx.offsets
        mask = _OFFSET_TABLE - 1
        clock = time.perf_counter
        every = _CLOCK_EVERY - 1
        state = {"k": self.ctx.start(), "done": 0, "errors": 0, "in_flight": 0, "rearm": True}
        deadline = 0.0

        def routine(error: int, count: int, ov: Any) -> None:
            done = state["done"] = state["done"] + 1
            if error or count != BLOCK:
                state["errors"] += 1
            if state["rearm"] and not (done & every) and clock() >= deadline:
                state["rearm"] = False
            if state["rearm"]:
                k = state["k"]
                state["k"] = k + 1
                ov.Offset = offsets[k & mask]
                if not ReadFileEx(handle, views[ov.slot], BLOCK, ov, routine):
                    raise OSError(f"ReadFileEx failed: Win32 error {win32.GetLastError()}")
            else:
                state["in_flight"] -= 1

        deadline = clock() + seconds
        for ov in self.ovs:
            k = state["k"]
            state["k"] = k + 1
            ov.Offset = offsets[k & mask]
            if not ReadFileEx(handle, views[ov.slot], BLOCK, ov, routine):
                raise OSError(f"ReadFileEx failed: Win32 error {win32.GetLastError()}")
            state["in_flight"] += 1
        while state["in_flight"]:
            SleepEx(win32.INFINITE, True)
        return state["done"], state["errors"]

    def close(self) -> None:
        win32.CloseHandle(self.handle)
        self.bufs.close()


class CoreApcRunner(Runner):
    """(b) ``File.start_read(routine=...)`` + ``winaio.sleep(None, alertable=True)``."""

    def __init__(self, ctx: Context, mode: str, qd: int, backend: str) -> None:
        self.ctx, self.qd, self.backend = ctx, qd, backend
        self.file = _core_open(ctx, mode, backend)
        self.bufs = Buffers(qd)
        self.ovs = [_SlotOverlapped(slot) for slot in range(qd)]

    def loop(self, seconds: float) -> tuple[int, int]:
        start_read = self.file.start_read
        sleep = winaio.sleep
        views, offsets = self.bufs.views, self.ctx.offsets
        mask = _OFFSET_TABLE - 1
        clock = time.perf_counter
        every = _CLOCK_EVERY - 1
        state = {"k": self.ctx.start(), "done": 0, "errors": 0, "in_flight": 0, "rearm": True}
        deadline = 0.0

        def routine(error: int, count: int, ov: Any) -> None:
            done = state["done"] = state["done"] + 1
            if error or count != BLOCK:
                state["errors"] += 1
            if state["rearm"] and not (done & every) and clock() >= deadline:
                state["rearm"] = False
            if state["rearm"]:
                k = state["k"]
                state["k"] = k + 1
                ov.offset = offsets[k & mask]
                start_read(views[ov.slot], ov, routine=routine)
            else:
                state["in_flight"] -= 1

        deadline = clock() + seconds
        for ov in self.ovs:
            k = state["k"]
            state["k"] = k + 1
            ov.offset = offsets[k & mask]
            start_read(views[ov.slot], ov, routine=routine)
            state["in_flight"] += 1
        while state["in_flight"]:
            sleep(None, alertable=True)
        return state["done"], state["errors"]

    def close(self) -> None:
        self.file.close()
        self.bufs.close()


# ---------------------------------------------------------------------------------------------
# anchors


class PreadRunner(Runner):
    """A synchronous ``os.preadv`` loop into one aligned 4 KiB buffer (QD1 by definition)."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        self.ctx = ctx
        self.fd = os.open(ctx.path, _open_flags(mode))
        self.bufs = Buffers(1)

    def loop(self, seconds: float) -> tuple[int, int]:
        preadv, fd, bufs = os.preadv, self.fd, [self.bufs.views[0]]
        offsets, mask = self.ctx.offsets, _OFFSET_TABLE - 1
        k = k0 = self.ctx.start()
        errors = 0
        clock = time.perf_counter
        deadline = clock() + seconds
        while clock() < deadline:
            for _ in range(256):
                if preadv(fd, bufs, offsets[k & mask]) != BLOCK:
                    errors += 1
                k += 1
        return k - k0, errors

    def close(self) -> None:
        os.close(self.fd)
        self.bufs.close()


class ThreadPoolRunner(Runner):
    """ThreadPoolExecutor(N = the thread backend's workers) running ``os.preadv``; a queue of
    free slots caps the reads in flight at QD (a semaphore that also hands out the buffer),
    each future's done-callback gives its slot back."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, _open_flags(mode))
        self.bufs = Buffers(qd)
        self.pool = ThreadPoolExecutor(ctx.thread_workers, thread_name_prefix="bench-tpe")
        self.errors = 0

    def loop(self, seconds: float) -> tuple[int, int]:
        free: queue.SimpleQueue[int] = queue.SimpleQueue()
        put, get = free.put, free.get
        bad: list[int] = []

        def make_callback(slot: int) -> Callable[[Any], None]:
            def done(future: Any) -> None:
                if future.exception() is not None or future.result() != BLOCK:
                    bad.append(slot)
                put(slot)

            return done

        callbacks = [make_callback(slot) for slot in range(self.qd)]
        iovs = [[view] for view in self.bufs.views]
        for slot in range(self.qd):
            put(slot)
        submit, preadv, fd = self.pool.submit, os.preadv, self.fd
        offsets, mask = self.ctx.offsets, _OFFSET_TABLE - 1
        k = k0 = self.ctx.start()
        clock = time.perf_counter
        deadline = clock() + seconds
        while clock() < deadline:
            slot = get()
            submit(preadv, fd, iovs[slot], offsets[k & mask]).add_done_callback(callbacks[slot])
            k += 1
        for _ in range(self.qd):  # drain: every slot back
            get()
        return k - k0, len(bad)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        os.close(self.fd)
        self.bufs.close()


def _caio_unavailable(mode: str) -> str | None:
    try:
        import caio.linux_uring_asyncio  # noqa: F401
    except Exception as exc:
        return f"unavailable: caio not importable ({exc!r}); run with --install"
    return None


class CaioRunner(Runner):
    """caio ``linux_uring`` AsyncioContext: QD coroutines, each awaiting one read at a time."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        import asyncio

        from caio.linux_uring_asyncio import AsyncioContext

        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, _open_flags(mode))
        self.aio_loop = asyncio.new_event_loop()
        self.context = AsyncioContext(max_requests=max(qd, 1), loop=self.aio_loop)
        self.sqpoll = bool(getattr(self.context.context, "sqpoll", False))

    def measure(
        self, warmup: float, duration: float, mark: Callable[[], None] | None = None
    ) -> Measured:
        measured = super().measure(warmup, duration, mark)
        measured.extra["sqpoll"] = self.sqpoll
        return measured

    def loop(self, seconds: float) -> tuple[int, int]:
        import asyncio

        read, fd = self.context.read, self.fd
        offsets, mask = self.ctx.offsets, _OFFSET_TABLE - 1
        state = {"k": self.ctx.start(), "done": 0, "errors": 0}
        clock = time.perf_counter
        deadline = clock() + seconds

        async def worker() -> None:
            while clock() < deadline:
                k = state["k"]
                state["k"] = k + 1
                data = await read(BLOCK, fd, offsets[k & mask])
                state["done"] += 1
                if len(data) != BLOCK:
                    state["errors"] += 1

        async def main() -> None:
            await asyncio.gather(*(worker() for _ in range(self.qd)))

        self.aio_loop.run_until_complete(main())
        return state["done"], state["errors"]

    def close(self) -> None:
        self.context.close()
        self.aio_loop.close()
        os.close(self.fd)


def _caio_direct_error(ctx: Context) -> str:
    """caio on an O_DIRECT descriptor: try one read and report what happens."""
    import asyncio

    from caio.linux_uring_asyncio import AsyncioContext

    fd = os.open(ctx.path, _open_flags("direct"))
    aio_loop = asyncio.new_event_loop()
    try:
        context = AsyncioContext(max_requests=1, loop=aio_loop)
        try:
            data = aio_loop.run_until_complete(
                asyncio.wait_for(context.read(BLOCK, fd, 0), timeout=5)
            )
        except Exception as exc:
            return (
                f"unavailable: caio cannot do O_DIRECT (it reads into unaligned buffers): {exc!r}"
            )
        finally:
            context.close()
        return f"unexpected: an O_DIRECT read through caio returned {len(data)} bytes"
    finally:
        aio_loop.close()
        os.close(fd)


def _aligned_bytearray(size: int = BLOCK) -> bytearray:
    """A bytearray whose data starts on a ``size`` boundary (liburing takes only bytearrays):
    over-allocate, then drop the head (CPython just moves the start) and trim the tail."""
    raw = bytearray(2 * size - 1)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(raw))
    skip = (-addr) % size
    if skip:
        del raw[:skip]
    del raw[size:]
    if len(raw) != size or ctypes.addressof(ctypes.c_char.from_buffer(raw)) % size:
        raise RuntimeError("could not build an aligned bytearray")
    return raw


def _liburing_unavailable(mode: str) -> str | None:
    try:
        import liburing  # noqa: F401
    except Exception as exc:
        return f"unavailable: liburing not importable ({exc!r}); run with --install"
    return None


class LiburingRunner(Runner):
    """The perf-anchors raw loop on the ``liburing`` binding: ``submit_and_wait(1)``, reap
    every ready CQE (CqeIter), re-arm one read per CQE into the same per-slot buffer."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        import liburing

        self.L = liburing
        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, _open_flags(mode))
        self.ring = liburing.Ring()
        self.cqe = liburing.Cqe()
        liburing.io_uring_queue_init(max(8, qd), self.ring)
        self.bufs = [_aligned_bytearray() for _ in range(qd)]

    def loop(self, seconds: float) -> tuple[int, int]:
        L = self.L
        ring, cqe, fd, bufs = self.ring, self.cqe, self.fd, self.bufs
        get_sqe, prep_read = L.io_uring_get_sqe, L.io_uring_prep_read
        submit_and_wait, cq_advance = L.io_uring_submit_and_wait, L.io_uring_cq_advance
        iter_init, iter_next = L.io_uring_cqe_iter_init, L.io_uring_cqe_iter_next
        offsets, mask = self.ctx.offsets, _OFFSET_TABLE - 1
        k = self.ctx.start()
        clock = time.perf_counter
        for slot in range(self.qd):
            sqe = get_sqe(ring)
            prep_read(sqe, fd, bufs[slot], offsets[k & mask])
            sqe.user_data = slot
            k += 1
        in_flight = self.qd
        done = errors = 0
        rearm = True
        deadline = clock() + seconds
        while in_flight:
            submit_and_wait(ring, 1)
            it = iter_init(ring)
            seen = 0
            while iter_next(it, cqe):
                entry = cqe[0]
                seen += 1
                slot = entry.user_data
                try:
                    if entry.res != BLOCK:
                        errors += 1
                except OSError:
                    errors += 1
                if rearm:
                    sqe = get_sqe(ring)
                    prep_read(sqe, fd, bufs[slot], offsets[k & mask])
                    sqe.user_data = slot
                    k += 1
                else:
                    in_flight -= 1
            cq_advance(ring, seen)
            done += seen
            if rearm and clock() >= deadline:
                rearm = False
        return done, errors

    def close(self) -> None:
        self.L.io_uring_queue_exit(self.ring)
        os.close(self.fd)


def _fio_unavailable(mode: str) -> str | None:
    if shutil.which("fio") is None:
        return "unavailable: fio not installed (apt-get install -y fio, or run with --install)"
    return None


class FioRunner(Runner):
    """fio, io_uring engine, one job, randread 4k at ``iodepth=QD``; ``--invalidate=0`` so a
    buffered run keeps (and uses) the warm page cache (perf-anchors page-cache trap 2)."""

    def __init__(self, ctx: Context, mode: str, qd: int, tuned: bool) -> None:
        self.ctx, self.mode, self.qd, self.tuned = ctx, mode, qd, tuned

    def command(self, warmup: float, duration: float) -> list[str]:
        cmd = [
            "fio",
            "--name=bench_io",
            f"--filename={self.ctx.path}",
            "--readonly",
            "--rw=randread",
            "--bs=4k",
            f"--size={self.ctx.size}",
            "--ioengine=io_uring",
            f"--iodepth={self.qd}",
            f"--direct={1 if self.mode == 'direct' else 0}",
            "--invalidate=0",
            "--norandommap",
            "--randrepeat=0",
            "--time_based",
            f"--runtime={max(1, round(duration * 1000))}ms",
            "--output-format=json",
        ]
        if warmup > 0:
            cmd.append(f"--ramp_time={max(1, round(warmup * 1000))}ms")
        if self.tuned:
            cmd += [
                f"--iodepth_batch_submit={max(1, self.qd // 4)}",
                "--fixedbufs",
                "--registerfiles",
            ]
        return cmd

    def measure(
        self, warmup: float, duration: float, mark: Callable[[], None] | None = None
    ) -> Measured:
        cmd = self.command(warmup, duration)
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + warmup + 60, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"fio exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        text = proc.stdout[proc.stdout.find("{") :]
        job = json.loads(text)["jobs"][0]
        read = job["read"]
        seconds = read["runtime"] / 1000.0
        return Measured(
            float(read["iops"]),
            int(read["total_ios"]),
            seconds,
            int(job.get("error", 0)),
            {
                "usr_cpu_pct": round(job.get("usr_cpu", 0.0), 1),
                "sys_cpu_pct": round(job.get("sys_cpu", 0.0), 1),
                "clat_mean_us": round(read.get("clat_ns", {}).get("mean", 0.0) / 1000, 2),
            },
        )


# ---------------------------------------------------------------------------------------------
# the method table


@dataclass(frozen=True)
class Method:
    name: str
    describe: str
    backends: tuple[str | None, ...]
    make: Callable[[Context, str, int, str | None], Runner]
    #: "n/a: why" for a (mode, qd) the method does not cover, else None
    covers: Callable[[str, int], str | None] = lambda mode, qd: None
    #: "unavailable: why" when the tool is missing here, else None
    unavailable: Callable[[str], str | None] = lambda mode: None


def _winaio(cls: type[Runner]) -> Callable[[Context, str, int, str | None], Runner]:
    def make(ctx: Context, mode: str, qd: int, backend: str | None) -> Runner:
        assert backend is not None
        return cls(ctx, mode, qd, backend)  # type: ignore[call-arg]

    return make


def _anchor(cls: type[Runner]) -> Callable[[Context, str, int, str | None], Runner]:
    def make(ctx: Context, mode: str, qd: int, backend: str | None) -> Runner:
        return cls(ctx, mode, qd)  # type: ignore[call-arg]

    return make


def _fio(tuned: bool) -> Callable[[Context, str, int, str | None], Runner]:
    def make(ctx: Context, mode: str, qd: int, backend: str | None) -> Runner:
        return FioRunner(ctx, mode, qd, tuned)

    return make


METHODS = [
    Method(
        "winaio.a.win32",
        "(a) ReadFile on an overlapped handle + GetQueuedCompletionStatusEx, re-arm per entry",
        WINAIO_BACKENDS,
        _winaio(Win32PortRunner),
    ),
    Method(
        "winaio.a.core",
        "(a) File.start_read + CompletionPort.get_many (Pythonic core), re-arm per packet",
        WINAIO_BACKENDS,
        _winaio(CorePortRunner),
    ),
    Method(
        "winaio.b.win32",
        "(b) ReadFileEx + SleepEx(INFINITE, TRUE), re-arm from the completion routine",
        WINAIO_BACKENDS,
        _winaio(Win32ApcRunner),
    ),
    Method(
        "winaio.b.core",
        "(b) File.start_read(routine=) + winaio.sleep(None, alertable=True), re-arm in routine",
        WINAIO_BACKENDS,
        _winaio(CoreApcRunner),
    ),
    Method(
        "pread",
        "os.preadv loop, one thread, one aligned buffer (synchronous)",
        (None,),
        _anchor(PreadRunner),
        covers=lambda mode, qd: None if qd == 1 else "n/a: synchronous, QD1 only",
    ),
    Method(
        "threadpool",
        "ThreadPoolExecutor(N = thread backend workers) of os.preadv, QD capped by free slots",
        (None,),
        _anchor(ThreadPoolRunner),
    ),
    Method(
        "caio",
        "caio 0.12.10 linux_uring AsyncioContext, QD coroutines awaiting ctx.read",
        (None,),
        _anchor(CaioRunner),
        unavailable=_caio_unavailable,
    ),
    Method(
        "liburing",
        "liburing 2026.3.30 raw loop: submit_and_wait(1), reap all CQEs, re-arm one per CQE",
        (None,),
        _anchor(LiburingRunner),
        unavailable=_liburing_unavailable,
    ),
    Method(
        "fio",
        "fio io_uring engine, defaults (1 SQE per enter), --invalidate=0",
        (None,),
        _fio(False),
        unavailable=_fio_unavailable,
    ),
    Method(
        "fio_tuned",
        "fio io_uring, iodepth_batch_submit=QD/4 --fixedbufs --registerfiles",
        (None,),
        _fio(True),
        covers=lambda mode, qd: None if qd >= 4 else "n/a: batching needs QD >= 4",
        unavailable=_fio_unavailable,
    ),
]


# ---------------------------------------------------------------------------------------------
# running


@dataclass
class Row:
    method: str
    backend: str | None
    mode: str
    qd: int
    describe: str
    status: str | None = None  # "n/a: ..." / "unavailable: ..." / None when measured
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        name = self.method if self.backend is None else f"{self.method}/{self.backend}"
        return f"{name} {self.mode} qd{self.qd}"

    def iops(self) -> list[float]:
        return [r["iops"] for r in self.rounds if "iops" in r]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "backend": self.backend,
            "mode": self.mode,
            "qd": self.qd,
            "what": self.describe,
        }
        if self.status:
            out["unavailable" if self.status.startswith("unavailable") else "status"] = self.status
            return out
        values = self.iops()
        if not values:
            out["unavailable"] = "unavailable: every round failed: " + "; ".join(
                str(r.get("error")) for r in self.rounds
            )
            out["rounds"] = self.rounds
            return out
        med = statistics.median(values)
        out["iops_median"] = round(med)
        out["us_per_op"] = round(1e6 / med, 2) if med else None
        out["spread_pct"] = round(100 * (max(values) - min(values)) / med, 1) if med else None
        out["iops_rounds"] = [round(v) for v in values]
        errors = sum(r.get("errors", 0) for r in self.rounds)
        out["errors"] = errors
        shares = [r["backend_share"] for r in self.rounds if "backend_share" in r]
        if shares:
            out["backend_share"] = round(statistics.median(shares), 4)
        res = [r["resident_before"] for r in self.rounds if "resident_before" in r]
        if res:
            out["page_cache_resident_min"] = round(min(res), 4)
            after = [r["resident_after"] for r in self.rounds if "resident_after" in r]
            out["page_cache_resident_after_min"] = round(min(after), 4) if after else None
        others = [r["other_cpu_pct"] for r in self.rounds if "other_cpu_pct" in r]
        if others:
            out["other_cpu_pct_max"] = max(others)
        extra = [r["extra"] for r in self.rounds if r.get("extra")]
        if extra:
            out["extra_last_round"] = extra[-1]
        failed = [r["error"] for r in self.rounds if "error" in r]
        if failed:
            out["failed_rounds"] = failed
        return out


def _backend_submitted(name: str | None) -> int | None:
    if name is None:
        return None
    return _backend_instance(name).statistics().submitted


def run_one(ctx: Context, method: Method, row: Row, args: argparse.Namespace) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if row.mode == "buffered":
        resident = warm(ctx.path)
        if resident < 0.99:
            resident = warm(ctx.path)
        record["resident_before"] = round(resident, 4)
    runner: Runner | None = None
    try:
        runner = method.make(ctx, row.mode, row.qd, row.backend)
        marks: dict[str, Any] = {}

        def mark() -> None:
            marks["cpu"] = CpuSample.now()
            marks["submitted"] = _backend_submitted(row.backend)

        started = CpuSample.now()
        measured = runner.measure(args.warmup, args.duration, mark)
        submitted1 = _backend_submitted(row.backend)
        end = CpuSample.now()
        before: CpuSample = marks.get("cpu") or started
        submitted0 = marks.get("submitted")
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        return record
    finally:
        if runner is not None:
            try:
                runner.close()
            except Exception as exc:
                record["close_error"] = f"{type(exc).__name__}: {exc}"
    record["iops"] = measured.iops
    record["ops"] = measured.ops
    record["seconds"] = round(measured.seconds, 3)
    record["errors"] = measured.errors
    if measured.extra:
        record["extra"] = measured.extra
    record["other_cpu_pct"], record["steal_pct"] = before.other_cpu_pct(end)
    if submitted0 is not None and submitted1 is not None and measured.ops:
        # Requests the backend had to finish, per read in the *measured* phase; the rest
        # completed inside ReadFile (RWF_NOWAIT page-cache hit: Windows' fast I/O path).
        record["backend_share"] = round((submitted1 - submitted0) / measured.ops, 4)
    if row.mode == "buffered":
        record["resident_after"] = round(resident_fraction(ctx.path), 4)
    return record


def build_rows(args: argparse.Namespace) -> list[tuple[Method, Row]]:
    wanted = set(args.methods.split(",")) if args.methods else None
    known = {m.name for m in METHODS}
    if wanted and wanted - known:
        raise SystemExit(f"unknown methods {sorted(wanted - known)}; choose from {sorted(known)}")
    backends = set(args.backends.split(","))
    rows = []
    for mode in args.modes:
        for qd in args.qds:
            for method in METHODS:
                if wanted and method.name not in wanted:
                    continue
                for backend in method.backends:
                    if backend is not None and backend not in backends:
                        continue
                    row = Row(method.name, backend, mode, qd, method.describe)
                    row.status = method.covers(mode, qd) or method.unavailable(mode)
                    rows.append((method, row))
    return rows


def mark_unavailable(ctx: Context, rows: list[tuple[Method, Row]]) -> None:
    """Rows that cannot run here get their reason before the rounds start."""
    available = testing.available_backends()
    caio_direct: str | None = None
    for method, row in rows:
        if row.status:
            continue
        if row.backend is not None and row.backend not in available:
            row.status = f"unavailable: backend {row.backend} not usable here"
        elif method.name == "caio" and row.mode == "direct":
            if caio_direct is None:
                caio_direct = _caio_direct_error(ctx)
            row.status = caio_direct if caio_direct.startswith("unavailable") else None


# ---------------------------------------------------------------------------------------------
# targets and report


TARGETS = [
    # (description, mode, qd, numerator method, denominator method, target)
    ("buffered QD32: winaio (a) >= 0.5x raw liburing loop", "buffered", 32, "liburing", 0.5),
    ("buffered QD32: winaio (a) >= 1.5x caio", "buffered", 32, "caio", 1.5),
    ("O_DIRECT QD128: winaio (a) >= 0.9x fio io_uring", "direct", 128, "fio", 0.9),
]


def _median(row: Row | None) -> float | None:
    if row is None or row.status:
        return None
    values = row.iops()
    return statistics.median(values) if values else None


def _ratio_entry(
    what: str, num: Row | None, den: Row | None, target: float | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"target": what}
    entry["numerator"] = num.key if num else None
    entry["denominator"] = den.key if den else None
    a, b = _median(num), _median(den)
    if a is None or b is None or not b:
        entry["ratio"] = None
        missing = [r.key for r in (num, den) if r is not None and _median(r) is None]
        entry["met"] = None
        entry["why_no_ratio"] = f"not measured: {missing or 'row not selected'}"
        return entry
    entry["ratio"] = round(a / b, 3)
    assert num is not None and den is not None
    per_round = [x / y for x, y in zip(num.iops(), den.iops(), strict=False) if y]
    if per_round:
        entry["ratio_median_of_rounds"] = round(statistics.median(per_round), 3)
    if target is not None:
        entry["threshold"] = target
        entry["met"] = a / b >= target
    return entry


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    index = {(r.method, r.backend, r.mode, r.qd): r for r in rows}
    out = []
    for api in ("win32", "core"):
        for what, mode, qd, anchor, threshold in TARGETS:
            num = index.get((f"winaio.a.{api}", "io_uring", mode, qd))
            den = index.get((anchor, None, mode, qd))
            label = what.replace("winaio (a)", f"winaio.a.{api}/io_uring")
            out.append(_ratio_entry(label, num, den, threshold))
        for mode in MODES:
            for qd in (1, 32, 128):
                num = index.get((f"winaio.a.{api}", "threads", mode, qd))
                den = index.get(("threadpool", None, mode, qd))
                if num is None and den is None:
                    continue
                label = (
                    f"{mode} QD{qd}: winaio.a.{api}/threads >= 0.8x ThreadPoolExecutor"
                    " of the same size"
                )
                out.append(_ratio_entry(label, num, den, 0.8))
    return out


def info_ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Other useful comparisons (no target): (b) against the same anchors, backends against
    each other, winaio buffered against pread."""
    index = {(r.method, r.backend, r.mode, r.qd): r for r in rows}
    out = []
    for api in ("win32", "core"):
        for what, mode, qd, anchor, _ in TARGETS:
            num = index.get((f"winaio.b.{api}", "io_uring", mode, qd))
            den = index.get((anchor, None, mode, qd))
            label = what.replace("winaio (a)", f"winaio.b.{api}/io_uring").split(">=")[0]
            out.append(_ratio_entry(f"{label.strip()} vs {anchor}", num, den, None))
    for mode in MODES:
        for qd in (1, 32, 128):
            for flavour in ("a", "b"):
                num = index.get((f"winaio.{flavour}.win32", "io_uring", mode, qd))
                den = index.get((f"winaio.{flavour}.win32", "threads", mode, qd))
                if num and den:
                    label = f"{mode} QD{qd}: winaio.{flavour}.win32 io_uring vs threads"
                    out.append(_ratio_entry(label, num, den, None))
                num = index.get((f"winaio.{flavour}.win32", "io_uring", mode, qd))
                den = index.get((f"winaio.{flavour}.core", "io_uring", mode, qd))
                if num and den:
                    label = f"{mode} QD{qd}: winaio.{flavour} win32 alias layer vs core"
                    out.append(_ratio_entry(label, num, den, None))
            num = index.get(("winaio.a.win32", "io_uring", mode, qd))
            den = index.get(("pread", None, mode, 1))
            if num and den:
                out.append(
                    _ratio_entry(
                        f"{mode} QD{qd}: winaio.a.win32/io_uring vs pread QD1", num, den, None
                    )
                )
    return out


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| row | mode | QD | IOPS (median) | us/op | spread | backend share | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary()
        name = row.method if row.backend is None else f"{row.method}/{row.backend}"
        if "iops_median" not in s:
            note = s.get("unavailable") or s.get("status") or ""
            lines.append(f"| {name} | {row.mode} | {row.qd} | - | - | - | - | {note} |")
            continue
        share = s.get("backend_share")
        note = f"errors {s['errors']}" if s.get("errors") else ""
        if "page_cache_resident_min" in s:
            note = (note + f" resident>={s['page_cache_resident_min']:.3f}").strip()
        lines.append(
            f"| {name} | {row.mode} | {row.qd} | {s['iops_median']:,} | {s['us_per_op']} |"
            f" {s['spread_pct']}% | {'' if share is None else share} | {note} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# installing the anchors


def install() -> dict[str, str]:
    """--install: the anchors' packages into this interpreter's environment, fio via apt."""
    done: dict[str, str] = {}
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, *PIP_PINS], capture_output=True, text=True, check=False)
    done["pip"] = "ok" if proc.returncode == 0 else f"failed: {proc.stderr.strip()[-300:]}"
    if shutil.which("fio"):
        done["fio"] = "already installed"
    elif shutil.which("apt-get") is None:
        done["fio"] = "failed: no apt-get here"
    else:
        cmd = ["apt-get", "install", "-y", "-q", "fio"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:  # the package lists may be missing or stale
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        done["fio"] = "ok" if proc.returncode == 0 else f"failed: {proc.stderr.strip()[-300:]}"
    log(f"install: {done}")
    return done


# ---------------------------------------------------------------------------------------------


def source_state() -> dict[str, Any]:
    """Which winaio was measured: the git commit of its checkout and any uncommitted src files
    (benchmarks are often run on a work tree that others are editing)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(winaio.__file__))))
    state: dict[str, Any] = {"package": os.path.dirname(os.path.abspath(winaio.__file__))}
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return state
    state["commit"] = head
    state["uncommitted_src"] = [line[3:] for line in dirty if line.strip()]
    return state


def loaded_digest() -> str:
    """A digest of the winaio modules this process imported (what was really measured)."""
    digest = hashlib.sha256()
    for name in sorted(sys.modules):
        if name == "winaio" or name.startswith("winaio."):
            path = getattr(sys.modules[name], "__file__", None)
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--path", default=tempfile.gettempdir(), help="directory for the file")
    ap.add_argument("--file", default=None, help="use this existing file instead (never deleted)")
    ap.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024)")
    ap.add_argument("--duration", type=float, default=2.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.3, help="unmeasured seconds before each")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median; >= 3)")
    ap.add_argument("--qd", default="1,32,128", help="queue depths, comma separated")
    ap.add_argument("--modes", default="buffered,direct", help="buffered and/or direct")
    ap.add_argument("--methods", default="", help="comma-separated subset of the rows")
    ap.add_argument("--backends", default="io_uring,threads", help="winaio backends to measure")
    ap.add_argument("--install", action="store_true", help="pip/apt-install the anchors first")
    ap.add_argument("--keep", action="store_true", help="keep the created file")
    ap.add_argument("--table", action="store_true", help="also print a markdown table (stderr)")
    ap.add_argument("--output", default=None, help="also write the JSON to this file")
    ap.add_argument("--seed", type=int, default=20261124, help="random offsets seed")
    args = ap.parse_args(argv)
    args.qds = [int(x) for x in args.qd.split(",") if x]
    args.modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in args.modes):
        ap.error(f"--modes: choose from {MODES}")
    if args.rounds < 1 or any(q < 1 for q in args.qds):
        ap.error("--rounds and --qd must be >= 1")
    if args.rounds < 3:
        log("warning: fewer than 3 rounds; medians of < 3 runs are not meaningful here")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    installed = install() if args.install else None
    source_at_start = {**source_state(), "loaded_modules_sha256": loaded_digest()}

    created = args.file is None
    if created:
        log(f"creating a {args.size_mib} MiB random file in {args.path} ...")
        path = make_file(args.path, args.size_mib << 20)
    else:
        path = os.path.abspath(args.file)
    size = os.path.getsize(path)
    nblocks = size // BLOCK
    rng = random.Random(args.seed)
    offsets = [rng.randrange(nblocks) * BLOCK for _ in range(_OFFSET_TABLE)]

    # Create both backends before anything is measured (threads, rings, probes).
    for name in WINAIO_BACKENDS:
        if name in testing.available_backends():
            _backend_instance(name)
    ctx = Context(path, size, offsets, _thread_pool_size())
    pairs = build_rows(args)
    mark_unavailable(ctx, pairs)
    runnable = [(m, r) for m, r in pairs if not r.status]
    log(f"{len(runnable)} configurations x {args.rounds} rounds of {args.duration}s")

    round_noise = []
    started = time.monotonic()
    try:
        for rnd in range(args.rounds):
            load_before = os.getloadavg()
            cpu0 = CpuSample.now()
            # Rotate the start so that no configuration always runs first (or after fio).
            shift = (rnd * len(runnable)) // max(1, args.rounds)
            order = runnable[shift:] + runnable[:shift]
            for method, row in order:
                record = run_one(ctx, method, row, args)
                record["round"] = rnd
                row.rounds.append(record)
                shown = f"{record['iops']:,.0f} IOPS" if "iops" in record else record["error"]
                log(f"round {rnd + 1}/{args.rounds} {row.key}: {shown}")
            other, steal = cpu0.other_cpu_pct(CpuSample.now())
            round_noise.append(
                {
                    "round": rnd,
                    "loadavg_1m_before": round(load_before[0], 2),
                    "other_cpu_pct": other,
                    "steal_pct": steal,
                }
            )
    finally:
        if created and not args.keep:
            os.unlink(path)
        elif created:
            log(f"kept {path}")

    source_at_end = {**source_state(), "loaded_modules_sha256": loaded_digest()}
    source_changed = {k: v for k, v in source_at_end.items() if k != "loaded_modules_sha256"} != {
        k: v for k, v in source_at_start.items() if k != "loaded_modules_sha256"
    }
    if source_changed:
        log("warning: the winaio checkout changed during the run (see machine.source_*)")
    rows = [row for _, row in pairs]
    summaries = [row.summary() for row in rows]
    spreads = [s["spread_pct"] for s in summaries if s.get("spread_pct") is not None]
    stats = {name: _backend_instance(name).statistics() for name in WINAIO_BACKENDS}
    report = {
        "benchmark": "bench_io: 4 KiB random reads, winaio vs anchors",
        "machine": {
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "winaio": winaio.__version__,
            "default_backend": testing.available_backends()[0],
            "source_at_start": source_at_start,
            "source_at_end": source_at_end,
            "source_changed_during_run": source_changed,
        },
        "config": {
            "file": path if not created or args.keep else "(temporary, deleted)",
            "file_bytes": size,
            "block": BLOCK,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "qd": args.qds,
            "modes": args.modes,
            "thread_backend_workers": ctx.thread_workers,
            "threadpool_workers": ctx.thread_workers,
            "total_wall_s": round(time.monotonic() - started, 1),
        },
        "installed": installed,
        "noise": {
            "rounds": round_noise,
            "median_row_spread_pct": round(statistics.median(spreads), 1) if spreads else None,
            "max_row_spread_pct": max(spreads) if spreads else None,
            "note": "spread = (max - min) / median over the rounds of one row; other_cpu_pct ="
            " machine-wide CPU not used by this process or fio (other tenants, interrupts)",
        },
        "rows": summaries,
        "targets": targets(rows),
        "info_ratios": info_ratios(rows),
        "backend_statistics": {
            name: {"detail": s.detail, "submitted": s.submitted, "completed": s.completed}
            for name, s in stats.items()
        },
        "published_anchors_perf_anchors_md": PUBLISHED_ANCHORS,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    if args.table:
        log(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
