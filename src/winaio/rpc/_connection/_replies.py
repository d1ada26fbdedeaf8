"""The replies of a server connection: its dispatched calls and the order their PDUs leave in.

Rules (spec B5, B6; rpc #62, #71, #73, #74):
- Without PFC_CONC_MPX replies leave in request order: each dispatched call, and each request
  the connection refused by itself, holds a ``Slot`` in ``order``; a reply is queued for the
  transport only when every earlier slot is filled, so the fragments of different calls never
  interleave. With PFC_CONC_MPX replies leave as they are made, each PDU whole.
- A response is fragmented to the client's max_recv_frag with alloc_hint = remaining stub; a
  streamed response (asynchronous [out] pipes) is sent in parts first (``part``: PFC_FIRST_FRAG
  on its first fragment, never PFC_LAST_FRAG, alloc_hint 0), held in its slot until its turn.
- A call answered after its orphaned PDU produces nothing. Every PDU is little-endian (drep
  ``10 00 00 00``) whatever the request's drep [C706 §14.1].
- ``response``/``fault`` return the bytes to write now, which include anything queued earlier:
  writing every returned ``bytes`` in order is always correct.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from ...codes import RpcStatus
from ...errors import LocalProtocolError
from .._pdu import fault_pdu, response_fragments
from ._calls import Call, Slot
from ._contexts import fault_status

__all__ = ["Replies"]

_NO_CALL: Final = int(RpcStatus.RPC_S_NO_CALL_ACTIVE)


class Replies:
    """The dispatched calls of one server connection and their reply order (module docstring).

    ``out`` is the connection's output queue (shared), ``drain`` its ``data_to_send``;
    ``conc_mpx``, ``xmit`` (the client's max_recv_frag) and ``minor`` are set by the bind.
    """

    __slots__ = ("calls", "conc_mpx", "drain", "minor", "order", "out", "xmit")

    def __init__(self, out: list[bytes], drain: Callable[[], bytes], xmit: int) -> None:
        self.out = out
        self.drain = drain
        self.calls: dict[int, Call] = {}
        self.order: deque[Slot] = deque()
        self.conc_mpx = False
        self.xmit = xmit
        self.minor = 0

    def add(self, call_id: int, p_cont_id: int, cancel_count: int) -> Call:
        """A dispatched call: its place in the reply order."""
        call = Call(call_id, p_cont_id, cancel_count)
        if not self.conc_mpx:
            self.order.append(call)
        self.calls[call_id] = call
        return call

    def refused(self, data: bytes) -> None:
        """A fault the connection answered by itself (never dispatched), in request order."""
        if self.conc_mpx:
            self.out.append(data)
        else:
            self.order.append(Slot(data))
            self.flush()

    def get(self, call_id: int) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise LocalProtocolError(
                f"no dispatched call with call_id {call_id} (already answered?)", status=_NO_CALL
            )
        return call

    def orphaned(self, call: Call) -> None:
        """The client orphaned a dispatched call: its reply will be nothing."""
        call.orphaned = True
        if not self.conc_mpx:
            call.data = b""
            self.flush()

    def part(self, call_id: int, stub: bytes) -> bytes:
        """Part of a call's response (module docstring); the bytes to write now."""
        call = self.get(call_id)
        if call.orphaned or not stub:
            return self.drain()
        data = response_fragments(
            call_id, call.p_cont_id, stub, self.xmit, cancel_count=min(call.cancel_count, 255),
            rpc_vers_minor=self.minor, first=not call.streamed, last=False,
        )  # fmt: skip
        call.streamed = True
        if self.conc_mpx or self.order[0] is call:
            self.out.append(data)
        elif call.held is None:
            call.held = [data]
        else:
            call.held.append(data)
        return self.drain()

    def response(self, call_id: int, stub: bytes) -> bytes:
        """The (rest of the) call's response; it ends the call."""
        call = self._take(call_id)
        if call.orphaned:
            return self.drain()
        data = response_fragments(
            call_id, call.p_cont_id, stub, self.xmit,
            cancel_count=min(call.cancel_count, 255), rpc_vers_minor=self.minor,
            first=not call.streamed,
        )  # fmt: skip
        return self._complete(call, data)

    def fault(self, call_id: int, status: int, did_not_execute: bool) -> bytes:
        """A 32-byte fault ending the call (rpc #18, #60, #61); see ``fault_status``."""
        call = self._take(call_id)
        if call.orphaned:
            return self.drain()
        data = fault_pdu(
            call_id, call.p_cont_id, fault_status(status),
            cancel_count=min(call.cancel_count, 255), did_not_execute=did_not_execute,
            rpc_vers_minor=self.minor,
        )  # fmt: skip
        return self._complete(call, data)

    def _take(self, call_id: int) -> Call:
        call = self.calls.pop(call_id, None)
        if call is None:
            raise LocalProtocolError(
                f"no dispatched call with call_id {call_id} (already answered?)", status=_NO_CALL
            )
        return call

    def _complete(self, call: Call, data: bytes) -> bytes:
        out = self.out
        if self.conc_mpx:
            if not out:
                return data  # the common case: nothing else queued
            out.append(data)
            return self.drain()
        if call.held:
            data = b"".join([*call.held, data])  # streamed parts still waiting for their turn
            call.held = None
        order = self.order
        if order[0] is call:
            order.popleft()
            if not out and not (order and (order[0].data is not None or order[0].held)):
                return data  # the common case: answered in order, nothing else queued
            out.append(data)
        else:
            call.data = data  # waits for the calls before it
        self.flush()
        return self.drain()

    def flush(self) -> None:
        """Queue every reply whose turn has come (and the parts of the call now first)."""
        order = self.order
        while order and order[0].data is not None:
            data = order.popleft().data
            if data:
                self.out.append(data)
        if order and order[0].held:
            head = order[0]
            assert isinstance(head, Call)
            self.out += head.held or ()
            head.held = None
