"""The backend's rings with IORING_SETUP_COOP_TASKRUN (task work without the IPI): liveness
where the submitter of a request is not the thread waiting for it, bounded, never timed.

With COOP_TASKRUN a request's completion (its task work, ``abi``: task work) runs when the
thread that *submitted* it next enters the kernel: at once when it sleeps interruptibly (a
lock, ``time.sleep``, io_uring_enter), at its next syscall or interrupt (the timer tick) when
it runs in user mode. Each test here has the issuing thread submit a port-bound request
(a WSARecv, a ReadFile on a pipe) while another thread waits on the port, then:

- spin in pure Python (no syscall: only the tick brings it into the kernel) until that waiter
  has the packet;
- block in a Python lock that only the waiter releases, once it has the packet;
- sleep in ``time.sleep`` while the packet arrives (it must arrive before the sleep ends).

The data is written by another process (``sh``), so no thread of this process needs the GIL or
enters the kernel for it. The waiter is either a plain port thread (the ring thread reaps) or
the ring's leader (the ring thread parked: the waiter reaps what the issuer's task work
posts). Sockets run on every receive-slot mode and on the C and Python paths (``sock_impl``,
``slot_impl``). ``WINAIO_URING_COOP`` decides the ring flags (1: COOP where the kernel has
it, 0: none, unset or empty: ``probe.DEFAULT_COOP``; any other value: ValueError naming it); the
probe's fallback is
pinned on a kernel that refuses the flags (a stand-in for io_uring_setup).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring import probe
from winaio._backends.uring.abi.consts import SetupFlags
from winaio._io._files import FileObject
from winaio._io._issue import start
from winaio._io._ops import FileReadOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPacket, CompletionPort
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._threads import current_thread_state
from winaio.codes import NtStatus
from winaio.testing import connected_pair, wait_until

OK, REASON = uring.probe_backend()
pytestmark = [
    pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}"),
    pytest.mark.usefixtures("sock_impl", "slot_impl"),
]

SUCCESS = int(NtStatus.STATUS_SUCCESS)
COOP = SetupFlags.IORING_SETUP_COOP_TASKRUN | SetupFlags.IORING_SETUP_TASKRUN_FLAG
LONG = 10.0  # a bound for liveness only: each wait normally ends within a few ms


@pytest.fixture(params=[True, False], ids=["coop", "nocoop"])
def backend(request: pytest.FixtureRequest) -> Iterator[uring.IoUringBackend]:
    b = uring.IoUringBackend(coop=request.param)
    wait_until(lambda: not b._lead.closed, 5.0, "the leaders' poke is armed")
    try:
        yield b
    finally:
        b.close()


class Waiter:
    """A thread waiting on ``port`` for one packet (``got``, with when it came). ``leads``:
    it first issues a read of its own on the backend (a pipe nobody writes), so that its
    wait leads the ring (it sleeps in io_uring_enter and reaps); otherwise it parks and the
    ring thread reaps."""

    def __init__(self, b: uring.IoUringBackend, port: CompletionPort, leads: bool) -> None:
        self.port = port
        self.got: list[tuple[CompletionPacket | None, float]] = []
        self.received = threading.Lock()
        self.received.acquire()  # released with the packet
        self.parker: Any = None
        self.own: StreamReadOp | None = None
        self.pipe: tuple[FileObject, int] | None = None
        if leads:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self.pipe = FileObject(r, overlapped=True, backend=b), w
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        assert self.ready.wait(LONG)

    def _run(self) -> None:
        if self.pipe is not None:
            self.own = StreamReadOp(self.pipe[0], Overlapped(), [memoryview(bytearray(1))])
            assert start(self.own) == STATUS_PENDING
        self.parker = current_thread_state().parker
        self.ready.set()
        packet = self.port.get(LONG)
        self.got.append((packet, time.monotonic()))
        self.received.release()

    def in_kernel(self) -> bool:
        return bool(getattr(self.parker, "in_kernel", False))

    def close(self) -> None:
        self.thread.join(LONG)
        assert not self.thread.is_alive()
        if self.pipe is not None:
            self.pipe[0].close()  # cancels its own read
            os.close(self.pipe[1])


def _write_later(fd: int, data: str, delay: float = 0.1) -> subprocess.Popen[bytes]:
    """Another process writes ``data`` to ``fd`` (its standard output) after ``delay``
    seconds."""
    return subprocess.Popen(["sh", "-c", f"sleep {delay}; printf {data}"], stdout=fd)


Issue = Callable[[uring.IoUringBackend, CompletionPort], tuple[int, Callable[[], bytes]]]


def _issue_wsarecv(
    b: uring.IoUringBackend, port: CompletionPort, made: list[Any]
) -> tuple[int, Callable[[], bytes]]:
    s, peer = connected_pair(b, port, "sock", LONG)
    made += [s, peer]
    buf = bytearray(16)
    assert s.start_read(buf, Overlapped()) is False  # pends: submitted by this thread
    return peer.fileno(), lambda: bytes(buf)


def _issue_readfile(
    b: uring.IoUringBackend, port: CompletionPort, made: list[Any]
) -> tuple[int, Callable[[], bytes]]:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    # direct=True: no attempt first, the READ goes to the ring as it is (a FILE request that
    # io_uring polls internally: its completion is task work of this thread).
    f = FileObject(r, overlapped=True, seekable=True, direct=True, backend=b)
    f.associate(port, "file")
    made += [f, w]
    buf = bytearray(16)
    op = FileReadOp(f, Overlapped(), [memoryview(buf)], 0)
    made.append(op)
    assert start(op) == STATUS_PENDING
    return w, lambda: bytes(buf)


def _close(made: list[Any]) -> None:
    for x in made:
        if isinstance(x, int):
            os.close(x)
        elif hasattr(x, "close"):
            x.close()


ISSUES = {"wsarecv": _issue_wsarecv, "readfile": _issue_readfile}


def _scene(
    b: uring.IoUringBackend, kind: str, leads: bool, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Waiter, CompletionPort, list[Any], Callable[[], bytes], int, Any]:
    """The waiter in place (leading the ring, or parked), then the request issued - and so
    submitted - by this thread; returns what the test needs."""
    port = CompletionPort()
    parked = kit.park(b, monkeypatch) if leads else None
    waiter = Waiter(b, port, leads)
    if leads:
        wait_until(waiter.in_kernel, LONG, "the waiter leads the ring, in the kernel")
    made: list[Any] = []
    fd, data = ISSUES[kind](b, port, made)
    return waiter, port, made, data, fd, parked


def _finish(
    waiter: Waiter, port: CompletionPort, made: list[Any], parked: Any, data: Callable[[], bytes]
) -> None:
    ((packet, _),) = waiter.got
    assert packet is not None, "the waiter got no packet"
    assert (packet.status, packet.bytes_transferred) == (SUCCESS, 5)
    assert data()[:5] == b"hello"
    if parked is not None:
        parked.release()
    waiter.close()
    _close(made)
    port.close()


@pytest.mark.parametrize("kind", ISSUES)
@pytest.mark.parametrize("leads", [True, False], ids=["leader", "parked"])
@pytest.mark.parametrize("meanwhile", ["spins-in-python", "blocks-in-a-lock"])
def test_the_completion_arrives_while_its_submitter_is_busy(
    backend: uring.IoUringBackend,
    kind: str,
    leads: bool,
    meanwhile: str,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waiter, port, made, data, fd, parked = _scene(backend, kind, leads, kit, monkeypatch)
    writer = _write_later(fd, "hello")
    if meanwhile == "spins-in-python":
        got = waiter.got
        deadline = time.monotonic() + LONG
        while not got and time.monotonic() < deadline:
            pass  # pure Python, no syscall: only an interrupt brings this thread into the kernel
        assert got, "the completion did not arrive while its submitter spun"
    else:
        # Only the waiter releases it, once it has the packet: this thread's task work must
        # run while it sleeps in the lock's futex.
        assert waiter.received.acquire(timeout=LONG), "no packet while the submitter blocked"
    assert writer.wait(LONG) == 0
    _finish(waiter, port, made, parked, data)


@pytest.mark.parametrize("kind", ISSUES)
@pytest.mark.parametrize("sock_impl", ["c"], indirect=True)
def test_the_completion_arrives_while_its_submitter_sleeps(
    backend: uring.IoUringBackend, kind: str, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiter, port, made, data, fd, parked = _scene(backend, kind, True, kit, monkeypatch)
    writer = _write_later(fd, "hello", 0.05)
    slept = time.monotonic() + 1.0
    time.sleep(1.0)  # the data comes after 0.05 s: the packet, long before the sleep ends
    assert waiter.got and waiter.got[0][1] < slept, "the packet waited for the sleep to end"
    assert writer.wait(LONG) == 0
    _finish(waiter, port, made, parked, data)


@pytest.mark.parametrize("slot_impl", ["off"], indirect=True)
@pytest.mark.parametrize("sock_impl", ["python"], indirect=True)
def test_the_knob_and_the_probe_decide_the_ring_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    coop = probe.coop_taskrun()
    assert coop in (0, int(COOP))
    for value, want in (("1", coop), ("0", 0), ("", coop if probe.DEFAULT_COOP else 0)):
        monkeypatch.setenv(probe.COOP_ENV, value)
        assert probe.ring_flags() == want
        b = uring.IoUringBackend()
        try:
            assert b._ring.flags & COOP == want
            detail = b.statistics().detail
            assert ("setup=COOP_TASKRUN|TASKRUN_FLAG;" in detail) is bool(want)
            assert ("setup=none;" in detail) is not bool(want)
        finally:
            b.close()
    monkeypatch.delenv(probe.COOP_ENV)
    assert probe.ring_flags() == (coop if probe.DEFAULT_COOP else 0)


@pytest.mark.parametrize("slot_impl", ["off"], indirect=True)
@pytest.mark.parametrize("sock_impl", ["python"], indirect=True)
@pytest.mark.parametrize("value", ["yes", "on", "off", "true", "2", "01", "1 0", "-1", "\u0661"])
def test_a_knob_value_it_does_not_take_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # Before, anything but "0" meant on: a typo silently picked a side of an A/B comparison.
    monkeypatch.setenv(probe.COOP_ENV, value)
    with pytest.raises(
        ValueError, match=rf"^WINAIO_URING_COOP={re.escape(repr(value))}: one of 0, 1"
    ):
        probe.coop_wanted()
    with pytest.raises(ValueError, match="WINAIO_URING_COOP"):
        probe.ring_flags()
    fds = set(os.listdir("/proc/self/fd"))
    with pytest.raises(ValueError, match="WINAIO_URING_COOP"):
        uring.IoUringBackend()  # refused before the ring is set up: nothing to release
    assert set(os.listdir("/proc/self/fd")) <= fds


@pytest.mark.parametrize("slot_impl", ["off"], indirect=True)
@pytest.mark.parametrize("sock_impl", ["python"], indirect=True)
@pytest.mark.parametrize(
    ("value", "want"), [("1", True), ("0", False), (" 1\n", True), ("\t0 ", False)]
)
def test_the_knob_takes_0_and_1_blanks_around_them_ignored(
    monkeypatch: pytest.MonkeyPatch, value: str, want: bool
) -> None:
    monkeypatch.setenv(probe.COOP_ENV, value)
    assert probe.coop_wanted() is want
    for unset in ("", "  "):
        monkeypatch.setenv(probe.COOP_ENV, unset)
        assert probe.coop_wanted() is probe.DEFAULT_COOP
    monkeypatch.delenv(probe.COOP_ENV)
    assert probe.coop_wanted() is probe.DEFAULT_COOP


@pytest.mark.parametrize("slot_impl", ["off"], indirect=True)
@pytest.mark.parametrize("sock_impl", ["python"], indirect=True)
def test_a_kernel_that_refuses_the_flags_gets_a_plain_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before 5.19 io_uring_setup refuses unknown setup flags with EINVAL: probed once, 0.
    real = probe.abi.Ring
    asked: list[int] = []

    def refusing(entries: int, *, flags: int = 0, **kw: Any) -> Any:
        asked.append(flags)
        if flags & COOP:
            raise OSError(22, "Invalid argument")
        return real(entries, flags=flags, **kw)

    monkeypatch.setattr(probe.abi, "Ring", refusing)
    monkeypatch.setattr(probe, "_coop", None)
    assert probe.coop_taskrun() == 0
    assert probe.coop_taskrun() == 0 and asked == [int(COOP)]  # probed once
    monkeypatch.delenv(probe.COOP_ENV, raising=False)
    b = uring.IoUringBackend(coop=True)  # asked for, not there: no COOP either
    try:
        assert not b._ring.flags & COOP
    finally:
        b.close()
