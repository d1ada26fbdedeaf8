"""Shared fixtures for the Win32 I/O conformance suite (acceptance behaviours 48-111 and
118-120 of ``win32-async-spec.md`` §11), written against the ``winaio.win32`` alias layer.

Every test that creates an I/O handle (file, pipe, socket, completion port) takes the ``io``
fixture, which depends on the parametrized ``backend`` fixture: the test runs once per I/O
backend ("io_uring", "threads") inside ``winaio.testing.using_backend``. The io_uring
parameter is skipped (with the reason) only when ``available_backends()`` lacks it.

Rules followed by every test in this directory (same as tests/conformance):
- no test sleeps to synchronise: threads are created with ``CreateThread`` and joined by
  waiting on their thread handle; "the other thread is blocked now" is established with
  ``winaio.testing.wait_until_blocked`` / ``wait_until_waiters`` / ``wait_until``;
- every wait that must succeed has a 5000 ms bound so a broken implementation fails instead of
  hanging; waits whose expected outcome is a timeout use 100 ms (300 ms where another thread
  must still be waiting when the main thread acts);
- every handle, socket and thread a test creates is closed / joined (the ``io`` fixture
  closes whatever a failing test left behind).

Helpers are methods of the ``io`` fixture (the suite runs with ``--import-mode=importlib``, so
test modules cannot import this file).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import winaio.testing as wt
import winaio.win32 as w

#: The two I/O backends every I/O test runs on.
BACKENDS = ["io_uring", "threads"]

#: Bound for waits that must succeed.
LONG = 5000
#: Bound for waits whose expected outcome is a timeout.
SHORT = 100

#: Exit code a worker thread returns when its body raised a (recorded) test failure.
WORKER_FAILED = wt.WORKER_FAILED

SENTINEL = 0xDEADBEEF

_names = itertools.count()


class _Unset:
    """Marker preloaded into out-parameters to see whether a call wrote them."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET = _Unset()


@dataclass
class Packet:
    """The outcome of one GetQueuedCompletionStatus call."""

    ok: bool
    error: int  # GetLastError() after the call (meaningful when ok is False)
    bytes: Any  # lpNumberOfBytesTransferred.value (SENTINEL if unwritten)
    key: Any  # lpCompletionKey.value (SENTINEL if unwritten)
    overlapped: Any  # lpOverlapped.value (None = NULL)


