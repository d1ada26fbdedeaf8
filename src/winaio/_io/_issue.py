"""Issuing a request on a file object: the overlapped issue protocol.

Issue protocol (spec §4.2), :func:`start`:
1. (the alias layer validated the handle: an invalid one leaves the event untouched, #52);
2. reset the request's event E and clear the file object F - before anything else, so that a
   request that then fails still leaves E reset (#50, #51, #53);
3. OVERLAPPED.Internal = STATUS_PENDING;
4. try the request without blocking (``op.try_now``):
   a. finished -> deliver at once (TRUE; a packet is still queued unless
      FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, a completion routine is still only queued);
   b. would block -> hand it to the file's backend (FALSE + ERROR_IO_PENDING);
   c. failed -> raise, with no notification at all and Internal left STATUS_PENDING.

The fast paths' one-step variants (:func:`submit_pending_file`, :func:`submit_tried`,
:func:`register_receive` / :func:`submit_receive`) make the same effects with one LOCK round trip
when their callers already made the first steps. A synchronous handle's request (spec §4.1) is
``_sync.run_sync``'s, made of this module's steps (:func:`register_locked`,
:func:`queued_behind_locked`, :func:`send_claim_of`, :func:`submit`).

Invariants: a request is registered on its file object (``FileObject._pending``, the STREAM
direction counters of #66, the issuer's list unless it survives its issuer: spec §8) under LOCK
before any other thread can see it; a request registered and marked submitted in the same hold
cannot have a cancel waiting for it; a request that failed at once is forgotten again with no
notification; a request handed to a closed backend still completes, once (STATUS_INVALID_HANDLE).
"""

from __future__ import annotations

import select
import threading
from typing import TYPE_CHECKING

from .._kernel._dispatcher import LOCK
from .._kernel._threads import current_thread_state
from ..codes import NtStatus, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._backend import OpKind
from ._dispatch import deliver
from ._files import _IO_KEY, FileObject
from ._interrupts import carried, carry, cut_at_entry, interrupt
from ._overlapped import STATUS_PENDING, Overlapped, is_error
from ._slot import demote_locked
from ._stream_ops import StreamReadOp

if TYPE_CHECKING:
    from ._ops import Operation

__all__ = [
    "queued_behind_locked",
    "register_locked",
    "register_receive",
    "send_claim_of",
    "start",
    "submit",
    "submit_pending_file",
    "submit_receive",
    "submit_tried",
]

_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_CLOSED_STATUS = int(NtStatus.STATUS_INVALID_HANDLE)
_NO_RESOURCES = int(NtStatus.STATUS_INSUFFICIENT_RESOURCES)
_FILE = OpKind.FILE
_STREAM = OpKind.STREAM
_POLLIN = select.POLLIN
_new_object = object.__new__  # a request built slot by slot (``register_receive``)


def register_locked(op: Operation) -> None:
    file = op.file
    if file.closing:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
    # No call once registered but the demotion, last (a Ctrl-C cannot cut it half done:
    # ``_handed_again`` demotes again and hands the request over).
    op.registered = True
    file._pending[op] = None
    try:
        ops = op.issuer.extensions[_IO_KEY]
    except KeyError:
        ops = op.issuer.extensions[_IO_KEY] = {}
    ops[op] = None
    if op.kind is _STREAM:
        if op.poll_events & _POLLIN:
            file.stream_in += 1
            if file._rslot is not None:
                demote_locked(file._rslot)  # it queues behind the slot's incarnation (#66)
        else:
            file.stream_out += 1


def start(op: Operation) -> int:
    """Issue an overlapped request (module docstring). Returns its status at return time:
    STATUS_PENDING, 0 (finished, TRUE) or a warning status (finished with data, FALSE).

    Raises:
        IoError: the request failed at once (no notification; Internal stays STATUS_PENDING).
        Win32Error: ERROR_INVALID_PARAMETER for an APC request on a port-associated file.
    """
    # Sends on a socket are issued under its send claim: the sockets' fast path (``_streams``)
    # registers a partial send's remainder before it lets go, so no other send can slip its
    # bytes between the two parts (a request never overtakes an earlier one, #66). Held by a
    # ``with``: after ``claim.acquire(); try:`` a Ctrl-C at the acquire's return (the check
    # after a C call) left it taken, every later send of the socket waiting for it for ever.
    claim = send_claim_of(op)
    if claim is None:
        return _start(op)
    with claim:
        return _start(op)


