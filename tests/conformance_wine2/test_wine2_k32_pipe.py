"""Named and anonymous pipes, ported from Wine's ``dlls/kernel32/tests/pipe.c``: the five echo
servers of test_NamedPipe_2 (blocking, non-alertable with an APC queued, overlapped with an event,
completion port, ReadFileEx/WriteFileEx), the parts of test_CreateNamedPipe, test_CreatePipe,
test_overlapped, test_overlapped_error, test_readfileex_pending and test_namedpipe_process_id
that ``tests/conformance_wine`` does not check yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
LONG = 5000
OBUF = b"Bit Bucket\0"
OBUF2 = b"More bits\0"
LOOPS = 3  # Wine's NB_SERVER_LOOPS is 8; three connections show the same cycle


def _fails(call: Callable[[], Any], error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


def _server(name: str, open_mode: int, pipe_mode: int, instances: int = 1) -> int:
    return w.CreateNamedPipe(name, open_mode, pipe_mode, instances, 1024, 1024, 0, None)


def _open(name: str, access: int = w.GENERIC_READ | w.GENERIC_WRITE, flags: int = 0) -> int:
    return w.CreateFile(name, access, 0, None, w.OPEN_EXISTING, flags, 0)


# --------------------------------------------------------------------------------------------
# test_NamedPipe_2: five echo servers, each serving LOOPS clients in turn


def _echo_sync(name: str, ready: int, io: Any) -> None:
    # serverThreadMain1: blocking calls, DisconnectNamedPipe after each client
    hnp = _server(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_BYTE | w.PIPE_WAIT)
    assert hnp != w.INVALID_HANDLE_VALUE
    w.SetEvent(ready)
    n = w.Ref(0)
    for _ in range(LOOPS):
        assert w.ConnectNamedPipe(hnp, None) or w.GetLastError() == w.ERROR_PIPE_CONNECTED
        buf = bytearray(512)
        assert w.ReadFile(hnp, buf, 512, n, None) and n.value > 0
        got = n.value
        assert w.WriteFile(hnp, bytes(buf[:got]), got, n, None) and n.value == got
        assert w.FlushFileBuffers(hnp)
        assert w.DisconnectNamedPipe(hnp)
    assert w.CloseHandle(hnp)


def _echo_new_instance(name: str, ready: int, io: Any) -> None:
    # serverThreadMain2: a new instance per client; an APC queued before the first
    # ConnectNamedPipe must not run: named-pipe I/O is not alertable
    ran: list[int] = []
    hnp = _server(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_BYTE | w.PIPE_WAIT, 2)
    assert hnp != w.INVALID_HANDLE_VALUE
    w.SetEvent(ready)
    n = w.Ref(0)
    for i in range(LOOPS):
        if i == 0:
            assert w.QueueUserAPC(ran.append, w.GetCurrentThread(), 1)
        assert w.ConnectNamedPipe(hnp, None) or w.GetLastError() == w.ERROR_PIPE_CONNECTED
        buf = bytearray(512)
        assert w.ReadFile(hnp, buf, 512, n, None)
        got = n.value
        assert w.WriteFile(hnp, bytes(buf[:got]), got, n, None) and n.value == got
        assert w.FlushFileBuffers(hnp)
        assert w.DisconnectNamedPipe(hnp)
        assert ran == [], "the APC ran: the pipe calls waited alertably"
        if i == 0:
            assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION and ran == [1]
            ran.clear()
        nxt = _server(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_BYTE | w.PIPE_WAIT, 2)
        assert nxt != w.INVALID_HANDLE_VALUE, w.GetLastError()
        assert w.CloseHandle(hnp)
        hnp = nxt
    assert w.CloseHandle(hnp)


def _overlapped_wait(hnp: int, ov: Any, count: Any, event: int, i: int) -> bool:
    let_wfsoe_wait, let_gor_wait = bool(i & 2), bool(i & 1)
    if let_wfsoe_wait:
        r = w.WaitForSingleObjectEx(event, LONG, True)
        while r == w.WAIT_IO_COMPLETION:
            r = w.WaitForSingleObjectEx(event, LONG, True)
        assert r == w.WAIT_OBJECT_0
    ok = w.GetOverlappedResult(hnp, ov, count, let_gor_wait)
    if not let_gor_wait and not let_wfsoe_wait and not ok:
        assert w.GetLastError() == w.ERROR_IO_INCOMPLETE
        ok = w.GetOverlappedResult(hnp, ov, count, True)
    return bool(ok)


def _echo_overlapped(name: str, ready: int, io: Any) -> None:
    # serverThreadMain3: overlapped calls with an event, completed through the four
    # combinations of WaitForSingleObjectEx and GetOverlappedResult(bWait)
    hnp = _server(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, w.PIPE_TYPE_BYTE)
    assert hnp != w.INVALID_HANDLE_VALUE
    event = w.CreateEvent(None, True, False, None)
    w.SetEvent(ready)
    dummy = w.Ref(0)
    for i in range(LOOPS + 1):
        ov = w.OVERLAPPED(hEvent=event)
        if i == 0:  # a NULL OVERLAPPED on an overlapped instance: waits like a blocking call
            ok = w.ConnectNamedPipe(hnp, None)
            assert ok or w.GetLastError() == w.ERROR_PIPE_CONNECTED
        else:
            ok = w.ConnectNamedPipe(hnp, ov)
            err = w.GetLastError()
            assert not ok and err in (w.ERROR_IO_PENDING, w.ERROR_PIPE_CONNECTED)
            if err == w.ERROR_IO_PENDING:
                assert _overlapped_wait(hnp, ov, dummy, event, i)
        buf = bytearray(512)
        got = w.Ref(0)
        ok = w.ReadFile(hnp, buf, 512, got, ov)
        if not ok:
            assert w.GetLastError() == w.ERROR_IO_PENDING
            assert _overlapped_wait(hnp, ov, got, event, i)
        written = w.Ref(0)
        ok = w.WriteFile(hnp, bytes(buf[: got.value]), got.value, written, ov)
        if not ok:
            assert w.GetLastError() == w.ERROR_IO_PENDING
            assert _overlapped_wait(hnp, ov, written, event, i)
        assert written.value == got.value
        assert w.FlushFileBuffers(hnp)
        assert w.DisconnectNamedPipe(hnp)
    assert w.CloseHandle(event)
    assert w.CloseHandle(hnp)


def _echo_port(name: str, ready: int, io: Any) -> None:
    # serverThreadMain4: a completion port with key 12345; after the client left, a write
    # fails with ERROR_NO_DATA and a read with ERROR_BROKEN_PIPE, and neither queues a packet
    hnp = _server(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, w.PIPE_TYPE_BYTE)
    assert hnp != w.INVALID_HANDLE_VALUE
    port = w.CreateIoCompletionPort(hnp, 0, 12345, 1)
    assert port
    w.SetEvent(ready)
    for _ in range(LOOPS):
        o_connect, o_read, o_write = w.OVERLAPPED(), w.OVERLAPPED(), w.OVERLAPPED()
        ok = w.ConnectNamedPipe(hnp, o_connect)
        err = w.GetLastError()
        assert not ok and err in (w.ERROR_IO_PENDING, w.ERROR_PIPE_CONNECTED)
        n, key, res = w.Ref(0), w.Ref(0), w.Ref(None)
        if err == w.ERROR_IO_PENDING:
            assert w.GetQueuedCompletionStatus(port, n, key, res, LONG), w.GetLastError()
            assert key.value == 12345 and res.value is o_connect
        buf = bytearray(512)
        ok = w.ReadFile(hnp, buf, 512, None, o_read)
        assert ok or w.GetLastError() == w.ERROR_IO_PENDING
        readden = w.Ref(0)
        assert w.GetQueuedCompletionStatus(port, readden, key, res, LONG), w.GetLastError()
        assert key.value == 12345 and res.value is o_read
        ok = w.WriteFile(hnp, bytes(buf[: readden.value]), readden.value, None, o_write)
        assert ok or w.GetLastError() == w.ERROR_IO_PENDING
        written = w.Ref(0)
        assert w.GetQueuedCompletionStatus(port, written, key, res, LONG), w.GetLastError()
        assert res.value is o_write and written.value == readden.value
        # wait for the client to close its end
        avail = w.Ref(0)
        for _ in range(5000):
            if not w.PeekNamedPipe(hnp, None, 0, None, avail, None):
                break
            w.Sleep(1)
        else:
            raise AssertionError("the client never closed")
        w.SetLastError(0)
        assert not w.WriteFile(hnp, bytes(buf[:1]), 1, None, o_write)
        assert w.GetLastError() == w.ERROR_NO_DATA
        w.SetLastError(0)
        res.value = SENTINEL
        assert not w.GetQueuedCompletionStatus(port, n, key, res, 0)
        assert w.GetLastError() == w.WAIT_TIMEOUT and res.value is None
        w.SetLastError(0)
        assert not w.ReadFile(hnp, buf, 512, None, o_read)
        assert w.GetLastError() == w.ERROR_BROKEN_PIPE
        res.value = SENTINEL
        assert not w.GetQueuedCompletionStatus(port, n, key, res, 0)
        assert w.GetLastError() == w.WAIT_TIMEOUT and res.value is None
        assert w.FlushFileBuffers(hnp)
        assert w.DisconnectNamedPipe(hnp), w.GetLastError()
    assert w.CloseHandle(hnp)
    assert w.CloseHandle(port)


def _echo_ex(name: str, ready: int, io: Any) -> None:
    # serverThreadMain5: ReadFileEx/WriteFileEx; the routine never runs before the call returns
    hnp = _server(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, w.PIPE_TYPE_BYTE)
    assert hnp != w.INVALID_HANDLE_VALUE
    event = w.CreateEvent(None, True, False, None)
    w.SetEvent(ready)
    calls: list[tuple[int, int, Any]] = []

    def routine(err: int, count: int, ov: Any) -> None:
        calls.append((err, count, ov))
        w.SetEvent(ov.hEvent)

    def alertable_wait() -> None:
        r = w.WaitForSingleObjectEx(event, LONG, True)
        while r == w.WAIT_IO_COMPLETION:
            r = w.WaitForSingleObjectEx(event, LONG, True)
        assert r == w.WAIT_OBJECT_0

    for _ in range(LOOPS):
        ov = w.OVERLAPPED(hEvent=event)
        assert w.ConnectNamedPipe(hnp, None) or w.GetLastError() == w.ERROR_PIPE_CONNECTED
        buf = bytearray(512)
        calls.clear()
        w.ResetEvent(event)
        assert w.ReadFileEx(hnp, buf, 512, ov, routine), w.GetLastError()
        assert calls == []
        alertable_wait()
        assert len(calls) == 1 and calls[0][0] == 0 and calls[0][1] > 0 and calls[0][2] is ov
        got = calls[0][1]
        calls.clear()
        w.ResetEvent(event)
        assert w.WriteFileEx(hnp, bytes(buf[:got]), got, ov, routine), w.GetLastError()
        assert calls == []
        alertable_wait()
        assert calls == [(0, got, ov)]
        assert w.FlushFileBuffers(hnp)
        assert w.DisconnectNamedPipe(hnp)
    assert w.CloseHandle(event)
    assert w.CloseHandle(hnp)


SERVERS = {
    "blocking": _echo_sync,
    "new-instance-apc": _echo_new_instance,
    "overlapped-event": _echo_overlapped,
    "completion-port": _echo_port,
    "readfileex": _echo_ex,
}


@pytest.mark.parametrize("kind", list(SERVERS))
def test_named_pipe_echo_servers(io, kind: str) -> None:
    # [W:k32/pipe.c:test_NamedPipe_2] (exerciseServer against serverThreadMain1..5)
    name = io.pipe_name()
    ready = io.event()
    server = io.thread(lambda: SERVERS[kind](name, ready, io))
    io.wait_signaled(ready)
    loops = LOOPS + 1 if kind == "overlapped-event" else LOOPS
    for _ in range(loops):
        client = w.INVALID_HANDLE_VALUE
        for _attempt in range(50):
            w.SetLastError(SENTINEL)
            client = _open(name)
            if client != w.INVALID_HANDLE_VALUE:
                break
            assert w.GetLastError() == w.ERROR_PIPE_BUSY, w.GetLastError()
            assert w.WaitNamedPipe(name, LONG) or w.GetLastError() == w.ERROR_FILE_NOT_FOUND
        assert client != w.INVALID_HANDLE_VALUE
        n = w.Ref(0)
        assert w.WriteFile(client, OBUF, len(OBUF), n, None) and n.value == len(OBUF)
        ibuf = bytearray(32)
        assert w.ReadFile(client, ibuf, len(OBUF), n, None) and n.value == len(OBUF)
        assert bytes(ibuf[: len(OBUF)]) == OBUF
        assert w.CloseHandle(client)
    assert server.join() in (0, None)


# --------------------------------------------------------------------------------------------
# test_CreateNamedPipe


@pytest.mark.parametrize(
    "access", [w.PIPE_ACCESS_DUPLEX, w.PIPE_ACCESS_INBOUND, w.PIPE_ACCESS_OUTBOUND]
)
def test_new_instance_is_signaled(io, access: int) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] (test_signaled(hnp) after each CreateNamedPipe; a
    # client may open with no access at all)
    name = io.pipe_name()
    hnp = io.keep(_server(name, access, w.PIPE_TYPE_BYTE | w.PIPE_WAIT))
    assert io.is_signaled(hnp)
    client = io.keep(_open(name, 0))
    assert io.is_signaled(hnp)
    io.close(client)


def test_wait_named_pipe_times_out_when_the_instance_is_taken(io) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] (WaitNamedPipe: ERROR_FILE_NOT_FOUND before the pipe
    # exists, TRUE while the instance listens, ERROR_SEM_TIMEOUT once a client holds it)
    name = io.pipe_name()
    _fails(lambda: w.WaitNamedPipe(name, 200), w.ERROR_FILE_NOT_FOUND)
    io.keep(_server(name, w.PIPE_ACCESS_DUPLEX, w.PIPE_TYPE_BYTE | w.PIPE_WAIT))
    assert w.WaitNamedPipe(name, 200)
    io.keep(_open(name))
    _fails(lambda: w.WaitNamedPipe(name, 100), w.ERROR_SEM_TIMEOUT)


@pytest.mark.parametrize("message", [False, True], ids=["byte", "message"])
def test_read_in_three_parts(io, message: bool) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] ("read buffer small enough to read in three parts":
    # in message mode the first two reads fail with ERROR_MORE_DATA and still return 4 bytes)
    name = io.pipe_name()
    mode = (w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE) if message else w.PIPE_TYPE_BYTE
    hnp = io.keep(_server(name, w.PIPE_ACCESS_DUPLEX, mode | w.PIPE_WAIT))
    client = io.keep(_open(name))
    n = w.Ref(0)
    assert w.WriteFile(client, OBUF2, len(OBUF2), n, None) and n.value == len(OBUF2)
    ibuf = bytearray(32)
    for offset in (0, 4):
        part = bytearray(4)
        w.SetLastError(SENTINEL)
        ok = w.ReadFile(hnp, part, 4, n, None)
        if message:
            assert not ok and w.GetLastError() == w.ERROR_MORE_DATA
        else:
            assert ok
        assert n.value == 4
        ibuf[offset : offset + 4] = part
    rest = bytearray(24)
    assert w.ReadFile(hnp, rest, 24, n, None) and n.value == len(OBUF2) - 8
    ibuf[8 : 8 + n.value] = rest[: n.value]
    assert bytes(ibuf[: len(OBUF2)]) == OBUF2


def test_rest_of_a_message_is_read_by_another_thread(io) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] ("when doing a partial read of a message, the rest is
    # still in the pipe, and can be received from a second thread": RpcReadFile)
    name = io.pipe_name()
    mode = w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE | w.PIPE_WAIT
    hnp = io.keep(_server(name, w.PIPE_ACCESS_DUPLEX, mode))
    client = io.keep(_open(name))
    assert w.SetNamedPipeHandleState(client, w.Ref(w.PIPE_READMODE_MESSAGE), None, None)

    def rpc_read(handle: int, size: int) -> tuple[bool, int, int, bytes]:
        out: list[tuple[bool, int, int, bytes]] = []

        def body() -> int:
            buf = bytearray(size)
            n = w.Ref(SENTINEL)
            w.SetLastError(SENTINEL)
            ok = bool(w.ReadFile(handle, buf, size, n, None))
            out.append((ok, w.GetLastError(), int(n.value), bytes(buf[: n.value])))
            return 0

        io.thread(body).join()
        return out[0]

    for writer, reader in ((hnp, client), (client, hnp)):
        first, second = (OBUF, OBUF2) if writer == hnp else (OBUF2, OBUF)
        n = w.Ref(0)
        assert w.WriteFile(writer, first, len(first), n, None)
        assert w.WriteFile(writer, second, len(second), n, None)
        part = bytearray(4)
        _fails(lambda r=reader, p=part, c=n: w.ReadFile(r, p, 4, c, None), w.ERROR_MORE_DATA)
        assert n.value == 4
        assert rpc_read(reader, 4) == (False, w.ERROR_MORE_DATA, 4, first[4:8])
        ok, _err, count, data = rpc_read(reader, 32)
        assert ok and count == len(first) - 8 and data == first[8:]
        # the second message is whole, read in three parts across the two threads
        assert rpc_read(reader, 4)[:3] == (False, w.ERROR_MORE_DATA, 4)
        _fails(lambda r=reader, p=part, c=n: w.ReadFile(r, p, 4, c, None), w.ERROR_MORE_DATA)
        assert bytes(part) == second[4:8]
        ok, _err, count, data = rpc_read(reader, 32)
        assert ok and count == len(second) - 8 and data == second[8:]


# --------------------------------------------------------------------------------------------
# test_CreatePipe


def test_create_pipe_read_after_the_writer_closed(io) -> None:
    # [W:k32/pipe.c:test_CreatePipe] (a read succeeds with the data written before the write end
    # was closed, the next read fails; 32768 bytes in one write and one read; the pipe calls
    # never run a queued APC; CreatePipe(nSize=1) reports 1)
    ran: list[int] = []
    assert w.QueueUserAPC(ran.append, w.GetCurrentThread(), 7)
    name = b"\\\\.\\PiPe\\tests_pipe.c\0"
    r, wr = w.Ref(0), w.Ref(0)
    assert w.CreatePipe(r, wr, None, 0)
    rd, wrt = io.keep(int(r.value)), io.keep(int(wr.value))
    n = w.Ref(0)
    assert w.WriteFile(wrt, name, len(name), n, None) and n.value == len(name)
    io.close(wrt)
    buf = bytearray(32)
    assert w.ReadFile(rd, buf, 32, n, None) and n.value == len(name)
    _fails(lambda: w.ReadFile(rd, buf, 32, n, None), w.ERROR_BROKEN_PIPE)
    io.close(rd)

    size = 32768
    data = bytes(i & 0xFF for i in range(size))
    assert w.CreatePipe(r, wr, None, size + 24)
    rd, wrt = io.keep(int(r.value)), io.keep(int(wr.value))
    assert w.WriteFile(wrt, data, size, n, None) and n.value == size
    io.close(wrt)
    big = bytearray(size)
    assert w.ReadFile(rd, big, size, n, None) and n.value == size
    assert bytes(big) == data
    _fails(lambda: w.ReadFile(rd, buf, 32, n, None), w.ERROR_BROKEN_PIPE)
    io.close(rd)
    assert ran == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION and ran == [7]

    assert w.CreatePipe(r, wr, None, 1)
    rd, wrt = io.keep(int(r.value)), io.keep(int(wr.value))
    for h, flags in ((rd, w.PIPE_SERVER_END), (wrt, 0)):
        fl, osz, isz, mi = (w.Ref(SENTINEL) for _ in range(4))
        assert w.GetNamedPipeInfo(h, fl, osz, isz, mi)
        assert (fl.value, osz.value, isz.value, mi.value) == (flags, 1, 1, 1)


# --------------------------------------------------------------------------------------------
# test_overlapped, test_overlapped_error, test_readfileex_pending


def test_blocking_read_on_an_overlapped_instance(io) -> None:
    # [W:k32/pipe.c:test_overlapped] (overlapped_server: ConnectNamedPipe pending then
    # completed through an alertable wait; ReadFile with a NULL OVERLAPPED on the overlapped
    # instance blocks until the client writes; a new pending ConnectNamedPipe is cancelled by
    # CancelIo: ERROR_OPERATION_ABORTED)
    name = io.pipe_name()
    created = io.event()
    results: list[Any] = []

    def server() -> int:
        pipe = w.CreateNamedPipe(
            name,
            w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX,
            w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE,
            1,
            0,
            0,
            100000,
            None,
        )
        assert pipe != w.INVALID_HANDLE_VALUE
        ev = w.CreateEvent(None, True, False, None)
        ov = w.OVERLAPPED(hEvent=ev)
        assert not w.ConnectNamedPipe(pipe, ov) and w.GetLastError() == w.ERROR_IO_PENDING
        w.SetEvent(created)
        assert w.WaitForSingleObjectEx(ev, LONG, True) == w.WAIT_OBJECT_0
        num = w.Ref(SENTINEL)
        assert w.GetOverlappedResult(pipe, ov, num, True) and num.value == 0
        buf = bytearray(100)
        results.append(bool(w.ReadFile(pipe, buf, 100, num, None)))  # this blocks
        results.append(bytes(buf[: num.value]))
        w.DisconnectNamedPipe(pipe)
        assert not w.ConnectNamedPipe(pipe, ov) and w.GetLastError() == w.ERROR_IO_PENDING
        assert w.CancelIo(pipe)
        assert w.WaitForSingleObjectEx(ev, LONG, True) == w.WAIT_OBJECT_0
        w.SetLastError(SENTINEL)
        results.append((bool(w.GetOverlappedResult(pipe, ov, num, True)), w.GetLastError()))
        w.CloseHandle(ev)
        w.CloseHandle(pipe)
        return 1

    thread = io.thread(server)
    io.wait_signaled(created)
    client = io.keep(_open(name))
    assert thread.is_running()  # the server is blocked in ReadFile
    n = w.Ref(0)
    assert w.WriteFile(client, b"x", 1, n, None) and n.value == 1
    assert thread.join() == 1
    assert results == [True, b"x", (False, w.ERROR_OPERATION_ABORTED)]


def test_connect_named_pipe_overlapped_fields(io) -> None:
    # [W:k32/pipe.c:test_overlapped_error] (a pending connect completes with 0 bytes and
    # Internal STATUS_SUCCESS; with a client already there it fails at once with
    # ERROR_PIPE_CONNECTED and Internal left at STATUS_PENDING)
    name = io.pipe_name()
    event = io.event()
    mode = w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE | w.PIPE_WAIT
    pipe = io.keep(_server(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, mode))
    ov = w.OVERLAPPED(hEvent=event)
    assert not w.ConnectNamedPipe(pipe, ov) and w.GetLastError() == w.ERROR_IO_PENDING
    file = io.keep(_open(name, flags=w.FILE_FLAG_OVERLAPPED))
    num = w.Ref(SENTINEL)
    assert w.GetOverlappedResult(pipe, ov, num, True)
    assert num.value == 0 and ov.Internal == w.STATUS_SUCCESS
    io.close(file)
    io.close(pipe)

    pipe = io.keep(_server(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, mode))
    file = io.keep(_open(name, flags=w.FILE_FLAG_OVERLAPPED))
    ov = w.OVERLAPPED(hEvent=event)
    _fails(lambda: w.ConnectNamedPipe(pipe, ov), w.ERROR_PIPE_CONNECTED)
    assert ov.Internal == w.STATUS_PENDING


def test_zero_byte_read_pends_until_data(io) -> None:
    # [W:k32/pipe.c:test_readfileex_pending] (ReadFile of 0 bytes on an empty byte pipe:
    # ERROR_IO_PENDING, Internal STATUS_PENDING, InternalHigh untouched; a 1-byte write
    # completes it with 0 bytes and leaves the byte in the pipe; ReadFile on
    # INVALID_HANDLE_VALUE zeroes the count)
    name = io.pipe_name()
    server = io.keep(_server(name, w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX, 0))
    client = io.keep(_open(name))
    num = w.Ref(SENTINEL)
    _fails(
        lambda: w.ReadFile(w.INVALID_HANDLE_VALUE, bytearray(1), 0, num, None),
        w.ERROR_INVALID_HANDLE,
    )
    assert num.value == 0
    event = io.event()
    ov = w.OVERLAPPED(hEvent=event)
    ov.Internal = 0xFFFFFFFF
    ov.InternalHigh = 0xFFFFFFFF
    num.value = SENTINEL
    _fails(lambda: w.ReadFile(server, bytearray(1), 0, num, ov), w.ERROR_IO_PENDING)
    assert num.value == 0
    assert ov.Internal == w.STATUS_PENDING and ov.InternalHigh == 0xFFFFFFFF
    assert io.stays_nonsignaled(event)
    assert w.WriteFile(client, b"t", 1, num, None) and num.value == 1
    io.wait_signaled(event, 1000)
    assert ov.Internal == w.STATUS_SUCCESS and ov.InternalHigh == 0
    buf = bytearray(1)
    assert w.ReadFile(server, buf, 1, num, ov) and num.value == 1 and buf == b"t"


# --------------------------------------------------------------------------------------------
# test_namedpipe_process_id (the todo_wine lines are Windows' results)


def test_process_ids_after_disconnect(io) -> None:
    # [W:k32/pipe.c:test_namedpipe_process_id] (a NULL out-parameter is
    # ERROR_INSUFFICIENT_BUFFER; the ids stay readable after the peer's handle is closed; after
    # DisconnectNamedPipe the server has no client (ERROR_NOT_FOUND) and the client end answers
    # ERROR_PIPE_NOT_CONNECTED)
    pid = w.GetCurrentProcessId()
    server, client = io.pipe()
    _fails(lambda: w.GetNamedPipeClientProcessId(server, None), w.ERROR_INSUFFICIENT_BUFFER)
    _fails(lambda: w.GetNamedPipeServerProcessId(server, None), w.ERROR_INSUFFICIENT_BUFFER)
    out = w.Ref(0)
    io.close(client)
    assert w.GetNamedPipeClientProcessId(server, out) and out.value == pid
    assert w.GetNamedPipeServerProcessId(server, out) and out.value == pid
    server, client = io.pipe()
    assert w.DisconnectNamedPipe(server)
    _fails(lambda: w.GetNamedPipeClientProcessId(server, out), w.ERROR_NOT_FOUND)
    assert w.GetNamedPipeServerProcessId(server, out) and out.value == pid
    _fails(lambda: w.GetNamedPipeClientProcessId(client, out), w.ERROR_PIPE_NOT_CONNECTED)
    _fails(lambda: w.GetNamedPipeServerProcessId(client, out), w.ERROR_PIPE_NOT_CONNECTED)
    server, client = io.pipe()
    io.close(server)
    assert w.GetNamedPipeClientProcessId(client, out) and out.value == pid
    assert w.GetNamedPipeServerProcessId(client, out) and out.value == pid
