"""PDU codec: header validation, every PDU type, sec_trailer handling, drep byte order."""

from __future__ import annotations

import struct
from uuid import UUID

import pytest

from winaio.codes import NcaStatus
from winaio.errors import LocalProtocolError, RemoteProtocolError
from winaio.rpc._pdu import (
    BTFN_UUID_PREFIX,
    NDR20_SYNTAX,
    NDR64_SYNTAX,
    NULL_SYNTAX,
    AlterContext,
    AlterContextResp,
    Auth3,
    AuthVerifier,
    Bind,
    BindAck,
    BindNak,
    BindTimeFeatures,
    CoCancel,
    ContDefResult,
    ContextElement,
    ContextResult,
    Fault,
    Orphaned,
    PfcFlags,
    ProviderReason,
    PType,
    RejectReason,
    Request,
    Response,
    Shutdown,
    SyntaxId,
    bind_time_feature_syntax,
    bind_time_features_of,
    build_pdu,
    decode_header,
    parse_pdu,
)

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
OTHER = SyntaxId(UUID("60a15ec5-4de8-11d7-a637-005056a20182"), 1, 0)
BE = b"\x00\x00\x00\x00"
VERIFIER = AuthVerifier(
    auth_type=10, auth_level=2, auth_pad_length=0, auth_context_id=79231, auth_value=b"T" * 16
)

ALL_PDUS = [
    Request(call_id=7, p_cont_id=1, opnum=3, stub=b"abcdefgh", alloc_hint=8),
    Request(
        call_id=7, p_cont_id=1, opnum=3, stub=b"x", object=UUID(int=5), alloc_hint=0, pfc_flags=0x83
    ),
    Response(call_id=7, p_cont_id=1, stub=b"1234", cancel_count=2, pfc_flags=1, alloc_hint=9),
    Fault(call_id=9, status=5, p_cont_id=2, cancel_count=1),
    Fault(call_id=9, status=5, fault_flags=1, stub=b"EEINFO", alloc_hint=38),
    Bind(
        call_id=1,
        max_xmit_frag=5840,
        max_recv_frag=5840,
        assoc_group_id=0x1234,
        contexts=(
            ContextElement(0, IFACE, (NDR20_SYNTAX,)),
            ContextElement(1, IFACE, (NDR64_SYNTAX, NDR20_SYNTAX)),
            ContextElement(2, IFACE, (bind_time_feature_syntax(3),)),
        ),
        pfc_flags=0x13,
    ),
    AlterContext(
        call_id=2, max_xmit_frag=4280, max_recv_frag=4280, contexts=(ContextElement(5, OTHER, ()),)
    ),
    BindAck(
        call_id=1,
        max_xmit_frag=5840,
        max_recv_frag=4280,
        assoc_group_id=0xDEADBEEF,
        sec_addr=b"49668\x00",
        results=(
            ContextResult(ContDefResult.ACCEPTANCE, 0, NDR20_SYNTAX),
            ContextResult(
                ContDefResult.PROVIDER_REJECTION,
                ProviderReason.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED,
                NULL_SYNTAX,
            ),
            ContextResult(ContDefResult.NEGOTIATE_ACK, 2, NULL_SYNTAX),
        ),
    ),
    BindAck(call_id=1, max_xmit_frag=5840, max_recv_frag=5840, assoc_group_id=1, sec_addr=b""),
    AlterContextResp(call_id=3, max_xmit_frag=5840, max_recv_frag=5840, assoc_group_id=1),
    BindNak(call_id=1, provider_reject_reason=RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED),
    BindNak(call_id=1, provider_reject_reason=0, versions=((5, 0), (5, 1)), trailing=b"\0\0\0"),
    Auth3(call_id=3, auth_verifier=VERIFIER, pad=b"    "),
    Shutdown(),
    CoCancel(call_id=12),
    Orphaned(call_id=12),
    CoCancel(call_id=12, auth_verifier=VERIFIER),
    Request(call_id=8, p_cont_id=0, opnum=1, stub=b"abc", auth_verifier=VERIFIER, alloc_hint=3),
]


