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

All reactor state is touched only by the reactor thread: ``submit``/``cancel``/``close`` post
commands to it and wake it through an eventfd. Cancellation of a request waiting for readiness
completes it with STATUS_CANCELLED at once; a FILE request already running on a worker cannot be
interrupted and completes with its real result (allowed by [MS:CancelIoEx]); one still queued
completes cancelled. The contract is in ``winaio._io._backend``.
"""

from __future__ import annotations

import itertools
import os
import queue
import select
import threading
import weakref
from collections import deque

from .._io._backend import BackendStatistics, IdleWork, OpKind, add_idle_work
from .._io._ops import Operation
from ..codes import NtStatus

__all__ = ["ThreadBackend"]

_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_QUEUED, _RUNNING = "queued", "running"
_names = itertools.count()


class _FdQueues:
    __slots__ = ("events", "readers", "writers")

    def __init__(self) -> None:
        self.readers: deque[Operation] = deque()
        self.writers: deque[Operation] = deque()
        self.events = 0


class ThreadBackend:
    """Worker pool for files + epoll reactor for streams (module docstring).

    Args:
        workers: size of the FILE worker pool.
    """

    name = "threads"

    def __init__(self, workers: int = 8) -> None:
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue[Operation | None] = queue.SimpleQueue()
        self._commands: deque[tuple[str, Operation | None]] = deque()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_pending = False
        self._epoll = select.epoll()
        self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._fds: dict[int, _FdQueues] = {}
        self._in_flight: set[Operation] = set()
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
        self._reactor = threading.Thread(
            target=self._reactor_loop, name=f"winaio-io-reactor-{serial}", daemon=True
        )
        for thread in self._workers:
            thread.start()
        self._reactor.start()
        _live.add(self)

    # ------------------------------------------------------------------ Backend protocol
    def submit(self, op: Operation) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the thread backend is closed")
            self._in_flight.add(op)
            self._submitted += 1
            op.token = _QUEUED
            if op.kind is OpKind.FILE:
                IdleWork.queued += 1  # a hint for waiting threads (_run_queued_here)
        if op.kind is OpKind.FILE:
            self._work.put(op)
        else:
            self._command("add", op)

    def cancel(self, op: Operation) -> None:
        if op.kind is OpKind.FILE:
            with self._lock:
                cancel_now = op.token == _QUEUED and op in self._in_flight
                if cancel_now:
                    op.token = _RUNNING  # the worker that dequeues it will skip it
            if cancel_now:
                self._finish(op, _CANCELLED, 0, cancelled=True)
        else:
            self._command("cancel", op)

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
        for _ in self._workers:
            self._work.put(None)
        self._command("stop", None)
        for thread in [*self._workers, self._reactor]:
            thread.join(5)
        self._epoll.close()
        os.close(self._wake_fd)

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

    # ------------------------------------------------------------------ completion
    def _finish(self, op: Operation, status: int, information: int, cancelled: bool) -> None:
        with self._lock:
            if op not in self._in_flight:
                return
            self._in_flight.discard(op)
            self._completed += 1
            if cancelled:
                self._cancelled += 1
            if not self._in_flight:
                self._drained.notify_all()
        op.complete(status, information)

    # ------------------------------------------------------------------ file workers
    def _worker(self) -> None:
        work = self._work
        while True:
            op = work.get()
            if op is None:
                return
            self._run(op)
            # Do not keep the last request (its buffers, e.g. an mmap) alive while idle.
            del op

    def _run(self, op: Operation) -> None:
        """Run a dequeued FILE request, unless it was cancelled while queued."""
        with self._lock:
            IdleWork.queued -= 1
            run = op.token == _QUEUED  # otherwise it was cancelled while queued
            if run:
                op.token = _RUNNING
        if run:
            try:
                status, information = op.run_blocking()
            except BaseException:
                self._requeue(op)
                raise
            self._finish(op, status, information, cancelled=False)

    def _requeue(self, op: Operation) -> None:
        """An exception came out of a request's run (a waiting thread's Ctrl-C while it ran
        the request itself, ``IdleWork``): back to the queue, for a worker or the next waiter
        (a positioned read or write runs again the same); cancelled if a cancel came."""
        with self._lock:
            if op not in self._in_flight:
                return
            cancelled = op.cancel_requested
            if not cancelled:
                op.token = _QUEUED
                IdleWork.queued += 1
        if cancelled:
            self._finish(op, _CANCELLED, 0, cancelled=True)
        else:
            self._work.put(op)

    def run_queued_here(self) -> bool:
        """A waiting thread runs one queued FILE request itself (``IdleWork``)."""
        try:
            op = self._work.get_nowait()
        except queue.Empty:
            return False
        if op is None:  # closing: leave the stop marker to a worker
            self._work.put(None)
            return False
        self._run(op)
        return True

    # ------------------------------------------------------------------ stream reactor
    def _command(self, what: str, op: Operation | None) -> None:
        with self._lock:
            self._commands.append((what, op))
            if self._wake_pending:
                return
            self._wake_pending = True
        os.eventfd_write(self._wake_fd, 1)

    def _reactor_loop(self) -> None:
        epoll = self._epoll
        while True:
            for fd, mask in epoll.poll():
                if fd == self._wake_fd:
                    if self._run_commands():
                        return
                else:
                    self._ready(fd, mask)

    def _run_commands(self) -> bool:
        try:
            os.eventfd_read(self._wake_fd)
        except BlockingIOError:
            pass
        with self._lock:
            self._wake_pending = False
            commands = list(self._commands)
            self._commands.clear()
        for what, op in commands:
            if what == "stop":
                return True
            assert op is not None
            if what == "add":
                self._add(op)
            else:
                self._remove(op)
        return False

    def _add(self, op: Operation) -> None:
        if op.cancel_requested:
            # Cancelled between its registration and its arrival here: the "cancel" command
            # ran first and found nothing (the flag is set before it is queued).
            self._finish(op, _CANCELLED, 0, cancelled=True)
            return
        fd = op.fd
        queues = self._fds.get(fd)
        if queues is None:
            queues = self._fds[fd] = _FdQueues()
        (queues.readers if op.poll_events & select.POLLIN else queues.writers).append(op)
        op.token = fd
        self._update(fd, queues)
        # Data may already be there: epoll is level-triggered, the next poll reports it.

    def _remove(self, op: Operation) -> None:
        fd = op.token
        queues = self._fds.get(fd) if isinstance(fd, int) else None
        if queues is not None:
            for line in (queues.readers, queues.writers):
                try:
                    line.remove(op)
                except ValueError:
                    continue
                self._update(fd, queues)
                self._finish(op, _CANCELLED, 0, cancelled=True)
                return

    def _update(self, fd: int, queues: _FdQueues) -> None:
        events = (select.EPOLLIN if queues.readers else 0) | (
            select.EPOLLOUT if queues.writers else 0
        )
        if events == queues.events:
            return
        try:
            if not events:
                self._epoll.unregister(fd)
                del self._fds[fd]
            elif not queues.events:
                self._epoll.register(fd, events)
            else:
                self._epoll.modify(fd, events)
        except OSError:
            # The descriptor was closed under us: fail what waits on it.
            self._fds.pop(fd, None)
            for op in [*queues.readers, *queues.writers]:
                self._finish(op, int(NtStatus.STATUS_INVALID_HANDLE), 0, cancelled=False)
            return
        queues.events = events

    def _ready(self, fd: int, mask: int) -> None:
        queues = self._fds.get(fd)
        if queues is None:
            return
        error = bool(mask & (select.EPOLLERR | select.EPOLLHUP))
        finished: list[tuple[Operation, int, int]] = []
        moved: list[Operation] = []
        for line, flag in ((queues.readers, select.EPOLLIN), (queues.writers, select.EPOLLOUT)):
            if not (mask & flag or error):
                continue
            while line:
                op = line[0]
                result = op.try_now()
                if result is None:
                    if op.fd != fd:  # AcceptEx moved on to its accepted socket
                        moved.append(line.popleft())
                        continue
                    break
                line.popleft()
                finished.append((op, result[0], result[1]))
        # Drop the epoll registration *before* completing: the completion may close the
        # descriptor, and its number could be reused at once by another file.
        self._update(fd, queues)
        for op in moved:
            self._add(op)
        for op, status, information in finished:
            self._finish(op, status, information, cancelled=False)


_live: weakref.WeakSet[ThreadBackend] = weakref.WeakSet()


def _run_queued_here() -> bool:
    # Only a lone request: with more queued, the workers run them in parallel, and a waiter
    # busy in one of them would leave the completions of the others waiting for it.
    if IdleWork.queued != 1:
        return False
    return any(backend.run_queued_here() for backend in list(_live))


add_idle_work(_run_queued_here)
