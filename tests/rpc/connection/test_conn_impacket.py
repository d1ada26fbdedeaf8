"""Cross-checks against impacket 0.13.1 (offline, no sockets).

1. impacket's client (``DCERPC_v5``) runs over an in-memory transport whose other end is our
   ServerConnection plus a ten-line dispatcher: impacket produces the exact bytes it would
   put on a socket and parses ours with its own code.
2. impacket's ``DCERPCServer`` is given a fake client socket: the bind_ack, responses and
   faults it builds are parsed by our ClientConnection.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("impacket")

from impacket.dcerpc.v5.dtypes import ULONG
from impacket.dcerpc.v5.ndr import NDRCALL
from impacket.dcerpc.v5.rpcrt import DCERPC_v5, DCERPCException, DCERPCServer
from impacket.uuid import uuidtup_to_bin

from winaio.codes import RpcStatus
from winaio.errors import RemoteProtocolError
from winaio.rpc._connection import (
    NEED_DATA,
    BindAccepted,
    ClientConnection,
    FaultReceived,
    RequestReceived,
    ResponseReceived,
    ServerConnection,
    SimpleRegistry,
)
from winaio.rpc._pdu import NDR20_SYNTAX, ContextElement, SyntaxId

pytestmark = pytest.mark.interop

IFACE_STR = ("12345678-1234-abcd-ef00-0123456789ab", "1.0")
ECHO_STR = ("60a15ec5-4de8-11d7-a637-005056a20182", "1.0")
IFACE = SyntaxId(UUID(IFACE_STR[0]), 1, 0)
ECHO = SyntaxId(UUID(ECHO_STR[0]), 1, 0)


class DCERPCSessionError(DCERPCException):
    """impacket's request() looks this name up in the module of the request class."""


class Add(NDRCALL):
    opnum = 0
    structure = (("a", ULONG), ("b", ULONG))


class AddResponse(NDRCALL):
    structure = (("result", ULONG), ("ErrorCode", ULONG))


def drain(conn: Any) -> list[Any]:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def dispatch(event: RequestReceived[str]) -> tuple[str, Any]:
    """A minimal manager table: opnum 0 adds, 1 returns N bytes, 2 echoes, else op_rng_error."""
    if event.opnum == 0:
        a, b = struct.unpack_from("<II", event.stub)
        return "ok", struct.pack("<II", a + b, 0)
    if event.opnum == 1:
        (n,) = struct.unpack_from("<I", event.stub)
        return "ok", bytes(i % 251 for i in range(n))
    if event.opnum == 2:
        return "ok", event.stub
    return "fault", RpcStatus.RPC_S_PROCNUM_OUT_OF_RANGE


class LoopbackTransport:
    """Stands in for impacket's TCPTransport; the far end is a winaio ServerConnection."""

    def __init__(self, server: ServerConnection[str]) -> None:
        self.server = server
        self.inbox = b""
        self.requests: list[RequestReceived[str]] = []
        self.sent: list[bytes] = []

    # the part of DCERPCTransport that DCERPC_v5 uses at auth level NONE
    def connect(self) -> int:
        return 1

    def disconnect(self) -> None:
        self.server.receive_data(b"")
        drain(self.server)

    def get_dce_rpc(self) -> DCERPC_v5:
        return DCERPC_v5(self)

    def send(self, data: bytes, forceWriteAndx: int = 0, forceRecv: int = 0) -> None:
        self.sent.append(data)
        self.server.receive_data(data)
        for event in drain(self.server):
            if isinstance(event, RequestReceived):
                self.requests.append(event)
                kind, value = dispatch(event)
                if kind == "ok":
                    self.inbox += self.server.send_response(event.call_id, value)
                else:
                    self.inbox += self.server.send_fault(event.call_id, value, did_not_execute=True)
        self.inbox += self.server.data_to_send()

    def recv(self, forceRecv: int = 0, count: int = 0) -> bytes:
        size = count or 8192
        if count and len(self.inbox) < count:
            raise DCERPCException("Connection closed by remote host")
        data, self.inbox = self.inbox[:size], self.inbox[size:]
        return data


