"""The C ReceiveSlot and SlotTable types (``_io/_fastslot.c``; docs/plans/receive-slot.md §2).

- Every field is a member with the plan's name, readable and writable from Python (the
  reference functions of the Python twin write them); object members start as None, ``index``
  as 2**32-1 (no index yet); the state constants have the plan's values.
- ``pin()`` exports the slot's view (writable, C-contiguous): while pinned, a bytearray cannot
  be resized and the memoryview cannot be released; after ``unpin()`` both can. A read-only
  or strided buffer is refused with nothing pinned; a second ``pin()`` is refused.
- ``pending()`` counts ARMING/ARMED/REAPED/DELIVERING; ``user_data`` is the plan's encoding.
- References: no leak over many pin/unpin incarnations; a slot <-> table <-> socket cycle is
  collected by the GC (the slot's export released with it).
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import weakref
from typing import Any

import pytest

from winaio._io import _accel

try:
    from winaio._io import _fastio
except ImportError:  # (not built: the fixture below skips, or fails under REQUIRE_ACCEL)
    _fastio = None  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _need_c() -> None:
    if not _accel.BUILT:
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            pytest.fail("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
        pytest.skip("the C accelerator (winaio._io._fastio) was not built")


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
SLOT_TAG = 1 << 63


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


def test_a_pinned_memoryview_cannot_be_released_until_unpinned() -> None:
    data = bytearray(4)
    s = _slot()
    s.view = memoryview(data)
    s.pin()
    with pytest.raises(BufferError):
        s.view.release()
    s.unpin()
    s.view.release()
    data.extend(b"x")


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
