"""The C ReceiveSlot and SlotTable types (``_io/_fastslot.c``; docs/plans/receive-slot.md §2).

- Every field is a member with the plan's name, readable and writable from Python (the
  reference functions of the Python twin write them); object members start as None, ``index``
  as 2**32-1 (no index yet); the state constants have the plan's values.
- ``pin()`` exports the slot's view (writable, C-contiguous): while pinned, a bytearray cannot
  be resized and the memoryview cannot be released; after ``unpin()`` both can. A read-only
  or strided buffer is refused with nothing pinned; a second ``pin()`` is refused.
- ``pending()`` counts ARMING/ARMED/REAPED/DELIVERING without a demoted op; ``user_data``
  is the plan's encoding.
- References: no leak over many pin/unpin incarnations; a slot <-> table <-> socket cycle is
  collected by the GC (the slot's export released with it).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import socket
import struct
import sys
import textwrap
import threading
import time
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio._backends import uring
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.common import InFlight
from winaio._backends.uring.migration import Migration
from winaio._backends.uring.slots import settle_locked
from winaio._backends.uring.streams import StreamLines
from winaio._io import _accel, _dispatch
from winaio._io._files import FileObject
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPacket, CompletionPort
from winaio._io._slot import ReceiveSlot, demote_locked
from winaio._io._sockets import Socket
from winaio._io._stream_ops import new_stream_read
from winaio._kernel._dispatcher import LOCK, ThreadState, WaitBlock, wake_waiters
from winaio._kernel._threads import current_thread_state
from winaio.testing import (
    SLOT_TAG,
    HookedLock,
    close_files,
    nomem_sweep,
    null_file,
    pinned_slot,
    python_frames,
    require_c_path,
    slots_for_test,
    waiting_on,
)

try:
    from winaio._io import _fastio
except ImportError:  # (not built: the fixture below skips, or fails under REQUIRE_ACCEL)
    _fastio = None  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _need_c() -> None:
    require_c_path(_accel.BUILT and reaper_mod._C_DONE is not None)


STATES = {
    "SLOT_IDLE": 0,
    "SLOT_ARMING": 1,
    "SLOT_ARMED": 2,
    "SLOT_REAPED": 3,
    "SLOT_DELIVERING": 4,
    "SLOT_DEMOTING_A": 5,
    "SLOT_DEMOTING_K": 6,
    "SLOT_DEAD": 7,
}
OBJECTS = ("file", "overlapped", "issuer", "view", "ud", "op", "table")


class Interrupted(BaseException):
    """A KeyboardInterrupt stand-in (a BaseException, as a signal handler's)."""


@contextlib.contextmanager
def _entry_interrupt(func: Callable[..., Any]) -> Iterator[list[int]]:
    """The next call of the Python function ``func`` on this thread raises
    :class:`Interrupted` at its entry, before its first statement: where a signal handler
    raises when the signal arrived while C code ran. Yields the list of hits."""
    code = func.__code__
    hits: list[int] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code and not hits:
            hits.append(1)
            raise Interrupted

    sys.setprofile(profile)
    try:
        yield hits
    finally:
        sys.setprofile(None)


class PostingPort(CompletionPort):
    """A port whose own ``_post_locked`` (Python) records the packets."""

    def __init__(self, concurrency: int = 0) -> None:
        super().__init__(concurrency)
        self.posted: list[CompletionPacket] = []

    def _post_locked(self, key: Any, overlapped: Any, status: int, information: int) -> None:
        self.posted.append(CompletionPacket(key, overlapped, status, information))


def _slot(table: Any = None) -> Any:
    assert _fastio is not None
    return _fastio.ReceiveSlot(table)


def test_the_state_constants_have_the_plans_values() -> None:
    assert {name: getattr(_fastio, name) for name in STATES} == STATES


def test_a_new_slot_is_idle_without_an_index_and_its_objects_are_none() -> None:
    table = _fastio.SlotTable()
    s = _slot(table)
    assert (s.index, s.gen, s.state, s.eligible_mode, s.res) == (2**32 - 1, 0, 0, 0, 0)
    assert s.table is table
    for name in OBJECTS[:-1]:
        assert getattr(s, name) is None
    assert (s.pinned, s.address, s.nbytes, s.pending()) == (False, 0, 0, 0)
    assert _slot().table is None


def test_every_member_is_writable_and_read_back() -> None:
    s = _slot()
    values: dict[str, Any] = {"index": 7, "gen": 0x7FFFFFFF, "state": 6, "eligible_mode": 1}
    values["res"] = -104
    for name in OBJECTS:
        values[name] = object()
    for name, value in values.items():
        setattr(s, name, value)
    assert {name: getattr(s, name) for name in values} == values
    del s.op  # an unset object member reads as AttributeError, as an unset __slots__ entry
    with pytest.raises(AttributeError):
        _ = s.op
    with pytest.raises(AttributeError):
        s.address = 5  # read-only
    with pytest.raises(AttributeError):
        s.other = 1  # no instance dict: only the plan's names


@pytest.mark.parametrize("state", range(8))
def test_pending_counts_the_states_of_an_incarnation_out(state: int) -> None:
    s = _slot()
    s.state = state
    assert s.pending() == (1 if state in (1, 2, 3, 4) else 0)
    s.op = object()  # demoted: its request is counted instead
    assert s.pending() == 0


def test_user_data_is_the_tag_the_generation_and_the_index() -> None:
    s = _slot()
    s.index, s.gen = 3, 5
    assert s.user_data == SLOT_TAG | 5 << 32 | 3
    s.gen = 0xFFFFFFFF  # (31 bits used)
    assert s.user_data == SLOT_TAG | 0x7FFFFFFF << 32 | 3


def test_a_bytearray_is_unresizable_while_pinned_and_resizable_after() -> None:
    data = bytearray(b"0123456789")
    s = _slot()
    view = memoryview(data)[2:]
    s.view = view
    s.pin()
    assert s.pinned and s.nbytes == 8
    assert s.address == ctypes.addressof(ctypes.c_char.from_buffer(data)) + 2
    del view
    s.view = None  # the slot's export alone keeps the memory
    with pytest.raises(BufferError):
        data.extend(b"x")
    s.unpin()
    assert (s.pinned, s.address, s.nbytes) == (False, 0, 0)
    data.extend(b"x")
    assert len(data) == 11
    s.unpin()  # (nothing pinned: no effect)


def test_a_pinned_views_memory_stays_when_the_view_is_released() -> None:
    """The pin is on the object under the view (as the Python twin's anchor, a memoryview of
    the view): the caller may release its view while the receive pends - the memory stays,
    the bytearray cannot resize - and the address is the view's own."""
    data = bytearray(12)
    s = _slot()
    s.view = memoryview(data)[4:]
    s.pin()
    assert s.address == ctypes.addressof(ctypes.c_char.from_buffer(data)) + 4
    assert s.nbytes == 8
    s.view.release()
    with pytest.raises(BufferError):
        data.extend(b"x")
    s.unpin()
    data.extend(b"x")
    s.view = memoryview(b"x")  # (a view of no writable object: refused)
    with pytest.raises(BufferError):
        s.pin()
    released = memoryview(bytearray(2))
    released.release()
    s.view = released
    with pytest.raises(ValueError):
        s.pin()
    assert not s.pinned


def test_a_refused_pin_pins_nothing() -> None:
    s = _slot()
    with pytest.raises(TypeError):
        s.pin()  # view is None
    s.view = memoryview(b"read-only")
    with pytest.raises(BufferError):
        s.pin()
    assert not s.pinned
    s.view = memoryview(bytearray(8))[::2]  # strided
    with pytest.raises(BufferError):
        s.pin()
    assert not s.pinned
    s.view = memoryview(bytearray(8))
    s.pin()
    with pytest.raises(ValueError):
        s.pin()
    s.unpin()


def test_the_table_starts_empty_and_its_counters_are_plain_integers() -> None:
    t = _fastio.SlotTable()
    assert (t.items, t.free, t.armed, t.submitted, t.done, t.cancelled) == ([], [], 0, 0, 0, 0)
    t.armed += 2
    t.submitted = 2**40
    t.done -= 1
    assert (t.armed, t.submitted, t.done) == (2, 2**40, -1)
    with pytest.raises(TypeError):
        _fastio.SlotTable(1)
    with pytest.raises(TypeError):
        t.armed = "x"


def test_no_reference_leaks_over_many_incarnations() -> None:
    table = _fastio.SlotTable()
    s = _slot(table)
    table.items.append(s)
    data = bytearray(64)
    file, ov, ts = object(), object(), object()
    before = [sys.getrefcount(o) for o in (data, file, ov, ts, table, s)]
    for i in range(10_000):
        s.file, s.overlapped, s.issuer = file, ov, ts
        s.view = memoryview(data)
        s.ud = SLOT_TAG | i
        s.pin()
        s.state, s.res = 3, 10
        s.unpin()
        s.file = s.overlapped = s.issuer = s.view = s.ud = None
        s.state, s.gen = 0, (s.gen + 1) & 0x7FFFFFFF
    after = [sys.getrefcount(o) for o in (data, file, ov, ts, table, s)]
    assert after == before
    data.extend(b"x")


def test_a_slot_table_socket_cycle_is_collected_with_its_export() -> None:
    class File:
        pass

    data = bytearray(16)
    gc.collect()
    table = _fastio.SlotTable()
    s = _slot(table)
    table.items.append(s)
    f = File()
    f.slot = s  # type: ignore[attr-defined]
    s.file = f
    s.view = memoryview(data)
    s.pin()
    dead = weakref.ref(s), weakref.ref(f)
    del table, s, f
    gc.collect()
    assert [r() for r in dead] == [None, None]
    data.extend(b"x")  # the export went with the slot


# ---------------------------------------------------------------------- the C slot's delivery

#: The C completion side (``_fastdone.c``'s ``deliver_batch``, ``Reaper.process``...).
C_DONE = reaper_mod._C_DONE

slot_spec_st = st.fixed_dictionaries(
    {
        "port": st.booleans(),
        "closed_port": st.booleans(),
        "key": st.integers(0, 3),
        "skip_set_event": st.booleans(),
        "waiters": st.integers(0, 2),
        "closing": st.booleans(),
        "other_pending": st.booleans(),
        "demoted": st.booleans(),
        "state": st.sampled_from([3, 3, 3, 4, 0]),  # REAPED, DELIVERING, IDLE
        "res": st.integers(1, 16),
        "gen": st.sampled_from([0, 1, 0x7FFFFFFF]),
    }
)


class SlotWorld:
    """Receive slots REAPED on files (of /dev/null descriptors) bound to ports or not, with
    waiters on the files, closing or not, demoted or not (deterministic: two builds from one
    spec are equal field for field)."""

    def __init__(self, specs: list[dict[str, Any]], null_fd: int, slot_class: type) -> None:
        self.table = _fastio.SlotTable()
        self.port = CompletionPort(8)
        self.closed_port = CompletionPort(8)
        self.closed_port.closed = True
        self.issuer = ThreadState(7000, 7000)
        self.files: list[FileObject] = []
        self.ovs: list[Overlapped] = []
        self.bufs: list[bytearray] = []
        self.slots: list[Any] = []
        self.wbs: list[WaitBlock] = []
        for i, s in enumerate(specs):
            port = (self.closed_port if s["closed_port"] else self.port) if s["port"] else None
            f = null_file(null_fd, port, s["key"], stream_in=1)
            f.skip_set_event = s["skip_set_event"]
            self.wbs += [waiting_on(f, 7100 + 10 * i + k)[1] for k in range(s["waiters"])]
            if s["other_pending"]:
                f._pending[object()] = None  # type: ignore[index]
            f.closing = s["closing"]
            slot, ov, buf = pinned_slot(
                slot_class, self.table, f, self.issuer, i, s["gen"], s["state"], res=s["res"]
            )
            if s["demoted"]:
                op = new_stream_read(f, ov, slot.view, self.issuer)
                op.registered = op.submitted = True
                f._pending[op] = None
                slot.op = op
            self.files.append(f)
            self.ovs.append(ov)
            self.bufs.append(buf)
            self.slots.append(slot)

    def snapshot(self) -> Any:
        index = {id(ov): i for i, ov in enumerate(self.ovs)}
        return (
            [(p.key, index.get(id(p.overlapped)), p.status, p.bytes_transferred)
             for p in self.port._packets],
            [(ov.status, ov.information) for ov in self.ovs],
            [(f._signaled, f.stream_in, f.fd == -1, len(f._pending)) for f in self.files],
            [(wb.result, wb.thread.wake_pending) for wb in self.wbs],
            [(s.state, s.gen, s.res, s.pinned, s.file is None, s.op is None, s.view is None)
             for s in self.slots],
            self.port.holding,
        )  # fmt: skip

    def close(self) -> None:
        close_files(self.files)


def _spec(**changes: Any) -> dict[str, Any]:
    """One plain REAPED slot's spec (``SlotWorld``), with ``changes``."""
    spec = {"port": True, "closed_port": False, "key": 1, "skip_set_event": False, "waiters": 0}
    spec |= {"closing": False, "other_pending": False, "demoted": False, "state": 3, "res": 7}
    spec |= {"gen": 0}
    return spec | changes


@pytest.fixture
def null_fd() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDONLY)
    yield fd
    os.close(fd)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=st.lists(slot_spec_st, min_size=1, max_size=6))
