"""The backend contract suite: one set of tests, run against every I/O backend (uvloop style).

Every test takes the ``io`` fixture, parametrized over ``BACKENDS``: each test body runs once
on a fresh ``IoUringBackend`` and once on a fresh ``ThreadBackend``. The io_uring parameter is
skipped, with the probe's reason, where io_uring cannot work.

The tests drive a backend through the real I/O layer - ``FileObject``, the operation classes,
``_files.start`` / ``request_cancel``, ``Overlapped``, ``CompletionPort``, kernel events - on
temporary files, pipes, socketpairs and loopback TCP; never through ``winaio.win32`` (the
Win32 conformance suite, tests/conformance_io, does that).

Rules:
- No test sleeps to synchronise. Waits are kernel waits (events, ports, thread objects) bounded
  by ``LONG`` (a broken backend fails, it does not hang); a wait expected to time out uses
  ``SHORT``.
- Every operation is created through the fixture as a *counted* subclass that records each
  ``complete()`` call (the backend's only way to finish it), whether the buffers it was given
  were still alive at that moment, and which thread made the call. A second call is recorded
  whenever it happens, and the fixture fails the test for it after the backend has closed.
- The fixture closes every file, port and the backend, then checks that no descriptor and no
  thread was leaked (``/proc/self/fd``, ``threading.enumerate()``).

Helpers are methods of the ``io`` fixture (``--import-mode=importlib``: test modules cannot
import this file).
"""

from __future__ import annotations

import gc
import mmap
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from winaio._backends._threads import ThreadBackend
from winaio._backends.uring import IoUringBackend, probe_backend
from winaio._io._backend import Backend
from winaio._io._files import FileObject, request_cancel
from winaio._io._issue import start
from winaio._io._ops import FileReadOp, FileWriteOp, Operation
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPacket, CompletionPort
from winaio._io._stream_ops import AcceptOp, ConnectOp, StreamReadOp, StreamWriteOp
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio._kernel._wait import wait_for_one
from winaio.codes import NtStatus, WaitCode

BACKENDS = ["io_uring", "threads"]
LONG = 5.0
SHORT = 0.1

SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
END_OF_FILE = int(NtStatus.STATUS_END_OF_FILE)
PIPE_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
CONNECTION_RESET = int(NtStatus.STATUS_CONNECTION_RESET)
WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
BLOCK = 4096


class Buf(bytearray):
    """A bytearray that can be weakly referenced (to watch a buffer's lifetime)."""


_count_lock = threading.Lock()
_counted_classes: dict[type[Operation], type[Operation]] = {}
#: Every second (third...) ``complete`` call seen, whenever it happens; the fixture fails the
#: test if any is recorded (a late duplicate can land after the test's own checks).
violations: list[str] = []


def counted(cls: type[Operation]) -> type[Operation]:
    """``cls`` with ``complete`` instrumented (see the module docstring)."""
    sub = _counted_classes.get(cls)
    if sub is not None:
        return sub

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        self.calls = 0
        self.watch = []
        self.alive_at_complete = None
        self.completer = None
        self.completer_waiting = False

    def complete(self: Any, status: int, information: int) -> None:
        with _count_lock:
            self.calls += 1
            if self.calls > 1:
                violations.append(f"{self!r} completed {self.calls} times (status {status:#x})")
            self.alive_at_complete = all(ref() is not None for ref in self.watch)
            self.completer = threading.current_thread().name
            # A thread blocked in a wait that reaps the ring for the backend (``lead``); once
            # a delivery of the batch it reaps ended its wait in place, it is still in it,
            # awake (``awake_in_wait``, ``_kernel._dispatcher.Parker``).
            ts = current_thread_state()
            self.completer_waiting = ts.wait is not None or ts.awake_in_wait
        cls.complete(self, status, information)

    sub = type(
        f"Counted{cls.__name__}",
        (cls,),
        {
            "__slots__": ("alive_at_complete", "calls", "completer", "completer_waiting", "watch"),
            "__init__": __init__,
            "complete": complete,
        },
    )
    _counted_classes[cls] = sub
    return sub


class Req:
    """One issued request: its op, OVERLAPPED, event and the status ``start`` returned."""

    def __init__(self, op: Any, ov: Overlapped, event: Event | None, started: int) -> None:
        self.op = op
        self.ov = ov
        self.event = event
        self.started = started

    @property
    def pending(self) -> bool:
        return self.started == STATUS_PENDING

    def wait(self, timeout: float = LONG) -> tuple[int, int]:
        """Wait for the request's event; return (status, information)."""
        assert self.event is not None, "request issued without an event"
        code = wait_for_one(self.event, timeout, False)
        assert code == WAIT_OBJECT_0, f"{self.op!r} did not complete within {timeout}s"
        return self.ov.status, self.ov.information

    def is_done(self) -> bool:
        return bool(self.op.done)

    def cancel(self) -> bool:
        return request_cancel(self.op)


