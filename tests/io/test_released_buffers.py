"""A buffer the caller releases (``memoryview.release()``) at issue or while the request pends.

Win32 probes the buffer when a request is issued, and a buffer freed while the request pends is
undefined behaviour there; here it must be a defined one, on both backends:

- released before the call: the call fails at once with ERROR_INVALID_USER_BUFFER (as a
  non-buffer or a read-only one does), through every fast path of the core (``start_read`` /
  ``start_write`` on disk files, O_DIRECT files, sockets) and of ``winaio.win32`` (ReadFile /
  WriteFile), never a bare ValueError;
- released while the request pends: exactly one completion, either the data in the memory the
  view exposed (io_uring holds its own export of that memory until the CQE) or the request's
  failure with STATUS_ACCESS_VIOLATION (ERROR_NOACCESS: the thread backend, which touches the
  buffer only when it runs the syscall); never an exception in a backend thread (which would
  leave the request and every later one on that thread unfinished) nor in the waiting thread
  that runs a queued request itself (``IdleWork``).
"""

from __future__ import annotations

import mmap
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import winaio
import winaio.testing as wt
import winaio.win32 as w
from winaio._backends._threads import ThreadBackend
from winaio._io._disk import DiskFile
from winaio._io._issue import start
from winaio._io._ops import FileWriteOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._sockets import Socket
from winaio.codes import NtStatus, WinError

BAD_BUFFER = int(WinError.ERROR_INVALID_USER_BUFFER)
ACCESS_VIOLATION = int(NtStatus.STATUS_ACCESS_VIOLATION)
SUCCESS = int(NtStatus.STATUS_SUCCESS)
BLOCK = 4096
LONG = 5.0

# the accelerated socket paths (``_fastpend.c``...) and the Python ones, in turn
pytestmark = pytest.mark.usefixtures("fast_path_impl", "slot_impl")


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.backend_for_test(request.param) as name:
        yield name


def _released() -> memoryview:
    view = memoryview(bytearray(BLOCK))
    view.release()
    return view


def _socket_pair() -> tuple[Socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname(), timeout=LONG)
        sock, _ = listener.accept()
    sock.setblocking(False)
    return Socket(sock.fileno(), overlapped=True, sock=sock), peer


def _data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.write_bytes(os.urandom(4 * BLOCK))
    return path


@pytest.mark.parametrize("direct", [False, True], ids=["cached", "direct"])
@pytest.mark.parametrize("method", ["start_read", "start_write"])
def test_a_released_view_fails_a_disk_request_at_once(
    backend: str, tmp_path: Path, direct: bool, method: str
) -> None:
    f, _ = winaio.open_file(
        str(_data_file(tmp_path)), read=True, write=True, disposition=3, overlapped=True,
        direct=direct,
    )  # fmt: skip
    try:
        ov = Overlapped(0)
        with pytest.raises(winaio.Win32Error) as info:
            getattr(f, method)(_released(), ov)
        assert info.value.winerror == BAD_BUFFER
        assert f.pending_requests == 0
    finally:
        f.close()


@pytest.mark.parametrize("method", ["start_read", "start_write"])
def test_a_released_view_fails_a_socket_request_at_once(backend: str, method: str) -> None:
    s, peer = _socket_pair()
    try:
        with pytest.raises(winaio.Win32Error) as info:
            getattr(s, method)(_released(), Overlapped(0))
        assert info.value.winerror == BAD_BUFFER
        assert s.pending_requests == 0
    finally:
        s.close()
        peer.close()


@pytest.mark.parametrize(
    "flags", [w.FILE_FLAG_OVERLAPPED, w.FILE_FLAG_OVERLAPPED | w.FILE_FLAG_NO_BUFFERING],
    ids=["cached", "direct"],
)  # fmt: skip
@pytest.mark.parametrize("call", ["ReadFile", "WriteFile"])
def test_readfile_writefile_with_a_released_view_fail_with_invalid_user_buffer(
    backend: str, tmp_path: Path, flags: int, call: str
) -> None:
    access = w.GENERIC_READ | w.GENERIC_WRITE
    h = w.CreateFile(str(_data_file(tmp_path)), access, 0, None, w.OPEN_EXISTING, flags, None)
    assert h != w.INVALID_HANDLE_VALUE
    try:
        count = w.Ref(7)
        assert getattr(w, call)(h, _released(), BLOCK, count, w.OVERLAPPED()) is False
        assert w.GetLastError() == BAD_BUFFER
        assert count.value == 0
    finally:
        w.CloseHandle(h)


def _aligned() -> tuple[mmap.mmap, memoryview]:
    mm = mmap.mmap(-1, BLOCK)
    return mm, memoryview(mm)


def _direct_file(backend: Any, path: Path) -> DiskFile:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_DIRECT)
    except OSError as exc:
        pytest.skip(f"no O_DIRECT here: {exc}")
    return DiskFile(fd, overlapped=True, seekable=True, direct=True, backend=backend)


def _outcome_is_defined(packet: Any, mm: mmap.mmap, expected: bytes) -> None:
    """Either the data landed in the memory the view exposed, or the request failed with
    STATUS_ACCESS_VIOLATION."""
    assert packet is not None, "no completion"
    if packet.status == SUCCESS:
        assert packet.bytes_transferred == BLOCK and mm[:BLOCK] == expected
    else:
        assert (packet.status, packet.bytes_transferred) == (ACCESS_VIOLATION, 0)
        assert packet.error == WinError.ERROR_NOACCESS


