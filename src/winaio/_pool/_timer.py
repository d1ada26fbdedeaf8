"""Thread-pool timer objects (CreateThreadpoolTimer / SetThreadpoolTimer; win32-async-spec §9).

Facts encoded here [MS:SetThreadpoolTimer] [W:nt/threadpool.c:test_tp_timer]
[W:dlls/ntdll/threadpool.c:TpSetTimer]:
- ``set(due, period, window)``: ``due`` None stops queueing new callbacks (queued ones still
  run); a relative due time counts on the pool clock's monotonic time, an absolute one (an aware
  datetime; Win32: a positive FILETIME) on its wall clock; a relative 0 queues the callback at
  once (and, with a period, the next one a period later). Each expiry queues one callback; a
  periodic timer is re-armed at ``due + k * period`` (restarting from now if it fell more than a
  period behind). ``window`` lets the pool delay a callback that long to batch expiries.
- Setting a timer replaces its previous setting; it may be re-set from its own callback.
- ``is_set`` is True from a ``set`` with a due time until ``set(None)`` - also after a one-shot
  timer has fired (IsThreadpoolTimerSet).
- ``wait_callbacks`` waits for queued and running callbacks only, never for a future expiry.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK
from ..codes import WinError
from ..errors import Win32Error
from ._env import CallbackEnvironment
from ._objects import PoolObject

if TYPE_CHECKING:
    from ._pool import ThreadPool
    from ._waiter import Waiter

__all__ = ["PoolTimer", "check_seconds", "wall_ns_of"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def check_seconds(value: float, what: str) -> float:
    """A finite, non-negative number of seconds, else ERROR_INVALID_PARAMETER."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{what} {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{what} {value!r}")
    return seconds


def wall_ns_of(when: _dt.datetime) -> int:
    """An aware datetime as Unix-epoch nanoseconds (naive -> ERROR_INVALID_PARAMETER)."""
    if when.tzinfo is None:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "absolute due time must be aware")
    return (when - _EPOCH) // _dt.timedelta(microseconds=1) * 1000


class PoolTimer(PoolObject):
    """A thread-pool timer: ``callback(instance, *args)`` at each expiry (module docstring)."""

    __slots__ = ("_gen", "_is_set", "_pending_entry", "_period", "_window")

    def __init__(
        self,
        pool: ThreadPool,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        environment: CallbackEnvironment | None,
        context: Any,
    ) -> None:
        super().__init__(pool, callback, args, environment, context)
        self._gen = 0
        self._is_set = False
        self._period = 0.0
        self._window = 0.0
        #: True while an expiry is scheduled (SetThreadpoolTimerEx's "was set").
        self._pending_entry = False

    @property
    def is_set(self) -> bool:
        """IsThreadpoolTimerSet (module docstring)."""
        return self._is_set

    def set(
        self, due: float | _dt.datetime | None, period: float = 0.0, window: float = 0.0
    ) -> bool:
        """SetThreadpoolTimerEx (module docstring).

        Args:
            due: seconds from now (0 = now), an aware datetime, or None to stop.
            period: seconds between expiries after the first; 0 = one-shot.
            window: how many seconds the callback may be delayed to batch expiries.

        Returns:
            True if an expiry was pending and got replaced or cancelled.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for negative, infinite or NaN times, a naive
                datetime; ERROR_INVALID_HANDLE if the timer is closed.
        """
        if period != 0 or window != 0:
            period = check_seconds(period, "period")
            window = check_seconds(window, "window")
        wall: int | None = None
        relative = 0.0
        if isinstance(due, _dt.datetime):
            wall = wall_ns_of(due)
        elif due is not None:
            relative = check_seconds(due, "due time")
        pool = self._pool
        waiter = pool._get_waiter() if due is not None else pool._waiter
        spawn = armed = needs_thread = False
        try:
            with LOCK:
                self._check_open_locked()
                was = self._disarm_locked(waiter)
                if due is None:
                    self._is_set = False
                else:
                    assert waiter is not None
                    pool.check_open()
                    self._is_set = True
                    self._period = period
                    self._window = window
                    if wall is not None:
                        waiter.schedule_wall_locked(self, wall)
                        armed = True
                    elif relative > 0:
                        waiter.schedule_locked(self, pool._clock.monotonic() + relative)
                        armed = True
                    else:
                        # An expiry now: the same path as a due one (a timer-queue timer marks a
                        # one-shot fired, or runs in the timer thread).
                        spawn = self._fire_locked(waiter)
                        if period:
                            waiter.schedule_locked(self, pool._clock.monotonic() + period)
                            armed = True
                    self._pending_entry = armed
                    needs_thread = armed or bool(waiter._ready)
            if spawn:  # first: the worker is counted (see ``_pool``'s invariants)
                pool._spawn()
        except BaseException as exc:  # (Ctrl-C: the worker counted, started)
            pool._woken_again(exc, spawn)
            raise
        if needs_thread and waiter is not None:
            waiter.ensure_running()
        return was

    def _disarm_locked(self, waiter: Waiter | None) -> bool:
        was = self._pending_entry
        self._pending_entry = False
        if waiter is not None:
            waiter.disarm_locked(self)
        else:
            self._gen += 1
        return was

    def _due_locked(self, waiter: Waiter, deadline: float, now: float) -> bool:
        period = self._period
        if period > 0:
            nxt = deadline + period
            if nxt <= now - period:
                nxt = now + period  # fell behind: no burst of expiries
            waiter.schedule_locked(self, nxt)
        else:
            self._pending_entry = False
            waiter.disarm_locked(self)
        return self._fire_locked(waiter)

    def _fire_locked(self, waiter: Waiter) -> bool:
        """Queue one callback; returns True if a worker must be started."""
        return self._queue_locked()

    def _stop_locked(self) -> None:
        self._pending_entry = False

    def _shutdown(self) -> None:
        waiter = self._pool._waiter
        with LOCK:
            self._disarm_locked(waiter)
            self._is_set = False
