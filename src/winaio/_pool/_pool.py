"""The thread pool: worker threads that are completion-port threads (win32-async-spec §6.7, §9).

Design:
- Each pool owns a :class:`~winaio.CompletionPort`. A queued callback is one packet (a *token*,
  key = the pool) on that port; the callback itself waits in the pool's three priority queues
  (high, normal, low). A worker is a plain port thread looping on GetQueuedCompletionStatus:
  a token makes it take the next queued callback by priority; any other key is an object that
  handles its own packet (an I/O object's completion, a stop request) (``_worker``: the loop,
  its wait inlined). So the port decides how
  many callbacks run at once: its concurrency value and its running-thread accounting (§6.7)
  apply unchanged - a callback blocked in any winaio wait lets another worker take a token.
- I/O objects bind their file to the same port (key = the object), so an I/O callback runs on
  the worker that dequeued the completion, and completions of port-bound requests survive the
  thread that issued them (§8).
- Workers are created on demand, one at a time: when tokens are queued, no worker waits on the
  port and fewer than ``max_threads`` exist (a worker that blocks because the concurrency value
  is reached still waits on the port, so the pool does not grow past it). A worker that waits
  ``idle_timeout`` seconds without a packet retires, down to ``min_threads``
  [W:dlls/ntdll/threadpool.c:threadpool_worker_proc].
- Threads: ``winaio-worker-<n>`` (created with ``start_thread``: Win32 exit effects apply) and one
  wait thread per pool (``_waiter``). ``close()`` joins them all.

Invariants (under the dispatcher lock): ``_threads`` counts workers alive or starting,
``_starting`` those not yet waiting on the port; every queued callback has exactly one token.
Whoever counts a worker in ``_threads`` (``_grow_locked`` & co. returning True) owes exactly one
``_spawn()`` or one ``_thread_gone_locked()``: a count handed over to the wait thread (a
callback queued by a signaller, under the lock) is handed back by ``Waiter.stop_locked`` if the
wait thread will not start it. ``close()`` waits for ``_threads`` to reach 0 (an event, no
polling), then joins every worker: each registers itself in ``_workers`` before it can end.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from .._io._interrupts import cut_at_entry, interrupt, release_again
from .._io._port import CompletionPacket, CompletionPort
from .._kernel._dispatcher import LOCK, ThreadState, wake_waiters
from .._kernel._objects import Event
from .._kernel._parker import WorkerParker
from .._kernel._threads import KThread, current_thread_state, start_thread
from .._kernel._wait import wait_for_one
from ..codes import WaitCode, WinError
from ..errors import Win32Error
from ._clock import SYSTEM_CLOCK, PoolClock
from ._env import CallbackEnvironment, CallbackInstance
from ._io import PoolIo
from ._objects import PoolCall, PoolWork, SimpleCallback, report_callback_error
from ._timer import PoolTimer
from ._wait import PoolWait
from ._waiter import Waiter
from ._worker import POOL_KEY, STOP, worker_main

__all__ = ["ThreadPool", "default_pool"]

#: Windows' default maximum ([W:dlls/ntdll/threadpool.c:tp_threadpool_alloc]).
DEFAULT_MAX_THREADS = 500
#: Idle time after which a worker retires (Wine's THREADPOOL_WORKER_TIMEOUT).
DEFAULT_IDLE_TIMEOUT = 5.0

_worker_names = itertools.count()


_STOP = STOP
_HANDOFF = int(WaitCode.WAIT_OBJECT_0)
_new_packet = tuple.__new__
_POOL_KEY = POOL_KEY


class ThreadPool:
    """A thread pool whose workers are completion-port threads (module docstring).

    Args:
        max_threads: most workers at once (SetThreadpoolThreadMaximum), at least 1.
        min_threads: workers kept even when idle; started at once (SetThreadpoolThreadMinimum).
        concurrency: the port's concurrency value (0 = number of processors).
        idle_timeout: seconds a worker waits for work before retiring.
        clock: the clock of timers and wait timeouts (``winaio.testing.ManualClock`` for tests).

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER for inconsistent sizes or a non-positive timeout.
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_closed",
        "_closing",
        "_default",
        "_gone",
        "_idle_timeout",
        "_ios",
        "_max",
        "_min",
        "_objects",
        "_port",
        "_queues",
        "_release_requested",
        "_starting",
        "_threads",
        "_token",
        "_waiter",
        "_workers",
    )

    def __init__(
        self,
        max_threads: int = DEFAULT_MAX_THREADS,
        min_threads: int = 0,
        *,
        concurrency: int = 0,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: PoolClock | None = None,
    ) -> None:
        if max_threads < 1 or min_threads < 0 or min_threads > max_threads:
            raise Win32Error(
                WinError.ERROR_INVALID_PARAMETER,
                f"max_threads={max_threads} min_threads={min_threads}",
            )
        if not idle_timeout > 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"idle_timeout {idle_timeout}")
        self._port = CompletionPort(concurrency)
        #: The token packet (a queued callback's; see the module docstring).
        self._token = _new_packet(CompletionPacket, (self, None, 0, 0))
        self._queues: tuple[deque[Any], deque[Any], deque[Any]] = (deque(), deque(), deque())
        self._max = max_threads
        self._min = 0
        self._threads = 0
        self._starting = 0
        self._workers: dict[KThread, None] = {}
        #: Set (under the lock) when ``_threads`` drops to 0 while closing: ``_join`` waits on it.
        self._gone = Event(manual_reset=True)
        self._closing = False
        self._closed = False
        self._default = False
        #: Callback objects created on this pool and not closed yet.
        self._objects = 0
        #: CloseThreadpool was called while objects were open: close after the last one.
        self._release_requested = False
        #: I/O objects bound to the port: their outstanding starts die with the port.
        self._ios: weakref.WeakSet[Any] = weakref.WeakSet()
        self._idle_timeout = float(idle_timeout)
        self._clock: PoolClock = SYSTEM_CLOCK if clock is None else clock
        self._waiter: Waiter | None = None  # the wait thread, made on first use
        if min_threads:
            self.set_min_threads(min_threads)

    # ------------------------------------------------------------------ properties
    @property
    def port(self) -> CompletionPort:
        """The completion port the workers wait on."""
        return self._port

    @property
    def max_threads(self) -> int:
        """The most workers the pool creates."""
        return self._max

    @property
    def min_threads(self) -> int:
        """The workers the pool keeps even when idle."""
        return self._min

    @property
    def thread_count(self) -> int:
        """Workers alive now (including ones being started)."""
        return self._threads

    @property
    def clock(self) -> PoolClock:
        """The clock of this pool's timers and wait timeouts."""
        return self._clock

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing

    def check_open(self) -> None:
        """Raise ERROR_INVALID_HANDLE if the pool is closing or closed."""
        if self._closing:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the thread pool is closed")

    # ------------------------------------------------------------------ sizing
    def set_max_threads(self, count: int) -> None:
        """SetThreadpoolThreadMaximum (values below 1 mean 1; the minimum follows it down)."""
        with LOCK:
            self._max = max(int(count), 1)
            self._min = min(self._min, self._max)

    def set_min_threads(self, count: int) -> None:
        """SetThreadpoolThreadMinimum: start workers until ``count`` exist (raises the maximum
        if needed).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for a negative count, ERROR_INVALID_HANDLE if
                the pool is closed, ERROR_NOT_ENOUGH_MEMORY if a thread cannot be started.
        """
        if count < 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"min_threads {count}")
        while True:
            with LOCK:
                self.check_open()
                if self._threads >= count:
                    self._min = count
                    self._max = max(self._max, count)
                    return
                self._threads += 1
                self._starting += 1
            self._spawn()

    # ------------------------------------------------------------------ submitting
    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` once on a worker (TrySubmitThreadpoolCallback, fire and forget).

        An exception escaping ``fn`` is reported through ``threading.excepthook``.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the pool is closed; ERROR_INVALID_PARAMETER if
                ``fn`` is not callable.
        """
        if not callable(fn):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{fn!r} is not callable")
        wake = None
        spawn = False
        try:
            with LOCK:
                if self._closing:
                    raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the thread pool is closed")
                # The token first, the callback last (the worker takes it once LOCK is free):
                # a Ctrl-C in between leaves a spare token (a worker finds nothing: harmless),
                # never a queued callback without one (it never ran).
                port = self._port
                if port._getters and not port._packets and len(port._running) < port.concurrency:
                    wake = self._handoff_locked(port)
                else:
                    spawn = self._post_tokens_locked(1)
                self._queues[1].append((fn, args))
            if wake is not None:
                wake.wake()  # after the lock: the worker wakes to a free lock (_handoff_locked)
            elif spawn:
                self._spawn()
        except BaseException as exc:
            self._woken_again(exc, spawn)
            raise

    def call(self, fn: Callable[..., Any], *args: Any) -> PoolCall:
        """Run ``fn(*args)`` on a worker; returns a waitable :class:`PoolCall` with its result."""
        if not callable(fn):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{fn!r} is not callable")
        call = PoolCall(fn, args)
        self._enqueue(call)
        return call

    def _enqueue(self, item: Any) -> None:
        spawn = False
        try:
            with LOCK:
                if self._closing:
                    raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the thread pool is closed")
                spawn, wake = self._post_one_locked()  # (the token first: as in submit)
                self._queues[1].append(item)
            if wake is not None:
                wake.wake()
            elif spawn:
                self._spawn()
        except BaseException as exc:
            self._woken_again(exc, spawn)
            raise

    def _woken_again(self, exc: BaseException, spawn: bool) -> None:
        """An interrupt ``exc`` (Ctrl-C) cut a submitter between queueing its callback's token
        (under LOCK) and the wake-up or worker start it owed after the lock: both made before
        it goes on. Else a worker handed the token slept until ``close()`` (its wake-up is
        given after the lock, ``_handoff_locked``) and a worker counted to start never
        started: the callback never ran, ``close()`` waited for ever. Every worker whose wait
        a hand-off ended is woken (:meth:`_rewake_handoffs`: at worst a spurious wake-up); a
        worker counted (``spawn``) is started unless ``_spawn`` ran (its frame past its entry
        in the traceback); a token queued with nobody to take it gets a worker, as
        ``_post_tokens_locked`` would have. A second interrupt meanwhile: the first goes on."""
        if not interrupt(exc):
            return
        try:
            self._rewake_handoffs()
            if spawn and cut_at_entry(exc, ThreadPool._spawn):
                self._spawn()
            with LOCK:
                grow = self._grow_locked()
            if grow:
                self._spawn()
        except BaseException as again:
            if not interrupt(again):
                raise

    def submit_callback(
        self,
        fn: Callable[..., object],
        *args: Any,
        environment: CallbackEnvironment | None = None,
        context: Any = None,
    ) -> None:
        """TrySubmitThreadpoolCallback with an environment: ``fn(instance, *args)`` once."""
        obj = SimpleCallback(self, fn, args, environment, context)
        spawn = False
        try:
            with LOCK:
                self.check_open()
                spawn = obj._queue_locked()
            if spawn:
                self._spawn()
        except BaseException as exc:  # (Ctrl-C: the worker counted, started)
            self._woken_again(exc, spawn)
            raise

    def create_work(
        self,
        fn: Callable[..., object],
        *args: Any,
        environment: CallbackEnvironment | None = None,
        context: Any = None,
    ) -> PoolWork:
        """CreateThreadpoolWork: ``fn(instance, *args)`` runs once per ``submit()``."""
        return PoolWork(self, fn, args, environment, context)

    def create_timer(
        self,
        fn: Callable[..., object],
        *args: Any,
        environment: CallbackEnvironment | None = None,
        context: Any = None,
    ) -> PoolTimer:
        """CreateThreadpoolTimer: ``fn(instance, *args)`` at each expiry (see ``PoolTimer.set``)."""
        return PoolTimer(self, fn, args, environment, context)

    def create_wait(
        self,
        fn: Callable[..., object],
        *args: Any,
        environment: CallbackEnvironment | None = None,
        context: Any = None,
    ) -> PoolWait:
        """CreateThreadpoolWait: ``fn(instance, *args, result)`` (see ``PoolWait.set``)."""
        return PoolWait(self, fn, args, environment, context)

    def create_io(
        self,
        file: Any,
        fn: Callable[..., object],
        *args: Any,
        environment: CallbackEnvironment | None = None,
        context: Any = None,
    ) -> PoolIo:
        """CreateThreadpoolIo: bind the overlapped ``file`` to this pool's port; each completion
        announced by ``start()`` runs ``fn(instance, *args, overlapped, error, bytes)``."""
        return PoolIo(self, file, fn, args, environment, context)

    def _get_waiter(self) -> Waiter:
        """The pool's wait thread object (created on first use; its thread starts on demand)."""
        waiter = self._waiter
        if waiter is None:
            with _waiter_lock:
                waiter = self._waiter
                if waiter is None:
                    self.check_open()
                    waiter = self._waiter = Waiter(self)
        return waiter

    def _handoff_locked(self, port: CompletionPort) -> WorkerParker | None:
        """``_post_tokens_locked(1)`` for the usual case (the submit-to-run latency path): a
        worker waits on the port, nothing is queued, the concurrency value allows one more.

        The most recent waiter (LIFO) gets the token and counts as running at once (§6.7), as
        ``port._post_locked`` -> ``_release_locked`` do; the woken worker takes the head of the
        queue, so callbacks start in FIFO order whichever worker runs first. A worker parked on
        its :class:`WorkerParker` is not woken here: its wait is ended under the lock (result,
        token owed) and the returned parker is released by the caller *after* the lock,
        so that a worker scheduled at once finds both the GIL (``_parker``) and the dispatcher
        lock free. A late token is at worst a spurious wake-up (``_parker``); a lost one (the
        caller interrupted before it woke the worker) is given again by ``close()``
        (``_rewake_handoffs``). Any other waiter
        (a thread of its own in GetQueuedCompletionStatus) is woken here, as the port does.
        """
        # No call from reading the waiter to its result (a Ctrl-C at ``getters.pop()``'s
        # return lost the popped worker, asleep for ever; at ``running.add()``'s, before its
        # result, the same): the last call is ``running.add``, whose cut the caller's
        # :meth:`_woken_again` finishes (the result is set: ``_rewake_handoffs`` finds it).
        getters = port._getters
        wb = getters[-1]
        ts = wb.thread
        parker = ts.parker
        wb.detach = None  # popped (and a port wait has no objects: nothing to unlink)
        wb.data = [self._token]
        wb.result = _HANDOFF
        del getters[-1]
        if parker.__class__ is not WorkerParker:
            # (end_wait: a thread of its own in GetQueuedCompletionStatus, woken here)
            try:
                port._running.add(ts)
                if ts.awake_in_wait:
                    ts.wait = None
                elif not ts.wake_pending:
                    ts.wake_pending = True
                    parker.release()
            except BaseException as exc:
                if interrupt(exc):
                    port._running.add(ts)
                    release_again(exc, ts)
                raise
            return None
        if ts.wake_pending:
            port._running.add(ts)
            return None
        ts.wake_pending = True
        port._running.add(ts)
        return parker

    def _post_one_locked(self) -> tuple[bool, WorkerParker | None]:
        """One token: handed to an idle worker (its parker, to wake after the lock) or posted
        (True: the caller starts a worker). ``submit`` inlines it (the latency path)."""
        port = self._port
        if port._getters and not port._packets and len(port._running) < port.concurrency:
            return False, self._handoff_locked(port)
        return self._post_tokens_locked(1), None

    def _post_tokens_locked(self, count: int) -> bool:
        """Post ``count`` tokens; True if the caller must start a worker (then counted)."""
        port = self._port
        for _ in range(count):
            port._post_locked(self, None, 0, 0)
        if port._packets and not port._getters:  # nobody took it: maybe one more worker
            return self._grow_locked()
        return False

    # ------------------------------------------------------------------ workers
    def _spawn(self) -> None:
        """Start one worker (already counted in ``_threads`` and ``_starting``)."""
        try:
            name = f"winaio-worker-{next(_worker_names)}"
            start_thread(worker_main, self, name=name)
        except BaseException as exc:
            # A Ctrl-C before the thread was asked for (at ``next()``'s return, at
            # ``start_thread``'s entry): the counted worker is started before it goes on (else
            # it never started: ``close()`` waited for ever). One inside ``start_thread`` is
            # the kernel's thread creation (not swept: it may have started the thread).
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

    # ------------------------------------------------------------------ closing
    def release(self) -> None:
        """CloseThreadpool: close now if no callback object of the pool is open, else once the
        last one is closed ("released asynchronously after the outstanding objects are freed"
        [MS:CloseThreadpool]).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if already released or closed;
                ERROR_INVALID_PARAMETER for the default pool.
        """
        if self._default:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "the default pool is never closed")
        with LOCK:
            if self._release_requested or self._closing:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the thread pool is closed")
            self._release_requested = True
            now = not self._objects
        if now:
            self.close()

    def close(self) -> None:
        """Close the pool (module docstring): queued callbacks still run, timers and waits stop,
        then every thread of the pool is joined and the port closed. Idempotent.

        From inside one of the pool's own callbacks it cannot join and returns at once (the
        threads end by themselves).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for the default pool.
        """
        if self._default:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "the default pool is never closed")
        waiter = self._waiter
        if waiter is not None:
            waiter.stop_listening()
        spawn = False
        with LOCK:
            if self._closing:
                first = False
            else:
                first = True
                # One acquisition: no signaller can queue a callback between "closing" and
                # "timers and waits stopped".
                self._closing = True
                if waiter is not None:
                    waiter.stop_locked()  # may hand counted workers back
                if not self._threads and self._port._packets:
                    # Queued callbacks still run: they need a worker.
                    spawn = True
                    self._threads += 1
                    self._starting += 1
                # (Re)set here: a hand-back above may have set it with packets still queued.
                self._gone._signaled = not self._threads
        if first and spawn:
            try:
                self._spawn()
            except BaseException as exc:  # (Ctrl-C: the worker the queue needs, started)
                self._woken_again(exc, spawn)
                raise
        if first:
            try:
                self._port.post(0, _STOP)
            except Win32Error:
                pass
            self._rewake_handoffs()
        if current_thread_state().extensions.get(_POOL_KEY) is self:
            return  # one of our own workers: it cannot join itself
        self._join()

    def _rewake_handoffs(self) -> None:
        """Wake again every worker whose wait a hand-off ended: its wake-up is given after the
        lock (``_handoff_locked``), so a submitter interrupted right there (KeyboardInterrupt)
        would leave it asleep and ``close()`` waiting for it. A spare token is only a spurious
        wake-up."""
        with LOCK:
            parkers = []
            for thread in self._workers:
                ts = thread.state
                wb = ts.wait
                if wb is not None and wb.result is not None:
                    parkers.append(ts.parker)
        for parker in parkers:
            if parker.__class__ is WorkerParker:
                assert isinstance(parker, WorkerParker)
                parker.wake()

    def _join(self) -> None:
        wait_for_one(self._gone, None, False)  # every counted worker has ended or retired
        with LOCK:
            threads = list(self._workers)
        me = threading.current_thread()
        for thread in threads:
            wait_for_one(thread, None, False)
            python_thread = thread.python_thread
            if python_thread is not None and python_thread is not me:
                python_thread.join()
        waiter = self._waiter
        if waiter is not None:
            waiter.join()
        self._port.close()
        with LOCK:
            # No completion can reach a callback any more: nothing is outstanding (so that
            # ``wait_callbacks`` on them returns instead of waiting forever).
            for io in list(self._ios):
                io._cancel_pending_locked()
        self._closed = True

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closing else ""
        return (
            f"<ThreadPool{state} threads={self._threads} max={self._max} "
            f"concurrency={self._port.concurrency}>"
        )


_waiter_lock = threading.Lock()
_default_lock = threading.Lock()
_default: ThreadPool | None = None


def default_pool() -> ThreadPool:
    """The process's default thread pool (a NULL callback environment's pool); never closed."""
    global _default
    pool = _default
    if pool is None:
        with _default_lock:
            pool = _default
            if pool is None:
                pool = ThreadPool()
                pool._default = True
                _default = pool
    return pool
