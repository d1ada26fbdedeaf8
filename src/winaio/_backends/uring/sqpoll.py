"""The SQPOLL ring of the io_uring backend: deep FILE queues, submitted by the kernel's poller.

Purpose: :class:`SqPollRing`, a second ring set up with ``IORING_SETUP_SQPOLL`` next to the
backend's plain one, for FILE requests issued while many others are in flight; it owns that
ring, its routing decision and its counters. The facts it relies on are in ``abi`` (SQPOLL).

Why
---
On the plain ring every request goes through the ring thread: the issuer writes its SQE, wakes
the ring thread if it sleeps (an eventfd write), and the ring thread publishes the SQ tail and
enters. On the SQPOLL ring the issuer publishes the tail itself and the kernel's poller thread
(``iou-sqp-<pid>``) submits it: no ``io_uring_enter`` syscall, and our ring thread is not woken
to submit. Measured on this 2-core VM (``benchmarks/bench_io.py``, 4 KiB O_DIRECT random reads
at QD128): 0.76x -> 0.97x of fio's io_uring engine.

Routing (:meth:`SqPollRing.takes`, under the backend's lock)
------------------------------------------------------------
A FILE request goes to the SQPOLL ring when the plain ring already has at least
:data:`HOT_DEPTH` FILE requests in flight or in its backlog (the ``hot_depth`` argument), or
the SQPOLL ring has any in flight - so a deep queue stays there until it has drained. Shallow
FILE queues stay on the plain ring, where the poller's idle spin (``sq_thread_idle`` ms before
it sleeps, rounded up to jiffies) would cost more than it saves: a program issuing one read
every millisecond would keep a whole CPU spinning. (The trade-off, measured here: a QD1 O_DIRECT
loop gets 10.5K IOPS on the plain ring and 15K with ``hot_depth=0``, one thread hand-off
fewer, for one CPU spinning as long as requests keep coming.) If the SQPOLL ring is full the
request goes to the plain ring (or its backlog) instead. STREAM requests (readiness polls and
``try_now`` on the ring thread, ``streams``) and the wake-up poll never go there.

Requests still survive their issuing thread
-------------------------------------------
An io_uring request belongs to the task that submits it (``backend``, facts). On the SQPOLL ring
that is the poller, a kernel thread, not the issuer that wrote and published the SQE; the
issuer enters only to wake the poller, and ``IORING_ENTER_SQ_WAKEUP`` submits nothing. So the
exit of the issuing thread cancels nothing: port-bound requests outlive it (spec §8) as they do
on the plain ring.

Completions
-----------
:meth:`SqPollRing.create` registers the backend's eventfd on the SQPOLL ring
(``IORING_REGISTER_EVENTFD``): every CQE posted there writes the eventfd, which fires the plain
ring's wake-up poll and ends the ring thread's ``io_uring_enter(GETEVENTS)``. The ring thread
sleeps on the plain ring only, does not sleep while either CQ ring holds CQEs, reaps both
rings every round and delivers both alike (``op.complete`` on the ring thread, no lock held).
FILE counters: ``taken`` (under the backend's lock) and ``finished`` (by the reaper).

Publishing and waking the poller
--------------------------------
Whoever prepares an SQE in the SQPOLL ring publishes it, under the backend's lock
(:meth:`SqPollRing.submit_locked`, :meth:`SqPollRing.publish_locked`): store the SQ tail,
full fence, load the ring flags (``sq_needs_wakeup``; the Dekker pattern of ``abi``). If the poller
sleeps (``IORING_SQ_NEED_WAKEUP``), that thread counts a poller wake-up and, after releasing
the lock, wakes it (:meth:`SqPollRing.wakeup`: io_uring_enter with ``IORING_ENTER_SQ_WAKEUP``).
An awake poller sees the new tail by itself. The ring thread publishes the SQPOLL ring every
round too (cancels it put there at close or from the backlog); when, draining the backlog, it
finds the SQPOLL ring full, it wakes the poller with ``IORING_ENTER_SQ_WAIT`` (return once a
slot is free) and comes round again.

Cancellation
------------
ASYNC_CANCEL must go into the ring that holds its target. User_data come from one counter for
both rings; those of requests on the SQPOLL ring have :data:`S_BIT` set, and the backend picks
the ring by that bit (:meth:`SqPollRing.cancel_locked`). The canceller publishes and wakes the
poller like an issuer; if the SQPOLL ring is full, the cancel goes to the backlog. The request
still completes exactly once, from its own CQE.

Fallback and configuration
--------------------------
:meth:`SqPollRing.create` gives up, closing the refused ring, when io_uring_setup refuses SQPOLL
(the reason names the errno), when the kernel lacks ``IORING_FEAT_SQPOLL_NONFIXED`` (before
5.11 the poller takes only registered files) or when the eventfd cannot be registered. The
backend then runs on the plain ring alone, and ``statistics().detail`` says why ("no SQPOLL
ring: ...").

``WINAIO_URING_SQPOLL=1`` asks for the SQPOLL ring, ``0`` does not; unset or anything else:
:data:`SQPOLL_DEFAULT`. The constructor's ``sqpoll`` argument, when not None, overrides both.
Close and salvage of both rings: ``close``.

Imports ``winaio._io`` (operations), ``abi``, ``ring`` and ``common`` only.
"""

from __future__ import annotations

import errno
import os

