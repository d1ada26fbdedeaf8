"""Who submitted what, and what migrates when a submitter exits (the package's "migration").

Purpose: :class:`Migration`, the backend's record of request ownership for the Win32 rule that
port-bound I/O outlives its issuing thread (package docstring, "Who submits"): io_uring ties
a request to the thread that *submitted* it, so a thread that exits with requests in flight
cancels them itself (ASYNC_CANCEL) and marks them migrating; a request whose CQE then says the
cancel won (or that it died with its submitter) goes to the backlog, and the ring thread, which
lives as long as the backend, submits it again.

Invariants (all under the backend's lock, except :meth:`died`, under the CQ lock):
- every SQE submitted by a thread is recorded as that thread's (:meth:`own_locked`) before
  the lock is released, even when the kernel refused it (migrating a request the ring thread
  submits in the end costs a cancel; not migrating one this thread submitted loses it);
  records of completed requests are pruned lazily, never those of requests in flight; a
  receive slot's incarnations are not recorded (their user_data has ``SLOT_TAG``): one that
  dies with its submitter comes back -ECANCELED, is demoted and resubmitted (:meth:`died`);
- a request is resubmitted at most once for dying with an unrecorded submitter (:meth:`died`).

Imports ``winaio._io`` (operations), ``winaio._kernel`` (thread states) and ``common``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

from ..._io._ops import Operation
from ..._kernel._dispatcher import ThreadState
from .common import SLOT_TAG, InFlight

__all__ = ["Migration"]

#: A request's user_data, not a receive slot's (a C predicate: no frame per user_data).
_REQUEST_UD = SLOT_TAG.__gt__


class Migration:
    """Request ownership and migration state of one backend (module docstring)."""

    __slots__ = ("count", "migrating", "owned", "resubmitted")

    def __init__(self) -> None:
        #: Who submitted what (user_data per thread), pruned lazily.
        self.owned: dict[ThreadState, set[int]] = {}
        #: user_data of requests cancelled because their submitting thread exits: if the
        #: cancel wins they are submitted again by the ring thread.
        self.migrating: set[int] = set()
        #: Requests resubmitted because they died with an unrecorded submitter (:meth:`died`).
        self.resubmitted: weakref.WeakSet[Operation] = weakref.WeakSet()
        #: Requests handed to the ring thread to be submitted again (statistics).
        self.count = 0

    def own_locked(self, ts: ThreadState, uds: Iterable[int], table: InFlight) -> None:
        """``ts`` submitted ``uds`` (``table``: the requests in flight, for pruning)."""
        owned = self.owned.get(ts)
        if owned is None:
            owned = self.owned[ts] = set()
        # A receive slot's user_data (``SLOT_TAG`` and up) is never recorded: a slot whose
        # submitter exits dies with -ECANCELED and is resubmitted by :meth:`died` (``slots``).
        # (``min`` first: a burst of slots' receives alone, the C=64 echo's, records nothing,
        # and ``filter`` calls the predicate per user_data - ~200 instructions each, trim)
        if min(uds, default=SLOT_TAG) < SLOT_TAG:
            owned.update(filter(_REQUEST_UD, uds))
        if len(owned) > 64 + 4 * len(table):
            owned.intersection_update(table)  # forget completed ones

    def leave_locked(
        self,
        ts: ThreadState,
        table: InFlight,
        pending: Callable[[int], bool],
        cancel_locked: Callable[[int, ThreadState], bool],
        closing: Callable[[], bool],
    ) -> bool:
        """``ts`` exits: cancel (``cancel_locked``, submitted by ``ts``) every request it
        submitted that is still in flight (``table``) and not being cancelled anyway
        (``pending(ud)``), marking it migrating; returns whether the ring thread must be
        woken. The cancels may submit what was deferred in the SQ ring (another owner's
        burst): ``ts`` owns that too then, so it rounds again until nothing is left."""
        wake = False
        migrating = self.migrating
        while True:
            owned = self.owned.pop(ts, None)
            if closing() or not owned:
                return wake
            mine = [ud for ud in owned if ud in table and pending(ud) and ud not in migrating]
            if not mine:
                return wake
            for ud in mine:
                migrating.add(ud)
                wake = cancel_locked(ud, ts) or wake

    def died(self, op: Operation, closing: bool) -> bool:
        """A request failed the way one does when its submitting thread is gone (-ECANCELED,
        -EFAULT) and nobody cancelled it: its submitter was not the thread recorded (a
        leader's waiting enter may submit another thread's SQEs, and another thread its
        burst). True once per request: resubmit it (under the CQ lock)."""
        if op.cancel_requested or closing or op in self.resubmitted:
            return False
        self.resubmitted.add(op)
        return True
