"""Salvaging the requests of a dead ring thread (backend invariant 4: close drains).

Purpose: :func:`salvage`, for ``IoUringBackend.close()`` when its ring thread died.

The normal close: ``close()`` refuses new submissions and wakes the ring thread, which cancels
every in-flight user_data (each ASYNC_CANCEL goes into the ring that holds its target; the
rest of each line follows its head), keeps reaping until every submitted op has been
completed, then cancels its wake-up poll, reaps its last CQE and exits. ``close()`` joins it
(bounded, :data:`CLOSE_TIMEOUT`), then closes the plain ring, the SQPOLL ring if there is one,
and the eventfd. If the drain times out, the rings and the buffers are left alone (the kernel
may still write into them) and ``close()`` raises.

Should the ring thread ever die (a bug; it is reported), the backend refuses new requests and
``close()`` salvages: SQEs the kernel will never see on its own are taken back from the SQ
rings (on the plain ring every one it has not consumed; on the SQPOLL ring only the
unpublished ones, because the poller consumes published SQEs by itself) and their requests
completed cancelled; the rest are cancelled with ASYNC_CANCEL from the closing thread and
their CQEs reaped, boundedly.

Imports ``winaio._io``, ``abi``, ``ring``, ``sqpoll``, ``streams``, ``backlog`` and ``common``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .abi import Cqe, SubmissionQueueFull
from .backlog import Backlog
from .common import CANCELLED, REAP_BATCH, UD_CANCEL, UD_WAKE, Finished, InFlight
from .ring import BackendRing
from .sqpoll import S_BIT
from .streams import Line, StreamLines

__all__ = ["CLOSE_TIMEOUT", "salvage"]

#: Seconds ``close()`` waits for the ring thread to drain (and a salvage for the kernel).
CLOSE_TIMEOUT = 30.0


def salvage(
    ring: BackendRing,
    sq: BackendRing | None,
    table: InFlight,
    streams: StreamLines,
    backlog: Backlog,
    process: Callable[[list[Cqe], Finished], int],
) -> Finished:
    """Take every request of a backend whose ring thread died out of the kernel; return the
    completions to deliver. Requests the dead thread submitted stay in the kernel (a thread's
    exit cancels only requests holding ring references): cancel them from this thread,
    collect their CQEs with ``process`` (bounded), and complete as cancelled every request
    that never reached the kernel.

    Raises:
        RuntimeError: FILE requests still in the kernel at the deadline; the ring and their
            buffers are kept (the kernel may still write into them).
    """
    rings = [ring] if sq is None else [ring, sq]
    finished: Finished = []
    for r in rings:
        for ud in r.withdraw_unsubmitted(UD_CANCEL):  # the kernel never saw these
            entry = table.pop(ud, None)
            if entry is not None:
                op, extra = entry
                if extra.__class__ is Line:
                    extra.poll_ud = 0  # its line: cancelled below
                else:
                    finished.append((op, CANCELLED, 0))
    targets = [*table, UD_WAKE]
    while targets:  # these cancels belong to this thread: it may submit them
        r = ring
        if targets[-1] & S_BIT:
            assert sq is not None, "a SQPOLL user_data without a SQPOLL ring"
            r = sq
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
    while table and time.monotonic() < deadline:
        reaped = False
        for r in rings:
            cqes = r.reap(REAP_BATCH)
            if cqes:
                process(cqes, finished)
                reaped = True
        if reaped:
            continue
        # Nobody forwards the SQPOLL ring's completions any more (the wake-up poll died
        # with the ring thread): wait on the ring that still has requests, briefly.
        waiter = sq if sq is not None and any(ud & S_BIT for ud in table) else ring
        try:
            waiter.wait_cqes(1, 0.02)
        except NotImplementedError:  # no IORING_FEAT_EXT_ARG (< 5.11): poll slowly
            time.sleep(0.01)
    stuck = [op for op, extra in table.values() if extra.__class__ is not Line]
    if stuck:
        raise RuntimeError(f"io_uring backend: {len(stuck)} requests stuck in the kernel")
    seen = {id(op) for op, _, _ in finished}
    rest = streams.pending() + backlog.file_ops()
    finished += [(op, CANCELLED, 0) for op in rest if id(op) not in seen]
    table.clear()
    streams.lines.clear()
    backlog.entries.clear()
    return finished
