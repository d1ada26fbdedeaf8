"""Closing the io_uring backend (invariant 4: close drains), and salvaging a dead ring thread.

Purpose: the part of ``IoUringBackend`` (``_uring``) that ends it.

- ``close()`` refuses new submissions and wakes the ring thread, which cancels every in-flight
  user_data (each ASYNC_CANCEL goes into the ring that holds its target; the rest of each line
  follows its head), keeps reaping until every submitted op has been completed, then cancels
  its wake-up poll, reaps its last CQE and exits. ``close()`` joins it (bounded), then closes
  the plain ring, the SQPOLL ring if there is one, and the eventfd. If the drain times out,
  the rings and the buffers are left alone (the kernel may still write into them) and
  ``close()`` raises.
- Should the ring thread ever die (a bug; it is reported), the backend refuses new requests
  and ``close()`` salvages: SQEs the kernel will never see on its own are taken back from the
  SQ rings (on the plain ring every one it has not consumed; on the SQPOLL ring only the
  unpublished ones, because the poller consumes published SQEs by itself) and their requests
  completed cancelled; the rest are cancelled with ASYNC_CANCEL from the closing thread and
  their CQEs reaped, boundedly.

Imports ``winaio._io``, the ABI modules, ``_uring_sqpoll`` and ``_uring_streams`` only.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .._io._backend import BackendStatistics
from .._io._ops import Operation
from ._uring_abi import SubmissionQueueFull
from ._uring_ring import BackendRing
from ._uring_sqpoll import S_BIT
from ._uring_streams import B_FILE, CANCELLED, REAP_BATCH, UD_CANCEL, UD_WAKE, Finished, Line

__all__ = ["CLOSE_TIMEOUT", "Closing"]

#: Seconds ``close()`` waits for the ring thread to drain (and a salvage for the kernel).
CLOSE_TIMEOUT = 30.0


class Closing:
    """The close half of ``IoUringBackend`` (a mixin; module docstring)."""

    # Provided by IoUringBackend.
    _lock: threading.Lock
    _thread: threading.Thread
    _efd: int
    _ring: BackendRing
    _sq: BackendRing | None
    _ops: dict[int, tuple[Operation, object]]
    _lines: dict[tuple[int, int], Line]
    _backlog: deque[tuple[int, Operation | None, Any]]
    _sleeping: bool
    _closing: bool
    _crashed: bool
    _close_called: bool
    _stop_sent: bool

    if TYPE_CHECKING:  # methods of IoUringBackend and SqPoll; not shadowed at run time

        def statistics(self) -> BackendStatistics: ...
        def _cancel_locked(self, target: int) -> bool: ...
        def _process(self, cqes: list[tuple[int, int, int]], finished: Finished) -> int: ...
        def _deliver(self, finished: Finished) -> None: ...
        def _sq_ring(self) -> BackendRing: ...

    def close(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("the io_uring backend cannot be closed from its ring thread")
        with self._lock:
            if self._close_called:
                return
            self._close_called = self._closing = True
            wake = self._sleeping
            self._sleeping = False
        if wake:
            os.eventfd_write(self._efd, 1)
        self._thread.join(CLOSE_TIMEOUT)
        if self._crashed:
            self._salvage()
        if self._thread.is_alive():
            stats = self.statistics()
            raise RuntimeError(
                f"io_uring backend: {stats.in_flight} requests still in flight after"
                f" {CLOSE_TIMEOUT}s; the ring and their buffers are kept alive"
            )
        with self._lock:
            self._sleeping = False  # nobody may write the eventfd number once it is closed
        self._ring.close()
        if self._sq is not None:
            self._sq.close()
        os.close(self._efd)

    def _salvage(self) -> None:
        """close() after the ring thread died. Requests it submitted stay in the kernel (a
        thread's exit cancels only requests holding ring references); cancel them from this
        thread, collect their CQEs (bounded), and complete as cancelled every request that
        never reached the kernel.

        Raises:
            RuntimeError: FILE requests still in the kernel at the deadline; the ring and
                their buffers are kept (the kernel may still write into them).
        """
        self._stop_sent = True  # no wake-up poll re-arming from here on
        ring, sq = self._ring, self._sq
        rings = [ring] if sq is None else [ring, sq]
        finished: Finished = []
        for r in rings:
            for ud in r.withdraw_unsubmitted(UD_CANCEL):  # the kernel never saw these
                entry = self._ops.pop(ud, None)
                if entry is not None:
                    op, extra = entry
                    if extra.__class__ is Line:
                        extra.poll_ud = 0  # its line is cancelled below
                    else:
                        finished.append((op, CANCELLED, 0))
        targets = [*self._ops, UD_WAKE]
        while targets:  # these cancels belong to this thread: it may submit them
            r = self._sq_ring() if targets[-1] & S_BIT else ring
            try:
                r.prep_cancel(targets[-1], UD_CANCEL)
            except SubmissionQueueFull:
                r.submit()
                if r.sqpoll:
                    r.wakeup_sq(wait_for_space=True)
                continue
            targets.pop()
        for r in rings:
            r.submit()
        deadline = time.monotonic() + CLOSE_TIMEOUT
        while self._ops and time.monotonic() < deadline:
            reaped = False
            for r in rings:
                cqes = r.reap(REAP_BATCH)
                if cqes:
                    self._process(cqes, finished)
                    reaped = True
            if reaped:
                continue
            # Nobody forwards the SQPOLL ring's completions any more (the wake-up poll died
            # with the ring thread): wait on the ring that still has requests, briefly.
            waiter = sq if sq is not None and any(ud & S_BIT for ud in self._ops) else ring
            try:
                waiter.wait_cqes(1, 0.02)
            except NotImplementedError:  # no IORING_FEAT_EXT_ARG (< 5.11): poll slowly
                time.sleep(0.01)
        stuck = [op for op, extra in self._ops.values() if extra.__class__ is not Line]
        if stuck:
            raise RuntimeError(f"io_uring backend: {len(stuck)} requests stuck in the kernel")
        seen = {id(op) for op, _, _ in finished}
        rest = [op for line in self._lines.values() for op in line.ops]
        rest += [op for kind, op, _ in self._backlog if kind == B_FILE and op is not None]
        finished += [(op, CANCELLED, 0) for op in rest if id(op) not in seen]
        self._ops.clear()
        self._lines.clear()
        self._backlog.clear()
        self._deliver(finished)

    def _cancel_everything_locked(self) -> None:
        """close(): ask the kernel to cancel every request. The rest of a line is cancelled by
        ``_service`` when its head's poll comes back -ECANCELED (``_closing`` is set); FILE
        ops still in the backlog are cancelled when it is drained."""
        for ud in list(self._ops):
            self._cancel_locked(ud)
