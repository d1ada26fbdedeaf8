"""Replies: fragmentation, ordering with and without PFC_CONC_MPX, cancel, orphan, shutdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from winaio.codes import NcaStatus, RpcStatus
from winaio.errors import LocalProtocolError
from winaio.rpc._connection import (
    CallOrphaned,
    CancelRequested,
    ConnectionClosed,
    FaultReceived,
    RequestReceived,
    ResponseReceived,
    ShutdownRequested,
)
from winaio.rpc._pdu import PfcFlags, Response, parse_pdu

FIRST, LAST = int(PfcFlags.PFC_FIRST_FRAG), int(PfcFlags.PFC_LAST_FRAG)
Split = Callable[[bytes], list[bytes]]


@pytest.mark.parametrize("max_recv", [1432, 4280, 5840, 9000])
def test_large_response_is_fragmented_to_the_clients_max_recv_frag(
    pair_factory: Any, split_pdus: Split, max_recv: int
) -> None:
    # spec: rpc #71 — every frag_length <= client's max_recv_frag (and <= 5840), FIRST on the
    # first, LAST on the last, same call_id
    pair = pair_factory(client={"max_recv_frag": max_recv})
    pair.bound()
    call_id, _ = pair.call(1, b"")
    stub = bytes(i % 256 for i in range(100_000))
    data = pair.server.send_response(call_id, stub)
    pdus = [parse_pdu(p) for p in split_pdus(data)]
    assert len(pdus) == -(-len(stub) // ((min(max_recv, 5840) - 24) // 16 * 16))
    for i, pdu in enumerate(pdus):
        assert isinstance(pdu, Response) and pdu.call_id == call_id
        assert pdu.frag_length <= min(max_recv, 5840)
        assert bool(pdu.pfc_flags & FIRST) == (i == 0)
        assert bool(pdu.pfc_flags & LAST) == (i == len(pdus) - 1)
    (event,) = pair.to_client(data)
    assert event == ResponseReceived(call_id, stub)


def test_conc_mpx_pipelined_requests_are_answered_out_of_order(
    pair: Any, split_pdus: Split
) -> None:
    # spec: rpc #73 — both answered, possibly out of order, each with its own call_id
    pair.bound(conc_mpx=True)
    a, _ = pair.call(1, b"first")
    b, _ = pair.call(2, b"second")
    assert a != b
    out_b = pair.server.send_response(b, b"B" * 9000)  # completes first: goes out at once
    assert [parse_pdu(p).call_id for p in split_pdus(out_b)] == [b, b]
    out_a = pair.server.send_response(a, b"A")
    assert [parse_pdu(p).call_id for p in split_pdus(out_a)] == [a]
    events = pair.to_client(out_b) + pair.to_client(out_a)
    assert events == [ResponseReceived(b, b"B" * 9000), ResponseReceived(a, b"A")]


def test_conc_mpx_client_reassembles_interleaved_fragments(pair: Any, split_pdus: Split) -> None:
    # [MS-RPCE §3.3.2.5.2]: the client routes response fragments by call_id
    pair.bound(conc_mpx=True)
    a, _ = pair.call(1, b"")
    b, _ = pair.call(2, b"")
    frags_a = split_pdus(pair.server.send_response(a, b"a" * 12000))
    frags_b = split_pdus(pair.server.send_response(b, b"b" * 12000))
    interleaved = [f for pair_ in zip(frags_a, frags_b, strict=True) for f in pair_]
    events = pair.to_client(b"".join(interleaved))
    assert sorted((e.call_id, e.stub) for e in events) == [(a, b"a" * 12000), (b, b"b" * 12000)]


def test_without_conc_mpx_replies_keep_request_order(pair: Any, split_pdus: Split) -> None:
    # spec: rpc #74 — responses leave in request order; fragments of calls never interleave.
    # (Our client would not pipeline on an exclusive connection; impacket-style clients may.)
    from winaio.rpc._pdu import request_fragments

    pair.bound()
    reqs = [request_fragments(cid, 0, 1, b"req", 5840) for cid in (10, 11, 12)]
    events = pair.to_server(b"".join(reqs))
    assert [e.call_id for e in events] == [10, 11, 12]
    assert pair.server.send_response(12, b"c" * 7000) == b""  # waits for 10 and 11
    assert pair.server.send_fault(11, 5) == b""
    out = pair.server.send_response(10, b"a" * 7000)
    order = [(parse_pdu(p).call_id, p[2]) for p in split_pdus(out)]
    assert order == [(10, 2), (10, 2), (11, 3), (12, 2), (12, 2)]
    assert pair.server.pending_call_ids == ()


def test_orphaned_call_in_the_reply_order_does_not_block_later_calls(pair: Any) -> None:
    from winaio.rpc._pdu import request_fragments

    pair.bound()
    pair.to_server(b"".join(request_fragments(cid, 0, 1, b"", 5840) for cid in (2, 3)))
    assert pair.server.send_response(3, b"three") == b""
    from winaio.rpc._pdu import Orphaned, build_pdu

    (orphaned,) = pair.to_server(build_pdu(Orphaned(call_id=2)))
    assert orphaned == CallOrphaned(2)
    assert parse_pdu(pair.server.data_to_send()).call_id == 3  # released by the orphan
    assert pair.server.send_response(2, b"late") == b""  # nothing is sent for it


def test_nonabortive_cancel_reaches_the_manager(pair: Any) -> None:
    # spec: rpc #14 (co_cancel with the call's call_id, client keeps waiting), #15 (test_cancel
    # before/after), #16 (manager aborts -> fault nca_s_fault_cancel -> client sees 1818)
    pair.bound()
    call_id, _ = pair.call(1, b"")
    assert pair.server.is_cancel_requested(call_id) is False
    data = pair.client.cancel(call_id)
    assert len(data) == 16 and data[2] == 18 and int.from_bytes(data[12:16], "little") == call_id
    (cancel,) = pair.to_server(data)
    assert cancel == CancelRequested(call_id, 1)
    assert pair.server.is_cancel_requested(call_id) is True
    assert pair.client.outstanding_call_ids == (call_id,)
    (fault,) = pair.to_client(pair.server.send_fault(call_id, RpcStatus.RPC_S_CALL_CANCELLED))
    assert fault == FaultReceived(
        call_id, RpcStatus.RPC_S_CALL_CANCELLED, NcaStatus.NCA_S_FAULT_CANCEL, False
    )


def test_response_carries_the_cancel_count(pair: Any) -> None:
    pair.bound()
    call_id, _ = pair.call(1, b"")
    pair.to_server(pair.client.cancel(call_id) + pair.client.cancel(call_id))
    (response,) = pair.answer(call_id, b"done anyway")
    assert response == ResponseReceived(call_id, b"done anyway", 2)


def test_orphan_discards_late_replies_and_server_sends_nothing(pair: Any) -> None:
    # spec: rpc #13 (abortive cancel completes locally), #17 (late PDUs discarded)
    pair.bound()
    call_id, _ = pair.call(1, b"")
    late_response = pair.server.send_response(call_id, b"too late")  # already on the wire
    data = pair.client.orphan(call_id)
    assert data[2] == 19 and len(data) == 16
    assert pair.client.outstanding_call_ids == () and pair.client.must_close
    assert pair.to_client(late_response) == []  # discarded
    with pytest.raises(LocalProtocolError, match="orphaned"):
        pair.client.request(0, 1, b"")


def test_orphan_on_the_server_side(pair_factory: Any) -> None:
    # After orphaned, nothing is sent for the call_id (send_response returns b""); with
    # KeepConnectionOnOrphan negotiated the client may go on using the connection.
    pair = pair_factory()
    _, accepted = pair.bound(bind_time_features=0x02)
    assert accepted.bind_time_features == 0x02
    call_id, _ = pair.call(1, b"")
    (event,) = pair.to_server(pair.client.orphan(call_id))
    assert event == CallOrphaned(call_id)
    assert pair.server.send_response(call_id, b"never sent") == b""
    assert pair.server.data_to_send() == b""
    assert not pair.client.must_close
    second, (request,) = pair.call(2, b"next")
    assert isinstance(request, RequestReceived) and request.call_id == second
    (response,) = pair.answer(second, b"ok")
    assert response.call_id == second


def test_late_fault_for_an_orphaned_call_is_discarded(pair: Any) -> None:
    # spec: rpc #17 (fault variant)
    pair.bound(bind_time_features=0x02)
    call_id, _ = pair.call(1, b"")
    late = pair.server.send_fault(call_id, 5)
    pair.client.orphan(call_id)
    assert pair.to_client(late) == []


def test_cancel_during_reassembly_is_counted(pair: Any) -> None:
    from winaio.rpc._pdu import CoCancel, Request, build_pdu

    pair.bound()
    pair.to_server(build_pdu(Request(call_id=4, p_cont_id=0, opnum=1, stub=b"a", pfc_flags=FIRST)))
    assert pair.to_server(build_pdu(CoCancel(call_id=4))) == []
    (request,) = pair.to_server(
        build_pdu(Request(call_id=4, p_cont_id=0, opnum=1, stub=b"b", pfc_flags=LAST))
    )
    assert request.cancel_count == 1 and request.stub == b"ab"
    assert pair.to_server(build_pdu(CoCancel(call_id=77))) == []  # unknown call: ignored


def test_shutdown_is_16_bytes_and_reported_to_the_client(pair: Any) -> None:
    # spec: rpc #99
    pair.bound()
    call_id, _ = pair.call(1, b"")
    data = pair.server.send_shutdown()
    assert len(data) == 16 and data[2] == 17
    assert pair.to_client(data) == [ShutdownRequested()]
    assert pair.client.shutdown_requested and not pair.client.idle  # wait for the call
    pair.answer(call_id, b"")
    assert pair.client.idle


def test_connection_closed_reports_pending_calls(pair: Any) -> None:
    pair.bound()
    call_id, _ = pair.call(1, b"")
    (closed,) = pair.to_server(b"")  # EOF
    assert isinstance(closed, ConnectionClosed) and closed.pending_call_ids == (call_id,)
    assert closed.association_ended
    pair.client.receive_data(b"")
    assert pair.client.next_event() == ConnectionClosed((call_id,), pair.client.assoc_group_id)
    assert pair.client.next_event() == pair.client.next_event()  # repeats
    with pytest.raises(LocalProtocolError, match="after EOF"):
        pair.client.receive_data(b"more")
