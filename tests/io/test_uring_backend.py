"""The io_uring backend's own mechanisms (the shared contract is in tests/io/contract).

Covered here, beyond the contract:
- ``probe_backend``: cached, never raises, names what is missing; the constructor refuses;
  ``winaio._runtime`` imports the backend statically and still reports *why* io_uring is off
  on a machine where it cannot work (checked in a fresh interpreter);
- resources: one ring (3 fds) + one eventfd, one ``winaio-uring-<n>`` thread; all released;
- the wake-up protocol: submissions made while the ring thread is busy cost no wake-up and
  are submitted together; requests that put nothing into the ring never wake it; concurrent
  submitters never lose a wake-up (every request would otherwise hang); the one-shot
  fallback (a kernel without multishot polls answers -EINVAL) works the same;
- the SQ-full backlog: a 2-entry ring takes hundreds of requests, in order, exactly once;
- completions run on the ring thread; an exception raised by an operation on the ring thread
  is reported (threading.excepthook) and the operation still completes exactly once;
- the SQPOLL ring: deep FILE queues go there, shallow ones and streams stay on the plain
  ring; issuers publish and wake a sleeping poller themselves (no eventfd, no ring-thread
  enter); requests survive the exit of the thread that issued them and of the one that
  created the backend; a refused SQPOLL leaves the plain ring alone and says why.

Most tests run in two modes (``mode``): ``sqpoll`` sends every FILE request to the SQPOLL
ring (``hot_depth=0``), ``plain`` has no SQPOLL ring. The contract suite runs the default
(both rings, routed by queue depth).
"""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring import abi
from winaio._backends.uring import backend as uring_backend
from winaio._backends.uring import probe as uring_probe
from winaio._backends.uring import sqpoll as uring_sqpoll
from winaio._backends.uring.abi.consts import Feature, IoringOp
from winaio._backends.uring.ring import BackendRing
from winaio._io._files import FileObject, request_cancel, start
from winaio._io._ops import FileReadOp, FileWriteOp, StreamReadOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._kernel._objects import Event
from winaio._kernel._wait import wait_for_one
from winaio.codes import NtStatus, WaitCode

OK, REASON = uring.probe_backend()
needs_uring = pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")

SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
UNSUCCESSFUL = int(NtStatus.STATUS_UNSUCCESSFUL)
WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
LONG = 5.0


def _fds() -> dict[str, str]:
    """Open descriptors and what they are (the listing's own directory fd is gone by then)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            pass
    return out


MODES = ["sqpoll", "plain"]


def _make(mode: str, **kwargs: Any) -> uring.IoUringBackend:
    if mode == "sqpoll":
        kwargs.setdefault("hot_depth", 0)
    b = uring.IoUringBackend(sqpoll=mode == "sqpoll", **kwargs)
    if mode == "sqpoll" and b._sq is None:
        why = b.statistics().detail
        b.close()
        pytest.skip(f"SQPOLL unavailable here: {why}")
    return b


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    if not OK:
        pytest.skip(f"io_uring backend unavailable: {REASON}")
    name: str = request.param
    return name


@pytest.fixture
def backend(mode: str) -> Iterator[uring.IoUringBackend]:
    b = _make(mode)
    try:
        yield b
    finally:
        b.close()


def _until_poller_sleeps(b: uring.IoUringBackend) -> None:
    from winaio.testing import wait_until

    sq = b._sq
    assert sq is not None
    wait_until(sq.ring.sq_needs_wakeup, LONG, "the SQ poller goes idle")


def _wait(ev: Event) -> None:
    assert wait_for_one(ev, LONG, False) == WAIT_OBJECT_0, "no completion within 5s"


def _write(f: FileObject, data: bytes, offset: int) -> tuple[FileWriteOp, Event]:
    ev = Event(manual_reset=True)
    op = FileWriteOp(f, Overlapped(offset, ev), [memoryview(data)], offset)
    assert start(op) == STATUS_PENDING
    return op, ev


def _pipe(b: Any) -> tuple[FileObject, int]:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    return FileObject(r, overlapped=True, backend=b), w


def _file(b: Any, tmp_path: Path, name: str = "f") -> FileObject:
    fd = os.open(tmp_path / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    return FileObject(fd, overlapped=True, seekable=True, backend=b)


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


def _blocking_write_op(inside: threading.Event, release: threading.Event) -> type[FileWriteOp]:
    """A FILE write whose completion parks the ring thread (sets ``inside``, then waits for
    ``release``): the backend's state can be inspected while it cannot reap."""

    class Blocking(FileWriteOp):
        __slots__ = ()

        def complete(self, status: int, information: int) -> None:
            inside.set()
            release.wait(LONG)
            super().complete(status, information)

    return Blocking