def test_c_and_python_deliver_a_batch_of_slots_alike(
    specs: list[dict[str, Any]], null_fd: int
) -> None:
    """``deliver_batch`` with receive slot items (``_dispatch._deliver_slot_locked``, the
    reference, on the Python twin and on the C type; ``_fastslot_done.c`` on the C type): the
    IOSBs, F and its waiters, the packets (held ports released once), ``stream_in``, a closing
    file's descriptor released when nothing else pends, each slot IDLE with ``gen`` + 1 and its
    references and export dropped, a demoted slot's request delivered instead."""
    assert C_DONE is not None
    worlds = [
        SlotWorld(specs, null_fd, _fastio.ReceiveSlot),
        SlotWorld(specs, null_fd, _fastio.ReceiveSlot),
        SlotWorld(specs, null_fd, ReceiveSlot),
    ]
    try:
        errors = [
            C_DONE[0](list(worlds[0].slots)),
            _dispatch.py_deliver_batch(list(worlds[1].slots)),
            _dispatch.py_deliver_batch(list(worlds[2].slots)),
        ]
        assert errors == [[], [], []]
        snaps = [w.snapshot() for w in worlds]
        assert snaps[0] == snaps[1] == snaps[2]
        for w in worlds[:2]:
            for spec, buf in zip(specs, w.bufs, strict=True):
                if spec["state"] == _fastio.SLOT_REAPED and not spec["demoted"]:
                    buf.extend(b"x")  # delivered: no export left
    finally:
        for w in worlds:
            w.close()


