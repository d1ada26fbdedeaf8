"""The io_uring backend's own mechanisms (the shared contract is in tests/io/contract; the
waiting threads that reap are in test_uring_leaders.py).

Covered here, beyond the contract:
- ``probe_backend``: cached, never raises, names what is missing; the constructor refuses;
  ``winaio._runtime`` imports the backend statically and still reports *why* io_uring is off
  on a machine where it cannot work (checked in a fresh interpreter);
- resources: one ring (3 fds), two eventfds (the ring thread's, the leaders' poke), one
  ``winaio-uring-<n>`` thread; all released;
- issuers submit their own requests: no ring-thread wake-up for a submission, concurrent
  submitters never lose one (a request left unsubmitted would hang); a full SQ ring and a
  kernel that refuses SQEs (EBUSY) go through the ring thread, in order, exactly once;
- migration: requests submitted by a thread that exits - port-bound ones, a re-poll done by a
  thread for another's request, a burst the thread had deferred - are submitted again by the
  ring thread and complete normally;
- an exception raised by an operation on the reaping thread is reported
  (threading.excepthook) and the operation still completes exactly once;
- a dead ring thread: close() drains the requests itself.
"""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring import abi
from winaio._backends.uring import deferral as uring_deferral
from winaio._backends.uring import probe as uring_probe
from winaio._backends.uring import ringthread as uring_ringthread
from winaio._backends.uring.abi.consts import Feature, IoringOp
from winaio._backends.uring.ring import BackendRing
from winaio._io._files import FileObject, request_cancel
from winaio._io._issue import start
from winaio._io._ops import FileReadOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._objects import Event
from winaio.codes import NtStatus
from winaio.testing import wait_until

OK, REASON = uring.probe_backend()
needs_uring = pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")
# the leader's wait chain in C (``_fastring.c``) and in Python, in turn
pytestmark = pytest.mark.usefixtures("fast_path_impl")

SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
UNSUCCESSFUL = int(NtStatus.STATUS_UNSUCCESSFUL)
LONG = 5.0


@pytest.fixture
def backend() -> Iterator[uring.IoUringBackend]:
    if not OK:
        pytest.skip(f"io_uring backend unavailable: {REASON}")
    b = uring.IoUringBackend()
    try:
        yield b
    finally:
        b.close()


def _run_and_exit(fn: Any) -> Any:
    """Run ``fn`` on a plain thread and wait until the OS thread is gone; its result."""
    out: list[Any] = []
    native: list[int] = []

    def body() -> None:
        native.append(threading.get_native_id())
        out.append(fn())

    t = threading.Thread(target=body)
    t.start()
    t.join(LONG)
    wait_until(lambda: not os.path.exists(f"/proc/self/task/{native[0]}"), LONG, "thread gone")
    return out[0]


# -- probe ----------------------------------------------------------------------------------------


def _reprobe(monkeypatch: pytest.MonkeyPatch, result: Any) -> tuple[bool, str]:
    monkeypatch.setattr(uring_probe, "_probed", None)
    if isinstance(result, Exception):

        def boom() -> abi.ProbeResult:
            raise result

        monkeypatch.setattr(abi, "probe", boom)
    else:
        monkeypatch.setattr(abi, "probe", lambda: result)
    return uring.probe_backend()


def test_probe_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = abi.probe
    monkeypatch.setattr(uring_probe, "_probed", None)
    monkeypatch.setattr(abi, "probe", lambda: calls.append(1) or real())
    first = uring.probe_backend()
    assert uring.probe_backend() == first
    assert calls == [1]