def _start(op: Operation) -> int:
    """:func:`start` once the send claim (if any) is held."""
    file = op.file
    ov = op.overlapped
    # FILE requests can be overtaken by nothing and finish inside this call when they can, so
    # they only become visible (to CancelIo & co.) if they pend. STREAM and LOCAL requests are
    # registered first: ordering checks and in-process completion need to see them at once.
    register_first = op.kind is not _FILE
    if op.routine is not None and file.port is not None:
        # APC and port notification are exclusive (spec §1.5, #71).
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "APC I/O on a port-bound handle")
    if file.closing:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
    # Plain stores, no lock needed: resetting a signal wakes nobody, and a completion racing
    # with this reset is a race on Windows too.
    event = op.event
    if event is not None:
        event._signaled = False
    file._signaled = False
    ov.status = STATUS_PENDING
    queued = False
    if register_first:
        try:
            with LOCK:
                register_locked(op)
                # A request may not overtake earlier pending ones in the same direction (two
                # pending reads complete in issue order, #66; message writes never interleave):
                # if any is queued, this one waits its turn in the backend instead of trying now.
                queued = queued_behind_locked(op)
        except BaseException as exc:
            # (a Ctrl-C once registered - at ``queued_behind_locked``'s entry, at the ``with``'s
            # exit: it pends, the backend tries it; registered and left, it pended for ever and
            # queued every later request of its direction behind it, #66)
            if op.registered:
                if op.kind is OpKind.LOCAL:  # (never tried: in no queue, forgotten)
                    _forgotten_again(op, exc)
                else:
                    _tried_again(op, None, True, exc)
            raise
    try:
        result = None if queued else op.try_now()
    except BaseException as exc:
        # A Ctrl-C once the attempt moved data carries its result (``try_now``): the request
        # goes on with it - delivered with its bytes, or pending with the rest - before the
        # interrupt does. Else it never happened.
        tried = carried(exc)
        if tried is None:
            with LOCK:
                op.done = True
                file._forget_locked(op)
        else:
            _tried_again(op, tried[0], register_first, exc)
        raise
    try:
        if result is None:
            if register_first:
                submit(op)
            else:
                # Registered and marked submitted in one go: nobody could see it before, so no
                # cancel can be waiting for it.
                with LOCK:
                    register_locked(op)
                    op.submitted = True
                _hand_to_backend(op)
            return STATUS_PENDING
        status, information = result
        if is_error(status):
            with LOCK:
                op.done = True
                file._forget_locked(op)
            raise IoError(ntstatus_to_winerror(status), information)
        deliver(op, status, information, immediate=True)
        return status
    except BaseException as exc:
        _tried_again(op, result, register_first, exc)
        raise


def _tried_again(
    op: Operation, result: tuple[int, int] | None, register_first: bool, exc: BaseException
) -> None:
    """An interrupt ``exc`` (Ctrl-C) cut :func:`start` once ``op``'s attempt returned
    ``result`` (or carried it out, data moved): the rest of the issue is made before it goes
    on. A result: delivered (``deliver`` is exactly-once) or, a failure, forgotten. None:
    pending - submitted unless :func:`submit` was reached (it finishes itself), or, a FILE
    request not registered yet, dropped (nothing moved); registered, :func:`_handed_again`.
    An Exception (a bug, a closed file's Win32Error) is not an interrupt: nothing is done."""
    if not interrupt(exc):
        return
    try:
        if result is None:
            if register_first:
                if not op.submitted:
                    submit(op)
            elif op.registered:
                op.submitted = True
                _handed_again(op, exc)
            return
        status, information = result
        if is_error(status):
            if op.registered or not op.done:
                with LOCK:
                    op.done = True
                    file = op.file
                    file._forget_locked(op)
        elif not op.done:
            deliver(op, status, information, immediate=True)
    except BaseException as again:  # (a second interrupt: the first one goes on)
        if not interrupt(again):
            raise


def _forgotten_again(op: Operation, exc: BaseException) -> None:
    """An interrupt ``exc`` cut :func:`start` once ``op`` (LOCAL: completed in-process, e.g. a
    pipe's read) was registered and before its attempt: it is in no queue yet, nothing moved -
    forgotten, as if never issued (registered, it pended for ever and queued every later
    request of its direction behind it, #66)."""
    if not interrupt(exc):
        return
    try:
        with LOCK:
            op.done = True
            op.file._forget_locked(op)
    except BaseException as again:  # (a second interrupt: the first one goes on)
        if not interrupt(again):
            raise


def send_claim_of(op: Operation) -> threading.Lock | None:
    """The send claim ``op`` must hold while it is issued: its socket's, if it is a send."""
    claim = op.file.send_claim
    if claim is None or op.kind is not _STREAM or op.poll_events & _POLLIN:
        return None
    return claim