@pytest.mark.parametrize("pdu", ALL_PDUS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("drep", [b"\x10\x00\x00\x00", BE], ids=["LE", "BE"])
def test_every_pdu_round_trips_in_both_byte_orders(pdu: object, drep: bytes) -> None:
    # spec: rpc #43 (frag_length/auth_length derived), B1 (honour drep big-endian)
    from dataclasses import replace

    pdu = replace(pdu, drep=drep)  # type: ignore[type-var]
    data = build_pdu(pdu)  # type: ignore[arg-type]
    h = decode_header(data)
    assert (h.rpc_vers, h.rpc_vers_minor, h.frag_length, h.drep) == (5, 0, len(data), drep)
    assert h.auth_length == pdu.auth_length  # type: ignore[attr-defined]
    assert h.big_endian == (drep == BE)
    assert parse_pdu(data) == pdu
    assert build_pdu(parse_pdu(data)) == data


def test_big_endian_fields_are_read_big_endian() -> None:
    data = build_pdu(Request(call_id=0x01020304, p_cont_id=5, opnum=6, stub=b"z", drep=BE))
    assert data[8:10] == b"\x00\x19" and data[12:16] == b"\x01\x02\x03\x04"
    assert data[20:24] == b"\x00\x05\x00\x06"
    syntax = build_pdu(
        Bind(
            call_id=1,
            max_xmit_frag=1,
            max_recv_frag=2,
            drep=BE,
            contexts=(ContextElement(0, IFACE, ()),),
        )
    )[32:52]
    # UUID fields and if_version (major in the low 16 bits) in big-endian order.
    assert syntax == IFACE.uuid.bytes + b"\x00\x00\x00\x01"


def test_object_uuid_makes_a_40_byte_request_header() -> None:
    # spec: rpc #63
    obj = UUID("11223344-5566-7788-99aa-bbccddeeff00")
    data = build_pdu(Request(call_id=1, p_cont_id=0, opnum=0, stub=b"STUB", object=obj))
    assert data[3] & PfcFlags.PFC_OBJECT_UUID and len(data) == 44
    assert data[24:40] == obj.bytes_le and data[40:] == b"STUB"
    parsed = parse_pdu(data)
    assert isinstance(parsed, Request) and parsed.object == obj and parsed.stub == b"STUB"
    # The flag follows `object`: a stale flag without an object is cleared on build.
    plain = build_pdu(Request(call_id=1, p_cont_id=0, opnum=0, stub=b"S", pfc_flags=0x83))
    assert plain[3] == 0x03 and len(plain) == 25


@pytest.mark.parametrize("alignment", [4, 16])
@pytest.mark.parametrize("stub_len", [0, 1, 5, 8, 13])
def test_sec_trailer_padding_is_removed_at_any_alignment(alignment: int, stub_len: int) -> None:
    # spec: rpc #75 — receivers use auth_pad_length and never assume an alignment
    stub = bytes(range(stub_len))
    pad = -(24 + stub_len) % alignment if alignment == 4 else -stub_len % 16
    token = b"\xaa" * 12
    pdu = bytearray(struct.pack("<BBBBIHHIIHH", 5, 0, 0, 3, 0x10, 0, len(token), 4, stub_len, 0, 1))
    pdu += stub + b"\xbf" * pad  # non-zero pad values must be ignored
    pdu += struct.pack("<BBBBI", 9, 6, pad, 0, 77) + token
    struct.pack_into("<H", pdu, 8, len(pdu))
    parsed = parse_pdu(bytes(pdu))
    assert isinstance(parsed, Request)
    assert parsed.stub == stub
    assert parsed.auth_verifier == AuthVerifier(
        auth_type=9, auth_level=6, auth_pad_length=pad, auth_context_id=77, auth_value=token
    )
    assert parsed.auth_length == len(token)


def test_impacket_authenticated_request_parses() -> None:
    # spec: rpc #75 — impacket's own sec_trailer (4-byte alignment, 0xFF-style padding)
    from impacket.dcerpc.v5.rpcrt import SEC_TRAILER, DCERPC_RawCall

    stub = b"\x01\x02\x03\x04\x05"
    call = DCERPC_RawCall(4, stub)
    call["call_id"] = 9
    call["alloc_hint"] = len(stub)
    trailer = SEC_TRAILER()
    trailer["auth_type"], trailer["auth_level"], trailer["auth_pad_len"] = 10, 5, 3
    call["pad"] = b"\xbb" * 3
    call["sec_trailer"] = trailer
    call["auth_data"] = b"\x01" + b"\x00" * 15
    data = call.get_packet()
    parsed = parse_pdu(data)
    assert isinstance(parsed, Request)
    assert (parsed.call_id, parsed.opnum, parsed.stub) == (9, 4, stub)
    assert parsed.auth_verifier is not None and parsed.auth_verifier.auth_pad_length == 3
    assert parsed.auth_verifier.auth_context_id == 747920  # impacket's default


def _header(**kw: int) -> bytes:
    f = {"vers": 5, "minor": 0, "ptype": 17, "flags": 3, "frag": 16, "auth": 0, "call_id": 0}
    f.update(kw)
    return struct.pack(
        "<BBBB4sHHI",
        f["vers"],
        f["minor"],
        f["ptype"],
        f["flags"],
        b"\x10\0\0\0",
        f["frag"],
        f["auth"],
        f["call_id"],
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated"),
        (b"\x05\x00\x11\x03\x10\x00", "truncated"),
        (_header(vers=4), "version 4.0"),
        (_header(minor=2), "version 5.2"),
        (_header(ptype=1), "PTYPE 1"),
        (_header(ptype=99), "PTYPE 99"),
        (_header(frag=15), "shorter than the common header"),
        (_header(frag=17), "17 but 16 bytes"),
        (_header(ptype=0), "frag_length 16 < minimum 24"),
        (_header(ptype=17, auth=4, frag=16), "auth verifier"),
        (b"\x05\x00\x11\x03\x20\x00\x00\x00" + bytes(8), "data representation"),
        (b"\x05\x00\x11\x03\x10\x04\x00\x00" + bytes(8), "data representation"),
        (_header(ptype=0, frag=30, auth=4) + bytes(14), "does not fit"),
    ],
)
def test_malformed_headers_raise_remote_protocol_error(data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        parse_pdu(data)
    assert info.value.status == NcaStatus.NCA_S_PROTO_ERROR


def test_bind_with_foreign_version_carries_reject_reason_4() -> None:
    # spec: rpc #51 — the server answers this with bind_nak reason 4
    data = bytearray(build_pdu(Bind(call_id=1, max_xmit_frag=5840, max_recv_frag=5840)))
    data[0] = 4
    with pytest.raises(RemoteProtocolError) as info:
        parse_pdu(bytes(data))
    assert info.value.reject_reason == RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED
    data[0], data[2] = 4, PType.REQUEST
    with pytest.raises(RemoteProtocolError) as other:
        parse_pdu(bytes(data))
    assert other.value.reject_reason is None


def test_minor_version_1_is_accepted() -> None:
    pdu = Shutdown(rpc_vers_minor=1)
    assert parse_pdu(build_pdu(pdu)) == pdu


def test_body_overruns_are_remote_errors() -> None:
    bind = bytearray(
        build_pdu(
            Bind(
                call_id=1,
                max_xmit_frag=1,
                max_recv_frag=1,
                contexts=(ContextElement(0, IFACE, (NDR20_SYNTAX,)),),
            )
        )
    )
    bind[24] = 2  # two contexts announced, one present
    with pytest.raises(RemoteProtocolError, match="p_cont_list"):
        parse_pdu(bytes(bind))
    bind[24], bind[30] = 1, 2  # two transfer syntaxes announced, one present
    with pytest.raises(RemoteProtocolError, match="transfer syntaxes"):
        parse_pdu(bytes(bind))
    ack = bytearray(
        build_pdu(
            BindAck(call_id=1, max_xmit_frag=1, max_recv_frag=1, assoc_group_id=1, sec_addr=b"1\0")
        )
    )
    ack[24] = 200  # sec_addr_len past the end
    with pytest.raises(RemoteProtocolError, match="sec_addr"):
        parse_pdu(bytes(ack))
    ack[24], ack[28] = 2, 3  # three results announced, none present
    with pytest.raises(RemoteProtocolError, match="p_result_list"):
        parse_pdu(bytes(ack))
    nak = bytearray(build_pdu(BindNak(call_id=1, provider_reject_reason=0)))
    nak[18] = 5
    with pytest.raises(RemoteProtocolError, match="versions"):
        parse_pdu(bytes(nak))
    req = bytearray(
        build_pdu(Request(call_id=1, p_cont_id=0, opnum=0, stub=b"abc", auth_verifier=VERIFIER))
    )
    req[len(req) - 16 - 6] = 200  # auth_pad_length reaching into the header
    with pytest.raises(RemoteProtocolError, match="auth_pad_length"):
        parse_pdu(bytes(req))
    auth3 = bytearray(build_pdu(Auth3(call_id=1, auth_verifier=VERIFIER)))
    auth3[10:12] = b"\0\0"
    with pytest.raises(RemoteProtocolError, match="auth_length 0"):
        parse_pdu(bytes(auth3[: len(auth3)]))


def test_short_impacket_fault_is_accepted() -> None:
    # impacket's DCERPCServer answers an unknown opnum with a 28-byte fault (status 0x6E4).
    data = bytes.fromhex("05000303100000001c000000030000000000000000000700e4060000")
    fault = parse_pdu(data)
    assert isinstance(fault, Fault) and fault.status == 0x6E4 and fault.cancel_count == 7
    assert build_pdu(fault)[:24] != data[:24]  # rebuilt as a standard 32-byte fault
    assert len(build_pdu(fault)) == 32


def test_build_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(LocalProtocolError):
        build_pdu(Request(call_id=1, p_cont_id=70000, opnum=0))
    with pytest.raises(LocalProtocolError, match="needs fragments"):
        build_pdu(Request(call_id=1, p_cont_id=0, opnum=0, stub=bytes(70000)))
    with pytest.raises(LocalProtocolError, match="drep"):
        build_pdu(Shutdown(drep=b"\x20\0\0\0"))
    with pytest.raises(LocalProtocolError, match="pad"):
        build_pdu(Auth3(call_id=1, auth_verifier=VERIFIER, pad=b""))
    with pytest.raises(LocalProtocolError, match="not a PDU"):
        build_pdu("bind")  # type: ignore[arg-type]


def test_bind_time_feature_syntax_helpers() -> None:
    # spec: rpc #49 — 6cb71c2c-9812-4540-0300-000000000000 offers both features
    syntax = bind_time_feature_syntax(0x03)
    assert str(syntax.uuid) == "6cb71c2c-9812-4540-0300-000000000000"
    assert (syntax.major, syntax.minor) == (1, 0)
    assert syntax.uuid.bytes.startswith(BTFN_UUID_PREFIX)
    assert bind_time_features_of(syntax) == (
        BindTimeFeatures.SECURITY_CONTEXT_MULTIPLEXING_SUPPORTED
        | BindTimeFeatures.KEEP_CONNECTION_ON_ORPHAN_SUPPORTED
    )
    assert bind_time_features_of(NDR20_SYNTAX) is None
    assert bind_time_features_of(SyntaxId(syntax.uuid, 2, 0)) is None
    assert str(IFACE) == "12345678-1234-abcd-ef00-0123456789ab v1.0"


def test_shutdown_is_16_bytes() -> None:
    # spec: rpc #99
    data = build_pdu(Shutdown())
    assert len(data) == 16 and data[2] == PType.SHUTDOWN and data[8:10] == b"\x10\x00"
    with pytest.raises(RemoteProtocolError, match="header only"):
        parse_pdu(data[:8] + b"\x14\x00" + data[10:] + b"\0\0\0\0")