def test_the_c_slot_delivery_runs_no_python_frame(null_fd: int) -> None:
    assert C_DONE is not None
    spec = _spec()
    w = SlotWorld([spec, spec, spec], null_fd, _fastio.ReceiveSlot)
    try:
        names = python_frames(partial(C_DONE[0], list(w.slots)))
        assert names == set()
        assert [s.state for s in w.slots] == [0, 0, 0] and len(w.port._packets) == 3
    finally:
        w.close()


@pytest.mark.parametrize("call", ["wake", "release_fd", "post"])
def test_an_interrupt_at_a_python_call_of_the_slot_delivery_loses_no_effect(
    call: str, null_fd: int
) -> None:
    """The C slot delivery calls Python last in each step: ``wake_waiters`` (F's waiters), a
    port subclass's own ``_post_locked``, a closing file's ``_release_fd``. An interrupt at the
    entry of one (where a signal that came while C ran is raised) leaves its effect made and
    the slot's state whole (IDLE, ``gen`` + 1, references dropped), then propagates."""
    assert C_DONE is not None
    spec = _spec(port=call == "post", skip_set_event=call != "wake")
    spec |= {"waiters": 1 if call == "wake" else 0, "closing": call == "release_fd"}
    w = SlotWorld([spec], null_fd, _fastio.ReceiveSlot)
    func: Any
    if call == "post":
        port = PostingPort(8)
        w.files[0].port = port
        func = PostingPort._post_locked
    else:
        func = wake_waiters if call == "wake" else FileObject._release_fd
    fd = w.files[0].fd
    try:
        with _entry_interrupt(func) as hits, pytest.raises(Interrupted):
            C_DONE[0](list(w.slots))
        assert hits == [1]
        s = w.slots[0]
        assert (s.state, s.gen, s.file, s.pinned) == (0, 1, None, False)
        assert w.ovs[0].information == 7 and w.files[0].stream_in == 0
        if call == "wake":
            assert w.wbs[0].result is not None
        elif call == "post":
            assert [p.overlapped for p in port.posted] == [w.ovs[0]]
        else:
            assert w.files[0].fd == -1
            with pytest.raises(OSError):
                os.fstat(fd)
        w.bufs[0].extend(b"x")
    finally:
        w.close()


# ---------------------------------------------------------------------- the C slot's reaping

slot_cqe_st = st.fixed_dictionaries(
    {
        "what": st.sampled_from(["plain", "plain", "plain", "stale", "nowhere"]),
        "res": st.integers(1, 1 << 16),
        "gen": st.sampled_from([0, 5, 0x7FFFFFFF]),
    }
)


def build_slot_reaper(specs: list[dict[str, Any]], slot_class: type) -> tuple[Any, list[Any], Any]:
    """A Reaper whose CQEs are receive slots' (ARMED at their generation; a stale generation;
    an index with no slot), with its own backend lock and SlotTable."""
    table = InFlight()
    slots = _fastio.SlotTable()
    lines = StreamLines(threading.Lock(), lambda op, line: None)
    reaper = reaper_mod.Reaper(
        None,  # type: ignore[arg-type]
        table, lines, Migration(), lambda op, extra: None, lambda res: None, lambda: None,
        slots,  # type: ignore[arg-type]
    )  # fmt: skip
    cqes = []
    for i, s in enumerate(specs):
        slot = slot_class(slots)
        slot.index, slot.gen, slot.state = i, s["gen"], _fastio.SLOT_ARMED
        slot.ud = SLOT_TAG | s["gen"] << 32 | i
        slots.items.append(slot)
        slots.armed += 1
        slots.submitted += 1
        gen = s["gen"] if s["what"] != "stale" else (s["gen"] + 1) & 0x7FFFFFFF
        index = i if s["what"] != "nowhere" else 1000 + i
        cqes.append((SLOT_TAG | gen << 32 | index, s["res"], 0))
    return reaper, cqes, slots