def queued_behind_locked(op: Operation) -> bool:
    """Another STREAM request in ``op``'s direction is pending (caller holds LOCK and has
    registered ``op``: the ones registered before it are the earlier ones)."""
    if op.kind is not _STREAM or op.may_overtake():
        return False
    file = op.file
    return (file.stream_in if op.poll_events & _POLLIN else file.stream_out) > 1


def submit_pending_file(op: Operation) -> None:
    """Issue a FILE request that can only pend (O_DIRECT: there is no non-blocking attempt),
    in one step: :func:`start`'s steps 2, 3 and 4b with one LOCK round trip (``DiskFile``'s
    O_DIRECT hot path, which issues no completion routine).

    A request that will outlive its issuer (port-bound, no event: spec §8) is not put in the
    issuer's list, which only the thread-exit hook reads to cancel the others.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if the file is being closed.
    """
    file = op.file
    if file.closing:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
    event = op.event
    if event is not None:
        event._signaled = False
    file._signaled = False
    op.overlapped.status = STATUS_PENDING
    try:
        with LOCK:
            if file.closing:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
            # Registered and marked submitted in one go: nobody could see it before, so no
            # cancel can be waiting for it.
            op.registered = op.submitted = True
            file._pending[op] = None
            if event is not None or op.skip_port or file.port is None or op.routine is not None:
                try:  # (no call once registered: a Ctrl-C cannot cut it, ``_handed_again``)
                    ops = op.issuer.extensions[_IO_KEY]
                except KeyError:
                    ops = op.issuer.extensions[_IO_KEY] = {}
                ops[op] = None
        _hand_to_backend(op)
    except BaseException as exc:  # (a Ctrl-C once registered: it still goes to the backend)
        _handed_again(op, exc)
        raise


def submit_tried(op: Operation) -> None:
    """Issue a STREAM request whose caller already did the first steps of :func:`start` (E
    reset, F cleared, Internal = STATUS_PENDING) and the non-blocking attempt, which would
    block: register it and hand it to its backend (the sockets' fast path, ``_streams``),
    in one LOCK round trip. A Ctrl-C once it is registered: it still goes to the backend.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if the file is being closed.
    """
    file = op.file
    try:
        with LOCK:
            if file.closing:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
            # Registered and marked submitted in one go: nobody could see it before, so no
            # cancel can be waiting for it (one that comes between here and the backend is the
            # backend's to see: ``cancel_requested`` when the request arrives). As in
            # ``submit_pending_file``, a request that will outlive its issuer (port-bound, no
            # event, no routine: spec §8) stays out of the issuer's list, which only the
            # thread-exit hook reads.
            # (no call once registered but the demotion, last: ``_handed_again``)
            op.registered = op.submitted = True
            file._pending[op] = None
            if op.event is not None or op.skip_port or file.port is None or op.routine is not None:
                try:
                    ops = op.issuer.extensions[_IO_KEY]
                except KeyError:
                    ops = op.issuer.extensions[_IO_KEY] = {}
                ops[op] = None
            if op.poll_events & _POLLIN:
                file.stream_in += 1
                if file._rslot is not None:
                    demote_locked(file._rslot)  # it queues behind the slot's incarnation (#66)
            else:
                file.stream_out += 1
        _hand_to_backend(op)
    except BaseException as exc:  # (a Ctrl-C once registered: it still goes to the backend)
        _handed_again(op, exc)
        raise


def register_receive(file: FileObject, overlapped: Overlapped, view: memoryview) -> StreamReadOp:
    """The sockets' pended receive (``Socket.start_read``: one whole, non-empty writable
    buffer, no flags, no completion routine, E reset, F cleared, Internal STATUS_PENDING, the
    non-blocking attempt made or known to fail), built and registered in one hold of LOCK:
    CancelIoEx, closesocket and thread exit see it from then on. Built slot by slot, without
    the two ``__init__`` levels (as ``_ops.pinned_read`` and ``_stream_ops.new_stream_read``, a
    demoted receive slot's): every slot of the class is set (``test_socket_pending``). A
    receive slot of the socket with an incarnation out is demoted (step 1 here, step 2 by the
    backend before the request looks at its line): the request queues behind it (#66). The
    one place of these rules for both ways to the backend: :func:`submit_receive` and the
    io_uring backend's ``pend_receive`` (whose C accelerator, ``_fastpend.c``, builds the
    same request: ``test_fastpend`` compares them).

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if the file is being closed.
    """
    op: StreamReadOp = _new_object(StreamReadOp)
    op.file = file
    op.overlapped = overlapped
    event = op.event = overlapped.event  # (read before the thread's adoption may run code)
    skip_port = op.skip_port = overlapped.skip_port
    op.routine = None
    issuer = op.issuer = current_thread_state()
    op.done = op.cancel_requested = False
    op.token = op.sync_done = None
    op.buffers = [view]
    op.nbytes = len(view)
    op.flags = 0
    with LOCK:  # (``with``: a Ctrl-C cannot leave it held)
        if file.closing:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
        # Registered and marked submitted in one go (as in submit_tried): a request that
        # outlives its issuer (port-bound, no event, no routine: spec §8) stays out of the
        # issuer's list, which only the thread-exit hook reads.
        # (no call once registered but the demotion, last: an interrupt there goes on with
        # the request, ``carry``, for the caller to hand over: ``_handed_again``)
        op.registered = op.submitted = True
        file._pending[op] = None
        file.stream_in += 1
        if event is not None or skip_port or file.port is None:
            try:
                ops = issuer.extensions[_IO_KEY]
            except KeyError:
                ops = issuer.extensions[_IO_KEY] = {}
            ops[op] = None
        if file._rslot is not None:
            try:
                demote_locked(file._rslot)  # it queues behind the slot's incarnation (#66)
            except BaseException as exc:
                carry(exc, op)
                raise
    return op


