"""The Winsock requests beside WSARecv/WSASend under interrupts (pure2, 2026-12-06).

AcceptEx (``AcceptOp``/``AcceptExOp``), ConnectEx (``ConnectOp``), WSASendTo/WSARecvFrom
(``SendToOp``/``RecvFromOp``), TransmitFile and the synchronous requests (``_sync.run_sync``):
the same cut points as tests/io/test_interrupted_syscalls.py's - a Python callee's entry, a C
call's return in the path's frames, where a signal handler's KeyboardInterrupt lands - one
per run (``winaio.testing.Sweep``). Wherever the interrupt lands, what the syscall did is not
lost: a connection the listener gave up is the accept socket's and the request completes with
it (or pends for its first data); the bytes a datagram or a first send moved are in the IOSB;
a request registered and never handed over, or a synchronous request left registered, does
not queue every later request of its direction behind it for ever (#66). docs/design.md
"The remaining pure-Python paths under interrupts (pure2, ...)".
"""

from __future__ import annotations

import os
import select
import socket
import threading
from typing import Any

import pytest

import winaio
from winaio._io import _issue, _sync
from winaio._io import _pipe_queue as pipe_queue
from winaio._io._cancel import cancel_synchronous_io
from winaio._io._fd_users import FdUsers
from winaio._io._files import FileObject
from winaio._io._ops import FileReadOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._pipe_names import create_named_pipe, open_named_pipe
from winaio._io._pipe_ops import PipeReadOp, PipeWriteOp
from winaio._io._pipe_queue import Stream
from winaio._io._pipes import PIPE_ACCESS_DUPLEX, PipeEnd
from winaio._io._sockets import Socket
from winaio._io._stream_ops import AcceptOp, ConnectOp, StreamReadOp, StreamWriteOp
from winaio._io._winsock_ext import (
    AcceptExOp,
    RecvFromOp,
    SendToOp,
    TransmitFileOp,
    decode_sockaddr,
)
from winaio._kernel._threads import current_thread_state
from winaio.errors import Win32Error
from winaio.testing import Sweep, accelerator_for_test, left_behind, profiled, sweep_cut_points

#: The general issue path's frames (``_issue.start`` and what it calls to try and hand over).
_GENERAL = {_issue.start, _issue._start, _issue.submit, _issue._hand_to_backend}
LONG = 5.0
#: An IOSB status no path writes: a request cut before its issue-time reset keeps it.
UNTOUCHED = 0x7777
ADDR = 16 + 16  # an IPv4 SOCKADDR area: the address size + 16 [MS:AcceptEx]


def _codes(*funcs: Any) -> set[Any]:
    return {getattr(f, "__func__", f).__code__ for f in (*_GENERAL, *funcs)}


def _remote(buf: bytearray, receive: int) -> Any:
    """The address AcceptEx wrote in the remote area (after the data and the local area)."""
    at = receive + ADDR
    length = int.from_bytes(buf[at : at + 4], "little", signed=True)
    return decode_sockaddr(bytes(buf[at + 4 : at + 4 + length]))[1] if length > 0 else None


def _readable(fd: int, timeout: float = 0.0) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