def test_probe_never_raises_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, why = _reprobe(monkeypatch, OSError(38, "weird"))
    assert not ok and "probe failed" in why
    ok, why = _reprobe(monkeypatch, abi.ProbeResult(False, "io_uring_setup: ENOSYS (seccomp)"))
    assert (ok, why) == (False, "io_uring_setup: ENOSYS (seccomp)")
    ops = frozenset({IoringOp.IORING_OP_NOP, IoringOp.IORING_OP_READ})
    nodrop = Feature.IORING_FEAT_NODROP
    ok, why = _reprobe(monkeypatch, abi.ProbeResult(True, "yes", ops, nodrop, "5.6.0"))
    assert not ok and "READV" in why and "POLL_ADD" in why and "ASYNC_CANCEL" in why
    all_ops = frozenset(uring_probe.REQUIRED_OPS)
    ok, why = _reprobe(monkeypatch, abi.ProbeResult(True, "yes", all_ops, Feature(0), "5.4.0"))
    assert not ok and "NODROP" in why
    ok, why = _reprobe(monkeypatch, abi.ProbeResult(True, "fine", all_ops, nodrop, "6.1.0"))
    assert ok and "fine" in why
    monkeypatch.setattr(uring_probe, "_probed", (False, "nope", None))
    with pytest.raises(RuntimeError, match="nope"):
        uring.IoUringBackend()


def test_runtime_reports_why_io_uring_is_off_without_crashing() -> None:
    # A fresh interpreter on a (simulated) weakly ordered CPU: importing the package imports
    # the io_uring backend statically, and the selection explains the fallback.
    code = (
        "import platform; platform.machine = lambda: 'aarch64'\n"
        "from winaio import _runtime\n"
        "s = _runtime.selection()\n"
        "assert s.name == 'threads' and not s.io_uring_available, s\n"
        "assert 'aarch64' in s.reason, s\n"
        "try:\n"
        "    _runtime.backend('io_uring')\n"
        "except RuntimeError as e:\n"
        "    assert 'aarch64' in str(e)\n"
        "else:\n"
        "    raise AssertionError('io_uring backend created on aarch64')\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "WINAIO_BACKEND"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# -- resources ------------------------------------------------------------------------------------


@needs_uring
def test_one_ring_two_eventfds_one_named_thread_all_released(kit: Any) -> None:
    fds, threads = kit.fds(), set(threading.enumerate())
    b = uring.IoUringBackend()
    now = kit.fds()
    kinds = sorted(now[fd] for fd in now.keys() - fds.keys())
    # The ring thread's wake-up and the leaders' poke (``lead``).
    assert kinds == ["anon_inode:[eventfd]"] * 2 + ["anon_inode:[io_uring]"] * 3
    (thread,) = set(threading.enumerate()) - threads
    assert thread.name.startswith("winaio-uring-") and thread.daemon
    stats = b.statistics()
    assert (stats.name, stats.threads) == ("io_uring", 1)
    assert "NODROP" in stats.detail and "issuers submit" in stats.detail
    b.close()
    assert kit.fds() == fds
    assert not thread.is_alive()
    b.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(StreamReadOp.__new__(StreamReadOp))


# -- issuers submit -------------------------------------------------------------------------------


@needs_uring
def test_issuers_submit_without_waking_the_ring_thread(
    backend: uring.IoUringBackend, tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = kit.file(backend, tmp_path / "f")
    wait_until(lambda: not backend._lead.closed, LONG, "the leaders' poke is armed")
    # Parked, the ring thread cannot take the ring over from its owner (the watch) meanwhile.
    parked = kit.park(backend, monkeypatch)
    asked, enters = backend._ring_thread.wakeups, backend._enters

    def fresh() -> int:
        # A thread that has not waited on the ring submits each request at once...
        done = [kit.write(f, b"o" * 512, 512 * (51 + i))[1] for i in range(10)]
        submitted = backend._enters - enters
        for ev in done:
            kit.wait(ev)  # ... (nothing left in flight at its exit: nothing to migrate)
        return submitted

    assert _run_and_exit(fresh) >= 10
    kit.wait(kit.write(f, b"warm", 0)[1])  # ... this one has now waited: it owns the ring
    assert backend._lead.owner is not None
    enters = backend._enters
    writes = [kit.write(f, b"x" * 512, 512 * (i + 1)) for i in range(50)]
    # ... and defers its submissions to its next wait: one io_uring_enter per 16 (``BURST``),
    # except the first, issued while the ring held nothing else (submitted at once: ``BURST``).
    assert backend._enters - enters == 1 + 49 // uring_deferral.BURST
    reader, w = kit.pipe(backend)
    first = StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))])
    assert start(first) == STATUS_PENDING
    # Requests queued behind another stream request put nothing into the ring at all.
    enters = backend._enters
    queued = [StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))]) for _ in range(20)]
    for op in queued:
        assert start(op) == STATUS_PENDING
    assert backend._enters == enters
    assert backend._ring_thread.wakeups == asked  # no submission asked the ring thread for anything
    for _, ev in writes:
        kit.wait(ev)  # this thread reaps: the ring thread is parked
    assert backend._ring_thread.rounds == parked.rounds
    parked.release()
    os.write(w, b"y" * 21)
    wait_until(lambda: all(op.done for op in [first, *queued]), LONG, "reads done")
    os.close(w)
    reader.close()
    f.close()


