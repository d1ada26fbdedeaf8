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
  is reported (threading.excepthook) and the operation still completes exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import _uring, _uring_probe
from winaio._backends import _uring_abi as abi
from winaio._backends._uring_consts import Feature, IoringOp
from winaio._io._files import FileObject, request_cancel, start
from winaio._io._ops import FileWriteOp, StreamReadOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._kernel._objects import Event
from winaio._kernel._wait import wait_for_one
from winaio.codes import NtStatus, WaitCode

OK, REASON = _uring.probe_backend()
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


@pytest.fixture
def backend() -> Iterator[_uring.IoUringBackend]:
    b = _uring.IoUringBackend()
    try:
        yield b
    finally:
        b.close()


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
    monkeypatch.setattr(_uring_probe, "_probed", None)
    if isinstance(result, Exception):

        def boom() -> abi.ProbeResult:
            raise result

        monkeypatch.setattr(abi, "probe", boom)
    else:
        monkeypatch.setattr(abi, "probe", lambda: result)
    return _uring.probe_backend()


def test_probe_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = abi.probe
    monkeypatch.setattr(_uring_probe, "_probed", None)
    monkeypatch.setattr(abi, "probe", lambda: calls.append(1) or real())
    first = _uring.probe_backend()
    assert _uring.probe_backend() == first
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
    all_ops = frozenset(_uring_probe.REQUIRED_OPS)
    ok, why = _reprobe(monkeypatch, abi.ProbeResult(True, "yes", all_ops, Feature(0), "5.4.0"))
    assert not ok and "NODROP" in why
    ok, why = _reprobe(monkeypatch, abi.ProbeResult(True, "fine", all_ops, nodrop, "6.1.0"))
    assert ok and "fine" in why
    monkeypatch.setattr(_uring_probe, "_probed", (False, "nope", None))
    with pytest.raises(RuntimeError, match="nope"):
        _uring.IoUringBackend()


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
def test_one_ring_one_eventfd_one_named_thread_all_released() -> None:
    fds, threads = _fds(), set(threading.enumerate())
    b = _uring.IoUringBackend()
    now = _fds()
    kinds = sorted(now[fd] for fd in now.keys() - fds.keys())
    assert (
        kinds == ["anon_inode:[eventfd]", "anon_inode:[io_uring]"] + ["anon_inode:[io_uring]"] * 2
    )
    (thread,) = set(threading.enumerate()) - threads
    assert thread.name.startswith("winaio-uring-") and thread.daemon
    stats = b.statistics()
    assert (stats.name, stats.threads) == ("io_uring", 1)
    assert "multishot" in stats.detail and "NODROP" in stats.detail
    b.close()
    assert _fds() == fds
    assert not thread.is_alive()
    b.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(FileWriteOp.__new__(FileWriteOp))


# -- wake-ups -------------------------------------------------------------------------------------


@needs_uring
def test_a_burst_during_one_round_costs_at_most_one_wakeup(
    backend: _uring.IoUringBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ring thread is held inside a delivery (the last step of its round, after it has
    # published and set _sleeping): the whole burst issued meanwhile costs at most one
    # eventfd write - the first issuer clears the flag - and goes out in one round.
    from winaio.testing import wait_until

    f = _file(backend, tmp_path)
    release = threading.Event()
    inside = threading.Event()

    class Blocking(FileWriteOp):
        __slots__ = ()

        def complete(self, status: int, information: int) -> None:
            inside.set()
            release.wait(LONG)
            super().complete(status, information)

    from winaio._backends._uring_ring import BackendRing

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
    backend: _uring.IoUringBackend, tmp_path: Path
) -> None:
    _ping_pong(backend, tmp_path, threads=4, rounds=600)
    stats = backend.statistics()
    assert stats.in_flight == 0 and stats.completed == stats.submitted == 4 * 600 * 2


@needs_uring
@pytest.mark.parametrize("mode", ["one-shot", "multishot-refused"])
def test_wakeup_poll_fallbacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str) -> None:
    # one-shot: every wake-up CQE ends the poll and the ring thread re-arms it.
    # multishot-refused: the kernel answers the first poll with -EINVAL, as before 5.13
    # (simulated with an unknown poll flag); the backend switches to one-shot polls.
    monkeypatch.setattr(_uring, "_MULTI", 0 if mode == "one-shot" else 1 << 30)
    b = _uring.IoUringBackend()
    try:
        _ping_pong(b, tmp_path, threads=3, rounds=300)
        assert b._multishot == (mode == "one-shot")  # _multishot: "try multishot"
        assert "one-shot" in b.statistics().detail or mode == "one-shot"
    finally:
        b.close()


# -- backlog --------------------------------------------------------------------------------------


@needs_uring
def test_a_full_submission_queue_spills_into_the_backlog(tmp_path: Path) -> None:
    fds = _fds()
    b = _uring.IoUringBackend(entries=2)
    try:
        assert b._ring.sq_entries == 2
        f = _file(b, tmp_path)
        writes = [_write(f, i.to_bytes(4, "little"), 4 * i) for i in range(400)]
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
        assert b._backlogged > 0
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
    backend: _uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch
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
def test_completions_are_delivered_by_the_ring_thread(
    backend: _uring.IoUringBackend, tmp_path: Path
) -> None:
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
    assert len(names) == 1 and names[0].startswith("winaio-uring-")
    f.close()


@needs_uring
def test_close_salvages_the_requests_of_a_dead_ring_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from winaio._backends._uring_ring import BackendRing
    from winaio.testing import wait_until

    reported: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    fds = _fds()
    b = _uring.IoUringBackend()
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
    write, _ = _write(f, b"never submitted", 0)  # wakes the ring thread, which now dies
    wait_until(lambda: not b._thread.is_alive(), LONG, "the ring thread dies")
    assert [a.exc_type for a in reported] == [OSError]
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))]))

    b.close()  # salvages: nothing stays pending, nothing leaks
    for op in [*reads, write]:
        assert op.done
        assert op.overlapped.status == CANCELLED
    reader.close()
    f.close()
    os.close(w)
    assert _fds() == fds