@pytest.mark.parametrize("receive", [0, 8])
def test_an_interrupt_anywhere_in_an_accept_loses_no_connection(receive: int) -> None:
    """# spec: win32 #54. AcceptEx with its address areas, without and with a first receive
    (``Socket.start_accept``): a client waits (and sent its data). Wherever the interrupt lands,
    either the client is still in the listener's queue and nothing was issued, or the accept
    socket is the connection and the request completes (its data, its address areas written).
    Before: a cut at ``accept()``'s return dropped the connection the listener gave up (closed
    by the collector: the client was reset), one in ``adopt_connection`` or at the receive's
    return forgot the request with the connection taken."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            listener = winaio.create_socket()
            target = winaio.create_socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            client = socket.create_connection(listener.getsockname(), timeout=LONG)
            try:
                if receive:
                    client.sendall(b"abcdefgh")
                event = winaio.Event(manual_reset=True)
                ov = Overlapped(0, event)
                buf = bytearray(receive + 2 * ADDR)
                sweep = Sweep(
                    k,
                    _codes(
                        Socket.start_accept,
                        AcceptOp.try_now,
                        AcceptExOp.try_now,
                        AcceptExOp._write_addresses,
                        FileObject.adopt_connection,
                    ),
                )
                profiled(
                    sweep,
                    lambda: listener.start_accept(
                        target, ov, buf, receive_size=receive, address_sizes=(ADDR, ADDR)
                    ),
                )
                bad = left_behind()
                if winaio.wait(event, 2.0 if listener.pending_requests else 0.2).signaled:
                    remote = _remote(buf, receive)
                    if (ov.status, ov.information) != (0, receive):
                        bad.append(f"completed: IOSB {ov.status} {ov.information}")
                    elif bytes(buf[:receive]) != b"abcdefgh"[:receive]:
                        bad.append(f"the first data lost: {bytes(buf[:receive])!r}")
                    elif target.getpeername() != client.getsockname():
                        bad.append("completed, the accept socket not the connection")
                    elif remote != client.getsockname():
                        bad.append(f"the remote address area not written: {remote}")
                elif listener.pending_requests:
                    bad.append(f"registered, never completed: IOSB {ov.status}")
                elif not _readable(listener.fd):
                    bad.append("the connection left the listener, the request forgotten")
                return sweep, bad
            finally:
                client.close()
                target.close()
                listener.close()

        assert sweep_cut_points(run) == {}


def test_an_interrupt_anywhere_in_a_connect_with_a_first_send_loses_no_byte() -> None:
    """# spec: win32 #54. ConnectEx with a first buffer (``ConnectOp``): wherever the
    interrupt lands once the connection was started, the request goes on - connected, the
    bytes the server gets are the bytes the IOSB reports. Before: a cut at ``connect_ex``'s
    return forgot a request whose connection the kernel then made, one at ``send``'s return
    sent the bytes and reported nothing."""
    with accelerator_for_test("python"), socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(LONG)

        def run(k: int) -> tuple[Sweep, list[str]]:
            f = winaio.create_socket()
            f.bind(("127.0.0.1", 0))
            event = winaio.Event(manual_reset=True)
            ov = Overlapped(0, event)
            op = f.connect_op(server.getsockname(), ov, memoryview(b"abcdefgh"))
            sweep = Sweep(k, _codes(ConnectOp.try_now))
            profiled(sweep, lambda: _issue.start(op))
            bad = left_behind()
            try:
                completed = winaio.wait(event, 2.0).signaled
                connected = _readable(server.fileno(), 0.2)
                if connected:
                    peer, _ = server.accept()
                    with peer:
                        peer.settimeout(0.5)
                        got = b""
                        while len(got) < 8:
                            try:
                                chunk = peer.recv(64)
                            except TimeoutError:
                                break
                            if not chunk:
                                break
                            got += chunk
                if not completed:
                    if op.registered or connected:
                        bad.append(f"connected {connected}, never completed: IOSB {ov.status}")
                elif (ov.status, ov.information, got) != (0, 8, b"abcdefgh"):
                    bad.append(f"{got!r} arrived, IOSB {ov.status} {ov.information}")
                return sweep, bad
            finally:
                f.close()

        assert sweep_cut_points(run) == {}


def _udp_pair() -> tuple[Socket, socket.socket]:
    py = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    py.bind(("127.0.0.1", 0))
    py.setblocking(False)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    return Socket(py.fileno(), overlapped=True, sock=py), peer


def test_an_interrupt_anywhere_in_a_datagram_send_loses_no_byte() -> None:
    """# spec: win32 #54. WSASendTo's request (``SendToOp``): the datagram the peer gets is
    reported in the IOSB (none: Internal still STATUS_PENDING). Before: a cut at
    ``sendmsg``'s return sent it and forgot the request."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = _udp_pair()
            try:
                event = winaio.Event(manual_reset=True)
                ov = Overlapped(0, event)
                ov.status = UNTOUCHED
                op = SendToOp(f, ov, [memoryview(b"abcdefgh")], peer.getsockname())
                sweep = Sweep(k, _codes(SendToOp.try_now))
                profiled(sweep, lambda: _issue.start(op))
                bad = left_behind()
                got = peer.recv(64) if _readable(peer.fileno(), 0.2) else b""
                if got:
                    winaio.wait(event, 2.0)
                if not got:
                    if ov.status not in (UNTOUCHED, STATUS_PENDING) or op.registered:
                        bad.append(f"nothing sent, IOSB {ov.status}, registered {op.registered}")
                elif (got, ov.status, ov.information) != (b"abcdefgh", 0, 8):
                    bad.append(f"sent {got!r}, IOSB {ov.status} {ov.information}")
                elif not event.is_set():
                    bad.append("the event not set")
                return sweep, bad
            finally:
                f.close()
                peer.close()

        assert sweep_cut_points(run) == {}


