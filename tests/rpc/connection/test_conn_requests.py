"""Server-side request handling: dispatch, reassembly, call_id rules, automatic faults."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from winaio.codes import NcaStatus, RpcStatus, WinError
from winaio.errors import LocalProtocolError, RemoteProtocolError
from winaio.rpc._connection import (
    FaultReceived,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    ServerConnection,
    SimpleRegistry,
    fault_status,
)
from winaio.rpc._pdu import (
    AuthVerifier,
    Fault,
    PfcFlags,
    Request,
    Response,
    SyntaxId,
    build_pdu,
    decode_header,
    parse_pdu,
)

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
FIRST, LAST = int(PfcFlags.PFC_FIRST_FRAG), int(PfcFlags.PFC_LAST_FRAG)
Drain = Callable[[Any], list[Any]]
Split = Callable[[bytes], list[bytes]]


def frag(
    call_id: int, stub: bytes, flags: int, *, p_cont_id: int = 0, opnum: int = 1, **kw: Any
) -> bytes:
    return build_pdu(
        Request(call_id=call_id, p_cont_id=p_cont_id, opnum=opnum, stub=stub, pfc_flags=flags, **kw)
    )


def test_every_pdu_we_send_has_canonical_headers(pair: Any, split_pdus: Split) -> None:
    # spec: rpc #43 — rpc_vers 5, minor 0, drep 10 00 00 00, frag_length == bytes on the wire,
    # auth_length 0 — checked on every PDU of a session exercising every sending path
    pair.bound(conc_mpx=True, bind_time_features=0x03)
    from winaio.rpc._pdu import NDR20_SYNTAX, ContextElement

    pair.to_server(pair.client.alter_context([ContextElement(1, IFACE, (NDR20_SYNTAX,))]))
    pair.flush()
    a, _ = pair.call(1, bytes(10_000))
    b, _ = pair.call(2, b"x")
    c, _ = pair.call(3, b"y")
    pair.to_server(pair.client.cancel(c))
    pair.answer(a, bytes(20_000))
    pair.to_client(pair.server.send_fault(b, 5))
    pair.to_server(pair.client.orphan(c))
    pair.to_server(frag(99, b"", FIRST | LAST, p_cont_id=7))  # auto-fault (unknown context)
    pair.server_wrote.append(pair.server.data_to_send())  # (not for the client: raw request)
    pair.to_client(pair.server.send_shutdown())
    pdus = pair.all_wire_bytes()
    assert len(pdus) >= 12
    for pdu in pdus:
        h = decode_header(pdu)
        assert (h.rpc_vers, h.rpc_vers_minor, h.drep, h.auth_length) == (5, 0, b"\x10\0\0\0", 0)
        assert h.frag_length == len(pdu)
        parse_pdu(pdu)  # and each is a valid PDU


def test_request_with_unknown_p_cont_id_is_faulted_not_dispatched(pair: Any) -> None:
    # spec: rpc #55 — fault nca_s_unk_if with PFC_DID_NOT_EXECUTE, the connection lives on
    pair.bound()
    (event,) = pair.to_server(frag(1, b"abc", FIRST | LAST, p_cont_id=3))
    assert event == RequestRejected(1, 3, NcaStatus.NCA_S_UNK_IF, "no presentation context 3")
    fault = parse_pdu(pair.server.data_to_send())
    assert isinstance(fault, Fault) and len(build_pdu(fault)) == 32
    assert (fault.call_id, fault.p_cont_id, fault.status) == (1, 3, NcaStatus.NCA_S_UNK_IF)
    assert fault.pfc_flags & PfcFlags.PFC_DID_NOT_EXECUTE
    call_id, (request,) = pair.call(0, b"ok")
    assert isinstance(request, RequestReceived) and call_id == 2  # client counter: bind=1


def test_request_before_bind_is_faulted_and_never_dispatched(drain: Drain) -> None:
    # spec: rpc #56 — never dispatch; never a fault with status 0 (Wine's bug)
    registry: SimpleRegistry[str] = SimpleRegistry()
    registry.register(IFACE, "iface")
    server = ServerConnection(registry)
    server.receive_data(frag(1, b"abc", FIRST | LAST))
    (event,) = drain(server)
    assert isinstance(event, RequestRejected) and event.status == NcaStatus.NCA_S_UNK_IF
    fault = parse_pdu(server.data_to_send())
    assert isinstance(fault, Fault) and fault.status != 0
    assert fault.pfc_flags & PfcFlags.PFC_DID_NOT_EXECUTE


def test_fault_pdu_layout(pair: Any) -> None:
    # spec: rpc #60 (32 bytes: alloc_hint 0, p_cont_id echoed, status at 24, reserved 0),
    # #18 (abort(code) -> status == code, no stub)
    from winaio.rpc._pdu import NDR20_SYNTAX, ContextElement

    pair.bind(ContextElement(4, IFACE, (NDR20_SYNTAX,)))
    call_id, _ = pair.call(1, b"in", p_cont_id=4)
    data = pair.server.send_fault(call_id, 0x12345678)
    assert len(data) == 32
    alloc_hint, p_cont_id, _cancel, _flags, status, reserved = struct.unpack_from(
        "<IHBBII", data, 16
    )
    assert (alloc_hint, p_cont_id, status, reserved) == (0, 4, 0x12345678, 0)
    assert data[2] == 3 and not data[3] & PfcFlags.PFC_DID_NOT_EXECUTE
    (event,) = pair.to_client(data)
    assert event == FaultReceived(call_id, 0x12345678, 0x12345678, False)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (0, NcaStatus.NCA_S_FAULT_UNSPEC),
        (0x80000001, NcaStatus.NCA_S_FAULT_UNSPEC),
        (0xC0000005, WinError.ERROR_NOACCESS),  # access violation -> 998, like Wine
        (0xC00000FD, NcaStatus.NCA_S_FAULT_UNSPEC),
        (0xC0000420, NcaStatus.NCA_S_FAULT_UNSPEC),
        (RpcStatus.RPC_S_PROCNUM_OUT_OF_RANGE, NcaStatus.NCA_S_OP_RNG_ERROR),
        (RpcStatus.RPC_S_CALL_CANCELLED, NcaStatus.NCA_S_FAULT_CANCEL),
        (RpcStatus.RPC_X_BAD_STUB_DATA, 0x6F7),
        (5, 5),
        (-2147467259, 0x80004005),  # E_FAIL held in a signed int
    ],
)
def test_fault_statuses_are_mapped_and_never_forbidden(given: int, sent: int) -> None:
    # spec: rpc #61 [MS-RPCE §3.3.3.5.1], B8, A14 (RPC2NCA_STATUS)
    assert fault_status(given) == sent
    with pytest.raises(LocalProtocolError):
        fault_status(1 << 32)


def test_forbidden_status_never_reaches_the_wire(pair: Any) -> None:
    # spec: rpc #61
    pair.bound()
    call_id, _ = pair.call(1, b"")
    data = pair.server.send_fault(call_id, 0)
    assert struct.unpack_from("<I", data, 24)[0] == NcaStatus.NCA_S_FAULT_UNSPEC


def test_response_echoes_call_id_and_p_cont_id_with_alloc_hint(pair: Any) -> None:
    # spec: rpc #62
    from winaio.rpc._pdu import NDR20_SYNTAX, ContextElement

    pair.bind(ContextElement(2, IFACE, (NDR20_SYNTAX,)))
    call_id, (_request,) = pair.call(7, b"\x01\x02", p_cont_id=2)
    data = pair.server.send_response(call_id, b"R" * 12)
    response = parse_pdu(data)
    assert isinstance(response, Response)
    assert (response.call_id, response.p_cont_id, response.alloc_hint) == (call_id, 2, 12)
    (event,) = pair.to_client(data)
    assert event == ResponseReceived(call_id, b"R" * 12)


def test_object_uuid_request(pair: Any) -> None:
    # spec: rpc #63 — 40-byte header, stub at 40, object available to the manager
    pair.bound()
    obj = UUID("aabbccdd-eeff-0011-2233-445566778899")
    call_id, data = pair.client.request(0, 3, b"STUBDATA", object=obj)
    assert data[3] & PfcFlags.PFC_OBJECT_UUID and data[40:] == b"STUBDATA"
    (request,) = pair.to_server(data)
    assert (request.object, request.stub, request.opnum) == (obj, b"STUBDATA", 3)
    assert request.pfc_flags & PfcFlags.PFC_OBJECT_UUID
    pair.answer(call_id, b"")
    call_id, data = pair.client.request(0, 3, bytes(range(256)) * 40, object=obj)
    pdus = [parse_pdu(p) for p in _split(data)]
    assert len(pdus) > 1 and all(p.object == obj for p in pdus)
    (request,) = pair.to_server(data)
    assert request.object == obj and request.stub == bytes(range(256)) * 40


def _split(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = decode_header(data, pos).frag_length
        out.append(data[pos : pos + n])
        pos += n
    return out


def test_first_request_may_reuse_the_bind_call_id(
    pair: Any, golden: Callable[[str], bytes]
) -> None:
    # spec: rpc #64 — impacket: bind call_id 1, first request call_id 1
    pair.server.receive_data(golden("impacket_bind"))
    pair.server.next_event()
    (request,) = pair.to_server(golden("impacket_request_add"))
    assert isinstance(request, RequestReceived) and request.call_id == 1


def test_decreasing_call_id_is_faulted_with_proto_error(pair: Any, drain: Drain) -> None:
    # spec: rpc #66 — fault 0x1C01000B, and the connection keeps serving
    pair.bound()
    (first,) = pair.to_server(frag(10, b"a", FIRST | LAST))
    (again,) = pair.to_server(frag(10, b"b", FIRST | LAST))  # not increasing either
    (lower,) = pair.to_server(frag(9, b"c", FIRST | LAST))
    assert isinstance(first, RequestReceived)
    assert isinstance(again, RequestRejected) and again.status == NcaStatus.NCA_S_PROTO_ERROR
    assert isinstance(lower, RequestRejected) and lower.status == NcaStatus.NCA_S_PROTO_ERROR
    # Without CONC_MPX the faults wait for call 10's response, then follow it in order.
    assert pair.server.data_to_send() == b""
    out = pair.server.send_response(10, b"done")
    kinds = [(parse_pdu(p).call_id, type(parse_pdu(p)).__name__) for p in _split(out)]
    assert kinds == [(10, "Response"), (10, "Fault"), (9, "Fault")]
    (later,) = pair.to_server(frag(11, b"d", FIRST | LAST))
    assert isinstance(later, RequestReceived)


@pytest.mark.parametrize(
    "chunks", [[1, 1, 1], [4000, 4000, 2000], [0, 5000, 0, 5000], [3, 5000, 4997]]
)
def test_fragmented_request_reassembles(pair: Any, chunks: list[int]) -> None:
    # spec: rpc #67 — FIRST, middle(s), LAST; same stub as unfragmented
    pair.bound()
    stub = bytes(i % 249 for i in range(sum(chunks)))
    pos, events = 0, []
    for i, size in enumerate(chunks):
        flags = (FIRST if i == 0 else 0) | (LAST if i == len(chunks) - 1 else 0)
        events += pair.to_server(frag(5, stub[pos : pos + size], flags, alloc_hint=len(stub) - pos))
        pos += size
    (request,) = events
    assert isinstance(request, RequestReceived) and request.stub == stub
    assert request.pfc_flags & FIRST and request.pfc_flags & LAST


def test_first_fragment_without_first_flag_is_a_protocol_error(pair: Any) -> None:
    # spec: rpc #68 (first half)
    pair.bound()
    pair.server.receive_data(frag(5, b"abc", LAST))
    with pytest.raises(RemoteProtocolError, match="PFC_FIRST_FRAG") as info:
        pair.server.next_event()
    assert info.value.status == NcaStatus.NCA_S_PROTO_ERROR
    fault = parse_pdu(pair.server.data_to_send())
    assert isinstance(fault, Fault) and fault.status == NcaStatus.NCA_S_PROTO_ERROR


def test_later_fragment_with_first_flag_is_a_protocol_error(pair: Any) -> None:
    # spec: rpc #68 (second half)
    pair.bound()
    assert pair.to_server(frag(5, b"abc", FIRST)) == []
    pair.server.receive_data(frag(5, b"def", FIRST | LAST))
    with pytest.raises(RemoteProtocolError, match="last fragment"):
        pair.server.next_event()
    assert parse_pdu(pair.server.data_to_send()).call_id == 5
    with pytest.raises(RemoteProtocolError, match="broken"):
        pair.server.next_event()


def test_fragments_must_agree_on_p_cont_id_and_opnum(pair: Any) -> None:
    pair.bound()
    pair.to_server(frag(5, b"abc", FIRST, opnum=1))
    pair.server.receive_data(frag(5, b"def", LAST, opnum=2))
    with pytest.raises(RemoteProtocolError, match="changed between fragments"):
        pair.server.next_event()


@pytest.mark.parametrize("alloc_hint", [0, 1, 5])
def test_alloc_hint_is_only_a_hint(pair: Any, alloc_hint: int) -> None:
    # spec: rpc #69 — 0 and smaller-than-actual are accepted
    pair.bound()
    stub = bytes(range(100))
    events = pair.to_server(frag(5, stub[:60], FIRST, alloc_hint=alloc_hint))
    events += pair.to_server(frag(5, stub[60:], LAST, alloc_hint=alloc_hint))
    assert [e.stub for e in events] == [stub]


def test_request_over_4_mib_is_faulted_with_status_5(pair_factory: Any) -> None:
    # spec: rpc #70 [MS-RPCE §3.3.3.5.4] — fault status 5 as soon as the limit is crossed,
    # later fragments of that call are dropped, and the connection keeps serving.
    pair = pair_factory(client={"max_xmit_frag": 5840, "max_recv_frag": 5840})
    pair.bound()
    chunk = bytes(5840 - 24)
    total, events = 0, []
    limit = 4 * 1024 * 1024
    flags = FIRST
    while total <= limit + 3 * len(chunk):
        events += pair.to_server(frag(5, chunk, flags, alloc_hint=0))
        flags = 0
        total += len(chunk)
    events += pair.to_server(frag(5, chunk, LAST))
    (rejected,) = events
    assert isinstance(rejected, RequestRejected) and rejected.status == 5
    fault = parse_pdu(pair.server.data_to_send())
    assert isinstance(fault, Fault) and (fault.call_id, fault.status) == (5, 5)
    (request,) = pair.to_server(frag(6, b"small", FIRST | LAST))
    assert request.stub == b"small"


def test_exactly_4_mib_is_accepted(pair: Any) -> None:
    pair.bound()
    stub = bytes(4 * 1024 * 1024)
    _call_id, data = pair.client.request(0, 1, stub)
    (request,) = pair.to_server(data)
    assert len(request.stub) == len(stub)


def test_alloc_hint_announcing_more_than_4_mib_is_refused_early(pair: Any) -> None:
    # [samba:dcesrv_core.c] checks the announced size on the first fragment
    pair.bound()
    (rejected,) = pair.to_server(frag(5, b"x", FIRST, alloc_hint=4 * 1024 * 1024 + 1))
    assert isinstance(rejected, RequestRejected) and rejected.status == 5
    assert pair.to_server(frag(5, b"y", LAST)) == []  # remaining fragments are dropped


def test_old_fragments_are_dropped_within_150_call_ids(pair: Any) -> None:
    # [MS-RPCE §3.3.3.5.6]
    pair.bound()
    (_request,) = pair.to_server(frag(200, b"a", FIRST | LAST))
    assert pair.to_server(frag(51, b"stale", LAST)) == []
    pair.server.receive_data(frag(50, b"stale", LAST))
    with pytest.raises(RemoteProtocolError):
        pair.server.next_event()


def test_request_fragment_larger_than_max_frag_is_fatal(pair_factory: Any) -> None:
    pair = pair_factory(server={"max_frag": 2048})
    pair.bound()
    pair.server.receive_data(frag(5, bytes(3000), FIRST | LAST))
    with pytest.raises(RemoteProtocolError, match="3024 > 2048"):
        pair.server.next_event()


def test_authenticated_request_is_refused(pair: Any) -> None:
    pair.bound()
    verifier = AuthVerifier(auth_type=10, auth_level=6, auth_value=bytes(16))
    pair.server.receive_data(frag(5, b"x", FIRST | LAST, auth_verifier=verifier))
    with pytest.raises(RemoteProtocolError) as info:
        pair.server.next_event()
    assert info.value.status == 5


def test_send_response_misuse_is_a_local_error(pair: Any) -> None:
    pair.bound()
    with pytest.raises(LocalProtocolError) as info:
        pair.server.send_response(42, b"")
    assert info.value.status == RpcStatus.RPC_S_NO_CALL_ACTIVE
    call_id, _ = pair.call(1, b"")
    pair.server.send_response(call_id, b"")
    with pytest.raises(LocalProtocolError, match="already answered"):
        pair.server.send_fault(call_id, 5)
    with pytest.raises(LocalProtocolError):
        pair.server.is_cancel_requested(call_id)


def test_pending_cancel_flag_counts_as_a_cancel(pair: Any) -> None:
    pair.bound()
    (request,) = pair.to_server(frag(5, b"", FIRST | LAST | int(PfcFlags.PFC_PENDING_CANCEL)))
    assert request.cancel_count == 1 and pair.server.is_cancel_requested(5)


def test_big_endian_request_is_dispatched_with_its_drep(pair: Any) -> None:
    pair.bound()
    data = frag(5, b"\x00\x00\x00\x07", FIRST | LAST, drep=b"\x00\x00\x00\x00", opnum=0x0102)
    (request,) = pair.to_server(data)
    assert (request.opnum, request.drep) == (0x0102, b"\x00\x00\x00\x00")


@pytest.mark.parametrize(
    ("status", "wire", "client_status"),
    [
        # spec: rpc #57 — opnum >= procedure count: the runtime faults with this status
        (RpcStatus.RPC_S_PROCNUM_OUT_OF_RANGE, 0x1C010002, RpcStatus.RPC_S_PROCNUM_OUT_OF_RANGE),
        # spec: rpc #58 — interface unregistered after bind: the runtime faults nca_s_unk_if
        (RpcStatus.RPC_S_UNKNOWN_IF, 0x1C010003, RpcStatus.RPC_S_UNKNOWN_IF),
        # spec: rpc #59 — undecodable stub: 0x6F7 passes through unchanged
        (RpcStatus.RPC_X_BAD_STUB_DATA, 0x6F7, RpcStatus.RPC_X_BAD_STUB_DATA),
    ],
)
def test_runtime_fault_statuses_on_the_wire(
    pair: Any, status: int, wire: int, client_status: int
) -> None:
    # The decisions are the runtime's (registry, NDR); the wire layer maps and carries them.
    pair.bound()
    call_id, _ = pair.call(99, b"\x01")
    data = pair.server.send_fault(call_id, status, did_not_execute=True)
    assert struct.unpack_from("<I", data, 24)[0] == wire
    assert data[3] & PfcFlags.PFC_DID_NOT_EXECUTE
    assert pair.to_client(data) == [FaultReceived(call_id, client_status, wire, True)]
