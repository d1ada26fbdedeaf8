"""``Socket.start_accept``: the core's AcceptEx (issue 9), on both backends.

- A pending accept completes through the listening socket's port (its key, the OVERLAPPED, the
  count of data received), without or with a first receive; ``accept_socket`` is then the
  connection. A client already waiting (and its data) finishes it inside the call, and
  FILE_SKIP_COMPLETION_PORT_ON_SUCCESS then posts nothing.
- AcceptEx's address areas (``address_sizes``) are written in its layout
  (``win32.GetAcceptExSockaddrs`` reads them back); a remote area too small fails the request
  once a client is there.
- Bad input fails at once with a typed error carrying its Winsock/Win32 code, and nothing is
  notified.
- Closing the accept socket aborts the request; the §8 thread-exit rule applies (port-bound:
  survives its thread; with an event: dies with it).
- ``win32.AcceptEx`` is a wrapper of it.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import winaio
import winaio.testing as wt
import winaio.win32 as w
from winaio._kernel._handles import HANDLE_TABLE
from winaio.codes import NtStatus, WinError, ntstatus_to_winerror

pytestmark = pytest.mark.usefixtures("slot_impl")  # requests, and the receive slots

BACKENDS = ["io_uring", "threads"]
LONG = 5.0
WSAEFAULT, WSAEINVAL, WSAENOTSOCK = 10014, 10022, 10038
ADDR = 16 + 16  # an IPv4 SOCKADDR area: the address size + 16 [MS:AcceptEx]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    if name not in wt.available_backends():
        pytest.skip(f"{name} backend unavailable")
    with wt.using_backend(name):
        yield name


class Listening:
    """A listening ``winaio.Socket`` on a port (key "lst"), a fresh socket to accept into, and
    the client sockets a test connects (all closed at the end)."""

    def __init__(self) -> None:
        self.listener = winaio.create_socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.address = self.listener.getsockname()
        self.port = winaio.CompletionPort(1)
        self.listener.associate(self.port, "lst")
        self.target = winaio.create_socket()
        self.clients: list[socket.socket] = []

    def connect(self, data: bytes = b"") -> socket.socket:
        client = socket.create_connection(self.address, timeout=LONG)
        self.clients.append(client)
        if data:
            client.sendall(data)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.target.close()
        self.listener.close()
        self.port.close()


@pytest.fixture
def lst(backend: str) -> Iterator[Listening]:
    env = Listening()
    try:
        yield env
    finally:
        env.close()


def _packet(port: winaio.CompletionPort) -> winaio.CompletionPacket:
    packet = port.get(LONG)
    assert packet is not None, "no completion packet"
    return packet


def _readable(sock: winaio.Socket) -> bool:
    return bool(select.select([sock.fd], [], [], 0)[0])


# -- completions -----------------------------------------------------------------------------------


def test_a_pending_accept_completes_through_the_listeners_port(lst: Listening) -> None:
    ov = winaio.Overlapped()
    assert lst.listener.start_accept(lst.target, ov) is False
    assert ov.pending and lst.port.get(0) is None
    client = lst.connect()
    packet = _packet(lst.port)
    assert (packet.key, packet.overlapped, packet.status) == ("lst", ov, 0)
    assert packet.bytes_transferred == 0 and (ov.status, ov.information) == (0, 0)
    # The pre-created socket is the connection now.
    assert lst.target.getpeername() == client.getsockname()
    client.sendall(b"ping")
    buf = bytearray(4)
    assert lst.target.read(buf, timeout=LONG) == 4 and buf == b"ping"
    assert lst.target.write(b"pong", timeout=LONG) == 4
    assert client.recv(4, socket.MSG_WAITALL) == b"pong"
    assert lst.listener.pending_requests == 0


def test_an_accept_with_a_receive_completes_with_the_first_data(lst: Listening) -> None:
    buf = bytearray(16)
    event = winaio.Event(manual_reset=True)
    ov = winaio.Overlapped(event=event)
    assert lst.listener.start_accept(lst.target, ov, buf) is False
    client = lst.connect()
    # Connected, but the request waits for data (AcceptEx with dwReceiveDataLength > 0).
    assert not winaio.wait(event, 0.05).signaled and ov.pending
    client.sendall(b"first")
    packet = _packet(lst.port)
    assert packet.overlapped is ov and (packet.status, packet.bytes_transferred) == (0, 5)
    assert bytes(buf[:5]) == b"first" and ov.information == 5
    assert winaio.wait(event, 0).signaled
    assert lst.target.getpeername() == client.getsockname()


def test_receive_size_limits_the_first_receive(lst: Listening) -> None:
    buf = bytearray(b"." * 16)
    ov = winaio.Overlapped()
    assert lst.listener.start_accept(lst.target, ov, buf, receive_size=3) is False
    lst.connect(b"abcdef")
    packet = _packet(lst.port)
    assert packet.bytes_transferred == 3 and bytes(buf) == b"abc" + b"." * 13
    rest = bytearray(3)
    assert lst.target.read(rest, timeout=LONG) == 3 and rest == b"def"


def test_a_waiting_client_finishes_the_accept_inside_the_call(lst: Listening) -> None:
    client = lst.connect()
    wt.wait_until(lambda: _readable(lst.listener), LONG, "the connection is queued")
    ov = winaio.Overlapped()
    assert lst.listener.start_accept(lst.target, ov) is True
    assert (ov.status, ov.information) == (0, 0)
    assert lst.target.getpeername() == client.getsockname()
    packet = lst.port.get(0)  # no skip mode: an immediate success posts its packet too (#84)
    assert packet is not None and packet.overlapped is ov and packet.key == "lst"


def test_a_waiting_client_and_its_data_complete_the_receive_too(lst: Listening) -> None:
    lst.connect(b"hello")
    wt.wait_until(lambda: _readable(lst.listener), LONG, "the connection is queued")
    buf = bytearray(8)
    ov = winaio.Overlapped()
    # Inside the call when the data came with the connection, else pending: one packet either way.
    done = lst.listener.start_accept(lst.target, ov, buf)
    packet = _packet(lst.port)
    assert packet.overlapped is ov and packet.bytes_transferred == 5 == ov.information
    assert bytes(buf[:5]) == b"hello"
    assert lst.port.get(0) is None, "two completions for one request"
    assert done is (not ov.pending)


def test_skip_on_success_posts_nothing_for_an_immediate_accept(lst: Listening) -> None:
    lst.listener.set_completion_modes(True, True)
    lst.connect()
    wt.wait_until(lambda: _readable(lst.listener), LONG, "the connection is queued")
    ov = winaio.Overlapped()
    assert lst.listener.start_accept(lst.target, ov) is True
    assert (ov.status, ov.information) == (0, 0)
    assert lst.port.get(0) is None  # FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (spec #84)


def test_the_address_areas_are_written_in_acceptex_layout(lst: Listening) -> None:
    buf = bytearray(4 + 2 * ADDR)
    ov = winaio.Overlapped()
    assert lst.listener.start_accept(lst.target, ov, buf, address_sizes=(ADDR, ADDR)) is False
    client = lst.connect(b"data")
    packet = _packet(lst.port)
    assert (packet.status, packet.bytes_transferred) == (0, 4) and buf[:4] == b"data"
    local, llen, remote, rlen = w.Ref(None), w.Ref(0), w.Ref(None), w.Ref(0)
    w.GetAcceptExSockaddrs(buf, 4, ADDR, ADDR, local, llen, remote, rlen)
    assert local.value == lst.address and remote.value == client.getsockname()
    assert llen.value == rlen.value == 16


def test_a_remote_area_too_small_fails_once_a_client_is_there(lst: Listening) -> None:
    ov = winaio.Overlapped()
    buf = bytearray(2 * ADDR)
    assert lst.listener.start_accept(lst.target, ov, buf, address_sizes=(ADDR, ADDR - 1)) is False
    lst.connect()
    packet = _packet(lst.port)
    assert packet.status == int(NtStatus.STATUS_BUFFER_TOO_SMALL)
    assert ntstatus_to_winerror(packet.status) == WinError.ERROR_INSUFFICIENT_BUFFER


# -- bad input: typed errors, nothing notified ----------------------------------------------------


def _fails(lst: Listening, code: int, *args: Any, **kwargs: Any) -> None:
    ov = winaio.Overlapped()
    with pytest.raises(winaio.Win32Error) as info:
        _call(lst, ov, *args, **kwargs)
    assert info.value.winerror == code, info.value
    assert (ov.status, ov.information) == (0, 0)  # untouched: never issued
    assert lst.port.get(0) is None and lst.listener.pending_requests == 0


def _call(lst: Listening, ov: winaio.Overlapped, target: Any, *args: Any, **kwargs: Any) -> bool:
    return lst.listener.start_accept(target, ov, *args, **kwargs)


def test_bad_input_fails_at_once_with_its_code(lst: Listening) -> None:
    t = lst.target
    _fails(lst, WSAEFAULT, t, b"read-only")
    _fails(lst, WSAEFAULT, t, bytearray(4), receive_size=5)
    _fails(lst, WSAEFAULT, t, bytearray(4), receive_size=-1)
    _fails(lst, WSAEFAULT, t, None, receive_size=4)
    _fails(lst, WSAEFAULT, t, object())
    _fails(lst, WSAEFAULT, t, None, address_sizes=(ADDR, ADDR))  # areas need a buffer
    _fails(lst, WSAEFAULT, t, bytearray(64), address_sizes=(ADDR, 0))  # and a remote area
    _fails(lst, WSAEFAULT, t, bytearray(2 * ADDR - 1), receive_size=0, address_sizes=(ADDR, ADDR))
    pipe_read, pipe_write = winaio.create_pipe(overlapped=True)
    try:
        _fails(lst, WSAENOTSOCK, pipe_read)
    finally:
        pipe_read.close()
        pipe_write.close()
    # Not a fresh stream socket: bound, UDP, or being accepted into already.
    bound = winaio.create_socket()
    udp = winaio.create_socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        bound.bind(("127.0.0.1", 0))
        _fails(lst, WSAEINVAL, bound)
        _fails(lst, WSAEINVAL, udp)
    finally:
        bound.close()
        udp.close()
    ov = winaio.Overlapped()
    assert lst.listener.start_accept(t, ov) is False
    with pytest.raises(winaio.Win32Error) as info:
        lst.listener.start_accept(t, winaio.Overlapped())
    assert info.value.winerror == WSAEINVAL
    winaio.cancel_io_ex(lst.listener, ov)
    assert _packet(lst.port).status == int(NtStatus.STATUS_CANCELLED)


def test_no_overlapped_a_closed_socket_or_a_listener_that_does_not_listen(backend: str) -> None:
    listener, target = winaio.create_socket(), winaio.create_socket()
    try:
        listener.bind(("127.0.0.1", 0))
        with pytest.raises(winaio.Win32Error) as info:
            listener.start_accept(target, winaio.Overlapped())
        assert info.value.winerror == WSAEINVAL  # not listening
        listener.listen(1)
        with pytest.raises(winaio.Win32Error) as info:
            listener.start_accept(target, None)  # type: ignore[arg-type]
        assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
        target.close()
        with pytest.raises(winaio.Win32Error) as info:
            listener.start_accept(target, winaio.Overlapped())
        assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
        fresh = winaio.create_socket()
        listener.close()
        with pytest.raises(winaio.Win32Error) as info:
            listener.start_accept(fresh, winaio.Overlapped())
        assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
        fresh.close()
    finally:
        listener.close()
        target.close()


# -- aborts and the thread-exit rule -------------------------------------------------------------


def test_closing_the_accept_socket_aborts_the_accept(lst: Listening) -> None:
    ov = winaio.Overlapped()
    assert lst.listener.start_accept(lst.target, ov) is False
    lst.target.close()
    packet = _packet(lst.port)
    assert packet.overlapped is ov and packet.status == int(NtStatus.STATUS_CANCELLED)
    assert lst.listener.pending_requests == 0


def test_a_port_bound_accept_outlives_its_issuing_thread(lst: Listening) -> None:
    ov = winaio.Overlapped()
    results: list[bool] = []
    thread = winaio.start_thread(lambda: results.append(lst.listener.start_accept(lst.target, ov)))
    assert winaio.wait(thread, LONG).signaled and results == [False]
    client = lst.connect()
    packet = _packet(lst.port)
    assert packet.overlapped is ov and packet.status == 0
    assert lst.target.getpeername() == client.getsockname()


def test_an_accept_with_an_event_dies_with_its_issuing_thread(backend: str) -> None:
    listener, target = winaio.create_socket(), winaio.create_socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        event = winaio.Event(manual_reset=True)
        ov = winaio.Overlapped(event=event)
        thread = winaio.start_thread(lambda: listener.start_accept(target, ov))
        assert winaio.wait(thread, LONG).signaled
        assert winaio.wait(event, LONG).signaled
        assert ov.status == int(NtStatus.STATUS_CANCELLED)
    finally:
        listener.close()
        target.close()


# -- the alias ------------------------------------------------------------------------------------


def test_win32_acceptex_wraps_start_accept(lst: Listening, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    original = winaio.Socket.start_accept

    def spy(self: winaio.Socket, *args: Any, **kwargs: Any) -> bool:
        calls.append((self, *args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(winaio.Socket, "start_accept", spy)
    hl, ht = HANDLE_TABLE.insert(lst.listener), HANDLE_TABLE.insert(lst.target)
    try:
        buf = bytearray(4 + 2 * ADDR)
        ov = w.OVERLAPPED()
        count = w.Ref(7)
        assert w.AcceptEx(hl, ht, buf, 4, ADDR, ADDR, count, ov) is False
        assert w.WSAGetLastError() == w.ERROR_IO_PENDING and count.value == 0
        assert calls and calls[0][0] is lst.listener and calls[0][1] is lst.target
        assert calls[0][-1] == {"receive_size": 4, "address_sizes": (ADDR, ADDR)}
        lst.connect(b"abcd")
        packet = _packet(lst.port)
        assert (packet.status, packet.bytes_transferred, bytes(buf[:4])) == (0, 4, b"abcd")
        assert ov.Internal == 0 and ov.InternalHigh == 4
    finally:
        w.CloseHandle(ht)
        w.CloseHandle(hl)
