"""The reaper's batch of receive-slot CQEs with a demoter in its lock wait (issue 9; receive-slot.md
§2 "State machine", docs/design.md "The C slot's reaper under a demoter" (cgap) and mshot's
section): the Python reference (``Reaper.process`` / ``_reap_slot``) and the C batch
(``_fastslot_done.c`` ``dn_slot_batch``) give the same states, not only the same results.

- A demoter that made **step 1 only** (DEMOTING_K at the CQE's generation, its request built,
  its step 2 waiting for the backend's lock) while the reaper waited for that lock: the slot
  is reaped *with its request* (REAPED, ``op`` set; ``armed`` - 1, the slot table's ``done``
  + 1) - the C path's shortcut, now the reference's too: no ``settle_locked`` in the reaper, no
  request line opened and closed again; the demoter's step 2 then finds nothing to do and the
  delivery delivers the request.
- A demoter that made **both steps**: the CQE is the request's (in the table), mapped from it.
- Both steps **and the slot armed again** (a later receive, the next generation) before the
  reaper holds the lock: the CQE is still the demoted request's; the new incarnation is not
  touched (the generation is read again under the lock; the reference used to reap the new
  incarnation with the old CQE and leave the request waiting in the table for ever).

Each receive completes exactly once (one packet, its IOSB), nothing is left in the table, the
lines or the counts, for C ``process`` on C slots and the reference on C slots and on the Python
twin (a Hypothesis differential, every field compared after the reap and after the delivery).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.common import InFlight
from winaio._backends.uring.migration import Migration
from winaio._backends.uring.slots import settle_locked
from winaio._backends.uring.streams import StreamLines
from winaio._io import _accel
from winaio._io._files import FileObject
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._slot import ARMED, GEN_MASK, IDLE, REAPED, ReceiveSlot, demote_locked
from winaio._kernel._dispatcher import LOCK, ThreadState
from winaio.testing import (
    SLOT_TAG,
    HookedLock,
    Sweep,
    accelerator_for_test,
    close_files,
    left_behind,
    null_file,
    profiled,
    python_frames,
    require_c_path,
    sweep_cut_points,
)

try:
    from winaio._io import _fastio
except ImportError:  # (not built: the fixture below skips, or fails under REQUIRE_ACCEL)
    _fastio = None  # type: ignore[assignment]

MODES = ["step1", "both", "rearm"]


@pytest.fixture(autouse=True)
def _need_c() -> None:
    require_c_path(_accel.BUILT and reaper_mod._C_DONE is not None)


@pytest.fixture(scope="module")
def null_fd() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


class DemotingLock(HookedLock):
    """The backend's lock, whose first acquire runs a demoter first: what a contended wait
    lets happen between the reaper's check of its batch and its hold."""

    def __init__(self, demoter: Callable[[], object]) -> None:
        super().__init__()
        self.demoter: Callable[[], object] | None = demoter

    def before_acquire(self) -> None:
        demoter, self.demoter = self.demoter, None
        if demoter is not None:
            demoter()


def _never(*args: object) -> None:
    raise AssertionError(f"unexpected call {args!r}")


