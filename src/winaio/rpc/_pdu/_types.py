"""Connection-oriented DCE/RPC PDUs: constants and one frozen dataclass per PDU type.

Purpose: name every field of the 13 connection-oriented PDUs exactly as [C706 §12.6] and
[MS-RPCE §2.2.2] do (in snake_case), so that a dataclass can be read side by side with the spec
table. Parsing and building live in :mod:`._pdu_codec`; the fast paths used by the connection
state machines live in :mod:`._fragment`.

Rules and invariants:
- Sans-I/O and dependency-free: stdlib only (no socket/asyncio/threading/time).
- Fields hold plain ``int``/``bytes`` values (what the wire carries), not enum members: building
  an ``IntFlag`` per parsed PDU would cost more than parsing it. Compare them with the enums
  below, which are ``int`` subclasses.
- ``rpc_vers`` (always 5), ``ptype``, ``frag_length`` and ``auth_length`` are not stored: the
  first two are class constants, the last two are derived from the other fields when the PDU is
  built, so a PDU object can never disagree with the bytes it turns into (acceptance rpc #43).
- ``drep`` is kept as the 4 raw bytes. Multi-byte integers honour its integer representation
  on parse *and* on build; ``NDR_LOCAL_DREP`` (``10 00 00 00``, little-endian/ASCII/IEEE) is
  the default and the only one we send [C706 §14.2.5].
- Reserved fields and padding are not stored: parse ignores their values, build writes zeros
  ([C706 §12.6.3]: "reserved ... must be zero on send, ignored on receipt"). Parse followed by
  build is therefore byte-exact for every PDU whose reserved/pad bytes are zero (all PDUs that
  Windows, Samba, impacket and winaio produce, except impacket's non-zero auth padding).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final, TypeAlias
from uuid import UUID

__all__ = [
    "COMMON_HEADER_LENGTH",
    "FAULT_LENGTH",
    "MAX_FRAG_SIZE",
    "MUST_RECV_FRAG_SIZE",
    "NDR_LOCAL_DREP",
    "REQUEST_HEADER_LENGTH",
    "RESPONSE_HEADER_LENGTH",
    "RPC_VERS",
    "RPC_VERS_MINOR",
    "SEC_TRAILER_LENGTH",
    "BindTimeFeatures",
    "ContDefResult",
    "PType",
    "PfcFlags",
    "ProviderReason",
    "RejectReason",
    "SyntaxId",
    "NDR20_SYNTAX",
    "NDR64_SYNTAX",
    "NULL_SYNTAX",
    "BTFN_UUID_PREFIX",
    "bind_time_feature_syntax",
    "bind_time_features_of",
    "ContextElement",
    "ContextResult",
    "AuthVerifier",
    "Request",
    "Response",
    "Fault",
    "Bind",
    "BindAck",
    "BindNak",
    "AlterContext",
    "AlterContextResp",
    "Auth3",
    "Shutdown",
    "CoCancel",
    "Orphaned",
    "Pdu",
]

RPC_VERS: Final = 5
RPC_VERS_MINOR: Final = 0
#: packed_drep for little-endian integers, ASCII characters, IEEE floats [C706 §14.2.5].
NDR_LOCAL_DREP: Final = b"\x10\x00\x00\x00"
COMMON_HEADER_LENGTH: Final = 16
REQUEST_HEADER_LENGTH: Final = 24  # 40 with PFC_OBJECT_UUID
RESPONSE_HEADER_LENGTH: Final = 24
#: A fault PDU without stub data is exactly 32 bytes [MS-RPCE §2.2.2.8] (rpc #60).
FAULT_LENGTH: Final = 32
SEC_TRAILER_LENGTH: Final = 8
#: C706 must_recv_frag_size: every implementation must accept fragments of this size.
MUST_RECV_FRAG_SIZE: Final = 1432
#: Largest fragment Windows, Wine and Samba negotiate on ncacn_ip_tcp (DCERPC_FRAG_MAX_SIZE).
MAX_FRAG_SIZE: Final = 5840


class PType(enum.IntEnum):
    """PTYPE, octet 2 of the common header [C706 §12.6.3.1], [MS-RPCE §2.2.2.10]."""

    REQUEST = 0
    PING = 1
    RESPONSE = 2
    FAULT = 3
    WORKING = 4
    NOCALL = 5
    REJECT = 6
    ACK = 7
    CL_CANCEL = 8
    FACK = 9
    CANCEL_ACK = 10
    BIND = 11
    BIND_ACK = 12
    BIND_NAK = 13
    ALTER_CONTEXT = 14
    ALTER_CONTEXT_RESP = 15
    AUTH3 = 16
    SHUTDOWN = 17
    CO_CANCEL = 18
    ORPHANED = 19
    RTS = 20


class PfcFlags(enum.IntFlag):
    """pfc_flags, octet 3 of the common header [C706 §12.6.3.1].

    0x04 is PFC_PENDING_CANCEL, except in bind/bind_ack/alter_context/alter_context_resp/auth3
    where it means PFC_SUPPORT_HEADER_SIGN [MS-RPCE §2.2.2.3].
    """

    PFC_FIRST_FRAG = 0x01
    PFC_LAST_FRAG = 0x02
    PFC_PENDING_CANCEL = 0x04
    PFC_SUPPORT_HEADER_SIGN = 0x04
    PFC_RESERVED_1 = 0x08
    PFC_CONC_MPX = 0x10
    PFC_DID_NOT_EXECUTE = 0x20
    PFC_MAYBE = 0x40
    PFC_OBJECT_UUID = 0x80


class ContDefResult(enum.IntEnum):
    """p_cont_def_result_t: the ``result`` of a p_result_t [C706 §12.6.3.1], [MS-RPCE §2.2.2.4]."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    PROVIDER_REJECTION = 2
    NEGOTIATE_ACK = 3


