"""Issuing a request on a file object: the overlapped issue protocol and synchronous I/O.

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
when their callers already made the first steps. :func:`run_sync` is the synchronous handle's
request (spec §4.1), which CancelSynchronousIo can end (``_cancel``).

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

from .._kernel._dispatcher import LOCK, wake_waiters
from .._kernel._objects import Event
from .._kernel._threads import current_thread_state
from .._kernel._wait import wait_for_one
from ..codes import NtStatus, WaitCode, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._backend import OpKind
from ._cancel import _SYNC_KEY
from ._dispatch import deliver
from ._files import _IO_KEY, FileObject
from ._overlapped import STATUS_PENDING, Overlapped, is_error
from ._slot import demote_locked
from ._stream_ops import StreamReadOp

if TYPE_CHECKING:
    from ._ops import Operation

__all__ = [
    "register_receive",
    "run_sync",
    "start",
    "submit",
    "submit_pending_file",
    "submit_receive",
    "submit_tried",
]

_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
_CLOSED_STATUS = int(NtStatus.STATUS_INVALID_HANDLE)
_FILE = OpKind.FILE
_STREAM = OpKind.STREAM
_POLLIN = select.POLLIN
_new_object = object.__new__  # a request built slot by slot (``register_receive``)


def _register_locked(op: Operation) -> None:
    file = op.file
    if file.closing:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
    op.registered = True
    file._pending[op] = None
    if op.kind is _STREAM:
        if op.poll_events & _POLLIN:
            file.stream_in += 1
            if file._rslot is not None:
                demote_locked(file._rslot)  # it queues behind the slot's incarnation (#66)
        else:
            file.stream_out += 1
    ops = op.issuer.extensions.get(_IO_KEY)
    if ops is None:
        ops = op.issuer.extensions[_IO_KEY] = {}
    ops[op] = None


def start(op: Operation) -> int:
    """Issue an overlapped request (module docstring). Returns its status at return time:
    STATUS_PENDING, 0 (finished, TRUE) or a warning status (finished with data, FALSE).

    Raises:
        IoError: the request failed at once (no notification; Internal stays STATUS_PENDING).
        Win32Error: ERROR_INVALID_PARAMETER for an APC request on a port-associated file.
    """
    file = op.file
    ov = op.overlapped
    # Sends on a socket are issued under its send claim: the sockets' fast path (``_streams``)
    # registers a partial send's remainder before it lets go, so no other send can slip its
    # bytes between the two parts (a request never overtakes an earlier one, #66).
    claim = _send_claim_of(op)
    if claim is not None:
        claim.acquire()
    try:
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
            with LOCK:
                _register_locked(op)
                # A request may not overtake earlier pending ones in the same direction (two
                # pending reads complete in issue order, #66; message writes never interleave):
                # if any is queued, this one waits its turn in the backend instead of trying now.
                queued = _queued_behind_locked(op)
        try:
            result = None if queued else op.try_now()
        except BaseException:
            with LOCK:
                op.done = True
                file._forget_locked(op)
            raise
        if result is None:
            if register_first:
                submit(op)
            else:
                # Registered and marked submitted in one go: nobody could see it before, so no
                # cancel can be waiting for it.
                try:
                    with LOCK:
                        _register_locked(op)
                        op.submitted = True
                except BaseException:
                    if op.registered:  # (a Ctrl-C once registered: it still goes on)
                        op.submitted = True
                        _hand_to_backend(op)
                    raise
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
    finally:
        if claim is not None:
            claim.release()


def _send_claim_of(op: Operation) -> threading.Lock | None:
    """The send claim ``op`` must hold while it is issued: its socket's, if it is a send."""
    claim = op.file.send_claim
    if claim is None or op.kind is not _STREAM or op.poll_events & _POLLIN:
        return None
    return claim


def _queued_behind_locked(op: Operation) -> bool:
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
                ops = op.issuer.extensions.get(_IO_KEY)
                if ops is None:
                    ops = op.issuer.extensions[_IO_KEY] = {}
                ops[op] = None
    except BaseException:
        if op.registered:  # (a Ctrl-C once registered: it still goes to the backend)
            _hand_to_backend(op)
        raise
    try:
        file.backend.submit(op)
    except RuntimeError:
        op.complete(_CLOSED_STATUS, 0)  # the backend is closed: as ``_hand_to_backend``


def submit_tried(op: Operation) -> None:
    """Issue a STREAM request whose caller already did the first steps of :func:`start` (E
    reset, F cleared, Internal = STATUS_PENDING) and the non-blocking attempt, which would
    block: register it and hand it to its backend (the sockets' fast path, ``_streams``),
    in one LOCK round trip.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if the file is being closed.
    """
    file = op.file
    with LOCK:
        if file.closing:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
        # Registered and marked submitted in one go: nobody could see it before, so no cancel
        # can be waiting for it (one that comes between here and the backend is the
        # backend's to see: ``cancel_requested`` when the request arrives). As in
        # ``submit_pending_file``, a request that will outlive
        # its issuer (port-bound, no event, no routine: spec §8) stays out of the issuer's
        # list, which only the thread-exit hook reads.
        op.registered = op.submitted = True
        file._pending[op] = None
        if op.poll_events & _POLLIN:
            file.stream_in += 1
            if file._rslot is not None:
                demote_locked(file._rslot)  # it queues behind the slot's incarnation (#66)
        else:
            file.stream_out += 1
        if op.event is not None or op.skip_port or file.port is None or op.routine is not None:
            ops = op.issuer.extensions.get(_IO_KEY)
            if ops is None:
                ops = op.issuer.extensions[_IO_KEY] = {}
            ops[op] = None
    try:
        file.backend.submit(op)
    except RuntimeError:
        op.complete(_CLOSED_STATUS, 0)  # the backend is closed: as ``_hand_to_backend``


