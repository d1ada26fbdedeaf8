"""I/O completion ports (win32-async-spec §6).

Facts encoded here:
- Packets queue FIFO; a single consumer sees FIFO order [W:k32/file.c:test_post_completion].
- Threads blocked in GetQueuedCompletionStatus(Ex) are released **LIFO**: the most recently
  blocked thread gets the oldest packet [W:nt/sync.c:test_completion_port_scheduling].
- Concurrency value C (§6.7): a thread is associated with a port from its first GQCS on it until
  it exits, calls GQCS on another port, or the port closes. running(P) = associated threads not
  blocked; a packet is handed to a waiter only while running(P) < C. Every blocking wait in the
  kernel reports to the thread's port (``ThreadState.block_listener``), so a port thread that
  blocks elsewhere lets another waiter run; when it wakes, running(P) may exceed C for a while.
- A direct wait on the port (WaitForSingleObject) is satisfied while packets are queued and
  dequeues nothing. A packet handed straight to a GQCS waiter never makes the port signaled, so
  direct waiters are only woken when no GQCS waiter could take it (Win10 1607+).
- Closing the port: GQCS waiters fail with ERROR_ABANDONED_WAIT_0, direct waiters get
  WAIT_OBJECT_0, queued packets are discarded and later completions dropped (§6.8).
- GQCS is never alertable; GQCSEx(alertable) runs APCs (returning WAIT_IO_COMPLETION) only when
  no packet is available (§6.5).

The C accelerator (``winaio._io._fastio``, ``_fastport.c``) replaces ``get_many``'s hot shapes
(a thread that stays on its port, not alertable, no timeout) with exactly its effects; the
Python method stays the reference and takes every other shape (``_accel``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any, NamedTuple

from .._clock import monotonic
from .._kernel._apc import run_apcs, run_special_apcs
from .._kernel._dispatcher import (
    LOCK,
    TERMINATED,
    DispatcherObject,
    ThreadState,
    WaitBlock,
    complete_wait,
    unlink_wait,
    wake_waiters,
)
from .._kernel._threads import _tls, check_terminating, current_thread_state
from .._kernel._wait import abandon_wait, block
from ..codes import NtStatus, WaitCode, WinError, ntstatus_to_winerror
from ..errors import Win32Error
from . import _accel
from ._backend import IdleWork, flush_deferred, run_idle_work
from ._interrupts import interrupt, release_again

try:
    from . import _fastio
except ImportError:  # not built (no C compiler): the Python methods run
    _fastio = None  # type: ignore[assignment]

__all__ = ["CompletionPacket", "CompletionPort", "set_async_iterator"]

_HANDOFF = int(WaitCode.WAIT_OBJECT_0)
_CLOSED = int(NtStatus.STATUS_ABANDONED_WAIT_0)
_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)


def _take(packets: deque[CompletionPacket], count: int) -> list[CompletionPacket]:
    """Dequeue up to ``count`` packets, oldest first (the whole queue in one go if it fits).
    Whole or not at all: an interrupt cut it (after a C call's return) puts back what it took."""
    n = len(packets)
    taken = list(packets) if n <= count else list(islice(packets, count))
    try:
        if n <= count:
            packets.clear()
        else:
            for _ in taken:
                del packets[0]  # (no call: ``popleft``'s return would be a check, its item lost)
    except BaseException:
        packets.extendleft(reversed(taken[: n - len(packets)]))
        raise
    return taken


class CompletionPacket(NamedTuple):
    """One dequeued packet (OVERLAPPED_ENTRY): ``status`` is the raw NTSTATUS."""

    key: Any
    overlapped: Any
    status: int
    bytes_transferred: int

    @property
    def error(self) -> int:
        """The Win32 error of ``status`` (0 for success)."""
        return ntstatus_to_winerror(self.status)


_new_packet = tuple.__new__


class CompletionPort(DispatcherObject):
    """An I/O completion port.

    Args:
        concurrency: NumberOfConcurrentThreads; 0 means the number of processors.
    """

    __slots__ = ("_getters", "_packets", "_running", "closed", "concurrency", "holding")
    type_name = "IoCompletion"

    def __init__(self, concurrency: int = 0) -> None:
        super().__init__()
        if concurrency < 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"concurrency {concurrency}")
        self.concurrency = concurrency or os.cpu_count() or 1
        self._packets: deque[CompletionPacket] = deque()
        #: Threads blocked in GQCS on this port, most recent last (released LIFO).
        self._getters: list[WaitBlock] = []
        #: Associated threads that are running (not blocked anywhere).
        self._running: set[ThreadState] = set()
        self.closed = False
        #: Set while a batch of completions is posted (``_dispatch.deliver_batch``): packets
        #: queue, and the waiters are released once, at :meth:`release_held_locked`.
        self.holding = False

    # ------------------------------------------------------------------ dispatcher object
    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return bool(self._packets) or self.closed

    @property
    def queued(self) -> int:
        """How many packets wait to be dequeued (NtQueryIoCompletion's depth)."""
        return len(self._packets)

    @property
    def running_threads(self) -> int:
        """running(P): associated threads that are not blocked."""
        return len(self._running)

    # ------------------------------------------------------------------ block listener
    def thread_blocked(self, ts: ThreadState) -> None:
        self._running.discard(ts)
        if self._packets and self._getters:
            self._release_locked()

    def thread_unblocked(self, ts: ThreadState) -> None:
        if not self.closed and ts.block_listener is self:
            self._running.add(ts)

    def thread_exited(self, ts: ThreadState) -> None:
        self._running.discard(ts)
        if self._packets and self._getters:
            self._release_locked()

    # ------------------------------------------------------------------ posting
    def post(
        self, bytes_transferred: int = 0, key: Any = 0, overlapped: Any = None, status: int = 0
    ) -> None:
        """PostQueuedCompletionStatus (``status`` > 0 is NtSetIoCompletion's IoStatus).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the port is closed.
        """
        with LOCK:
            if self.closed:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the completion port is closed")
            self._post_locked(key, overlapped, status, bytes_transferred)

    def _post_locked(self, key: Any, overlapped: Any, status: int, information: int) -> None:
        if self.closed:
            return  # completions on files of a closed port are dropped (§6.8)
        try:
            # tuple.__new__ skips the NamedTuple's Python-level __new__ (a hot path).
            packet = _new_packet(CompletionPacket, (key, overlapped, status, information))
        except BaseException as exc:  # (Ctrl-C at its return: the packet went with it)
            if interrupt(exc):
                self._post_locked(key, overlapped, status, information)
            raise
        getters = self._getters
        try:
            if getters and not self._packets and not self.holding:
                running = self._running
                if len(running) < self.concurrency:
                    # Straight to the most recent waiter (what _release_locked would do with
                    # this one packet, without queueing it first): nothing was queued, so the
                    # port never becomes signaled and no direct waiter is woken. From reading
                    # the waiter to taking it out: no call, so no interrupt in between.
                    wb = getters[-1]
                    wb.data = [packet]
                    wb.detach = None  # popped: a port wait has no objects, nothing to unlink
                    wb.result = _HANDOFF
                    del getters[-1]
                    ts = wb.thread
                    running.add(ts)
                    # ``end_wait``, inlined (once per pending request): no token when the
                    # waiter is awake in its wait (a ring leader reaping its own completion),
                    # its wait ends in place; the result is stored before the flag is tested.
                    if ts.awake_in_wait:
                        ts.wait = None
                    elif not ts.wake_pending:
                        ts.wake_pending = True
                        ts.parker.release()
                    return
            self._packets.append(packet)
            if getters or self._waiters:
                self._posted_locked()
        except BaseException as exc:
            if interrupt(exc):
                self._post_cut(
                    exc, packet, locals().get("wb"), key, overlapped, status, information
                )
            raise

    def _post_cut(
        self,
        exc: BaseException,
        packet: CompletionPacket,
        wb: WaitBlock | None,
        key: Any,
        overlapped: Any,
        status: int,
        information: int,
    ) -> None:
        """An interrupt cut :meth:`_post_locked` after it made ``packet``: finish. ``wb``: the
        waiter it handed the packet to (popped already), or None."""
        if wb is not None:
            self._running.add(wb.thread)
            release_again(exc, wb.thread)
        elif any(p is packet for p in self._packets):
            self._posted_locked()  # (idempotent)
        else:
            self._post_locked(key, overlapped, status, information)

    def _posted_locked(self) -> None:
        """A packet was just queued and someone waits (GQCS or a direct wait): release them,
        unless a batch holds the port (``holding``). ``DiskFile.read_now`` queues its packet
        inline (the cached-read hot path) and calls this only when there are waiters."""
        if self.holding:
            return
        try:
            if self._getters:
                self._release_locked()
            if self._packets and self._waiters:
                wake_waiters(self)
        except BaseException as exc:  # (Ctrl-C) once more: no waiter of a signaled
            if interrupt(exc):  # object is left asleep (_objects); both are idempotent
                self._posted_again()
            raise

    def _posted_again(self) -> None:
        if self._getters:
            self._release_locked()
        if self._packets and self._waiters:
            wake_waiters(self)

    def release_held_locked(self) -> None:
        """The end of a batch (``holding``): release waiters for what it queued."""
        self.holding = False
        if self._packets:
            try:
                if self._getters:
                    self._release_locked()
                if self._packets and self._waiters:
                    wake_waiters(self)
            except BaseException as exc:  # (Ctrl-C) once more, as _posted_locked
                if interrupt(exc):
                    self._posted_again()
                raise

    def _release_locked(self) -> None:
        packets = self._packets
        getters = self._getters
        running = self._running
        try:
            while packets and getters and len(running) < self.concurrency:
                wb = getters[-1]  # LIFO: the most recent waiter
                # From reading the waiter to taking it out: no call, no interrupt (``_take``
                # is whole or nothing).
                wb.data = _take(packets, wb.data)
                wb.detach = None  # popped: _detach would only raise and catch ValueError
                wb.result = _HANDOFF
                del getters[-1]
                ts = wb.thread
                running.add(ts)
                # ``end_wait``, inlined (as in _post_locked)
                if ts.awake_in_wait:
                    ts.wait = None
                elif not ts.wake_pending:
                    ts.wake_pending = True
                    ts.parker.release()
        except BaseException as exc:
            if interrupt(exc):
                cut: WaitBlock | None = locals().get("wb")
                if (
                    cut is not None
                    and cut.result == _HANDOFF
                    and not (getters and getters[-1] is cut)
                ):
                    running.add(cut.thread)  # (popped: its wake-up is finished)
                    release_again(exc, cut.thread)
                self._release_locked()  # the others (idempotent)
            raise

    def _detach(self, wb: WaitBlock) -> None:
        try:
            self._getters.remove(wb)
        except ValueError:
            pass  # already popped by _release_locked

    # ------------------------------------------------------------------ dequeuing
    def get(self, timeout: float | None = None) -> CompletionPacket | None:
        """GetQueuedCompletionStatus: the next packet, or None on timeout (never alertable).

        Raises:
            Win32Error: ERROR_ABANDONED_WAIT_0 if the port is (or gets) closed.
        """
        _, packets = self.get_many(1, timeout, alertable=False)
        return packets[0] if packets else None

    def get_many(
        self, max_count: int, timeout: float | None = None, *, alertable: bool = False
    ) -> tuple[int, list[CompletionPacket]]:
        """GetQueuedCompletionStatusEx: up to ``max_count`` packets.

        Returns:
            (WAIT_OBJECT_0, packets), (WAIT_TIMEOUT, []) or (WAIT_IO_COMPLETION, []) after
            running APCs (only when ``alertable`` and no packet was available).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for ``max_count`` < 1; ERROR_ABANDONED_WAIT_0
                if the port is (or gets) closed.
        """
        if max_count < 1:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"count {max_count}")
        ts = current_thread_state()
        if ts.special_apcs:
            run_special_apcs(ts)
        if ts.terminating:
            check_terminating(ts)
        wb: WaitBlock | None = None
        taken: list[CompletionPacket] | None = None
        idle = timeout is None
        try:  # an exception once ``wb`` is registered or packets taken loses neither
            while True:
                work = False
                with LOCK:
                    if self.closed:
                        raise Win32Error(WinError.ERROR_ABANDONED_WAIT_0)
                    # _enter_locked and _take, inlined for the common case (a thread that stays on
                    # this port; the whole queue fits): two frames per call saved.
                    running = self._running
                    if ts.block_listener is self:
                        running.discard(ts)
                    else:
                        self._enter_locked(ts)
                    packets = self._packets
                    if packets and len(running) < self.concurrency:
                        if len(packets) <= max_count:
                            taken = list(packets)
                            packets.clear()
                        else:
                            taken = _take(packets, max_count)
                        running.add(ts)
                    elif alertable and (ts.apcs or ts.special_apcs):
                        running.add(ts)
                        code = _IO_COMPLETION
                    elif timeout is not None and timeout <= 0:
                        running.add(ts)
                        code = _TIMEOUT
                    elif idle and IdleWork.queued:
                        # Rather than block while a backend holds a request that this thread could
                        # run itself (``_backend.run_idle_work``): run it, then look again. A hint
                        # (written under the backend's lock, not LOCK): stale, it costs a look or
                        # a missed chance, never a lost request (``_fastport.c`` says why).
                        running.add(ts)
                        work = True
                    else:
                        wb = WaitBlock(ts, (), False, alertable, self._detach)
                        wb.data = max_count
                        self._getters.append(wb)
                        ts.wait = wb
                if not work:
                    break
                if not run_idle_work():
                    idle = False  # nothing to run after all: block this time
            if wb is None and IdleWork.deferred:
                # Returning without blocking: requests a backend deferred to this thread's next
                # wait go out now, before it runs on (``_backend.flush_deferred``). A thread that
                # blocks submits them in its wait (io_uring: one enter for the burst and the wait).
                flush_deferred()
            if taken is not None:
                return _HANDOFF, taken
            if wb is not None:
                code = block(ts, wb, None if timeout is None else monotonic() + timeout, None)
                if code == _HANDOFF:
                    taken = wb.data
                    return _HANDOFF, taken
        except BaseException:
            self._interrupted(ts, wb, taken)
            raise
        if wb is not None:
            return self._after_wait(ts, wb, code)
        if code == _IO_COMPLETION:
            run_special_apcs(ts)
            run_apcs(ts)
        return code, []

    def _after_wait(
        self, ts: ThreadState, wb: WaitBlock, code: int
    ) -> tuple[int, list[CompletionPacket]]:
        """:meth:`get_many`'s end after a wait ``wb`` that did not hand packets over (a
        timeout, APCs, the port closing); shared by the C accelerator of ``get_many``."""
        try:
            with LOCK:
                if code != _CLOSED and ts.block_listener is self:
                    self._running.add(ts)
            if code == _CLOSED:
                raise Win32Error(WinError.ERROR_ABANDONED_WAIT_0)
        except BaseException:
            self._interrupted(ts, wb, None)
            raise
        if code == _IO_COMPLETION:
            run_special_apcs(ts)
            run_apcs(ts)
        return code, []

    def requeue(self, packets: list[CompletionPacket]) -> None:
        """Put back packets a caller dequeued but could not hand over (the Win32 layer's
        GetQueuedCompletionStatusEx with an array it cannot write): at the head of the queue,
        oldest first, for the next waiter. Dropped if the port closed meanwhile (§6.8)."""
        with LOCK:
            if not self.closed and packets:
                self._requeue_locked(packets)

    def _requeue_locked(self, packets: list[CompletionPacket]) -> None:
        """:meth:`requeue` under :data:`LOCK`, the port open: at the head, oldest first."""
        self._packets.extendleft(reversed(packets))
        self._posted_locked()

    def _interrupted(
        self, ts: ThreadState, wb: WaitBlock | None, taken: list[CompletionPacket] | None
    ) -> None:
        """An exception ended a GQCS (a signal handler's KeyboardInterrupt): its wait, if it
        registered one, is unregistered; the thread runs again; packets it had taken, or
        that were handed to it at that instant, go back to the head of the queue, for the
        next waiter (none is lost)."""
        if wb is not None:
            abandon_wait(ts, wb, None)
        with LOCK:
            if self.closed:
                return
            if ts.block_listener is self:
                self._running.add(ts)
            if taken is None and wb is not None and wb.result == _HANDOFF:
                taken = wb.data
            if taken:
                if wb is not None:
                    wb.data = None
                self._requeue_locked(taken)

    def _enter_locked(self, ts: ThreadState) -> None:
        """A thread enters GQCS: (re)associate it with this port; it stops counting as running."""
        current = ts.block_listener
        if current is not self:
            if isinstance(current, CompletionPort):
                current._running.discard(ts)
                if current._packets and current._getters:
                    current._release_locked()
            ts.block_listener = self
        self._running.discard(ts)

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close the port (its last handle went away): see the module docstring."""
        with LOCK:
            if self.closed:
                return
            self.closed = True
            self._packets.clear()
            for wb in list(self._getters):
                complete_wait(wb, _CLOSED)
            self._getters.clear()
            for ts in self._running:
                if ts.block_listener is self:
                    ts.block_listener = None
            self._running.clear()
            if self._waiters:
                wake_waiters(self)

    def _last_handle_closed(self) -> None:
        self.close()

    def __aiter__(self) -> Any:
        """``async for packet in port`` - provided by the asyncio bridge (``import winaio.aio``),
        which registers itself through :func:`set_async_iterator` (the core imports no asyncio).
        """
        factory = _async_iterator
        if factory is None:
            raise TypeError("async iteration of a completion port needs 'import winaio.aio'")
        return factory(self)


#: ``port.__aiter__``'s implementation, installed by ``winaio.aio``.
_async_iterator: Callable[[CompletionPort], Any] | None = None


def set_async_iterator(factory: Callable[[CompletionPort], Any]) -> None:
    """Install the implementation of ``async for packet in port`` (called by winaio.aio)."""
    global _async_iterator
    _async_iterator = factory


#: CompletionPort.get_many: the Python method (reference, fallback) and its C accelerator.
_PY_GET_MANY = CompletionPort.get_many
_C_GET_MANY: Any = None
if _fastio is not None:
    _C_GET_MANY = _fastio.configure_ring(
        "port", CompletionPort, WaitBlock, ThreadState, _PY_GET_MANY, _tls, LOCK, IdleWork,
        block, unlink_wait, check_terminating, flush_deferred, _take, TERMINATED, _HANDOFF,
    )["get_many"]  # fmt: skip


def _install(on: bool) -> None:
    _accel.install_methods(CompletionPort, {"get_many": (_C_GET_MANY, _PY_GET_MANY)}, on)


_accel.register(_install)
