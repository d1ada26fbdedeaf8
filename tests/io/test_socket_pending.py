"""The pended socket receive on io_uring (issue 9, sockets): the mechanism, pinned without
timing anything.

- a receive that would block is one RECV in the kernel, submitted in the io_uring_enter its
  port thread then sleeps in (one syscall per pended receive at QD1), and re-arms issued by a
  port thread that owns the ring share one enter (C=64: a batch of re-arms, one enter);
- the pended receive is one backend call: a socket receive with no line yet becomes its line's
  head and a RECV in one hold of the backend's lock (``IoUringBackend.submit``), the RECV with
  IORING_RECVSEND_POLL_FIRST where the kernel takes it (5.19+); anything unusual (a full SQ
  ring, a line already there) takes the general path, and a cancel that came before the
  request reached the backend completes it cancelled;
- a socket whose last receive would have blocked asks ``poll(0)`` before trying the next one
  (no BlockingIOError when there is still nothing); data, the end of the stream or a reset
  found that way are what the attempt would have found, inside the call;
- a RECV that brings data to the only request of its line completes it in one pass
  (``StreamLines.service``' fast path) and the line goes with it; requests queued behind a
  head still complete in issue order with their own data (#66), and a cancelled head whose
  RECV already took data keeps it (the kernel consumed the bytes).
"""

from __future__ import annotations

import os
import select
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring.abi import SubmissionQueueFull
from winaio._backends.uring.abi.consts import RecvSendFlags
from winaio._backends.uring.probe import recv_poll_first
from winaio._backends.uring.reaper import Reaper
from winaio._backends.uring.ring import BackendRing
from winaio._backends.uring.streams import StreamLines
from winaio._io._cancel import cancel_io_ex
from winaio._io._files import request_cancel
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import _ASK_EVERY, _ASK_RUN, Socket
from winaio._io._stream_ops import StreamReadOp
from winaio.codes import NtStatus, WinError
from winaio.errors import IoError, Win32Error
from winaio.testing import wait_until

OK, REASON = uring.probe_backend()
pytestmark = [
    pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}"),
    # the pended receive in C (``_fastpend.c``) and in Python, in turn
    pytest.mark.usefixtures("fast_path_impl", "slot_impl"),  # (and on the receive slots)
]

SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
ERROR_NOT_FOUND = int(WinError.ERROR_NOT_FOUND)
LONG = 5.0


@pytest.fixture
def backend(armed_uring: uring.IoUringBackend) -> uring.IoUringBackend:
    return armed_uring


def _pairs(
    b: uring.IoUringBackend, port: CompletionPort, count: int
) -> list[tuple[Socket, socket.socket]]:
    """``count`` connections: (winaio socket on ``b``, bound to ``port`` in skip mode; peer)."""
    out = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        for i in range(count):
            peer = socket.create_connection(listener.getsockname())
            conn, _ = listener.accept()
            conn.setblocking(False)
            f = Socket(conn.fileno(), overlapped=True, sock=conn, backend=b)
            f.associate(port, i)
            f.set_completion_modes(True, True)
            out.append((f, peer))
    return out


def _close(pairs: list[tuple[Socket, socket.socket]], port: CompletionPort) -> None:
    for f, peer in pairs:
        f.close()
        peer.close()
    port.close()


Pair = tuple[Socket, socket.socket, CompletionPort]


@pytest.fixture
def pair(backend: uring.IoUringBackend) -> Iterator[Pair]:
    """One connection of :func:`_pairs` and its port: (winaio socket, peer, port), closed after
    the test."""
    port = CompletionPort()
    pairs = _pairs(backend, port, 1)
    ((f, peer),) = pairs
    yield f, peer, port
    _close(pairs, port)


