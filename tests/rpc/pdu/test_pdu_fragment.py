"""The fast per-call builders: fragmentation rules, and agreement with the generic codec."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winaio.errors import LocalProtocolError
from winaio.rpc._pdu import (
    Fault,
    PfcFlags,
    Request,
    Response,
    decode_header,
    fault_pdu,
    parse_pdu,
    request_fragments,
    response_fragments,
)

FIRST, LAST = PfcFlags.PFC_FIRST_FRAG, PfcFlags.PFC_LAST_FRAG


def split_stream(data: bytes) -> list[bytes]:
    """Cut a byte stream into PDUs using each header's frag_length."""
    out, pos = [], 0
    while pos < len(data):
        n = decode_header(data, pos).frag_length
        out.append(data[pos : pos + n])
        pos += n
    assert pos == len(data)
    return out


@settings(max_examples=150, deadline=None)
@given(size=st.integers(0, 40_000), max_frag=st.integers(1432, 5840), cancel=st.integers(0, 255))
def test_response_fragments_obey_the_rules(size: int, max_frag: int, cancel: int) -> None:
    # spec: rpc #62, #71 — frag_length <= max_recv_frag, FIRST on the first, LAST on the last,
    # same call_id and p_cont_id, alloc_hint = remaining stub bytes, stub reassembles
    stub = bytes(i % 251 for i in range(size))
    frags = [
        parse_pdu(f)
        for f in split_stream(response_fragments(77, 3, stub, max_frag, cancel_count=cancel))
    ]
    assert all(isinstance(f, Response) for f in frags)
    remaining = size
    for i, f in enumerate(frags):
        assert isinstance(f, Response)
        assert f.frag_length <= max_frag
        assert (f.call_id, f.p_cont_id, f.cancel_count) == (77, 3, cancel)
        assert bool(f.pfc_flags & FIRST) == (i == 0)
        assert bool(f.pfc_flags & LAST) == (i == len(frags) - 1)
        assert f.alloc_hint == remaining
        if i < len(frags) - 1:
            assert len(f.stub) % 16 == 0 and len(f.stub) > 0
        remaining -= len(f.stub)
    assert b"".join(f.stub for f in frags if isinstance(f, Response)) == stub
    if size + 24 <= max_frag:
        assert len(frags) == 1 and frags[0].pfc_flags == FIRST | LAST


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 20_000), max_frag=st.integers(1432, 5840), with_object=st.booleans())
def test_request_fragments_obey_the_rules(size: int, max_frag: int, with_object: bool) -> None:
    # spec: rpc #63 (object UUID -> 40-byte header in every fragment), #67 (reassembly)
    obj = UUID("00112233-4455-6677-8899-aabbccddeeff") if with_object else None
    stub = bytes(i % 253 for i in range(size))
    frags = [
        parse_pdu(f) for f in split_stream(request_fragments(5, 1, 9, stub, max_frag, object=obj))
    ]
    for i, f in enumerate(frags):
        assert isinstance(f, Request)
        assert f.frag_length <= max_frag
        assert (f.call_id, f.p_cont_id, f.opnum, f.object) == (5, 1, 9, obj)
        assert bool(f.pfc_flags & FIRST) == (i == 0)
        assert bool(f.pfc_flags & LAST) == (i == len(frags) - 1)
    assert b"".join(f.stub for f in frags if isinstance(f, Request)) == stub


def test_fault_pdu_is_32_bytes_and_parses() -> None:
    # spec: rpc #60 — alloc_hint 0, p_cont_id echoed, status at offset 24, reserved 0
    data = fault_pdu(9, 4, 0x1C010003, cancel_count=2, did_not_execute=True, rpc_vers_minor=1)
    assert len(data) == 32 and data[24:28] == bytes.fromhex("0300011c") and data[28:] == bytes(4)
    fault = parse_pdu(data)
    assert fault == Fault(
        call_id=9, status=0x1C010003, p_cont_id=4, cancel_count=2, pfc_flags=0x23, rpc_vers_minor=1
    )


def test_fragment_size_must_leave_room_for_the_header() -> None:
    with pytest.raises(LocalProtocolError):
        response_fragments(1, 0, bytes(100), 30)
    with pytest.raises(LocalProtocolError):
        request_fragments(1, 0, 0, bytes(100_000), 70000)