@needs_uring
def test_one_ring_one_eventfd_one_named_thread_all_released(
    mode: str, sq_pollers: Callable[[], set[str]]
) -> None:
    from winaio.testing import wait_until

    fds, threads, pollers = _fds(), set(threading.enumerate()), sq_pollers()
    b = _make(mode)
    # The poller names itself (set_task_comm in io_sq_thread) once it first runs: wait for it.
    wait_until(lambda: len(sq_pollers() - pollers) == (1 if mode == "sqpoll" else 0))
    now = _fds()
    kinds = sorted(now[fd] for fd in now.keys() - fds.keys())
    rings = 2 if mode == "sqpoll" else 1
    # The SQPOLL ring comes with the leaders' poke eventfd (``lead``).
    assert kinds == ["anon_inode:[eventfd]"] * rings + ["anon_inode:[io_uring]"] * 3 * rings
    (thread,) = set(threading.enumerate()) - threads
    assert thread.name.startswith("winaio-uring-") and thread.daemon
    stats = b.statistics()
    assert (stats.name, stats.threads) == ("io_uring", 1)
    assert "multishot" in stats.detail and "NODROP" in stats.detail
    assert ("SQPOLL ring for FILE queues" in stats.detail) == (mode == "sqpoll")
    b.close()
    assert _fds() == fds
    assert not thread.is_alive()
    # The kernel's poller exits once the ring is freed (asynchronously, after the close).
    wait_until(lambda: not sq_pollers() - pollers, LONG, "the SQ poller exits")
    b.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(FileWriteOp.__new__(FileWriteOp))


# -- wake-ups -------------------------------------------------------------------------------------


@needs_uring
def test_a_burst_during_one_round_costs_at_most_one_wakeup(
    backend: uring.IoUringBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ring thread is held inside a delivery (the last step of its round, after it has
    # published and set _sleeping): the whole burst issued meanwhile costs at most one
    # eventfd write - the first issuer clears the flag - and goes out in one round.
    # SQPOLL: the issuers publish it themselves; no eventfd write, nothing for the ring
    # thread to submit.
    from winaio.testing import wait_until

    f = _file(backend, tmp_path)
    release = threading.Event()
    inside = threading.Event()
    Blocking = _blocking_write_op(inside, release)
    submitted: list[int] = []
    real_enter = BackendRing.enter

    def enter(self: BackendRing, to_submit: int, wait_nr: int) -> int:
        if to_submit:
            submitted.append(to_submit)
        return real_enter(self, to_submit, wait_nr)

    ev0 = Event(manual_reset=True)
    try:
        op0 = Blocking(f, Overlapped(0, ev0), [memoryview(b"first")], 0)
        assert start(op0) == STATUS_PENDING
        assert inside.wait(LONG)
        monkeypatch.setattr(BackendRing, "enter", enter)
        wakeups = backend._wakeups
        burst = [_write(f, b"x" * 512, 512 * (i + 1)) for i in range(200)]
        assert backend._wakeups - wakeups <= 1
    finally:
        release.set()
    for ev in [ev0, *(ev for _, ev in burst)]:
        _wait(ev)
    if backend._sq is not None:
        # (The ring thread's own enters then only re-arm its wake-up poll: a wake-up that
        # comes from an io_uring eventfd signal turns a multishot poll into a one-shot.)
        assert (backend._file_in, backend._sq.taken) == (0, 201)
        assert backend._wakeups == wakeups
    else:
        assert submitted[0] == 200  # one io_uring_enter submitted the whole burst
        assert backend._wakeups - wakeups <= 1

    # A request queued behind another stream request needs nothing from the ring thread.
    reader, w = _pipe(backend)
    first = StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))])
    assert start(first) == STATUS_PENDING
    wait_until(lambda: backend._sleeping, LONG, "the ring thread sleeps")
    idle = backend._wakeups
    queued = [StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))]) for _ in range(20)]
    for op in queued:
        assert start(op) == STATUS_PENDING
    assert backend._wakeups == idle
    os.write(w, b"y" * 21)
    wait_until(lambda: all(op.done for op in [first, *queued]), LONG, "reads done")
    os.close(w)
    reader.close()
    f.close()