def test_an_interrupt_anywhere_in_a_datagram_receive_loses_no_byte() -> None:
    """# spec: win32 #54. WSARecvFrom's request (``RecvFromOp``) with a datagram waiting: the
    datagram is still in the socket, or in the request's buffer with its count and its sender
    reported. Before: a cut at ``recvmsg_into``'s return (or at the address sink's entry, or
    at the flags' ``&``: an IntFlag's Python ``__and__``) took it and forgot the request."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = _udp_pair()
            try:
                peer.sendto(b"abcdefgh", f.getsockname())
                assert _readable(f.fd, LONG)
                event = winaio.Event(manual_reset=True)
                ov = Overlapped(0, event)
                ov.status = UNTOUCHED
                buf = bytearray(16)
                senders: list[Any] = []
                op = RecvFromOp(f, ov, [memoryview(buf)], lambda a, _f: senders.append(a))
                sweep = Sweep(k, _codes(RecvFromOp.try_now))
                profiled(sweep, lambda: _issue.start(op))
                bad = left_behind()
                if op.registered and not winaio.wait(event, 2.0).signaled:
                    bad.append(f"registered, never completed: IOSB {ov.status}")
                    return sweep, bad
                if _readable(f.fd):
                    if ov.status not in (UNTOUCHED, STATUS_PENDING) or op.registered:
                        bad.append(f"IOSB {ov.status}, registered {op.registered}, data left")
                elif (ov.status, ov.information, bytes(buf[:8])) != (0, 8, b"abcdefgh"):
                    bad.append(f"the datagram lost: IOSB {ov.status} {ov.information}")
                elif senders != [peer.getsockname()]:
                    bad.append(f"the sender reported {senders}")
                return sweep, bad
            finally:
                f.close()
                peer.close()

        assert sweep_cut_points(run) == {}


def _blocking_pair() -> tuple[Socket, socket.socket]:
    """A connected TCP pair: a synchronous (non-overlapped) winaio socket, a plain peer."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname(), timeout=LONG)
        sock, _ = listener.accept()
    sock.setblocking(False)
    return Socket(sock.fileno(), overlapped=False, sock=sock), peer


