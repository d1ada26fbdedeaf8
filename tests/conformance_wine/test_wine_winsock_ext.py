"""Winsock requests beside WSARecv/WSASend, ported from Wine's ``dlls/ws2_32/tests/sock.c``
(which passes on Windows) and MS Learn, through ``winaio.win32`` on both I/O backends (the ``io``
fixture): WSASendTo/WSARecvFrom, AcceptEx's checks and address block with GetAcceptExSockaddrs,
DisconnectEx, TransmitFile and WSAIoctl's extension pointers.
"""

from __future__ import annotations

import os
import uuid

import pytest

import winaio.win32 as w

#: Every test runs on the C and the Python immediate paths (``sock_impl``).
pytestmark = pytest.mark.usefixtures("sock_impl")

SENTINEL = 0xDEADBEEF
LONG = 5000
ADDR = 16 + 16  # sizeof(struct sockaddr_in) + 16
STATUS_PENDING = 0x103
STATUS_BUFFER_TOO_SMALL = 0xC0000023


def udp_socket(io, *, bound: bool = True, overlapped: bool = True) -> tuple[int, tuple | None]:
    flags = w.WSA_FLAG_OVERLAPPED if overlapped else 0
    s = io.keep_socket(w.WSASocket(w.AF_INET, w.SOCK_DGRAM, w.IPPROTO_UDP, None, 0, flags))
    if not bound:
        return s, None
    assert w.bind(s, ("127.0.0.1", 0)) == 0
    return s, w.getsockname(s)


def ext(s: int, guid: uuid.UUID):
    fn, n = w.Ref(None), w.Ref(SENTINEL)
    assert w.WSAIoctl(s, w.SIO_GET_EXTENSION_FUNCTION_POINTER, guid, 16, fn, 8, n, None, None) == 0
    assert n.value == 8
    return fn.value


# ---------------------------------------------------------------------- WSASendTo / WSARecvFrom


def test_wsasendto_checks_and_implicit_bind(io) -> None:
    # [W:ws2_32/sock.c:test_WSASendTo]
    _, dest = udp_socket(io)
    s, _ = udp_socket(io, bound=False)
    w.WSASetLastError(12345)
    r = w.WSASendTo(w.INVALID_SOCKET, [b"hello world\0"], 1, None, 0, dest, 16, None, None)
    assert (r, w.WSAGetLastError()) == (w.SOCKET_ERROR, w.WSAENOTSOCK)
    w.WSASetLastError(12345)
    r = w.WSASendTo(s, [b"hello world\0"], 1, None, 0, dest, 16, None, None)
    assert (r, w.WSAGetLastError()) == (w.SOCKET_ERROR, w.WSAEFAULT)
    sent = w.Ref(SENTINEL)
    w.WSASetLastError(12345)
    assert w.WSASendTo(s, [b"hello world\0"], 1, sent, 0, dest, 16, None, None) == 0
    assert (sent.value, w.WSAGetLastError()) == (12, 0)
    _, port = w.getsockname(s)
    assert port != 0  # the send bound the socket