def submit_receive(file: FileObject, overlapped: Overlapped, view: memoryview) -> None:
    """:func:`submit_tried` for the sockets' pended receive: :func:`register_receive`, then
    the backend.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if the file is being closed.
    """
    try:
        op = register_receive(file, overlapped, view)
    except BaseException as exc:  # (a Ctrl-C once it was registered: it still goes on)
        registered = carried(exc)
        if registered is not None:
            _handed_again(registered, exc)
        raise
    try:
        _hand_to_backend(op)
    except BaseException as exc:
        _handed_again(op, exc)
        raise


def submit(op: Operation) -> None:
    """Give a request that would block to its backend (unless a cancel already arrived)."""
    try:
        with LOCK:
            op.submitted = True
            cancelled = op.cancel_requested
        if cancelled:
            if op.kind is OpKind.LOCAL:
                op.cancel_local()
            else:
                op.complete(_CANCELLED, 0)
        elif op.kind is not OpKind.LOCAL:
            _hand_to_backend(op)
    except BaseException as exc:
        if not op.cancel_requested:  # (a cancelled one: its completion's own business)
            _handed_again(op, exc)
        raise


def _hand_to_backend(op: Operation) -> None:
    """``op`` (registered, submitted) goes to its file's backend; a closed backend completes
    it (STATUS_INVALID_HANDLE), and so does one without the memory to take it
    (STATUS_INSUFFICIENT_RESOURCES: a backend's ``submit`` takes a request in full or raises
    MemoryError having taken nothing). Its callers finish it under an interrupt
    (:func:`_handed_again`): no check point here but ``submit``'s entry."""
    try:
        op.file.backend.submit(op)
    except RuntimeError:
        # The backend is closed (process shutdown): the request still completes, once.
        op.complete(_CLOSED_STATUS, 0)
    except MemoryError:
        # Registered and never taken, it would pend for ever (its file's close waiting for
        # it): it fails as a request whose IRP the I/O manager could not allocate
        # (ERROR_NO_SYSTEM_RESOURCES: ReactOS ntoskrnl/io/iomgr/iofunc.c, IoAllocateIrp
        # failing -> IopCleanupFailedIrp -> STATUS_INSUFFICIENT_RESOURCES).
        op.complete(_NO_RESOURCES, 0)


def _handed_again(op: Operation, exc: BaseException) -> None:
    """An interrupt ``exc`` (Ctrl-C) cut the issue of ``op`` between its registration and its
    backend's ``submit`` (included): registered and never handed over, the request would pend
    for ever (and queue every later one in its direction behind it, #66). It is handed over
    now if it is registered, not done, and ``submit`` did not run - its frame not in the
    traceback (the cut came before the call) or at its first line (``cut_at_entry``). A
    ``submit`` that ran is the backend's, which takes a request in full or not at all. Each
    caller's ``try`` spans its registration to ``submit``'s return, nothing after it. A C
    ``submit`` (no frame) did not run if the cut came at or before ``_hand_to_backend``'s entry."""
    if not interrupt(exc) or not op.registered or op.done or op.kind is OpKind.LOCAL:
        return
    file = op.file
    if op.kind is _STREAM and op.poll_events & _POLLIN and file._rslot is not None:
        with LOCK:  # (the registration's last step, idempotent: ``_slot.demote_locked``)
            demote_locked(file._rslot)
    backend = file.backend
    submit = type(backend).submit
    if cut_at_entry(exc, submit if hasattr(submit, "__code__") else _hand_to_backend):
        op.submitted = True
        try:
            backend.submit(op)
        except RuntimeError:
            op.complete(_CLOSED_STATUS, 0)