@pytest.mark.parametrize("how", ["read", "write"])
def test_an_interrupt_anywhere_in_a_synchronous_request_leaves_nothing_registered(
    how: str,
) -> None:
    """# spec: win32 #66. A synchronous recv/send (``_sync.run_sync``: the request registered,
    tried, waited for): wherever the interrupt lands, the request is not left registered -
    a stream request left registered queued every later one of its direction behind it, and
    the next recv on the socket waited for ever. The bytes the syscall moved are the caller's
    (in its buffer, or sent, the rest following in order)."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = _blocking_pair()
            try:
                if how == "read":
                    peer.sendall(b"abcdefgh")
                    assert _readable(f.fd, LONG)
                    buf = bytearray(16)
                    op: Any = StreamReadOp(f, Overlapped(0), [memoryview(buf)])
                    codes = _codes(_sync.run_sync, StreamReadOp.try_now)
                else:
                    op = StreamWriteOp(f, Overlapped(0), [memoryview(b"abcdefgh")])
                    codes = _codes(_sync.run_sync, StreamWriteOp.try_now)
                sweep = Sweep(k, codes)
                profiled(sweep, lambda: _sync.run_sync(op))
                bad = left_behind()
                if op.registered and op.sync_done is not None:  # (data moved: it goes on)
                    winaio.wait(op.sync_done, LONG)
                if f.stream_in or f.stream_out or f.pending_requests:
                    bad.append(f"left registered: in {f.stream_in} out {f.stream_out}")
                    return sweep, bad
                # the next request of the direction runs
                if how == "read":
                    peer.sendall(b"ij")
                    again = StreamReadOp(f, Overlapped(0), [memoryview(bytearray(16))])
                else:
                    again = StreamWriteOp(f, Overlapped(0), [memoryview(b"ij")])
                if _sync.run_sync(again)[0] != 0:
                    bad.append("the next request failed")
                return sweep, bad
            finally:
                f.close()
                peer.close()

        assert sweep_cut_points(run) == {}


def test_an_interrupt_anywhere_in_a_synchronous_transmit_file_loses_no_byte(
    tmp_path: Any,
) -> None:
    """# spec: win32 #54. A synchronous TransmitFile (head, file, tail) through ``run_sync``:
    the request is not left registered, and what the peer got is a prefix of head + file +
    tail - the rest following once it was cut past a syscall (none lost in the middle).
    Before: a cut at ``sendfile``'s or ``send``'s return dropped the count, the next call
    sent the same bytes again."""
    path = tmp_path / "data.bin"
    body = bytes(range(256)) * 4
    path.write_bytes(body)
    want = b"HEAD" + body + b"TAIL"
    with accelerator_for_test("python"):
        source, _ = winaio.open_file(
            str(path), read=True, write=False, disposition=3, overlapped=False
        )
        try:

            def run(k: int) -> tuple[Sweep, list[str]]:
                f, peer = _blocking_pair()
                try:
                    op = TransmitFileOp(f, Overlapped(0), source, 0, -1, b"HEAD", b"TAIL", 0)
                    sweep = Sweep(k, _codes(_sync.run_sync, TransmitFileOp.try_now))
                    returned = profiled(sweep, lambda: _sync.run_sync(op))
                    bad = left_behind()
                    got = b""
                    peer.settimeout(0.5)
                    while len(got) < len(want):
                        try:
                            chunk = peer.recv(65536)
                        except TimeoutError:
                            break
                        got += chunk
                    if op.registered and op.sync_done is not None:  # (the rest, sent on)
                        winaio.wait(op.sync_done, LONG)
                    if f.stream_out or f.pending_requests:
                        bad.append(f"left registered: out {f.stream_out}")
                    elif got != want[: len(got)]:
                        bad.append(f"{len(got)} bytes arrived, not in order")
                    elif got and got != want:
                        bad.append(f"{len(got)} of {len(want)} bytes arrived")
                    elif returned and (op.overlapped.status, op.overlapped.information) != (
                        0,
                        len(want),
                    ):
                        bad.append(f"IOSB {op.overlapped.status} {op.overlapped.information}")
                    return sweep, bad
                finally:
                    f.close()
                    peer.close()

            assert sweep_cut_points(run) == {}
        finally:
            source.close()
    assert os.path.exists(path)


# ------------------------------------------------------------------ named pipes (in-process)

_PIPE_FRAMES = (
    PipeReadOp.try_now,
    PipeWriteOp.try_now,
    PipeWriteOp._write_locked,
    PipeReadOp.take,
    Stream.read_into,
    Stream.pump,
    Stream.promote,
    Stream._pop,
    Stream._take,
    pipe_queue.deliver,
)


def _pipe_pair(name: str, quota: int) -> tuple[PipeEnd, PipeEnd]:
    server = create_named_pipe(name, PIPE_ACCESS_DUPLEX | 0x40000000, 0, 1, quota, quota)
    client = open_named_pipe(name, read=True, write=True, overlapped=True)
    return server, client


def _pipe_lock_left() -> list[str]:
    """ "the pipes' LOCK held" if a cut left it held by this thread (released then)."""
    if not pipe_queue.LOCK._is_owned():  # type: ignore[attr-defined]
        return []
    while pipe_queue.LOCK._is_owned():  # type: ignore[attr-defined]
        pipe_queue.LOCK.release()
    return ["the pipes' LOCK held"]


def _write(end: PipeEnd) -> Any:
    """A WriteFile of 8 bytes on ``end``'s request, with its own event (not issued yet)."""
    return _issued(end.write_op([memoryview(b"abcdefgh")], Overlapped(0)))


