"""The reaper's continuations after an interrupt: what a cut batch still owes its requests.

Purpose: :class:`ReaperCuts`, an object each :class:`~.reaper.Reaper` owns (its ``cuts``),
whose methods run only once a BaseException (Ctrl-C: a signal handler's KeyboardInterrupt in a
main thread leading the ring) was raised between a CQE leaving the CQ ring and its delivery -
in :meth:`Reaper.process`'s loop (:meth:`ReaperCuts.process_cut`), in the STREAM heads'
service (:meth:`ReaperCuts.heads_cut`, :meth:`ReaperCuts.service_cut`) or in the delivery
(:meth:`ReaperCuts.deliver_rest`). It is constructed with what it reads (the in-flight table,
the slot table, the lines) and the reaper whose public methods it calls (``process``,
``count_locked``, ``count``: the counters stay the reaper's). The C accelerators
(``_fastreap.c``, ``_fastdone.c``, ``_fastprocess.c``) call the same methods by name on the
reaper's ``cuts`` on an exception: they are the one continuation of both paths.

Invariants (``reaper``'s): every CQE reaped is mapped, counted and delivered before the
exception goes on - no request is lost, none completed twice (``op.done`` is the
exactly-once rule); each step runs under the reaper's ``cq_lock``, as the path it finishes;
nothing here runs until an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from ..._io import _dispatch
from ..._io._ops import Operation
from ..._io._slot import ARMED, DEMOTING_K, GEN_MASK
from ..._kernel._dispatcher import LOCK
from .common import SLOT_TAG, Finished, InFlight, report
from .streams import Line, StreamLines

if TYPE_CHECKING:
    from .slots import SlotTable

__all__ = ["ReaperCuts"]


class _Counting(Protocol):
    """What the continuations call on their reaper (``reaper.Reaper``'s public methods)."""

    def process(self, cqes: list[tuple[int, int, int]], finished: Finished) -> None: ...

    def count_locked(self, finished: Finished) -> None: ...

    def count(self, done: int, cancelled: int) -> None: ...


class ReaperCuts:
    """The continuations of one reaper (module docstring).

    Args:
        reaper: the reaper that owns it (its ``process``, ``count_locked``, ``count``).
        table, slots, streams: the backend's in-flight table, receive slots and lines (the
            reaper's collaborators).
    """

    __slots__ = ("_reaper", "_slots", "_streams", "_table")

    def __init__(
        self, reaper: _Counting, table: InFlight, slots: SlotTable, streams: StreamLines
    ) -> None:
        self._reaper = reaper
        self._table = table
        self._slots = slots
        self._streams = streams

    def service_cut(self, line: Line, res: int, ud: int, finished: Finished) -> None:
        """A BaseException (Ctrl-C) cut :meth:`reap`'s QD1 path in or right after its line's
        service, once the table gave the request up: the line's results are counted and
        delivered before it propagates (the rule of :meth:`deliver_rest`, idempotent:
        ``op.done``); shared by the C accelerator (under cq_lock)."""
        if line.poll_ud == ud:  # cut before the line took its result
            self.heads_cut([(line, res, ud)], finished)
        else:
            self._reaper.count_locked(finished)  # not counted yet
        self.deliver_rest(finished)

    def process_cut(
        self,
        cqes: list[tuple[int, int, int]],
        it: Iterator[tuple[int, int, int]],
        ud: int,
        res: int,
        flags: int,
        entry: tuple[Operation, object] | None,
        heads: list[tuple[Line, int, int]],
        finished: Finished,
    ) -> None:
        """A BaseException cut :meth:`process`'s loop: finish its work before it propagates
        (under cq_lock; the rule of :meth:`deliver_rest`). The CQE the loop took last
        (``ud``) is mapped again if it was taken out of the table and not queued yet (a FILE
        request whose ``token`` is still ``ud``, not in ``finished``; a line whose
        ``poll_ud`` is still ``ud``, not among ``heads``) or not taken at all; the CQEs after
        it are mapped; the heads collected are serviced. Costs nothing until an exception."""
        rest = list(it)
        table = self._table
        if len(cqes) > len(rest):  # the loop took ``ud``'s CQE
            redo = ud in table
            if not redo and ud >= SLOT_TAG:
                # A receive slot's, cut before it was REAPED or demoted into the table (not
                # after: REAPED, or IDLE with its request taken out: ``entry``, below).
                items = self._slots.items
                index = ud & 0xFFFFFFFF
                slot = items[index] if index < len(items) else None
                redo = (
                    slot is not None
                    and slot.gen == (ud >> 32) & GEN_MASK
                    and (slot.state == ARMED or slot.state == DEMOTING_K)
                )
            if not redo and entry is not None:
                op, extra = entry
                if extra.__class__ is Line:
                    line: Line = extra
                    redo = line.poll_ud == ud and not any(h[0] is line for h in heads)
                else:
                    redo = (
                        op.token == ud
                        and not op.done
                        and all(f[0] is not op for f in finished if isinstance(f, tuple))
                    )
                if redo:
                    table[ud] = entry  # taken again by the mapping below
            if redo:
                rest.insert(0, (ud, res, flags))
        if rest:
            self._reaper.process(rest, finished)
        if heads:
            self.heads_cut(heads, finished)

    def heads_cut(self, heads: list[tuple[Line, int, int]], finished: Finished) -> None:
        """Service the collected STREAM heads that were not serviced yet (their line's
        ``poll_ud`` is still their CQE's: :meth:`StreamLines.service` clears it), after a
        BaseException cut :meth:`process` short (under cq_lock)."""
        todo = [head for head in heads if head[0].poll_ud == head[2]]
        if todo:
            start = len(finished)
            cancelled = self._streams.service_direct(todo, finished)
            self._reaper.count(len(finished) - start, cancelled)

    def deliver_rest(self, finished: Finished) -> None:
        """A BaseException (Ctrl-C: a signal handler's KeyboardInterrupt, in the main thread
        leading the ring) cut the delivery of ``finished`` short: these CQEs are reaped and
        out of the table, so nobody else will ever complete them. Before the exception goes
        on to the caller (under cq_lock, still in reaping order):

        - a request not delivered yet (``op.done`` unset: the interrupt landed between two
          deliveries, or in the funnel before it took the request) is delivered now, in full;
        - a request whose delivery the interrupt cut inside the funnel (``_io._dispatch``,
          after it set ``op.done``) is not delivered again: ``op.done`` is the exactly-once
          rule, and a second delivery could post a second packet or signal an auto-reset
          event twice. Its IOSB is written (the funnel's first step); whatever step the
          interrupt cut (an event, the packet, an APC) is not redone. It is forgotten by its
          file here, so that close() still releases the descriptor.

        A receive slot's item (``_io._slot``) follows the same rule: still REAPED, it is
        delivered in full; left DELIVERING, its bookkeeping only is made
        (``_dispatch.deliver_slot_rest``).

        Exceptions of a delivery are reported, as :meth:`deliver` does; a second
        interrupt meanwhile does not stop the rest (the first one propagates)."""
        for item in finished:
            if not isinstance(item, tuple):
                try:
                    for exc in _dispatch.deliver_slot_rest(item):
                        report(f"completing {item!r}", exc)
                except BaseException:  # a second interrupt: the caller re-raises the first one
                    pass
                continue
            op, status, information = item
            try:
                if not op.done:
                    op.complete(status, information)
                elif op.registered:
                    with LOCK:
                        op.file._forget_locked(op)
            except Exception:
                report(f"completing {op!r}")
            except BaseException:  # a second interrupt: the caller re-raises the first one
                pass
