"""The ring owner's deferred burst: submissions held back to its next wait (the "deferral").

Purpose: :class:`Deferral`, the SQEs a backend prepared and published but has not submitted
yet. The ring's owner (``lead``) defers its submissions to its next wait, so that one
io_uring_enter submits a whole burst and waits, like a raw ``io_uring_submit_and_wait``
loop; a leader about to sleep takes the burst over (:meth:`Deferral.take_burst`), one about
to run user code or a port waiter about to take packets submits it first
(:meth:`Deferral.flush`, and the ports' flush hook below), and the ring thread's watch
submits a burst its owner left for a whole tick (:meth:`Deferral.stale_burst_locked`). A
deferred request can still be taken back without reaching the kernel
(:meth:`Deferral.withdraw_locked`). :data:`BURST` bounds a burst.

Invariants (all under the backend's lock, except the hints read without it):
- :attr:`Deferral.unsubmitted` lists, in order, the user_data of every SQE published in the
  SQ ring and not submitted yet; the backend's SQ side appends to it and clears it once
  its enter consumed them (``submission``: ``Submission.submit_locked``); it is empty
  whenever the backend's lock is free and nobody owns the ring;
- :attr:`Deferral.hinted` is True exactly when this deferral is in the module's registry
  (``_deferring``, what the ports' flush hook walks), and ``IdleWork.deferred`` is the
  registry's size (:meth:`Deferral.hint_locked`);
- a burst that is taken over, flushed or submitted is owned by the submitting thread
  (``migration``) before the lock is released.

The C accelerator (``winaio._io._fastio``, ``_fastdefer.c``) replaces
:meth:`Deferral.take_burst` (the whole take in one hold of the lock, no Python frame) and
:meth:`Deferral.hint_locked`, with exactly their effects; the Python methods stay the
reference and the fallback (``winaio._io._accel``: :func:`_install`).

Imports ``winaio._io`` (the ports' hint and flush hook, the accelerator), ``winaio._kernel``
(thread states), ``common``, ``backlog`` and ``migration``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..._io import _accel
from ..._io._backend import IdleWork, add_deferred_flush
from ..._kernel._threads import current_thread_state
from .backlog import Backlog
from .common import UD_CANCEL, InFlight
from .migration import Migration

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python methods run
    _fastio = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ..._kernel._dispatcher import ThreadState
    from .ring import BackendRing

__all__ = ["BURST", "Deferral"]

#: The ring's owner defers its submissions to its next wait (``uring``), but submits by this
#: many at the latest, so that the device is busy while the rest of a long burst is issued.
#: Measured (O_DIRECT 4 KiB reads, a completion-port loop): at QD32, 16 -> 65K IOPS, 4 -> 60K
#: (more enters), unbounded -> 41K (the queue drains before it is refilled).
#: A request issued while the ring holds nothing else is never deferred (``backend.submit``):
#: the device is idle, so deferring it to the wait would put the wait's whole setup (port,
#: wait block, leadership: ~15 us of Python) before the device starts, in series with it.
#: Submitted at once, that setup overlaps the device's work: O_DIRECT QD1, interleaved with
#: pread in one process, 1.49x -> 1.26x pread's per-read latency for one more io_uring_enter.
BURST = 16

#: Deferrals holding a burst (:meth:`Deferral.hint_locked`), for the ports' flush hook.
_deferring: dict[Deferral, None] = {}


class Deferral:
    """The deferred burst of one backend (module docstring).

    Args:
        ring: the backend's ring.
        lock: the backend's lock (the SQ side).
        table: the backend's requests in flight (a withdrawn request leaves it).
        backlog: the backend's backlog (``stuck``: the kernel refuses SQEs for now).
        migration: the backend's migration state (who owns a submitted burst).
        submit_locked: ``submit_locked(ts)``: the backend's SQ-side submission of everything
            published, from ``ts`` (None: the ring thread); True if the ring thread must be
            woken.
        wake_locked: the backend's ``_wake_locked`` (True: write ``efd`` once unlocked).
        efd: the ring thread's eventfd.
    """

    __slots__ = (
        "_backlog", "_efd", "_lock", "_migration", "_ring", "_submit_locked", "_table",
        "_wake_locked", "enters", "hinted", "stale", "unsubmitted",
    )  # fmt: skip

    def __init__(
        self,
        ring: BackendRing,
        lock: threading.Lock,
        table: InFlight,
        backlog: Backlog,
        migration: Migration,
        submit_locked: Callable[[ThreadState | None], bool],
        wake_locked: Callable[[], bool],
        efd: int,
    ) -> None:
        self._ring = ring
        self._lock = lock
        self._table = table
        self._backlog = backlog
        self._migration = migration
        self._submit_locked = submit_locked
        self._wake_locked = wake_locked
        self._efd = efd
        #: user_data of requests prepared and published but not submitted yet: the ring's
        #: owner defers its submissions to its next wait, one io_uring_enter per burst.
        self.unsubmitted: list[int] = []
        #: The head of the burst the watch saw last (:meth:`stale_burst_locked`).
        self.stale = -1
        #: Counted in ``IdleWork.deferred`` (:meth:`hint_locked`).
        self.hinted = False
        #: Waiting enters that submitted a burst taken over (:meth:`take_burst`).
        self.enters = 0

    def hint_locked(self) -> None:
        """Keep ``IdleWork.deferred`` (the ports' hint, ``_io._backend``) in step with
        whether this backend holds a deferred burst."""
        deferred = bool(self.unsubmitted)
        if deferred is not self.hinted:
            self.hinted = deferred
            if deferred:
                _deferring[self] = None
            else:
                _deferring.pop(self, None)
            # Recomputed, not counted: backends change it under different locks.
            IdleWork.deferred = len(_deferring)

    def flush(self, ts: ThreadState) -> bool:
        """Submit the deferred burst now, from ``ts`` (a leader about to run user code, or a
        port waiter about to take packets); True if there was one."""
        if not self.unsubmitted:
            return False
        with self._lock:
            self._submit_locked(ts)
        return True

    def take_burst(self, ts: ThreadState) -> int:
        """A leader about to sleep takes the deferred burst over (``lead``): published, no
        longer withdrawable (a cancel of one of them now goes through ASYNC_CANCEL), owned
        by ``ts``. Returns how many SQEs its waiting io_uring_enter is to submit - one
        syscall for the burst and the wait, like a raw ``io_uring_submit_and_wait`` loop."""
        if not self.unsubmitted:
            return 0
        with self._lock:
            unsubmitted = self.unsubmitted
            if not unsubmitted or self._backlog.stuck:
                return 0
            pending = self._ring.publish()
            self._migration.own_locked(ts, unsubmitted, self._table)
            unsubmitted.clear()
            self.hint_locked()
            self.enters += 1
            return pending

    def burst_left(self, ts: ThreadState, refused: bool) -> None:
        """A leader's waiting enter did not submit all of its burst: the kernel refused it
        (EBUSY: the ring thread submits it once the CQ backlog is gone), or a signal cut the
        enter short (submit the rest now; another thread may have taken some)."""
        with self._lock:
            if refused:
                self._backlog.stuck = True
                wake = self._wake_locked()
            else:
                wake = self._submit_locked(ts)
        if wake:
            os.eventfd_write(self._efd, 1)

    def stale_burst_locked(self) -> bool:
        """The watch, for deferred submissions: a burst the owner has not submitted for a
        whole tick is submitted by the ring thread (which then owns it)."""
        unsubmitted = self.unsubmitted
        if not unsubmitted:
            self.stale = -1
            return False
        if self.stale != unsubmitted[0]:
            self.stale = unsubmitted[0]
            return False
        self._submit_locked(None)
        return True

    def withdraw_locked(self, ud: int) -> bool:
        """Take back a deferred request (the owner's burst, not submitted yet, ``lead``):
        its SQE becomes a NOP, and it never reaches the kernel. False if it already has."""
        unsubmitted = self.unsubmitted
        if ud not in unsubmitted or not self._ring.withdraw(ud, UD_CANCEL):
            return False
        unsubmitted.remove(ud)
        del self._table[ud]
        self.hint_locked()
        return True


def _flush_deferred() -> None:
    """The ports' hook (``_io._backend.flush_deferred``): a thread about to take completion
    packets submits the bursts deferred to its next wait first."""
    if _deferring:
        ts = current_thread_state()
        for deferral in list(_deferring):
            deferral.flush(ts)


add_deferred_flush(_flush_deferred)


#: The Python methods the C accelerator replaces (the reference, the fallback).
_PY_METHODS = {"take_burst": Deferral.take_burst, "hint_locked": Deferral.hint_locked}
_C_METHODS: dict[str, object] | None = None
if _fastio is not None:
    _C_METHODS = _fastio.configure_ring(
        "deferral", Deferral, Backlog, Migration, _PY_METHODS, _deferring, IdleWork
    )


def _install(on: bool) -> None:
    c = _C_METHODS or {}
    _accel.install_methods(
        Deferral, {name: (c.get(name), py) for name, py in _PY_METHODS.items()}, on
    )


_accel.register(_install)