def slot_reaper_snapshot(reaper: Any, slots: Any, finished: list[Any]) -> Any:
    index = {id(s): i for i, s in enumerate(slots.items)}
    return (
        [index.get(id(item), item) for item in finished],
        [(s.state, s.gen, s.res) for s in slots.items],
        (slots.armed, slots.submitted, slots.done, slots.cancelled),
        (reaper.done, reaper.cancelled),
        sorted(reaper._table),
    )


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(slot_cqe_st, min_size=1, max_size=8))
def test_c_and_python_reap_a_batch_of_slot_cqes_alike(specs: list[dict[str, Any]]) -> None:
    """``Reaper.process`` over receive slots' CQEs (``Reaper._reap_slot``, the reference, on
    the Python twin and the C type; ``_fastslot_done.c`` for a batch of plain ones): each plain
    CQE's slot REAPED with its byte count and appended to ``finished`` after what was there,
    ``armed`` - 1 and ``done`` + 1 (the slot table's, not the reaper's); a CQE of no
    incarnation (another generation, no slot) reported and skipped."""
    assert C_DONE is not None
    worlds = [
        build_slot_reaper(specs, _fastio.ReceiveSlot),
        build_slot_reaper(specs, _fastio.ReceiveSlot),
        build_slot_reaper(specs, ReceiveSlot),
    ]
    finished: list[list[Any]] = [[("earlier", 0, 0)] for _ in worlds]
    reports: list[list[str]] = [[], [], []]
    report = reaper_mod.report
    try:
        for i, process in enumerate((C_DONE[2], reaper_mod._PY_PROCESS, reaper_mod._PY_PROCESS)):
            reaper_mod.report = lambda what, exc=None, i=i: reports[i].append(what)
            process(worlds[i][0], worlds[i][1], finished[i])
    finally:
        reaper_mod.report = report
    snaps = [slot_reaper_snapshot(w[0], w[2], f) for w, f in zip(worlds, finished, strict=True)]
    assert snaps[0] == snaps[1] == snaps[2]
    assert reports[0] == reports[1] == reports[2]
    assert len(reports[0]) == sum(1 for s in specs if s["what"] != "plain")


def test_a_batch_of_plain_slot_cqes_is_reaped_without_a_python_frame() -> None:
    assert C_DONE is not None
    specs = [{"what": "plain", "res": 64, "gen": 3} for _ in range(4)]
    reaper, cqes, slots = build_slot_reaper(specs, _fastio.ReceiveSlot)
    finished: list[Any] = []
    names = python_frames(partial(C_DONE[2].__get__(reaper), cqes, finished))
    assert names == set()
    assert finished == slots.items and [s.state for s in finished] == [3] * 4
    assert (slots.armed, slots.done, reaper.done) == (0, 4, 0)


def test_a_demoter_between_the_check_and_the_lock_gets_its_cqe_mapped_by_python() -> None:
    """The C batch checks every slot ARMED, then takes the backend's lock and checks again; a
    slot found neither ARMED nor DEMOTING_K with its request (here DEMOTING_K without one)
    sends the batch whole to the Python ``process``, nothing written (its ``_reap_slot`` takes
    that CQE); the others are REAPED there."""
    assert C_DONE is not None
    specs = [{"what": "plain", "res": 64, "gen": 1} for _ in range(3)]
    reaper, cqes, slots = build_slot_reaper(specs, _fastio.ReceiveSlot)
    seen: list[Any] = []

    class Demoting:
        """The backend's lock, whose acquire lets a demoter in first (the contended case)."""

        def __init__(self) -> None:
            self.lock = threading.Lock()

        def acquire(self) -> bool:
            slots.items[1].state = _fastio.SLOT_DEMOTING_K
            return self.lock.acquire()

        def release(self) -> None:
            self.lock.release()

        def __enter__(self) -> bool:
            return self.lock.__enter__()

        def __exit__(self, *exc: object) -> None:
            self.lock.__exit__(*exc)

    reaper._streams._lock = Demoting()  # type: ignore[assignment]
    python = reaper_mod.Reaper._reap_slot

    def recording(self: Any, ud: int, res: int, finished: list[Any]) -> bool:
        seen.append((ud, res))
        return False  # (no request world to settle the demotion into: skipped)

    finished: list[Any] = []
    reaper_mod.Reaper._reap_slot = recording  # type: ignore[method-assign]
    try:
        C_DONE[2].__get__(reaper)(cqes, finished)
    finally:
        reaper_mod.Reaper._reap_slot = python  # type: ignore[method-assign]
    assert seen == [cqes[1][:2]]
    assert finished == [slots.items[0], slots.items[2]]
    assert [s.state for s in slots.items] == [3, 6, 3] and (slots.armed, slots.done) == (1, 2)