def register_receive(file: FileObject, overlapped: Overlapped, view: memoryview) -> StreamReadOp:
    """The sockets' pended receive (``Socket.start_read``: one whole, non-empty writable
    buffer, no flags, no completion routine, E reset, F cleared, Internal STATUS_PENDING, the
    non-blocking attempt made or known to fail), built and registered in one hold of LOCK:
    CancelIoEx, closesocket and thread exit see it from then on. Built slot by slot, without
    the two ``__init__`` levels (as ``_ops.pinned_read`` and ``_ops.new_stream_read``, a
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
        op.registered = op.submitted = True
        file._pending[op] = None
        file.stream_in += 1
        if file._rslot is not None:
            demote_locked(file._rslot)  # it queues behind the slot's incarnation (#66)
        if event is not None or skip_port or file.port is None:
            ops = issuer.extensions.get(_IO_KEY)
            if ops is None:
                ops = issuer.extensions[_IO_KEY] = {}
            ops[op] = None
    return op


def submit_receive(file: FileObject, overlapped: Overlapped, view: memoryview) -> None:
    """:func:`submit_tried` for the sockets' pended receive: :func:`register_receive`, then
    the backend.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if the file is being closed.
    """
    op = register_receive(file, overlapped, view)
    try:
        file.backend.submit(op)
    except RuntimeError:
        op.complete(_CLOSED_STATUS, 0)  # the backend is closed: as ``_hand_to_backend``


def submit(op: Operation) -> None:
    """Give a request that would block to its backend (unless a cancel already arrived)."""
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


def _hand_to_backend(op: Operation) -> None:
    try:
        op.file.backend.submit(op)
    except RuntimeError:
        # The backend is closed (process shutdown): the request still completes, once.
        op.complete(_CLOSED_STATUS, 0)


def run_sync(op: Operation, alertable: bool = False) -> tuple[int, int]:
    """A request on a synchronous handle: block (non-alertably) until it is done (spec §4.1).
    ``alertable``: APCs queued to the caller run while it waits, which then goes on (Winsock's
    blocking calls [W:ws2_32/sock.c:test_accept, test_select]).

    Returns (status, information); ``op.overlapped`` (private to the call, the caller copies it
    to the user's OVERLAPPED) holds the same. CancelSynchronousIo can end the wait of a request
    that pends (ERROR_OPERATION_ABORTED).
    """
    file = op.file
    ov = op.overlapped
    if op.kind is OpKind.FILE:
        # Disk reads/writes are not interruptible anyway: do them right here. Not registered:
        # counted among the descriptor's users (``_fd_users``, a DiskFile's) before ``closing``
        # is read, so a close from another thread meanwhile defers its release to us.
        users = getattr(file, "fd_users", None)
        if users is not None:
            users.append(None)
        try:
            if file.closing:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
            status, information = op.run_blocking()
        finally:
            if users is not None:
                users.pop()
                if file.closing:
                    users.left()
        ov.status, ov.information = status, information
        op.done = True
        return status, information
    ts = current_thread_state()
    # A synchronous call passes no ApcContext: it never posts to the handle's completion port
    # (connect/send/recv on a port-bound socket [W:ws2_32/sock.c:test_connect_completion_port]).
    op.skip_port = True
    op.sync_done = Event(manual_reset=True)
    ts.extensions[_SYNC_KEY] = op
    # A send is issued under its socket's send claim, as in ``start``: no send from another
    # thread can slip its bytes between a fast-path send's parts.
    claim = _send_claim_of(op)
    try:
        if claim is not None:
            claim.acquire()
        try:
            with LOCK:
                ov.status = STATUS_PENDING
                # Every request clears the file object first; a request that then fails at
                # once leaves it nonsignaled [W:k32/pipe.c:test_DisconnectNamedPipe]
                # [W:nt/pipe.c:test_cancelsynchronousio]. Completion (``deliver``) signals it.
                file._signaled = False
                _register_locked(op)
                # Nor may it overtake an earlier pending request in its direction (#66).
                queued = _queued_behind_locked(op)
            result = None if queued else op.try_now()
            if result is None:
                submit(op)
        finally:
            if claim is not None:
                claim.release()
        if result is None:
            while wait_for_one(op.sync_done, None, alertable) == _WAIT_IO_COMPLETION:
                pass
            return ov.status, ov.information
        with LOCK:
            op.done = True
            file._forget_locked(op)
            if not is_error(result[0]) and not file.skip_set_event:
                file._signaled = True
                if file._waiters:
                    wake_waiters(file)
        ov.status, ov.information = result
        return result
    finally:
        ts.extensions.pop(_SYNC_KEY, None)
