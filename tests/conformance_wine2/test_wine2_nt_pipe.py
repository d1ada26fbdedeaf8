"""Named pipes seen from ntdll, ported from Wine's ``dlls/ntdll/tests/pipe.c`` through the Win32
calls that reach the same NT code: the server's direction decides which client accesses may open
it (test_create), SetNamedPipeHandleState needs FILE_WRITE_ATTRIBUTES (test_filepipeinfo),
signal states around blocking reads and flushes (test_blocking), instance counts
(test_pipe_local_info)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
LONG = 5000
FILE_WRITE_ATTRIBUTES = 0x100


def _fails(call: Callable[[], Any], error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


def _server(name: str, open_mode: int, pipe_mode: int = 0, instances: int = 1) -> int:
    return w.CreateNamedPipe(name, open_mode, pipe_mode, instances, 500, 500, 0, None)


def _open(name: str, access: int, flags: int = 0) -> int:
    return w.CreateFile(name, access, 0, None, w.OPEN_EXISTING, flags, 0)


RW = w.GENERIC_READ | w.GENERIC_WRITE
# server direction -> {client access: opens?}  [W:nt/pipe.c:test_create] (the pipe's sharing:
# PIPE_ACCESS_OUTBOUND = FILE_SHARE_READ, INBOUND = FILE_SHARE_WRITE, DUPLEX = both)
CREATE_TABLE = {
    "outbound": (w.PIPE_ACCESS_OUTBOUND, {0: True, w.GENERIC_READ: True, w.GENERIC_WRITE: False,
                                           RW: False}),
    "inbound": (w.PIPE_ACCESS_INBOUND, {0: True, w.GENERIC_READ: False, w.GENERIC_WRITE: True,
                                         RW: False}),
    "duplex": (w.PIPE_ACCESS_DUPLEX, {0: True, w.GENERIC_READ: True, w.GENERIC_WRITE: True,
                                       RW: True}),
}  # fmt: skip


@pytest.mark.parametrize("direction", list(CREATE_TABLE))
def test_client_access_must_match_the_pipe_direction(io, direction: str) -> None:
    # [W:nt/pipe.c:test_create] (a client asking to read an inbound pipe or to write an
    # outbound one is refused: ERROR_ACCESS_DENIED; the listening instance stays available)
    mode, table = CREATE_TABLE[direction]
    name = io.pipe_name()
    for access, opens in table.items():
        server = io.keep(_server(name, mode | w.FILE_FLAG_OVERLAPPED))
        ov = io.ov_event()
        assert not w.ConnectNamedPipe(server, ov) and w.GetLastError() == w.ERROR_IO_PENDING
        w.SetLastError(SENTINEL)
        client = _open(name, access)
        if opens:
            assert client != w.INVALID_HANDLE_VALUE, (access, w.GetLastError())
            io.wait_signaled(ov.hEvent)
            io.keep(client)
            io.close(client)
        else:
            assert client == w.INVALID_HANDLE_VALUE, access
            assert w.GetLastError() == w.ERROR_ACCESS_DENIED, (access, w.GetLastError())
            assert io.stays_nonsignaled(ov.hEvent, 50)  # still listening
            assert w.CancelIo(server)
            io.wait_signaled(ov.hEvent)
        io.close(server)


def test_set_named_pipe_handle_state_needs_write_attributes(io) -> None:
    # [W:nt/pipe.c:test_filepipeinfo] (FilePipeInformation needs FILE_WRITE_ATTRIBUTES: an
    # inbound server and a read-only client lack it; GENERIC_WRITE includes it)
    # [MS:SetNamedPipeHandleState] ("GENERIC_READ and FILE_WRITE_ATTRIBUTES access for a
    # read-only pipe")
    name = io.pipe_name()
    mode = w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE
    server = io.keep(_server(name, w.PIPE_ACCESS_INBOUND, mode))
    _fails(
        lambda: w.SetNamedPipeHandleState(server, w.Ref(w.PIPE_READMODE_BYTE), None, None),
        w.ERROR_ACCESS_DENIED,
    )
    state = w.Ref(SENTINEL)
    assert w.GetNamedPipeHandleState(server, state, None, None, None, None, 0)
    assert state.value == w.PIPE_READMODE_MESSAGE  # unchanged
    client = io.keep(_open(name, w.GENERIC_WRITE))
    assert w.SetNamedPipeHandleState(client, w.Ref(w.PIPE_READMODE_MESSAGE), None, None)
    io.close(client)
    io.close(server)

    server = io.keep(_server(name, w.PIPE_ACCESS_OUTBOUND, mode))
    assert w.SetNamedPipeHandleState(server, w.Ref(w.PIPE_READMODE_BYTE), None, None)
    reader = io.keep(_open(name, w.GENERIC_READ))
    _fails(
        lambda: w.SetNamedPipeHandleState(reader, w.Ref(w.PIPE_READMODE_MESSAGE), None, None),
        w.ERROR_ACCESS_DENIED,
    )
    io.close(reader)
    io.close(server)
    io.keep(_server(name, w.PIPE_ACCESS_OUTBOUND, mode))
    reader = io.keep(_open(name, w.GENERIC_READ | FILE_WRITE_ATTRIBUTES))
    assert w.SetNamedPipeHandleState(reader, w.Ref(w.PIPE_READMODE_MESSAGE), None, None)
    assert w.GetNamedPipeHandleState(reader, state, None, None, None, None, 0)
    assert state.value == w.PIPE_READMODE_MESSAGE


def test_set_named_pipe_handle_state_bad_modes(io) -> None:
    # [W:nt/pipe.c:test_filepipeinfo] (read mode 1 on a byte pipe: STATUS_INVALID_PARAMETER;
    # values outside 0-1: STATUS_INVALID_PARAMETER; a failed call changes nothing)
    server, client = io.pipe()
    for mode in (w.PIPE_READMODE_MESSAGE | w.PIPE_NOWAIT, 0x4, 0x8):
        _fails(
            lambda m=mode: w.SetNamedPipeHandleState(client, w.Ref(m), None, None),
            w.ERROR_INVALID_PARAMETER,
        )
    state = w.Ref(SENTINEL)
    assert w.GetNamedPipeHandleState(client, state, None, None, None, None, 0)
    assert state.value == 0
    assert w.SetNamedPipeHandleState(client, w.Ref(w.PIPE_NOWAIT), None, None)
    assert w.GetNamedPipeHandleState(client, state, None, None, None, None, 0)
    assert state.value == w.PIPE_NOWAIT
    assert w.GetNamedPipeHandleState(server, state, None, None, None, None, 0)
    assert state.value == 0  # each end has its own completion mode
    _fails(
        lambda: w.SetNamedPipeHandleState(w.INVALID_HANDLE_VALUE, w.Ref(0), None, None),
        w.ERROR_INVALID_HANDLE,
    )


def test_blocking_read_signal_states(io) -> None:
    # [W:nt/pipe.c:test_blocking] (a blocking read: the reader's handle is nonsignaled while
    # it waits, the writer's stays signaled, and both are signaled once it completes)
    name = io.pipe_name()
    server = io.keep(_server(name, w.PIPE_ACCESS_DUPLEX))
    client = io.keep(_open(name, RW))
    assert io.is_signaled(client) and io.is_signaled(server)
    seen: list[tuple[bool, bool]] = []
    go = io.event(manual=False)

    def writer() -> int:
        io.wait_signaled(go)
        seen.append((io.is_signaled(client), io.is_signaled(server)))
        assert w.WriteFile(server, b"t", 1, w.Ref(0), None)
        seen.append((True, io.is_signaled(server)))
        return 0

    thread = io.thread(writer)
    w.SetEvent(go)
    buf = bytearray(16)
    n = w.Ref(SENTINEL)
    # the writer checks the states while this read blocks; it cannot write before it checked
    assert w.ReadFile(client, buf, 16, n, None) and n.value == 1
    thread.join()
    assert seen[1] == (True, True)
    assert io.is_signaled(client)
    # the writer may have looked before the read started, when the client was still signaled
    assert seen[0][1] is True


def test_blocking_flush_waits_for_the_reader(io) -> None:
    # [W:nt/pipe.c:test_blocking] ("blocking flush", and "flush is blocking even in overlapped
    # mode": FlushFileBuffers returns once the peer has read everything written)
    for overlapped in (False, True):
        server, client = io.pipe(
            message=True, server_overlapped=overlapped, client_overlapped=overlapped
        )
        if overlapped:
            io.send_all(client, b"x")
        else:
            assert w.WriteFile(client, b"x", 1, w.Ref(0), None)
        done = io.event()

        def flush(c: int = client, d: int = done) -> int:
            assert w.FlushFileBuffers(c), w.GetLastError()
            w.SetEvent(d)
            return 0

        thread = io.thread(flush)
        assert io.stays_nonsignaled(done, 200)
        assert io.recv_exact(server, 1) == b"x"
        io.wait_signaled(done)
        thread.join()


def test_current_instances(io) -> None:
    # [W:nt/pipe.c:test_pipe_local_info] (CurrentInstances counts the live instances of the
    # pipe, seen from any of them and from a client; MaximumInstances is the creation value)
    name = io.pipe_name()
    first = io.keep(_server(name, w.PIPE_ACCESS_DUPLEX, 0, 4))
    cur = w.Ref(SENTINEL)
    assert w.GetNamedPipeHandleState(first, None, cur, None, None, None, 0) and cur.value == 1
    second = io.keep(_server(name, w.PIPE_ACCESS_DUPLEX, 0, 4))
    client = io.keep(_open(name, RW))
    for h in (first, second, client):
        assert w.GetNamedPipeHandleState(h, None, cur, None, None, None, 0) and cur.value == 2
    maxi = w.Ref(SENTINEL)
    assert w.GetNamedPipeInfo(client, None, None, None, maxi) and maxi.value == 4
    io.close(second)
    assert w.GetNamedPipeHandleState(first, None, cur, None, None, None, 0) and cur.value == 1
    unlimited = io.keep(_server(io.pipe_name(), w.PIPE_ACCESS_DUPLEX, 0, 255))
    assert w.GetNamedPipeInfo(unlimited, None, None, None, maxi)
    assert maxi.value == w.PIPE_UNLIMITED_INSTANCES
