"""Operation objects: one per overlapped request, each knowing how to run on every backend.

An :class:`Operation` is created when a request is issued and lives until its completion has been
delivered (``_dispatch.deliver``). It owns the caller's buffers and OVERLAPPED for that whole
time, even after a cancel (backend invariant 2, ``_backend``).

Each concrete operation answers, without any backend-specific ``if`` chain in the backends
(the compio ``OpCode`` idea):

- ``try_now()``: a non-blocking attempt. ``(status, information)`` when it finished (an NTSTATUS
  and a byte count), ``None`` when it would block. Used at issue time - a request that can finish
  at once completes at once, like Windows' fast I/O paths and AFD's immediate completions - and
  by STREAM backends after readiness.
- ``prep(sink, user_data)`` (FILE kind): write its io_uring SQE through an :class:`SqeSink`;
  ``from_cqe(res)`` maps the CQE result back to (status, information).
- ``run_blocking()`` (FILE kind): the blocking syscall, for the thread backend.

Status mapping (spec §1.7, §4.4, §10): a read of 0 bytes at end of file is STATUS_END_OF_FILE
for files but success for sockets (graceful close) and STATUS_PIPE_BROKEN for pipes.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .._kernel._dispatcher import ThreadState
from .._kernel._threads import current_thread_state
from ..codes import NtStatus
from ._backend import OpKind
from ._dispatch import deliver
from ._slot import set_request_builder

if TYPE_CHECKING:
    from .._kernel._objects import Event
    from ._fd_users import FdUsers
    from ._files import FileObject
    from ._overlapped import Overlapped

__all__ = [
    "AcceptOp",
    "CompletionRoutine",
    "ConnectOp",
    "FileReadOp",
    "FileWriteOp",
    "RESET_SOCKETS",
    "Operation",
    "SqeSink",
    "StreamReadOp",
    "StreamWriteOp",
    "errno_to_status",
    "new_stream_read",
    "pinned_read",
    "read_failed",
    "stream_end",
    "write_failed",
]

#: routine(error, bytes, overlapped): Win32 error (0, ERROR_HANDLE_EOF...), byte count, OVERLAPPED.
CompletionRoutine = Callable[[int, int, Any], object]

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_EOF = int(NtStatus.STATUS_END_OF_FILE)
_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
#: A zero-byte read at the end of a stream socket: success for sockets (graceful close).
_EOF_STREAM = _SUCCESS
_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
_preadv = os.preadv
_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK)
_RESET = int(NtStatus.STATUS_CONNECTION_RESET)
_ABORTED = int(NtStatus.STATUS_CONNECTION_ABORTED)
#: A buffer the caller released (``memoryview.release()``) before the syscall could use it:
#: what Windows reports for memory the kernel cannot access (ERROR_NOACCESS). io_uring never
#: sees it (its SQE holds an export of the memory); the thread backend and the non-blocking
#: attempts, which take the buffer only when they run, do.
_FAULT = int(NtStatus.STATUS_ACCESS_VIOLATION)
#: What CPython raises for such a buffer (ValueError; TypeError from recv_into).
_RELEASED = (ValueError, TypeError, BufferError)
#: Sockets whose connection was reset, with the status they keep failing with: Linux reports
#: ECONNRESET once and then end-of-stream (EPIPE for sends), Windows keeps failing with
#: WSAECONNRESET [W:ws2_32/sock.c:test_tcp_reset]. A reset that follows the peer's FIN (data
#: sent to a closed peer) is WSAECONNABORTED on Windows [W:ws2_32/sock.c:test_shutdown]; Linux
#: reports end-of-stream and leaves EPIPE in SO_ERROR. Consulted only on the end-of-stream and
#: failure paths.
RESET_SOCKETS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_MSG_NOSIGNAL = int(socket.MSG_NOSIGNAL)  # a plain int: IntFlag arithmetic costs ~1 us

_ERRNO_STATUS: dict[int, int] = {
    errno.ECANCELED: NtStatus.STATUS_CANCELLED,
    errno.EBADF: NtStatus.STATUS_INVALID_HANDLE,
    errno.EINVAL: NtStatus.STATUS_INVALID_PARAMETER,
    errno.EFAULT: NtStatus.STATUS_ACCESS_VIOLATION,
    errno.EACCES: NtStatus.STATUS_ACCESS_DENIED,
    errno.EPERM: NtStatus.STATUS_ACCESS_DENIED,
    errno.EPIPE: NtStatus.STATUS_PIPE_BROKEN,
    errno.ECONNRESET: NtStatus.STATUS_CONNECTION_RESET,
    errno.ECONNABORTED: NtStatus.STATUS_CONNECTION_ABORTED,
    errno.ECONNREFUSED: NtStatus.STATUS_CONNECTION_REFUSED,
    errno.ENOTCONN: NtStatus.STATUS_PIPE_DISCONNECTED,
    errno.EDESTADDRREQ: NtStatus.STATUS_PIPE_DISCONNECTED,  # send on an unconnected datagram
    # socket: WSAENOTCONN [W:ws2_32/sock.c:test_connect_udp]
    errno.EOPNOTSUPP: NtStatus.STATUS_NOT_SUPPORTED,
    errno.ETIMEDOUT: NtStatus.STATUS_IO_TIMEOUT,
    errno.ENOSYS: NtStatus.STATUS_NOT_IMPLEMENTED,
    # Sockets, as AFD reports them [W:server/sock.c:sock_errno_to_status].
    errno.EISCONN: NtStatus.STATUS_CONNECTION_ACTIVE,
    errno.ENETUNREACH: NtStatus.STATUS_NETWORK_UNREACHABLE,
    errno.EHOSTUNREACH: NtStatus.STATUS_HOST_UNREACHABLE,
    errno.EADDRINUSE: NtStatus.STATUS_ADDRESS_ALREADY_ASSOCIATED,
}


def errno_to_status(err: int) -> int:
    """A Linux errno -> the NTSTATUS a Windows driver would have reported."""
    return int(_ERRNO_STATUS.get(err, NtStatus.STATUS_UNSUCCESSFUL))


class SqeSink(Protocol):
    """What an operation may ask of the io_uring backend when it prepares its SQE.

    Each method pins the buffers, writes one SQE with ``user_data`` and returns the object that
    keeps the memory alive; the backend holds it until the CQE arrives.
    """

    def readv(self, fd: int, buffers: Sequence[memoryview], offset: int, user_data: int) -> object:
        """A positioned (scatter) read."""

    def writev(self, fd: int, buffers: Sequence[memoryview], offset: int, user_data: int) -> object:
        """A positioned (gather) write."""

    def recv(self, fd: int, buffers: Sequence[memoryview], flags: int, user_data: int) -> object:
        """A socket receive (scatter), waiting for data in the kernel."""

    def prep_read(self, fd: int, addr: int, nbytes: int, offset: int, user_data: int) -> None:
        """A positioned read into memory the caller pinned (``addr``, ``nbytes``)."""


class Operation:
    """One overlapped request (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "cancel_requested",
        "done",
        "event",
        "file",
        "issuer",
        "overlapped",
        "registered",
        "routine",
        "skip_port",
        "submitted",
        "sync_done",
        "token",
    )

    kind: ClassVar[OpKind] = OpKind.STREAM
    #: select.POLL* mask a STREAM op waits for before retrying ``try_now``.
    poll_events: ClassVar[int] = 0

    def __init__(
        self,
        file: FileObject,
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> None:
        self.file = file
        self.overlapped = overlapped
        # The notification channels are fixed when the request is issued (spec §1.5).
        self.event: Event | None = overlapped.event
        self.skip_port = overlapped.skip_port
        self.routine = routine
        self.issuer: ThreadState = current_thread_state()
        self.done = False
        #: In its file's (and issuer's) pending lists (see ``_files.start``).
        self.registered = False
        self.submitted = False
        self.cancel_requested = False
        #: Backend-private state (ring user_data, epoll registration...).
        self.token: Any = None
        #: Set for requests on synchronous handles: the issuing thread waits on it.
        self.sync_done: Event | None = None

    @property
    def fd(self) -> int:
        """The descriptor a STREAM backend polls."""
        return self.file.fd

    def try_now(self) -> tuple[int, int] | None:
        """Non-blocking attempt: (status, information), or None if it would block."""
        raise NotImplementedError

    def may_overtake(self) -> bool:
        """True if this request may finish before earlier pending ones in its direction
        (a zero-length write "never blocks", spec §10)."""
        return False

    def prep(self, sink: SqeSink, user_data: int) -> object:
        """FILE kind: write the io_uring SQE; return the keep-alive for its memory."""
        raise NotImplementedError

    def prep_pending(self, sink: SqeSink, user_data: int) -> object | None:
        """STREAM kind, when it pends: write an io_uring SQE that does the request itself once
        the descriptor is ready (its CQE goes to ``from_cqe``), returning the keep-alive; None
        (the default) to wait for readiness (``poll_events``) and retry ``try_now`` instead."""
        return None

    def from_cqe(self, res: int) -> tuple[int, int]:
        """FILE kind: map a CQE result (bytes or -errno) to (status, information)."""
        if res < 0:
            return errno_to_status(-res), 0
        return _SUCCESS, res

    def run_blocking(self) -> tuple[int, int]:
        """FILE kind: do the request with a blocking syscall (thread backend)."""
        raise NotImplementedError

    def cancel_local(self) -> None:
        """LOCAL kind: withdraw the request from whatever in-process queue holds it and
        complete it with STATUS_CANCELLED (subclasses with queues override this)."""
        self.complete(int(NtStatus.STATUS_CANCELLED), 0)

    def complete(self, status: int, information: int) -> None:
        """Called by the backend exactly once: deliver the completion (spec §1.5)."""
        deliver(self, status, information)


# --------------------------------------------------------------------------- regular files


class _FileOp(Operation):
    __slots__ = ("buffers", "nbytes", "offset")
    kind = OpKind.FILE

    def __init__(
        self,
        file: FileObject,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        offset: int,
        routine: CompletionRoutine | None = None,
    ) -> None:
        super().__init__(file, overlapped, routine)
        self.buffers = buffers
        self.offset = offset
        self.nbytes = len(buffers[0]) if len(buffers) == 1 else sum(len(b) for b in buffers)


class FileReadOp(_FileOp):
    """ReadFile / ReadFileScatter / ReadFileEx on a regular file at ``offset``.

    ``tried``: the issuing call already made the non-blocking attempt (``DiskFile.read_now``)
    and it would block: do not pay for the same syscall twice. ``anchor``/``address``: set by
    :func:`pinned_read` (one buffer pinned when it was checked): ``prep`` reuses them.
    """

    __slots__ = ("address", "anchor", "tried")

    def __init__(
        self,
        file: FileObject,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        offset: int,
        routine: CompletionRoutine | None = None,
        tried: bool = False,
    ) -> None:
        super().__init__(file, overlapped, buffers, offset, routine)
        self.tried = tried
        self.anchor: object = None
        self.address = 0

    def try_now(self) -> tuple[int, int] | None:
        if self.nbytes == 0:
            return _SUCCESS, 0  # zero-byte reads succeed, even at EOF (spec §4.4)
        file = self.file
        if self.tried or file.direct or not _RWF_NOWAIT:
            return None
        # Not registered yet (``_files.start``): counted among the descriptor's users before
        # ``closing`` is read (``_fd_users``), so that a close from another thread meanwhile
        # defers its release to us and no reopened file can take the number under this read.
        users: FdUsers | None
        try:
            users = file.fd_users  # type: ignore[attr-defined]
        except AttributeError:  # a bare FileObject (tests): nobody to defer a close to
            users = None
        else:
            users.append(None)
        try:
            if file.closing:
                return None  # closed since ``start`` looked: its registration reports it
            # Served from the page cache without blocking, or EAGAIN (Windows' fast I/O path).
            n = _preadv(file.fd, self.buffers, self.offset, _RWF_NOWAIT)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return None
            return errno_to_status(exc.errno or 0), 0
        except _RELEASED:
            return _FAULT, 0
        finally:
            if users is not None:
                users.pop()
                if file.closing:
                    users.left()
        if n == 0:
            return None  # at EOF: Win8+ pends and completes with STATUS_END_OF_FILE (spec §4.4)
        return _SUCCESS, n

    def prep(self, sink: SqeSink, user_data: int) -> object:
        anchor = self.anchor
        if anchor is not None:  # pinned already (``pinned_read``): one READ at its address
            sink.prep_read(self.file.fd, self.address, self.nbytes, self.offset, user_data)
            return anchor
        return sink.readv(self.file.fd, self.buffers, self.offset, user_data)

    def from_cqe(self, res: int) -> tuple[int, int]:
        if res == 0 and self.nbytes:
            return _EOF, 0
        return super().from_cqe(res)

    def run_blocking(self) -> tuple[int, int]:
        try:
            n = _preadv(self.file.fd, self.buffers, self.offset)
        except OSError as exc:
            return errno_to_status(exc.errno or 0), 0
        except _RELEASED:
            return _FAULT, 0
        if n == 0 and self.nbytes:
            return _EOF, 0
        return _SUCCESS, n


_new_object = object.__new__


def pinned_read(
    file: FileObject,
    overlapped: Overlapped,
    view: memoryview,
    offset: int,
    anchor: object,
    address: int,
    nbytes: int,
) -> FileReadOp:
    """The FileReadOp of the O_DIRECT hot path (``DiskFile.start_read``): one whole buffer,
    already pinned and checked by the caller (``anchor`` holds its export, ``address`` is
    where it starts), no completion routine, tried (O_DIRECT has no non-blocking attempt).

    Built slot by slot, without the three ``__init__`` levels: this runs once per request.
    Every slot of the class is set (a test checks it, so a new slot cannot be forgotten).
    """
    op: FileReadOp = _new_object(FileReadOp)
    op.file = file
    op.overlapped = overlapped
    op.event = overlapped.event
    op.skip_port = overlapped.skip_port
    op.routine = None
    op.issuer = current_thread_state()
    op.done = op.registered = op.submitted = op.cancel_requested = False
    op.token = op.sync_done = None
    op.buffers = (view,)
    op.offset = offset
    op.nbytes = nbytes
    op.tried = True
    op.anchor = anchor
    op.address = address
    return op


def new_stream_read(
    file: FileObject, overlapped: Overlapped, view: memoryview, issuer: ThreadState
) -> StreamReadOp:
    """The StreamReadOp of a pended socket receive (``_files.register_receive``, a demoted
    ``ReceiveSlot``: ``_slot``): one whole buffer, no flags, no completion routine; not
    registered yet. Built slot by slot, without the two ``__init__`` levels; every slot of
    the class is set (``test_socket_pending`` checks it)."""
    op: StreamReadOp = _new_object(StreamReadOp)
    op.file = file
    op.overlapped = overlapped
    op.event = overlapped.event
    op.skip_port = overlapped.skip_port
    op.routine = None
    op.issuer = issuer
    op.done = op.registered = op.submitted = op.cancel_requested = False
    op.token = op.sync_done = None
    op.buffers = [view]
    op.nbytes = len(view)
    op.flags = 0
    return op


set_request_builder(new_stream_read)  # a demoted receive slot's request (``_slot``)


class FileWriteOp(_FileOp):
    """WriteFile / WriteFileGather / WriteFileEx on a regular file at ``offset``."""

    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        if self.nbytes == 0:
            return _SUCCESS, 0
        return None

    def prep(self, sink: SqeSink, user_data: int) -> object:
        return sink.writev(self.file.fd, self.buffers, self.offset, user_data)

    def run_blocking(self) -> tuple[int, int]:
        try:
            return _SUCCESS, os.pwritev(self.file.fd, self.buffers, self.offset)
        except OSError as exc:
            return errno_to_status(exc.errno or 0), 0
        except _RELEASED:
            return _FAULT, 0


# --------------------------------------------------------------------------- streams


class StreamReadOp(Operation):
    """ReadFile / WSARecv on a socket or an anonymous pipe (readiness based)."""

    __slots__ = ("buffers", "flags", "nbytes")
    poll_events = select.POLLIN

    def __init__(
        self,
        file: FileObject,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None = None,
        flags: int = 0,
    ) -> None:
        Operation.__init__(self, file, overlapped, routine)  # not super(): a hot path
        if len(buffers) == 1:  # the common case: no generator
            self.buffers = [buffers[0]]
            self.nbytes = len(buffers[0])
        else:
            self.buffers = list(buffers)
            self.nbytes = sum(len(b) for b in self.buffers)
        self.flags = flags

    def prep_pending(self, sink: SqeSink, user_data: int) -> object | None:
        # A RECV (a READ for a pipe) that the kernel completes with the data: no readiness
        # round trip. Not for zero-byte reads, which wait for data without taking it.
        if not self.nbytes:
            return None
        file = self.file
        if file.sock is not None:
            return sink.recv(file.fd, self.buffers, self.flags, user_data)
        return sink.readv(file.fd, self.buffers, -1, user_data)  # -1: no offset (a pipe)

    def from_cqe(self, res: int) -> tuple[int, int]:
        if res > 0:
            return _SUCCESS, res
        if res == 0:
            return stream_end(self.file)
        return read_failed(self.file, -res)

    def try_now(self) -> tuple[int, int] | None:
        file = self.file
        mode = file.winsock
        if mode is not None and mode.shut_rd and not self.submitted:
            return _BROKEN, 0  # issued after shutdown(SD_RECEIVE): WSAESHUTDOWN
        if not self.nbytes:
            return zero_byte_read(file)
        try:
            if file.sock is not None:
                if len(self.buffers) == 1:
                    n = file.sock.recv_into(self.buffers[0], 0, self.flags)
                else:
                    n = file.sock.recvmsg_into(self.buffers, 0, self.flags)[0]
            else:
                n = os.readv(file.fd, self.buffers)
        except OSError as exc:
            if exc.errno in _WOULD_BLOCK:
                return None
            return read_failed(file, exc.errno or 0)
        except _RELEASED:
            return _FAULT, 0
        if n == 0 and self.nbytes:
            return stream_end(file)
        return _SUCCESS, n


def stream_end(file: FileObject) -> tuple[int, int]:
    """A stream read found the end of the stream (``try_now`` and ``from_cqe`` alike): a
    pipe's writer is gone (ERROR_BROKEN_PIPE, spec §10); a socket's peer closed gracefully
    (success, 0 bytes) - unless the connection was reset (``RESET_SOCKETS``, also a reset
    Linux left in SO_ERROR behind the peer's FIN)."""
    sock = file.sock
    if sock is None:
        return _BROKEN, 0
    sticky = RESET_SOCKETS.get(file)
    if sticky is not None:
        return sticky, 0
    try:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except OSError as exc:  # closed by another thread since the read (EBADF): its status
        return errno_to_status(exc.errno or 0), 0
    if not err:
        return _SUCCESS, 0  # a graceful close
    sticky = RESET_SOCKETS[file] = _ABORTED if err == errno.EPIPE else errno_to_status(err)
    return sticky, 0


def read_failed(file: FileObject, err: int) -> tuple[int, int]:
    """A stream read failed with ``err`` (an errno): its status; a reset stays reset."""
    status = errno_to_status(err)
    if status == _RESET:
        RESET_SOCKETS[file] = _RESET
    return status, 0


def write_failed(file: FileObject, err: int) -> int:
    """A stream write failed with ``err`` (an errno): its status; a connection that was reset
    stays reset (Linux says EPIPE after the reset, ``RESET_SOCKETS``)."""
    if err == errno.EPIPE:
        sticky = RESET_SOCKETS.get(file)
        if sticky is not None:
            return sticky
    return errno_to_status(err)


def zero_byte_read(file: FileObject) -> tuple[int, int] | None:
    """A zero-byte read waits for data without consuming it (the classic "zero-byte recv"):
    success once something is readable, the end-of-stream status at EOF, else None."""
    fd = file.fd
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    events = poller.poll(0)
    if not events:
        return None
    mask = events[0][1]
    if file.sock is not None:
        try:
            peek = file.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return None
        except OSError as exc:
            return errno_to_status(exc.errno or 0), 0
        return (_SUCCESS, 0) if peek or file.sock.type != socket.SOCK_STREAM else (_EOF_STREAM, 0)
    if mask & select.POLLIN:
        return _SUCCESS, 0
    return _BROKEN, 0


class StreamWriteOp(Operation):
    """WriteFile / WSASend on a socket or an anonymous pipe; completes when all bytes are sent."""

    __slots__ = ("buffers", "flags", "nbytes", "sent")
    poll_events = select.POLLOUT

    def __init__(
        self,
        file: FileObject,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None = None,
        flags: int = 0,
    ) -> None:
        Operation.__init__(self, file, overlapped, routine)  # not super(): a hot path
        if len(buffers) == 1:  # the common case: no generator
            n = len(buffers[0])
            self.buffers = [buffers[0]] if n else []
            self.nbytes = n
        else:
            self.buffers = [b for b in buffers if len(b)]
            self.nbytes = sum(len(b) for b in self.buffers)
        self.flags = flags
        self.sent = 0

    def may_overtake(self) -> bool:
        return not self.nbytes

    def try_now(self) -> tuple[int, int] | None:
        file = self.file
        while self.buffers:
            try:
                sock = file.sock
                if sock is not None:
                    if len(self.buffers) == 1:
                        n = sock.send(self.buffers[0], self.flags | _MSG_NOSIGNAL)
                    else:
                        n = sock.sendmsg(self.buffers, (), self.flags | _MSG_NOSIGNAL)
                else:
                    n = os.writev(file.fd, self.buffers)
            except OSError as exc:
                if exc.errno in _WOULD_BLOCK:
                    return None
                return write_failed(file, exc.errno or 0), 0  # a failed write reports 0 bytes
            except _RELEASED:
                return _FAULT, self.sent
            self.sent += n
            # Drop what went out; a partially sent buffer keeps its tail.
            while n and self.buffers:
                head = self.buffers[0]
                if n >= len(head):
                    n -= len(head)
                    self.buffers.pop(0)
                else:
                    self.buffers[0] = head[n:]
                    n = 0
        return _SUCCESS, self.sent


class AcceptOp(Operation):
    """AcceptEx: accept a connection into a pre-created socket, optionally receive first data."""

    __slots__ = ("accept_file", "accepted", "receive")
    poll_events = select.POLLIN

    def __init__(
        self,
        listen_file: FileObject,
        accept_file: FileObject,
        overlapped: Overlapped,
        receive: memoryview | None,
    ) -> None:
        super().__init__(listen_file, overlapped)
        self.accept_file = accept_file
        self.receive = receive
        self.accepted = False

    @property
    def fd(self) -> int:
        return self.accept_file.fd if self.accepted else self.file.fd

    def try_now(self) -> tuple[int, int] | None:
        if not self.accepted:
            listener = self.file.sock
            assert listener is not None
            try:
                conn, _ = listener.accept()
            except OSError as exc:
                if exc.errno in _WOULD_BLOCK:
                    return None
                return errno_to_status(exc.errno or 0), 0
            # AcceptEx's contract: the *pre-created* socket becomes the connection.
            self.accept_file.adopt_connection(conn)
            self.accepted = True
        if not self.receive:
            return _SUCCESS, 0
        sock = self.accept_file.sock
        assert sock is not None
        try:
            n = sock.recv_into(self.receive)
        except OSError as exc:
            if exc.errno in _WOULD_BLOCK:
                return None
            return errno_to_status(exc.errno or 0), 0
        return _SUCCESS, n


class ConnectOp(Operation):
    """ConnectEx: connect a bound socket, then optionally send a first buffer."""

    __slots__ = ("address", "send", "started")
    poll_events = select.POLLOUT

    def __init__(
        self, file: FileObject, overlapped: Overlapped, address: Any, send: memoryview | None
    ) -> None:
        super().__init__(file, overlapped)
        self.address = address
        self.send = send
        self.started = False

    def try_now(self) -> tuple[int, int] | None:
        sock = self.file.sock
        assert sock is not None
        if not self.started:
            self.started = True
            err = sock.connect_ex(self.address)
            if err in (errno.EINPROGRESS, errno.EAGAIN):
                return None
        else:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            # Settle Linux's socket state once the handshake ended: connected (a later connect
            # then gets EISCONN), or back to unconnected after a failure (so the socket can
            # connect again rather than answer ECONNABORTED) [W:ws2_32/sock.c:test_connect].
            again = sock.connect_ex(self.address)
            if not err:
                if again in (errno.EALREADY, errno.EINPROGRESS):
                    return None  # still connecting (a spurious wake-up)
                if again not in (0, errno.EISCONN):
                    err = again
        if err:
            return errno_to_status(err), 0
        if not self.send:
            return _SUCCESS, 0
        try:
            return _SUCCESS, sock.send(self.send, socket.MSG_NOSIGNAL)
        except OSError as exc:
            return errno_to_status(exc.errno or 0), 0
