"""STREAM operations on the io_uring backend: per-descriptor FIFO lines and readiness polls.

Purpose: the half of ``IoUringBackend`` (``_uring``) that finishes sockets and pipes.

Rules (the module docstring of ``_uring`` has the whole picture):

- Readiness based, like the thread backend: a one-shot ``POLL_ADD`` on ``op.fd`` for
  ``op.poll_events``; when it fires, ``op.try_now()`` runs on the ring thread (it never
  blocks: the descriptors are non-blocking); ``None`` polls again. Any poll result retries
  ``try_now`` - POLLERR and POLLHUP included, because it reports the error, EOF or broken pipe.
- Requests wait in one :class:`Line` per (fd, direction) and only the head polls, so pending
  requests complete in issue order (spec #66: two pending reads on a pipe). When the head
  finishes, the next is tried at once (data may already be there).
- AcceptEx switches to the accepted socket (``op.fd`` changes): the head moves to that line.
- Lines are guarded by the backend's ``_lock``; only the ring thread removes a head. A
  canceller removes a request queued behind the head itself (it never reached the kernel);
  the head is cancelled through its POLL_ADD's user_data, or - between two polls - by the
  ring thread, which checks ``cancel_requested`` under the lock before polling again.

Also the vocabulary the backend's modules share (``_uring``, ``_uring_sqpoll``,
``_uring_close``): statuses, backlog kinds, reserved user_data, :func:`report`.

Imports ``winaio._io`` (operations) and the ABI modules only.
"""

from __future__ import annotations

import errno
import select
import sys
import threading
from collections import deque
from typing import Any

from .._io._ops import Operation, errno_to_status
from ..codes import NtStatus
from ._uring_abi import SubmissionQueueFull
from ._uring_ring import BackendRing

__all__ = [
    "B_CANCEL",
    "B_FILE",
    "B_POLL",
    "CANCELLED",
    "ECANCELED",
    "FIRST_UD",
    "REAP_BATCH",
    "UD_CANCEL",
    "UD_WAKE",
    "UNSUCCESSFUL",
    "Finished",
    "Line",
    "StreamLines",
    "report",
]

CANCELLED = int(NtStatus.STATUS_CANCELLED)
UNSUCCESSFUL = int(NtStatus.STATUS_UNSUCCESSFUL)
ECANCELED = -errno.ECANCELED
#: A poll result meaning "no poll happened: just retry the head".
RETRY = 0
# Backlog entries: (kind, op, line-or-user_data).
B_FILE, B_POLL, B_CANCEL = 0, 1, 2
# Reserved user_data values; requests count up from FIRST_UD and are never reused.
UD_WAKE = 1  # the eventfd POLL_ADD
UD_CANCEL = 2  # every ASYNC_CANCEL (its own result is not needed)
FIRST_UD = 16
#: CQEs reaped from a ring at once.
REAP_BATCH = 1024

Finished = list[tuple[Operation, int, int]]
"""Completions collected by the ring thread in one round: (op, status, information)."""

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT


def report(what: str) -> None:
    """Report the exception being handled without letting it out of the ring thread.

    A bug in an operation or in the delivery path must not kill the ring thread (every other
    request would hang): it is reported the way an uncaught thread exception is.
    """
    exc = sys.exception()
    if exc is None:
        return
    exc.add_note(f"winaio io_uring backend: {what}")
    args = (type(exc), exc, exc.__traceback__, threading.current_thread())
    threading.excepthook(threading.ExceptHookArgs(args))


class Line:
    """The FIFO of STREAM requests waiting on one descriptor in one direction.

    Only ``ops[0]`` (the head) ever has a POLL_ADD in flight (``poll_ud``, 0 if none).
    Guarded by the backend's ``_lock``; the head is removed only by the ring thread.
    """

    __slots__ = ("fd", "key", "ops", "poll_ud")

    def __init__(self, fd: int, key: tuple[int, int]) -> None:
        self.fd = fd
        self.key = key
        self.ops: deque[Operation] = deque()
        self.poll_ud = 0


class StreamLines:
    """The STREAM half of ``IoUringBackend`` (a mixin; module docstring)."""

    # Provided by IoUringBackend.
    _lock: threading.Lock
    _ring: BackendRing
    _ops: dict[int, tuple[Operation, object]]
    _lines: dict[tuple[int, int], Line]
    _backlog: deque[tuple[int, Operation | None, Any]]
    _next_ud: int
    _closing: bool

    def _backlog_locked(self, kind: int, op: Operation | None, arg: Any) -> None:
        raise NotImplementedError

    def _enqueue_locked(self, op: Operation) -> bool:
        """Put a STREAM op at the tail of its line; the head polls. True if it polls (the
        ring thread has something to submit)."""
        fd = op.fd
        key = (fd, _POLLIN if op.poll_events & _POLLIN else _POLLOUT)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = Line(fd, key)
        line.ops.append(op)
        op.token = line
        if len(line.ops) > 1:
            return False
        self._poll_locked(op, line)
        return True

    def _poll_locked(self, op: Operation, line: Line) -> None:
        line.poll_ud = 0
        if not self._backlog:
            ud = self._next_ud
            try:
                self._ring.prep_poll_add(line.fd, op.poll_events, ud)
            except SubmissionQueueFull:
                pass
            else:
                self._next_ud = ud + 1
                self._ops[ud] = (op, line)
                line.poll_ud = ud
                return
        self._backlog_locked(B_POLL, op, line)

    def _given_up(self, op: Operation) -> bool:
        """Cancelled, or the backend is closing: do not poll (again), complete it cancelled."""
        return op.cancel_requested or self._closing

    def _service(self, line: Line, res: int, finished: Finished) -> None:
        """The head of ``line`` had its poll end with ``res`` (``RETRY``: no poll): retry
        heads until one would block (it polls again) or the line is empty. Completions are
        appended to ``finished`` in line order."""
        lock = self._lock
        with lock:
            line.poll_ud = 0
        while True:
            with lock:
                if not line.ops:
                    if self._lines.get(line.key) is line:
                        del self._lines[line.key]
                    return
                op = line.ops[0]
                if res == ECANCELED or self._given_up(op):
                    line.ops.popleft()
                    finished.append((op, CANCELLED, 0))
                    res = RETRY
                    continue
            result: tuple[int, int] | None
            if res < 0:
                result = errno_to_status(-res), 0  # the poll itself failed (EBADF...)
            else:
                try:
                    result = op.try_now()  # POLLERR/POLLHUP too: it reports the error or EOF
                except Exception:
                    report(f"retrying {op!r}")
                    result = UNSUCCESSFUL, 0
            res = RETRY
            with lock:
                if result is None:
                    if self._given_up(op):  # a cancel came while try_now ran
                        result = CANCELLED, 0
                    elif op.fd != line.fd:  # AcceptEx: now waits on the accepted socket
                        line.ops.popleft()
                        self._enqueue_locked(op)
                        continue
                    else:
                        self._poll_locked(op, line)
                        return
                line.ops.popleft()
            finished.append((op, *result))
