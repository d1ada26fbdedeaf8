"""The plain ring's backlog: what issuers could not put into a full SQ ring.

Purpose: :class:`Backlog`. An issuer that finds the plain SQ ring full
(``SubmissionQueueFull``) cannot submit (it must not enter: its requests would die with it,
``uring``), so it appends the request to the backlog; once the backlog is non-empty
everything for the plain ring goes there, keeping FIFO order. The ring thread moves it into
the rings at the top of each round (:meth:`Backlog.drain_locked`), entering to make room if
needed - only the ring thread may enter the plain ring.

Entries are ``(kind, op, arg)``: ``B_FILE`` (a FILE op), ``B_POLL`` (a line head's readiness
poll, ``arg`` its line; or the wake-up poll, ``op`` None) and ``B_CANCEL`` (an ASYNC_CANCEL,
``arg`` its target user_data, for either ring).

Guarded by the backend's lock. Imports ``winaio._io`` (operations), ``abi``, ``ring``,
``sqpoll``, ``streams`` and ``common`` only.
"""

from __future__ import annotations

import select
import struct
import sys
from collections import deque
from typing import Any

from ..._io._ops import Operation
from ...codes import NtStatus
from .abi import RingBusyError, SubmissionQueueFull
from .common import (
    B_CANCEL,
    B_FILE,
    CANCELLED,
    UD_CANCEL,
    UD_WAKE,
    UNSUCCESSFUL,
    Finished,
    InFlight,
    report,
)
from .ring import BackendRing
from .sqpoll import S_BIT, SqPollRing
from .streams import Line, StreamLines

__all__ = ["Backlog", "prep_failed"]

_INVALID_PARAMETER = int(NtStatus.STATUS_INVALID_PARAMETER)
_POLLIN = select.POLLIN


def prep_failed(op: Operation) -> int:
    """The status for an op whose SQE could not be prepared (called in an ``except``)."""
    exc = sys.exception()
    if isinstance(exc, TypeError | ValueError | BufferError | OverflowError | struct.error):
        return _INVALID_PARAMETER  # buffers the kernel cannot use, an offset out of range...
    report(f"preparing the SQE of {op!r}")
    return UNSUCCESSFUL


class Backlog:
    """The plain ring's FIFO of what did not fit (module docstring)."""

    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[int, Operation | None, Any]] = deque()
        #: Entries ever backlogged (statistics).
        self.total = 0

    def __bool__(self) -> bool:
        return bool(self.entries)

    def add_locked(self, kind: int, op: Operation | None, arg: Any) -> None:
        """Append an entry; the ring thread takes it at the top of its next round."""
        self.entries.append((kind, op, arg))
        self.total += 1

    def file_ops(self) -> list[Operation]:
        """The FILE ops still waiting here (salvage)."""
        return [op for kind, op, _ in self.entries if kind == B_FILE and op is not None]

    def drain_locked(
        self,
        ring: BackendRing,
        sq: SqPollRing | None,
        table: InFlight,
        streams: StreamLines,
        wake_flags: int,
        efd: int,
        finished: Finished,
        lines: list[Line],
    ) -> tuple[bool, int, int]:
        """Move entries into the rings (ring thread, under the lock).

        FILE ops given up (cancelled, closing) or whose SQE cannot be prepared go to
        ``finished``; line heads given up go to ``lines`` (``StreamLines.service`` completes
        them cancelled). ``wake_flags``: the poll flags of the wake-up poll on ``efd``.

        Returns:
            ``(sq_full, enters, files_finished)``: ``sq_full`` when the SQPOLL ring is full
            (the ring thread waits for its poller to make room, ``wakeup_sq(True)``, then
            drains the rest); the io_uring_enter calls made to make room on the plain ring;
            the FILE ops completed here (they count as finished on the plain ring).
        """
        entries = self.entries
        flushed = False
        enters = files = 0
        while entries:
            kind, op, arg = entries[0]
            try:
                if kind == B_FILE:
                    assert op is not None
                    if streams.given_up(op):
                        finished.append((op, CANCELLED, 0))
                        files += 1
                    else:
                        ud = table.next_ud
                        try:
                            keep = op.prep(ring, ud)
                        except SubmissionQueueFull:
                            raise
                        except Exception:
                            finished.append((op, prep_failed(op), 0))
                            files += 1
                        else:
                            table.next_ud = ud + 1
                            table[ud] = (op, keep)
                            op.token = ud
                elif kind == B_CANCEL:
                    if arg & S_BIT:
                        assert sq is not None, "a SQPOLL user_data without a SQPOLL ring"
                        if not sq.cancel_locked(arg):
                            return True, enters, files
                    else:
                        ring.prep_cancel(arg, UD_CANCEL)
                elif op is None:  # the wake-up poll
                    ring.prep_poll_add(efd, _POLLIN, UD_WAKE, 0, wake_flags)
                else:
                    line: Line = arg
                    if streams.given_up(op):
                        lines.append(line)  # service() completes the head as cancelled
                    else:
                        ud = table.next_ud
                        ring.prep_poll_add(line.fd, op.poll_events, ud)
                        table.next_ud = ud + 1
                        table[ud] = (op, line)
                        line.poll_ud = ud
            except SubmissionQueueFull:
                if flushed:
                    return False, enters, files
                flushed = True
                try:  # the ring thread may enter (and only it): make room, then go on
                    enters += 1
                    ring.enter(ring.publish(), 0)
                except RingBusyError:
                    return False, enters, files
                continue
            entries.popleft()
        return False, enters, files