def impacket_client(**server_kw: Any) -> tuple[DCERPC_v5, LoopbackTransport]:
    registry: SimpleRegistry[str] = SimpleRegistry()
    registry.register(IFACE, "iface")
    registry.register(ECHO, "echo")
    transport = LoopbackTransport(ServerConnection(registry, **server_kw))
    dce = transport.get_dce_rpc()
    dce.connect()
    return dce, transport


def test_impacket_binds_and_calls(golden: Callable[[str], bytes]) -> None:
    # spec: rpc #44, #45 (impacket proposes 4280 and gets 4280), #64 (call_id 1 reused)
    dce, transport = impacket_client()
    dce.bind(uuidtup_to_bin(IFACE_STR))
    assert transport.sent[0] == golden("impacket_bind")
    assert transport.server.max_xmit_frag == transport.server.max_recv_frag == 4280
    request = Add()
    request["a"], request["b"] = 2, 40
    response = dce.request(request)
    assert response["result"] == 42 and response["ErrorCode"] == 0
    assert transport.sent[1] == golden("impacket_request_add")
    assert transport.requests[0].call_id == 1
    response = dce.request(request)  # next call_id 2
    assert transport.requests[1].call_id == 2


def test_impacket_reassembles_our_fragmented_10000_byte_response() -> None:
    # spec: rpc #72, #71
    dce, _transport = impacket_client()
    dce.bind(uuidtup_to_bin(IFACE_STR))
    dce.call(1, struct.pack("<I", 10_000))
    raw = dce.recv()
    assert raw == bytes(i % 251 for i in range(10_000))
    # with a bigger negotiated size the same stub takes fewer fragments
    dce.call(1, struct.pack("<I", 100_000))
    assert dce.recv() == bytes(i % 251 for i in range(100_000))


@pytest.mark.parametrize("frag_size", [1, 7, 100, 1000])
def test_impacket_fragmented_requests_reassemble(frag_size: int) -> None:
    # spec: rpc #67 — impacket cuts the stub every `frag_size` bytes (alloc_hint = total)
    dce, transport = impacket_client()
    dce.bind(uuidtup_to_bin(IFACE_STR))
    dce.set_max_fragment_size(frag_size)
    stub = bytes(range(256)) * 8
    dce.call(2, stub)
    assert dce.recv() == stub
    assert transport.requests[-1].stub == stub
    assert len(transport.sent) - 1 == -(-len(stub) // frag_size)  # one PDU per fragment


def test_impacket_sees_op_rng_error() -> None:
    # spec: rpc #57 (impacket half) — our fault makes impacket raise 'nca_s_op_rng_error'
    dce, _transport = impacket_client()
    dce.bind(uuidtup_to_bin(IFACE_STR))
    with pytest.raises(DCERPCException, match="nca_s_op_rng_error"):
        dce.call(7, b"")
        dce.recv()


def test_impacket_sees_rejected_interface() -> None:
    # spec: rpc #47 — impacket's message for provider_rejection / abstract_syntax_not_supported
    dce, _ = impacket_client()
    with pytest.raises(DCERPCException, match="abstract_syntax_not_supported"):
        dce.bind(uuidtup_to_bin(("11111111-2222-3333-4444-555555555555", "1.0")))


def test_impacket_alter_context_reaches_the_new_interface() -> None:
    # spec: rpc #54 — impacket's alter_ctx() sends alter_context (ptype 14) with p_cont_id 1
    dce, transport = impacket_client()
    dce.bind(uuidtup_to_bin(IFACE_STR))
    echo = dce.alter_ctx(uuidtup_to_bin(ECHO_STR))
    assert transport.sent[-1][2] == 14
    echo.call(2, b"\x05\x00\x00\x00")
    assert echo.recv() == b"\x05\x00\x00\x00"
    assert transport.requests[-1].interface == "echo" and transport.requests[-1].p_cont_id == 1


class FakeSocket:
    def __init__(self) -> None:
        self.out: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.out.append(bytes(data))
        return len(data)


def impacket_server(reply_size: int = 8) -> tuple[DCERPCServer, FakeSocket]:
    sock = FakeSocket()
    server = DCERPCServer(client_socket=sock)
    server.addCallbacks(
        IFACE_STR,
        "\\PIPE\\demo",
        {
            0: lambda stub: struct.pack("<II", sum(struct.unpack("<II", stub[:8])), 0),
            1: lambda stub: b"Z" * reply_size,
        },
    )
    return server, sock


def bound_client(server: DCERPCServer, sock: FakeSocket) -> tuple[ClientConnection, BindAccepted]:
    client = ClientConnection(max_xmit_frag=4280, max_recv_frag=4280)
    server.processRequest(client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))]))
    client.receive_data(sock.out.pop())
    (accepted,) = drain(client)
    return client, accepted


