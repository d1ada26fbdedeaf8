"""The reaper's batch of C receive slot CQEs read in place from the CQ ring (deliver,
2026-12-06: ``_fastslot_done.c`` ``dn_slot_reap``, called by the C ``Reaper.reap`` under cq_lock)
against its reference, the Python ``Reaper.reap`` (``ring.reap``: the CQE tuples, then
``_batch_locked``: ``process``, ``deliver``).

The batch is taken only when every CQE in the ring is a plain slot CQE (checked touching
nothing), REAPED under one hold of the backend's lock, the CQ head moved past the CQEs once the
slots are written, then delivered (``self.deliver``; ``cuts.deliver_rest`` on an exception).
Checked here on a backend whose ring thread is parked (nothing but the test reaps), with the
C receive slot:

- C and Python reap alike: the same count, the same packets in the CQE order with their byte
  counts and bytes, every slot IDLE again, the slot table's counters moved alike, the CQ ring
  empty; the C reap runs no Python frame of the batch path (``_batch_locked``, ``process``).
- An interrupt at ``deliver``'s entry (the batch taken, nothing delivered): every receive
  completes once (``cuts.deliver_rest``), then it propagates; no lock left held.
- An interrupt in the wait for the backend's lock (another thread holds it): kept, the wait
  goes on, the batch is written whole and delivered, then it propagates.
- Every allocation of the reap up to ``deliver`` made to fail in turn (``nomem_sweep``; the
  delivery's own: ``test_fastslot.py``): each receive completes once, none is lost or doubled
  (a failed allocation before anything is written hands the batch to the general path; the
  CQEs stay in the ring until one takes them).
"""

from __future__ import annotations

import signal
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring import reaper as reaper_mod
from winaio._io import _accel
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio._kernel._threads import current_thread_state
from winaio.codes import NtStatus
from winaio.testing import (
    left_behind,
    nomem_sweep,
    python_frames,
    require_c_path,
    slots_for_test,
    wait_until,
)

OK, REASON = uring.probe_backend()
pytestmark = pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")

SUCCESS = int(NtStatus.STATUS_SUCCESS)
LONG = 5.0
#: The Python frames of the general batch path (none in the in-place C reap).
BATCH_PYTHON = {"_batch_locked", "process", "_reap_slot", "deliver_batch"}


class Interrupted(BaseException):
    """A KeyboardInterrupt stand-in (a BaseException, as a signal handler's)."""


@pytest.fixture(autouse=True)
def _need_c() -> None:
    require_c_path(_accel.BUILT and reaper_mod._C_DONE is not None)


@pytest.fixture
def backend() -> Iterator[uring.IoUringBackend]:
    """A backend without COOP_TASKRUN (a completion is in the CQ ring as soon as the data is
    there), its leaders' poke armed."""
    b = uring.IoUringBackend(64, coop=False)
    wait_until(lambda: not b._lead.closed, LONG, "the leaders' poke is armed")
    try:
        yield b
    finally:
        b.close()


def _at_least(ring: Any, n: int) -> bool:
    return bool(ring.cq_ready() >= n)


def data(i: int) -> bytes:
    """What socket ``i``'s peer sends (3 to 14 bytes: less than the receive's 16)."""
    return bytes([65 + i % 26]) * (i % 12 + 3)


