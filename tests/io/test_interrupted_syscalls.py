"""An interrupt at a syscall's return in the pure-Python immediate paths (pure, 2026-12-06).

Python code checks for signals after every C call's return (``CALL``), before the result is
stored: ``n = sock.recv_into(buffer)`` cut there dropped the count of bytes the socket gave
up - the data gone, the request never completed (review8 left it out: "only blocking signals
around the call would close it"). The pure paths now make such a syscall through ``map`` /
``itertools.starmap`` in a ``for`` loop, whose ``FOR_ITER`` stores the count with no check
in between (a C-to-C call), so an interrupt lands once the count is stored, and the request
completes with its bytes before the interrupt goes on (as the C paths, which have no check
there). A cut past the syscall at a Python callee's entry (``_send_rest``, ``notify_locked``,
``notify_success``) makes that call again.

The sweep raises at each cut point in turn - a C function's return inside the path's own
frame, or the entry of a function it calls - and checks that no data is lost: bytes the
socket gave up (or took) are in the request's IOSB, a page-cache read that filled the buffer
completed. docs/design.md "The pure-Python immediate paths under interrupts (pure, ...)".
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

import winaio
from winaio._io import _issue, _sync
from winaio._io._disk import DiskFile
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._sock_after import _rest_request
from winaio._io._sockets import Socket, _send_rest
from winaio._io._stream_ops import StreamReadOp, StreamWriteOp
from winaio.testing import (
    Sweep,
    accelerator_for_test,
    left_behind,
    profiled,
    sweep_cut_points,
    wait_until,
)


def _pending(sock: socket.socket) -> bytes:
    try:
        return sock.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, TimeoutError):
        return b""


#: An IOSB status no path writes: a request cut before its issue-time reset keeps it.
UNTOUCHED = 0x7777


def test_an_interrupt_anywhere_in_an_immediate_receive_loses_no_byte(socket_pair: Any) -> None:
    """# spec: win32 #54 (at completion Internal/InternalHigh written, the event set).
    WSARecv/ReadFile's immediate path (``Socket.start_read``, Python): wherever the interrupt
    lands, either the bytes are still in the socket (cut before the syscall) or the request
    holds them (Internal 0, InternalHigh 8, the buffer filled) and the event is set. Before:
    a cut at ``recv_into``'s return lost the 8 bytes."""
    with accelerator_for_test("python"):
        f, peer = socket_pair()

        def run(k: int) -> tuple[Sweep, list[str]]:
            peer.sendall(b"abcdefgh")
            wait_until(lambda: _pending(f.sock) == b"abcdefgh", 5.0, "data")
            event = winaio.Event(manual_reset=True)
            ov = Overlapped(0, event)
            ov.status = UNTOUCHED
            buf = bytearray(16)
            sweep = Sweep(k, {Socket.start_read.__code__})
            profiled(sweep, lambda: f.start_read(buf, ov))
            bad = left_behind()
            if list(f.fd_users):  # (the descriptor's users: ``_fd_users``)
                bad.append(f"{len(f.fd_users)} users left counted in")
            left = _pending(f.sock)
            if left == b"abcdefgh":
                f.sock.recv(64)  # (cut before the syscall: nothing taken)
                if ov.status not in (UNTOUCHED, STATUS_PENDING):
                    bad.append(f"completed without the data: {ov.status}")
            elif (ov.status, ov.information, bytes(buf[:8])) != (0, 8, b"abcdefgh"):
                bad.append(f"the receive lost: {left!r} left, IOSB {ov.status} {ov.information}")
            elif not event.is_set():
                bad.append("the event not set")
            return sweep, bad

        assert sweep_cut_points(run, limit=200) == {}


