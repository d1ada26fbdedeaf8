"""The SQ side of the io_uring backend: putting prepared SQEs into the kernel (``uring``).

Purpose: :class:`Submission`, the backend's submitting part and its state: submitting what is
published (:meth:`Submission.submit_locked`, and :meth:`Submission.submit_one_locked`, the QD1
critical path), putting a STREAM line's head into the kernel (:meth:`Submission.poll_locked`,
``StreamLines``' ``arm``) and cancelling (:meth:`Submission.cancel_locked`). The backend
prepares the hot shapes itself (``backend.submit``, ``pend_receive``) and calls these under its
lock; the ring thread (``ringthread``), the deferral (``deferral``) and the lines (``streams``)
hold them as callables. The design (who submits, who reaps, migration) is in the package
docstring.

Invariants (all under the backend's lock):
- every SQE is prepared, published and submitted in one critical section of that lock, so the
  SQ ring holds no unsubmitted SQE outside it; what the kernel refuses (EBUSY, a CQ backlog)
  stays published, ``backlog.stuck`` is set and the ring thread is woken to submit it later;
- what a thread submits is recorded as its own (``migration.own_locked``) before the lock is
  released: the deferral's list (``unsubmitted``) is emptied only once the kernel took it;
- a request its issuer registered is the backend's once ``submit`` takes it: a failure (a
  MemoryError) after its SQE was prepared sends it (the kernel has it) or takes it back
  (its SQE a NOP, its entry gone) and fails it with STATUS_INSUFFICIENT_RESOURCES
  (:meth:`Submission.take_back_locked`, :meth:`Submission.rescue_locked`); a head half
  armed goes to the backlog (:meth:`Submission.poll_locked`); ``submit`` raises only
  having taken nothing (the issuer then fails the request: ``_issue._hand_to_backend``);
- the ring thread submits as None (it is never migrated): :meth:`Submission.submitter`;
- :attr:`Submission.enters` counts the io_uring_enter calls made here (statistics).

The parts it drives (the ring thread, the deferral, the leadership) are created after it and
given by :meth:`Submission.wire`, before the ring thread starts: nothing is submitted before.

Imports ``abi`` and ``common``; the parts it drives for annotations only.
"""

from __future__ import annotations

import os
import select
import threading
from typing import TYPE_CHECKING

from ..._io._backend import OpKind
from ..._kernel._threads import current_thread_state
from .abi import RingBusyError, SubmissionQueueFull
from .backlog import failed_status
from .common import B_CANCEL, B_POLL, UD_CANCEL, InFlight

if TYPE_CHECKING:
    from ..._io._ops import Operation
    from ..._kernel._dispatcher import ThreadState
    from .backlog import Backlog
    from .deferral import Deferral
    from .lead import Leadership
    from .migration import Migration
    from .ring import BackendRing
    from .ringthread import RingThread
    from .streams import Line

__all__ = ["Submission"]

_get_ident = threading.get_ident
_POLLIN = select.POLLIN


