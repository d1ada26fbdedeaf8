"""Fixtures for the server runtime tests: a test interface, servers that are always closed,
and clients (the wire layer's ClientConnection over a socket, and impacket).

Everything runs on 127.0.0.1 with ports chosen by the kernel (port 0)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from winaio import rpc

TEST_UUID = UUID("12345678-1234-abcd-ef00-0123456789ab")

ADD = rpc.Procedure(
    "Add", 0, [rpc.Param("a", rpc.ULONG), rpc.Param("b", rpc.ULONG)], returns=rpc.ULONG
)
ECHO = rpc.Procedure(
    "Echo",
    1,
    [
        rpc.Param("len", rpc.ULONG),
        rpc.Param("data", rpc.ConformantArray(rpc.BYTE, size_is="len")),
        rpc.Param("out", rpc.ConformantArray(rpc.BYTE, size_is="len"), rpc.OUT),
    ],
)
SLEEP = rpc.Procedure("Sleep", 2, [rpc.Param("ms", rpc.ULONG)], returns=rpc.ULONG)
DIVMOD = rpc.Procedure(
    "DivMod",
    3,
    [
        rpc.Param("a", rpc.ULONG),
        rpc.Param("b", rpc.ULONG),
        rpc.Param("q", rpc.ULONG, rpc.OUT),
        rpc.Param("r", rpc.ULONG, rpc.OUT),
    ],
    returns=rpc.ULONG,
)
PCTX = rpc.ContextHandle("PCTX")
OPEN = rpc.Procedure("Open", 4, [rpc.Param("value", rpc.ULONG), rpc.Param("h", PCTX, rpc.OUT)])
READ = rpc.Procedure("Read", 5, [rpc.Param("h", PCTX)], returns=rpc.ULONG)
CLOSE = rpc.Procedure("Close", 6, [rpc.Param("h", PCTX, rpc.IN_OUT)])
SUM_PIPE = rpc.Procedure("SumPipe", 7, [rpc.Param("p", rpc.Pipe(rpc.ULONG))], returns=rpc.ULONG)
COUNT_PIPE = rpc.Procedure(
    "CountPipe",
    8,
    [rpc.Param("n", rpc.ULONG), rpc.Param("p", rpc.Pipe(rpc.ULONG), rpc.OUT)],
)

TEST_IF = rpc.Interface(
    "test",
    TEST_UUID,
    (1, 0),
    [ADD, ECHO, SLEEP, DIVMOD, OPEN, READ, CLOSE, SUM_PIPE, COUNT_PIPE],
)


class Client:
    """A blocking DCE/RPC client over a socket, built on the wire layer's ClientConnection."""

    def __init__(
        self,
        address: Any,
        *,
        family: int = socket.AF_INET,
        interface: rpc.Interface = TEST_IF,
        conc_mpx: bool = False,
        assoc_group_id: int = 0,
        bind: bool = True,
        features: int | None = None,
    ) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(address)
        self.conn = rpc.ClientConnection()
        self.interface = interface
        self.bound: Any = None
        if bind:
            el = rpc.ContextElement(0, interface.syntax, (rpc.NDR20_SYNTAX,))
            self.sock.sendall(
                self.conn.bind(
                    [el],
                    conc_mpx=conc_mpx,
                    assoc_group_id=assoc_group_id,
                    bind_time_features=features,
                )
            )
            self.bound = self.event()

    def event(self) -> Any:
        while True:
            ev = self.conn.next_event()
            if ev is not rpc.NEED_DATA:
                return ev
            data = self.sock.recv(65536)
            self.conn.receive_data(data)

    def send(self, opnum: int, stub: bytes, **kw: Any) -> int:
        call_id, data = self.conn.request(0, opnum, stub, **kw)
        self.sock.sendall(data)
        return call_id

    def call(self, name: str, **args: Any) -> Any:
        """Encode, send, wait: the decoded outputs, or the FaultReceived event."""
        proc = self.interface.procedure(name)
        self.send(proc.opnum, proc.encode_request(args))
        ev = self.event()
        if isinstance(ev, rpc.ResponseReceived):
            return proc.decode_response(ev.stub, request=args)
        return ev

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def make_server() -> Iterator[Callable[..., rpc.Server]]:
    servers: list[rpc.Server] = []

    def make(**kw: Any) -> rpc.Server:
        server = rpc.Server(**kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(*args: Any, **kw: Any) -> Client:
        client = Client(*args, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def address_of(server: rpc.Server, protseq: str = "ncacn_ip_tcp") -> Any:
    for b in server.bindings:
        if b.protseq == protseq:
            if protseq == "ncalrpc":
                return f"{server.lrpc_dir}/{b.endpoint}"
            return (b.address, int(b.endpoint))
    raise LookupError(protseq)


@pytest.fixture(name="address_of")
def address_of_fixture() -> Callable[..., Any]:
    return address_of


def basic_managers() -> dict[str, Any]:
    return {
        "Add": lambda a, b: (a + b) & 0xFFFFFFFF,
        "Echo": lambda len, data: data,
        "DivMod": lambda a, b: {"q": a // b, "r": a % b, "return": 0},
    }


@pytest.fixture(name="basic_managers")
def basic_managers_fixture() -> Callable[[], dict[str, Any]]:
    return basic_managers


@pytest.fixture
def started(make_server: Callable[..., rpc.Server]) -> Callable[..., rpc.Server]:
    """A listening server on 127.0.0.1:0 serving TEST_IF with ``managers``."""

    def start(managers: dict[str, Any] | None = None, **kw: Any) -> rpc.Server:
        reg_kw = {
            k: kw.pop(k)
            for k in list(kw)
            if k in ("flags", "max_calls", "max_rpc_size", "security_callback", "rundowns")
        }
        server = make_server(**kw)
        server.register_interface(TEST_IF, managers or basic_managers(), **reg_kw)
        server.use_protseq("ncacn_ip_tcp")
        server.listen()
        return server

    return start


U32 = struct.Struct("<I")