def _ping_pong(b: Any, tmp_path: Path, threads: int, rounds: int) -> None:
    """Several threads each issue requests one at a time and wait for each: a lost wake-up
    leaves a request unsubmitted and its wait times out."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            f = _file(b, tmp_path, f"w{n}")
            reader, w = _pipe(b)
            for i in range(rounds):
                _, ev = _write(f, b"z" * 64, 64 * (i % 64))
                _wait(ev)
                ev2 = Event(manual_reset=True)
                read = StreamReadOp(reader, Overlapped(0, ev2), [memoryview(bytearray(4))])
                assert start(read) == STATUS_PENDING
                os.write(w, b"ping")
                _wait(ev2)
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
def test_concurrent_submitters_never_lose_a_wakeup(
    backend: uring.IoUringBackend, tmp_path: Path
) -> None:
    _ping_pong(backend, tmp_path, threads=4, rounds=600)
    stats = backend.statistics()
    assert stats.in_flight == 0 and stats.completed == stats.submitted == 4 * 600 * 2


@needs_uring
@pytest.mark.parametrize("poll", ["one-shot", "multishot-refused"])
def test_wakeup_poll_fallbacks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, poll: str, mode: str
) -> None:
    # one-shot: every wake-up CQE ends the poll and the ring thread re-arms it.
    # multishot-refused: the kernel answers the first poll with -EINVAL, as before 5.13
    # (simulated with an unknown poll flag); the backend switches to one-shot polls.
    monkeypatch.setattr(uring_backend, "_MULTI", 0 if poll == "one-shot" else 1 << 30)
    b = _make(mode)
    try:
        _ping_pong(b, tmp_path, threads=3, rounds=300)
        assert b._multishot == (poll == "one-shot")  # _multishot: "try multishot"
        assert "one-shot" in b.statistics().detail or poll == "one-shot"
    finally:
        b.close()


# -- backlog --------------------------------------------------------------------------------------


@needs_uring
def test_a_full_submission_queue_spills_into_the_backlog(tmp_path: Path, mode: str) -> None:
    fds = _fds()
    b = _make(mode, entries=2)
    try:
        assert b._ring.sq_entries == 2
        f = _file(b, tmp_path)
        if b._sq is not None:
            # A busy poller may keep 2 slots free forever: let it sleep and do not wake it,
            # so that the ring fills at once; the ring thread then drains the backlog,
            # waking the poller and waiting for room (SQ_WAIT) as it goes.
            _until_poller_sleeps(b)
            b._wakeup_sq = lambda: None  # type: ignore[method-assign]
        writes = [_write(f, i.to_bytes(4, "little"), 4 * i) for i in range(400)]
        if b._sq is not None:
            del b._wakeup_sq
            b._wakeup_sq()  # for SQEs published after the backlog had emptied
        pipes = [_pipe(b) for _ in range(40)]
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
            _wait(ev)
        for op in reads:
            assert op.overlapped.event is not None
            _wait(op.overlapped.event)
            expected = CANCELLED if op in reads[::2] else SUCCESS
            assert op.overlapped.status == expected
        data = Path(tmp_path / "f").read_bytes()
        assert [int.from_bytes(data[4 * i : 4 * i + 4], "little") for i in range(400)] == list(
            range(400)
        )
        assert b._backlog.total > 0
        stats = b.statistics()
        assert stats.in_flight == 0 and stats.submitted == stats.completed == 440
        for reader, w in pipes:
            reader.close()
            os.close(w)
        f.close()
    finally:
        b.close()
    assert _fds() == fds


# -- the ring thread ------------------------------------------------------------------------------


class _Exploding(StreamReadOp):
    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        if not self.submitted:
            return None  # at issue time: would block
        raise ZeroDivisionError("a bug in an operation")


@needs_uring
def test_an_exception_on_the_ring_thread_is_reported_and_the_op_completes(
    backend: uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    reader, w = _pipe(backend)
    ev = Event(manual_reset=True)
    op = _Exploding(reader, Overlapped(0, ev), [memoryview(bytearray(4))])
    assert start(op) == STATUS_PENDING
    os.write(w, b"boom")
    _wait(ev)
    assert op.overlapped.status == UNSUCCESSFUL
    (args,) = reported
    assert args.exc_type is ZeroDivisionError
    assert args.thread.name.startswith("winaio-uring-")
    # The ring thread survived: the backend still works.
    ev2 = Event(manual_reset=True)
    ok = StreamReadOp(reader, Overlapped(0, ev2), [memoryview(bytearray(4))])
    assert start(ok) in (STATUS_PENDING, SUCCESS)
    _wait(ev2)
    assert ok.overlapped.information == 4
    os.close(w)
    reader.close()


@needs_uring
def test_completions_are_delivered_by_the_waiter_or_the_ring_thread(
    backend: uring.IoUringBackend, tmp_path: Path
) -> None:
    # SQPOLL ring: the issuer, blocked on the request's event, reaps the ring and delivers
    # its own completion (``lead``); plain ring: the ring thread does.
    names: list[str] = []

    class Spy(FileWriteOp):
        __slots__ = ()

        def complete(self, status: int, information: int) -> None:
            names.append(threading.current_thread().name)
            super().complete(status, information)

    f = _file(backend, tmp_path)
    ev = Event(manual_reset=True)
    assert start(Spy(f, Overlapped(0, ev), [memoryview(b"abc")], 0)) == STATUS_PENDING
    _wait(ev)
    expected = "MainThread" if backend._sq is not None else "winaio-uring-"
    assert len(names) == 1 and names[0].startswith(expected), names
    f.close()


@needs_uring
def test_close_salvages_the_requests_of_a_dead_ring_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    from winaio.testing import wait_until

    reported: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    fds = _fds()
    b = _make(mode)
    reader, w = _pipe(b)
    reads = [
        StreamReadOp(reader, Overlapped(0, Event(True)), [memoryview(bytearray(4))])
        for _ in range(3)
    ]
    for op in reads:
        assert start(op) == STATUS_PENDING
    wait_until(lambda: b._ring.sq_ready() == 0, LONG, "the head's poll is in the kernel")

    def broken(self: BackendRing, to_submit: int, wait_nr: int) -> int:
        raise OSError(9, "simulated io_uring_enter failure")

    monkeypatch.setattr(BackendRing, "enter", broken)
    f = _file(b, tmp_path)
    # Plain: wakes the ring thread, which dies before submitting it. SQPOLL: the poller
    # submits it and its CQE wakes the ring thread, which delivers it, then dies.
    write, _ = _write(f, b"never submitted", 0)
    wait_until(lambda: not b._thread.is_alive(), LONG, "the ring thread dies")
    assert [a.exc_type for a in reported] == [OSError]
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))]))

    b.close()  # salvages: nothing stays pending, nothing leaks
    assert write.done
    assert write.overlapped.status == (SUCCESS if (b._sq is not None) else CANCELLED)
    # A write completed as cancelled never happens (its SQE was turned into a NOP).
    assert (tmp_path / "f").read_bytes() == (b"never submitted" if (b._sq is not None) else b"")
    for op in reads:
        assert op.done
        assert op.overlapped.status == CANCELLED
    reader.close()
    f.close()
    os.close(w)
    assert _fds() == fds


# -- SQPOLL ---------------------------------------------------------------------------------------


@needs_uring
def test_sqpoll_requests_survive_the_exit_of_their_issuing_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Port-bound requests (no event) on the SQPOLL ring, issued by a thread that published
    them, woke the sleeping poller itself (io_uring_enter(SQ_WAKEUP)) and then exited, still
    complete normally - one of them only after that exit, through task work (a READ on an
    empty pipe, as a FILE request: io_uring polls it internally); so does a stream read on
    the plain ring. The backend itself was created by a thread that has exited too."""
    from winaio.testing import wait_until

    backends: list[uring.IoUringBackend] = []
    native: list[int] = []

    def gone(tid: int) -> bool:
        return not os.path.exists(f"/proc/self/task/{tid}")

    def run_and_exit(fn: Any) -> None:
        t = threading.Thread(target=lambda: (native.append(threading.get_native_id()), fn()))
        t.start()
        t.join(LONG)
        wait_until(lambda: gone(native[-1]), LONG, "the thread is gone")

    run_and_exit(lambda: backends.append(_make("sqpoll")))
    (b,) = backends
    try:
        port = CompletionPort()
        path = tmp_path / "direct"
        path.write_bytes(bytes(range(256)) * 16 * 4)  # 16 KiB
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
        except OSError:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # a filesystem without O_DIRECT
        disk = FileObject(fd, overlapped=True, seekable=True, direct=True, backend=b)
        disk.associate(port, "disk")
        r1, w1 = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # direct=True: no non-blocking attempt first, the READ goes to the ring as it is.
        late = FileObject(r1, overlapped=True, seekable=True, direct=True, backend=b)
        late.associate(port, "late")
        stream, w2 = _pipe(b)
        stream.associate(port, "stream")
        memory = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT wants
        late_buf, stream_buf = bytearray(5), bytearray(6)
        ops: list[Any] = []
        woke: list[int] = []
        real_wakeup = BackendRing.wakeup_sq

        def spy(self: BackendRing, wait_for_space: bool = False) -> None:
            woke.append(threading.get_native_id())
            real_wakeup(self, wait_for_space)

        monkeypatch.setattr(BackendRing, "wakeup_sq", spy)

        def issue() -> None:
            _until_poller_sleeps(b)  # so that this thread is the one that wakes it
            ops.append(FileReadOp(late, Overlapped(), [memoryview(late_buf)], 0))
            ops.append(FileReadOp(disk, Overlapped(8192), [memoryview(memory)], 8192))
            ops.append(StreamReadOp(stream, Overlapped(), [memoryview(stream_buf)]))
            for op in ops:
                assert start(op) == STATUS_PENDING

        run_and_exit(issue)
        assert native[-1] in woke  # the exited thread did make the SQ_WAKEUP enter
        assert b._sq.taken == 2  # both FILE reads went to the SQPOLL ring
        _until_poller_sleeps(b)  # the late read's task work must wake it again
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
        assert memory[:] == path.read_bytes()[8192 : 8192 + 4096]
        assert (got["stream"].status, got["stream"].bytes_transferred) == (SUCCESS, 6)
        assert bytes(stream_buf) == b"stream"
        monkeypatch.undo()
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
def test_deep_file_queues_go_to_the_sqpoll_ring_shallow_ones_stay(tmp_path: Path) -> None:
    # With hot_depth=4 (the default, 0, sends every FILE request to the SQPOLL ring): the ring
    # thread is held inside a delivery, so no completion is counted meanwhile: of 8 writes
    # issued then, the first 4 go to the plain ring, the rest to the SQPOLL ring. Once
    # everything is done, a lone request goes to the plain ring again.
    from winaio.testing import wait_until

    hot = 4
    b = uring.IoUringBackend(sqpoll=True, hot_depth=hot)
    if b._sq is None:
        why = b.statistics().detail
        b.close()
        pytest.skip(f"SQPOLL unavailable here: {why}")
    try:
        f = _file(b, tmp_path)
        release = threading.Event()
        inside = threading.Event()
        Blocking = _blocking_write_op(inside, release)
        ev0 = Event(manual_reset=True)
        try:
            assert start(Blocking(f, Overlapped(0, ev0), [memoryview(b"0")], 0)) == STATUS_PENDING
            assert inside.wait(LONG)
            assert (b._file_in, b._sq.taken) == (1, 0)
            burst = [_write(f, b"x", 1 + i) for i in range(8)]
            assert (b._file_in, b._sq.taken) == (1 + hot, 8 - hot)
        finally:
            release.set()
        for ev in [ev0, *(ev for _, ev in burst)]:
            _wait(ev)
        wait_until(
            lambda: b._sq.finished == b._sq.taken and b._file_out == b._file_in, LONG, "idle"
        )
        _, ev = _write(f, b"y", 9)
        _wait(ev)
        assert (b._file_in, b._sq.taken) == (2 + hot, 8 - hot)
        assert (tmp_path / "f").read_bytes() == b"0" + b"x" * 8 + b"y"
        f.close()
    finally:
        b.close()


