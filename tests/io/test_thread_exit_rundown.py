"""Thread exit waits for its cancelled non-port I/O before the thread object is signaled (the
rundown, ``_io._cancel``; spec §8, [MS:Canceling IRPs]: IoCancelThreadIo cancels the thread's
IRPs and waits for them to complete before the thread terminates).

A cancel only *asks* the backend: io_uring may answer ASYNC_CANCEL with -EALREADY while the
read executes, the thread backend's reactor takes the cancel later. Each test forces that case
deterministically: the backend's cancel is held (recorded, not acted on) until the test lets
the request finish. While it is held, the exiting thread's object must stay unsignaled; once
the request completes - with its data (the data raced in: a finished request is not cancelled)
or cancelled (the held cancel takes effect) - the thread object is signaled, and a thread that
sees it signaled sees the request complete. So nothing written after the thread's end was
observed can feed a "dead" thread's read (the ``winaio demo`` part 2 flake).

No test sleeps to synchronise: threads are joined by waiting on their thread object; the hook
is known to wait once the held cancel was called (a ``threading.Event``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio._io._cancel as cancelling
import winaio._kernel._threads as threads_mod
from winaio._backends import uring
from winaio._backends._threads import ThreadBackend
from winaio._backends.uring import backend as backend_mod
from winaio._backends.uring.streams import Line
from winaio._backends.uring.submission import Submission
from winaio._io._files import FileObject
from winaio._io._issue import start
from winaio._io._ops import Operation
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._objects import Event
from winaio._kernel._threads import KThread, start_thread
from winaio._kernel._wait import wait_for_one
from winaio.codes import NtStatus, WaitCode
from winaio.testing import wait_until

SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
WAIT_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
LONG = 5.0

URING_OK, URING_REASON = uring.probe_backend()


class HeldCancel:
    """Holds the backend's cancel of requests on one file: ``called`` is set when the exit hook
    asked for it; ``release()`` lets the cancel take effect (the real backend call)."""

    def __init__(self, backend: Any, reader: FileObject, monkeypatch: pytest.MonkeyPatch) -> None:
        self.backend = backend
        self.reader = reader
        self.called = threading.Event()
        self._release: Callable[[], None] | None = None
        if isinstance(backend, uring.IoUringBackend):
            self._hold_uring(monkeypatch)
        else:
            self._hold_threads(monkeypatch)

    def _hold_uring(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Every ASYNC_CANCEL goes through the SQ side's cancel_locked: the I/O layer's
        # (``cancel``) and the backend's own migration at thread exit. Held = the kernel
        # answered -EALREADY.
        backend = self.backend
        real = Submission.cancel_locked
        held: list[int] = []

        def cancel_locked(sq: Any, target: int, ts: Any = None) -> bool:
            entry = sq._table.get(target)
            if sq is backend._sq and entry is not None and entry[0].file is self.reader:
                held.append(target)
                self.called.set()
                return False
            return real(sq, target, ts)

        def release() -> None:
            wake = False
            with backend._lock:
                for ud in held:
                    wake = real(backend._sq, ud) or wake
            if wake:
                os.eventfd_write(backend._efd, 1)

        monkeypatch.setattr(Submission, "cancel_locked", cancel_locked)
        self._release = release

    def _hold_threads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        backend = self.backend
        real = ThreadBackend.cancel
        held: list[Operation] = []

        def cancel(b: Any, op: Operation) -> None:
            if b is backend and op.file is self.reader:
                held.append(op)
                self.called.set()
                return
            real(b, op)

        def release() -> None:
            for op in held:
                real(backend, op)

        monkeypatch.setattr(ThreadBackend, "cancel", cancel)
        self._release = release

    def release(self) -> None:
        assert self._release is not None
        self._release()

    def in_backend(self, op: Operation) -> bool:
        """``op`` reached the backend's waiting machinery: a cancel must go through it (the
        io_uring line's poll is in the kernel; the thread backend's reactor took it in)."""
        token = op.token
        if isinstance(self.backend, uring.IoUringBackend):
            return token.__class__ is Line and token.poll_ud in self.backend._table
        return isinstance(token, int)


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "io_uring":
        if not URING_OK:
            pytest.skip(f"io_uring backend unavailable: {URING_REASON}")
        b: Any = uring.IoUringBackend()
        wait_until(lambda: not b._lead.closed, LONG, "the leaders' poke is armed")
    else:
        b = ThreadBackend()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def pipe(backend: Any) -> Iterator[tuple[FileObject, int]]:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    reader = FileObject(r, overlapped=True, backend=backend)
    yield reader, w
    reader.close()
    os.close(w)


def exiting_reader(held: HeldCancel, buf: bytearray) -> tuple[KThread, list[Operation]]:
    """A thread that issues a pending read (event-bound, no port: it dies with the thread,
    §8) on ``held.reader`` and exits once the backend has it."""
    issued: list[Operation] = []
    reader = held.reader

    def body() -> int:
        op = StreamReadOp(reader, Overlapped(0, Event(manual_reset=True)), [memoryview(buf)])
        assert start(op) == STATUS_PENDING
        issued.append(op)
        wait_until(lambda: held.in_backend(op), LONG, "the backend has the read")
        return 7

    return start_thread(body), issued


def assert_held_open(thread: KThread, op: Operation) -> None:
    """The exit hook waits: the request is pending, the thread object unsignaled."""
    assert not op.done and op.overlapped.status == STATUS_PENDING
    assert wait_for_one(thread, 0, False) == WAIT_TIMEOUT
    assert thread.is_alive and thread.exit_code is None


def test_exit_waits_for_a_cancel_that_finds_the_read_executing(
    backend: Any, pipe: tuple[FileObject, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # spec: win32 #109 (non-port I/O dies with its thread: the thread ends after it)
    reader, w = pipe
    held = HeldCancel(backend, reader, monkeypatch)
    buf = bytearray(8)
    thread, issued = exiting_reader(held, buf)
    assert held.called.wait(LONG), "the exit hook asked to cancel the read"
    (op,) = issued
    assert_held_open(thread, op)
    held.release()  # the cancel takes effect now
    assert wait_for_one(thread, LONG, False) == WAIT_OBJECT_0
    # Signaled => every non-port request of the thread has completed.
    assert op.done and op.overlapped.status == CANCELLED
    assert thread.exit_code == 7 and not thread.is_alive
    os.write(w, b"too late")  # written after the thread's end: nobody takes it
    assert os.read(reader.fd, 8) == b"too late"
    assert reader.pending_requests == 0


def test_a_read_the_data_reached_first_completes_with_it_before_the_thread_ends(
    backend: Any, pipe: tuple[FileObject, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows: cancelling is a request; an IRP that completed is not cancelled (§7).
    reader, w = pipe
    held = HeldCancel(backend, reader, monkeypatch)
    buf = bytearray(8)
    thread, issued = exiting_reader(held, buf)
    assert held.called.wait(LONG), "the exit hook asked to cancel the read"
    (op,) = issued
    assert_held_open(thread, op)
    os.write(w, b"raced in")  # the read was still executing: it takes the data
    assert wait_for_one(thread, LONG, False) == WAIT_OBJECT_0
    assert op.done
    assert (op.overlapped.status, op.overlapped.information) == (SUCCESS, 8)
    assert bytes(buf) == b"raced in"
    held.release()  # (a cancel of a finished request: nothing happens)
    assert reader.pending_requests == 0


def test_the_rundown_is_bounded(
    backend: Any, pipe: tuple[FileObject, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request whose cancel never takes effect: the thread object is signaled anyway after
    # RUNDOWN_TIMEOUT (Windows: after 5 minutes the IRP is disassociated from the thread).
    monkeypatch.setattr(cancelling, "RUNDOWN_TIMEOUT", 0.05)
    reader, _ = pipe
    held = HeldCancel(backend, reader, monkeypatch)
    buf = bytearray(8)
    thread, issued = exiting_reader(held, buf)
    assert wait_for_one(thread, LONG, False) == WAIT_OBJECT_0
    assert held.called.is_set()
    (op,) = issued
    assert not op.done  # given up on, still pending
    held.release()
    wait_until(lambda: op.done, LONG, "the released cancel completes the read")
    assert op.overlapped.status == CANCELLED


def test_wait_for_rundown_returns_at_once_for_completed_requests() -> None:
    class Done:
        done = True

    assert cancelling.wait_for_rundown([Done(), Done()], 0) is True  # type: ignore[list-item]
    assert cancelling.wait_for_rundown([], 0) is True


@pytest.mark.skipif(not URING_OK, reason=f"io_uring backend unavailable: {URING_REASON}")
def test_the_io_layer_cancels_before_the_backend_migrates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exit hooks run in their documented order (``_kernel._threads``: EXIT_CANCEL_IO, then
    EXIT_MIGRATE_IO): the I/O layer cancels the thread's non-port read and waits for its
    rundown; the backend's migration then finds nothing of it to cancel (it never sends its
    own cancel, with the exiting thread, for a request that dies with the thread)."""
    b = uring.IoUringBackend()
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    reader = FileObject(r, overlapped=True, backend=b)
    calls: list[str] = []
    real_cancel = cancelling._cancel_thread_io
    real_migrate = backend_mod._thread_exited

    def recorded(name: str, hook: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(ts: Any) -> None:
            calls.append(name)
            hook(ts)

        return run

    names = {real_cancel: "cancel", real_migrate: "migrate"}
    hooks = [recorded(names[h], h) if h in names else h for h in threads_mod._exit_hooks]
    monkeypatch.setattr(threads_mod, "_exit_hooks", hooks)
    real_locked = Submission.cancel_locked
    migration_cancels: list[int] = []

    def cancel_locked(sq: Any, target: int, ts: Any = None) -> bool:
        if sq is b._sq and ts is not None:
            migration_cancels.append(target)
        return real_locked(sq, target, ts)

    monkeypatch.setattr(Submission, "cancel_locked", cancel_locked)
    try:
        wait_until(lambda: not b._lead.closed, LONG, "the leaders' poke is armed")
        issued: list[Operation] = []

        def body() -> None:
            op = StreamReadOp(
                reader, Overlapped(0, Event(manual_reset=True)), [memoryview(bytearray(8))]
            )
            assert start(op) == STATUS_PENDING
            issued.append(op)
            wait_until(
                lambda: op.token.__class__ is Line and op.token.poll_ud in b._table,
                LONG,
                "the backend has the read",
            )

        thread = start_thread(body)
        assert wait_for_one(thread, LONG, False) == WAIT_OBJECT_0
        [op] = issued
        assert op.done and op.overlapped.status == CANCELLED
        assert calls == ["cancel", "migrate"]
        assert migration_cancels == []
    finally:
        reader.close()
        os.close(w)
        b.close()
