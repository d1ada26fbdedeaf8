"""The io_uring backend object: the Backend protocol (submit, cancel, close); its parts wired.

Purpose: :class:`IoUringBackend`, the ``Backend`` of ``winaio._io._backend`` on io_uring. The
design (who submits, who reaps, migration at thread exit, close) is in the package docstring
(``uring``); the parts it is made of own their state: :class:`~.lead.Leadership` (who waits
on the ring), :class:`~.streams.StreamLines` (STREAM requests), :class:`~.backlog.Backlog`
(what the ring thread must submit), :class:`~.common.InFlight` (every request in the kernel),
:class:`~.migration.Migration` (who submitted what, what migrates at a thread's exit),
:class:`~.reaper.Reaper` (the completion side: reaping, mapping, delivery, the CQ lock),
:class:`~.deferral.Deferral` (the ring owner's burst, deferred to its next wait),
:class:`~.ringthread.RingThread` (the ring thread: its loop, the leaders' poke, its sleep),
:class:`~.submission.Submission` (the SQ side: submitting, arming a line's head, cancelling).

Locking: ``_lock`` guards the SQ side (every prep, publish and submitting enter happens under
it, so the SQ ring holds no unsubmitted SQE outside it), the table's inserts, the lines, the
backlog, the leadership state, the ring thread's state and the counters. The reaper's
``cq_lock`` guards reaping; it is taken before ``_lock`` when both are needed (a reaper re-arms
a poll). ``op.complete`` is always called with neither held (invariant 5).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._io._backend import BackendStatistics, OpKind
from ..._io._ops import Operation
from ..._io._stream_ops import StreamReadOp
from ..._kernel._dispatcher import ThreadState
from ..._kernel._threads import EXIT_MIGRATE_IO, add_thread_exit_hook
from ...codes import NtStatus
from . import fastsubmit
from .abi import SubmissionQueueFull
from .backlog import Backlog, prep_failed
from .close import CLOSE_TIMEOUT, salvage
from .common import B_FILE, B_POLL, CANCELLED, ECANCELED, Finished, InFlight
from .deferral import BURST, Deferral
from .fastpend import install_on
from .lead import Leadership, RingParker
from .migration import Migration
from .probe import (
    coop_taskrun,
    feature_names,
    probe_backend,
    ring_flags,
    setup_names,
)
from .reaper import Reaper
from .receives import Receives
from .ring import BackendRing
from .ringthread import RingThread
from .slots import new_table
from .streams import Line, StreamLines
from .submission import Submission

if TYPE_CHECKING:
    from ..._io._files import FileObject
    from ..._io._overlapped import Overlapped

__all__ = ["IoUringBackend"]

_CLOSED_STATUS = int(NtStatus.STATUS_INVALID_HANDLE)  # the backend is closed (``_files``)
_FILE = OpKind.FILE
_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof

_names = itertools.count()
#: Live backends, for the thread exit hook (migration, ``uring``).
_backends: weakref.WeakSet[IoUringBackend] = weakref.WeakSet()


class IoUringBackend:
    """Backend on one io_uring ring (``uring``): issuers submit, waiters reap.

    Args:
        entries: SQ ring size (the CQ ring is 4x; the kernel parks any surplus, NODROP).
        coop: set the ring up with ``IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG``
            (task work without the IPI: ``abi``, ``docs/design.md`` "Task work without the
            IPI"); None: as ``WINAIO_URING_COOP`` says (``0`` off, ``1`` on), and without it
            ``probe.DEFAULT_COOP``, which is on (``probe.ring_flags``). True on a kernel
            without them: no COOP either.

    Raises:
        RuntimeError: io_uring is unavailable here (:func:`probe_backend` says why).
        OSError: the ring or the eventfds could not be created.
    """

    name = "io_uring"

    def __init__(self, entries: int = 1024, *, coop: bool | None = None) -> None:
        ok, reason = probe_backend()
        if not ok:
            raise RuntimeError(f"io_uring backend unavailable: {reason}")
        flags = ring_flags() if coop is None else coop_taskrun() if coop else 0
        self._ring = ring = BackendRing(entries, flags=flags, cq_entries=4 * entries)
        try:
            # The ring thread's wake-up: explicit writes, and every CQE while nobody owns the
            # CQ ring (IORING_REGISTER_EVENTFD; leaders disable it while they own it).
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            ring.register_eventfd(self._efd)
        except BaseException:
            ring.close()
            raise
        self._lock = threading.Lock()
        self._table = InFlight()
        #: The sockets' receive slots (``slots``, ``_io._slot``): armed by the receive side,
        #: reaped by the reaper; their incarnations in the kernel count in ``_in_flight``,
        #: their counters in ``statistics``.
        self._slots = slots = new_table()
        self._backlog = Backlog()
        #: Who submitted what, and what migrates when a submitter exits (``migration``).
        self._migration = Migration()
        #: The SQ side: submitting, arming a line's head, cancelling (``submission``).
        self._sq = sq = Submission(ring, self._table, self._backlog, self._migration, self._efd)
        self._streams = StreamLines(self._lock, sq.poll_locked)
        self._closing = self._crashed = self._close_called = False
        #: The ring thread and its state (``ringthread``), started once its parts exist.
        self._ring_thread = rt = RingThread(
            f"winaio-uring-{next(_names)}", ring, self._lock, self._table, self._streams,
            self._backlog, self._efd, lambda: self._closing, self._crashed_locked,
            sq.submit_locked, sq.cancel_locked, self._settled_locked,
        )  # fmt: skip
        self._wake_locked = rt.wake_locked
        #: The completion side: the CQ lock, reaping, delivery, the done counts (``reaper``).
        self._reaper = Reaper(
            ring, self._table, self._streams, self._migration, self._migrate,
            rt.poke_ended, rt.wake, slots,
        )  # fmt: skip
        #: The ring owner's burst, deferred to its next wait (``deferral``).
        self._deferral = deferral = Deferral(
            ring, self._lock, self._table, self._backlog, self._migration,
            sq.submit_locked, self._wake_locked, self._efd,
        )  # fmt: skip
        #: The deferral's list (``Deferral.unsubmitted``): the SQ side appends under _lock.
        self._unsubmitted = deferral.unsubmitted
        self._lead = Leadership(
            ring, self._lock, self._reaper.reap, deferral.flush, deferral.take_burst,
            deferral.burst_left, self._in_flight, deferral.unsubmitted, rt.wake_to_watch,
            self._efd,
        )  # fmt: skip
        sq.wire(rt, deferral, self._lead)
        #: The sockets' receive side: pended receives, receive requests, the receive slots
        #: (``receives``; the C ``pend_receive`` is its method, ``fastpend``).
        self._receives = Receives(
            ring, self._lock, self._table, self._streams, self._backlog, sq, deferral,
            self._lead, self._efd, lambda op: self.submit(op), self._finish_direct, slots,
        )  # fmt: skip
        # Counters (under _lock): requests (the receive side counts its own). (Syscalls,
        # what leaders save: the SQ side's ``enters``. Completed from a CQE: the reaper's
        # ``done`` and ``cancelled``, under its CQ lock; the ring thread's rounds and
        # wake-ups: ``RingThread``.)
        self._submitted = self._done_direct = self._cancelled_direct = 0
        rt.start(self._reaper, self._lead, deferral)
        _backends.add(self)

    # ------------------------------------------------------------------ Backend protocol
    def submit(self, op: Operation) -> None:
        if op.kind is _FILE:
            # The hot path: a FILE request goes into the SQ ring; the ring's owner defers its
            # submission to its next wait (``lead``), or submits every ``BURST`` requests; any
            # other thread submits at once. Anything else takes :meth:`_submit_slow`.
            issuer = op.issuer
            wake = None
            failed: int | None = None
            lock = self._lock
            with lock:
                if not (self._closing or self._backlog.entries):
                    table = self._table
                    ud = table.next_ud
                    try:
                        keep = op.prep(self._ring, ud)
                    except Exception:
                        pass  # the slow path sorts it out (ring full, unusable memory...)
                    else:
                        # Registered by its issuer, the request is the backend's from here
                        # on: a failure (a MemoryError) sends it or completes it
                        # (``Submission.take_back_locked``), never leaves it half taken.
                        counted = False
                        try:
                            table[ud] = (op, keep)  # (first: an entry for the prepared SQE)
                            table.next_ud = ud + 1
                            self._submitted += 1
                            counted = True
                            op.token = ud
                            if len(table) == 1:  # an idle ring (QD1): into the kernel at once
                                wake = self._sq.submit_one_locked(issuer, ud)
                            else:
                                unsubmitted = self._unsubmitted
                                unsubmitted.append(ud)
                                if self._lead.owner is issuer.parker and len(unsubmitted) < BURST:
                                    if not self._deferral.hinted:
                                        self._deferral.hint_locked()
                                    return  # its parker leads this ring already
                                wake = self._sq.submit_locked(issuer)
                        except Exception as exc:
                            failed = self._sq.take_back_locked(op, ud, exc)
                            if not counted:
                                self._submitted += 1  # (a request, completed either way)
                            wake = failed is None and self._backlog.stuck and self._wake_locked()
            if wake is None:
                self._submit_slow(op)
                return
            if failed is not None:
                self._finish_direct(op, failed)
                return
            if wake:
                os.eventfd_write(self._efd, 1)
            parker = issuer.parker
            if parker.__class__ is not RingParker or parker.lead is not self._lead:
                try:
                    self._bind_parker(issuer)
                except MemoryError:
                    pass  # (the request is in: its issuer waits without leading, as any other)
            return
        # A socket receive into one buffer: the receive side's one-hold path where the
        # socket's line is empty (``receives``); else the general path.
        if type(op) is StreamReadOp and not self._closing and self._receives.submit(op):
            return  # (type(): narrows for mypy)
        self._submit_slow(op)

    def _bind_parker(self, issuer: ThreadState) -> None:
        """The issuer most likely waits for its request soon: let it lead the ring then
        (``Leadership.bind_issuer``; the name the C FILE submit calls, ``fastsubmit``)."""
        self._lead.bind_issuer(issuer)

    @property
    def pend_receive(self) -> Callable[[FileObject, Overlapped, memoryview], None]:
        """The sockets' pended receive in one call (``Socket.start_read``'s, looked up once
        per socket): the receive side's (:meth:`.receives.Receives.pend_receive`, the C
        accelerator's where installed)."""
        return self._receives.pend_receive

    def settle_slot(self, slot: Any) -> None:
        """Demotion step 2 for a demoter holding no lock (``_io._slot.demote``,
        ``FileObject.pending_ops``/``close``): the receive side's."""
        self._receives.settle_slot(slot)

    def _submit_slow(self, op: Operation) -> None:
        failed = 0
        wake = False
        drop: list[object] = []
        with self._lock:
            if self._closing:
                raise RuntimeError("the io_uring backend is closed")
            issuer = op.issuer
            self._submitted += 1
            # Counted: from here on a failure (a MemoryError) sends the request or fails it
            # (``Submission.rescue_locked``), never leaves it registered and not taken.
            ud = -1
            try:
                if op.cancel_requested and op.kind is not _FILE:
                    # A CancelIoEx between the request's registration (``_files``: submitted,
                    # visible) and this point found no token to cancel; a STREAM request would
                    # then wait for its data for ever. The flag is set before the canceller
                    # takes this lock, so one of the two sees the other.
                    failed = CANCELLED
                elif op.kind is _FILE:
                    op.token = None
                    if self._backlog.entries:
                        self._backlog.add_locked(B_FILE, op, None)
                        wake = self._wake_locked()
                    else:
                        table = self._table
                        ud = table.next_ud
                        table.next_ud = ud + 1
                        try:
                            try:
                                keep = op.prep(self._ring, ud)
                            except SubmissionQueueFull:
                                if not self._unsubmitted:
                                    raise
                                self._sq.submit_locked(issuer)  # a deferred burst filled the ring
                                keep = op.prep(self._ring, ud)
                        except SubmissionQueueFull:
                            self._backlog.add_locked(B_FILE, op, None)
                            wake = self._wake_locked()
                        except Exception:
                            failed = prep_failed(op)  # the kernel never saw it: complete it now
                        else:
                            table[ud] = (op, keep)
                            op.token = ud
                            unsubmitted = self._unsubmitted
                            unsubmitted.append(ud)
                            # The ring's owner submits its burst at its next wait (``lead``), or
                            # every ``BURST`` requests, or at once if the ring holds nothing else
                            # (``BURST``); anyone else at once.
                            if (
                                self._lead.owner is not issuer.parker
                                or len(table) == 1
                                or len(unsubmitted) >= BURST
                            ):
                                wake = self._sq.submit_locked(issuer)
                            elif not self._deferral.hinted:
                                self._deferral.hint_locked()
                else:
                    if op.file._rslot is not None:
                        self._receives.settle_file_locked(op.file, drop)  # (behind a demoted slot)
                    self._streams.enqueue_locked(op)
            except Exception as exc:
                rescued = self._sq.rescue_locked(op, ud, exc, self._streams.lines)
                if rescued is not None:
                    failed = rescued
                    wake = False
                else:  # (backlogged, or refused by the kernel: the ring thread's)
                    backlog = self._backlog
                    wake = bool(backlog.entries or backlog.stuck) and self._wake_locked()
        if wake:
            os.eventfd_write(self._efd, 1)
        if failed:
            self._finish_direct(op, failed)
            return
        try:
            self._bind_parker(issuer)
        except MemoryError:
            pass  # (the request is in: its issuer waits without leading, as any other)

    def cancel(self, op: Operation) -> None:
        direct = wake = False
        head_line: Line | None = None
        with self._lock:
            token = op.token
            if token.__class__ is Line:
                line: Line = token
                if line.ops and line.ops[0] is op:
                    ud = line.poll_ud
                    if ud in self._table:
                        if self._deferral.withdraw_locked(ud):
                            head_line = line  # its poll never reached the kernel
                        else:
                            wake = self._sq.cancel_locked(ud)
                    # else: between polls; the reaper checks cancel_requested first.
                else:
                    direct = self._streams.remove_locked(op, line)  # never reached the kernel
            elif token is not None and token in self._table:
                if self._deferral.withdraw_locked(token):
                    direct = True  # deferred: it never reached the kernel
                else:
                    wake = self._sq.cancel_locked(token)
            # token None: a FILE op still in the backlog; the ring thread checks the flag.
        if wake:
            os.eventfd_write(self._efd, 1)
        if direct:
            self._finish_direct(op, CANCELLED)
        elif head_line is not None:
            finished: Finished = []
            reaper = self._reaper
            with reaper.cq_lock:  # delivered in order with the reapers' completions
                self._streams.service(head_line, ECANCELED, finished)  # the line goes on
                reaper.count_locked(finished)
                reaper.deliver(finished)

    @property
    def _enters(self) -> int:
        """io_uring_enter calls that submitted: the SQ side's own (``submission``), and the
        leaders' waiting enters that took a deferred burst over (``deferral``)."""
        return self._sq.enters + self._deferral.enters

    def statistics(self) -> BackendStatistics:
        ring = self._ring
        lead = self._lead
        rt = self._ring_thread
        slots = self._slots
        with self._lock:
            done = self._reaper.done + self._done_direct + slots.done
            submitted = self._submitted + self._receives.submitted + slots.submitted
            cancelled = self._reaper.cancelled + self._cancelled_direct + slots.cancelled
            detail = (
                f"ring sq={ring.sq_entries} cq={ring.cq_entries}"
                f" features={feature_names(ring.features)} setup={setup_names(ring.flags)};"
                f" issuers submit ({self._enters}"
                f" enters, {self._backlog.total} backlogged, {self._migration.count} migrated at"
                f" thread exit); waiters reap: {lead.leads} waits as leader, {lead.waits} in"
                f" the kernel, {lead.own_wakes} ended in place, {lead.pokes} pokes,"
                f" {lead.watcher.takeovers} takeovers, {lead.claims} claims; ring thread:"
                f" {rt.rounds} rounds, {rt.reaps} reaping ({rt.delivered}"
                f" completions), {rt.wakeups} wake-ups asked, {rt.watch_starts} to watch"
            )
        return BackendStatistics(
            name=self.name,
            submitted=submitted,
            completed=done,
            cancelled=cancelled,
            in_flight=submitted - done,
            threads=1 if rt.thread.is_alive() else 0,
            detail=detail,
        )

    def close(self) -> None:
        """Invariant 4: the ring thread cancels and drains everything, then the ring closes.
        If the ring thread died, the closing thread drains (``close``).

        Raises:
            RuntimeError: called from the ring thread, or requests still in flight after
                ``CLOSE_TIMEOUT`` (the ring and their buffers are then kept alive).
        """
        thread = self._ring_thread.thread
        if threading.current_thread() is thread:
            raise RuntimeError("the io_uring backend cannot be closed from its ring thread")
        with self._lock:
            if self._close_called:
                return
            self._close_called = self._closing = self._streams.closing = True
            self._reaper.closing = self._receives.closing = True
            self._ring_thread.sleeping = False
        self._receives.demote_all()  # slots: requests from here on (the ring thread drains them)
        os.eventfd_write(self._efd, 1)
        thread.join(CLOSE_TIMEOUT)
        self._lead.close()  # no thread waits on the ring from here on
        if self._crashed:
            with self._lock:
                finished = salvage(
                    self._ring, self._table, self._streams, self._backlog,
                    lambda: self._sq.submit_locked(None),
                )  # fmt: skip
            reaper = self._reaper
            with reaper.cq_lock:
                reaper.count_locked(finished)
                finished += reaper.drain(CLOSE_TIMEOUT)
                reaper.deliver(finished)
        if thread.is_alive() or self._table:
            stats = self.statistics()
            raise RuntimeError(
                f"io_uring backend: {stats.in_flight} requests still in flight after"
                f" {CLOSE_TIMEOUT}s; the ring and their buffers are kept alive"
            )
        _backends.discard(self)
        self._ring.close()
        os.close(self._efd)

    def _finish_direct(self, op: Operation, status: int) -> None:
        """Complete an op that never reached the kernel (no lock held)."""
        op.complete(status, 0)
        with self._lock:
            self._done_direct += 1
            if status == CANCELLED:
                self._cancelled_direct += 1
            # A closing ring thread may be asleep waiting for exactly this count.
            wake = self._closing and self._wake_locked()
        if wake:
            os.eventfd_write(self._efd, 1)

    def _in_flight(self) -> int:
        # The receive slots' incarnations in the kernel too: a port thread whose only work
        # is slot receives must lead the ring, not park on its futex (``lead``).
        return len(self._table) + self._slots.armed

    def _settled_locked(self) -> bool:
        """Every request submitted has completed (the ring thread's drain at close)."""
        slots = self._slots
        return (
            self._submitted + self._receives.submitted + slots.submitted
            == self._reaper.done + self._done_direct + slots.done
        )

    def _crashed_locked(self) -> None:
        """The ring thread died of a bug: refuse new requests; close() drains the ones in
        flight itself (``close``)."""
        self._closing = self._crashed = self._streams.closing = True
        self._reaper.closing = self._receives.closing = True

    # ------------------------------------------------------------------ thread exit
    def _thread_exited(self, ts: ThreadState) -> None:
        """Migration (``migration``): cancel what ``ts`` submitted and is still in flight,
        unless it is being cancelled anyway; a cancel that wins resubmits from the ring
        thread."""
        table = self._table
        with self._lock:
            wake = self._migration.leave_locked(
                ts,
                table,
                lambda ud: not table[ud][0].cancel_requested,
                self._sq.cancel_locked,
                lambda: self._closing,
            )
        if wake:
            os.eventfd_write(self._efd, 1)

    def _migrate(self, op: Operation, extra: object) -> None:
        # Under the reaper's CQ lock: the request died with (or was cancelled for) its
        # submitting thread. A Ctrl-C once the table gave it up still backlogs it and wakes
        # the ring thread.
        try:
            with self._lock:
                self._migration.count += 1
                if extra.__class__ is Line:
                    line: Line = extra
                    line.poll_ud = 0
                    line.direct = False
                    line.keep = None
                    self._backlog.add_locked(B_POLL, op, line)
                else:
                    op.token = None
                    self._backlog.add_locked(B_FILE, op, None)
                wake = self._wake_locked()
        except BaseException:
            with self._lock:
                if all(entry[1] is not op for entry in self._backlog.entries):
                    kind = B_POLL if extra.__class__ is Line else B_FILE
                    self._backlog.add_locked(kind, op, extra if kind == B_POLL else None)
                self._ring_thread.sleeping = False
            os.eventfd_write(self._efd, 1)
            raise
        if wake:
            os.eventfd_write(self._efd, 1)


def _thread_exited(ts: ThreadState) -> None:
    backends = _backends
    if backends is None:  # interpreter shutdown: module globals are gone
        return  # type: ignore[unreachable]
    for backend in list(backends):
        backend._thread_exited(ts)


add_thread_exit_hook(_thread_exited, EXIT_MIGRATE_IO)  # after the I/O layer's cancel (§8)
install_on(Receives)  # the C pend_receive, when the accelerators are on (``fastpend``)
fastsubmit.install_on(IoUringBackend)  # the C QD1 O_DIRECT submit (``fastsubmit``, qd1)
