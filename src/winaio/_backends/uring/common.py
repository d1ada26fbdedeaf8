"""The vocabulary the io_uring backend's modules share: statuses, reserved user_data, the
table of requests in flight, and :func:`report`.

Rules: data and tiny helpers only; imports ``winaio._io`` (operations) and ``codes`` only.
"""

from __future__ import annotations

import errno
import sys
import threading

from ..._io._ops import Operation
from ..._io._slot import GEN_MASK, SLOT_TAG, ReceiveSlot
from ...codes import NtStatus

__all__ = [
    "B_CANCEL",
    "B_FILE",
    "B_POLL",
    "CANCELLED",
    "ECANCELED",
    "FIRST_UD",
    "REAP_BATCH",
    "RETRY",
    "SLOT_TAG",
    "UD_CANCEL",
    "UD_POKE",
    "UNSUCCESSFUL",
    "Finished",
    "InFlight",
    "report",
    "slot_gen",
    "slot_index",
    "slot_ud",
]

CANCELLED = int(NtStatus.STATUS_CANCELLED)
UNSUCCESSFUL = int(NtStatus.STATUS_UNSUCCESSFUL)
ECANCELED = -errno.ECANCELED
#: A poll result meaning "no poll happened: just retry the head".
RETRY = 0
# Backlog entries: (kind, op, line-or-user_data).
B_FILE, B_POLL, B_CANCEL = 0, 1, 2
# Reserved user_data values; requests count up from FIRST_UD and are never reused.
UD_CANCEL = 2  # every ASYNC_CANCEL (its own result is not needed)
UD_POKE = 3  # the POLL_ADD on the leaders' poke eventfd (``lead``)
FIRST_UD = 16
# A ReceiveSlot incarnation's user_data: ``SLOT_TAG | gen << 32 | index`` (``slot_ud``;
# ``SLOT_TAG`` = 1 << 63, ``_io._slot``). Requests count up from FIRST_UD and never reach
# it: ``ud >= SLOT_TAG`` is the test.
#: CQEs reaped from a ring at once.
REAP_BATCH = 1024

Finished = list[tuple[Operation, int, int] | ReceiveSlot]
"""Completions collected in one round: (op, status, information), or a REAPED receive slot
(``_io._slot``: its byte count in ``res``; only ``Reaper.process`` puts one there)."""


def slot_ud(gen: int, index: int) -> int:
    """The user_data of a ReceiveSlot's incarnation ``gen`` at ``index`` (31 + 32 bits: the
    generation makes an ASYNC_CANCEL or a CQE name one incarnation, never the next)."""
    return SLOT_TAG | (gen & GEN_MASK) << 32 | index


def slot_index(ud: int) -> int:
    return ud & 0xFFFFFFFF


def slot_gen(ud: int) -> int:
    return (ud >> 32) & GEN_MASK


class InFlight(dict[int, tuple[Operation, object]]):
    """Every request in the kernel, by user_data: ``(op, extra)``. ``extra`` is the FILE op's
    keepalive (its pinned buffers) or the STREAM op's line. Entries stay until the request's
    own CQE (backend invariant 2, liburing #733). ``next_ud`` hands out user_data (never
    reused). Inserts under the backend's lock; the reaper pops entries."""

    __slots__ = ("next_ud",)

    def __init__(self) -> None:
        super().__init__()
        self.next_ud = FIRST_UD


def report(what: str, exc: BaseException | None = None) -> None:
    """Report ``exc`` (default: the exception being handled) without letting it out of the
    calling thread.

    A bug in an operation or in the delivery path must not kill the ring thread (every other
    request would hang): it is reported the way an uncaught thread exception is.
    """
    if exc is None:
        exc = sys.exception()
    if exc is None:
        return
    exc.add_note(f"winaio io_uring backend: {what}")
    args = (type(exc), exc, exc.__traceback__, threading.current_thread())
    threading.excepthook(threading.ExceptHookArgs(args))
