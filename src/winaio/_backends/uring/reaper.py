"""The completion side: reaping the CQ ring and delivering what it holds (the "reaper").

Purpose: :class:`Reaper`, the one place CQEs become completions. Whoever reaps - a leader
waiting on the ring (``lead``: its :meth:`Reaper.reap` is the leaders' ``reap``, called
directly), the ring thread (its rounds, through :meth:`Reaper.process`), or a closing thread
after the ring thread died (:meth:`Reaper.drain`) - maps each CQE to its request (the
backend's table of requests in flight, ``common.InFlight``), hands STREAM heads to their line
(``streams``), migrates a request that died with its submitter (``migration``; the backend's
``migrate`` hook backlogs it), and delivers the batch (``op.complete``, the funnel of
``_io._dispatch``). It owns the CQ lock and the done/cancelled counters.

Invariants:
- every CQE is reaped once and mapped under :attr:`Reaper.cq_lock` (taken before the
  backend's lock when both are needed); batches are delivered under it too, so completions
  reach their waiters in the order they were reaped, whichever thread reaps next (two reads
  of one socket, #66); ``op.complete`` is called with the backend's lock not held
  (invariant 5);
- a request leaves the table once, and is completed once (``op.done``);
- completions are counted (:attr:`Reaper.done`, :attr:`Reaper.cancelled`) before they are
  delivered, so that a woken issuer already sees them in ``statistics()``;
- a BaseException (Ctrl-C: a signal handler's KeyboardInterrupt in a main thread leading the
  ring) raised anywhere between a CQE leaving the CQ ring and its delivery does not lose a
  request: what was reaped is mapped, counted and delivered before it propagates (the
  continuations: ``reaper_cuts.ReaperCuts``, an object the reaper owns, :attr:`Reaper.cuts`).

The C accelerator (``winaio._io._fastio``) replaces, with exactly their effects, :meth:`Reaper.reap`
(``_fastreap.c``: 0 at once on an empty CQ ring - a leader's first look, every wait -, its QD1
path statement for statement - the CQ lock, the reap, the table, the line's ``service`` and the
module's ``deliver`` called as here, ``cuts.service_cut``/``cuts.deliver_rest``/``report``
on an exception - and the shared Python continuation :meth:`Reaper._batch_locked` for every other
batch), and :meth:`Reaper.process` (its common batch), :meth:`Reaper.deliver`, this module's
``deliver``/``deliver_batch`` (and ``_dispatch``'s) and ``StreamLines.service_direct``/``service``
(their plain direct head) (``_fastdone.c``); the Python functions stay the reference and the
fallback (``winaio._io._accel``: :func:`_install`; ``docs/design.md``, "The completion side in C").

Imports ``winaio._io`` (operations, the delivery funnel, the accelerator), ``common``,
``migration``, ``reaper_cuts`` and ``streams``.
"""

from __future__ import annotations

import errno
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..._io import _accel, _dispatch
from ..._io._backend import OpKind
from ..._io._dispatch import _queue_routine, deliver, deliver_batch
from ..._io._files import _IO_KEY, FileObject
from ..._io._interrupts import cut_at_entry, interrupt
from ..._io._ops import Operation
from ..._io._overlapped import Overlapped
from ..._io._port import CompletionPacket, CompletionPort
from ..._io._slot import ARMED, DEMOTING_K, GEN_MASK, REAPED, SLOT_TYPES, demote_locked
from ..._io._stream_ops import StreamReadOp
from ..._kernel._dispatcher import LOCK, ThreadState, WaitBlock, wake_waiters
from ..._kernel._objects import Event
from ...codes import NtStatus, WaitCode
from .abi.consts import CqeFlags
from .common import (
    CANCELLED,
    REAP_BATCH,
    SLOT_TAG,
    UD_POKE,
    UNSUCCESSFUL,
    Finished,
    InFlight,
    report,
)
from .migration import Migration
from .reaper_cuts import ReaperCuts
from .slots import SlotTable, settle_locked
from .streams import _SPARE_MAX, Line, StreamLines

if TYPE_CHECKING:
    from .ring import BackendRing

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python methods run
    _fastio = None  # type: ignore[assignment]

