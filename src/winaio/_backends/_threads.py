"""The thread backend: the portable fallback when io_uring is unavailable (and the test reference).

- FILE operations run ``op.run_blocking()`` on a fixed pool of worker threads
  (``winaio-io-worker-<n>``), fed FIFO from one queue.
- STREAM operations (sockets, pipes) wait for readiness in one reactor thread
  (``winaio-io-reactor-0``) on ``epoll``, then retry ``op.try_now()`` there (it never blocks).
  Requests on one descriptor are kept in per-direction FIFO queues and only the head of each
  queue is retried, so two pending reads complete in issue order (spec #66).

A thread about to block in GetQueuedCompletionStatus (without a timeout) while a lone FILE
request is queued runs it itself instead of waiting for a worker to run it and hand the
completion back (``_io._backend.IdleWork``): at QD1 that is one syscall on the waiting thread
instead of two thread hand-offs (measured at QD1: 0.54x -> 1.27x a ThreadPoolExecutor).
Workers still take whatever nobody waits for; the request is the same request, taken once
(its token moves from queued to running under the lock).

Hand-offs without the GIL (issue 9, docs/design.md "The thread backend's hand-offs"):

- **Issuer -> worker.** Idle workers park on their own futex parker (``_kernel._parker``) in a
  LIFO list; ``submit`` pops one under the backend lock and wakes it after that lock, without
  the GIL (a ``queue.SimpleQueue`` woke it GIL-held: a worker scheduled at once slept again on
  the GIL). One per burst: while a woken worker has not looked yet (``_woken``), ``submit``
  wakes nobody, and a worker that leaves requests queued wakes the next idle one itself
  (``chain_wakes``), so a burst of 32 costs its issuer one wake-up syscall, not 32.
- **A lone request its issuer will run.** A port-bound request (no event, no routine) issued
  by a thread of that port while nothing else is queued is the one ``IdleWork`` makes its
  issuer run at its next GetQueuedCompletionStatus: waking a worker for it only made that
  worker wake, find the GIL held, and find nothing (five context switches per QD1 read, 30 %
  of the IOPS). Such a request wakes nobody while an idle worker *watches*: it parks with a
  timeout of ``WATCH`` seconds and, at each tick, takes what is still queued. An issuer that
  parks anywhere else first (a kernel wait, a timed GetQueuedCompletionStatus, a pool wait) or
  exits hands the request to a worker at once (``ThreadState.on_block``, run by the kernel's
  ``block()``: ``park_wakes``); the tick is left for an issuer that runs on without parking
  (CPU work, a plain ``threading`` lock or ``time.sleep``), whose request starts within a
  tick. The tick is a safety net, not the
  completion path (the issuer's own wait runs the request at once), and it runs only while
  FILE requests are outstanding (``_files``) or such a request came since the last tick:
  an idle process has no watcher ticking (at most one tick after its last request). With no
  watcher, a request wakes a worker as any other (which then watches).
- **Worker -> waiter.** A worker delivers its completion with its wakes deferred past the
  dispatcher lock (``_parker.defer_wakes``): a port waiter (or event waiter) parked on a futex
  parker is woken after the lock, without the GIL, and finds both free (a waiter leading an
  io_uring ring is poked after the lock too: ``uring.lead.RingParker.release``). Issuers get
  such a parker on their first FILE request (``_parker.bind``: a ring leader's kept lock).

A worker that stays busy accounts for the request it ran and takes the next one in one hold
of the backend lock, then delivers. ``counters()`` has the hand-offs' counts (tests).

Interrupts. A Ctrl-C (a signal handler's KeyboardInterrupt, main thread only) lands where
CPython checks for signals: the end of a call, never between two stores. The paths an
issuer's thread takes (``submit``, ``cancel``, ``run_queued_here``, ``_finish``) hold the lock
with ``with`` (released whatever happens) and change a request's state by stores up to one
last call, or put it right in an ``except``/``finally``: a request is queued in full or not at
all, a request taken out of the queue is run or put back, one taken out of ``_in_flight`` is
delivered (tests/kernel/test_interrupted_locks.py). Worker threads get no signals.

The reactor is its own object (``_reactor.StreamReactor``, which owns its state and thread):
``submit``/``cancel``/``close`` post commands to it. Cancellation of a request waiting for
readiness completes it with STATUS_CANCELLED at once; a FILE request already running on a
worker cannot be interrupted and completes with its real result (allowed by
[MS:CancelIoEx]); one still queued completes cancelled. The contract is in ``winaio._io._backend``.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import deque
from typing import Any

from .._io._backend import BackendStatistics, IdleWork, OpKind, add_idle_work
from .._io._ops import Operation
from .._kernel._parker import AVAILABLE as FUTEX_PARKERS
from .._kernel._parker import Wake, WorkerParker, bind
from .._kernel._parker import deferral as _deferral
from ..codes import NtStatus
from ._reactor import StreamReactor

__all__ = ["WATCH", "ThreadBackend"]

_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_QUEUED, _RUNNING = "queued", "running"
_names = itertools.count()
#: A watching idle worker's tick (seconds): the safety net of a request that woke nobody
#: (module docstring).
WATCH = 0.001


class _LockParker:
    """A worker's parker where futex parkers are unavailable: ``threading.Lock`` semantics."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        if self._lock.locked():
            self._lock.release()

    wake = release


