"""bench_io.py's third-party Python anchors, and the child process that runs one of them.

Every class here is only ever constructed in a child (``python io_thirdparty.py --child NAME``,
driven by ``io_anchors.ChildRunner``): a binary wheel can kill the interpreter that loads it
(the ``liburing`` wheel dies with SIGILL on CPUs without AVX-512), and that must not end the run.
The child prints one JSON line: the measurement, ``{"error": ...}`` or ``{"unavailable": ...}``.

- ``caio``: caio linux_uring AsyncioContext, QD coroutines awaiting ``ctx.read`` (buffered:
  caio reads into unaligned buffers, so O_DIRECT fails with EINVAL - probed, and said so);
- ``aiofile``: aiofile's ``AIOFile.read(size, offset)``, QD coroutines (buffered only: it
  opens files with a mode string);
- ``liburing``: the perf-anchors raw loop on the ``liburing`` binding;
- ``uring-api``: the same loop on ``uring_api.Ring`` (``prepare_read`` + ``wait``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from io_common import (
    BLOCK,
    OFFSET_TABLE,
    Buffers,
    Context,
    Measured,
    Runner,
    load_offsets,
    open_flags,
)


class CaioRunner(Runner):
    """caio ``linux_uring`` AsyncioContext: QD coroutines, each awaiting one read at a time."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        import asyncio

        from caio.linux_uring_asyncio import AsyncioContext

        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, open_flags(mode))
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
        offsets, mask = self.ctx.offsets, OFFSET_TABLE - 1
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


def _caio_direct_error(path: str) -> str | None:
    """caio on an O_DIRECT descriptor: try one read and report what happens."""
    import asyncio

    from caio.linux_uring_asyncio import AsyncioContext

    fd = os.open(path, open_flags("direct"))
    aio_loop = asyncio.new_event_loop()
    try:
        context = AsyncioContext(max_requests=1, loop=aio_loop)
        try:
            aio_loop.run_until_complete(asyncio.wait_for(context.read(BLOCK, fd, 0), timeout=5))
        except Exception as exc:
            return (
                f"unavailable: caio cannot do O_DIRECT (it reads into unaligned buffers): {exc!r}"
            )
        finally:
            context.close()
        return None  # it worked: measure it
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


class LiburingRunner(Runner):
    """The perf-anchors raw loop on the ``liburing`` binding: ``submit_and_wait(1)``, reap
    every ready CQE (CqeIter), re-arm one read per CQE into the same per-slot buffer."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        import liburing

        self.L = liburing
        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, open_flags(mode))
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
        offsets, mask = self.ctx.offsets, OFFSET_TABLE - 1
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


class UringApiRunner(Runner):
    """The raw loop on ``uring_api.Ring``: prepare QD reads, ``wait()`` for completions, re-arm
    one ``prepare_read`` per completion into the same per-slot buffer."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        import uring_api

        self.ctx, self.qd = ctx, qd
        self.fd = os.open(ctx.path, open_flags(mode))
        self.ring = uring_api.Ring(max(8, qd))
        self.bufs = Buffers(qd)

    def loop(self, seconds: float) -> tuple[int, int]:
        prepare_read, wait = self.ring.prepare_read, self.ring.wait
        fd, views = self.fd, self.bufs.views
        offsets, mask = self.ctx.offsets, OFFSET_TABLE - 1
        k = self.ctx.start()
        for slot in range(self.qd):
            prepare_read(fd, views[slot], offsets[k & mask], slot)
            k += 1
        in_flight = self.qd
        done = errors = 0
        rearm = True
        clock = time.perf_counter
        deadline = clock() + seconds
        while in_flight:
            for completion in wait() or ():
                done += 1
                if completion.res != BLOCK:
                    errors += 1
                if rearm:
                    slot = completion.user_data
                    prepare_read(fd, views[slot], offsets[k & mask], slot)
                    k += 1
                else:
                    in_flight -= 1
            if rearm and clock() >= deadline:
                rearm = False
        return done, errors

    def close(self) -> None:
        self.ring.close()
        os.close(self.fd)
        self.bufs.close()


