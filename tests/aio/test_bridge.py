"""The asyncio bridge (``winaio.aio``): overlapped I/O, waitable objects, thread-pool work,
completion ports, batching of hand-overs, cancellation (including the race with a completing
request), closing, and bad input.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import winaio
import winaio.aio as aio
from winaio.codes import WinError
from winaio.errors import IoError, Win32Error

LONG = 5.0


# ------------------------------------------------------------------------------- file I/O


def test_read_and_write_a_file(run: Any, data_file: winaio.DiskFile) -> None:
    async def main() -> None:
        async with aio.Bridge() as bridge:
            buf = bytearray(4096)
            assert await bridge.read(data_file, buf, 4096) == 4096
            assert bytes(buf[:4]) == bytes(range(4))
            assert await bridge.write(data_file, b"hello", 100) == 5
            small = bytearray(5)
            assert await bridge.read(data_file, small, 100) == 5 and bytes(small) == b"hello"
            assert data_file.port is bridge._port and data_file.skip_port_on_success
            with pytest.raises(IoError) as info:
                await bridge.read(data_file, bytearray(10), 1 << 30)  # past the end
            assert info.value.winerror == WinError.ERROR_HANDLE_EOF
            # Many concurrent reads.
            bufs = [bytearray(512) for _ in range(32)]
            counts = await asyncio.gather(
                *(bridge.read(data_file, b, 512 * i) for i, b in enumerate(bufs))
            )
            assert counts == [512] * 32
            assert bytes(bufs[2][:2]) == bytes([0, 1])

    run(main())


def test_pending_pipe_read_completes_through_the_port(run: Any, pipe: Any) -> None:
    reader, writer = pipe

    async def main() -> None:
        async with aio.Bridge() as bridge:
            buf = bytearray(5)
            task = asyncio.create_task(bridge.read(reader, buf))
            await asyncio.sleep(0.01)
            assert not task.done()  # pending: no data yet
            threading.Timer(0.01, writer.write, (b"world",)).start()
            assert await asyncio.wait_for(task, LONG) == 5
            assert bytes(buf) == b"world"
            assert await bridge.write(writer, b"ab") == 2
            two = bytearray(2)
            assert await bridge.read(reader, two) == 2 and bytes(two) == b"ab"

    run(main())


def test_result_of_a_request_started_with_the_core_api(run: Any, pipe: Any) -> None:
    reader, writer = pipe

    async def main() -> None:
        async with aio.Bridge() as bridge:
            # Bound to the bridge's port: the packet tells.
            await bridge.write(writer, b"")
            assert reader.port is None
            reader.associate(bridge._port, bridge)
            ov = winaio.Overlapped()
            buf = bytearray(3)
            assert not reader.start_read(buf, ov)
            writer.write(b"xyz")
            assert await bridge.result(reader, ov) == 3 and bytes(buf) == b"xyz"
            # With an event: the event tells.
            ov2 = winaio.Overlapped(event=winaio.Event(manual_reset=True))
            assert not reader.start_read(buf, ov2)
            threading.Timer(0.01, writer.write, (b"123",)).start()
            assert await bridge.result(reader, ov2) == 3 and bytes(buf) == b"123"
            # Already finished: at once.
            assert await bridge.result(reader, ov2) == 3

    run(main())


def test_file_bound_to_another_port_uses_an_event(run: Any, pipe: Any) -> None:
    reader, writer = pipe
    other = winaio.CompletionPort()
    reader.associate(other, "k")

    async def main() -> None:
        async with aio.Bridge() as bridge:
            buf = bytearray(4)
            task = asyncio.create_task(bridge.read(reader, buf))
            await asyncio.sleep(0.01)
            writer.write(b"data")
            assert await asyncio.wait_for(task, LONG) == 4
            assert other.queued == 0  # hEvent|1: no packet on the other port

    run(main())
    other.close()


def test_cancelling_a_read_cancels_the_io_and_waits_for_it(run: Any, pipe: Any) -> None:
    reader, writer = pipe

    async def main() -> None:
        async with aio.Bridge() as bridge:
            buf = bytearray(4)
            task = asyncio.create_task(bridge.read(reader, buf))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert reader.pending_requests == 0  # over before the task ended
            writer.write(b"late")
            assert await bridge.read(reader, buf) == 4 and bytes(buf) == b"late"

    run(main())


def test_task_cancelled_while_its_io_is_completing(run: Any, pipe: Any) -> None:
    # The race of issue 10: the request completes (data arrives) as the task is cancelled. The
    # outcome is either the data or a cancellation, and in both cases the request is over
    # when the task ends.
    reader, writer = pipe

    async def main() -> None:
        async with aio.Bridge() as bridge:
            for i in range(1, 51):
                buf = bytearray(1)  # 0: never written below
                task = asyncio.create_task(bridge.read(reader, buf))
                await asyncio.sleep(0)
                writer.write(bytes([i]))
                task.cancel()
                try:
                    assert await task == 1 and buf[0] == i
                except asyncio.CancelledError:
                    pass
                assert reader.pending_requests == 0
                # Drain whatever byte the cancelled read did not take.
                rest = bytearray(1)
                if buf[0] != i:
                    assert await bridge.read(reader, rest) == 1 and rest[0] == i

    run(main())


# ------------------------------------------------------------------------------- waits


def test_waits_on_kernel_objects(run: Any) -> None:
    async def main() -> None:
        async with aio.Bridge() as bridge:
            event = winaio.Event()
            threading.Timer(0.01, event.set).start()
            assert (await bridge.wait(event, LONG)).signaled
            assert not event.is_set()  # auto-reset: consumed by the loop thread
            assert (await bridge.wait(event, 0.01)).timed_out
            assert (await bridge.wait(event, 0)).timed_out
            sem = winaio.Semaphore(1, 5)
            assert (await bridge.wait(sem)).signaled and sem.count == 0
            mutex = winaio.Mutex()
            assert (await bridge.wait(mutex)).signaled
            assert mutex.owner_thread_id == threading.get_native_id()  # the loop thread
            mutex.release()
            timer = winaio.WaitableTimer(manual_reset=True)
            timer.set(0.01)
            assert (await bridge.wait(timer, LONG)).signaled
            gate = winaio.Event(manual_reset=True)
            thread = winaio.start_thread(lambda: winaio.wait(gate, LONG) and None)
            threading.Timer(0.01, gate.set).start()
            assert (await bridge.wait(thread, LONG)).signaled
            call = winaio.default_pool().call(lambda: 7)
            assert (await bridge.wait(call, LONG)).signaled and call.result() == 7

    run(main())


def test_abandoned_mutex_reports_abandoned(run: Any) -> None:
    mutex = winaio.Mutex()
    held = winaio.Event(manual_reset=True)
    release = winaio.Event(manual_reset=True)

    def owner() -> None:
        winaio.wait(mutex)
        held.set()
        winaio.wait(release, LONG)  # then exits owning it: abandoned

    async def main() -> None:
        async with aio.Bridge() as bridge:
            winaio.start_thread(owner)
            assert (await bridge.wait(held, LONG)).signaled
            waiting = asyncio.create_task(bridge.wait(mutex, LONG))
            await asyncio.sleep(0.01)
            release.set()
            result = await waiting
            assert result.abandoned
            mutex.release()

    run(main())


def test_cancelled_wait_gives_a_consumed_signal_back(run: Any) -> None:
    async def main() -> None:
        async with aio.Bridge() as bridge:
            sem = winaio.Semaphore(0, 5)
            task = asyncio.create_task(bridge.wait(sem))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert sem.waiter_count == 0  # unregistered
            # Satisfied, then cancelled before the loop learned of it: the count comes back.
            task = asyncio.create_task(bridge.wait(sem))
            await asyncio.sleep(0.01)
            sem.release()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                assert sem.count == 1
            else:
                assert sem.count == 0

    run(main())


def test_many_concurrent_waits_need_no_thread_each(run: Any) -> None:
    async def main() -> None:
        before = threading.active_count()
        async with aio.Bridge() as bridge:
            events = [winaio.Event(manual_reset=True) for _ in range(200)]
            tasks = [asyncio.create_task(bridge.wait(e, LONG)) for e in events]
            await asyncio.sleep(0.01)
            assert threading.active_count() <= before + 1  # the pump only
            for e in events:
                e.set()
            results = await asyncio.gather(*tasks)
            assert all(r.signaled for r in results)

    run(main())


# ------------------------------------------------------------------------------- pool work


def test_run_thread_pool_work(run: Any) -> None:
    async def main() -> None:
        async with aio.Bridge() as bridge:
            name = await bridge.run(lambda: threading.current_thread().name)
            assert name.startswith("winaio-worker-")
            assert await bridge.run(pow, 2, 10) == 1024
            with pytest.raises(ZeroDivisionError):
                await bridge.run(lambda: 1 / 0)
            with winaio.ThreadPool(max_threads=1) as pool:
                gate = winaio.Event(manual_reset=True)
                blocker = asyncio.create_task(bridge.run(winaio.wait, gate, LONG, pool=pool))
                ran: list[int] = []
                queued = asyncio.create_task(bridge.run(ran.append, 1, pool=pool))
                await asyncio.sleep(0.01)
                queued.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await queued
                gate.set()
                assert (await blocker).signaled
                assert ran == []  # cancelled before it started

    run(main())


def test_a_burst_of_completions_costs_one_wakeup(run: Any) -> None:
    async def main() -> None:
        async with aio.Bridge() as bridge:
            start = bridge.wakeups
            tasks = [asyncio.create_task(bridge.run(int, i)) for i in range(100)]
            await asyncio.sleep(0)  # let every task submit its call
            # Block the loop while the workers finish all 100 calls.
            deadline = time.monotonic() + LONG
            while len(bridge._inbox) < 100 and time.monotonic() < deadline:
                time.sleep(0.001)
            assert await asyncio.gather(*tasks) == list(range(100))
            assert bridge.wakeups - start == 1

    run(main())


# ------------------------------------------------------------------------------- ports


def test_async_iteration_of_a_completion_port(run: Any) -> None:
    port = winaio.CompletionPort()

    async def main() -> list[Any]:
        got = []
        for i in range(3):
            port.post(i, "k", None)
        threading.Timer(0.02, lambda: [port.post(i, "late") for i in range(3, 5)]).start()
        async for packet in port:
            got.append((packet.bytes_transferred, packet.key))
            if len(got) == 5:
                threading.Timer(0.01, port.close).start()
        return got

    assert run(main()) == [(0, "k"), (1, "k"), (2, "k"), (3, "late"), (4, "late")]


def test_port_iteration_is_fed_by_another_bridge(run: Any) -> None:
    async def main() -> None:
        async with aio.Bridge() as bridge:
            port = winaio.CompletionPort()
            port.post(1)
            seen = [p.bytes_transferred async for p in _take(bridge.packets(port), 1)]
            assert seen == [1]
            port.close()
            assert [p async for p in bridge.packets(port)] == []

    run(main())


async def _take(it: Any, n: int) -> Any:
    async for item in it:
        yield item
        n -= 1
        if n == 0:
            return


# ------------------------------------------------------------------------------- lifecycle


def test_implicit_bridge_and_module_functions(run: Any, data_file: winaio.DiskFile) -> None:
    async def main() -> None:
        buf = bytearray(16)
        assert await aio.read(data_file, buf, 0) == 16
        assert await aio.write(data_file, b"x", 0) == 1
        assert (await aio.wait(winaio.Event(initial_state=True))).signaled
        assert await aio.run(sum, [1, 2]) == 3
        bridge = aio.get_bridge()
        assert bridge is aio.get_bridge()
        bridge.close()  # closing joins its pump; a new one is made on demand
        assert aio.get_bridge() is not bridge

    run(main())


def test_closing_aborts_pending_requests(run: Any, pipe: Any) -> None:
    reader, _ = pipe

    async def main() -> None:
        bridge = aio.Bridge()
        task = asyncio.create_task(bridge.read(reader, bytearray(1)))
        waiting = asyncio.create_task(bridge.wait(winaio.Event()))
        await asyncio.sleep(0.01)
        bridge.close()
        bridge.close()  # idempotent
        for t in (task, waiting):
            with pytest.raises(Win32Error) as info:
                await t
            assert info.value.winerror == WinError.ERROR_OPERATION_ABORTED
        assert reader.pending_requests == 0
        with pytest.raises(Win32Error) as info:
            await bridge.read(reader, bytearray(1))
        assert info.value.winerror == WinError.ERROR_INVALID_HANDLE

    run(main())


def test_bad_input(run: Any) -> None:
    async def main() -> None:
        async with aio.Bridge() as bridge:
            for call in (
                lambda: bridge.wait(42),  # type: ignore[arg-type]
                lambda: bridge.read("file", bytearray(1)),
                lambda: bridge.packets(object()).__anext__(),  # type: ignore[arg-type]
            ):
                with pytest.raises(Win32Error) as info:
                    await call()
                assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
            with pytest.raises(Win32Error) as info:
                await bridge.wait(winaio.Event(), -1)
            assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
            with pytest.raises(Win32Error) as info:
                await bridge.result(winaio.CompletionPort(), object())  # type: ignore[arg-type]
            assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER

    run(main())


def test_port_iteration_needs_the_bridge_module() -> None:
    # The hook is installed by importing winaio.aio (done above); a port is async-iterable.
    assert hasattr(winaio.CompletionPort(), "__aiter__")


def test_socket_read_and_write(run: Any, backend: str) -> None:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    client = winaio.create_socket()
    raw = client.sock
    assert raw is not None
    raw.setblocking(True)
    raw.connect(listener.getsockname())
    raw.setblocking(False)
    server, _ = listener.accept()

    async def main() -> None:
        async with aio.Bridge() as bridge:
            buf = bytearray(5)
            task = asyncio.create_task(bridge.read(client, buf))
            await asyncio.sleep(0.01)
            assert not task.done()
            server.sendall(b"hello")
            assert await asyncio.wait_for(task, LONG) == 5 and bytes(buf) == b"hello"
            assert await bridge.write(client, b"back") == 4
            assert server.recv(4) == b"back"
            server.close()
            assert await bridge.read(client, buf) == 0  # graceful close: 0 bytes, no error

    try:
        run(main())
    finally:
        client.close()
        listener.close()


def test_pump_sees_a_stop_followed_by_a_late_packet(run: Any) -> None:
    # A completion or signal racing with close() can be posted after the pump's stop packet
    # and land in the same batch: the pump must still stop (close() waits for it). Forced by
    # holding the hand-over lock, so the pump cannot dequeue between the posts.
    async def main() -> None:
        bridge = aio.Bridge()
        with bridge._inbox_lock:
            bridge._port.post(0, "first")
            bridge._port.post(0, aio._STOP)  # type: ignore[attr-defined]
            bridge._port.post(0, "late")
        try:
            assert winaio.wait(bridge._pump, LONG).signaled, "the pump missed its stop"
        finally:
            bridge.close()

    run(main())
