"""Failed allocations in the io_uring backend (robust, 2026-12-06): no request left registered
and never sent, no backend taken down.

- ``IoUringBackend.submit`` (the Python method, the reference and the fallback of the C one):
  the request is registered by its issuer before ``submit`` runs (``_io._issue``), so every
  failure inside it ends with the request sent (in the kernel, completed once), completed at
  once with STATUS_INSUFFICIENT_RESOURCES (ERROR_NO_SYSTEM_RESOURCES), or raised with nothing
  taken (no counter moved, no entry, no SQE) - and then the issuer completes it with that
  status (``_hand_to_backend``: a request never left registered and never sent, which its file's
  close would wait for for ever). Swept (``nomem_sweep``): a FILE read on an idle ring (QD1:
  ``submit_one_locked``), one with another request in flight (``submit_locked``), one
  behind a backlog (``_submit_slow``).
- The ring thread: a failed allocation in its loop (a MemoryError, or the RuntimeError "can't
  allocate lock" of a lock whose semaphore could not be allocated) runs the round again after
  a back-off (the completions it had collected kept), never takes the backend down; its
  backlog drain takes back an SQE whose entry could not be made.
"""

from __future__ import annotations

import os
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring.backlog import NO_RESOURCES
from winaio._backends.uring.common import B_FILE, UD_CANCEL, InFlight
from winaio._io import _accel, _disk
from winaio._io._disk import DiskFile
from winaio._io._issue import register_receive
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio.codes import WinError, ntstatus_to_winerror
from winaio.testing import (
    nomem_sweep,
    registered_read,
    require_c_path,
    ring_thread_asleep,
    wait_until,
)

OK, REASON = uring.probe_backend()
pytestmark = pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")

BLOCK = 4096
LONG = 5.0


@pytest.mark.parametrize("c", [True, False], ids=["c", "python"])
def test_a_request_the_backend_has_no_memory_for_completes_with_that_error(
    disk: DiskFile,
    port: CompletionPort,
    aligned: Any,
    monkeypatch: pytest.MonkeyPatch,
    c: bool,
) -> None:
    """# spec: win32 #40. A backend ``submit`` that raises MemoryError (having taken nothing):
    ReadFile still pends and its completion reports ERROR_NO_SYSTEM_RESOURCES; the request is
    not left registered (the file closes), from the C issue and the Python one alike."""
    if c:
        require_c_path(_disk.accelerator_available())
    before = _accel.use(c)
    try:

        def no_memory(op: object) -> None:
            raise MemoryError

        monkeypatch.setattr(disk.backend, "submit", no_memory)
        ov = Overlapped(BLOCK)
        assert disk.start_read(aligned(BLOCK), ov) is False
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov
        assert packet.status == NO_RESOURCES == ov.status
        assert ntstatus_to_winerror(packet.status) == WinError.ERROR_NO_SYSTEM_RESOURCES
        assert disk.pending_requests == 0
    finally:
        _accel.use(before)