def test_a_view_released_while_a_queued_read_waits_is_finished_by_the_waiter(
    tmp_path: Path,
) -> None:
    """The thread backend with no worker: only the thread waiting in GQCS runs the read, and it
    does so after the caller released the view."""
    b = ThreadBackend(workers=0)
    port = winaio.CompletionPort()
    path = _data_file(tmp_path)
    f = _direct_file(b, path)
    try:
        f.associate(port, "f")
        mm, view = _aligned()
        assert f.start_read(view, Overlapped(0)) is False
        view.release()
        _outcome_is_defined(port.get(None), mm, path.read_bytes()[:BLOCK])  # runs it here
        # Nothing is left behind: the next read completes as usual.
        mm2, view2 = _aligned()
        assert f.start_read(view2, Overlapped(BLOCK)) is False
        packet = port.get(None)
        assert packet is not None and (packet.status, packet.bytes_transferred) == (SUCCESS, BLOCK)
        assert mm2[:] == path.read_bytes()[BLOCK : 2 * BLOCK]
    finally:
        f.close()
        port.close()
        b.close()


class _Gated(FileWriteOp):
    """A write whose worker waits for ``gate`` before it runs (so the next request queues)."""

    __slots__ = ()
    gate = threading.Event()

    def run_blocking(self) -> tuple[int, int]:
        assert self.gate.wait(LONG)
        return super().run_blocking()


def test_a_view_released_while_a_queued_read_waits_is_finished_by_a_worker(
    tmp_path: Path,
) -> None:
    """The thread backend's only worker runs the read after the caller released the view: the
    worker survives and the read completes once."""
    b = ThreadBackend(workers=1)
    port = winaio.CompletionPort()
    path = _data_file(tmp_path)
    expected = path.read_bytes()[:BLOCK]
    f = _direct_file(b, path)
    scratch = DiskFile(
        os.open(tmp_path / "scratch", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC),
        overlapped=True, seekable=True, backend=b,
    )  # fmt: skip
    try:
        f.associate(port, "f")
        _Gated.gate.clear()
        ev = winaio.Event(manual_reset=True)
        assert start(_Gated(scratch, Overlapped(0, ev), [memoryview(b"x")], 0)) == STATUS_PENDING
        mm, view = _aligned()
        assert f.start_read(view, Overlapped(0)) is False
        view.release()
        _Gated.gate.set()
        _outcome_is_defined(port.get(LONG), mm, expected)
        assert port.get(0) is None  # exactly one completion
        mm2, view2 = _aligned()
        assert f.start_read(view2, Overlapped(0)) is False
        packet = port.get(LONG)
        assert mm2[:] == expected
        assert packet is not None and (packet.status, packet.bytes_transferred) == (SUCCESS, BLOCK)
    finally:
        _Gated.gate.set()
        f.close()
        scratch.close()
        port.close()
        b.close()


@pytest.mark.parametrize("bound", [False, True], ids=["event", "port"])
# (the C slot pins the view itself: its release() raises BufferError; asked of cslot, 00:50)
@pytest.mark.parametrize("slot_impl", ["off", "py"], indirect=True)
def test_a_view_released_while_a_receive_pends_completes_it_once(backend: str, bound: bool) -> None:
    """A pended receive whose view the caller released: one completion (the data, or
    STATUS_ACCESS_VIOLATION), and the socket's next receive works (the backend's reactor or
    ring thread is still there)."""
    s, peer = _socket_pair()
    port = winaio.CompletionPort()
    try:
        if bound:
            s.associate(port, "s")
        ev = winaio.Event(manual_reset=True)
        storage = bytearray(16)
        view = memoryview(storage)
        ov = Overlapped(0, None if bound else ev)
        assert s.start_read(view, ov) is False
        view.release()
        peer.sendall(b"hello")
        if bound:
            packet = port.get(LONG)
            assert packet is not None and port.get(0) is None
            status, count = packet.status, packet.bytes_transferred
        else:
            assert winaio.wait(ev, LONG).code == 0
            status, count = ov.status, ov.information
        if status == SUCCESS:
            assert bytes(storage[:count]) == b"hello"[:count] and count
        else:
            assert (status, count) == (ACCESS_VIOLATION, 0)
        again = bytearray(16)
        ov2 = Overlapped(0, winaio.Event(manual_reset=True))
        if not s.start_read(again, ov2):
            peer.sendall(b"again")
        assert ov2.result(s, LONG) > 0
    finally:
        s.close()
        peer.close()
        port.close()


def test_a_view_released_while_its_receive_waits_behind_another_fails_alone(
    backend: str,
) -> None:
    """Three receives in a line; the second's view is released before its turn: it fails
    with STATUS_ACCESS_VIOLATION (io_uring cannot pin it when it arms it, the thread backend
    cannot receive into it), takes no bytes, and the third gets what the second would have."""
    s, peer = _socket_pair()
    port = winaio.CompletionPort()
    try:
        s.associate(port, "s")
        first, third = bytearray(4), bytearray(4)
        second = memoryview(bytearray(4))
        ovs = [Overlapped(0) for _ in range(3)]
        for buf, ov in zip((first, second, third), ovs, strict=True):
            assert s.start_read(buf, ov) is False
        second.release()
        peer.sendall(b"aaaabbbbcccc")
        got = [port.get(LONG) for _ in range(3)]
        assert [p.overlapped if p else None for p in got] == ovs  # issue order
        assert [(p.status, p.bytes_transferred) for p in got if p] == [
            (SUCCESS, 4),
            (ACCESS_VIOLATION, 0),
            (SUCCESS, 4),
        ]
        assert (bytes(first), bytes(third)) == (b"aaaa", b"bbbb")
        assert port.get(0) is None and s.pending_requests == 0
    finally:
        s.close()
        peer.close()
        port.close()
