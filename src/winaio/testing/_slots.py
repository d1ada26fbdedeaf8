"""Hand-built worlds for the completion funnel's and the receive slots' tests.

Purpose: the pieces the tests of the reaper, the C and Python funnels and the receive slots
(``tests/io/test_fastslot.py``, ``test_slot_machine.py``, ``test_fastpath_review2.py`` and the
child scripts they run under :func:`winaio.testing.nomem_sweep`) built again in each place:
files on a duplicate of ``/dev/null`` bound to a port (nothing is issued on them), threads
parked on an object or on a port's GetQueuedCompletionStatus, FILE requests in flight, slots
pinned on a buffer, a stand-in for the backend's lock that runs a hook at each acquire (a
demoter's window, a lock-order check), a call with its k-th allocation failing and what such a
call must not leave behind.

Invariants: nothing here starts a thread, a backend or a ring: every object is made in the
state the real paths leave it in (``ts.wait`` set as ``block`` registers it; a slot pinned,
its ``ud`` the plan's encoding ``1 << 63 | gen << 32 | index``), so a test sees the library's
own code act on it; every descriptor is a ``dup`` the caller closes with :func:`close_files`;
no import of ``winaio._backends`` (import-linter: only ``winaio._runtime`` knows the
backends), so a world's reaper is the caller's.
"""

from __future__ import annotations

import _thread
import ctypes
import importlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._io import _slot
from .._io._files import FileObject
from .._io._ops import FileReadOp, pinned_read
from .._io._overlapped import Overlapped
from .._io._port import CompletionPort
from .._kernel._dispatcher import LOCK, ThreadState, WaitBlock
from .._kernel._objects import Event

__all__ = [
    "SLOT_TAG",
    "HookedLock",
    "call_failing",
    "close_files",
    "file_request",
    "left_behind",
    "null_file",
    "pinned_slot",
    "port_getter",
    "registered_read",
    "reaped_slots",
    "receive_settled",
    "ring_thread_asleep",
    "waiting_on",
]

#: The tag bit of a receive slot's user_data (docs/plans/receive-slot.md §2).
SLOT_TAG = _slot.SLOT_TAG


def null_file(
    null_fd: int, port: CompletionPort | None = None, key: object = None, *, stream_in: int = 0
) -> FileObject:
    """An overlapped file object on a ``dup`` of ``null_fd`` (no backend: nothing is issued
    on it), bound to ``port`` with ``key`` when a port is given; ``stream_in`` STREAM
    receives counted in flight on it."""
    f = FileObject(os.dup(null_fd), overlapped=True, backend=object())  # type: ignore[arg-type]
    if port is not None:
        f.port, f.key = port, key
    f.stream_in = stream_in
    return f


def waiting_on(obj: Any, ident: int = 0, parker: Any = None) -> tuple[ThreadState, WaitBlock]:
    """A thread state (``ident``) blocked in a plain wait on the dispatcher object ``obj`` (an
    event, a file object, a port), as ``block`` (``wait_for_one``) registers it, parked on
    ``parker`` (None: its own lock; a :class:`PyParker` where the sweep needs a Python one)."""
    ts = ThreadState(ident, ident)
    if parker is not None:
        ts.parker = parker
    wb = WaitBlock(ts, (obj,), False, False)
    obj._waiters[wb] = None
    ts.wait = wb
    return ts, wb


def port_getter(
    port: CompletionPort, ident: int, packets: int = 1, parker: Any = None
) -> tuple[ThreadState, WaitBlock]:
    """A thread state (``ident``) parked in GetQueuedCompletionStatus(Ex) on ``port`` for up
    to ``packets`` packets (``parker``: its parker, when the test needs a particular one)."""
    ts = ThreadState(ident, ident)
    if parker is not None:
        ts.parker = parker
    wb = WaitBlock(ts, (), False, False, port._detach)
    wb.data = packets
    port._getters.append(wb)
    ts.wait, ts.block_listener = wb, port
    return ts, wb


