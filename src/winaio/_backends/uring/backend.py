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
from typing import TYPE_CHECKING, Any

from ..._io._backend import BackendStatistics, OpKind
from ..._io._issue import register_receive
from ..._io._ops import Operation
from ..._io._slot import (
    ARMED,
    ARMING,
    DEMOTING_A,
    DEMOTING_K,
    GEN_MASK,
    IDLE,
    NO_INDEX,
    arm_locked,
    demote_locked,
    release_refs,
)
from ..._io._stream_ops import StreamReadOp
from ..._kernel._dispatcher import LOCK, ThreadState
from ..._kernel._threads import EXIT_MIGRATE_IO, add_thread_exit_hook, current_thread_state
from ...codes import NtStatus, WinError
from ...errors import Win32Error
from . import fastsubmit
from .abi import SubmissionQueueFull
from .backlog import Backlog, prep_failed
from .close import CLOSE_TIMEOUT, salvage
from .common import B_FILE, B_POLL, CANCELLED, ECANCELED, SLOT_TAG, Finished, InFlight
from .deferral import BURST, Deferral
from .fastpend import install_on
from .lead import Leadership, RingParker
from .migration import Migration
from .probe import (
    coop_taskrun,
    feature_names,
    probe_backend,
    recv_poll_first,
    ring_flags,
    setup_names,
)
from .reaper import Reaper
from .ring import BackendRing
from .ringthread import RingThread
from .slots import add_locked, new_table, settle_locked
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
    #: The sockets' pended receives arm a receive slot (``_io._slot``) where eligible:
    #: ``_accel.slots()`` is not ``off`` (set by the installer, ``fastpend``).
    _slots_on = False

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
        #: The sockets' receive slots (``slots``, ``_io._slot``): their incarnations in the
        #: kernel count in ``_in_flight``, their counters in ``statistics``.
        self._slots = new_table()
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
            rt.poke_ended, rt.wake, self._slots,
        )  # fmt: skip
        #: The ring owner's burst, deferred to its next wait (``deferral``).
        self._deferral = deferral = Deferral(
            ring, self._lock, self._table, self._backlog, self._migration,
            sq.submit_locked, self._wake_locked, self._efd,
        )  # fmt: skip
        #: The deferral's list (``Deferral.unsubmitted``): the SQ side appends under _lock.
        self._unsubmitted = deferral.unsubmitted
        #: The RECV flags of a pended receive (``submit``): POLL_FIRST where the kernel has it.
        self._recv_ioprio = recv_poll_first()
        self._lead = Leadership(
            ring, self._lock, self._reaper.reap, deferral.flush, deferral.take_burst,
            deferral.burst_left, self._in_flight, deferral.unsubmitted, rt.wake_to_watch,
            self._efd,
        )  # fmt: skip
        sq.wire(rt, deferral, self._lead)
        #: The SQ side's submission under the name the C ``pend_receive`` calls on the backend
        #: (``_io/_fastpend.c``; a bound method: no frame of the backend's in between).
        self._submit_locked = sq.submit_locked
        # Counters (under _lock): requests. (Syscalls, what leaders save: the SQ side's
        # ``enters``. Completed from a CQE: the reaper's ``done`` and ``cancelled``, under its
        # CQ lock; the ring thread's rounds and wake-ups: ``RingThread``.)
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
        if type(op) is StreamReadOp and not self._closing:  # type(): narrows for mypy
            # A socket receive into one buffer that reaches the backend as a request (the
            # general path: a flag, a receive queued behind another...; the fast path's pends
            # come through :meth:`pend_receive`): on a socket whose line is empty it becomes
            # the head of a new line and a RECV in one hold of the lock (:meth:`_pend_locked`),
            # without the general path's layers (``_submit_slow`` -> ``enqueue_locked`` ->
            # ``poll_locked`` -> ``prep_pending`` -> ``recv``).
            file = op.file
            buffers = op.buffers
            if file.sock is not None and op.nbytes and len(buffers) == 1:
                issuer = op.issuer
                fd = file.fd
                key = fd + fd
                cancelled = False
                pended: bool | None = None
                lock = self._lock
                drop: list[object] = []
                with lock:
                    if file._rslot is not None:
                        self._settle_file_locked(file, drop)  # (behind a demoted slot)
                    if self._closing or self._backlog.entries or key in self._streams.lines:
                        pass  # the general path: behind a head, backlogged, or refused
                    elif op.cancel_requested:
                        # Cancelled before it had a token: cancel() could not find it.
                        self._submitted += 1
                        cancelled = True
                    else:
                        pended = self._pend_locked(op, issuer, fd, key, buffers[0])
                if pended is not None:
                    if pended:
                        os.eventfd_write(self._efd, 1)
                    parker = issuer.parker
                    if parker.__class__ is not RingParker or parker.lead is not self._lead:
                        self._bind_parker(issuer)
                    return
                if cancelled:
                    self._finish_direct(op, CANCELLED)
                    return
        self._submit_slow(op)

    def pend_receive(self, file: FileObject, overlapped: Overlapped, view: memoryview) -> None:
        """The sockets' pended receive in one call (``Socket.start_read``, when its attempt
        would block or is skipped; the preconditions of ``_files.submit_receive``: one whole,
        non-empty writable buffer, no flags, no routine, E reset, F cleared, Internal
        STATUS_PENDING): ``_files.submit_receive`` and :meth:`submit`'s receive block without
        the request passing between them. The request is built and registered in one hold of
        LOCK by ``_files.register_receive`` (the rules shared with ``submit_receive``);
        then, in one hold of the backend's lock, it becomes the head of a new line and a RECV
        (POLL_FIRST where the kernel has it) deferred to the ring owner's next wait, or
        submitted at once by anyone else. A cancel that came between the two holds (no
        token to find yet) is seen here (``cancel_requested``) and completes it cancelled,
        as in :meth:`submit`; anything else unusual (a line already there, a backlog, a
        closing backend, a full SQ ring) takes :meth:`submit`. The reference of the C
        accelerator's method (``_io/_fastpend.c``, installed by ``fastpend``), which takes
        :meth:`_pend_rest` in those cases.

        With receive slots on (``_accel.slots()``), the slot's shape - a port-bound socket,
        no event, no ``hEvent|1``, nothing else pending in its direction - arms the socket's
        ``ReceiveSlot`` instead (``_io._slot``; :meth:`_arm_slot`): no request object.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the socket is being closed.
        """
        if (
            self._slots_on
            and overlapped.event is None
            and not overlapped.skip_port
            and file.port is not None
        ):
            issuer = current_thread_state()
            with LOCK:
                if file.closing:
                    raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
                slot = arm_locked(file, overlapped, view, issuer, self._slots)
                gen = 0 if slot is None else slot.gen
            if slot is not None:
                self._arm_slot(slot, gen, issuer, file.fd)
                return
        op = register_receive(file, overlapped, view)  # (built and registered under LOCK)
        issuer = op.issuer
        fd = file.fd
        key = fd + fd
        wake: bool | None = None
        drop: list[object] = []
        with self._lock:
            self._settle_file_locked(file, drop)  # (a slot this registration demoted)
            if not (
                self._closing
                or self._backlog.entries
                or key in self._streams.lines
                or op.cancel_requested  # (:meth:`submit` completes it cancelled)
            ):
                wake = self._pend_locked(op, issuer, fd, key, view)
        if wake is not None:
            if wake:
                os.eventfd_write(self._efd, 1)
            parker = issuer.parker
            if parker.__class__ is not RingParker or parker.lead is not self._lead:
                self._bind_parker(issuer)
            return
        self._pend_rest(op)

    def _pend_rest(self, op: StreamReadOp) -> None:
        """The rest of :meth:`pend_receive` for a registered receive that did not become a
        line's head in one hold (a line already there, a backlog, a closing backend, a
        cancel between the two holds, a full SQ ring): :meth:`submit`. Shared with the C
        accelerator (``fastpend``), which takes it in exactly those cases."""
        try:
            self.submit(op)
        except RuntimeError:
            op.complete(_CLOSED_STATUS, 0)  # the backend is closed: as ``_files``

    def _pend_locked(
        self, op: StreamReadOp, issuer: ThreadState, fd: int, key: int, buf: memoryview
    ) -> bool | None:
        """Under ``_lock``, for a receive into ``buf`` on a socket whose line (``key``) is
        empty, nobody's cancel pending, the backend open and not backlogged: make ``op`` the
        head of a new line and a RECV (POLL_FIRST where the kernel has it: the issuer's own
        attempt has just failed, or was skipped because its last ones did), deferred to the
        ring owner's next wait (``lead``) or submitted at once by anyone else. Returns None
        if the SQ ring or the memory refused it (the general path), else whether the ring
        thread must be woken."""
        table = self._table
        ud = table.next_ud
        try:
            anchor = _from_buffer(buf)
            self._ring.prep_recv(
                fd, _addressof(anchor), buf.nbytes, ud, 0, op.flags, self._recv_ioprio
            )
        except Exception:
            return None  # a full SQ ring, unusable memory: the general path
        self._submitted += 1
        table.next_ud = ud + 1
        table[ud] = (op, self._streams.open_direct_locked(op, key, ud, anchor))
        self._unsubmitted.append(ud)
        if self._lead.owner is issuer.parker:
            if not self._deferral.hinted:
                self._deferral.hint_locked()
            return False
        try:
            return self._sq.submit_locked(issuer)
        except BaseException:  # (Ctrl-C at its entry) made again: it recounts from the SQ
            self._sq.submit_locked(issuer)  # head; else the RECV stayed unsubmitted (review7)
            raise

    # ------------------------------------------------------------------ receive slots
    def _arm_slot(self, slot: Any, gen: int, issuer: ThreadState, fd: int) -> None:
        """Arm step 2 (``_io._slot``: after step 1 made the slot ARMING at ``gen`` under
        LOCK): under the backend's lock, the incarnation becomes a RECV into the pinned
        buffer whose user_data is the slot's (``SLOT_TAG | gen << 32 | index``: a new slot
        gets its index first, ``add_locked``), ARMED, counted in ``armed`` and ``submitted``,
        its user_data in the deferred list; then, as :meth:`_pend_locked` for a request, the
        ring owner's hint or ``submit_locked`` (Python, last). Refused (a closing backend, a
        backlog, a line for the socket's receives, a full SQ ring) or demoted meanwhile
        (DEMOTING_A), it becomes a request: demoted by itself if need be, then the request
        path (:meth:`_resolve_arming`)."""
        wake: bool | None = None
        with self._lock:
            if (
                slot.state == ARMING
                and slot.gen == gen
                and not (self._closing or self._backlog.entries or fd + fd in self._streams.lines)
            ):
                slots = self._slots
                if slot.index == NO_INDEX:
                    add_locked(slots, slot)
                    gen = slot.gen  # (a reused index continues the dead slot's generations)
                ud = SLOT_TAG | gen << 32 | slot.index
                try:
                    self._ring.prep_recv(fd, slot.address, slot.nbytes, ud, 0, 0, self._recv_ioprio)
                except Exception:
                    pass  # a full SQ ring: the request path
                else:
                    slot.ud = ud
                    slot.state = ARMED
                    slots.armed += 1
                    slots.submitted += 1
                    self._unsubmitted.append(ud)
                    if self._lead.owner is issuer.parker:
                        if not self._deferral.hinted:
                            self._deferral.hint_locked()
                        return  # (its parker leads this ring already)
                    try:
                        wake = self._sq.submit_locked(issuer)
                    except BaseException:  # (Ctrl-C at its entry) made again, as in _pend_locked
                        self._sq.submit_locked(issuer)
                        raise
        if wake is not None:
            if wake:
                os.eventfd_write(self._efd, 1)
            parker = issuer.parker
            if parker.__class__ is not RingParker or parker.lead is not self._lead:
                self._bind_parker(issuer)
            return
        with LOCK:
            if slot.state == ARMING and slot.gen == gen:
                demote_locked(slot)  # ARMING -> DEMOTING_A: the incarnation's request
        self._resolve_arming(slot, gen, issuer)

    def _resolve_arming(self, slot: Any, gen: int, issuer: ThreadState) -> None:
        """The arming thread's end of a DEMOTING_A slot at ``gen`` (its incarnation never
        reached the kernel): the request goes to the request path, in this hold of the
        backend's lock unless the backend closes or a cancel came (:meth:`_pend_rest`
        completes it then). Nothing if a second receive's submission did it already
        (:meth:`_settle_file_locked`)."""
        drop: list[object] = []
        rest: StreamReadOp | None = None
        enqueued = False
        with self._lock:
            if slot.state == DEMOTING_A and slot.gen == gen:
                rest = self._demoted_request_locked(slot, drop)
                enqueued = rest is None
        if rest is not None:
            self._pend_rest(rest)
        elif enqueued:
            self._bind_parker(issuer)

    def _demoted_request_locked(self, slot: Any, drop: list[object]) -> StreamReadOp | None:
        """DEMOTING_A -> IDLE (under ``_lock``): the slot lets its incarnation's request go;
        it is queued on its socket's line here (its order kept: nothing can come between),
        or returned when the backend closes or a cancel came, for :meth:`_pend_rest`."""
        op: StreamReadOp = slot.op
        slot.state = IDLE
        slot.gen = (slot.gen + 1) & GEN_MASK
        drop += release_refs(slot)
        if self._closing or op.cancel_requested:
            return op
        self._submitted += 1
        self._streams.enqueue_locked(op)
        return None

    def _settle_file_locked(self, file: FileObject, drop: list[object]) -> None:
        """Under ``_lock``, before a STREAM request of ``file`` looks at its line: a receive
        slot its registration demoted (``_io._slot``) is settled first, so that the request
        queues behind the slot's incarnation (#66): DEMOTING_K -> a Line head in the kernel
        (:func:`~.slots.settle_locked`), DEMOTING_A -> its request queued now (unless it is
        cancelled or the backend closes: then its arming thread completes it)."""
        slot = file._rslot
        if slot is None:
            return
        state = slot.state
        if state == DEMOTING_K:
            self._settle_locked(slot, drop)
        elif state == DEMOTING_A and not (self._closing or slot.op.cancel_requested):
            self._demoted_request_locked(slot, drop)

    def _settle_locked(self, slot: Any, drop: list[object]) -> None:
        """Demotion step 2 of a DEMOTING_K slot (under ``_lock``): its incarnation is a
        request in the kernel from now on; a closing backend cancels it here (the ring
        thread's cancel-all may have run already)."""
        ud = slot.ud
        drop += settle_locked(slot, slot.gen, self._table, self._streams)
        if self._closing and ud in self._table and self._sq.cancel_locked(ud):
            os.eventfd_write(self._efd, 1)  # rare (EBUSY at close): under the lock, so be it

    def settle_slot(self, slot: Any) -> None:
        """Demotion step 2 for a demoter holding no lock (``_io._slot.demote``,
        ``FileObject.pending_ops``/``close``): idempotent."""
        drop: list[object] = []
        with self._lock:
            if slot.state == DEMOTING_K:
                self._settle_locked(slot, drop)

    def _demote_all(self) -> None:
        """Every slot with an incarnation out becomes requests (``close``, after
        ``_closing`` is set: no slot is armed from then on): step 1 under LOCK, step 2
        (and its cancel) under ``_lock``; DEMOTING_A ones end with their arming thread."""
        with LOCK:
            due = [slot for slot in list(self._slots.items) if demote_locked(slot)]
        if due:
            drop: list[object] = []
            with self._lock:
                for slot in due:
                    if slot.state == DEMOTING_K:
                        self._settle_locked(slot, drop)

    def _bind_parker(self, issuer: ThreadState) -> None:
        """The issuer most likely waits for its request soon: let it lead the ring then."""
        parker = issuer.parker
        if parker.__class__ is not RingParker or parker.lead is not self._lead:
            with LOCK:
                self._lead.parker_for(issuer)

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
                        self._settle_file_locked(op.file, drop)  # (behind a demoted slot)
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
            submitted = self._submitted + slots.submitted
            cancelled = self._reaper.cancelled + self._cancelled_direct + slots.cancelled
            detail = (
                f"ring sq={ring.sq_entries} cq={ring.cq_entries}"
                f" features={feature_names(ring.features)} setup={setup_names(ring.flags)};"
                f" issuers submit ({self._enters}"
                f" enters, {self._backlog.total} backlogged, {self._migration.count} migrated at"
                f" thread exit); waiters reap: {lead.leads} waits as leader, {lead.waits} in"
                f" the kernel, {lead.own_wakes} ended in place, {lead.pokes} pokes,"
                f" {lead.takeovers} takeovers, {lead.claims} claims; ring thread:"
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
            self._reaper.closing = True
            self._ring_thread.sleeping = False
        self._demote_all()  # receive slots: requests from here on (the ring thread drains them)
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
            self._submitted + slots.submitted == self._reaper.done + self._done_direct + slots.done
        )

    def _crashed_locked(self) -> None:
        """The ring thread died of a bug: refuse new requests; close() drains the ones in
        flight itself (``close``)."""
        self._closing = self._crashed = self._streams.closing = True
        self._reaper.closing = True

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
install_on(IoUringBackend)  # the C pend_receive, when the accelerators are on (``fastpend``)
fastsubmit.install_on(IoUringBackend)  # the C QD1 O_DIRECT submit (``fastsubmit``, qd1)
