"""Delivering one completion: the single funnel every finished request goes through.

Spec §1.5 fixes the order, and this module is the only place that implements it:

1. write the IOSB (OVERLAPPED.Internal = status, InternalHigh = bytes);
2. set the request's event E, or, when it has none, signal the file object F (unless
   FILE_SKIP_SET_EVENT_ON_HANDLE) [W:nt/pipe.c:test_completion];
3. queue the completion routine as an APC to the *issuing* thread (A), or post a packet to the
   completion port the file is associated with *now* (P) [W:nt/file.c:test_file_io_completion].

Rules for P (§6.2): no packet when the OVERLAPPED has the ``hEvent | 1`` bit, when the port has
been closed, or for an *immediate* success on a file with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS.
Rules for A: never run here (only queued); dropped when the issuing thread has exited - its
request was cancelled and "the completion routine never runs" (§5, §8).

All of it happens under the dispatcher lock, so a thread woken by the event already sees the
IOSB, and the APC cannot run before both (spec #54). ``op.done`` makes delivery exactly-once.

:func:`deliver_batch` (and :func:`deliver` as the io_uring reaper calls it) have a C
accelerator (``_fastdone.c``), installed by ``_backends.uring.reaper``, which rebinds
``deliver_batch`` here; :data:`py_deliver_batch` stays the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK, wake_thread, wake_waiters
from ..codes import ntstatus_to_winerror
from ._interrupts import cut_at_entry, interrupt, release_again
from ._slot import DELIVERING, GEN_MASK, IDLE, REAPED, release_refs

if TYPE_CHECKING:
    from .._kernel._dispatcher import ThreadState
    from .._kernel._objects import Event
    from ._files import FileObject
    from ._ops import CompletionRoutine, Operation
    from ._overlapped import Overlapped
    from ._port import CompletionPort
    from ._slot import ReceiveSlot

__all__ = ["deliver", "deliver_batch", "deliver_slot_rest", "notify_locked", "notify_success"]


def deliver(op: Operation, status: int, information: int, immediate: bool = False) -> bool:
    """Deliver ``op``'s completion; returns False if it was already delivered.

    An interrupt (Ctrl-C) raised in a step goes on once every step is made (:func:`_rest`).

    Args:
        immediate: the request finished inside the call that issued it (the call returns TRUE).
    """
    file = op.file
    with LOCK:
        if op.done:
            return False
        op.done = True
        # notify_locked, inlined (once per request: the call with its nine arguments cost
        # about as much as the rest of this function).
        ov = op.overlapped
        ov.information = information
        ov.status = status
        event = op.event
        if event is not None:
            event._signaled = True
            if event._waiters:
                try:
                    wake_waiters(event)
                except BaseException as exc:
                    _rest(exc, _WAKE, file, ov, event, op, status, information, immediate, None)
                    raise
        elif not file.skip_set_event:
            file._signaled = True
            if file._waiters:
                try:
                    wake_waiters(file)
                except BaseException as exc:
                    _rest(exc, _WAKE, file, ov, event, op, status, information, immediate, None)
                    raise
        routine = op.routine
        if routine is not None:
            try:
                _queue_routine(op.issuer, routine, status, information, ov)
            except BaseException as exc:
                _rest(exc, _ROUTINE, file, ov, event, op, status, information, immediate, None)
                raise
        elif not op.skip_port:
            port = file.port
            if port is not None and not (immediate and status == 0 and file.skip_port_on_success):
                try:
                    port._post_locked(file.key, ov, status, information)
                except BaseException as exc:
                    _rest(exc, _POST, file, ov, event, op, status, information, immediate, None)
                    raise
        if op.registered:
            try:
                file._forget_locked(op)
            except BaseException as exc:
                _rest(exc, _FORGET, file, ov, event, op, status, information, immediate, None)
                raise
        sync_done = op.sync_done
        if sync_done is not None:
            sync_done._signaled = True
            if sync_done._waiters:
                try:
                    wake_waiters(sync_done)
                except BaseException as exc:
                    _rest(exc, _SYNC, file, ov, event, op, status, information, immediate, None)
                    raise
    return True


def deliver_batch(batch: list[tuple[Operation, int, int] | ReceiveSlot]) -> list[BaseException]:
    """Deliver completions a backend reaped together (none immediate), in order, with one hold
    of the lock: each one exactly as :func:`deliver` would. A port's waiters are released
    once the whole batch is queued, so a thread blocked in GetQueuedCompletionStatusEx takes
    all of it (up to its count) in one dequeue, as on Windows where the woken thread removes
    what the queue holds when it runs; LIFO release and the concurrency limit are the port's,
    unchanged (``_port``). Ops whose ``complete`` is overridden are the caller's to route.

    An item may be a REAPED receive slot (``_slot``, from the io_uring reaper): delivered by
    :func:`_deliver_slot_locked` with the same steps in the same order, minus the request.

    Returns the exceptions raised while delivering (a bug: the caller reports them); every
    other completion of the batch is delivered regardless. An interrupt (Ctrl-C) goes on once
    the request it cut is delivered whole (:func:`_rest`), as in C: the rest of the batch is
    the caller's (``ReaperCuts.deliver_rest``).
    """
    errors: list[BaseException] = []
    held: list[CompletionPort] = []
    drop: list[object] = []  # a slot's references, released once LOCK is
    kept: BaseException | None = None
    with LOCK:
        try:
            for item in batch:
                try:
                    if not isinstance(item, tuple):
                        request = _deliver_slot_locked(item, held, drop)
                        if request is None:
                            continue
                        item = request
                    op, status, information = item
                    if op.done:
                        continue
                    op.done = True
                    file = op.file
                    ov = op.overlapped
                    ov.information = information
                    ov.status = status
                    event = op.event
                    if event is not None:
                        event._signaled = True
                        if event._waiters:
                            try:
                                wake_waiters(event)
                            except BaseException as exc:
                                _rest(
                                    exc,
                                    _WAKE,
                                    file,
                                    ov,
                                    event,
                                    op,
                                    status,
                                    information,
                                    False,
                                    held,
                                )
                                raise
                    elif not file.skip_set_event:
                        file._signaled = True
                        if file._waiters:
                            try:
                                wake_waiters(file)
                            except BaseException as exc:
                                _rest(
                                    exc,
                                    _WAKE,
                                    file,
                                    ov,
                                    event,
                                    op,
                                    status,
                                    information,
                                    False,
                                    held,
                                )
                                raise
                    routine = op.routine
                    if routine is not None:
                        try:
                            _queue_routine(op.issuer, routine, status, information, ov)
                        except BaseException as exc:
                            _rest(
                                exc, _ROUTINE, file, ov, event, op, status, information, False, held
                            )
                            raise
                    elif not op.skip_port:
                        port = file.port
                        if port is not None:
                            try:
                                if not port.holding:
                                    port.holding = True
                                    held.append(port)
                                port._post_locked(file.key, ov, status, information)
                            except BaseException as exc:
                                _rest(
                                    exc,
                                    _POST,
                                    file,
                                    ov,
                                    event,
                                    op,
                                    status,
                                    information,
                                    False,
                                    held,
                                )
                                raise
                    if op.registered:
                        try:
                            file._forget_locked(op)
                        except BaseException as exc:
                            _rest(
                                exc, _FORGET, file, ov, event, op, status, information, False, held
                            )
                            raise
                    sync_done = op.sync_done
                    if sync_done is not None:
                        sync_done._signaled = True
                        if sync_done._waiters:
                            try:
                                wake_waiters(sync_done)
                            except BaseException as exc:
                                _rest(
                                    exc,
                                    _SYNC,
                                    file,
                                    ov,
                                    event,
                                    op,
                                    status,
                                    information,
                                    False,
                                    held,
                                )
                                raise
                except Exception as exc:  # a bug: the rest of the batch is still delivered
                    errors.append(exc)
        finally:
            for port in held:
                try:
                    port.release_held_locked()
                except BaseException as exc:
                    if not interrupt(exc):
                        raise
                    port.release_held_locked()  # (idempotent)
                    if kept is None:
                        kept = exc
    if kept is not None:
        raise kept
    return errors


def _deliver_slot_locked(
    slot: ReceiveSlot, held: list[CompletionPort], drop: list[object]
) -> tuple[Operation, int, int] | None:
    """:func:`deliver_batch`'s steps for a REAPED receive slot (caller holds LOCK): the IOSB
    (success, ``res`` bytes), F signaled (no event, by eligibility) unless
    FILE_SKIP_SET_EVENT_ON_HANDLE, the packet (port-bound by eligibility; never an immediate
    completion: FILE_SKIP_COMPLETION_PORT_ON_SUCCESS does not apply), then the bookkeeping
    (:func:`_slot_done_locked`). A slot demoted while REAPED has its request: returned, for
    the caller to deliver as any request (with the slot's result). None: nothing (more) to
    deliver here (a slot no longer REAPED was delivered already, ``ReaperCuts.deliver_rest``).
    The slot's references go to ``drop`` (released by the caller once LOCK is)."""
    if slot.state != REAPED:
        return None
    res = slot.res
    op = slot.op
    if op is not None:
        # Demoted while REAPED (``pending_ops()``, close...): its request is the completion.
        slot.state = IDLE
        slot.gen = (slot.gen + 1) & GEN_MASK
        drop += release_refs(slot)
        return op, 0, res
    slot.state = DELIVERING  # from here its notification steps are never made twice
    file: FileObject = slot.file  # type: ignore[assignment]
    ov: Overlapped = slot.overlapped  # type: ignore[assignment]
    ov.information = res
    ov.status = 0
    if not file.skip_set_event:
        file._signaled = True
        if file._waiters:
            try:
                wake_waiters(file)
            except BaseException as exc:
                _slot_rest(exc, _WAKE, slot, file, ov, res, held, drop)
                raise
    port = file.port
    if port is not None:
        try:
            if not port.holding:
                port.holding = True
                held.append(port)
            port._post_locked(file.key, ov, 0, res)
        except BaseException as exc:
            _slot_rest(exc, _POST, slot, file, ov, res, held, drop)
            raise
    _slot_done_locked(slot, drop)
    return None


def _slot_rest(
    exc: BaseException,
    step: int,
    slot: ReceiveSlot,
    file: FileObject,
    ov: Overlapped,
    res: int,
    held: list[CompletionPort],
    drop: list[object],
) -> None:
    """An interrupt ``exc`` cut ``step`` of a slot's delivery (LOCK held): its later steps
    are made (:func:`_rest`: the walk again, the packet unless ``_post_locked`` ran), then its
    bookkeeping (:func:`_slot_done_locked`), before it goes on; an Exception (a bug) leaves
    it DELIVERING (``ReaperCuts.deliver_rest`` makes the bookkeeping)."""
    if not interrupt(exc):
        return
    _rest(exc, step, file, ov, None, None, 0, res, False, held)
    try:
        if slot.state == DELIVERING:
            _slot_done_locked(slot, drop)
    except BaseException as again:
        if not interrupt(again):
            raise


def _slot_done_locked(slot: ReceiveSlot, drop: list[object]) -> None:
    """A slot's incarnation ends (DELIVERING -> IDLE, caller holds LOCK): the receive is no
    longer counted (``stream_in``), ``gen`` moves, the references go to ``drop``; then, as
    ``FileObject._forget_locked`` for a request, a closing file with nothing pending
    releases its descriptor (Python, last)."""
    file: FileObject = slot.file  # type: ignore[assignment]
    file.stream_in -= 1
    slot.state = IDLE
    slot.gen = (slot.gen + 1) & GEN_MASK
    # (``_slot.release_refs``, inline: the file, whose last reference may go with it, is
    # released by the caller once LOCK is; the others run no code when they go)
    slot.file = slot.overlapped = slot.issuer = slot.view = slot.ud = None
    slot.res = 0
    try:
        drop.append(file)
        slot.unpin()
    except BaseException as exc:  # (Ctrl-C: unpin again, idempotent; the release check)
        if interrupt(exc):
            slot.unpin()
            _release_closing(file)
        raise
    if file.closing and not file._pending:
        try:
            file._release_fd()
        except BaseException as exc:
            if interrupt(exc) and cut_at_entry(exc, type(file)._release_fd):
                file._release_fd()
            raise


def _release_closing(file: FileObject) -> None:
    """As ``FileObject._forget_locked``'s end: a closing file with nothing pending releases
    its descriptor (LOCK held); a cut at ``_release_fd``'s entry makes it again."""
    if file.closing and not file._pending:
        try:
            file._release_fd()
        except BaseException as exc:
            if interrupt(exc) and cut_at_entry(exc, type(file)._release_fd):
                file._release_fd()
            raise


def deliver_slot_rest(slot: ReceiveSlot) -> list[BaseException]:
    """``ReaperCuts.deliver_rest`` for a receive slot's item (an interrupt cut its batch): a
    slot still REAPED is delivered in full; one left DELIVERING gets its bookkeeping only
    (its notification steps are not made twice, the ``op.done`` rule); else nothing."""
    if slot.state == REAPED:
        return deliver_batch([slot])
    if slot.state == DELIVERING:
        drop: list[object] = []
        with LOCK:
            if slot.state == DELIVERING:
                _slot_done_locked(slot, drop)
    return []


#: The Python :func:`deliver_batch`, the reference and the fallback of its C accelerator
#: (``_fastdone.c``), which ``_backends.uring.reaper`` installs as ``deliver_batch`` here and
#: in itself (``_accel``).
py_deliver_batch = deliver_batch

# The steps of a delivery an interrupt can cut (:func:`_rest`).
_WAKE, _ROUTINE, _POST, _FORGET, _SYNC = range(5)


def _rest(
    exc: BaseException,
    step: int,
    file: FileObject,
    ov: Overlapped,
    event: Event | None,
    op: Operation | None,
    status: int,
    information: int,
    immediate: bool,
    held: list[CompletionPort] | None,
    routine: CompletionRoutine | None = None,
    issuer: ThreadState | None = None,
    skip_port: bool = False,
) -> None:
    """An interrupt ``exc`` (Ctrl-C) cut ``step`` of a delivery (LOCK held): finish the
    delivery before it goes on, as the C funnel does (``_fastio.h`` ``fio_again``). A walk
    is made again whatever the cut (idempotent); a call cut at its entry is made again, one
    that ran is not (``_interrupts.cut_at_entry``); the later steps are made. ``op``: the
    request (its routine, port rule, file registration, ``sync_done``), or None for the
    notifications of a request that never became one (``routine``/``issuer``/``skip_port``
    given). An Exception (a bug, a MemoryError) is not an interrupt: nothing is done, as
    before. A second interrupt meanwhile stops the rest (the first one goes on)."""
    if not interrupt(exc):
        return
    if op is not None:
        routine, issuer, skip_port = op.routine, op.issuer, op.skip_port
    try:
        if step == _WAKE:
            wake_waiters(event if event is not None else file)
        if routine is not None:
            if step < _ROUTINE or (step == _ROUTINE and cut_at_entry(exc, _queue_routine)):
                assert issuer is not None
                _queue_routine(issuer, routine, status, information, ov)
        elif not skip_port and step <= _POST:
            port = file.port
            if (
                port is not None
                and not (immediate and status == 0 and file.skip_port_on_success)
                and (step < _POST or cut_at_entry(exc, type(port)._post_locked))
            ):
                if held is not None and not port.holding:
                    port.holding = True
                    held.append(port)
                port._post_locked(file.key, ov, status, information)
        if op is None:
            return
        if op.registered and (
            step < _FORGET or (step == _FORGET and cut_at_entry(exc, type(file)._forget_locked))
        ):
            file._forget_locked(op)
        sync_done = op.sync_done
        if sync_done is not None and step <= _SYNC:
            sync_done._signaled = True
            wake_waiters(sync_done)
    except BaseException as again:
        if not interrupt(again):
            raise


def _queue_routine(
    issuer: ThreadState, routine: CompletionRoutine, status: int, information: int, ov: Overlapped
) -> None:
    """Step 3's APC: queued to the issuing thread, dropped when it has exited. Caller holds
    LOCK. Whole under an interrupt: queued once, the alertable issuer woken."""
    if issuer.alive and not issuer.terminating:
        try:
            entry = (routine, (ntstatus_to_winerror(status), information, ov))
            issuer.apcs.append(entry)
            wb = issuer.wait
            if wb is not None and wb.alertable:
                wake_thread(issuer)
        except BaseException as exc:
            if interrupt(exc):
                _routine_cut(exc, issuer, locals().get("entry"), routine, status, information, ov)
            raise


def _routine_cut(
    exc: BaseException,
    issuer: ThreadState,
    entry: Any,
    routine: CompletionRoutine,
    status: int,
    information: int,
    ov: Overlapped,
) -> None:
    """An interrupt cut :func:`_queue_routine`: the APC queued once (``entry``, if it was
    made: under LOCK nobody else queues or runs the issuer's APCs), the alertable issuer
    woken."""
    apcs = issuer.apcs
    if entry is None or not (apcs and apcs[-1] is entry):
        apcs.append((routine, (ntstatus_to_winerror(status), information, ov)))
    wb = issuer.wait
    if wb is not None and wb.alertable:
        release_again(exc, issuer)


def notify_locked(
    file: FileObject,
    ov: Overlapped,
    event: Event | None,
    skip_port: bool,
    routine: CompletionRoutine | None,
    issuer: ThreadState | None,
    status: int,
    information: int,
    immediate: bool,
) -> None:
    """Steps 1-3 of the module docstring for one request. Caller holds LOCK.

    Shared by :func:`deliver` and by requests that finish inside the issuing call without ever
    becoming an operation object (``DiskFile.read_now``).
    """
    ov.information = information
    ov.status = status
    step = _WAKE
    try:
        if event is not None:
            event._signaled = True
            if event._waiters:
                wake_waiters(event)
        elif not file.skip_set_event:
            file._signaled = True
            if file._waiters:
                wake_waiters(file)
        if routine is not None:
            assert issuer is not None
            step = _ROUTINE
            _queue_routine(issuer, routine, status, information, ov)
        elif not skip_port:
            port = file.port
            if port is not None and not (immediate and status == 0 and file.skip_port_on_success):
                step = _POST
                port._post_locked(file.key, ov, status, information)
    except BaseException as exc:
        _rest(exc, step, file, ov, event, None, status, information, immediate, None,
              routine, issuer, skip_port)  # fmt: skip
        raise


def notify_success(file: FileObject, ov: Overlapped, event: Event | None, information: int) -> None:
    """Steps 1-3 for a request that succeeded inside the call that issued it, without a
    completion routine and without ever becoming an operation object (the sockets' fast path,
    ``_sockets.Socket.start_read``/``start_write``): one LOCK round trip. The caller skips it (and
    writes the IOSB alone) when there is nothing to signal or post: no event,
    FILE_SKIP_SET_EVENT_ON_HANDLE, and no packet (``hEvent|1``, no port, or
    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS).
    """
    with LOCK:
        ov.information = information
        ov.status = 0
        if event is not None:
            event._signaled = True
            if event._waiters:
                try:
                    wake_waiters(event)
                except BaseException as exc:
                    _rest(exc, _WAKE, file, ov, event, None, 0, information, True, None,
                          None, None, ov.skip_port)  # fmt: skip
                    raise
        elif not file.skip_set_event:
            file._signaled = True
            if file._waiters:
                try:
                    wake_waiters(file)
                except BaseException as exc:
                    _rest(exc, _WAKE, file, ov, event, None, 0, information, True, None,
                          None, None, ov.skip_port)  # fmt: skip
                    raise
        if not ov.skip_port:
            port = file.port
            if port is not None and not file.skip_port_on_success:
                try:
                    port._post_locked(file.key, ov, 0, information)
                except BaseException as exc:
                    _rest(exc, _POST, file, ov, event, None, 0, information, True, None)
                    raise
