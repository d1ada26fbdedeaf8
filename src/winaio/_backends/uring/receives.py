"""The sockets' receive side of the io_uring backend: pended receives and the receive slots.

Purpose: :class:`Receives`, an object the backend owns (``backend``): the sockets' pended
receive in one call (:meth:`Receives.pend_receive`, ``Socket.start_read``'s when its attempt
would block), a socket receive reaching the backend as a request (:meth:`Receives.submit`,
from ``IoUringBackend.submit``), and the receive slots (``_io._slot``): arm step 2, the
demotion's step 2 (settle), the arming thread's end of a demoted slot, the demotion of them
all at close. It is constructed with the collaborators it uses (the ring, the backend's lock,
the in-flight table, the lines, the backlog, the SQ side, the deferral, the leadership, the
ring thread's eventfd, the backend's general submit and direct completion, the slot table the
reaper reaps too) and holds its own state: the count of requests it put into the lines or
the ring (:attr:`Receives.submitted`, part of the backend's statistics and drain), its
``closing`` flag (set by the backend with its own) and the RECV flags (``_recv_ioprio``).

The C accelerator (``_io/_fastpend.c``, installed by ``fastpend`` on this class) replaces
:meth:`Receives.pend_receive` and reads this object's instance attributes from its dict
(``_lock``, ``closing``, ``_backlog``, ``_streams``, ``_table``, ``_ring``, ``_recv_ioprio``,
``submitted``, ``_unsubmitted``, ``_lead``, ``_deferral``, ``_efd``, ``slots``); it calls
:meth:`Receives._pend_rest`, :meth:`Receives._arm_slot`, ``_submit_locked`` (the SQ side's,
bound) on it and ``Leadership.bind_issuer`` on its leadership, by name, where the Python
method calls them.

Invariants: every state write happens under the backend's ``_lock`` (the SQ side, the table,
the lines, the counters) or under the dispatcher LOCK (the slot's arm and demotion step 1,
``_io._slot``), never both held across a Python call that may block; Python calls that follow
a state write (``submit_locked``, ``eventfd_write``, ``bind_issuer``) come last; an interrupt
at ``submit_locked``'s entry makes it again (the RECV is already in the SQ ring, review7).

Imports ``winaio._io`` (the slot's states and steps, ``register_receive``), ``winaio._kernel``
(LOCK, the thread state) and this package's ``common``, ``slots``, ``streams``.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._io._issue import register_receive
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
from ..._kernel._threads import current_thread_state
from ...codes import NtStatus, WinError
from ...errors import Win32Error
from .common import CANCELLED, SLOT_TAG, InFlight
from .lead import RingParker
from .probe import recv_poll_first
from .slots import SlotTable, add_locked, settle_locked

if TYPE_CHECKING:
    import threading

    from ..._io._files import FileObject
    from ..._io._ops import Operation
    from ..._io._overlapped import Overlapped
    from .backlog import Backlog
    from .deferral import Deferral
    from .lead import Leadership
    from .ring import BackendRing
    from .streams import StreamLines
    from .submission import Submission

__all__ = ["Receives"]

_CLOSED_STATUS = int(NtStatus.STATUS_INVALID_HANDLE)  # the backend is closed (``_files``)
_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


class Receives:
    """The sockets' receive side of one backend (module docstring).

    Args:
        ring, lock, table, streams, backlog: the backend's ring, lock (``_lock``), in-flight
            table, STREAM lines and backlog.
        sq: the SQ side (``submit_locked``, ``cancel_locked``).
        deferral: the ring owner's deferred burst (its list, its hint).
        lead: the ring's leadership (who owns it; ``bind_issuer``).
        efd: the ring thread's eventfd.
        submit: the backend's general submit (a receive that cannot take the one-hold path).
        finish_direct: completes a request that never reached the kernel (counted by the
            backend).
        slots: the backend's receive slot table (``slots``; the reaper reaps them).
    """

    #: The pended receives arm a receive slot (``_io._slot``) where eligible:
    #: ``_accel.slots()`` is not ``off`` (set by the installer, ``fastpend``).
    _slots_on = False

    def __init__(
        self,
        ring: BackendRing,
        lock: threading.Lock,
        table: InFlight,
        streams: StreamLines,
        backlog: Backlog,
        sq: Submission,
        deferral: Deferral,
        lead: Leadership,
        efd: int,
        submit: Callable[[Operation], None],
        finish_direct: Callable[[Operation, int], None],
        slots: SlotTable,
    ) -> None:
        self._ring = ring
        self._lock = lock
        self._table = table
        self._streams = streams
        self._backlog = backlog
        self._sq = sq
        self._deferral = deferral
        #: The deferral's list (``Deferral.unsubmitted``): appended under ``_lock``.
        self._unsubmitted = deferral.unsubmitted
        self._lead = lead
        self._efd = efd
        self._submit = submit
        self._finish_direct = finish_direct
        #: The SQ side's submission under the name the C ``pend_receive`` calls on this object
        #: (a bound method: no frame of this object's in between).
        self._submit_locked = sq.submit_locked
        #: The RECV flags of a pended receive: POLL_FIRST where the kernel has it (the
        #: issuer's own attempt has just failed, or was skipped because its last ones did).
        self._recv_ioprio = recv_poll_first()
        #: The receive slots (``slots``, ``_io._slot``): armed here, reaped by the reaper; their
        #: incarnations in the kernel count in the backend's ``_in_flight``, their counters in
        #: its ``statistics``.
        self.slots = slots
        #: Requests this side put into a line or the ring (under ``_lock``): part of the
        #: backend's ``submitted``.
        self.submitted = 0
        #: The backend is closing (or crashed): set by it, under ``_lock``, with its own.
        self.closing = False

    # ------------------------------------------------------------------ requests
    def submit(self, op: StreamReadOp) -> bool:
        """A socket receive into one buffer that reaches the backend as a request (the
        general path: a flag, a receive queued behind another...; the fast path's pends
        come through :meth:`pend_receive`): on a socket whose line is empty it becomes the
        head of a new line and a RECV in one hold of the lock (:meth:`_pend_locked`), without
        the general path's layers. False: the general path (behind a head, backlogged,
        closing, another shape)."""
        file = op.file
        buffers = op.buffers
        if file.sock is None or not op.nbytes or len(buffers) != 1:
            return False
        issuer = op.issuer
        fd = file.fd
        key = fd + fd
        cancelled = False
        pended: bool | None = None
        drop: list[object] = []
        with self._lock:
            if file._rslot is not None:
                self.settle_file_locked(file, drop)  # (behind a demoted slot)
            if self.closing or self._backlog.entries or key in self._streams.lines:
                pass  # the general path: behind a head, backlogged, or refused
            elif op.cancel_requested:
                # Cancelled before it had a token: cancel() could not find it.
                self.submitted += 1
                cancelled = True
            else:
                pended = self._pend_locked(op, issuer, fd, key, buffers[0])
        if pended is not None:
            self._issued(issuer, pended)
            return True
        if cancelled:
            self._finish_direct(op, CANCELLED)
            return True
        return False

    def pend_receive(self, file: FileObject, overlapped: Overlapped, view: memoryview) -> None:
        """The sockets' pended receive in one call (``Socket.start_read``, when its attempt
        would block or is skipped; the preconditions of ``_files.submit_receive``: one whole,
        non-empty writable buffer, no flags, no routine, E reset, F cleared, Internal
        STATUS_PENDING): ``_files.submit_receive`` and :meth:`submit` without the request
        passing between them. The request is built and registered in one hold of LOCK by
        ``_issue.register_receive`` (the rules shared with ``submit_receive``); then, in one
        hold of the backend's lock, it becomes the head of a new line and a RECV (POLL_FIRST
        where the kernel has it) deferred to the ring owner's next wait, or submitted at once
        by anyone else. A cancel that came between the two holds (no token to find yet) is
        seen here (``cancel_requested``) and completes it cancelled, as in :meth:`submit`;
        anything else unusual (a line already there, a backlog, a closing backend, a full SQ
        ring) takes the backend's submit. The reference of the C accelerator's method
        (``_io/_fastpend.c``, installed by ``fastpend``), which takes :meth:`_pend_rest` in
        those cases.

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
                slot = arm_locked(file, overlapped, view, issuer, self.slots)
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
            self.settle_file_locked(file, drop)  # (a slot this registration demoted)
            if not (
                self.closing
                or self._backlog.entries
                or key in self._streams.lines
                or op.cancel_requested  # (:meth:`submit` completes it cancelled)
            ):
                wake = self._pend_locked(op, issuer, fd, key, view)
        if wake is not None:
            self._issued(issuer, wake)
            return
        self._pend_rest(op)

    def _issued(self, issuer: ThreadState, wake: bool) -> None:
        """What follows a receive put into the ring under ``_lock`` (:meth:`submit`,
        :meth:`pend_receive`, :meth:`_arm_slot`; the C accelerator makes the same calls): the
        ring thread woken if ``submit_locked`` said so, then the issuer's parker bound to this
        ring's leadership unless it is a ``RingParker`` of it already."""
        if wake:
            os.eventfd_write(self._efd, 1)
        parker = issuer.parker
        if parker.__class__ is not RingParker or parker.lead is not self._lead:
            self._lead.bind_issuer(issuer)

    def _pend_rest(self, op: StreamReadOp) -> None:
        """The rest of :meth:`pend_receive` for a registered receive that did not become a
        line's head in one hold (a line already there, a backlog, a closing backend, a
        cancel between the two holds, a full SQ ring): the backend's submit. Shared with the
        C accelerator (``fastpend``), which takes it in exactly those cases."""
        try:
            self._submit(op)
        except RuntimeError:
            op.complete(_CLOSED_STATUS, 0)  # the backend is closed: as ``_files``

    def _pend_locked(
        self, op: StreamReadOp, issuer: ThreadState, fd: int, key: int, buf: memoryview
    ) -> bool | None:
        """Under ``_lock``, for a receive into ``buf`` on a socket whose line (``key``) is
        empty, nobody's cancel pending, the backend open and not backlogged: make ``op`` the
        head of a new line and a RECV (POLL_FIRST where the kernel has it), deferred to the
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
        # Prepared: a failure from here on (a MemoryError) takes the receive back whole or
        # leaves it the kernel's (:meth:`_take_back_locked`), never half taken - the rule of
        # the backend's ``submit`` (a raise means nothing taken) and the C ``pend_locked``'s
        # undone insertions. The count is stored last and restored without an allocation.
        count = self.submitted
        try:
            table[ud] = (op, self._streams.open_direct_locked(op, key, ud, anchor))
            table.next_ud = ud + 1
            self._unsubmitted.append(ud)
            self.submitted = count + 1
            if self._lead.owner is issuer.parker:
                if not self._deferral.hinted:
                    self._deferral.hint_locked()
                return False
        except Exception:
            return self._take_back_locked(op, ud, key, count)
        try:
            return self._sq.submit_locked(issuer)
        except Exception:  # (a MemoryError before its enter, or recording the issuer's)
            return self._take_back_locked(op, ud, key, count)
        except BaseException:  # (Ctrl-C at its entry) made again: it recounts from the SQ
            self._sq.submit_locked(issuer)  # head; else the RECV stayed unsubmitted (review7)
            raise

    def _take_back_locked(self, op: StreamReadOp, ud: int, key: int, count: int) -> bool | None:
        """After a failure in :meth:`_pend_locked` once the RECV ``ud`` was prepared: if the
        kernel has it (the failure came after the enter), the receive is the backend's: its
        entry, line and count stay (the ring thread is woken if the SQ side is stuck: an
        extra write at worst); else its SQE is a NOP or withdrawn with its entry
        (``Submission.withdraw_locked``), the line made for it dropped, the count back to
        ``count``, and None: the general path takes the receive (or fails it)."""
        if self._sq.withdraw_locked(ud, op):
            return self._backlog.stuck
        lines = self._streams.lines
        line = lines.get(key)
        if line is not None and line.ops and line.ops[0] is op:
            del lines[key]
        op.token = None
        self.submitted = count
        return None

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
                and not (self.closing or self._backlog.entries or fd + fd in self._streams.lines)
            ):
                slots = self.slots
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
            self._issued(issuer, wake)
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
        (:meth:`settle_file_locked`)."""
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
            self._lead.bind_issuer(issuer)

    def _demoted_request_locked(self, slot: Any, drop: list[object]) -> StreamReadOp | None:
        """DEMOTING_A -> IDLE (under ``_lock``): the slot lets its incarnation's request go;
        it is queued on its socket's line here (its order kept: nothing can come between),
        or returned when the backend closes or a cancel came, for :meth:`_pend_rest`."""
        op: StreamReadOp = slot.op
        slot.state = IDLE
        slot.gen = (slot.gen + 1) & GEN_MASK
        drop += release_refs(slot)
        if self.closing or op.cancel_requested:
            return op
        self.submitted += 1
        self._streams.enqueue_locked(op)
        return None

    def settle_file_locked(self, file: FileObject, drop: list[object]) -> None:
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
        elif state == DEMOTING_A and not (self.closing or slot.op.cancel_requested):
            self._demoted_request_locked(slot, drop)

    def _settle_locked(self, slot: Any, drop: list[object]) -> None:
        """Demotion step 2 of a DEMOTING_K slot (under ``_lock``): its incarnation is a
        request in the kernel from now on; a closing backend cancels it here (the ring
        thread's cancel-all may have run already)."""
        ud = slot.ud
        drop += settle_locked(slot, slot.gen, self._table, self._streams)
        if self.closing and ud in self._table and self._sq.cancel_locked(ud):
            os.eventfd_write(self._efd, 1)  # rare (EBUSY at close): under the lock, so be it

    def settle_slot(self, slot: Any) -> None:
        """Demotion step 2 for a demoter holding no lock (``_io._slot.demote``,
        ``FileObject.pending_ops``/``close``): idempotent."""
        drop: list[object] = []
        with self._lock:
            if slot.state == DEMOTING_K:
                self._settle_locked(slot, drop)

    def demote_all(self) -> None:
        """Every slot with an incarnation out becomes requests (the backend's ``close``,
        after ``closing`` is set: no slot is armed from then on): step 1 under LOCK, step 2
        (and its cancel) under ``_lock``; DEMOTING_A ones end with their arming thread."""
        with LOCK:
            due = [slot for slot in list(self.slots.items) if demote_locked(slot)]
        if due:
            drop: list[object] = []
            with self._lock:
                for slot in due:
                    if slot.state == DEMOTING_K:
                        self._settle_locked(slot, drop)
