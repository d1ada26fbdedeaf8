"""A pool worker's loop: a completion-port thread that runs the pool's callbacks (§6.7, §9).

A worker is a plain GetQueuedCompletionStatus loop on the pool's port (``_pool`` module
docstring): a token packet (key = the pool) makes it take the next queued callback by priority;
any other key is an object handling its own packet (an I/O completion, the stop request).

**The wait is inlined.** Submit-to-run latency and the per-callback cost of a backlog (1000
timers expiring together) live in the path from "a token is posted" to "the callback starts". So
the worker waits on the port the way ``CompletionPort.get_many`` does - same LIFO release, same
association and running-thread accounting, same parker token protocol as
``_kernel._wait.block`` - but in the one case it nearly always is in (one packet, not alertable,
no APC or TerminateThread pending, no thread-backend request it could run instead: ``IdleWork``),
and a token is turned into its callback *under the same lock acquisition* that ends the wait
(``ThreadPool._take_locked``): one acquisition of the dispatcher lock instead of three, and no
``get_many``/``block`` frames. Every other case goes through ``get_many`` itself, unchanged.
A wait ended *in place* (the worker's parker, a ring leader, reaped the completion that ends
it: ``_kernel._dispatcher.Parker``, ``awake_in_wait``) returns as ``block()`` does, with no
second lock hold (a token's callback still needs one, to be taken).

Invariants (those of ``_kernel._dispatcher``): between waits the thread's parker is locked and
``wake_pending`` is False; the wait block is registered (``port._getters``, ``ts.wait``) and
removed under the lock; a token released after a timed-out acquire is consumed under the lock;
the port adds a thread it hands a packet to to its running set (``_release_locked``), the thread
itself when it takes one without waiting or comes back from a timed-out wait.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

from .._clock import monotonic
from .._io._backend import IdleWork
from .._kernel._dispatcher import LOCK, TERMINATED, WaitBlock, run_block_hook, unlink_wait
from .._kernel._dispatcher import acquire_lock as _acquire
from .._kernel._dispatcher import release_lock as _release
from .._kernel._parker import AVAILABLE as PARKER_AVAILABLE
from .._kernel._parker import WorkerParker
from .._kernel._threads import check_terminating, current_thread_state
from ..codes import NtStatus, WaitCode, WinError
from ..errors import Win32Error

if TYPE_CHECKING:
    from .._io._port import CompletionPort
    from .._kernel._dispatcher import ThreadState
    from ._pool import ThreadPool

__all__ = ["POOL_KEY", "STOP", "worker_main"]

#: The key of the packet that tells workers to exit (each re-posts it for the next).
STOP = object()
#: ``ThreadState.extensions`` key naming the pool a worker belongs to.
POOL_KEY = "threadpool"

_HANDOFF = int(WaitCode.WAIT_OBJECT_0)
_CLOSED = int(NtStatus.STATUS_ABANDONED_WAIT_0)
_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
_TIMEOUT_MAX = threading.TIMEOUT_MAX

#: What the wait returns: (packet or None on timeout, the token's callback taken under the lock).
_Next = tuple[Any, Any]
_NOTHING: _Next = (None, None)


def worker_main(pool: ThreadPool) -> None:
    """The body of a ``winaio-worker-<n>`` thread (already counted in the pool's ``_threads``)."""
    ts = current_thread_state()
    ts.extensions[POOL_KEY] = pool
    port = pool._port
    get_many = port.get_many
    idle_timeout = pool._idle_timeout
    with LOCK:
        if PARKER_AVAILABLE:
            # In none of its waits, under the lock: the kernel lets a layer swap the parker
            # then (``_kernel._dispatcher.Parker``). Woken without the GIL (``_parker``).
            ts.parker = WorkerParker()
        pool._starting -= 1
        # Registered before this thread can end, so ``_join`` finds it (retired workers stay
        # until dead, so that a close right after a retirement still joins them).
        workers = pool._workers
        for old in [t for t in workers if not t.is_alive]:
            del workers[old]
        assert ts.thread is not None
        workers[ts.thread] = None
    counted = True
    try:
        while True:
            # A worker the minimum keeps anyway waits without a timeout (an untimed wait wakes
            # faster); the others time out to retire.
            timeout = None if pool._threads <= pool._min else idle_timeout
            try:
                if ts.special_apcs or ts.terminating or (timeout is None and IdleWork.queued):
                    _, packets = get_many(1, timeout)  # the general path (module docstring)
                    packet, taken = (packets[0], None) if packets else _NOTHING
                else:
                    packet, taken = _next_packet(pool, port, ts, timeout)
            except Win32Error:
                return  # the port was closed
            if packet is None:
                if pool._retire_locked_check():
                    counted = False
                    return
                continue
            key = packet[0]
            if key is pool:  # a token
                if taken is not None:
                    pool._run_taken(ts, taken)
                else:
                    pool._run_one(ts)  # (or its callback was cancelled: nothing to run)
            elif key is STOP:
                try:
                    port.post(0, STOP)
                except Win32Error:
                    pass
                return
            else:
                key._on_packet(packet, ts)
            # Nothing of this callback stays referenced while the worker waits for the next
            # one (its arguments - an RPC call, a buffer - must be freed when it returns).
            packet = taken = key = None
    finally:
        if counted:
            with LOCK:
                pool._thread_gone_locked()


def _next_packet(
    pool: ThreadPool, port: CompletionPort, ts: ThreadState, timeout: float | None
) -> _Next:
    """GetQueuedCompletionStatus for one packet, inlined (module docstring).

    Raises:
        Win32Error: ERROR_ABANDONED_WAIT_0 if the port is (or gets) closed.
    """
    # acquire/release, not ``with``: half the cost, and safe on a worker thread (no signal
    # handler runs there: ``_kernel._dispatcher.acquire_lock``).
    _acquire()
    try:
        if port.closed:
            raise Win32Error(WinError.ERROR_ABANDONED_WAIT_0)
        if ts.block_listener is port:
            port._running.discard(ts)
        else:
            port._enter_locked(ts)
        packets = port._packets
        if packets and len(port._running) < port.concurrency:
            packet = packets.popleft()
            port._running.add(ts)
            if packet[0] is pool:  # a token: its callback, taken now
                return packet, pool._take_locked()
            return packet, None
        if timeout is not None and timeout <= 0:
            port._running.add(ts)
            return _NOTHING
        wb = WaitBlock(ts, (), False, False, port._detach)
        wb.data = 1
        port._getters.append(wb)
        ts.wait = wb
    finally:
        _release()
    if ts.on_block is not None:
        run_block_hook(ts)  # as ``_kernel._wait.block``: it parks (``ThreadState.on_block``)
    deadline = None if timeout is None else monotonic() + timeout
    while True:
        parker = ts.parker
        if deadline is None:
            got = parker.acquire()
        else:
            remaining = deadline - monotonic()
            if remaining > 0:
                got = parker.acquire(True, min(remaining, _TIMEOUT_MAX))
            else:
                got = parker.acquire(False)
        # (cast: mypy keeps ``ts.wait`` narrowed to ``wb`` from the registration above.)
        if not got and cast("WaitBlock | None", ts.wait) is None:
            # Ended in place (``_kernel._dispatcher.Parker``): this thread's parker ran code
            # inside the wait (a ring leader reaping) and that ended it - result stored, wait
            # cleared under the lock, no token. As ``_kernel._wait.block``: nothing left for
            # the lock but a token's callback. (A token given before and not taken stays
            # outstanding with wake_pending set: the next wait takes it as a spurious wake-up.)
            result = wb.result
            if result == _HANDOFF:
                packet = wb.data[0]
                if packet[0] is not pool:
                    return packet, None
                _acquire()
                try:
                    return packet, pool._take_locked()
                finally:
                    _release()
            if result == TERMINATED:
                check_terminating(ts)
            if result == _CLOSED:
                raise Win32Error(WinError.ERROR_ABANDONED_WAIT_0)
        _acquire()
        try:
            if got:
                ts.wake_pending = False
            elif ts.wake_pending:
                # Released (under the lock) after our acquire timed out: consume it.
                parker.acquire(False)
                ts.wake_pending = False
            result = wb.result
            if result is None:
                if ts.terminating:
                    unlink_wait(wb)
                    result = TERMINATED
                elif deadline is not None and monotonic() >= deadline:
                    unlink_wait(wb)
                    result = _TIMEOUT
                else:
                    continue  # a spurious wake-up (the finally releases the lock)
            ts.wait = None
            if result == _HANDOFF:
                packet = wb.data[0]
                if packet[0] is pool:  # a token: its callback, taken now
                    return packet, pool._take_locked()
                return packet, None
            if result != _CLOSED and ts.block_listener is port:
                port._running.add(ts)
        finally:
            _release()
        if result == TERMINATED:
            check_terminating(ts)
        if result == _CLOSED:
            raise Win32Error(WinError.ERROR_ABANDONED_WAIT_0)
        return _NOTHING
