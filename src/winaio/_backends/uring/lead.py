"""Leaders: a thread that blocks in a wait reaps the ring itself, in the kernel.

Purpose: take the ring thread out of the completion path. Windows wakes the thread blocked in
GetQueuedCompletionStatus (or in an alertable wait, or on the request's event) straight from
the completion; here the equivalent is that thread waiting in ``io_uring_enter(GETEVENTS,
min_complete=1)`` on the ring, reaping the CQEs and delivering them itself (``op.complete``:
IOSB, event, APC or port packet, the single funnel of ``_io._dispatch``). With the issuer
submitting its own request (``uring``), a QD1 read costs what a raw io_uring loop costs: one
sleep in the kernel, woken by the completion, instead of three thread hand-offs (issuer ->
ring thread -> port waiter).

How a thread gets there
-----------------------
The kernel layer parks a blocked thread on ``ThreadState.parker`` (a binary semaphore,
``_kernel._dispatcher.Parker``). ``IoUringBackend.submit`` gives every thread that issues a
request a :class:`RingParker` bound to the backend's :class:`Leadership`: a parker with the
same token semantics (the same lock) whose blocking ``acquire`` first tries to become the
ring's **waiter** (at most one thread waits in the kernel on the ring). The waiter loops:
reap and deliver what the CQ ring holds; if its own wake-up token came (``wake_thread``
released it, possibly from its own delivery: the packet for its port, its event, its APC),
return; otherwise sleep in ``io_uring_enter`` until a CQE arrives. Whoever else wakes it
(PostQueuedCompletionStatus, an APC, a timer, a port close) releases its token under the
dispatcher lock and, seeing it in the kernel, **pokes** it: an eventfd write that a multishot
POLL_ADD on the ring (armed by the ring thread, ``UD_POKE``) turns into a CQE. Order makes this
race-free under the GIL: the waiter sets ``in_kernel`` and then tests its token; a waker
releases the token and then tests ``in_kernel``. A thread that finds a waiter already there
is a **follower**: it parks on its lock, as before; the leaving waiter promotes one follower
(a spurious wake-up: ``block()`` loops and the follower's next ``acquire`` takes the waiter's
place) when requests remain in flight.

**A wait ended by its own reap.** Most often the completion the waiter reaps is the one that
ends its own wait (the packet for the port it waits on, its event). While it is out of the
kernel, the waiter sets ``ts.awake_in_wait`` (``_kernel._dispatcher.Parker``): the kernel
then ends its wait without a token (``complete_wait``: result stored, ``ts.wait`` cleared
under the dispatcher lock, nothing released), the waiter sees the result after the reap and
returns False, and ``block()`` returns the result without taking the dispatcher lock again:
no token round trip of the thread to itself, one lock hold less per wait (counted:
``Leadership.own_wakes``). The flag is cleared before the token test that precedes each sleep
(the same order as ``in_kernel``: a waker stores the result and then tests the flag, the
waiter clears the flag and then tests the result, so either the waiter sees the result or
the waker gives the token and pokes), and when the waiter leaves. A wait that ended otherwise
(a token, a timeout) is returned from as before, through ``block()``'s locked path.

Who is responsible for the CQ ring
----------------------------------
The ring signals the ring thread's eventfd for every CQE (``IORING_REGISTER_EVENTFD``), except
while ``IORING_CQ_EVENTFD_DISABLED`` is set (5.8). A thread that becomes the waiter becomes
the ring's **owner** and disables the eventfd; it stays owner after it leaves the kernel,
because it is most likely back soon (a loop: issue, wait, issue...): completions that arrive
meanwhile wait in the CQ ring for its next wait, and the ring thread is not woken. The ring
thread covers owners that do not come back: while the ring has an owner it sleeps with a
timeout (the **watch**, :data:`WATCH_MIN` doubling to :data:`WATCH_MAX`), and a CQ ring that
holds CQEs, has no waiter and whose head did not move over a whole tick is taken over: no
owner, eventfd enabled, the ring thread reaps. An owner that exits gives the ring up at once
(thread exit hook); an idle ring is given back too. With no owner, CQEs wake the ring thread
through the eventfd.

Invariants kept (``_io._backend``): every CQE is reaped once (``cq_lock``) and its op
completed once (``op.done``); buffers stay in the backend's table until the CQE; LIFO release
and concurrency accounting happen in the port, whoever delivers; requests outlive their
issuer by the backend's migration (``uring``), whoever reaps.

The C accelerator (``winaio._io._fastio``, ``_fastlead.c``) replaces :meth:`RingParker.acquire`
(with :meth:`Leadership.enter_or_follow`'s leading case and :meth:`RingParker._wait_as_leader`,
which stay the reference) for the ring's owner, statement for statement; every other shape goes
to the Python method first. The parts a leader calls (``reap``, ``take_burst``...: bound methods
of the backend's reaper and deferral) may be C functions too (``winaio._io._accel``); when the
accelerator is switched, every leadership looks them up again (:func:`_rebind`), so that it
runs what is installed now.

Imports ``winaio._kernel`` (the dispatcher lock, ``wake_thread``, the exit hook),
``winaio._io._accel``, ``abi`` and ``ring``.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable

from ..._io import _accel
from ..._io._interrupts import interrupt
from ..._kernel._dispatcher import LOCK, Parker, ThreadState, WaitBlock, wake_thread
from ..._kernel._parker import deferred_wakes as _deferred_wakes
from ..._kernel._threads import add_thread_exit_hook
from .abi import RingBusyError, full_fence
from .ring import BackendRing

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python methods run
    _fastio = None  # type: ignore[assignment]

__all__ = ["WATCH_MAX", "WATCH_MIN", "Leadership", "RingParker"]

#: The ring thread's watch over an absent owner: first tick, and the longest (seconds).
WATCH_MIN = 0.001
WATCH_MAX = 0.016
#: Watch ticks an owned ring must be found idle in a row before it is given back to the
#: eventfd (an owner between two bursts keeps it, and keeps deferring its submissions).
_IDLE_TICKS = 4

_monotonic = time.monotonic


class RingParker:
    """A thread's parker that leads the ring while it blocks (module docstring).

    ``lock`` is the thread's original parker (a ``threading.Lock``, or a pool worker's
    ``_kernel._parker.WorkerParker``), so the token is the same object before and after the
    substitution.
    """

    __slots__ = ("in_kernel", "lead", "lock", "ts")

    def __init__(self, ts: ThreadState, lock: Parker, lead: Leadership) -> None:
        self.ts = ts
        self.lock = lock
        self.lead = lead
        #: True while this thread is (about to be) asleep in io_uring_enter on the ring.
        self.in_kernel = False

    def release(self) -> None:
        """Give the token (``wake_thread``, under the dispatcher lock); poke if in the kernel -
        after the waker's dispatcher lock if it defers its wakes (a thread-backend worker's
        delivery: ``_kernel._parker.defer_wakes``), so that the woken leader finds it free."""
        # An interrupt (Ctrl-C) once the token is given: the poke is made at once (a second one
        # is harmless; none left the leader asleep in the kernel with its token - review8).
        try:
            self.lock.release()
            lead = self.lead
            if lead.owner is None:
                lead.claimant = self  # (the ring thread's delivery: :meth:`Leadership.claim`)
            if self.in_kernel:
                deferred = _deferred_wakes()
                if deferred is not None:
                    deferred.append(self.lead.poke)
                else:
                    self.lead.poke()
        except BaseException as exc:
            if interrupt(exc) and self.in_kernel:
                self.lead.poke()
            raise

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the token; while waiting for it, lead the ring when nobody else does."""
        lock = self.lock
        if lock.acquire(False):
            return True
        if not blocking:
            return False
        lead = self.lead
        if lead.owner is not self and not lead._in_flight() and not lead.deferred:
            # Nothing on the ring to wait for (a wait on thread-backend I/O, an event another
            # thread sets) and not its owner: park on the kept lock, woken by a futex, not by
            # a poke. (The owner, in a loop of its own requests, skips the look: one compare.)
            return lock.acquire(True, timeout)
        try:
            leading = lead.enter_or_follow(self)
        except BaseException:
            # An exception (Ctrl-C: a signal handler's) once it made this parker the waiter
            # or a follower: undone, or the ring would keep a waiter that is not there (no
            # thread reaps, and the ring thread's watch never takes over from a waiter).
            if lead.waiter is self:
                lead.waiter = None
                if lead.followers:
                    lead.leave()
            else:
                lead.unfollow(self)
            raise
        if leading:
            try:
                got = self._wait_as_leader(lead, lock, timeout)
            finally:
                self.in_kernel = False
                self.ts.awake_in_wait = False
                # Leadership.leave, its lock-free half inlined (every wait ends here): the same
                # order, ``waiter`` cleared before ``followers`` is read.
                lead.waiter = None
                if lead.followers:
                    lead.leave()
            if got:
                # Woken by another thread's token (not by its own reap): with nothing left on
                # the ring, the owner gives it back, and its next waits park plainly (above).
                if lead.owner is self and not lead._in_flight() and not lead.deferred:
                    lead.idle_for(self)
                return True
            if got is not None:
                return got
            # The backend closed under us: park plainly (its deadline is recomputed by the
            # caller, block(), on the spurious return).
            return lock.acquire(False)
        try:
            return lock.acquire(True, timeout)
        finally:
            lead.unfollow(self)

    def _wait_as_leader(self, lead: Leadership, lock: Parker, timeout: float) -> bool | None:
        """Reap, deliver and sleep in the kernel until the token comes (True), the wait ends
        in place (False: module docstring) or the timeout expires (False); None if the
        backend is closing (no more waiting on its ring).

        The burst this thread issued since its last wait (``uring``: the owner defers its
        submissions) goes out with the sleep, in one io_uring_enter(to_submit, 1, GETEVENTS),
        or by itself before this thread returns to run user code."""
        ring = lead.ring
        reap = lead.reap
        deferred = lead.deferred
        ts = self.ts
        deadline = None if timeout < 0 else _monotonic() + timeout
        # The wait this parker blocks in (None: a parker used outside a registered wait, which
        # only tokens end): while out of the kernel, a delivery may end it in place (module
        # docstring). Its result is what is tested: the waker stores it before it tests the
        # flag, as this thread clears the flag before it tests the result (Dekker, under the
        # GIL; ``ts.wait`` is cleared after the waker's test, so it cannot serve).
        wait = ts.wait
        awake = wait is not None
        ts.awake_in_wait = awake
        while True:
            if reap():
                if wait is not None and wait.result is not None:  # ended, this reap or not
                    if deferred:
                        lead.flush(ts)
                    if ts.wake_pending:
                        # A token came too (an APC queued to an alertable wait, or the wait
                        # ended while this thread slept): taken, so that block() clears
                        # wake_pending under the lock.
                        return lock.acquire(False)
                    lead.own_wakes += 1
                    return False
                if lock.acquire(False):
                    if deferred:  # (a hint read without the lock; the flush takes it)
                        lead.flush(ts)
                    return True
                continue
            burst = 0
            try:
                if deferred:
                    burst = lead.take_burst(ts)
                self.in_kernel = True  # then test the token (module docstring: no lost wake-up)
                ts.awake_in_wait = False  # from here, ending the wait gives a token (and a poke)
                if wait is not None and wait.result is not None:  # ended before the flag went
                    if burst:
                        lead.flush_taken(ts, burst)
                    if ts.wake_pending:
                        return lock.acquire(False)
                    lead.own_wakes += 1
                    return False
                if lock.acquire(False):
                    if burst:
                        lead.flush_taken(ts, burst)
                    return True
                if lead.closed:
                    if burst:
                        lead.flush_taken(ts, burst)
                    return None
                lead.waits += 1
                if deadline is None:
                    remaining = -1.0
                else:
                    remaining = deadline - _monotonic()
                    if remaining <= 0:
                        if burst:
                            lead.flush_taken(ts, burst)
                        return lock.acquire(False)
                try:
                    if remaining < 0:
                        submitted = ring.enter(burst, 1)
                    else:
                        submitted = ring.enter_timeout(burst, 1, remaining)
                except RingBusyError:
                    lead.burst_left(ts, True)  # the ring thread submits it (module docstring)
                else:
                    if submitted < burst and ring.sq_ready():
                        lead.burst_left(ts, False)  # a signal cut the enter short
            except BaseException:
                # An exception in this thread (Ctrl-C: a signal handler's KeyboardInterrupt,
                # raised where the enter returned EINTR or anywhere around it) must not lose
                # the burst it took: published, not submitted, in nobody's list any more.
                # Whatever the ring still holds unsubmitted is submitted from here.
                if ring.sq_ready():
                    lead.burst_left(ts, False)
                raise
            self.in_kernel = False
            ts.awake_in_wait = awake