def _issued(op: Any) -> tuple[Any, Any]:
    event = winaio.Event(manual_reset=True)
    op.overlapped.event = op.event = event
    return op, event


@pytest.mark.parametrize("shape", ["read-buffered", "read-pending-writer", "read-waits", "write"])
def test_an_interrupt_anywhere_in_a_pipe_request_loses_nothing(shape: str) -> None:
    """# spec: win32 #54, #66. ReadFile/WriteFile on a named pipe's end, copied in-process
    under the pipes' lock (``_pipe_ops``): a read of buffered data, a read that takes a
    pending write's bytes (and so completes that write), a read that waits in line, a write
    a waiting reader takes. Wherever the interrupt lands, the bytes are in one place - still
    in the pipe, or in the reader's buffer with its count - and every request the copy
    completed (the other end's) completes; a read that joined the readers' line is not
    forgotten there (a later write's bytes went to a request nobody waits for). Before: a cut
    at ``deliver``'s entry (or ``pump``'s, ``append``'s return) lost the completions decided
    under the lock and the read's count."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            server, client = _pipe_pair(f"sweep-{shape}-{k}", 4 if "pending" in shape else 64)
            try:
                other = None
                if shape == "read-buffered":
                    assert (
                        _issue.start(server.write_op([memoryview(b"abcdefgh")], Overlapped(0))) == 0
                    )
                elif shape == "read-pending-writer":
                    other, other_event = _issued(
                        server.write_op([memoryview(b"abcdefgh")], Overlapped(0))
                    )
                    assert _issue.start(other) == STATUS_PENDING
                elif shape == "write":
                    other_buf = bytearray(16)
                    other, other_event = _issued(
                        server.read_op([memoryview(other_buf)], Overlapped(0))
                    )
                    assert _issue.start(other) == STATUS_PENDING
                buf = bytearray(16)
                if shape == "write":
                    op, event = _write(client)
                else:
                    op, event = _issued(client.read_op([memoryview(buf)], Overlapped(0)))
                op.overlapped.status = UNTOUCHED
                sweep = Sweep(k, _codes(*_PIPE_FRAMES))
                profiled(sweep, lambda: _issue.start(op))
                bad = left_behind() + _pipe_lock_left()
                if shape == "read-waits":
                    if op.registered:
                        assert (
                            _issue.start(server.write_op([memoryview(b"abcdefgh")], Overlapped(0)))
                            == 0
                        )
                    elif client.incoming is not None and op in client.incoming.readers:
                        bad.append("forgotten, left in the readers' line")
                        return sweep, bad
                    else:
                        return sweep, bad  # (never issued)
                ov = op.overlapped
                if op.registered or ov.status == 0:
                    if not winaio.wait(event, 2.0).signaled:
                        bad.append(f"registered, never completed: IOSB {ov.status}")
                        return sweep, bad
                    if (ov.status, ov.information) != (0, 8):
                        bad.append(f"IOSB {ov.status} {ov.information}")
                    elif shape != "write" and bytes(buf[:8]) != b"abcdefgh":
                        bad.append(f"read {bytes(buf[:8])!r}")
                    completed = True
                else:
                    if ov.status not in (UNTOUCHED, STATUS_PENDING):
                        bad.append(f"failed: IOSB {ov.status}")
                    completed = False
                # where the 8 bytes are: the pipe (the reader's side) holds them unless read
                stream = server.incoming if shape == "write" else client.incoming
                held = stream.available() if stream is not None else -1
                if shape == "write":
                    moved = completed
                    if other is not None and other.done != completed:
                        bad.append(f"the write completed {completed}, the read {other.done}")
                else:
                    moved = held == 0
                    if moved != completed:
                        bad.append(f"{held} bytes in the pipe, the read completed {completed}")
                if (
                    other is not None
                    and moved
                    and (
                        not winaio.wait(other_event, 2.0).signaled
                        or other.overlapped.information != 8
                    )
                ):
                    bad.append(f"the other end's request: IOSB {other.overlapped.status}")
                return sweep, bad
            finally:
                client.close()
                server.close()

        assert sweep_cut_points(run) == {}


# ------------------------------------------------------------------ a MemoryError at the count-in


class _NoMemUsers(FdUsers):
    """A descriptor's user list that cannot grow: counting a user in raises MemoryError."""

    def append(self, item: None) -> None:
        raise MemoryError

    def __iadd__(self, other: Any) -> Any:
        raise MemoryError


