"""The io_uring backend object: its threads, its rings, submission, cancellation, completion.

Purpose: :class:`IoUringBackend`, the ``Backend`` of ``winaio._io._backend`` on io_uring. The
design (who submits, the wake-up protocol, cancellation, close) is in the package docstring
(``uring``); the parts it is made of own their state: :class:`~.sqpoll.SqPollRing` (the SQPOLL
ring), :class:`~.streams.StreamLines` (STREAM requests), :class:`~.backlog.Backlog` (what did
not fit into the plain ring), :class:`~.common.InFlight` (every request in the kernel).

Locking: one lock (``_lock``) guards the SQ side of both rings, the table, the lines and the
backlog. The CQ side belongs to the ring thread. ``op.complete`` is always called without
``_lock`` held (invariant 5).
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import threading
import time

from ..._io._backend import BackendStatistics, OpKind
from ..._io._ops import Operation
from ..._kernel._dispatcher import LOCK
from .abi import RingBusyError, SubmissionQueueFull
from .abi.consts import CqeFlags, PollFlags
from .backlog import Backlog, prep_failed
from .close import CLOSE_TIMEOUT, salvage
from .common import (
    B_CANCEL,
    B_FILE,
    B_POLL,
    CANCELLED,
    ECANCELED,
    REAP_BATCH,
    UD_CANCEL,
    UD_POKE,
    UD_WAKE,
    UNSUCCESSFUL,
    Finished,
    InFlight,
    report,
)
from .lead import WATCH_MAX, WATCH_MIN, Leadership, RingParker
from .probe import feature_names, probe_backend
from .ring import BackendRing
from .sqpoll import HOT_DEPTH, S_BIT, SQ_THREAD_IDLE_MS, SqPollRing, sqpoll_wanted
from .streams import Line, StreamLines

__all__ = ["IoUringBackend"]

_F_MORE = int(CqeFlags.IORING_CQE_F_MORE)
_MULTI = int(PollFlags.IORING_POLL_ADD_MULTI)
_POLLIN = select.POLLIN
_FILE = OpKind.FILE

_names = itertools.count()


class IoUringBackend:
    """Backend on an io_uring ring (and a SQPOLL ring) with one ring thread (``uring``).

    Args:
        entries: SQ ring size (the CQ ring is 4x; the kernel parks any surplus, NODROP).
        sqpoll: also create the SQPOLL ring for deep FILE queues (None:
            ``WINAIO_URING_SQPOLL``, else ``SQPOLL_DEFAULT``); if the kernel refuses it the
            backend runs without, and ``statistics().detail`` says why.
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
        self._sq: SqPollRing | None = None
        self._sq_mode = "no SQPOLL ring (not requested)"
        try:
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            if sqpoll:
                self._sq, self._sq_mode = SqPollRing.create(
                    entries, sq_thread_idle, self._efd, hot_depth
                )
        except BaseException:
            self._ring.close()
            raise
        self._lock = threading.Lock()
        #: Guards reaping the SQPOLL ring, which the ring thread and leaders share (``lead``).
        self._cq_lock = threading.Lock()
        self._table = InFlight()
        self._streams = StreamLines(self._lock, self._poll_locked)
        self._backlog = Backlog()
        self._sleeping = False
        self._sleep_timed = False  # the ring thread sleeps with the watch's timeout
        self._closing = self._crashed = self._close_called = False
        self._stop_sent = False  # the ring thread cancelled its wake-up poll: it is stopping
        self._multishot = True
        self._wake_armed = True
        # Counters. _done/_cancelled/_enters are written by the ring thread only, the rest
        # under _lock; in flight = submitted - done - done_direct.
        self._submitted = self._done = self._done_direct = 0
        self._cancelled = self._cancelled_direct = 0
        self._wakeups = self._enters = 0
        # Ring-thread rounds (each one a wake-up: the eventfd, a CQE, a watch tick) and those
        # that reaped the SQPOLL ring: what leaders save (tests count them).
        self._rounds = self._sq_reaps = 0
        self._watch_starts = 0  # ring-thread wake-ups to start watching a new owner
        # FILE requests on the plain ring (taken under _lock; finished, by the ring thread):
        # the SQPOLL routing decision reads them.
        self._file_in = self._file_out = 0
        # Prepared here, submitted by the ring thread's first enter: the ring thread owns it.
        self._ring.prep_poll_add(self._efd, _POLLIN, UD_WAKE, 0, _MULTI)
        self._lead: Leadership | None = None
        if self._sq is not None:
            self._lead = Leadership(
                self._sq.ring, self._lock, self._reap_sq, self._sq_in_flight,
                self._wake_to_watch, self._efd,
            )  # fmt: skip
            with self._lock:
                kick = self._arm_poke_locked()
            if kick:
                self._wakeup_sq()
        self._thread = threading.Thread(
            target=self._run, name=f"winaio-uring-{next(_names)}", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ Backend protocol
    def submit(self, op: Operation) -> None:
        failed = 0
        kick = on_sq = False
        with self._lock:
            if self._closing:
                raise RuntimeError("the io_uring backend is closed")
            self._submitted += 1
            if op.kind is _FILE:
                op.token = None
                queued = True
                sq = self._sq
                if sq is not None and sq.takes(self._file_in - self._file_out):
                    # A deep FILE queue: the SQ poller submits it as soon as it is published
                    # (``sqpoll``); nothing for the ring thread to do.
                    try:
                        kick = sq.submit_locked(op, self._table)
                        queued = False
                        on_sq = True
                    except SubmissionQueueFull:
                        pass  # the plain ring takes it
                    except Exception:
                        failed = prep_failed(op)
                        queued = False
                if not queued:
                    pass
                elif self._backlog:
                    self._backlog.add_locked(B_FILE, op, None)
                    self._file_in += 1
                else:
                    table = self._table
                    ud = table.next_ud
                    table.next_ud = ud + 1
                    try:
                        keep = op.prep(self._ring, ud)
                    except SubmissionQueueFull:
                        self._backlog.add_locked(B_FILE, op, None)
                        self._file_in += 1
                    except Exception:
                        failed = prep_failed(op)  # the kernel never saw it: complete it now
                        queued = False
                    else:
                        table[ud] = (op, keep)
                        op.token = ud
                        self._file_in += 1
            else:
                queued = self._streams.enqueue_locked(op)
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
        elif on_sq:
            # The issuer most likely waits for this soon: let it lead the SQPOLL ring then.
            lead = self._lead
            parker = op.issuer.parker
            if lead is not None and (parker.__class__ is not RingParker or parker.lead is not lead):
                LOCK.acquire()
                try:
                    lead.parker_for(op.issuer)
                finally:
                    LOCK.release()

    def cancel(self, op: Operation) -> None:
        direct = queued = kick = False
        with self._lock:
            token = op.token
            if token.__class__ is Line:
                line: Line = token
                if line.ops and line.ops[0] is op:
                    if line.poll_ud in self._table:
                        self._cancel_locked(line.poll_ud)
                        queued = True
                    # else: between polls; the reaper checks cancel_requested first.
                else:
                    direct = self._streams.remove_locked(op, line)  # never reached the kernel
            elif token is not None and token in self._table:
                queued = self._cancel_locked(token)
                if not queued:  # on the SQPOLL ring
                    kick = self._publish_sq_locked()
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
        sq = self._sq
        with self._lock:
            done = self._done + self._done_direct
            submitted = self._submitted
            cancelled = self._cancelled + self._cancelled_direct
            detail = (
                f"1 ring thread; ring sq={ring.sq_entries} cq={ring.cq_entries}"
                f" features={feature_names(ring.features)}; wake-up poll"
                f" {'multishot' if self._multishot else 'one-shot'}; {self._wakeups} wake-ups,"
                f" {self._enters} enters, {self._backlog.total} backlogged; {self._sq_mode}:"
                f" {0 if sq is None else sq.taken} requests,"
                f" {0 if sq is None else sq.wakeups} poller wake-ups; {self._rounds} ring-thread"
                f" rounds, {self._sq_reaps} of them reaping the SQPOLL ring,"
                f" {self._watch_starts} woken to watch a new owner"
            )
            lead = self._lead
            if lead is not None:
                detail += (
                    f"; leaders: {lead.leads} waits as leader, {lead.waits} in the kernel,"
                    f" {lead.pokes} pokes, {lead.takeovers} takeovers"
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

    def close(self) -> None:
        """Invariant 4: the ring thread cancels and drains everything, then the rings close.
        If the ring thread died, the requests are salvaged (``close``).

        Raises:
            RuntimeError: called from the ring thread, or requests still in flight after
                ``CLOSE_TIMEOUT`` (the rings and their buffers are then kept alive).
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("the io_uring backend cannot be closed from its ring thread")
        with self._lock:
            if self._close_called:
                return
            self._close_called = self._closing = self._streams.closing = True
            wake = self._sleeping
            self._sleeping = False
        if wake:
            os.eventfd_write(self._efd, 1)
        self._thread.join(CLOSE_TIMEOUT)
        if self._lead is not None:
            self._lead.close()  # no thread waits on the SQPOLL ring from here on
        if self._crashed:
            self._stop_sent = True  # no wake-up poll re-arming from here on
            sq = None if self._sq is None else self._sq.ring
            finished = salvage(
                self._ring, sq, self._table, self._streams, self._backlog, self._process
            )
            self._deliver(finished)
        if self._thread.is_alive():
            stats = self.statistics()
            raise RuntimeError(
                f"io_uring backend: {stats.in_flight} requests still in flight after"
                f" {CLOSE_TIMEOUT}s; the ring and their buffers are kept alive"
            )
        with self._lock:
            self._sleeping = False  # nobody may write the eventfd number once it is closed
        self._ring.close()
        if self._sq is not None:
            self._sq.ring.close()
        os.close(self._efd)

    # ------------------------------------------------------------------ SQ side (under _lock)
    def _poll_locked(self, op: Operation, line: Line) -> None:
        """Arm the readiness poll of a line's head (``StreamLines``' ``arm``)."""
        line.poll_ud = 0
        if not self._backlog:
            table = self._table
            ud = table.next_ud
            try:
                self._ring.prep_poll_add(line.fd, op.poll_events, ud)
            except SubmissionQueueFull:
                pass
            else:
                table.next_ud = ud + 1
                table[ud] = (op, line)
                line.poll_ud = ud
                return
        self._backlog.add_locked(B_POLL, op, line)

    def _cancel_locked(self, target: int) -> bool:
        """Prepare ASYNC_CANCEL for ``target`` in the ring that holds it. True if the ring
        thread must submit it (plain ring, or backlog); False if it went into the SQPOLL
        ring (the caller publishes it: :meth:`_publish_sq_locked`)."""
        if target & S_BIT:
            sq = self._sq
            assert sq is not None, "a SQPOLL user_data without a SQPOLL ring"
            if sq.cancel_locked(target):
                return False
        elif not self._backlog:
            try:
                self._ring.prep_cancel(target, UD_CANCEL)
                return True
            except SubmissionQueueFull:
                pass
        self._backlog.add_locked(B_CANCEL, None, target)
        return True

    def _publish_sq_locked(self) -> bool:
        sq = self._sq
        return sq is not None and sq.publish_locked()

    def _wakeup_sq(self) -> None:
        sq = self._sq
        assert sq is not None
        sq.wakeup(self._close_called)

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
                self._closing = self._crashed = self._streams.closing = True
            raise

    def _loop(self) -> None:
        ring = self._ring
        lock = self._lock
        reap = ring.reap
        process = self._process
        streams = self._streams
        # Completions found in this round are delivered as the last thing before sleeping in
        # the kernel (after the publish): delivery wakes issuing threads, which then need the
        # GIL, and the fewer bytecodes between waking them and blocking in io_uring_enter
        # (which releases the GIL), the sooner they run. Measured here: QD1 round trip
        # 47 -> 19 us. (Submitting the round's new SQEs in a separate enter *before*
        # delivering measured the same at QD32/QD128, for one more syscall; not worth it.)
        sq = self._sq
        lead = self._lead
        finished: Finished = []
        cancel_all_done = stop = False
        # The SQPOLL ring: reaped here only while no leader owns it (``lead``), or after the
        # watch took it over from an owner that went away.
        reap_sq = sq is not None
        tick = WATCH_MIN
        next_watch = 0.0
        while True:
            self._rounds += 1
            lines: list[Line] = []
            sq_full = False
            timeout = 0.0
            with lock:
                if self._backlog:
                    sq_full, enters, files = self._backlog.drain_locked(
                        ring, sq, self._table, streams, self._wake_flags(), self._efd,
                        finished, lines,
                    )  # fmt: skip
                    self._enters += enters
                    self._file_out += files
                if lead is not None:
                    if self._closing and lead.owner is not None:
                        lead.disown_locked()  # closing: the ring thread drains the SQPOLL ring
                    if lead.owner is None:
                        reap_sq = True
                    elif time.monotonic() >= next_watch:
                        reap_sq = lead.watch()
                        tick = WATCH_MIN if reap_sq else min(2 * tick, WATCH_MAX)
                        next_watch = time.monotonic() + tick
                    else:
                        reap_sq = False
                    if lead.watching():
                        timeout = max(next_watch - time.monotonic(), 1e-4)
                if self._closing:
                    if not cancel_all_done:
                        cancel_all_done = True
                        # The rest of a line is cancelled by service() when its head's poll
                        # comes back -ECANCELED; backlogged FILE ops when it is drained.
                        for ud in list(self._table):
                            self._cancel_locked(ud)
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
                kick = sq is not None and (sq.publish_locked() or sq_full)
                if lines or sq_full:
                    to_submit = wait = 0  # service them first, then come round again
                else:
                    to_submit = ring.publish()
                    ready = ring.cq_ready() or (reap_sq and sq is not None and sq.ring.cq_ready())
                    wait = 0 if ready else 1
                    if wait:
                        self._sleeping = True  # after publish, in the same critical section
                        self._sleep_timed = timeout > 0
            for line in lines:
                streams.service(line, ECANCELED, finished)
            if finished:
                self._deliver(finished)
                finished = []
            if stop:
                break
            if kick:
                assert sq is not None
                sq.ring.wakeup_sq(sq_full)  # with SQ_WAIT when full: room for the rest
            if to_submit or wait:
                self._enters += 1
                try:
                    if wait and timeout:
                        ring.enter_timeout(to_submit, wait, timeout)
                    else:
                        ring.enter(to_submit, wait)
                except RingBusyError:
                    pass  # the CQ backlog is full: reap below, then submit again
                self._sleeping = False
            cqes = reap(REAP_BATCH)
            if cqes:
                self._file_out += process(cqes, finished)
            if reap_sq and sq is not None:
                with self._cq_lock:
                    cqes = sq.ring.reap(REAP_BATCH)
                    if cqes:
                        self._sq_reaps += 1
                        sq.finished += process(cqes, finished)

    def _wake_flags(self) -> int:
        return _MULTI if self._multishot else 0

    def _process(self, cqes: list[tuple[int, int, int]], finished: Finished) -> int:
        """Map a batch of CQEs to completions (appended to ``finished``); returns how many
        FILE requests they finished."""
        pop = self._table.pop
        append = finished.append
        service = self._streams.service
        files = 0
        for ud, res, flags in cqes:
            entry = pop(ud, None)
            if entry is None:
                if ud == UD_WAKE:
                    self._wake_cqe(res, flags)
                elif ud == UD_POKE and not flags & _F_MORE:
                    self._poke_cqe(res)
                continue  # UD_CANCEL: -ENOENT/-EALREADY are normal races
            op, extra = entry  # extra: the FILE op's keepalive (dropped now), or its line
            if extra.__class__ is Line:
                service(extra, res, finished)
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
        """Complete a batch of operations, in order (ring thread or leader, no lock held)."""
        cancelled = 0
        for _, status, _ in finished:
            if status == CANCELLED:
                cancelled += 1
        # Counted first, so that a woken issuer already sees them in statistics().
        with self._lock:
            self._done += len(finished)
            self._cancelled += cancelled
        for op, status, information in finished:
            try:
                op.complete(status, information)
            except Exception:
                report(f"completing {op!r}")
                if not op.done:
                    op.complete(UNSUCCESSFUL, 0)

    # ------------------------------------------------------------------ leaders (``lead``)
    def _reap_sq(self) -> int:
        """Reap the SQPOLL ring and deliver (a leader, no lock held); how many CQEs."""
        sq = self._sq
        assert sq is not None
        ring = sq.ring
        if not ring.cq_ready() and not ring.cq_has_overflow():
            return 0
        finished: Finished = []
        with self._cq_lock:
            cqes = ring.reap(REAP_BATCH)
            if cqes:
                sq.finished += self._process(cqes, finished)
        if finished:
            self._deliver(finished)
        return len(cqes)

    def _sq_in_flight(self) -> int:
        sq = self._sq
        return 0 if sq is None else sq.taken - sq.finished

    def _wake_to_watch(self) -> bool:
        """The SQPOLL ring got an owner (under _lock): a ring thread asleep without a
        timeout must wake up to start watching (``lead``)."""
        wake = self._sleeping and not self._sleep_timed
        if wake:
            self._sleeping = False
            self._watch_starts += 1
        return wake

    def _arm_poke_locked(self) -> bool:
        """(Re-)arm the multishot POLL_ADD on the leaders' poke eventfd in the SQPOLL ring
        (submitted by its poller, which owns it). True if the poller must be woken. Without
        a poke nobody could wake a leader out of the kernel: if the poll cannot be armed
        (the SQ ring is full, or one-shot polls only), nobody leads any more."""
        sq, lead = self._sq, self._lead
        assert sq is not None and lead is not None
        if self._multishot:
            try:
                sq.ring.prep_poll_add(lead.poke_efd, _POLLIN, UD_POKE, 0, _MULTI)
            except SubmissionQueueFull:
                pass
            else:
                return sq.publish_locked()
        lead.give_up_locked()
        return False

    def _poke_cqe(self, res: int) -> None:
        # The multishot poke poll ended: re-arm it after a CQ overflow; -EINVAL is a kernel
        # without multishot polls (< 5.13): nobody leads.
        with self._lock:
            if self._closing:
                return
            if res == -errno.EINVAL:
                assert self._lead is not None
                self._lead.give_up_locked()
                return
            kick = self._arm_poke_locked()
        if kick:
            self._wakeup_sq()

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
                    self._ring.prep_poll_add(self._efd, _POLLIN, UD_WAKE, 0, self._wake_flags())
                    return
                except SubmissionQueueFull:
                    pass
            self._backlog.add_locked(B_POLL, None, None)
