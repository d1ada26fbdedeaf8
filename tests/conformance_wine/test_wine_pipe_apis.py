"""The named-pipe APIs issue 12 adds: WaitNamedPipe, TransactNamedPipe, CallNamedPipe,
GetNamedPipeInfo, Get/SetNamedPipeHandleState, GetNamedPipeClient/ServerProcessId,
FILE_FLAG_FIRST_PIPE_INSTANCE - ported from Wine's kernel32 pipe tests, plus bad input."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF


def _fails(call: Callable[[], Any], error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


def _create(
    name: str,
    open_mode: int,
    pipe_mode: int,
    instances: int = 1,
    out_size: int = 1024,
    in_size: int = 1024,
    timeout: int = 0,
) -> int:
    return w.CreateNamedPipe(
        name, open_mode, pipe_mode, instances, out_size, in_size, timeout, None
    )


def _pipe_info(handle: int) -> tuple[int, int, int, int]:
    refs = [w.Ref(SENTINEL) for _ in range(4)]
    assert w.GetNamedPipeInfo(handle, *refs), w.GetLastError()
    return tuple(int(r.value) for r in refs)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# CreateNamedPipe parameters


def test_create_named_pipe_bad_parameters(io) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] [W:k32/pipe.c:test_CreateNamedPipe_instances_must_match]
    name = io.pipe_name()
    for bad_name, error in (
        ("not a named pipe", w.ERROR_INVALID_NAME),
        (None, w.ERROR_PATH_NOT_FOUND),
    ):
        w.SetLastError(SENTINEL)
        assert _create(bad_name, w.PIPE_ACCESS_DUPLEX, 0) == w.INVALID_HANDLE_VALUE  # type: ignore[arg-type]
        assert w.GetLastError() == error
    w.SetLastError(SENTINEL)
    h = _create(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_BYTE | w.PIPE_READMODE_MESSAGE)
    assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_INVALID_PARAMETER
    for instances in (0, 256):
        w.SetLastError(SENTINEL)
        h = _create(name, w.PIPE_ACCESS_DUPLEX, 0, instances=instances)
        assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert _create(name, 0, 0) == w.INVALID_HANDLE_VALUE  # no access at all
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert _create(name, w.PIPE_ACCESS_DUPLEX, 0x100) == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    # no such pipe for a client
    w.SetLastError(SENTINEL)
    h = w.CreateFile(name, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.OPEN_EXISTING, 0, 0)
    assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_FILE_NOT_FOUND


def test_create_named_pipe_instances_must_match(io) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe_instances_must_match]
    name = io.pipe_name()
    first = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, 0, instances=1))
    _fails(lambda: _create(name, w.PIPE_ACCESS_DUPLEX, 0, instances=1) != -1, w.ERROR_PIPE_BUSY)
    io.close(first)
    first = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, 0, instances=2))
    _fails(
        lambda: _create(name, w.PIPE_ACCESS_INBOUND, 0, instances=2) != -1, w.ERROR_ACCESS_DENIED
    )
    io.close(first)
    first = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, 0, instances=4))
    # type, instance count, sizes and timeout may differ
    io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_MESSAGE, 3, 102, 24, 1234))


def test_first_pipe_instance(io) -> None:
    # [MS:CreateNamedPipeW] (FILE_FLAG_FIRST_PIPE_INSTANCE: fails with ERROR_ACCESS_DENIED if
    # the pipe already exists)
    name = io.pipe_name()
    first = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_FIRST_PIPE_INSTANCE, 0, 2))
    _fails(
        lambda: _create(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_FIRST_PIPE_INSTANCE, 0, 2) != -1,
        w.ERROR_ACCESS_DENIED,
    )
    io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, 0, 2))  # without the flag: a second instance
    io.close(first)


# --------------------------------------------------------------------------------------------
# GetNamedPipeInfo, Get/SetNamedPipeHandleState


def test_get_named_pipe_info(io) -> None:
    # [W:k32/pipe.c:test_GetNamedPipeInfo]
    cases = [
        (
            w.PIPE_ACCESS_DUPLEX,
            w.PIPE_TYPE_BYTE | w.PIPE_WAIT,
            1,
            1024,
            1024,
            (w.PIPE_SERVER_END | w.PIPE_TYPE_BYTE, 1024, 1024, 1),
        ),
        (
            w.PIPE_ACCESS_DUPLEX,
            w.PIPE_TYPE_MESSAGE | w.PIPE_NOWAIT,
            3,
            1024,
            1024,
            (w.PIPE_SERVER_END | w.PIPE_TYPE_MESSAGE, 1024, 1024, 3),
        ),
        (
            w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX,
            w.PIPE_TYPE_MESSAGE,
            1,
            0,
            0,
            (w.PIPE_SERVER_END | w.PIPE_TYPE_MESSAGE, 0, 0, 1),
        ),
        (
            w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX,
            w.PIPE_TYPE_MESSAGE,
            1,
            0xF000,
            0xF000,
            (w.PIPE_SERVER_END | w.PIPE_TYPE_MESSAGE, 0xF000, 0xF000, 1),
        ),
        (
            w.PIPE_ACCESS_DUPLEX,
            0,
            w.PIPE_UNLIMITED_INSTANCES,
            10,
            20,
            # [MS:GetNamedPipeInfo]: "PIPE_UNLIMITED_INSTANCES (255)" (NPFS itself says -1)
            (w.PIPE_SERVER_END, 10, 20, w.PIPE_UNLIMITED_INSTANCES),
        ),
    ]
    for open_mode, pipe_mode, instances, out_size, in_size, expected in cases:
        name = io.pipe_name()
        server = io.keep(_create(name, open_mode, pipe_mode, instances, out_size, in_size))
        assert _pipe_info(server) == expected
        client = io.pipe_client(name, overlapped=False)
        assert _pipe_info(client) == (expected[0] & ~w.PIPE_SERVER_END, *expected[1:])
        io.close(client)
        io.close(server)


def test_named_pipe_handle_state(io) -> None:
    # [W:k32/pipe.c:test_NamedPipeHandleState]
    name = io.pipe_name()
    server = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_BYTE | w.PIPE_WAIT))
    assert w.GetNamedPipeHandleState(server, None, None, None, None, None, 0)
    state, instances = w.Ref(SENTINEL), w.Ref(SENTINEL)
    assert w.GetNamedPipeHandleState(server, state, instances, None, None, None, 0)
    assert (state.value, instances.value) == (0, 1)
    # collection parameters have no meaning on a local pipe
    _fails(
        lambda: w.GetNamedPipeHandleState(server, state, instances, w.Ref(0), w.Ref(0), None, 0),
        w.ERROR_INVALID_PARAMETER,
    )
    # a byte pipe cannot be switched to message read mode, on either end
    _fails(
        lambda: w.SetNamedPipeHandleState(server, w.Ref(w.PIPE_READMODE_MESSAGE), None, None),
        w.ERROR_INVALID_PARAMETER,
    )
    client = io.pipe_client(name, overlapped=False)
    assert w.SetNamedPipeHandleState(client, w.Ref(w.PIPE_READMODE_BYTE), None, None)
    _fails(
        lambda: w.SetNamedPipeHandleState(client, w.Ref(w.PIPE_READMODE_MESSAGE), None, None),
        w.ERROR_INVALID_PARAMETER,
    )
    io.close(client)
    io.close(server)

    server = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_MESSAGE | w.PIPE_WAIT))
    assert w.GetNamedPipeHandleState(server, state, instances, None, None, None, 0)
    assert (state.value, instances.value) == (0, 1)
    assert w.SetNamedPipeHandleState(server, w.Ref(w.PIPE_READMODE_BYTE), None, None)
    client = io.pipe_client(name, overlapped=False)
    mode = w.PIPE_READMODE_MESSAGE | w.PIPE_NOWAIT
    assert w.SetNamedPipeHandleState(client, w.Ref(mode), None, None)
    assert w.GetNamedPipeHandleState(client, state, instances, None, None, None, 0)
    assert (state.value, instances.value) == (mode, 1)
    assert w.SetNamedPipeHandleState(client, w.Ref(w.PIPE_READMODE_BYTE), None, None)
    assert w.GetNamedPipeHandleState(client, state, None, None, None, None, 0)
    assert state.value == 0
    # a user name only on the server end
    user = w.Ref("")
    assert w.GetNamedPipeHandleState(server, None, None, None, None, user, 256)
    assert user.value
    _fails(
        lambda: w.GetNamedPipeHandleState(client, None, None, None, None, w.Ref(""), 256),
        w.ERROR_INVALID_PARAMETER,
    )
    _fails(
        lambda: w.GetNamedPipeHandleState(server, None, None, None, None, w.Ref(""), 1),
        w.ERROR_INSUFFICIENT_BUFFER,
    )
    # bad modes and collection parameters
    _fails(
        lambda: w.SetNamedPipeHandleState(client, w.Ref(0x10), None, None),
        w.ERROR_INVALID_PARAMETER,
    )
    _fails(
        lambda: w.SetNamedPipeHandleState(client, None, w.Ref(1), None), w.ERROR_INVALID_PARAMETER
    )
    # a client cut by DisconnectNamedPipe is no longer connected
    assert w.DisconnectNamedPipe(server)
    _fails(
        lambda: w.GetNamedPipeHandleState(client, state, None, None, None, None, 0),
        w.ERROR_PIPE_NOT_CONNECTED,
    )
    _fails(
        lambda: w.SetNamedPipeHandleState(client, w.Ref(0), None, None), w.ERROR_PIPE_NOT_CONNECTED
    )
    _fails(lambda: w.GetNamedPipeInfo(client, None, None, None, None), w.ERROR_PIPE_NOT_CONNECTED)


# --------------------------------------------------------------------------------------------
# WaitNamedPipe


def test_wait_named_pipe(io, testing) -> None:
    # [W:k32/pipe.c:test_wait_pipe] [W:k32/pipe.c:test_CreateNamedPipe]
    name = io.pipe_name()
    _fails(lambda: w.WaitNamedPipe(name, 0), w.ERROR_FILE_NOT_FOUND)
    _fails(lambda: w.WaitNamedPipe(name, 2000), w.ERROR_FILE_NOT_FOUND)
    server0 = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, 0, 2))
    assert w.WaitNamedPipe(name.upper().replace("\\\\.\\PIPE\\", "\\\\.\\pipe\\"), 1)
    client = io.pipe_client(name, overlapped=False)
    _fails(lambda: w.WaitNamedPipe(name, 1), w.ERROR_SEM_TIMEOUT)

    def async_wait() -> Any:
        worker = io.thread(lambda: 0 if w.WaitNamedPipe(name, 5000) else w.GetLastError())
        testing.wait_until_blocked(worker.tid)
        return worker

    # creating a new instance wakes the waiters
    waiter = async_wait()
    server1 = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, 0, 2))
    assert waiter.join() == 0
    io.close(server1)
    io.close(client)
    assert w.DisconnectNamedPipe(server0)
    # a disconnected instance is not available until it listens again
    _fails(lambda: w.WaitNamedPipe(name, 1), w.ERROR_SEM_TIMEOUT)
    waiter = async_wait()
    ov = io.ov_event()
    assert not w.ConnectNamedPipe(server0, ov) and w.GetLastError() == w.ERROR_IO_PENDING
    assert waiter.join() == 0
    io.close(server0)
    assert io.is_signaled(ov.hEvent)  # closing the instance aborted the pending connect


def test_wait_named_pipe_default_timeout(io) -> None:
    # [MS:WaitNamedPipeW] (NMPWAIT_USE_DEFAULT_WAIT: the time-out given to CreateNamedPipe;
    # NMPWAIT_WAIT_FOREVER); [MS:CreateNamedPipeW] (nDefaultTimeOut 0 = 50 ms)
    name = io.pipe_name()
    io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, 0, 1, timeout=20))
    io.pipe_client(name, overlapped=False)
    _fails(lambda: w.WaitNamedPipe(name, w.NMPWAIT_USE_DEFAULT_WAIT), w.ERROR_SEM_TIMEOUT)
    _fails(lambda: w.WaitNamedPipe("\\\\server\\pipe\\x", 0), w.ERROR_FILE_NOT_FOUND)


# --------------------------------------------------------------------------------------------
# TransactNamedPipe / CallNamedPipe


def _overlapped_pipe(io: Any, mode: int) -> tuple[int, int]:
    name = io.pipe_name()
    server = io.keep(
        _create(name, w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX, mode, 1, 5000, 6000)
    )
    client = io.pipe_client(name)
    read_mode = w.Ref(mode & w.PIPE_READMODE_MESSAGE)
    assert w.SetNamedPipeHandleState(client, read_mode, None, None)
    return client, server


def _transact(io: Any, caller: int, data: bytes, read_buf: bytearray, size: int) -> Any:
    ov = io.ov_event()
    w.SetLastError(SENTINEL)
    assert not w.TransactNamedPipe(caller, data, len(data), read_buf, size, None, ov)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    return ov


def _write(io: Any, writer: int, data: bytes) -> None:
    n = w.Ref(SENTINEL)
    assert w.WriteFile(writer, data, len(data), n, io.ov_event()), w.GetLastError()
    assert n.value == len(data)


def _write_async(io: Any, writer: int, size: int) -> Any:
    ov = io.ov_event()
    assert not w.WriteFile(writer, bytes(size), size, None, ov)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    return ov


def _read(io: Any, reader: int, size: int) -> bytes:
    buf = bytearray(size)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(reader, buf, size, n, io.ov_event()), w.GetLastError()
    return bytes(buf[: n.value])


def _transact_case(io: Any, caller: int, callee: int, write_size: int) -> None:
    # [W:k32/pipe.c:test_transact]
    read_buf = bytearray(100)
    ov = _transact(io, caller, b"abc", read_buf, 100)
    _write(io, callee, b"test")
    io.wait_signaled(ov.hEvent)
    assert io.result(caller, ov) == (True, 0, 4)
    assert bytes(read_buf[:4]) == b"test"
    assert _read(io, callee, 1000) == b"abc"
    # fails when data is already waiting to be read
    _write(io, callee, b"x")
    _fails(
        lambda: w.TransactNamedPipe(caller, b"ab", 2, bytearray(1), 1, None, io.ov_event()),
        w.ERROR_PIPE_BUSY,
    )
    assert _read(io, caller, 1000) == b"x"
    # a transaction does not wait behind a pending write
    write_ov = _write_async(io, caller, write_size + 2000)
    ov = _transact(io, caller, b"ab", bytearray(1), 1)
    assert io.stays_nonsignaled(ov.hEvent)
    _write(io, callee, b"y")
    io.wait_signaled(ov.hEvent)
    assert io.result(caller, ov) == (True, 0, 1)
    assert len(_read(io, callee, 10000)) == write_size + 2000
    assert io.result(caller, write_ov, wait=True) == (True, 0, write_size + 2000)
    assert _read(io, callee, 10000) == b"ab"
    # with a read already pending on the other end; a reply larger than the buffer
    pending = io.ov_event()
    callee_buf = bytearray(10)
    assert not w.ReadFile(callee, callee_buf, 10, None, pending)
    reply = bytearray(6)
    ov = _transact(io, caller, b"12345", reply, 6)
    io.wait_signaled(pending.hEvent)
    assert io.result(callee, pending) == (True, 0, 5)
    assert io.stays_nonsignaled(ov.hEvent)
    _write(io, callee, b"0123456789")
    io.wait_signaled(ov.hEvent)
    assert io.result(caller, ov) == (False, w.ERROR_MORE_DATA, 6)
    assert bytes(reply) == b"012345"
    assert _read(io, caller, 100) == b"6789"
    # zero-size messages
    ov = _transact(io, caller, b"12345", bytearray(1), 0)
    assert _read(io, callee, 100) == b"12345"
    _write(io, callee, b"")
    io.wait_signaled(ov.hEvent)
    assert io.result(caller, ov) == (True, 0, 0)
    ov = _transact(io, caller, b"", bytearray(1), 0)
    assert _read(io, callee, 100) == b""
    assert io.stays_nonsignaled(ov.hEvent)
    _write(io, callee, b"")
    io.wait_signaled(ov.hEvent)
    assert io.result(caller, ov) == (True, 0, 0)
    # answer a transaction with a transaction
    ov = _transact(io, caller, b"abc", bytearray(100), 100)
    assert _read(io, callee, 1000) == b"abc"
    ov2 = _transact(io, callee, b"defg", bytearray(100), 100)
    io.wait_signaled(ov.hEvent)
    assert io.result(caller, ov) == (True, 0, 4)
    _write(io, caller, b"h")
    io.wait_signaled(ov2.hEvent)
    assert io.result(callee, ov2) == (True, 0, 1)
    # a cancel withdraws the read, the message stays sent
    write_ov = _write_async(io, caller, write_size + 2000)
    ov = _transact(io, caller, b"zz", bytearray(1), 1)
    assert w.CancelIoEx(caller, ov)
    io.wait_signaled(ov.hEvent)
    assert io.result(caller, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
    assert len(_read(io, callee, 10000)) == write_size + 2000
    assert io.result(caller, write_ov, wait=True)[0]
    assert _read(io, callee, 10000) == b"zz"


def test_transact_named_pipe(io) -> None:
    # [W:k32/pipe.c:test_TransactNamedPipe]
    for mode in (w.PIPE_TYPE_BYTE, w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_BYTE):
        client, server = _overlapped_pipe(io, mode)
        _fails(
            lambda c=client: w.TransactNamedPipe(c, b"ab", 2, bytearray(1), 1, None, io.ov_event()),
            w.ERROR_BAD_PIPE,
        )
    client, server = _overlapped_pipe(io, w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE)
    _transact_case(io, server, client, 5000)
    client, server = _overlapped_pipe(io, w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE)
    _transact_case(io, client, server, 6000)


def test_transact_named_pipe_synchronous(io) -> None:
    # [MS:TransactNamedPipe] (a synchronous handle: the call returns with the reply;
    # ERROR_MORE_DATA with *lpBytesRead = the bytes copied)
    name = io.pipe_name()
    mode = w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE
    server = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, mode))
    client = io.pipe_client(name, overlapped=False, message=True)

    def echo() -> int:
        buf = bytearray(100)
        n = w.Ref(0)
        assert w.ReadFile(server, buf, 100, n, None), w.GetLastError()
        reply = bytes(buf[: n.value]) * 2
        assert w.WriteFile(server, reply, len(reply), n, None)
        return 0

    worker = io.thread(echo)
    out, n = bytearray(10), w.Ref(SENTINEL)
    assert w.TransactNamedPipe(client, b"ping", 4, out, 10, n, None), w.GetLastError()
    assert (n.value, bytes(out[:8])) == (8, b"pingping")
    worker.join()
    worker = io.thread(echo)
    out = bytearray(5)
    assert not w.TransactNamedPipe(client, b"pong", 4, out, 5, n, None)
    assert w.GetLastError() == w.ERROR_MORE_DATA
    assert (n.value, bytes(out)) == (5, b"pongp")
    worker.join()


def test_call_named_pipe(io, testing) -> None:
    # [MS:CallNamedPipeW] (connect - waiting for a free instance -, message read mode,
    # transact, close)
    name = io.pipe_name()
    mode = w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE
    server = io.keep(_create(name, w.PIPE_ACCESS_DUPLEX, mode))
    busy = io.pipe_client(name, overlapped=False)  # the only instance is taken

    def serve() -> int:
        assert w.DisconnectNamedPipe(server)
        assert w.ConnectNamedPipe(server, None), w.GetLastError()
        buf, n = bytearray(100), w.Ref(0)
        assert w.ReadFile(server, buf, 100, n, None), w.GetLastError()
        reply = bytes(buf[: n.value]).upper()
        assert w.WriteFile(server, reply, len(reply), n, None)
        return 0

    out, n = bytearray(100), w.Ref(SENTINEL)
    _fails(lambda: w.CallNamedPipe(name, b"x", 1, out, 100, n, 1), w.ERROR_SEM_TIMEOUT)
    worker = io.thread(serve)
    assert w.CallNamedPipe(name, b"hello", 5, out, 100, n, 5000), w.GetLastError()
    assert (n.value, bytes(out[:5])) == (5, b"HELLO")
    assert worker.join() == 0
    assert busy
    _fails(lambda: w.CallNamedPipe(io.pipe_name(), b"x", 1, out, 100, n, 1), w.ERROR_FILE_NOT_FOUND)
    # a byte-type pipe cannot be put in message read mode
    byte_name = io.pipe_name()
    io.keep(_create(byte_name, w.PIPE_ACCESS_DUPLEX, 0))
    _fails(lambda: w.CallNamedPipe(byte_name, b"x", 1, out, 100, n, 1), w.ERROR_INVALID_PARAMETER)


# --------------------------------------------------------------------------------------------
# GetNamedPipeClient/ServerProcessId


def test_named_pipe_process_ids(io) -> None:
    # [W:k32/pipe.c:test_namedpipe_process_id] (Windows' results, todo_wine ones included)
    me = os.getpid()
    client, server = _overlapped_pipe(io, w.PIPE_TYPE_BYTE)
    _fails(lambda: w.GetNamedPipeClientProcessId(server, None), w.ERROR_INSUFFICIENT_BUFFER)
    _fails(lambda: w.GetNamedPipeServerProcessId(server, None), w.ERROR_INSUFFICIENT_BUFFER)
    for handle in (server, client):
        for call in (w.GetNamedPipeClientProcessId, w.GetNamedPipeServerProcessId):
            pid = w.Ref(0)
            assert call(handle, pid) and pid.value == me
    io.close(client)  # the client id is remembered after the client closed
    for call in (w.GetNamedPipeClientProcessId, w.GetNamedPipeServerProcessId):
        pid = w.Ref(0)
        assert call(server, pid) and pid.value == me
    client, server = _overlapped_pipe(io, w.PIPE_TYPE_BYTE)
    assert w.DisconnectNamedPipe(server)
    _fails(lambda: w.GetNamedPipeClientProcessId(server, w.Ref(0)), w.ERROR_NOT_FOUND)
    pid = w.Ref(0)
    assert w.GetNamedPipeServerProcessId(server, pid) and pid.value == me
    for call in (w.GetNamedPipeClientProcessId, w.GetNamedPipeServerProcessId):
        _fails(lambda c=call: c(client, w.Ref(0)), w.ERROR_PIPE_NOT_CONNECTED)
    client, server = _overlapped_pipe(io, w.PIPE_TYPE_BYTE)
    io.close(server)  # the server closed: the client still knows both
    for call in (w.GetNamedPipeClientProcessId, w.GetNamedPipeServerProcessId):
        pid = w.Ref(0)
        assert call(client, pid) and pid.value == me


# --------------------------------------------------------------------------------------------
# bad handles for every pipe API


PIPE_CALLS: dict[str, Callable[[int], Any]] = {
    "ConnectNamedPipe": lambda h: w.ConnectNamedPipe(h, None),
    "DisconnectNamedPipe": w.DisconnectNamedPipe,
    "PeekNamedPipe": lambda h: w.PeekNamedPipe(h, None, 0, None, None, None),
    "SetNamedPipeHandleState": lambda h: w.SetNamedPipeHandleState(h, w.Ref(0), None, None),
    "GetNamedPipeHandleState": lambda h: w.GetNamedPipeHandleState(
        h, w.Ref(0), None, None, None, None, 0
    ),
    "GetNamedPipeInfo": lambda h: w.GetNamedPipeInfo(h, w.Ref(0), None, None, None),
    "TransactNamedPipe": lambda h: w.TransactNamedPipe(h, b"a", 1, bytearray(1), 1, None, None),
    "GetNamedPipeClientProcessId": lambda h: w.GetNamedPipeClientProcessId(h, w.Ref(0)),
    "GetNamedPipeServerProcessId": lambda h: w.GetNamedPipeServerProcessId(h, w.Ref(0)),
}


@pytest.mark.parametrize("api", list(PIPE_CALLS))
def test_pipe_apis_reject_bad_handles(io, api: str) -> None:
    # [MS:Handles and Objects] (ERROR_INVALID_HANDLE for NULL, closed and other object types)
    call = PIPE_CALLS[api]
    event = io.event()
    closed = io.named_pipe(io.pipe_name())
    io.close(closed)
    for handle in (0, closed, event, w.INVALID_HANDLE_VALUE):
        _fails(lambda h=handle: call(h), w.ERROR_INVALID_HANDLE)


def test_pipe_apis_reject_bad_sizes(io) -> None:
    # [MS:PeekNamedPipe] [MS:TransactNamedPipe] (a size larger than the buffer is refused with
    # ERROR_INVALID_PARAMETER; a read-only output buffer with ERROR_INVALID_USER_BUFFER)
    server, client = io.pipe(message=True)
    _fails(
        lambda: w.PeekNamedPipe(server, bytearray(2), 10, None, None, None),
        w.ERROR_INVALID_PARAMETER,
    )
    _fails(lambda: w.PeekNamedPipe(server, b"ro", 2, None, None, None), w.ERROR_INVALID_USER_BUFFER)
    _fails(
        lambda: w.TransactNamedPipe(client, b"a", 5, bytearray(1), 1, None, io.ov_event()),
        w.ERROR_INVALID_PARAMETER,
    )
    _fails(
        lambda: w.TransactNamedPipe(client, b"a", 1, bytearray(1), 9, None, io.ov_event()),
        w.ERROR_INVALID_PARAMETER,
    )
    _fails(lambda: w.WaitNamedPipe("not a pipe", 0), w.ERROR_FILE_NOT_FOUND)


def test_anonymous_pipe_info_and_peek(io) -> None:
    # [W:k32/pipe.c:test_CreatePipe] (test_pipe_info: the read end is the server end, byte
    # mode, nSize or 4096, one instance; a closed writer is detected once the data is read)
    # [MS:PeekNamedPipe] (anonymous pipes; the handle needs read access)
    for size, expect in ((0, 4096), (32768 + 24, 32768 + 24)):
        r, wr = w.Ref(0), w.Ref(0)
        assert w.CreatePipe(r, wr, None, size)
        read_end, write_end = io.keep(r.value), io.keep(wr.value)
        for h, flags in ((read_end, w.PIPE_SERVER_END), (write_end, 0)):
            fl, osz, isz, mi = w.Ref(SENTINEL), w.Ref(0), w.Ref(0), w.Ref(0)
            assert w.GetNamedPipeInfo(h, fl, osz, isz, mi)
            assert (fl.value, osz.value, isz.value, mi.value) == (flags, expect, expect, 1)
    buf = bytearray(4)
    rd, avail, left = w.Ref(SENTINEL), w.Ref(SENTINEL), w.Ref(SENTINEL)
    assert w.PeekNamedPipe(read_end, buf, 4, rd, avail, left)
    assert (rd.value, avail.value, left.value) == (0, 0, 0)
    n = w.Ref(0)
    assert w.WriteFile(write_end, b"hello world", 11, n, None) and n.value == 11
    assert w.PeekNamedPipe(read_end, buf, 4, rd, avail, left)
    assert (bytes(buf), rd.value, avail.value) == (b"hell", 4, 11)
    assert left.value == (-4) & 0xFFFFFFFF  # byte pipe: as for named byte pipes
    assert w.PeekNamedPipe(read_end, None, 0, None, avail, None) and avail.value == 11
    assert not w.PeekNamedPipe(write_end, buf, 4, rd, avail, left)
    assert w.GetLastError() == w.ERROR_ACCESS_DENIED
    io.close(write_end)
    got = bytearray(16)
    assert w.PeekNamedPipe(read_end, got, 16, rd, avail, None) and rd.value == 11  # data first
    assert w.ReadFile(read_end, got, 16, n, None) and bytes(got[: n.value]) == b"hello world"
    assert not w.PeekNamedPipe(read_end, buf, 4, rd, avail, left)
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE


def test_pipe_queries_on_other_handles(io) -> None:
    # [MS:PeekNamedPipe] [MS:GetNamedPipeInfo]: not a pipe -> ERROR_INVALID_HANDLE
    for h in (io.file(b"data"), io.event()):
        assert not w.PeekNamedPipe(h, None, 0, None, w.Ref(0), None)
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        assert not w.GetNamedPipeInfo(h, w.Ref(0), None, None, None)
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