@pytest.mark.parametrize("path", ["cached-read", "run_sync"])
def test_a_memoryerror_counting_a_user_in_counts_no_other_user_out(
    tmp_path: Any, path: str
) -> None:
    """The descriptor's users (``_fd_users``) are counted in inside the ``try`` whose
    ``finally`` counts out (a Ctrl-C at the count-in's return left the count up). A MemoryError
    at the count-in itself (the list cannot grow) counted nothing - and the ``finally`` then
    popped another user's entry: that user counted out early, a close then released the
    descriptor under its syscall, and its own pop later found the list empty (IndexError).
    Now the count-in is an operator (``users += ONE_USER``) followed by the flag the
    ``finally`` tests, with no check in between: the MemoryError goes on, the other user's
    entry stays."""
    p = tmp_path / "data.bin"
    p.write_bytes(bytes(range(64)))
    p.read_bytes()
    with accelerator_for_test("python"):
        file, _ = winaio.open_file(
            str(p), read=True, write=False, disposition=3, overlapped=path == "cached-read"
        )
        try:
            users = _NoMemUsers()
            list.append(users, None)  # another user, in its syscall
            file.fd_users = users
            op = FileReadOp(file, Overlapped(0), [memoryview(bytearray(16))], 0)
            with pytest.raises(MemoryError):
                if path == "cached-read":
                    op.try_now()
                else:
                    _sync.run_sync(op)
            assert list(users) == [None]  # the other user still counted in
        finally:
            file.fd_users = FdUsers()
            file.close()