class Batch:
    """``n`` sockets on ``backend`` bound to ``port`` (keys 0..n-1), each with a C slot
    receive pended and its data in the CQ ring, in socket order (socket ``i``'s ``data(i)``)."""

    def __init__(self, b: uring.IoUringBackend, port: CompletionPort, n: int) -> None:
        self.pairs: list[tuple[Socket, socket.socket]] = []
        for i in range(n):
            with socket.create_server(("127.0.0.1", 0)) as listener:
                peer = socket.create_connection(listener.getsockname(), timeout=LONG)
                conn, _ = listener.accept()
            conn.setblocking(False)
            s = Socket(conn.fileno(), overlapped=True, sock=conn, backend=b)
            s.associate(port, i)
            self.pairs.append((s, peer))
        self.ovs = [Overlapped() for _ in range(n)]
        self.bufs = [bytearray(16) for _ in range(n)]
        for (s, _), buf, ov in zip(self.pairs, self.bufs, self.ovs, strict=True):
            assert s.start_read(buf, ov) is False
        # (this thread may own the ring: its receives deferred to its next wait; submitted now)
        b._deferral.flush(current_thread_state())
        ring = b._ring
        for i, (_, peer) in enumerate(self.pairs):
            peer.sendall(data(i))
            wait_until(partial(_at_least, ring, i + 1), LONG, "the receive completes")
        assert ring.cq_ready() == n
        assert all(type(s._rslot).__name__ == "ReceiveSlot" for s, _ in self.pairs)

    def outcome(self, port: CompletionPort) -> dict[str, Any]:
        """The packets (in order), the bytes, the slots' states."""
        packets = []
        while (p := port.get(0)) is not None:
            packets.append((p.key, self.ovs.index(p.overlapped), p.status, p.bytes_transferred))
        return {
            "packets": packets,
            "bytes": [bytes(buf[: len(data(i))]) for i, buf in enumerate(self.bufs)],
            "states": [s._rslot.state for s, _ in self.pairs],
            "iosb": [(ov.status, ov.information) for ov in self.ovs],
        }

    def close(self) -> None:
        for s, peer in self.pairs:
            s.close()
            peer.close()


def expected(n: int) -> dict[str, Any]:
    return {
        "packets": [(i, i, SUCCESS, len(data(i))) for i in range(n)],
        "bytes": [data(i) for i in range(n)],
        "states": [0] * n,  # (IDLE)
        "iosb": [(SUCCESS, len(data(i))) for i in range(n)],
    }


def _run(b: uring.IoUringBackend, port: CompletionPort, n: int, reap: Callable[[], int]) -> Any:
    batch = Batch(b, port, n)
    try:
        slots = b._slots
        before = (slots.armed, slots.done)
        count = reap()
        moved = (before[0] - slots.armed, slots.done - before[1])
        return count, moved, b._ring.cq_ready(), batch.outcome(port)
    finally:
        batch.close()


@pytest.mark.parametrize("n", [1, 3, 64, 70])
def test_c_and_python_reap_a_batch_of_slot_cqes_alike(
    backend: uring.IoUringBackend, parked_port: Callable[[Any], CompletionPort], n: int
) -> None:
    """The in-place C reap and the Python ``Reaper.reap`` (the reference) of the same batch
    (one CQE; a few; the C=64 batch; past the inline array): the same count, the same packets
    in the CQE order, the same bytes, IOSBs and slot states, the counters moved alike, the ring
    left empty. The C one runs no Python frame of the batch path."""
    port = parked_port(backend)
    reaper = backend._reaper
    with slots_for_test("c"):
        py = _run(backend, port, n, lambda: reaper_mod._PY_REAP(reaper))
        names: set[str] = set()

        def c_reap() -> int:
            got: list[int] = []
            names.update(python_frames(lambda: got.append(reaper.reap())))
            return got[0]

        c = _run(backend, port, n, c_reap)
    assert py == c == (n, (n, n), 0, expected(n))
    assert names & BATCH_PYTHON == set()


