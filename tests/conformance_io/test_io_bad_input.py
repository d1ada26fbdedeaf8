"""Win32 I/O conformance: invalid arguments. Every failure returns the documented failure value,
sets the documented last-error and has no side effect on valid objects (spec §0, §4.1, §4.2
step 1, §6.1, §6.4 case 5, §7; behaviours 48, 52, 71, 80, 81, 99 from the misuse side).
"""

from __future__ import annotations

import mmap

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
BOGUS = 0xDEADBEE0
SHORT = 100
LONG = 5000


def test_io_constants(io) -> None:
    # spec: win32 §1.6 (the values the I/O tests compare against)
    assert w.FILE_FLAG_OVERLAPPED == 0x40000000
    assert w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS == 1
    assert w.FILE_SKIP_SET_EVENT_ON_HANDLE == 2
    assert (w.CREATE_NEW, w.CREATE_ALWAYS, w.OPEN_EXISTING) == (1, 2, 3)
    assert (w.OPEN_ALWAYS, w.TRUNCATE_EXISTING) == (4, 5)
    assert (w.FILE_BEGIN, w.FILE_CURRENT, w.FILE_END) == (0, 1, 2)
    assert (w.PIPE_ACCESS_INBOUND, w.PIPE_ACCESS_OUTBOUND, w.PIPE_ACCESS_DUPLEX) == (1, 2, 3)
    assert (w.PIPE_TYPE_BYTE, w.PIPE_TYPE_MESSAGE) == (0, 4)
    assert (w.PIPE_READMODE_BYTE, w.PIPE_READMODE_MESSAGE) == (0, 2)
    assert (w.PIPE_WAIT, w.PIPE_NOWAIT, w.PIPE_UNLIMITED_INSTANCES) == (0, 1, 255)
    assert (w.WSA_IO_PENDING, w.WSA_IO_INCOMPLETE, w.WSA_OPERATION_ABORTED) == (997, 996, 995)
    assert (w.INVALID_SOCKET, w.SOCKET_ERROR, w.WSA_FLAG_OVERLAPPED) == (-1, -1, 1)
    assert w.ERROR_HANDLE_EOF == 38
    assert w.ERROR_BROKEN_PIPE == 109
    assert (w.ERROR_PIPE_BUSY, w.ERROR_NO_DATA) == (231, 232)
    assert (w.ERROR_PIPE_NOT_CONNECTED, w.ERROR_MORE_DATA) == (233, 234)
    assert (w.ERROR_PIPE_CONNECTED, w.ERROR_PIPE_LISTENING) == (535, 536)
    assert w.ERROR_ABANDONED_WAIT_0 == 735
    assert (w.ERROR_OPERATION_ABORTED, w.ERROR_IO_INCOMPLETE, w.ERROR_IO_PENDING) == (
        995,
        996,
        997,
    )
    assert w.ERROR_NOT_FOUND == 1168
    assert w.STATUS_PENDING == 0x103
    assert w.STATUS_CANCELLED == 0xC0000120
    assert w.STATUS_END_OF_FILE == 0xC0000011
    assert w.STATUS_PIPE_BROKEN == 0xC000014B
    assert w.STATUS_BUFFER_OVERFLOW == 0x80000005
    assert w.STATUS_ABANDONED_WAIT_0 == 0x80
    assert w.STATUS_TIMEOUT == 0x102


# ---------------------------------------------------------------------------------------------
# ReadFile / WriteFile
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("h", [0, BOGUS, BOGUS | 3, w.INVALID_HANDLE_VALUE])
def test_read_write_bad_handle_values(io, h) -> None:
    # spec: win32 #52, §4.2 step 1 [W:k32/pipe.c:test_readfileex_pending]
    ev = io.event(manual=True, initial=True)
    for sync in (True, False):
        ov = None if sync else io.ov(hEvent=ev)
        n = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        assert w.ReadFile(h, bytearray(4), 4, n, ov) is False
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        assert n.value == 0
        n = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        assert w.WriteFile(h, b"abcd", 4, n, ov) is False
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        assert n.value == 0
    assert io.is_signaled(ev)


def test_read_write_closed_file_handle(io) -> None:
    # spec: win32 #52 (a closed handle value; the event stays signaled)
    ev = io.event(manual=True, initial=True)
    h = io.file(b"abc")
    io.close(h)
    ov = io.ov(hEvent=ev)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert io.is_signaled(ev)


