"""Fixtures shared by the io_uring tests (the suite runs with ``--import-mode=importlib``, so
shared helpers are fixtures rather than imported modules)."""

from __future__ import annotations

import contextlib
import mmap
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import winaio.testing as wt
from winaio._backends import uring
from winaio._io import _disk
from winaio._io._disk import DiskFile
from winaio._io._files import FileObject
from winaio._io._issue import start
from winaio._io._ops import FileWriteOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._objects import Event
from winaio._kernel._wait import wait_for_one
from winaio.testing import wait_until


def _sq_poller_threads() -> set[str]:
    """Native ids of this process's io_uring SQ poller threads (``iou-sqp-<pid>``).

    A poller names itself (set_task_comm in io_sq_thread) only once it first runs, so callers
    wait for a new one to appear rather than expect it right after io_uring_setup.
    """
    out = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().startswith("iou-sqp"):
                    out.add(tid)
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread exited after listdir (open: ENOENT) or after open (read: ESRCH)
    return out


@pytest.fixture
def sq_pollers() -> Callable[[], set[str]]:
    """A function listing this process's SQ poller threads (see :func:`_sq_poller_threads`)."""
    return _sq_poller_threads


class ParkedRingThread:
    """Hold an io_uring backend's ring thread at the top of its loop (where it holds no lock)
    until :meth:`release`: what happens meanwhile happens without it. ``rounds``: its round
    count when parked (it must not move). :meth:`release` returns once the ring thread made
    the eventfd read it was parked in (that read takes every write made until then: made
    late, it would take a later wake-up meant for a later round - test_fastpend's ``_parked``)."""

    def __init__(self, b: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.inside = threading.Event()
        self.left = threading.Event()
        real = os.eventfd_read

        def parked(fd: int) -> int:
            if threading.current_thread() is b._ring_thread.thread:
                self.inside.set()
                self.gate.wait()
                try:
                    return real(fd)
                finally:
                    self.left.set()
            return real(fd)

        monkeypatch.setattr(os, "eventfd_read", parked)
        os.eventfd_write(b._efd, 1)  # make it start a round
        assert self.inside.wait(UringKit.LONG)
        self.rounds = b._ring_thread.rounds

    def release(self) -> None:
        self.gate.set()
        assert self.left.wait(UringKit.LONG)


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt (a BaseException raised by a signal handler)."""


class UringKit:
    """Helpers shared by the io_uring backend tests (``uring`` fixture)."""

    LONG = 5.0
    park = ParkedRingThread
    Interrupted = Interrupted

    @staticmethod
    def fds() -> dict[str, str]:
        """Open descriptors and what they are (the listing's own directory fd is gone)."""
        out = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                out[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except FileNotFoundError:
                pass
        return out

    @staticmethod
    def wait(ev: Any, timeout: float = LONG) -> None:
        assert wait_for_one(ev, timeout, False) == 0, f"no completion within {timeout}s"

    @staticmethod
    def write(f: FileObject, data: bytes, offset: int) -> tuple[FileWriteOp, Event]:
        """Issue a positioned write with its own event (it must pend)."""
        ev = Event(manual_reset=True)
        op = FileWriteOp(f, Overlapped(offset, ev), [memoryview(data)], offset)
        assert start(op) == STATUS_PENDING
        return op, ev

    @staticmethod
    def pipe(b: Any) -> tuple[FileObject, int]:
        """An overlapped read end on backend ``b`` and the raw write end."""
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        return FileObject(r, overlapped=True, backend=b), w

    @staticmethod
    @contextlib.contextmanager
    def absent_owner(b: Any) -> Iterator[tuple[Event, list[StreamReadOp], int]]:
        """A thread that leads backend ``b`` once (a pipe read it waits for), then issues a
        second read (2 bytes, into the event given) and goes away, owning the ring but never
        waiting on it again: yields ``(event, [the read once issued], its pipe's write end)``;
        at exit the thread ends and both pipes close (the watch's takeover tests)."""
        reader, w = UringKit.pipe(b)
        other, w2 = UringKit.pipe(b)
        ev = Event(manual_reset=True)
        gone = threading.Event()
        issued: list[StreamReadOp] = []

        def owner() -> None:
            first = Event(manual_reset=True)
            op = StreamReadOp(reader, Overlapped(0, first), [memoryview(bytearray(1))])
            assert start(op) == STATUS_PENDING
            threading.Timer(0.02, os.write, (w, b"1")).start()
            UringKit.wait(first)  # leads and owns the ring from now on
            op2 = StreamReadOp(other, Overlapped(0, ev), [memoryview(bytearray(2))])
            assert start(op2) == STATUS_PENDING
            issued.append(op2)
            gone.wait(UringKit.LONG)  # busy elsewhere: never waits on the ring again

        t = threading.Thread(target=owner)
        t.start()
        try:
            yield ev, issued, w2
        finally:
            gone.set()
            t.join(UringKit.LONG)
            for f, fd in ((reader, w), (other, w2)):
                f.close()
                os.close(fd)

    @staticmethod
    def file(b: Any, path: Any, direct: bool = False) -> FileObject:
        """A regular file on backend ``b``; ``direct``: O_DIRECT (skips if unsupported)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        if direct:
            try:
                fd = os.open(path, flags | os.O_DIRECT)
            except OSError as exc:
                pytest.skip(f"no O_DIRECT here: {exc}")
        else:
            fd = os.open(path, flags)
        return FileObject(fd, overlapped=True, seekable=True, direct=direct, backend=b)


@pytest.fixture
def kit() -> type[UringKit]:
    """The io_uring tests' helpers (:class:`UringKit`)."""
    return UringKit


@pytest.fixture
def armed_uring() -> Iterator[uring.IoUringBackend]:
    """An io_uring backend whose leaders' poke is armed (so a test's first wait leads the
    ring at once), closed after the test. Callers skip where io_uring is unavailable."""
    b = uring.IoUringBackend()
    wait_until(lambda: not b._lead.closed, 5.0, "the leaders' poke is armed")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def socket_pair() -> Iterator[Callable[..., tuple[Socket, socket.socket]]]:
    """``socket_pair(backend=None)``: a connected loopback TCP pair, (an overlapped winaio
    ``Socket`` on ``backend`` or the current one, a plain blocking peer socket); both closed
    after the test."""
    made: list[tuple[Socket, socket.socket]] = []

    def make(backend: Any = None) -> tuple[Socket, socket.socket]:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            peer = socket.create_connection(listener.getsockname(), timeout=UringKit.LONG)
            sock, _ = listener.accept()
        sock.setblocking(False)
        made.append((Socket(sock.fileno(), overlapped=True, sock=sock, backend=backend), peer))
        return made[-1]

    yield make
    for s, peer in made:
        s.close()
        peer.close()


@pytest.fixture
def bound_file(tmp_path: Any) -> Iterator[Callable[..., tuple[FileObject, CompletionPort]]]:
    """``bound_file(b, direct=False)``: a regular file on backend ``b`` (``tmp_path / "f"``,
    :meth:`UringKit.file`) bound to a new completion port under the key ``"f"``; both are
    closed after the test (request this fixture after the backend's, so that they close
    first)."""
    made: list[tuple[FileObject, CompletionPort]] = []

    def make(b: Any, direct: bool = False) -> tuple[FileObject, CompletionPort]:
        f = UringKit.file(b, tmp_path / "f", direct)
        port = CompletionPort()
        f.associate(port, "f")
        made.append((f, port))
        return f, port

    yield make
    for f, port in made:
        f.close()
        port.close()


@pytest.fixture
def interrupt_once(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., list[tuple[Any, ...]]]:
    """``interrupt_once(owner, name, run=False)``: the next call of ``owner.name`` (a module's
    function or a class's method) records its arguments, puts the real one back, runs it if
    ``run`` (the interrupt then lands after the step), and raises :class:`Interrupted` where a
    signal handler would. Returns the list the arguments are recorded in."""

    def arm(owner: Any, name: str, run: bool = False) -> list[tuple[Any, ...]]:
        real = getattr(owner, name)
        calls: list[tuple[Any, ...]] = []

        def interrupted(*args: Any) -> Any:
            calls.append(args)
            monkeypatch.setattr(owner, name, real)  # once
            if run:
                real(*args)
            raise Interrupted

        monkeypatch.setattr(owner, name, interrupted)
        return calls

    return arm


@pytest.fixture
def parked_port(
    kit: type[UringKit], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Any], CompletionPort]]:
    """``parked_port(b)``: a new completion port, with ``b``'s ring thread parked
    (:class:`ParkedRingThread`: nothing but the test's own wait reaps); released and closed
    after the test."""
    made: list[tuple[ParkedRingThread, CompletionPort]] = []

    def make(b: Any) -> CompletionPort:
        port = CompletionPort()
        made.append((kit.park(b, monkeypatch), port))
        return port

    yield make
    for parked, port in made:
        parked.release()
        port.close()


@pytest.fixture
def disk_data(tmp_path: Path) -> tuple[Path, bytes]:
    """A 1 MiB file of random bytes (``tmp_path / "disk"``) and its contents."""
    path = tmp_path / "disk"
    content = os.urandom(1 << 20)
    path.write_bytes(content)
    return path, content


@pytest.fixture
def disk(armed_uring: uring.IoUringBackend, disk_data: tuple[Path, bytes]) -> Iterator[DiskFile]:
    """An O_DIRECT DiskFile of :func:`disk_data` on the test's own io_uring backend (skips
    where the file system has no O_DIRECT)."""
    try:
        fd = os.open(disk_data[0], os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
    except OSError as exc:
        pytest.skip(f"no O_DIRECT here: {exc}")
    f = DiskFile(fd, overlapped=True, direct=True, seekable=True, backend=armed_uring)
    yield f
    f.close()


@pytest.fixture
def port(disk: DiskFile) -> Iterator[CompletionPort]:
    """A completion port :func:`disk` is associated with (key ``"disk"``)."""
    p = CompletionPort()
    disk.associate(p, "disk")
    yield p
    p.close()


@pytest.fixture
def aligned() -> Iterator[Callable[[int], memoryview]]:
    """``aligned(nbytes)``: a page-aligned writable view (an anonymous mmap: O_DIRECT
    buffers), released after the test."""
    made: list[tuple[mmap.mmap, memoryview]] = []

    def make(nbytes: int) -> memoryview:
        memory = mmap.mmap(-1, nbytes)
        made.append((memory, memoryview(memory)))
        return made[-1][1]

    yield make
    for memory, view in made:
        view.release()
        memory.close()


@pytest.fixture(params=["c", "python"])
def fast_path_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """The cached-read fast path (``DiskFile.read_now``/``start_read``) in its C accelerator
    and in Python, in turn (``_disk.use_accelerator``). The C run skips when the accelerator was
    not built, and fails instead under CI (WINAIO_REQUIRE_ACCEL=1)."""
    impl: str = request.param
    if impl == "c" and not _disk.accelerator_available():
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            pytest.fail("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
        pytest.skip("the C accelerator (winaio._io._fastio) was not built")
    before = _disk.use_accelerator(impl == "c")
    try:
        yield impl
    finally:
        _disk.use_accelerator(before)


@pytest.fixture(params=["c", "python"])
def sock_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """The sockets' immediate paths (``Socket.start_read``/``start_write``) in their C
    accelerator (``_fastsock.c``) and in Python, in turn (``winaio.testing.accelerator_for_test``).
    Socket suites use it module-wide: ``pytestmark = pytest.mark.usefixtures("sock_impl")``."""
    with wt.accelerator_for_test(request.param) as impl:
        yield impl


@pytest.fixture
def slots_off() -> Iterator[str]:
    """The sockets' pended receives as requests (receive slots ``off``): tests of the request
    path itself (its request object, table entry, line, their interrupt cuts)."""
    with wt.slots_for_test("off") as mode:
        yield mode


@pytest.fixture(params=["off", "py", "c"])
def slot_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """The sockets' pended receive as a request (``off``), on the Python receive slot
    (``py``) and on the C one (``c``), in turn (``winaio.testing.slots_for_test``). A test
    of the request path itself pins ``off``:
    ``@pytest.mark.parametrize("slot_impl", ["off"], indirect=True)``."""
    with wt.slots_for_test(request.param) as mode:
        yield mode


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the parametrisations that cannot run (the C receive slot with the C paths
    switched off) instead of skipping them (``winaio.testing.split_impossible_slot_items``)."""
    kept, impossible = wt.split_impossible_slot_items(items, str(Path(__file__).parent))
    if impossible:
        config.hook.pytest_deselected(items=impossible)
        items[:] = kept
