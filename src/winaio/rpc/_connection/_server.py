"""ServerConnection: the sans-I/O state machine of one server-side DCE/RPC CO connection.

How the runtime drives it (h11 style)::

    conn = ServerConnection(registry, assoc_groups=groups)
    on bytes read:   conn.receive_data(data)          # b"" on EOF
                     while (ev := conn.next_event()) is not NEED_DATA:
                         handle(ev)                   # RequestReceived -> dispatch the call
                     transport.write(conn.data_to_send())
    call finished:   transport.write(conn.send_response(call_id, stub))   # or send_fault(...)
    on RemoteProtocolError: transport.write(conn.data_to_send()); close; conn.close()

The connection answers bind/alter_context and the requests it can reject by itself (queued in
``data_to_send()``); ``send_*`` methods return the bytes to write now, which include anything
queued earlier, so writing every returned/collected ``bytes`` in order is always correct.

Rules (spec B4-B8 and the sources cited inline):
- Binding and presentation contexts (bind, alter_context): ``_binding.ServerBinding``, this
  class's base (its docstring holds their rules).
- Requests: fragments are reassembled in order (one call at a time, [MS-RPCE §3.3.1.5.8]);
  FIRST/LAST flags, call_id, p_cont_id and opnum must be consistent (rpc #68); alloc_hint is
  only a hint (rpc #69); requests that are answered with a fault and never dispatched:
  unknown p_cont_id or no bind -> nca_s_unk_if + DID_NOT_EXECUTE (rpc #55, #56), call_id not
  above every earlier request call_id -> nca_s_proto_error (rpc #66, [MS-RPCE §3.3.3.5.2]),
  more than 4 MiB of stub (or an alloc_hint announcing it) -> status 5 (rpc #70). Later
  fragments of such a call, and of orphaned calls, are dropped under [MS-RPCE §3.3.3.5.6].
  Broken sequencing raises RemoteProtocolError after queueing a nca_s_proto_error fault.
  ``stream_requests`` dispatches chosen requests at their first fragment (RequestFragment
  events follow); ``answer_inline`` is the runtime's fast path (its docstring).
- Replies: ``_replies.Replies`` (request order without PFC_CONC_MPX, rpc #73/#74; streamed
  parts; nothing for an orphaned call). Fault statuses go through ``codes.rpc_to_nca_status``
  and never carry 0 or a code MS-RPCE §3.3.3.5.1 forbids (rpc #61).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Hashable
from typing import Final
from uuid import UUID

from ...codes import NcaStatus, RpcStatus
from ...errors import RemoteProtocolError
from .._pdu import (
    MAX_FRAG_SIZE,
    AlterContext,
    Header,
    PfcFlags,
    PType,
    Shutdown,
    build_pdu,
    check_version,
    fault_pdu,
    parse_pdu_at,
    request_fields,
    response_fragments,
)
from ._base import MAX_REQUEST_SIZE, AssociationGroups, InterfaceRegistry
from ._binding import IfT, ServerBinding
from ._calls import Reassembly
from ._contexts import fault_status
from ._events import (
    DISPATCHED,
    AcceptedContext,
    CallOrphaned,
    CancelRequested,
    ConnectionClosed,
    InlineHandler,
    NeedData,
    RequestFragment,
    RequestReceived,
    RequestRejected,
    ServerEvent,
)
from ._replies import Replies

__all__ = ["ServerConnection"]

_FIRST: Final = int(PfcFlags.PFC_FIRST_FRAG)
_LAST: Final = int(PfcFlags.PFC_LAST_FRAG)
_PENDING_CANCEL: Final = int(PfcFlags.PFC_PENDING_CANCEL)
_PROTO_ERROR: Final = int(NcaStatus.NCA_S_PROTO_ERROR)
_UNK_IF: Final = int(NcaStatus.NCA_S_UNK_IF)
_ACCESS_DENIED: Final = int(RpcStatus.RPC_S_ACCESS_DENIED)
_REQUEST: Final = int(PType.REQUEST)
_DREP_LE: Final = 0x00000010  # packed_drep 10 00 00 00 as a little-endian u32
# vers minor ptype flags drep frag_length auth_length call_id alloc_hint p_cont_id opnum
_FAST_REQUEST: Final = struct.Struct("<BBBBIHHIIHH")
_FAST_FLAG_MASK: Final = int(
    PfcFlags.PFC_FIRST_FRAG | PfcFlags.PFC_LAST_FRAG | PfcFlags.PFC_OBJECT_UUID
)
# head (vers minor ptype flags drep as one u64) frag_length|auth_length<<16 (one u32) call_id
# alloc_hint p_cont_id opnum; the heads answer_inline takes: ``_binding._INLINE_HEADS``.
_INLINE_REQUEST: Final = struct.Struct("<QIIIHH")
# (vers minor ptype flags drep) frag_length auth_length call_id alloc_hint p_cont_id
# cancel_count=0 reserved: one unfragmented response header (its first 8 octets per minor:
# ``_binding._RESPONSE_PREFIX``).
_RESPONSE_HEAD: Final = struct.Struct("<8sHHIIH2x")
_unpack_inline: Final = _INLINE_REQUEST.unpack_from
_pack_response: Final = _RESPONSE_HEAD.pack
#: [MS-RPCE §3.3.3.5.6]: a non-first fragment of an unknown call is dropped if its call_id is
#: below the current one by less than this, else it is a protocol error.
_OLD_CALL_WINDOW: Final = 150


class ServerConnection(ServerBinding[IfT]):
    """Server role of one DCE/RPC connection-oriented (ncacn_ip_tcp) connection.

    Args:
        registry: where presentation-context negotiation looks interfaces up.
        assoc_groups: the allocator shared by all connections of the server (one is created
            if omitted, which makes every connection its own association).
        max_frag: largest fragment we accept and send (5840 like Windows/Samba); the bind_ack
            never offers more.
        sec_addr: the secondary address put in bind_ack (MS-RPCE §3.3.1.5.5 says: the primary
            endpoint, e.g. the TCP port as a string). Sent NUL-terminated.
        peer: the client's identity (IP address) for association-join checks.
        max_request_size: limit on a reassembled request stub (4 MiB, [MS-RPCE §3.3.3.5.4]).
        stream_requests: ``(interface token, opnum) -> bool``: requests for which it is true
            are dispatched at their first fragment (RequestReceived without PFC_LAST_FRAG),
            their other fragments following as RequestFragment events, with no total size
            limit (asynchronous [in] pipes, rpc-spec §A9: the runtime bounds what it buffers).
    """

    def __init__(
        self,
        registry: InterfaceRegistry[IfT],
        *,
        assoc_groups: AssociationGroups | None = None,
        max_frag: int = MAX_FRAG_SIZE,
        sec_addr: bytes | str = b"",
        peer: Hashable | None = None,
        max_request_size: int = MAX_REQUEST_SIZE,
        stream_requests: Callable[[IfT, int], bool] | None = None,
    ) -> None:
        super().__init__(
            registry,
            assoc_groups=assoc_groups,
            max_frag=max_frag,
            sec_addr=sec_addr,
            peer=peer,
            max_request_size=max_request_size,
        )
        self._current_call_id: int | None = None
        self._rx: Reassembly[IfT] | None = None
        self._replies = Replies(self._out, self.data_to_send, max_frag)
        self._stream = stream_requests

    # -- properties ----------------------------------------------------------------------------

    @property
    def max_recv_frag(self) -> int:
        return self._recv

    @property
    def contexts(self) -> dict[int, AcceptedContext[IfT]]:
        return dict(self._contexts)

    @property
    def pending_call_ids(self) -> tuple[int, ...]:
        """Dispatched calls not yet answered (including orphaned ones)."""
        return tuple(self._replies.calls)

    # -- events --------------------------------------------------------------------------------

    def next_event(self) -> ServerEvent[IfT] | NeedData:
        """The next event, NEED_DATA, or ConnectionClosed after EOF; raises RemoteProtocolError."""
        event: ServerEvent[IfT] | NeedData = self._next_event()
        return event

    def _on_pdu(self, h: Header, off: int) -> ServerEvent[IfT] | None:
        if h.ptype == _REQUEST:
            return self._on_request(h, off)
        return self._on_control(h, off)

    def _fast_path(self) -> RequestReceived[IfT] | None:
        """The common case in one step: an unfragmented, unauthenticated little-endian request
        on a bound context with an increasing call_id. Anything else (including every error)
        returns None and takes the general path, which applies all the rules."""
        buf, off = self._buf, self._off
        if len(buf) - off < 24 or self._rx is not None:
            return None
        vers, minor, ptype, flags, drep, frag, auth, call_id, hint, p_cont_id, opnum = (
            _FAST_REQUEST.unpack_from(buf, off)
        )
        if (
            ptype != _REQUEST
            or drep != _DREP_LE
            or vers != 5
            or minor > 1
            or auth
            or flags & _FAST_FLAG_MASK != _FIRST | _LAST
            or not 24 <= frag <= self._max_frag
            or frag > len(buf) - off
            or hint > self._max_request
            or (self._current_call_id is not None and call_id <= self._current_call_id)
        ):
            return None
        ctx = self._contexts.get(p_cont_id)
        if ctx is None:
            return None
        self._off = off + frag
        self._current_call_id = call_id
        cancels = 1 if flags & _PENDING_CANCEL else 0
        return self._dispatch(
            call_id, ctx, opnum, buf[off + 24 : off + frag], None, flags, buf[off + 4 : off + 8],
            cancels,
        )  # fmt: skip

    def answer_inline(self, handler: InlineHandler[IfT]) -> int:
        """Dispatch, and answer at once when the handler can, the buffered requests at the
        head of the stream (the runtime's fast path); returns how many were consumed. Replies
        and faults are queued for ``data_to_send()``, in request order.

        A request qualifies when ``_fast_path`` would take it (unfragmented, unauthenticated,
        little-endian, no object UUID, no pending cancel, bound context, increasing call_id),
        carries the bound minor version, and no earlier reply is still owed (so answering now keeps
        replies in request order without PFC_CONC_MPX, rpc #74). For each, ``handler(token, opnum,
        call_id, buf, start, end)`` gets the interface token of its context and the stub as
        ``buf[start:end]``, and returns the little-endian response stub (``bytes``) or a fault
        status (``int``): the call is answered and never becomes pending (nothing to cancel or
        orphan); or ``DISPATCHED``: the call is now pending exactly as if ``next_event()`` had
        returned its RequestReceived; or ``None`` to decline: the request is left unconsumed for
        ``next_event()``, which applies every rule of the general path to it, so the handler must
        have done nothing observable when it declines.
        """
        replies = self._replies
        if (
            self._error is not None
            or self._rx is not None
            or (replies.order and not self._conc_mpx)
        ):
            return 0
        # The one head taken here: the bound minor version (a request of the other minor
        # version, legal too, takes the general path).
        head_ok, prefix, max_frag, max_request, xmit, minor = self._inline
        buf = self._buf
        off = self._off
        size = len(buf)
        contexts = self._contexts
        out = self._out
        last = self._current_call_id
        if last is None:
            last = -1
        unpack_from = _unpack_inline
        pack = _pack_response
        answered = 0
        try:
            while size - off >= 24:
                head, frag, call_id, hint, p_cont_id, opnum = unpack_from(buf, off)
                end = off + frag
                # ``frag`` is frag_length | auth_length << 16: within [24, max_frag] (at most
                # 0xFFFF) only when there is no auth verifier.
                if (
                    head != head_ok
                    or not 24 <= frag <= max_frag
                    or end > size
                    or hint > max_request
                    or call_id <= last
                ):
                    break
                ctx = contexts.get(p_cont_id)
                if ctx is None:
                    break
                reply = handler(ctx.interface, opnum, call_id, buf, off + 24, end)
                if type(reply) is bytes:
                    n = len(reply)
                    if n + 24 <= xmit:
                        out += (pack(prefix, n + 24, 0, call_id, n, p_cont_id), reply)
                    else:
                        out.append(
                            response_fragments(
                                call_id, p_cont_id, reply, xmit, rpc_vers_minor=minor
                            )
                        )
                elif reply is None:
                    break
                elif reply is DISPATCHED:
                    off = end
                    last = call_id
                    answered += 1
                    replies.add(call_id, p_cont_id, 0)
                    if not self._conc_mpx:
                        break  # later replies wait for this one: the general path queues them
                    continue
                else:
                    status: int = reply  # type: ignore[assignment]  # a fault status
                    out.append(
                        fault_pdu(call_id, p_cont_id, fault_status(status), rpc_vers_minor=minor)
                    )
                off = end
                last = call_id
                answered += 1
        finally:
            self._off = off
            if answered:
                self._current_call_id = last
        return answered

    def _check_header(self, h: Header) -> None:
        # Reject early what no body can fix, so that garbage does not make us wait for data.
        if h.ptype != PType.BIND:
            check_version(h)
        ptype = h.ptype
        if ptype == _REQUEST and h.frag_length > self._max_frag:
            # Samba checks this against the transport maximum too, not the negotiated one.
            self._die(h.call_id, 0, f"request fragment of {h.frag_length} > {self._max_frag} bytes")
        if ptype not in (
            PType.REQUEST,
            PType.BIND,
            PType.ALTER_CONTEXT,
            PType.CO_CANCEL,
            PType.ORPHANED,
        ):
            if ptype == PType.AUTH3:
                raise RemoteProtocolError("rpc_auth_3 on a connection without a security context")
            raise RemoteProtocolError(f"PTYPE {PType(ptype).name} is not sent to a server")

    def _on_control(self, h: Header, off: int) -> ServerEvent[IfT] | None:
        ptype = h.ptype
        if ptype == PType.BIND:
            return self._on_bind(h, off)
        pdu = parse_pdu_at(self._buf, off, h)
        if isinstance(pdu, AlterContext):
            return self._on_alter(pdu)
        call = self._replies.calls.get(h.call_id)
        rx = self._rx
        if ptype == PType.CO_CANCEL:
            if call is not None and not call.orphaned:
                call.cancel_count += 1
                return CancelRequested(h.call_id, call.cancel_count)
            if rx is not None and rx.call_id == h.call_id:
                rx.cancel_count += 1
            return None  # cancel for a call that is not active: nothing to do [C706 §12.6.4.6]
        # orphaned
        if call is not None and not call.orphaned:
            if rx is not None and rx.call_id == h.call_id:
                self._rx = None  # a streamed request: its other fragments are dropped
            self._replies.orphaned(call)
            return CallOrphaned(h.call_id)
        if rx is not None and rx.call_id == h.call_id:
            self._rx = None  # its remaining fragments fall under the old-call rule
        return None

    # -- requests ------------------------------------------------------------------------------

    def _on_request(
        self, h: Header, off: int
    ) -> RequestReceived[IfT] | RequestFragment | RequestRejected | None:
        alloc_hint, p_cont_id, opnum, obj, start, end, verifier = request_fields(self._buf, off, h)
        call_id, flags = h.call_id, h.pfc_flags
        if verifier is not None:
            reason = "authenticated request without a security context"
            self._die(call_id, p_cont_id, reason, status=_ACCESS_DENIED)
        rx = self._rx
        if flags & _FIRST:
            if rx is not None:
                # [MS-RPCE §3.3.1.5.8]: all fragments of a request before the next request.
                reason = "new request before the last fragment of the previous one"
                self._die(rx.call_id, rx.context.p_cont_id, reason)
            current = self._current_call_id
            if current is not None and call_id <= current:
                reason = f"call_id {call_id} does not increase (after {current})"
                return self._reject(call_id, p_cont_id, _PROTO_ERROR, reason)
            self._current_call_id = call_id
            ctx = self._contexts.get(p_cont_id)
            if ctx is None:
                why = "no presentation context" if self._bound else "request before bind"
                return self._reject(call_id, p_cont_id, _UNK_IF, f"{why} {p_cont_id}")
            stub = self._buf[start:end]
            cancels = 1 if flags & _PENDING_CANCEL else 0  # a cancel was pending at the client
            stream = self._stream
            if not flags & _LAST and stream is not None and stream(ctx.interface, opnum):
                rx = self._rx = Reassembly(call_id, ctx, opnum, obj, h.drep, flags, b"", cancels)
                rx.streaming = True
                return self._dispatch(call_id, ctx, opnum, stub, obj, flags, h.drep, cancels)
            # On the first fragment alloc_hint is the whole stub under both conventions (MS:
            # remaining bytes, impacket: total), so it can refuse a large call early (Samba).
            if alloc_hint > self._max_request or len(stub) > self._max_request:
                reason = f"request of {max(alloc_hint, len(stub))} bytes"
                return self._reject(call_id, p_cont_id, _ACCESS_DENIED, reason)
            if flags & _LAST:
                return self._dispatch(call_id, ctx, opnum, stub, obj, flags, h.drep, cancels)
            self._rx = Reassembly(call_id, ctx, opnum, obj, h.drep, flags, stub, cancels)
            return None
        if rx is None or rx.call_id != call_id:
            current = self._current_call_id
            if rx is None and current is not None and 0 <= current - call_id < _OLD_CALL_WINDOW:
                return None  # a fragment of a call we rejected or that was orphaned
            self._die(call_id, p_cont_id, "request fragment without PFC_FIRST_FRAG")
        if p_cont_id != rx.context.p_cont_id or opnum != rx.opnum or h.drep != rx.drep:
            self._die(call_id, p_cont_id, "p_cont_id, opnum or drep changed between fragments")
        if rx.streaming:
            last = bool(flags & _LAST)
            if last:
                self._rx = None
            return RequestFragment(call_id, self._buf[start:end], last)
        rx.chunks.append(self._buf[start:end])
        rx.size += end - start
        if rx.size > self._max_request:
            self._rx = None  # the call's remaining fragments fall under the old-call rule
            reason = f"request over {self._max_request} bytes"
            return self._reject(call_id, p_cont_id, _ACCESS_DENIED, reason)
        if not flags & _LAST:
            return None
        self._rx = None
        # Report the first fragment's flags (PFC_OBJECT_UUID, PFC_MAYBE...) plus LAST.
        return self._dispatch(
            call_id, rx.context, rx.opnum, b"".join(rx.chunks), rx.object, rx.flags | _LAST,
            rx.drep, rx.cancel_count,
        )  # fmt: skip

    def _dispatch(
        self,
        call_id: int,
        ctx: AcceptedContext[IfT],
        opnum: int,
        stub: bytes,
        obj: UUID | None,
        flags: int,
        drep: bytes,
        cancel_count: int,
    ) -> RequestReceived[IfT]:
        self._replies.add(call_id, ctx.p_cont_id, cancel_count)
        return RequestReceived(
            call_id, ctx.p_cont_id, opnum, stub, obj, ctx.interface, flags, drep, cancel_count
        )

    def _reject(self, call_id: int, p_cont_id: int, status: int, reason: str) -> RequestRejected:
        data = fault_pdu(
            call_id, p_cont_id, status, did_not_execute=True, rpc_vers_minor=self._minor
        )
        self._replies.refused(data)
        return RequestRejected(call_id, p_cont_id, status, reason)

    # -- replies (``_replies``: reply order, streamed parts, fragmentation) ---------------------

    def send_response(self, call_id: int, stub: bytes) -> bytes:
        """Answer a dispatched call; returns the bytes to write now (maybe b"" if the reply must
        wait for earlier calls, or the call was orphaned). Fragmented to the client's
        max_recv_frag with alloc_hint = remaining stub (rpc #62, #71).

        Byte order: the response PDUs always carry drep ``10 00 00 00``, so ``stub`` must be
        little-endian NDR even when the request was big-endian (``RequestReceived.drep`` only
        tells how to decode the request). That is legal: drep is per PDU [C706 §14.1]."""
        return self._replies.response(call_id, stub)

    def send_response_part(self, call_id: int, stub: bytes) -> bytes:
        """Send part of a dispatched call's response stub now, leaving the response open (an
        asynchronous [out] pipe's chunks as the manager pushes them, rpc-spec §A9); returns
        the bytes to write now. ``send_response`` sends the rest and ends it.

        Fragments carry PFC_FIRST_FRAG on the call's first, never PFC_LAST_FRAG, alloc_hint 0.
        Without PFC_CONC_MPX a call's parts wait (held) until every earlier reply has left, so
        replies stay in request order and never interleave (rpc #74); with it they leave at
        once, each fragment whole (the client routes by call_id [MS-RPCE §3.3.1.5.8]).
        """
        return self._replies.part(call_id, stub)

    def send_fault(self, call_id: int, status: int, *, did_not_execute: bool = False) -> bytes:
        """Answer a dispatched call with a 32-byte fault (rpc #18, #60, #61); see fault_status."""
        return self._replies.fault(call_id, status, did_not_execute)

    def send_shutdown(self) -> bytes:
        """Ask the client to close the connection when idle: a 16-byte shutdown PDU (rpc #99)."""
        self._out.append(build_pdu(Shutdown(rpc_vers_minor=self._minor)))
        return self.data_to_send()

    def is_cancel_requested(self, call_id: int) -> bool:
        """RpcServerTestCancel for a dispatched call: has the client sent a cancel? (rpc #15)."""
        return self._replies.get(call_id).cancel_count > 0

    def _on_close(self) -> ConnectionClosed:
        ended = False
        if self._bound:
            ended = self._groups.leave(self._assoc_group_id)
        return ConnectionClosed(tuple(self._replies.calls), self._assoc_group_id, ended)