class DemotingLock(HookedLock):
    """The backend's lock, whose first acquire (or ``with``) lets a demoter in first: what a
    contended wait lets happen between the reaper's check and its hold (the demoter runs
    once, without the lock; its step 2, if any, takes the inner lock)."""

    def __init__(self, demoter: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.demoter = demoter

    def before_acquire(self) -> None:
        demoter, self.demoter = self.demoter, None
        if demoter is not None:
            demoter()


class DemoterWorld:
    """ARMED receive slots (``slot_class``; the backend's table the C type) on files of
    /dev/null descriptors bound to one port, their plain CQEs, and a Reaper whose backend lock
    lets a demoter of slot ``demote`` in at its first acquire: demotion step 1 (``mode``
    ``step1``: its step 2 comes after the reaper, :meth:`after`) or both steps (``both``).
    Deterministic: two builds from one spec are equal field for field."""

    def __init__(
        self, spec: list[tuple[int, int]], demote: int, mode: str, null_fd: int, slot_class: type
    ) -> None:
        self.slots = _fastio.SlotTable()
        self.table = InFlight()
        self.lock = DemotingLock(self._demoter)
        self.streams = StreamLines(self.lock, self._never)  # type: ignore[arg-type]
        self.reaper = reaper_mod.Reaper(
            None,  # type: ignore[arg-type]
            self.table, self.streams, Migration(), self._never, self._never, lambda: None,
            self.slots,  # type: ignore[arg-type]
        )  # fmt: skip
        self.port = CompletionPort(16)
        self.issuer = ThreadState(7300, 7300)
        self.demote, self.mode = demote, mode
        self.files: list[FileObject] = []
        self.ovs: list[Overlapped] = []
        self.bufs: list[bytearray] = []
        self.cqes: list[tuple[int, int, int]] = []
        for i, (gen, res) in enumerate(spec):
            f = null_file(null_fd, self.port, i, stream_in=1)
            slot, ov, buf = pinned_slot(
                slot_class, self.slots, f, self.issuer, i, gen, _fastio.SLOT_ARMED
            )
            self.slots.items.append(slot)
            self.slots.armed += 1
            self.slots.submitted += 1
            self.cqes.append((slot.ud, res, 0))
            self.files.append(f)
            self.ovs.append(ov)
            self.bufs.append(buf)
        self.gen = spec[demote][0]

    @staticmethod
    def _never(*args: object) -> None:
        raise AssertionError(f"unexpected call {args!r}")

    def _demoter(self) -> None:
        slot = self.slots.items[self.demote]
        with LOCK:
            demote_locked(slot)
        if self.mode == "both":
            with self.lock.lock:
                drop = settle_locked(slot, self.gen, self.table, self.streams)
            del drop

    def after(self) -> None:
        """The demoter's step 2 after the reaper's hold (idempotent: nothing left to do
        when the reaper made it)."""
        with self.lock.lock:
            drop = settle_locked(self.slots.items[self.demote], self.gen, self.table, self.streams)
        del drop

    def snapshot(self) -> Any:
        index = {id(ov): i for i, ov in enumerate(self.ovs)}
        return (
            sorted((p.key, index.get(id(p.overlapped)), p.status, p.bytes_transferred)
                   for p in self.port._packets),
            [(ov.status, ov.information) for ov in self.ovs],
            [(f.stream_in, len(f._pending)) for f in self.files],
            [(s.state, s.gen, s.pinned, s.file is None, s.op is None) for s in self.slots.items],
            (self.slots.armed, self.slots.done + self.reaper.done, self.reaper.cancelled),
            sorted(self.table), sorted(self.streams.lines),
        )  # fmt: skip

    def close(self) -> None:
        close_files(self.files)


def _deliver_once(world: DemoterWorld, process: Callable[..., Any]) -> list[str]:
    """``Reaper._batch_locked``'s steps with ``process``: map, then deliver (or
    ``cuts.deliver_rest`` after an exception); the demoter's step 2 after the reaper's hold."""
    reports: list[str] = []
    report = reaper_mod.report
    reaper_mod.report = lambda what, exc=None: reports.append(what)
    try:
        finished: list[Any] = []
        process(world.reaper, world.cqes, finished)
        world.after()
        world.reaper.deliver(finished)
    finally:
        reaper_mod.report = report
    return reports


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=st.lists(
        st.tuples(st.sampled_from([0, 3, 0x7FFFFFFF]), st.integers(1, 16)), min_size=1, max_size=6
    ),
    pick=st.integers(0, 5),
    mode=st.sampled_from(["step1", "both"]),
)
def test_c_and_python_reap_alike_with_a_demoter_between_the_check_and_the_lock(
    spec: list[tuple[int, int]], pick: int, mode: str, null_fd: int
) -> None:
    """A demoter (``pending_ops()``, close, a second receive...) gets in while the reaper waits
    for the backend's lock, having checked its batch of plain slot CQEs: step 1 only (its step
    2 after the reaper's hold) or both steps. C ``process`` on C slots, the Python reference on
    C slots and on the Python twin: each receive completes exactly once (one packet, its IOSB,
    the demoted one as its request), every slot IDLE at its next generation, nothing left in
    the table, the lines or the counts, the same reports."""
    assert C_DONE is not None
    demote = pick % len(spec)
    runs = [
        (_fastio.ReceiveSlot, C_DONE[2]),
        (_fastio.ReceiveSlot, reaper_mod._PY_PROCESS),
        (ReceiveSlot, reaper_mod._PY_PROCESS),
    ]
    worlds = [DemoterWorld(spec, demote, mode, null_fd, cls) for cls, _ in runs]
    try:
        reports = [_deliver_once(w, process) for w, (_, process) in zip(worlds, runs, strict=True)]
        snaps = [w.snapshot() for w in worlds]
        assert snaps[0] == snaps[1] == snaps[2]
        assert reports[0] == reports[1] == reports[2]
        packets, iosbs, files, slots, counts, table, lines = snaps[0]
        assert [p[1] for p in packets] == list(range(len(spec)))  # one each
        assert iosbs == [(0, res) for _, res in spec]
        assert files == [(0, 0)] * len(spec) and counts == (0, len(spec), 0)
        assert [s[:2] for s in slots] == [(0, (gen + 1) & 0x7FFFFFFF) for gen, _ in spec]
        assert (table, lines) == ([], [])
        for buf in worlds[0].bufs:
            buf.extend(b"x")  # no export left
    finally:
        for w in worlds:
            w.close()


def test_a_demoter_of_step_1_only_has_its_slot_reaped_with_its_request_in_c(
    null_fd: int,
) -> None:
    """A demoter's step 1 (DEMOTING_K, its request built) while the C batch waits for the
    backend's lock: the C reaps that slot with its request (REAPED, ``op`` set: the state a
    demotion after the reap leaves; its delivery is the request's) without calling the Python
    reaper, and the demoter's step 2 then finds nothing to do."""
    assert C_DONE is not None
    w = DemoterWorld([(2, 9), (5, 10), (0, 11)], 1, "step1", null_fd, _fastio.ReceiveSlot)
    try:
        finished: list[Any] = []
        names = python_frames(partial(C_DONE[2], w.reaper, w.cqes, finished))
        assert names & {"process", "_reap_slot", "_demote_reaped", "settle_locked"} == set()
        slot = w.slots.items[1]
        assert finished == w.slots.items and slot.op is not None
        assert [(s.state, s.res) for s in finished] == [(3, 9), (3, 10), (3, 11)]
        assert (w.slots.armed, w.slots.done, w.reaper.done) == (0, 3, 0)
        w.after()
        assert slot.state == _fastio.SLOT_REAPED and not w.table and not w.streams.lines
        w.reaper.deliver(finished)
        assert slot.op is None and slot.state == 0 and slot.gen == 6
        assert sorted(p.key for p in w.port._packets) == [0, 1, 2]
        assert [ov.information for ov in w.ovs] == [9, 10, 11]
        assert [f.stream_in for f in w.files] == [0, 0, 0] and not w.files[1]._pending
    finally:
        w.close()


_NOMEM_DEMOTER = textwrap.dedent(
    """
    import os, sys, traceback, _testcapi
    sys.path.insert(0, sys.argv[4])
    import test_fastslot as T
    from winaio._io import _fastio
    from winaio.testing import call_failing, left_behind

    C = T.C_DONE
    null = os.open(os.devnull, os.O_RDONLY)
    phase, mode = sys.argv[2], sys.argv[3]
    spec = [(0, 5), (4, 6), (9, 7)]
    # The Python reference's modules: a MemoryError raised in them is the Python funnel's
    # (docs/design.md, review7: not swept), not the C's.
    REFERENCE = ("reaper.py", "streams.py", "slots.py", "_slot.py", "_dispatch.py")
    bad, in_python = set(), 0
    for k in range(int(sys.argv[1])):
        w = T.DemoterWorld(spec, 1, mode, null, _fastio.ReceiveSlot)
        demoter = w.lock.demoter

        def demote_then_fail(k=k, demoter=demoter):
            # the demoter itself runs with no failure; the k-th allocation after it fails
            _testcapi.remove_mem_hooks()
            demoter()
            if phase == "after":
                _testcapi.set_nomemory(k, k + 1)

        w.lock.demoter = demote_then_fail
        finished = []
        before = k if phase == "before" else None  # (the k-th allocation before the demoter)
        raised = call_failing(before, C[2], w.reaper, w.cqes, finished, catch=BaseException)
        bad.update(left_behind(locks={"the backend's lock": w.lock}))
        if raised is not None and any(
            f.f_code.co_filename.endswith(REFERENCE)
            for f, _ in traceback.walk_tb(raised.__traceback__)
        ):
            in_python += 1
            w.close()
            continue
        w.after()  # (the demoter's step 2, after the reaper's hold: idempotent)
        if raised is None:
            w.reaper.deliver(finished)
        else:
            w.reaper.cuts.deliver_rest(finished)  # (Reaper._batch_locked's rule)
        packets, iosbs, files, slots, counts, table, lines = w.snapshot()
        got = sorted(p[1] for p in packets)
        if got != [0, 1, 2]:
            bad.add(f"completions {got} ({raised!r})")
        if iosbs != [(0, res) for _, res in spec]:
            bad.add(f"IOSBs {iosbs} ({raised!r})")
        if table or lines or files != [(0, 0)] * 3 or counts[:2] != (0, 3):
            bad.add(f"left: table {table} lines {lines} files {files} counts {counts}")
        if [s[:3] for s in slots] != [(0, gen + 1, False) for gen, _ in spec]:
            bad.add(f"slots {slots}")
        w.close()
    if mode == "step1" and in_python:
        bad.add(f"the Python reference ran {in_python} times (step 1 only: the C's own case)")
    print(sorted(bad))
    """
)


