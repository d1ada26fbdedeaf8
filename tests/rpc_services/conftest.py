"""Shared helpers of the built-in services' tests (EPM, mgmt, rpcecho, ``python -m winaio serve``).

Real peers (rpc-spec part C): impacket (the ``test`` extra), Samba's ``rpcclient`` (Debian
smbclient) and Samba's Python bindings (python3-samba, run by the *system* python3 in a
subprocess). A peer that is missing skips its tests with the reason, except under CI, where
``.ci/run`` installs them all and sets ``WINAIO_REQUIRE_PEERS=1``: there a missing peer fails.

Helpers reach tests through fixtures (tests run with --import-mode=importlib).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from winaio import rpc
from winaio.rpc import EndpointMap
from winaio.rpc._interfaces._echo_idl import ECHO_PROCEDURES, RPCECHO
from winaio.testing import mapper_on_135, require_peer

SYSTEM_PYTHON = "/usr/bin/python3"


def _samba_python() -> str | None:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return None
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import samba.dcerpc.echo, samba.ndr"],
        capture_output=True,
        timeout=30,
    )
    return SYSTEM_PYTHON if probe.returncode == 0 else None


@pytest.fixture(scope="session")
def samba_python() -> str:
    """The system python3 that imports Samba's bindings (python3-samba)."""
    path = _samba_python()
    require_peer(
        path is not None, "Samba's Python bindings missing (apt-get install python3-samba)"
    )
    assert path is not None
    return path


@pytest.fixture(scope="session")
def rpcclient() -> str:
    """Samba's rpcclient (Debian smbclient)."""
    path = shutil.which("rpcclient")
    require_peer(path is not None, "rpcclient missing (apt-get install smbclient)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def impacket() -> Any:
    try:
        import impacket.dcerpc.v5.epm as epm
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        require_peer(False, f"impacket missing: {exc}")
        raise
    return epm


class StubDce:
    """Enough of impacket's DCERPC_v5 for its ``h*`` helpers: ``request()`` marshals the
    impacket request, hands the stub to ``answer(opnum, stub) -> response stub`` and parses the
    response with impacket's ``<Request>Response`` class, checking the last 4 octets as impacket
    does. No socket: the NDR of both sides meets in memory."""

    def __init__(self, answer: Callable[[int, bytes], bytes]) -> None:
        self.answer = answer
        self.requests: list[tuple[int, bytes]] = []

    def bind(self, *args: Any, **kwargs: Any) -> None:
        return None

    def disconnect(self) -> None:
        return None

    def request(self, request: Any, uuid: Any = None, checkError: bool = True) -> Any:
        stub = request.getData()
        self.requests.append((request.opnum, stub))
        answer = self.answer(request.opnum, stub)
        module = __import__(request.__module__, fromlist=["_"])
        response = getattr(module, type(request).__name__ + "Response")(answer)
        if checkError and answer[-4:] != b"\x00\x00\x00\x00":
            raise RuntimeError(f"status 0x{int.from_bytes(answer[-4:], 'little'):08x}")
        return response


@pytest.fixture
def stub_dce() -> type[StubDce]:
    return StubDce


# -- servers on loopback and a raw client ------------------------------------------------------

ECHO = {p.name: p for p in ECHO_PROCEDURES}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Served:
    """A server the test started (rpcecho + mgmt + epmapper on 127.0.0.1:port)."""

    server: Any
    port: int
    endpoints: EndpointMap

    @property
    def binding(self) -> str:
        return f"ncacn_ip_tcp:127.0.0.1[{self.port}]"


def start_server(**options: Any) -> Served:
    endpoints = EndpointMap()
    server = rpc.Server(**options)
    rpc.register_echo(server)
    rpc.register_mgmt(server)
    rpc.register_epm(server, endpoints)
    server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
    rpc.publish_endpoints(server, endpoints)
    server.listen(wait=False)
    (tcp,) = [b for b in server.bindings if b.protseq == "ncacn_ip_tcp"]
    return Served(server, int(tcp.endpoint), endpoints)


@pytest.fixture
def served() -> Iterator[Served]:
    s = start_server()
    try:
        yield s
    finally:
        s.server.close()


@pytest.fixture
def server_factory() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def make(**options: Any) -> Served:
        s = start_server(**options)
        started.append(s)
        return s

    yield make
    for s in started:
        s.server.close()


class RawClient:
    """A blocking socket plus winaio's sans-I/O ClientConnection: PDUs in, events out."""

    def __init__(
        self,
        port: int,
        *,
        timeout: float = 10.0,
        bind: bool = True,
        conc_mpx: bool = False,
        first_call_id: int = 1000,
        interface: rpc.SyntaxId = RPCECHO,
    ) -> None:
        # call_ids start high so that a test may send raw requests with small ones first.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = rpc.ClientConnection(first_call_id=first_call_id)
        if bind:
            contexts = [rpc.ContextElement(0, interface, (rpc.NDR20_SYNTAX,))]
            self.send(self.conn.bind(contexts, conc_mpx=conc_mpx))
            (event,) = self.events(1)
            assert isinstance(event, rpc.BindAccepted), event

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def events(self, count: int) -> list[Any]:
        out: list[Any] = []
        while len(out) < count:
            event = self.conn.next_event()
            if event is rpc.NEED_DATA:
                data = self.sock.recv(65536)
                self.conn.receive_data(data)
                if not data:
                    out.append(self.conn.next_event())
                    return out
                continue
            out.append(event)
        return out

    def call(self, name: str | rpc.Procedure, **args: Any) -> Any:
        """Call rpcecho ``name`` (or any ``Procedure`` of the bound interface); returns its
        decoded outputs or the FaultReceived event."""
        procedure = ECHO[name] if isinstance(name, str) else name
        call_id, data = self.conn.request(0, procedure.opnum, procedure.encode_request(args))
        self.send(data)
        (event,) = self.events(1)
        if isinstance(event, rpc.ResponseReceived):
            assert event.call_id == call_id
            return procedure.decode_response(event.stub, request=args)
        return event

    def recv_raw(self, timeout: float = 5.0) -> bytes:
        """Bytes until the server closes or ``timeout`` passes without any (b"" = closed)."""
        self.sock.settimeout(timeout)
        chunks = []
        try:
            while data := self.sock.recv(65536):
                chunks.append(data)
        except TimeoutError:
            pass
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_client() -> Iterator[Callable[..., RawClient]]:
    clients: list[RawClient] = []

    def make(port: int, **kw: Any) -> RawClient:
        c = RawClient(port, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def epm135(served: Served) -> Iterator[Any]:
    server = mapper_on_135(served.endpoints, mgmt=True)
    try:
        yield server
    finally:
        server.close()


def thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


U32 = struct.Struct("<I")
