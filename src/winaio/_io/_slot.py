"""The per-socket reusable receive (``ReceiveSlot``): the file side of its state machine.

Purpose: a port-bound socket's pended receive without a request object (issue 9, the C=64
echo; ``docs/plans/receive-slot.md``). One :class:`ReceiveSlot` per socket holds the *current
incarnation* of its pended receive; every consumer other than the hot path (CancelIo/Ex,
close, ``pending_ops()``, a second receive queued behind, backend close, an unusual CQE)
first **demotes** it: :func:`demote_locked` builds and registers today's ``StreamReadOp`` for
that incarnation (step 1, under LOCK), the backend makes it a Line head with its table entry
under the incarnation's user_data (step 2, under the backend's lock: ``settle_slot``), after
which every request path handles it unchanged.

This module is the reference: every transition made under LOCK lives here, written against
the attribute names only (``state``, ``gen``, ``index``, ``file``, ``overlapped``, ``issuer``,
``view``, ``buf``, ``res``, ``ud``, ``op``, ``table`` and the methods ``pin``/``unpin``/
``pending``), so the functions run on the C twin (``_fastslot.c``) too. The transitions made
under the backend's lock are in ``_backends/uring/slots.py`` and ``backend.py``; the
delivery of a reaped slot in ``_dispatch._deliver_slot_locked``.

States (``state``; who writes which transition, under which lock: the plan's §2 table):
IDLE -> ARMING (arm step 1, LOCK) -> ARMED (arm step 2, the backend's lock) -> REAPED (the
reaper, the backend's lock) -> DELIVERING -> IDLE (the delivery, LOCK). A demoter turns
ARMING into DEMOTING_A and ARMED into DEMOTING_K (LOCK); DEMOTING_A ends with the arming
thread (or a second receive's enqueue) handing the op to the request path, DEMOTING_K with
step 2 (anyone holding the backend's lock who finds it: idempotent, checked by ``gen``). A
REAPED slot demoted keeps its state and gets ``op``: its delivery delivers the op. IDLE ->
DEAD when the socket's descriptor is released. ``gen`` moves (+1, 31 bits) exactly when an
incarnation ends, by whoever ends it.

Invariants: a slot is armed only on a port-bound socket, for a receive with no event, no
``hEvent|1`` and no routine (it survives its issuer's exit, spec §8, so it is never in the
issuer's list), and only when no other receive of the socket is pending (``stream_in`` 0:
#66). ``stream_in`` counts the incarnation from arm step 1 to its delivery (or its demoted
op's). ``pending()`` is 1 while an incarnation is out and no op stands for it.

Imports ``_kernel`` only (``_stream_ops`` gives it the demoted request's builder:
:func:`set_request_builder`; ``_stream_ops`` -> ``_dispatch`` -> here).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .._kernel._dispatcher import LOCK, ThreadState
from ..codes import WinError
from ..errors import Win32Error

if TYPE_CHECKING:
    from ._files import FileObject
    from ._overlapped import Overlapped
    from ._stream_ops import StreamReadOp

__all__ = [
    "ARMED",
    "ARMING",
    "DEAD",
    "DELIVERING",
    "DEMOTING_A",
    "DEMOTING_K",
    "GEN_MASK",
    "IDLE",
    "NO_INDEX",
    "REAPED",
    "SLOT_TYPES",
    "ReceiveSlot",
    "SlotBackend",
    "arm_locked",
    "demote",
    "demote_locked",
    "died_locked",
    "eligible",
    "release_refs",
    "set_request_builder",
]

IDLE, ARMING, ARMED, REAPED, DELIVERING, DEMOTING_A, DEMOTING_K, DEAD = range(8)
assert not IDLE  # (``if slot.state:`` tests "not IDLE")
#: ``gen`` is 31 bits (the user_data carries it: ``uring.common.slot_ud``).
GEN_MASK = 0x7FFFFFFF
#: ``index`` until the slot's first arm step 2 gives it one (``uring.slots.add_locked``).
NO_INDEX = 0xFFFFFFFF
#: The tag of a slot incarnation's user_data (``uring.common.SLOT_TAG``).
SLOT_TAG = 1 << 63
_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


class ReceiveSlot:
    """One socket's reusable pended receive (module docstring); the Python twin of the C
    type ``winaio._io._fastio.ReceiveSlot`` (same attribute names).

    ``buf`` is the pin: a ctypes anchor on ``view`` (an export: ``view.release()`` raises
    BufferError until :meth:`unpin`), as ``_pend_locked`` makes for a request; ``address``
    and ``nbytes`` describe it (0 unpinned; plain attributes here, read-only members of the
    C type), ``user_data`` is the incarnation's.
    """

    __slots__ = (
        "address", "buf", "eligible_mode", "file", "gen", "index", "issuer", "nbytes", "op",
        "overlapped", "res", "state", "table", "ud", "view",
    )  # fmt: skip

    def __init__(self, table: object = None) -> None:
        self.index = NO_INDEX
        self.gen = 0
        self.state = IDLE
        self.eligible_mode = 0
        self.file: FileObject | None = None
        self.overlapped: Overlapped | None = None
        self.issuer: ThreadState | None = None
        self.view: memoryview | None = None
        self.buf: Any = None
        self.address = self.nbytes = 0
        self.res = 0
        self.ud: int | None = None
        self.op: StreamReadOp | None = None
        self.table = table

    def pin(self) -> None:
        """Pin ``view``'s memory (writable, contiguous) until :meth:`unpin`.

        Raises:
            ValueError: pinned already.
            TypeError, BufferError: ``view`` cannot be pinned (read-only, released...).
        """
        if self.buf is not None:
            raise ValueError("the receive slot is pinned already")
        view: Any = self.view
        anchor = _from_buffer(view)
        self.buf = anchor
        self.address = _addressof(anchor)
        self.nbytes = view.nbytes

    def unpin(self) -> None:
        self.buf = None
        self.address = self.nbytes = 0

    @property
    def pinned(self) -> bool:
        return self.buf is not None

    @property
    def user_data(self) -> int:
        return SLOT_TAG | (self.gen & GEN_MASK) << 32 | self.index

    def pending(self) -> int:
        """1 while an incarnation is out and no request stands for it (ARMING, ARMED,
        REAPED, DELIVERING without ``op``), else 0: ``FileObject.pending_requests``."""
        return 1 if self.op is None and ARMING <= self.state <= DELIVERING else 0

    def __repr__(self) -> str:
        return f"<ReceiveSlot index={self.index} gen={self.gen} state={self.state}>"


#: The slot classes (``item.__class__ in SLOT_TYPES``: a batch item that is a slot); the
#: C type is added by ``_accel``'s installer when built.
SLOT_TYPES: set[type] = {ReceiveSlot}
#: The class new slots are made of (``_accel``: the C type when ``slots`` is ``c``).
slot_class: list[type] = [ReceiveSlot]


#: How a demotion builds its request: ``_stream_ops.new_stream_read``, put here by
#: ``_stream_ops`` when it is imported (it imports ``_dispatch``, which imports this module:
#: no import back).
_new_request: list[Callable[[Any, Any, Any, Any], StreamReadOp]] = []


def set_request_builder(build: Callable[[Any, Any, Any, Any], StreamReadOp]) -> None:
    """``_stream_ops``: the builder of a demoted incarnation's request."""
    _new_request[:] = [build]