class IoKit(wt.HandleKit):
    """Creates files, pipes, sockets, ports, events and threads for one test and cleans up
    (threads, clean-ups, handles: ``winaio.testing.HandleKit``; sockets here)."""

    LONG = LONG
    SHORT = SHORT
    SENTINEL = SENTINEL
    UNSET = UNSET

    def __init__(self, backend: str, tmp_path: Path) -> None:
        super().__init__()
        self.backend = backend
        self.tmp_path = tmp_path
        self._sockets: list[int] = []

    # -- generic -----------------------------------------------------------------------------
    def keep(self, h: int) -> int:
        assert h not in (0, w.INVALID_HANDLE_VALUE), (
            f"creation failed, last error {w.GetLastError()}"
        )
        return super().keep(h)

    def forget(self, h: int) -> None:
        """The test closed ``h`` itself."""
        super().forget(h)
        if h in self._sockets:
            self._sockets.remove(h)

    @staticmethod
    def name(tag: str = "obj") -> str:
        return f"winaio-io-{os.getpid()}-{tag}-{next(_names)}-{uuid.uuid4().hex[:8]}"

    # -- kernel objects ------------------------------------------------------------------------
    def event(self, manual: bool = True, initial: bool = False) -> int:
        return self.keep(w.CreateEvent(None, manual, initial, None))

    @staticmethod
    def is_signaled(h: int) -> bool:
        r = w.WaitForSingleObject(h, 0)
        assert r in (w.WAIT_OBJECT_0, w.WAIT_TIMEOUT), (
            f"WaitForSingleObject({h:#x}, 0) returned {r:#x}, last error {w.GetLastError()}"
        )
        return r == w.WAIT_OBJECT_0

    @staticmethod
    def wait_signaled(h: int, timeout_ms: int = LONG) -> None:
        r = w.WaitForSingleObject(h, timeout_ms)
        assert r == w.WAIT_OBJECT_0, f"{h:#x} not signaled within {timeout_ms} ms ({r:#x})"

    @staticmethod
    def stays_nonsignaled(h: int, timeout_ms: int = SHORT) -> bool:
        r = w.WaitForSingleObject(h, timeout_ms)
        assert r in (w.WAIT_OBJECT_0, w.WAIT_TIMEOUT), f"wait returned {r:#x}"
        return r == w.WAIT_TIMEOUT

    # -- OVERLAPPED ----------------------------------------------------------------------------
    def ov(self, hEvent: int = 0, Offset: int = 0, OffsetHigh: int = 0) -> Any:
        return w.OVERLAPPED(Offset=Offset, OffsetHigh=OffsetHigh, hEvent=hEvent)

    def ov_event(self, Offset: int = 0, initial: bool = False) -> Any:
        """An OVERLAPPED with its own manual-reset event."""
        return self.ov(hEvent=self.event(manual=True, initial=initial), Offset=Offset)

    @staticmethod
    def result(h: int, ov: Any, wait: bool = False) -> tuple[bool, int, Any]:
        """GetOverlappedResult -> (ok, last error or 0, bytes)."""
        n = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        ok = w.GetOverlappedResult(h, ov, n, wait)
        return bool(ok), (0 if ok else w.GetLastError()), n.value

    # -- files ---------------------------------------------------------------------------------
    def path(self, tag: str = "file") -> str:
        return str(self.tmp_path / f"{tag}-{next(_names)}.bin")

    def file(
        self,
        data: bytes | None = b"",
        *,
        overlapped: bool = True,
        access: int | None = None,
        extra_flags: int = 0,
        path: str | None = None,
    ) -> int:
        """Create ``path`` holding ``data`` (None: leave an existing file alone) and open it."""
        p = path or self.path()
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
        if access is None:
            access = w.GENERIC_READ | w.GENERIC_WRITE
        flags = w.FILE_ATTRIBUTE_NORMAL | extra_flags
        if overlapped:
            flags |= w.FILE_FLAG_OVERLAPPED
        h = w.CreateFile(
            p,
            access,
            w.FILE_SHARE_READ | w.FILE_SHARE_WRITE | w.FILE_SHARE_DELETE,
            None,
            w.OPEN_EXISTING,
            flags,
            0,
        )
        assert h != w.INVALID_HANDLE_VALUE, f"CreateFile({p}) failed: {w.GetLastError()}"
        return self.keep(h)

    # -- pipes ---------------------------------------------------------------------------------
    @staticmethod
    def pipe_name() -> str:
        return "\\\\.\\pipe\\" + IoKit.name("pipe")

    def named_pipe(
        self,
        name: str,
        *,
        message: bool = False,
        overlapped: bool = True,
        access: int | None = None,
        nowait: bool = False,
        instances: int = 1,
        buffer: int = 4096,
    ) -> int:
        open_mode = w.PIPE_ACCESS_DUPLEX if access is None else access
        if overlapped:
            open_mode |= w.FILE_FLAG_OVERLAPPED
        pipe_mode = (
            (w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE)
            if message
            else (w.PIPE_TYPE_BYTE | w.PIPE_READMODE_BYTE)
        )
        pipe_mode |= w.PIPE_NOWAIT if nowait else w.PIPE_WAIT
        h = w.CreateNamedPipe(name, open_mode, pipe_mode, instances, buffer, buffer, 0, None)
        assert h not in (0, w.INVALID_HANDLE_VALUE), (
            f"CreateNamedPipe failed, last error {w.GetLastError()}"
        )
        return self.keep(h)

    def pipe_client(self, name: str, *, overlapped: bool = True, message: bool = False) -> int:
        h = w.CreateFile(
            name,
            w.GENERIC_READ | w.GENERIC_WRITE,
            0,
            None,
            w.OPEN_EXISTING,
            w.FILE_FLAG_OVERLAPPED if overlapped else 0,
            0,
        )
        assert h != w.INVALID_HANDLE_VALUE, f"pipe client open failed: {w.GetLastError()}"
        self.keep(h)
        if message:
            mode = w.Ref(w.PIPE_READMODE_MESSAGE)
            assert w.SetNamedPipeHandleState(h, mode, None, None), w.GetLastError()
        return h

    def pipe(
        self,
        *,
        message: bool = False,
        server_overlapped: bool = True,
        client_overlapped: bool = True,
        nowait: bool = False,
        buffer: int = 4096,
    ) -> tuple[int, int]:
        """A connected named-pipe pair (server, client), duplex, like Wine's create_pipe_pair:
        the client opens the listening instance; ConnectNamedPipe is not called."""
        name = self.pipe_name()
        server = self.named_pipe(
            name, message=message, overlapped=server_overlapped, nowait=nowait, buffer=buffer
        )
        client = self.pipe_client(name, overlapped=client_overlapped, message=message)
        return server, client

    def anon_pipe(self) -> tuple[int, int]:
        r, wr = w.Ref(0), w.Ref(0)
        assert w.CreatePipe(r, wr, None, 0), f"CreatePipe failed: {w.GetLastError()}"
        return self.keep(int(r.value)), self.keep(int(wr.value))

    # -- sockets -------------------------------------------------------------------------------
    def keep_socket(self, s: int) -> int:
        assert s != w.INVALID_SOCKET, f"socket creation failed: {w.WSAGetLastError()}"
        self._sockets.append(s)
        return s

    def tcp_socket(self) -> int:
        return self.keep_socket(
            w.WSASocket(w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, w.WSA_FLAG_OVERLAPPED)
        )

    def listener(self) -> tuple[int, tuple]:
        s = self.tcp_socket()
        assert w.bind(s, ("127.0.0.1", 0)) == 0, w.WSAGetLastError()
        assert w.listen(s, 4) == 0, w.WSAGetLastError()
        return s, w.getsockname(s)

    def socket_pair(self) -> tuple[int, int]:
        """A connected loopback TCP pair (client, server) of overlapped sockets (Wine's
        tcp_socketpair)."""
        lst, addr = self.listener()
        client = self.tcp_socket()
        assert w.connect(client, addr) == 0, w.WSAGetLastError()
        server = w.accept(lst)
        self.keep_socket(server)
        self.closesocket(lst)
        return client, server

    def closesocket(self, s: int) -> None:
        assert w.closesocket(s) == 0, f"closesocket failed: {w.WSAGetLastError()}"
        self.forget(s)

    def stream(self, kind: str) -> tuple[int, int]:
        """(reader, writer) for ``kind`` in {"pipe", "socket"}: both overlapped."""
        if kind == "pipe":
            server, client = self.pipe()
            return server, client
        client, server = self.socket_pair()
        return server, client

    def close_any(self, h: int) -> None:
        if h in self._sockets:
            self.closesocket(h)
        else:
            self.close(h)

    def send_all(self, writer: int, data: bytes) -> None:
        """Write ``data`` to ``writer`` (an overlapped pipe end or socket) completely."""
        ov = self.ov_event()
        n = w.Ref(SENTINEL)
        ok = w.WriteFile(writer, data, len(data), n, ov)
        if not ok:
            assert w.GetLastError() == w.ERROR_IO_PENDING, w.GetLastError()
            self.wait_signaled(ov.hEvent)
        ok, err, got = self.result(writer, ov, wait=True)
        assert ok, f"write failed: {err}"
        assert got == len(data)
        self.close(ov.hEvent)

    def recv_exact(self, reader: int, size: int) -> bytes:
        """Read exactly ``size`` bytes from an overlapped pipe end or socket."""
        out = bytearray()
        ov = self.ov_event()
        while len(out) < size:
            buf = bytearray(min(65536, size - len(out)))
            n = w.Ref(SENTINEL)
            ok = w.ReadFile(reader, buf, len(buf), n, ov)
            if not ok:
                assert w.GetLastError() == w.ERROR_IO_PENDING, w.GetLastError()
                self.wait_signaled(ov.hEvent)
            ok, err, got = self.result(reader, ov, wait=True)
            assert ok, f"read failed: {err}"
            assert got > 0
            out += buf[:got]
        self.close(ov.hEvent)
        return bytes(out)

    def fill(self, writer: int, chunk: int = 65536) -> tuple[Any, int]:
        """Write ``chunk``-byte overlapped writes until one stays pending for SHORT ms.

        Returns (the pending OVERLAPPED with its event, total bytes of all writes including
        the pending one)."""
        data = b"\xaa" * chunk
        total = 0
        for _ in range(1024):
            ov = self.ov_event()
            n = w.Ref(SENTINEL)
            ok = w.WriteFile(writer, data, chunk, n, ov)
            total += chunk
            if not ok:
                assert w.GetLastError() == w.ERROR_IO_PENDING, w.GetLastError()
                assert n.value == 0
                if self.stays_nonsignaled(ov.hEvent):
                    return ov, total
            ok, err, got = self.result(writer, ov, wait=True)
            assert ok and got == chunk, (ok, err, got)
            self.close(ov.hEvent)
        raise AssertionError("the pipe never filled up")

    # -- completion ports ------------------------------------------------------------------
    def port(self, handle: int = w.INVALID_HANDLE_VALUE, key: int = 0, concurrency: int = 0) -> int:
        w.SetLastError(SENTINEL)
        p = w.CreateIoCompletionPort(handle, 0, key, concurrency)
        assert p, f"CreateIoCompletionPort failed, last error {w.GetLastError()}"
        return self.keep(p)

    def associate(self, handle: int, port: int, key: int) -> None:
        r = w.CreateIoCompletionPort(handle, port, key, 0)
        assert r == port, f"association failed ({r!r}), last error {w.GetLastError()}"

    @staticmethod
    def gqcs(port: int, timeout_ms: int) -> Packet:
        n, key, o = w.Ref(SENTINEL), w.Ref(SENTINEL), w.Ref(UNSET)
        w.SetLastError(SENTINEL)
        ok = w.GetQueuedCompletionStatus(port, n, key, o, timeout_ms)
        err = w.GetLastError()
        return Packet(bool(ok), err, n.value, key.value, o.value)

    def no_packet(self, port: int, timeout_ms: int = SHORT) -> None:
        pk = self.gqcs(port, timeout_ms)
        assert not pk.ok, f"unexpected packet {pk}"
        assert pk.error == w.WAIT_TIMEOUT, pk
        assert pk.overlapped is None, pk

    # -- teardown (after the workers, before the handles: ``HandleKit.teardown``) ---------------
    def release_more(self) -> None:
        for s in reversed(self._sockets):
            try:
                w.closesocket(s)
            except Exception:
                pass


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on one I/O backend; io_uring is skipped only when unavailable."""
    with wt.backend_for_test(request.param) as name:
        yield name


@pytest.fixture
def io(backend: str, tmp_path: Path) -> Iterator[IoKit]:
    with IoKit(backend, tmp_path) as kit:
        yield kit


@pytest.fixture(autouse=True)
def _clean_main_thread_apcs() -> Iterator[None]:
    # (APCs a failing test left queued to the long-lived pytest thread: not into the next test.)
    with wt.apcs_drained():
        yield


@pytest.fixture
def testing() -> Any:
    """The ``winaio.testing`` helpers (wait_until, wait_until_blocked, wait_until_waiters)."""
    return wt


# The sockets' immediate paths in C and in Python, and the pended receives on each receive
# slot, in turn: tests/io/conftest.py's fixtures (loaded by path: ``--import-mode=importlib``).
_io_fixtures = wt.load_kit(
    Path(__file__).resolve().parent.parent / "io" / "conftest.py", "winaio_tests_io_fixtures"
)
sock_impl = _io_fixtures.sock_impl
slot_impl = _io_fixtures.slot_impl


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the parametrisations that cannot run (the C receive slot with the C paths
    switched off) instead of skipping them (``winaio.testing.split_impossible_slot_items``)."""
    kept, impossible = wt.split_impossible_slot_items(items, str(Path(__file__).parent))
    if impossible:
        config.hook.pytest_deselected(items=impossible)
        items[:] = kept
