"""The backend side of the sockets' receive slots (``_io._slot``): the table of slots, and
the transitions made under the backend's lock.

Purpose: :class:`SlotTable`, one per backend: ``items`` (every slot that was ever armed, by
``index``; entries never move), the indices of dead slots to reuse, and the counters of
incarnations (``armed``: in the kernel or the SQ ring, not reaped nor demoted - part of the
backend's ``_in_flight``; ``submitted``, ``done``, ``cancelled``: part of ``statistics`` and
of the drain at close). :func:`settle_locked`: demotion step 2 (a DEMOTING_K slot's
incarnation becomes a Line head with its table entry under the incarnation's user_data, after
which the request paths handle it). The C twin of :class:`SlotTable` (``_fastslot.c``) has
the same attribute names.

Invariants: inserts and frees under the backend's lock; the reaper reads ``items`` without it
(an index in flight is never reassigned: only an IDLE slot dies). A slot's user_data is
``common.slot_ud(gen, index)``; it is never in ``InFlight`` except as a demoted incarnation,
never in ``Migration.owned`` (``own_locked`` skips it).

Imports ``winaio._io`` (the slot's states), ``common`` and ``streams``.
"""

from __future__ import annotations

import ctypes
from typing import Any, cast

from ..._io._slot import ARMING, DEMOTING_K, GEN_MASK, IDLE, release_refs
from .common import InFlight
from .streams import StreamLines

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python table
    _fastio = None  # type: ignore[assignment]

__all__ = ["SlotTable", "add_locked", "new_table", "outstanding", "settle_locked"]

_from_buffer = ctypes.c_char.from_buffer


class SlotTable:
    """The receive slots of one backend (module docstring); the Python twin of the C type
    ``winaio._io._fastio.SlotTable`` (same attribute names, no methods: the logic is this
    module's functions, which run on both)."""

    __slots__ = ("armed", "cancelled", "done", "free", "items", "submitted")

    def __init__(self) -> None:
        #: Every slot given an index, by index.
        self.items: list[Any] = []
        #: Indices of slots that died (``Socket._release_fd``, under LOCK: appended without
        #: the backend's lock; taken by :func:`add_locked` under it: list operations are
        #: atomic under the GIL).
        self.free: list[int] = []
        #: Incarnations in the kernel (or the SQ ring), not reaped and not demoted.
        self.armed = 0
        #: Incarnations that reached the SQ ring; reaped as slots; (none cancelled: a slot
        #: that is cancelled is demoted first).
        self.submitted = self.done = self.cancelled = 0


def new_table() -> SlotTable:
    """A backend's table: the C type where the accelerator is built (plain data, which this
    module's functions and the C paths both use: the C arm takes only the C table), else
    :class:`SlotTable`."""
    return SlotTable() if _fastio is None else cast(SlotTable, _fastio.SlotTable())


def add_locked(slots: Any, slot: Any) -> None:
    """Give ``slot`` an index (its first arm step 2, under the backend's lock), reusing a
    dead slot's: the new slot's generations continue the dead one's, so that a stale
    user_data (an ASYNC_CANCEL in flight) never names the new slot's incarnation."""
    free = slots.free
    items = slots.items
    if free:
        index = free.pop()
        slot.gen = (items[index].gen + 1) & GEN_MASK
        items[index] = slot
    else:
        index = len(items)
        items.append(slot)
    slot.index = index


def outstanding(slots: Any) -> list[Any]:
    """The slots with an incarnation out (neither IDLE nor DEAD: tests, close)."""
    return [slot for slot in slots.items if ARMING <= slot.state <= DEMOTING_K]


def settle_locked(slot: Any, gen: int, table: InFlight, streams: StreamLines) -> list[object]:
    """Demotion step 2 (under the backend's lock): a DEMOTING_K slot still at incarnation
    ``gen`` becomes a request in the kernel - a direct Line head (``poll_ud`` = the
    incarnation's user_data, ``keep`` an anchor on its memory), its ``InFlight`` entry,
    ``op.token`` = the line - and the slot goes IDLE (``gen`` + 1); ``armed`` - 1. Does
    nothing otherwise (idempotent: anyone holding the lock who finds it makes it). Returns
    the slot's references to drop once the lock is released."""
    if slot.state != DEMOTING_K or slot.gen != gen:
        return []
    op = slot.op
    ud = slot.ud
    file = slot.file
    fd = file.fd
    keep = _from_buffer(slot.view)  # (the view is pinned by the slot: it can take another)
    table[ud] = (op, streams.open_direct_locked(op, fd + fd, ud, keep))
    slot.table.armed -= 1
    slot.gen = (gen + 1) & GEN_MASK
    slot.state = IDLE
    return release_refs(slot)