from ..._io._ops import Operation
from .abi import SubmissionQueueFull
from .abi.consts import Feature, SetupFlags
from .common import UD_CANCEL, InFlight, report
from .ring import BackendRing

__all__ = [
    "HOT_DEPTH",
    "SQPOLL_DEFAULT",
    "SQ_THREAD_IDLE_MS",
    "S_BIT",
    "SqPollRing",
    "sqpoll_wanted",
]

#: Create the SQPOLL ring (``WINAIO_URING_SQPOLL=0|1`` overrides it; module docstring).
SQPOLL_DEFAULT = True
#: The SQ poller's idle time before it sleeps, in ms (the kernel rounds it up to jiffies).
SQ_THREAD_IDLE_MS = 1
#: FILE requests in flight on the plain ring from which new ones go to the SQPOLL ring.
HOT_DEPTH = 0
#: Set in the user_data of requests on the SQPOLL ring.
S_BIT = 1 << 62
_SETUP_SQPOLL = int(SetupFlags.IORING_SETUP_SQPOLL)


def sqpoll_wanted() -> bool:
    """``WINAIO_URING_SQPOLL=0|1``, else :data:`SQPOLL_DEFAULT`."""
    value = os.environ.get("WINAIO_URING_SQPOLL", "").strip()
    if value in ("0", "1"):
        return value == "1"
    return SQPOLL_DEFAULT


class SqPollRing:
    """The SQPOLL ring, its routing decision and its counters (module docstring).

    Use :meth:`create`. Every method but :meth:`wakeup` runs under the backend's lock;
    ``finished`` is counted by whoever reaps.
    """

    __slots__ = ("finished", "hot_depth", "mode", "ring", "taken", "wakeups")

    def __init__(self, ring: BackendRing, mode: str, hot_depth: int) -> None:
        self.ring = ring
        #: What ``statistics().detail`` says about this ring.
        self.mode = mode
        self.hot_depth = hot_depth
        #: FILE requests taken (under the backend's lock) and finished (by the reaper).
        self.taken = self.finished = 0
        #: Poller wake-ups (io_uring_enter with SQ_WAKEUP) asked for.
        self.wakeups = 0

    @classmethod
    def create(
        cls, entries: int, idle_ms: int, efd: int, hot_depth: int
    ) -> tuple[SqPollRing | None, str]:
        """The SQPOLL ring, its completions signalling ``efd``; or None and why not."""
        try:
            ring = BackendRing(
                entries, flags=_SETUP_SQPOLL, cq_entries=4 * entries, sq_thread_idle=idle_ms
            )
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            return None, f"no SQPOLL ring: io_uring_setup(SQPOLL) failed: {name} {exc.strerror}"
        if not ring.features & Feature.IORING_FEAT_SQPOLL_NONFIXED:
            ring.close()  # before 5.11 the poller only takes registered files
            return None, "no SQPOLL ring: no IORING_FEAT_SQPOLL_NONFIXED (kernel < 5.11)"
        try:
            ring.register_eventfd(efd)
        except OSError as exc:
            ring.close()
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            return None, f"no SQPOLL ring: IORING_REGISTER_EVENTFD failed: {name}"
        mode = f"SQPOLL ring for FILE queues >= {hot_depth} (sq_thread_idle {idle_ms} ms)"
        return cls(ring, mode, hot_depth), mode

    def takes(self, plain_depth: int) -> bool:
        """Route a new FILE request here? (``plain_depth``: FILE requests in flight or
        backlogged on the plain ring.) Yes while any are in flight here, so that a deep
        queue stays here until it has drained."""
        return self.taken != self.finished or plain_depth >= self.hot_depth

    def submit_locked(self, op: Operation, table: InFlight) -> bool:
        """Prepare ``op``'s SQE here and publish it; True if the poller sleeps and must be
        woken (:meth:`wakeup`, after releasing the lock).

        Raises:
            SubmissionQueueFull: no free slot (the caller uses the plain ring instead).
            Exception: whatever ``op.prep`` raised (the kernel never saw the request).
        """
        ud = table.next_ud
        table.next_ud = ud + 1
        ud |= S_BIT
        keep = op.prep(self.ring, ud)
        table[ud] = (op, keep)
        op.token = ud
        self.taken += 1
        return self.publish_locked()

    def cancel_locked(self, target: int) -> bool:
        """Prepare ASYNC_CANCEL for ``target`` (a request here); False if the ring is full.
        The caller publishes it (:meth:`publish_locked`)."""
        try:
            self.ring.prep_cancel(target, UD_CANCEL)
        except SubmissionQueueFull:
            return False
        return True

    def publish_locked(self) -> bool:
        """Publish what was prepared here; True if the poller sleeps and must be woken
        (:meth:`wakeup`, after releasing the lock). Tail store, full barrier, flag load:
        ``abi``, SQPOLL."""
        ring = self.ring
        if ring.publish() and ring.sq_needs_wakeup():
            self.wakeups += 1
            return True
        return False

    def wakeup(self, closing: bool) -> None:
        """Wake the SQ poller: any thread, no lock held (it submits nothing itself)."""
        try:
            self.ring.wakeup_sq()
        except (OSError, ValueError):
            # EBADF/ValueError: close() won a race and everything is drained; anything else
            # (EOWNERDEAD: the poller is gone) is a broken ring: report it.
            if not closing:
                report("waking the io_uring SQ poller")
