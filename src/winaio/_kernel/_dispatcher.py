"""The dispatcher: one lock, waitable objects, wait blocks and per-thread state.

This is the in-process "kernel" of win32-async-spec §10b, modelled on the Wine server
(``server/thread.c``: ``check_wait``/``wake_up``/``end_wait``):

- **One dispatcher lock** (:data:`LOCK`) guards every object's signal state, every waiter list and
  every thread's wait state. Wait-all atomicity (§2.1 step 2) follows from it: a wait-all is
  checked and its side effects applied under one acquisition, so no other thread can observe or
  consume one of its objects half-way.
- **Satisfaction happens in the signalling thread.** When an object may have become signaled the
  signaller calls :func:`wake_waiters`, which walks that object's waiters in FIFO order, re-runs
  each waiter's check (:func:`try_satisfy`), applies the side effects (auto-reset, semaphore
  count, mutex ownership) *for* the waiter, stores the result in its wait block and unparks it.
  That is what makes SetEvent on an auto-reset event release exactly one waiter and PulseEvent
  release exactly the waiters present at that instant (§2.3), with no thundering herd and no
  window in which a woken waiter finds the object already consumed.
- **Parking.** Each thread has one :class:`ThreadState` with a private lock used as a binary
  semaphore (the cheapest cross-thread wake-up CPython offers). A wake-up is a *token*:
  :func:`wake_thread` releases the lock at most once per token (``wake_pending``) and always
  under :data:`LOCK`, so the parked thread, re-taking :data:`LOCK` after a timed-out acquire, can
  tell whether a token is still outstanding and consume it. Invariant between waits: the parker
  is locked and ``wake_pending`` is False.
- **A wait ended by its own thread.** A parker may run code while its thread blocks (the I/O
  layer's ring leader reaps and delivers completions, its own among them). While it does,
  ``ts.awake_in_wait`` is set, and it tests its wait's result before it parks or returns:
  so :func:`complete_wait` ends such a wait without a token, clearing ``ts.wait`` itself
  under :data:`LOCK`, and ``block()`` returns the result without taking the lock again (no
  release / acquire round trip of the thread to itself, no second lock hold).

Rules:
- Callers hold :data:`LOCK` around every ``_is_signaled_for`` / ``_satisfy`` / waiter-list access.
- Never run user code (APCs, callbacks) while holding :data:`LOCK`.
- Pure threading: no I/O, no asyncio.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..codes import WaitCode
from ._cuts import cut_at_entry

if TYPE_CHECKING:
    from ._threads import KThread

__all__ = [
    "LOCK",
    "TERMINATED",
    "ApcEntry",
    "BlockListener",
    "DispatcherObject",
    "Parker",
    "ThreadState",
    "WaitBlock",
    "complete_wait",
    "end_wait",
    "run_block_hook",
    "try_satisfy",
    "unlink_wait",
    "wake_thread",
    "wake_waiters",
]

#: Wait-block result of a wait ended by TerminateThread (never a valid wait code).
TERMINATED = -1

#: The dispatcher lock. Plain Lock (not RLock): nothing re-enters it, and it is on every hot path.
LOCK = threading.Lock()
#: LOCK's bound methods, for threads no signal handler runs in (backend and pool workers):
#: ``acquire(); try: ... finally: release()`` costs half of ``with LOCK:`` on CPython 3.11
#: (measured 57 vs 107 ns), but a Ctrl-C whose handler runs at the end of the ``acquire()``
#: call (where CPython checks for signals) raises outside the ``try`` with the lock held, and
#: every thread then hangs. ``with LOCK:`` checks for signals only inside its block, whose exit
#: releases it: every path a caller's thread (the main thread) takes uses it
#: (tests/kernel/test_interrupted_locks.py).
acquire_lock = LOCK.acquire
release_lock = LOCK.release

_WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
_WAIT_ABANDONED_0 = int(WaitCode.WAIT_ABANDONED_0)

#: A queued user APC: ``fn(*args)``. Tuples keep QueueUserAPC cheap (win32 §3).
ApcEntry = tuple[Callable[..., Any], tuple[Any, ...]]


class BlockListener(Protocol):
    """Told (under LOCK) when an associated thread blocks, unblocks or exits.

    This is how a completion port counts its running threads (spec §6.7): every blocking wait of
    the kernel reports to the thread's listener.
    """

    def thread_blocked(self, ts: ThreadState) -> None: ...
    def thread_unblocked(self, ts: ThreadState) -> None: ...
    def thread_exited(self, ts: ThreadState) -> None: ...


class Parker(Protocol):
    """What a thread parks on: a binary semaphore with ``threading.Lock``'s ``acquire`` and
    ``release``. Normally a private ``threading.Lock``; a higher layer may replace a thread's
    parker, while that thread is in none of its waits and under :data:`LOCK`, by an object with
    the same semantics that does more while it blocks (the I/O layer's ring waiter waits in
    the kernel on an io_uring ring and delivers completions, ``_backends.uring.lead``).
    ``release`` is called under :data:`LOCK` (:func:`wake_thread`), ``acquire`` without it.

    A parker that runs code while its thread blocks in a registered wait (``ts.wait`` set) may
    set ``ts.awake_in_wait`` while that code runs, provided it tests the wait's ``result``
    after each run of that code and again after clearing the flag, before it parks: a wait
    ended meanwhile (:func:`complete_wait`, :func:`end_wait`: the result stored first, then
    the flag tested; ``ts.wait`` cleared, no token given) makes ``acquire`` return False at
    once, and ``block()`` returns the wait's result without the lock. The flag is clear
    whenever ``acquire`` is not running."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...