def test_wsasendto_bad_input(io) -> None:
    # [MS:WSASendTo]: iTolen too small -> WSAEFAULT; no destination -> WSAEDESTADDRREQ
    _, dest = udp_socket(io)
    s, _ = udp_socket(io)
    sent = w.Ref(SENTINEL)
    assert w.WSASendTo(s, [b"x"], 1, sent, 0, dest, 8, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT
    assert w.WSASendTo(s, [b"x"], 1, sent, 0, None, 0, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEDESTADDRREQ
    assert w.WSASendTo(s, [b"x"], 5, sent, 0, dest, 16, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT  # dwBufferCount beyond the array
    assert sent.value == SENTINEL


def test_wsarecvfrom_reports_sender_at_completion(io) -> None:
    # [MS:WSARecvFrom] (overlapped: lpFrom/lpFromlen written when the datagram arrives)
    # [W:ws2_32/sock.c:test_write_watch] (WSARecvFrom fills the buffer and the address)
    r, raddr = udp_socket(io)
    s, saddr = udp_socket(io)
    port = io.port(r, key=7)
    buf = bytearray(32)
    frm, frmlen, flags = w.Ref(None), w.Ref(16), w.Ref(0)
    ov = io.ov()
    assert w.WSARecvFrom(r, [buf], 1, None, flags, frm, frmlen, ov, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSA_IO_PENDING
    assert frm.value is None
    assert w.sendto(s, b"datagram", 8, 0, raddr, 16) == 8
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 8, 7)
    assert bytes(buf[:8]) == b"datagram"
    assert frm.value == saddr
    assert frmlen.value == 16


def test_recvfrom_truncated_datagram_is_wsaemsgsize(io) -> None:
    # [MS:recvfrom] / [MS:WSARecvFrom]: a datagram larger than the buffer fills it and fails
    # with WSAEMSGSIZE; overlapped, the completion is STATUS_BUFFER_OVERFLOW (ERROR_MORE_DATA)
    r, raddr = udp_socket(io)
    s, _ = udp_socket(io)
    assert w.sendto(s, b"0123456789", 10, 0, raddr, 16) == 10
    buf = bytearray(4)
    frm, frmlen = w.Ref(None), w.Ref(16)
    assert w.recvfrom(r, buf, 4, 0, frm, frmlen) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEMSGSIZE
    assert buf == b"0123"
    ov = io.ov_event()
    flags = w.Ref(0)
    assert w.WSARecvFrom(r, [buf], 1, None, flags, None, None, ov, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSA_IO_PENDING
    assert w.sendto(s, b"abcdefgh", 8, 0, raddr, 16) == 8
    io.wait_signaled(ov.hEvent)
    assert io.result(r, ov) == (False, w.ERROR_MORE_DATA, 4)
    assert buf == b"abcd"


def test_wsarecvfrom_bad_input(io) -> None:
    # [MS:WSARecvFrom]: NULL lpFlags / short lpFromlen -> WSAEFAULT; unbound -> WSAEINVAL
    r, _ = udp_socket(io)
    buf = bytearray(8)
    got = w.Ref(SENTINEL)
    assert w.WSARecvFrom(r, [buf], 1, got, None, None, None, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT
    frm = w.Ref(None)
    assert w.WSARecvFrom(r, [buf], 1, got, w.Ref(0), frm, w.Ref(4), None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT
    unbound, _ = udp_socket(io, bound=False)
    assert w.recvfrom(unbound, buf, 8, 0, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert got.value == SENTINEL and frm.value is None


# ---------------------------------------------------------------------- AcceptEx


def test_acceptex_parameter_checks(io) -> None:
    # [W:ws2_32/sock.c:test_AcceptEx]: failures at once leave Internal STATUS_PENDING
    lst = io.tcp_socket()
    assert w.bind(lst, ("127.0.0.1", 0)) == 0
    acc = io.tcp_socket()
    buf = bytearray(64 + 2 * ADDR)
    ov = io.ov_event()
    n = w.Ref(SENTINEL)

    def call(listener, acceptor, out, data, local, remote, overlapped=ov):
        ov.Internal = SENTINEL
        ok = w.AcceptEx(listener, acceptor, out, data, local, remote, n, overlapped)
        return ok, w.WSAGetLastError()

    assert call(w.INVALID_SOCKET, acc, buf, 64, ADDR, ADDR) == (False, w.WSAENOTSOCK)
    assert ov.Internal == STATUS_PENDING
    assert call(lst, acc, buf, 64, ADDR, ADDR) == (False, w.WSAEINVAL)  # not listening
    assert ov.Internal == STATUS_PENDING
    assert w.listen(lst, 5) == 0
    assert call(lst, w.INVALID_SOCKET, buf, 64, ADDR, ADDR) == (False, w.WSAENOTSOCK)
    assert call(lst, acc, None, 64, ADDR, ADDR) == (False, w.WSAEFAULT)
    assert call(lst, acc, buf, 0, ADDR, 0) == (False, w.WSAEFAULT)  # remote area of 0
    assert call(lst, acc, buf, 0, ADDR, ADDR, None) == (False, w.ERROR_INVALID_PARAMETER)
    assert call(lst, acc, buf, 0, 0, 0, None) == (False, w.ERROR_INVALID_PARAMETER)
    # A UDP, a bound and a connected socket cannot be accepted into.
    udp, _ = udp_socket(io, bound=False)
    assert call(lst, udp, buf, 0, 0, ADDR) == (False, w.WSAEINVAL)
    bound = io.tcp_socket()
    assert w.bind(bound, ("127.0.0.1", 0)) == 0
    assert call(lst, bound, buf, 0, 0, ADDR) == (False, w.WSAEINVAL)
    a, b = io.socket_pair()
    assert call(lst, a, buf, 0, 0, ADDR) == (False, w.WSAEINVAL)
    assert call(lst, b, buf, 0, 0, ADDR) == (False, w.WSAEINVAL)
    assert ov.Internal == STATUS_PENDING
    assert n.value == SENTINEL


def test_acceptex_twice_into_one_socket_and_connect_into_it(io) -> None:
    # [W:ws2_32/sock.c:test_AcceptEx] ("try to accept into the same socket twice", "try to
    # connect a socket that's being accepted into")
    lst, addr = io.listener()
    acc = io.tcp_socket()
    buf = bytearray(2 * ADDR)
    ov, ov2 = io.ov_event(), io.ov_event()
    assert not w.AcceptEx(lst, acc, buf, 0, ADDR, ADDR, None, ov)
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    ov2.Internal = SENTINEL
    assert not w.AcceptEx(lst, acc, buf, 0, ADDR, ADDR, None, ov2)
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert ov2.Internal == STATUS_PENDING
    assert w.connect(acc, addr) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert not w.ConnectEx(acc, addr, None, 0, None, ov2)
    assert w.WSAGetLastError() == w.WSAEINVAL
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    io.wait_signaled(ov.hEvent)
    assert io.result(lst, ov) == (True, 0, 0)


def test_acceptex_addresses_after_the_data(io) -> None:
    # [MS:AcceptEx] [MS:GetAcceptExSockaddrs] [W:ws2_32/sock.c:test_AcceptEx]: the output
    # buffer is [data][local area][remote area]; GetAcceptExSockaddrs reads them back
    lst, addr = io.listener()
    acc = io.tcp_socket()
    port = io.port(lst, key=3)
    buf = bytearray(8 + 2 * ADDR)
    ov = io.ov()
    assert not w.AcceptEx(lst, acc, buf, 8, ADDR, ADDR, None, ov)
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    assert w.send(client, b"12345678", 0) == 8
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes) == (True, 8)
    assert bytes(buf[:8]) == b"12345678"
    local, llen, remote, rlen = w.Ref(None), w.Ref(SENTINEL), w.Ref(None), w.Ref(SENTINEL)
    w.GetAcceptExSockaddrs(buf, 8, ADDR, ADDR, local, llen, remote, rlen)
    assert local.value == addr and llen.value == 16
    assert remote.value == w.getsockname(client) and rlen.value == 16
    # the accepted socket really is the connection
    assert w.getpeername(acc) == w.getsockname(client)


def test_acceptex_local_area_zero(io) -> None:
    # [W:ws2_32/sock.c:test_AcceptEx]: dwLocalAddressLength 0 is allowed; GetAcceptExSockaddrs
    # leaves the local out-parameters alone and finds the remote address right after the data
    lst, addr = io.listener()
    acc = io.tcp_socket()
    buf = bytearray(ADDR)
    ov = io.ov_event()
    assert not w.AcceptEx(lst, acc, buf, 0, 0, ADDR, None, ov)
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    io.wait_signaled(ov.hEvent)
    assert io.result(lst, ov) == (True, 0, 0)
    assert ov.Internal == 0
    local, llen, remote, rlen = w.Ref("untouched"), w.Ref(SENTINEL), w.Ref(None), w.Ref(0)
    w.GetAcceptExSockaddrs(buf, 0, 0, ADDR, local, llen, remote, rlen)
    assert (local.value, llen.value) == ("untouched", SENTINEL)
    assert remote.value == w.getsockname(client) and rlen.value == 16


def test_acceptex_local_area_too_small(io) -> None:
    # [W:ws2_32/sock.c:test_AcceptEx] ("Pass an insufficient local address size"): pending,
    # then ERROR_INSUFFICIENT_BUFFER / STATUS_BUFFER_TOO_SMALL when a client connects, and the
    # connection is left for another accept
    lst, addr = io.listener()
    acc = io.tcp_socket()
    buf = bytearray(64)
    ov = io.ov_event()
    assert not w.AcceptEx(lst, acc, buf, 0, 3, ADDR, None, ov)
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    assert ov.Internal == STATUS_PENDING
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    io.wait_signaled(ov.hEvent)
    assert io.result(lst, ov) == (False, w.ERROR_INSUFFICIENT_BUFFER, 0)
    assert ov.Internal == STATUS_BUFFER_TOO_SMALL
    again = io.keep_socket(w.accept(lst))
    assert w.getpeername(again) == w.getsockname(client)


def test_acceptex_remote_area_one_short_pends(io) -> None:
    # [W:ws2_32/sock.c:test_AcceptEx] (sizeof(sockaddr_in) + 15 for either area: pending,
    # cancellable)
    lst, _ = io.listener()
    acc = io.tcp_socket()
    buf = bytearray(64)
    ov = io.ov_event()
    assert not w.AcceptEx(lst, acc, buf, 0, ADDR, ADDR - 1, None, ov)
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    assert w.CancelIo(lst)
    io.wait_signaled(ov.hEvent)
    assert io.result(lst, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)


# ---------------------------------------------------------------------- DisconnectEx


def test_disconnectex(io) -> None:
    # [W:ws2_32/sock.c:test_DisconnectEx] (overlapped case)
    lst, addr = io.listener()
    client = io.tcp_socket()
    disconnect = ext(client, w.WSAID_DISCONNECTEX)
    assert disconnect is w.DisconnectEx
    ov = io.ov_event()
    w.WSASetLastError(SENTINEL)
    assert not disconnect(w.INVALID_SOCKET, ov, 0, 0)
    assert w.WSAGetLastError() == w.WSAENOTSOCK
    assert not disconnect(client, ov, 0, 0)
    assert w.WSAGetLastError() == w.WSAENOTCONN
    assert w.connect(client, addr) == 0
    server = io.keep_socket(w.accept(lst))
    assert not disconnect(client, ov, 0, 0)
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    io.wait_signaled(ov.hEvent)
    assert io.result(client, ov) == (True, 0, 0)
    assert w.connect(client, addr) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEISCONN
    assert w.send(client, b"test\0", 0) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAESHUTDOWN
    buf = bytearray(5)
    assert w.recv(server, buf, 5, 0) == 0
    assert w.send(server, b"test\0", 0) == 5
    assert w.recv(client, buf, 5, 0) == 5 and buf == b"test\0"
    assert w.getpeername(client) == addr


def test_disconnectex_synchronous(io) -> None:
    # [W:ws2_32/sock.c:test_DisconnectEx] ("Test the synchronous case": TRUE twice)
    client, server = io.socket_pair()
    w.WSASetLastError(SENTINEL)
    assert w.DisconnectEx(client, None, 0, 0)
    assert w.WSAGetLastError() == 0
    assert w.DisconnectEx(client, None, 0, 0)
    buf = bytearray(5)
    assert w.recv(server, buf, 5, 0) == 0
    assert not w.DisconnectEx(client, None, 0, 1)
    assert w.WSAGetLastError() == w.WSAEINVAL  # dwReserved [MS:DisconnectEx]


def test_disconnectex_reuse_socket(io) -> None:
    # [MS:DisconnectEx] (TF_REUSE_SOCKET: the socket can be connected again)
    lst, addr = io.listener()
    client, server = io.socket_pair()
    assert w.DisconnectEx(client, None, w.TF_REUSE_SOCKET, 0)
    buf = bytearray(1)
    assert w.recv(server, buf, 1, 0) == 0
    assert w.connect(client, addr) == 0
    again = io.keep_socket(w.accept(lst))
    assert w.send(client, b"!", 0) == 1
    assert w.recv(again, buf, 1, 0) == 1


# ---------------------------------------------------------------------- TransmitFile


def _compare(io, sock: int, expect: bytes) -> None:
    assert io.recv_exact(sock, len(expect)) == expect


@pytest.fixture
def content() -> bytes:
    return os.urandom(50_000)


def test_transmitfile(io, content) -> None:
    # [W:ws2_32/sock.c:test_TransmitFile]
    head, tail = b"hello world\0", b"goodbye!!!\0"
    path = io.path("transmit")
    with open(path, "wb") as f:
        f.write(content)
    file = io.file(None, path=path, overlapped=False, access=w.GENERIC_READ)
    client = io.tcp_socket()
    transmit = ext(client, w.WSAID_TRANSMITFILE)
    assert not transmit(w.INVALID_SOCKET, file, 0, 0, None, None, 0)
    assert w.WSAGetLastError() == w.WSAENOTSOCK
    assert not transmit(client, 0, 0, 0, None, None, w.TF_REUSE_SOCKET)
    assert w.WSAGetLastError() == w.WSAENOTCONN
    lst, addr = io.listener()
    assert w.connect(client, addr) == 0
    dest = io.keep_socket(w.accept(lst))
    # nothing to send
    assert transmit(client, 0, 0, 0, None, None, 0)
    nb = w.Ref(1)
    assert w.ioctlsocket(dest, w.FIONBIO, nb) == 0
    buf = bytearray(256)
    assert w.recv(dest, buf, 256, 0) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEWOULDBLOCK
    assert w.ioctlsocket(dest, w.FIONBIO, w.Ref(0)) == 0
    # buffers only
    tfb = w.TRANSMIT_FILE_BUFFERS(head, len(head), tail, len(tail))
    assert transmit(client, 0, 0, 0, None, tfb, 0)
    _compare(io, dest, head + tail)
    # the file only, then file and buffers (from the file pointer, which advances)
    assert transmit(client, file, 0, 0, None, None, 0)
    _compare(io, dest, content)
    assert w.SetFilePointer(file, 0, None, w.FILE_BEGIN) == 0
    assert transmit(client, file, 0, 0, None, tfb, 0)
    _compare(io, dest, head + content + tail)
    # overlapped: always pends; the count is the total; Offset is the start
    for offset, buffers in ((0, None), (10, None), (0, tfb)):
        ov = io.ov_event(Offset=offset)
        assert not transmit(client, file, 0, 0, ov, buffers, 0)
        assert w.WSAGetLastError() == w.ERROR_IO_PENDING
        io.wait_signaled(ov.hEvent)
        extra = len(head) + len(tail) if buffers else 0
        n = w.Ref(0)
        assert w.WSAGetOverlappedResult(client, ov, n, False, None)
        assert n.value == len(content) - offset + extra
        want = content[offset:]
        _compare(io, dest, (head + want + tail) if buffers else want)
    # a UDP socket is never connected
    udp, _ = udp_socket(io, bound=False)
    assert not transmit(udp, 0, 0, 0, None, None, 0)
    assert w.WSAGetLastError() == w.WSAENOTCONN


def test_transmitfile_count_disconnect_and_port(io, content) -> None:
    # [MS:TransmitFile]: nNumberOfBytesToWrite bounds the file part; TF_DISCONNECT ends the
    # connection; the completion reaches the socket's port
    path = io.path("transmit")
    with open(path, "wb") as f:
        f.write(content)
    file = io.file(None, path=path, access=w.GENERIC_READ)
    client, server = io.socket_pair()
    port = io.port(client, key=0x7F)
    ov = io.ov(Offset=100)
    assert not w.TransmitFile(client, file, 1000, 0, ov, None, w.TF_DISCONNECT)
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 1000, 0x7F)
    _compare(io, server, content[100:1100])
    buf = bytearray(1)
    assert w.recv(server, buf, 1, 0) == 0


def test_transmitfile_bad_file_handle(io) -> None:
    # [MS:TransmitFile] (hFile must be a file handle; winaio reports ERROR_INVALID_HANDLE)
    client, _ = io.socket_pair()
    ev = io.event()
    assert not w.TransmitFile(client, ev, 0, 0, None, None, 0)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert not w.TransmitFile(client, 0, 0, 0, None, w.TRANSMIT_FILE_BUFFERS(b"ab", 5), 0)
    assert w.WSAGetLastError() == w.WSAEFAULT


# ---------------------------------------------------------------------- WSAIoctl, ioctlsocket


def test_wsaioctl_extension_pointers(io) -> None:
    # [MS:WSAIoctl] [W:ws2_32/sock.c:test_AcceptEx] (the extension functions by GUID)
    s = io.tcp_socket()
    assert ext(s, w.WSAID_ACCEPTEX) is w.AcceptEx
    assert ext(s, w.WSAID_CONNECTEX) is w.ConnectEx
    assert ext(s, w.WSAID_GETACCEPTEXSOCKADDRS) is w.GetAcceptExSockaddrs
    assert ext(s, str(w.WSAID_TRANSMITFILE)) is w.TransmitFile
    assert ext(s, w.WSAID_DISCONNECTEX.bytes_le) is w.DisconnectEx
    fn, n = w.Ref(None), w.Ref(SENTINEL)
    code = w.SIO_GET_EXTENSION_FUNCTION_POINTER
    assert w.WSAIoctl(s, code, uuid.uuid4(), 16, fn, 8, n, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert w.WSAIoctl(s, code, w.WSAID_ACCEPTEX, 16, fn, 4, n, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT
    assert w.WSAIoctl(s, code, w.WSAID_ACCEPTEX, 16, fn, 8, None, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT  # [W:ws2_32/sock.c:test_sioRoutingInterfaceQuery]
    assert w.WSAIoctl(s, 0x12345678, None, 0, None, 0, n, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEOPNOTSUPP
    assert w.WSAIoctl(w.INVALID_SOCKET, code, w.WSAID_ACCEPTEX, 16, fn, 8, n, None, None) == -1
    assert w.WSAGetLastError() == w.WSAENOTSOCK
    assert fn.value is None


def test_wsaioctl_overlapped_notifies(io) -> None:
    # [MS:WSAIoctl] (an overlapped call that finishes at once still notifies the port, with 0
    # bytes although *lpcbBytesReturned is 8 [W:ws2_32/sock.c:test_get_extension_func])
    s = io.tcp_socket()
    port = io.port(s, key=9)
    fn, n = w.Ref(None), w.Ref(0)
    ov = io.ov()
    code = w.SIO_GET_EXTENSION_FUNCTION_POINTER
    assert w.WSAIoctl(s, code, w.WSAID_CONNECTEX, 16, fn, 8, n, ov, None) == 0
    assert fn.value is w.ConnectEx
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 0, 9) and pk.overlapped is ov