def test_read_write_non_file_handle(io) -> None:
    # spec: win32 §1.7 (STATUS_OBJECT_TYPE_MISMATCH -> ERROR_INVALID_HANDLE)
    ev = io.event(manual=True, initial=True)
    port = io.port()
    for h in (ev, port):
        n = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        assert w.ReadFile(h, bytearray(4), 4, n, io.ov(hEvent=ev)) is False
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        assert n.value == 0
    assert io.is_signaled(ev)


@pytest.mark.parametrize("shape", ["bytearray", "memoryview"])
def test_read_bad_handles_without_hevent(io, shape) -> None:
    # spec: win32 #52, §1.7 - the ReadFile shape that takes the inlined cached-read path (a
    # whole writable buffer, an OVERLAPPED without hEvent) validates like every other one
    ev, port = io.event(), io.port()
    closed = io.file(b"abcd")
    io.close(closed)
    wo = io.file(b"abcd", access=w.GENERIC_WRITE)
    for h, error in [
        (ev, w.ERROR_INVALID_HANDLE),
        (port, w.ERROR_INVALID_HANDLE),
        (closed, w.ERROR_INVALID_HANDLE),
        (w.INVALID_HANDLE_VALUE, w.ERROR_INVALID_HANDLE),
        (wo, w.ERROR_ACCESS_DENIED),
    ]:
        buf = bytearray(4) if shape == "bytearray" else memoryview(bytearray(8))[4:]
        n = w.Ref(SENTINEL)
        ov = io.ov()
        w.SetLastError(SENTINEL)
        assert w.ReadFile(h, buf, 4, n, ov) is False
        assert w.GetLastError() == error
        assert n.value == 0
    ok = io.file(b"abcd")
    n = w.Ref(SENTINEL)
    ro = memoryview(b"abcd")  # read-only: never the fast path
    assert w.ReadFile(ok, ro, 4, n, io.ov()) is False
    assert w.GetLastError() == w.ERROR_INVALID_USER_BUFFER
    buf = memoryview(bytearray(8))[::2]  # not contiguous
    assert w.ReadFile(ok, buf, 4, n, io.ov()) is False
    assert w.GetLastError() == w.ERROR_INVALID_USER_BUFFER
    buf = memoryview(bytearray(8))[4:]
    assert w.ReadFile(ok, buf, 4, n, io.ov(Offset=1)) is True
    assert n.value == 3 and bytes(buf[:3]) == b"bcd"


def test_read_write_access_denied(io) -> None:
    # spec: win32 §1.7 (STATUS_ACCESS_DENIED -> ERROR_ACCESS_DENIED) [W:k32/file.c:test_file_access]
    p = io.path()
    ro = io.file(b"abcd", overlapped=False, access=w.GENERIC_READ, path=p)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.WriteFile(ro, b"xy", 2, n, None) is False
    assert w.GetLastError() == w.ERROR_ACCESS_DENIED
    assert n.value == 0
    wo = io.file(None, overlapped=False, access=w.GENERIC_WRITE, path=p)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(wo, bytearray(4), 4, n, None) is False
    assert w.GetLastError() == w.ERROR_ACCESS_DENIED
    assert n.value == 0


@pytest.mark.parametrize("kind", ["file", "socket"])
def test_null_overlapped_on_overlapped_handle(io, kind) -> None:
    # spec: win32 #48 [W:nt/file.c:test_read_write]
    h = io.file(b"abcd") if kind == "file" else io.socket_pair()[1]
    for op in ("read", "write"):
        n = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        if op == "read":
            ok = w.ReadFile(h, bytearray(4), 4, n, None)
        else:
            ok = w.WriteFile(h, b"abcd", 4, n, None)
        assert ok is False
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
        assert n.value == 0


