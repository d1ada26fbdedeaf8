"""File objects and the life of a request: issue, cancel, thread exit, close.

A :class:`FileObject` is the kernel object behind a file, socket or pipe handle; duplicated handles
share it, with its port association, completion modes and pending requests (spec §0).

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

Cancellation (spec §7) only *marks* a request and asks the backend; the request then completes
through all its channels with STATUS_CANCELLED (or with its real result if it won the race).
CancelIo targets the caller's requests on the file object, CancelIoEx any thread's (matching one
OVERLAPPED or all; nothing matched -> ERROR_NOT_FOUND, and a request already being cancelled
does not match again, #98).

Ordering (spec #66): a STREAM request may not overtake earlier pending ones in its direction.
Each file object counts its pending STREAM requests per direction (``stream_in``/``stream_out``,
kept under LOCK by registration and delivery), so that the check is one integer test: the
sockets' immediate fast path (``_sockets.Socket.start_read``/``start_write``) reads it without the
lock (a request registered before that read is seen; one issued concurrently from another
thread has no order with it, on Windows either).

Thread exit (spec §8, [W:ws/afd.c:test_async_thread_termination]): a request issued by the
exiting thread survives iff its file is associated with a port AND it has a completion value
(no ``hEvent|1``) AND it has no event AND it is not an APC request; every other one is cancelled.
Then the exit waits until each of those has completed (the **rundown**, as IoCancelThreadIo
waits for the thread's IRPs before the thread object is signaled [MS:Canceling IRPs]): a
cancel only asks the backend (io_uring may answer -EALREADY while the read runs), and a request
still pending after its thread was seen to end could take data written after that. Invariant:
once a thread object is signaled, none of its non-port requests is pending; one that had
already finished completes with its real result, as on Windows. Bounded by
:data:`RUNDOWN_TIMEOUT`; skipped at interpreter shutdown (no reaper runs then).

Close: when the last handle goes, pending requests are cancelled (sockets: "closesocket cancels
pending overlapped ops of all threads"), and the descriptor is closed only after every request
has been delivered, because the backend may still be using it (backend invariant 2).
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK, DispatcherObject, ThreadState, wake_waiters
from .._kernel._objects import Event
from .._kernel._threads import EXIT_CANCEL_IO, add_thread_exit_hook, current_thread_state
from .._kernel._wait import wait_for_one
from ..codes import NtStatus, WaitCode, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._backend import Backend, OpKind, get_backend
from ._dispatch import deliver
from ._ops import StreamReadOp
from ._overlapped import STATUS_PENDING, Overlapped, is_error
from ._port import CompletionPort

if TYPE_CHECKING:
    from ._ops import Operation

__all__ = [
    "RUNDOWN_TIMEOUT",
    "FileObject",
    "cancel_io",
    "cancel_io_ex",
    "cancel_synchronous_io",
    "request_cancel",
    "run_sync",
    "start",
    "submit_pending_file",
    "register_receive",
    "submit_receive",
    "submit_tried",
    "wait_for_rundown",
]

_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
_CLOSED_STATUS = int(NtStatus.STATUS_INVALID_HANDLE)
_FILE = OpKind.FILE
_STREAM = OpKind.STREAM
_POLLIN = select.POLLIN
_IO_KEY = "io"
_new_object = object.__new__  # a request built slot by slot (``submit_receive``)
_SYNC_KEY = "sync_op"
#: Thread exit waits this long (seconds) for its cancelled requests to complete before the
#: thread object is signaled anyway (module docstring). Windows waits 5 minutes, then
#: disassociates the IRP from the thread [MS:Canceling IRPs]; a cancel here takes effect in
#: microseconds unless a backend is stuck, and a thread that never ends is worse than that.
RUNDOWN_TIMEOUT = 10.0
_RUNDOWN_FIRST_POLL = 0.00005
_RUNDOWN_LAST_POLL = 0.005
_monotonic = time.monotonic
_sleep = time.sleep


class FileObject(DispatcherObject):
    """The kernel object behind a file, socket or pipe handle.

    Args:
        fd: the descriptor, owned by this object from now on.
        overlapped: opened for overlapped I/O (FILE_FLAG_OVERLAPPED / WSA_FLAG_OVERLAPPED).
        sock: the Python socket owning ``fd``, for sockets.
        direct: opened with FILE_FLAG_NO_BUFFERING (O_DIRECT).
        seekable: a regular file (positioned I/O) rather than a stream.
        backend: the I/O engine finishing this object's requests (default: the process one).
    """

    __slots__ = (
        "_pending",
        "_signaled",
        "backend",
        "close_hooks",
        "closing",
        "direct",
        "fd",
        "key",
        "overlapped",
        "path",
        "port",
        "position",
        "readable",
        "seekable",
        "send_claim",
        "skip_port_on_success",
        "skip_set_event",
        "sock",
        "stream_in",
        "stream_out",
        "winsock",
        "writable",
    )
    type_name = "File"
    #: ``DiskFile`` overrides it per instance: its page-cache fast path applies.
    cached_reads = False
    #: ReadFile/WriteFile with a NULL OVERLAPPED on an overlapped handle: files and sockets need
    #: the offset (ERROR_INVALID_PARAMETER); named pipes override it and wait.
    waits_without_overlapped = False

    def __init__(
        self,
        fd: int,
        *,
        overlapped: bool,
        sock: socket.socket | None = None,
        direct: bool = False,
        seekable: bool = False,
        backend: Backend | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__()
        self.fd = fd
        self.sock = sock
        #: Sockets: held while a send is issued (checked, tried, registered), so that a partial
        #: send's remainder is registered before any other send can go (module docstring).
        self.send_claim: threading.Lock | None = None
        self.overlapped = overlapped
        self.direct = direct
        self.seekable = seekable
        self.path = path
        self.backend: Backend = backend if backend is not None else get_backend()
        self.port: CompletionPort | None = None
        self.key: Any = 0
        self.skip_port_on_success = False
        self.skip_set_event = False
        #: The file pointer of synchronous handles (overlapped I/O never uses it, spec §4.1).
        self.position = 0
        self.closing = False
        #: Access the handle was opened with (GENERIC_READ / GENERIC_WRITE).
        self.readable = True
        self.writable = True
        self._signaled = True  # a file object starts signaled (spec §1.2)
        self._pending: dict[Operation, None] = {}
        #: Pending STREAM requests per direction (receive-like, send-like): module docstring.
        self.stream_in = 0
        self.stream_out = 0
        #: Run once when the last handle closes (share modes, byte-range locks).
        self.close_hooks: list[Callable[[], object]] | None = None
        #: Winsock modes of a socket (``_netevents.SocketMode``), created on first use.
        self.winsock: Any = None

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._signaled

    @property
    def pending_requests(self) -> int:
        """Requests issued on this file object and not yet delivered."""
        return len(self._pending)

    def pending_ops(self) -> list[Operation]:
        """A snapshot of the undelivered requests."""
        with LOCK:
            return list(self._pending)

    # ------------------------------------------------------------------ completion modes, port
    def set_completion_modes(self, skip_port_on_success: bool, skip_set_event: bool) -> None:
        """SetFileCompletionNotificationModes: the flags are cumulative, never cleared (§6.10).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for SKIP_COMPLETION_PORT_ON_SUCCESS on a
                synchronous handle.
        """
        if skip_port_on_success and not self.overlapped:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "synchronous handle")
        with LOCK:
            self.skip_port_on_success |= skip_port_on_success
            self.skip_set_event |= skip_set_event

    def associate(self, port: CompletionPort, key: Any) -> None:
        """Bind this file object to ``port`` with ``key``, for good (§6.1).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for a synchronous handle or a file object that
                is already associated (with any port).
        """
        if not isinstance(port, CompletionPort):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{port!r} is not a completion port")
        if not self.overlapped:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "not opened for overlapped I/O")
        with LOCK:
            if self.port is not None:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "already associated")
            if port.closed:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the completion port is closed")
            self.port = port
            self.key = key

    # ------------------------------------------------------------------ bookkeeping
    def _forget_locked(self, op: Operation) -> None:
        """``op`` was delivered (or failed at once): drop it everywhere. Caller holds LOCK."""
        if not op.registered:
            return
        op.registered = False
        self._pending.pop(op, None)
        if op.kind is _STREAM:
            if op.poll_events & _POLLIN:
                self.stream_in -= 1
            else:
                self.stream_out -= 1
        ops = op.issuer.extensions.get(_IO_KEY)
        if ops is not None:
            ops.pop(op, None)
        if self.closing and not self._pending:
            self._release_fd()

    def adopt_connection(self, conn: socket.socket) -> None:
        """AcceptEx: this (pre-created) socket becomes the accepted connection ``conn``."""
        conn.setblocking(False)
        os.dup2(conn.fileno(), self.fd)
        conn.close()

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Cancel every pending request; close the descriptor once they are all delivered."""
        with LOCK:
            if self.closing:
                return
            self.closing = True
            pending = list(self._pending)
            if not pending:
                self._release_fd()
        hooks, self.close_hooks = self.close_hooks, None
        for hook in hooks or ():
            hook()
        for op in pending:
            request_cancel(op)

    def add_close_hook(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` once when the file object closes (its last handle is closed)."""
        with LOCK:
            if self.close_hooks is None:
                self.close_hooks = []
            if hook not in self.close_hooks:
                self.close_hooks.append(hook)

    def _last_handle_closed(self) -> None:
        self.close()

    def __del__(self) -> None:
        # A file object nobody references has no request in flight (requests reference it):
        # just make sure its descriptor does not leak.
        if self.fd >= 0:
            self._release_fd()

    def _release_fd(self) -> None:
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        if self.sock is not None:
            self.sock.close()
        else:
            try:
                os.close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        what = self.path or (f"socket fd={self.fd}" if self.sock is not None else f"fd={self.fd}")
        return f"<FileObject {what}{' overlapped' if self.overlapped else ''}>"


# ---------------------------------------------------------------------- issuing


def _register_locked(op: Operation) -> None:
    file = op.file
    if file.closing:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
    op.registered = True
    file._pending[op] = None
    if op.kind is _STREAM:
        if op.poll_events & _POLLIN:
            file.stream_in += 1
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
    the two ``__init__`` levels (as ``_ops.pinned_read``): every slot of the class is set
    (``test_socket_pending`` checks it). The one place of these rules for both ways to the
    backend: :func:`submit_receive` and the io_uring backend's ``pend_receive`` (whose C
    accelerator, ``_fastpend.c``, builds the same request: ``test_fastpend`` compares them).

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if the file is being closed.
    """
    op: StreamReadOp = _new_object(StreamReadOp)
    op.file = file
    op.overlapped = overlapped
    event = op.event = overlapped.event
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


def request_cancel(op: Operation) -> bool:
    """Mark ``op`` cancelled and ask its backend; False if it was done or already cancelled."""
    with LOCK:
        if op.done or op.cancel_requested:
            return False
        op.cancel_requested = True
        submitted = op.submitted
    if submitted:
        if op.kind is OpKind.LOCAL:
            op.cancel_local()
        else:
            op.file.backend.cancel(op)
    return True


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


# ---------------------------------------------------------------------- cancellation


def _check_file(file: object) -> None:
    if not isinstance(file, FileObject):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{file!r} is not a file")


def cancel_io(file: FileObject) -> None:
    """CancelIo: cancel the calling thread's requests on ``file`` (always succeeds).

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if ``file`` is not a file object.
    """
    _check_file(file)
    ts = current_thread_state()
    for op in file.pending_ops():
        if op.issuer is ts:
            request_cancel(op)


def cancel_io_ex(file: FileObject, overlapped: Any = None) -> None:
    """CancelIoEx: cancel any thread's requests on ``file`` (those using ``overlapped``).

    Raises:
        Win32Error: ERROR_NOT_FOUND if no request was cancelled; ERROR_INVALID_HANDLE if
            ``file`` is not a file object.
    """
    _check_file(file)
    found = False
    for op in file.pending_ops():
        if (overlapped is None or op.overlapped is overlapped) and request_cancel(op):
            found = True
    if not found:
        raise Win32Error(WinError.ERROR_NOT_FOUND)


def cancel_synchronous_io(ts: ThreadState) -> None:
    """CancelSynchronousIo: abort the synchronous request ``ts`` is blocked in.

    Raises:
        Win32Error: ERROR_NOT_FOUND when it is not blocked in synchronous I/O (async requests
            are never affected).
    """
    op = ts.extensions.get(_SYNC_KEY)
    if op is None or not request_cancel(op):
        raise Win32Error(WinError.ERROR_NOT_FOUND)


def _survives_thread_exit(op: Operation) -> bool:
    return op.file.port is not None and not op.skip_port and op.event is None and op.routine is None


def _cancel_thread_io(ts: ThreadState) -> None:
    """Thread-exit hook: the §8 rule, then the rundown wait (module docstring)."""
    ops: Iterable[Operation] = list(ts.extensions.get(_IO_KEY, ()))
    doomed = [op for op in ops if not _survives_thread_exit(op)]
    for op in doomed:
        request_cancel(op)
    if doomed and not sys.is_finalizing():  # at shutdown no reaper runs any more
        wait_for_rundown(doomed, RUNDOWN_TIMEOUT)


def wait_for_rundown(ops: Iterable[Operation], timeout: float) -> bool:
    """Wait until every request of ``ops`` has completed, at most ``timeout`` seconds; True
    if they all did. Never raises (a thread-exit hook).

    Polls ``op.done`` (set under LOCK by the single delivery funnel) with a backoff from
    50 us to 5 ms, as IoCancelThreadIo polls the thread's IRP list (every 100 ms): whoever
    reaps the completion (a ring leader, the ring thread, the thread backend's reactor)
    is another thread, and a cancel normally takes effect within microseconds.
    """
    pending = list(ops)
    deadline = _monotonic() + timeout
    delay = _RUNDOWN_FIRST_POLL
    while True:
        pending = [op for op in pending if not op.done]
        if not pending:
            return True
        remaining = deadline - _monotonic()
        if remaining <= 0:
            return False
        _sleep(min(delay, remaining))
        delay = min(delay * 2, _RUNDOWN_LAST_POLL)


add_thread_exit_hook(_cancel_thread_io, EXIT_CANCEL_IO)  # before a backend's migration