class Leadership:
    """Who waits in the kernel on the ring, and who is responsible for its CQ ring.

    Nobody leads until :meth:`open_locked` (the poke is armed), nor after
    :meth:`give_up_locked` or :meth:`close`.

    Args:
        ring: the ring (its eventfd registered: the ring thread's wake-up).
        lock: the backend's lock; guards every field here.
        reap: reap the ring's CQ and deliver the completions (any thread, no lock held);
            returns how many CQEs it took.
        flush: ``flush(ts)``: submit the burst ``ts`` deferred, now (no lock held).
        take_burst: ``take_burst(ts)``: take the deferred burst over for a waiting enter
            (no lock held); returns how many SQEs that enter is to submit.
        burst_left: ``burst_left(ts, refused)``: that enter did not submit them all.
        in_flight: how many requests the ring holds (called under ``lock``).
        deferred: the backend's deferred burst (user_data of SQEs prepared, not submitted;
            guarded by ``lock``): read without it as a hint, to skip ``flush`` and
            ``take_burst`` when empty (every wait: the QD1 critical path).
        wake_ring_thread: called under ``lock`` when the ring gets an owner; returns True if
            the ring thread must be woken (eventfd write, after releasing ``lock``) to start
            watching.
        efd: the ring thread's eventfd.
    """

    __slots__ = (
        "__weakref__", "_efd", "_idle", "_in_flight", "_lock", "_shut", "_stale_head",
        "_wake_ring_thread", "burst_left", "claimant", "claims", "closed", "deferred", "flush",
        "followers", "leads", "own_wakes", "owner", "poke_efd", "pokes", "reap", "ring",
        "take_burst", "takeovers", "waiter", "waits",
    )  # fmt: skip

    def __init__(
        self,
        ring: BackendRing,
        lock: threading.Lock,
        reap: Callable[[], int],
        flush: Callable[[ThreadState], bool],
        take_burst: Callable[[ThreadState], int],
        burst_left: Callable[[ThreadState, bool], None],
        in_flight: Callable[[], int],
        deferred: list[int],
        wake_ring_thread: Callable[[], bool],
        efd: int,
    ) -> None:
        self.ring = ring
        self.deferred = deferred
        self._lock = lock
        self.reap = reap
        self.flush = flush
        self.take_burst = take_burst
        self.burst_left = burst_left
        self._in_flight = in_flight
        self._wake_ring_thread = wake_ring_thread
        self._efd = efd
        self.poke_efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.waiter: RingParker | None = None
        self.owner: RingParker | None = None
        self.followers: list[RingParker] = []
        #: True while nobody may lead (before the poke is armed, after close).
        self.closed = True
        self._shut = False
        self._stale_head = -1
        self._idle = 0  # consecutive watch ticks that found the owned ring idle
        # Counters (statistics, tests): waiter entries, kernel waits, pokes, watch takeovers,
        # waits ended in place while their waiter was awake (no token: module docstring).
        self.leads = self.waits = self.pokes = self.takeovers = self.own_wakes = 0
        #: The parker last given a token while the ring had no owner (:meth:`claim`), and
        #: how many such parkers took the ring over.
        self.claimant: RingParker | None = None
        self.claims = 0
        _leaderships.add(self)
        if not _rebinding:
            _first_leadership()

    # ------------------------------------------------------------------ parkers
    def parker_for(self, ts: ThreadState) -> RingParker | None:
        """Bind ``ts``'s parker to this ring (issuing thread, under the dispatcher lock);
        None if nothing changed."""
        parker = ts.parker
        if parker.__class__ is RingParker:
            assert isinstance(parker, RingParker)
            if parker.lead is self:
                return None
            if parker.in_kernel or parker.lead.waiter is parker:
                return None  # leading another ring right now (cannot happen while issuing)
            parker.lead = self
            return parker
        new = RingParker(ts, parker, self)
        ts.parker = new
        return new

    def bind_issuer(self, ts: ThreadState) -> None:
        """An issuer most likely waits for its request soon: let it lead this ring then (its
        parker bound here, :meth:`parker_for`, under the dispatcher lock; nothing if it is)."""
        parker = ts.parker
        if parker.__class__ is not RingParker or parker.lead is not self:
            with LOCK:
                self.parker_for(ts)

    def enter_or_follow(self, parker: RingParker) -> bool:
        """Become the waiter (True), or register as a follower (False)."""
        wake = False
        lock = self._lock
        with lock:
            if self.closed or self.waiter is not None:
                followers = self.followers
                followers.append(parker)
                # Looked at again once registered: :meth:`leave` clears ``waiter`` without
                # the lock and then looks for followers, so one of the two sees the other.
                if self.closed or self.waiter is not None:
                    return False
                followers.remove(parker)  # the waiter left meanwhile: lead in its place
            self.waiter = parker
            self.leads += 1
            if self.owner is not parker:
                if self.owner is None:
                    self.ring.cq_eventfd_toggle(False)
                    wake = self._wake_ring_thread()
                self.owner = parker
        if wake:
            os.eventfd_write(self._efd, 1)
        return True

    def idle_for(self, parker: RingParker) -> bool:
        """The owner ``parker`` was woken by another thread while the ring holds nothing (no
        request in flight, no deferred burst: the caller looked): it gives the ring back
        (``disown_locked``: the eventfd covers what is issued later, as for an owner that
        left), so that its next waits park on its kept lock. False if that changed
        meanwhile."""
        if self.owner is not parker:
            return True
        wake = False
        with self._lock:
            if self.waiter is not None or self._in_flight() or self.deferred:
                return False
            if self.owner is parker:
                self.disown_locked()
                full_fence()  # the enable store before the CQ tail load (Dekker, ``abi``)
                ring = self.ring
                wake = bool(ring.cq_ready() or ring.sq_ready()) and not self._shut
        if wake:
            os.eventfd_write(self._efd, 1)
        return True

    def claim(self) -> None:
        """The ring thread delivered completions while the ring had no owner (no lock held):
        the thread its delivery woke last (:attr:`claimant`, recorded by
        :meth:`RingParker.release`) becomes the owner, so that its next wait leads.

        Without it, a thread becomes owner only by blocking while something is still in
        flight; when the ring thread (woken by the eventfd) reaps its completion first - the
        likelier the slower its issue, e.g. the Python receive slot under the C funnel - it
        parks on its token, is handed the completion, and stays there: the ring thread reaps
        everything, a wake-up and a hand-off per completion. A claimed owner that does not
        wait again is covered as any owner that left (the watch; an idle ring is given
        back; a wake by another thread's token with nothing in flight gives it back)."""
        parker = self.claimant
        if parker is None:
            return
        self.claimant = None
        with self._lock:
            if (
                self.owner is None
                and self.waiter is None
                and not self.closed
                and parker.lead is self
            ):
                self.owner = parker
                self.claims += 1
                self.ring.cq_eventfd_toggle(False)  # (the caller, the ring thread, watches)

    def unfollow(self, parker: RingParker) -> None:
        with self._lock:
            try:
                self.followers.remove(parker)
            except ValueError:
                pass

    def leave(self) -> None:
        """The waiter stops waiting; it stays owner. Promote a follower if requests remain.

        Without the lock when there is no follower (every wait ends here): ``waiter`` is
        cleared first and ``followers`` read after, while :meth:`enter_or_follow` appends a
        follower first and reads ``waiter`` after; under the GIL's sequential order one of
        the two sees the other (both may: the follower then leads and is also woken once,
        a spurious wake-up its ``block()`` absorbs)."""
        self.waiter = None
        if not self.followers:
            return
        with self._lock:
            promote = self.followers[-1] if self.followers and self._in_flight() else None
        if promote is not None:
            with LOCK:
                wake_thread(promote.ts)  # a spurious wake-up: it comes back and leads

    def flush_taken(self, ts: ThreadState, burst: int) -> None:
        """A leader that took a burst (``take_burst``) returns without sleeping: submit it."""
        try:
            submitted = self.ring.enter(burst, 0)
        except RingBusyError:
            self.burst_left(ts, True)
        else:
            if submitted < burst and self.ring.sq_ready():
                self.burst_left(ts, False)

    def poke(self) -> None:
        """Wake the waiter out of io_uring_enter (a CQE on ``UD_POKE``). Any thread."""
        self.pokes += 1
        try:
            os.eventfd_write(self.poke_efd, 1)
        except OSError:
            pass  # closed at backend close, once nobody waits any more

    # ------------------------------------------------------------------ the ring thread
    @property
    def stale_head(self) -> int:
        """The CQ head :meth:`watch` saw waiting at its last look (-1: no CQE waited): the
        first head the ring thread's ticks without the GIL compare (``ringthread``)."""
        return self._stale_head

    def watch(self, seen: int | None = None) -> bool:
        """The ring thread's tick while the ring has an owner (under the backend's lock).
        True when it takes the ring over: the owner is away and CQEs have waited a whole
        tick (the caller reaps). Gives an idle ring back to the eventfd too. ``seen``: the CQ
        head the ring thread saw at the previous tick without the GIL (-1: none waited;
        ``ringthread.watch_sleep``), in place of this object's own last look."""
        if seen is not None:
            self._stale_head = seen
        owner = self.owner
        if owner is None or self.waiter is not None:
            self._stale_head = -1
            self._idle = 0
            return False
        ring = self.ring
        if not ring.cq_ready():
            self._stale_head = -1
            if self._in_flight():
                self._idle = 0
                return False
            self._idle += 1
            if self._idle >= _IDLE_TICKS:
                self.disown_locked()  # idle for a while: the eventfd covers it from now on
            return False
        head = ring._cq_head
        if self._stale_head != head:
            self._stale_head = head  # first sight of waiting CQEs: give the owner a tick
            return False
        self.disown_locked()
        self.takeovers += 1
        return True

    def watching(self) -> bool:
        """Must the ring thread sleep with a timeout (under the backend's lock)?"""
        return self.owner is not None and not self.closed

    def busy_locked(self) -> bool:
        """An owner with requests in flight and no deferred burst: the watch's ticks need only
        the CQ ring (``ringthread.watch_sleep``: looked at without the GIL)."""
        return self.watching() and not self.deferred and self._in_flight() > 0

    def disown_locked(self) -> None:
        """No owner: the eventfd signals the ring thread again (under the backend's lock).
        Whoever disowns sees to what came while it was disabled: the ring thread reaps (watch,
        close), the exit hook writes the eventfd."""
        self.owner = None
        self._stale_head = -1
        self._idle = 0
        self.ring.cq_eventfd_toggle(True)

    def open_locked(self) -> None:
        """The poke is armed: threads may lead (under the backend's lock)."""
        self.closed = self._shut

    def give_up_locked(self) -> None:
        """Nobody may lead until :meth:`open_locked` (no poke to wake a leader): a current
        waiter sees ``closed`` at its next round (under the backend's lock)."""
        self.closed = True
        self.disown_locked()

    def thread_exited(self, ts: ThreadState) -> None:
        """An owner that exits gives the ring up at once (thread exit hook)."""
        wake = False
        with self._lock:
            owner = self.owner
            if owner is not None and owner.ts is ts and self.waiter is None:
                self.disown_locked()
                full_fence()  # the enable store before the CQ tail load (Dekker, ``abi``)
                # CQEs that came while the eventfd was off, or a burst it deferred (``uring``):
                # the ring thread takes them.
                ring = self.ring
                wake = bool(ring.cq_ready() or ring.sq_ready()) and not self._shut
        if wake:
            os.eventfd_write(self._efd, 1)

    def close(self) -> None:
        """After the ring thread drained the ring: no new waiter; wait for the current one to
        leave (poked), then close the poke eventfd. The caller closes the ring after this."""
        with self._lock:
            self.closed = self._shut = True
            waiter = self.waiter
        if waiter is not None:
            self.poke()
        deadline = _monotonic() + 5.0
        while self.waiter is not None and _monotonic() < deadline:
            time.sleep(0.001)
        os.close(self.poke_efd)


