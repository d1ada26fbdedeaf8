"""A ring leader whose own delivery ends its wait (``lead``: "A wait ended by its own reap";
``_kernel._dispatcher``: ``awake_in_wait``): the mechanism, pinned without timing anything.

Every test runs in a fresh thread whose kernel parker is a counting lock (``CountingParker``),
wrapped by the ring's ``RingParker`` once the thread issues a request; its ``release`` count
is the number of wake-up tokens the thread was given.

- a QD1 O_DIRECT completion-port loop: every wait is ended in place by the thread's own
  reap, with no token at all (no release / acquire round trip of the thread to itself), and
  the port's accounting and the thread's wait state are as after any wait;
- an event wait on a read's own event: the same;
- another thread that ends the wait while the leader is awake (a packet posted while it
  reaps) ends it in place too, with neither a token nor a poke;
- an APC queued to an alertable GetQueuedCompletionStatusEx before its own packet ends it:
  the packet wins (the APC stays queued for the next alertable wait) and the token the APC
  gave is taken, so the next wait finds the parker locked and ``wake_pending`` clear;
- a timed wait ended in place, then a wait that times out: both as before.
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._io._disk import DiskFile
from winaio._io._files import FileObject
from winaio._io._issue import start
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel._apc import queue_user_apc
from winaio._kernel._dispatcher import LOCK, ThreadState
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio._kernel._wait import wait_for_one
from winaio.codes import NtStatus, WaitCode

OK, REASON = uring.probe_backend()
pytestmark = [
    pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}"),
    # the leader's wait chain in C (``_fastring.c``) and in Python, in turn
    pytest.mark.usefixtures("fast_path_impl", "slot_impl"),  # (and on the receive slots)
]

SUCCESS = int(NtStatus.STATUS_SUCCESS)
WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
BLOCK = 4096
LONG = 5.0


class CountingParker:
    """A thread's parker (``_kernel._dispatcher.Parker``) that counts its tokens."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.releases = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.releases += 1
        self.lock.release()


def _counted_thread(body: Callable[[ThreadState, CountingParker], None]) -> None:
    """Run ``body`` in a fresh thread whose parker is a :class:`CountingParker`."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ts = current_thread_state()
            parker = CountingParker()
            with LOCK:  # in none of its waits: the parker may be replaced (``Parker``)
                ts.parker = parker
            body(ts, parker)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert not t.is_alive()
    if errors:
        raise errors[0]


def _clean_between_waits(ts: ThreadState, parker: CountingParker) -> None:
    """The kernel's invariant between waits (``_dispatcher``), and no flag left set."""
    assert ts.wait is None and not ts.awake_in_wait and not ts.wake_pending
    assert parker.lock.locked()


@pytest.fixture
def backend(armed_uring: uring.IoUringBackend) -> uring.IoUringBackend:
    return armed_uring


