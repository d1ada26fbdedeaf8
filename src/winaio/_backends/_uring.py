"""The io_uring backend: one ring thread that owns every request, on a plain ring plus, for
deep FILE queues, a SQPOLL ring.

Purpose: finish the operations the I/O layer could not finish at once (``winaio._io._backend``)
with io_uring, at about a microsecond of backend Python per request on each side.

Modules: this one (threads, FILE requests, cancellation, backlog), ``_uring_sqpoll`` (the
SQPOLL ring: why, routing, wake-ups, fallback), ``_uring_streams`` (STREAM requests:
per-descriptor FIFO lines and readiness polls), ``_uring_close`` (close, salvage),
``_uring_ring`` (the ring as an ``SqeSink``, split publish/enter), ``_uring_probe`` (can it
run here, and why not).

Io_uring facts relied on (``_uring_abi`` has them with sources)
---------------------------------------------------------------
- Requests belong to the task that *submitted* them (io_uring_enter): their task work runs in
  that thread; once it has exited, a request that needs task work (a poll firing, most
  socket I/O) completes with -ECANCELED instead of doing its work.
- Without COOP_TASKRUN/DEFER_TASKRUN, task work interrupts the submitter wherever it is, so a
  completion never waits for our next enter.
- Exactly one CQE per SQE, echoing user_data; a cancelled request still posts its own CQE,
  and until then the kernel may use its memory (liburing #733). ASYNC_CANCEL gets a CQE of
  its own (0, -ENOENT, -EALREADY).
- The kernel reads SQEs only up to the SQ tail we published; with IORING_FEAT_NODROP (5.5) no
  CQE is ever dropped (the probe requires it).
- A multishot POLL_ADD (5.13) posts a CQE, with IORING_CQE_F_MORE, for every wake-up of the
  file; older kernels refuse it with -EINVAL; a CQ overflow can end it (no F_MORE).

Threads and ownership (invariant 3)
-----------------------------------
One thread, ``winaio-uring-<n>``, is the only one that submits with ``io_uring_enter``: it
submits, sleeps in the kernel until completions arrive, reaps them (from both rings) in
batches and completes the operations. Win32 port-bound I/O must survive the exit of the
thread that issued it (spec §8), so no issuing thread ever submits. Issuers only *write* SQEs
into the plain SQ ring, under ``_lock`` (a ``pack_into``; the kernel sees nothing until the
ring thread publishes the tail). Deep FILE queues go to the SQPOLL ring instead, where the
issuer publishes and the kernel's poller submits, so the request belongs to the poller;
the issuer only enters to wake a sleeping poller (``_uring_sqpoll``). The ring thread lives
until :meth:`IoUringBackend.close` has drained everything. SQPOLL on the second ring only; no
COOP_TASKRUN or DEFER_TASKRUN (facts above).

Wake-up protocol (no lost wake-ups, at most one eventfd write per sleep)
------------------------------------------------------------------------
The ring thread keeps a multishot ``POLL_ADD`` armed on an eventfd (user_data ``UD_WAKE``):
every eventfd write posts a CQE, and any CQE ends ``io_uring_enter(GETEVENTS,
min_complete=1)``. The eventfd is never read in multishot mode; its counter only grows. The
SQPOLL ring's CQEs write it too (``IORING_REGISTER_EVENTFD``).

- Ring thread, under ``_lock``: publish the SQ tail (everything prepared so far), then set
  ``_sleeping`` - in the same critical section - then enter (submit + wait) without the lock.
  If CQEs are already waiting it does not wait and does not set the flag.
- Issuer, under ``_lock``: prepare its SQE; if ``_sleeping`` is set, clear it and, after
  releasing the lock, write the eventfd once. Later issuers see the flag cleared and write
  nothing: their SQEs are published at the ring thread's next loop, which is sure to come.
  Requests that put nothing into the ring (a stream read queued behind another) never wake.

An SQE prepared before the ring thread's critical section is in the published tail; one
prepared after it sees ``_sleeping`` set, so a write follows (its own or the one already
decided in this round), and that write posts a CQE that ends the sleep - or, if it lands
before the ring thread reaches the kernel, makes the wait return at once. While the ring
thread works (flag clear) issuers never make a syscall: one wake-up and one enter serve a
whole burst. If the multishot poll ends (CQ overflow, or -EINVAL before 5.13), the ring thread
reads the eventfd dry and re-arms a (one-shot, after -EINVAL) poll before it sleeps again; the
re-armed poll fires at once if a write slipped in between, so the fallback is safe too.
(Measured: a plain ``os.eventfd_write`` + multishot poll round trip is the cheapest wake-up
here, cheaper than MSG_RING from a helper ring and than writing without releasing the GIL.)

A round of the ring thread: move the backlog into the ring, publish, then deliver the
completions reaped in the previous round, then enter. Delivery wakes the issuers, which need
the GIL; doing it last means the ring thread blocks in the kernel (releasing the GIL) a few
bytecodes after waking them (QD1 round trip through the backend: 47 -> 19 us).

FILE operations
---------------
``op.prep(ring, user_data)``: the ring is the ``SqeSink``. Every SQE gets a fresh user_data
from a counter (reserved values below ``FIRST_UD`` are internal: the wake-up poll, cancels);
``_ops[user_data] = (op, keepalive)`` holds the operation, its buffers and the pinned iovecs
until the CQE, then ``op.from_cqe(res)`` -> ``op.complete``. An op whose SQE cannot even be
prepared (unusable buffer, offset out of range) completes at once with an error status.

Cancellation (invariants 1 and 2)
---------------------------------
``cancel(op)`` prepares ``IORING_OP_ASYNC_CANCEL`` for the op's in-flight user_data (a FILE
op's SQE, or the POLL_ADD of a line's head) in the ring that holds it (``_uring_sqpoll``). The
op still completes exactly once, from its own CQE: -ECANCELED becomes STATUS_CANCELLED,
anything else is the real result (the cancel lost the race; the cancel's own
-ENOENT/-EALREADY is ignored). Until that CQE the op stays in ``_ops`` with its buffers
(liburing #733). Requests that never reached the kernel (queued behind a line's head, or still
in the backlog) are completed cancelled without it; see ``_uring_streams`` for the head
between two polls.

Backlog
-------
An issuer that finds the SQ ring full (``SubmissionQueueFull``) cannot submit (it must not
enter), so it appends the request to ``_backlog``; once the backlog is non-empty everything
goes there, keeping FIFO order. The ring thread moves it into the ring at the top of each
round, entering to make room if needed.

Close (invariant 4): ``close()`` makes the ring thread cancel and drain everything, then
closes the rings; if the ring thread died, it salvages (``_uring_close``).

Invariant 5: ``op.complete`` is always called without ``_lock`` held.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import struct
import sys
import threading
from collections import deque
from typing import Any

from .._io._backend import BackendStatistics, OpKind
from .._io._ops import Operation
from ..codes import NtStatus
from ._uring_abi import RingBusyError, SubmissionQueueFull
from ._uring_close import Closing
from ._uring_consts import CqeFlags, PollFlags
from ._uring_probe import feature_names, probe_backend
from ._uring_ring import BackendRing
from ._uring_sqpoll import (
    HOT_DEPTH,
    S_BIT,
    SQ_THREAD_IDLE_MS,
    SQPOLL_DEFAULT,
    SqPoll,
    make_sq_ring,
    sqpoll_wanted,
)
from ._uring_streams import (
    B_CANCEL,
    B_FILE,
    B_POLL,
    CANCELLED,
    ECANCELED,
    FIRST_UD,
    REAP_BATCH,
    UD_CANCEL,
    UD_WAKE,
    UNSUCCESSFUL,
    Finished,
    Line,
    StreamLines,
    report,
)

# The SQPOLL knobs are re-exported: tests and callers read them here.
__all__ = ["HOT_DEPTH", "SQPOLL_DEFAULT", "SQ_THREAD_IDLE_MS", "IoUringBackend", "probe_backend"]

_INVALID_PARAMETER = int(NtStatus.STATUS_INVALID_PARAMETER)
_F_MORE = int(CqeFlags.IORING_CQE_F_MORE)
_MULTI = int(PollFlags.IORING_POLL_ADD_MULTI)
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_FILE = OpKind.FILE

_names = itertools.count()


def _prep_failed(op: Operation) -> int:
    """The status for an op whose SQE could not be prepared (called in an ``except``)."""
    exc = sys.exception()
    if isinstance(exc, TypeError | ValueError | BufferError | OverflowError | struct.error):
        return _INVALID_PARAMETER  # buffers the kernel cannot use, an offset out of range...
    report(f"preparing the SQE of {op!r}")
    return UNSUCCESSFUL


class IoUringBackend(StreamLines, SqPoll, Closing):
    """Backend on an io_uring ring (and a SQPOLL ring) with one ring thread (module docstring).

    Args:
        entries: SQ ring size (the CQ ring is 4x; the kernel parks any surplus, NODROP).
        sqpoll: also create the SQPOLL ring for deep FILE queues (None:
            ``WINAIO_URING_SQPOLL``, else :data:`SQPOLL_DEFAULT`); if the kernel refuses it
            the backend runs without, and ``statistics().detail`` says why.
        sq_thread_idle: the poller's idle time in ms before it sleeps.
        hot_depth: FILE requests in flight on the plain ring from which new ones go to the
            SQPOLL ring (0: every FILE request; tests).

    Raises:
        RuntimeError: io_uring is unavailable here (:func:`probe_backend` says why).
        OSError: the ring or the eventfd could not be created.
    """

    name = "io_uring"

    def __init__(
        self,
        entries: int = 1024,
        *,
        sqpoll: bool | None = None,
        sq_thread_idle: int = SQ_THREAD_IDLE_MS,
        hot_depth: int = HOT_DEPTH,
    ) -> None:
        ok, reason = probe_backend()
        if not ok:
            raise RuntimeError(f"io_uring backend unavailable: {reason}")
        if sqpoll is None:
            sqpoll = sqpoll_wanted()
        self._ring = BackendRing(entries, cq_entries=4 * entries)
        self._sq: BackendRing | None = None
        self._sq_mode = "no SQPOLL ring (not requested)"
        try:
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            if sqpoll:
                self._sq, self._sq_mode = make_sq_ring(entries, sq_thread_idle, self._efd)
        except BaseException:
            self._ring.close()
            raise
        self._hot_depth = hot_depth
        self._lock = threading.Lock()
        self._ops: dict[int, tuple[Operation, object]] = {}
        self._lines: dict[tuple[int, int], Line] = {}
        self._backlog: deque[tuple[int, Operation | None, Any]] = deque()
        self._next_ud = FIRST_UD
        self._sleeping = False
        self._closing = self._crashed = self._close_called = False
        self._stop_sent = False  # the ring thread cancelled its wake-up poll: it is stopping
        self._multishot = True
        self._wake_armed = True
        # Counters. _done/_cancelled/_enters are written by the ring thread only, the rest
        # under _lock; in flight = submitted - done - done_direct.
        self._submitted = self._done = self._done_direct = 0
        self._cancelled = self._cancelled_direct = 0
        self._wakeups = self._enters = self._backlogged = self._sq_wakeups = 0
        # FILE requests on the plain ring (taken under _lock; finished, by the ring thread)
        # and on the SQPOLL ring: the routing decision (HOT_DEPTH) reads them.
        self._file_in = self._file_out = self._sq_in = self._sq_out = 0
        # Prepared here, submitted by the ring thread's first enter: the ring thread owns it.
        self._ring.prep_poll_add(self._efd, _POLLIN, UD_WAKE, 0, _MULTI)
        self._thread = threading.Thread(
            target=self._run, name=f"winaio-uring-{next(_names)}", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ Backend protocol
    def submit(self, op: Operation) -> None:
        failed = 0
        kick = False
        with self._lock:
            if self._closing:
                raise RuntimeError("the io_uring backend is closed")
            self._submitted += 1
            if op.kind is _FILE:
                op.token = None
                queued = True
                sq = self._sq
                if sq is not None and (
                    self._sq_in != self._sq_out or self._file_in - self._file_out >= self._hot_depth
                ):
                    # A deep FILE queue: the SQ poller submits it as soon as it is published
                    # (``_uring_sqpoll``); nothing for the ring thread to do.
                    ud = self._next_ud
                    self._next_ud = ud + 1
                    ud |= S_BIT
                    try:
                        keep = op.prep(sq, ud)
                    except SubmissionQueueFull:
                        pass  # the plain ring takes it
                    except Exception:
                        failed = _prep_failed(op)
                        queued = False
                    else:
                        self._ops[ud] = (op, keep)
                        op.token = ud
                        self._sq_in += 1
                        queued = False
                        if sq.publish() and sq.sq_needs_wakeup():
                            self._sq_wakeups += 1
                            kick = True
                if not queued:
                    pass
                elif self._backlog:
                    self._backlog_locked(B_FILE, op, None)
                    self._file_in += 1
                else:
                    ud = self._next_ud
                    self._next_ud = ud + 1
                    try:
                        keep = op.prep(self._ring, ud)
                    except SubmissionQueueFull:
                        self._backlog_locked(B_FILE, op, None)
                        self._file_in += 1
                    except Exception:
                        failed = _prep_failed(op)  # the kernel never saw it: complete it now
                        queued = False
                    else:
                        self._ops[ud] = (op, keep)
                        op.token = ud
                        self._file_in += 1
            else:
                queued = self._enqueue_locked(op)
            # Wake the ring thread only if it sleeps and now has something to submit.
            wake = queued and self._sleeping
            if wake:
                self._sleeping = False
                self._wakeups += 1
        if wake:
            os.eventfd_write(self._efd, 1)
        elif kick:
            self._wakeup_sq()
        if failed:
            self._finish_direct(op, failed)

    def cancel(self, op: Operation) -> None:
        direct = queued = kick = False
        with self._lock:
            token = op.token
            if token.__class__ is Line:
                line: Line = token
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
                queued = self._cancel_locked(token)
                if not queued:  # on the SQPOLL ring
                    kick = self._kick_sq_locked()
            # token None: a FILE op still in the backlog; the ring thread checks the flag.
            wake = queued and self._sleeping
            if wake:
                self._sleeping = False
                self._wakeups += 1
        if wake:
            os.eventfd_write(self._efd, 1)
        elif kick:
            self._wakeup_sq()
        if direct:
            self._finish_direct(op, CANCELLED)

    def statistics(self) -> BackendStatistics:
        ring = self._ring
        with self._lock:
            done = self._done + self._done_direct
            submitted = self._submitted
            cancelled = self._cancelled + self._cancelled_direct
            detail = (
                f"1 ring thread; ring sq={ring.sq_entries} cq={ring.cq_entries}"
                f" features={feature_names(ring.features)}; wake-up poll"
                f" {'multishot' if self._multishot else 'one-shot'}; {self._wakeups} wake-ups,"
                f" {self._enters} enters, {self._backlogged} backlogged; {self._sq_mode}:"
                f" {self._sq_in} requests, {self._sq_wakeups} poller wake-ups"
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
            if status == CANCELLED:
                self._cancelled_direct += 1
            # A closing ring thread may be asleep waiting for exactly this count.
            wake = self._closing and self._sleeping
            if wake:
                self._sleeping = False
        if wake:
            os.eventfd_write(self._efd, 1)

    # ------------------------------------------------------------------ the ring thread
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            # A bug (reported by threading.excepthook as the exception leaves the thread):
            # refuse new requests; close() salvages the ones in flight.
            with self._lock:
                self._closing = self._crashed = True
            raise

    def _loop(self) -> None:
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
        sq = self._sq
        finished: Finished = []
        cancel_all_done = stop = False
        while True:
            lines: list[Line] = []
            sq_full = False
            with lock:
                if self._backlog:
                    sq_full = self._drain_backlog_locked(finished, lines)
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
                            self._cancel_locked(UD_WAKE)
                        elif not self._wake_armed:
                            stop = True
                # Cancels this thread put into the SQPOLL ring (close, backlog) go out now.
                kick = sq is not None and (self._kick_sq_locked() or sq_full)
                if lines or sq_full:
                    to_submit = wait = 0  # service them first, then come round again
                else:
                    to_submit = ring.publish()
                    wait = 0 if ring.cq_ready() or (sq is not None and sq.cq_ready()) else 1
                    if wait:
                        self._sleeping = True  # after publish, in the same critical section
            for line in lines:
                self._service(line, ECANCELED, finished)
            if finished:
                self._deliver(finished)
                finished = []
            if stop:
                break
            if kick:
                assert sq is not None
                sq.wakeup_sq(sq_full)  # with SQ_WAIT when full: room for the rest
            if to_submit or wait:
                self._enters += 1
                try:
                    ring.enter(to_submit, wait)
                except RingBusyError:
                    pass  # the CQ backlog is full: reap below, then submit again
                self._sleeping = False
            cqes = reap(REAP_BATCH)
            if cqes:
                self._file_out += process(cqes, finished)
            if sq is not None:
                cqes = sq.reap(REAP_BATCH)
                if cqes:
                    self._sq_out += process(cqes, finished)

    def _process(self, cqes: list[tuple[int, int, int]], finished: Finished) -> int:
        """Map a batch of CQEs to completions (appended to ``finished``); returns how many
        FILE requests they finished."""
        pop = self._ops.pop
        append = finished.append
        files = 0
        for ud, res, flags in cqes:
            entry = pop(ud, None)
            if entry is None:
                if ud == UD_WAKE:
                    self._wake_cqe(res, flags)
                continue  # UD_CANCEL: -ENOENT/-EALREADY are normal races
            op, extra = entry  # extra: the FILE op's keepalive (dropped now), or its line
            if extra.__class__ is Line:
                self._service(extra, res, finished)
                continue
            files += 1
            try:
                status, information = op.from_cqe(res)
            except Exception:
                report(f"mapping the CQE of {op!r}")
                status, information = UNSUCCESSFUL, 0
            append((op, status, information))
        return files

    def _deliver(self, finished: Finished) -> None:
        """Complete a round's operations, in order (ring thread, no lock held)."""
        # Counted first, so that a woken issuer already sees them in statistics().
        self._done += len(finished)
        for op, status, information in finished:
            try:
                op.complete(status, information)
            except Exception:
                report(f"completing {op!r}")
                if not op.done:
                    op.complete(UNSUCCESSFUL, 0)
            if status == CANCELLED:
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
                        self._efd, _POLLIN, UD_WAKE, 0, _MULTI if self._multishot else 0
                    )
                    return
                except SubmissionQueueFull:
                    pass
            self._backlog_locked(B_POLL, None, None)

    def _drain_backlog_locked(self, finished: Finished, lines: list[Line]) -> bool:
        """Move backlog entries into the SQ rings (ring thread, under _lock). Returns True
        when the SQPOLL ring is full: the ring thread waits for its poller to make room
        (``wakeup_sq(wait_for_space=True)``), then drains the rest."""
        backlog = self._backlog
        ring = self._ring
        flushed = False
        while backlog:
            kind, op, arg = backlog[0]
            try:
                if kind == B_FILE:
                    assert op is not None
                    if self._given_up(op):
                        finished.append((op, CANCELLED, 0))
                        self._file_out += 1
                    else:
                        ud = self._next_ud
                        try:
                            keep = op.prep(ring, ud)
                        except SubmissionQueueFull:
                            raise
                        except Exception:
                            finished.append((op, _prep_failed(op), 0))
                            self._file_out += 1
                        else:
                            self._next_ud = ud + 1
                            self._ops[ud] = (op, keep)
                            op.token = ud
                elif kind == B_CANCEL:
                    if arg & S_BIT:
                        try:
                            self._sq_ring().prep_cancel(arg, UD_CANCEL)
                        except SubmissionQueueFull:
                            return True
                    else:
                        ring.prep_cancel(arg, UD_CANCEL)
                elif op is None:  # the wake-up poll
                    flags = _MULTI if self._multishot else 0
                    ring.prep_poll_add(self._efd, _POLLIN, UD_WAKE, 0, flags)
                else:
                    line: Line = arg
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
                    return False
                flushed = True
                try:  # the ring thread may enter (and only it): make room, then go on
                    self._enters += 1
                    ring.enter(ring.publish(), 0)
                except RingBusyError:
                    return False
                continue
            backlog.popleft()
        return False
