"""Audit of the sockets' immediate fast path (``_sockets.Socket.start_read``/``start_write``,
``_dispatch.notify_success``, ``_files.submit_tried``): adversarial tests, both backends.

- Differential: an immediate completion through the fast path has exactly the effects of the
  general issue path (``start`` + ``deliver``, reached with ``size=``) for every combination of
  port binding, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, FILE_SKIP_SET_EVENT_ON_HANDLE and
  event / no event / ``hEvent|1`` - and those effects are pinned (spec §1.5, §6.2, §6.10).
- A send taken in part pends with the rest and posts exactly one packet, even with
  FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (it did not succeed inside the call).
- Exactly one completion per request, no byte lost or duplicated, when several threads issue
  receives (immediate and pending mixed) and sends on one port-bound socket.
- A peer reset while a fast-path receive pends: one packet, STATUS_CONNECTION_RESET.
- Win32 aliases: a WSARecv that pended on a port-bound socket outlives its thread and reaches
  GetQueuedCompletionStatus; one bound to an event dies with its thread (spec §8).
- A send that pends in part is never split by a send issued meanwhile from another thread.
"""

from __future__ import annotations

import select
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import winaio
import winaio.testing as wt
import winaio.win32 as w
from winaio._io import _sock_after
from winaio._io._sockets import Socket
from winaio._io._stream_ops import StreamWriteOp
from winaio._io._sync import run_sync
from winaio._kernel._handles import HANDLE_TABLE
from winaio.codes import NtStatus, WinError

#: Every test runs on the C and the Python immediate paths (``sock_impl``).
pytestmark = pytest.mark.usefixtures("sock_impl", "slot_impl")

STATUS_PENDING = int(NtStatus.STATUS_PENDING)
LONG = 5.0


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.backend_for_test(request.param) as name:
        yield name