@pytest.mark.parametrize(
    ("phase", "mode"), [("after", "step1"), ("after", "both"), ("before", "step1")]
)
def test_a_failed_allocation_with_a_demoter_between_the_check_and_the_lock(
    phase: str, mode: str
) -> None:
    """A demoter gets in while the C reaper waits for the backend's lock (step 1 only, or both
    steps), and each allocation made after it (``after``) or before it (``before``) in turn
    fails (``_testcapi.set_nomemory``, in a child under the debug allocator): every receive
    completes exactly once, with its bytes (the demoted one as its request), nothing is left
    in the table, the lines or the counts, no lock is left held. A demoter that made step 1
    only is the C's own case (the slot REAPED with its request: no Python call); one that made
    both steps has its CQE in the table, and the batch goes whole to the Python reference,
    whose own failed allocations are not this sweep's (review7: the Python funnel). (The C
    batch handed the demoted CQE over in a list it allocated after its hold: a failure there
    lost that completion, its request left in the table for ever.)"""
    nomem_sweep(_NOMEM_DEMOTER, "200", phase, mode, os.path.dirname(__file__))


_NOMEM = textwrap.dedent(
    """
    import os, sys
    from winaio._backends.uring import reaper
    from winaio._io import _fastio
    from winaio._io._port import CompletionPort
    from winaio._kernel._dispatcher import ThreadState
    from winaio.testing import call_failing, left_behind, port_getter, reaped_slots

    C = reaper._C_DONE
    null = os.open(os.devnull, os.O_RDONLY)

    def world():
        # three REAPED C slots on files bound to a port with one GQCS waiter, F waiters
        issuer, port, table = ThreadState(5000, 5000), CompletionPort(8), _fastio.SlotTable()
        _, wb = port_getter(port, 5001)
        slots, bufs = reaped_slots(
            _fastio.ReceiveSlot, table, port, null, issuer, [5] * 3, first_waiter=5010
        )
        return port, wb, slots, bufs

    bad = set()
    for k in range(int(sys.argv[1])):
        port, wb, slots, bufs = world()
        files = [s.file for s in slots]
        ovs = [s.overlapped for s in slots]
        call_failing(k, C[0], list(slots))  # the k-th allocation from here fails
        bad.update(left_behind(port, getters=[wb]))
        for s, f, ov, buf in zip(slots, files, ovs, bufs):
            if s.state not in (_fastio.SLOT_REAPED, _fastio.SLOT_DELIVERING, _fastio.SLOT_IDLE):
                bad.add(f"a slot in state {s.state}")
            if s.state != _fastio.SLOT_REAPED and ov.information != 5:
                bad.add("a slot past REAPED without its IOSB")
            if s.state == _fastio.SLOT_IDLE:
                if f.stream_in != 0 or s.pinned or s.file is not None:
                    bad.add("an IDLE slot with its incarnation's state")
                try:
                    buf.extend(b"x")
                except BufferError:
                    bad.add("an IDLE slot's buffer still exported")
            os.close(f.fd)
            f.fd = -1
    print(sorted(bad))
    """
)


def test_a_failed_allocation_in_the_slot_delivery_leaves_no_half_state() -> None:
    """Every allocation of the C slot delivery made to fail in turn (``_testcapi.set_nomemory``,
    in a child under the debug allocator): no crash, no lock or port left held, no GQCS waiter
    popped and left asleep; each slot REAPED (untouched), or past it with its IOSB written, or
    IDLE with its incarnation's state gone (``stream_in``, the pin, the references)."""
    nomem_sweep(_NOMEM, "120")


_NOMEM_REAPER_DELIVER = textwrap.dedent(
    """
    import os, sys, threading
    from winaio._backends.uring import reaper
    from winaio._backends.uring.common import InFlight
    from winaio._backends.uring.migration import Migration
    from winaio._backends.uring.streams import StreamLines
    from winaio._io import _fastio
    from winaio._io._port import CompletionPort
    from winaio._io._stream_ops import new_stream_read
    from winaio._kernel._dispatcher import ThreadState
    from winaio.testing import call_failing, left_behind, reaped_slots

    null = os.open(os.devnull, os.O_RDONLY)

    def never(*args):
        raise AssertionError(args)

    def world():
        # three REAPED C slots (byte counts past the small ints: the delivery makes their int)
        # on files bound to a port, F waiters on each; the second demoted while REAPED
        issuer, port, table = ThreadState(5000, 5000), CompletionPort(8), _fastio.SlotTable()
        slots, _ = reaped_slots(
            _fastio.ReceiveSlot, table, port, null, issuer, [1000, 1001, 1002], first_waiter=5010
        )
        s = slots[1]
        op = new_stream_read(s.file, s.overlapped, s.view, issuer)
        op.registered = op.submitted = True
        s.file._pending[op] = None
        s.op = op
        r = reaper.Reaper(
            None, InFlight(), StreamLines(threading.Lock(), never), Migration(), never, never,
            lambda: None, table,
        )
        return r, port, slots

    bad = set()
    reported = []
    reaper.report = lambda what, exc=None: reported.append(what)
    for k in range(int(sys.argv[1])):
        r, port, slots = world()
        files = [s.file for s in slots]
        ovs = [s.overlapped for s in slots]
        batch = list(slots)
        call_failing(k, r.deliver, batch)  # the k-th allocation from here fails
        bad.update(left_behind(port))
        posted = [p.overlapped for p in port._packets]
        for i, (s, f, ov) in enumerate(zip(slots, files, ovs)):
            n = sum(1 for o in posted if o is ov)
            if s.state == _fastio.SLOT_REAPED:
                bad.add(f"slot {i} left REAPED: a completion nobody makes")
            if n > 1:
                bad.add(f"slot {i} posted {n} times")
            if s.state == _fastio.SLOT_IDLE and i != 1 and (n != 1 or ov.information != 1000 + i):
                bad.add(f"slot {i} IDLE without its completion")
            os.close(f.fd)
            f.fd = -1
    print(sorted(bad))
    """
)


