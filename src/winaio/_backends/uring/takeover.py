"""The ring thread's watch over a ring owner that is away: when the ring is taken over.

Purpose: :class:`OwnerWatch`, an object each :class:`~.lead.Leadership` owns (its
``watcher``): the ring thread's tick while the ring has an owner (``lead``, "Who is
responsible for the CQ ring"). A CQ ring that holds CQEs, has no waiter and whose head did not
move over a whole tick is taken over (the leadership disowned: the ring thread reaps); an owned
ring found idle :data:`IDLE_TICKS` ticks in a row is given back to the eventfd. Its own state:
the head it saw waiting at its last look (:attr:`OwnerWatch.stale_head`, also the first head
the ring thread's ticks without the GIL compare: ``ringthread.watch_sleep``), the idle ticks in
a row, and the takeovers it made (statistics). It reads the leadership's public ``owner`` and
``waiter`` and calls its ``disown_locked``, which calls :meth:`OwnerWatch.forget`.

Invariants: every call under the backend's lock (the leadership's fields are guarded by it);
a takeover happens only after the same head was seen waiting at two looks a tick apart.

Imports nothing of the package at run time (``lead`` and ``ring`` for annotations only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lead import Leadership
    from .ring import BackendRing

__all__ = ["IDLE_TICKS", "OwnerWatch"]

#: Watch ticks an owned ring must be found idle in a row before it is given back to the
#: eventfd (an owner between two bursts keeps it, and keeps deferring its submissions).
IDLE_TICKS = 4


class OwnerWatch:
    """The watch over one leadership's absent owner (module docstring).

    Args:
        lead: the leadership that owns it (its ``owner``, ``waiter``, ``disown_locked``).
        ring: the ring whose CQ ring it looks at.
        in_flight: how many requests the ring holds (called under the backend's lock).
    """

    __slots__ = ("_idle", "_in_flight", "_lead", "_ring", "_stale_head", "takeovers")

    def __init__(self, lead: Leadership, ring: BackendRing, in_flight: Callable[[], int]) -> None:
        self._lead = lead
        self._ring = ring
        self._in_flight = in_flight
        self._stale_head = -1
        self._idle = 0  # consecutive ticks that found the owned ring idle
        #: Takeovers made (statistics, tests).
        self.takeovers = 0

    @property
    def stale_head(self) -> int:
        """The CQ head :meth:`tick` saw waiting at its last look (-1: no CQE waited)."""
        return self._stale_head

    def tick(self, seen: int | None = None) -> bool:
        """The ring thread's tick while the ring has an owner (under the backend's lock).
        True when it takes the ring over: the owner is away and CQEs have waited a whole
        tick (the caller reaps). Gives an idle ring back to the eventfd too. ``seen``: the CQ
        head the ring thread saw at the previous tick without the GIL (-1: none waited;
        ``ringthread.watch_sleep``), in place of this object's own last look."""
        if seen is not None:
            self._stale_head = seen
        lead = self._lead
        if lead.owner is None or lead.waiter is not None:
            self.forget()
            return False
        ring = self._ring
        if not ring.cq_ready():
            self._stale_head = -1
            if self._in_flight():
                self._idle = 0
                return False
            self._idle += 1
            if self._idle >= IDLE_TICKS:
                lead.disown_locked()  # idle for a while: the eventfd covers it from now on
            return False
        head = ring._cq_head
        if self._stale_head != head:
            self._stale_head = head  # first sight of waiting CQEs: give the owner a tick
            return False
        lead.disown_locked()
        self.takeovers += 1
        return True

    def forget(self) -> None:
        """Nothing seen waiting, no idle tick counted (the ring has no owner any more, or a
        waiter: under the backend's lock)."""
        self._stale_head = -1
        self._idle = 0