class Pair:
    """A connected loopback TCP pair: ``file`` (winaio) and ``peer`` (a plain blocking socket)."""

    def __init__(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            self.peer = socket.create_connection(listener.getsockname(), timeout=LONG)
            sock, _ = listener.accept()
        sock.setblocking(False)
        self.file = Socket(sock.fileno(), overlapped=True, sock=sock)

    def feed(self, data: bytes) -> None:
        self.peer.sendall(data)
        sock = self.file.sock
        assert sock is not None
        wt.wait_until(lambda: _readable(sock) >= len(data), LONG, "the data arrived")

    def close(self) -> None:
        self.file.close()
        self.peer.close()


def _readable(sock: socket.socket) -> int:
    try:
        return len(sock.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return 0


@pytest.fixture
def pairs(backend: str) -> Iterator[list[Pair]]:
    made: list[Pair] = []

    class Maker(list[Pair]):
        def new(self) -> Pair:
            p = Pair()
            made.append(p)
            return p

    yield Maker()
    for p in made:
        p.close()


def _signaled(obj: winaio.DispatcherObject) -> bool:
    return winaio.wait(obj, 0).signaled


def _packets(port: winaio.CompletionPort) -> list[tuple[Any, int, int]]:
    out = []
    while (packet := port.get(0)) is not None:
        out.append((packet.key, packet.status, packet.bytes_transferred))
    return out


def _immediate(pair: Pair, direction: str, general: bool, config: tuple[bool, ...]) -> Any:
    """Configure ``pair.file``, issue one request that finishes inside the call, and return
    everything it did that is observable."""
    bound, skip_port_ok, skip_set_event, ev_kind = config
    port = winaio.CompletionPort(1)
    if bound:
        pair.file.associate(port, "key")
    pair.file.set_completion_modes(skip_port_ok, skip_set_event)
    event = winaio.Event(manual_reset=True, initial_state=True) if ev_kind != "none" else None
    ov = winaio.Overlapped(event=event, skip_port=ev_kind == "event|1")
    ov.information = 0xBAD
    if direction == "read":
        pair.feed(b"abcdef")
        buf = bytearray(16)
        size = {"size": len(buf)} if general else {}
        returned = pair.file.start_read(buf, ov, **size)
        data = bytes(buf[: ov.information])
    else:
        payload = b"0123456789"
        size = {"size": len(payload)} if general else {}
        returned = pair.file.start_write(payload, ov, **size)
        data = pair.peer.recv(64)
    effects = (
        returned,
        ov.status,
        ov.information,
        data,
        None if event is None else _signaled(event),
        pair.file._signaled,  # the file object (cleared at issue, signaled unless skip/event)
        _packets(port),
    )
    port.close()
    return effects


CONFIGS = [
    (bound, skip_ok, skip_ev, ev)
    for bound in (False, True)
    for skip_ok in (False, True)
    for skip_ev in (False, True)
    for ev in ("none", "event", "event|1")
]


@pytest.mark.parametrize("direction", ["read", "write"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_an_immediate_completion_has_the_general_paths_effects(
    pairs: Any, direction: str, config: tuple[Any, ...]
) -> None:
    # spec: win32 #66
    bound, skip_port_ok, skip_set_event, ev_kind = config
    fast = _immediate(pairs.new(), direction, False, config)
    general = _immediate(pairs.new(), direction, True, config)
    assert fast == general
    n, data = (6, b"abcdef") if direction == "read" else (10, b"0123456789")
    expected_packets = (
        [("key", 0, n)] if bound and not skip_port_ok and ev_kind != "event|1" else []
    )
    expected = (
        True,
        0,
        n,
        data,
        None if ev_kind == "none" else True,
        ev_kind == "none" and not skip_set_event,
        expected_packets,
    )
    assert fast == expected


def test_a_partial_send_posts_one_packet_despite_skip_on_success(pairs: Any) -> None:
    pair = pairs.new()
    sock = pair.file.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    port = winaio.CompletionPort(1)
    pair.file.associate(port, 7)
    pair.file.set_completion_modes(True, False)
    ov = winaio.Overlapped()
    data = bytes(range(256)) * 4096  # 1 MiB: never fits the send buffer
    assert pair.file.start_write(data, ov) is False
    assert ov.status == STATUS_PENDING
    received = bytearray()
    drainer = threading.Thread(target=_drain, args=(pair.peer, received, len(data)))
    drainer.start()
    packet = port.get(LONG)
    drainer.join(LONG)
    assert packet is not None
    assert (packet.key, packet.status, packet.bytes_transferred) == (7, 0, len(data))
    assert packet.overlapped is ov and (ov.status, ov.information) == (0, len(data))
    assert bytes(received) == data
    assert port.get(0.05) is None  # exactly one
    assert pair.file.pending_requests == 0 and pair.file.stream_out == 0
    port.close()


def _drain(peer: socket.socket, into: bytearray, total: int) -> None:
    while len(into) < total:
        chunk = peer.recv(1 << 16)
        if not chunk:
            return
        into += chunk


# -- concurrency: exactly one completion per request, no loss, no duplicate ----------------------

THREADS = 4
PER_THREAD = 60
TOTAL = 20_000


def test_concurrent_receives_complete_once_each_and_lose_nothing(pairs: Any) -> None:
    pair = pairs.new()
    port = winaio.CompletionPort(0)
    pair.file.associate(port, "rx")
    payload = bytes(i % 251 for i in range(TOTAL))
    issued: list[tuple[winaio.Overlapped, bytearray]] = []
    issued_lock = threading.Lock()
    start = threading.Barrier(THREADS + 1)

    def receiver(seed: int) -> None:
        start.wait(LONG)
        for i in range(PER_THREAD):
            buf = bytearray(1 + (seed * 7 + i * 13) % 97)
            ov = winaio.Overlapped()
            with issued_lock:
                issued.append((ov, buf))
            pair.file.start_read(buf, ov)  # immediate or pending: one packet either way

    def sender() -> None:
        start.wait(LONG)
        for i in range(0, TOTAL, 500):
            pair.peer.sendall(payload[i : i + 500])

    threads = [winaio.start_thread(receiver, k) for k in range(THREADS)]
    feeder = threading.Thread(target=sender)
    feeder.start()
    for t in threads:
        assert winaio.wait(t, LONG).signaled  # they exit: port-bound requests survive (§8)
    feeder.join(LONG)
    pair.peer.shutdown(socket.SHUT_WR)  # what stays pending completes with 0 bytes
    got: dict[int, int] = {}
    for _ in range(THREADS * PER_THREAD):
        packet = port.get(LONG)
        assert packet is not None and packet.key == "rx" and packet.status == 0
        assert id(packet.overlapped) not in got, "two completions for one request"
        got[id(packet.overlapped)] = packet.bytes_transferred
    assert port.get(0.05) is None
    assert len(issued) == THREADS * PER_THREAD
    consumed = Counter[int]()
    for ov, buf in issued:
        assert got[id(ov)] == ov.information and ov.status == 0
        consumed.update(buf[: ov.information])
    rest = bytearray()
    while chunk := pair.file.sock.recv(1 << 16) if pair.file.sock is not None else b"":
        rest += chunk
    consumed.update(rest)
    assert sum(consumed.values()) == TOTAL and consumed == Counter(payload)
    assert pair.file.pending_requests == 0 and pair.file.stream_in == 0
    port.close()


def test_concurrent_sends_complete_once_each_and_lose_nothing(pairs: Any) -> None:
    pair = pairs.new()
    sock = pair.file.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)  # many sends pend in part
    port = winaio.CompletionPort(0)
    pair.file.associate(port, "tx")
    chunks = [bytes([k]) * (100 + 37 * i) for k in range(THREADS) for i in range(PER_THREAD)]
    total = sum(map(len, chunks))
    received = bytearray()
    drainer = threading.Thread(target=_drain, args=(pair.peer, received, total))
    drainer.start()

    def sender(k: int) -> None:
        for i in range(PER_THREAD):
            pair.file.start_write(chunks[k * PER_THREAD + i], winaio.Overlapped())

    threads = [winaio.start_thread(sender, k) for k in range(THREADS)]
    for t in threads:
        assert winaio.wait(t, LONG).signaled
    seen: set[int] = set()
    sent = 0
    for _ in range(THREADS * PER_THREAD):
        packet = port.get(LONG)
        assert packet is not None and packet.key == "tx" and packet.status == 0
        assert id(packet.overlapped) not in seen
        seen.add(id(packet.overlapped))
        sent += packet.bytes_transferred
    drainer.join(LONG)
    assert sent == total == len(received)
    assert Counter(received) == Counter(b"".join(chunks))
    assert port.get(0.05) is None
    port.close()


# -- peer reset racing with a pending receive -----------------------------------------------------


def test_a_reset_while_a_receive_pends_completes_it_once_with_the_reset(pairs: Any) -> None:
    pair = pairs.new()
    port = winaio.CompletionPort(1)
    pair.file.associate(port, 3)
    ov = winaio.Overlapped()
    assert pair.file.start_read(bytearray(8), ov) is False
    pair.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    pair.peer.close()
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    assert packet.status == int(NtStatus.STATUS_CONNECTION_RESET)
    assert packet.error == WinError.ERROR_NETNAME_DELETED
    assert port.get(0.05) is None
    with pytest.raises(winaio.IoError) as info:  # and it stays reset, at once, no packet
        pair.file.start_read(bytearray(8), winaio.Overlapped())
    assert info.value.winerror == WinError.ERROR_NETNAME_DELETED
    assert port.get(0) is None
    port.close()


# -- Win32 aliases and the thread-exit rule --------------------------------------------------------


def test_a_wsarecv_that_pended_on_a_bound_socket_reaches_gqcs_after_its_thread(
    pairs: Any,
) -> None:
    pair = pairs.new()
    handle = HANDLE_TABLE.insert(pair.file)
    port = w.CreateIoCompletionPort(handle, None, 0x51, 0)
    assert port
    ov = w.OVERLAPPED()
    buf = bytearray(8)
    results: list[tuple[int, int]] = []

    def issue() -> None:
        got, flags = w.Ref(0), w.Ref(0)
        results.append((w.WSARecv(handle, [buf], 1, got, flags, ov, None), w.WSAGetLastError()))

    thread = winaio.start_thread(issue)
    assert winaio.wait(thread, LONG).signaled
    assert results == [(w.SOCKET_ERROR, w.WSA_IO_PENDING)]
    pair.peer.sendall(b"later")
    n, key, got_ov = w.Ref(0), w.Ref(None), w.Ref(None)
    assert w.GetQueuedCompletionStatus(port, n, key, got_ov, 5000) is True
    assert (n.value, key.value, got_ov.value is ov) == (5, 0x51, True)
    assert (ov.Internal, ov.InternalHigh, bytes(buf[:5])) == (0, 5, b"later")
    assert w.GetQueuedCompletionStatus(port, n, key, got_ov, 50) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT
    w.CloseHandle(handle)
    w.CloseHandle(port)


def test_a_readfile_with_an_event_that_pended_dies_with_its_thread(pairs: Any) -> None:
    pair = pairs.new()
    handle = HANDLE_TABLE.insert(pair.file)
    event = w.CreateEvent(None, True, False, None)
    ov = w.OVERLAPPED()
    ov.hEvent = event
    results: list[tuple[bool, int]] = []

    def issue() -> None:
        n = w.Ref(0)
        results.append((w.ReadFile(handle, bytearray(8), 8, n, ov), w.GetLastError()))

    thread = winaio.start_thread(issue)
    assert winaio.wait(thread, LONG).signaled
    assert results == [(False, w.ERROR_IO_PENDING)]
    assert w.WaitForSingleObject(event, 5000) == w.WAIT_OBJECT_0
    n = w.Ref(0)
    assert w.GetOverlappedResult(handle, ov, n, False) is False
    assert w.GetLastError() == WinError.ERROR_OPERATION_ABORTED and n.value == 0
    pair.feed(b"kept")  # the aborted receive took nothing
    assert w.ReadFile(handle, bytearray(8), 8, n, ov) is True and n.value == 4
    w.CloseHandle(event)
    w.CloseHandle(handle)


# -- a send that pends in part is never split by a concurrent one ---------------------------------


def test_a_partial_send_is_not_split_by_a_send_from_another_thread(
    pairs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = pairs.new()
    sock = pair.file.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    first = b"A" * (1 << 20)
    second = b"B" * 1000
    real = _sock_after.submit_tried
    second_done = winaio.Event(manual_reset=True)
    second_ov = winaio.Overlapped(event=second_done)

    def second_send() -> None:
        pair.file.start_write(second, second_ov)
        # Not port-bound: a request that pends dies with its thread (spec §8), so stay.
        winaio.wait(second_done, LONG)

    threads: list[threading.Thread] = []

    def window(op: Any) -> None:
        # Another thread's WSASend lands between A's partial send() and A's registration: a
        # GIL switch there is all it takes. Run it in a real thread; it must wait for A's
        # registration (the socket's send claim), so give it a moment, then let A go on.
        if op.overlapped is not second_ov:
            t = threading.Thread(target=second_send)
            threads.append(t)
            t.start()
            t.join(0.2)
        real(op)

    monkeypatch.setattr(_sock_after, "submit_tried", window)  # (_send_rest's)
    first_ov = winaio.Overlapped()
    assert pair.file.start_write(first, first_ov) is False
    received = bytearray()
    _drain_thread = threading.Thread(
        target=_drain, args=(pair.peer, received, len(first) + len(second))
    )
    _drain_thread.start()
    _drain_thread.join(LONG)
    for t in threads:
        t.join(LONG)
        assert not t.is_alive(), "the second send never completed"
    assert second_ov.status == 0 and second_ov.information == len(second)
    assert len(received) == len(first) + len(second)
    # Either order is fine (the two calls overlapped); a split is not.
    at = received.find(second)
    assert at in (0, len(first)), f"the second send landed at offset {at} of the first"
    assert bytes(received) in (first + second, second + first)


def test_a_blocking_send_neither_splits_nor_overtakes_a_partial_send(
    pairs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Winsock's blocking send() on an overlapped socket (``run_sync``, as win32.send issues it)
    # from another thread in the same window: it waits for the send claim, then queues behind
    # the first send's pending remainder (#66) instead of sending at once.
    pair = pairs.new()
    sock = pair.file.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    first = b"A" * (1 << 20)
    second = b"B" * 1000
    real = _sock_after.submit_tried
    results: list[tuple[int, int]] = []
    threads: list[threading.Thread] = []

    def blocking_send() -> None:
        op = StreamWriteOp(pair.file, winaio.Overlapped(), (memoryview(second),), None, 0)
        results.append(run_sync(op, True))

    def window(op: Any) -> None:
        if not threads:
            t = threading.Thread(target=blocking_send)
            threads.append(t)
            t.start()
            t.join(0.2)  # it must wait for the claim (or, on a slow machine, not be there yet)
        real(op)

    monkeypatch.setattr(_sock_after, "submit_tried", window)  # (_send_rest's)
    assert pair.file.start_write(first, winaio.Overlapped()) is False
    received = bytearray()
    drain = threading.Thread(target=_drain, args=(pair.peer, received, len(first) + len(second)))
    drain.start()
    drain.join(LONG)
    threads[0].join(LONG)
    assert not threads[0].is_alive(), "the blocking send never returned"
    assert results == [(0, len(second))]
    assert bytes(received) == first + second, f"the blocking send landed at {received.find(second)}"


# -- more Win32 shapes through the fast path -------------------------------------------------------


def test_hevent_low_bit_suppresses_the_packet_of_immediate_and_pending_receives(
    pairs: Any,
) -> None:
    # spec: win32 #73 (hEvent | 1: no completion packet, the event is still set)
    pair = pairs.new()
    handle = HANDLE_TABLE.insert(pair.file)
    port = w.CreateIoCompletionPort(handle, None, 9, 0)
    event = w.CreateEvent(None, True, False, None)
    ov = w.OVERLAPPED()
    ov.hEvent = event | 1
    buf = bytearray(8)
    n, key, got_ov = w.Ref(0), w.Ref(None), w.Ref(None)
    pair.feed(b"now")
    assert w.ReadFile(handle, buf, 8, n, ov) is True and n.value == 3
    assert w.WaitForSingleObject(event, 0) == w.WAIT_OBJECT_0
    assert w.ResetEvent(event)
    assert w.ReadFile(handle, buf, 8, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    pair.peer.sendall(b"later")
    assert w.WaitForSingleObject(event, 5000) == w.WAIT_OBJECT_0
    assert w.GetOverlappedResult(handle, ov, n, False) is True and n.value == 5
    assert bytes(buf[:5]) == b"later"
    assert w.GetQueuedCompletionStatus(port, n, key, got_ov, 50) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT  # no packet for either
    for h in (event, handle, port):
        w.CloseHandle(h)


def test_get_overlapped_result_after_an_immediate_failure_is_io_incomplete(pairs: Any) -> None:
    # spec: win32 #53 (an immediate failure leaves Internal STATUS_PENDING and no notification)
    pair = pairs.new()
    handle = HANDLE_TABLE.insert(pair.file)
    pair.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    pair.peer.close()
    sock = pair.file.sock
    assert sock is not None
    wt.wait_until(lambda: _reset_seen(sock), LONG, "the reset arrived")
    event = w.CreateEvent(None, True, True, None)
    ov = w.OVERLAPPED()
    ov.hEvent = event
    n = w.Ref(7)
    got, flags = w.Ref(0), w.Ref(0)
    assert w.WSARecv(handle, [bytearray(8)], 1, got, flags, ov, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAECONNRESET
    assert ov.Internal == STATUS_PENDING
    assert w.WaitForSingleObject(event, 0) == w.WAIT_TIMEOUT  # reset at issue, never set
    assert w.GetOverlappedResult(handle, ov, n, False) is False
    assert w.GetLastError() == WinError.ERROR_IO_INCOMPLETE
    w.CloseHandle(event)
    w.CloseHandle(handle)


def _reset_seen(sock: socket.socket) -> bool:
    # Readable (the RST), without reading: a recv here would consume the pending error.
    return bool(select.select([sock], [], [], 0)[0])


def test_a_data_receive_behind_a_pending_zero_byte_receive(pairs: Any) -> None:
    # spec: win32 #66 (the zero-byte receive pends first; the data receive may not finish
    # before it: both complete, in issue order, the zero-byte one taking nothing)
    pair = pairs.new()
    port = winaio.CompletionPort(1)
    pair.file.associate(port, "z")
    zero, data = winaio.Overlapped(), winaio.Overlapped()
    assert pair.file.start_read(bytearray(0), zero, size=0) is False
    buf = bytearray(16)
    assert pair.file.start_read(buf, data) is False
    assert pair.file.stream_in == 2
    pair.peer.sendall(b"hello")
    first, second = port.get(LONG), port.get(LONG)
    assert first is not None and second is not None
    assert (first.overlapped is zero, first.status, first.bytes_transferred) == (True, 0, 0)
    assert (second.overlapped is data, second.status, second.bytes_transferred) == (True, 0, 5)
    assert bytes(buf[:5]) == b"hello" and port.get(0.05) is None
    port.close()
