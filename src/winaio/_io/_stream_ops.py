"""The STREAM requests: reads, writes, AcceptEx and ConnectEx on sockets and anonymous pipes.

Each is an :class:`~._ops.Operation` (the base and its contract: ``_ops``) of kind STREAM: its
``try_now`` makes the non-blocking syscall (at issue time, then after readiness: ``poll_events``),
and a read's ``prep_pending``/``from_cqe`` let io_uring do the receive itself once data is there.

Invariants: a stream read of 0 bytes at the end of the stream is success for a socket (graceful
close) and STATUS_PIPE_BROKEN for a pipe (spec §10, :func:`stream_end`); a connection that was
reset stays reset (``RESET_SOCKETS``: Linux reports ECONNRESET once, Windows keeps failing,
[W:ws2_32/sock.c:test_tcp_reset]); a write completes only when all its bytes are sent; a buffer
the caller released fails the request with STATUS_ACCESS_VIOLATION instead of raising.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import socket
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import ThreadState
from ..codes import NtStatus
from ._interrupts import carry, interrupt
from ._ops import CompletionRoutine, Operation, SqeSink, errno_to_status
from ._slot import set_request_builder

if TYPE_CHECKING:
    from ._files import FileObject
    from ._overlapped import Overlapped

__all__ = [
    "RESET_SOCKETS",
    "AcceptOp",
    "ConnectOp",
    "StreamReadOp",
    "StreamWriteOp",
    "new_stream_read",
    "read_failed",
    "stream_end",
    "write_failed",
    "zero_byte_read",
]

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
#: A zero-byte read at the end of a stream socket: success for sockets (graceful close).
_EOF_STREAM = _SUCCESS
_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK)
_RESET = int(NtStatus.STATUS_CONNECTION_RESET)
_ABORTED = int(NtStatus.STATUS_CONNECTION_ABORTED)
#: A buffer the caller released (``memoryview.release()``) before the syscall could use it
#: (``_ops``: ERROR_NOACCESS), and what CPython raises for it.
_FAULT = int(NtStatus.STATUS_ACCESS_VIOLATION)
_RELEASED = (ValueError, TypeError, BufferError)
#: Sockets whose connection was reset, with the status they keep failing with: Linux reports
#: ECONNRESET once and then end-of-stream (EPIPE for sends), Windows keeps failing with
#: WSAECONNRESET [W:ws2_32/sock.c:test_tcp_reset]. A reset that follows the peer's FIN (data
#: sent to a closed peer) is WSAECONNABORTED on Windows [W:ws2_32/sock.c:test_shutdown]; Linux
#: reports end-of-stream and leaves EPIPE in SO_ERROR. Consulted only on the end-of-stream and
#: failure paths.
RESET_SOCKETS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_starmap = itertools.starmap  # (a syscall whose count an interrupt cannot drop)
_MSG_NOSIGNAL = int(socket.MSG_NOSIGNAL)  # a plain int: IntFlag arithmetic costs ~1 us
_map = map  # (a call whose result an interrupt cannot drop)
_NO_ARGS = ((),)
_CONNECTING = (errno.EINPROGRESS, errno.EAGAIN)
_new_object = object.__new__
#: ``Operation.__init__`` bound once (the stream requests' constructors call it, not
#: ``super()``: a hot path).
_operation_init = Operation.__init__


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
        _operation_init(self, file, overlapped, routine)  # not super(): a hot path
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
        # Each syscall's count stored by a loop with no eval-breaker check after it (an
        # interrupt at the return of ``n = sock.recv_into(...)`` dropped the bytes it took:
        # docs/design.md, pure); from there to the return, no call but at the end of a stream.
        n = 0
        try:
            sock = file.sock
            if sock is not None:
                if len(self.buffers) == 1:
                    for n in _starmap(sock.recv_into, ((self.buffers[0], 0, self.flags),)):  # noqa: B007
                        break
                else:
                    for got in _starmap(sock.recvmsg_into, ((self.buffers, 0, self.flags),)):
                        n = got[0]
                        break
            else:
                for n in _starmap(os.readv, ((file.fd, self.buffers),)):  # noqa: B007
                    break
        except OSError as exc:
            if exc.errno in _WOULD_BLOCK:
                return None
            return read_failed(file, exc.errno or 0)
        except _RELEASED:
            return _FAULT, 0
        if n == 0 and self.nbytes:
            return stream_end(file)
        return _SUCCESS, n


def _sent_rest(op: StreamWriteOp, n: int) -> None:
    """An interrupt cut :meth:`StreamWriteOp.try_now` with ``n`` sent bytes not yet dropped
    from its buffers: drop them (the request goes on with the rest, or completes)."""
    buffers = op.buffers
    while n and buffers:
        head = buffers[0]
        if n >= len(head):
            n -= len(head)
            del buffers[0]
        else:
            buffers[0] = head[n:]
            n = 0


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
        _operation_init(self, file, overlapped, routine)  # not super(): a hot path
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
        buffers = self.buffers
        n = 0
        try:
            while buffers:
                try:
                    # (each count stored with no check after its syscall, as in StreamReadOp)
                    sock = file.sock
                    if sock is not None:
                        flags = self.flags | _MSG_NOSIGNAL
                        if len(buffers) == 1:
                            for n in _starmap(sock.send, ((buffers[0], flags),)):  # noqa: B007
                                break
                        else:
                            for n in _starmap(sock.sendmsg, ((buffers, (), flags),)):  # noqa: B007
                                break
                    else:
                        for n in _starmap(os.writev, ((file.fd, buffers),)):  # noqa: B007
                            break
                except OSError as exc:
                    if exc.errno in _WOULD_BLOCK:
                        return None
                    return write_failed(file, exc.errno or 0), 0  # a failed write reports 0
                except _RELEASED:
                    return _FAULT, self.sent
                self.sent += n
                # Drop what went out; a partially sent buffer keeps its tail. (At any check
                # point here ``n`` is what is left to drop: ``_sent_rest`` finishes it.)
                while n and buffers:
                    head = buffers[0]
                    if n >= len(head):
                        n -= len(head)
                        del buffers[0]
                    else:
                        buffers[0] = head[n:]
                        n = 0
        except BaseException as exc:
            if self.sent and interrupt(exc):  # (Ctrl-C once bytes went out: they count)
                _sent_rest(self, n)
                carry(exc, (None if buffers else (_SUCCESS, self.sent),))
            raise
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
        # Each syscall's result stored with no check after it (as StreamReadOp's); a Ctrl-C
        # once the listener gave its connection up finishes the adoption and carries the
        # request out (``_interrupts.carry``): it goes on - pending for its first data, or
        # done - instead of being forgotten with the connection taken (or dropped).
        conn = None
        try:
            if not self.accepted:
                listener = self.file.sock
                assert listener is not None
                try:
                    for conn, _ in _starmap(listener.accept, _NO_ARGS):  # noqa: B007
                        break
                except OSError as exc:
                    if exc.errno in _WOULD_BLOCK:
                        return None
                    return errno_to_status(exc.errno or 0), 0
                # AcceptEx's contract: the *pre-created* socket becomes the connection.
                self.accept_file.adopt_connection(conn)  # type: ignore[arg-type]
                self.accepted = True
            if not self.receive:
                return _SUCCESS, 0
            sock = self.accept_file.sock
            assert sock is not None
            try:
                for n in _starmap(sock.recv_into, ((self.receive,),)):  # noqa: B007
                    break
            except OSError as exc:
                if exc.errno in _WOULD_BLOCK:
                    return None
                return errno_to_status(exc.errno or 0), 0
            return _SUCCESS, n
        except BaseException as exc:
            if conn is not None and interrupt(exc):
                self._accepted_again(conn)
                carry(exc, (None if self.receive else (_SUCCESS, 0),))
            raise

    def _accepted_again(self, conn: socket.socket) -> None:
        """An interrupt cut :meth:`try_now` once ``conn`` was accepted: it is the accept
        socket's (``adopt_connection`` made again unless it closed ``conn``, its last step:
        each step is idempotent)."""
        if not self.accepted:
            if conn.fileno() != -1:
                self.accept_file.adopt_connection(conn)
            self.accepted = True


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
        # Each syscall's result stored with no check after it (as StreamReadOp's); a Ctrl-C
        # once the connection was started carries the request out pending (``carry``): the
        # backend finishes it (the handshake, the first send) instead of the request being
        # forgotten with the socket connecting.
        err = -1
        try:
            if not self.started:
                self.started = True
                for err in _map(sock.connect_ex, (self.address,)):  # noqa: B007
                    break
                if err in _CONNECTING:
                    return None
            else:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                # Settle Linux's socket state once the handshake ended: connected (a later
                # connect then gets EISCONN), or back to unconnected after a failure (so the
                # socket can connect again rather than answer ECONNABORTED)
                # [W:ws2_32/sock.c:test_connect].
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
                for n in _starmap(sock.send, ((self.send, _MSG_NOSIGNAL),)):  # noqa: B007
                    break
            except OSError as exc:
                return errno_to_status(exc.errno or 0), 0
            return _SUCCESS, n
        except BaseException as exc:
            if (err == 0 or err in _CONNECTING) and interrupt(exc):
                carry(exc, (None,))  # (a failed connect: failed at once, nothing to finish)
            raise