def test_our_client_parses_impacket_bind_ack_and_response() -> None:
    # impacket-built bind_ack: assoc 0x1234, sec_addr "\PIPE\demo", 'A' padding bytes
    server, sock = impacket_server()
    client, accepted = bound_client(server, sock)
    assert isinstance(accepted, BindAccepted)
    assert accepted.assoc_group_id == 0x1234 and accepted.accepted == (0,)
    assert accepted.sec_addr == b"\\PIPE\\demo\x00"
    call_id, data = client.request(0, 0, struct.pack("<II", 2, 40))
    server.send(server.processRequest(data))
    client.receive_data(sock.out.pop())
    assert drain(client) == [ResponseReceived(call_id, struct.pack("<II", 42, 0))]


def test_our_client_maps_impacket_short_fault() -> None:
    # impacket answers an unknown opnum with a 28-byte fault 0x6E4 (rpc_s_cannot_support)
    server, sock = impacket_server()
    client, _ = bound_client(server, sock)
    call_id, data = client.request(0, 9, b"")
    server.send(server.processRequest(data))
    fault = sock.out.pop()
    assert len(fault) == 28
    client.receive_data(fault)
    assert drain(client) == [FaultReceived(call_id, RpcStatus.RPC_S_CANNOT_SUPPORT, 0x6E4, False)]


def test_impacket_server_misframes_fragmented_responses() -> None:
    # Finding: DCERPCServer.send() keeps the *total* frag_len in every fragment header, so a
    # response over its 4248-byte fragment limit cannot be framed. We must refuse it rather
    # than deliver a wrong stub.
    server, sock = impacket_server(reply_size=10_000)
    client, _ = bound_client(server, sock)
    _, data = client.request(0, 1, b"")
    server.send(server.processRequest(data))
    stream = b"".join(sock.out)
    assert struct.unpack_from("<H", stream, 8)[0] == 10_024 != len(sock.out[0])
    client.receive_data(stream)
    with pytest.raises(RemoteProtocolError):
        drain(client)


def test_impacket_parses_our_bind_nak() -> None:
    # spec: rpc #53 — a second bind on a bound connection gets bind_nak reason 0; impacket
    # reads provider_reject_reason at offset 16 and raises with its name
    from impacket.dcerpc.v5.rpcrt import MSRPCBindNak, MSRPCHeader

    dce, transport = impacket_client()
    dce.bind(uuidtup_to_bin(IFACE_STR))
    with pytest.raises(DCERPCException, match="reason_not_specified"):
        dce.bind(uuidtup_to_bin(IFACE_STR))
    assert transport.server.bound  # the nak did not undo the first bind
    # A foreign rpc_vers gets a 24-byte bind_nak (reason 4, versions {5.0}) impacket can read.
    client = ClientConnection()
    registry: SimpleRegistry[str] = SimpleRegistry()
    fresh = ServerConnection(registry)
    bind = bytearray(client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))]))
    bind[0] = 4
    fresh.receive_data(bytes(bind))
    drain(fresh)
    data = fresh.data_to_send()
    header = MSRPCHeader(data)
    assert header["type"] == 13 and header["frag_len"] == len(data) == 24
    assert MSRPCBindNak(header["pduData"])["RejectedReason"] == 4
    assert data[18:21] == b"\x01\x05\x00"  # n_protocols=1, {5, 0}
