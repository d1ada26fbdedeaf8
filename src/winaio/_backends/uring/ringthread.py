"""The ring thread (``winaio-uring-<n>``): what no issuer and no waiter does.

Purpose: :class:`RingThread`, the backend's own thread and its state. Each round it submits
the backlog (a full SQ ring, SQEs the kernel refused with EBUSY, migrated requests), arms the
leaders' poke poll (:meth:`RingThread.arm_poke_locked`; :meth:`RingThread.poke_ended` when it
ends), reaps while nobody owns the CQ ring, watches absent owners (``lead``) and stale
deferred bursts (``deferral``), and at close cancels and drains everything. It sleeps on the
backend's eventfd; threads that need it wake it (:meth:`RingThread.wake_locked`,
:meth:`RingThread.wake`), and a ring that gets an owner wakes it to watch
(:meth:`RingThread.wake_to_watch`). The design is in the package docstring (``uring``).

Invariants (under the backend's lock unless said otherwise):
- :attr:`RingThread.sleeping` is True only while the thread sleeps (or is about to) on the
  eventfd, and whoever sets it back to False writes the eventfd once the lock is free: at
  most one write per sleep; :attr:`RingThread.sleep_timed` says the sleep has the watch's
  timeout (a thread asleep without one must be woken to start watching);
- until the poke poll is armed (:attr:`RingThread.poke_armed`) nobody leads; a kernel that
  refuses multishot polls (:attr:`RingThread.poke_refused`) is never asked again;
- :attr:`RingThread.ident` is the thread's ident once it runs (the submitter that is never
  migrated), -1 before;
- the eventfd is read first in each round that follows a wake-up (a sleep that timed out
  leaves nothing to read: no GIL round trip for it), so a write from then on ends the next
  sleep; completions it reaps are delivered under the reaper's CQ lock, in order with the
  leaders';
- while a busy owner keeps the ring, the watch's ticks are looked at without the GIL
  (:func:`watch_sleep`, in C: ``_fastwatch.c``): the Python round runs once per
  ``WATCH_TICKS + 1`` ticks, or at once when CQEs waited a whole tick under an unmoved head
  (the Python watch then takes over, as it would have at that tick);
- a failed allocation in the loop (a MemoryError, or the RuntimeError "can't allocate lock"
  CPython raises when a lock's own allocation fails: :func:`transient`) never takes the
  backend down: the loop runs again after a back-off (1 ms doubling to 128 ms while failures
  follow each other: ``_BACK_OFF``; ``retries`` counts them), from the round that failed,
  with the completions it had collected and not yet handed to the reaper; any other
  exception is a bug: the backend refuses new requests and ``close`` drains the rest
  (``_crashed_locked``).

Imports ``common``, ``lead`` (the watch's ticks), and the parts it drives (``reaper``,
``deferral``, ``backlog``, ``streams``, ``ring``) for annotations only.
"""

from __future__ import annotations

import errno
import math
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..._io import _accel
from .abi import SubmissionQueueFull
from .abi.consts import PollFlags
from .common import ECANCELED, REAP_BATCH, UD_POKE, Finished, InFlight
from .lead import WATCH_MAX, WATCH_MIN

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python function runs
    _fastio = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ..._kernel._dispatcher import ThreadState
    from .backlog import Backlog
    from .deferral import Deferral
    from .lead import Leadership
    from .reaper import Reaper
    from .ring import BackendRing
    from .streams import Line, StreamLines

__all__ = ["RingThread"]

