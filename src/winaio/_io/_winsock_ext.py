"""Winsock requests beside WSARecv/WSASend: datagrams with addresses (WSASendTo/WSARecvFrom),
AcceptEx's address block, DisconnectEx, TransmitFile - as STREAM operations, so both backends
run them through their readiness path unchanged.

Facts encoded here ([W:ws2_32/sock.c:test_AcceptEx, test_TransmitFile, test_WSASendTo,
test_DisconnectEx], [MS:AcceptEx], [MS:GetAcceptExSockaddrs], [MS:TransmitFile],
[MS:DisconnectEx], [MS:WSARecvFrom]):
- AcceptEx's output buffer is [received data][local address area][remote address area]; each
  area holds a 4-byte length and the SOCKADDR (Windows layout: AF_INET = 2, AF_INET6 = 23,
  port big-endian) - Wine's layout, read back by GetAcceptExSockaddrs. An area must be at least
  16 bytes larger than the SOCKADDR; a local area of 0 is skipped; one too small makes the
  request complete with STATUS_BUFFER_TOO_SMALL once a client connects, without accepting it.
- WSARecvFrom reports the sender's address at completion; a datagram larger than the buffers
  completes with STATUS_BUFFER_OVERFLOW (WSAEMSGSIZE) and the truncated data.
- TransmitFile sends the head buffer, the file's bytes (from the OVERLAPPED's offset, or the
  file pointer without one; 0 bytes = to the end) and the tail buffer; the count is the sum.
  TF_DISCONNECT shuts the connection down afterwards; with TF_REUSE_SOCKET the socket can then
  be accepted or connected into again.
- DisconnectEx shuts the connection down gracefully; with TF_REUSE_SOCKET the handle gets a
  fresh socket of the same kind (on Linux a connected socket cannot be reused).
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import socket
import struct
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ..codes import NtStatus, WinError
from ..errors import Win32Error
from ._backend import OpKind
from ._files import FileObject, request_cancel
from ._interrupts import carried, carry, cut_at_entry, interrupt
from ._netevents import mode_of
from ._ops import CompletionRoutine, Operation, errno_to_status
from ._stream_ops import AcceptOp

__all__ = [
    "TF_DISCONNECT",
    "TF_REUSE_SOCKET",
    "AcceptExOp",
    "DisconnectOp",
    "ImmediateOp",
    "RecvFromOp",
    "SendToOp",
    "TransmitFileOp",
    "accept_ex",
    "check_connectable",
    "check_not_accepting",
    "decode_sockaddr",
    "encode_sockaddr",
    "is_connected",
    "shutdown_socket",
    "sockaddr_size",
]

TF_DISCONNECT = 0x01
TF_REUSE_SOCKET = 0x02
_WIN_AF = {socket.AF_INET: 2, socket.AF_INET6: 23}
_LINUX_AF = {2: socket.AF_INET, 23: socket.AF_INET6}
_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_OVERFLOW = int(NtStatus.STATUS_BUFFER_OVERFLOW)
_TOO_SMALL = int(NtStatus.STATUS_BUFFER_TOO_SMALL)
_SHUT_DOWN = int(NtStatus.STATUS_PIPE_BROKEN)  # -> ERROR_BROKEN_PIPE -> WSAESHUTDOWN
_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK)
WSAEFAULT, WSAEINVAL = 10014, 10022
_MSG_NOSIGNAL = int(socket.MSG_NOSIGNAL)  # plain ints: an IntFlag's ``|``/``&`` is Python code
_MSG_TRUNC = int(socket.MSG_TRUNC)
_starmap = itertools.starmap  # (a syscall whose count an interrupt cannot drop)
_WSAEISCONN, _WSAENOTCONN = 10056, 10057


def sockaddr_size(family: int) -> int:
    """sizeof(SOCKADDR_IN) / sizeof(SOCKADDR_IN6)."""
    return 28 if family == socket.AF_INET6 else 16


def encode_sockaddr(family: int, address: Any) -> bytes:
    """The Windows SOCKADDR bytes of a Python address tuple."""
    if family == socket.AF_INET6:
        host, port, flowinfo, scope = (*tuple(address), 0, 0)[:4]
        raw = socket.inet_pton(socket.AF_INET6, host)
        return (
            struct.pack("<H", 23)
            + struct.pack(">H", port)
            + struct.pack("<I", flowinfo)
            + (raw + struct.pack("<I", scope))
        )
    host, port = address[:2]
    return struct.pack("<H", 2) + struct.pack(">H", port) + socket.inet_aton(host) + bytes(8)


def decode_sockaddr(data: bytes) -> tuple[int, Any]:
    """(Linux family, Python address tuple) of Windows SOCKADDR bytes."""
    family = _LINUX_AF.get(struct.unpack_from("<H", data)[0], socket.AF_INET)
    port = struct.unpack_from(">H", data, 2)[0]
    if family == socket.AF_INET6:
        flowinfo = struct.unpack_from("<I", data, 4)[0]
        host = socket.inet_ntop(socket.AF_INET6, data[8:24])
        scope = struct.unpack_from("<I", data, 24)[0]
        return family, (host, port, flowinfo, scope)
    return family, (socket.inet_ntoa(data[4:8]), port)


class SendToOp(Operation):
    """WSASendTo: one datagram (or stream send) to ``address``."""

    __slots__ = ("address", "buffers", "flags", "nbytes")
    poll_events = select.POLLOUT

    def __init__(
        self,
        file: FileObject,
        overlapped: Any,
        buffers: Sequence[memoryview],
        address: Any,
        flags: int = 0,
        routine: CompletionRoutine | None = None,
    ) -> None:
        super().__init__(file, overlapped, routine)
        self.buffers = list(buffers)
        self.nbytes = sum(len(b) for b in self.buffers)
        self.address = address
        self.flags = flags

    def try_now(self) -> tuple[int, int] | None:
        sock = self.file.sock
        assert sock is not None
        # (the count stored with no check after the syscall: ``_stream_ops``' pattern; from
        # there to the return, no call)
        try:
            args = ((self.buffers, (), self.flags | _MSG_NOSIGNAL, self.address),)
            for n in _starmap(sock.sendmsg, args):  # noqa: B007
                break
        except OSError as exc:
            if exc.errno in _WOULD_BLOCK:
                return None
            return errno_to_status(exc.errno or 0), 0
        return _SUCCESS, n


class RecvFromOp(Operation):
    """WSARecvFrom: receive and report the sender (``on_address(address, msg_flags)``)."""

    __slots__ = ("buffers", "flags", "nbytes", "on_address")
    poll_events = select.POLLIN

    def __init__(
        self,
        file: FileObject,
        overlapped: Any,
        buffers: Sequence[memoryview],
        on_address: Callable[[Any, int], None] | None,
        flags: int = 0,
        routine: CompletionRoutine | None = None,
    ) -> None:
        super().__init__(file, overlapped, routine)
        self.buffers = list(buffers)
        self.nbytes = sum(len(b) for b in self.buffers)
        self.on_address = on_address
        self.flags = flags

    def try_now(self) -> tuple[int, int] | None:
        sock = self.file.sock
        assert sock is not None
        mode = self.file.winsock
        if mode is not None and mode.shut_rd and not self.submitted:
            return _SHUT_DOWN, 0  # issued after shutdown(SD_RECEIVE): WSAESHUTDOWN
        # The datagram's count stored with no check after the syscall (``_stream_ops``'
        # pattern); a Ctrl-C at the sender's report carries the result out (``carry``), the
        # report made again when the cut came at its entry.
        try:
            args = ((self.buffers, 0, self.flags),)
            for n, _, msg_flags, address in _starmap(sock.recvmsg_into, args):  # noqa: B007
                break
        except OSError as exc:
            if exc.errno in _WOULD_BLOCK:
                return None
            return errno_to_status(exc.errno or 0), 0
        result = (_OVERFLOW if msg_flags & _MSG_TRUNC else _SUCCESS), n
        on_address = self.on_address
        if on_address is not None:
            try:
                on_address(address, msg_flags)
            except BaseException as exc:
                if interrupt(exc):
                    if cut_at_entry(exc, on_address):
                        on_address(address, msg_flags)
                    carry(exc, (result,))
                raise
        return result


class AcceptExOp(AcceptOp):
    """AcceptEx with its address block (module docstring)."""

    __slots__ = ("areas", "family", "local_size", "remote_size")

    def __init__(
        self,
        listen_file: FileObject,
        accept_file: FileObject,
        overlapped: Any,
        receive: memoryview | None,
        areas: memoryview | None,
        local_size: int,
        remote_size: int,
    ) -> None:
        super().__init__(listen_file, accept_file, overlapped, receive)
        self.areas = areas
        self.local_size = local_size
        self.remote_size = remote_size
        sock = listen_file.sock
        self.family = sock.family if sock is not None else socket.AF_INET

    def _too_small(self) -> bool:
        if self.areas is None:
            return False  # the core's form without address areas (``Socket.start_accept``)
        need = sockaddr_size(self.family) + 16
        return (0 < self.local_size < need) or self.remote_size < need

    def try_now(self) -> tuple[int, int] | None:
        if not self.accepted and self._too_small():
            # Windows fails the request once a client is there, without accepting it.
            poller = select.poll()
            poller.register(self.file.fd, select.POLLIN)
            return (_TOO_SMALL, 0) if poller.poll(0) else None
        was_accepted = self.accepted
        try:
            result = super().try_now()
            if self.accepted and not was_accepted:
                self._write_addresses()
        except BaseException as exc:
            # (a Ctrl-C once accepted: ``AcceptOp`` carries the request out, or it returned
            # and the areas were cut - written whole again, the result carried; a request
            # that goes on has its areas)
            if self.accepted and not was_accepted and interrupt(exc):
                tried = carried(exc)
                carry(exc, tried if tried is not None else (result,))
                self._write_addresses()
            raise
        return result

    def _write_addresses(self) -> None:
        areas = self.areas
        sock = self.accept_file.sock
        if areas is None or sock is None:
            return
        pairs = ((0, self.local_size, sock.getsockname), (self.local_size, self.remote_size,
                                                          sock.getpeername))  # fmt: skip
        for start, size, get in pairs:
            if not size:
                continue
            raw = encode_sockaddr(self.family, get())
            block = struct.pack("<i", len(raw)) + raw
            areas[start : start + len(block)] = block


class DisconnectOp(Operation):
    """DisconnectEx: end the sending side (the peer reads end-of-stream; this side can still
    receive, [W:ws2_32/sock.c:test_DisconnectEx]); TF_REUSE_SOCKET closes both sides and gives
    the handle a fresh socket. ``defer``: an overlapped call always pends first, as on Windows."""

    __slots__ = ("defer", "reuse")
    poll_events = select.POLLOUT

    def __init__(self, file: FileObject, overlapped: Any, reuse: bool, defer: bool = False) -> None:
        super().__init__(file, overlapped)
        self.reuse = reuse
        self.defer = defer

    def try_now(self) -> tuple[int, int] | None:
        if self.defer:
            self.defer = False
            return None
        return self.disconnect()

    def disconnect(self) -> tuple[int, int]:
        """Shut the connection down now."""
        sock = self.file.sock
        assert sock is not None
        try:
            sock.shutdown(socket.SHUT_RDWR if self.reuse else socket.SHUT_WR)
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                return errno_to_status(exc.errno or 0), 0
        if self.reuse:
            fresh = socket.socket(sock.family, sock.type, sock.proto)
            fresh.setblocking(False)
            os.dup2(fresh.fileno(), self.file.fd)
            fresh.close()
        return _SUCCESS, 0


class TransmitFileOp(Operation):
    """TransmitFile: head, file bytes (os.sendfile), tail; then the TF_DISCONNECT options."""

    __slots__ = (
        "defer",
        "disconnect",
        "file_left",
        "offset",
        "pieces",
        "reuse",
        "sent",
        "source",
    )  # fmt: skip
    poll_events = select.POLLOUT

    def __init__(
        self,
        file: FileObject,
        overlapped: Any,
        source: FileObject | None,
        offset: int,
        count: int,
        head: bytes,
        tail: bytes,
        flags: int,
        defer: bool = False,
    ) -> None:
        super().__init__(file, overlapped)
        self.defer = defer
        self.source = source
        self.offset = offset
        self.file_left = count  # -1: to the end of the file
        self.pieces: list[Any] = [memoryview(head), "file", memoryview(tail)]
        self.sent = 0
        self.disconnect = bool(flags & TF_DISCONNECT)
        self.reuse = bool(flags & TF_REUSE_SOCKET)

    def try_now(self) -> tuple[int, int] | None:
        if self.defer:  # an overlapped TransmitFile always pends first [W:test_TransmitFile]
            self.defer = False
            return None
        sock = self.file.sock
        assert sock is not None
        # Each count stored with no check after its syscall and counted before the next check
        # (``_stream_ops``' pattern); a Ctrl-C once bytes went out carries the request out
        # pending (``carry``): the rest follows, in order.
        try:
            while self.pieces:
                piece = self.pieces[0]
                if piece == "file":
                    if self.source is None or self.file_left == 0:
                        self.pieces.pop(0)
                        continue
                    want = self.file_left if self.file_left > 0 else 1 << 30
                    args = ((sock.fileno(), self.source.fd, self.offset, want),)
                    for n in _starmap(os.sendfile, args):  # noqa: B007
                        break
                    if n == 0:  # end of file
                        self.pieces.pop(0)
                        continue
                    self.offset += n
                    self.sent += n
                    if self.file_left > 0:
                        self.file_left -= n
                    continue
                if not len(piece):
                    self.pieces.pop(0)
                    continue
                for n in _starmap(sock.send, ((piece, _MSG_NOSIGNAL),)):  # noqa: B007
                    break
                self.sent += n
                self.pieces[0] = piece[n:]
        except OSError as exc:
            if exc.errno in _WOULD_BLOCK:
                return None
            return errno_to_status(exc.errno or 0), self.sent
        except BaseException as exc:
            if self.sent and interrupt(exc):
                carry(exc, (None,))
            raise
        if self.disconnect:
            status, _ = DisconnectOp(self.file, self.overlapped, self.reuse).disconnect()
            if status:
                return status, self.sent
        return _SUCCESS, self.sent


class ImmediateOp(Operation):
    """A request that is finished when issued (WSAIoctl's immediate controls): issuing it
    through ``start`` still notifies the OVERLAPPED's channels (event, port, APC). One that
    fails pends until its issuer completes it (``complete``), so that it is notified too."""

    __slots__ = ("result",)
    kind = OpKind.LOCAL

    def __init__(
        self, file: FileObject, overlapped: Any, information: int, status: int = _SUCCESS
    ) -> None:
        super().__init__(file, overlapped)
        self.result = (status, information)

    def try_now(self) -> tuple[int, int] | None:
        # A failure pends (the caller then completes it): it is still notified, unlike a
        # request that fails at once.
        return None if self.result[0] >= 0xC0000000 else self.result


def is_connected(sock: socket.socket) -> bool:
    """True if the socket has a peer."""
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _is_bound(sock: socket.socket) -> bool:
    try:
        name = sock.getsockname()
    except OSError:
        return False
    return isinstance(name, tuple) and name[1] != 0


def check_connectable(file: FileObject, ex: bool) -> None:
    """connect (``ex`` False) / ConnectEx (True) on a listening or connected socket.

    Raises:
        Win32Error: WSAEINVAL for a listening socket, or for connect on a socket ConnectEx
            connected (until SO_UPDATE_CONNECT_CONTEXT); WSAEISCONN for a connected one
            [W:ws2_32/sock.c:test_connect].
    """
    sock = file.sock
    if sock is None or sock.type != socket.SOCK_STREAM:
        return  # a datagram socket connects again at will [W:ws2_32/sock.c:test_connect_udp]
    try:
        listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        listening = False
    if listening:
        raise Win32Error(WSAEINVAL, "a listening socket cannot connect")
    if is_connected(sock):
        mode = file.winsock
        if not ex and mode is not None and mode.connected_by_ex:
            raise Win32Error(WSAEINVAL, "connected by ConnectEx")
        raise Win32Error(_WSAEISCONN, "already connected")


def shutdown_socket(file: FileObject, how: int) -> None:
    """shutdown(): SD_RECEIVE (0), SD_SEND (1) or SD_BOTH (2) [W:ws2_32/sock.c:test_shutdown].

    The receive half is Winsock's own state (``SocketMode.shut_rd``), not Linux's SHUT_RD
    (which puts nothing on the wire either): receives issued afterwards fail WSAESHUTDOWN while
    those already pending still complete with the data that arrives, as on Windows; Linux's
    SHUT_RD would end them with 0 bytes at once. The send half is Linux's SHUT_WR (sends then
    fail EPIPE -> WSAESHUTDOWN). Unconnected datagram sockets can be shut down too (Linux
    answers ENOTCONN, yet applies it). The peer's address is kept (``SocketMode.peer``) for
    getpeername once the connection has closed.

    Raises:
        Win32Error: WSAEINVAL for another ``how``; WSAENOTCONN for an unconnected stream
            socket or a listener (Linux would shut a listener's SHUT_WR silently, and stop
            listening on SHUT_RD).
        OSError: Linux's shutdown failed otherwise.
    """
    sock = file.sock
    assert sock is not None
    if how not in (0, 1, 2):
        raise Win32Error(WSAEINVAL, f"shutdown how={how}")
    mode = mode_of(file)
    if sock.type == socket.SOCK_STREAM and mode.peer is None:
        try:
            mode.peer = sock.getpeername()
        except OSError:
            raise Win32Error(_WSAENOTCONN, "the socket is not connected") from None
    if how != 0:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            if not (exc.errno == errno.ENOTCONN and sock.type != socket.SOCK_STREAM):
                raise
    if how != 1:
        mode.shut_rd = True


def check_not_accepting(file: FileObject) -> None:
    """connect/ConnectEx on a socket an AcceptEx is accepting into.

    Raises:
        Win32Error: WSAEINVAL [W:ws2_32/sock.c:test_AcceptEx].
    """
    mode = file.winsock
    if mode is not None and mode.accepting is not None and not mode.accepting.done:
        raise Win32Error(WSAEINVAL, "an AcceptEx is accepting into this socket")


def accept_ex(
    listener: FileObject,
    target: FileObject,
    overlapped: Any,
    buffer: Any,
    data_len: int | None,
    local_len: int,
    remote_len: int,
    *,
    areas: bool = True,
) -> AcceptExOp:
    """The AcceptEx request after its checks, in Windows' order [W:ws2_32/sock.c:test_AcceptEx]:
    a listener that is not listening, or a target that is not a fresh stream socket (a UDP,
    bound or connected socket, or one an AcceptEx is already accepting into) -> WSAEINVAL;
    no output buffer, a remote address area of 0 or areas beyond the buffer -> WSAEFAULT.
    Issue it with ``_files.start`` (the core's ``Socket.start_accept`` does).

    Args:
        data_len: the bytes of ``buffer`` that receive the first data (0: the request
            completes at the connection); None: all of it but the address areas.
        areas: False for the core's form without address areas (``Socket.start_accept``
            without ``address_sizes``): ``buffer`` may be None, both lengths must be 0.

    Raises:
        Win32Error: the WSA code above.
    """
    lsock, tsock = listener.sock, target.sock
    if lsock is None or tsock is None:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "not a socket")
    try:
        listening = bool(lsock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        listening = False
    if not listening:
        raise Win32Error(WSAEINVAL, "the listening socket is not listening")
    if areas:
        if buffer is None:
            raise Win32Error(WSAEFAULT, "lpOutputBuffer is NULL")
        if remote_len <= 0 or local_len < 0:
            raise Win32Error(WSAEFAULT, "the remote address area is empty")
    elif local_len or remote_len:
        raise Win32Error(WSAEFAULT, "address areas without their layout")
    view = None
    if buffer is not None:
        try:
            view = memoryview(buffer).cast("B")
        except (TypeError, ValueError):
            raise Win32Error(WSAEFAULT, "the output buffer is not a byte buffer") from None
        if data_len is None:
            data_len = max(len(view) - local_len - remote_len, 0)
    elif data_len is None:
        data_len = 0
    if data_len < 0:
        raise Win32Error(WSAEFAULT, f"a receive of {data_len} bytes")
    if view is None:
        if data_len:
            raise Win32Error(WSAEFAULT, f"no buffer for the {data_len} bytes to receive")
    elif view.readonly or len(view) < data_len + local_len + remote_len:
        raise Win32Error(WSAEFAULT, "the output buffer is smaller than the data and address areas")
    if tsock.type != socket.SOCK_STREAM or _is_bound(tsock) or is_connected(tsock):
        raise Win32Error(WSAEINVAL, "the accept socket is not a fresh stream socket")
    mode = mode_of(target)
    if mode.accepting is not None and not mode.accepting.done:
        raise Win32Error(WSAEINVAL, "an AcceptEx is already accepting into this socket")
    receive = view[:data_len] if view is not None and data_len else None
    block = None
    if view is not None and areas:
        block = view[data_len : data_len + local_len + remote_len]
    op = AcceptExOp(listener, target, overlapped, receive, block, local_len, remote_len)
    mode.accepting = op
    # Closing the accept socket ends the AcceptEx (ERROR_OPERATION_ABORTED)
    # [W:ws2_32/sock.c:test_completion_port]; a weak reference, so that a finished request
    # does not live as long as the socket.
    target.add_close_hook(_cancel_hook(weakref.ref(op)))
    return op


def _cancel_hook(ref: weakref.ref[AcceptExOp]) -> Callable[[], None]:
    def cancel() -> None:
        op = ref()
        if op is not None and not op.done:
            request_cancel(op)

    return cancel
