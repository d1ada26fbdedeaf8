"""Waiting threads reap the ring themselves (``winaio._backends.uring.lead``): the mechanism,
pinned without timing anything.

- 10 000 O_DIRECT reads at QD32 through a completion port with the ring thread parked: the
  port waiter reaps and delivers them all; the ring thread is not woken once;
- the ring thread parked for good (it cannot run at all): a completion-port waiter, an
  alertable waiter with completion routines and an event waiter are all woken by their
  completions, which they reap themselves; requests issued by a thread that exits still
  complete (another waiting thread reaps them);
- wake-ups that are not completions reach a waiter asleep in the kernel (a poke): a posted
  packet, a queued APC, a timeout;
- two waiting threads: one leads, the other follows and is promoted when the leader leaves;
  the leaver takes no lock when nobody follows, so a thread that registers as a follower
  while the waiter leaves leads in its place (both interleavings, deterministic);
- an owner that goes away without waiting again: the ring thread's watch takes its
  completions over.
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._io._issue import start
from winaio._io._ops import FileReadOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._apc import queue_user_apc
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio._kernel._wait import sleep, wait_for_one
from winaio.codes import NtStatus, WaitCode
from winaio.testing import wait_until

OK, REASON = uring.probe_backend()
pytestmark = [
    pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}"),
    # the leader's wait chain in C (``_fastring.c``) and in Python, in turn
    pytest.mark.usefixtures("fast_path_impl"),
]

SUCCESS = int(NtStatus.STATUS_SUCCESS)
WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
WAIT_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
BLOCK = 4096
LONG = 5.0


@pytest.fixture
def backend(armed_uring: uring.IoUringBackend) -> uring.IoUringBackend:
    return armed_uring


@pytest.fixture
def disk(backend: uring.IoUringBackend, tmp_path: Path, kit: Any) -> Iterator[Any]:
    """A 1 MiB O_DIRECT file on ``backend``."""
    path = tmp_path / "disk"
    path.write_bytes(os.urandom(1 << 20))
    f = kit.file(backend, path, direct=True)
    yield f
    f.close()


def _reads(f: Any, n: int, **kw: Any) -> list[FileReadOp]:
    memory = mmap.mmap(-1, n * BLOCK)
    view = memoryview(memory)
    ops = []
    for i in range(n):
        op = FileReadOp(
            f, Overlapped(i * BLOCK, **kw), [view[i * BLOCK : (i + 1) * BLOCK]], i * BLOCK
        )
        assert start(op) == STATUS_PENDING
        ops.append(op)
    return ops


def test_a_port_loop_runs_without_the_ring_thread(
    backend: uring.IoUringBackend, disk: Any, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 000 QD32 reads through a completion port while the ring thread cannot run at all:
    # every completion reaches the port waiter through its own reaping, with zero ring-thread
    # wake-ups (its rounds stay where they were) and zero ring-thread deliveries.
    port = CompletionPort()
    disk.associate(port, "disk")
    memory = mmap.mmap(-1, 32 * BLOCK)
    view = memoryview(memory)
    slots = {}

    def read(ov: Overlapped, slot: int) -> None:
        op = FileReadOp(disk, ov, [view[slot * BLOCK : (slot + 1) * BLOCK]], ov.offset)
        assert start(op) == STATUS_PENDING

    parked = kit.park(backend, monkeypatch)
    try:
        delivered, leads = backend._ring_thread.delivered, backend._lead.leads
        for slot in range(32):
            ov = Overlapped(slot * BLOCK)
            slots[id(ov)] = slot
            read(ov, slot)
        done, issued, total = 0, 32, 10_000
        while done < total:
            _, packets = port.get_many(32, LONG)
            assert packets, "no completion within 5s"
            for packet in packets:
                assert (packet.status, packet.bytes_transferred) == (SUCCESS, BLOCK)
                done += 1
                if issued < total:
                    ov = packet.overlapped
                    ov.offset = (issued % 256) * BLOCK
                    read(ov, slots[id(ov)])
                    issued += 1
        assert backend._ring_thread.rounds == parked.rounds  # not one ring-thread wake-up
        assert backend._ring_thread.delivered == delivered
        assert backend._lead.leads > leads  # this thread waited on the ring, and reaped
        assert backend.statistics().in_flight == 0
    finally:
        parked.release()
    port.close()


def test_waiters_are_woken_by_their_completions_with_the_ring_thread_parked(
    backend: uring.IoUringBackend,
    disk: Any,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parked = kit.park(backend, monkeypatch)
    try:
        # A completion port.
        port = CompletionPort()
        disk.associate(port, "disk")
        ops = _reads(disk, 8)
        got = []
        while len(got) < 8:
            _, packets = port.get_many(8, LONG)
            assert packets, "no completion packet within 5s"
            got += packets
        assert all((p.status, p.bytes_transferred) == (SUCCESS, BLOCK) for p in got)
        # Completion routines and an alertable wait (a file without a port: a pipe).
        reader, w = kit.pipe(backend)
        calls: list[tuple[int, int]] = []
        buf = bytearray(4)
        op = StreamReadOp(
            reader, Overlapped(), [memoryview(buf)], routine=lambda e, n, ov: calls.append((e, n))
        )
        assert start(op) == STATUS_PENDING
        threading.Timer(0.05, os.write, (w, b"apc!")).start()
        assert sleep(LONG, True) == WAIT_IO_COMPLETION
        assert calls == [(0, 4)] and bytes(buf) == b"apc!"
        # An event.
        ev = Event(manual_reset=True)
        op2 = StreamReadOp(reader, Overlapped(0, ev), [memoryview(buf)])
        assert start(op2) == STATUS_PENDING
        threading.Timer(0.05, os.write, (w, b"evnt")).start()
        kit.wait(ev)
        assert bytes(buf) == b"evnt"
        # A port-bound request whose issuing (and submitting) thread exits: migrated, that is
        # cancelled by that thread and submitted again by the ring thread - once it runs.
        assert backend._ring_thread.rounds == parked.rounds  # it never ran
        port2 = CompletionPort()
        r2, w2 = kit.pipe(backend)
        r2.associate(port2, "late")
        late = StreamReadOp(r2, Overlapped(), [memoryview(buf)])
        t = threading.Thread(target=lambda: start(late))
        t.start()
        t.join(LONG)
        while backend._migration.count == 0:  # this thread reaps the cancel's CQE meanwhile
            assert port2.get(0.02) is None
        assert backend._migration.count == 1
        os.write(w2, b"late")
        parked.release()
        packet = port2.get(LONG)
        assert packet is not None and (packet.key, packet.bytes_transferred) == ("late", 4)
        assert bytes(buf) == b"late"
        r2.close()
        os.close(w2)
        port2.close()
        del ops, op, op2
        reader.close()
        os.close(w)
        port.close()
    finally:
        parked.release()


def test_a_waiter_asleep_in_the_kernel_is_poked_by_other_wake_ups(
    backend: uring.IoUringBackend, disk: Any, kit: Any
) -> None:
    port = CompletionPort()
    reader, w = kit.pipe(backend)
    reader.associate(port, "reader")
    pending = StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))])
    assert start(pending) == STATUS_PENDING  # this thread now leads while it waits
    me = current_thread_state()
    parker = me.parker
    pokes = backend._lead.pokes

    def once_asleep(fn: Any, *args: Any) -> None:
        # Act only once this thread sleeps in io_uring_enter: the wake-up must poke it.
        def run() -> None:
            wait_until(lambda: getattr(parker, "in_kernel", False), LONG, "asleep in the kernel")
            fn(*args)

        threading.Thread(target=run).start()

    # A posted packet (PostQueuedCompletionStatus from another thread).
    once_asleep(port.post, 7, "posted")
    packet = port.get(LONG)
    assert packet is not None and packet.key == "posted"
    # An APC queued to this thread during an alertable wait.
    ran: list[int] = []
    once_asleep(queue_user_apc, me, lambda: ran.append(1), ())
    assert sleep(LONG, True) == WAIT_IO_COMPLETION and ran == [1]
    assert backend._lead.pokes - pokes >= 2
    # A timeout while leading.
    assert port.get(0.05) is None
    assert sleep(0.05, True) == 0
    os.write(w, b"!")
    packet = port.get(LONG)
    assert packet is not None and packet.key == "reader"
    reader.close()
    os.close(w)
    port.close()


def test_two_waiters_one_leads_the_other_is_promoted(
    backend: uring.IoUringBackend, kit: Any
) -> None:
    readers = [kit.pipe(backend) for _ in range(2)]
    done: dict[int, str] = {}
    ready = threading.Barrier(3)

    def waiter(n: int) -> None:
        reader, _ = readers[n]
        ev = Event(manual_reset=True)
        op = StreamReadOp(reader, Overlapped(0, ev), [memoryview(bytearray(1))])
        assert start(op) == STATUS_PENDING
        ready.wait()
        assert wait_for_one(ev, LONG, False) == 0
        done[n] = threading.current_thread().name

    threads = [threading.Thread(target=waiter, args=(n,), name=f"w{n}") for n in range(2)]
    for t in threads:
        t.start()
    ready.wait()
    wait_until(lambda: backend._lead.waiter is not None and backend._lead.followers, LONG)
    leader = backend._lead.waiter
    assert leader is not None
    # Complete the leader's read first: it leaves, and the follower takes its place.
    lead_n = next(n for n, t in enumerate(threads) if t.ident == leader.ts.ident)
    os.write(readers[lead_n][1], b"a")
    wait_until(lambda: lead_n in done, LONG, "the leader's read")
    wait_until(lambda: backend._lead.waiter is not None, LONG, "a follower promoted")
    os.write(readers[1 - lead_n][1], b"b")
    for t in threads:
        t.join(LONG)
    assert sorted(done) == [0, 1]
    assert backend._lead.leads >= 2
    for reader, w in readers:
        reader.close()
        os.close(w)


class _LeavingDuringAppend(list[Any]):
    """A followers list whose append lets the waiter leave first (``leave`` takes no lock):
    the interleaving where the leaver looked for followers before this one registered."""

    def __init__(self, lead: Any) -> None:
        super().__init__()
        self.lead = lead

    def append(self, parker: Any) -> None:
        self.lead.leave()  # sees no follower yet: promotes nobody
        super().append(parker)


def test_a_thread_that_follows_a_leaving_waiter_leads_in_its_place(
    backend: uring.IoUringBackend,
) -> None:
    lead = backend._lead
    ts = current_thread_state()
    lead.parker_for(ts)
    me = ts.parker
    assert isinstance(me, uring.lead.RingParker)
    other = uring.lead.RingParker(ts, threading.Lock(), lead)
    with backend._lock:
        lead.waiter = other  # another thread leads
    lead.followers = _LeavingDuringAppend(lead)
    # The waiter left between this thread's look at ``waiter`` and its registration: it
    # must not stay a follower with nobody to lead (it would sleep until the watch).
    assert lead.enter_or_follow(me) is True
    assert lead.waiter is me and not lead.followers
    lead.followers = []
    lead.leave()
    assert lead.waiter is None


def test_a_leaving_waiter_promotes_a_follower_it_sees(
    backend: uring.IoUringBackend, disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead = backend._lead
    ops = _reads(disk, 1)  # one request in flight: a follower has something to wait for
    woken: list[Any] = []
    monkeypatch.setattr(uring.lead, "wake_thread", woken.append)
    ts = current_thread_state()
    leader = uring.lead.RingParker(ts, threading.Lock(), lead)
    follower = uring.lead.RingParker(ts, threading.Lock(), lead)
    assert lead.enter_or_follow(leader) is True
    assert lead.enter_or_follow(follower) is False  # registered: a waiter is there
    assert lead.followers == [follower]
    lead.leave()  # clears ``waiter``, then sees the follower: wakes it to lead
    assert lead.waiter is None and woken == [follower.ts]
    lead.unfollow(follower)
    woken.clear()
    assert lead.enter_or_follow(leader) is True
    lead.leave()  # nobody follows: nobody woken, no lock taken
    assert lead.waiter is None and woken == []
    wait_until(lambda: all(op.done for op in ops), LONG, "the read completes")


def test_the_watch_takes_over_from_an_owner_that_went_away(
    backend: uring.IoUringBackend, kit: Any
) -> None:
    with kit.absent_owner(backend) as (ev, issued, w2):
        wait_until(lambda: issued, LONG, "the owner issued its second read")
        takeovers = backend._lead.watcher.takeovers
        os.write(w2, b"22")
        # This thread never issued on the backend: it parks plainly; the watch reaps for it.
        assert wait_for_one(ev, LONG, False) == 0
        assert issued[0].overlapped.information == 2
        assert backend._lead.watcher.takeovers > takeovers or backend._ring_thread.delivered > 0


def test_a_claim_of_the_ring_shows_in_statistics(backend: uring.IoUringBackend) -> None:
    """The ring thread's delivery to a parked thread while the ring has no owner records it as
    the claimant (``RingParker.release``); ``Leadership.claim`` makes it the owner and counts
    the claim, which ``statistics()`` reports ("N claims"). A claim with no claimant, or while
    the ring has an owner, counts nothing."""
    lead = backend._lead
    with backend._lock:
        lead.disown_locked()  # (an idle ring: no owner)
    before = lead.claims
    assert f" {before} claims;" in backend.statistics().detail
    ts = current_thread_state()
    parker = uring.lead.RingParker(ts, threading.Lock(), lead)
    parker.lock.acquire()  # (parked: its token not given yet)
    try:
        parker.release()  # the token given while nobody owns the ring: the claimant
        assert lead.claimant is parker
        lead.claim()
        assert lead.owner is parker and lead.claimant is None and lead.claims == before + 1
        assert f" {before + 1} claims;" in backend.statistics().detail
        lead.claim()  # nobody to claim
        other = uring.lead.RingParker(ts, threading.Lock(), lead)
        lead.claimant = other
        lead.claim()  # the ring has an owner: no claim
        assert lead.owner is parker and lead.claimant is None
        assert f" {before + 1} claims;" in backend.statistics().detail
    finally:
        with backend._lock:
            lead.disown_locked()