def test_a_qd1_receive_loop_costs_one_enter_per_pended_receive(
    backend: uring.IoUringBackend, kit: Any, monkeypatch: pytest.MonkeyPatch, pair: Pair
) -> None:
    f, peer, port = pair
    buf = bytearray(256)
    parked = kit.park(backend, monkeypatch)  # nothing but this thread submits or reaps
    try:
        enters, waits = backend._enters, backend._lead.waits
        total = 200
        for i in range(total):
            ov = Overlapped()
            assert f.start_read(buf, ov) is False  # nothing there yet: pends
            peer.send(bytes([i % 256]) * 64)
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            assert (packet.status, packet.bytes_transferred) == (SUCCESS, 64)
            assert buf[:64] == bytes([i % 256]) * 64
            assert not backend._streams.lines  # its line ended with it (the fast path)
        # The first RECV went out at once (this thread did not own the ring yet); every later
        # one in the enter this thread then slept in.
        assert backend._enters - enters <= total + 1
        assert backend._lead.waits - waits >= total - 1
        assert backend._ring_thread.rounds == parked.rounds  # the ring thread never ran
        assert f.pending_requests == 0
    finally:
        parked.release()


def test_rearms_issued_by_the_ring_owner_share_one_enter(
    backend: uring.IoUringBackend, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = CompletionPort()
    count = 64
    pairs = _pairs(backend, port, count)
    bufs = [bytearray(128) for _ in range(count)]
    parked = kit.park(backend, monkeypatch)
    try:
        # One round to make this thread the ring's owner (it waits on the ring once).
        f0, peer0 = pairs[0]
        assert f0.start_read(bufs[0], Overlapped()) is False
        peer0.send(b"x")
        assert port.get(LONG) is not None
        for rnd in range(3):
            enters = backend._enters
            ovs = [Overlapped() for _ in range(count)]
            for (f, _), buf, ov in zip(pairs, bufs, ovs, strict=True):
                assert f.start_read(buf, ov) is False
            assert backend._enters == enters  # deferred: nothing submitted yet
            for i, (_, peer) in enumerate(pairs):
                peer.send(bytes([rnd, i]))
            got = []
            while len(got) < count:
                code, packets = port.get_many(count, LONG)
                assert code == 0 and packets
                got += packets
            # The 64 RECVs went out together (in the waiting enter, or one flush).
            assert backend._enters - enters <= 2
            assert sorted(p.key for p in got) == list(range(count))
            for p in got:
                assert (p.status, p.bytes_transferred) == (SUCCESS, 2)
                assert bufs[p.key][:2] == bytes([rnd, p.key])
        assert not backend._streams.lines
        assert backend._ring_thread.rounds == parked.rounds
    finally:
        parked.release()
        _close(pairs, port)


def test_receives_queued_behind_a_head_complete_in_order_with_their_own_data(
    backend: uring.IoUringBackend,
    pair: Pair,
) -> None:
    f, peer, port = pair
    bufs = [bytearray(4) for _ in range(3)]
    ovs = [Overlapped() for _ in range(3)]
    for buf, ov in zip(bufs, ovs, strict=True):
        assert f.start_read(buf, ov) is False  # the 2nd and 3rd queue behind the head
    peer.send(b"aaaabbbbcccc")
    got = [port.get(LONG) for _ in range(3)]
    assert [p.overlapped for p in got if p is not None] == ovs  # issue order (#66)
    assert [bytes(b) for b in bufs] == [b"aaaa", b"bbbb", b"cccc"]
    assert all(p is not None and p.bytes_transferred == 4 for p in got)
    wait_until(lambda: not backend._streams.lines, LONG, "the line ends")
    assert f.pending_requests == 0


def test_a_pended_receive_completes_once_whether_cancel_or_data_wins(
    backend: uring.IoUringBackend,
    pair: Pair,
) -> None:
    f, peer, port = pair
    for _ in range(50):
        buf = bytearray(64)
        ov = Overlapped()
        assert f.start_read(buf, ov) is False
        peer.send(b"z" * 8)
        try:
            cancel_io_ex(f, ov)
        except Win32Error as exc:  # the RECV completed first: nothing left to cancel
            assert exc.winerror == ERROR_NOT_FOUND
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov
        if packet.status == SUCCESS:  # the RECV took the bytes first: they are delivered
            assert packet.bytes_transferred == 8 and buf[:8] == b"z" * 8
        else:  # cancelled before: the bytes stay in the socket for the next receive
            assert (packet.status, packet.bytes_transferred) == (CANCELLED, 0)
            # Inside the call, or (a socket past a run of pended receives pends without
            # asking first) through the port.
            if not f.start_read(buf, ov):
                again = port.get(LONG)
                assert again is not None and again.overlapped is ov
            assert ov.information == 8 and buf[:8] == b"z" * 8
        assert port.get(0) is None  # exactly one completion
    assert not backend._streams.lines


def test_the_pended_receive_request_is_complete(backend: uring.IoUringBackend, pair: Pair) -> None:
    f, peer, port = pair
    buf = bytearray(32)
    ov = Overlapped()
    assert f.start_read(buf, ov) is False
    # Built by ``IoUringBackend.pend_receive`` slot by slot; on a receive slot, by its
    # demotion (``_ops.new_stream_read``), which ``pending_ops()`` makes.
    (op,) = f.pending_ops()
    assert type(op) is StreamReadOp
    slots = {name for cls in type(op).__mro__ for name in getattr(cls, "__slots__", ())}
    missing = [name for name in slots - {"__weakref__"} if not hasattr(op, name)]
    assert missing == []  # a slot added to Operation/StreamReadOp must be set there too
    assert (op.nbytes, op.flags, op.routine, op.file, op.overlapped) == (32, 0, None, f, ov)
    assert op.registered and op.submitted and not op.done
    peer.send(b"abc")
    packet = port.get(LONG)
    assert packet is not None and packet.bytes_transferred == 3 and buf[:3] == b"abc"


def _kernel_at_least(major: int, minor: int) -> bool:
    release = os.uname().release.split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


def test_poll_first_is_probed() -> None:
    flag = int(RecvSendFlags.IORING_RECVSEND_POLL_FIRST)
    assert recv_poll_first() in (0, flag)
    if _kernel_at_least(5, 19):
        assert recv_poll_first() == flag


@pytest.mark.parametrize("poll_first", [True, False])
def test_a_pended_receive_is_one_backend_call(
    backend: uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch, poll_first: bool, pair: Pair
) -> None:
    if not poll_first:
        backend._receives._recv_ioprio = 0  # what a kernel before 5.19 gets
    flags: list[int] = []
    real_prep = BackendRing.prep_recv

    def prep_recv(ring: BackendRing, *args: int) -> None:
        flags.append(args[-1])
        real_prep(ring, *args)

    def general_path(*args: object) -> None:
        raise AssertionError("the general path ran")

    monkeypatch.setattr(BackendRing, "prep_recv", prep_recv)
    monkeypatch.setattr(StreamLines, "enqueue_locked", general_path)
    f, peer, port = pair
    buf = bytearray(128)
    for i in range(50):
        ov = Overlapped()
        assert f.start_read(buf, ov) is False
        peer.send(bytes([i]) * 100)
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov
        assert (packet.status, packet.bytes_transferred) == (SUCCESS, 100)
        assert buf[:100] == bytes([i]) * 100
    assert flags == [backend._receives._recv_ioprio] * 50
    assert backend._receives._recv_ioprio == (recv_poll_first() if poll_first else 0)
    assert not backend._streams.lines and f.pending_requests == 0


def test_a_full_sq_ring_sends_the_pended_receive_the_general_way(
    backend: uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch, pair: Pair
) -> None:
    real_prep = BackendRing.prep_recv
    refused: list[int] = []

    def prep_recv(ring: BackendRing, *args: int) -> None:
        if not refused:
            refused.append(args[0])
            raise SubmissionQueueFull("full")
        real_prep(ring, *args)

    monkeypatch.setattr(BackendRing, "prep_recv", prep_recv)
    f, peer, port = pair
    buf = bytearray(16)
    ov = Overlapped()
    assert f.start_read(buf, ov) is False
    assert refused == [f.fd]  # the one-hold path was refused; the general path took it
    peer.send(b"general")
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    assert (packet.status, packet.bytes_transferred) == (SUCCESS, 7) and buf[:7] == b"general"
    assert port.get(0) is None


class _CancelFirst:
    """The backend's lock, except that its first acquire while ``file`` has a registered
    request cancels that request first (as another thread's CancelIoEx would, just before)."""

    def __init__(self, real: Any, file: Socket, cancels: list[StreamReadOp]) -> None:
        self.real = real
        self.file = file
        self.cancels = cancels

    def acquire(self, *args: Any) -> bool:
        if not self.cancels and self.file._pending:
            (op,) = self.file._pending
            self.cancels.append(op)  # first: request_cancel takes this lock again
            assert request_cancel(op)
        return bool(self.real.acquire(*args))

    def release(self) -> None:
        self.real.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.mark.parametrize(
    "slot_impl", ["off"], indirect=True
)  # (the request path: test_slot_machine)
def test_a_receive_cancelled_before_it_reaches_the_backend_completes_cancelled(
    backend: uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch, pair: Pair
) -> None:
    f, peer, port = pair
    # CancelIoEx from another thread between the registration (under LOCK) and the backend's
    # lock (``Receives.pend_receive``, the backend's receive side): the request has no token
    # yet, so the backend's cancel() cannot find it. Forced by the receive side's view of the
    # backend's lock, whose first acquire after the registration runs the cancel first.
    cancels: list[StreamReadOp] = []
    receives = backend._receives
    monkeypatch.setattr(receives, "_lock", _CancelFirst(receives._lock, f, cancels))
    buf = bytearray(16)
    ov = Overlapped()
    assert f.start_read(buf, ov) is False
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    assert (packet.status, packet.bytes_transferred) == (CANCELLED, 0)
    assert len(cancels) == 1 and cancels[0].overlapped is ov  # the window was forced
    assert port.get(0) is None and f.pending_requests == 0
    assert not backend._streams.lines
    monkeypatch.undo()
    peer.send(b"kept")  # nothing took it: the next receive gets it
    ov2 = Overlapped()
    if not f.start_read(buf, ov2):
        assert port.get(LONG) is not None
    assert ov2.information == 4 and buf[:4] == b"kept"


class _CountingSocket(socket.socket):
    """A socket that counts its ``recv_into`` calls (the fast path's attempts)."""

    attempts = 0

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self.attempts += 1
        return super().recv_into(*args, **kwargs)


def _counting_pair(
    b: uring.IoUringBackend, port: CompletionPort
) -> tuple[Socket, _CountingSocket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
    sock = _CountingSocket(fileno=conn.detach())
    sock.setblocking(False)
    f = Socket(sock.fileno(), overlapped=True, sock=sock, backend=b)
    f.associate(port, 0)
    f.set_completion_modes(True, True)
    return f, sock, peer


def _readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], LONG)[0], "the data did not arrive"


