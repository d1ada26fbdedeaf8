"""Waitable timers and the timer thread (win32-async-spec §2.3 "Waitable timers", §8).

Facts encoded here:
- SetWaitableTimer(due, period, routine, arg): a relative due time runs on the monotonic clock;
  an absolute one (a UTC FILETIME) follows the wall clock, so a clock jump past it fires the timer
  at once [W:k32/timer.c:test_timeouts]. A negative period fails [MS:SetWaitableTimer].
- Setting a timer makes it nonsignaled and, if it was active, stops it *without* signaling it and
  cancels its pending completion routine [MS:SetWaitableTimer].
- At the due time: signaled, re-armed with the period, and (if a routine was given) an APC
  ``routine(arg, low, high)`` - low/high = the UTC FILETIME of the signal - is queued to **the
  thread that set the timer**, if none of its APCs is already outstanding [MS:PTIMERAPCROUTINE].
- CancelWaitableTimer: inactive, signaled state unchanged, outstanding routine APC removed
  [MS:CancelWaitableTimer].
- The setting thread's exit cancels timers it set with a routine (state unchanged).
- Manual-reset timers stay signaled until set again; synchronization timers until one wait is
  satisfied.

Implementation: one daemon thread (``winaio-timer-0``, started on first use) keeps two heaps of
deadlines (monotonic seconds, wall-clock ns) and sleeps on a condition variable until the nearest
one. Wall-clock jumps made through :mod:`winaio._clock` wake it at once; real jumps of the system
clock are noticed within :data:`_WALL_POLL` seconds while an absolute timer is pending. Heap
entries carry a generation number: re-setting or cancelling bumps it, so stale entries are
dropped when they surface. Entries hold the timer weakly: a timer nobody references any more
(all handles closed) is gone, as on Windows where closing the last handle cancels it.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .. import _clock
from ..codes import WinError
from ..errors import Win32Error
from ._dispatcher import LOCK, ApcEntry, DispatcherObject, ThreadState, wake_thread, wake_waiters
from ._threads import add_thread_exit_hook, current_thread_state

__all__ = ["TimerRoutine", "WaitableTimer"]

TimerRoutine = Callable[[Any, int, int], object]

#: How often the timer thread re-reads the real wall clock while an absolute timer is pending.
_WALL_POLL = 0.25
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


class WaitableTimer(DispatcherObject):
    """A waitable timer (CreateWaitableTimer).

    Args:
        manual_reset: True for a notification timer (stays signaled until set again), False for
            a synchronization timer (a satisfied wait resets it).
    """

    __slots__ = (
        "_active",
        "_apc_entry",
        "_arg",
        "_generation",
        "_period",
        "_routine",
        "_setter",
        "_signaled",
        "manual_reset",
    )
    type_name = "Timer"

    def __init__(self, manual_reset: bool = False) -> None:
        super().__init__()
        self.manual_reset = bool(manual_reset)
        self._signaled = False
        self._active = False
        self._generation = 0
        self._period = 0.0
        self._routine: TimerRoutine | None = None
        self._arg: Any = None
        self._setter: ThreadState | None = None
        self._apc_entry: ApcEntry | None = None

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._signaled

    def _satisfy(self, ts: ThreadState) -> bool:
        if not self.manual_reset:
            self._signaled = False
        return False

    def _may_satisfy(self) -> bool:
        return self._signaled

    @property
    def active(self) -> bool:
        """True while a due time is pending (or the timer is periodic)."""
        return self._active

    def is_set(self) -> bool:
        """The current signal state (a snapshot)."""
        return self._signaled

    def set(
        self,
        due: float | _dt.datetime,
        period: float = 0.0,
        routine: TimerRoutine | None = None,
        arg: Any = None,
        resume: bool = False,
    ) -> None:
        """SetWaitableTimer.

        Args:
            due: seconds from now (relative, monotonic clock) or an aware ``datetime``
                (absolute, follows the wall clock). A relative due time <= 0 fires at once.
            period: seconds between signals after the first; 0 = once.
            routine: completion routine ``routine(arg, low, high)`` queued as an APC to the
                calling thread at each signal.
            arg: passed to ``routine``.
            resume: fResume (power management); accepted and ignored.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for a negative period or a naive datetime.
        """
        if period < 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"negative period {period}")
        if isinstance(due, _dt.datetime):
            if due.tzinfo is None:
                raise Win32Error(
                    WinError.ERROR_INVALID_PARAMETER, "absolute due time must be aware"
                )
            wall_deadline: int | None = (due - _EPOCH) // _dt.timedelta(microseconds=1) * 1000
            mono_deadline = 0.0
        else:
            wall_deadline = None
            mono_deadline = _clock.monotonic() + max(float(due), 0.0)
        ts = current_thread_state() if routine is not None else None
        with LOCK:
            self._stop_locked()
            self._signaled = False
            self._period = float(period)
            self._routine = routine
            self._arg = arg
            if ts is not None:
                self._setter = ts
                ts.timers[self] = None
            self._active = True
            generation = self._generation
        _TIMER_THREAD.schedule(self, generation, mono_deadline, wall_deadline)

    def cancel(self) -> None:
        """CancelWaitableTimer: inactive; signal state unchanged; pending routine APC dropped."""
        with LOCK:
            self._stop_locked()

    def _stop_locked(self) -> None:
        self._active = False
        self._generation += 1
        entry = self._apc_entry
        setter = self._setter
        if entry is not None and setter is not None:
            try:
                setter.apcs.remove(entry)
            except ValueError:
                pass  # already dequeued by its thread
        self._apc_entry = None
        if setter is not None:
            setter.timers.pop(self, None)
            self._setter = None

    def _fire_locked(self, generation: int) -> float | None:
        """The due time arrived: signal, queue the routine, re-arm. Returns the period (or None)."""
        if generation != self._generation or not self._active:
            return None
        self._signaled = True
        if self._waiters:
            try:
                wake_waiters(self)
            except BaseException:  # (Ctrl-C) the walk is finished first: no
                wake_waiters(self)  # waiter of a signaled object is left asleep
                raise
        routine = self._routine
        setter = self._setter
        if (
            routine is not None
            and setter is not None
            and self._apc_entry is None
            and setter.alive
            and not setter.terminating
        ):
            filetime = _clock.filetime_now()
            entry: ApcEntry = (
                self._run_routine,
                (generation, routine, self._arg, filetime & 0xFFFFFFFF, filetime >> 32),
            )
            self._apc_entry = entry
            setter.apcs.append(entry)
            wb = setter.wait
            if wb is not None and wb.alertable:
                wake_thread(setter)
        if self._period > 0:
            return self._period
        self._active = False
        return None

    def _run_routine(
        self, generation: int, routine: TimerRoutine, arg: Any, low: int, high: int
    ) -> None:
        with LOCK:
            self._apc_entry = None
        routine(arg, low, high)


class _TimerThread:
    """The one thread that turns due times into signals (module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._mono: list[tuple[float, int, weakref.ref[WaitableTimer], int]] = []
        self._wall: list[tuple[int, int, weakref.ref[WaitableTimer], int]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        _clock.add_wall_clock_listener(self._wake)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def schedule(
        self, timer: WaitableTimer, generation: int, mono: float, wall: int | None
    ) -> None:
        ref = weakref.ref(timer)
        with self._cond:
            if wall is None:
                heapq.heappush(self._mono, (mono, next(self._seq), ref, generation))
            else:
                heapq.heappush(self._wall, (wall, next(self._seq), ref, generation))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="winaio-timer-0", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            due: list[tuple[weakref.ref[WaitableTimer], int, float]] = []
            with self._cond:
                now = _clock.monotonic()
                now_wall = _clock.wall_ns()
                while self._mono and self._mono[0][0] <= now:
                    deadline, _, ref, generation = heapq.heappop(self._mono)
                    due.append((ref, generation, deadline))
                while self._wall and self._wall[0][0] <= now_wall:
                    _, _, ref, generation = heapq.heappop(self._wall)
                    due.append((ref, generation, now))
                if not due:
                    timeout: float | None = None
                    if self._mono:
                        timeout = self._mono[0][0] - now
                    if self._wall:
                        wall_in = (self._wall[0][0] - now_wall) / 1e9
                        wall_in = min(wall_in, _WALL_POLL)
                        timeout = wall_in if timeout is None else min(timeout, wall_in)
                    self._cond.wait(timeout)
                    continue
            for ref, generation, deadline in due:
                timer = ref()
                if timer is None:
                    continue
                with LOCK:
                    period = timer._fire_locked(generation)
                if period is not None:
                    # Periodic: next = previous due + period; if we fell behind by more than a
                    # period, restart from now rather than firing a burst.
                    nxt = deadline + period
                    now = _clock.monotonic()
                    if nxt <= now - period:
                        nxt = now + period
                    self.schedule(timer, generation, nxt, None)


_TIMER_THREAD = _TimerThread()


def _cancel_thread_timers(ts: ThreadState) -> None:
    """Thread exit: timers the thread set with a completion routine are cancelled (§2.3)."""
    for timer in list(ts.timers):
        timer.cancel()


add_thread_exit_hook(_cancel_thread_timers)