class Submission:
    """The SQ side of one backend and its state (module docstring).

    Args:
        ring: the backend's ring.
        table: the backend's requests in flight.
        backlog: what the ring thread must submit (``stuck``: the kernel refuses SQEs).
        migration: who submitted what.
        efd: the ring thread's eventfd.
    """

    __slots__ = (
        "_backlog", "_deferral", "_efd", "_lead", "_migration", "_ring", "_ring_thread",
        "_table", "_unsubmitted", "_wake_locked", "enters",
    )  # fmt: skip

    def __init__(
        self, ring: BackendRing, table: InFlight, backlog: Backlog, migration: Migration, efd: int
    ) -> None:
        self._ring = ring
        self._table = table
        self._backlog = backlog
        self._migration = migration
        self._efd = efd
        #: io_uring_enter calls that submitted (the backend's statistics).
        self.enters = 0

    def wire(self, ring_thread: RingThread, deferral: Deferral, lead: Leadership) -> None:
        """The parts created after this one (before the ring thread starts)."""
        self._ring_thread = ring_thread
        self._wake_locked = ring_thread.wake_locked
        self._deferral = deferral
        #: The deferral's list (``Deferral.unsubmitted``): appended and emptied here.
        self._unsubmitted = deferral.unsubmitted
        self._lead = lead

    def submit_locked(self, ts: ThreadState | None) -> bool:
        """Submit everything prepared so far, from the calling thread ``ts`` (None: the ring
        thread), which owns it from now on: its exit migrates what is left (``uring``). True
        if the ring thread must be woken: the kernel refused (EBUSY, CQ backlog), so the ring
        thread submits the rest, later."""
        ring = self._ring
        pending = ring.publish()
        stuck = False
        idle = 0
        while pending:
            if self._backlog.stuck:
                stuck = True
                break
            try:
                self.enters += 1
                consumed = ring.enter(pending, 0)  # all of them unless interrupted
            except RingBusyError:
                self._backlog.stuck = stuck = True
                break
            # Recounted from the kernel's SQ head rather than decremented: a leader submits
            # its burst in its waiting enter without the lock (``take_burst``), and may take
            # some of these meanwhile. All taken: nothing is left (nobody publishes without
            # the lock, which this thread holds).
            pending = 0 if consumed == pending else ring.sq_ready()
            idle = idle + 1 if not consumed else 0
            if idle > 2:  # the kernel takes nothing (cannot happen, but never spin on it)
                self._backlog.stuck = stuck = True
                break
        unsubmitted = self._unsubmitted
        if unsubmitted:
            try:
                if ts is not None:
                    self._migration.own_locked(ts, unsubmitted, self._table)
            finally:  # (a MemoryError recording them: in the kernel all the same)
                if not stuck:
                    unsubmitted.clear()
                    if self._deferral.hinted:
                        self._deferral.hint_locked()
        return stuck and self._wake_locked()

    def take_back_locked(self, op: Operation, ud: int, exc: Exception) -> int | None:
        """A failure ``exc`` (a MemoryError) inside the backend's ``submit`` of the FILE
        request ``op``, whose SQE was prepared as ``ud`` (-1: none yet): registered by its
        issuer, the request is sent or failed here, never left half taken. Returns None if
        the kernel has it (it completes from its CQE; its record as the issuer's may be
        missing: ``Migration.died``); else the status to complete it with now
        (:func:`failed_status`): its entry gone, its SQE a NOP or never published."""
        if self.withdraw_locked(ud, op):
            return None
        op.token = None
        return failed_status(op, exc)

    def withdraw_locked(self, ud: int, op: Operation) -> bool:
        """After a failure between the preparation of ``op``'s SQE ``ud`` and the end of its
        submission: True if the kernel has it; else its SQE is a NOP (or was never
        published) and its entry, if it had one, is gone. ``ud`` is never used again.
        Deferred SQEs are withdrawn through the deferral (nobody took them over: that needs
        this lock); the others were published by this thread alone under this lock, so the
        kernel took them in this thread's enter or not at all."""
        table = self._table
        if table.next_ud <= ud:
            table.next_ud = ud + 1
        entry = table.get(ud)
        mine = entry is not None and entry[0] is op
        if ud in self._unsubmitted:
            return not self._deferral.withdraw_locked(ud)
        if self._ring.withdraw(ud, UD_CANCEL):
            if mine:
                del table[ud]
            return False
        return mine  # consumed by the kernel (the enter came before the failure), or no SQE

    def rescue_locked(
        self, op: Operation, ud: int, exc: Exception, lines: dict[int, Line]
    ) -> int | None:
        """A failure ``exc`` (a MemoryError) in the backend's general path (``_submit_slow``)
        once it counted ``op``: a FILE request prepared as ``ud`` (-1: not yet) is taken
        back (:meth:`take_back_locked`); a STREAM request queued in its line, or backlogged,
        is the backend's (its line's head arms itself or is backlogged: :meth:`poll_locked`),
        else the line made for it and left empty is dropped. Returns None if the backend
        holds the request, else the status to complete it with now (:func:`failed_status`)."""
        if op.kind is OpKind.FILE:
            if ud < 0:
                return None if self.holds_locked(op) else failed_status(op, exc)
            return self.take_back_locked(op, ud, exc)
        if self.holds_locked(op):
            return None
        fd = op.fd
        line = lines.get(fd + fd if op.poll_events & _POLLIN else fd + fd + 1)
        if line is not None and not (line.ops or line.busy or line.poll_ud):
            del lines[line.key]
        op.token = None
        return failed_status(op, exc)

    def holds_locked(self, op: Operation) -> bool:
        """Whether the backend holds ``op`` (in flight, queued in its line, backlogged): the
        failure path of ``submit`` (a MemoryError before the request was counted, or after
        it was taken), never the hot path."""
        token = op.token
        if token is not None:
            ops = getattr(token, "ops", None)  # (a STREAM op's line)
            if ops is not None:
                if op in ops:
                    return True
            else:
                entry = self._table.get(token)
                if entry is not None and entry[0] is op:
                    return True
        return any(entry[1] is op for entry in self._backlog.entries)

    def submit_one_locked(self, ts: ThreadState, ud: int) -> bool:
        """:meth:`submit_locked` for a ring that holds nothing but ``ud``, just prepared
        (nothing deferred, every other SQE consumed): one enter for one SQE, recorded as
        ``ts``'s (the QD1 critical path, before the device starts). Anything unusual (a
        stuck backlog, EBUSY, a signal, an SQE the kernel has not consumed yet) takes the
        general path, which recounts from the kernel's SQ head."""
        ring = self._ring
        if ring.publish() == 1 and not self._backlog.stuck:
            self.enters += 1
            try:
                consumed = ring.enter(1, 0)
            except RingBusyError:
                consumed = 0
            if consumed == 1:
                self._migration.own_locked(ts, (ud,), self._table)
                return False
        self._unsubmitted.append(ud)
        return self.submit_locked(ts)

    def poll_locked(self, op: Operation, line: Line) -> None:
        """Put a line's head into the kernel (``StreamLines``' ``arm``): the operation itself
        (``op.prep_pending``) or a readiness poll, from the calling thread: the issuer, or
        whoever reaped the head before it."""
        line.poll_ud = 0
        if not self._backlog.entries:
            table = self._table
            ud = table.next_ud
            ring = self._ring
            try:
                try:
                    keep = op.prep_pending(ring, ud)
                except SubmissionQueueFull:
                    raise
                except Exception:  # memory the kernel cannot take: wait for readiness
                    keep = None
                if keep is None:
                    ring.prep_poll_add(line.fd, op.poll_events, ud)
                else:
                    line.direct = True
                    line.keep = keep
            except SubmissionQueueFull:
                pass
            else:
                try:
                    table[ud] = (op, line)
                    table.next_ud = ud + 1
                    line.poll_ud = ud
                    self._unsubmitted.append(ud)
                    # The ring's owner defers to its next wait (``lead``); the ring thread
                    # never owns the ring (compared by ident: no thread state made for it).
                    owner = self._lead.owner
                    if owner is not None and owner.ts.ident == _get_ident():
                        if not self._deferral.hinted:
                            self._deferral.hint_locked()
                    elif self.submit_locked(self.submitter()):
                        os.eventfd_write(self._efd, 1)  # rare (EBUSY): under the lock
                    return
                except MemoryError:
                    # Half armed: in the kernel, or taken back and left to the ring thread
                    # (the backlog, below), as a head that found the SQ ring full.
                    if self.withdraw_locked(ud, op):
                        return
                    line.poll_ud = 0
                    line.direct = False
                    line.keep = None
        self._backlog.add_locked(B_POLL, op, line)
        if self._wake_locked():
            os.eventfd_write(self._efd, 1)

    def cancel_locked(self, target: int, ts: ThreadState | None = None) -> bool:
        """ASYNC_CANCEL ``target``, submitted by the calling thread (``ts`` if given: it
        completes inside the enter, or later from the target's own CQE). True if the ring
        thread must be woken."""
        if not self._backlog:
            try:
                self._ring.prep_cancel(target, UD_CANCEL)
            except SubmissionQueueFull:
                pass
            else:
                return self.submit_locked(ts or self.submitter())
        self._backlog.add_locked(B_CANCEL, None, target)
        return self._wake_locked()

    def submitter(self) -> ThreadState | None:
        """Who submits now: None for the ring thread (never migrated), else the thread."""
        if _get_ident() == self._ring_thread.ident:
            return None
        return current_thread_state()