def test_a_socket_that_waits_is_polled_before_it_is_tried(backend: uring.IoUringBackend) -> None:
    port = CompletionPort()
    f, sock, peer = _counting_pair(backend, port)
    try:
        buf = bytearray(64)
        assert f.start_read(buf, Overlapped()) is False  # tried: would block
        assert sock.attempts == 1 and f._recv_ready is not None
        peer.send(b"a")
        assert port.get(LONG) is not None
        for i in range(20):  # nothing there: pends without an attempt
            ov = Overlapped()
            assert f.start_read(buf, ov) is False
            peer.send(bytes([i]))
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov and buf[:1] == bytes([i])
        assert sock.attempts == 1
        # Data there before the call: the poll says so, the receive finishes inside the call
        # (a socket past a run of pended receives asks one receive in _ASK_EVERY + 1: the
        # next one that asks is the 32nd since the first miss).
        while f._recv_misses & _ASK_EVERY:
            ov = Overlapped()
            assert f.start_read(buf, ov) is False
            peer.send(b"-")
            assert port.get(LONG) is not None
        peer.send(b"now")
        _readable(sock)
        ov = Overlapped()
        assert f.start_read(buf, ov) is True
        assert (ov.information, bytes(buf[:3])) == (3, b"now") and port.get(0) is None
        assert sock.attempts == 2 and f._recv_ready is None  # tries first again
        assert f.start_read(buf, Overlapped()) is False  # tried, would block: polls again
        assert sock.attempts == 3 and f._recv_ready is not None
        peer.send(b"z")
        assert port.get(LONG) is not None
    finally:
        f.close()
        peer.close()
        port.close()