__all__ = ["Reaper"]

_F_MORE = int(CqeFlags.IORING_CQE_F_MORE)
_PLAIN_COMPLETE = Operation.complete
#: What a request fails with when its submitting thread is gone (``uring``).
_DIED = frozenset((-errno.ECANCELED, -errno.EFAULT))
_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_monotonic = time.monotonic


class Reaper:
    """The completion side of one backend (module docstring).

    Args:
        ring: the ring whose CQ ring it reaps.
        table: the backend's requests in flight (inserted under the backend's lock; taken
            out here, under :attr:`cq_lock`).
        streams: the backend's STREAM lines (a reaped head goes back to its line).
        migration: the backend's migration state (``migration``).
        migrate: ``migrate(op, extra)``: backlog a request that died with (or was cancelled
            for) its submitting thread, for the ring thread to submit again (under
            :attr:`cq_lock`; takes the backend's lock).
        poke_ended: ``poke_ended(res)``: the leaders' multishot poke poll ended.
        wake: wake the ring thread (it takes the backend's lock): a closing ring thread
            waits for the count of completions delivered.
        slots: the backend's receive slots (``slots``): a CQE whose user_data has
            ``SLOT_TAG`` and is not in the table is a slot incarnation's.
    """

    __slots__ = (
        "_migrate", "_migration", "_poke_ended", "_ring", "_slots", "_streams", "_table",
        "_wake", "cancelled", "closing", "cq_lock", "cuts", "done",
    )  # fmt: skip

    def __init__(
        self,
        ring: BackendRing,
        table: InFlight,
        streams: StreamLines,
        migration: Migration,
        migrate: Callable[[Operation, object], None],
        poke_ended: Callable[[int], None],
        wake: Callable[[], None],
        slots: SlotTable | None = None,
    ) -> None:
        self._ring = ring
        self._slots = SlotTable() if slots is None else slots
        self._table = table
        self._streams = streams
        self._migration = migration
        self._migrate = migrate
        self._poke_ended = poke_ended
        self._wake = wake
        #: Guards reaping, mapping and delivery (module docstring).
        self.cq_lock = threading.Lock()
        #: Set (under the backend's lock) when the backend closes: no QD1 shortcut, no
        #: resubmission of dead requests, and each delivery wakes the closing ring thread.
        self.closing = False
        #: Requests completed from a CQE, and how many of them cancelled (under cq_lock).
        self.done = self.cancelled = 0
        #: What a batch cut by an interrupt still owes its requests (``reaper_cuts``).
        self.cuts = ReaperCuts(self, table, self._slots, streams)

    def reap(self) -> int:
        """Reap the CQ ring and deliver (a leader or the ring thread, no lock held); returns
        how many CQEs it took."""
        ring = self._ring
        if not ring.cq_ready() and not ring.cq_has_overflow():
            # Nothing to reap. (IORING_SQ_TASKRUN, task work queued for the ring, is not
            # looked at: the leader calling this either sleeps in io_uring_enter(GETEVENTS)
            # next, which runs its own task work and submits its burst in the same syscall -
            # liburing's wait path, not its peek_batch - or returns on its token, leaving
            # completions posted later to its next wait or the watch: docs/design.md "Task
            # work without the IPI".)
            return 0
        finished: Finished = []
        cq_lock = self.cq_lock
        with cq_lock:
            cqes = ring.reap(REAP_BATCH)
            # From here the CQEs are out of the CQ ring, in nobody else's hands: an interrupt
            # (Ctrl-C) before the one-CQE path took its request out of the table (at ``len``'s
            # or ``get``'s return) has them mapped and delivered by the batch path first, and
            # one that cut :meth:`_batch_locked` at its entry makes it again (recv).
            entry = None
            try:
                if len(cqes) == 1 and not (self._migration.migrating or self.closing):
                    ud, res, _ = cqes[0]
                    entry = self._table.get(ud)
            except BaseException as exc:
                if interrupt(exc):
                    self._batch_locked(cqes)
                raise
            if entry is not None and res > 0:
                # The QD1 case, on the critical path of every read (CQE -> next submission):
                # one request that succeeded (a FILE request, or a STREAM head whose own
                # request brought data), delivered as :meth:`process` and :meth:`deliver`
                # would (same checks, same count, ``deliver`` being what ``deliver_batch``
                # does per op) without their batch set-up (~100 bytecodes). No call from the
                # table's ``get`` to its ``del`` (no interrupt between them).
                op, extra = entry
                if op.__class__.complete is _PLAIN_COMPLETE:
                    del self._table[ud]
                    if extra.__class__ is Line:
                        # A STREAM head (the pended socket receive at C=1): its line, as
                        # :meth:`process` would; most often it alone completes. A
                        # BaseException (Ctrl-C) once the table gave the request up is
                        # raised after the line's results are counted and delivered (the
                        # rule of ``cuts.deliver_rest``, idempotent: ``op.done``).
                        try:
                            cancelled = self._streams.service(extra, res, finished)
                            self.done += len(finished)
                        except BaseException:
                            self.cuts.service_cut(extra, res, ud, finished)
                            raise
                        self.cancelled += cancelled
                        try:
                            if len(finished) != 1:
                                if finished:  # (none: the head polls again)
                                    self.deliver(finished)
                                return 1
                            op, status, res = finished[0]  # type: ignore[misc]  # (a line's)
                            if op.__class__.complete is not _PLAIN_COMPLETE:
                                self.deliver(finished)
                                return 1
                        except BaseException:
                            self.cuts.deliver_rest(finished)
                            raise
                    else:
                        status = _SUCCESS
                        self.done += 1
                    try:
                        deliver(op, status, res)
                    except Exception:
                        report(f"completing {op!r}")
                    except BaseException:
                        self.cuts.deliver_rest([(op, status, res)])  # Ctrl-C
                        raise
                    return 1
            try:
                return self._batch_locked(cqes)
            except BaseException as exc:
                if interrupt(exc) and cut_at_entry(exc, self._batch_locked):
                    self._batch_locked(cqes)  # (cut at its entry: it took nothing)
                raise

    def _batch_locked(self, cqes: list[tuple[int, int, int]]) -> int:
        """Map and deliver reaped CQEs (:meth:`reap` but its QD1 path, and its C accelerator,
        under cq_lock); returns how many."""
        if cqes:
            finished: Finished = []
            try:
                self.process(cqes, finished)
            except BaseException as exc:
                # Ctrl-C while mapping the batch: process() finished its work (every CQE
                # mapped), so what it mapped is delivered before the exception goes on; cut
                # at its (Python) entry, it mapped nothing: made now.
                if interrupt(exc) and cut_at_entry(exc, self.process):
                    self.process(cqes, finished)
                self.cuts.deliver_rest(finished)
                raise
            if finished:
                # Under the lock: completions are delivered in the order they were reaped,
                # whichever thread reaps next (two reads of one socket, #66).
                try:
                    self.deliver(finished)
                except BaseException as exc:  # (cut at its Python entry: none delivered)
                    if interrupt(exc) and cut_at_entry(exc, self.deliver):
                        self.cuts.deliver_rest(finished)
                    raise
        return len(cqes)

    def process(self, cqes: list[tuple[int, int, int]], finished: Finished) -> None:
        """Map a batch of CQEs to completions, appended to ``finished``, and count them as
        done (under cq_lock)."""
        table = self._table
        get = table.get
        append = finished.append
        service = self._streams.service
        migrating = self._migration.migrating
        cancelled = start = 0
        reaped = 0  # receive slots appended (counted by the slot table, not here)
        slots = self._slots
        items = slots.items
        lock = self._streams._lock
        closing = self.closing
        heads: list[tuple[Line, int, int]] = []  # STREAM heads whose RECV brought data
        entry: tuple[Operation, object] | None = None
        ud = res = flags = 0
        it: Iterator[tuple[int, int, int]] | None = None
        try:
            start = len(finished)
            it = iter(cqes)  # its length hint says where an exception cut the loop
            for ud, res, flags in it:
                # get, then del: an interrupt at the end of a pop() would lose what it took;
                # at the end of get() the entry is still in the table (``cuts.process_cut``), and
                # from the del (a statement, no signal check) ``entry`` holds it.
                entry = get(ud)
                if entry is None:
                    if ud >= SLOT_TAG:
                        # A receive slot's incarnation (not demoted: a demoted one is in the
                        # table): REAPED and appended (:meth:`_reap_slot`, inline for the
                        # plain one), or demoted here, then mapped below.
                        index = ud & 0xFFFFFFFF
                        slot = items[index] if index < len(items) else None
                        gen = (ud >> 32) & GEN_MASK
                        if (
                            res > 0
                            and slot is not None
                            and (slot.state == ARMED or slot.state == DEMOTING_K)
                            and slot.gen == gen
                            and not closing
                        ):
                            with lock:
                                # Read again under the lock (the wait let a demoter in: see
                                # :meth:`_reap_slot`). Up to the append: no call.
                                state = slot.state
                                if slot.gen == gen and (
                                    state == ARMED or (state == DEMOTING_K and slot.op is not None)
                                ):
                                    slot.res = res
                                    slot.state = REAPED
                                    slots.armed -= 1
                                    slots.done += 1
                                    append(slot)
                                    reaped += 1
                                    continue
                        if self._reap_slot(ud, res, finished):
                            reaped += 1
                            continue
                        entry = get(ud)
                        if entry is None:
                            continue  # (reported by _reap_slot)
                    else:
                        if ud == UD_POKE and not flags & _F_MORE:
                            self._poke_ended(res)
                        continue  # UD_CANCEL: -ENOENT/-EALREADY are normal races
                del table[ud]
                op, extra = entry  # extra: the FILE op's keepalive (dropped now), or its line
                if migrating and ud in migrating:
                    migrating.discard(ud)
                    if res < 0 and not op.cancel_requested:
                        self._migrate(op, extra)
                        continue
                elif res < 0 and res in _DIED and self._migration.died(op, self.closing):
                    self._migrate(op, extra)
                    continue
                if extra.__class__ is Line:
                    if res > 0 and extra.direct:
                        heads.append((extra, res, ud))  # below, in one hold of the lock
                    else:
                        cancelled += service(extra, res, finished)
                    continue
                if res > 0:
                    append((op, _SUCCESS, res))  # every FILE op maps a positive result so
                    continue
                if res < 0 and op.cancel_requested:
                    # Cancelled, or dead with its submitting thread (-ECANCELED, -EFAULT...).
                    append((op, CANCELLED, 0))
                    cancelled += 1
                    continue
                try:
                    status, information = op.from_cqe(res)
                except Exception:
                    report(f"mapping the CQE of {op!r}")
                    status, information = UNSUCCESSFUL, 0
                append((op, status, information))
        except BaseException:
            # Ctrl-C (a signal handler's) inside the loop: the CQEs are out of the CQ ring and
            # whatever the loop took out of the table is in nobody else's hands. Finished
            # here, then re-raised (the caller delivers ``finished``: ``cuts.deliver_rest``).
            if it is None:  # (cut before the loop, at len's or iter's return: none taken)
                self.process(cqes, finished)
                raise
            self.done += len(finished) - start - _slots_in(finished, start)
            self.cancelled += cancelled
            self.cuts.process_cut(cqes, it, ud, res, flags, entry, heads, finished)
            raise
        if heads:
            # After the others: order matters within a line only (one head per line in the
            # kernel, so one CQE per line here), not between files.
            try:
                cancelled += self._streams.service_direct(heads, finished)
            except BaseException:
                self.done += len(finished) - start - reaped
                self.cancelled += cancelled
                self.cuts.heads_cut(heads, finished)  # Ctrl-C: the heads it did not take
                raise
        # Counted before delivery, so that a woken issuer already sees them in statistics().
        self.done += len(finished) - start - reaped
        self.cancelled += cancelled

    def _reap_slot(self, ud: int, res: int, finished: Finished) -> bool:
        """The CQE of a receive slot's incarnation (``ud`` has ``SLOT_TAG``, not in the
        table; :meth:`process`, under cq_lock). The plain one - ARMED, data, the backend
        open - becomes REAPED under the backend's lock (``armed`` - 1, ``done`` + 1) and is
        appended to ``finished`` (True): the delivery is ``_dispatch``'s. Any other (an
        error, EOF, a cancel, a death with its submitter, a closing backend, a demoter
        between its two steps) is demoted here, both steps, and False: the caller maps the
        CQE from the table as a request's (``Migration.died`` included). An interrupt cuts
        it either before the slot is REAPED or after it is appended (``cuts.process_cut``
        decides by the slot's state)."""
        slots = self._slots
        items = slots.items
        index = ud & 0xFFFFFFFF
        gen = (ud >> 32) & GEN_MASK
        slot = items[index] if index < len(items) else None
        if slot is None or slot.gen != gen:
            if ud not in self._table:  # (in it: a demoter settled it meanwhile, mapped below)
                report(f"a CQE of no receive slot incarnation ({ud:#x}, {res})", RuntimeError(ud))
            return False
        state = slot.state
        if res > 0 and state in (ARMED, DEMOTING_K) and not self.closing:
            with self._streams._lock:
                # The wait for the lock may have let a demoter in. Step 1 only (DEMOTING_K at
                # ``gen``, its request built; its step 2 waits for this lock): the slot is
                # reaped with its request - REAPED with ``op`` set, the state a demotion made
                # after the reap leaves, delivered as the request - and the demoter's step 2
                # then finds nothing to do (as the C batch, ``dn_slot_batch``). Both steps
                # (the slot IDLE at ``gen`` + 1, or armed again there): the CQE is the
                # request's, in the table, mapped by the caller. The generation is read
                # again: an ARMED slot at another one is a later incarnation's.
                state = slot.state
                if slot.gen == gen and (
                    state == ARMED or (state == DEMOTING_K and slot.op is not None)
                ):  # (statements up to the append: no call, no signal)
                    slot.res = res
                    slot.state = REAPED
                    slots.armed -= 1
                    slots.done += 1
                    finished.append(slot)
                    return True
            return False
        self._demote_reaped(slot, gen)
        return False

    def _demote_reaped(self, slot: Any, gen: int) -> None:
        """Both steps of a demotion, from the reaper (its CQE is not plain): the incarnation
        is then a request in the table (step 1 under LOCK, step 2 under the backend's lock,
        never nested)."""
        with LOCK:
            if slot.gen == gen:
                demote_locked(slot)
        with self._streams._lock:
            drop = settle_locked(slot, gen, self._table, self._streams)
        del drop  # (released here, no lock held)

    def count(self, done: int, cancelled: int) -> None:
        """Count ``done`` completions, ``cancelled`` of them cancelled (under cq_lock: the
        continuations' heads, ``reaper_cuts``)."""
        self.done += done
        self.cancelled += cancelled

    def count_locked(self, finished: Finished) -> None:
        """Count completions that did not come from :meth:`process` as done (under
        cq_lock; a receive slot's item, counted by the slot table already, is not)."""
        items = [item for item in finished if isinstance(item, tuple)]
        self.done += len(items)
        self.cancelled += sum(1 for _, status, _ in items if status == CANCELLED)

    def deliver(self, finished: Finished) -> None:
        """Complete a batch of operations, in order (any reaper, under cq_lock, so that
        batches are delivered in the order they were reaped); counted by :meth:`process` (or
        :meth:`count_locked`) already. A BaseException raised meanwhile propagates once the
        rest of the batch is delivered (``cuts.deliver_rest``)."""
        try:
            if self.closing:
                self._wake()  # a closing ring thread waits for this count
            for item in finished:
                # (a receive slot's item: ``deliver_batch`` delivers it)
                if isinstance(item, tuple) and item[0].__class__.complete is not _PLAIN_COMPLETE:
                    break
            else:
                # The common case: one hold of the dispatcher lock for the batch, and a port
                # waiter takes the whole batch in one dequeue (``_dispatch.deliver_batch``).
                for exc in deliver_batch(finished):
                    report(f"completing a batch of {len(finished)}", exc)
                return
            for item in finished:
                if not isinstance(item, tuple):
                    for exc in deliver_batch([item]):  # a receive slot's
                        report(f"completing {item!r}", exc)
                    continue
                op, status, information = item
                try:
                    op.complete(status, information)
                except Exception:
                    report(f"completing {op!r}")
                    if not op.done:
                        op.complete(UNSUCCESSFUL, 0)
        except BaseException:
            self.cuts.deliver_rest(finished)
            raise

    def drain(self, timeout: float) -> Finished:
        """Reap until the table is empty or ``timeout`` passes (close, under cq_lock)."""
        finished: Finished = []
        deadline = _monotonic() + timeout
        ring = self._ring
        while self._table and _monotonic() < deadline:
            cqes = ring.reap(REAP_BATCH)
            if cqes:
                self.process(cqes, finished)
            else:
                ring.enter_timeout(0, 1, 0.02)
        return finished


