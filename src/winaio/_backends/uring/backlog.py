"""The backlog: what the ring thread must submit because its issuer could not.

Purpose: :class:`Backlog`. Issuers submit their own requests (``uring``); the ring thread
submits, as a long-lived owner, what could not go in at once or must outlive its submitter:

- requests that found the SQ ring full (``SubmissionQueueFull``) - from then on everything
  goes here, keeping FIFO order, until the ring thread has drained it;
- SQEs the kernel refused to take (io_uring_enter failed with EBUSY: a CQ backlog) - the
  backlog is then ``stuck`` and the ring thread submits them and what follows;
- requests migrated at their submitting thread's exit (their cancel won: submitted again).

Entries are ``(kind, op, arg)``: ``B_FILE`` (a FILE op), ``B_POLL`` (a line head's readiness
poll, ``arg`` its line) and ``B_CANCEL`` (an ASYNC_CANCEL, ``arg`` its target user_data).

Guarded by the backend's lock. Imports ``winaio._io`` (operations), ``abi``, ``ring``,
``streams`` and ``common`` only.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from ..._io._ops import Operation
from ...codes import NtStatus
from .abi import SubmissionQueueFull
from .common import B_CANCEL, B_FILE, CANCELLED, UD_CANCEL, UNSUCCESSFUL, Finished, InFlight, report
from .ring import BackendRing
from .streams import Line, StreamLines

__all__ = ["NO_RESOURCES", "Backlog", "failed_status", "prep_failed"]

_INVALID_PARAMETER = int(NtStatus.STATUS_INVALID_PARAMETER)
#: A request the backend could not take for want of memory: a MemoryError once its issuer
#: registered it fails it (``Submission.take_back_locked``) as the I/O manager fails a request
#: whose IRP it cannot allocate (ERROR_NO_SYSTEM_RESOURCES; ReactOS iofunc.c: IoAllocateIrp
#: failing -> IopCleanupFailedIrp -> STATUS_INSUFFICIENT_RESOURCES).
NO_RESOURCES = int(NtStatus.STATUS_INSUFFICIENT_RESOURCES)


def prep_failed(op: Operation) -> int:
    """The status for an op whose SQE could not be prepared (called in an ``except``)."""
    exc = sys.exception()
    if isinstance(exc, TypeError | ValueError | BufferError | OverflowError | struct.error):
        return _INVALID_PARAMETER  # buffers the kernel cannot use, an offset out of range...
    if isinstance(exc, MemoryError):
        return NO_RESOURCES
    report(f"preparing the SQE of {op!r}")
    return UNSUCCESSFUL


def failed_status(op: Operation, exc: BaseException) -> int:
    """The status for a registered request the backend could not take (``submit``): its
    issuer sees ERROR_NO_SYSTEM_RESOURCES for a MemoryError (also as ctypes reports one while
    it converts a syscall's arguments: an ``ArgumentError`` naming it); anything else is a
    bug (reported here, with its traceback) and fails the request with STATUS_UNSUCCESSFUL."""
    if isinstance(exc, MemoryError) or (
        isinstance(exc, ctypes.ArgumentError) and "MemoryError" in str(exc)
    ):
        return NO_RESOURCES
    report(f"submitting {op!r}", exc)
    return UNSUCCESSFUL


class Backlog:
    """What the ring thread must submit (module docstring)."""

    __slots__ = ("entries", "stuck", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[int, Operation | None, Any]] = deque()
        #: The kernel refused SQEs (EBUSY): they wait in the SQ ring for the ring thread.
        self.stuck = False
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
        table: InFlight,
        streams: StreamLines,
        submit_locked: Callable[[], bool],
        finished: Finished,
        lines: list[Line],
    ) -> None:
        """Move entries into the ring and submit them (ring thread, under the lock).

        FILE ops given up (cancelled, closing) or whose SQE cannot be prepared go to
        ``finished``; line heads given up go to ``lines`` (``StreamLines.service`` completes
        them cancelled). Stops when the ring is full or the kernel refuses more (EBUSY): the
        rest waits for the next round.
        """
        self.stuck = False
        submit_locked()  # SQEs the kernel refused before, if any
        entries = self.entries
        while entries and not self.stuck:
            kind, op, arg = entries[0]
            try:
                if kind == B_FILE:
                    assert op is not None
                    if streams.given_up(op):
                        finished.append((op, CANCELLED, 0))
                    else:
                        ud = table.next_ud
                        try:
                            keep = op.prep(ring, ud)
                        except SubmissionQueueFull:
                            raise
                        except Exception:
                            finished.append((op, prep_failed(op), 0))
                        else:
                            _enter_locked(ring, table, ud, op, keep)
                            op.token = ud
                elif kind == B_CANCEL:
                    ring.prep_cancel(arg, UD_CANCEL)
                else:
                    assert op is not None
                    line: Line = arg
                    if streams.given_up(op):
                        lines.append(line)  # service() completes the head as cancelled
                    else:
                        ud = table.next_ud
                        ring.prep_poll_add(line.fd, op.poll_events, ud)
                        _enter_locked(ring, table, ud, op, line)
                        line.poll_ud = ud
            except SubmissionQueueFull:
                submit_locked()
                continue
            entries.popleft()
        if not self.stuck:
            submit_locked()


def _enter_locked(
    ring: BackendRing, table: InFlight, ud: int, op: Operation, extra: object
) -> None:
    """The entry of the SQE just prepared as ``ud`` (``drain_locked``). A MemoryError (the
    ring thread runs its round again: ``ringthread``) takes the SQE back first (a NOP): no
    SQE in the kernel without its entry, which would drop what keeps its memory alive, and
    the backlog entry, still first, is prepared again."""
    try:
        table.next_ud = ud + 1
        table[ud] = (op, extra)
    except MemoryError:
        ring.withdraw(ud, UD_CANCEL)
        table.pop(ud, None)
        raise