_MULTI = int(PollFlags.IORING_POLL_ADD_MULTI)
_POLLIN = select.POLLIN
_monotonic = time.monotonic
#: While a busy owner keeps the ring (``Leadership.busy_locked``) and the watch is at its
#: longest tick, the ring thread looks at this many further ticks with the GIL released
#: (:func:`watch_sleep`) before its Python round runs again: the owner's GIL is taken once per
#: ``WATCH_TICKS + 1`` ticks instead of three times per tick. A burst deferred meanwhile and
#: left by its owner waits for that round (at most ``(WATCH_TICKS + 2) * WATCH_MAX``).
WATCH_TICKS = 7
#: The pauses before the loop runs again after a failed allocation, by failures in a row
#: (:meth:`RingThread._back_off`): doubling from 1 ms, at most 128 ms.
_BACK_OFF = tuple(0.001 * 2**i for i in range(8))
_LAST_BACK_OFF = len(_BACK_OFF) - 1
_sleep = time.sleep
#: The arguments of the RuntimeError (``_thread.error``) CPython raises when it cannot allocate
#: a lock's own semaphore (``_thread.allocate_lock``, ``RLock``, a ``Condition`` wait's waiter:
#: ``PyThread_allocate_lock`` returned NULL, Modules/_threadmodule.c): a failed allocation,
#: not a bug, though not a MemoryError.
_NO_LOCK = ("can't allocate lock",)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed allocation the ring thread retries after a back-off (a
    MemoryError, or the RuntimeError of a lock that could not be allocated: ``_NO_LOCK``)
    rather than a bug that takes it down."""
    return isinstance(exc, MemoryError) or (exc.__class__ is RuntimeError and exc.args == _NO_LOCK)


def watch_sleep(
    efd: int, ring: BackendRing, first: float, tick: float, ticks: int, seen: int
) -> tuple[bool, int]:
    """Sleep on ``efd`` for ``first`` seconds, then for up to ``ticks`` more ticks of ``tick``
    seconds while an owner keeps the CQ ring moving (``_fastwatch.c``, the C function, runs it
    without the GIL; this is the reference and the fallback).

    Before each further tick the CQ ring is looked at as ``OwnerWatch.tick`` (``takeover``)
    looks at it: empty (``seen`` becomes -1), CQEs under a head not seen at the previous tick
    (``seen`` becomes the head: the owner gets a tick), or CQEs under the head ``seen`` at the
    previous tick: returned at once, for the Python watch to take over. Returns ``(woken, seen)``:
    woken when ``efd`` became readable (or invalid), ``seen`` as the last look left it.

    Raises:
        ValueError: a negative or non-finite time, negative ``ticks``, ``seen`` not a CQ head.
    """
    bad = not (0 <= first < math.inf and 0 <= tick < math.inf and -1 <= seen <= 0xFFFFFFFF)
    if bad or ticks < 0:
        raise ValueError(f"watch_sleep: bad arguments {first!r}, {tick!r}, {ticks!r}, {seen!r}")
    poller = select.poll()
    poller.register(efd, _POLLIN)
    wait = first
    while True:
        if poller.poll(math.ceil(wait * 1000)):
            return True, seen
        if ticks <= 0:
            return False, seen  # the Python watch looks at this tick itself
        ticks -= 1
        u32 = ring._cq_u32  # the mmapped words (the kernel's tail, the head as published)
        tail, head = u32[ring._cq_tail_i], u32[ring._cq_head_i]
        if tail == head:
            seen = -1
        elif seen == head:
            return False, seen  # CQEs waited a whole tick, head unmoved: take over now
        else:
            seen = head
        wait = tick


#: watch_sleep: the Python function (reference, fallback) and its C accelerator.
_PY_WATCH_SLEEP = watch_sleep
_C_WATCH_SLEEP: Callable[[int, BackendRing, float, float, int, int], tuple[bool, int]] | None = (
    None if _fastio is None else _fastio.configure_ring("watch", _PY_WATCH_SLEEP)["watch_sleep"]
)
_watch_sleep: Callable[[int, BackendRing, float, float, int, int], tuple[bool, int]]
_watch_sleep = _PY_WATCH_SLEEP


def _install(on: bool) -> None:
    global _watch_sleep
    _watch_sleep = _C_WATCH_SLEEP if on and _C_WATCH_SLEEP is not None else _PY_WATCH_SLEEP


_accel.register(_install)


class RingThread:
    """The ring thread of one backend and its state (module docstring).

    Args:
        name: the thread's name.
        ring: the backend's ring.
        lock: the backend's lock (the SQ side).
        table: the backend's requests in flight.
        streams: the backend's STREAM lines.
        backlog: what the ring thread must submit.
        efd: the ring thread's eventfd.
        closing: whether the backend is closing (read under ``lock``).
        crashed_locked: the loop died of a bug (under ``lock``): refuse new requests.
        submit_locked: ``submit_locked(ts)``: the backend's SQ-side submission of everything
            published, from ``ts`` (None: the ring thread); True if the ring thread must be
            woken.
        cancel_locked: ``cancel_locked(ud)``: ASYNC_CANCEL ``ud`` (at close).
        settled_locked: every request submitted has completed (the backend's counters).
    """

    __slots__ = (
        "_backlog", "_cancel_locked", "_closing", "_crashed_locked", "_deferral", "_efd",
        "_failed", "_kept", "_kept_lines", "_lead", "_lock", "_reaper", "_ring",
        "_settled_locked", "_streams", "_submit_locked", "_table", "delivered", "ident",
        "poke_armed", "poke_refused", "reaps", "retries", "rounds", "sleep_timed", "sleeping",
        "thread", "wakeups", "watch_starts",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        ring: BackendRing,
        lock: threading.Lock,
        table: InFlight,
        streams: StreamLines,
        backlog: Backlog,
        efd: int,
        closing: Callable[[], bool],
        crashed_locked: Callable[[], None],
        submit_locked: Callable[[ThreadState | None], bool],
        cancel_locked: Callable[[int], bool],
        settled_locked: Callable[[], bool],
    ) -> None:
        self._ring = ring
        self._lock = lock
        self._table = table
        self._streams = streams
        self._backlog = backlog
        self._efd = efd
        self._closing = closing
        self._crashed_locked = crashed_locked
        self._submit_locked = submit_locked
        self._cancel_locked = cancel_locked
        self._settled_locked = settled_locked
        self._reaper: Reaper | None = None  # (:meth:`start`)
        self._lead: Leadership | None = None
        self._deferral: Deferral | None = None
        self.sleeping = False  # it sleeps on the eventfd
        self.sleep_timed = False  # ... with the watch's timeout
        self.poke_armed = self.poke_refused = False
        # Counters (under the lock): rounds, rounds that delivered and what they delivered,
        # wake-ups asked, wake-ups to start watching.
        self.rounds = self.reaps = self.delivered = self.wakeups = self.watch_starts = 0
        #: Loops run again after a failed allocation (:meth:`_back_off`); failures in a row; what
        #: the round collected and has not handed to the reaper yet (:meth:`_loop`).
        self.retries = self._failed = 0
        self._kept: Finished | None = None
        self._kept_lines: list[Line] = []
        self.ident = -1
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, reaper: Reaper, lead: Leadership, deferral: Deferral) -> None:
        """Start the thread, driving the parts that were built with this object's hooks."""
        self._reaper = reaper
        self._lead = lead
        self._deferral = deferral
        self.thread.start()

    def wake_locked(self) -> bool:
        """The ring thread has something to do: True if it sleeps and the caller must write
        the eventfd (after releasing the lock). At most one write per sleep."""
        wake = self.sleeping
        if wake:
            self.sleeping = False
            self.wakeups += 1
        return wake

    def wake(self) -> None:
        """Wake the ring thread if it sleeps (no lock held: the reaper's ``wake``)."""
        with self._lock:
            wake = self.wake_locked()
        if wake:
            os.eventfd_write(self._efd, 1)

    def wake_to_watch(self) -> bool:
        """The ring got an owner (under the lock): a ring thread asleep without a timeout must
        wake up to start watching (``lead``)."""
        wake = self.sleeping and not self.sleep_timed
        if wake:
            self.sleeping = False
            self.watch_starts += 1
        return wake

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        self.ident = threading.get_ident()
        while True:
            try:
                self._loop()
                return
            except MemoryError:
                # A transient allocation failure: the loop runs again after a back-off, from
                # the round that failed (``_kept``), not the backend taken down with it.
                self._back_off()
            except BaseException as exc:
                if transient(exc):  # a lock that could not be allocated: as a MemoryError
                    self._back_off()
                    continue
                # A bug (reported by threading.excepthook as the exception leaves the thread):
                # refuse new requests; close() drains the ones in flight itself.
                with self._lock:
                    self._crashed_locked()
                raise

    def _back_off(self) -> None:
        """After a failed allocation in the loop (``retries`` counts them): not asleep, and a pause
        that doubles with each failure in a row (``_BACK_OFF``: 1 ms to 128 ms; a round
        that ends in a sleep starts the count again) before the loop runs again. Nothing
        here needs memory a failure could deny but the count, which may miss one."""
        with self._lock:
            self.sleeping = False
            failed = self._failed
            self._failed = failed + 1 if failed < _LAST_BACK_OFF else failed  # (small ints)
            try:
                self.retries += 1
            except MemoryError:
                pass
        try:
            _sleep(_BACK_OFF[failed])
        except MemoryError:
            pass  # (the loop runs again sooner)

    def _loop(self) -> None:
        """Submit what issuers could not (backlog, migrations), arm the leaders' poke, reap
        while nobody owns the CQ ring, watch absent owners (``lead``), drain at close."""
        lock = self._lock
        lead = self._lead
        reaper = self._reaper
        deferral = self._deferral
        assert lead is not None and reaper is not None and deferral is not None  # (start)
        unsubmitted = deferral.unsubmitted
        ring = self._ring
        efd = self._efd
        backlog = self._backlog
        closing = self._closing
        poller = select.poll()
        poller.register(efd, _POLLIN)
        tick = WATCH_MIN
        next_watch = 0.0
        cancelled_all = False
        woken = True
        seen: int | None = None  # (the CQ head the last GIL-free tick saw: watch_sleep)
        # Run again after a failed allocation (``_run``): the completions the failed round had
        # collected and not handed to the reaper (the backlog's, the lines') go into this
        # one. From the CQ lock on they are the reaper's (``Reaper.process``, ``deliver``).
        kept = self._kept
        kept_lines = self._kept_lines
        while True:
            self.rounds += 1
            if woken:  # (a sleep that timed out leaves nothing to read: no GIL round trip)
                try:
                    os.eventfd_read(efd)  # first: a write from now on ends the next sleep
                except BlockingIOError:
                    pass
            if kept is None:
                finished: Finished = []
                lines: list[Line] = []
            else:
                finished, lines = kept, kept_lines
                kept = None
            self._kept = finished  # (two stores, no tuple: nothing to allocate)
            self._kept_lines = lines
            with lock:
                if backlog or backlog.stuck:
                    backlog.drain_locked(
                        ring, self._table, self._streams, lambda: self._submit_locked(None),
                        finished, lines,
                    )  # fmt: skip
                if not (self.poke_armed or self.poke_refused or closing()):
                    self.arm_poke_locked()
                if closing():
                    if lead.owner is not None:
                        lead.disown_locked()  # closing: the ring thread drains the ring
                    if not cancelled_all:
                        cancelled_all = True
                        # The rest of a line is cancelled by service() when its head's poll
                        # comes back -ECANCELED; backlogged FILE ops when it is drained.
                        for ud in list(self._table):
                            self._cancel_locked(ud)
                reap = lead.owner is None
                now = _monotonic()
                if not reap and now >= next_watch:
                    reap = lead.watcher.tick(seen)
                    stale = deferral.stale_burst_locked()
                    tick = WATCH_MIN if reap or stale else min(2 * tick, WATCH_MAX)
                    next_watch = now + tick
                if unsubmitted and lead.owner is None:
                    self._submit_locked(None)  # nobody will submit it at a wait
            self._kept = None
            if finished or lines or reap:
                with reaper.cq_lock:  # delivered in order with the leaders' completions
                    for line in lines:
                        self._streams.service(line, ECANCELED, finished)
                    reaper.count_locked(finished)  # the backlog's and the lines' ones
                    if reap:
                        cqes = ring.reap(REAP_BATCH)
                        if cqes:
                            reaper.process(cqes, finished)
                    if finished:
                        self.reaps += 1
                        self.delivered += len(finished)
                        lead.claimant = None  # (set again by a parker this delivery wakes)
                        reaper.deliver(finished)
                if finished:
                    if lead.claimant is not None:
                        lead.claim()  # the thread it woke leads from its next wait (lead)
                    continue  # more may have come meanwhile: look again before sleeping
            with lock:
                if closing() and not self._table and self._drained_locked():
                    break
                if backlog or (lead.owner is None and ring.cq_ready()):
                    continue  # work came in while this round ran (e.g. a migration)
                timeout = max(next_watch - _monotonic(), 1e-4) if lead.watching() else None
                if backlog.stuck:
                    timeout = 0.001  # the kernel refused SQEs (EBUSY): try again soon
                # A busy owner, the watch at its longest tick: the next ticks are looked at
                # without the GIL (watch_sleep); only what needs the Python watch ends them.
                ahead = timeout is not None and tick >= WATCH_MAX and lead.busy_locked()
                self.sleeping = True
                self.sleep_timed = timeout is not None
            seen = None
            if ahead:
                assert timeout is not None
                last = lead.watcher.stale_head  # (the Python watch's last look: compared first)
                woken, seen = _watch_sleep(efd, ring, timeout, tick, WATCH_TICKS, last)
                if not woken:
                    next_watch = 0.0  # returned at a tick: the Python watch looks at it now
            else:
                woken = bool(poller.poll(None if timeout is None else timeout * 1000))
            with lock:
                self.sleeping = False
                self._failed = 0

    def _drained_locked(self) -> bool:
        return not self._backlog and not self._streams.lines and self._settled_locked()

    # ------------------------------------------------------------------ the leaders' poke
    def arm_poke_locked(self) -> None:
        """Arm the multishot POLL_ADD on the leaders' poke eventfd; the ring thread submits
        it, so it lives as long as the backend. Until it is armed nobody leads."""
        lead = self._lead
        assert lead is not None  # (start)
        try:
            self._ring.prep_poll_add(lead.poke_efd, _POLLIN, UD_POKE, 0, _multishot())
        except SubmissionQueueFull:
            return  # next round
        self._submit_locked(None)
        self.poke_armed = True
        lead.open_locked()

    def poke_ended(self, res: int) -> None:
        """The reaper's ``poke_ended``, no lock held."""
        # The multishot poke poll ended (CQ overflow; -ECANCELED at close; -EINVAL: a kernel
        # without multishot polls, < 5.13, for good): nobody leads until it is re-armed. A
        # Ctrl-C meanwhile still closes the leadership (no leader may wait for a poke that
        # cannot come) and wakes the ring thread, which re-arms it.
        lead = self._lead
        assert lead is not None  # (start: the poke is armed by the thread)
        try:
            with self._lock:
                self.poke_armed = False
                self.poke_refused = self.poke_refused or res == -errno.EINVAL
                lead.give_up_locked()
                wake = not self._closing() and self.wake_locked()
        except BaseException:
            with self._lock:
                lead.give_up_locked()
                self.sleeping = False
            os.eventfd_write(self._efd, 1)
            raise
        if wake:
            os.eventfd_write(self._efd, 1)


def _multishot() -> int:
    return _MULTI  # a function so that tests can refuse multishot polls (``_MULTI``)