class ProviderReason(enum.IntEnum):
    """p_provider_reason_t: the ``reason`` of a rejected p_result_t [C706 §12.6.3.1]."""

    REASON_NOT_SPECIFIED = 0
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 1
    PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED = 2
    LOCAL_LIMIT_EXCEEDED = 3


class RejectReason(enum.IntEnum):
    """p_reject_reason_t, bind_nak's provider_reject_reason [C706 §12.6.3.1], [MS-RPCE §2.2.2.5]."""

    REASON_NOT_SPECIFIED = 0
    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2
    CALLED_PADDR_UNKNOWN = 3
    PROTOCOL_VERSION_NOT_SUPPORTED = 4
    DEFAULT_CONTEXT_NOT_SUPPORTED = 5
    USER_DATA_NOT_READABLE = 6
    NO_PSAP_AVAILABLE = 7
    AUTHENTICATION_TYPE_NOT_RECOGNIZED = 8
    INVALID_CHECKSUM = 9


class BindTimeFeatures(enum.IntFlag):
    """BindTimeFeatureNegotiationBitmask bits [MS-RPCE §2.2.2.14, §2.2.2.15]."""

    SECURITY_CONTEXT_MULTIPLEXING_SUPPORTED = 0x01
    KEEP_CONNECTION_ON_ORPHAN_SUPPORTED = 0x02


@dataclass(frozen=True, slots=True)
class SyntaxId:
    """p_syntax_id_t / RPC_SYNTAX_IDENTIFIER: an interface or transfer syntax and its version.

    On the wire: the UUID (fields in drep byte order) then ``u32 if_version`` whose low 16 bits
    are the major and high 16 bits the minor version [C706 §12.6.3.1], [MS-RPCE §2.2.2.7].
    """

    uuid: UUID
    major: int
    minor: int = 0

    def __str__(self) -> str:
        return f"{self.uuid} v{self.major}.{self.minor}"


#: NDR 2.0 transfer syntax [C706 §14], [MS-RPCE §2.2.4.12].
NDR20_SYNTAX: Final = SyntaxId(UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2, 0)
#: NDR64 transfer syntax [MS-RPCE §2.2.5.1] (not supported by winaio v1: rejected, reason 2).
NDR64_SYNTAX: Final = SyntaxId(UUID("71710533-beba-4937-8319-b5dbef9ccc36"), 1, 0)
#: All-zero syntax, used in p_result_t of rejected and negotiate_ack elements.
NULL_SYNTAX: Final = SyntaxId(UUID(int=0), 0, 0)
#: First 8 bytes (big-endian UUID form) of a bind time feature negotiation "transfer syntax":
#: 6cb71c2c-9812-4540-xxxx-xxxxxxxxxxxx [MS-RPCE §3.3.1.5.3].
BTFN_UUID_PREFIX: Final = bytes.fromhex("6cb71c2c98124540")