#: Every live leadership (:func:`_rebind`).
_leaderships: weakref.WeakSet[Leadership] = weakref.WeakSet()
_rebinding: list[Callable[[bool], None]] = []


def _first_leadership() -> None:
    """The first leadership: the backend's parts (``reaper``, ``deferral``) are imported
    and configured by now, so the leader's C acquire can be (``_fastlead.c`` needs theirs),
    and the rebinding is registered after their installers (it must run after them)."""
    global _C_ACQUIRE
    _rebinding.append(_rebind)
    if _fastio is not None:
        _C_ACQUIRE = _fastio.configure_ring(
            "lead", RingParker, Leadership, ThreadState, WaitBlock, _PY_ACQUIRE, RingBusyError,
            threading.Lock(),
        )["acquire"]  # fmt: skip
    _accel.register(_install_acquire)
    _accel.register(_rebind)


#: RingParker.acquire: the Python method (reference, fallback) and its C accelerator.
_PY_ACQUIRE = RingParker.acquire
_C_ACQUIRE: object = None


def _install_acquire(on: bool) -> None:
    _accel.install_methods(RingParker, {"acquire": (_C_ACQUIRE, _PY_ACQUIRE)}, on)


def _rebind(on: bool) -> None:
    """The accelerator was switched (``_accel.use``): the callables of every leadership that
    are bound methods (the reaper's ``reap``, the deferral's ``take_burst``...) are looked up
    again on their object, so that they run the implementation now installed on its class. (A
    plain function, such as a test's stand-in, stays.)"""
    for lead in list(_leaderships):
        for name in ("reap", "flush", "take_burst", "burst_left"):
            func = getattr(lead, name)
            owner = getattr(func, "__self__", None)
            if owner is not None and not isinstance(owner, type(os)):
                setattr(lead, name, getattr(owner, func.__name__))


def _thread_exited(ts: ThreadState) -> None:
    parker = ts.parker
    if parker.__class__ is RingParker:
        assert isinstance(parker, RingParker)
        parker.lead.thread_exited(ts)


add_thread_exit_hook(_thread_exited)