class AiofileRunner(Runner):
    """aiofile ``AIOFile(path, "rb")``: QD coroutines, each awaiting ``read(4096, offset)``."""

    def __init__(self, ctx: Context, mode: str, qd: int) -> None:
        import asyncio

        from aiofile import AIOFile

        self.ctx, self.qd = ctx, qd
        self.aio_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.aio_loop)

        async def open_file() -> Any:  # AIOFile binds to the loop running when it is made
            afp = AIOFile(ctx.path, "rb")
            await afp.open()
            return afp

        self.file = self.aio_loop.run_until_complete(open_file())
        context = getattr(self.file, "_AIOFile__context", None) or getattr(
            self.file, "_context", None
        )
        self.implementation = type(context).__module__ if context is not None else "?"

    def measure(
        self, warmup: float, duration: float, mark: Callable[[], None] | None = None
    ) -> Measured:
        measured = super().measure(warmup, duration, mark)
        measured.extra["context"] = self.implementation
        return measured

    def loop(self, seconds: float) -> tuple[int, int]:
        import asyncio

        read = self.file.read
        offsets, mask = self.ctx.offsets, OFFSET_TABLE - 1
        state = {"k": self.ctx.start(), "done": 0, "errors": 0}
        clock = time.perf_counter
        deadline = clock() + seconds

        async def worker() -> None:
            while clock() < deadline:
                k = state["k"]
                state["k"] = k + 1
                data = await read(BLOCK, offsets[k & mask])
                state["done"] += 1
                if len(data) != BLOCK:
                    state["errors"] += 1

        async def main() -> None:
            await asyncio.gather(*(worker() for _ in range(self.qd)))

        self.aio_loop.run_until_complete(main())
        return state["done"], state["errors"]

    def close(self) -> None:
        self.aio_loop.run_until_complete(self.file.close())
        self.aio_loop.close()


#: name -> (the package it needs, the runner class, why a mode is out of its reach or None)
THIRD_PARTY: dict[str, tuple[str, type[Runner], Callable[[str], str | None]]] = {
    "caio": ("caio", CaioRunner, lambda mode: None),
    "aiofile": (
        "aiofile",
        AiofileRunner,
        lambda mode: (
            "n/a: aiofile opens files with a mode string (no O_DIRECT)"
            if mode == "direct"
            else None
        ),
    ),
    "liburing": ("liburing", LiburingRunner, lambda mode: None),
    "uring-api": ("uring_api", UringApiRunner, lambda mode: None),
}


#: Test hooks (tests/test_bench_harness.py): ``WINAIO_BENCH_CRASH=name`` makes that anchor's
#: children kill themselves with SIGILL before importing the package (``name@child``: only the
#: measuring child: the probe then passes without importing); ``WINAIO_BENCH_MISSING=name``
#: makes its import fail.
CRASH_ENV = "WINAIO_BENCH_CRASH"
MISSING_ENV = "WINAIO_BENCH_MISSING"


def _import_anchor(name: str, measuring: bool) -> dict[str, Any] | None:
    """Import anchor ``name``'s package; None, or the child's ``unavailable`` answer."""
    crash = os.environ.get(CRASH_ENV, "")
    if crash == name or (measuring and crash == f"{name}@child"):
        os.kill(os.getpid(), signal.SIGILL)
    if crash == f"{name}@child":
        return None  # the probe passes, installed or not: the measuring child is the one to die
    package = THIRD_PARTY[name][0]
    try:
        if os.environ.get(MISSING_ENV) == name:
            raise ImportError(f"No module named {package!r} ({MISSING_ENV})")
        __import__(package)
    except ImportError as exc:
        return {"unavailable": f"unavailable: not installed ({exc}); run with --install"}
    return None


def _child_probe(name: str, path: str, mode: str) -> dict[str, Any]:
    missing = _import_anchor(name, measuring=False)
    if missing:
        return missing
    if name == "caio" and mode == "direct":
        why = _caio_direct_error(path)
        if why:
            return {"unavailable": why}
    return {"ok": True}


def _child_measure(ns: argparse.Namespace) -> dict[str, Any]:
    missing = _import_anchor(ns.child, measuring=True)
    if missing:
        return missing
    runner_class = THIRD_PARTY[ns.child][1]
    ctx = Context(ns.file, os.path.getsize(ns.file), load_offsets(ns.offsets), 0, ns.start)
    runner: Runner | None = None
    try:
        runner = runner_class(ctx, ns.mode, ns.qd)  # type: ignore[call-arg]
        m = runner.measure(ns.warmup, ns.duration)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-800:]}
    finally:
        if runner is not None:
            runner.close()
    return {"iops": m.iops, "ops": m.ops, "seconds": m.seconds, "errors": m.errors,
            "extra": m.extra}  # fmt: skip


def child_main(argv: list[str] | None = None) -> int:
    """The child side: ``--probe NAME`` or ``--child NAME``; prints one JSON line."""
    ap = argparse.ArgumentParser(description="bench_io anchor child (internal)")
    ap.add_argument("--probe", choices=sorted(THIRD_PARTY))
    ap.add_argument("--child", choices=sorted(THIRD_PARTY))
    ap.add_argument("--file", required=True)
    ap.add_argument("--offsets", default="")
    ap.add_argument("--mode", default="buffered")
    ap.add_argument("--qd", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--duration", type=float, default=2.0)
    ns = ap.parse_args(argv)
    if ns.probe:
        result = _child_probe(ns.probe, ns.file, ns.mode)
    elif ns.child:
        result = _child_measure(ns)
    else:
        ap.error("--probe or --child")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