def _ping_pong(b: Any, tmp_path: Path, kit: Any, threads: int, rounds: int) -> None:
    """Several threads each issue requests one at a time and wait for each: a lost wake-up
    or a request left unsubmitted makes a wait time out."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            f = kit.file(b, tmp_path / f"w{n}")
            reader, w = kit.pipe(b)
            for i in range(rounds):
                _, ev = kit.write(f, b"z" * 64, 64 * (i % 64))
                kit.wait(ev)
                ev2 = Event(manual_reset=True)
                read = StreamReadOp(reader, Overlapped(0, ev2), [memoryview(bytearray(4))])
                assert start(read) == STATUS_PENDING
                os.write(w, b"ping")
                kit.wait(ev2)
                assert (read.overlapped.status, read.overlapped.information) == (SUCCESS, 4)
            os.close(w)
            reader.close()
            f.close()
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in pool)


@needs_uring
def test_concurrent_submitters_never_lose_a_request(
    backend: uring.IoUringBackend, tmp_path: Path, kit: Any
) -> None:
    _ping_pong(backend, tmp_path, kit, threads=4, rounds=400)
    wait_until(lambda: backend.statistics().in_flight == 0, LONG, "all completed")
    stats = backend.statistics()
    assert stats.completed == stats.submitted == 4 * 400 * 2


@needs_uring
def test_without_multishot_polls_nobody_leads_and_everything_still_completes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kit: Any
) -> None:
    # A kernel before 5.13 answers the leaders' multishot poke poll with -EINVAL (simulated
    # with an unknown poll flag): waiting threads park, the ring thread reaps for them.
    monkeypatch.setattr(uring_ringthread, "_MULTI", 1 << 30)
    b = uring.IoUringBackend()
    try:
        wait_until(lambda: b._ring_thread.poke_refused, LONG, "the poke poll refused")
        _ping_pong(b, tmp_path, kit, threads=3, rounds=100)
        assert b._lead.leads == 0 and b._ring_thread.delivered == 3 * 100 * 2
    finally:
        b.close()


# -- the ring thread submits what issuers cannot --------------------------------------------------


@needs_uring
def test_a_full_ring_and_refused_sqes_go_through_the_ring_thread_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kit: Any
) -> None:
    fds = kit.fds()
    b = uring.IoUringBackend(entries=2)
    real_enter = BackendRing.enter
    refusals = [0]

    def busy_sometimes(self: BackendRing, to_submit: int, wait_nr: int) -> int:
        # Every 7th submission: the kernel refuses with EBUSY (a CQ backlog), nothing taken.
        if to_submit and threading.current_thread() is not b._ring_thread.thread:
            refusals[0] += 1
            if refusals[0] % 7 == 0:
                raise abi.RingBusyError(errno.EBUSY, "simulated CQ backlog")
        return real_enter(self, to_submit, wait_nr)

    try:
        assert b._ring.sq_entries == 2
        f = kit.file(b, tmp_path / "f")
        monkeypatch.setattr(BackendRing, "enter", busy_sometimes)
        writes = [kit.write(f, i.to_bytes(4, "little"), 4 * i) for i in range(300)]
        pipes = [kit.pipe(b) for _ in range(30)]
        reads = []
        for reader, _ in pipes:
            op = StreamReadOp(reader, Overlapped(0, Event(True)), [memoryview(bytearray(2))])
            assert start(op) == STATUS_PENDING
            reads.append(op)
        for op in reads[::2]:
            request_cancel(op)
        for _, w in pipes:
            os.write(w, b"ok")
        for _, ev in writes:
            kit.wait(ev)
        for op in reads:
            assert op.overlapped.event is not None
            kit.wait(op.overlapped.event)
            # A cancel that had to wait in the backlog (EBUSY) may lose to the data: the RECV
            # already has it. Either way exactly once, and no data for a cancelled one.
            expected = (CANCELLED, SUCCESS) if op in reads[::2] else (SUCCESS,)
            assert op.overlapped.status in expected
            assert op.overlapped.information == (2 if op.overlapped.status == SUCCESS else 0)
        data = (tmp_path / "f").read_bytes()
        assert [int.from_bytes(data[4 * i : 4 * i + 4], "little") for i in range(300)] == list(
            range(300)
        )
        assert refusals[0] >= 7  # at least one submission was refused (EBUSY)
        wait_until(lambda: b.statistics().in_flight == 0, LONG, "all completed")
        stats = b.statistics()
        assert stats.submitted == stats.completed == 330
        monkeypatch.undo()
        for reader, w in pipes:
            reader.close()
            os.close(w)
        f.close()
    finally:
        b.close()
    assert kit.fds() == fds


# -- migration ------------------------------------------------------------------------------------


@needs_uring
def test_requests_survive_the_exit_of_the_thread_that_submitted_them(
    tmp_path: Path, kit: Any
) -> None:
    """Port-bound requests (no event) issued - and so submitted - by a thread that then exits
    complete normally, some only after that exit: a READ on an empty pipe (a FILE request:
    io_uring polls it internally, and the poll would die with its submitter), a stream read,
    an O_DIRECT read. The backend itself was created by a thread that has exited too."""
    b = _run_and_exit(uring.IoUringBackend)
    try:
        port = CompletionPort()
        (tmp_path / "direct").write_bytes(bytes(range(256)) * 16 * 4)  # 16 KiB
        disk = kit.file(b, tmp_path / "direct", direct=True)
        disk.associate(port, "disk")
        r1, w1 = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # direct=True: no non-blocking attempt first, the READ goes to the ring as it is.
        late = FileObject(r1, overlapped=True, seekable=True, direct=True, backend=b)
        late.associate(port, "late")
        stream, w2 = kit.pipe(b)
        stream.associate(port, "stream")
        memory = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT wants
        late_buf, stream_buf = bytearray(5), bytearray(6)
        ops: list[Any] = []

        def issue() -> None:
            ops.append(FileReadOp(late, Overlapped(), [memoryview(late_buf)], 0))
            ops.append(FileReadOp(disk, Overlapped(8192), [memoryview(memory)], 8192))
            ops.append(StreamReadOp(stream, Overlapped(), [memoryview(stream_buf)]))
            for op in ops:
                assert start(op) == STATUS_PENDING

        _run_and_exit(issue)
        wait_until(lambda: b._migration.count >= 2, LONG, "the pipe reads migrated")
        os.write(w1, b"hello")
        os.write(w2, b"stream")
        got = {}
        for _ in range(3):
            packet = port.get(LONG)
            assert packet is not None, "no completion packet within 5s"
            got[packet.key] = packet
        assert (got["late"].status, got["late"].bytes_transferred) == (SUCCESS, 5)
        assert bytes(late_buf) == b"hello"
        assert (got["disk"].status, got["disk"].bytes_transferred) == (SUCCESS, 4096)
        assert memory[:] == (bytes(range(256)) * 16)
        assert (got["stream"].status, got["stream"].bytes_transferred) == (SUCCESS, 6)
        assert bytes(stream_buf) == b"stream"
        assert all(op.overlapped.status == SUCCESS for op in ops)
        for f in (disk, late, stream):
            f.close()
        os.close(w1)
        os.close(w2)
        port.close()
        ops.clear()
        got.clear()
        del packet
    finally:
        b.close()
    memory.close()  # every export (the ops' memoryviews, the backend's pin) is gone


@needs_uring
def test_a_deferred_burst_outlives_the_thread_that_owned_the_ring(
    backend: uring.IoUringBackend, kit: Any
) -> None:
    # A thread that waited on the ring owns it and defers its submissions to its next wait;
    # it exits instead: its exit gives the ring up and the ring thread submits the burst.
    port = CompletionPort()
    first, w0 = kit.pipe(backend)
    reader, w = kit.pipe(backend)
    reader.associate(port, "reader")
    buf = bytearray(3)

    def owner() -> None:
        ev = Event(manual_reset=True)
        op = StreamReadOp(first, Overlapped(0, ev), [memoryview(bytearray(1))])
        assert start(op) == STATUS_PENDING
        threading.Timer(0.05, os.write, (w0, b"!")).start()
        kit.wait(ev)  # leads: owns the ring from now on
        read = StreamReadOp(reader, Overlapped(), [memoryview(buf)])
        assert start(read) == STATUS_PENDING  # deferred: the owner submits at its next wait

    _run_and_exit(owner)
    os.write(w, b"abc")
    packet = port.get(LONG)
    assert packet is not None and packet.key == "reader"
    assert (packet.status, packet.bytes_transferred, bytes(buf)) == (SUCCESS, 3, b"abc")
    assert backend._lead.owner is None  # the exit gave the ring up
    for f in (first, reader):
        f.close()
    os.close(w0)
    os.close(w)
    port.close()


# -- failures -------------------------------------------------------------------------------------


class _Exploding(StreamReadOp):
    """A read whose mapping of the kernel's result (its pending RECV's CQE) has a bug."""

    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        return None  # at issue time: would block

    def from_cqe(self, res: int) -> tuple[int, int]:
        raise ZeroDivisionError("a bug in an operation")


@needs_uring
def test_an_exception_on_the_reaping_thread_is_reported_and_the_op_completes(
    backend: uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch, kit: Any
) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    reader, w = kit.pipe(backend)
    ev = Event(manual_reset=True)
    op = _Exploding(reader, Overlapped(0, ev), [memoryview(bytearray(4))])
    assert start(op) == STATUS_PENDING
    os.write(w, b"boom")
    kit.wait(ev)
    assert op.overlapped.status == UNSUCCESSFUL
    (args,) = reported
    assert args.exc_type is ZeroDivisionError
    # The reaper (this thread, leading, or the ring thread) survived: the backend still works.
    ev2 = Event(manual_reset=True)
    ok = StreamReadOp(reader, Overlapped(0, ev2), [memoryview(bytearray(4))])
    assert start(ok) in (STATUS_PENDING, SUCCESS)
    os.write(w, b"next")
    kit.wait(ev2)
    assert ok.overlapped.information == 4
    os.close(w)
    reader.close()


@needs_uring
def test_close_drains_the_requests_of_a_dead_ring_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kit: Any
) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    fds = kit.fds()
    b = uring.IoUringBackend()
    wait_until(lambda: b._ring_thread.sleeping, LONG, "the ring thread sleeps")
    reader, w = kit.pipe(b)
    reads = [
        StreamReadOp(reader, Overlapped(0, Event(True)), [memoryview(bytearray(4))])
        for _ in range(3)
    ]
    for op in reads:
        assert start(op) == STATUS_PENDING
    b._ring_thread.rounds = None  # type: ignore[assignment]  # its next round raises: a bug
    os.eventfd_write(b._efd, 1)
    wait_until(lambda: not b._ring_thread.thread.is_alive(), LONG, "the ring thread dies")
    assert [a.exc_type for a in reported] == [TypeError]
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))]))
    b.close()  # drains: nothing stays pending, nothing leaks
    for op in reads:
        assert op.done
        assert op.overlapped.status == CANCELLED
    reader.close()
    os.close(w)
    assert kit.fds() == fds