def test_an_interrupt_anywhere_in_an_immediate_send_loses_no_byte(socket_pair: Any) -> None:
    """# spec: win32 #54. WSASend/WriteFile's immediate path (``Socket.start_write``,
    Python): wherever the interrupt lands, the bytes the peer gets are the bytes the request
    reports (none and Internal still STATUS_PENDING, or all 8 and Internal 0). Before: a cut
    at ``send``'s return sent them and reported nothing."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = socket_pair()  # (a new pair each time: nothing left from the last run)
            event = winaio.Event(manual_reset=True)
            ov = Overlapped(0, event)
            ov.status = UNTOUCHED
            sweep = Sweep(k, {Socket.start_write.__code__})
            profiled(sweep, lambda: f.start_write(b"abcdefgh", ov))
            bad = left_behind()
            if list(f.fd_users):  # (the descriptor's users: ``_fd_users``)
                bad.append(f"{len(f.fd_users)} users left counted in")
            got = _pending(peer)
            if got:
                wait_until(lambda: len(_pending(peer)) == 8, 5.0, "the bytes")
                got = peer.recv(64)
            if got == b"":
                if ov.status not in (UNTOUCHED, STATUS_PENDING):
                    bad.append(f"completed with nothing sent: {ov.status}")
            elif (got, ov.status, ov.information) != (b"abcdefgh", 0, 8):
                bad.append(f"sent {got!r}, IOSB {ov.status} {ov.information}")
            elif not event.is_set():
                bad.append("the event not set")
            return sweep, bad

        assert sweep_cut_points(run, limit=200) == {}


def test_an_interrupt_anywhere_in_a_partial_send_registers_the_rest(socket_pair: Any) -> None:
    """# spec: win32 #66 (a request's bytes in order, none overtaking). A send the socket takes
    in part (its buffers full): wherever the interrupt lands past the syscall, the rest is
    registered as a pending request that completes with every byte once the peer reads.
    Before: a cut at ``send``'s return or at ``_send_rest``'s entry left the bytes it took
    sent and the rest never sent, the request never completed."""
    with accelerator_for_test("python"):
        data = bytes(range(256)) * 1024  # 256 KiB: more than the buffers take at once

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = socket_pair()  # (a new pair each time: nothing left from the last run)
            f.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            event = winaio.Event(manual_reset=True)
            ov = Overlapped(0, event)
            ov.status = UNTOUCHED
            sweep = Sweep(
                k, {Socket.start_write.__code__, _send_rest.__code__, _rest_request.__code__}
            )
            profiled(sweep, lambda: f.start_write(data, ov))
            bad = left_behind()
            if list(f.fd_users):  # (the descriptor's users: ``_fd_users``)
                bad.append(f"{len(f.fd_users)} users left counted in")
            got = bytearray()
            peer.settimeout(1.0)
            while True:
                try:
                    chunk = peer.recv(65536)
                except TimeoutError:
                    break
                got += chunk
                if len(got) == len(data):
                    wait_until(event.is_set, 5.0, "the request completed")
                    break
            if not got:
                if ov.status not in (UNTOUCHED, STATUS_PENDING):
                    bad.append(f"completed with nothing sent: {ov.status}")
            elif bytes(got) != data or (ov.status, ov.information) != (0, len(data)):
                bad.append(f"{len(got)} bytes arrived, IOSB {ov.status} {ov.information}")
            return sweep, bad

        assert sweep_cut_points(run, limit=200) == {}


def test_an_interrupt_anywhere_in_a_cached_read_completes_it(tmp_path: Any) -> None:
    """# spec: win32 #54. An overlapped ReadFile served from the page cache (``DiskFile.
    read_now``, Python), with an event and with a completion routine: a read that filled
    the buffer has completed (Internal 0, InternalHigh 16; the routine's APC queued). Before:
    a cut at ``preadv``'s return (left out of review8's sweep) or at ``notify_locked``'s
    entry (the routine's case) left it STATUS_PENDING with the data read."""
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(1, 65)))
    path.read_bytes()
    calls: list[tuple[int, int]] = []
    with accelerator_for_test("python"):
        file, _ = winaio.open_file(
            str(path), read=True, write=False, disposition=3, overlapped=True
        )
        try:
            for routine in (None, lambda err, n, ov: calls.append((err, n))):

                def run(k: int, routine: Any = routine) -> tuple[Sweep, list[str]]:
                    ov = Overlapped(0, None if routine else winaio.Event(manual_reset=True))
                    buf = bytearray(16)
                    sweep = Sweep(k, {DiskFile.read_now.__code__})
                    calls.clear()
                    profiled(sweep, lambda: file.read_now([memoryview(buf)], ov, routine))
                    winaio.sleep(0, alertable=True)  # (the routine's APC, if queued)
                    bad = left_behind()
                    if bytes(buf) == bytes(range(1, 17)):
                        if (ov.status, ov.information) != (0, 16):
                            bad.append(f"read, IOSB {ov.status} {ov.information}")
                        elif routine is not None and calls != [(0, 16)]:
                            bad.append(f"the routine ran {calls}")
                    return sweep, bad

                assert sweep_cut_points(run, limit=200) == {}, routine
        finally:
            file.close()


#: The general path's frames (``_issue.start`` and what it calls to try and to hand over).
_GENERAL = {
    f.__code__
    for f in (
        _issue._start,
        _issue.submit,
        _issue._hand_to_backend,
        StreamReadOp.try_now,
        StreamWriteOp.try_now,
    )
}


def _drain(peer: socket.socket, want: int, event: Any) -> bytes:
    """What ``peer`` receives until ``want`` bytes came and ``event`` is set, or 1 s of
    silence."""
    got = bytearray()
    peer.settimeout(1.0)
    while len(got) < want:
        try:
            chunk = peer.recv(65536)
        except TimeoutError:
            break
        got += chunk
    if len(got) == want:
        wait_until(event.is_set, 5.0, "the request completed")
    return bytes(got)