class IO:
    """The ``io`` fixture: one backend plus helpers that make files and issue requests."""

    Buf = Buf

    def __init__(
        self, name: str, backend: Backend, tmp_path: Path, threads_before: set[threading.Thread]
    ) -> None:
        self.name = name
        self.backend = backend
        #: Threads that existed before the backend was created (process-wide ones included).
        self.threads_before = threads_before
        self.tmp_path = tmp_path
        self._files: list[FileObject] = []
        self._ports: list[CompletionPort] = []
        self._socks: list[socket.socket] = []
        self._serial = 0

    # -- objects -----------------------------------------------------------------------------
    def file(self, data: bytes = b"", *, direct: bool = False) -> FileObject:
        """A temporary regular file holding ``data``, open for overlapped I/O."""
        self._serial += 1
        path = self.tmp_path / f"file{self._serial}"
        path.write_bytes(data)
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_DIRECT if direct else 0)
        fd = os.open(path, flags)
        return self.adopt(
            FileObject(
                fd,
                overlapped=True,
                seekable=True,
                direct=direct,
                path=str(path),
                backend=self.backend,
            )
        )

    def pipe(self) -> tuple[FileObject, FileObject]:
        """(read end, write end), both non-blocking."""
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        return self.stream(r), self.stream(w)

    def stream(self, fd: int, sock: socket.socket | None = None) -> FileObject:
        return self.adopt(FileObject(fd, overlapped=True, sock=sock, backend=self.backend))

    def sock(self, sock: socket.socket) -> FileObject:
        sock.setblocking(False)
        return self.stream(sock.fileno(), sock)

    def socketpair(self) -> tuple[FileObject, FileObject]:
        a, b = socket.socketpair()
        return self.sock(a), self.sock(b)

    def listener(self) -> FileObject:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        return self.sock(s)

    def tcp_pair(self) -> tuple[FileObject, FileObject]:
        """A connected loopback TCP pair (client, server) as file objects."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lst:
            lst.bind(("127.0.0.1", 0))
            lst.listen(1)
            client = socket.create_connection(lst.getsockname())
            server, _ = lst.accept()
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.sock(client), self.sock(server)

    def adopt(self, f: FileObject) -> FileObject:
        self._files.append(f)
        return f

    def port(self, files: Sequence[FileObject] = (), key: Any = None) -> CompletionPort:
        """A completion port; ``files`` are associated with it (key = ``key`` or the file)."""
        port = CompletionPort()
        self._ports.append(port)
        for f in files:
            f.associate(port, f if key is None else key)
        return port

    # -- requests ----------------------------------------------------------------------------
    def issue(
        self,
        cls: type[Operation],
        *args: Any,
        event: bool = True,
        offset: int = 0,
        watch: Sequence[object] = (),
        **kwargs: Any,
    ) -> Req:
        """Create a counted ``cls(file, overlapped, *args)`` and ``start`` it."""
        file, *rest = args
        return self.issue_with(
            lambda ov: counted(cls)(file, ov, *rest, **kwargs),
            event=event,
            offset=offset,
            watch=watch,
        )

    def issue_with(
        self,
        make: Callable[[Overlapped], Any],
        *,
        event: bool = True,
        offset: int = 0,
        watch: Sequence[object] = (),
    ) -> Req:
        """``start`` the counted op ``make(overlapped)`` returns."""
        ev = Event(manual_reset=True) if event else None
        ov = Overlapped(offset, ev)
        op = make(ov)
        op.watch = [weakref.ref(obj) for obj in watch]
        return Req(op, ov, ev, start(op))

    def read(self, f: FileObject, size: int | Buf, offset: int = 0, **kw: Any) -> Req:
        """ReadFile of ``size`` bytes (or into the given buffer), watching the buffer."""
        buf = Buf(size) if isinstance(size, int) else size
        cls = FileReadOp if f.seekable else StreamReadOp
        args = (f, [memoryview(buf)], offset) if f.seekable else (f, [memoryview(buf)])
        req = self.issue(cls, *args, offset=offset, watch=[buf], **kw)
        req.buffer = buf  # type: ignore[attr-defined]
        return req

    def write(self, f: FileObject, data: bytes, offset: int = 0, **kw: Any) -> Req:
        """WriteFile of ``data`` (from a watched private copy)."""
        buf = Buf(data)
        cls = FileWriteOp if f.seekable else StreamWriteOp
        args = (f, [memoryview(buf)], offset) if f.seekable else (f, [memoryview(buf)])
        req = self.issue(cls, *args, offset=offset, watch=[buf], **kw)
        req.buffer = buf  # type: ignore[attr-defined]
        return req

    def accept(self, listener: FileObject, receive: int = 0, **kw: Any) -> tuple[Req, FileObject]:
        """AcceptEx into a fresh socket; returns the request and that socket's file object."""
        target = self.sock(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        buf = Buf(receive) if receive else None
        view = memoryview(buf) if buf is not None else None
        watch = [buf] if buf is not None else []
        req = self.issue_with(
            lambda ov: counted(AcceptOp)(listener, target, ov, view), watch=watch, **kw
        )
        req.buffer = buf  # type: ignore[attr-defined]
        return req, target

    def connect(self, address: Any, send: bytes = b"", **kw: Any) -> tuple[Req, FileObject]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        f = self.sock(s)
        view = memoryview(Buf(send)) if send else None
        return self.issue_with(lambda ov: counted(ConnectOp)(f, ov, address, view), **kw), f

    @staticmethod
    def fill(f: FileObject) -> int:
        """Write into a non-blocking stream until not even one more byte fits (so that any
        further write pends); returns the bytes written."""
        total, chunk = 0, 1 << 16
        while chunk:
            try:
                if f.sock is not None:
                    total += f.sock.send(b"\xee" * chunk)
                else:
                    total += os.write(f.fd, b"\xee" * chunk)
            except BlockingIOError:
                chunk //= 2
        return total

    @staticmethod
    def packets(port: CompletionPort, n: int, timeout: float = LONG) -> list[CompletionPacket]:
        """Dequeue exactly ``n`` packets (batched), failing after ``timeout``."""
        got: list[CompletionPacket] = []
        deadline = _now() + timeout
        while len(got) < n:
            left = deadline - _now()
            assert left > 0, f"only {len(got)} of {n} completion packets after {timeout}s"
            _, batch = port.get_many(n - len(got), left)
            got += batch
        return got

    @staticmethod
    def wait_until(predicate: Callable[[], bool], what: str, timeout: float = LONG) -> None:
        from winaio.testing import wait_until

        wait_until(predicate, timeout, what)

    def aligned(self, size: int) -> mmap.mmap:
        """Page-aligned anonymous memory (O_DIRECT buffers)."""
        return mmap.mmap(-1, size)

    def close_when_released(self, memory: mmap.mmap) -> None:
        """Close ``memory`` once no request pins it any more. A backend may drop its last
        reference just after delivering a completion (its thread is still returning from
        ``complete``), so this waits - boundedly - rather than demanding it at once."""

        def closed() -> bool:
            try:
                memory.close()
            except BufferError:
                gc.collect()
                return False
            return True

        self.wait_until(closed, "the backend releases every buffer export")

    def wait_released(self, ref: weakref.ref[Any]) -> None:
        """Wait (bounded) until the object behind ``ref`` is gone (see close_when_released)."""

        def gone() -> bool:
            gc.collect()
            return ref() is None

        self.wait_until(gone, "the backend drops the request and its buffer")

    # -- teardown ----------------------------------------------------------------------------
    def new_threads(self) -> list[threading.Thread]:
        """Threads started since the backend was created (its own, and any a test started)."""
        return [t for t in threading.enumerate() if t not in self.threads_before]

    def close_all(self) -> None:
        for f in self._files:
            f.close()
        self.backend.close()
        for f in self._files:
            assert f.pending_requests == 0, f"{f!r}: requests left after the backend closed"
            assert f.fd == -1, f"{f!r}: descriptor not released"
        for port in self._ports:
            port.close()


def _now() -> float:
    import time

    return time.monotonic()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def make_backend(name: str) -> Backend:
    if name == "io_uring":
        ok, reason = probe_backend()
        if not ok:
            pytest.skip(f"io_uring backend unavailable: {reason}")
        return IoUringBackend()
    return ThreadBackend()


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def io(backend_name: str, tmp_path: Path) -> Iterator[IO]:
    gc.collect()
    violations.clear()
    fds_before = _fds()
    threads_before = set(threading.enumerate())
    harness = IO(backend_name, make_backend(backend_name), tmp_path, threads_before)
    try:
        yield harness
    finally:
        harness.close_all()
    del harness
    assert not violations, f"completed more than once: {violations}"
    leaked_fds = {fd: _readlink(fd) for fd in _fds() - fds_before}
    assert not leaked_fds, f"descriptors leaked: {leaked_fds}"
    leaked_threads = [t for t in threading.enumerate() if t not in threads_before]
    assert not leaked_threads, f"threads leaked: {leaked_threads}"


def _readlink(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