class World:
    """ARMED receive slots (``slot_class``; the slot table the C type) on files of /dev/null
    descriptors bound to one port, their plain CQEs, and a Reaper whose backend lock lets a
    demoter of slot ``demote`` in at its first acquire (``mode``: ``step1``, ``both``, or
    ``rearm``: both steps, then the slot armed again at the next generation, steps 1-2 as the
    arm makes them, for a second receive). Deterministic: two builds from one spec are equal
    field for field."""

    def __init__(
        self, spec: list[tuple[int, int]], demote: int, mode: str, null_fd: int, slot_class: type
    ) -> None:
        assert _fastio is not None
        self.slots = _fastio.SlotTable()
        self.table = InFlight()
        self.lock = DemotingLock(self._demoter)
        self.streams = StreamLines(self.lock, _never)  # type: ignore[arg-type]
        self.reaper = reaper_mod.Reaper(
            None,  # type: ignore[arg-type]
            self.table, self.streams, Migration(), _never, _never, lambda: None,
            self.slots,  # type: ignore[arg-type]
        )  # fmt: skip
        self.port = CompletionPort(16)
        self.issuer = ThreadState(7400, 7400)
        self.demote, self.mode = demote, mode
        self.files: list[FileObject] = []
        self.ovs: list[Overlapped] = []
        self.bufs: list[bytearray] = []
        self.cqes: list[tuple[int, int, int]] = []
        for i, (gen, res) in enumerate(spec):
            self.files.append(null_file(null_fd, self.port, i))
            slot = slot_class(self.slots)
            slot.index = i
            self.slots.items.append(slot)
            self._arm(slot, gen)
            self.cqes.append((slot.ud, res, 0))
        self.gen = spec[demote][0]

    def _arm(self, slot: Any, gen: int) -> None:
        """An incarnation of ``slot`` at ``gen``, ARMED (what arm steps 1 and 2 leave)."""
        f = self.files[slot.index]
        ov, buf = Overlapped(0), bytearray(16)
        slot.file, slot.overlapped, slot.issuer = f, ov, self.issuer
        slot.view = memoryview(buf)
        slot.pin()
        slot.gen, slot.state = gen, ARMED
        slot.ud = SLOT_TAG | gen << 32 | slot.index
        f.stream_in += 1
        self.slots.armed += 1
        self.slots.submitted += 1
        self.ovs.append(ov)
        self.bufs.append(buf)

    def _demoter(self) -> None:
        if self.mode == "none":  # (no demoter: the plain batch)
            return
        slot = self.slots.items[self.demote]
        with LOCK:
            demote_locked(slot)
        if self.mode != "step1":
            with self.lock.lock:
                drop = settle_locked(slot, self.gen, self.table, self.streams)
            del drop
        if self.mode == "rearm":
            with LOCK:
                self._arm(slot, (self.gen + 1) & GEN_MASK)

    def after(self) -> None:
        """The demoter's step 2 after the reaper's hold (idempotent: nothing left to do
        when the reaper reaped its slot with its request or when it made both steps)."""
        with self.lock.lock:
            drop = settle_locked(self.slots.items[self.demote], self.gen, self.table, self.streams)
        del drop

    def reaped(self, finished: list[Any]) -> Any:
        """The state after ``process``: what ``finished`` holds, each slot's fields, the
        counts (the slot table's and the reaper's apart), the table and the lines."""
        index = {id(s): i for i, s in enumerate(self.slots.items)}
        return (
            [index.get(id(item), "request") for item in finished],
            [(s.state, s.gen, s.res, s.op is None, s.ud) for s in self.slots.items],
            (self.slots.armed, self.slots.done, self.reaper.done, self.reaper.cancelled),
            sorted(self.table), sorted(self.streams.lines),
        )  # fmt: skip

    def delivered(self) -> Any:
        index = {id(ov): i for i, ov in enumerate(self.ovs)}
        return (
            sorted((p.key, index.get(id(p.overlapped)), p.status, p.bytes_transferred)
                   for p in self.port._packets),
            [(ov.status, ov.information) for ov in self.ovs],
            [(f.stream_in, len(f._pending)) for f in self.files],
            [(s.state, s.gen, s.pinned, s.file is None, s.op is None) for s in self.slots.items],
            (self.slots.armed, self.slots.done, self.reaper.done, self.reaper.cancelled),
            sorted(self.table), sorted(self.streams.lines),
        )  # fmt: skip

    def close(self) -> None:
        close_files(self.files)


def _run(world: World, process: Callable[..., Any]) -> tuple[Any, Any, list[str]]:
    """``Reaper._batch_locked``'s steps with ``process``: map, the demoter's step 2 after the
    reaper's hold, deliver. Returns the states after the reap and after the delivery, and
    the reports."""
    reports: list[str] = []
    report = reaper_mod.report
    reaper_mod.report = lambda what, exc=None: reports.append(what)
    try:
        finished: list[Any] = []
        process(world.reaper, world.cqes, finished)
        reaped = world.reaped(finished)
        world.after()
        world.reaper.deliver(finished)
    finally:
        reaper_mod.report = report
    return reaped, world.delivered(), reports


