"""Golden vectors of rpc-spec.md §B10, checked byte-exactly in both directions.

bytes -> parse_pdu -> every field as captured; fields (written out here) -> build_pdu -> the
same bytes; and parse -> build is the identity.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from winaio.codes import NcaStatus
from winaio.rpc._pdu import (
    NDR20_SYNTAX,
    Bind,
    BindAck,
    ContDefResult,
    ContextElement,
    ContextResult,
    Fault,
    PfcFlags,
    Request,
    Response,
    SyntaxId,
    build_pdu,
    fault_pdu,
    parse_pdu,
    request_fragments,
    response_fragments,
)

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
Golden = Callable[[str], bytes]

EXPECTED = {
    "impacket_bind": Bind(
        call_id=1,
        max_xmit_frag=4280,
        max_recv_frag=4280,
        assoc_group_id=0,
        contexts=(ContextElement(0, IFACE, (NDR20_SYNTAX,)),),
    ),
    "bind_ack_accept": BindAck(
        call_id=1,
        max_xmit_frag=4280,
        max_recv_frag=4280,
        assoc_group_id=0x12345,
        sec_addr=b"5000\x00",
        results=(ContextResult(ContDefResult.ACCEPTANCE, 0, NDR20_SYNTAX),),
    ),
    "impacket_request_add": Request(
        call_id=1, p_cont_id=0, opnum=0, stub=bytes.fromhex("0200000028000000"), alloc_hint=8
    ),
    "response_add": Response(
        call_id=1, p_cont_id=0, stub=bytes.fromhex("2a00000000000000"), alloc_hint=8
    ),
    "fault_op_rng_error": Fault(
        call_id=3,
        status=NcaStatus.NCA_S_OP_RNG_ERROR,
        pfc_flags=PfcFlags.PFC_FIRST_FRAG | PfcFlags.PFC_LAST_FRAG | PfcFlags.PFC_DID_NOT_EXECUTE,
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_parse_gives_the_captured_fields(golden: Golden, name: str) -> None:
    # spec: rpc #44 (impacket bind), #60 (fault layout), #62 (response echo)
    assert parse_pdu(golden(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_fields_build_the_captured_bytes(golden: Golden, name: str) -> None:
    # spec: rpc #43 (frag_length == bytes, drep 10000000, auth_length 0, vers 5.0)
    data = golden(name)
    assert build_pdu(EXPECTED[name]) == data
    assert build_pdu(parse_pdu(data)) == data
    pdu = EXPECTED[name]
    assert (pdu.frag_length, pdu.auth_length) == (len(data), 0)
    assert data[:2] == b"\x05\x00" and data[4:8] == b"\x10\x00\x00\x00"


def test_golden_sizes_and_offsets(golden: Golden) -> None:
    # spec: rpc #44 (72-byte bind), #46 (60-byte bind_ack, result list 4-aligned), #60
    assert len(golden("impacket_bind")) == 72
    ack = golden("bind_ack_accept")
    assert len(ack) == 60
    sec_addr_len = int.from_bytes(ack[24:26], "little")
    assert ack[26 : 26 + sec_addr_len] == b"5000\x00"  # NUL included in the length
    assert (26 + sec_addr_len + 1) % 4 == 0 and ack[32] == 1  # n_results at offset 32
    fault = golden("fault_op_rng_error")
    assert len(fault) == 32 and fault[24:28] == b"\x02\x00\x01\x1c"


def test_fast_builders_reproduce_the_golden_bytes(golden: Golden) -> None:
    # spec: rpc #60, #62 — the per-call fast paths used by the connections
    assert response_fragments(1, 0, bytes.fromhex("2a00000000000000"), 4280) == golden(
        "response_add"
    )
    assert fault_pdu(3, 0, NcaStatus.NCA_S_OP_RNG_ERROR, did_not_execute=True) == golden(
        "fault_op_rng_error"
    )
    assert request_fragments(1, 0, 0, bytes.fromhex("0200000028000000"), 4280) == golden(
        "impacket_request_add"
    )


def test_rpcclient_echoaddone_stubs_travel_unchanged(golden: Golden) -> None:
    # Only the stubs were captured for rpcclient; they must cross our codec untouched.
    req_stub, resp_stub = (
        golden("rpcclient_echoaddone_request_stub"),
        golden("rpcclient_echoaddone_response_stub"),
    )
    assert req_stub == b"\x05\x00\x00\x00" and resp_stub == b"\x06\x00\x00\x00"
    request = parse_pdu(request_fragments(2, 0, 0, req_stub, 4280))
    response = parse_pdu(response_fragments(2, 0, resp_stub, 4280))
    assert isinstance(request, Request) and request.stub == req_stub
    assert isinstance(response, Response) and response.stub == resp_stub
