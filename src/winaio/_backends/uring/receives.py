"""The sockets' pended receives on the io_uring backend: the request path and the slots.

Purpose: :class:`Receives`, the part of :class:`~.backend.IoUringBackend` (a base class of it:
one object, one lock) that turns a socket's pended receive into a RECV: ``pend_receive`` (the
reference of the C accelerator's method, ``_io/_fastpend.c``) with ``_pend_locked`` (a line's
head and its RECV in one hold of the backend's lock) and ``_pend_rest`` (everything unusual:
``submit``), and the receive slots' steps on the backend's side (``_io._slot``): arming a
slot's incarnation as a RECV (``_arm_slot``), a demoted slot's request going to the request
path (``_resolve_arming``, ``_demoted_request_locked``), demotion's step 2
(``_settle_locked``, ``settle_slot``, ``_settle_file_locked``) and close's demotion of every
slot (``_demote_all``).

Invariants (the backend's, ``backend`` and ``uring``): every prep, publish and submitting
enter under the backend's ``_lock``; a slot's state moves under LOCK (step 1) and the
backend's lock (step 2) as ``_io._slot`` says; ``op.complete`` is called with neither held;
the Python submission (``submit_locked``) is called last, and a Ctrl-C at its entry makes it
again (review7). The C accelerator calls these methods by name (``_pend_rest``,
``_arm_slot``, ``_bind_parker``, ``_pend_locked``): their names and signatures are its ABI.

Imports ``_io`` (the slot, the receive's registration), ``_kernel`` (LOCK, the issuer) and the
backend's parts for the attributes it uses (declared below for the type checker).
"""

from __future__ import annotations

import ctypes
import os
import threading
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
from .backlog import Backlog
from .common import SLOT_TAG, InFlight
from .deferral import Deferral
from .lead import Leadership, RingParker
from .ring import BackendRing
from .slots import SlotTable, add_locked, settle_locked
from .streams import StreamLines
from .submission import Submission

if TYPE_CHECKING:
    from ..._io._files import FileObject
    from ..._io._ops import Operation
    from ..._io._overlapped import Overlapped

__all__ = ["Receives"]

_CLOSED_STATUS = int(NtStatus.STATUS_INVALID_HANDLE)  # the backend is closed (``_files``)
_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


class Receives:
    """The sockets' pended receives (module docstring): a base class of ``IoUringBackend``,
    whose ``__init__`` sets every attribute declared here."""

    _slots_on: bool
    _lock: threading.Lock
    _ring: BackendRing
    _table: InFlight
    _slots: SlotTable
    _backlog: Backlog
    _streams: StreamLines
    _sq: Submission
    _deferral: Deferral
    _lead: Leadership
    _unsubmitted: list[int]
    _recv_ioprio: int
    _efd: int
    _closing: bool
    _submitted: int

    if TYPE_CHECKING:

        def submit(self, op: Operation) -> None: ...

        def _bind_parker(self, issuer: ThreadState) -> None: ...

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