def _runs() -> list[tuple[type, Any]]:
    assert _fastio is not None and reaper_mod._C_DONE is not None
    return [
        (_fastio.ReceiveSlot, reaper_mod._C_DONE[2]),
        (_fastio.ReceiveSlot, reaper_mod._PY_PROCESS),
        (ReceiveSlot, reaper_mod._PY_PROCESS),
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=st.lists(
        st.tuples(st.sampled_from([0, 3, GEN_MASK]), st.integers(1, 16)), min_size=1, max_size=6
    ),
    pick=st.integers(0, 5),
    mode=st.sampled_from(MODES),
)
def test_c_and_python_reap_into_the_same_states_with_a_demoter_in_the_lock_wait(
    spec: list[tuple[int, int]], pick: int, mode: str, null_fd: int
) -> None:
    demote = pick % len(spec)
    runs = _runs()
    worlds = [World(spec, demote, mode, null_fd, cls) for cls, _ in runs]
    try:
        results = [_run(w, process) for w, (_, process) in zip(worlds, runs, strict=True)]
        assert results[0] == results[1] == results[2]
        reaped, delivered, reports = results[0]
        assert reports == []
        n = len(spec)
        gen = spec[demote][0]
        slot_states = reaped[1]
        if mode == "step1":
            # Reaped with its request: REAPED, op set, counted by the slot table.
            assert reaped[0] == list(range(n))
            assert slot_states[demote][:4] == (REAPED, gen, spec[demote][1], False)
            assert reaped[2] == (0, n, 0, 0) and reaped[3:] == ([], [])
        else:
            # Mapped from the table as the request's (serviced as its line's head).
            others = [i for i in range(n) if i != demote]
            assert reaped[0] == [*others, "request"]
            assert reaped[2][1:] == (n - 1, 1, 0) and reaped[3] == []
            rearmed = (gen + 1) & GEN_MASK
            if mode == "rearm":  # the new incarnation untouched, still in the kernel
                assert slot_states[demote] == (
                    ARMED, rearmed, 0, True, SLOT_TAG | rearmed << 32 | demote
                )  # fmt: skip
                assert reaped[2][0] == 1
            else:
                assert slot_states[demote][:2] == (IDLE, rearmed) and reaped[2][0] == 0
        # Delivered: one packet per receive of the batch, with its count; every slot IDLE at
        # its next generation but a re-armed one (ARMED, its receive still pending).
        packets, iosbs, files, slots, counts, table, lines = delivered
        assert [p[1] for p in packets] == list(range(n))
        assert [(p[2], p[3]) for p in packets] == [(0, res) for _, res in spec]
        assert iosbs[:n] == [(0, res) for _, res in spec]
        assert (table, lines) == ([], [])
        for i, (g, _) in enumerate(spec):
            again = mode == "rearm" and i == demote
            assert slots[i][:2] == (
                (ARMED, (g + 1) & GEN_MASK) if again else (IDLE, (g + 1) & GEN_MASK)
            )
            assert files[i] == ((1, 0) if again else (0, 0))
        assert counts[0] == (1 if mode == "rearm" else 0)
    finally:
        for w in worlds:
            w.close()


def test_the_python_reference_reaps_a_step_1_demoters_slot_with_its_request(null_fd: int) -> None:
    """The reference takes the C path's road: no demotion step 2 in the reaper (no
    ``settle_locked``, no request line opened), the slot REAPED with its request."""
    for cls in (ReceiveSlot, _fastio.ReceiveSlot):
        w = World([(2, 9), (5, 10), (0, 11)], 1, "step1", null_fd, cls)
        try:
            finished: list[Any] = []
            names = python_frames(partial(reaper_mod._PY_PROCESS, w.reaper, w.cqes, finished))
            assert names & {"settle_locked", "_demote_reaped", "open_direct_locked"} == set()
            slot = w.slots.items[1]
            assert finished == w.slots.items and slot.op is not None
            assert [(s.state, s.res) for s in finished] == [(REAPED, 9), (REAPED, 10), (REAPED, 11)]
            assert (w.slots.armed, w.slots.done, w.reaper.done) == (0, 3, 0)
            w.after()  # the demoter's step 2: nothing to do
            assert slot.state == REAPED and not w.table and not w.streams.lines
            w.reaper.deliver(finished)
            assert slot.op is None and slot.state == IDLE and slot.gen == 6
            assert [ov.information for ov in w.ovs] == [9, 10, 11]
            assert [f.stream_in for f in w.files] == [0, 0, 0] and not w.files[1]._pending
        finally:
            w.close()