def test_zero_length_file_io(io) -> None:
    # spec: win32 §4.4 (zero-byte reads succeed with 0 bytes even at EOF; a zero-byte write
    # changes nothing) [W:nt/file.c:test_read_write]
    h = io.file(b"abc")
    for offset in (0, 3, 100):
        ov = io.ov_event(Offset=offset)
        n = w.Ref(SENTINEL)
        ok = w.ReadFile(h, bytearray(1), 0, n, ov)
        if not ok:
            assert w.GetLastError() == w.ERROR_IO_PENDING
        assert io.result(h, ov, wait=True) == (True, 0, 0), offset
    ov = io.ov_event(Offset=1)
    ok = w.WriteFile(h, b"", 0, None, ov)
    if not ok:
        assert w.GetLastError() == w.ERROR_IO_PENDING
    assert io.result(h, ov, wait=True) == (True, 0, 0)
    size = w.Ref(SENTINEL)
    assert w.GetFileSizeEx(h, size)
    assert size.value == 3

    sync = io.file(b"abc", overlapped=False)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(sync, bytearray(1), 0, n, None) is True
    assert n.value == 0
    assert w.WriteFile(sync, b"", 0, n, None) is True
    assert n.value == 0
    assert w.SetFilePointer(sync, 0, None, w.FILE_CURRENT) == 0


def test_scatter_gather_need_overlapped_handle(io) -> None:
    # spec: win32 §4.1 [W:k32/file.c:test_WriteFileGather]
    h = io.file(b"x" * 4096, overlapped=False, extra_flags=w.FILE_FLAG_NO_BUFFERING)
    mem = mmap.mmap(-1, 4096)
    seg = memoryview(mem)
    w.SetLastError(SENTINEL)
    assert w.ReadFileScatter(h, [seg], 4096, None, io.ov()) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert w.WriteFileGather(h, [seg], 4096, None, io.ov()) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    del seg


def test_create_file_errors(io) -> None:
    # spec: win32 §1.7 / [MS:CreateFile] (missing files and pipes)
    missing = str(io.tmp_path / "does-not-exist")
    w.SetLastError(SENTINEL)
    h = w.CreateFile(missing, w.GENERIC_READ, 0, None, w.OPEN_EXISTING, 0, 0)
    assert h == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND
    w.SetLastError(SENTINEL)
    h = w.CreateFile(missing, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.TRUNCATE_EXISTING, 0, 0)
    assert h == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND
    existing = io.path()
    io.file(b"x", path=existing)
    w.SetLastError(SENTINEL)
    h = w.CreateFile(existing, w.GENERIC_READ, 0x7, None, w.CREATE_NEW, 0, 0)
    assert h == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_FILE_EXISTS
    w.SetLastError(SENTINEL)
    h = w.CreateFile(io.pipe_name(), w.GENERIC_READ, 0, None, w.OPEN_EXISTING, 0, 0)
    assert h == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND


def test_delete_file(io) -> None:
    # spec: win32 [MS:DeleteFile] (used by tests; missing file -> ERROR_FILE_NOT_FOUND)
    p = io.path()
    with open(p, "wb") as f:
        f.write(b"x")
    assert w.DeleteFile(p) is True
    w.SetLastError(SENTINEL)
    assert w.DeleteFile(p) is False
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND


# ---------------------------------------------------------------------------------------------
# APC requests
# ---------------------------------------------------------------------------------------------


def test_readfileex_on_port_associated_handle(io) -> None:
    # spec: win32 #71 (misuse side: the routine is never called, the handle is unaffected)
    h = io.file(b"abcd")
    port = io.port(h, key=1)
    calls: list = []
    w.SetLastError(SENTINEL)
    assert w.ReadFileEx(h, bytearray(4), 4, io.ov(), lambda *a: calls.append(a)) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert w.WriteFileEx(h, b"ab", 2, io.ov(), lambda *a: calls.append(a)) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert w.SleepEx(SHORT, True) == 0
    assert calls == []
    io.no_packet(port)


# ---------------------------------------------------------------------------------------------
# Completion ports
# ---------------------------------------------------------------------------------------------


