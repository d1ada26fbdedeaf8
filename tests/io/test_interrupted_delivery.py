"""io_uring: an exception (Ctrl-C: a signal handler's KeyboardInterrupt) raised while a ring
leader delivers what it reaped does not lose a completion.

The CQEs a leader reaps are out of the CQ ring and out of the backend's table: if an exception
cut their delivery short, nobody else would ever complete them - the request stayed pending for
ever, and its file's close() never released the descriptor. The exception still propagates
(out of the interrupted GetQueuedCompletionStatus), after ``ReaperCuts.deliver_rest``:

- an interrupt between two deliveries, or in the funnel before it took the request: every
  request of the batch is delivered, in full (its packet reaches the port);
- an interrupt inside the funnel once it took the request (``op.done``): that request is not
  delivered twice (exactly once); its IOSB is written and its file forgets it (close() releases
  the descriptor); the other requests of the batch are delivered in full.

Pinned on the one-CQE fast path (an O_DIRECT read, a socket's pended RECV head) and on a batch
of several O_DIRECT reads reaped together. The ring thread is parked, so the test's own wait is
the one that reaps. The interrupt is raised from a patched delivery step, where a signal
handler would raise it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from winaio._backends import uring
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.backlog import Backlog
from winaio._backends.uring.common import UD_POKE, InFlight
from winaio._backends.uring.streams import StreamLines
from winaio._io._disk import DiskFile
from winaio._io._files import FileObject
from winaio._io._issue import start
from winaio._io._ops import FileReadOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._io._stream_ops import StreamReadOp, StreamWriteOp
from winaio.codes import NtStatus
from winaio.testing import wait_until

OK, REASON = uring.probe_backend()
pytestmark = [
    pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}"),
    # the leader's wait chain in C (``_fastring.c``) and in Python, in turn
    pytest.mark.usefixtures("fast_path_impl"),
]

SUCCESS = int(NtStatus.STATUS_SUCCESS)
BLOCK = 4096
LONG = 5.0


@pytest.fixture
def disk(armed_uring: uring.IoUringBackend, tmp_path: Path) -> Iterator[DiskFile]:
    """A 64 KiB O_DIRECT DiskFile on the backend (closed after the test if still open)."""
    path = tmp_path / "disk"
    path.write_bytes(os.urandom(16 * BLOCK))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
    except OSError as exc:
        pytest.skip(f"no O_DIRECT here: {exc}")
    f = DiskFile(fd, overlapped=True, direct=True, seekable=True, backend=armed_uring)
    yield f
    f.close()


def _released(f: DiskFile, path: Path, kit: Any) -> bool:
    return f.fd == -1 and str(path) not in kit.fds().values()


def test_an_interrupt_in_the_one_cqe_delivery_still_completes_the_read(
    armed_uring: uring.IoUringBackend,
    disk: DiskFile,
    aligned: Callable[[int], memoryview],
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    """The reviewer's reproducer: ``deliver`` (the one-CQE fast path) raises once."""
    b = armed_uring
    port = parked_port(b)  # nothing but this thread reaps
    disk.associate(port, "disk")
    view = aligned(BLOCK)
    ov = Overlapped(2 * BLOCK)
    assert disk.start_read(view, ov) is False
    wait_until(lambda: b._ring.cq_ready() == 1, LONG, "the read completes")
    hits = interrupt_once(reaper_mod, "deliver")
    with pytest.raises(kit.Interrupted):
        port.get(None)
    assert [information for _, _, information in hits] == [BLOCK]  # the fast path took it
    assert not ov.pending  # delivered before the exception left the reaper
    packet = port.get(LONG)
    assert packet is not None and (packet.key, packet.status) == ("disk", SUCCESS)
    assert packet.bytes_transferred == BLOCK and packet.overlapped is ov
    assert view.tobytes() == (tmp_path / "disk").read_bytes()[2 * BLOCK : 3 * BLOCK]
    assert port.get(0) is None  # once
    assert disk.pending_requests == 0
    disk.close()
    assert _released(disk, tmp_path / "disk", kit)


