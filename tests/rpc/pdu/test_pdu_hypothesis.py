"""Property tests of the PDU codec: robustness on arbitrary bytes, identity on valid PDUs."""

from __future__ import annotations

import struct
from dataclasses import replace
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio.errors import RemoteProtocolError
from winaio.rpc._pdu import (
    AlterContext,
    AlterContextResp,
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
    Request,
    Response,
    Shutdown,
    SyntaxId,
    build_pdu,
    parse_pdu,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
drep = st.sampled_from([b"\x10\x00\x00\x00", b"\x00\x00\x00\x00", b"\x11\x01\x00\x00"])
uuids = st.builds(UUID, int=st.integers(0, 2**128 - 1))
syntaxes = st.builds(SyntaxId, uuids, u16, u16)
verifiers = st.none() | st.builds(
    AuthVerifier,
    auth_type=u8,
    auth_level=u8,
    auth_pad_length=st.integers(0, 15),
    auth_context_id=u32,
    auth_value=st.binary(min_size=1, max_size=40),
)
small = st.binary(max_size=64)
common = {"call_id": u32, "drep": drep, "rpc_vers_minor": st.integers(0, 1)}


def _canonical_request(r: Request) -> Request:
    # PFC_OBJECT_UUID is derived from `object` on build.
    return replace(r, pfc_flags=r.pfc_flags | (0x80 if r.object is not None else 0))


pdus: st.SearchStrategy[Pdu] = st.one_of(
    st.builds(
        Request,
        p_cont_id=u16,
        opnum=u16,
        stub=small,
        alloc_hint=u32,
        object=st.none() | uuids,
        pfc_flags=u8.map(lambda f: f & 0x7F),
        auth_verifier=verifiers,
        **common,
    ).map(_canonical_request),
    st.builds(
        Response,
        p_cont_id=u16,
        stub=small,
        alloc_hint=u32,
        cancel_count=u8,
        pfc_flags=u8,
        auth_verifier=verifiers,
        **common,
    ),
    st.builds(
        Fault,
        status=u32,
        p_cont_id=u16,
        alloc_hint=u32,
        cancel_count=u8,
        fault_flags=u8,
        stub=small,
        pfc_flags=u8,
        auth_verifier=verifiers,
        **common,
    ),
    st.builds(
        Bind,
        max_xmit_frag=u16,
        max_recv_frag=u16,
        assoc_group_id=u32,
        contexts=st.lists(
            st.builds(ContextElement, u16, syntaxes, st.lists(syntaxes, max_size=3).map(tuple)),
            max_size=4,
        ).map(tuple),
        pfc_flags=u8,
        auth_verifier=verifiers,
        **common,
    ),
    st.builds(
        AlterContext,
        max_xmit_frag=u16,
        max_recv_frag=u16,
        contexts=st.lists(st.builds(ContextElement, u16, syntaxes, st.just(())), max_size=2).map(
            tuple
        ),
        **common,
    ),
    st.builds(
        BindAck,
        max_xmit_frag=u16,
        max_recv_frag=u16,
        assoc_group_id=u32,
        sec_addr=st.binary(max_size=12),
        results=st.lists(st.builds(ContextResult, u16, u16, syntaxes), max_size=4).map(tuple),
        auth_verifier=verifiers,
        **common,
    ),
    st.builds(
        AlterContextResp,
        max_xmit_frag=u16,
        max_recv_frag=u16,
        assoc_group_id=u32,
        sec_addr=st.binary(max_size=3),
        **common,
    ),
    st.builds(
        BindNak,
        provider_reject_reason=u16,
        versions=st.lists(st.tuples(u8, u8), max_size=3).map(tuple),
        trailing=st.binary(max_size=20),
        **common,
    ),
    st.builds(Shutdown, **common),
    st.builds(CoCancel, auth_verifier=verifiers, **common),
    st.builds(Orphaned, auth_verifier=verifiers, **common),
)


@SETTINGS
@given(pdus)
def test_build_then_parse_is_the_identity(pdu: Pdu) -> None:
    data = build_pdu(pdu)
    assert parse_pdu(data) == pdu
    assert build_pdu(parse_pdu(data)) == data
    assert len(data) == pdu.frag_length


def _parse_or_remote_error(data: bytes) -> None:
    try:
        parse_pdu(data)
    except RemoteProtocolError:
        pass  # the only exception parse_pdu may raise on input


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_remote_protocol_error(data: bytes) -> None:
    _parse_or_remote_error(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid PDU with some bytes overwritten, maybe cut or extended, frag_length usually fixed
    up so that the parser gets past the header into the body."""
    data = bytearray(build_pdu(draw(pdus)))
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(u8)
    data[0], data[1] = 5, draw(st.sampled_from([0, 0, 1]))
    cut = draw(st.integers(0, len(data) + 8))
    data = data[:cut] + bytes(max(0, cut - len(data)))
    if len(data) >= 16 and draw(st.booleans()):
        big = data[4] >> 4 == 0
        struct.pack_into(">H" if big else "<H", data, 8, len(data))
    return bytes(data)


@SETTINGS
@given(mutated())
def test_mutated_pdus_raise_only_remote_protocol_error(data: bytes) -> None:
    _parse_or_remote_error(data)