@pytest.mark.parametrize("data_first", [True, False])
def test_an_interrupt_anywhere_in_a_general_path_receive_loses_no_byte(
    socket_pair: Any, data_first: bool
) -> None:
    """# spec: win32 #54, #66. A two-buffer receive through the general path (``_issue.start``
    -> ``StreamReadOp.try_now`` / ``submit`` -> the backend): the bytes the socket gave up
    are in the IOSB; a request that was registered is handed to its backend and completes
    when data comes (registered and never handed over, it pended for ever and queued every
    later receive of the socket behind it, #66)."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = socket_pair()
            if data_first:
                peer.sendall(b"abcdefgh")
                wait_until(lambda: _pending(f.sock) == b"abcdefgh", 5.0, "data")
            event = winaio.Event(manual_reset=True)
            ov = Overlapped(0, event)
            ov.status = UNTOUCHED
            a, b = bytearray(4), bytearray(12)
            op = StreamReadOp(f, ov, [memoryview(a), memoryview(b)])
            sweep = Sweep(k, _GENERAL)
            profiled(sweep, lambda: _issue.start(op))
            bad = left_behind()
            if not data_first and not op.registered:  # (never issued: nothing took data)
                if ov.status == 0:
                    bad.append("completed, never issued")
                return sweep, bad
            if op.registered:  # pending: the backend completes it with the data
                if not data_first:
                    peer.sendall(b"abcdefgh")
                if winaio.wait(event, 5.0).code != 0:
                    bad.append(f"registered, never completed: IOSB {ov.status}")
                    return sweep, bad
            left = _pending(f.sock)
            if left == b"abcdefgh":
                if ov.status == 0 or op.registered:
                    bad.append(f"IOSB {ov.status}, registered {op.registered}, data left")
            elif (ov.status, ov.information, bytes(a + b)[:8]) != (0, 8, b"abcdefgh"):
                bad.append(f"the receive lost: {left!r} left, IOSB {ov.status} {ov.information}")
            return sweep, bad

        assert sweep_cut_points(run, limit=200) == {}


def test_an_interrupt_anywhere_in_a_general_path_send_loses_no_byte(socket_pair: Any) -> None:
    """# spec: win32 #54, #66. A two-buffer send the socket takes in part, through the general
    path (``StreamWriteOp.try_now``'s ``sendmsg``, then the backend for the rest): the bytes
    the peer gets are every byte, reported once the request completes; or none, the request
    never issued. Before: a cut at ``sendmsg``'s return or in the buffers' trimming forgot the
    request with its bytes sent."""
    with accelerator_for_test("python"):
        data = bytes(range(256)) * 512  # two buffers of 64 KiB

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, peer = socket_pair()
            f.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            event = winaio.Event(manual_reset=True)
            ov = Overlapped(0, event)
            ov.status = UNTOUCHED
            half = len(data) // 2
            op = StreamWriteOp(f, ov, [memoryview(data[:half]), memoryview(data[half:])])
            sweep = Sweep(k, _GENERAL)
            profiled(sweep, lambda: _issue.start(op))
            bad = left_behind()
            got = _drain(peer, len(data), event)
            if not got:
                if ov.status == 0 or op.registered:
                    bad.append(f"nothing sent, IOSB {ov.status}, registered {op.registered}")
            elif got != data or (ov.status, ov.information) != (0, len(data)):
                bad.append(f"{len(got)} bytes arrived, IOSB {ov.status} {ov.information}")
            return sweep, bad

        assert sweep_cut_points(run, limit=200) == {}


@pytest.mark.parametrize("how", ["start", "run_sync"])
def test_an_interrupt_anywhere_in_a_send_leaves_the_send_claim_free(
    socket_pair: Any, how: str
) -> None:
    """# spec: win32 #66. A send through the general path (``_issue.start``) or a synchronous
    one (``_sync.run_sync``) holds its socket's send claim while it is issued. Before: a
    Ctrl-C at the return of ``claim.acquire()`` (``acquire(); try:``) left the claim taken,
    and every later send of the socket waited for it for ever."""
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            f, _peer = socket_pair()
            op = StreamWriteOp(f, Overlapped(0), [memoryview(b"abcdefgh")])
            sweep = Sweep(k, {_issue.start.__code__, _sync.run_sync.__code__})
            call = _issue.start if how == "start" else _sync.run_sync
            profiled(sweep, lambda: call(op))
            bad = left_behind()
            claim = f.send_claim
            if claim is not None and claim.locked():
                bad.append("the send claim left taken")
                claim.release()
            return sweep, bad

        assert sweep_cut_points(run, limit=200) == {}
