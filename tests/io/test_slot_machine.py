"""The sockets' receive slots (``_io/_slot.py``, ``_backends/uring/slots.py``;
docs/plans/receive-slot.md): the plumbing every consumer of the per-receive state learns.

Step 1 (no slot armed by the library yet): a CQE whose user_data has ``SLOT_TAG`` reaches the
Python slot path from the C batch too (``_fastprocess.c`` hands it over, never skips it as a
cancel's), a batch with a slot item is delivered by the Python ``deliver_batch`` from every C
delivery (the slot's own steps: IOSB, F, packet, bookkeeping), ``Migration.own_locked`` never
records a slot's user_data, and the backend counts slot incarnations in ``_in_flight`` (a port
thread whose only work is slot receives must lead the ring) and in ``statistics``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio
from winaio._backends.uring import IoUringBackend
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.common import SLOT_TAG, InFlight, slot_ud
from winaio._backends.uring.migration import Migration
from winaio._backends.uring.slots import SlotTable, add_locked
from winaio._backends.uring.streams import StreamLines
from winaio._io import _dispatch, _slot
from winaio._io._files import FileObject
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._kernel._threads import current_thread_state

C_DONE = reaper_mod._C_DONE


def _need_c() -> None:
    if C_DONE is None:
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            pytest.fail("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
        pytest.skip("the C accelerator (winaio._io._fastio) was not built")


def _reaper(slots: SlotTable, table: InFlight | None = None) -> reaper_mod.Reaper:
    def never(*args: object) -> None:
        raise AssertionError(f"unexpected call {args!r}")

    streams = StreamLines(threading.Lock(), never)
    return reaper_mod.Reaper(
        None,  # type: ignore[arg-type]  # (no reap here: process and deliver only)
        InFlight() if table is None else table,
        streams,
        Migration(),
        never,
        never,
        lambda: None,
        slots,
    )


def _armed_slot(slots: SlotTable, gen: int) -> Any:
    slot = _slot.ReceiveSlot(slots)
    add_locked(slots, slot)
    slot.gen = gen
    slot.state = _slot.ARMED
    slot.ud = slot_ud(gen, slot.index)
    slots.armed += 1
    slots.submitted += 1
    return slot


PROCESSES: dict[str, Callable[[reaper_mod.Reaper, Any, Any], None]] = {
    "python": reaper_mod._PY_PROCESS,
    "c": lambda reaper, cqes, finished: C_DONE[2](reaper, cqes, finished),  # type: ignore[index]
}


@pytest.mark.parametrize("impl", ["python", "c"])
def test_a_plain_slot_cqe_becomes_a_reaped_slot_in_finished(impl: str) -> None:
    if impl == "c":
        _need_c()
    slots = SlotTable()
    _armed_slot(slots, 0)  # (index 0: another slot, idle)
    slots.items[0].state = _slot.IDLE
    slots.armed = 0
    slot = _armed_slot(slots, 5)
    reaper = _reaper(slots)
    finished: list[Any] = []
    PROCESSES[impl](reaper, [(slot_ud(5, slot.index), 7, 0)], finished)
    assert finished == [slot]
    assert (slot.state, slot.res, slot.gen) == (_slot.REAPED, 7, 5)
    assert (slots.armed, slots.done, reaper.done, reaper.cancelled) == (0, 1, 0, 0)


@pytest.mark.parametrize("impl", ["python", "c"])
def test_a_slot_cqe_amid_requests_is_not_dropped(impl: str) -> None:
    """The C check loop treated a user_data absent from the table as a cancel's (skipped):
    a slot's incarnation must reach the slot path instead, in a batch with requests."""
    if impl == "c":
        _need_c()
    slots = SlotTable()
    slot = _armed_slot(slots, 2)
    table = InFlight()
    reaper = _reaper(slots, table)

    class Op:
        complete = reaper_mod._PLAIN_COMPLETE

    op = Op()
    table[16] = (op, None)  # type: ignore[assignment]  # a FILE request's (keepalive None)
    finished: list[Any] = []
    cqes = [(16, 4, 0), (2, -2, 0), (slot_ud(2, slot.index), 9, 0)]  # (2: UD_CANCEL's -ENOENT)
    PROCESSES[impl](reaper, cqes, finished)
    assert finished == [(op, 0, 4), slot]
    assert slot.state == _slot.REAPED and slot.res == 9
    assert (reaper.done, slots.done, slots.armed) == (1, 1, 0)
    assert not table


