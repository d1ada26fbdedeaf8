"""Per-call records of a ServerConnection (mutable, private to the server state machine).

- ``Slot``: a place in the reply order of a connection without PFC_CONC_MPX. Replies are
  written only when every earlier slot is filled, so they leave in request order (rpc #74);
  ``data`` None = not answered yet, ``b""`` = nothing to send (orphaned call).
- ``Call``: a dispatched call awaiting ``send_response``/``send_fault``: its p_cont_id (echoed
  in the reply), the co_cancel count (echoed as cancel_count), the orphaned flag.
- ``Reassembly``: the request being received in fragments; at most one per connection since a
  client sends all fragments of a request before the next one [MS-RPCE §3.3.1.5.8]. A streamed
  request (dispatched at its first fragment) keeps one too, to route its later fragments.
"""

from __future__ import annotations

from typing import Generic, TypeVar
from uuid import UUID

from ._events import AcceptedContext

__all__ = ["Call", "Reassembly", "Slot"]

IfT = TypeVar("IfT")


class Slot:
    """A place in the reply order of a connection without CONC_MPX; ``data`` None = not ready."""

    __slots__ = ("data",)
    #: Streamed response parts waiting for this slot to reach the head (Call only).
    held: list[bytes] | None = None

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data


class Call(Slot):
    """A dispatched call awaiting send_response/send_fault. ``streamed``: response parts
    were sent (or held) already, so the rest carries no PFC_FIRST_FRAG."""

    __slots__ = ("call_id", "cancel_count", "held", "orphaned", "p_cont_id", "streamed")

    def __init__(self, call_id: int, p_cont_id: int, cancel_count: int) -> None:
        self.data = None  # Slot's field, set here: one frame less per call
        self.call_id = call_id
        self.p_cont_id = p_cont_id
        self.cancel_count = cancel_count
        self.orphaned = False
        self.streamed = False
        self.held = None


class Reassembly(Generic[IfT]):
    """The request being received in fragments (at most one per connection)."""

    __slots__ = (
        "call_id", "cancel_count", "chunks", "context", "drep", "flags", "object", "opnum", "size",
        "streaming",
    )  # fmt: skip

    def __init__(
        self,
        call_id: int,
        context: AcceptedContext[IfT],
        opnum: int,
        obj: UUID | None,
        drep: bytes,
        flags: int,
        first: bytes,
        cancel_count: int,
    ) -> None:
        self.call_id = call_id
        self.flags = flags
        self.context = context
        self.opnum = opnum
        self.object = obj
        self.drep = drep
        self.chunks = [first]
        self.size = len(first)
        self.cancel_count = cancel_count
        #: Dispatched at its first fragment: the others leave as RequestFragment events.
        self.streaming = False
