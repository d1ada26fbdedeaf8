"""STREAM operations on the io_uring backend: per-descriptor FIFO lines and readiness polls.

Purpose: :class:`StreamLines`, which owns the lines of STREAM requests (sockets and pipes)
waiting on the backend, and runs their heads when a poll says the descriptor is ready.

Rules (the module docstring of ``backend`` has the whole picture):

- A head that pends puts one request into the kernel: the operation itself when it can
  (``op.prep_pending``: a read becomes a RECV, or a READ on a pipe, which the kernel completes
  with the data once there is some: its CQE is mapped by ``op.from_cqe``), else a one-shot
  ``POLL_ADD`` on ``op.fd`` for ``op.poll_events``; when the poll fires, ``op.try_now()`` runs
  on the reaping thread (it never blocks: the descriptors are non-blocking); ``None`` polls
  again. Any poll result retries ``try_now`` - POLLERR and POLLHUP included, because it
  reports the error, EOF or broken pipe.
- Requests wait in one :class:`Line` per (fd, direction) and only the head polls, so pending
  requests complete in issue order (spec #66: two pending reads on a pipe). When the head
  finishes, the next is tried at once (data may already be there).
- A reap that brings several RECVs of direct heads (a busy socket server: one per connection)
  completes the plain ones - alone in their line - in one hold of the lock for the batch
  (:meth:`StreamLines.service_direct`); completions keep their order within each line (one
  request per line is in the kernel), not between lines.
- AcceptEx switches to the accepted socket (``op.fd`` changes): the head moves to that line.
- Lines are guarded by the backend's lock; only the reaper removes a head. A canceller
  removes a request queued behind the head itself (it never reached the kernel); the head is
  cancelled through its POLL_ADD's user_data, or - between two polls - by the reaper, which
  checks ``cancel_requested`` under the lock before polling again.
- Interrupts (a Ctrl-C on a leader thread, which reaps): :meth:`StreamLines.service` and
  :meth:`StreamLines.service_direct` take a head out of its line, clear ``poll_ud`` and put it
  into ``finished`` by statements up to that one call (CPython runs a signal handler at the
  end of a call, not between statements): before it, the line still holds the head with
  ``poll_ud`` set (the reaper services it again: ``ReaperCuts.heads_cut`` and the
  one-CQE path); after it, the request is delivered. Locks are held with ``with``. An
  interrupt inside :meth:`StreamLines.service`'s loop gives the line back and re-arms its
  head (``_cut``); left ``busy``, the line would wait for ever. (Not covered: a ``try_now``
  interrupted after its syscall took data - the result is lost with the call's return.)
- Arming the head's request is the ring's business: the backend gives its ``arm(op, line)``
  (under the lock), which sets ``line.poll_ud`` (and ``line.direct``, ``line.keep`` for the
  operation itself) or backlogs a poll.

:meth:`StreamLines.service_direct` and :meth:`StreamLines.service`'s first case have a C
accelerator (``_io/_fastdone.c``, installed by ``reaper``): the same effects, no Python code
while the lock is held on the plain shape.

Imports ``winaio._io`` (operations), ``codes`` and ``common`` only.
"""

from __future__ import annotations

import errno
import select
import threading
from collections import deque
from collections.abc import Callable

from ..._io._ops import Operation, errno_to_status
from ..._io._stream_ops import StreamReadOp
from ...codes import NtStatus
from .common import CANCELLED, ECANCELED, RETRY, UNSUCCESSFUL, Finished, report

__all__ = ["Line", "StreamLines"]

_POLLIN = select.POLLIN
_EAGAIN = -errno.EAGAIN
_SUCCESS = int(NtStatus.STATUS_SUCCESS)
#: What a positive CQE result of a direct head maps to is known for this one (success, res).
_READ_FROM_CQE = StreamReadOp.from_cqe
_SPARE_MAX = 64


class Line:
    """The FIFO of STREAM requests waiting on one descriptor in one direction.

    Only ``ops[0]`` (the head) ever has a request in the kernel (``poll_ud``, 0 if none): a
    POLL_ADD, or (``direct``) the operation itself, whose memory ``keep`` holds until its CQE.
    ``busy`` while a thread runs :meth:`StreamLines.service` on it: that thread takes care of
    every request in it, new ones included (nobody else may put the head into the kernel).
    Guarded by the backend's lock; the head is removed only by the servicing thread. ``key``
    (its key in ``StreamLines.lines``): ``2 * fd`` for reads, ``2 * fd + 1`` for writes.
    """

    __slots__ = ("busy", "direct", "fd", "keep", "key", "ops", "poll_ud")

    def __init__(self, fd: int, key: int) -> None:
        self.fd = fd
        self.key = key
        self.ops: deque[Operation] = deque()
        self.poll_ud = 0
        self.direct = False
        self.keep: object = None
        self.busy = False