class ThreadState:
    """Everything the kernel knows about one thread (spec §1.3). Created lazily per thread."""

    __slots__ = (
        "alive",
        "apcs",
        "awake_in_wait",
        "block_listener",
        "exit_code",
        "extensions",
        "ident",
        "last_error",
        "on_block",
        "owned_mutexes",
        "parker",
        "special_apcs",
        "terminating",
        "thread",
        "tid",
        "timers",
        "wait",
        "wake_pending",
    )

    def __init__(self, ident: int, tid: int) -> None:
        self.ident = ident
        self.tid = tid
        self.thread: KThread | None = None
        lock = threading.Lock()
        lock.acquire()
        self.parker: Parker = lock
        self.wake_pending = False
        #: Set by a parker while it runs code inside this thread's blocked wait (``Parker``):
        #: ending that wait then needs no token (:func:`complete_wait`).
        self.awake_in_wait = False
        #: The wait block of the blocking call this thread is in (None when running).
        self.wait: WaitBlock | None = None
        self.apcs: deque[ApcEntry] = deque()
        self.special_apcs: deque[ApcEntry] = deque()
        #: False once the thread's exit effects ran (QueueUserAPC then fails, spec §3).
        self.alive = True
        #: Set by TerminateThread: waits raise ThreadTerminated instead of blocking.
        self.terminating = False
        self.exit_code: int | None = None
        self.last_error = 0
        #: Mutexes this thread owns, abandoned when it exits (spec §1.2).
        self.owned_mutexes: dict[Any, None] = {}
        #: Waitable timers this thread set with a completion routine (cancelled at exit, §2.3).
        self.timers: dict[Any, None] = {}
        #: Completion-port concurrency accounting hook (None unless associated with a port).
        self.block_listener: BlockListener | None = None
        #: Per-thread data owned by higher layers (e.g. the I/O layer's pending requests).
        self.extensions: dict[str, Any] = {}
        #: Called once (and cleared), without :data:`LOCK`, when this thread next parks in a
        #: kernel wait (``_wait.block``, a pool worker's wait) or exits: set by a higher layer
        #: that left work to this thread's next GetQueuedCompletionStatus (the thread backend's
        #: lone request, ``_backends._threads``), so that it hands the work on when the thread
        #: parks elsewhere instead. See :func:`run_block_hook`.
        self.on_block: Callable[[], object] | None = None


class WaitBlock:
    """One blocked wait: which objects, any/all, alertable; ``result`` is set by the satisfier.

    ``detach`` lets waits that are not object waits (GetQueuedCompletionStatus keeps its own
    LIFO stack of waiters) unlink themselves when the wait ends for another reason (timeout,
    APC, TerminateThread).
    """

    __slots__ = ("alertable", "data", "detach", "objects", "result", "thread", "wait_all")

    def __init__(
        self,
        thread: ThreadState,
        objects: tuple[DispatcherObject, ...],
        wait_all: bool,
        alertable: bool,
        detach: Callable[[WaitBlock], None] | None = None,
    ) -> None:
        self.thread = thread
        self.objects = objects
        self.wait_all = wait_all
        self.alertable = alertable
        self.detach = detach
        self.result: int | None = None
        #: Payload handed over with the result (completion packets for port waits).
        self.data: Any = None


