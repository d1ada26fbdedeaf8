"""The wait thread of a pool: every timer and every wait timeout of the pool, on one thread.

Issue 10: "timers and waits share one wait thread per pool (no thread per wait object)". Windows
parks wait objects in buckets of 63 handles per wait thread [W:dlls/ntdll/threadpool.c]; here no
thread waits on the objects at all:

- **Signals** are seen by the signalling thread. An armed wait is a kernel ``WaitBlock`` in its
  object's waiter list whose ``detach`` hook runs (under the dispatcher lock) when a signaller
  satisfies it; the hook queues the pool callback right there. The block is satisfied for a
  private identity (:attr:`Waiter.identity`), so side effects (auto-reset, semaphore count) are
  applied atomically, exactly once, as for a thread that waited.
- **Time** is the wait thread's job: two sorted deadline lists (the pool clock's monotonic
  seconds; wall-clock nanoseconds for absolute due times). Due entries call their item's
  ``_due_locked``. Entries carry the item's generation; re-setting an item bumps it, so stale
  entries are dropped when reached. Timers with a window are coalesced as Windows does: the
  thread wakes at the latest due time among timers due before the smallest ``due + window``
  [W:nt/threadpool.c:test_tp_window_length].
- The thread also runs WT_EXECUTEINWAITTHREAD / WT_EXECUTEINTIMERTHREAD callbacks, serially
  [W:k32/thread.c:test_RegisterWaitForSingleObject], and starts workers for callbacks queued
  under the lock (a thread cannot be started while the dispatcher lock is held).
- With a manual clock (``realtime`` False) it sleeps until the clock tells it time moved; the
  clock's listener processes due entries synchronously in the advancing thread.
- It runs while any item is armed, and retires after the pool's idle timeout otherwise
  (``winaio-waiter-<n>``, restarted on demand; ``stop_locked``/``join`` at pool close).
- A worker requested with :meth:`Waiter.request_spawn_locked` is already counted in the pool's
  ``_threads``: the thread never retires while one is requested, and at close
  :meth:`Waiter.stop_locked` hands the count back (otherwise ``close()`` would wait for a
  worker nobody starts). WT_EXECUTEINWAITTHREAD callbacks queued before the close still run.
  Workers counted while a burst of expiries is being fired stay requested until the burst is
  fired (a thread start would stall it, see ``_main``), under the same hand-back rule.

Parking uses the thread's kernel parker and the dispatcher's token protocol (``wake_thread``),
so anyone holding the lock can wake it cheaply. Every state change is recorded in the data
structures before the wake-up, and the thread re-reads them after every wake-up.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .._kernel._dispatcher import LOCK, ThreadState, wake_thread
from .._kernel._threads import KThread, current_thread_state, start_thread
from .._kernel._wait import wait_for_one
from ..codes import WinError
from ..errors import Win32Error
from ._objects import report_callback_error

if TYPE_CHECKING:
    from ._pool import ThreadPool

__all__ = ["Timed", "Waiter"]

#: How often the thread re-reads the real wall clock while an absolute deadline is pending.
_WALL_POLL = 0.25
_TIMEOUT_MAX = threading.TIMEOUT_MAX
#: Due entries fired per acquisition of the dispatcher lock by the wait thread.
_CHUNK = 16
_names = itertools.count()


class Timed(Protocol):
    """What the wait thread schedules: timers, waits with a timeout, timer-queue timers."""

    _gen: int
    _window: float

    def _due_locked(self, waiter: Waiter, deadline: float, now: float) -> bool:
        """The deadline arrived (under the lock). Returns True if a worker must be started."""
        ...

    def _stop_locked(self) -> None:
        """The pool closes: stop for good (under the lock)."""
        ...


#: (deadline, sequence, item, generation) - the sequence makes entries totally ordered.
_Entry = tuple[float, int, Timed, int]


class Waiter:
    """The one wait thread of a pool (module docstring)."""

    def __init__(self, pool: ThreadPool) -> None:
        self._pool = pool
        self._clock = pool._clock
        self._mono: list[_Entry] = []
        self._wall: list[tuple[int, int, Timed, int]] = []
        self._seq = itertools.count()
        self._ready: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        self._spawn = 0
        self._armed: dict[Timed, None] = {}
        #: The identity pool waits are satisfied for (their mutex owner, never a real thread).
        self.identity = ThreadState(0, 0)
        self._ts: ThreadState | None = None
        self._thread: KThread | None = None
        self._python_thread: threading.Thread | None = None
        self._running = False
        self._stopping = False
        self._clock.add_listener(self._clock_moved)

    # ------------------------------------------------------------------ scheduling (under LOCK)
    def schedule_locked(self, item: Timed, deadline: float) -> None:
        """Call ``item._due_locked`` at monotonic ``deadline`` (if its generation still matches)."""
        entry = (deadline, next(self._seq), item, item._gen)
        mono = self._mono
        bisect.insort(mono, entry)
        self._armed[item] = None
        if mono[0] is entry:
            self._wake_locked()

    def schedule_wall_locked(self, item: Timed, wall_ns: int) -> None:
        """Same for an absolute due time (wall-clock nanoseconds)."""
        entry = (wall_ns, next(self._seq), item, item._gen)
        bisect.insort(self._wall, entry)
        self._armed[item] = None
        self._wake_locked()

    def arm_locked(self, item: Timed) -> None:
        """``item`` needs the thread (an armed wait without a timeout, for instance)."""
        self._armed[item] = None

    def disarm_locked(self, item: Timed) -> None:
        """``item`` no longer needs the thread; its scheduled entries become stale."""
        item._gen += 1
        self._armed.pop(item, None)

    def request_spawn_locked(self) -> None:
        """A callback was queued under the lock and the pool counted one more worker: the
        wait thread starts it (a thread cannot be started under the lock)."""
        if self._stopping:
            self._pool._starting -= 1
            self._pool._thread_gone_locked()
            return
        self._spawn += 1
        self._wake_locked()

    def run_in_thread_locked(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        """Run ``fn(*args)`` on the wait thread (WT_EXECUTEINWAITTHREAD)."""
        self._ready.append((fn, args))
        self._wake_locked()

    def _wake_locked(self) -> None:
        ts = self._ts
        if ts is not None:
            wake_thread(ts)

    # ------------------------------------------------------------------ thread
    def ensure_running(self) -> None:
        """Start the thread if it is not running (call without the lock)."""
        if self._running:
            return  # the common case; a thread that is retiring re-checks under the lock
        with LOCK:
            if not self._claim_start_locked():
                return
        name = f"winaio-waiter-{next(_names)}"
        try:
            thread = start_thread(self._main, name=name)
        except RuntimeError as exc:
            with LOCK:
                self._running = False
            raise Win32Error(WinError.ERROR_NOT_ENOUGH_MEMORY, str(exc)) from None
        self._thread = thread
        self._python_thread = thread.python_thread

    def _claim_start_locked(self) -> bool:
        """True if the caller must start the thread (now marked running)."""
        if self._running or self._stopping:
            # Running already, or the pool closed after the caller armed its item (the close
            # stopped that item: nothing needs the thread).
            return False
        self._running = True
        return True

    def _main(self) -> None:
        ts = current_thread_state()
        parker = ts.parker
        clock = self._clock
        pool = self._pool
        idle_timeout = pool._idle_timeout
        with LOCK:
            self._ts = ts
        idle = False
        while True:
            with LOCK:
                if self._stopping or (
                    idle and not self._armed and not self._ready and not self._spawn
                ):
                    self._ts = None
                    self._running = False
                    ready = self._ready  # only when stopping: queued before the close
                    self._ready = []
                    break
                spawn, more = self._process_due_locked(_CHUNK)
                if more:
                    # Workers are started once the burst of expiries is fired: starting a
                    # thread waits until it gets the GIL from the workers busy with the first
                    # callbacks (up to a switch interval per thread), and the rest of the
                    # burst would wait with it. Kept as requested meanwhile (a close hands
                    # them back: ``stop_locked``).
                    self._spawn += spawn
                    spawn = 0
                else:
                    spawn += self._spawn
                    self._spawn = 0
                ready = self._ready
                self._ready = []
                timeout = (
                    0.0 if more else self._next_timeout_locked(clock.monotonic(), clock.wall_ns())
                )
                if timeout is None and not self._armed:
                    timeout = idle_timeout
                    idle = True
                else:
                    idle = False
            for _ in range(spawn):
                pool._spawn()
            _run_ready(ready)
            if ready or spawn or more:
                idle = False
                continue
            if timeout is None:
                got = parker.acquire()
            elif timeout > 0:
                got = parker.acquire(True, min(timeout, _TIMEOUT_MAX))
            else:
                got = parker.acquire(False)
            with LOCK:
                if got:
                    ts.wake_pending = False
                    idle = False
                elif ts.wake_pending:
                    parker.acquire(False)
                    ts.wake_pending = False
                    idle = False
        _run_ready(ready)

    def _process_due_locked(self, limit: int) -> tuple[int, bool]:
        """Fire up to ``limit`` due entries (the lock is not held for a whole burst of 1000
        timers: workers take the first callbacks meanwhile). Returns (workers to start, more
        entries are due)."""
        clock = self._clock
        now = clock.monotonic()
        spawn = 0
        fired = 0
        mono = self._mono
        wall = self._wall
        now_wall = clock.wall_ns() if wall else 0
        while fired < limit:
            if mono and mono[0][0] <= now:
                deadline, _, item, gen = mono.pop(0)
            elif wall and wall[0][0] <= now_wall:
                _, _, item, gen = wall.pop(0)
                deadline = now
            else:
                return spawn, False
            if gen == item._gen:
                fired += 1
                if item._due_locked(self, deadline, now):
                    spawn += 1
        return spawn, bool((mono and mono[0][0] <= now) or (wall and wall[0][0] <= now_wall))

    def _next_timeout_locked(self, now: float, now_wall: int) -> float | None:
        """Seconds until the next wake-up (window coalescing); None = until woken."""
        mono = self._mono
        while mono and mono[0][3] != mono[0][2]._gen:
            mono.pop(0)  # stale: the item was re-set or stopped
        wall = self._wall
        while wall and wall[0][3] != wall[0][2]._gen:
            wall.pop(0)
        if not self._clock.realtime:
            return None
        timeout: float | None = None
        if mono:
            lower = upper = float("inf")
            for deadline, _, item, gen in mono:
                if deadline >= upper:
                    break
                if gen != item._gen:
                    continue
                lower = deadline
                upper = min(upper, deadline + item._window)
            timeout = lower - now
        if wall:
            wall_in = min((wall[0][0] - now_wall) / 1e9, _WALL_POLL)
            timeout = wall_in if timeout is None else min(timeout, wall_in)
        return timeout

    def _clock_moved(self) -> None:
        """The clock jumped or a manual clock advanced: process due entries now."""
        with LOCK:
            if self._stopping:
                return
            spawn, _ = self._process_due_locked(1 << 62)
            self._wake_locked()
        pool = self._pool
        for _ in range(spawn):
            pool._spawn()

    # ------------------------------------------------------------------ closing
    def stop_listening(self) -> None:
        """The pool closes: clock jumps and manual advances no longer concern it."""
        self._clock.remove_listener(self._clock_moved)

    def stop_locked(self) -> None:
        """The pool closes (under the lock, in the same acquisition that marks it closing):
        every armed item stops, requested workers are handed back to the pool, the thread ends
        after running the WT_EXECUTEINWAITTHREAD callbacks already queued."""
        self._stopping = True
        for item in list(self._armed):
            item._stop_locked()
            self.disarm_locked(item)
        self._mono.clear()
        self._wall.clear()
        spawn = self._spawn
        if spawn:
            self._spawn = 0
            pool = self._pool
            pool._starting -= spawn
            for _ in range(spawn):
                pool._thread_gone_locked()
        self._wake_locked()

    def join(self) -> None:
        """Wait for the thread to end (unless called on it); then run what it left queued
        (callbacks queued while it was not running)."""
        thread = self._thread
        me = current_thread_state()
        if thread is not None and thread.state is not me:
            wait_for_one(thread, None, False)
            python_thread = self._python_thread
            if python_thread is not None:
                python_thread.join()
        elif thread is not None:
            return  # called on the wait thread itself: it runs them when it returns
        with LOCK:
            ready = self._ready
            self._ready = []
        _run_ready(ready)


def _run_ready(ready: list[tuple[Callable[..., object], tuple[Any, ...]]]) -> None:
    """Run WT_EXECUTEINWAITTHREAD callbacks (and re-arms) serially, reporting exceptions."""
    for fn, args in ready:
        try:
            fn(*args)
        except Exception:
            report_callback_error()