class StreamLines:
    """Every line of STREAM requests of one backend (module docstring).

    Args:
        lock: the backend's lock, which guards the lines.
        arm: ``arm(op, line)``, under ``lock``: start a readiness poll for the head ``op``.
    """

    __slots__ = ("_arm", "_lock", "_spare", "closing", "lines")

    def __init__(self, lock: threading.Lock, arm: Callable[[Operation, Line], None]) -> None:
        self._lock = lock
        self._arm = arm
        self.lines: dict[int, Line] = {}
        #: Empty lines kept for reuse (a pended receive makes and ends one each time).
        self._spare: list[Line] = []
        #: Set (under the lock) when the backend closes: heads are cancelled, not polled again.
        self.closing = False

    def given_up(self, op: Operation) -> bool:
        """Cancelled, or the backend is closing: do not poll (again), complete it cancelled."""
        return op.cancel_requested or self.closing

    def enqueue_locked(self, op: Operation) -> bool:
        """Put a STREAM op at the tail of its line; the head polls. True if it polls (the ring
        has something new to submit)."""
        fd = op.fd
        # (fd, direction) as one int: no tuple per request.
        key = fd + fd if op.poll_events & _POLLIN else fd + fd + 1
        line = self.lines.get(key)
        if line is None:
            spare = self._spare
            if spare:
                line = spare.pop()
                line.fd = fd
                line.key = key
            else:
                line = Line(fd, key)
            self.lines[key] = line
        line.ops.append(op)
        op.token = line
        if len(line.ops) > 1 or line.busy:
            return False  # behind the head, or the servicing thread will come to it
        self._arm(op, line)
        return True

    def open_direct_locked(self, op: Operation, key: int, ud: int, keep: object) -> Line:
        """A line for ``key`` (absent: the caller checked) whose head ``op`` is in the kernel
        already as itself (``ud``; ``keep`` holds its memory): the backend's one-hold pended
        receive (``IoUringBackend.submit``), what :meth:`enqueue_locked` and ``arm`` do for
        a head that becomes a RECV."""
        spare = self._spare
        if spare:
            line = spare.pop()
            line.fd = op.file.fd
            line.key = key
        else:
            line = Line(op.file.fd, key)
        line.ops.append(op)
        line.poll_ud = ud
        line.direct = True
        line.keep = keep
        op.token = line
        self.lines[key] = line
        return line

    def remove_locked(self, op: Operation, line: Line) -> bool:
        """Withdraw ``op`` queued behind its line's head (it never reached the kernel); False
        if it is not there (the head, or already completed)."""
        if line.ops and line.ops[0] is op:
            return False
        try:
            line.ops.remove(op)
        except ValueError:
            return False
        return True

    def service_direct(self, heads: list[tuple[Line, int, int]], finished: Finished) -> int:
        """:meth:`service` for a batch of lines whose head's own request (a RECV) brought data
        (``res`` > 0; the reaper's batch, ``Reaper.process``): the common case - the
        head alone in its line, a plain receive - completes in one hold of the lock for the
        whole batch (at C=64, one per reap rather than one per CQE); any other line goes
        through :meth:`service`. Same results, appended to ``finished`` in batch order per
        line; returns the cancelled count."""
        slow: list[tuple[Line, int]] = []
        lock = self._lock
        lines = self.lines
        spare = self._spare
        append = finished.append
        with lock:
            for line, res, _ in heads:  # (line, res, user_data of the head's CQE)
                ops = line.ops
                if (
                    len(ops) == 1
                    and line.direct
                    and not line.busy
                    and ops[0].__class__.from_cqe is _READ_FROM_CQE
                ):
                    op = ops[0]  # (statements up to the append: "Interrupts" above)
                    del ops[0]
                    line.poll_ud = 0
                    line.direct = False
                    line.keep = None
                    key = line.key
                    ended = key in lines and lines[key] is line
                    if ended:
                        del lines[key]
                    append((op, _SUCCESS, res))
                    if ended and len(spare) < _SPARE_MAX:
                        spare.append(line)  # as in service(): as good as new
                else:
                    slow.append((line, res))
        cancelled = 0
        for line, res in slow:
            cancelled += self.service(line, res, finished)
        return cancelled

    def service(self, line: Line, res: int, finished: Finished) -> int:
        """The head of ``line`` had its request end with ``res`` (``RETRY``: none): complete
        it, or retry heads until one would block (it polls again) or the line is empty.
        Completions are appended to ``finished`` in line order; returns how many of them are
        STATUS_CANCELLED (the backend's counters)."""
        lock = self._lock
        if res > 0 and line.direct:
            # The common case (a pended receive whose RECV brought data): one lock hold. A
            # positive result is the head's own byte count (``StreamReadOp.from_cqe``:
            # success), cancelled or not (the kernel took the data); alone in its line, the
            # line ends with it (what the loop below does in three holds).
            with lock:
                ops = line.ops
                if (
                    len(ops) == 1
                    and line.direct
                    and not line.busy
                    and ops[0].__class__.from_cqe is _READ_FROM_CQE
                ):
                    op = ops[0]  # (statements up to the append: "Interrupts" above)
                    del ops[0]
                    line.poll_ud = 0
                    line.direct = False
                    line.keep = None
                    lines = self.lines
                    key = line.key
                    ended = key in lines and lines[key] is line
                    if ended:
                        del lines[key]
                    finished.append((op, _SUCCESS, res))
                    if ended and len(self._spare) < _SPARE_MAX:
                        # Empty, idle, nothing in the kernel: as good as new. A completed
                        # request's stale ``token`` may still name it; ``cancel`` then finds
                        # that request neither at the head nor queued (as for a dead line).
                        self._spare.append(line)
                    return 0
        cancelled = 0
        with lock:
            line.poll_ud = 0
            direct = line.direct  # res is the head's own result, not a readiness
            line.direct = False
            line.keep = None  # the kernel is done with the head's memory
            # Until this returns, an issuer that finds the line empty must not put its
            # request into the kernel: this loop takes it (two requests of one line in the
            # kernel at once would take the data out of order).
            line.busy = True
        try:
            while True:
                with lock:
                    if not line.ops:
                        line.busy = False
                        if self.lines.get(line.key) is line:
                            del self.lines[line.key]
                        return cancelled
                    op = line.ops[0]
                    # A head whose own request came back with a result keeps it, cancelled or
                    # not: the kernel may have taken the data already.
                    if res == ECANCELED or (not direct and self.given_up(op)):
                        cancelled += 1
                        res = RETRY
                        direct = False  # the next head has nothing in the kernel yet
                        del line.ops[0]  # (statements up to the append: "Interrupts")
                        finished.append((op, CANCELLED, 0))
                        continue
                result: tuple[int, int] | None
                if direct:
                    direct = False
                    if res == _EAGAIN:
                        result = None  # (not seen with io_uring's internal poll) wait again
                    else:
                        try:
                            result = op.from_cqe(res)
                        except Exception:
                            report(f"mapping the CQE of {op!r}")
                            result = UNSUCCESSFUL, 0
                elif res < 0:
                    result = errno_to_status(-res), 0  # the poll itself failed (EBADF...)
                else:
                    try:
                        result = op.try_now()  # POLLERR/POLLHUP too: it reports the error/EOF
                    except Exception:
                        report(f"retrying {op!r}")
                        result = UNSUCCESSFUL, 0
                res = RETRY
                with lock:
                    if result is None:
                        if self.given_up(op):  # a cancel came while try_now ran
                            result = CANCELLED, 0
                        elif op.fd != line.fd:  # AcceptEx: now waits on the accepted socket
                            line.ops.popleft()
                            self.enqueue_locked(op)
                            continue
                        else:
                            line.busy = False
                            self._arm(op, line)
                            return cancelled
                    del line.ops[0]
                    finished.append((op, *result))
                if result[0] == CANCELLED:
                    cancelled += 1
        except BaseException:
            self._cut(line)
            raise

    def _cut(self, line: Line) -> None:
        """A BaseException (Ctrl-C) cut :meth:`service`'s loop while it held ``line``
        (``busy``): give the line back and put its head into the kernel again, so that it
        is not left waiting for a servicing thread that is gone. (Not if the loop had let the
        line go already: its head was armed, or is being armed.)"""
        with self._lock:
            if line.busy:
                line.busy = False
                if line.ops and not self.closing:
                    self._arm(line.ops[0], line)

    def pending(self) -> list[Operation]:
        """Every request still in a line (salvage, under the lock or after the reaper died)."""
        return [op for line in self.lines.values() for op in line.ops]