class DispatcherObject:
    """Base of every waitable kernel object (spec §1.2 table).

    Subclasses implement, under :data:`LOCK`:

    - ``_is_signaled_for(ts)``: would a wait by ``ts`` be satisfied now?
    - ``_satisfy(ts)``: apply the side effect of a satisfied wait (auto-reset, count -= 1,
      take ownership); return True iff the wait must report "abandoned".
    - ``_may_satisfy()``: cheap "could any waiter still be satisfied?"; lets
      :func:`wake_waiters` stop early once an auto-reset event has been consumed.
    """

    __slots__ = ("__weakref__", "_waiters", "name")

    #: The Win32 object type name, used in error messages and by handle type checks.
    type_name: ClassVar[str] = "Object"

    def __init__(self) -> None:
        # dict as an insertion-ordered set: FIFO iteration, O(1) removal of a finished wait.
        self._waiters: dict[WaitBlock, None] = {}
        self.name: str | None = None

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        raise NotImplementedError

    def _satisfy(self, ts: ThreadState) -> bool:
        return False

    def _may_satisfy(self) -> bool:
        return True

    @property
    def waiter_count(self) -> int:
        """How many threads are blocked waiting on this object right now."""
        return len(self._waiters)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<{type(self).__name__}{name} at {id(self):#x}>"


def try_satisfy(
    objects: tuple[DispatcherObject, ...], wait_all: bool, ts: ThreadState
) -> int | None:
    """The object check of spec §2.1 step 2. Caller holds :data:`LOCK`.

    Wait-any: the first signaled object wins and only its side effect is applied;
    returns ``WAIT_OBJECT_0 + i`` or ``WAIT_ABANDONED_0 + i``.
    Wait-all: only if every object is signaled now; then all side effects are applied and the
    result is ``WAIT_OBJECT_0`` or ``WAIT_ABANDONED_0`` (Wine and ReactOS return exactly
    WAIT_ABANDONED_0 when any mutex was abandoned). Returns None when not satisfied, having
    touched nothing.
    """
    if wait_all:
        for obj in objects:
            if not obj._is_signaled_for(ts):
                return None
        abandoned = False
        for obj in objects:
            if obj._satisfy(ts):
                abandoned = True
        return _WAIT_ABANDONED_0 if abandoned else _WAIT_OBJECT_0
    for index, obj in enumerate(objects):
        if obj._is_signaled_for(ts):
            return _WAIT_ABANDONED_0 + index if obj._satisfy(ts) else index
    return None


def wake_thread(ts: ThreadState) -> None:
    """Give ``ts`` a wake-up token (at most one outstanding). Caller holds :data:`LOCK`."""
    if not ts.wake_pending:
        ts.wake_pending = True
        parker = ts.parker
        try:
            parker.release()
        except BaseException as exc:
            release_again(parker, exc)
            raise


def release_again(parker: Parker, exc: BaseException) -> None:
    """An exception (a Ctrl-C) came out of ``parker.release()`` once ``wake_pending`` was set:
    give the token again if the call was cut at its entry, before its first statement (a
    Python parker, ``RingParker`` or ``WorkerParker``, where a signal that came meanwhile is
    raised at its first eval-breaker check): else the thread sleeps for ever with a token
    counted as given. A ``threading.Lock``'s release (C) ran when it raised (no redo: a
    second release would raise). Caller holds :data:`LOCK`."""
    if cut_at_entry(exc, getattr(type(parker), "release", None)):  # (C: it ran)
        parker.release()


def unlink_wait(wb: WaitBlock) -> None:
    """Remove ``wb`` from every waiter list it is in. Caller holds :data:`LOCK`."""
    for obj in wb.objects:
        obj._waiters.pop(wb, None)
    detach = wb.detach
    if detach is not None:
        wb.detach = None
        detach(wb)


def complete_wait(wb: WaitBlock, result: int) -> None:
    """End a blocked wait with ``result``: unlink it everywhere and wake its thread. Caller
    holds :data:`LOCK`.

    A thread awake inside that wait (``awake_in_wait``: its parker runs code, typically the
    delivery that ends this very wait) gets no token: its wait is cleared here (``ts.wait``
    None), it sees the result before it parks, and ``block()`` returns without the lock
    (``Parker``). The result is stored *before* the flag is tested: the parker clears the
    flag before it tests the result, so one of the two sees the other.
    """
    try:
        unlink_wait(wb)
        end_wait(wb, result)
    except BaseException:
        # (Ctrl-C) cut between the two, at end_wait's entry or inside either: both are made
        # again (idempotent; end_wait gives no second token), else the waiter would be out of
        # every waiter list with no result, asleep for ever (review8: the walk made again
        # by the signaller cannot find it any more).
        unlink_wait(wb)
        end_wait(wb, result)
        raise


def end_wait(wb: WaitBlock, result: int) -> None:
    """:func:`complete_wait` for a wait block that is in no waiter list any more: the caller
    took it out (a completion port popping its GQCS waiter, whose wait has no objects, after
    clearing ``detach``), or :func:`complete_wait` just unlinked it. Caller holds
    :data:`LOCK`."""
    wb.result = result
    ts = wb.thread
    if ts.awake_in_wait:
        ts.wait = None
    elif not ts.wake_pending:
        ts.wake_pending = True
        parker = ts.parker
        try:
            parker.release()
        except BaseException as exc:
            release_again(parker, exc)  # (a Python parker's release cut at its entry)
            raise


def wake_waiters(obj: DispatcherObject) -> None:
    """``obj`` may have become signaled: satisfy its waiters in FIFO order (Wine ``wake_up``).

    Caller holds :data:`LOCK`. Satisfying a waiter can only make objects *less* signaled, so
    once ``obj`` can satisfy nobody, no later waiter of ``obj`` can be satisfied either.
    """
    waiters = obj._waiters
    if not waiters:
        return
    for wb in list(waiters):
        if wb.result is not None:
            continue
        result = try_satisfy(wb.objects, wb.wait_all, wb.thread)
        if result is not None:
            complete_wait(wb, result)
            if not obj._may_satisfy():
                return


def run_block_hook(ts: ThreadState) -> None:
    """Run and clear ``ts.on_block`` (the calling thread's own state, without :data:`LOCK`):
    the thread parks elsewhere than in the GetQueuedCompletionStatus the hook's owner left
    work to, or exits. Cleared first: it runs once, even if it raises."""
    hook = ts.on_block
    if hook is not None:
        ts.on_block = None
        hook()
