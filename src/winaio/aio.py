"""The asyncio bridge: await overlapped I/O, kernel objects and thread-pool work (issue 10).

The only library module that imports asyncio. One :class:`Bridge` serves one event loop:

- **Overlapped I/O** (files, sockets, pipes started through the core API): the bridge owns a
  completion port and binds the files it reads/writes to it (with
  FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, like asyncio's proactor on Windows). A request that
  finishes inside the issuing call - a page-cache hit, data already in a pipe - returns without
  any thread hop or future. A pending one completes through the port: one *pump* thread
  (``winaio-aio-<n>``) dequeues packets in batches and hands them to the loop. A file already
  bound to another port is served through an event instead (``hEvent | 1``: no packet there).
- **Waitable objects** (event, semaphore, mutex, waitable timer, thread, port, pool call...):
  the fast path tries the object from the loop thread; otherwise a kernel wait block is put in
  the object's waiter list *for the loop thread* (so a mutex ends up owned by the loop thread,
  an auto-reset event is consumed exactly once) and the signalling thread posts the news to the
  bridge port. No thread waits per object. Timeouts are ``loop.call_later`` timers.
- **Thread-pool work**: ``run(fn, *args)`` queues a :class:`~winaio.PoolCall` on a pool; the
  worker that finishes it hands the result over directly.
- **Completion ports**: ``async for packet in bridge.packets(port)`` (and ``async for packet in
  port`` once this module is imported) dequeue from the loop thread without blocking and wait on
  the port object between bursts.

Everything reaches the loop through ``loop.call_soon_threadsafe``, **batched**: hand-overs
accumulate in an inbox and only the first of a burst schedules a drain, so a burst of completions
costs one loop wake-up (``Bridge.wakeups`` counts them).

Cancelling a task that awaits an I/O request cancels the request (CancelIoEx) and still waits
for its completion before the coroutine ends, so the buffer is never released while the kernel
may write to it. Cancelling a task whose wait was already satisfied gives the signal back
(sets the event, releases the semaphore or mutex). ``close()`` joins the pump thread.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from . import _clock
from ._io import _port
from ._io._cancel import cancel_io_ex
from ._io._files import FileObject
from ._io._overlapped import STATUS_PENDING, Overlapped, is_error, is_warning
from ._io._port import CompletionPacket, CompletionPort
from ._kernel._api import WaitResult
from ._kernel._dispatcher import (
    LOCK,
    DispatcherObject,
    ThreadState,
    WaitBlock,
    try_satisfy,
    unlink_wait,
    wake_waiters,
)
from ._kernel._objects import Event, Mutex, Semaphore
from ._kernel._threads import KThread, current_thread_state, start_thread
from ._kernel._timer import WaitableTimer
from ._kernel._wait import wait_for_one
from ._pool import PoolCall, ThreadPool, default_pool
from .codes import WaitCode, WinError, ntstatus_to_winerror
from .errors import IoError, Win32Error

__all__ = ["Bridge", "get_bridge", "packets", "read", "result", "run", "wait", "write"]

_WAIT_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
_TIMED_OUT = WaitResult(_WAIT_TIMEOUT)
_names = itertools.count()
#: Largest batch the pump dequeues at once.
_BATCH = 256
#: How often an idle pump checks whether its loop was closed without closing the bridge.
_IDLE_CHECK = 1.0


class _Stop:
    __slots__ = ()


_STOP = _Stop()


class _WaitRegistration:
    """One awaited kernel object (see the module docstring)."""

    __slots__ = ("bridge", "dead", "fut", "obj", "wb")

    def __init__(self, bridge: Bridge, obj: DispatcherObject, fut: asyncio.Future[WaitResult]):
        self.bridge = bridge
        self.obj = obj
        self.fut = fut
        self.dead = False
        self.wb: WaitBlock | None = None

    def on_signal(self, wb: WaitBlock) -> None:
        """A signaller satisfied the wait block (under the dispatcher lock, in its thread)."""
        self.bridge._port._post_locked(self, None, 0, 0)

    def fire(self) -> None:
        """On the loop: the packet posted by ``on_signal`` arrived."""
        wb = self.wb
        if self.dead or wb is None or self.fut.done():
            return
        self.dead = True
        self.fut.set_result(WaitResult(wb.result if wb.result is not None else 0))

    def expire(self) -> None:
        """On the loop: the timeout elapsed (unless the wait was satisfied meanwhile)."""
        wb = self.wb
        with LOCK:
            if wb is None or wb.result is not None:
                return  # satisfied: its packet is on the way
            wb.detach = None
            unlink_wait(wb)
        self.dead = True
        if not self.fut.done():
            self.fut.set_result(_TIMED_OUT)

    def abandon(self) -> int | None:
        """The awaiting task was cancelled: unregister; returns the wait code if the wait had
        already been satisfied for us (the caller gives the signal back)."""
        wb = self.wb
        self.dead = True
        if wb is None:
            return None
        with LOCK:
            if wb.result is None:
                wb.detach = None
                unlink_wait(wb)
                return None
            return wb.result


class Bridge:
    """The asyncio bridge of one event loop (module docstring).

    Args:
        loop: the loop (default: the running loop).
        pool: the thread pool of :meth:`run` (default: the process's default pool).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, *, pool: ThreadPool | None = None
    ) -> None:
        self._loop = asyncio.get_running_loop() if loop is None else loop
        self._pool = pool
        self._port = CompletionPort(1)
        self._ops: dict[Overlapped, tuple[asyncio.Future[tuple[int, int]], Any]] = {}
        self._waits: dict[_WaitRegistration, None] = {}
        self._inbox: list[tuple[Callable[[Any], object], Any]] = []
        self._inbox_lock = threading.Lock()
        self._scheduled = False
        self._closed = False
        self._loop_ts: ThreadState | None = None
        #: How many times a hand-over woke the loop (call_soon_threadsafe calls).
        self.wakeups = 0
        self._pump: KThread = start_thread(self._pump_main, name=f"winaio-aio-{next(_names)}")

    # ------------------------------------------------------------------ the hand-over
    def _post(self, fn: Callable[[Any], object], arg: Any) -> None:
        """From any thread: run ``fn(arg)`` on the loop; one wake-up per burst."""
        with self._inbox_lock:
            self._inbox.append((fn, arg))
            if self._scheduled:
                return
            self._scheduled = True
        self.wakeups += 1
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass

    def _drain(self) -> None:
        with self._inbox_lock:
            items = self._inbox
            self._inbox = []
            self._scheduled = False
        for fn, arg in items:
            fn(arg)

    def _pump_main(self) -> None:
        port = self._port
        get_many = port.get_many
        loop = self._loop
        while True:
            try:
                _, batch = get_many(_BATCH, _IDLE_CHECK)
            except Win32Error:
                return  # the port was closed
            if not batch:
                if loop.is_closed():
                    self._closed = True
                    port.close()
                    return
                continue
            stop = False
            if batch[-1][0] is _STOP:
                batch.pop()
                stop = True
            elif len(batch) > 1:
                # A packet posted after the stop (a completion or signal racing with close())
                # can follow it in the same batch: the stop must not be missed (close() waits
                # for this thread).
                for packet in batch:
                    if packet[0] is _STOP:
                        batch = [p for p in batch if p[0] is not _STOP]
                        stop = True
                        break
            if batch:
                self._post(self._on_packets, batch)
            if stop:
                return

    def _on_packets(self, batch: list[CompletionPacket]) -> None:
        ops = self._ops
        for key, overlapped, status, information in batch:
            if key is self:
                entry = ops.pop(overlapped, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result((status, information))
            elif type(key) is _WaitRegistration:
                self._waits.pop(key, None)
                key.fire()

    # ------------------------------------------------------------------ overlapped I/O
    def _check(self) -> None:
        if self._closed:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the asyncio bridge is closed")

    def _overlapped_for(self, file: Any, offset: int) -> Overlapped:
        """An OVERLAPPED whose completion this bridge will hear of (binding ``file`` to the
        bridge's port when it is not bound anywhere yet)."""
        if not isinstance(file, FileObject):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{file!r} is not a file object")
        port = file.port
        if port is None and file.overlapped:
            file.associate(self._port, self)
            file.set_completion_modes(True, False)
            port = self._port
        if port is self._port:
            return Overlapped(offset)
        # Bound elsewhere: an event, and no packet to that port (hEvent | 1).
        return Overlapped(offset, Event(manual_reset=True), skip_port=True)

    async def read(self, file: Any, buffer: Any, offset: int = 0) -> int:
        """Read into ``buffer`` (a file, socket or pipe); returns the byte count.

        Raises:
            IoError: the request failed (ERROR_HANDLE_EOF, ERROR_BROKEN_PIPE...).
        """
        self._check()
        ov = self._overlapped_for(file, offset)
        if not file.overlapped:
            return int(await self.run(file.read, buffer, offset))
        if file.start_read(buffer, ov):
            return _final(ov.status, ov.information)
        return await self._completion(file, ov)

    async def write(self, file: Any, data: Any, offset: int = 0) -> int:
        """Write ``data`` (a file, socket or pipe); returns the byte count."""
        self._check()
        ov = self._overlapped_for(file, offset)
        if not file.overlapped:
            return int(await self.run(file.write, data, offset))
        if file.start_write(data, ov):
            return _final(ov.status, ov.information)
        return await self._completion(file, ov)

    async def result(self, file: Any, overlapped: Overlapped) -> int:
        """The byte count of a request the caller started on ``file`` with the core API.

        Raises:
            IoError: the request's error. Win32Error: ERROR_INVALID_PARAMETER if the bridge
            cannot learn of its completion (bound to another port, without an event).
        """
        self._check()
        if not isinstance(overlapped, Overlapped):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{overlapped!r}")
        return await self._completion(file, overlapped)

    async def _completion(self, file: Any, ov: Overlapped) -> int:
        if ov.status != STATUS_PENDING:
            return _final(ov.status, ov.information)
        if ov.event is not None:
            return await self._event_completion(file, ov)
        if getattr(file, "port", None) is not self._port or ov.skip_port:
            if isinstance(file, DispatcherObject):
                await self._until_done(ov, file)
                return _final(ov.status, ov.information)
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "no way to learn of completion")
        fut: asyncio.Future[tuple[int, int]] = self._loop.create_future()
        self._ops[ov] = (fut, file)
        try:
            status, information = await fut
        except asyncio.CancelledError:
            self._ops.pop(ov, None)
            await self._cancel_and_drain(file, ov)
            raise
        return _final(status, information)

    async def _cancel_and_drain(self, file: Any, ov: Overlapped) -> None:
        """A task awaiting ``ov`` was cancelled: cancel the request, wait until it is over."""
        if ov.status == STATUS_PENDING:
            try:
                cancel_io_ex(file, ov)
            except Win32Error:
                pass  # completing anyway
        while ov.status == STATUS_PENDING and not self._closed:
            fut: asyncio.Future[tuple[int, int]] = self._loop.create_future()
            self._ops[ov] = (fut, file)
            try:
                await fut
            except asyncio.CancelledError:
                continue  # cancelled again: the buffer is still in use, keep waiting
            finally:
                self._ops.pop(ov, None)

    async def _event_completion(self, file: Any, ov: Overlapped) -> int:
        event = ov.event
        assert event is not None
        try:
            await self._until_done(ov, event)
        except asyncio.CancelledError:
            if ov.status == STATUS_PENDING:
                try:
                    cancel_io_ex(file, ov)
                except Win32Error:
                    pass
            while ov.status == STATUS_PENDING:
                try:
                    await self._until_done(ov, event)
                except asyncio.CancelledError:
                    continue
            raise
        return _final(ov.status, ov.information)

    async def _until_done(self, ov: Overlapped, obj: DispatcherObject) -> None:
        while ov.status == STATUS_PENDING:
            await self.wait(obj)

    # ------------------------------------------------------------------ waitable objects
    def _thread_state(self) -> ThreadState:
        ts = self._loop_ts
        if ts is None:
            ts = self._loop_ts = current_thread_state()
        return ts

    async def wait(self, obj: DispatcherObject, timeout: float | None = None) -> WaitResult:
        """Wait for a kernel object on the loop (module docstring); ``timeout`` in seconds.

        Returns the WaitResult (``signaled``, ``abandoned`` or ``timed_out``).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE for a non-waitable object; ERROR_INVALID_PARAMETER
                for a negative timeout.
        """
        if not isinstance(obj, DispatcherObject):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{obj!r} is not waitable")
        if timeout is not None and timeout < 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"negative timeout {timeout}")
        self._check()
        ts = self._thread_state()
        fut: asyncio.Future[WaitResult] = self._loop.create_future()
        reg = _WaitRegistration(self, obj, fut)
        with LOCK:
            code = try_satisfy((obj,), False, ts)
            if code is None and timeout != 0:
                wb = WaitBlock(ts, (obj,), False, False, reg.on_signal)
                obj._waiters[wb] = None
                reg.wb = wb
        if code is not None:
            return WaitResult(code)
        if reg.wb is None:
            return _TIMED_OUT
        self._waits[reg] = None
        handle = None if timeout is None else self._loop.call_later(timeout, reg.expire)
        try:
            return await fut
        except asyncio.CancelledError:
            self._waits.pop(reg, None)
            satisfied = reg.abandon()
            if satisfied is not None:
                _give_back(obj, satisfied)
            raise
        finally:
            if handle is not None:
                handle.cancel()

    # ------------------------------------------------------------------ thread-pool work
    async def run(self, fn: Callable[..., Any], *args: Any, pool: ThreadPool | None = None) -> Any:
        """Run ``fn(*args)`` on a thread-pool worker; its result (or exception).

        Cancelling the awaiting task cancels the call if it has not started.
        """
        self._check()
        target = pool or self._pool or default_pool()
        call = PoolCall(fn, args)
        fut: asyncio.Future[PoolCall] = self._loop.create_future()
        call._listener = lambda done: self._post(_resolve_call, (fut, done))
        target._enqueue(call)
        try:
            await fut
        except asyncio.CancelledError:
            call.cancel()
            raise
        return call.result(0)

    # ------------------------------------------------------------------ completion ports
    async def packets(
        self, port: CompletionPort, max_count: int = 64
    ) -> AsyncIterator[CompletionPacket]:
        """Dequeue ``port``'s packets on the loop (GetQueuedCompletionStatusEx with no wait),
        waiting on the port object between bursts; ends when the port is closed."""
        if not isinstance(port, CompletionPort):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{port!r} is not a completion port")
        while True:
            try:
                _, batch = port.get_many(max_count, 0)
            except Win32Error:
                return  # ERROR_ABANDONED_WAIT_0: the port was closed
            if batch:
                given = 0
                try:
                    for packet in batch:
                        given += 1
                        yield packet
                finally:
                    if given < len(batch):
                        # The consumer left (break, exception, cancelled task): what it did
                        # not take goes back to the port, in order, for its next reader.
                        port.requeue(batch[given:])
            elif port.queued:
                # Packets are queued but the port's concurrency value is reached (its other
                # threads are running): the loop thread may not take one now.
                await asyncio.sleep(0.001)
            else:
                await self.wait(port)

    # ------------------------------------------------------------------ closing
    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the loop was found closed)."""
        return self._closed

    def close(self) -> None:
        """Cancel what is pending, stop the pump thread and join it. Idempotent.

        Pending I/O requests are cancelled and their completion awaited (briefly, in this
        thread) so that no buffer is in use afterwards; their awaiting tasks get
        ERROR_OPERATION_ABORTED (or the request's real result); pending waits get the same
        error.
        """
        if self._closed and not self._pump.is_alive:
            return
        self._closed = True
        for reg in list(self._waits):
            code = reg.abandon()
            if code is not None:
                _give_back(reg.obj, code)
            if not reg.fut.done():
                reg.fut.set_exception(Win32Error(WinError.ERROR_OPERATION_ABORTED))
        self._waits.clear()
        ops = list(self._ops.items())
        self._ops.clear()
        for ov, (_, file) in ops:
            try:
                cancel_io_ex(file, ov)
            except Win32Error:
                pass
        deadline = _clock.monotonic() + 5.0
        for ov, (fut, _) in ops:
            while ov.status == STATUS_PENDING and _clock.monotonic() < deadline:
                wait_for_one(Event(), 0.001, False)
            if not fut.done():
                if ov.status == STATUS_PENDING:
                    fut.set_exception(Win32Error(WinError.ERROR_OPERATION_ABORTED))
                else:
                    fut.set_result((ov.status, ov.information))
        try:
            self._port.post(0, _STOP)
        except Win32Error:
            pass
        wait_for_one(self._pump, None, False)
        python_thread = self._pump.python_thread
        if python_thread is not None:
            python_thread.join()
        self._port.close()

    async def aclose(self) -> None:
        """:meth:`close` for ``async with``."""
        self.close()

    async def __aenter__(self) -> Bridge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<Bridge{state} wakeups={self.wakeups} pending={len(self._ops)}>"


def _final(status: int, information: int) -> int:
    """The byte count of a finished request, or its error."""
    if status == 0:
        return information
    if is_error(status) or is_warning(status):
        raise IoError(ntstatus_to_winerror(status), information)
    return information


def _resolve_call(item: tuple[asyncio.Future[PoolCall], PoolCall]) -> None:
    fut, call = item
    if not fut.done():
        fut.set_result(call)


def _give_back(obj: DispatcherObject, code: int) -> None:
    """Undo the side effect of a satisfied wait whose task was cancelled (loop thread)."""
    if isinstance(obj, Event) and not obj.manual_reset:
        obj.set()
    elif isinstance(obj, Semaphore):
        obj.release(1)
    elif isinstance(obj, Mutex):
        obj.release()
    elif isinstance(obj, WaitableTimer) and not obj.manual_reset:
        with LOCK:
            obj._signaled = True
            if obj._waiters:
                wake_waiters(obj)


# ---------------------------------------------------------------------- the loop's bridge

_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Bridge]
_bridges = weakref.WeakKeyDictionary()


def get_bridge() -> Bridge:
    """The running loop's bridge (created on first use; its pump ends with the loop, or at
    ``get_bridge().close()``)."""
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None or bridge.closed:
        bridge = _bridges[loop] = Bridge(loop)
    return bridge


async def read(file: Any, buffer: Any, offset: int = 0) -> int:
    """:meth:`Bridge.read` on the running loop's bridge."""
    return await get_bridge().read(file, buffer, offset)


async def write(file: Any, data: Any, offset: int = 0) -> int:
    """:meth:`Bridge.write` on the running loop's bridge."""
    return await get_bridge().write(file, data, offset)


async def result(file: Any, overlapped: Overlapped) -> int:
    """:meth:`Bridge.result` on the running loop's bridge."""
    return await get_bridge().result(file, overlapped)


async def wait(obj: DispatcherObject, timeout: float | None = None) -> WaitResult:
    """:meth:`Bridge.wait` on the running loop's bridge."""
    return await get_bridge().wait(obj, timeout)


async def run(fn: Callable[..., Any], *args: Any, pool: ThreadPool | None = None) -> Any:
    """:meth:`Bridge.run` on the running loop's bridge."""
    return await get_bridge().run(fn, *args, pool=pool)


def packets(port: CompletionPort, max_count: int = 64) -> AsyncIterator[CompletionPacket]:
    """:meth:`Bridge.packets` on the running loop's bridge."""
    return get_bridge().packets(port, max_count)


_port.set_async_iterator(packets)