@pytest.mark.parametrize("ending", ["close", "reset"])
def test_a_polled_socket_reports_the_end_of_its_stream_inside_the_call(
    backend: uring.IoUringBackend, ending: str
) -> None:
    port = CompletionPort()
    f, sock, peer = _counting_pair(backend, port)
    try:
        buf = bytearray(64)
        assert f.start_read(buf, Overlapped()) is False
        peer.send(b"a")
        assert port.get(LONG) is not None
        assert f._recv_ready is not None  # the next receive polls first
        if ending == "reset":
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        _readable(sock)
        ov = Overlapped()
        if ending == "close":  # a graceful close: 0 bytes, success, inside the call
            assert f.start_read(buf, ov) is True and ov.information == 0
        else:  # WSAECONNRESET at once, no notification
            with pytest.raises(IoError) as info:
                f.start_read(buf, ov)
            assert info.value.winerror == WinError.ERROR_NETNAME_DELETED
        assert port.get(0) is None and sock.attempts == 2
    finally:
        f.close()
        port.close()


def test_a_socket_past_a_run_of_pended_receives_stops_asking(
    backend: uring.IoUringBackend,
) -> None:
    # After _ASK_RUN receives in a row that pended, a receive pends without poll(0) (nor an
    # attempt), one in _ASK_EVERY + 1 asking again; data there at such a receive is still
    # received, through the port, and a receive that asks and finds data goes back to trying.
    port = CompletionPort()
    f, sock, peer = _counting_pair(backend, port)
    asked = 0
    try:
        buf = bytearray(64)
        assert f.start_read(buf, Overlapped()) is False  # tried: would block
        poll = f._recv_ready
        assert poll is not None

        def counting_poll(timeout: int) -> list[tuple[int, int]]:
            nonlocal asked
            asked += 1
            assert poll is not None
            return poll(timeout)

        f._recv_ready = counting_poll
        peer.send(b"a")
        assert port.get(LONG) is not None
        for i in range(2 * (_ASK_EVERY + 1)):
            ov = Overlapped()
            assert f.start_read(buf, ov) is False
            peer.send(bytes([i]))
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov and buf[:1] == bytes([i])
        # 1 miss from the attempt, then asks at misses 1.._ASK_RUN - 1 and at each multiple of
        # _ASK_EVERY + 1 (16 and 32) below 1 + 2 * (_ASK_EVERY + 1).
        assert asked == (_ASK_RUN - 1) + 2 and sock.attempts == 1
        # Data there before a receive that does not ask: it pends, and its completion brings
        # the data (the RECV finds it at once).
        assert f._recv_misses & _ASK_EVERY
        peer.send(b"there")
        _readable(sock)
        ov = Overlapped()
        assert f.start_read(buf, ov) is False
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov
        assert (packet.status, packet.bytes_transferred, bytes(buf[:5])) == (SUCCESS, 5, b"there")
        # The next receive that asks finds data: inside the call, and tries first again.
        while f._recv_misses & _ASK_EVERY:
            ov = Overlapped()
            assert f.start_read(buf, ov) is False
            peer.send(b"-")
            assert port.get(LONG) is not None
        peer.send(b"now")
        _readable(sock)
        ov = Overlapped()
        assert f.start_read(buf, ov) is True and bytes(buf[:3]) == b"now"
        assert f._recv_ready is None and f._recv_misses == 0 and sock.attempts == 2
        assert f.pending_requests == 0 and not backend._streams.lines
    finally:
        f.close()
        peer.close()
        port.close()