def test_a_qd1_port_loop_ends_each_wait_in_place_without_a_token(
    backend: uring.IoUringBackend,
    disk: DiskFile,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    port = CompletionPort()
    disk.associate(port, "disk")
    memory = mmap.mmap(-1, BLOCK)
    view = memoryview(memory)
    data = (tmp_path / "disk").read_bytes()
    total = 500

    def body(ts: ThreadState, parker: CountingParker) -> None:
        lead = backend._lead
        own = lead.own_wakes
        for i in range(total):
            offset = (i * 7919 % 256) * BLOCK
            ov = Overlapped(offset)
            assert disk.start_read(view, ov) is False  # pends (O_DIRECT)
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            assert (packet.status, packet.bytes_transferred) == (SUCCESS, BLOCK)
            assert bytes(view) == data[offset : offset + BLOCK]
            _clean_between_waits(ts, parker)
            assert port.running_threads == 1  # counted as running again (spec §6.7)
        # Every wait was ended by this thread's own delivery: no token was ever given.
        assert parker.releases == 0
        assert lead.own_wakes - own == total

    parked = kit.park(backend, monkeypatch)
    try:
        _counted_thread(body)
        assert backend._ring_thread.rounds == parked.rounds  # the ring thread took no part
    finally:
        parked.release()
    view.release()
    memory.close()
    port.close()


def test_an_event_wait_ended_by_its_own_reap(
    backend: uring.IoUringBackend, disk: DiskFile, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = mmap.mmap(-1, BLOCK)
    view = memoryview(memory)

    def body(ts: ThreadState, parker: CountingParker) -> None:
        own = backend._lead.own_wakes
        for i in range(50):
            ev = Event(manual_reset=True)
            ov = Overlapped(i * BLOCK, ev)
            assert disk.start_read(view, ov) is False
            assert wait_for_one(ev, LONG, False) == 0
            assert ov.status == SUCCESS and ov.information == BLOCK
            _clean_between_waits(ts, parker)
        assert parker.releases == 0
        assert backend._lead.own_wakes - own == 50

    parked = kit.park(backend, monkeypatch)
    try:
        _counted_thread(body)
    finally:
        parked.release()
    view.release()
    memory.close()


def _pending_pipe_read(
    backend: uring.IoUringBackend, port: CompletionPort
) -> tuple[FileObject, int]:
    """A pipe read that stays pending (the thread then leads the ring while it waits)."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    reader = FileObject(r, overlapped=True, backend=backend)
    reader.associate(port, "pipe")
    op = StreamReadOp(reader, Overlapped(), [memoryview(bytearray(1))])
    assert start(op) == STATUS_PENDING
    return reader, w


def test_a_wait_ended_by_another_thread_while_the_leader_reaps_needs_no_token(
    backend: uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = CompletionPort()
    lead = backend._lead
    real_reap = lead.reap
    posted: list[int] = []

    def reap() -> int:
        # The leader is awake in its wait: another thread posts the packet it waits for.
        if not posted and current_thread_state().awake_in_wait:
            posted.append(1)
            t = threading.Thread(target=port.post, args=(3, "posted"))
            t.start()
            t.join(LONG)
        return real_reap()

    def body(ts: ThreadState, parker: CountingParker) -> None:
        reader, w = _pending_pipe_read(backend, port)
        monkeypatch.setattr(lead, "reap", reap)
        own, pokes = lead.own_wakes, lead.pokes
        packet = port.get(LONG)
        assert posted and packet is not None
        assert (packet.key, packet.bytes_transferred) == ("posted", 3)
        assert parker.releases == 0 and lead.pokes == pokes  # no token, no poke
        assert lead.own_wakes - own == 1
        _clean_between_waits(ts, parker)
        monkeypatch.setattr(lead, "reap", real_reap)
        os.write(w, b"!")  # the pending read: woken by its completion, reaped here
        packet = port.get(LONG)
        assert packet is not None and packet.key == "pipe"
        _clean_between_waits(ts, parker)
        reader.close()
        os.close(w)

    _counted_thread(body)
    port.close()


def test_an_apc_queued_before_its_own_packet_keeps_the_token_protocol(
    backend: uring.IoUringBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = CompletionPort()
    lead = backend._lead
    real_reap = lead.reap
    ran: list[str] = []
    queued: list[int] = []

    def body(ts: ThreadState, parker: CountingParker) -> None:
        def reap() -> int:
            # During the alertable wait, first an APC (a token: the wait is alertable), then,
            # in the same round, the packet that ends the wait in place.
            if not queued and ts.awake_in_wait:
                queued.append(1)
                t = threading.Thread(
                    target=lambda: (
                        queue_user_apc(ts, ran.append, ("apc",)),
                        port.post(5, "posted"),
                    )
                )
                t.start()
                t.join(LONG)
            return real_reap()

        reader, w = _pending_pipe_read(backend, port)
        monkeypatch.setattr(lead, "reap", reap)
        code, packets = port.get_many(4, LONG, alertable=True)
        # A packet was there when the thread looked: it is returned, the APC stays queued.
        assert code == 0 and [p.key for p in packets] == ["posted"] and ran == []
        assert parker.releases == 1  # the APC's token, taken back by the wait
        _clean_between_waits(ts, parker)
        monkeypatch.setattr(lead, "reap", real_reap)
        code, packets = port.get_many(4, LONG, alertable=True)
        assert (code, packets, ran) == (WAIT_IO_COMPLETION, [], ["apc"])
        _clean_between_waits(ts, parker)
        reader.close()
        os.close(w)

    _counted_thread(body)
    port.close()


def test_timed_waits_ended_in_place_and_timed_out(
    backend: uring.IoUringBackend, disk: DiskFile
) -> None:
    port = CompletionPort()
    disk.associate(port, "disk")
    memory = mmap.mmap(-1, BLOCK)
    view = memoryview(memory)

    def body(ts: ThreadState, parker: CountingParker) -> None:
        for i in range(20):
            ov = Overlapped(i * BLOCK)
            assert disk.start_read(view, ov) is False
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            _clean_between_waits(ts, parker)
            assert port.get(0.01) is None  # nothing in flight: a plain timeout
            _clean_between_waits(ts, parker)
            assert port.running_threads == 1

    _counted_thread(body)
    view.release()
    memory.close()
    port.close()
