"""Client role: API misuse (LocalProtocolError) and server misbehaviour (RemoteProtocolError)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from winaio.codes import NcaStatus, RpcStatus
from winaio.errors import LocalProtocolError, RemoteProtocolError
from winaio.rpc._connection import (
    NEED_DATA,
    AlterContextAccepted,
    ClientConnection,
    FaultReceived,
    ResponseReceived,
)
from winaio.rpc._pdu import (
    NDR20_SYNTAX,
    NULL_SYNTAX,
    AlterContextResp,
    BindAck,
    ContextElement,
    ContextResult,
    PfcFlags,
    Request,
    Response,
    SyntaxId,
    build_pdu,
    fault_pdu,
    response_fragments,
)

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
CTX = ContextElement(0, IFACE, (NDR20_SYNTAX,))
ACCEPT = ContextResult(0, 0, NDR20_SYNTAX)


def bound_client(*, ack_features: int | None = None, **kw: Any) -> ClientConnection:
    """A client bound by a hand-made bind_ack; ``ack_features`` answers a feature element."""
    client = ClientConnection()
    client.bind([CTX], **kw)
    results: tuple[ContextResult, ...] = (ACCEPT,)
    if "bind_time_features" in kw:
        answer = (
            ContextResult(2, 2, NULL_SYNTAX)  # an old server rejects the unknown syntax
            if ack_features is None
            else ContextResult(3, ack_features, NULL_SYNTAX)
        )
        results += (answer,)
    ack = BindAck(
        call_id=1,
        max_xmit_frag=5840,
        max_recv_frag=5840,
        assoc_group_id=7,
        results=results,
        pfc_flags=0x13 if kw.get("conc_mpx") else 0x03,
    )
    client.receive_data(build_pdu(ack))
    client.next_event()
    return client


def test_api_misuse_raises_local_protocol_error() -> None:
    client = ClientConnection()
    with pytest.raises(LocalProtocolError, match="before bind"):
        client.request(0, 1, b"")
    with pytest.raises(LocalProtocolError, match="before bind"):
        client.alter_context([CTX])
    with pytest.raises(LocalProtocolError, match="1 to 255"):
        client.bind([])
    with pytest.raises(LocalProtocolError, match="distinct"):
        client.bind([CTX, CTX])
    client.bind([CTX])
    with pytest.raises(LocalProtocolError, match="waiting for its answer"):
        client.request(0, 1, b"")
    with pytest.raises(ValueError, match="1432"):
        ClientConnection(max_recv_frag=1000)

    client = bound_client()
    with pytest.raises(LocalProtocolError, match="already bound"):
        client.bind([CTX])
    with pytest.raises(LocalProtocolError, match="not accepted"):
        client.request(5, 1, b"")
    with pytest.raises(LocalProtocolError, match="not outstanding"):
        client.cancel(99)
    with pytest.raises(LocalProtocolError, match="not outstanding"):
        client.orphan(99)
    _call_id, _ = client.request(0, 1, b"")
    with pytest.raises(LocalProtocolError, match="exclusive"):
        client.request(0, 1, b"")  # no CONC_MPX: one call at a time [MS-RPCE §3.3.1.5.8]
    with pytest.raises(LocalProtocolError, match="exclusive"):
        client.alter_context([ContextElement(1, IFACE, (NDR20_SYNTAX,))])


def test_conc_mpx_allows_many_outstanding_calls() -> None:
    client = bound_client(conc_mpx=True)
    assert client.conc_mpx
    ids = [client.request(0, 1, b"")[0] for _ in range(5)]
    assert client.outstanding_call_ids == tuple(ids) == (2, 3, 4, 5, 6)


def test_faults_are_mapped_for_the_caller() -> None:
    # spec: rpc #16 (0x1C00000D -> 1818), A14, [MS-RPCE §3.3.2.5.1] forbidden -> protocol error
    client = bound_client(conc_mpx=True)
    cases = [
        (NcaStatus.NCA_S_FAULT_CANCEL, RpcStatus.RPC_S_CALL_CANCELLED),
        (NcaStatus.NCA_S_OP_RNG_ERROR, RpcStatus.RPC_S_PROCNUM_OUT_OF_RANGE),
        (NcaStatus.NCA_S_UNK_IF, RpcStatus.RPC_S_UNKNOWN_IF),
        (0x6F7, 0x6F7),
        (0, RpcStatus.RPC_S_PROTOCOL_ERROR),
        (0xC0000005, RpcStatus.RPC_S_PROTOCOL_ERROR),
    ]
    for nca, status in cases:
        call_id, _ = client.request(0, 1, b"")
        client.receive_data(fault_pdu(call_id, 0, nca, did_not_execute=True))
        assert client.next_event() == FaultReceived(call_id, status, nca, True)


def test_fault_cuts_a_partial_response_short() -> None:
    client = bound_client()
    call_id, _ = client.request(0, 1, b"")
    first = build_pdu(Response(call_id=call_id, p_cont_id=0, stub=b"part", pfc_flags=0x01))
    client.receive_data(first + fault_pdu(call_id, 0, 5))
    assert client.next_event() == FaultReceived(call_id, 5, 5, False)
    assert client.idle


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (response_fragments(99, 0, b"x", 5840), "not outstanding"),
        (fault_pdu(99, 0, 5), "not outstanding"),
        (build_pdu(Response(call_id=2, p_cont_id=0, stub=b"x", pfc_flags=0x02)), "lacks PFC_FIRST"),
        (build_pdu(Response(call_id=2, p_cont_id=0, stub=b"x", alloc_hint=2**31)), "2\\*\\*31"),
        (build_pdu(Request(call_id=2, p_cont_id=0, opnum=0)), "not sent to a client"),
        (
            build_pdu(BindAck(call_id=2, max_xmit_frag=5840, max_recv_frag=5840, assoc_group_id=1)),
            "does not answer",
        ),
    ],
)
def test_server_misbehaviour_raises_remote_protocol_error(reply: bytes, match: str) -> None:
    client = bound_client()
    client.request(0, 1, b"")
    client.receive_data(reply)
    with pytest.raises(RemoteProtocolError, match=match):
        client.next_event()
    with pytest.raises(RemoteProtocolError, match="broken"):
        client.next_event()


def test_fault_for_unknown_call_carries_the_mapped_status() -> None:
    client = bound_client()
    client.receive_data(fault_pdu(0, 0, NcaStatus.NCA_S_PROTO_ERROR))
    with pytest.raises(RemoteProtocolError) as info:
        client.next_event()
    assert info.value.status == RpcStatus.RPC_S_PROTOCOL_ERROR


def test_second_first_fragment_is_an_error() -> None:
    client = bound_client()
    call_id, _ = client.request(0, 1, b"")
    frag = build_pdu(Response(call_id=call_id, p_cont_id=0, stub=b"x", pfc_flags=0x01))
    client.receive_data(frag + frag)
    with pytest.raises(RemoteProtocolError, match="mid-response"):
        client.next_event()


def test_bind_ack_must_answer_every_context() -> None:
    client = ClientConnection()
    client.bind([CTX])
    client.receive_data(
        build_pdu(
            BindAck(
                call_id=1,
                max_xmit_frag=5840,
                max_recv_frag=5840,
                assoc_group_id=1,
                results=(ACCEPT, ACCEPT),
            )
        )
    )
    with pytest.raises(RemoteProtocolError, match="2 results for 1"):
        client.next_event()


def test_bind_ack_with_tiny_fragments_is_refused() -> None:
    client = ClientConnection()
    client.bind([CTX])
    client.receive_data(
        build_pdu(
            BindAck(
                call_id=1,
                max_xmit_frag=5840,
                max_recv_frag=100,
                assoc_group_id=1,
                results=(ACCEPT,),
            )
        )
    )
    with pytest.raises(RemoteProtocolError, match="1432"):
        client.next_event()


def test_request_fragments_follow_the_servers_max_recv_frag() -> None:
    client = ClientConnection(max_xmit_frag=5840)
    client.bind([CTX])
    client.receive_data(
        build_pdu(
            BindAck(
                call_id=1,
                max_xmit_frag=5840,
                max_recv_frag=2048,
                assoc_group_id=1,
                results=(ACCEPT,),
            )
        )
    )
    client.next_event()
    assert client.max_xmit_frag == 2048
    _, data = client.request(0, 1, bytes(5000))
    assert int.from_bytes(data[8:10], "little") <= 2048 and data[3] == PfcFlags.PFC_FIRST_FRAG


def test_old_server_without_bind_time_features() -> None:
    # A server that does not know BTFN rejects the element (reason 2): no features, and an
    # orphaned call then obliges the client to close the connection [MS-RPCE §3.3.1.5.10].
    client = bound_client(bind_time_features=0x02)
    assert client.bind_time_features is None
    call_id, _ = client.request(0, 1, b"")
    client.orphan(call_id)
    assert client.must_close


def test_fault_for_the_bind_resets_the_state() -> None:
    client = ClientConnection()
    client.bind([CTX])
    client.receive_data(fault_pdu(1, 0, NcaStatus.NCA_S_PROTO_ERROR))
    assert client.next_event() == FaultReceived(
        1, RpcStatus.RPC_S_PROTOCOL_ERROR, NcaStatus.NCA_S_PROTO_ERROR, False
    )
    assert not client.bound and client.idle
    client.bind([CTX])  # may try again


def test_alter_context_response_on_the_client() -> None:
    client = bound_client()
    client.alter_context([ContextElement(3, IFACE, (NDR20_SYNTAX,))])
    client.receive_data(
        build_pdu(
            AlterContextResp(
                call_id=2,
                max_xmit_frag=5840,
                max_recv_frag=5840,
                assoc_group_id=7,
                results=(ACCEPT,),
            )
        )
    )
    assert client.next_event() == AlterContextAccepted(2, (ACCEPT,), (3,))
    assert set(client.accepted_contexts) == {0, 3}
    call_id, _ = client.request(3, 1, b"")
    client.receive_data(response_fragments(call_id, 3, b"ok", 5840))
    assert client.next_event() == ResponseReceived(call_id, b"ok")


def test_big_endian_response_is_reassembled() -> None:
    # B1: a robust receiver honours a big-endian drep
    client = bound_client()
    call_id, _ = client.request(0, 1, b"")
    be = b"\x00\x00\x00\x00"
    data = build_pdu(Response(call_id=call_id, p_cont_id=0, stub=b"AB", pfc_flags=1, drep=be))
    data += build_pdu(Response(call_id=call_id, p_cont_id=0, stub=b"CD", pfc_flags=2, drep=be))
    client.receive_data(data)
    assert client.next_event() == ResponseReceived(call_id, b"ABCD")


def test_orphan_memory_is_bounded() -> None:
    client = bound_client(conc_mpx=True, bind_time_features=0x02, ack_features=0x02)
    assert client.bind_time_features == 0x02
    ids = []
    for _ in range(300):
        call_id, _ = client.request(0, 1, b"")
        client.orphan(call_id)
        ids.append(call_id)
    client.receive_data(response_fragments(ids[-1], 0, b"late", 5840))
    assert client.next_event() is NEED_DATA  # the late reply was discarded
    assert client.trailing_data == (b"", False)
    client.receive_data(response_fragments(ids[0], 0, b"ancient", 5840))
    with pytest.raises(RemoteProtocolError, match="not outstanding"):
        client.next_event()