@pytest.mark.parametrize("slot_impl", ["off"], indirect=True)  # (the request path)
def test_a_reap_of_many_receives_completes_them_in_one_pass(
    backend: uring.IoUringBackend, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Eight pended receives whose RECVs all brought data, reaped together: the plain heads
    # complete in one hold of the lock (``StreamLines.service_direct``), without the
    # per-CQE ``service``; a head with a request queued behind it goes through ``service``
    # (the queued one then polls); each gets its own data, the lines end and are reused.
    port = CompletionPort()
    pairs = _pairs(backend, port, 9)
    parked = kit.park(backend, monkeypatch)  # nothing but this thread reaps
    per_cqe: list[int] = []
    real_service = StreamLines.service
    batches: list[int] = []
    real_direct = StreamLines.service_direct

    def counting_service(self: StreamLines, line: Any, res: int, finished: Any) -> int:
        per_cqe.append(res)
        return real_service(self, line, res, finished)

    def counting_direct(self: StreamLines, heads: Any, finished: Any) -> int:
        batches.append(len(heads))
        return real_direct(self, heads, finished)

    monkeypatch.setattr(StreamLines, "service", counting_service)
    monkeypatch.setattr(StreamLines, "service_direct", counting_direct)
    try:
        bufs = [bytearray(64) for _ in pairs]
        ovs = [Overlapped() for _ in pairs]
        for (f, _), buf, ov in zip(pairs, bufs, ovs, strict=True):
            assert f.start_read(buf, ov) is False
        queued_buf, queued_ov = bytearray(64), Overlapped()
        last = pairs[-1][0]
        assert last.start_read(queued_buf, queued_ov) is False  # behind the head
        for i, (_, peer) in enumerate(pairs):
            peer.send(bytes([65 + i]) * 8)
        ring = backend._ring
        wait_until(lambda: ring.cq_ready() >= len(pairs), LONG, "every RECV completed")
        assert backend._reaper.reap() == len(pairs)
        assert batches == [len(pairs)]  # one pass for the batch...
        assert len(per_cqe) == 1  # ... but the line with a request behind its head
        got = {p.overlapped: p for p in _packets(port, len(pairs))}
        for i, (buf, ov) in enumerate(zip(bufs, ovs, strict=True)):
            assert (got[ov].status, got[ov].bytes_transferred) == (SUCCESS, 8)
            assert bytes(buf[:8]) == bytes([65 + i]) * 8
        assert [f.pending_requests for f, _ in pairs] == [0] * 8 + [1]
        assert list(backend._streams.lines) == [2 * last.fd]  # the queued one's line
        assert len(backend._streams._spare) >= 8  # the ended lines, kept for reuse
        pairs[-1][1].send(b"q")
        parked.release()
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is queued_ov and queued_buf[:1] == b"q"
    finally:
        parked.release()
        _close(pairs, port)


def _packets(port: CompletionPort, n: int) -> list[Any]:
    got: list[Any] = []
    while len(got) < n:
        _, batch = port.get_many(n - len(got), LONG)
        assert batch, f"only {len(got)} of {n} packets"
        got += batch
    return got


@pytest.mark.parametrize("slot_impl", ["off"], indirect=True)  # (the request path)
def test_a_qd1_receive_is_delivered_without_the_batch_path(
    backend: uring.IoUringBackend, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One CQE, a direct head's RECV with data: ``Reaper.reap``'s QD1 path completes it (its
    # line through ``service``, the packet through ``deliver``), not ``Reaper.process``.
    port = CompletionPort()
    pairs = _pairs(backend, port, 1)
    ((f, peer),) = pairs
    parked = kit.park(backend, monkeypatch)

    real_process = Reaper.process

    def no_batch(self: Reaper, *args: Any) -> None:
        if self is backend._reaper:  # (this backend's only, as before the move)
            raise AssertionError("the batch path ran for one CQE")
        real_process(self, *args)

    try:
        monkeypatch.setattr(Reaper, "process", no_batch)
        buf = bytearray(64)
        for i in range(20):
            ov = Overlapped()
            assert f.start_read(buf, ov) is False
            peer.send(bytes([i]) * 5)
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            assert (packet.status, packet.bytes_transferred, bytes(buf[:5])) == (
                SUCCESS,
                5,
                bytes([i]) * 5,
            )
        assert f.pending_requests == 0 and not backend._streams.lines
        assert backend._ring_thread.rounds == parked.rounds
    finally:
        parked.release()
        _close(pairs, port)
