"""Thread-pool I/O through ``winaio.win32``: acceptance behaviours 112-116 (win32-async-spec §11),
after Wine's test_kernel32_tp_io / test_tp_io and kernel32 test_iocp_callback, on both I/O
backends; plus the thread-binding rule for pool I/O (§8) and bad input.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

import winaio
import winaio.win32 as w
from winaio.errors import Win32Error

LONG_MS = 5000


@dataclass
class IoCtx:
    count: int = 0
    ovl: Any = None
    ret: int = -1
    length: int = -1
    io: Any = None
    threads: list[str] = field(default_factory=list)
    done: winaio.Semaphore = field(default_factory=lambda: winaio.Semaphore(0, 100))


def io_cb(instance: Any, ctx: IoCtx, ovl: Any, ret: int, length: int, io: Any) -> None:
    ctx.count += 1
    ctx.ovl, ctx.ret, ctx.length, ctx.io = ovl, ret, length, io
    ctx.threads.append(threading.current_thread().name)
    ctx.done.release()


@pytest.fixture
def tp(make_pool) -> Any:
    pool = w.CreateThreadpool(None)
    assert pool is not None
    yield pool
    w.CloseThreadpool(pool)
    make_pool.pools.append(pool)  # teardown checks its threads are gone


def env_of(pool: Any) -> w.TP_CALLBACK_ENVIRON:
    env = w.TP_CALLBACK_ENVIRON()
    w.SetThreadpoolCallbackPool(env, pool)
    return env


def test_112_pending_read_gets_exactly_one_callback(tp: Any, pipe_pair: tuple[int, int]) -> None:
    # spec: win32 #112
    server, client = pipe_pair
    ctx = IoCtx()
    io = w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp))
    assert io is not None
    w.WaitForThreadpoolIoCallbacks(io, False)  # nothing started: returns at once
    w.StartThreadpoolIo(io)
    waiter = threading.Thread(target=w.WaitForThreadpoolIoCallbacks, args=(io, False))
    waiter.start()
    waiter.join(0.1)
    assert waiter.is_alive()  # blocks while the start is outstanding
    ov = w.OVERLAPPED(hEvent=w.CreateEvent(None, True, False, None))
    buf = bytearray(1)
    assert not w.ReadFile(server, buf, 1, None, ov)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    written = w.Ref(0)
    assert w.WriteFile(client, b"x", 1, written, None) and written.value == 1
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert (ctx.count, ctx.ovl, ctx.ret, ctx.length, ctx.io) == (1, ov, 0, 1, io)
    assert ctx.threads[0].startswith("winaio-worker-")
    waiter.join(5)
    assert not waiter.is_alive()
    # Two starts, two pending reads, two writes -> two callbacks.
    ctx.count = 0
    w.StartThreadpoolIo(io)
    w.StartThreadpoolIo(io)
    ov2 = w.OVERLAPPED()
    assert not w.ReadFile(server, buf, 1, None, ov) and w.GetLastError() == w.ERROR_IO_PENDING
    assert not w.ReadFile(server, bytearray(1), 1, None, ov2)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.WriteFile(client, b"a", 1, written, None)
    assert w.WriteFile(client, b"b", 1, written, None)
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert ctx.count == 2 and ctx.ret == 0 and ctx.length == 1
    w.CloseThreadpoolIo(io)
    w.CloseHandle(ov.hEvent)


def test_113_wait_with_cancel_forgets_a_start_without_io(
    tp: Any, pipe_pair: tuple[int, int]
) -> None:
    # spec: win32 #113
    server, client = pipe_pair
    ctx = IoCtx()
    io = w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp))
    w.StartThreadpoolIo(io)
    w.WaitForThreadpoolIoCallbacks(io, True)  # returns although no I/O was issued
    assert ctx.count == 0
    # A later start + immediately successful read still gets its callback.
    w.StartThreadpoolIo(io)
    assert w.WriteFile(client, b"z", 1, w.Ref(0), None)
    ov = w.OVERLAPPED()
    ok = w.ReadFile(server, bytearray(1), 1, None, ov)
    assert ok or w.GetLastError() == w.ERROR_IO_PENDING
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert (ctx.count, ctx.ovl, ctx.ret, ctx.length) == (1, ov, 0, 1)
    w.CloseThreadpoolIo(io)


def test_114_immediate_failure_needs_cancel_immediate_success_calls_back(
    tp: Any, pipe_pair: tuple[int, int]
) -> None:
    # spec: win32 #114
    server, client = pipe_pair
    ctx = IoCtx()
    io = w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp))
    w.StartThreadpoolIo(io)
    assert not w.ReadFile(server, None, 1, None, w.OVERLAPPED())  # bad buffer: fails at once
    assert w.GetLastError() in (w.ERROR_NOACCESS, w.ERROR_INVALID_USER_BUFFER)
    w.CancelThreadpoolIo(io)
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert ctx.count == 0
    # Immediate success without FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: the callback still runs.
    assert w.WriteFile(client, b"q", 1, w.Ref(0), None)
    w.StartThreadpoolIo(io)
    ov = w.OVERLAPPED()
    assert w.ReadFile(server, bytearray(1), 1, None, ov)  # the byte is there: TRUE
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert (ctx.count, ctx.ovl, ctx.ret, ctx.length) == (1, ov, 0, 1)
    # With the skip flag an immediate success posts nothing: the caller cancels the start.
    assert w.SetFileCompletionNotificationModes(server, w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)
    assert w.WriteFile(client, b"r", 1, w.Ref(0), None)
    w.StartThreadpoolIo(io)
    assert w.ReadFile(server, bytearray(1), 1, None, w.OVERLAPPED())
    w.CancelThreadpoolIo(io)
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert ctx.count == 1
    w.CloseThreadpoolIo(io)


def test_115_cancelled_read_calls_back_with_operation_aborted(
    tp: Any, pipe_pair: tuple[int, int]
) -> None:
    # spec: win32 #115
    server, _ = pipe_pair
    ctx = IoCtx()
    io = w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp))
    w.StartThreadpoolIo(io)
    ov = w.OVERLAPPED()
    assert not w.ReadFile(server, bytearray(1), 1, None, ov)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.CancelIo(server)
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert (ctx.count, ctx.ovl, ctx.ret, ctx.length, ctx.io) == (
        1, ov, w.ERROR_OPERATION_ABORTED, 0, io,
    )  # fmt: skip
    w.CloseThreadpoolIo(io)


def test_cancelled_start_drops_the_completion(tp: Any, pipe_pair: tuple[int, int]) -> None:
    # [W:nt/threadpool.c:test_tp_io]: Start + Cancel, then a read that completes: no callback.
    server, client = pipe_pair
    ctx = IoCtx()
    io = w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp))
    w.StartThreadpoolIo(io)
    w.CancelThreadpoolIo(io)
    ov = w.OVERLAPPED(hEvent=w.CreateEvent(None, True, False, None))
    assert not w.ReadFile(server, bytearray(1), 1, None, ov)
    assert w.WriteFile(client, b"x", 1, w.Ref(0), None)
    assert w.WaitForSingleObject(ov.hEvent, LONG_MS) == w.WAIT_OBJECT_0
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert not winaio.wait(ctx.done, 0.1).signaled
    assert ctx.count == 0
    w.CloseThreadpoolIo(io)
    w.CloseHandle(ov.hEvent)


def test_pool_io_outlives_the_issuing_thread(tp: Any, pipe_pair: tuple[int, int]) -> None:
    # §8 + issue 10: a request issued on a port-bound handle by a thread that then exits still
    # completes, and its callback runs on a pool worker.
    server, client = pipe_pair
    ctx = IoCtx()
    io = w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp))
    ov = w.OVERLAPPED()  # no event: survives its thread (§8)
    buf = bytearray(3)

    def issue(_: Any) -> int:
        w.StartThreadpoolIo(io)
        assert not w.ReadFile(server, buf, 3, None, ov)
        return w.GetLastError()

    thread = w.CreateThread(None, 0, issue, None, 0, w.Ref(0))
    assert w.WaitForSingleObject(thread, LONG_MS) == w.WAIT_OBJECT_0
    code = w.Ref(0)
    assert w.GetExitCodeThread(thread, code) and code.value == w.ERROR_IO_PENDING
    w.CloseHandle(thread)
    assert w.WriteFile(client, b"abc", 3, w.Ref(0), None)
    w.WaitForThreadpoolIoCallbacks(io, False)
    assert (ctx.count, ctx.ret, ctx.length, bytes(buf)) == (1, 0, 3, b"abc")
    w.CloseThreadpoolIo(io)


def test_io_bad_input(tp: Any, pipe_pair: tuple[int, int], tmp_path: Any) -> None:
    server, client = pipe_pair
    assert w.CreateThreadpoolIo(0, io_cb, None, None) is None
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.CreateThreadpoolIo(client, io_cb, None, env_of(tp)) is None  # synchronous handle
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    ctx = IoCtx()
    io = w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp))
    assert w.CreateThreadpoolIo(server, io_cb, ctx, env_of(tp)) is None  # already bound
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error) as info:
        w.CancelThreadpoolIo(io)  # no start to cancel
    assert info.value.winerror == w.ERROR_INVALID_PARAMETER
    for call in (w.StartThreadpoolIo, w.CloseThreadpoolIo):
        with pytest.raises(Win32Error) as info:
            call(None)
        assert info.value.winerror == w.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error) as info:
        w.StartThreadpoolIo(w.CreateThreadpoolCleanupGroup())  # wrong object type
    assert info.value.winerror == w.ERROR_INVALID_HANDLE
    w.CloseThreadpoolIo(io)
    for call in (w.StartThreadpoolIo, w.CloseThreadpoolIo):
        with pytest.raises(Win32Error) as info:
            call(io)  # closed
        assert info.value.winerror == w.ERROR_INVALID_HANDLE


def test_116_bind_io_completion_callback(backend: str, tmp_path: Any) -> None:
    # spec: win32 #116 [W:k32/sync.c:test_iocp_callback]
    calls: list[tuple[int, int, Any, str]] = []
    done = winaio.Event()

    def callback(error: int, count: int, ovl: Any) -> None:
        calls.append((error, count, ovl, threading.current_thread().name))
        done.set()

    path = str(tmp_path / "iocp.bin")
    sync = w.CreateFile(path, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.CREATE_ALWAYS, 0, 0)
    assert not w.BindIoCompletionCallback(sync, callback, 0)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.CloseHandle(sync)
    h = w.CreateFile(
        path, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.CREATE_ALWAYS, w.FILE_FLAG_OVERLAPPED, 0
    )
    assert not w.BindIoCompletionCallback(h, None, 0)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert w.BindIoCompletionCallback(h, callback, 0)
    assert not w.BindIoCompletionCallback(h, callback, 0)  # rebinding
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    ov = w.OVERLAPPED()
    ok = w.WriteFile(h, b"hello", 5, None, ov)
    assert ok or w.GetLastError() == w.ERROR_IO_PENDING
    assert winaio.wait(done, 5).signaled
    assert calls[0][:3] == (0, 5, ov) and calls[0][3].startswith("winaio-worker-")
    assert w.CloseHandle(h)
    assert not w.BindIoCompletionCallback(0, callback, 0)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER  # Vista+ (XP: ERROR_INVALID_HANDLE)
    assert not w.BindIoCompletionCallback(0x7FFFFFF0, callback, 0)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