def test_a_receive_the_kernel_took_stays_the_backends_after_a_failure(
    armed_uring: uring.IoUringBackend,
    socket_pair: Callable[..., tuple[Socket, socket.socket]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A MemoryError after the enter that put a receive's RECV into the kernel (recording the
    issuer as its submitter, ``Migration.own_locked``): the receive is the backend's
    (``Receives._take_back_locked`` finds the SQE consumed) - ``submit`` returns, nothing is
    raised for a receive that will complete, and it completes once with the peer's bytes.
    (Before, the MemoryError went out of ``submit`` and its issuer would have failed a receive
    the kernel had.) The sweep does not reach this point: the record makes no allocation
    there."""
    backend = armed_uring
    sock, peer = socket_pair(backend)
    port = CompletionPort()
    try:
        sock.associate(port, 7)
        buf = bytearray(8)
        ov = Overlapped()
        op = register_receive(sock, ov, memoryview(buf))
        failures = [1]
        migration = type(backend._sq._migration)
        real = migration.own_locked

        def failing(self: Any, *args: Any) -> None:
            if failures[0]:
                failures[0] -= 1
                raise MemoryError
            real(self, *args)

        monkeypatch.setattr(migration, "own_locked", failing)
        with backend._lock:
            if backend._lead.owner is not None:
                backend._lead.disown_locked()  # (an issuer that does not own: it submits)
        backend.submit(op)
        assert failures == [0]  # (the failure came after the enter)
        peer.sendall(b"k")
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov and packet.status == 0
        assert bytes(buf[:1]) == b"k" and port.get(0.02) is None
        wait_until(lambda: not sock.pending_requests and not backend._streams.lines, LONG)
    finally:
        port.close()


_RING_THREAD_FAILS = textwrap.dedent(
    """
    import _testcapi, _thread, os, sys, threading
    from winaio._backends import uring
    from winaio._backends.uring import ringthread
    from winaio._backends.uring.common import B_FILE, CANCELLED
    from winaio._io._overlapped import Overlapped
    from winaio.testing import DiskRig, registered_read, ring_thread_asleep

    backend = uring.IoUringBackend()
    rig = DiskRig(backend, sys.argv[1])
    disk, port, view = rig.disk, rig.port, rig.view
    rt = backend._ring_thread
    bad = []

    def failure():
        if sys.argv[2] == "memory":
            return MemoryError()
        # CPython's own failure: a lock whose semaphore could not be allocated (the second
        # allocation of ``_thread.allocate_lock``, after the object's: found, not assumed).
        for k in range(4):
            _testcapi.set_nomemory(k, k + 1)
            try:
                _thread.allocate_lock()
            except (MemoryError, RuntimeError) as exc:
                failed = exc
            else:
                failed = None
            finally:
                _testcapi.remove_mem_hooks()
            if isinstance(failed, RuntimeError):
                return failed
        raise AssertionError("no failed lock allocation raised RuntimeError")

    failures = [2]
    real = ringthread._monotonic

    def failing():
        if threading.current_thread() is rt.thread and failures[0]:
            failures[0] -= 1
            raise failure()
        return real()

    assert ring_thread_asleep(backend)
    op = registered_read(disk, view, 0)
    op.cancel_requested = True  # (the drain completes it cancelled, into the round's list)
    ringthread._monotonic = failing
    with backend._lock:
        backend._submitted += 1
        backend._backlog.add_locked(B_FILE, op, None)
        wake = rt.wake_locked()
    assert wake
    os.eventfd_write(backend._efd, 1)
    packet = port.get(5.0)
    if packet is None or packet.overlapped is not op.overlapped or packet.status != CANCELLED:
        bad.append(f"the cancelled read's completion: {packet}")
    if failures != [0] or rt.retries != 2 or not rt.thread.is_alive() or backend._crashed:
        bad.append(f"the ring thread: {failures} {rt.retries} {rt.thread.is_alive()}")
    ringthread._monotonic = real
    ov = Overlapped(4096)
    if disk.start_read(view, ov) is not False:
        bad.append("a read after the failures did not pend")
    packet = port.get(5.0)
    if packet is None or packet.overlapped is not ov or packet.status:
        bad.append(f"a read after the failures: {packet}")
    del op, view
    bad += rig.close()
    print(sorted(bad))
    """
)


@pytest.mark.parametrize("failure", ["memory", "lock"])
def test_the_ring_thread_runs_a_round_again_after_a_failed_allocation(
    tmp_path: Path, failure: str
) -> None:
    """A failed allocation in the ring thread's round (after its backlog drain collected a
    completion: a cancelled request's) - a MemoryError, or a lock that could not be allocated
    (CPython raises RuntimeError "can't allocate lock", not MemoryError: ``_thread.allocate_lock``,
    a ``Condition`` wait's waiter) - does not take the backend down: the round runs again after
    a back-off, twice, and delivers what the failed one had collected; the backend is not
    marked crashed and takes new requests. (Before, the RuntimeError took the ring thread down
    and the cancelled read never completed.) In a child: the lock's failure is CPython's own,
    made with ``_testcapi.set_nomemory``."""
    try:
        os.close(os.open(tmp_path / "probe", os.O_CREAT | os.O_RDONLY | os.O_DIRECT))
    except OSError as exc:
        pytest.skip(f"no O_DIRECT here: {exc}")
    nomem_sweep(_RING_THREAD_FAILS, str(tmp_path), failure, timeout=60)


def test_the_backlog_drain_takes_back_an_sqe_it_could_not_enter(
    armed_uring: uring.IoUringBackend, disk: DiskFile, port: CompletionPort, aligned: Any
) -> None:
    """A MemoryError making the entry of a backlogged read the drain just prepared: its SQE
    becomes a NOP before the error goes on (no read in the kernel without the entry that
    keeps its buffer alive); the backlog entry stays first, prepared again by the next
    round."""
    backend = armed_uring
    assert ring_thread_asleep(backend)
    op = registered_read(disk, aligned(BLOCK), 0)

    class FailingTable(InFlight):
        def __setitem__(self, ud: int, entry: Any) -> None:
            raise MemoryError

    table = FailingTable()
    table.next_ud = backend._table.next_ud
    ring = backend._ring
    with backend._lock:
        backend._submitted += 1
        backlog = backend._backlog
        backlog.add_locked(B_FILE, op, None)
        tail = ring._sq_tail
        with pytest.raises(MemoryError):
            backlog.drain_locked(ring, table, backend._streams, lambda: False, [], [])
        assert ring._sq_tail == tail + 1  # (prepared, not submitted)
        sqe = memoryview(ring._sqes)[(tail & ring._sq_mask) << 6 :][:64]
        assert sqe[0] == 0 and int.from_bytes(sqe[32:40], "little") == UD_CANCEL  # a NOP
        assert backlog.entries[0][1] is op and not table
        wake = backend._ring_thread.wake_locked()
    if wake:
        os.eventfd_write(backend._efd, 1)  # (the real drain submits the NOP and the read)
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is op.overlapped and packet.status == 0
    assert port.get(0.05) is None
    wait_until(lambda: disk.pending_requests == 0, LONG, "delivered")


_NOMEM = textwrap.dedent(
    """
    import sys
    from winaio._backends import uring
    from winaio._backends.uring.common import B_CANCEL
    from winaio._io import _accel
    from winaio.codes import NtStatus
    from winaio.testing import DiskRig, RingThreadGate, call_failing, left_behind
    from winaio.testing import registered_read, ring_thread_asleep, wait_until

    _accel.use(False)  # the Python submit, the reference
    shape = sys.argv[3]
    backend = uring.IoUringBackend()
    rig = DiskRig(backend, sys.argv[2])  # (a first read: the thread's state, its parker bound)
    disk, port, view = rig.disk, rig.port, rig.view
    held = None
    if shape == "busy":  # another request in flight: the ring is not idle
        held = backend._table.next_ud
        with backend._lock:
            backend._table[held] = (None, None)  # (a stand-in entry, never in the kernel)
    rig.past_small_ints()  # (each new counter value an allocation)
    NO_RESOURCES = int(NtStatus.STATUS_INSUFFICIENT_RESOURCES)

    # While a call is swept, the ring thread (woken by a CQE, or by the call) waits at the
    # top of its round, before it reaps: the reaper's own cuts are not what is swept here.
    gate = RingThreadGate(backend)

    def state():
        return (backend._submitted, backend._table.next_ud, len(backend._table),
                backend._ring._sq_tail)

    bad = set()
    for k in range(int(sys.argv[1])):
        op = registered_read(disk, view, 4096 * (k % 16))
        # (the failing allocation is this thread's; with a request in flight the ring
        # thread watches the ring's owner with a timeout: then it may take one itself,
        # which it survives, the sweep missing that k)
        ring_thread_asleep(backend, 0.05 if shape == "busy" else 2.0)
        if shape == "backlog":  # (a cancel of no request: the ring thread submits it)
            with backend._lock:
                backend._backlog.entries.append((B_CANCEL, None, 1))
        before = state()
        with gate:
            raised = call_failing(k, backend.submit, op)
            after = state()  # (before the ring thread, held at its gate, moves it)
        if shape == "backlog":  # (the ring thread takes the lock while it submits it)
            backend._ring_thread.wake()
            wait_until(lambda: not backend._backlog.entries, 5.0, "the backlog submitted")
            ring_thread_asleep(backend)
        bad.update(left_behind(port, locks={"the backend's lock": backend._lock}))
        if raised is not None:  # nothing taken, or it would complete twice
            if after != before or any(e[0] is op for e in backend._table.values()):
                bad.add(f"raised with the request taken: {before} -> {after}")
            op.complete(NO_RESOURCES, 0)  # (what the issuer does then: ``_hand_to_backend``)
        packet = port.get(5.0)
        if packet is None or packet.overlapped is not op.overlapped:
            bad.add("the request never completed")
        elif packet.status not in (0, NO_RESOURCES):
            bad.add(f"completed with {packet.status:#x}")
        elif port.get(0.02) is not None:
            bad.add("a request completed twice")
        if disk.pending_requests or len(backend._table) != (held is not None):
            bad.add(f"a request left behind ({disk.pending_requests}, {len(backend._table)})")
            break
        if backend._ring.sq_ready() and not backend._backlog.stuck:
            with backend._lock:  # (a withdrawn SQE, a NOP, waits for the next enter)
                backend._sq.submit_locked(None)
        del raised, op
    if held is not None:
        with backend._lock:
            del backend._table[held]
    del view
    bad.update(rig.close())
    print(sorted(bad))
    """
)


@pytest.mark.parametrize("shape", ["idle", "busy", "backlog"])
def test_a_failed_allocation_in_the_python_submit_sends_or_fails_the_request(
    tmp_path: Path, shape: str
) -> None:
    """Every allocation of the Python ``submit`` (and of what it calls) made to fail in turn,
    under the debug allocator: no MemoryError out of it with the request registered; the read
    completes exactly once, with its data or STATUS_INSUFFICIENT_RESOURCES; no lock held, no
    entry or SQE left behind."""
    try:
        os.close(os.open(tmp_path / "probe", os.O_CREAT | os.O_RDONLY | os.O_DIRECT))
    except OSError as exc:
        pytest.skip(f"no O_DIRECT here: {exc}")
    nomem_sweep(_NOMEM, "40", str(tmp_path), shape)


_NOMEM_RECEIVE = textwrap.dedent(
    """
    import gc, sys
    from winaio._backends import uring
    from winaio._io import _accel
    from winaio._io._issue import register_receive
    from winaio._io._overlapped import Overlapped
    from winaio._io._port import CompletionPort
    from winaio.codes import NtStatus
    from winaio.testing import RingThreadGate, call_failing, connected_pair, left_behind
    from winaio.testing import ring_thread_asleep

    _accel.use(sys.argv[2] == "c")  # (the C submit hands a receive to the Python one)
    _accel.use_slots("off")  # (the requests' path: a slot is not a request)
    shape = sys.argv[3]
    backend = uring.IoUringBackend()
    port = CompletionPort()
    s, peer = connected_pair(backend, port)
    buf, ov = bytearray(8), Overlapped(0)  # (warm: the thread's state, its parker, the lead)
    assert s.start_read(buf, ov) is False
    peer.sendall(b"w")
    assert port.get(5.0) is not None
    receives, table, lines = backend._receives, backend._table, backend._streams.lines
    lead = backend._lead
    # Counters past the small ints' cache, so that each new value is an allocation.
    table.next_ud += 1 << 32
    receives.submitted += 1 << 32
    backend._submitted += 1 << 32
    backend._sq.enters += 1 << 32
    NO_RESOURCES = int(NtStatus.STATUS_INSUFFICIENT_RESOURCES)

    gate = RingThreadGate(backend)  # (the ring thread held out of a swept call)

    def state():
        return (receives.submitted, backend._submitted, table.next_ud, len(table),
                backend._ring._sq_tail, len(lines), len(backend._deferral.unsubmitted),
                backend._deferral.hinted)

    bad = set()
    for k in range(int(sys.argv[1])):
        buf, ov = bytearray(8), Overlapped(0)
        view = memoryview(buf)
        op = register_receive(s, ov, view)
        ring_thread_asleep(backend)
        with backend._lock:
            if shape == "owner" and lead.owner is None:  # its RECV deferred to its next wait
                backend._ring.cq_eventfd_toggle(False)  # (as its wait would: enter_or_follow)
                lead.owner = op.issuer.parker
            elif shape == "unowned" and lead.owner is not None:  # submitted at once
                lead.disown_locked()
        before = state()
        with gate:
            raised = call_failing(k, backend.submit, op)
            after = state()  # (before the ring thread, held at its gate, moves it)
        bad.update(left_behind(port, locks={"the backend's lock": backend._lock}))
        if raised is not None:  # nothing taken, or it would complete twice
            if after != before or any(e[0] is op for e in table.values()):
                bad.add(f"raised with the receive taken: {before} -> {after}")
            op.complete(NO_RESOURCES, 0)  # (what the issuer does then: ``_hand_to_backend``)
        if not op.done:
            peer.sendall(b"k")
        packet = port.get(5.0)
        if packet is None or packet.overlapped is not ov:
            bad.add("the receive never completed")
        elif packet.status == 0:
            if bytes(buf[:1]) != b"k":
                bad.add(f"completed with {bytes(buf)!r}, not the peer's byte")
        elif packet.status != NO_RESOURCES:
            bad.add(f"completed with {packet.status:#x}")
        if port.get(0.02) is not None:
            bad.add("a receive completed twice")
        if s.pending_requests or table or lines or backend._deferral.unsubmitted:
            bad.add(f"a receive left behind ({s.pending_requests} {len(table)} {len(lines)})")
            break
        if backend._ring.sq_ready() and not backend._backlog.stuck:
            with backend._lock:  # (a withdrawn SQE, a NOP, waits for the next enter)
                backend._sq.submit_locked(None)
        del raised, op, view
        gc.collect()  # (a failure's traceback in a cycle holds the frames that held the view)
        try:
            buf.extend(b"x")
        except BufferError:
            bad.add("the buffer left exported")
    backend._submitted -= 1 << 32  # (its close counts what is still in flight with it)
    receives.submitted -= 1 << 32
    backend._sq.enters -= 1 << 32
    s.close()
    peer.close()
    port.close()
    backend.close()
    print(sorted(bad))
    """
)


@pytest.mark.parametrize("shape", ["owner", "unowned"])
@pytest.mark.parametrize("c", [True, False], ids=["c", "python"])
def test_a_failed_allocation_in_the_receive_submit_sends_or_fails_the_receive(
    shape: str, c: bool
) -> None:
    """# spec: win32 #40. Every allocation of the backend's ``submit`` of a socket receive
    (``Receives.submit``: the one-hold pended receive, ``_pend_locked``; the C ``submit``
    hands it to the Python one) made to fail in turn, under the debug allocator, from the
    ring's owner (its RECV deferred to its next wait) and with the ring unowned (its RECV
    submitted at once): no MemoryError out of it with the receive taken (a counter, an
    entry, a line, an SQE); the receive completes exactly once, with the peer's byte or
    STATUS_INSUFFICIENT_RESOURCES; no lock held, no line or SQE left behind, no export of
    the buffer left."""
    if c:
        require_c_path(_disk.accelerator_available())
    nomem_sweep(_NOMEM_RECEIVE, "40", "c" if c else "python", shape)