def test_an_interrupt_at_delivers_entry_completes_each_receive_once(
    backend: uring.IoUringBackend,
    parked_port: Callable[[Any], CompletionPort],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``self.deliver`` cut at its entry (the batch taken off the ring, REAPED, nothing
    delivered): ``cuts.deliver_rest`` delivers every slot once, then the interrupt
    propagates; no lock is left held and nothing stays in the ring."""
    port = parked_port(backend)
    reaper = backend._reaper
    hits: list[int] = []

    def deliver(self: Any, finished: Any) -> None:
        hits.append(len(finished))
        raise Interrupted

    with slots_for_test("c"):
        batch = Batch(backend, port, 5)
        try:
            monkeypatch.setattr(reaper_mod.Reaper, "deliver", deliver)
            with pytest.raises(Interrupted):
                reaper.reap()
            monkeypatch.undo()
            assert hits == [5]
            assert backend._ring.cq_ready() == 0
            locks = {"the CQ lock": reaper.cq_lock, "the lock": backend._lock}
            assert left_behind(port, locks=locks) == []
            assert batch.outcome(port) == expected(5)
        finally:
            batch.close()


def test_an_interrupt_in_the_locks_wait_is_raised_after_the_batch_is_delivered(
    backend: uring.IoUringBackend, parked_port: Callable[[Any], CompletionPort]
) -> None:
    """Another thread holds the backend's lock; a signal handler raises in the reap's wait for
    it: the interrupt is kept, the wait goes on, and once the lock is free the batch is
    written whole and delivered, then the interrupt propagates."""
    port = parked_port(backend)
    reaper = backend._reaper
    main = threading.get_ident()
    held, done = threading.Event(), threading.Event()

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted

    def holder() -> None:
        with backend._lock:
            held.set()
            time.sleep(0.2)  # (the reap waits for the lock by now)
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.2)
        done.set()

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        with slots_for_test("c"):
            batch = Batch(backend, port, 4)
            try:
                t = threading.Thread(target=holder)
                t.start()
                assert held.wait(LONG)
                with pytest.raises(Interrupted):
                    reaper.reap()
                assert done.is_set()  # (it returned once the lock was free)
                t.join()
                assert backend._ring.cq_ready() == 0
                locks = {"the CQ lock": reaper.cq_lock, "the lock": backend._lock}
                assert left_behind(port, locks=locks) == []
                assert batch.outcome(port) == expected(4)
            finally:
                batch.close()
    finally:
        signal.signal(signal.SIGUSR1, old)


_NOMEM = textwrap.dedent(
    """
    import _testcapi, os, socket, sys, threading
    from winaio._backends import uring
    from winaio._backends.uring import reaper
    from winaio._io._overlapped import Overlapped
    from winaio._io._port import CompletionPort
    from winaio._io._sockets import Socket
    from winaio._kernel._threads import current_thread_state
    from winaio.testing import call_failing, left_behind, slots_for_test, wait_until

    b = uring.IoUringBackend(64, coop=False)
    wait_until(lambda: not b._lead.closed, 5.0, "the poke")
    gate, inside = threading.Event(), threading.Event()
    real = os.eventfd_read

    def parked(fd):  # (the ring thread held at the top of its loop: nothing else reaps)
        if threading.current_thread() is b._ring_thread.thread:
            inside.set()
            gate.wait()
        return real(fd)

    os.eventfd_read = parked
    os.eventfd_write(b._efd, 1)
    assert inside.wait(5.0)
    # The failures swept are the reap's own (the in-place path, and the general one it hands
    # a batch to): from ``deliver`` on (the delivery's own sweeps: tests/io/test_fastslot.py)
    # nothing fails.
    real_deliver = reaper.Reaper.deliver

    def deliver(self, finished):
        _testcapi.remove_mem_hooks()
        return real_deliver(self, finished)

    port = CompletionPort()
    N = 3
    pairs = []
    for i in range(N):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            peer = socket.create_connection(listener.getsockname(), timeout=5.0)
            conn, _ = listener.accept()
        conn.setblocking(False)
        s = Socket(conn.fileno(), overlapped=True, sock=conn, backend=b)
        s.associate(port, i)
        pairs.append((s, peer))
    bad = set()
    # (an entry in the in-flight table, never completed: the path looks each user_data up,
    # an int made for it; the first rounds unswept: the CQ head past the small ints, its int
    # made too)
    DUMMY = (1 << 62) + 5
    b._table[DUMMY] = ("never", None)
    real_batch = reaper.Reaper._batch_locked
    general = []  # the sweep's runs that went the general way (a failure in the in-place one)

    def batch_locked(self, cqes):
        general.append(len(cqes))
        return real_batch(self, cqes)

    reaper.Reaper._batch_locked = batch_locked
    with slots_for_test("c"):  # (it installs the C methods: the wrapper after it)
        reaper.Reaper.deliver = deliver
        for k in [None] * 90 + list(range(int(sys.argv[1]))):
            ovs = [Overlapped() for _ in range(N)]
            bufs = [bytearray(1000) for _ in range(N)]
            for (s, _), buf, ov in zip(pairs, bufs, ovs):
                assert s.start_read(buf, ov) is False
            b._deferral.flush(current_thread_state())
            for i, (_, peer) in enumerate(pairs):
                peer.sendall(bytes([65 + i]) * (300 + i))
                wait_until(lambda i=i: b._ring.cq_ready() >= i + 1, 5.0, "the receive")
            before = len(general)
            call_failing(k, b._reaper.reap)  # the k-th allocation from here fails
            if k is None and len(general) != before:
                bad.add("a batch of plain slot CQEs not reaped in place")
            bad.update(left_behind(port, locks={"cq": b._reaper.cq_lock, "lock": b._lock}))
            got = {}
            for _ in range(N):
                p = port.get(2.0)
                if p is None:
                    bad.add(f"a receive never completed (k={k})")
                    break
                i = ovs.index(p.overlapped)
                if i in got:
                    bad.add(f"receive {i} completed twice (k={k})")
                got[i] = p.bytes_transferred
            if port.get(0) is not None:
                bad.add(f"a receive completed twice (k={k})")
            for i, n in got.items():
                if n != 300 + i or bytes(bufs[i][:n]) != bytes([65 + i]) * n:
                    bad.add(f"receive {i}: {n} bytes (k={k})")
            if b._ring.cq_ready():
                bad.add(f"CQEs left in the ring (k={k})")
    del b._table[DUMMY]
    if len(general) < 5:  # (each CQE's key, the list, the head's int)
        bad.add(f"{len(general)} failed allocations handed to the general path, not 5")
    for s, peer in pairs:
        s.close()
        peer.close()
    gate.set()
    port.close()
    b.close()
    print(sorted(bad))
    """
)


def test_a_failed_allocation_in_the_in_place_reap_loses_no_receive() -> None:
    """Every allocation of ``Reaper.reap`` over a batch of three plain slot CQEs (byte counts
    past the small ints) up to its ``deliver`` made to fail in turn, in a child under the debug
    allocator: each receive completes once with its bytes (the in-place path hands the batch,
    untouched, to the general one; a failure there leaves the CQEs for the next wait), no lock
    is left held, nothing stays in the ring."""
    nomem_sweep(_NOMEM, "60")


def test_a_port_method_replaced_after_the_c_path_cached_the_class_is_called(
    backend: uring.IoUringBackend,
    parked_port: Callable[[Any], CompletionPort],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The C post checks the port class's ``_post_locked`` (and ``_posted_locked``) once per
    version of the class (``_fastpost.c`` ``port_methods_ours``): ``_post_locked`` replaced
    on the class after batches were delivered (the check cached) is called for each packet
    of the next batch, the packets the same; put back, the C post again."""
    port = parked_port(backend)
    reaper = backend._reaper
    calls: list[int] = []
    method = "_post_locked"
    real = getattr(CompletionPort, method)

    def recording(self: Any, *args: Any) -> Any:
        calls.append(1)
        return real(self, *args)

    with slots_for_test("c"):
        for _ in range(3):  # (the check cached)
            assert _run(backend, port, 2, reaper.reap) == (2, (2, 2), 0, expected(2))
        assert calls == []
        monkeypatch.setattr(CompletionPort, method, recording)
        assert _run(backend, port, 2, reaper.reap) == (2, (2, 2), 0, expected(2))
        assert len(calls) == 2
        monkeypatch.undo()
        calls.clear()
        assert _run(backend, port, 2, reaper.reap) == (2, (2, 2), 0, expected(2))
        assert calls == []