def test_create_port_bad_arguments(io) -> None:
    # spec: win32 #80 #81, §6.1
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(BOGUS, 0, 0, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    port = io.port()
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, port, 0, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    f = io.file(b"x", overlapped=False)
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(f, 0, 0, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    g = io.file(b"y")
    assert w.CreateIoCompletionPort(g, port, 1, 0) == port
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(g, port, 1, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    # a port is not a file
    other = io.port()
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(other, port, 1, 0) == 0
    assert w.GetLastError() in (w.ERROR_INVALID_PARAMETER, w.ERROR_INVALID_HANDLE)


@pytest.mark.parametrize("bad", ["bogus", "closed", "event"])
def test_gqcs_on_bad_handle(io, bad) -> None:
    # spec: win32 §6.4 case 5 (invalid port: FALSE, ERROR_INVALID_HANDLE, *O NULL)
    if bad == "bogus":
        h = BOGUS
    elif bad == "closed":
        h = io.port()
        io.close(h)
    else:
        h = io.event()
    pk = io.gqcs(h, 0)
    assert (pk.ok, pk.error, pk.overlapped) == (False, w.ERROR_INVALID_HANDLE, None)
    pk = io.gqcs(h, SHORT)
    assert (pk.ok, pk.error, pk.overlapped) == (False, w.ERROR_INVALID_HANDLE, None)
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(h, entries, 1, removed, 0, False) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.PostQueuedCompletionStatus(h, 0, 0, None) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    depth = w.Ref(SENTINEL)
    assert w.NtQueryIoCompletion(h, depth) in (
        w.STATUS_INVALID_HANDLE,
        w.STATUS_OBJECT_TYPE_MISMATCH,
    )


def test_set_notification_modes_bad_handle(io) -> None:
    # spec: win32 §6.10 (invalid handle)
    w.SetLastError(SENTINEL)
    assert w.SetFileCompletionNotificationModes(BOGUS, 1) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


# ---------------------------------------------------------------------------------------------
# Cancellation
# ---------------------------------------------------------------------------------------------


def test_cancel_bad_handles(io) -> None:
    # spec: win32 #99 #104, §7 (bad handles and nothing to cancel)
    for h in (BOGUS, w.INVALID_HANDLE_VALUE):
        w.SetLastError(SENTINEL)
        assert w.CancelIo(h) is False
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        w.SetLastError(SENTINEL)
        assert w.CancelIoEx(h, None) is False
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    f = io.file(b"x")
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(f, None) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    assert w.CancelIo(f) is True


# ---------------------------------------------------------------------------------------------
# Pipes
# ---------------------------------------------------------------------------------------------


def test_message_pipe_too_small_buffer(io) -> None:
    # spec: win32 #65 (misuse side: a too-small buffer never loses the rest of the message)
    server, client = io.pipe(message=True)
    io.send_all(client, b"0123456789")
    got = b""
    for _ in range(4):
        ov = io.ov_event()
        buf = bytearray(3)
        n = w.Ref(SENTINEL)
        ok = w.ReadFile(server, buf, 3, n, ov)
        status = io.result(server, ov)
        got += bytes(buf[: status[2]])
        if ok:
            assert status == (True, 0, 1)
            break
        assert w.GetLastError() == w.ERROR_MORE_DATA
        assert n.value == 0
        assert status == (False, w.ERROR_MORE_DATA, 3)
    assert got == b"0123456789"


def test_peek_named_pipe_bad_handle(io) -> None:
    # spec: win32 §4.2 step 1 for PeekNamedPipe
    w.SetLastError(SENTINEL)
    assert w.PeekNamedPipe(BOGUS, None, 0, None, None, None) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_named_pipe_functions_on_a_file(io) -> None:
    # spec: win32 §10 (pipe-only functions on a disk file fail)
    f = io.file(b"x")
    w.SetLastError(SENTINEL)
    assert w.ConnectNamedPipe(f, io.ov_event()) is False
    assert w.GetLastError() != w.ERROR_IO_PENDING
    assert w.GetLastError() != SENTINEL
    w.SetLastError(SENTINEL)
    assert w.DisconnectNamedPipe(f) is False
    assert w.GetLastError() != SENTINEL


def test_connect_named_pipe_on_client_end(io) -> None:
    # spec: win32 §10 [MS:ConnectNamedPipe] (the client end cannot listen)
    _server, client = io.pipe()
    w.SetLastError(SENTINEL)
    assert w.ConnectNamedPipe(client, io.ov_event()) is False
    assert w.GetLastError() not in (SENTINEL, w.ERROR_IO_PENDING, w.ERROR_PIPE_CONNECTED)


def test_pipe_close_with_pending_connect(io) -> None:
    # spec: win32 §7 (closing the last handle aborts a pending ConnectNamedPipe; its event is
    # signaled) [W:k32/pipe.c:test_wait_pipe]
    server = io.named_pipe(io.pipe_name())
    ov = io.ov_event()
    assert w.ConnectNamedPipe(server, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.close(server)
    io.wait_signaled(ov.hEvent)
    assert ov.Internal != w.STATUS_PENDING
    assert io.result(0, ov)[0] is False