@pytest.mark.parametrize("how", ["read", "write"])
def test_a_memoryerror_counting_a_socket_user_in_counts_no_other_user_out(
    socket_pair: Any, how: str
) -> None:
    """The sockets' immediate path (``Socket.start_read``/``start_write``, Python) counts its
    user in as ``run_sync`` does (above): a MemoryError at the count-in goes on, the other
    user's entry stays, the send claim is free again. Before: ``users.append(None)`` inside the
    ``try`` whose ``finally`` popped: the other user counted out under its syscall."""
    with accelerator_for_test("python"):
        f, peer = socket_pair()
        peer.sendall(b"abcdefgh")
        users = _NoMemUsers()
        list.append(users, None)  # another user, in its syscall
        f.fd_users = users
        ov = Overlapped(0, winaio.Event(manual_reset=True))
        try:
            with pytest.raises(MemoryError):
                if how == "read":
                    f.start_read(bytearray(16), ov)
                else:
                    f.start_write(b"abcdefgh", ov)
            assert list(users) == [None]  # the other user still counted in
            assert f.send_claim is not None and not f.send_claim.locked()
            assert not f.stream_in and not f.stream_out
        finally:
            f.fd_users = FdUsers()


def test_an_interrupt_anywhere_in_a_synchronous_disk_read_leaves_no_user_counted(
    tmp_path: Any,
) -> None:
    """A synchronous ReadFile on a disk file (``run_sync``'s FILE branch: not registered, the
    descriptor's users counted in and out around the read). Wherever the interrupt lands, the
    count is back to zero. Before: a cut at ``append()``'s return (the count-in stood before
    the ``try``) or at ``pop()``'s return (``left()`` skipped) left it up or the deferred
    close not run: a close then deferred its descriptor to a user that never came."""
    p = tmp_path / "data.bin"
    p.write_bytes(bytes(range(64)))
    with accelerator_for_test("python"):
        file, _ = winaio.open_file(str(p), read=True, write=False, disposition=3, overlapped=False)
        try:

            def run(k: int) -> tuple[Sweep, list[str]]:
                op = FileReadOp(file, Overlapped(0), [memoryview(bytearray(16))], 0)
                sweep = Sweep(k, _codes(_sync.run_sync))
                profiled(sweep, lambda: _sync.run_sync(op))
                bad = left_behind()
                if list(file.fd_users):
                    bad.append(f"{len(file.fd_users)} users left counted in")
                    del file.fd_users[:]
                return sweep, bad

            assert sweep_cut_points(run) == {}
        finally:
            file.close()


def test_an_interrupt_in_the_wait_of_a_synchronous_receive_cancels_it() -> None:
    """# spec: win32 #66. A synchronous recv that pends (``_sync.run_sync``: no data yet):
    wherever the interrupt lands - before it pended, at its submission, at its wait's entry -
    the request does not outlive the call: it is cancelled and over before the interrupt goes
    on, so the next recv of the socket gets the next bytes. Before: a cut of the wait left it
    pending, with a buffer nobody reads any more, and every later recv queued behind it (#66).
    The last run is not cut: CancelSynchronousIo from another thread ends its wait."""
    me = current_thread_state()
    with accelerator_for_test("python"):

        def cancel() -> None:
            try:
                cancel_synchronous_io(me)
            except Win32Error:  # (not blocked in it: the run was cut before the wait)
                pass

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = _blocking_pair()
            try:
                op = StreamReadOp(f, Overlapped(0), [memoryview(bytearray(16))])
                sweep = Sweep(k, _codes(_sync.run_sync, StreamReadOp.try_now))
                timer = threading.Timer(0.5, cancel)
                timer.start()
                try:
                    profiled(sweep, lambda: _sync.run_sync(op))
                finally:
                    timer.cancel()
                    timer.join()
                bad = left_behind()
                if f.stream_in or f.pending_requests:
                    bad.append(f"left pending: {f.stream_in}")
                    return sweep, bad
                if op.registered and not op.done:
                    bad.append("the request not over")
                peer.sendall(b"ij")
                buf = bytearray(16)
                again = StreamReadOp(f, Overlapped(0), [memoryview(buf)])
                if _sync.run_sync(again) != (0, 2) or buf[:2] != b"ij":
                    bad.append(f"the next recv: IOSB {again.overlapped.status}, {bytes(buf)!r}")
                return sweep, bad
            finally:
                f.close()
                peer.close()

        assert sweep_cut_points(run, at_least=3) == {}