class SlotBackend(Protocol):
    """What the file side needs of a backend that arms slots (``IoUringBackend``)."""

    def settle_slot(self, slot: Any) -> None: ...


def eligible(file: FileObject, overlapped: Overlapped) -> bool:
    """The phase-1 shape (plan §1): a port-bound socket, no event, no ``hEvent|1`` (the
    fast path never has a routine): it survives its issuer's exit (spec §8)."""
    return overlapped.event is None and not overlapped.skip_port and file.port is not None


def arm_locked(
    file: FileObject, overlapped: Overlapped, view: memoryview, issuer: ThreadState, table: object
) -> Any:
    """Arm step 1 (caller holds LOCK and checked ``file.closing`` and :func:`eligible`):
    IDLE -> ARMING, the receive counted (``stream_in``), its objects held and ``view``
    pinned. Returns the slot, or None when the request path must take the receive (an
    earlier receive pends, the slot is busy, or the memory cannot be pinned)."""
    slot: Any = file._rslot
    if slot is None:
        if file.stream_in:
            return None  # an earlier receive pends: it goes first, as a request (#66)
        slot = file._rslot = slot_class[0](table)
    elif slot.state or file.stream_in:  # (not IDLE, or an earlier receive pends: #66)
        return None
    slot.view = view
    try:
        slot.pin()
    except Exception:
        slot.view = None
        return None  # (the request path reports a buffer it cannot take)
    slot.file = file
    slot.overlapped = overlapped
    slot.issuer = issuer
    slot.state = ARMING
    file.stream_in += 1
    return slot


def demote_locked(slot: Any) -> bool:
    """Demotion step 1 (caller holds LOCK): ARMING -> DEMOTING_A, ARMED -> DEMOTING_K, a
    REAPED slot without an op gets one; the op is the incarnation's request, registered as
    ``register_receive`` would (its issuer the slot's; not in the issuer's list: it
    survives its exit; ``stream_in`` unchanged: the slot counted it). Returns whether the
    backend's step 2 is due (``settle_slot``)."""
    state = slot.state
    if not ARMING <= state <= REAPED or slot.op is not None:
        return bool(state in (DEMOTING_K, DEMOTING_A))
    file = slot.file
    view = slot.view  # (an exact bytearray when the C slot armed from one: trim, _fastpend.c)
    if view.__class__ is not memoryview:
        view = memoryview(view)
    op = _new_request[0](file, slot.overlapped, view, slot.issuer)
    op.registered = op.submitted = True
    file._pending[op] = None
    slot.op = op
    if state == ARMING:
        slot.state = DEMOTING_A
    elif state == ARMED:
        slot.state = DEMOTING_K
    else:
        return False  # REAPED: the delivery delivers the op
    return True


def demote(file: FileObject) -> None:
    """Both steps of a demotion of ``file``'s slot, for a caller holding no lock."""
    slot: Any = file._rslot
    if slot is None or not ARMING <= slot.state <= DEMOTING_K:
        return
    with LOCK:
        due = demote_locked(slot)
    if due:
        backend: SlotBackend = file.backend  # type: ignore[assignment]
        backend.settle_slot(slot)


def died_locked(slot: Any) -> None:
    """``slot`` dies (IDLE -> DEAD: its socket's descriptor is released; caller holds
    LOCK): its index goes to its table's ``free`` (reused by the next arm that needs one:
    ``uring.slots.add_locked``; a list append, atomic: no second lock)."""
    slot.state = DEAD
    slot.file = None
    table = slot.table
    if slot.index != NO_INDEX and table is not None:
        table.free.append(slot.index)


def release_refs(slot: Any) -> list[object]:
    """An incarnation ended (IDLE): the slot lets its objects go; returns them, for the
    caller to drop once its lock is released (a DECREF may run code)."""
    refs = [slot.file, slot.overlapped, slot.issuer, slot.view, slot.op, slot.ud]
    slot.unpin()  # (the export only: no code runs)
    slot.file = slot.overlapped = slot.issuer = slot.view = slot.op = slot.ud = None
    slot.res = 0
    return refs


def closed_error() -> Win32Error:
    return Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
