"""Backend contract under load: 100 000 mixed requests with random cancels, on every backend.

One seeded ``random.Random`` drives a single issuing thread (deterministic choices; the
interleaving with the backend's threads is what varies). Up to ``MAX_IN_FLIGHT`` requests are
outstanding; every file object is associated with one completion port and every request is
accounted for by the packet it posts (immediate completions post one too).

The mix: positioned file writes, buffered reads of a known region (checked byte for byte),
O_DIRECT reads into aligned slots of one mmap, reads at end of file, and reads and writes on
pipes and socketpairs carrying a known byte sequence; about one step in ten cancels a random
outstanding request (stream writes excepted: a cancelled partial send would tear the sequence).

Checked:
- every request gets exactly one packet, and a backend ``complete`` call iff it pended;
- its buffers were alive when it was completed, and its status is one its kind allows;
- streams: the successful reads of each channel, in packet order, plus what is left in the
  channel at the end, are exactly the bytes written - nothing lost, duplicated or reordered
  (cancelled reads consume nothing; pending reads complete in issue order);
- afterwards the backend reports nothing in flight and the fixture finds no fd or thread leak.

Bounded: 100 000 requests take a few seconds per backend here; the test fails past
``BUDGET`` seconds rather than running on.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

from winaio._io._ops import FileReadOp
from winaio.codes import NtStatus

SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
END_OF_FILE = int(NtStatus.STATUS_END_OF_FILE)
BLOCK = 4096
TOTAL = 100_000
MAX_IN_FLIGHT = 128
BUDGET = 45.0
SEED = 20261122
PATTERN = bytes(i % 251 for i in range(1 << 12))  # the stream byte sequence (period 251)
REGION = bytes((i * 7 + 3) % 256 for i in range(64 * BLOCK))  # the file read region


class Channel:
    """A pipe or socketpair: reader and writer ends, the bytes sent and received so far."""

    def __init__(self, index: int, reader: Any, writer: Any) -> None:
        self.index = index
        self.reader = reader
        self.writer = writer
        self.sent = 0  # bytes handed to writes so far (position in the sequence)
        self.received = bytearray()  # successful reads, in packet order
        self.pending_reads = 0
        self.pending_writes = 0

    def chunk(self, n: int) -> bytes:
        """The next ``n`` bytes of the sequence (byte i of a stream is i % 251)."""
        start = self.sent % 251
        self.sent += n
        return PATTERN[start : start + n]


class Rec:
    __slots__ = ("channel", "expect", "kind", "req", "slot")

    def __init__(self, kind: str, req: Any, channel: Channel | None = None, expect: Any = None):
        self.kind = kind
        self.req = req
        self.channel = channel
        self.expect = expect
        self.slot = -1


@pytest.mark.slow
@pytest.mark.timeout(2 * BUDGET)
def test_stress_mixed_requests_with_random_cancels(io: Any) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    port = io.port()

    data = io.file(REGION)
    scratch = io.file()
    direct = io.file(REGION, direct=True)
    for f in (data, scratch, direct):
        f.associate(port, f)
    channels = []
    for i in range(8):
        reader, writer = io.pipe() if i % 2 else io.socketpair()
        reader.associate(port, reader)
        writer.associate(port, writer)
        channels.append(Channel(i, reader, writer))
    slots_memory = io.aligned(32 * BLOCK)
    slots_view = memoryview(slots_memory)
    free_slots = list(range(32))

    outstanding: dict[Any, Rec] = {}  # Overlapped -> record, until its packet is dequeued
    statuses: dict[str, dict[int, int]] = {}
    issued = 0

    def record(rec: Rec) -> None:
        nonlocal issued
        outstanding[rec.req.ov] = rec
        issued += 1

    def stream_write(ch: Channel, n: int) -> None:
        rec = Rec("stream-write", io.write(ch.writer, ch.chunk(n), event=False), ch, n)
        ch.pending_writes += 1
        record(rec)

    def stream_read(ch: Channel, n: int) -> None:
        rec = Rec("stream-read", io.read(ch.reader, n, event=False), ch)
        ch.pending_reads += 1
        record(rec)

    def settle(packet: Any) -> None:
        rec = outstanding.pop(packet.overlapped)  # KeyError: a second or unknown packet
        req, op = rec.req, rec.req.op
        assert op.calls == (1 if req.pending else 0), f"{rec.kind}: {op.calls} completions"
        if req.pending:
            assert op.alive_at_complete is True, f"{rec.kind}: buffer released early"
        status, n = packet.status, packet.bytes_transferred
        assert (status, n) == (req.ov.status, req.ov.information)
        per_kind = statuses.setdefault(rec.kind, {})
        per_kind[status] = per_kind.get(status, 0) + 1
        ch = rec.channel
        if rec.kind == "stream-read":
            assert ch is not None
            ch.pending_reads -= 1
            assert status in (SUCCESS, CANCELLED), hex(status)
            if status == SUCCESS:
                assert n > 0
                ch.received += req.buffer[:n]
            else:
                assert n == 0
        elif rec.kind == "stream-write":
            assert ch is not None
            ch.pending_writes -= 1
            assert (status, n) == (SUCCESS, rec.expect), hex(status)
        elif rec.kind == "read":
            offset, size = rec.expect
            assert status in (SUCCESS, CANCELLED), hex(status)
            if status == SUCCESS:
                assert bytes(req.buffer[:n]) == REGION[offset : offset + size]
                assert n == size
        elif rec.kind == "direct":
            free_slots.append(rec.slot)
            assert status in (SUCCESS, CANCELLED), hex(status)
            if status == SUCCESS:
                offset = rec.expect
                got = slots_view[rec.slot * BLOCK : (rec.slot + 1) * BLOCK]
                assert n == BLOCK and got == REGION[offset : offset + BLOCK]
        elif rec.kind == "eof":
            assert (status, n) in ((END_OF_FILE, 0), (CANCELLED, 0)), hex(status)
        else:  # write
            assert (status, n) in ((SUCCESS, rec.expect), (CANCELLED, 0)), hex(status)

    def dequeue(block: bool) -> int:
        _, packets = port.get_many(256, 0 if not block else 5.0)
        for packet in packets:
            settle(packet)
        return len(packets)

    def unstick() -> None:
        # Everything outstanding may be waiting on a stream: feed readers, drain writers.
        for ch in channels:
            if ch.pending_reads:
                stream_write(ch, 64)
            elif ch.pending_writes:
                stream_read(ch, 1 << 16)

    while issued < TOTAL:
        assert time.monotonic() - started < BUDGET, f"over budget after {issued} requests"
        roll = rng.random()
        if roll < 0.18:
            offset = rng.randrange(256) * 512
            size = rng.choice((512, 1024, BLOCK))
            rec = Rec("write", io.write(scratch, REGION[:size], offset, event=False), None, size)
            record(rec)
        elif roll < 0.28:
            offset = rng.randrange(len(REGION) - 64)
            size = min(rng.choice((64, 512, BLOCK)), len(REGION) - offset)
            rec = Rec("read", io.read(data, size, offset, event=False), None, (offset, size))
            record(rec)
        elif roll < 0.36 and free_slots:
            slot = free_slots.pop()
            offset = rng.randrange(64) * BLOCK
            view = slots_view[slot * BLOCK : (slot + 1) * BLOCK]
            req = io.issue(FileReadOp, direct, [view], offset, offset=offset, event=False)
            rec = Rec("direct", req, None, offset)
            rec.slot = slot
            record(rec)
        elif roll < 0.40:
            offset = len(REGION) + rng.randrange(4) * BLOCK
            record(Rec("eof", io.read(data, 512, offset, event=False)))
        elif roll < 0.64:
            stream_read(rng.choice(channels), rng.choice((1, 16, 256, 1024)))
        elif roll < 0.90:  # smaller than reads on average: reads often find nothing and pend
            stream_write(rng.choice(channels), rng.choice((1, 16, 64, 256)))
        elif outstanding:
            victim = rng.choice(list(outstanding.values()))
            if victim.kind != "stream-write":
                victim.req.cancel()
        if len(outstanding) >= MAX_IN_FLIGHT and not dequeue(False):
            unstick()
            assert dequeue(True), f"no completion within 5s; outstanding: {len(outstanding)}"

    # Wind down: cancel pending reads, let pending writes drain into raw reads.
    for rec in list(outstanding.values()):
        if rec.kind != "stream-write":
            rec.req.cancel()
    deadline = time.monotonic() + 10
    while outstanding:
        assert time.monotonic() < deadline, f"{len(outstanding)} requests never completed"
        if dequeue(False):
            continue
        drained = False
        for ch in channels:
            # Raw reads only where no read request is outstanding: they must not race one.
            if ch.pending_writes and not ch.pending_reads:
                got = _raw_read(ch.reader)
                ch.received += got
                drained = drained or bool(got)
        if not drained:
            assert dequeue(True), f"no completion within 5s; outstanding: {len(outstanding)}"
    for ch in channels:
        ch.received += _raw_read(ch.reader)
        expected = (PATTERN[:251] * (ch.sent // 251 + 1))[: ch.sent]
        assert ch.received == expected, f"channel {ch.index}: stream corrupted"

    stats = io.backend.statistics()
    elapsed = time.monotonic() - started
    print(f"\n{io.name}: {issued} requests in {elapsed:.1f}s; {stats}; {statuses}")
    assert stats.in_flight == 0
    assert stats.submitted == stats.completed
    assert sum(sum(s.values()) for s in statuses.values()) == issued
    # The run really exercised the backend and the cancel paths. (Whether a cancel ever beats
    # a FILE request depends on the filesystem and the backend: not asserted.) Writes, reads
    # at EOF and O_DIRECT reads always go to the backend: over a quarter of the mix.
    assert stats.submitted > TOTAL // 4
    assert statuses["stream-read"].get(CANCELLED, 0) > 100
    assert statuses["write"].get(SUCCESS, 0) > 1000
    rec = req = view = victim = None  # type: ignore[assignment]  # drop the last requests
    slots_view.release()
    io.close_when_released(slots_memory)


def _raw_read(f: Any) -> bytes:
    out = bytearray()
    while True:
        try:
            data = f.sock.recv(1 << 16) if f.sock is not None else os.read(f.fd, 1 << 16)
        except BlockingIOError:
            return bytes(out)
        if not data:
            return bytes(out)
        out += data