def test_a_failed_allocation_in_the_reapers_slot_delivery_loses_no_completion() -> None:
    """Every allocation of the reaper's delivery of C slots (``Reaper.deliver``: the C batch,
    then ``cuts.deliver_rest`` on an error that stops it) made to fail in turn, the slots' byte
    counts past the small ints (the delivery makes their int): no slot is left REAPED (a
    completion nobody would make: the C batch reported the failure and went on, the slot
    untouched), none posted twice, an IDLE one delivered with its byte count. (A failure
    inside a Python callee - ``wake_waiters`` - stops that slot's delivery and is reported:
    review7's rule, as for a request.)"""
    nomem_sweep(_NOMEM_REAPER_DELIVER, "150")


# ---------------------------------------------------------------------- the C slot's arm

URING_OK, URING_REASON = uring.probe_backend()
#: The tests on real sockets: io_uring only (slots are).
needs_uring = pytest.mark.skipif(not URING_OK, reason=f"io_uring unavailable: {URING_REASON}")
SQE = struct.Struct("<BBHiqQIIQ24s")
OP_RECV = 27
#: The Python functions of the slot's hot shape (arm, reap, deliver, the QD1 path).
SLOT_PYTHON = {
    "pend_receive", "arm_locked", "_arm_slot", "_arm_slot_locked", "add_locked", "prep_recv",
    "pin", "user_data", "address", "nbytes", "_reap_slot", "process", "_batch_locked",
    "deliver", "deliver_batch", "_deliver_slot_locked", "_slot_done_locked", "release_refs",
    "unpin", "_post_locked",
}  # fmt: skip


class Echo:
    """A winaio socket on ``backend`` bound to a fresh port (key 7), and its peer."""

    def __init__(self, backend: Any) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            self.peer = socket.create_connection(listener.getsockname(), timeout=5.0)
            conn, _ = listener.accept()
        conn.setblocking(False)
        self.port = CompletionPort()
        self.s = Socket(conn.fileno(), overlapped=True, sock=conn, backend=backend)
        self.s.associate(self.port, 7)

    def round(self, data: bytes, size: int = 64) -> None:
        """One receive that pends (nothing there yet), the peer's send, its packet."""
        buf, ov = bytearray(size), Overlapped(0)
        assert not self.s.start_read(buf, ov)
        self.peer.sendall(data)
        packet = self.port.get(5.0)
        assert packet is not None and packet.overlapped is ov and packet.key == 7
        assert (ov.status, ov.information) == (0, len(data)) and bytes(buf[: len(data)]) == data
        buf.extend(b"x")  # (no export left)

    def close(self) -> None:
        self.s.close()
        self.peer.close()
        self.port.close()


@pytest.fixture
def echo(armed_uring: Any) -> Iterator[Echo]:
    e = Echo(armed_uring)
    yield e
    e.close()


def _arm_and_look(e: Echo, size: int, offset: int) -> dict[str, Any]:
    """``pend_receive`` of a view of ``size`` bytes at ``offset`` in a bytearray, on ``e``'s
    socket (nothing sent: it stays armed), and everything the arm set (taken under the
    backend's lock); then the receive is completed by the peer's bytes."""
    s, b = e.s, e.s.backend
    ts = current_thread_state()
    ring, slots = b._ring, b._slots
    owner = b._lead.owner is ts.parker
    before = (slots.armed, slots.submitted, b._receives.submitted, ring._sq_tail, len(b._table))
    data = bytearray(offset + size + 3)
    view = memoryview(data)[offset : offset + size]
    ov = Overlapped(0)
    ov.status = 0x103
    s._pend(s, ov, view)
    with b._lock:
        slot = s._rslot
        at = ((ring._sq_tail - 1) & ring._sq_mask) << 6
        sqe = list(SQE.unpack_from(ring._sqes, at))
        address = ctypes.addressof(ctypes.c_char.from_buffer(data)) + offset
        look = {
            "type": type(slot) is (_fastio.ReceiveSlot if _accel.slots() == "c" else ReceiveSlot),
            "state": slot.state,
            "objects": (
                slot.file is s,
                slot.overlapped is ov,
                slot.issuer is ts,
                slot.view is view,
            ),
            "op": slot.op,
            "pinned": (slot.pinned, slot.address == address, slot.nbytes),
            "ud": slot.ud == slot.user_data,
            "items": slots.items[slot.index] is slot,
            "counted": (
                slots.armed,
                slots.submitted,
                b._receives.submitted,
                ring._sq_tail,
                len(b._table),
            ),
            "before": before,
            "file": (s.stream_in, s.pending_requests, list(s._pending)),
            "lines": 2 * s.fd in b._streams.lines,
            "deferred": (slot.ud in b._unsubmitted) is owner,
            "hinted": b._deferral.hinted is owner,
            "sqe": [*sqe[:4], sqe[4], sqe[5] == address, *sqe[6:8], sqe[8] == slot.ud, sqe[9]],
            "fd": sqe[3] == s.fd,
        }
    e.peer.sendall(b"z" * min(size, 5))
    packet = e.port.get(5.0)
    assert packet is not None and packet.overlapped is ov
    assert ov.information == min(size, 5) and bytes(view[:5]) == b"z" * min(size, 5)
    del view
    data.extend(b"x")
    return look


@needs_uring
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(sizes=st.lists(st.tuples(st.integers(1, 300), st.integers(0, 17)), min_size=1, max_size=4))
def test_c_and_python_arm_alike(sizes: list[tuple[int, int]]) -> None:
    """Arm steps 1 and 2 (``_slot.arm_locked`` and ``Receives._arm_slot``, the
    reference; ``_fastpend.c``/``_fastpend_ring.c``): the slot's fields (ARMING -> ARMED, the
    objects held, the view pinned, its index and user_data), the file's count, no request,
    line or table entry, the table's counters, the deferred list and the owner's hint (the
    ring's owner defers; anyone else submits at once), and the SQE (RECV, POLL_FIRST ioprio,
    the socket, the pinned buffer's address and length, the slot's user_data, the last 24
    bytes zero): equal under the C and the Python slot, incarnation after incarnation."""
    looks: dict[str, list[dict[str, Any]]] = {}
    for mode in ("py", "c"):
        with slots_for_test(mode):
            b = uring.IoUringBackend()
            e = Echo(b)
            try:
                e.round(b"warm")  # (this thread leads the ring then: it owns it)
                looks[mode] = [_arm_and_look(e, size, offset) for size, offset in sizes]
            finally:
                e.close()
                b.close()
    assert looks["c"] == looks["py"]
    first = looks["c"][0]
    assert first["type"] and first["state"] == _fastio.SLOT_ARMED and first["op"] is None
    assert first["sqe"][0] == OP_RECV and first["sqe"][-1] == bytes(24)


