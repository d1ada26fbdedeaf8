"""Bind and alter_context on the server side of a DCE/RPC CO connection: the half of
``ServerConnection`` (``_server``) that negotiates the association, and its protocol-error exit.

``ServerBinding`` holds what a bind negotiates (the presentation contexts, the fragment
sizes, the minor version, PFC_CONC_MPX, the association group) and answers bind and
alter_context; ``ServerConnection`` adds the requests and the replies on top. Not public.

Rules (spec B4-B5 and the sources cited inline):
- Binding: only one bind per connection (a second -> bind_nak reason 0, rpc #53); rpc_vers
  other than 5.0/5.1 -> reason 4 with versions {5.0} (rpc #51); an auth verifier -> reason 8,
  since no security provider is implemented (rpc #52); max_xmit_frag or max_recv_frag below
  the C706 minimum 1432 -> reason 0; unknown nonzero assoc_group_id -> reason 0; no contexts ->
  reason 4 [samba:dcesrv_core.c dcesrv_bind]. bind_ack frag sizes are min(client's, max_frag)
  rounded down to a multiple of 8 as Windows does [samba:dcesrv_bind] (impacket 4280 -> 4280,
  rpc #45); the sec_addr is NUL-terminated (rpc #46); PFC_CONC_MPX is echoed (rpc #73).
- Presentation contexts: negotiated by ``_contexts.negotiate_contexts`` (rpc #47-#50: NDR 2.0
  accepted, NDR64 rejected with reason 2, bind time features answered negotiate_ack).
  alter_context adds contexts (alter_context_resp, sec_addr_len 0, rpc #54); reusing a
  p_cont_id for another interface there is a protocol error (fault + disconnect, as Samba).

Invariants: a refused bind leaves the connection unbound and unchanged (only the bind_nak is
queued); an accepted bind sets every negotiated value, the replies' sizes and the inline
plan (``answer_inline``'s per-wake-up tuple) together, before the bind_ack is queued; a
protocol error queues its fault first, then raises (``_die``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final, Generic, NoReturn, TypeVar

from ...codes import NcaStatus, RpcStatus
from ...errors import RemoteProtocolError
from .._pdu import (
    MAX_FRAG_SIZE,
    MUST_RECV_FRAG_SIZE,
    AlterContext,
    AlterContextResp,
    Bind,
    BindAck,
    BindNak,
    Header,
    PfcFlags,
    RejectReason,
    build_pdu,
    fault_pdu,
    parse_pdu_at,
)
from ._base import MAX_REQUEST_SIZE, AssociationGroups, ConnectionBase, InterfaceRegistry
from ._contexts import NegotiationError, negotiate_contexts
from ._events import AcceptedContext, BindRefused, Bound, ContextAltered
from ._replies import Replies

__all__ = ["IfT", "ServerBinding"]

IfT = TypeVar("IfT")

_FIRST: Final = int(PfcFlags.PFC_FIRST_FRAG)
_LAST: Final = int(PfcFlags.PFC_LAST_FRAG)
_CONC_MPX: Final = int(PfcFlags.PFC_CONC_MPX)
_PROTO_ERROR: Final = int(NcaStatus.NCA_S_PROTO_ERROR)
# The request heads answer_inline takes, per bound minor version (vers minor ptype flags drep
# as one u64): 05 00|01 00 03 10 00 00 00.
_INLINE_HEADS: Final = (
    int.from_bytes(b"\x05\x00\x00\x03\x10\x00\x00\x00", "little"),
    int.from_bytes(b"\x05\x01\x00\x03\x10\x00\x00\x00", "little"),
)
# One unfragmented response header's first 8 octets per minor (its other fields: _server).
_RESPONSE_PREFIX: Final = (b"\x05\x00\x02\x03\x10\x00\x00\x00", b"\x05\x01\x02\x03\x10\x00\x00\x00")


class ServerBinding(ConnectionBase, Generic[IfT]):
    """What a server connection negotiates, and bind/alter_context (module docstring);
    ``ServerConnection``'s base. Its arguments are ``ServerConnection``'s of the same names."""

    #: The replies (``ServerConnection``'s): an accepted bind sets their negotiated sizes.
    _replies: Replies

    def __init__(
        self,
        registry: InterfaceRegistry[IfT],
        *,
        assoc_groups: AssociationGroups | None = None,
        max_frag: int = MAX_FRAG_SIZE,
        sec_addr: bytes | str = b"",
        peer: Hashable | None = None,
        max_request_size: int = MAX_REQUEST_SIZE,
    ) -> None:
        super().__init__()
        if not MUST_RECV_FRAG_SIZE <= max_frag <= 0xFFFF:
            raise ValueError(f"max_frag must be in [1432, 65535], not {max_frag}")
        self._registry = registry
        self._groups = assoc_groups if assoc_groups is not None else AssociationGroups()
        self._max_frag = max_frag
        raw_addr = sec_addr.encode("ascii") if isinstance(sec_addr, str) else sec_addr
        self._sec_addr = raw_addr.rstrip(b"\x00") + b"\x00"
        self._peer = peer
        self._max_request = max_request_size
        self._minor = 0
        self._xmit = max_frag
        self._recv = max_frag
        self._contexts: dict[int, AcceptedContext[IfT]] = {}
        self._inline = self._inline_plan()

    def _inline_plan(self) -> tuple[int, bytes, int, int, int, int]:
        """What ``answer_inline`` reads per wake-up, in one tuple (redone at bind): the
        request head it takes, the response prefix, max_frag, max request, xmit, minor."""
        minor = self._minor
        return (
            _INLINE_HEADS[minor],
            _RESPONSE_PREFIX[minor],
            self._max_frag,
            self._max_request,
            self._xmit,
            minor,
        )

    # -- bind / alter_context ------------------------------------------------------------------

    def _refuse(self, call_id: int, reason: int) -> BindRefused:
        # Samba's layout: versions {5.0} then 3 zero octets (24 bytes; Wine sends 21).
        nak = BindNak(call_id=call_id, provider_reject_reason=reason, trailing=b"\x00\x00\x00")
        self._out.append(build_pdu(nak))
        return BindRefused(call_id, reason)

    def _on_bind(self, h: Header, off: int) -> Bound[IfT] | BindRefused:
        try:
            pdu = parse_pdu_at(self._buf, off, h)
        except RemoteProtocolError as exc:
            if exc.reject_reason is None:
                raise
            return self._refuse(h.call_id, exc.reject_reason)
        assert isinstance(pdu, Bind)
        if self._bound:
            return self._refuse(pdu.call_id, RejectReason.REASON_NOT_SPECIFIED)
        if pdu.auth_verifier is not None:
            return self._refuse(pdu.call_id, RejectReason.AUTHENTICATION_TYPE_NOT_RECOGNIZED)
        if min(pdu.max_xmit_frag, pdu.max_recv_frag) < MUST_RECV_FRAG_SIZE:
            return self._refuse(pdu.call_id, RejectReason.REASON_NOT_SPECIFIED)
        if not pdu.contexts:
            return self._refuse(pdu.call_id, RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED)
        if pdu.assoc_group_id and not self._groups.may_join(pdu.assoc_group_id, self._peer):
            return self._refuse(pdu.call_id, RejectReason.REASON_NOT_SPECIFIED)
        try:
            results, accepted, features = negotiate_contexts(
                self._registry, self._contexts, pdu.contexts
            )
        except NegotiationError:
            return self._refuse(pdu.call_id, RejectReason.REASON_NOT_SPECIFIED)
        if pdu.assoc_group_id:
            self._groups.join(pdu.assoc_group_id, self._peer)
            self._assoc_group_id = pdu.assoc_group_id
        else:
            self._assoc_group_id = self._groups.create(self._peer)
        self._bound = True
        self._minor = h.rpc_vers_minor
        self._xmit = min(pdu.max_recv_frag, self._max_frag) & ~7
        self._recv = min(pdu.max_xmit_frag, self._max_frag) & ~7
        self._conc_mpx = bool(pdu.pfc_flags & _CONC_MPX)
        self._features = features
        replies = self._replies
        replies.conc_mpx, replies.xmit, replies.minor = self._conc_mpx, self._xmit, self._minor
        self._inline = self._inline_plan()
        for ctx in accepted:
            self._contexts[ctx.p_cont_id] = ctx
        ack = BindAck(
            call_id=pdu.call_id,
            max_xmit_frag=self._xmit,
            max_recv_frag=self._recv,
            assoc_group_id=self._assoc_group_id,
            sec_addr=self._sec_addr,
            results=results,
            pfc_flags=_FIRST | _LAST | (_CONC_MPX if self._conc_mpx else 0),
            rpc_vers_minor=self._minor,
        )
        self._out.append(build_pdu(ack))
        return Bound(
            pdu.call_id,
            self._assoc_group_id,
            accepted,
            results,
            self._xmit,
            self._recv,
            self._conc_mpx,
            features,
        )

    def _on_alter(self, pdu: AlterContext) -> ContextAltered[IfT]:
        if not self._bound:
            self._die(pdu.call_id, 0, "alter_context before bind")
        if pdu.auth_verifier is not None:
            self._die(
                pdu.call_id,
                0,
                "alter_context with an auth verifier: no security provider",
                status=RpcStatus.RPC_S_UNKNOWN_AUTHN_SERVICE,
            )
        try:
            results, accepted, features = negotiate_contexts(
                self._registry, self._contexts, pdu.contexts
            )
        except NegotiationError as exc:
            self._die(pdu.call_id, 0, f"alter_context: {exc}")
        if features is not None and self._features is None:
            self._features = features
        for ctx in accepted:
            self._contexts[ctx.p_cont_id] = ctx
        resp = AlterContextResp(
            call_id=pdu.call_id,
            max_xmit_frag=self._xmit,
            max_recv_frag=self._recv,
            assoc_group_id=self._assoc_group_id,
            sec_addr=b"",
            results=results,
            rpc_vers_minor=self._minor,
        )
        self._out.append(build_pdu(resp))
        return ContextAltered(pdu.call_id, accepted, results)

    def _die(
        self, call_id: int, p_cont_id: int, reason: str, *, status: int = _PROTO_ERROR
    ) -> NoReturn:
        # Protocol error: fault at once (no reply ordering, the connection is going away)
        # then break the connection [MS-RPCE §3.3.3.5.7], [samba:dcesrv_fault_disconnect].
        self._out.append(
            fault_pdu(call_id, p_cont_id, status, did_not_execute=True, rpc_vers_minor=self._minor)
        )
        raise RemoteProtocolError(reason, status=status)