def _slots_in(finished: Finished, start: int) -> int:
    """How many receive slots ``finished`` holds from ``start`` (counted by the slot table,
    not by the reaper: :meth:`Reaper.process` after an interrupt)."""
    return sum(1 for item in finished[start:] if item.__class__ in SLOT_TYPES)


# ---------------------------------------------------------------------- the C accelerator

#: The Python methods the C accelerators wrap (the references, the fallbacks).
_PY_REAP = Reaper.reap
_PY_SERVICE_DIRECT = StreamLines.service_direct
_PY_PROCESS = Reaper.process
_PY_SERVICE = StreamLines.service
_PY_DELIVER_BATCHES = Reaper.deliver
_PY_DELIVER = _dispatch.deliver
#: ``_fastreap.c``'s ``reap`` (the empty-CQ test and the QD1 path).
_C_METHODS: dict[str, object] | None = None
if _fastio is not None:
    _C_METHODS = _fastio.configure_ring(
        "reaper", Reaper, _PY_REAP, Migration, InFlight, Line, _PLAIN_COMPLETE, globals(),
        _SUCCESS, REAP_BATCH,
    )  # fmt: skip
#: ``_fastdone.c``'s ``deliver_batch``, ``StreamLines.service_direct``, ``Reaper.process``,
#: ``deliver`` (this module's: the one-CQE path), ``StreamLines.service`` and ``Reaper.deliver``
#: (which calls this module's ``deliver_batch``, whichever is in place) (None: not built).
_C_DONE: tuple[Any, Any, Any, Any, Any, Any] | None = (
    None
    if _fastio is None
    else _fastio.configure_done(
        Operation, FileObject, Overlapped, Event, CompletionPort, CompletionPacket, WaitBlock,
        ThreadState, Line, StreamLines, deque, Reaper, Migration, InFlight, LOCK, wake_waiters,
        _queue_routine, _dispatch.py_deliver_batch, StreamReadOp.from_cqe, OpKind.STREAM,
        select.POLLIN, _IO_KEY, int(WaitCode.WAIT_OBJECT_0), _SUCCESS, _SPARE_MAX, UD_POKE,
        _dispatch.deliver, globals(), _PLAIN_COMPLETE, report,
    )
)  # fmt: skip


def _install(on: bool) -> None:
    """The C functions (``on``) or the Python ones, here and in ``_dispatch`` (``_accel``:
    one switch for every accelerated path)."""
    global deliver, deliver_batch
    reap = None if _C_METHODS is None else _C_METHODS["reap"]
    d = _C_DONE or (None, None, None, None, None, None)
    _accel.install_methods(
        Reaper, {"reap": (reap, _PY_REAP), "process": (d[2], _PY_PROCESS),
                 "deliver": (d[5], _PY_DELIVER_BATCHES)}, on,
    )  # fmt: skip
    _accel.install_methods(
        StreamLines, {"service_direct": (d[1], _PY_SERVICE_DIRECT), "service": (d[4], _PY_SERVICE)},
        on,
    )  # fmt: skip
    c = _C_DONE if on else None
    batch = _dispatch.py_deliver_batch if c is None else c[0]
    _dispatch.deliver_batch = batch
    deliver_batch = batch
    deliver = _PY_DELIVER if c is None else c[3]


_accel.register(_install)
