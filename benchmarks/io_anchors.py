"""bench_io.py's anchors: what winaio is measured against, and how each one is run.

In this process (stdlib or our own code, nothing that can take the run down):

- ``pread``: ``os.preadv`` in a loop, one thread, one buffer (QD1 by definition);
- ``threadpool``: ``ThreadPoolExecutor`` with as many threads as winaio's thread backend;
- ``raw_uring``: the pure-Python ctypes io_uring loop of ``raw_uring.py`` (the Python ceiling);
- ``fio`` / ``fio_tuned``: fio's io_uring engine (its own process by nature).

Third-party Python anchors (``io_thirdparty.py``) run **each in a child process**
(:class:`ChildRunner`), because a binary wheel can kill the interpreter that loads it: the
``liburing`` wheel dies with SIGILL on CPUs without the instructions it was built for. A child
killed by a signal makes its row ``unavailable: crashed with SIGILL (signal 4)`` and the run goes
on; a package that is not installed makes it ``unavailable: not installed (...)``:

- ``caio``: caio linux_uring AsyncioContext, QD coroutines awaiting ``ctx.read`` (buffered);
- ``aiofile``: aiofile's ``AIOFile.read(size, offset)``, QD coroutines (buffered: it opens with
  a mode string, so O_DIRECT is out of its reach);
- ``liburing``: the perf-anchors raw loop on the ``liburing`` binding;
- ``uring-api``: the same loop on ``uring_api.Ring`` (``prepare_read`` + ``wait``).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import io_thirdparty
import raw_uring
from bench_procs import signal_name as _signal_name
from io_common import (
    BLOCK,
    OFFSET_TABLE,
    Buffers,
    Context,
    Measured,
    Runner,
    open_flags,
)

#: Benchmark-only anchors, pinned (never in pyproject.toml's runtime requirements).
PIP_PINS = ("caio==0.12.10", "liburing==2026.3.30", "uring-api==0.1.0rc5", "aiofile==3.12.3")
HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------------
# in-process anchors


class PreadRunner(Runner):
    """A synchronous ``os.preadv`` loop into one aligned 4 KiB buffer (QD1 by definition)."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        self.ctx = ctx
        self.fd = os.open(ctx.path, open_flags(mode))
        self.bufs = Buffers(1)

    def loop(self, seconds: float) -> tuple[int, int]:
        preadv, fd, bufs = os.preadv, self.fd, [self.bufs.views[0]]
        offsets, mask = self.ctx.offsets, OFFSET_TABLE - 1
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