def test_a_stale_slot_cqe_is_reported_not_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    slots = SlotTable()
    slot = _armed_slot(slots, 4)
    reaper = _reaper(slots)
    reports: list[str] = []
    monkeypatch.setattr(reaper_mod, "report", lambda what, exc=None: reports.append(what))
    finished: list[Any] = []
    reaper_mod._PY_PROCESS(reaper, [(slot_ud(3, slot.index), 9, 0)], finished)
    assert finished == [] and slot.state == _slot.ARMED
    assert len(reports) == 1


@pytest.fixture
def port_socket() -> Iterator[tuple[FileObject, CompletionPort, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    file = FileObject(a.detach(), overlapped=True, sock=None)
    port = CompletionPort()
    file.associate(port, 77)
    try:
        yield file, port, b
    finally:
        file.close()
        port.close()
        b.close()


def _reaped(file: FileObject, gen: int, res: int) -> tuple[Any, Overlapped, bytearray]:
    slots = SlotTable()
    slot = _armed_slot(slots, gen)
    memory = bytearray(16)
    ov = Overlapped()
    slot.file, slot.overlapped, slot.issuer = file, ov, current_thread_state()
    slot.view = memoryview(memory)
    slot.pin()
    file.stream_in += 1
    slot.state, slot.res = _slot.REAPED, res
    slots.armed -= 1
    return slot, ov, memory


@pytest.mark.parametrize("impl", ["python", "c"])
def test_every_delivery_gives_a_slot_item_its_own_steps(
    impl: str, port_socket: tuple[FileObject, CompletionPort, socket.socket]
) -> None:
    """``Reaper.deliver`` (C: ``dn_reaper_deliver``) and ``deliver_batch`` (C:
    ``dn_deliver_batch``) hand a batch with a slot item to the Python function, which gives it
    deliver_batch's steps: IOSB, F, the packet; then the receive is no longer counted, the
    slot is IDLE at the next generation, its references and its pin are gone."""
    if impl == "c":
        _need_c()
    file, port, _ = port_socket
    for deliver in ("reaper", "batch"):
        slot, ov, memory = _reaped(file, 6, 5)
        file._signaled = False
        reaper = _reaper(SlotTable())
        if deliver == "reaper":
            if impl == "c":
                C_DONE[5](reaper, [slot])  # type: ignore[index]
            else:
                reaper_mod._PY_DELIVER_BATCHES(reaper, [slot])
        else:
            batch_fn = C_DONE[0] if impl == "c" else _dispatch.py_deliver_batch  # type: ignore[index]
            assert batch_fn([slot]) == []
        assert (ov.status, ov.information) == (0, 5)
        assert file._signaled and file.stream_in == 0
        packet = port.get(0)
        assert packet is not None and packet.key == 77 and packet.overlapped is ov
        assert (packet.status, packet.bytes_transferred) == (0, 5)
        assert (slot.state, slot.gen, slot.res) == (_slot.IDLE, 7, 0)
        assert slot.file is slot.overlapped is slot.view is slot.issuer is slot.op is None
        assert not slot.pinned
        memory.extend(b"x")  # no export left: resizable again
        assert port.get(0) is None


def test_own_locked_never_records_a_slot_user_data() -> None:
    migration = Migration()
    ts = current_thread_state()
    migration.own_locked(ts, [17, SLOT_TAG | 3, 18, slot_ud(9, 1)], InFlight())
    assert migration.owned[ts] == {17, 18}


def test_the_backend_counts_slot_incarnations_in_flight_and_in_statistics() -> None:
    backend = IoUringBackend(8)
    try:
        before = backend.statistics()
        assert backend._in_flight() == 0
        backend._slots.armed += 1
        backend._slots.submitted += 1
        assert backend._in_flight() == 1  # a leader leads the ring rather than park
        stats = backend.statistics()
        assert stats.submitted == before.submitted + 1 and stats.in_flight == 1
        with backend._lock:
            assert not backend._settled_locked()
        backend._slots.armed -= 1
        backend._slots.done += 1
        assert backend._in_flight() == 0
        assert backend.statistics().in_flight == 0
        with backend._lock:
            assert backend._settled_locked()
    finally:
        backend.close()


def test_the_slot_state_numbers_are_the_c_types() -> None:
    fastio: Any = getattr(winaio._io, "_fastio", None)
    if fastio is None or not hasattr(fastio, "SLOT_IDLE"):
        pytest.skip("no C receive slot in this build")
    for name in ("IDLE", "ARMING", "ARMED", "REAPED", "DELIVERING", "DEMOTING_A", "DEMOTING_K"):
        assert getattr(fastio, f"SLOT_{name}") == getattr(_slot, name)
