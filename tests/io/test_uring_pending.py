"""The pending path at the cost of a raw io_uring loop (issue 9): the mechanism, pinned without
timing anything.

- a QD1 completion-port loop of O_DIRECT reads submits each read from start_read (the ring
  held nothing else: an idle device does not wait for the thread's wait to be set up) and
  sleeps at most once per read; a read issued while the ring holds another request goes out
  in the waiting enter itself (``lead``: ``take_burst``), one syscall for both;
- a thread blocked in GetQueuedCompletionStatusEx takes a whole reaped batch in one dequeue
  (``_dispatch.deliver_batch``), and a batch still honours the LIFO release of port waiters
  and the concurrency limit;
- a port that returns packets without blocking submits the bursts deferred to its caller's
  next wait first (``_backend.flush_deferred``);
- the O_DIRECT hot path (``DiskFile.start_read`` -> ``pinned_read`` ->
  ``submit_pending_file``) builds a complete request and keeps the rules: port-bound requests
  stay out of the issuer's list (they outlive it), the others are in it;
- a request that dies with a submitter the backend did not record (-ECANCELED, as older
  kernels end them) is submitted again by the ring thread and completes normally, once
  (``Migration.died``).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring.abi import RingBusyError
from winaio._backends.uring.ring import BackendRing
from winaio._io._backend import IdleWork
from winaio._io._cancel import cancel_io_ex
from winaio._io._disk import DiskFile
from winaio._io._dispatch import deliver_batch
from winaio._io._issue import start
from winaio._io._ops import FileReadOp, pinned_read
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPacket, CompletionPort
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio.codes import NtStatus, WinError
from winaio.errors import Win32Error
from winaio.testing import wait_until

OK, REASON = uring.probe_backend()
pytestmark = [
    pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}"),
    # the leader's wait chain in C (``_fastring.c``) and in Python, in turn
    pytest.mark.usefixtures("fast_path_impl", "slot_impl"),  # (and on the receive slots)
]

SUCCESS = int(NtStatus.STATUS_SUCCESS)
BLOCK = 4096
LONG = 5.0


@pytest.fixture
def backend(armed_uring: uring.IoUringBackend) -> uring.IoUringBackend:
    return armed_uring


def test_a_qd1_port_loop_submits_each_read_at_once_and_sleeps_once(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = aligned(BLOCK)
    parked = kit.park(backend, monkeypatch)  # nothing but this thread submits or reaps
    try:
        enters, waits = backend._enters, backend._lead.waits
        completed = backend.statistics().completed
        total = 200
        for i in range(total):
            ov = Overlapped((i * 7919 % 256) * BLOCK)
            assert disk.start_read(view, ov) is False  # pends (O_DIRECT)
            # The ring held nothing else (an idle device): the read is in the kernel before
            # start_read returns, so the device works while this thread sets its wait up.
            assert not backend._deferral.unsubmitted and not backend._ring.sq_ready()
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            assert (packet.status, packet.bytes_transferred) == (SUCCESS, BLOCK)
        # One submitting io_uring_enter per read, and at most one sleep in the kernel (none
        # when the CQE came before the wait: the first reap takes it).
        assert backend._enters - enters == total
        assert backend._lead.waits - waits <= total
        # Each one reaped alone and delivered by the single-CQE path (``Reaper.reap``): counted.
        assert backend.statistics().completed - completed == total
        assert not backend._table
        assert backend._lead.owner is current_thread_state().parker  # the thread led
        assert backend._ring_thread.rounds == parked.rounds
    finally:
        parked.release()


def test_a_read_issued_while_the_ring_is_busy_goes_out_in_the_waiting_enter(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = aligned(BLOCK)
    reader, w = kit.pipe(backend)
    parked = kit.park(backend, monkeypatch)
    try:
        assert disk.start_read(view, Overlapped(0)) is False
        assert port.get(LONG) is not None  # this thread waited: it owns the ring now
        ev = Event(manual_reset=True)
        busy = StreamReadOp(reader, Overlapped(0, ev), [memoryview(bytearray(1))])
        assert start(busy) == STATUS_PENDING  # stays in the ring: no data yet
        enters, waits = backend._enters, backend._lead.waits
        ov = Overlapped(BLOCK)
        assert disk.start_read(view, ov) is False
        assert backend._deferral.unsubmitted and IdleWork.deferred  # deferred to the next wait...
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov and packet.status == SUCCESS
        # ... whose io_uring_enter submitted it (with the pipe's) and slept: one syscall.
        assert backend._enters - enters == 1
        assert backend._lead.waits - waits == 1
        assert not backend._deferral.unsubmitted and not busy.done
        os.write(w, b"x")
        kit.wait(ev)
        assert busy.overlapped.status == SUCCESS
    finally:
        parked.release()
    os.close(w)
    reader.close()


def test_a_gqcs_waiter_takes_a_reaped_batch_in_one_dequeue(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = aligned(8 * BLOCK)
    parked = kit.park(backend, monkeypatch)  # it cannot reap them first
    try:
        ovs = [Overlapped(slot * BLOCK) for slot in range(8)]
        for slot, ov in enumerate(ovs):
            assert disk.start_read(view[slot * BLOCK : (slot + 1) * BLOCK], ov) is False
        wait_until(lambda: backend._ring.cq_ready() >= 8, LONG, "8 CQEs in the ring")
        # Blocks (no packet yet), reaps the 8 CQEs itself and is handed all 8 packets.
        code, packets = port.get_many(8, LONG)
        assert code == 0 and len(packets) == 8
        assert {id(p.overlapped) for p in packets} == {id(ov) for ov in ovs}
        assert all(p.status == SUCCESS and p.bytes_transferred == BLOCK for p in packets)
        assert port.queued == 0
    finally:
        parked.release()


def test_a_batch_releases_port_waiters_lifo_within_the_concurrency(
    backend: uring.IoUringBackend, disk: DiskFile
) -> None:
    port = CompletionPort(concurrency=2)
    disk.associate(port, "disk")
    got: dict[str, list[CompletionPacket]] = {}

    def waiter(name: str) -> None:
        got[name] = port.get_many(2, LONG)[1]

    first = threading.Thread(target=waiter, args=("first",))
    first.start()
    wait_until(lambda: len(port._getters) == 1, LONG, "the first waiter blocks")
    second = threading.Thread(target=waiter, args=("second",))
    second.start()
    wait_until(lambda: len(port._getters) == 2, LONG, "the second waiter blocks")
    ops = [FileReadOp(disk, Overlapped(i * BLOCK), [memoryview(bytearray(1))], 0) for i in range(3)]
    assert deliver_batch([(op, SUCCESS, i + 1) for i, op in enumerate(ops)]) == []
    first.join(LONG)
    second.join(LONG)
    # The most recent waiter gets the oldest packets (as many as it asked for), the next one
    # the rest: running(P) = 1 < 2 after the first release.
    assert [p.bytes_transferred for p in got["second"]] == [1, 2]
    assert [p.bytes_transferred for p in got["first"]] == [3]
    assert all(op.done and op.overlapped.information == i + 1 for i, op in enumerate(ops))
    assert not port.holding
    port.close()


def test_a_port_returning_packets_at_once_submits_the_deferred_burst_first(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = aligned(2 * BLOCK)
    parked = kit.park(backend, monkeypatch)  # its watch cannot submit the burst either
    try:
        assert disk.start_read(view[:BLOCK], Overlapped(0)) is False
        assert port.get(LONG) is not None  # this thread waited: it owns the ring now
        port.post(0, "posted")  # a packet to take without blocking
        # The first goes out at once (the ring held nothing else: ``BURST``), the second
        # waits for this thread's next wait: the first is still in the ring (nobody reaps).
        assert disk.start_read(view[:BLOCK], Overlapped(0)) is False
        assert not backend._deferral.unsubmitted
        assert disk.start_read(view[BLOCK:], Overlapped(BLOCK)) is False
        assert backend._deferral.unsubmitted and IdleWork.deferred  # deferred to the next wait
        packet = port.get(0)
        assert packet is not None and packet.key == "posted"
        assert not backend._deferral.unsubmitted and not IdleWork.deferred  # ... which went out
        wait_until(lambda: backend._ring.cq_ready() >= 2, LONG, "the reads complete")
        code, packets = port.get_many(2, LONG)
        assert code == 0 and len(packets) == 2
        assert all(p.key == "disk" and p.status == SUCCESS for p in packets)
    finally:
        parked.release()


def test_the_o_direct_hot_path_builds_a_whole_request(
    disk: DiskFile, aligned: Callable[[int], memoryview]
) -> None:
    view = aligned(BLOCK)
    op = pinned_read(disk, Overlapped(BLOCK), view, BLOCK, object(), 4096, BLOCK)
    slots = {name for cls in type(op).__mro__ for name in getattr(cls, "__slots__", ())}
    missing = [name for name in slots - {"__weakref__"} if not hasattr(op, name)]
    assert missing == []  # a slot added to Operation/FileReadOp must be set there too
    assert op.issuer is current_thread_state() and op.tried and op.routine is None
    del op


def test_the_o_direct_hot_path_keeps_the_thread_exit_lists(
    backend: uring.IoUringBackend, disk: DiskFile, aligned: Callable[[int], memoryview]
) -> None:
    view = aligned(2 * BLOCK)
    mine = current_thread_state().extensions.setdefault("io", {})
    before = len(mine)
    ev = Event(manual_reset=True)
    evented = Overlapped(0, ev)
    # Not port-bound: it dies with its issuer (spec §8), so the exit hook must see it.
    assert disk.start_read(view[:BLOCK], evented) is False
    assert any(op.overlapped is evented for op in mine)
    port = CompletionPort()
    disk.associate(port, "disk")
    bound = Overlapped(BLOCK)
    # Port-bound without an event: it outlives its issuer; the exit hook has nothing to do.
    assert disk.start_read(view[BLOCK:], bound) is False
    assert not any(op.overlapped is bound for op in mine)
    assert disk.pending_requests >= 1
    packet = port.get(LONG)
    if packet is not None and packet.overlapped is evented:
        packet = port.get(LONG)  # (the evented one posts too: the file is associated now)
    assert packet is not None and packet.overlapped is bound and packet.status == SUCCESS
    wait_until(lambda: disk.pending_requests == 0, LONG, "both delivered")
    assert len(mine) == before
    port.close()


def test_a_request_that_dies_with_an_unrecorded_submitter_is_resubmitted(
    backend: uring.IoUringBackend, kit: Any
) -> None:
    port = CompletionPort()
    reader, w = kit.pipe(backend)
    reader.associate(port, "reader")
    buf = bytearray(4)
    op = StreamReadOp(reader, Overlapped(), [memoryview(buf)])
    assert start(op) == STATUS_PENDING
    line = op.token
    wait_until(lambda: line.poll_ud in backend._table, LONG, "the read is in the kernel")
    # What an older kernel does to a waiting read whose submitter exited without the backend
    # knowing it was the submitter (a leader's waiting enter may take another thread's SQEs,
    # ``take_burst``): it ends the request with -ECANCELED. An ASYNC_CANCEL nobody asked for
    # (``op.cancel_requested`` stays False) does the same here (6.x kernels let such requests
    # live on). The ring thread submits it again instead of failing it.
    with backend._lock:
        wake = backend._sq.cancel_locked(line.poll_ud)
    if wake:
        os.eventfd_write(backend._efd, 1)
    wait_until(lambda: backend._migration.count == 1, LONG, "resubmitted")
    assert not op.done and not op.cancel_requested
    os.write(w, b"late")
    packet = port.get(LONG)
    assert packet is not None and (packet.status, packet.bytes_transferred) == (SUCCESS, 4)
    assert bytes(buf) == b"late"
    # Once only: a request that keeps failing that way fails (no endless resubmission).
    assert op in backend._migration.resubmitted
    reader.close()
    os.close(w)
    port.close()


# ---------------------------------------------------------------------------------------------
# A close or a CancelIoEx racing with an O_DIRECT read: forced in the window between the
# request's registration (``submit_pending_file``, under LOCK) and its submission (a hook
# in ``backend.submit``).


def test_a_close_after_the_registration_waits_for_the_read_it_saw(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = aligned(BLOCK)
    fd = disk.fd
    expected = (tmp_path / "disk").read_bytes()[3 * BLOCK : 4 * BLOCK]
    real_submit = backend.submit
    seen: list[int] = []

    def close_then_submit(op: Any) -> None:
        disk.close()  # registered: the close cancels it and keeps the descriptor open
        seen.append(disk.fd)
        real_submit(op)

    monkeypatch.setattr(backend, "submit", close_then_submit)
    ov = Overlapped(3 * BLOCK)
    assert disk.start_read(view, ov) is False
    assert seen == [fd]  # still open when the SQE was prepared and submitted
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    # Exactly one completion: cancelled, or its real result (the read came first).
    assert packet.status in (SUCCESS, int(NtStatus.STATUS_CANCELLED))
    if packet.status == SUCCESS:
        assert packet.bytes_transferred == BLOCK and bytes(view) == expected  # the right file
    assert port.get(0.05) is None
    assert disk.fd == -1 and disk.pending_requests == 0  # released at the delivery


def test_cancel_io_ex_between_registration_and_submission_finds_the_read(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = aligned(BLOCK)
    ov = Overlapped(0)
    real_submit = backend.submit

    def cancel_then_submit(op: Any) -> None:
        cancel_io_ex(disk, ov)  # registered: found (no ERROR_NOT_FOUND)
        real_submit(op)

    monkeypatch.setattr(backend, "submit", cancel_then_submit)
    assert disk.start_read(view, ov) is False
    # Exactly one completion: cancelled, or its real result (the read came first).
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    assert packet.status in (SUCCESS, int(NtStatus.STATUS_CANCELLED))
    assert port.get(0.05) is None
    assert disk.pending_requests == 0


def test_closing_while_threads_issue_o_direct_reads_completes_each_issued_read_once(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
) -> None:
    # Not a timing test: whatever the interleaving, every start_read that returned completes
    # exactly once, every other one failed with ERROR_INVALID_HANDLE, and the descriptor is
    # released once the last completion is delivered.
    threads_n, per_thread = 4, 48
    view = aligned(threads_n * per_thread * BLOCK)
    issued: list[list[Overlapped]] = [[] for _ in range(threads_n)]
    failures: list[object] = []
    go = threading.Barrier(threads_n + 1)

    def issuer(t: int) -> None:
        go.wait()
        for i in range(per_thread):
            slot = t * per_thread + i
            ov = Overlapped((slot % 256) * BLOCK)
            try:
                assert disk.start_read(view[slot * BLOCK : (slot + 1) * BLOCK], ov) is False
            except Win32Error as exc:
                if exc.winerror != WinError.ERROR_INVALID_HANDLE:
                    failures.append(exc)
                return
            issued[t].append(ov)

    threads = [threading.Thread(target=issuer, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    go.wait()
    disk.close()
    for thread in threads:
        thread.join(LONG)
    assert not failures
    expected = {id(ov) for ovs in issued for ov in ovs}
    got: list[int] = []
    while len(got) < len(expected):
        packet = port.get(LONG)
        assert packet is not None, f"{len(got)} of {len(expected)} completions"
        got.append(id(packet.overlapped))
    assert sorted(got) == sorted(expected)  # each issued read once, nothing else
    assert port.get(0.05) is None
    wait_until(lambda: disk.fd == -1, LONG, "the descriptor is released")
    assert disk.pending_requests == 0


def test_an_idle_ring_submits_one_read_in_one_enter_recorded_as_the_issuers(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ``Submission.submit_one_locked``: the ring held nothing else, so one enter took the one
    # SQE; the issuer is recorded as its submitter (its exit migrates it), nothing stays
    # deferred.
    view = aligned(BLOCK)
    parked = kit.park(backend, monkeypatch)
    try:
        enters = backend._enters
        ov = Overlapped(5 * BLOCK)
        assert disk.start_read(view, ov) is False
        assert backend._enters - enters == 1
        (ud,) = backend._table  # the only request
        assert ud in backend._migration.owned[current_thread_state()]
        assert not backend._deferral.unsubmitted and not backend._ring.sq_ready()
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov and packet.status == SUCCESS
    finally:
        parked.release()


@pytest.mark.parametrize("owner", [False, True], ids=["issuer", "owner"])
@pytest.mark.parametrize("busy", [False, True], ids=["eintr", "ebusy"])
def test_an_idle_ring_enter_that_takes_nothing_falls_back_to_the_recount(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    port: CompletionPort,
    aligned: Callable[[int], memoryview],
    monkeypatch: pytest.MonkeyPatch,
    busy: bool,
    owner: bool,
) -> None:
    # A signal (EINTR: 0 consumed) or EBUSY in the one-SQE enter: the general path recounts
    # from the kernel's SQ head and submits it; the read completes once. ``owner``: the
    # issuer already owns the ring (it waited on it once).
    view = aligned(BLOCK)
    if owner:
        assert disk.start_read(view, Overlapped(0)) is False
        assert port.get(LONG) is not None  # this thread waited: it owns the ring now
        assert backend._lead.owner is current_thread_state().parker
    real_enter = BackendRing.enter
    calls: list[tuple[int, int]] = []

    def enter(ring: BackendRing, to_submit: int, wait_nr: int) -> int:
        if ring is backend._ring and to_submit:
            calls.append((to_submit, wait_nr))
            if len(calls) == 1:
                if busy:
                    raise RingBusyError(errno.EBUSY, "busy")
                return 0  # EINTR
        return real_enter(ring, to_submit, wait_nr)

    monkeypatch.setattr(BackendRing, "enter", enter)
    ov = Overlapped(6 * BLOCK)
    assert disk.start_read(view, ov) is False
    monkeypatch.setattr(BackendRing, "enter", real_enter)
    assert calls[:2] == [(1, 0), (1, 0)]  # refused once, then the general path's enter
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov and packet.status == SUCCESS
    assert port.get(0.05) is None and not backend._deferral.unsubmitted
