"""A socket closed by another thread during the immediate fast path (``Socket.start_read`` /
``start_write``) never lets the fast path's syscall reach a reused descriptor number.

The race (``winaio._io._fd_users``): the fast path fetches the descriptor (CPython's socket
methods read ``sock_fd`` in C after releasing the GIL), another thread closes the socket's last
handle, a third opens a file that gets the same number; the syscall then reads the other
file's bytes as this socket's data (or writes this socket's bytes into it) and reports
success. Windows keeps a reference to the file object for the duration of the call
(spec §9 [MS:closesocket]: closesocket cancels *pending* operations; an operation inside its
call is not pending and completes on its socket).

The interleaving is forced, not hoped for: the socket object is wrapped so that its
``recv_into``/``send`` fetch the descriptor, run the other threads' close and reopen (a
``dup2`` onto the number if it is free: what an ``open`` that gets it would do), then make the
syscall on the number fetched, exactly what CPython does in C. Without the fix these tests
read "WRONG" bytes as success (or write into the pipe); with it the close is deferred to the
end of the call and then done.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio.testing as wt
from winaio._io import _sockopts
from winaio._io._overlapped import Overlapped
from winaio._io._sockets import Socket

LONG = 5.0

# the accelerated socket paths (``_fastpend.c``...) and the Python ones, in turn
pytestmark = pytest.mark.usefixtures("fast_path_impl", "slot_impl")


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.backend_for_test(request.param) as name:
        yield name


class RacingSocket:
    """Stands for a socket object whose C method releases the GIL between reading its
    descriptor and making the syscall: ``hook`` runs in that window."""

    def __init__(self, real: socket.socket, hook: Callable[[int], None]) -> None:
        self.real = real
        self.hook = hook

    def recv_into(self, buffer: Any) -> int:
        fd = self.real.fileno()  # the fetch
        self.hook(fd)
        return os.readv(fd, [buffer])  # the syscall, on the number fetched

    def send(self, data: Any, flags: int = 0) -> int:
        fd = self.real.fileno()
        self.hook(fd)
        return os.write(fd, data)

    def close(self) -> None:
        self.real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class Race:
    """A connected loopback pair whose winaio side races with a close and a reopen."""

    def __init__(self, file: Socket, peer: socket.socket) -> None:
        self.peer = peer
        assert file.sock is not None
        self.real = file.sock
        self.file = file
        self.file.sock = RacingSocket(self.real, self._close_and_reopen)  # type: ignore[assignment]
        self.pipe_r, self.pipe_w = os.pipe()
        self.reused: int | None = None  # the number the reopen took, when it could
        self.closed_in_window = False

    def _close_and_reopen(self, fd: int) -> None:
        closer = threading.Thread(target=self.file.close)
        closer.start()
        closer.join(LONG)
        assert not closer.is_alive()
        self.closed_in_window = self.file.closing
        if not _is_open(fd):  # the close released it: another open gets the number
            os.write(self.pipe_w, b"WRONG" * 13)
            os.dup2(self.pipe_r, fd)
            self.reused = fd

    def close(self) -> None:
        """The pipe and the number the reopen took (the pair: ``socket_pair``'s)."""
        for fd in (self.pipe_r, self.pipe_w, self.reused):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


@pytest.fixture
def race(backend: str, socket_pair: Callable[..., tuple[Socket, socket.socket]]) -> Iterator[Race]:
    r = Race(*socket_pair())
    try:
        yield r
    finally:
        r.close()


def test_receive_keeps_its_descriptor_through_a_concurrent_close(race: Race) -> None:
    # spec: win32 §9 [MS:closesocket]
    race.peer.sendall(b"x" * 64)
    sock = race.real
    wt.wait_until(
        lambda: len(sock.recv(256, socket.MSG_PEEK | socket.MSG_DONTWAIT)) == 64,
        LONG,
        "the data arrived",
    )
    fd = race.file.fd
    buf = bytearray(256)
    ov = Overlapped()
    assert race.file.start_read(buf, ov)  # finished inside the call, on its own socket
    assert race.closed_in_window
    assert race.reused is None, "the descriptor was released while the receive used it"
    assert ov.information == 64 and bytes(buf[:64]) == b"x" * 64
    # The close, deferred to the end of the call, is done now.
    assert race.file.fd == -1 and sock.fileno() == -1
    assert not _is_open(fd) or fd in (race.pipe_r, race.pipe_w)


def test_send_keeps_its_descriptor_through_a_concurrent_close(race: Race) -> None:
    # spec: win32 §9 [MS:closesocket]
    fd = race.file.fd
    ov = Overlapped()
    assert race.file.start_write(b"y" * 64, ov)
    assert race.closed_in_window
    assert race.reused is None, "the descriptor was released while the send used it"
    assert ov.information == 64
    race.peer.settimeout(LONG)
    got = b""
    while len(got) < 64:
        chunk = race.peer.recv(256)
        assert chunk
        got += chunk
    assert got == b"y" * 64
    os.set_blocking(race.pipe_r, False)
    with pytest.raises(BlockingIOError):
        os.read(race.pipe_r, 256)  # nothing went into the other file
    assert race.file.fd == -1 and race.real.fileno() == -1
    assert not _is_open(fd) or fd in (race.pipe_r, race.pipe_w)


def test_fionread_keeps_its_descriptor_through_a_concurrent_close(
    race: Race, monkeypatch: pytest.MonkeyPatch
) -> None:
    # spec: win32 §9 [MS:ioctlsocket] (FIONREAD: the bytes a receive would return now)
    race.peer.sendall(b"abc")
    sock = race.real
    wt.wait_until(
        lambda: len(sock.recv(256, socket.MSG_PEEK | socket.MSG_DONTWAIT)) == 3,
        LONG,
        "the data arrived",
    )
    real = _sockopts._fionread

    def fetched(fd: int) -> int:  # the descriptor fetched, the ioctl not made yet
        race._close_and_reopen(fd)
        return real(fd)

    monkeypatch.setattr(_sockopts, "_fionread", fetched)
    assert _sockopts.bytes_readable(race.file) == 3  # this socket's, not the other file's 65
    assert race.closed_in_window
    assert race.reused is None, "the descriptor was released while FIONREAD used it"
    assert race.file.fd == -1 and sock.fileno() == -1  # the deferred close, done


def test_a_receive_after_the_close_fails_and_releases_nothing_twice(
    backend: str, socket_pair: Callable[..., tuple[Socket, socket.socket]]
) -> None:
    # The fast path that counts itself in and then sees the close: ERROR_INVALID_HANDLE, as
    # the general path; the descriptor is released once (no user left), not leaked.
    f, _peer = socket_pair()
    sock = f.sock
    assert sock is not None
    f.fd_users.append(None)  # a fast path of another thread, inside its call
    f.close()
    assert f.fd != -1 and sock.fileno() != -1  # deferred to that user
    with pytest.raises(Exception) as info:
        f.start_read(bytearray(64), Overlapped())
    assert getattr(info.value, "winerror", None) == 6  # ERROR_INVALID_HANDLE
    f.fd_users.pop()
    f.fd_users.left()
    assert f.fd == -1 and sock.fileno() == -1
    f.fd_users.left()  # idempotent
