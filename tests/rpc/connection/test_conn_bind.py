"""Server-side bind / alter_context handling and the bind_ack / bind_nak we send."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from winaio.codes import NcaStatus
from winaio.errors import RemoteProtocolError
from winaio.rpc._connection import (
    AssociationGroups,
    BindAccepted,
    BindRefused,
    BindRejected,
    Bound,
    ContextAltered,
    RequestReceived,
    ServerConnection,
    SimpleRegistry,
)
from winaio.rpc._pdu import (
    NDR20_SYNTAX,
    NDR64_SYNTAX,
    NULL_SYNTAX,
    AlterContext,
    AlterContextResp,
    AuthVerifier,
    Bind,
    BindAck,
    BindNak,
    ContDefResult,
    ContextElement,
    ContextResult,
    PType,
    Request,
    SyntaxId,
    bind_time_feature_syntax,
    build_pdu,
    parse_pdu,
)

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
ECHO = SyntaxId(UUID("60a15ec5-4de8-11d7-a637-005056a20182"), 1, 0)
UNKNOWN = SyntaxId(UUID("00000000-1111-2222-3333-444444444444"), 1, 0)
Drain = Callable[[Any], list[Any]]
Golden = Callable[[str], bytes]


def registry() -> SimpleRegistry[str]:
    r: SimpleRegistry[str] = SimpleRegistry()
    r.register(IFACE, "iface")
    r.register(ECHO, "echo")
    return r


def bind_pdu(*contexts: ContextElement, **kw: Any) -> bytes:
    fields: dict[str, Any] = {"call_id": 1, "max_xmit_frag": 4280, "max_recv_frag": 4280}
    fields.update(kw)
    elements = contexts or (ContextElement(0, IFACE, (NDR20_SYNTAX,)),)
    return build_pdu(Bind(contexts=elements, **fields))


def answer(server: ServerConnection[str], data: bytes, drain: Drain) -> tuple[Any, Any]:
    """Feed one PDU; return (the single server event, the parsed reply PDU)."""
    server.receive_data(data)
    (event,) = drain(server)
    return event, parse_pdu(server.data_to_send())


def test_impacket_session_is_answered_with_the_captured_bytes(golden: Golden, drain: Drain) -> None:
    # spec: rpc #44 (bind_ack ptype 12, same call_id, 1 result, acceptance, NDR), #45 (4280),
    # #64 (first request reuses the bind's call_id 1), #62, #57 (op_rng_error fault)
    server = ServerConnection(
        registry(), assoc_groups=AssociationGroups(id_factory=lambda: 0x12345), sec_addr="5000"
    )
    server.receive_data(golden("impacket_bind"))
    (bound,) = drain(server)
    assert isinstance(bound, Bound)
    assert (bound.call_id, bound.assoc_group_id, bound.max_xmit_frag, bound.max_recv_frag) == (
        1,
        0x12345,
        4280,
        4280,
    )
    assert [(c.p_cont_id, c.interface, c.transfer_syntax) for c in bound.accepted] == [
        (0, "iface", NDR20_SYNTAX)
    ]
    assert server.data_to_send() == golden("bind_ack_accept")

    server.receive_data(golden("impacket_request_add"))
    (request,) = drain(server)
    assert isinstance(request, RequestReceived)
    assert (request.call_id, request.opnum, request.stub) == (
        1,
        0,
        bytes.fromhex("0200000028000000"),
    )
    assert server.send_response(1, bytes.fromhex("2a00000000000000")) == golden("response_add")

    server.receive_data(
        build_pdu(
            parse_pdu(golden("impacket_request_add")).__class__(
                call_id=3, p_cont_id=0, opnum=7, stub=b""
            )
        )
    )
    (unknown,) = drain(server)
    assert unknown.opnum == 7
    fault = server.send_fault(3, NcaStatus.NCA_S_OP_RNG_ERROR, did_not_execute=True)
    assert fault == golden("fault_op_rng_error")


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        ((4280, 4280), (4280, 4280)),  # impacket
        ((5840, 5840), (5840, 5840)),
        ((65535, 65535), (5840, 5840)),  # never above 5840
        ((2000, 5000), (5000 & ~7, 2000)),  # xmit follows the client's recv and vice versa
        ((1432, 1437), (1432, 1432)),  # truncated to a multiple of 8 (Windows, per Samba)
    ],
)
def test_bind_ack_frag_sizes_never_exceed_the_proposals(
    drain: Drain, proposed: tuple[int, int], expected: tuple[int, int]
) -> None:
    # spec: rpc #45
    server = ServerConnection(registry())
    event, ack = answer(
        server, bind_pdu(max_xmit_frag=proposed[0], max_recv_frag=proposed[1]), drain
    )
    assert isinstance(ack, BindAck)
    assert (ack.max_xmit_frag, ack.max_recv_frag) == expected
    assert ack.max_xmit_frag <= proposed[1] and ack.max_recv_frag <= proposed[0]
    assert (event.max_xmit_frag, event.max_recv_frag) == expected
    assert server.max_xmit_frag == expected[0]


@pytest.mark.parametrize("sizes", [(1431, 4280), (4280, 1024), (0, 0)])
def test_frag_sizes_below_the_c706_minimum_are_refused(
    drain: Drain, sizes: tuple[int, int]
) -> None:
    # DESIGN (rpc-spec B5): accept >= 1432 (C706 must_recv_frag_size); below -> bind_nak 0.
    event, nak = answer(
        ServerConnection(registry()),
        bind_pdu(max_xmit_frag=sizes[0], max_recv_frag=sizes[1]),
        drain,
    )
    assert isinstance(event, BindRefused) and isinstance(nak, BindNak)
    assert nak.provider_reject_reason == 0


@pytest.mark.parametrize("addr", ["", "1", "135", "5000", "49668", "\\PIPE\\epmapper"])
def test_sec_addr_is_nul_terminated_and_results_are_aligned(drain: Drain, addr: str) -> None:
    # spec: rpc #46
    server = ServerConnection(registry(), sec_addr=addr)
    server.receive_data(bind_pdu())
    drain(server)
    data = server.data_to_send()
    length = struct.unpack_from("<H", data, 24)[0]
    assert length == len(addr) + 1
    assert data[26 : 26 + length] == addr.encode() + b"\x00"
    results_at = (26 + length + 3) & ~3  # 4-byte aligned from the start of the PDU
    assert data[results_at] == 1 and len(data) == results_at + 4 + 24


def test_unknown_interface_is_rejected_in_the_bind_ack(drain: Drain) -> None:
    # spec: rpc #47 — provider_rejection / abstract_syntax_not_supported, not a bind_nak
    event, ack = answer(
        ServerConnection(registry()), bind_pdu(ContextElement(0, UNKNOWN, (NDR20_SYNTAX,))), drain
    )
    assert isinstance(event, Bound) and event.accepted == ()
    assert isinstance(ack, BindAck)
    assert ack.results == (ContextResult(ContDefResult.PROVIDER_REJECTION, 1, NULL_SYNTAX),)


def test_ndr64_only_is_rejected_with_reason_2(drain: Drain) -> None:
    # spec: rpc #48
    _, ack = answer(
        ServerConnection(registry()), bind_pdu(ContextElement(0, IFACE, (NDR64_SYNTAX,))), drain
    )
    assert ack.results == (ContextResult(ContDefResult.PROVIDER_REJECTION, 2, NULL_SYNTAX),)


def test_windows_style_three_element_bind(drain: Drain) -> None:
    # spec: rpc #49 — NDR, NDR64, BTFN 6cb71c2c-9812-4540-0300-... -> [0/0/NDR], [2/2/0],
    # [3/bitmask/0]; SecurityContextMultiplexing (0x01) is cleared, KeepConnectionOnOrphan kept
    btfn = bind_time_feature_syntax(0x03)
    assert str(btfn.uuid) == "6cb71c2c-9812-4540-0300-000000000000"
    event, ack = answer(
        ServerConnection(registry()),
        bind_pdu(
            ContextElement(0, IFACE, (NDR20_SYNTAX,)),
            ContextElement(1, IFACE, (NDR64_SYNTAX,)),
            ContextElement(2, IFACE, (btfn,)),
        ),
        drain,
    )
    assert ack.results == (
        ContextResult(ContDefResult.ACCEPTANCE, 0, NDR20_SYNTAX),
        ContextResult(ContDefResult.PROVIDER_REJECTION, 2, NULL_SYNTAX),
        ContextResult(ContDefResult.NEGOTIATE_ACK, 0x02, NULL_SYNTAX),
    )
    assert event.bind_time_features == 0x02 and [c.p_cont_id for c in event.accepted] == [0]
    # reserved bits are cleared too
    _, ack2 = answer(
        ServerConnection(registry()),
        bind_pdu(
            ContextElement(0, IFACE, (NDR20_SYNTAX,)),
            ContextElement(1, IFACE, (bind_time_feature_syntax(0xFFFF_FFFF_FFFF_FFFD),)),
        ),
        drain,
    )
    assert ack2.results[1] == ContextResult(ContDefResult.NEGOTIATE_ACK, 0, NULL_SYNTAX)


def test_only_one_transfer_syntax_is_accepted_per_interface(drain: Drain) -> None:
    # [MS-RPCE §3.3.1.5.6]: at most one acceptance for an abstract syntax; NDR preferred
    # even when it is not the first proposal.
    _, ack = answer(
        ServerConnection(registry()),
        bind_pdu(
            ContextElement(0, IFACE, (NDR64_SYNTAX, NDR20_SYNTAX)),
            ContextElement(1, IFACE, (NDR20_SYNTAX,)),
            ContextElement(2, ECHO, (NDR20_SYNTAX,)),
        ),
        drain,
    )
    assert [(r.result, r.reason) for r in ack.results] == [(0, 0), (2, 2), (0, 0)]


@pytest.mark.parametrize(
    ("offered", "accepted"),
    [
        ((1, 0), True),  # exact
        ((2, 0), False),  # major mismatch
        ((0, 0), False),
        ((1, 3), False),  # client minor > server minor
        ((1, 1), True),  # lower client minor accepted (server has 1.2)
    ],
)
def test_interface_version_rules(drain: Drain, offered: tuple[int, int], accepted: bool) -> None:
    # spec: rpc #50
    r: SimpleRegistry[str] = SimpleRegistry()
    r.register(SyntaxId(IFACE.uuid, 1, 0), "v1.0")
    r.register(SyntaxId(IFACE.uuid, 1, 2), "v1.2")
    offer = SyntaxId(IFACE.uuid, *offered)
    event, ack = answer(
        ServerConnection(r), bind_pdu(ContextElement(0, offer, (NDR20_SYNTAX,))), drain
    )
    if accepted:
        assert ack.results[0].result == ContDefResult.ACCEPTANCE
        assert event.accepted[0].interface == ("v1.0" if offered == (1, 0) else "v1.2")
    else:
        assert (ack.results[0].result, ack.results[0].reason) == (2, 1)


@pytest.mark.parametrize("version", [(4, 0), (6, 0), (5, 2)])
def test_foreign_rpc_version_gets_bind_nak_4(drain: Drain, version: tuple[int, int]) -> None:
    # spec: rpc #51 — bind_nak reason protocol_version_not_supported, versions {5.0}
    data = bytearray(bind_pdu(call_id=9))
    data[0], data[1] = version
    server = ServerConnection(registry())
    event, nak = answer(server, bytes(data), drain)
    assert event == BindRefused(9, 4)
    assert isinstance(nak, BindNak) and nak.call_id == 9
    assert nak.provider_reject_reason == 4 and nak.versions == ((5, 0),)
    assert not server.bound
    # The connection survives: a proper bind afterwards succeeds.
    event, ack = answer(server, bind_pdu(call_id=10), drain)
    assert isinstance(event, Bound) and isinstance(ack, BindAck)


def test_unknown_auth_type_gets_bind_nak_8(drain: Drain) -> None:
    # spec: rpc #52
    verifier = AuthVerifier(auth_type=0x44, auth_level=2, auth_value=b"NTLMSSP\x00" + bytes(24))
    event, nak = answer(ServerConnection(registry()), bind_pdu(auth_verifier=verifier), drain)
    assert event == BindRefused(1, 8) and nak.provider_reject_reason == 8


def test_second_bind_and_unknown_association_get_bind_nak_0(drain: Drain) -> None:
    # spec: rpc #53
    groups = AssociationGroups()
    first = ServerConnection(registry(), assoc_groups=groups)
    bound, _ = answer(first, bind_pdu(), drain)
    assert isinstance(bound, Bound) and bound.assoc_group_id != 0
    event, nak = answer(first, bind_pdu(call_id=2), drain)
    assert event == BindRefused(2, 0) and nak.provider_reject_reason == 0
    assert first.bound and first.assoc_group_id == bound.assoc_group_id  # unchanged

    stranger = ServerConnection(registry(), assoc_groups=groups)
    unknown_id = bound.assoc_group_id ^ 0x5A5A
    event, nak = answer(stranger, bind_pdu(assoc_group_id=unknown_id), drain)
    assert event == BindRefused(1, 0) and not stranger.bound

    # A known id joins the association; the group ends with its last connection.
    second = ServerConnection(registry(), assoc_groups=groups)
    joined, ack = answer(second, bind_pdu(assoc_group_id=bound.assoc_group_id), drain)
    assert isinstance(joined, Bound) and ack.assoc_group_id == bound.assoc_group_id
    assert groups.members(bound.assoc_group_id) == 2
    first.receive_data(b"")
    (closed,) = drain(first)
    assert (closed.assoc_group_id, closed.association_ended) == (bound.assoc_group_id, False)
    ended = second.close()
    assert ended.association_ended and bound.assoc_group_id not in groups
    assert second.close() is ended  # idempotent


def test_association_join_is_limited_to_the_same_peer(drain: Drain) -> None:
    # [MS-RPCE §3.3.1.5.7]: a TCP client may only join an association from the same address.
    groups = AssociationGroups()
    owner = ServerConnection(registry(), assoc_groups=groups, peer="10.0.0.1")
    bound, _ = answer(owner, bind_pdu(), drain)
    other = ServerConnection(registry(), assoc_groups=groups, peer="10.0.0.2")
    event, _ = answer(other, bind_pdu(assoc_group_id=bound.assoc_group_id), drain)
    assert isinstance(event, BindRefused)
    same = ServerConnection(registry(), assoc_groups=groups, peer="10.0.0.1")
    event, _ = answer(same, bind_pdu(assoc_group_id=bound.assoc_group_id), drain)
    assert isinstance(event, Bound)


@pytest.mark.parametrize(
    ("contexts", "reason"),
    [
        ((), 4),  # no p_cont_elem (Samba answers reason 4)
        ((ContextElement(0, IFACE, ()),), 0),  # no transfer syntax
        ((ContextElement(0, IFACE, (NDR20_SYNTAX,)), ContextElement(0, ECHO, (NDR20_SYNTAX,))), 0),
        (
            (
                ContextElement(0, IFACE, (bind_time_feature_syntax(2),)),
                ContextElement(1, IFACE, (bind_time_feature_syntax(2),)),
            ),
            0,
        ),
    ],
)
def test_malformed_context_lists_get_bind_nak(
    drain: Drain, contexts: tuple[ContextElement, ...], reason: int
) -> None:
    # [samba:dcesrv_core.c dcesrv_bind]
    data = build_pdu(Bind(call_id=1, max_xmit_frag=4280, max_recv_frag=4280, contexts=contexts))
    event, nak = answer(ServerConnection(registry()), data, drain)
    assert event == BindRefused(1, reason) and isinstance(nak, BindNak)


def test_alter_context_adds_an_interface(pair: Any) -> None:
    # spec: rpc #54 — alter_context_resp (ptype 15, sec_addr_len 0) then requests on the new
    # p_cont_id dispatch to that interface
    pair.bound()
    alter = pair.client.alter_context([ContextElement(1, ECHO, (NDR20_SYNTAX,))])
    (altered,) = pair.to_server(alter)
    assert isinstance(altered, ContextAltered)
    assert [(c.p_cont_id, c.interface) for c in altered.accepted] == [(1, "echo")]
    reply = pair.server.data_to_send()
    assert reply[2] == PType.ALTER_CONTEXT_RESP and reply[24:26] == b"\x00\x00"
    resp = parse_pdu(reply)
    assert isinstance(resp, AlterContextResp) and resp.assoc_group_id == pair.server.assoc_group_id
    (accepted,) = pair.to_client(reply)
    assert accepted.accepted == (1,)
    call_id, (request,) = pair.call(0, b"\x05\x00\x00\x00", p_cont_id=1)
    assert (request.interface, request.p_cont_id, request.call_id) == ("echo", 1, call_id)
    (response,) = pair.answer(call_id, b"\x06\x00\x00\x00")
    assert response.stub == b"\x06\x00\x00\x00"
    call_id, (request,) = pair.call(0, b"", p_cont_id=0)
    assert request.interface == "iface"


def test_alter_context_reusing_a_p_cont_id_for_another_interface_is_fatal(pair: Any) -> None:
    # [samba:dcesrv_core.c]: fault nca_s_proto_error + disconnect
    pair.bound()
    pair.server.receive_data(
        build_pdu(
            AlterContext(
                call_id=5,
                max_xmit_frag=4280,
                max_recv_frag=4280,
                contexts=(ContextElement(0, ECHO, (NDR20_SYNTAX,)),),
            )
        )
    )
    with pytest.raises(RemoteProtocolError) as info:
        pair.server.next_event()
    assert info.value.status == NcaStatus.NCA_S_PROTO_ERROR
    fault = parse_pdu(pair.server.data_to_send())
    assert fault.status == NcaStatus.NCA_S_PROTO_ERROR and fault.call_id == 5
    with pytest.raises(RemoteProtocolError, match="broken"):
        pair.server.next_event()


def test_alter_context_with_the_same_interface_is_acknowledged_again(pair: Any) -> None:
    pair.bound()
    (altered,) = pair.to_server(
        pair.client.alter_context([ContextElement(0, IFACE, (NDR20_SYNTAX,))])
    )
    assert altered.accepted == () and altered.results[0].result == ContDefResult.ACCEPTANCE


def test_alter_context_before_bind_is_fatal(drain: Drain) -> None:
    server = ServerConnection(registry())
    server.receive_data(build_pdu(AlterContext(call_id=1, max_xmit_frag=4280, max_recv_frag=4280)))
    with pytest.raises(RemoteProtocolError, match="before bind"):
        server.next_event()


def test_bind_with_call_id_3_is_accepted(pair_factory: Any) -> None:
    # spec: rpc #65 — rpcclient's second connection starts at call_id 3
    pair = pair_factory(client={"first_call_id": 3})
    bound, accepted = pair.bound()
    assert bound.call_id == accepted.call_id == 3
    call_id, (request,) = pair.call(0, b"x")
    assert call_id == request.call_id == 4


def test_conc_mpx_is_echoed(pair: Any) -> None:
    # spec: rpc #73 (first half)
    bound, accepted = pair.bound(conc_mpx=True)
    assert bound.conc_mpx and accepted.conc_mpx and pair.server.conc_mpx
    assert pair.server_wrote[-1][3] & 0x10


def test_bind_accepted_event_on_the_client(pair: Any) -> None:
    bound, accepted = pair.bound(bind_time_features=0x02)
    assert isinstance(accepted, BindAccepted)
    assert accepted.accepted == (0,) and accepted.bind_time_features == 0x02
    assert accepted.assoc_group_id == bound.assoc_group_id == pair.client.assoc_group_id
    assert accepted.sec_addr == b"\x00"
    assert pair.client.bound and pair.client.accepted_contexts == {0: NDR20_SYNTAX}


def test_client_sees_bind_nak(pair: Any) -> None:
    data = bytearray(pair.client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))]))
    data[1] = 7  # the server will answer this with bind_nak 4
    pair.to_server(bytes(data))
    (rejected,) = pair.flush()
    assert rejected == BindRejected(1, 4, ((5, 0),))
    assert not pair.client.bound


def test_minor_version_1_is_echoed(drain: Drain) -> None:
    # B2: reply with the minor version received (<= 1); every later PDU follows it
    server = ServerConnection(registry())
    server.receive_data(bind_pdu(call_id=1, rpc_vers_minor=1))
    drain(server)
    ack = server.data_to_send()
    assert ack[:2] == b"\x05\x01"
    request = Request(call_id=2, p_cont_id=0, opnum=0, stub=b"x", rpc_vers_minor=1)
    server.receive_data(build_pdu(request))
    (event,) = drain(server)
    assert server.send_response(event.call_id, b"y")[:2] == b"\x05\x01"
    assert server.send_shutdown()[:2] == b"\x05\x01"
