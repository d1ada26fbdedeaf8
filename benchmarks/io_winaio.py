"""bench_io.py's winaio rows: (a) overlapped reads + a completion port and (b) completion
routines + an alertable wait, each through ``winaio.win32`` and through the Pythonic core.

- ``winaio.a.win32``: CreateFile(FILE_FLAG_OVERLAPPED [| FILE_FLAG_NO_BUFFERING]) + ReadFile +
  CreateIoCompletionPort + GetQueuedCompletionStatusEx(OVERLAPPED_ENTRY list), re-arming one
  ReadFile per dequeued entry.
- ``winaio.a.core``: ``winaio.open_file`` + ``File.start_read`` + ``CompletionPort.get_many``.
- ``winaio.b.win32``: ReadFileEx + SleepEx(INFINITE, TRUE), re-arming from the routine.
- ``winaio.b.core``: ``File.start_read(routine=...)`` + ``winaio.sleep(None, alertable=True)``.
- ``winaio.a.core.pure`` / ``winaio.a.win32.pure`` (information rows, buffered): the (a) rows with
  the cached-read fast path in Python (``_disk.use_accelerator(False)`` around the loop), beside
  the C accelerator's in the same run; with the accelerator not built the two are the same.
"""

from __future__ import annotations

import re
import time
from typing import Any

from io_common import BLOCK, CLOCK_EVERY, OFFSET_TABLE, Buffers, Context, Runner

import winaio
from winaio import testing, win32
from winaio._io import _disk
from winaio._runtime import backend as backend_instance

WINAIO_BACKENDS = ("io_uring", "threads")


def thread_pool_size() -> int:
    """The thread backend's FILE worker count, from its statistics (else its private list)."""
    stats = backend_instance("threads").statistics()
    found = re.search(r"(\d+) file workers", stats.detail)
    if found:
        return int(found.group(1))
    return max(1, stats.threads - 1)


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
        mask = OFFSET_TABLE - 1
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
        mask = OFFSET_TABLE - 1
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


def accelerator_available() -> bool:
    """The cached-read fast path's C accelerator was built (``winaio._io._fastio``)."""
    return _disk.accelerator_available()


def accelerated() -> bool:
    """The (a)/(b) rows run the cached-read fast path in C."""
    return _disk.accelerated()


class _Pure:
    """Mixin for the ``.pure`` rows: the loop runs with the Python fast path."""

    def loop(self, seconds: float) -> tuple[int, int]:
        before = _disk.use_accelerator(False)
        try:
            result: tuple[int, int] = super().loop(seconds)  # type: ignore[misc]
            return result
        finally:
            _disk.use_accelerator(before)


class CorePurePortRunner(_Pure, CorePortRunner):
    """``winaio.a.core`` with the cached-read fast path in Python."""


class Win32PurePortRunner(_Pure, Win32PortRunner):
    """``winaio.a.win32`` with the cached-read fast path in Python."""


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
        mask = OFFSET_TABLE - 1
        clock = time.perf_counter
        every = CLOCK_EVERY - 1
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
        mask = OFFSET_TABLE - 1
        clock = time.perf_counter
        every = CLOCK_EVERY - 1
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