class PreadvNowaitRunner(Runner):
    """``os.preadv(..., RWF_NOWAIT)`` in a loop over QD per-slot buffers, one thread: the
    per-read syscall of winaio's cached-read fast path (``DiskFile.read_now``) and nothing else.
    A read the page cache cannot serve (EAGAIN) is redone blocking and counted in ``extra``."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, open_flags(mode))
        self.bufs = Buffers(qd)
        self.would_block = 0

    def loop(self, seconds: float) -> tuple[int, int]:
        preadv, fd, flags = os.preadv, self.fd, os.RWF_NOWAIT
        slots = [[view] for view in self.bufs.views]
        offsets, mask = self.ctx.offsets, OFFSET_TABLE - 1
        k = k0 = self.ctx.start()
        errors = 0
        clock = time.perf_counter
        deadline = clock() + seconds
        while clock() < deadline:
            for _ in range(8):
                for slot in slots:
                    try:
                        n = preadv(fd, slot, offsets[k & mask], flags)
                    except BlockingIOError:
                        self.would_block += 1
                        n = preadv(fd, slot, offsets[k & mask])
                    if n != BLOCK:
                        errors += 1
                    k += 1
        return k - k0, errors

    def measure(
        self, warmup: float, duration: float, mark: Callable[[], None] | None = None
    ) -> Measured:
        self.would_block = 0
        measured = super().measure(warmup, duration, mark)
        measured.extra["would_block"] = self.would_block
        return measured

    def close(self) -> None:
        os.close(self.fd)
        self.bufs.close()


class ThreadPoolRunner(Runner):
    """ThreadPoolExecutor(N = the thread backend's workers) running ``os.preadv``; a queue of
    free slots caps the reads in flight at QD (a semaphore that also hands out the buffer),
    each future's done-callback gives its slot back."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, open_flags(mode))
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
        offsets, mask = self.ctx.offsets, OFFSET_TABLE - 1
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


class RawUringRunner(Runner):
    """The pure-Python ctypes io_uring loop (``raw_uring.read_loop``): the Python ceiling."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, open_flags(mode))
        self.ring = raw_uring.RawRing(max(8, qd))
        self.bufs = raw_uring.AlignedBuffers(qd)

    def loop(self, seconds: float) -> tuple[int, int]:
        return raw_uring.read_loop(
            self.ring, self.fd, self.bufs.addresses, self.ctx.offsets, self.ctx.start(), seconds
        )

    def close(self) -> None:
        self.ring.close()
        self.bufs.close()
        os.close(self.fd)


def fio_unavailable(mode: str) -> str | None:
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


class AnchorUnavailable(Exception):
    """The anchor cannot run here (package missing, crashed at import, refused the mode)."""


class AnchorCrashed(AnchorUnavailable):
    """The anchor's child process was killed by a signal (e.g. SIGILL from a binary wheel)."""


def _run_child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``io_thirdparty.py`` as a child with ``args``: its JSON line, or AnchorUnavailable."""
    cmd = [sys.executable, os.path.join(HERE, "io_thirdparty.py"), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise AnchorUnavailable(
            f"unavailable: the child did not finish in {timeout:.0f} s"
        ) from None
    if proc.returncode < 0:
        raise AnchorCrashed(f"unavailable: {_signal_name(proc.returncode)}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise AnchorUnavailable(f"unavailable: child exited {proc.returncode}: {tail[0][:300]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if "unavailable" in result:
        raise AnchorUnavailable(result["unavailable"])
    return result


def probe(name: str, ctx: Context, mode: str) -> str | None:
    """Can third-party anchor ``name`` run in ``mode`` here? None, or the reason it cannot
    (checked in a child: importing a binary wheel may kill the interpreter)."""
    why = io_thirdparty.THIRD_PARTY[name][2](mode)
    if why:
        return why
    try:
        _run_child(["--probe", name, "--file", ctx.path, "--mode", mode], timeout=120)
    except AnchorUnavailable as exc:
        return str(exc)
    return None


class ChildRunner(Runner):
    """A third-party anchor measured in a child process (see the module docstring)."""

    def __init__(self, ctx: Context, name: str, mode: str, qd: int) -> None:
        self.ctx, self.name, self.mode, self.qd = ctx, name, mode, qd

    def measure(
        self, warmup: float, duration: float, mark: Callable[[], None] | None = None
    ) -> Measured:
        if mark is not None:
            mark()
        args = [
            "--child", self.name, "--file", self.ctx.path, "--offsets", self.ctx.offsets_file,
            "--mode", self.mode, "--qd", str(self.qd), "--start", str(self.ctx.start()),
            "--warmup", str(warmup), "--duration", str(duration),
        ]  # fmt: skip
        result = _run_child(args, timeout=warmup + duration + 120)
        if "error" in result:
            raise RuntimeError(result["error"])
        return Measured(
            result["iops"], result["ops"], result["seconds"], result["errors"], result["extra"]
        )


# ---------------------------------------------------------------------------------------------
# installing the anchors


def install(log: Callable[..., None]) -> dict[str, str]:
    """--install: the anchors' packages into this interpreter's environment, fio via apt.

    Each pin is installed on its own, so one that cannot be had (no wheel for this CPU or
    Python) does not keep the others out; its row then says it is not installed.
    """
    done: dict[str, str] = {}
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for pin in PIP_PINS:
        proc = subprocess.run([*pip, pin], capture_output=True, text=True, check=False)
        done[pin] = "ok" if proc.returncode == 0 else f"failed: {proc.stderr.strip()[-300:]}"
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
