"""Clocks for thread-pool timers and wait timeouts: the real one and a manual one for tests.

A pool reads time only through its :class:`PoolClock` (issue 10: "the clock is injectable so
timer tests are deterministic"):

- :data:`SYSTEM_CLOCK`: the kernel's clocks (``winaio._clock``): relative due times on the
  monotonic clock, absolute ones on the (shiftable) wall clock; its listeners hear of
  ``winaio.testing.shift_wall_clock`` jumps at once.
- :class:`ManualClock`: time moves only when a test calls :meth:`ManualClock.advance`. Listeners
  (the pools' wait threads) are called synchronously from ``advance``, so when it returns every
  timer or wait timeout that became due has queued its callback.

Rules: listeners are called without any lock held; they must not block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import _clock

__all__ = ["SYSTEM_CLOCK", "ManualClock", "PoolClock", "SystemClock"]

Listener = Callable[[], None]


class PoolClock:
    """What a pool needs from a clock (base class; see the module docstring)."""

    #: True when time advances by itself (the wait thread then sleeps until the next deadline);
    #: False for a manual clock (the wait thread sleeps until told that time moved).
    realtime = True

    def __init__(self) -> None:
        self._listeners: dict[Listener, None] = {}
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (relative due times)."""
        raise NotImplementedError

    def wall_ns(self) -> int:
        """Nanoseconds since the Unix epoch (absolute due times)."""
        raise NotImplementedError

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` whenever time jumps (wall clock) or is advanced (manual clock)."""
        with self._lock:
            self._listeners[listener] = None

    def remove_listener(self, listener: Listener) -> None:
        """Undo :meth:`add_listener` (no error if absent)."""
        with self._lock:
            self._listeners.pop(listener, None)

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


class SystemClock(PoolClock):
    """The kernel's monotonic and wall clocks."""

    realtime = True

    def __init__(self) -> None:
        super().__init__()
        _clock.add_wall_clock_listener(self._notify)

    def monotonic(self) -> float:
        return _clock.monotonic()

    def wall_ns(self) -> int:
        return _clock.wall_ns()


class ManualClock(PoolClock):
    """A clock that only moves when told to (deterministic timer tests).

    Args:
        start: its initial monotonic reading, in seconds.
        wall_ns: its initial wall-clock reading (default: the real wall clock now).
    """

    realtime = False

    def __init__(self, start: float = 0.0, wall_ns: int | None = None) -> None:
        super().__init__()
        self._now = float(start)
        self._wall = _clock.wall_ns() if wall_ns is None else int(wall_ns)

    def monotonic(self) -> float:
        return self._now

    def wall_ns(self) -> int:
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``; due callbacks are queued on return."""
        if seconds < 0:
            raise ValueError("a manual clock only moves forward")
        self._now += seconds
        self._wall += round(seconds * 1e9)
        self._notify()

    def shift_wall(self, seconds: float) -> None:
        """Jump the wall clock only (absolute due times), like a system-time change."""
        self._wall += round(seconds * 1e9)
        self._notify()


SYSTEM_CLOCK = SystemClock()