def bind_time_feature_syntax(features: int) -> SyntaxId:
    """The transfer syntax a client proposes to offer bind time features [MS-RPCE §3.3.1.5.3].

    The 8 octets after the prefix are the BindTimeFeatureNegotiationBitmask; ``features`` is
    that bitmask read as a little-endian integer (so bit 0 of octet 0 is bit 0x01).
    """
    return SyntaxId(UUID(bytes=BTFN_UUID_PREFIX + features.to_bytes(8, "little")), 1, 0)


def bind_time_features_of(syntax: SyntaxId) -> int | None:
    """The feature bitmask if ``syntax`` is a bind time feature element (version 1.0), else None."""
    raw = syntax.uuid.bytes
    if raw[:8] != BTFN_UUID_PREFIX or syntax.major != 1 or syntax.minor != 0:
        return None
    return int.from_bytes(raw[8:], "little")


@dataclass(frozen=True, slots=True)
class ContextElement:
    """p_cont_elem_t: one proposed presentation context of a bind/alter_context [C706 §12.6.3.1]."""

    p_cont_id: int
    abstract_syntax: SyntaxId
    transfer_syntaxes: tuple[SyntaxId, ...]


@dataclass(frozen=True, slots=True)
class ContextResult:
    """p_result_t: the answer to one ContextElement, in the same position [MS-RPCE §3.3.1.5.3].

    For ``NEGOTIATE_ACK`` the ``reason`` field carries the
    BindTimeFeatureNegotiationResponseBitmask and ``transfer_syntax`` is all zero.
    """

    result: int
    reason: int
    transfer_syntax: SyntaxId


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthVerifier:
    """auth_verifier_co_t: [auth pad][sec_trailer][auth_value] at the end of a PDU.

    Field names follow the MS sec_trailer [MS-RPCE §2.2.2.11]; ``auth_value`` is the token
    ([C706 §12.6.3.1]), whose length is the header's ``auth_length``. The ``auth_pad_length``
    padding octets precede the sec_trailer (MS aligns it to 16, C706 and impacket to 4; a
    receiver must rely on the field, never on an alignment). On build they are written as zeros.
    """

    auth_type: int
    auth_level: int
    auth_pad_length: int = 0
    auth_reserved: int = 0
    auth_context_id: int = 0
    auth_value: bytes = b""


_FIRST_LAST: Final = 0x03