@needs_uring
@pytest.mark.parametrize("refusal", ["EPERM", "no-nonfixed"])
def test_a_refused_sqpoll_falls_back_to_the_plain_ring_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, refusal: str
) -> None:
    class Refusing(BackendRing):
        __slots__ = ()

        def __init__(self, entries: int, **kwargs: Any) -> None:
            if kwargs.get("flags", 0) and refusal == "EPERM":
                raise PermissionError(errno.EPERM, "Operation not permitted")
            super().__init__(entries, **kwargs)
            if self.sqpoll:  # a kernel before 5.11
                self.features &= ~Feature.IORING_FEAT_SQPOLL_NONFIXED

    monkeypatch.setattr(uring_sqpoll, "BackendRing", Refusing)
    fds = _fds()
    b = uring.IoUringBackend(sqpoll=True)
    try:
        assert b._sq is None and not b._ring.sqpoll
        detail = b.statistics().detail
        why = "EPERM" if refusal == "EPERM" else "IORING_FEAT_SQPOLL_NONFIXED"
        assert "no SQPOLL ring: " in detail and why in detail, detail
        _ping_pong(b, tmp_path, threads=2, rounds=50)
    finally:
        b.close()
    assert _fds() == fds  # the refused ring was closed


@needs_uring
def test_sqpoll_is_the_default_and_the_environment_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value, expected in (("0", False), ("1", True), ("", uring_sqpoll.SQPOLL_DEFAULT)):
        monkeypatch.setenv("WINAIO_URING_SQPOLL", value)
        b = uring.IoUringBackend()
        try:
            wanted = "no SQPOLL ring (not requested)" not in b.statistics().detail
            assert wanted == expected
        finally:
            b.close()


@needs_uring
def test_sqpoll_wakes_a_sleeping_poller_every_time(tmp_path: Path) -> None:
    # Each request finds the poller asleep: the issuer's wake-up (tail store, barrier, flag
    # load, SQ_WAKEUP) is what gets it submitted; a lost one would hang that request.
    b = _make("sqpoll")
    try:
        f = _file(b, tmp_path)
        before = b._sq.wakeups
        for i in range(5):
            _until_poller_sleeps(b)
            _, ev = _write(f, bytes([i]) * 8, 8 * i)
            _wait(ev)
            _until_poller_sleeps(b)
            ev2 = Event(manual_reset=True)
            buf = bytearray(8)
            read = FileReadOp(f, Overlapped(8 * i, ev2), [memoryview(buf)], 8 * i, tried=True)
            assert start(read) == STATUS_PENDING
            _wait(ev2)
            assert (read.overlapped.information, bytes(buf)) == (8, bytes([i]) * 8)
        assert b._sq.wakeups - before >= 10
        assert b._sq.taken == 10
        f.close()
    finally:
        b.close()