def file_request(file: FileObject, event: Event | None, issuer: ThreadState) -> FileReadOp:
    """A FILE request (a read, no completion routine) in flight on ``file`` as the backend
    holds it: submitted, not yet registered in the file's pending set."""
    op = object.__new__(FileReadOp)
    op.file = file
    op.overlapped = Overlapped(0, event)
    op.event = event
    op.skip_port = False
    op.routine = None
    op.issuer = issuer
    op.done = False
    op.registered = False
    op.submitted = True
    op.cancel_requested = False
    op.token = None
    op.sync_done = None
    return op


def registered_read(file: FileObject, view: memoryview, offset: int) -> FileReadOp:
    """A pinned read of ``view`` at ``offset`` on the O_DIRECT ``file`` (``_ops.pinned_read``:
    no event, its port's packet) registered as ``_issue.submit_pending_file`` registers it,
    ready for the backend's ``submit`` (the tests that call it directly)."""
    anchor = memoryview(view)
    address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    op = pinned_read(file, Overlapped(offset), view, offset, anchor, address, len(view))
    with LOCK:
        op.registered = op.submitted = True
        file._pending[op] = None
    return op


def pinned_slot(
    slot_class: Callable[[Any], Any],
    table: Any,
    file: FileObject,
    issuer: ThreadState,
    index: int,
    gen: int,
    state: int,
    *,
    res: int = 0,
    size: int = 16,
) -> tuple[Any, Overlapped, bytearray]:
    """A receive slot of ``slot_class`` (the C ``ReceiveSlot`` or the Python twin) in
    ``table``, for a receive on ``file`` by ``issuer`` into a fresh ``size``-byte buffer (its
    view pinned), at ``index`` and generation ``gen``, in ``state`` with result ``res``. The
    caller adds it to the table's ``items`` and counts (they differ by state)."""
    ov, buf = Overlapped(0), bytearray(size)
    slot = slot_class(table)
    slot.file, slot.overlapped, slot.issuer, slot.view = file, ov, issuer, memoryview(buf)
    slot.pin()
    slot.index, slot.gen, slot.res, slot.state = index, gen, res, state
    slot.ud = SLOT_TAG | gen << 32 | index
    return slot, ov, buf


def reaped_slots(
    slot_class: Callable[[Any], Any],
    table: Any,
    port: CompletionPort,
    null_fd: int,
    issuer: ThreadState,
    results: Iterable[int],
    *,
    first_waiter: int,
    size: int = 8,
) -> tuple[list[Any], list[bytearray]]:
    """One slot REAPED (generation 0) per ``results`` item with that byte count, at index
    ``i`` on its own :func:`null_file` bound to ``port`` with key ``i`` (one STREAM receive in
    flight) on which a thread (``first_waiter + i``) waits; the slots and their buffers."""
    slots, bufs = [], []
    for i, res in enumerate(results):
        f = null_file(null_fd, port, i, stream_in=1)
        waiting_on(f, first_waiter + i)
        slot, _, buf = pinned_slot(
            slot_class, table, f, issuer, i, 0, _slot.REAPED, res=res, size=size
        )
        slots.append(slot)
        bufs.append(buf)
    return slots, bufs