class _PduBase:
    """Properties shared by every PDU dataclass (they all carry the common-header fields)."""

    __slots__ = ()
    ptype: ClassVar[PType]
    rpc_vers: ClassVar[int] = RPC_VERS

    @property
    def frag_length(self) -> int:
        """Length of the built PDU (header, body, auth padding, sec_trailer and token)."""
        from ._codec import build_pdu

        return len(build_pdu(self))  # type: ignore[arg-type]

    @property
    def auth_length(self) -> int:
        """Length of the auth token only (the 8-byte sec_trailer is not counted)."""
        verifier: AuthVerifier | None = getattr(self, "auth_verifier", None)
        return 0 if verifier is None else len(verifier.auth_value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(_PduBase):
    """request PDU (ptype 0) [C706 §12.6.4.9]: 24-byte header, 40 with an object UUID.

    ``alloc_hint=None`` builds ``len(stub)``. ``object`` is present exactly when pfc_flags has
    PFC_OBJECT_UUID; build sets or clears that flag from ``object``.
    """

    ptype: ClassVar[PType] = PType.REQUEST
    call_id: int
    p_cont_id: int
    opnum: int
    stub: bytes = b""
    alloc_hint: int | None = None
    object: UUID | None = None
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(_PduBase):
    """response PDU (ptype 2) [C706 §12.6.4.10]: 24-byte header then stub data."""

    ptype: ClassVar[PType] = PType.RESPONSE
    call_id: int
    p_cont_id: int
    stub: bytes = b""
    alloc_hint: int | None = None
    cancel_count: int = 0
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault(_PduBase):
    """fault PDU (ptype 3) [C706 §12.6.4.7], [MS-RPCE §2.2.2.8]: 32 bytes without stub.

    ``fault_flags`` is the octet C706 calls ``reserved``: MS uses bit 0 to flag extended error
    information in ``stub``. Servers must not send other stub data, clients must ignore it.
    """

    ptype: ClassVar[PType] = PType.FAULT
    call_id: int
    status: int
    p_cont_id: int = 0
    alloc_hint: int = 0
    cancel_count: int = 0
    fault_flags: int = 0
    stub: bytes = b""
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class Bind(_PduBase):
    """bind PDU (ptype 11) [C706 §12.6.4.3]: frag sizes, association group, p_cont_list."""

    ptype: ClassVar[PType] = PType.BIND
    call_id: int
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int = 0
    contexts: tuple[ContextElement, ...] = ()
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterContext(_PduBase):
    """alter_context PDU (ptype 14) [C706 §12.6.4.1]: same body as bind."""

    ptype: ClassVar[PType] = PType.ALTER_CONTEXT
    call_id: int
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int = 0
    contexts: tuple[ContextElement, ...] = ()
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindAck(_PduBase):
    """bind_ack PDU (ptype 12) [C706 §12.6.4.4].

    ``sec_addr`` holds exactly the ``sec_addr_len`` octets of port_any_t, NUL included
    (``b"5000\\x00"``; ``b""`` for length 0). The result list that follows is padded to a
    4-byte boundary counted from the start of the PDU (rpc #46).
    """

    ptype: ClassVar[PType] = PType.BIND_ACK
    call_id: int
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    sec_addr: bytes = b"\x00"
    results: tuple[ContextResult, ...] = ()
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterContextResp(_PduBase):
    """alter_context_resp PDU (ptype 15) [C706 §12.6.4.2]: bind_ack's body, sec_addr_len 0."""

    ptype: ClassVar[PType] = PType.ALTER_CONTEXT_RESP
    call_id: int
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    sec_addr: bytes = b""
    results: tuple[ContextResult, ...] = ()
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindNak(_PduBase):
    """bind_nak PDU (ptype 13) [C706 §12.6.4.5], [MS-RPCE §2.2.2.9].

    ``versions`` is p_rt_versions_supported_t as (major, minor) pairs. ``trailing`` keeps any
    octets after it: Samba pads with 3 zeros, Windows may append a Signature UUID and
    extended error information there (clients may ignore both).
    """

    ptype: ClassVar[PType] = PType.BIND_NAK
    call_id: int
    provider_reject_reason: int
    versions: tuple[tuple[int, int], ...] = ((RPC_VERS, RPC_VERS_MINOR),)
    trailing: bytes = b""
    pfc_flags: int = _FIRST_LAST
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth3(_PduBase):
    """rpc_auth_3 PDU (ptype 16) [MS-RPCE §2.2.2.10]: 4 arbitrary pad octets then the verifier."""

    ptype: ClassVar[PType] = PType.AUTH3
    call_id: int
    auth_verifier: AuthVerifier
    pad: bytes = b"\x00\x00\x00\x00"
    pfc_flags: int = _FIRST_LAST
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(_PduBase):
    """shutdown PDU (ptype 17): header only, 16 bytes [C706 §12.6.4.11], [MS-RPCE §3.3.3.4.2]."""

    ptype: ClassVar[PType] = PType.SHUTDOWN
    call_id: int = 0
    pfc_flags: int = _FIRST_LAST
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class CoCancel(_PduBase):
    """cancel PDU (ptype 18) [C706 §12.6.4.6]: header (+ optional verifier); call_id = target."""

    ptype: ClassVar[PType] = PType.CO_CANCEL
    call_id: int
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


@dataclass(frozen=True, slots=True, kw_only=True)
class Orphaned(_PduBase):
    """orphaned PDU (ptype 19) [C706 §12.6.4.8]: the client abandons call ``call_id``."""

    ptype: ClassVar[PType] = PType.ORPHANED
    call_id: int
    pfc_flags: int = _FIRST_LAST
    auth_verifier: AuthVerifier | None = None
    rpc_vers_minor: int = RPC_VERS_MINOR
    drep: bytes = NDR_LOCAL_DREP


Pdu: TypeAlias = (
    Request
    | Response
    | Fault
    | Bind
    | BindAck
    | BindNak
    | AlterContext
    | AlterContextResp
    | Auth3
    | Shutdown
    | CoCancel
    | Orphaned
)
