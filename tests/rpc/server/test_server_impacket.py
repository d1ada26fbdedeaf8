"""A real client against the server runtime over loopback: impacket 0.13.1 (rpc-spec C1), plus
raw PDUs for what impacket cannot send (rpc #44-#66 as they apply to the running server)."""

from __future__ import annotations

import struct
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("impacket")

from impacket.dcerpc.v5 import transport
from impacket.dcerpc.v5.dtypes import ULONG
from impacket.dcerpc.v5.ndr import NDRCALL
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.uuid import uuidtup_to_bin

from winaio import rpc
from winaio.codes import NcaStatus

from .conftest import TEST_IF, TEST_UUID, Client, address_of, basic_managers

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

IFACE = uuidtup_to_bin((str(TEST_UUID), "1.0"))


class DCERPCSessionError(DCERPCException):
    """impacket's request() looks this name up in the module of the request class."""


class Add(NDRCALL):
    opnum = 0
    structure = (("a", ULONG), ("b", ULONG))


class AddResponse(NDRCALL):
    structure = (("ErrorCode", ULONG),)


def connect(server: rpc.Server) -> Any:
    host, port = address_of(server)
    t = transport.DCERPCTransportFactory(f"ncacn_ip_tcp:{host}[{port}]")
    t.set_connect_timeout(5)
    dce = t.get_dce_rpc()
    dce.connect()
    return dce


def call_raw(dce: Any, opnum: int, stub: bytes, **kw: Any) -> bytes:
    dce.call(opnum, stub, **kw)
    return bytes(dce.recv())


def test_44_45_64_impacket_binds_and_calls(started: Any) -> None:
    # spec: rpc #44 (bind_ack), #45 (4280 echoed), #64 (first request reuses call_id 1)
    server = started()
    dce = connect(server)
    try:
        from impacket.dcerpc.v5.rpcrt import MSRPCBindAck

        resp = dce.bind(IFACE)
        ack = MSRPCBindAck(resp.getData())
        assert ack["type"] == 12 and ack["max_tfrag"] == 4280 and ack["max_rfrag"] == 4280
        req = Add()
        req["a"], req["b"] = 2, 40
        stub = call_raw(dce, 0, req.getData())
        assert struct.unpack("<I", stub) == (42,)
        assert call_raw(dce, 0, req.getData()) == struct.pack("<I", 42)
    finally:
        dce.disconnect()


def test_57_59_faults_reach_impacket_by_name(started: Any) -> None:
    # spec: rpc #57 (op_rng_error), #59 (undecodable stub -> 0x6F7)
    server = started()
    dce = connect(server)
    try:
        dce.bind(IFACE)
        with pytest.raises(DCERPCException, match="nca_s_op_rng_error"):
            call_raw(dce, 42, b"")
        with pytest.raises(DCERPCException, match="rpc_x_bad_stub_data"):
            call_raw(dce, 0, b"\x01\x00")  # Add's stub truncated (0x6F7)
        # the connection keeps serving
        assert call_raw(dce, 0, struct.pack("<II", 1, 2)) == struct.pack("<I", 3)
    finally:
        dce.disconnect()


def test_100kb_fragmented_echo_through_impacket(started: Any) -> None:
    # spec: rpc #67/#71/#72 over the runtime: impacket fragments at 4280, we reassemble and
    # answer in fragments it reassembles.
    server = started()
    dce = connect(server)
    try:
        dce.bind(IFACE)
        data = bytes(range(256)) * 400
        stub = TEST_IF.procedure("Echo").encode_request({"len": len(data), "data": data})
        out = call_raw(dce, 1, stub)
        assert TEST_IF.procedure("Echo").decode_response(out, request={"len": len(data)}) == {
            "out": data
        }
    finally:
        dce.disconnect()


def test_63_object_uuid_reaches_the_manager(started: Any) -> None:
    # spec: rpc #63
    seen: list[Any] = []

    def add(a: int, b: int) -> int:
        seen.append(rpc.current_call().object)
        return a + b

    server = started({"Add": add})
    obj = UUID("01234567-89ab-cdef-0123-456789abcdef")
    dce = connect(server)
    try:
        dce.bind(IFACE)
        assert call_raw(dce, 0, struct.pack("<II", 1, 2), uuid=obj.bytes_le) == b"\x03\0\0\0"
    finally:
        dce.disconnect()
    assert seen == [obj]


def test_47_unknown_interface_is_rejected_by_bind_ack(started: Any) -> None:
    # spec: rpc #47
    server = started()
    dce = connect(server)
    try:
        with pytest.raises(DCERPCException, match="abstract_syntax_not_supported"):
            dce.bind(uuidtup_to_bin(("11111111-2222-3333-4444-555555555555", "1.0")))
    finally:
        dce.disconnect()