class HookedLock:
    """A stand-in for the backend's lock whose ``acquire`` (and ``with``) first runs
    :meth:`before_acquire` (a subclass's: a demoter let in, a lock-order check). The real lock
    is :attr:`lock` (a ``_thread`` lock: made even while a test replaces ``threading.Lock``)."""

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()

    def before_acquire(self) -> None:
        """Runs before each acquire, without the lock (nothing here)."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.before_acquire()
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.lock.release()

    def locked(self) -> bool:
        return self.lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # (Named parameters: ``*exc`` would allocate a tuple, and a failed allocation there
        # - a nomem sweep's - would leave the lock held, where a real lock's exit cannot.)
        self.release()


def ring_thread_asleep(backend: Any, timeout: float = 2.0) -> bool:
    """Wait (up to ``timeout`` seconds) until the io_uring ``backend``'s ring thread sleeps
    without the watch's timeout (only an eventfd write wakes it); True if it does.
    ``_testcapi.set_nomemory`` fails the k-th allocation of the whole process: a ring thread
    ticking its watch can take the GIL while the swept call sits in ``io_uring_enter`` and
    make that allocation itself. The ring thread survives it (it runs the round again after a
    back-off: ``ringthread``), but the sweep would then have tested nothing at that k: this
    is only what keeps the injected failure in the swept thread. A :func:`call_failing`
    sweep over a backend's paths waits for this before each call (the flags are read without
    the backend's lock: a test's wait)."""
    rt = backend._ring_thread
    deadline = time.monotonic() + timeout
    while not (rt.sleeping and not rt.sleep_timed):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
    return True


def call_failing(
    k: int | None,
    fn: Callable[..., object],
    *args: object,
    catch: type[BaseException] = MemoryError,
) -> BaseException | None:
    """Call ``fn(*args)`` with the ``k``-th allocation from the call on failing
    (``_testcapi.set_nomemory``; ``None``: no failure set here, the caller sets its own) and
    the allocator hooks removed after it; returns the ``catch`` exception it raised, if any
    (``args`` are not kept alive by it).
    For the children of :func:`winaio.testing.nomem_sweep` (``_testcapi`` is a test module:
    imported at the first call)."""
    testcapi = importlib.import_module("_testcapi")
    raised: BaseException | None = None
    if k is not None:
        testcapi.set_nomemory(k, k + 1)
    try:
        fn(*args)
    except catch as exc:
        raised = exc
    finally:
        testcapi.remove_mem_hooks()
        # The exception's frames keep this one (their ``f_back``): not ``args`` with it (a
        # receive's view, which keeps its buffer exported while it lives).
        del args
    return raised


def left_behind(
    port: CompletionPort | None = None,
    *,
    locks: Mapping[str, Any] | None = None,
    getters: Iterable[WaitBlock] = (),
) -> list[str]:
    """What a call must not leave behind, each said once: the dispatcher ``LOCK`` or one of
    ``locks`` (by name) left held (released here, so the next round starts clean), ``port``
    left held by a delivery, one of its GQCS waiters (``getters``) popped from it and left
    asleep (no result)."""
    bad: list[str] = []
    if port is not None and port.holding:
        bad.append("a port left held")
    for name, lock in (("LOCK", LOCK), *(locks or {}).items()):
        if lock.locked():
            bad.append(f"{name} left held")
            lock.release()
    if port is not None and any(wb not in port._getters and wb.result is None for wb in getters):
        bad.append("a waiter popped and left asleep")
    return bad


def receive_settled(
    sock: Any,
    peer: Any,
    port: CompletionPort,
    ov: Overlapped,
    buf: bytearray,
    raised: BaseException | None,
    backend_lock: Any,
) -> set[str]:
    """What a failed call (a nomem sweep's) that was to pend a receive into ``buf`` on the
    winaio socket ``sock`` (bound to ``port``; ``peer`` its plain other end) must not leave:
    a lock held (:func:`left_behind`, ``backend_lock`` too); a count of pending requests other
    than the STREAM receives in flight; a pended receive that does not complete with the
    peer's next byte (one is sent); nothing pending without an error (``raised``) or with the
    receive slot not idle; ``buf`` left exported; a stray packet. The caller drops its own
    views of ``buf`` first."""
    bad = set(left_behind(locks={"the backend's lock": backend_lock}))
    if sock.pending_requests != sock.stream_in:
        bad.add(f"pending_requests {sock.pending_requests} != stream_in {sock.stream_in}")
    if sock.pending_requests:
        peer.sendall(b"k")
        packet = port.get(5.0)
        if packet is None or packet.overlapped is not ov or bytes(buf[:1]) != b"k":
            bad.add(f"a pending receive did not complete ({raised!r})")
    else:
        if raised is None:
            bad.add("no receive pending and no error")
        if sock._rslot is not None and sock._rslot.state != _slot.IDLE:
            bad.add(f"slot in state {sock._rslot.state} with nothing pending")
    try:
        buf.extend(b"x")
    except BufferError:
        bad.add("a buffer left exported")
    if port.get(0) is not None:
        bad.add("a stray packet")
    return bad


def close_files(files: Iterable[FileObject]) -> None:
    """Close the descriptors of ``files`` still open (fd -1 after)."""
    for f in files:
        if f.fd >= 0:
            os.close(f.fd)
            f.fd = -1