def _reads_in_one_batch(
    b: uring.IoUringBackend, disk: DiskFile, aligned: Callable[[int], memoryview], n: int
) -> list[tuple[Overlapped, memoryview]]:
    reads = []
    for i in range(n):
        view = aligned(BLOCK)
        ov = Overlapped(i * BLOCK)
        assert disk.start_read(view, ov) is False
        reads.append((ov, view))
    wait_until(lambda: b._ring.cq_ready() == n, LONG, "the reads complete")
    return reads


def _assert_read(
    port: CompletionPort, reads: list[tuple[Overlapped, memoryview]], path: Path
) -> list[Any]:
    """One packet comes for each of ``reads`` (and for nothing else, unless the caller takes
    them: the ones returned), a success with its block's bytes."""
    assert not any(ov.pending for ov, _ in reads)
    by_ov = {id(ov): view for ov, view in reads}
    data = path.read_bytes()
    others = []
    while by_ov:
        p = port.get(LONG)
        assert p is not None
        view = by_ov.pop(id(p.overlapped), None)
        if view is None:
            others.append(p)
            continue
        offset = p.overlapped.offset
        assert p.status == SUCCESS and view.tobytes() == data[offset : offset + BLOCK]
    return others


def test_an_interrupt_between_deliveries_of_a_batch_delivers_the_rest(
    armed_uring: uring.IoUringBackend,
    disk: DiskFile,
    aligned: Callable[[int], memoryview],
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The first completion of a reaped batch is delivered, then the interrupt lands: the
    others are delivered before it propagates, each once."""
    b = armed_uring
    port = parked_port(b)
    disk.associate(port, "disk")
    real = reaper_mod.deliver_batch
    sizes: list[int] = []

    def first_then_interrupted(batch: list[Any]) -> list[BaseException]:
        sizes.append(len(batch))
        monkeypatch.setattr(reaper_mod, "deliver_batch", real)  # once
        real(batch[:1])
        raise kit.Interrupted

    reads = _reads_in_one_batch(b, disk, aligned, 4)
    monkeypatch.setattr(reaper_mod, "deliver_batch", first_then_interrupted)
    with pytest.raises(kit.Interrupted):
        port.get(None)
    assert sizes == [4]  # one batch
    assert _assert_read(port, reads, tmp_path / "disk") == []
    assert port.get(0) is None
    disk.close()
    assert _released(disk, tmp_path / "disk", kit)


def test_an_interrupt_inside_the_first_delivery_of_a_batch_completes_it_once(
    armed_uring: uring.IoUringBackend,
    disk: DiskFile,
    aligned: Callable[[int], memoryview],
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The interrupt lands inside the funnel, as the first request's packet is posted: that
    request is not delivered twice (its IOSB is written, its file forgets it), the others
    are delivered in full, and close() releases the descriptor."""
    b = armed_uring
    port = parked_port(b)
    disk.associate(port, "disk")
    real_post = CompletionPort._post_locked
    posted: list[Any] = []

    def post_interrupted(self: CompletionPort, key: Any, ov: Any, *rest: Any) -> None:
        posted.append(ov)
        if len(posted) == 1:
            raise kit.Interrupted  # where a signal handler may raise: the call's entry
        real_post(self, key, ov, *rest)

    reads = _reads_in_one_batch(b, disk, aligned, 4)
    monkeypatch.setattr(CompletionPort, "_post_locked", post_interrupted)
    with pytest.raises(kit.Interrupted):
        port.get(None)
    monkeypatch.setattr(CompletionPort, "_post_locked", real_post)
    assert len(posted) == 4  # once each: the cut one is not posted again
    first = posted[0]
    assert first.status == SUCCESS and first.information == BLOCK
    assert (
        _assert_read(port, [(ov, v) for ov, v in reads if ov is not first], tmp_path / "disk") == []
    )
    assert port.get(0) is None
    assert disk.pending_requests == 0
    disk.close()
    assert _released(disk, tmp_path / "disk", kit)


@pytest.mark.usefixtures("slots_off")  # (the request path: receive slots off)
def test_an_interrupt_delivering_a_sockets_recv_head_still_completes_it(
    armed_uring: uring.IoUringBackend,
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
    socket_pair: Any,
) -> None:
    """A pended receive (a STREAM line's head, its own RECV in the kernel) on the one-CQE
    fast path: its delivery interrupted, it still completes to the port, once."""
    b = armed_uring
    port = parked_port(b)
    made = _pended_receives(b, socket_pair, port, 1)
    hits = interrupt_once(reaper_mod, "deliver")
    with pytest.raises(kit.Interrupted):
        port.get(None)
    assert [information for _, _, information in hits] == [5]
    _assert_received(port, made)


# ---------------------------------------------------------------- before delivery: the mapping
# An interrupt raised while the reaper maps what it reaped (``Reaper.process``, and
# the one-CQE path's STREAM branch), after a request left the table and before it was queued
# for delivery, or while the STREAM heads it collected wait for their line's service.


def test_an_interrupt_mapping_a_batch_still_completes_every_request(
    armed_uring: uring.IoUringBackend,
    disk: DiskFile,
    aligned: Callable[[int], memoryview],
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    """A batch of three reads, one at the end of file (its CQE is mapped by ``from_cqe``):
    the interrupt lands as that CQE is mapped, out of the table, not queued. Every request of
    the batch is still completed, once, before the interrupt propagates."""
    b = armed_uring
    port = parked_port(b)
    disk.associate(port, "disk")
    reads = []
    for offset in (0, 16 * BLOCK, BLOCK):  # the file is 16 blocks: the second reads 0
        view = aligned(BLOCK)
        ov = Overlapped(offset)
        assert disk.start_read(view, ov) is False
        reads.append((ov, view))
    wait_until(lambda: b._ring.cq_ready() == 3, LONG, "the reads complete")
    mapped = interrupt_once(FileReadOp, "from_cqe")
    with pytest.raises(kit.Interrupted):
        port.get(None)
    assert [res for _, res in mapped] == [0]
    eof = reads.pop(1)[0]
    at_eof = _assert_read(port, reads, tmp_path / "disk")
    if not at_eof:
        at_eof = [port.get(LONG)]
    assert len(at_eof) == 1 and at_eof[0] is not None and at_eof[0].overlapped is eof
    assert at_eof[0].status != SUCCESS and at_eof[0].bytes_transferred == 0  # EOF
    assert port.get(0) is None
    assert disk.pending_requests == 0
    disk.close()
    assert _released(disk, tmp_path / "disk", kit)


def _pended_receives(
    b: uring.IoUringBackend, socket_pair: Any, port: CompletionPort, n: int
) -> list[tuple[Any, Any, bytearray, Overlapped]]:
    """``n`` sockets, each with a pended receive (its RECV in the kernel) whose data came."""
    made = []
    for i in range(n):
        s, peer = socket_pair(b)
        s.associate(port, i)
        buf = bytearray(8)
        ov = Overlapped(0)
        assert s.start_read(buf, ov) is False
        made.append((s, peer, buf, ov))
    wait_until(lambda: len(b._table) == n, LONG, "the RECVs are in the kernel")
    for i, (_, peer, _, _) in enumerate(made):
        peer.sendall(b"data%d" % i)
    wait_until(lambda: b._ring.cq_ready() == n, LONG, "the RECVs complete")
    return made


def _assert_received(
    port: CompletionPort, made: list[tuple[Any, Any, bytearray, Overlapped]]
) -> None:
    assert not any(ov.pending for _, _, _, ov in made)
    got = [port.get(LONG) for _ in made]
    assert all(p is not None and p.status == SUCCESS for p in got)
    assert sorted(p.key for p in got if p is not None) == list(range(len(made)))
    for i, (s, _, buf, _) in enumerate(made):
        assert bytes(buf[:5]) == b"data%d" % i and s.pending_requests == 0
    assert port.get(0) is None


@pytest.mark.usefixtures("slots_off")  # (the request path: receive slots off)
def test_an_interrupt_before_the_collected_heads_are_serviced_still_completes_them(
    armed_uring: uring.IoUringBackend,
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
    socket_pair: Any,
) -> None:
    """Two pended receives reaped in one batch: their lines' heads are collected (out of the
    table) and the interrupt lands as their service starts. Both still complete, once."""
    b = armed_uring
    port = parked_port(b)
    made = _pended_receives(b, socket_pair, port, 2)
    calls = interrupt_once(StreamLines, "service_direct")
    with pytest.raises(kit.Interrupted):
        port.get(None)
    assert [len(heads) for _, heads, _ in calls] == [2]
    _assert_received(port, made)


@pytest.mark.usefixtures("slots_off")  # (the request path: receive slots off)
def test_an_interrupt_after_the_one_cqe_line_service_still_delivers(
    armed_uring: uring.IoUringBackend,
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
    socket_pair: Any,
) -> None:
    """The one-CQE path: a pended receive's line is serviced (the request out of the table
    and out of its line), then the interrupt lands before its delivery. It still completes."""
    b = armed_uring
    port = parked_port(b)
    made = _pended_receives(b, socket_pair, port, 1)
    calls = interrupt_once(StreamLines, "service", run=True)
    with pytest.raises(kit.Interrupted):
        port.get(None)
    assert [res for _, _, res, _ in calls] == [5]
    _assert_received(port, made)


class _TakeInterrupted(InFlight):
    """The request table, as the reaper sees it when a Ctrl-C lands at the end of its first
    ``pop`` or ``get``: the call did its work, then the signal handler raised (the result
    never reaches the caller)."""

    __slots__ = ()
    armed: ClassVar[list[str]] = []
    taken: ClassVar[list[str]] = []
    interrupt: ClassVar[type[BaseException]] = BaseException  # the test's (kit.Interrupted)

    def _cut(self, result: Any, what: str) -> Any:
        if self.armed and threading.current_thread() is threading.main_thread():
            self.armed.clear()
            _TakeInterrupted.taken.append(what)
            raise self.interrupt
        return result

    def pop(self, *args: Any) -> Any:  # type: ignore[override]
        return self._cut(super().pop(*args), "pop")

    def get(self, *args: Any) -> Any:  # type: ignore[override]
        return self._cut(super().get(*args), "get")


def test_an_interrupt_taking_a_request_out_of_the_table_still_completes_it(
    armed_uring: uring.IoUringBackend,
    disk: DiskFile,
    aligned: Callable[[int], memoryview],
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    tmp_path: Path,
) -> None:
    """A batch of four reads: the interrupt lands as the reaper takes the first one out of
    the table. Before: ``pop`` had taken it and its result was lost - the request never
    completed (and its file never closed). Now the entry is read, then deleted by a
    statement: every request of the batch completes, once."""
    _TakeInterrupted.interrupt = kit.Interrupted
    b = armed_uring
    port = parked_port(b)
    disk.associate(port, "disk")
    reads = _reads_in_one_batch(b, disk, aligned, 4)
    table = b._table
    _TakeInterrupted.taken = []
    _TakeInterrupted.armed = ["armed"]
    table.__class__ = _TakeInterrupted
    try:
        with pytest.raises(kit.Interrupted):
            port.get(None)
    finally:
        table.__class__ = InFlight
        _TakeInterrupted.armed = []
    assert len(_TakeInterrupted.taken) == 1
    assert _assert_read(port, reads, tmp_path / "disk") == []
    assert port.get(0) is None and not b._table
    assert disk.pending_requests == 0
    disk.close()
    assert _released(disk, tmp_path / "disk", kit)


class _SpareInterrupted(list[Any]):
    """The backend's spare lines (``StreamLines._spare``), with a Ctrl-C landing at the first
    ``len()`` a main thread takes of it: a line just ended, its head out of it."""

    interrupt: ClassVar[type[BaseException]] = BaseException
    armed: ClassVar[list[str]] = []

    def __len__(self) -> int:
        if self.armed and threading.current_thread() is threading.main_thread():
            self.armed.clear()
            raise self.interrupt
        return super().__len__()


@pytest.mark.parametrize("count", [1, 2], ids=["one-cqe", "batch"])
@pytest.mark.usefixtures("slots_off")  # (the request path: receive slots off)
def test_an_interrupt_ending_a_receive_line_still_completes_its_head(
    armed_uring: uring.IoUringBackend,
    kit: Any,
    parked_port: Callable[[Any], CompletionPort],
    socket_pair: Any,
    count: int,
) -> None:
    """Pended receives whose RECV brought data: the interrupt lands as the first line ends
    (its head out of the line; ``StreamLines.service`` on the one-CQE path, ``service_direct``
    for a batch). Before: the head was lost (not yet among the completions) and, on the
    one-CQE path, the backend's lock stayed held. Now the head is among the completions
    before any call, and the lock is released: every receive completes, once, and the
    backend closes (no line left behind)."""
    b = armed_uring
    port = parked_port(b)
    made = _pended_receives(b, socket_pair, port, count)
    streams = b._streams
    _SpareInterrupted.interrupt = kit.Interrupted
    _SpareInterrupted.armed = ["armed"]
    streams._spare = _SpareInterrupted(streams._spare)
    try:
        with pytest.raises(kit.Interrupted):
            port.get(None)
    finally:
        _SpareInterrupted.armed = []
        leaked = b._lock.locked()
        if leaked:
            b._lock.release()
        streams._spare = list(streams._spare)
    assert not leaked, "the backend's lock stayed held"
    _assert_received(port, made)
    assert not streams.lines and not b._table


# ------------------------------------------------------------- the ring's own state changes
# An interrupt in a step the reaper takes for the ring rather than for one delivery: a
# request that died with its submitter going to the backlog (``_migrate``), the leaders'
# poke ending (``RingThread.poke_ended``).


def _reap_until_interrupted(port: CompletionPort, interrupt: type[BaseException]) -> None:
    """Timed waits (each reaps what came) until the interrupt comes out of one."""
    with pytest.raises(interrupt):
        for _ in range(int(LONG / 0.02)):
            assert port.get(0.02) is None


def test_an_interrupt_backlogging_a_dead_request_still_migrates_it(
    armed_uring: uring.IoUringBackend,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
) -> None:
    """A pended pipe read ends with -ECANCELED, nobody having cancelled it (what a kernel
    does when its submitter exits unnoticed): this thread reaps it and migrates it, and the
    interrupt lands as it goes into the backlog. Before: it was in no table, no line's
    kernel slot and no backlog - the read never completed. Now it is backlogged and the
    ring thread woken: it is submitted again and completes with the data."""
    b = armed_uring
    port = CompletionPort()
    reader, w = kit.pipe(b)
    reader.associate(port, "reader")
    buf = bytearray(4)
    parked = kit.park(b, monkeypatch)
    try:
        op = StreamReadOp(reader, Overlapped(), [memoryview(buf)])
        assert start(op) == STATUS_PENDING
        line = op.token
        wait_until(lambda: line.poll_ud in b._table, LONG, "the read is in the kernel")
        with b._lock:
            wake = b._sq.cancel_locked(line.poll_ud)  # (an ASYNC_CANCEL nobody asked for)
        if wake:
            os.eventfd_write(b._efd, 1)
        calls = interrupt_once(Backlog, "add_locked")
        _reap_until_interrupted(port, kit.Interrupted)
        assert calls and b._migration.count == 1 and not op.done and not op.cancel_requested
        assert any(entry[1] is op for entry in b._backlog.entries)  # backlogged all the same
    finally:
        parked.release()
    os.write(w, b"late")
    packet = port.get(LONG)  # the ring thread submitted it again
    assert packet is not None and (packet.key, packet.bytes_transferred) == ("reader", 4)
    assert bytes(buf) == b"late"
    reader.close()
    os.close(w)
    port.close()


def test_an_interrupt_as_the_leaders_poke_ends_still_closes_the_leadership(
    armed_uring: uring.IoUringBackend,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
) -> None:
    """The leaders' multishot poke poll ends (cancelled here) and this thread reaps its last
    CQE; the interrupt lands as the leadership is given up. Before: the poke was marked
    unarmed but the leadership stayed open - a leader could wait in the kernel for a poke
    that could not come. Now it is closed, and the ring thread, woken, arms a new poke."""
    b = armed_uring
    port = CompletionPort()
    reader, w = kit.pipe(b)
    reader.associate(port, "reader")
    buf = bytearray(4)
    parked = kit.park(b, monkeypatch)
    try:
        # A pended read: this thread's waits lead the ring (they reap what comes).
        assert start(StreamReadOp(reader, Overlapped(), [memoryview(buf)])) == STATUS_PENDING
        assert b._ring_thread.poke_armed and not b._lead.closed
        with b._lock:
            wake = b._sq.cancel_locked(UD_POKE)
        if wake:
            os.eventfd_write(b._efd, 1)
        calls = interrupt_once(type(b._lead), "give_up_locked")
        _reap_until_interrupted(port, kit.Interrupted)
        assert calls and not b._ring_thread.poke_armed
        assert b._lead.closed  # nobody leads without a poke
    finally:
        parked.release()
    wait_until(
        lambda: b._ring_thread.poke_armed and not b._lead.closed, LONG, "a new poke is armed"
    )
    os.write(w, b"read")
    packet = port.get(LONG)
    assert packet is not None and packet.bytes_transferred == 4 and bytes(buf) == b"read"
    reader.close()
    os.close(w)
    port.close()


def test_an_interrupt_retrying_a_line_head_gives_the_line_back(
    armed_uring: uring.IoUringBackend,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
    interrupt_once: Callable[..., list[tuple[Any, ...]]],
) -> None:
    """A write pended on a full pipe (its line's head polls for POLLOUT); the reader drains
    the pipe, this thread reaps the poll and retries the head, and the interrupt lands as
    the retry starts. Before: the line stayed ``busy`` (held by a servicing loop that was
    gone), its head never polled again - the write never completed. Now the line is given
    back and its head re-armed: the write completes, once."""
    b = armed_uring
    port = CompletionPort()
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    writer = FileObject(w, overlapped=True, backend=b)
    writer.associate(port, "writer")
    filled = 0
    try:
        while True:
            filled += os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    parked = kit.park(b, monkeypatch)
    try:
        data = b"y" * 4096
        op = StreamWriteOp(writer, Overlapped(), [memoryview(data)])
        assert start(op) == STATUS_PENDING  # (this thread leads the ring now)
        line = op.token
        wait_until(lambda: line.poll_ud in b._table, LONG, "the poll is in the kernel")
        calls = interrupt_once(StreamWriteOp, "try_now")
        while filled > 0:
            filled -= len(os.read(r, 65536))  # room again: the poll fires
        _reap_until_interrupted(port, kit.Interrupted)
        assert len(calls) == 1 and not op.done and not line.busy
    finally:
        parked.release()
    packet = port.get(LONG)
    assert packet is not None and (packet.key, packet.bytes_transferred) == ("writer", 4096)
    assert os.read(r, 8192) == data and port.get(0) is None
    writer.close()
    os.close(r)
    port.close()