class ThreadBackend:
    """Worker pool for files + epoll reactor for streams (module docstring).

    Args:
        workers: size of the FILE worker pool.
    """

    name = "threads"

    def __init__(self, workers: int = 8) -> None:
        self._lock = threading.Lock()
        #: FILE requests waiting for a thread, FIFO; idle workers' parkers, LIFO.
        self._queue: deque[Operation] = deque()
        self._idle: list[Any] = []
        #: Idle workers' parkers popped and woken, whose workers have not looked yet.
        self._woken: set[Any] = set()
        self._stopping = False
        #: FILE requests queued or running; a request that woke nobody came since the last
        #: tick; the watcher's parker: the idle worker that watches, or the one woken to
        #: (module docstring).
        self._files = 0
        self._lazy_seen = False
        self._watcher: Any = None
        self._worker_wakes = self._watch_wakes = self._watch_takes = self._deferred_wakes = 0
        self._chain_wakes = self._park_wakes = 0
        self._on_issuer_park = self._issuer_parks  # (bound once: set on every lone request)
        #: Submitted, not yet completed (a dict used as an ordered set: ``in_flight[op] = None``
        #: is a store, where no signal handler runs: "Interrupts" in the module docstring).
        self._in_flight: dict[Operation, None] = {}
        self._drained = threading.Condition(self._lock)
        self._closed = False
        self._submitted = self._completed = self._cancelled = 0
        serial = next(_names)
        self._workers = [
            threading.Thread(
                target=self._worker, name=f"winaio-io-worker-{serial}-{i}", daemon=True
            )
            for i in range(workers)
        ]
        self._reactor = StreamReactor(self._finish, f"winaio-io-reactor-{serial}")
        for thread in self._workers:
            thread.start()
        self._reactor.start()
        _live.add(self)

    # ------------------------------------------------------------------ Backend protocol
    def submit(self, op: Operation) -> None:
        if op.kind is not OpKind.FILE:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the thread backend is closed")
                self._in_flight[op] = None
                self._submitted += 1
                op.token = _QUEUED
            self._reactor.post("add", op)
            return
        issuer = op.issuer
        parker = issuer.parker
        if (
            parker.__class__ is not WorkerParker
            and FUTEX_PARKERS
            and getattr(parker, "lock", None).__class__ is not WorkerParker
        ):
            bind(issuer)  # once per thread: woken without the GIL (module docstring)
        wake = None
        lock = self._lock
        try:
            with lock:
                if self._closed:
                    raise RuntimeError("the thread backend is closed")
                # Taken in full or not at all: stores only up to the append, the one call
                # (module docstring, "Interrupts").
                self._in_flight[op] = None
                self._submitted += 1
                self._files += 1
                op.token = _QUEUED
                IdleWork.queued += 1  # a hint for waiting threads (_run_queued_here)
                queue = self._queue
                queue.append(op)
                idle = self._idle
                if idle:
                    try:
                        if (
                            len(queue) == 1
                            and op.event is None
                            and op.routine is None
                            and not op.skip_port
                            and issuer.block_listener is not None
                            and issuer.block_listener is op.file.port
                        ):
                            # The lone request its issuer, a thread of this port, will most
                            # likely run at its next GetQueuedCompletionStatus: a watching
                            # worker covers it.
                            self._lazy_seen = True
                            if self._watcher is None and not self._woken:
                                wake = self._watcher = idle[-1]
                                del idle[-1]
                            else:
                                # If the issuer parks anywhere else first (a kernel wait, a
                                # timed GetQueuedCompletionStatus) or exits, a worker takes
                                # it then.
                                issuer.on_block = self._on_issuer_park
                        elif not self._woken:
                            # (A worker woken already, not yet running, wakes the next one
                            # itself if it leaves work queued: one wake-up per burst here.)
                            wake = idle[-1]
                            del idle[-1]
                        if wake is not None:
                            self._woken.add(wake)
                            self._worker_wakes += 1
                    except BaseException:  # (Ctrl-C) queued: make sure a worker comes
                        if wake is None and idle and not self._woken:
                            wake = idle[-1]
                            del idle[-1]
                        if wake is not None:
                            self._woken.add(wake)
                        raise
        finally:
            if wake is not None:
                wake.wake()  # after the lock, without the GIL (module docstring)

    def cancel(self, op: Operation) -> None:
        if op.kind is OpKind.FILE:
            cancel_now = False
            try:
                with self._lock:
                    cancel_now = op.token == _QUEUED and op in self._in_flight
                    if cancel_now:
                        op.token = _RUNNING  # the worker that dequeues it will skip it
            finally:
                if cancel_now:  # (even if interrupted: the worker skips it now)
                    self._finish(op, _CANCELLED, 0, cancelled=True)
        else:
            self._reactor.post("cancel", op)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._in_flight)
        for op in pending:
            self.cancel(op)
        with self._lock:
            self._drained.wait_for(lambda: not self._in_flight, timeout=30)
            self._stopping = True
            # What is left queued was cancelled (completed) already: drop it, and its hint.
            IdleWork.queued -= len(self._queue)
            self._queue.clear()
            idle = list(self._idle)
            self._idle.clear()
        for parker in idle:
            parker.wake()
        for thread in self._workers:
            thread.join(5)
        self._reactor.close()

    def statistics(self) -> BackendStatistics:
        with self._lock:
            return BackendStatistics(
                name=self.name,
                submitted=self._submitted,
                completed=self._completed,
                cancelled=self._cancelled,
                in_flight=len(self._in_flight),
                threads=0 if self._closed else len(self._workers) + 1,
                detail=f"{len(self._workers)} file workers + 1 epoll reactor",
            )

    def counters(self) -> dict[str, int]:
        """How the hand-offs went (tests, benchmarks): workers woken by ``submit``, by another
        worker that left requests queued (``chain_wakes``), watch
        ticks, requests a watching worker took, completions whose waiters were woken after
        the dispatcher lock without the GIL, workers woken because the issuer of a lone
        request parked elsewhere (``park_wakes``, ``_issuer_parks``)."""
        with self._lock:
            return {
                "worker_wakes": self._worker_wakes,
                "chain_wakes": self._chain_wakes,
                "watch_ticks": self._watch_wakes,
                "watch_takes": self._watch_takes,
                "deferred_wakes": self._deferred_wakes,
                "park_wakes": self._park_wakes,
            }

    def _issuer_parks(self) -> None:
        """``ThreadState.on_block`` of the issuer of a lone request that woke nobody
        (``submit``): it parks somewhere other than the port wait that would run the request
        (a kernel wait: WaitForSingleObject, SleepEx, a critical section; a timed
        GetQueuedCompletionStatus), or exits. An idle worker is woken for the request now,
        rather than at the watcher's next tick."""
        if not self._queue:
            return  # run already (by its issuer's port wait, a worker, a tick)
        wake = None
        with self._lock:
            idle = self._idle
            if self._queue and idle and not self._woken:
                wake = idle.pop()
                self._woken.add(wake)
                self._park_wakes += 1
        if wake is not None:
            wake.wake()  # after the lock, without the GIL

    # ------------------------------------------------------------------ completion
    def _finish(self, op: Operation, status: int, information: int, cancelled: bool) -> None:
        taken = False
        try:
            with self._lock:
                in_flight = self._in_flight
                if op not in in_flight:
                    return
                del in_flight[op]  # (a store: from here it is delivered, even if interrupted)
                taken = True
                self._completed += 1
                if op.kind is OpKind.FILE:
                    self._files -= 1
                if cancelled:
                    self._cancelled += 1
                if not in_flight:
                    self._drained.notify_all()
        finally:
            if taken:
                op.complete(status, information)

    @staticmethod
    def _complete_deferred(op: Operation, status: int, information: int) -> list[Wake]:
        """``op.complete`` with this thread's wakes deferred (``_parker.defer_wakes``, inlined:
        once per request): returns the wakes, for the caller to make once it holds no
        reference to ``op`` any more - a woken waiter may free the request's buffers at once
        (an mmap closed right after its completion), and the GIL-free wake lets it run
        before this thread goes on."""
        previous = _deferral.wakes
        wakes: list[Wake] = []
        _deferral.wakes = wakes
        try:
            op.complete(status, information)
        except BaseException:  # (a bug in a delivery: wake them anyway)
            _deferral.wakes = previous
            for wake in wakes:
                wake()
            raise
        _deferral.wakes = previous
        return wakes

    # ------------------------------------------------------------------ file workers
    def _worker(self) -> None:
        """A FILE worker: run queued requests; park (on its own parker, listed in ``_idle``)
        when there are none. While busy, a request it ran is accounted for in the lock hold
        that takes the next one, and delivered right after (one backend-lock round trip per
        request). A busy worker is never the watcher (``_take_locked`` ended that)."""
        parker: Any = WorkerParker() if FUTEX_PARKERS else _LockParker()
        lock = self._lock
        queue = self._queue
        idle = self._idle
        woken = self._woken
        in_flight = self._in_flight
        ticked = False
        while True:
            op = chain = None
            stop = park = watching = False
            lock.acquire()  # (not ``with``: a worker thread gets no signals, "Interrupts")
            try:
                if ticked:
                    self._watch_wakes += 1
                if woken:
                    woken.discard(parker)
                if parker in idle:  # woken by a tick, or by a late token (not popped)
                    idle.remove(parker)
                if queue:
                    if ticked:
                        self._watch_takes += 1  # a request nobody ran within a tick
                    op, chain = self._take_locked(parker)
                elif self._stopping:
                    stop = True
                else:
                    park = True
                    idle.append(parker)
                    watcher = self._watcher
                    if (watcher is None or watcher is parker) and (self._lazy_seen or self._files):
                        self._lazy_seen = False
                        self._watcher = parker
                        watching = True
                    elif watcher is parker:
                        self._watcher = None  # nothing outstanding: no more ticks
            finally:
                lock.release()
            ticked = False
            if chain is not None:
                chain.wake()  # after the lock, without the GIL
            if stop:
                return
            if watching:
                ticked = not parker.acquire(True, WATCH)
            elif park:
                parker.acquire()
            while op is not None:  # busy: run, account + take the next, deliver
                status, information = op.run_blocking()
                following: Operation | None = None
                chain = None
                lock.acquire()
                try:
                    deliver = op in in_flight  # (else: finished by a close)
                    if deliver:
                        del in_flight[op]
                        self._completed += 1
                        self._files -= 1
                        if not in_flight:
                            self._drained.notify_all()
                    if queue:  # _take_locked, inlined (once per request while busy)
                        following = queue.popleft()
                        IdleWork.queued -= 1
                        if following.token == _QUEUED:
                            following.token = _RUNNING
                        else:
                            following = None  # cancelled while queued
                        if queue and idle and not woken:
                            chain = idle.pop()
                            woken.add(chain)
                            self._chain_wakes += 1
                finally:
                    lock.release()
                wakes = self._complete_deferred(op, status, information) if deliver else None
                # No reference to the delivered request from here (its buffers are its
                # owner's again: an mmap may be closed as soon as its waiter runs), then the
                # waiters' wakes, after the dispatcher lock and without the GIL.
                op = following
                if wakes:
                    self._deferred_wakes += 1  # a statistic (GIL-atomic enough for tests)
                    for wake in wakes:
                        wake()
                if chain is not None:
                    chain.wake()

    def _take_locked(self, parker: Any) -> tuple[Operation | None, Any]:
        """A worker takes the head of the queue (under the lock, the queue not empty): the
        request to run (None if it was cancelled while queued) and the parker of an idle
        worker to wake after the lock if more stays queued and nobody is on the way."""
        if self._watcher is parker:
            self._watcher = None  # busy: the next idle worker watches
        queue = self._queue
        op: Operation | None = queue.popleft()
        IdleWork.queued -= 1
        assert op is not None
        if op.token == _QUEUED:
            op.token = _RUNNING
        else:
            op = None  # cancelled while queued (completed by the cancel)
        chain = None
        if queue and self._idle and not self._woken:
            # More queued than this worker takes, nobody on the way: wake the next idle
            # worker (the issuer woke only one per burst).
            chain = self._idle.pop()
            self._woken.add(chain)
            self._chain_wakes += 1
        return op, chain

    def run_queued_here(self) -> bool:
        """A waiting thread runs one queued FILE request itself (``IdleWork``). An exception
        (Ctrl-C) once the request is out of the queue puts it back (:meth:`_requeue`)."""
        op = None
        try:
            with self._lock:
                queue = self._queue
                if not queue:
                    return False
                op = queue[0]  # (subscripts, not popleft(): no signal check in between)
                del queue[0]
                IdleWork.queued -= 1
                run = op.token == _QUEUED  # otherwise it was cancelled while queued
                if run:
                    op.token = _RUNNING
            if run:
                status, information = op.run_blocking()
        except BaseException:
            if op is not None:
                self._requeue(op)
            raise
        if run:
            self._finish(op, status, information, cancelled=False)
        return True

    def _requeue(self, op: Operation) -> None:
        """An exception came out of a request's run (a waiting thread's Ctrl-C while it ran
        the request itself, ``IdleWork``): back to the head of the queue, for a worker (woken
        here) or the next waiter (a positioned read or write runs again the same); cancelled
        if a cancel came."""
        wake = None
        with self._lock:
            if op not in self._in_flight or op.token != _RUNNING or op in self._queue:
                return  # (finished, or never taken out: nothing to put back)
            cancelled = op.cancel_requested
            if not cancelled:
                op.token = _QUEUED
                self._queue.appendleft(op)
                IdleWork.queued += 1
                if self._idle and not self._woken:
                    wake = self._idle.pop()
                    self._woken.add(wake)
                    self._worker_wakes += 1
        if cancelled:
            self._finish(op, _CANCELLED, 0, cancelled=True)
        elif wake is not None:
            wake.wake()


_live: weakref.WeakSet[ThreadBackend] = weakref.WeakSet()


def _run_queued_here() -> bool:
    # Only a lone request: with more queued, the workers run them in parallel, and a waiter
    # busy in one of them would leave the completions of the others waiting for it.
    if IdleWork.queued != 1:
        return False
    return any(backend.run_queued_here() for backend in list(_live))


add_idle_work(_run_queued_here)
