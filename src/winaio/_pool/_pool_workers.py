"""The thread pool's workers: how many there are, starting one, and what a worker runs.

Purpose: :class:`PoolWorkers`, the part of :class:`~._pool.ThreadPool` (a mixin: the pool's
public face and its slots stay in ``_pool``) that counts workers in and out and starts them
(``_spawn``), grows the pool for queued work, and takes and runs a queued callback for a worker
(``_take_locked``/``_run_taken``, called by ``_worker.worker_main``'s loop).

Invariants (under the dispatcher lock; ``_pool``'s module docstring): ``_threads`` counts
workers alive or starting, ``_starting`` those not yet waiting on the port. Whoever counts a
worker in (``_grow_locked``, ``_ensure_worker_locked`` returning True) owes exactly one
``_spawn()`` or one ``_thread_gone_locked()``; a Ctrl-C on a caller's thread between the count
and the thread's start starts it anyway (``_spawn``'s own cut before ``start_thread``;
``ThreadPool._woken_again`` at a caller's site), so ``close()`` never waits for a worker that
was counted and never started.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from .._io._interrupts import cut_at_entry, interrupt
from .._io._port import CompletionPort
from .._kernel._dispatcher import LOCK, ThreadState, wake_waiters
from .._kernel._objects import Event
from .._kernel._threads import KThread, current_thread_state, start_thread
from ..codes import WinError
from ..errors import Win32Error
from ._env import CallbackInstance
from ._objects import PoolCall, report_callback_error
from ._worker import worker_main

__all__ = ["PoolWorkers"]

_worker_names = itertools.count()


class PoolWorkers:
    """The worker accounting of a :class:`~._pool.ThreadPool` (module docstring). A mixin:
    the attributes it uses are the pool's slots."""

    # The counters are this part's own (``ThreadPool.__init__`` sets them); the rest are the
    # pool's slots.
    __slots__ = ("_starting", "_threads")
    _starting: int
    _threads: int

    _port: CompletionPort
    _queues: tuple[deque[Any], deque[Any], deque[Any]]
    _max: int
    _min: int
    _workers: dict[KThread, None]
    _gone: Event
    _closing: bool
    _closed: bool
    _objects: int
    _idle_timeout: float

    def _spawn(self) -> None:
        """Start one worker (already counted in ``_threads`` and ``_starting``)."""
        try:
            name = f"winaio-worker-{next(_worker_names)}"
            start_thread(worker_main, self, name=name)
        except BaseException as exc:
            # A Ctrl-C before the thread was asked for (at ``next()``'s return, at
            # ``start_thread``'s entry): the counted worker is started before it goes on (else
            # it never started: ``close()`` waited for ever). One inside ``start_thread``
            # went on once the thread was started (``_kernel._threads.start_thread``).
            if interrupt(exc) and cut_at_entry(exc, start_thread):
                self._spawn_again()
            if not isinstance(exc, RuntimeError):
                raise
            self._not_spawned(exc)

    def _spawn_again(self) -> None:
        """:meth:`_spawn` once more after an interrupt cut it before the thread was asked for
        (a second interrupt: the first one goes on)."""
        try:
            self._spawn()
        except BaseException as again:
            if not interrupt(again):
                raise

    def _not_spawned(self, exc: RuntimeError) -> None:
        """The thread could not start ("can't start new thread"): uncounted again; the last
        worker's failure is the caller's (ERROR_NOT_ENOUGH_MEMORY)."""
        with LOCK:
            self._starting -= 1
            self._thread_gone_locked()
            alone = self._threads == 0
        if alone:
            raise Win32Error(WinError.ERROR_NOT_ENOUGH_MEMORY, str(exc)) from None

    def _thread_gone_locked(self) -> None:
        """A counted worker is gone (exited, retired, or never started)."""
        threads = self._threads - 1
        self._threads = threads
        if not threads and self._closing:
            gone = self._gone
            gone._signaled = True
            if gone._waiters:
                wake_waiters(gone)

    def _retire_locked_check(self) -> bool:
        """After an idle timeout: retire if nothing waits on the port and either more than
        ``max(min_threads, 1)`` workers exist or the pool has no minimum and no open object -
        completions of bound files need a worker to dequeue them
        [W:dlls/ntdll/threadpool.c:threadpool_worker_proc]."""
        with LOCK:
            if self._port._packets or self._closing:
                return False
            if self._threads > max(self._min, 1) or (not self._min and not self._objects):
                self._thread_gone_locked()
                return True
            return False

    def _ensure_worker_locked(self) -> bool:
        """An object was created: the pool needs one worker (True: the caller starts it)."""
        if self._threads or self._closing:
            return False
        self._threads += 1
        self._starting += 1
        return True

    def _grow_locked(self) -> bool:
        """A worker took work and more is queued with nobody waiting on the port: one more
        worker (True: the caller starts it)."""
        port = self._port
        if (
            port._packets
            and not port._getters
            and not self._starting
            and self._threads < self._max
            and not self._closing
        ):
            self._threads += 1
            self._starting += 1
            return True
        return False

    def _run_one(self, ts: ThreadState) -> None:
        """A token arrived: take the next queued callback by priority and run it."""
        with LOCK:
            taken = self._take_locked()
        if taken is not None:
            self._run_taken(ts, taken)

    def _take_locked(self) -> tuple[Any, type, tuple[Any, ...], bool] | None:
        """A token was dequeued: take the next queued callback by priority (None if it was
        cancelled). Returns (item, its type, extra arguments, a worker must be started)."""
        queues = self._queues
        if queues[0]:
            queue = queues[0]
        elif queues[1]:
            queue = queues[1]
        elif queues[2]:
            queue = queues[2]
        else:
            return None  # its callback was cancelled
        item = queue.popleft()
        kind = type(item)
        extra: tuple[Any, ...] = ()
        if kind is PoolCall:
            if not item._take_locked():
                return None  # cancelled before it started
        elif kind is not tuple:
            extra = item._take_locked()
        port = self._port
        # A backlog and nobody waiting for it: one more worker.
        spawn = bool(port._packets and not port._getters) and self._grow_locked()
        return item, kind, extra, spawn

    def _run_taken(self, ts: ThreadState, taken: tuple[Any, type, tuple[Any, ...], bool]) -> None:
        """Run a callback taken by :meth:`_take_locked` (without the lock)."""
        item, kind, extra, spawn = taken
        if spawn:
            self._spawn()
        if kind is tuple:
            fn, args = item
            try:
                fn(*args)
            except Exception:
                report_callback_error()
        elif kind is PoolCall:
            item._run()
        else:
            item._execute(ts, extra)

    def _detach_thread(self, ts: ThreadState) -> None:
        """The thread's callback may run long: it stops counting against the port's
        concurrency value until it waits on the port again (§6.7)."""
        port = self._port
        with LOCK:
            if ts.block_listener is port:
                port.thread_exited(ts)
                ts.block_listener = None

    def _callback_may_run_long(self, instance: CallbackInstance) -> bool:
        ts = current_thread_state()
        port = self._port
        spawn = False
        with LOCK:
            if instance._long:
                return True
            instance._long = True
            if ts.block_listener is port:
                port.thread_exited(ts)
                ts.block_listener = None
            if port._getters or self._starting:
                ok = True
            elif self._threads < self._max and not self._closing:
                ok = spawn = True
                self._threads += 1
                self._starting += 1
            else:
                ok = False
        if spawn:
            self._spawn()
        return ok
