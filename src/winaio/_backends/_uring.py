"""The io_uring backend: one ring, one ring thread that owns every request.

Purpose: finish the operations the I/O layer could not finish at once (``winaio._io._backend``)
with io_uring, at a few microseconds of Python per request.

Threads and ownership
---------------------
One thread, ``winaio-uring-<n>``, is the only caller of ``io_uring_enter``: it submits, sleeps
in the kernel until completions arrive, reaps them in batches and completes the operations.
This is what the Backend contract's invariant 3 needs. io_uring requests belong to the task
that *submitted* them: their task work runs in that thread, and when it exits the kernel
cancels them (``_uring_abi``, "Task work"). Win32 port-bound I/O must survive the exit of the
thread that issued it (spec §8), so no issuing thread ever enters the ring. They only *write*
SQEs into the SQ ring, under ``_lock`` (a ``pack_into``; the kernel sees nothing until the
ring thread publishes the tail). The ring thread lives until :meth:`IoUringBackend.close` has
drained everything. No SQPOLL (a kernel thread would poll for us) and no COOP_TASKRUN or
DEFER_TASKRUN: task work must interrupt the ring thread even while it runs Python code, or a
completion would wait for the next enter.

Wake-up protocol (no lost wake-ups, at most one eventfd write per sleep)
------------------------------------------------------------------------
The ring thread keeps a multishot ``POLL_ADD`` (5.13) armed on an eventfd (user_data
``_UD_WAKE``): every eventfd write posts a CQE, and any CQE ends ``io_uring_enter(GETEVENTS,
min_complete=1)``. The eventfd is never read in multishot mode; its counter only grows.

- Ring thread, under ``_lock``: publish the SQ tail (everything prepared so far), then set
  ``_sleeping`` - in the same critical section - then enter (submit + wait) without the lock.
  If CQEs are already waiting it does not wait and does not set the flag.
- Issuer, under ``_lock``: prepare its SQE; if ``_sleeping`` is set, clear it and, after
  releasing the lock, write the eventfd once. Later issuers see the flag cleared and write
  nothing: their SQEs are published at the ring thread's next loop, which is sure to come.

An SQE prepared before the ring thread's critical section is in the published tail; one
prepared after it sees ``_sleeping`` set, so a write follows (its own or the one already
decided in this round), and that write posts a CQE that ends the sleep - or, if it lands
before the ring thread reaches the kernel, makes the wait return at once. While the ring
thread works (flag clear) issuers never make a syscall: one wake-up and one enter serve a
whole burst. If the multishot poll ends (CQ overflow, or a kernel without multishot polls:
-EINVAL), the ring thread reads the eventfd dry and re-arms a poll before it sleeps again; the
re-armed poll fires at once if a write slipped in between, so the fallback is safe too.

FILE operations
---------------
``op.prep(ring, user_data)``: the ring is the ``SqeSink`` (``_uring_ring``). Every SQE gets a
fresh user_data from a counter; ``_ops[user_data] = (op, keepalive)`` holds the operation, its
buffers and the pinned iovecs until the CQE, then ``op.from_cqe(res)`` -> ``op.complete``.

STREAM operations (sockets, pipes)
----------------------------------
Readiness based, like the thread backend: a one-shot ``POLL_ADD`` on ``op.fd`` for
``op.poll_events``, then ``op.try_now()`` on the ring thread; ``None`` polls again. Requests
wait in per-(fd, direction) FIFO lines (:class:`_Line`) and only a line's head polls, so two
pending reads on a pipe complete in issue order (spec #66). When the head finishes, the next
one is tried at once (data may already be there). Any poll result retries ``try_now``,
POLLERR/POLLHUP included (it reports the error, EOF or broken pipe). An AcceptEx head whose
``op.fd`` changed (it accepted and now waits for the first data) moves to the new fd's line.

Cancellation (invariants 1 and 2)
---------------------------------
``cancel(op)`` prepares ``IORING_OP_ASYNC_CANCEL`` for the op's in-flight user_data (a FILE
op's SQE, or the POLL_ADD of a line's head). The op still completes exactly once, from its own
CQE: -ECANCELED becomes STATUS_CANCELLED, anything else is the real result (the cancel lost the
race; the cancel's own -ENOENT/-EALREADY is ignored). Until that CQE the op stays in ``_ops``
with its buffers (liburing #733). A STREAM op queued behind its line's head never reached the
kernel, so the canceller removes it and completes it cancelled at once. A head between two
polls (being retried by the ring thread, or whose poll waits in the backlog) has nothing in the
kernel: the ring thread checks ``op.cancel_requested`` under ``_lock`` before it polls again,
and ``cancel`` looks for the poll's user_data under the same lock, so one of them always sees
the other.

Backlog
-------
An issuer that finds the SQ ring full (``SubmissionQueueFull``) cannot submit (it must not
enter), so it appends the request to ``_backlog``; once the backlog is non-empty everything
goes there, keeping FIFO order. The ring thread moves it into the ring at the top of each loop.

Close (invariant 4)
-------------------
``close()`` refuses new submissions and wakes the ring thread, which cancels every in-flight
user_data and every queued request, keeps reaping until every submitted op has been completed,
then cancels its wake-up poll, reaps its last CQE and exits. ``close()`` joins it (bounded),
then closes the ring (3 fds) and the eventfd. If the drain times out, the ring and the buffers
are left alone (the kernel may still write into them) and ``close()`` raises.

Invariant 5: ``op.complete`` is always called without ``_lock`` held.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import sys
import threading
from collections import deque
from typing import Any

from .._io._backend import BackendStatistics, OpKind
from .._io._ops import Operation, errno_to_status
from ..codes import NtStatus
from . import _uring_abi
from ._uring_abi import ProbeResult, RingBusyError, SubmissionQueueFull
from ._uring_consts import CqeFlags, Feature, IoringOp, PollFlags
from ._uring_ring import BackendRing

__all__ = ["IoUringBackend", "probe_backend"]

_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_UNSUCCESSFUL = int(NtStatus.STATUS_UNSUCCESSFUL)
_INVALID_PARAMETER = int(NtStatus.STATUS_INVALID_PARAMETER)
_ECANCELED = -errno.ECANCELED
_F_MORE = int(CqeFlags.IORING_CQE_F_MORE)
_MULTI = int(PollFlags.IORING_POLL_ADD_MULTI)
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_FILE = OpKind.FILE

# Reserved user_data values; requests count up from _FIRST_UD and are never reused.
_UD_WAKE = 1  # the eventfd POLL_ADD
_UD_CANCEL = 2  # every ASYNC_CANCEL (its own result is not needed)
_FIRST_UD = 16
#: A poll result meaning "no poll happened: just retry the head".
_RETRY = 0

# Backlog entries: (kind, op, line-or-user_data).
_B_FILE, _B_POLL, _B_CANCEL = 0, 1, 2

_REAP_BATCH = 1024
_CLOSE_TIMEOUT = 30.0

_REQUIRED_OPS = {
    IoringOp.IORING_OP_NOP: "NOP",
    IoringOp.IORING_OP_READV: "READV",
    IoringOp.IORING_OP_WRITEV: "WRITEV",
    IoringOp.IORING_OP_READ: "READ",
    IoringOp.IORING_OP_WRITE: "WRITE",
    IoringOp.IORING_OP_POLL_ADD: "POLL_ADD",
    IoringOp.IORING_OP_ASYNC_CANCEL: "ASYNC_CANCEL",
}

_names = itertools.count()
_probe_lock = threading.Lock()
_probed: tuple[bool, str, ProbeResult | None] | None = None


def _probe() -> tuple[bool, str, ProbeResult | None]:
    if not hasattr(os, "eventfd"):
        return False, "os.eventfd is missing (not Linux, or Python built without it)", None
    try:
        result = _uring_abi.probe()
    except Exception as exc:  # "unavailable" must never raise, whatever broke
        return False, f"io_uring probe failed: {exc!r}", None
    if not result.available:
        return False, result.reason, result
    missing = [name for op, name in _REQUIRED_OPS.items() if op not in result.opcodes]
    if missing:
        return False, f"kernel {result.kernel} lacks io_uring opcodes {', '.join(missing)}", result
    if not result.features & Feature.IORING_FEAT_NODROP:
        # Without NODROP (5.5) a full CQ ring drops CQEs: an op would never complete.
        return False, f"kernel {result.kernel} lacks IORING_FEAT_NODROP", result
    return True, f"{result.reason} (kernel {result.kernel})", result


def probe_backend() -> tuple[bool, str]:
    """Whether this backend can run here, and why (probed once per process; never raises)."""
    global _probed
    with _probe_lock:
        if _probed is None:
            _probed = _probe()
        ok, reason, _ = _probed
    return ok, reason


def _feature_names(features: int) -> str:
    names = [f.name or "" for f in Feature if f & features]
    return "|".join(n.removeprefix("IORING_FEAT_") for n in names) or "none"


def _report(what: str) -> None:
    # A bug in an op or in the delivery path must not kill the ring thread (every other
    # request would hang): report it the way an uncaught thread exception is reported.
    exc = sys.exception()
    if exc is None:
        return
    exc.add_note(f"winaio io_uring backend: {what}")
    args = (type(exc), exc, exc.__traceback__, threading.current_thread())
    threading.excepthook(threading.ExceptHookArgs(args))


class _Line:
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


class IoUringBackend:
    """Backend on one io_uring ring and one ring thread (module docstring).

    Args:
        entries: SQ ring size (the CQ ring is 4x; the kernel parks any surplus, NODROP).

    Raises:
        RuntimeError: io_uring is unavailable here (:func:`probe_backend` says why).
        OSError: the ring or the eventfd could not be created.
    """

    name = "io_uring"

    def __init__(self, entries: int = 1024) -> None:
        ok, reason = probe_backend()
        if not ok:
            raise RuntimeError(f"io_uring backend unavailable: {reason}")
        self._ring = BackendRing(entries, cq_entries=4 * entries)
        try:
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except BaseException:
            self._ring.close()
            raise
        self._lock = threading.Lock()
        self._ops: dict[int, tuple[Operation, object]] = {}
        self._lines: dict[tuple[int, int], _Line] = {}
        self._backlog: deque[tuple[int, Operation | None, Any]] = deque()
        self._next_ud = _FIRST_UD
        self._sleeping = False
        self._closing = False
        self._stop_sent = False  # the ring thread cancelled its wake-up poll: it is stopping
        self._multishot = True
        self._wake_armed = True
        # Counters. _done/_cancelled/_enters are written by the ring thread only, the rest
        # under _lock; in flight = submitted - done - done_direct.
        self._submitted = self._done = self._done_direct = 0
        self._cancelled = self._cancelled_direct = 0
        self._wakeups = self._enters = self._backlogged = 0
        # Prepared here, submitted by the ring thread's first enter: the ring thread owns it.
        self._ring.prep_poll_add(self._efd, _POLLIN, _UD_WAKE, 0, _MULTI)
        self._thread = threading.Thread(
            target=self._run, name=f"winaio-uring-{next(_names)}", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ Backend protocol
    def submit(self, op: Operation) -> None:
        failed = 0
        with self._lock:
            if self._closing:
                raise RuntimeError("the io_uring backend is closed")
            self._submitted += 1
            if op.kind is _FILE:
                op.token = None
                queued = True
                if self._backlog:
                    self._backlog_locked(_B_FILE, op, None)
                else:
                    ud = self._next_ud
                    self._next_ud = ud + 1
                    try:
                        keep = op.prep(self._ring, ud)
                    except SubmissionQueueFull:
                        self._backlog_locked(_B_FILE, op, None)
                    except (TypeError, ValueError, BufferError, OverflowError):
                        failed = _INVALID_PARAMETER  # buffers the kernel cannot use
                        queued = False
                    else:
                        self._ops[ud] = (op, keep)
                        op.token = ud
            else:
                queued = self._enqueue_locked(op)
            # Wake the ring thread only if it sleeps and now has something to submit.
            wake = queued and self._sleeping
            if wake:
                self._sleeping = False
                self._wakeups += 1
        if wake:
            os.eventfd_write(self._efd, 1)
        if failed:
            self._finish_direct(op, failed)

    def cancel(self, op: Operation) -> None:
        direct = queued = False
        with self._lock:
            token = op.token
            if token.__class__ is _Line:
                line: _Line = token
                if line.ops and line.ops[0] is op:
                    if line.poll_ud in self._ops:
                        self._cancel_locked(line.poll_ud)
                        queued = True
                    # else: between polls; the ring thread checks cancel_requested first.
                else:
                    try:
                        line.ops.remove(op)
                    except ValueError:
                        pass  # already completed
                    else:
                        direct = True  # never reached the kernel
            elif token is not None and token in self._ops:
                self._cancel_locked(token)
                queued = True
            # token None: a FILE op still in the backlog; the ring thread checks the flag.
            wake = queued and self._sleeping
            if wake:
                self._sleeping = False
                self._wakeups += 1
        if wake:
            os.eventfd_write(self._efd, 1)
        if direct:
            self._finish_direct(op, _CANCELLED)

    def close(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("the io_uring backend cannot be closed from its ring thread")
        with self._lock:
            if self._closing:
                return
            self._closing = True
            wake = self._sleeping
            self._sleeping = False
        if wake:
            os.eventfd_write(self._efd, 1)
        self._thread.join(_CLOSE_TIMEOUT)
        if self._thread.is_alive():
            stats = self.statistics()
            raise RuntimeError(
                f"io_uring backend: {stats.in_flight} requests still in flight after"
                f" {_CLOSE_TIMEOUT}s; the ring and their buffers are kept alive"
            )
        with self._lock:
            self._sleeping = False  # nobody may write the eventfd number once it is closed
        self._ring.close()
        os.close(self._efd)

    def statistics(self) -> BackendStatistics:
        ring = self._ring
        with self._lock:
            done = self._done + self._done_direct
            submitted = self._submitted
            cancelled = self._cancelled + self._cancelled_direct
            detail = (
                f"1 ring thread; ring sq={ring.sq_entries} cq={ring.cq_entries}"
                f" features={_feature_names(ring.features)}; wake-up poll"
                f" {'multishot' if self._multishot else 'one-shot'}; {self._wakeups} wake-ups,"
                f" {self._enters} enters, {self._backlogged} backlogged"
            )
        return BackendStatistics(
            name=self.name,
            submitted=submitted,
            completed=done,
            cancelled=cancelled,
            in_flight=submitted - done,
            threads=1 if self._thread.is_alive() else 0,
            detail=detail,
        )

    # ------------------------------------------------------------------ SQ side (under _lock)
    def _next(self) -> int:
        ud = self._next_ud
        self._next_ud = ud + 1
        return ud

    def _enqueue_locked(self, op: Operation) -> bool:
        """Put a STREAM op at the tail of its line; the head polls. True if it polls (the
        ring thread has something to submit)."""
        fd = op.fd
        key = (fd, _POLLIN if op.poll_events & _POLLIN else _POLLOUT)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(fd, key)
        line.ops.append(op)
        op.token = line
        if len(line.ops) > 1:
            return False
        self._poll_locked(op, line)
        return True

    def _poll_locked(self, op: Operation, line: _Line) -> None:
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
        self._backlog_locked(_B_POLL, op, line)

    def _cancel_locked(self, target: int) -> None:
        if not self._backlog:
            try:
                self._ring.prep_cancel(target, _UD_CANCEL)
                return
            except SubmissionQueueFull:
                pass
        self._backlog_locked(_B_CANCEL, None, target)

    def _backlog_locked(self, kind: int, op: Operation | None, arg: Any) -> None:
        # The SQ ring is full (or already has a queue in front of it): the ring thread moves
        # this into the ring at the top of its next loop, in FIFO order.
        self._backlog.append((kind, op, arg))
        self._backlogged += 1

    def _finish_direct(self, op: Operation, status: int) -> None:
        """Complete an op that never reached the kernel, from a non-ring thread."""
        op.complete(status, 0)
        with self._lock:
            self._done_direct += 1
            if status == _CANCELLED:
                self._cancelled_direct += 1
            # A closing ring thread may be asleep waiting for exactly this count.
            wake = self._closing and self._sleeping
            if wake:
                self._sleeping = False
        if wake:
            os.eventfd_write(self._efd, 1)

    # ------------------------------------------------------------------ the ring thread
    def _run(self) -> None:
        ring = self._ring
        lock = self._lock
        reap = ring.reap
        process = self._process
        # Completions found in this round are delivered as the last thing before sleeping in
        # the kernel (after the publish): delivery wakes issuing threads, which then need the
        # GIL, and the fewer bytecodes between waking them and blocking in io_uring_enter
        # (which releases the GIL), the sooner they run. Measured here: QD1 round trip
        # 47 -> 19 us. (Submitting the round's new SQEs in a separate enter *before*
        # delivering measured the same at QD32/QD128, for one more syscall; not worth it.)
        finished: list[tuple[Operation, int, int]] = []
        cancel_all_done = stop = False
        while True:
            lines: list[_Line] = []
            with lock:
                if self._backlog:
                    self._drain_backlog_locked(finished, lines)
                if self._closing:
                    if not cancel_all_done:
                        cancel_all_done = True
                        self._cancel_everything_locked()
                    # Drained once this round's completions are delivered (just below)?
                    done = self._done + self._done_direct + len(finished)
                    if not lines and self._submitted == done:
                        if not self._stop_sent:
                            # Retire the wake-up poll; its last CQE ends the loop.
                            self._stop_sent = True
                            self._cancel_locked(_UD_WAKE)
                        elif not self._wake_armed:
                            stop = True
                if lines:
                    to_submit = wait = 0  # service them first, then come round again
                else:
                    to_submit = ring.publish()
                    wait = 0 if ring.cq_ready() else 1
                    if wait:
                        self._sleeping = True  # after publish, in the same critical section
            for line in lines:
                self._service(line, _ECANCELED, finished)
            if finished:
                self._deliver(finished)
                finished = []
            if stop:
                break
            if to_submit or wait:
                self._enters += 1
                try:
                    ring.enter(to_submit, wait)
                except RingBusyError:
                    pass  # the CQ backlog is full: reap below, then submit again
                self._sleeping = False
            cqes = reap(_REAP_BATCH)
            if cqes:
                process(cqes, finished)

    def _process(
        self, cqes: list[tuple[int, int, int]], finished: list[tuple[Operation, int, int]]
    ) -> None:
        """Map a batch of CQEs to completions (appended to ``finished``)."""
        pop = self._ops.pop
        append = finished.append
        for ud, res, flags in cqes:
            entry = pop(ud, None)
            if entry is None:
                if ud == _UD_WAKE:
                    self._wake_cqe(res, flags)
                continue  # _UD_CANCEL: -ENOENT/-EALREADY are normal races
            op, extra = entry  # extra: the FILE op's keepalive (dropped now), or its line
            if extra.__class__ is _Line:
                self._service(extra, res, finished)
                continue
            try:
                status, information = op.from_cqe(res)
            except Exception:
                _report(f"mapping the CQE of {op!r}")
                status, information = _UNSUCCESSFUL, 0
            append((op, status, information))

    def _deliver(self, finished: list[tuple[Operation, int, int]]) -> None:
        """Complete a round's operations, in order (ring thread, no lock held)."""
        # Counted first, so that a woken issuer already sees them in statistics().
        self._done += len(finished)
        for op, status, information in finished:
            try:
                op.complete(status, information)
            except Exception:
                _report(f"completing {op!r}")
                if not op.done:
                    op.complete(_UNSUCCESSFUL, 0)
            if status == _CANCELLED:
                self._cancelled += 1

    def _wake_cqe(self, res: int, flags: int) -> None:
        if flags & _F_MORE:
            return  # the multishot poll stays armed
        with self._lock:
            if self._stop_sent:
                self._wake_armed = False  # retired at close (or ended just before): stop
                return
            if res == -errno.EINVAL and self._multishot:
                self._multishot = False  # a kernel before 5.13: one-shot polls from now on
            # The poll ended (one-shot, or multishot stopped by a CQ overflow). Read the
            # eventfd dry first: a re-armed poll on a readable eventfd fires at once.
            try:
                os.eventfd_read(self._efd)
            except BlockingIOError:
                pass
            if not self._backlog:
                try:
                    self._ring.prep_poll_add(
                        self._efd, _POLLIN, _UD_WAKE, 0, _MULTI if self._multishot else 0
                    )
                    return
                except SubmissionQueueFull:
                    pass
            self._backlog_locked(_B_POLL, None, None)

    def _given_up(self, op: Operation) -> bool:
        return op.cancel_requested or self._closing

    def _service(self, line: _Line, res: int, finished: list[tuple[Operation, int, int]]) -> None:
        """The head of ``line`` had its poll end with ``res`` (``_RETRY``: no poll): retry
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
                if res == _ECANCELED or self._given_up(op):
                    line.ops.popleft()
                    finished.append((op, _CANCELLED, 0))
                    res = _RETRY
                    continue
            result: tuple[int, int] | None
            if res < 0:
                result = errno_to_status(-res), 0  # the poll itself failed (EBADF...)
            else:
                try:
                    result = op.try_now()  # POLLERR/POLLHUP too: it reports the error or EOF
                except Exception:
                    _report(f"retrying {op!r}")
                    result = _UNSUCCESSFUL, 0
            res = _RETRY
            with lock:
                if result is None:
                    if self._given_up(op):  # a cancel came while try_now ran
                        result = _CANCELLED, 0
                    elif op.fd != line.fd:  # AcceptEx: now waits on the accepted socket
                        line.ops.popleft()
                        self._enqueue_locked(op)
                        continue
                    else:
                        self._poll_locked(op, line)
                        return
                line.ops.popleft()
            finished.append((op, *result))

    def _drain_backlog_locked(
        self, finished: list[tuple[Operation, int, int]], lines: list[_Line]
    ) -> None:
        """Move backlog entries into the SQ ring (ring thread, under _lock)."""
        backlog = self._backlog
        ring = self._ring
        flushed = False
        while backlog:
            kind, op, arg = backlog[0]
            try:
                if kind == _B_FILE:
                    assert op is not None
                    if self._given_up(op):
                        finished.append((op, _CANCELLED, 0))
                    else:
                        ud = self._next_ud
                        try:
                            keep = op.prep(ring, ud)
                        except (TypeError, ValueError, BufferError, OverflowError):
                            finished.append((op, _INVALID_PARAMETER, 0))
                        else:
                            self._next_ud = ud + 1
                            self._ops[ud] = (op, keep)
                            op.token = ud
                elif kind == _B_CANCEL:
                    ring.prep_cancel(arg, _UD_CANCEL)
                elif op is None:  # the wake-up poll
                    flags = _MULTI if self._multishot else 0
                    ring.prep_poll_add(self._efd, _POLLIN, _UD_WAKE, 0, flags)
                else:
                    line: _Line = arg
                    if self._given_up(op):
                        lines.append(line)  # _service completes the head as cancelled
                    else:
                        ud = self._next_ud
                        ring.prep_poll_add(line.fd, op.poll_events, ud)
                        self._next_ud = ud + 1
                        self._ops[ud] = (op, line)
                        line.poll_ud = ud
            except SubmissionQueueFull:
                if flushed:
                    return
                flushed = True
                try:  # the ring thread may enter (and only it): make room, then go on
                    self._enters += 1
                    ring.enter(ring.publish(), 0)
                except RingBusyError:
                    return
                continue
            backlog.popleft()

    def _cancel_everything_locked(self) -> None:
        """close(): ask the kernel to cancel every request. The rest of a line is cancelled by
        ``_service`` when its head's poll comes back -ECANCELED (``_closing`` is set); FILE
        ops still in the backlog are cancelled when it is drained."""
        for ud in list(self._ops):
            self._cancel_locked(ud)
