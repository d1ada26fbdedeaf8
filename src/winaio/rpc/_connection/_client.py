"""ClientConnection: the sans-I/O state machine of one client-side DCE/RPC CO connection.

How the runtime drives it::

    conn = ClientConnection()
    transport.write(conn.bind([ContextElement(0, iface, (NDR20_SYNTAX,))]))
    ... feed bytes with conn.receive_data(); conn.next_event() -> BindAccepted
    call_id, data = conn.request(p_cont_id=0, opnum=3, stub=stub); transport.write(data)
    ... conn.next_event() -> ResponseReceived(call_id, stub) | FaultReceived(call_id, ...)

Rules (spec A6, B4-B7 and the sources cited inline):
- State: UNBOUND -> (bind) BINDING -> (bind_ack) BOUND; bind_nak or a fault for the bind goes
  back to UNBOUND. One bind/alter_context may be outstanding at a time; requests wait for it.
- call_ids come from one increasing counter shared by bind, alter_context and requests
  (Samba's behaviour; ``first_call_id`` lets a runtime continue a counter across connections,
  as rpcclient does) [MS-RPCE §3.3.3.5.2].
- Requests are fragmented to the server's max_recv_frag from the bind_ack (never more than
  our own max_xmit_frag) and returned whole. Without PFC_CONC_MPX a request may only be sent
  when no call is outstanding [MS-RPCE §3.3.1.5.8]; with it, any number may be.
- Responses are routed by call_id, reassembled per call (fragments of different calls may
  interleave under CONC_MPX), and alloc_hint above 2**31-1 is refused [MS-RPCE §3.3.2.5.2].
  Faults end the call; their status is mapped with ``codes.nca_to_rpc_status``, and statuses a
  server must never send become RPC_S_PROTOCOL_ERROR [MS-RPCE §3.3.2.5.1]. Fault stub data is
  ignored [MS-RPCE §2.2.2.8].
- ``cancel(call_id)`` sends a co_cancel and keeps waiting (nonabortive); ``orphan(call_id)``
  sends an orphaned PDU and forgets the call: later response/fault PDUs for it are discarded
  (rpc #17). Unless the server acknowledged KeepConnectionOnOrphan, the connection must then be
  closed [MS-RPCE §3.3.1.5.10]: ``must_close`` becomes True and new calls are refused.
- A shutdown PDU yields ShutdownRequested; the runtime closes the connection once ``idle``
  (rpc #99) [MS-RPCE §3.3.3.4.2].
- Unexpected PDUs (a response for a call that is not outstanding, a bind_ack without a bind,
  server-bound PTYPEs, callbacks) raise RemoteProtocolError; API misuse raises
  LocalProtocolError.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final
from uuid import UUID

from ...codes import RpcStatus, nca_to_rpc_status
from ...errors import LocalProtocolError, RemoteProtocolError
from .._pdu import (
    MAX_FRAG_SIZE,
    MUST_RECV_FRAG_SIZE,
    AlterContext,
    AlterContextResp,
    Bind,
    BindAck,
    BindNak,
    BindTimeFeatures,
    CoCancel,
    ContDefResult,
    ContextElement,
    ContextResult,
    Header,
    Orphaned,
    PfcFlags,
    PType,
    SyntaxId,
    bind_time_feature_syntax,
    build_pdu,
    check_version,
    fault_fields,
    parse_pdu_at,
    request_fragments,
)
from .._pdu import response_fields as _response_fields
from ._base import FORBIDDEN_FAULT_STATUSES, ConnectionBase
from ._events import (
    AlterContextAccepted,
    BindAccepted,
    BindRejected,
    ClientEvent,
    ConnectionClosed,
    FaultReceived,
    NeedData,
    ResponseReceived,
    ShutdownRequested,
)

__all__ = ["ClientConnection"]

_FIRST: Final = int(PfcFlags.PFC_FIRST_FRAG)
_LAST: Final = int(PfcFlags.PFC_LAST_FRAG)
_CONC_MPX: Final = int(PfcFlags.PFC_CONC_MPX)
_DID_NOT_EXECUTE: Final = int(PfcFlags.PFC_DID_NOT_EXECUTE)
_RESPONSE: Final = int(PType.RESPONSE)
_FAULT: Final = int(PType.FAULT)
_KEEP_ON_ORPHAN: Final = int(BindTimeFeatures.KEEP_CONNECTION_ON_ORPHAN_SUPPORTED)
_MAX_ALLOC_HINT: Final = 0x7FFFFFFF
_ORPHAN_MEMORY: Final = 256
_FIRST_LAST: Final = _FIRST | _LAST
_DREP_LE: Final = 0x00000010  # packed_drep 10 00 00 00 as a little-endian u32
# vers minor ptype flags drep frag_length auth_length call_id alloc_hint p_cont_id cancel_count
_FAST_RESPONSE: Final = struct.Struct("<BBBBIHHIIHBx")
_CLIENT_BOUND_PTYPES: Final = frozenset(
    int(p)
    for p in (
        PType.RESPONSE,
        PType.FAULT,
        PType.BIND_ACK,
        PType.BIND_NAK,
        PType.ALTER_CONTEXT_RESP,
        PType.SHUTDOWN,
    )
)


class _PendingBind:
    __slots__ = ("btfn_p_cont_id", "call_id", "conc_mpx", "contexts", "is_alter")

    def __init__(
        self,
        call_id: int,
        contexts: tuple[ContextElement, ...],
        is_alter: bool,
        btfn_p_cont_id: int | None,
        conc_mpx: bool,
    ) -> None:
        self.call_id = call_id
        self.contexts = contexts
        self.is_alter = is_alter
        self.btfn_p_cont_id = btfn_p_cont_id
        self.conc_mpx = conc_mpx


class ClientConnection(ConnectionBase):
    """Client role of one DCE/RPC connection-oriented connection.

    Args:
        max_xmit_frag: largest fragment we send (proposed in bind).
        max_recv_frag: largest fragment we accept (proposed in bind).
        first_call_id: call_id of the first bind.
    """

    def __init__(
        self,
        *,
        max_xmit_frag: int = MAX_FRAG_SIZE,
        max_recv_frag: int = MAX_FRAG_SIZE,
        first_call_id: int = 1,
    ) -> None:
        super().__init__()
        for name, value in (("max_xmit_frag", max_xmit_frag), ("max_recv_frag", max_recv_frag)):
            if not MUST_RECV_FRAG_SIZE <= value <= 0xFFFF:
                raise ValueError(f"{name} must be in [1432, 65535], not {value}")
        if not 0 <= first_call_id <= 0xFFFFFFFF:
            raise ValueError(f"first_call_id {first_call_id} does not fit in 32 bits")
        self._max_xmit_frag = max_xmit_frag
        self._max_recv_frag = max_recv_frag
        self._next_call_id = first_call_id
        self._pending: _PendingBind | None = None
        self._xmit = max_xmit_frag
        self._contexts: dict[int, SyntaxId] = {}
        self._calls: dict[int, list[bytes] | None] = {}
        # Orphaned call_ids whose late response/fault may still arrive, oldest first. A server
        # sends nothing after the orphaned PDU, so only replies already in flight come: keeping
        # the last _ORPHAN_MEMORY ids bounds the memory of a long KeepConnectionOnOrphan link.
        self._orphaned: dict[int, None] = {}
        self._must_close = False
        self._shutdown = False

    # -- properties ----------------------------------------------------------------------------

    @property
    def accepted_contexts(self) -> dict[int, SyntaxId]:
        """Usable p_cont_ids and their transfer syntaxes."""
        return dict(self._contexts)

    @property
    def outstanding_call_ids(self) -> tuple[int, ...]:
        return tuple(self._calls)

    @property
    def idle(self) -> bool:
        """No call and no bind/alter_context is waiting for an answer."""
        return not self._calls and self._pending is None

    @property
    def shutdown_requested(self) -> bool:
        return self._shutdown

    @property
    def must_close(self) -> bool:
        """An orphaned PDU was sent without KeepConnectionOnOrphan [MS-RPCE §3.3.1.5.10]."""
        return self._must_close

    # -- sending -------------------------------------------------------------------------------

    def _new_call_id(self) -> int:
        call_id = self._next_call_id
        if call_id > 0xFFFFFFFF:
            raise LocalProtocolError("call_id space exhausted: open a new connection")
        self._next_call_id = call_id + 1
        return call_id

    def _check_usable(self) -> None:
        if self._closed is not None or self._error is not None:
            raise LocalProtocolError("the connection is closed")
        if self._must_close:
            raise LocalProtocolError("an orphaned PDU was sent: close this connection")
        if self._pending is not None:
            raise LocalProtocolError("a bind/alter_context is still waiting for its answer")

    def bind(
        self,
        contexts: Sequence[ContextElement],
        *,
        assoc_group_id: int = 0,
        conc_mpx: bool = False,
        bind_time_features: int | None = None,
    ) -> bytes:
        """The bind PDU proposing ``contexts``; join association ``assoc_group_id`` if nonzero.

        ``bind_time_features`` adds a bind time feature negotiation element after the others
        (same abstract syntax as the last one) [MS-RPCE §3.3.1.5.3].
        """
        self._check_usable()
        if self._bound:
            raise LocalProtocolError("already bound: use alter_context() to add contexts")
        elements, btfn = self._elements(contexts, bind_time_features)
        call_id = self._new_call_id()
        pdu = Bind(
            call_id=call_id,
            max_xmit_frag=self._max_xmit_frag,
            max_recv_frag=self._max_recv_frag,
            assoc_group_id=assoc_group_id,
            contexts=elements,
            pfc_flags=_FIRST | _LAST | (_CONC_MPX if conc_mpx else 0),
        )
        data = build_pdu(pdu)
        self._pending = _PendingBind(call_id, elements, False, btfn, conc_mpx)
        return data

    def alter_context(self, contexts: Sequence[ContextElement]) -> bytes:
        """The alter_context PDU adding ``contexts`` to the bound connection (rpc #54)."""
        self._check_usable()
        if not self._bound:
            raise LocalProtocolError("alter_context() before bind()")
        if self._calls and not self._conc_mpx:
            raise LocalProtocolError("a call is outstanding on an exclusive connection")
        elements, _ = self._elements(contexts, None)
        call_id = self._new_call_id()
        pdu = AlterContext(
            call_id=call_id,
            max_xmit_frag=self._max_xmit_frag,
            max_recv_frag=self._max_recv_frag,
            assoc_group_id=self._assoc_group_id,
            contexts=elements,
        )
        data = build_pdu(pdu)
        self._pending = _PendingBind(call_id, elements, True, None, False)
        return data

    @staticmethod
    def _elements(
        contexts: Sequence[ContextElement], features: int | None
    ) -> tuple[tuple[ContextElement, ...], int | None]:
        elements = tuple(contexts)
        if not elements or len(elements) > 255:
            raise LocalProtocolError("a bind proposes 1 to 255 presentation contexts")
        ids = [el.p_cont_id for el in elements]
        if len(set(ids)) != len(ids):
            raise LocalProtocolError("p_cont_ids of one bind must be distinct")
        if features is None:
            return elements, None
        btfn_id = max(ids) + 1
        btfn = ContextElement(
            btfn_id, elements[-1].abstract_syntax, (bind_time_feature_syntax(features),)
        )
        return (*elements, btfn), btfn_id

    def request(
        self, p_cont_id: int, opnum: int, stub: bytes, *, object: UUID | None = None
    ) -> tuple[int, bytes]:
        """Start a call: returns (call_id, all its request fragments). ``object`` sets
        PFC_OBJECT_UUID and the 40-byte header (rpc #63)."""
        self._check_usable()
        if not self._bound:
            raise LocalProtocolError("request() before bind()")
        if p_cont_id not in self._contexts:
            raise LocalProtocolError(f"p_cont_id {p_cont_id} was not accepted by the server")
        if self._calls and not self._conc_mpx:
            raise LocalProtocolError("a call is outstanding on an exclusive (non CONC_MPX) link")
        call_id = self._new_call_id()
        data = request_fragments(call_id, p_cont_id, opnum, stub, self._xmit, object=object)
        self._calls[call_id] = None
        return call_id, data

    def _outstanding(self, call_id: int) -> None:
        if call_id not in self._calls:
            raise LocalProtocolError(f"call_id {call_id} is not outstanding")

    def cancel(self, call_id: int) -> bytes:
        """A co_cancel for an outstanding call (nonabortive cancel, rpc #14)."""
        self._outstanding(call_id)
        return build_pdu(CoCancel(call_id=call_id))

    def orphan(self, call_id: int) -> bytes:
        """An orphaned PDU abandoning an outstanding call (abortive cancel, rpc #13, #17)."""
        self._outstanding(call_id)
        del self._calls[call_id]
        self._orphaned[call_id] = None
        if len(self._orphaned) > _ORPHAN_MEMORY:
            del self._orphaned[next(iter(self._orphaned))]
        if not (self._features or 0) & _KEEP_ON_ORPHAN:
            self._must_close = True
        return build_pdu(Orphaned(call_id=call_id))

    # -- receiving -----------------------------------------------------------------------------

    def next_event(self) -> ClientEvent | NeedData:
        """The next event, NEED_DATA, or ConnectionClosed after EOF; raises RemoteProtocolError."""
        event: ClientEvent | NeedData = self._next_event()
        return event

    def _on_pdu(self, h: Header, off: int) -> ClientEvent | None:
        ptype = h.ptype
        if ptype == _RESPONSE:
            return self._on_response(h, off)
        if ptype == _FAULT:
            return self._on_fault(h, off)
        return self._on_control(h, off)

    def _fast_path(self) -> ResponseReceived | None:
        """The common case in one step: an unfragmented, unauthenticated little-endian response
        to an outstanding call. Anything else takes the general path (and its checks)."""
        buf, off = self._buf, self._off
        if len(buf) - off < 24:
            return None
        vers, minor, ptype, flags, drep, frag, auth, call_id, hint, _ctx, cancel_count = (
            _FAST_RESPONSE.unpack_from(buf, off)
        )
        if (
            ptype != _RESPONSE
            or drep != _DREP_LE
            or vers != 5
            or minor > 1
            or auth
            or flags & _FIRST_LAST != _FIRST_LAST
            or not 24 <= frag <= len(buf) - off
            or hint > _MAX_ALLOC_HINT
            or self._calls.get(call_id, 0) is not None  # absent (0) or mid-reassembly (list)
        ):
            return None
        self._off = off + frag
        del self._calls[call_id]
        return ResponseReceived(call_id, buf[off + 24 : off + frag], cancel_count)

    def _check_header(self, h: Header) -> None:
        check_version(h)
        if h.ptype not in _CLIENT_BOUND_PTYPES:
            raise RemoteProtocolError(f"PTYPE {PType(h.ptype).name} is not sent to a client")

    def _on_response(self, h: Header, off: int) -> ResponseReceived | None:
        alloc_hint, _p_cont_id, cancel_count, start, end, _v = _response_fields(self._buf, off, h)
        call_id, flags = h.call_id, h.pfc_flags
        if call_id not in self._calls:
            if call_id in self._orphaned:
                if flags & _LAST:
                    del self._orphaned[call_id]
                return None  # a late response for an abandoned call (rpc #17)
            raise RemoteProtocolError(f"response for call_id {call_id}, which is not outstanding")
        if alloc_hint > _MAX_ALLOC_HINT:
            raise RemoteProtocolError(f"response alloc_hint {alloc_hint} > 2**31-1")
        chunks = self._calls[call_id]
        stub = self._buf[start:end]
        if flags & _FIRST:
            if chunks is not None:
                raise RemoteProtocolError(f"call_id {call_id}: PFC_FIRST_FRAG in mid-response")
            if flags & _LAST:
                del self._calls[call_id]
                return ResponseReceived(call_id, stub, cancel_count)
            self._calls[call_id] = [stub]
            return None
        if chunks is None:
            raise RemoteProtocolError(f"call_id {call_id}: first response lacks PFC_FIRST_FRAG")
        chunks.append(stub)
        if not flags & _LAST:
            return None
        del self._calls[call_id]
        return ResponseReceived(call_id, b"".join(chunks), cancel_count)

    def _on_fault(self, h: Header, off: int) -> FaultReceived | None:
        nca_status = fault_fields(self._buf, off, h)[4]
        call_id = h.call_id
        if nca_status in FORBIDDEN_FAULT_STATUSES:
            status = int(RpcStatus.RPC_S_PROTOCOL_ERROR)
        else:
            status = nca_to_rpc_status(nca_status)
        event = FaultReceived(call_id, status, nca_status, bool(h.pfc_flags & _DID_NOT_EXECUTE))
        if call_id in self._calls:
            del self._calls[call_id]  # a fault may also cut a partly received response short
            return event
        if call_id in self._orphaned:
            del self._orphaned[call_id]
            return None
        pending = self._pending
        if pending is not None and pending.call_id == call_id:
            self._pending = None  # the server faulted our bind/alter_context
            return event
        raise RemoteProtocolError(
            f"fault 0x{nca_status:08X} for call_id {call_id}, which is not outstanding",
            status=status,
        )

    def _on_control(
        self, h: Header, off: int
    ) -> BindAccepted | BindRejected | AlterContextAccepted | ShutdownRequested:
        pdu = parse_pdu_at(self._buf, off, h)
        if h.ptype == PType.SHUTDOWN:
            self._shutdown = True
            return ShutdownRequested()
        pending = self._pending
        if pending is None or pending.call_id != h.call_id:
            raise RemoteProtocolError(f"{type(pdu).__name__} does not answer a bind/alter_context")
        if isinstance(pdu, BindNak):
            if pending.is_alter:
                raise RemoteProtocolError("bind_nak in answer to alter_context")
            self._pending = None
            return BindRejected(pdu.call_id, pdu.provider_reject_reason, pdu.versions)
        if isinstance(pdu, AlterContextResp) != pending.is_alter:
            raise RemoteProtocolError(f"{type(pdu).__name__} does not answer this PDU")
        assert isinstance(pdu, (BindAck, AlterContextResp))
        if len(pdu.results) != len(pending.contexts):
            raise RemoteProtocolError(
                f"{len(pdu.results)} results for {len(pending.contexts)} proposed contexts"
            )
        self._pending = None
        accepted, features = self._take_results(pending, pdu.results)
        if isinstance(pdu, AlterContextResp):
            return AlterContextAccepted(pdu.call_id, pdu.results, accepted)
        if pdu.max_recv_frag < MUST_RECV_FRAG_SIZE or pdu.max_xmit_frag < MUST_RECV_FRAG_SIZE:
            raise RemoteProtocolError("bind_ack fragment sizes below the 1432-byte minimum")
        self._bound = True
        self._assoc_group_id = pdu.assoc_group_id
        self._xmit = min(self._max_xmit_frag, pdu.max_recv_frag)
        self._conc_mpx = pending.conc_mpx and bool(pdu.pfc_flags & _CONC_MPX)
        self._features = features
        return BindAccepted(
            pdu.call_id,
            pdu.assoc_group_id,
            pdu.max_xmit_frag,
            pdu.max_recv_frag,
            self._conc_mpx,
            pdu.results,
            accepted,
            features,
            pdu.sec_addr,
        )

    def _take_results(
        self, pending: _PendingBind, results: tuple[ContextResult, ...]
    ) -> tuple[tuple[int, ...], int | None]:
        accepted: list[int] = []
        features: int | None = None
        for element, result in zip(pending.contexts, results, strict=True):
            if element.p_cont_id == pending.btfn_p_cont_id:
                if result.result == ContDefResult.NEGOTIATE_ACK:
                    features = result.reason
            elif result.result == ContDefResult.ACCEPTANCE:
                self._contexts[element.p_cont_id] = result.transfer_syntax
                accepted.append(element.p_cont_id)
        return tuple(accepted), features

    def _on_close(self) -> ConnectionClosed:
        pending = () if self._pending is None else (self._pending.call_id,)
        return ConnectionClosed((*pending, *self._calls), self._assoc_group_id, False)
