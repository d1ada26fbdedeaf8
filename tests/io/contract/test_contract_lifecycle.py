"""Backend contract: no thread binding, close draining, statistics, completion channels.

What each test checks, on every backend:
- invariant 3: a port-bound request (no event, no APC) survives the exit of the thread that
  issued it - pipe and TCP reads, and an O_DIRECT write - and completes normally afterwards;
  a request with an event is cancelled at its thread's exit (spec §8, done above the backend
  through ``cancel``);
- invariant 4: ``close()`` completes every pending request exactly once with STATUS_CANCELLED
  (queued heads and tails, writes, AcceptEx), leaves nothing in flight and no thread, is
  idempotent, and ``submit`` afterwards raises (the fixture then checks for fd leaks);
- invariant 5: a completion routine is queued as an APC to the issuing thread and runs only in
  its alertable wait, never on a backend thread;
- ``statistics()``: the name, and submitted/completed/cancelled/in_flight after known work;
  every backend thread is named ``winaio-*``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from winaio._io._ops import FileReadOp, FileWriteOp
from winaio._io._overlapped import Overlapped
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._threads import start_thread
from winaio._kernel._wait import sleep, wait_for_one
from winaio.codes import NtStatus, WaitCode

SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
BLOCK = 4096
LONG = 5.0


def _in_thread(fn: Any) -> Any:
    """Run ``fn()`` on a kernel thread (CreateThread) and wait until it has exited - with its
    Win32 exit effects applied. Returns what ``fn`` returned."""
    out: list[Any] = []
    thread = start_thread(lambda: out.append(fn()))
    assert wait_for_one(thread, LONG, False) == WAIT_OBJECT_0
    thread.python_thread.join(LONG)
    return out[0]


@pytest.mark.parametrize("kind", ["pipe", "tcp"])
def test_port_bound_read_survives_the_exit_of_its_thread(io: Any, kind: str) -> None:
    reader, writer = io.pipe() if kind == "pipe" else io.tcp_pair()
    port = io.port([reader], key="survivor")
    req = _in_thread(lambda: io.read(reader, 8, event=False))
    assert req.pending
    assert not req.is_done()  # the issuing thread is gone; the request is still pending
    io.write(writer, b"later").wait()
    (packet,) = io.packets(port, 1)
    assert (packet.key, packet.overlapped, packet.status) == ("survivor", req.ov, SUCCESS)
    assert packet.bytes_transferred == 5
    assert req.buffer[:5] == b"later"
    assert req.op.calls == 1


def test_port_bound_file_write_survives_the_exit_of_its_thread(io: Any) -> None:
    f = io.file(direct=True)
    port = io.port([f])
    memory = io.aligned(16 * BLOCK)
    memory[:] = b"w" * len(memory)

    def issue_all() -> list[Any]:
        view = memoryview(memory)
        return [
            io.issue(
                FileWriteOp,
                f,
                [view[i * BLOCK : (i + 1) * BLOCK]],
                i * BLOCK,
                offset=i * BLOCK,
                event=False,
            )
            for i in range(16)
        ]

    reqs = _in_thread(issue_all)
    packets = io.packets(port, 16)
    assert all((p.status, p.bytes_transferred) == (SUCCESS, BLOCK) for p in packets)
    assert all(r.op.calls == 1 for r in reqs)
    del reqs
    io.close_when_released(memory)


def test_request_with_an_event_is_cancelled_when_its_thread_exits(io: Any) -> None:
    reader, writer = io.pipe()
    io.port([reader])
    req = _in_thread(lambda: io.read(reader, 8))  # has an event: does not survive (§8)
    assert req.wait() == (CANCELLED, 0)
    assert req.op.calls == 1
    io.write(writer, b"x").wait()


def test_close_cancels_and_drains_every_pending_request(io: Any) -> None:
    reader, _ = io.pipe()
    a, _ = io.socketpair()
    _, full = io.pipe()
    listener = io.listener()
    reqs = [io.read(reader, 4), io.read(reader, 4), io.read(reader, 4), io.read(a, 4)]
    io.fill(full)
    reqs.append(io.write(full, b"pending write"))
    io.fill(a)  # a read and a write pending on one socket
    reqs.append(io.write(a, b"pending send"))
    reqs.append(io.accept(listener)[0])
    assert all(r.pending for r in reqs)
    assert [(r.op, r.ov) for r in reqs if r.is_done()] == []
    assert io.backend.statistics().in_flight == len(reqs)

    io.backend.close()
    for r in reqs:
        assert r.is_done(), f"{r.op!r} still pending after close()"
        assert (r.ov.status, r.ov.information) == (CANCELLED, 0)
        assert r.op.calls == 1
        assert r.op.alive_at_complete is True
    stats = io.backend.statistics()
    assert stats.in_flight == 0
    assert stats.completed == stats.submitted == len(reqs)
    assert stats.cancelled == len(reqs)
    assert io.new_threads() == []  # the backend's threads are gone
    io.backend.close()  # idempotent

    late = FileReadOp(io.file(b"x"), Overlapped(), [memoryview(bytearray(1))], 0)
    with pytest.raises(RuntimeError):
        io.backend.submit(late)
    assert not late.done


def test_completion_routine_runs_as_an_apc_of_the_issuing_thread(io: Any) -> None:
    reader, writer = io.pipe()
    calls: list[tuple[int, int, Any, str]] = []

    def routine(error: int, n: int, ov: Any) -> None:
        calls.append((error, n, ov, threading.current_thread().name))

    buf = io.Buf(8)
    req = io.issue(StreamReadOp, reader, [memoryview(buf)], event=False, routine=routine)
    assert req.pending
    io.write(writer, b"apc").wait()
    io.wait_until(req.is_done, "the read completes")
    assert calls == []  # queued to this thread, not run by the backend
    assert sleep(LONG, True) == WAIT_IO_COMPLETION
    assert calls == [(0, 3, req.ov, threading.current_thread().name)]
    assert buf[:3] == b"apc"


def test_statistics(io: Any) -> None:
    stats = io.backend.statistics()
    assert stats.name == io.name
    assert (stats.submitted, stats.completed, stats.cancelled, stats.in_flight) == (0, 0, 0, 0)
    assert stats.threads >= 1
    assert stats.detail

    f = io.file()
    for i in range(3):
        assert io.write(f, b"abc", i * 3).wait() == (SUCCESS, 3)
    reader, _ = io.pipe()
    cancelled = io.read(reader, 1)
    cancelled.cancel()
    assert cancelled.wait() == (CANCELLED, 0)
    pending = io.read(reader, 1)
    assert pending.pending
    stats = io.backend.statistics()
    assert (stats.submitted, stats.completed, stats.cancelled, stats.in_flight) == (5, 4, 1, 1)


def test_backend_threads_are_named(io: Any) -> None:
    # R5 of the design: every thread the library starts is called winaio-<role>-<n>.
    mine = io.new_threads()
    assert len(mine) == io.backend.statistics().threads >= 1
    assert [t.name for t in mine if not t.name.startswith("winaio-")] == []
    assert all(t.daemon for t in mine)


def test_requests_on_a_closed_file_complete_before_its_descriptor_closes(io: Any) -> None:
    a, b = io.socketpair()
    reqs = [io.read(a, 4) for _ in range(3)]
    fd = a.fd
    a.close()  # last handle: cancels, then closes the descriptor once all are delivered
    for r in reqs:
        assert r.wait() == (CANCELLED, 0)
        assert r.op.calls == 1
    io.wait_until(lambda: a.fd == -1, "the descriptor is released")
    assert fd >= 0
    del b