@pytest.mark.parametrize("slot_class", ["py", "c"])
def test_a_slot_armed_again_in_the_lock_wait_keeps_its_new_incarnation(
    slot_class: str, null_fd: int
) -> None:
    """Both demotion steps and a second receive's arm while the reaper waited for the lock: the
    old CQE completes the demoted request (from the table); the new incarnation stays ARMED,
    its receive pending, its OVERLAPPED untouched."""
    cls = ReceiveSlot if slot_class == "py" else _fastio.ReceiveSlot
    w = World([(4, 7), (8, 12)], 0, "rearm", null_fd, cls)
    try:
        finished: list[Any] = []
        reaper_mod._PY_PROCESS(w.reaper, w.cqes, finished)
        slot = w.slots.items[0]
        assert (slot.state, slot.gen, slot.res) == (ARMED, 5, 0)
        w.after()
        w.reaper.deliver(finished)
        assert not w.table and not w.streams.lines
        first, second, new = w.ovs  # (slot 0's first incarnation, slot 1's, slot 0's new one)
        assert (first.information, second.information) == (7, 12)
        # The new incarnation's OVERLAPPED untouched (as the world armed it), no packet for it.
        assert (new.status, new.information) == (0, 0)
        assert sorted((p.key, p.bytes_transferred) for p in w.port._packets) == [(0, 7), (1, 12)]
        assert all(p.overlapped is not new for p in w.port._packets)
        assert (slot.state, slot.gen, slot.file is w.files[0]) == (ARMED, 5, True)
        assert w.files[0].stream_in == 1 and w.slots.armed == 1
    finally:
        w.close()


def _plain(world: World) -> World:
    """``world`` with its backend's lock the real one under the stand-in (no demoter)."""
    world.streams._lock = world.lock.lock
    return world


@pytest.mark.parametrize("slot_class", ["py", "c"])
def test_an_interrupt_anywhere_in_a_slot_batch_completes_each_receive_once(
    slot_class: str, null_fd: int
) -> None:
    """The reaper's batch of receive-slot CQEs in Python (``Reaper._batch_locked``: ``process``,
    ``_reap_slot``, ``deliver``), swept (``winaio.testing.Sweep``: a callee's entry, a C
    call's return in those frames, one interrupt per run): wherever the interrupt lands, the
    batch's continuations
    (``reaper_cuts``) finish it - every receive delivered once, with its count (one packet
    each), every slot IDLE at its next generation, nothing left in the table or the lines, the
    counts those of the uncut batch. Before: a cut at ``process``'s entry or in its set-up
    (``len``'s, ``iter``'s return) lost the whole batch - its CQEs out of the ring, never
    mapped, every receive pending for ever - and one at ``deliver``'s entry left it REAPED,
    never delivered. The backend's lock is a real one here (a Python stand-in's ``__exit__``
    entry would be a cut point no ``with`` on a C lock has)."""
    cls = ReceiveSlot if slot_class == "py" else _fastio.ReceiveSlot
    spec = [(3, 4), (0, 9), (7, 1)]
    codes = {
        f.__code__
        for f in (
            reaper_mod.Reaper._batch_locked,
            reaper_mod._PY_PROCESS,
            reaper_mod.Reaper._reap_slot,
            reaper_mod._PY_DELIVER_BATCHES,
        )
    }
    with accelerator_for_test("python"):
        base = _plain(World(spec, 1, "none", null_fd, cls))
        try:
            base.reaper._batch_locked(base.cqes)
            expected = base.delivered()
        finally:
            base.close()
        assert [(p[2], p[3]) for p in expected[0]] == [(0, res) for _, res in spec]

        def run(k: int) -> tuple[Sweep, list[str]]:
            w = _plain(World(spec, 1, "none", null_fd, cls))
            try:
                sweep = Sweep(k, codes)
                profiled(sweep, lambda: w.reaper._batch_locked(w.cqes))
                bad = left_behind(locks={"the backend's lock": w.lock.lock})
                got = w.delivered()
                if got != expected:
                    bad.append(f"delivered {got}")
                return sweep, bad
            finally:
                w.close()

        assert sweep_cut_points(run, at_least=5) == {}
