"""Parse and build connection-oriented DCE/RPC PDUs ([C706 §12.6], [MS-RPCE §2.2.2]).

Purpose: turn one PDU's bytes into a :mod:`._pdu` dataclass and back, with strict validation.

Rules and invariants:
- ``parse_pdu(data)`` takes exactly one PDU (``len(data) == frag_length``) and raises only
  :class:`~winaio.errors.RemoteProtocolError` for malformed input: every offset is checked
  against ``frag_length`` before it is read, so no ``IndexError``/``struct.error`` escapes
  and the work done is linear in ``len(data)``.
- Header validation [C706 §12.6.3.1], [MS-RPCE §3.3.1.5.1]: rpc_vers 5, rpc_vers_minor 0 or 1,
  integer representation little (``0x1_``) or big (``0x0_``) endian, ASCII/EBCDIC characters,
  float format 0-3, frag_length >= 16 and large enough for the PTYPE's fixed body plus
  ``auth_length + 8`` when an auth verifier is present. A version error on a bind carries
  ``reject_reason=4`` (protocol_version_not_supported) so the server can answer with a bind_nak
  (rpc #51); everything else uses status nca_s_proto_error 0x1C01000B [MS-RPCE §3.3.3.5.7].
- Auth verifier [MS-RPCE §2.2.2.11]: the sec_trailer starts at ``frag_length - auth_length - 8``
  and is preceded by ``auth_pad_length`` padding octets, which are removed from the stub.
  Nothing assumes 4- or 16-byte alignment (rpc #75).
- Leniency, each for a named peer: a fault shorter than 32 bytes but holding the status
  (impacket's ``DCERPCServer`` sends 28-byte faults) is accepted; bytes after the last
  p_cont_elem of a bind/alter_context are ignored; reserved fields are ignored.
- ``build_pdu(pdu)`` derives frag_length and auth_length from the content and raises
  :class:`~winaio.errors.LocalProtocolError` for values that do not fit their wire fields.
- The ``*_fields`` helpers are the parsing fast paths shared with the connection state
  machines: they validate exactly what ``parse_pdu`` validates but return a tuple instead of
  allocating a dataclass.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final, NamedTuple, TypeAlias, TypedDict
from uuid import UUID

from ...codes import NcaStatus
from ...errors import LocalProtocolError, RemoteProtocolError
from ._types import (
    COMMON_HEADER_LENGTH,
    SEC_TRAILER_LENGTH,
    AlterContext,
    AlterContextResp,
    Auth3,
    AuthVerifier,
    Bind,
    BindAck,
    BindNak,
    CoCancel,
    ContextElement,
    ContextResult,
    Fault,
    Orphaned,
    Pdu,
    PfcFlags,
    PType,
    RejectReason,
    Request,
    Response,
    Shutdown,
    SyntaxId,
)

__all__ = [
    "Header",
    "build_pdu",
    "decode_header",
    "check_version",
    "parse_pdu",
    "parse_pdu_at",
    "request_fields",
    "response_fields",
    "fault_fields",
]

_PROTO_ERROR: Final = int(NcaStatus.NCA_S_PROTO_ERROR)
_OBJECT_UUID: Final = int(PfcFlags.PFC_OBJECT_UUID)

# Index 0 = little-endian, 1 = big-endian (indexed with the ``big_endian`` bool).
_HDR = (struct.Struct("<BBBB4sHHI"), struct.Struct(">BBBB4sHHI"))  # common header, 16
_REQ = (struct.Struct("<IHH"), struct.Struct(">IHH"))  # alloc_hint p_cont_id opnum @16
_RESP = (struct.Struct("<IHBx"), struct.Struct(">IHBx"))  # alloc_hint p_cont_id cancel_count @16
_FAULT = (struct.Struct("<IHBBI"), struct.Struct(">IHBBI"))  # ... fault_flags status @16
_BIND = (struct.Struct("<HHIBxxx"), struct.Struct(">HHIBxxx"))  # frags assoc n_context_elem @16
_ACK = (struct.Struct("<HHIH"), struct.Struct(">HHIH"))  # frags assoc sec_addr_len @16
_CTX = (struct.Struct("<HBx"), struct.Struct(">HBx"))  # p_cont_id n_transfer_syn
_RESULT = (struct.Struct("<HH"), struct.Struct(">HH"))  # result reason
_NAK = (struct.Struct("<HB"), struct.Struct(">HB"))  # provider_reject_reason n_protocols @16
_U32 = (struct.Struct("<I"), struct.Struct(">I"))
_TRAILER = (struct.Struct("<BBBBI"), struct.Struct(">BBBBI"))  # sec_trailer, 8

_CO_PTYPES: Final = frozenset(
    int(p)
    for p in (
        PType.REQUEST,
        PType.RESPONSE,
        PType.FAULT,
        PType.BIND,
        PType.BIND_ACK,
        PType.BIND_NAK,
        PType.ALTER_CONTEXT,
        PType.ALTER_CONTEXT_RESP,
        PType.AUTH3,
        PType.SHUTDOWN,
        PType.CO_CANCEL,
        PType.ORPHANED,
    )
)

Buffer: TypeAlias = bytes | bytearray | memoryview


class Header(NamedTuple):
    """The 16-byte common header [C706 §12.6.3.1] plus the byte order its drep selects."""

    rpc_vers: int
    rpc_vers_minor: int
    ptype: int
    pfc_flags: int
    drep: bytes
    frag_length: int
    auth_length: int
    call_id: int
    big_endian: bool


def _error(message: str, *, reject_reason: int | None = None) -> RemoteProtocolError:
    return RemoteProtocolError(message, status=_PROTO_ERROR, reject_reason=reject_reason)


def decode_header(buf: bytes, off: int = 0) -> Header:
    """Decode the common header at ``buf[off:off+16]``.

    Checks only what is needed to frame the stream (drep and ``frag_length >= 16``); the
    version is checked by :func:`check_version` so that a bind with a foreign version can still
    be read whole and answered with a bind_nak.
    """
    if len(buf) - off < COMMON_HEADER_LENGTH:
        raise _error(f"truncated PDU: {len(buf) - off} bytes, the common header has 16")
    d0 = buf[off + 4]
    int_rep = d0 >> 4
    if int_rep > 1 or d0 & 0x0F > 1 or buf[off + 5] > 3:
        raise _error(f"unsupported data representation {bytes(buf[off + 4 : off + 8]).hex()}")
    big = int_rep == 0
    vers, minor, ptype, flags, drep, frag_length, auth_length, call_id = _HDR[big].unpack_from(
        buf, off
    )
    if frag_length < COMMON_HEADER_LENGTH:
        raise _error(f"frag_length {frag_length} is shorter than the common header")
    return Header(vers, minor, ptype, flags, drep, frag_length, auth_length, call_id, big)


def check_version(h: Header) -> None:
    """Reject anything but DCE/RPC CO 5.0/5.1 and non-CO PTYPEs [MS-RPCE §3.3.1.5.1]."""
    if h.rpc_vers != 5 or h.rpc_vers_minor > 1:
        reason = RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED if h.ptype == PType.BIND else None
        raise _error(
            f"unsupported protocol version {h.rpc_vers}.{h.rpc_vers_minor}", reject_reason=reason
        )
    if h.ptype not in _CO_PTYPES:
        raise _error(f"PTYPE {h.ptype} is not a connection-oriented PDU")


def _split_auth(buf: bytes, off: int, h: Header, fixed: int) -> tuple[int, AuthVerifier | None]:
    """Return (end of body, verifier) for the PDU at ``off`` whose fixed part is ``fixed`` bytes.

    The end of body excludes the auth padding, the sec_trailer and the token.
    """
    end = off + h.frag_length
    if h.frag_length < fixed:
        raise _error(f"PTYPE {h.ptype}: frag_length {h.frag_length} < minimum {fixed}")
    auth_length = h.auth_length
    if not auth_length:
        return end, None
    trailer = end - auth_length - SEC_TRAILER_LENGTH
    if trailer < off + fixed:
        raise _error(f"auth_length {auth_length} does not fit in frag_length {h.frag_length}")
    auth_type, auth_level, pad, reserved, context_id = _TRAILER[h.big_endian].unpack_from(
        buf, trailer
    )
    body_end = trailer - pad
    if body_end < off + fixed:
        raise _error(f"auth_pad_length {pad} reaches into the PDU's fixed fields")
    verifier = AuthVerifier(
        auth_type=auth_type,
        auth_level=auth_level,
        auth_pad_length=pad,
        auth_reserved=reserved,
        auth_context_id=context_id,
        auth_value=bytes(buf[trailer + SEC_TRAILER_LENGTH : end]),
    )
    return body_end, verifier


def _uuid(buf: bytes, pos: int, big: bool) -> UUID:
    raw = bytes(buf[pos : pos + 16])
    return UUID(bytes=raw) if big else UUID(bytes_le=raw)


def _syntax(buf: bytes, pos: int, big: bool) -> SyntaxId:
    (version,) = _U32[big].unpack_from(buf, pos + 16)
    return SyntaxId(_uuid(buf, pos, big), version & 0xFFFF, version >> 16)


def request_fields(
    buf: bytes, off: int, h: Header
) -> tuple[int, int, int, UUID | None, int, int, AuthVerifier | None]:
    """(alloc_hint, p_cont_id, opnum, object, stub_start, stub_end, verifier) of a request."""
    fixed = 40 if h.pfc_flags & _OBJECT_UUID else 24
    body_end, verifier = _split_auth(buf, off, h, fixed)
    alloc_hint, p_cont_id, opnum = _REQ[h.big_endian].unpack_from(buf, off + 16)
    obj = _uuid(buf, off + 24, h.big_endian) if fixed == 40 else None
    return alloc_hint, p_cont_id, opnum, obj, off + fixed, body_end, verifier


def response_fields(
    buf: bytes, off: int, h: Header
) -> tuple[int, int, int, int, int, AuthVerifier | None]:
    """(alloc_hint, p_cont_id, cancel_count, stub_start, stub_end, verifier) of a response."""
    body_end, verifier = _split_auth(buf, off, h, 24)
    alloc_hint, p_cont_id, cancel_count = _RESP[h.big_endian].unpack_from(buf, off + 16)
    return alloc_hint, p_cont_id, cancel_count, off + 24, body_end, verifier


def fault_fields(
    buf: bytes, off: int, h: Header
) -> tuple[int, int, int, int, int, int, int, AuthVerifier | None]:
    """(alloc_hint, p_cont_id, cancel_count, fault_flags, status, stub_start, stub_end, verifier).

    Accepts 28-byte faults (impacket); a standard fault is 32 bytes [MS-RPCE §2.2.2.8].
    """
    fixed = 32 if h.frag_length >= 32 or h.auth_length else 28
    body_end, verifier = _split_auth(buf, off, h, fixed)
    alloc_hint, p_cont_id, cancel_count, flags, status = _FAULT[h.big_endian].unpack_from(
        buf, off + 16
    )
    return alloc_hint, p_cont_id, cancel_count, flags, status, off + fixed, body_end, verifier


def _bind_body(
    buf: bytes, off: int, h: Header
) -> tuple[int, int, int, tuple[ContextElement, ...], AuthVerifier | None]:
    big = h.big_endian
    body_end, verifier = _split_auth(buf, off, h, 28)
    max_xmit, max_recv, assoc, n_context_elem = _BIND[big].unpack_from(buf, off + 16)
    pos = off + 28
    contexts = []
    for _ in range(n_context_elem):
        if pos + 24 > body_end:
            raise _error("p_cont_list runs past the end of the PDU")
        p_cont_id, n_transfer_syn = _CTX[big].unpack_from(buf, pos)
        end = pos + 24 + 20 * n_transfer_syn
        if end > body_end:
            raise _error("p_cont_elem transfer syntaxes run past the end of the PDU")
        abstract = _syntax(buf, pos + 4, big)
        transfer = tuple(_syntax(buf, p, big) for p in range(pos + 24, end, 20))
        contexts.append(ContextElement(p_cont_id, abstract, transfer))
        pos = end
    return max_xmit, max_recv, assoc, tuple(contexts), verifier


def _ack_body(
    buf: bytes, off: int, h: Header
) -> tuple[int, int, int, bytes, tuple[ContextResult, ...], AuthVerifier | None]:
    big = h.big_endian
    body_end, verifier = _split_auth(buf, off, h, 28)
    max_xmit, max_recv, assoc, sec_addr_len = _ACK[big].unpack_from(buf, off + 16)
    addr_end = off + 26 + sec_addr_len
    # The result list starts 4-byte aligned counted from the start of the PDU [C706 §12.6.4.4].
    pos = off + ((addr_end - off + 3) & ~3)
    if pos + 4 > body_end:
        raise _error("bind_ack sec_addr runs past the end of the PDU")
    sec_addr = bytes(buf[off + 26 : addr_end])
    n_results = buf[pos]
    pos += 4
    if pos + 24 * n_results > body_end:
        raise _error("bind_ack p_result_list runs past the end of the PDU")
    rs = _RESULT[big]
    results = []
    for p in range(pos, pos + 24 * n_results, 24):
        result, reason = rs.unpack_from(buf, p)
        results.append(ContextResult(result, reason, _syntax(buf, p + 4, big)))
    return max_xmit, max_recv, assoc, sec_addr, tuple(results), verifier


class _Common(TypedDict):
    call_id: int
    pfc_flags: int
    rpc_vers_minor: int
    drep: bytes


def _no_auth(h: Header) -> None:
    if h.auth_length:
        raise _error(f"PTYPE {h.ptype} carries no auth verifier but auth_length={h.auth_length}")


def parse_pdu_at(buf: bytes, off: int, h: Header) -> Pdu:
    """Parse the PDU whose header ``h`` was decoded at ``off``; ``buf`` holds all of it."""
    check_version(h)
    if len(buf) - off < h.frag_length:
        raise _error(f"truncated PDU: {len(buf) - off} of {h.frag_length} bytes")
    ptype, big = h.ptype, h.big_endian
    common: _Common = {
        "call_id": h.call_id,
        "pfc_flags": h.pfc_flags,
        "rpc_vers_minor": h.rpc_vers_minor,
        "drep": h.drep,
    }
    if ptype == PType.REQUEST:
        alloc_hint, p_cont_id, opnum, obj, start, end, verifier = request_fields(buf, off, h)
        return Request(
            p_cont_id=p_cont_id,
            opnum=opnum,
            stub=bytes(buf[start:end]),
            alloc_hint=alloc_hint,
            object=obj,
            auth_verifier=verifier,
            **common,
        )
    if ptype == PType.RESPONSE:
        alloc_hint, p_cont_id, cancel_count, start, end, verifier = response_fields(buf, off, h)
        return Response(
            p_cont_id=p_cont_id,
            stub=bytes(buf[start:end]),
            alloc_hint=alloc_hint,
            cancel_count=cancel_count,
            auth_verifier=verifier,
            **common,
        )
    if ptype == PType.FAULT:
        alloc_hint, p_cont_id, cancel, flags, status, start, end, verifier = fault_fields(
            buf, off, h
        )
        return Fault(
            status=status,
            p_cont_id=p_cont_id,
            alloc_hint=alloc_hint,
            cancel_count=cancel,
            fault_flags=flags,
            stub=bytes(buf[start:end]),
            auth_verifier=verifier,
            **common,
        )
    if ptype == PType.BIND or ptype == PType.ALTER_CONTEXT:
        max_xmit, max_recv, assoc, contexts, verifier = _bind_body(buf, off, h)
        cls = Bind if ptype == PType.BIND else AlterContext
        return cls(
            max_xmit_frag=max_xmit,
            max_recv_frag=max_recv,
            assoc_group_id=assoc,
            contexts=contexts,
            auth_verifier=verifier,
            **common,
        )
    if ptype == PType.BIND_ACK or ptype == PType.ALTER_CONTEXT_RESP:
        max_xmit, max_recv, assoc, sec_addr, results, verifier = _ack_body(buf, off, h)
        ack_cls = BindAck if ptype == PType.BIND_ACK else AlterContextResp
        return ack_cls(
            max_xmit_frag=max_xmit,
            max_recv_frag=max_recv,
            assoc_group_id=assoc,
            sec_addr=sec_addr,
            results=results,
            auth_verifier=verifier,
            **common,
        )
    if ptype == PType.BIND_NAK:
        _no_auth(h)
        if h.frag_length < 19:
            raise _error(f"bind_nak: frag_length {h.frag_length} < 19")
        reason, n_protocols = _NAK[big].unpack_from(buf, off + 16)
        vend = off + 19 + 2 * n_protocols
        if vend > off + h.frag_length:
            raise _error("bind_nak versions run past the end of the PDU")
        versions = tuple((buf[p], buf[p + 1]) for p in range(off + 19, vend, 2))
        trailing = bytes(buf[vend : off + h.frag_length])
        return BindNak(
            provider_reject_reason=reason, versions=versions, trailing=trailing, **common
        )
    if ptype == PType.AUTH3:
        if not h.auth_length:
            raise _error("rpc_auth_3 with auth_length 0 [MS-RPCE §2.2.2.10]")
        _end, auth3_verifier = _split_auth(buf, off, h, 20)
        assert auth3_verifier is not None
        return Auth3(auth_verifier=auth3_verifier, pad=bytes(buf[off + 16 : off + 20]), **common)
    if ptype == PType.SHUTDOWN:
        _no_auth(h)
        if h.frag_length != COMMON_HEADER_LENGTH:
            raise _error(f"shutdown: frag_length {h.frag_length}, the PDU is header only")
        return Shutdown(**common)
    # co_cancel / orphaned: header plus an optional auth verifier.
    _end, verifier = _split_auth(buf, off, h, COMMON_HEADER_LENGTH)
    cancel_cls = CoCancel if ptype == PType.CO_CANCEL else Orphaned
    return cancel_cls(auth_verifier=verifier, **common)


def parse_pdu(data: Buffer) -> Pdu:
    """Parse exactly one PDU. Raises RemoteProtocolError (only) if ``data`` is not one."""
    buf = data if isinstance(data, bytes) else bytes(data)
    h = decode_header(buf, 0)
    if h.frag_length != len(buf):
        raise _error(f"frag_length {h.frag_length} but {len(buf)} bytes were given")
    return parse_pdu_at(buf, 0, h)


# ---------------------------------------------------------------------------------------------
# Building


def _big(drep: bytes) -> bool:
    if len(drep) != 4 or drep[0] >> 4 > 1:
        raise LocalProtocolError(f"unsupported drep {drep!r}")
    return drep[0] >> 4 == 0


def _syntax_bytes(s: SyntaxId, big: bool) -> bytes:
    return (s.uuid.bytes if big else s.uuid.bytes_le) + _U32[big].pack(s.major | s.minor << 16)


def _auth_tail(v: AuthVerifier, big: bool) -> bytes:
    return (
        bytes(v.auth_pad_length)
        + _TRAILER[big].pack(
            v.auth_type, v.auth_level, v.auth_pad_length, v.auth_reserved, v.auth_context_id
        )
        + v.auth_value
    )


def _finish(
    pdu: Pdu,
    flags: int,
    body: bytes,
    verifier: AuthVerifier | None,
    big: bool,
) -> bytes:
    tail = b"" if verifier is None else _auth_tail(verifier, big)
    auth_length = 0 if verifier is None else len(verifier.auth_value)
    frag_length = COMMON_HEADER_LENGTH + len(body) + len(tail)
    if frag_length > 0xFFFF:
        raise LocalProtocolError(f"{type(pdu).__name__} of {frag_length} bytes needs fragments")
    header = _HDR[big].pack(
        5, pdu.rpc_vers_minor, pdu.ptype, flags, pdu.drep, frag_length, auth_length, pdu.call_id
    )
    return header + body + tail


def _build_request(p: Request, big: bool) -> bytes:
    alloc_hint = len(p.stub) if p.alloc_hint is None else p.alloc_hint
    flags = p.pfc_flags & ~_OBJECT_UUID
    body = _REQ[big].pack(alloc_hint, p.p_cont_id, p.opnum)
    if p.object is not None:
        flags |= _OBJECT_UUID
        body += p.object.bytes if big else p.object.bytes_le
    return _finish(p, flags, body + p.stub, p.auth_verifier, big)


def _build_response(p: Response, big: bool) -> bytes:
    alloc_hint = len(p.stub) if p.alloc_hint is None else p.alloc_hint
    body = _RESP[big].pack(alloc_hint, p.p_cont_id, p.cancel_count) + p.stub
    return _finish(p, p.pfc_flags, body, p.auth_verifier, big)


def _build_fault(p: Fault, big: bool) -> bytes:
    body = (
        _FAULT[big].pack(p.alloc_hint, p.p_cont_id, p.cancel_count, p.fault_flags, p.status)
        + bytes(4)
        + p.stub
    )
    return _finish(p, p.pfc_flags, body, p.auth_verifier, big)


def _build_bind(p: Bind | AlterContext, big: bool) -> bytes:
    parts = [_BIND[big].pack(p.max_xmit_frag, p.max_recv_frag, p.assoc_group_id, len(p.contexts))]
    for c in p.contexts:
        parts.append(_CTX[big].pack(c.p_cont_id, len(c.transfer_syntaxes)))
        parts.append(_syntax_bytes(c.abstract_syntax, big))
        parts.extend(_syntax_bytes(t, big) for t in c.transfer_syntaxes)
    return _finish(p, p.pfc_flags, b"".join(parts), p.auth_verifier, big)


def _build_ack(p: BindAck | AlterContextResp, big: bool) -> bytes:
    head = _ACK[big].pack(p.max_xmit_frag, p.max_recv_frag, p.assoc_group_id, len(p.sec_addr))
    pad = -(26 + len(p.sec_addr)) % 4
    parts = [head, p.sec_addr, bytes(pad), bytes((len(p.results), 0, 0, 0))]
    for r in p.results:
        parts.append(_RESULT[big].pack(r.result, r.reason))
        parts.append(_syntax_bytes(r.transfer_syntax, big))
    return _finish(p, p.pfc_flags, b"".join(parts), p.auth_verifier, big)


def _build_nak(p: BindNak, big: bool) -> bytes:
    body = _NAK[big].pack(p.provider_reject_reason, len(p.versions))
    body += bytes(b for version in p.versions for b in version) + p.trailing
    return _finish(p, p.pfc_flags, body, None, big)


def _build_auth3(p: Auth3, big: bool) -> bytes:
    if len(p.pad) != 4:
        raise LocalProtocolError("rpc_auth_3 pad must be 4 bytes")
    return _finish(p, p.pfc_flags, p.pad, p.auth_verifier, big)


def _build_header_only(p: Shutdown | CoCancel | Orphaned, big: bool) -> bytes:
    return _finish(p, p.pfc_flags, b"", getattr(p, "auth_verifier", None), big)


_BUILDERS: dict[type, Callable[..., bytes]] = {
    Request: _build_request,
    Response: _build_response,
    Fault: _build_fault,
    Bind: _build_bind,
    AlterContext: _build_bind,
    BindAck: _build_ack,
    AlterContextResp: _build_ack,
    BindNak: _build_nak,
    Auth3: _build_auth3,
    Shutdown: _build_header_only,
    CoCancel: _build_header_only,
    Orphaned: _build_header_only,
}


def build_pdu(pdu: Pdu) -> bytes:
    """Serialize one PDU; frag_length and auth_length are computed (rpc #43)."""
    builder = _BUILDERS.get(type(pdu))
    if builder is None:
        raise LocalProtocolError(f"not a PDU: {pdu!r}")
    try:
        return builder(pdu, _big(pdu.drep))
    except (struct.error, OverflowError, ValueError) as exc:
        raise LocalProtocolError(f"cannot build {type(pdu).__name__}: {exc}") from exc
