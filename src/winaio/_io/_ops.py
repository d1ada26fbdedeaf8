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

This module is the base (:class:`Operation`, :class:`SqeSink`, :func:`errno_to_status`) and the
FILE requests (regular files: positioned, io_uring READV/WRITEV or the thread backend's
syscall); the STREAM requests (sockets, anonymous pipes) are ``_stream_ops``, the named pipes'
LOCAL ones ``_pipe_ops``.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .._kernel._dispatcher import ThreadState
from .._kernel._threads import current_thread_state
from ..codes import NtStatus
from ._backend import OpKind
from ._dispatch import deliver
from ._fd_users import ONE_USER
from ._interrupts import carry

if TYPE_CHECKING:
    from .._kernel._objects import Event
    from ._fd_users import FdUsers
    from ._files import FileObject
    from ._overlapped import Overlapped

__all__ = [
    "CompletionRoutine",
    "FileReadOp",
    "FileWriteOp",
    "Operation",
    "SqeSink",
    "errno_to_status",
    "pinned_read",
]

#: routine(error, bytes, overlapped): Win32 error (0, ERROR_HANDLE_EOF...), byte count, OVERLAPPED.
CompletionRoutine = Callable[[int, int, Any], object]

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_EOF = int(NtStatus.STATUS_END_OF_FILE)
_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
_preadv = os.preadv
_starmap = itertools.starmap  # (a syscall whose count an interrupt cannot drop)
#: A buffer the caller released (``memoryview.release()``) before the syscall could use it:
#: what Windows reports for memory the kernel cannot access (ERROR_NOACCESS). io_uring never
#: sees it (its SQE holds an export of the memory); the thread backend and the non-blocking
#: attempts, which take the buffer only when they run, do.
_FAULT = int(NtStatus.STATUS_ACCESS_VIOLATION)
#: What CPython raises for such a buffer (ValueError; TypeError from recv_into).
_RELEASED = (ValueError, TypeError, BufferError)

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
        users: FdUsers | None = getattr(file, "fd_users", None)  # (None: a bare FileObject)
        n = 0
        counted = False
        try:
            if users is not None:
                # (in the ``try``, by an operator: no check between the count and the flag;
                # a MemoryError counts nothing and pops nothing - ``_fd_users.ONE_USER``)
                users += ONE_USER
                counted = True
            if file.closing:
                return None  # closed since ``start`` looked: its registration reports it
            # Served from the page cache without blocking, or EAGAIN (Windows' fast I/O path).
            # The count stored by the loop with no eval-breaker check after the syscall (the
            # check after ``n = _preadv(...)`` dropped it: docs/design.md, pure).
            args = (file.fd, self.buffers, self.offset, _RWF_NOWAIT)
            for n in _starmap(_preadv, (args,)):  # noqa: B007
                break
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return None
            return errno_to_status(exc.errno or 0), 0
        except _RELEASED:
            return _FAULT, 0
        finally:
            if counted and users is not None:
                try:
                    users.pop()
                    if file.closing:
                        users.left()
                except BaseException as exc:  # (Ctrl-C: the read goes on with its count)
                    if n:
                        carry(exc, ((_SUCCESS, n),))
                    raise
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