def test_54_alter_context_adds_a_second_interface(make_server: Any, clients: Any) -> None:
    # spec: rpc #54
    other = rpc.Interface(
        "other", "11111111-2222-3333-4444-555555555555", 1, [TEST_IF.procedure("Add")]
    )
    server = make_server()
    server.register_interface(TEST_IF, basic_managers())
    server.register_interface(other, {"Add": lambda a, b: a * b})
    server.use_protseq("ncacn_ip_tcp")
    server.listen()
    client = clients(address_of(server))
    client.sock.sendall(
        client.conn.alter_context([rpc.ContextElement(1, other.syntax, (rpc.NDR20_SYNTAX,))])
    )
    assert isinstance(client.event(), rpc.AlterContextAccepted)
    stub = TEST_IF.procedure("Add").encode_request({"a": 6, "b": 7})
    for p_cont_id, expected in ((0, 13), (1, 42)):
        call_id, data = client.conn.request(p_cont_id, 0, stub)
        client.sock.sendall(data)
        reply = client.event()
        assert reply.call_id == call_id and reply.stub == struct.pack("<I", expected)


def test_55_56_58_requests_the_runtime_never_dispatches(started: Any, clients: Any) -> None:
    # spec: rpc #55 (unknown p_cont_id), #56 (before bind), #58 (IF unregistered after bind)
    server = started()
    stub = TEST_IF.procedure("Add").encode_request({"a": 1, "b": 1})
    unbound = clients(address_of(server), bind=False)
    unbound.sock.sendall(rpc.build_pdu(rpc.Request(call_id=1, p_cont_id=0, opnum=0, stub=stub)))
    raw = unbound.sock.recv(100)
    assert raw[2] == rpc.PType.FAULT and raw[3] & rpc.PfcFlags.PFC_DID_NOT_EXECUTE
    assert int.from_bytes(raw[24:28], "little") == NcaStatus.NCA_S_UNK_IF
    client = clients(address_of(server))
    client.sock.sendall(rpc.build_pdu(rpc.Request(call_id=5, p_cont_id=9, opnum=0, stub=stub)))
    raw = client.sock.recv(100)
    assert int.from_bytes(raw[24:28], "little") == NcaStatus.NCA_S_UNK_IF
    assert raw[12:16] == (5).to_bytes(4, "little")
    server.unregister_interface(TEST_IF)
    client.sock.sendall(rpc.build_pdu(rpc.Request(call_id=6, p_cont_id=0, opnum=0, stub=stub)))
    raw = client.sock.recv(100)
    assert int.from_bytes(raw[24:28], "little") == NcaStatus.NCA_S_UNK_IF


def test_60_61_62_reply_and_fault_layout(started: Any, clients: Any) -> None:
    # spec: rpc #60 (32-byte fault), #61 (never status 0), #62 (call_id, p_cont_id, alloc_hint)
    @rpc.async_manager
    def add(call: rpc.ServerCall, a: int, b: int) -> None:
        if a == 0:
            call.abort(0)
        else:
            call.complete(a + b)

    server = started({"Add": add})
    client = clients(address_of(server))
    proc = TEST_IF.procedure("Add")
    client.sock.sendall(
        rpc.build_pdu(
            rpc.Request(call_id=7, p_cont_id=0, opnum=0, stub=proc.encode_request({"a": 1, "b": 2}))
        )
    )
    raw = client.sock.recv(100)
    assert raw[2] == rpc.PType.RESPONSE and raw[12:16] == (7).to_bytes(4, "little")
    assert raw[16:20] == (4).to_bytes(4, "little") and raw[20:22] == b"\0\0"
    client.sock.sendall(
        rpc.build_pdu(
            rpc.Request(call_id=8, p_cont_id=0, opnum=0, stub=proc.encode_request({"a": 0, "b": 2}))
        )
    )
    raw = client.sock.recv(100)
    assert len(raw) == 32 and raw[2] == rpc.PType.FAULT
    assert raw[16:20] == bytes(4) and raw[28:32] == bytes(4)
    assert int.from_bytes(raw[24:28], "little") == NcaStatus.NCA_S_FAULT_UNSPEC


def test_65_66_call_id_rules(started: Any, clients: Any) -> None:
    # spec: rpc #65 (first bind with call_id 3), #66 (decreasing call_id -> proto error)
    server = started()
    client = Client.__new__(Client)
    client.__init__(address_of(server), bind=False)  # type: ignore[misc]
    try:
        client.conn = rpc.ClientConnection(first_call_id=3)
        el = rpc.ContextElement(0, TEST_IF.syntax, (rpc.NDR20_SYNTAX,))
        client.sock.sendall(client.conn.bind([el]))
        bound = client.event()
        assert isinstance(bound, rpc.BindAccepted) and bound.call_id == 3
        assert client.call("Add", a=1, b=2) == {"return": 3}
        stub = TEST_IF.procedure("Add").encode_request({"a": 1, "b": 1})
        client.sock.sendall(rpc.build_pdu(rpc.Request(call_id=2, p_cont_id=0, opnum=0, stub=stub)))
        raw = client.sock.recv(100)
        assert int.from_bytes(raw[24:28], "little") == NcaStatus.NCA_S_PROTO_ERROR
    finally:
        client.close()