@needs_uring
def test_the_c_slot_echo_runs_no_python_frame_of_the_slot(echo: Echo) -> None:
    """With the C slot, a receive that pends (arm), its CQE (the QD1 reap) and its delivery
    run none of the slot's Python functions (nor the request path's)."""
    with slots_for_test("c"):
        for i in range(20):
            echo.round(b"warm%d" % i)
        names = python_frames(partial(echo.round, b"hello"))
        assert names & SLOT_PYTHON == set()
        assert type(echo.s._rslot) is _fastio.ReceiveSlot


@needs_uring
def test_a_c_slot_batch_runs_no_python_frame_of_the_slot(armed_uring: Any) -> None:
    """Many sockets' receives armed, their data sent, then one wait: the batch of slot CQEs
    is reaped (one hold of the backend's lock) and delivered without a Python frame of the
    slot's functions."""
    with slots_for_test("c"):
        echoes = [Echo(armed_uring) for _ in range(8)]
        try:
            bufs = []
            for e in echoes:
                e.round(b"w")
                buf, ov = bytearray(8), Overlapped(0)
                assert not e.s.start_read(buf, ov)
                bufs.append((buf, ov))
            for e in echoes:
                e.peer.sendall(b"abc")
            time.sleep(0.05)  # (the CQEs wait in the CQ ring)
            got: list[Any] = []

            def take() -> None:
                for e in echoes:
                    packet = e.port.get(5.0)
                    assert packet is not None
                    got.append(packet.overlapped)

            names = python_frames(take)
            assert names & SLOT_PYTHON == set()
            assert got == [ov for _, ov in bufs]
            assert [bytes(buf[:3]) for buf, _ in bufs] == [b"abc"] * len(bufs)
        finally:
            for e in echoes:
                e.close()


@needs_uring
def test_no_leak_over_many_c_slot_incarnations(echo: Echo) -> None:
    """10K receives on one C slot: the references of the socket, its buffer and OVERLAPPED
    back where they were, memory steady, every incarnation counted and ended."""
    with slots_for_test("c"):
        buf = bytearray(64)
        ov = Overlapped(0)
        s, peer, port = echo.s, echo.peer, echo.port

        def rounds(n: int) -> None:
            for _ in range(n):
                assert not s.start_read(buf, ov)
                peer.sendall(b"0123456789")
                packet = port.get(5.0)
                assert packet is not None and ov.information == 10

        rounds(200)
        gc.collect()
        refs = [sys.getrefcount(o) for o in (s, buf, ov, port)]
        tracemalloc.start()
        try:
            rounds(2000)
            gc.collect()
            first, _ = tracemalloc.get_traced_memory()
            rounds(8000)
            gc.collect()
            second, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert [sys.getrefcount(o) for o in (s, buf, ov, port)] == refs
        assert second - first < 64 * 1024, (first, second)
        slot, slots = s._rslot, s.backend._slots
        assert (slot.state, slot.gen, slot.pinned, slot.file) == (0, 10200, False, None)
        assert slots.armed == 0 and slots.submitted == slots.done
        buf.extend(b"x")


@needs_uring
def test_an_interrupt_at_the_submit_of_a_c_slot_still_submits_it(echo: Echo) -> None:
    """A thread that does not own the ring submits its slot's RECV at once
    (``_submit_locked``, Python, called last under the backend's lock); an interrupt at its
    entry is kept, the submission made again, then the interrupt raised: the receive is in
    the kernel and completes (review7's rule, for the C arm)."""
    with slots_for_test("c"):
        echo.round(b"warm")
        s, b = echo.s, echo.s.backend
        out: dict[str, Any] = {}
        buf, ov = bytearray(16), Overlapped(0)

        def other() -> None:
            assert b._lead.owner is not current_thread_state().parker
            func = type(b._sq).submit_locked
            with _entry_interrupt(func) as hits:
                try:
                    s.start_read(buf, ov)
                except Interrupted:
                    out["raised"] = True
            out["hits"] = list(hits)

        t = threading.Thread(target=other)
        t.start()
        t.join(5.0)
        assert out == {"raised": True, "hits": [1]}
        assert s._rslot.state == _fastio.SLOT_ARMED
        echo.peer.sendall(b"late")
        packet = echo.port.get(5.0)
        assert packet is not None and packet.overlapped is ov and bytes(buf[:4]) == b"late"


_NOMEM_ARM = textwrap.dedent(
    """
import os, socket, sys
from winaio._io import _accel
_accel.use(True)
_accel.use_slots("c")
assert _accel.slots() == "c"
from winaio._backends import uring
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio.testing import call_failing, receive_settled

b = uring.IoUringBackend()
port = CompletionPort()
with socket.create_server(("127.0.0.1", 0)) as listener:
    peer = socket.create_connection(listener.getsockname(), timeout=5)
    conn, _ = listener.accept()
conn.setblocking(False)
s = Socket(conn.fileno(), overlapped=True, sock=conn, backend=b)
s.associate(port, 7)
bad = set()
# warm: this thread owns the ring
buf, ov = bytearray(8), Overlapped(0)
s._pend(s, ov, memoryview(buf))
peer.sendall(b"w")
assert port.get(5.0) is not None
for k in range(int(sys.argv[1])):
    buf, ov = bytearray(8), Overlapped(0)
    view = memoryview(buf)
    raised = call_failing(k, s._pend, s, ov, view)
    del view
    bad.update(receive_settled(s, peer, port, ov, buf, raised, b._lock))
print(sorted(bad))
os._exit(0)
    """
)


@needs_uring
def test_a_failed_allocation_in_the_c_arm_leaves_the_receive_whole() -> None:
    """Every allocation of a pended receive on the C slot made to fail in turn (in a child
    under the debug allocator; this thread owns the ring): no lock left held; either the
    receive pends (counted once: ``pending_requests == stream_in``) and completes with the
    peer's bytes, or the MemoryError went out with nothing pending, the slot IDLE and the
    buffer free; no stray packet."""
    nomem_sweep(_NOMEM_ARM, "150")
