"""One shared timer queue: run a callback after a delay without a thread per pending timer.

Purpose: rpcecho TestSleep answers its call from a timer, as Samba's echo server does from its
event loop [samba:rpc_echo.c dcesrv_echo_TestSleep]: the manager returns at once and no thread
waits for the call. All pending timers share one daemon thread (started on first use) that
sleeps until the earliest deadline; a callback runs on that thread and must be short (completing
an RPC call is: it only queues the reply).

Invariants: each timer fires at most once; ``cancel()`` before it fires guarantees it never
runs; an exception in a callback is logged and does not stop the queue.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

__all__ = ["Timer", "TimerQueue", "call_later"]

_log: Final = logging.getLogger("winaio.rpc.timers")


class Timer:
    """A pending callback; ``cancel()`` it before it fires to drop it."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerQueue:
    """Timers ordered by deadline, served by one thread."""

    def __init__(self, name: str = "winaio-rpc-timers") -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._name = name

    def __len__(self) -> int:
        with self._cond:
            return sum(1 for _, _, t in self._heap if not t.cancelled)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(time.monotonic() + max(0.0, delay), callback)
        with self._cond:
            heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return timer

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        timer = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(delay)
            if timer.cancelled:
                continue
            timer.cancelled = True  # fired: at most once
            try:
                timer.callback()
            except Exception:
                _log.exception("timer callback %r failed", timer.callback)


_QUEUE: Final = TimerQueue()


def call_later(delay: float, callback: Callable[[], object]) -> Timer:
    """Run ``callback()`` on the shared timer thread after ``delay`` seconds."""
    return _QUEUE.call_later(delay, callback)
