"""Backend contract: FILE operations (positioned reads and writes on regular files).

What each test checks, on every backend:
- writes at offsets land there, reads at offsets return them; a write always pends (it is
  finished by the backend: one ``complete`` call, from a backend thread or from a thread
  blocked in a wait that reaps for the backend, never inside the issuing call);
- a read at or past the end of file pends and completes with STATUS_END_OF_FILE, 0 bytes;
- scatter/gather (several buffers per request) is one request with the summed byte count;
- O_DIRECT with 4096-aligned mmap buffers, 32 requests in flight, dequeued in batches from a
  completion port, each exactly once; afterwards no buffer export is left (the mmaps close);
- every completed request's buffers were alive when it was completed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from winaio._io._ops import FileReadOp, FileWriteOp
from winaio.codes import NtStatus

SUCCESS = int(NtStatus.STATUS_SUCCESS)
END_OF_FILE = int(NtStatus.STATUS_END_OF_FILE)
BLOCK = 4096


def _by_backend(req: Any) -> None:
    """The request pended and the backend completed it exactly once, from its own thread,
    while its buffers were still alive."""
    assert req.pending
    assert req.op.calls == 1
    assert req.op.alive_at_complete is True
    # From a backend thread, or from a thread blocked in a wait that reaps for the backend
    # (a leader, ``_backends.uring.lead``): never inside the issuing call.
    assert req.op.completer.startswith("winaio-") or req.op.completer_waiting


def test_write_then_read_at_offsets(io: Any) -> None:
    f = io.file()
    first = io.write(f, b"hello", 0)
    second = io.write(f, b"world", 3 * BLOCK + 5)
    assert first.wait() == (SUCCESS, 5)
    assert second.wait() == (SUCCESS, 5)
    _by_backend(first)
    _by_backend(second)
    assert os.path.getsize(f.path) == 3 * BLOCK + 10

    got = io.read(f, 5, 3 * BLOCK + 5)
    assert got.wait() == (SUCCESS, 5)
    assert got.buffer == b"world"
    across = io.read(f, 8, 3)  # the tail of "hello", then the hole (zeros)
    assert across.wait() == (SUCCESS, 8)
    assert across.buffer == b"lo\0\0\0\0\0\0"


def test_read_at_end_of_file_pends_and_reports_eof(io: Any) -> None:
    f = io.file(b"0123456789")
    short = io.read(f, 100, 4)  # a short read is a success with what is there
    assert short.wait() == (SUCCESS, 6)
    assert short.buffer[:6] == b"456789"
    at_eof = io.read(f, 16, 10)
    past_eof = io.read(f, 16, 1 << 20)
    for req in (at_eof, past_eof):
        assert req.wait() == (END_OF_FILE, 0)
        _by_backend(req)


def test_scatter_read_gather_write(io: Any) -> None:
    f = io.file()
    parts = [io.Buf(b"abc"), io.Buf(b"defgh"), io.Buf(b"i")]
    write = io.issue(FileWriteOp, f, [memoryview(p) for p in parts], 100, offset=100, watch=parts)
    assert write.wait() == (SUCCESS, 9)
    _by_backend(write)

    into = [io.Buf(4), io.Buf(2), io.Buf(10)]
    read = io.issue(FileReadOp, f, [memoryview(b) for b in into], 100, offset=100, watch=into)
    assert read.wait() == (SUCCESS, 9)
    assert (into[0], into[1], into[2][:3]) == (b"abcd", b"ef", b"ghi")


def test_o_direct_with_aligned_buffers_at_queue_depth_32(io: Any) -> None:
    qd = 32
    f = io.file(direct=True)
    assert f.direct
    port = io.port([f])
    source = io.aligned(qd * BLOCK)
    for i in range(qd):
        source[i * BLOCK : (i + 1) * BLOCK] = bytes([i]) * BLOCK
    view = memoryview(source)
    writes = [
        io.issue(
            FileWriteOp,
            f,
            [view[i * BLOCK : (i + 1) * BLOCK]],
            (qd - 1 - i) * BLOCK,
            offset=(qd - 1 - i) * BLOCK,
            event=False,
        )
        for i in range(qd)
    ]
    packets = io.packets(port, qd)
    assert sorted(id(p.overlapped) for p in packets) == sorted(id(w.ov) for w in writes)
    assert all((p.status, p.bytes_transferred) == (SUCCESS, BLOCK) for p in packets)

    target = io.aligned(qd * BLOCK)
    tview = memoryview(target)
    reads = [
        io.issue(
            FileReadOp,
            f,
            [tview[i * BLOCK : (i + 1) * BLOCK]],
            i * BLOCK,
            offset=i * BLOCK,
            event=False,
        )
        for i in range(qd)
    ]
    packets = io.packets(port, qd)
    assert len({id(p.overlapped) for p in packets}) == qd  # each request exactly once
    assert all((p.status, p.bytes_transferred) == (SUCCESS, BLOCK) for p in packets)
    for i in range(qd):
        assert target[i * BLOCK : (i + 1) * BLOCK] == bytes([qd - 1 - i]) * BLOCK
    for req in writes + reads:
        _by_backend(req)
    assert port.get(0.0) is None  # no duplicate packets

    # The backend releases every buffer export: the mmaps can close (BufferError otherwise).
    del writes, reads, req, packets, view, tview
    io.close_when_released(source)
    io.close_when_released(target)


def test_o_direct_misaligned_request_fails_without_hanging(io: Any) -> None:
    f = io.file(bytes(2 * BLOCK), direct=True)
    buf = io.Buf(BLOCK + 1)  # a bytearray is not 4096-aligned, nor is the size
    try:
        req = io.issue(FileReadOp, f, [memoryview(buf)[1:]], 0, watch=[buf])
    except OSError:
        return  # refused at once (an IoError): allowed, nothing pends
    status, _ = req.wait()
    assert status != SUCCESS  # EINVAL from the kernel, mapped to an NTSTATUS error
    assert req.op.calls == 1


@pytest.mark.parametrize("count", [1, 200])
def test_many_writes_each_complete_once_through_a_port(io: Any, count: int) -> None:
    f = io.file()
    port = io.port([f], key="disk")
    reqs = [io.write(f, i.to_bytes(4, "little"), 4 * i, event=False) for i in range(count)]
    packets = io.packets(port, count)
    assert {p.key for p in packets} == {"disk"}
    assert sorted(id(p.overlapped) for p in packets) == sorted(id(r.ov) for r in reqs)
    assert port.get(0.0) is None
    data = Path(f.path).read_bytes()
    assert [int.from_bytes(data[4 * i : 4 * i + 4], "little") for i in range(count)] == list(
        range(count)
    )
    for req in reqs:
        _by_backend(req)
