"""Closing after the ring thread died (backend invariant 4: close drains).

Purpose: :func:`salvage`, for ``IoUringBackend.close()`` when its ring thread died.

The normal close: ``close()`` refuses new submissions and wakes the ring thread, which cancels
every request in the kernel (ASYNC_CANCEL by user_data; the rest of each line follows its
head), takes the CQ ring over from any leader and reaps until every submitted op has been
completed, then exits. ``close()`` joins it (bounded, :data:`CLOSE_TIMEOUT`), closes the
leadership (no thread waits on the ring any more) and then the ring. If the drain times out,
the ring and the buffers are left alone (the kernel may still write into them) and
``close()`` raises.

Should the ring thread ever die (a bug; it is reported), the backend refuses new requests and
the closing thread drains: :func:`salvage` cancels every request in the kernel (submitted by
the closing thread: cancels need no long-lived owner) and completes as cancelled every request
that never reached it (the backlog, the lines behind their heads); then the closing thread
reaps until the table is empty.

Imports ``winaio._io``, ``ring``, ``streams``, ``backlog`` and ``common``.
"""

from __future__ import annotations

from collections.abc import Callable

from .abi import SubmissionQueueFull
from .backlog import Backlog
from .common import CANCELLED, UD_CANCEL, Finished, InFlight
from .ring import BackendRing
from .streams import StreamLines

__all__ = ["CLOSE_TIMEOUT", "salvage"]

#: Seconds ``close()`` waits for the ring thread to drain (and a salvage for the kernel).
CLOSE_TIMEOUT = 30.0


def salvage(
    ring: BackendRing,
    table: InFlight,
    streams: StreamLines,
    backlog: Backlog,
    submit_locked: Callable[[], bool],
) -> Finished:
    """Cancel every request in the kernel and return the completions of those that never
    reached it (under the backend's lock; the caller then reaps the table empty)."""
    backlog.stuck = False
    for ud in list(table):
        try:
            ring.prep_cancel(ud, UD_CANCEL)
        except SubmissionQueueFull:
            submit_locked()
            ring.prep_cancel(ud, UD_CANCEL)
    submit_locked()
    rest = backlog.file_ops()
    for line in list(streams.lines.values()):
        # A head whose poll is in the kernel: service() cancels its line at the poll's CQE.
        if not line.poll_ud or line.poll_ud not in table:
            rest += line.ops
            line.ops.clear()
            del streams.lines[line.key]
    backlog.entries.clear()
    return [(op, CANCELLED, 0) for op in rest]
