"""Property tests: reassembly is independent of TCP splits and of fragment sizes; any byte
string fed to a connection produces events or RemoteProtocolError, nothing else, and stops."""

from __future__ import annotations

import itertools
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio.errors import RemoteProtocolError
from winaio.rpc._connection import (
    NEED_DATA,
    ClientConnection,
    RequestReceived,
    ResponseReceived,
    ServerConnection,
    SimpleRegistry,
)
from winaio.rpc._pdu import (
    NDR20_SYNTAX,
    ContextElement,
    Request,
    Response,
    SyntaxId,
    build_pdu,
    request_fragments,
    response_fragments,
)

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_server() -> ServerConnection[str]:
    registry: SimpleRegistry[str] = SimpleRegistry()
    registry.register(IFACE, "iface")
    return ServerConnection(registry)


def drain(conn: Any) -> list[Any]:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
        if type(event).__name__ == "ConnectionClosed":
            break
    return events


def feed(conn: Any, data: bytes, cuts: list[int]) -> list[Any]:
    """Deliver ``data`` cut at the given offsets (a TCP stream split any way)."""
    events, last = [], 0
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        if cut > last:  # an empty chunk would mean EOF
            conn.receive_data(data[last:cut])
            last = cut
            events += drain(conn)
    return events


def bound_pair() -> tuple[ServerConnection[str], ClientConnection, bytes]:
    server, client = new_server(), ClientConnection()
    bind = client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))])
    server.receive_data(bind)
    drain(server)
    client.receive_data(server.data_to_send())
    drain(client)
    return server, client, bind


stubs = st.lists(st.binary(max_size=9000), min_size=1, max_size=4)


@SETTINGS
@given(stubs=stubs, cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_request_stream_reassembles_at_any_tcp_split(stubs: list[bytes], cuts: list[int]) -> None:
    # spec: rpc #67 — TCP-stream splits of a bind plus pipelined, fragmented requests
    client = ClientConnection(max_xmit_frag=1432)
    stream = client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))], conc_mpx=True)
    stream += b"".join(request_fragments(i + 2, 0, i, s, 1432) for i, s in enumerate(stubs))
    server = new_server()
    events = feed(server, stream, cuts)
    requests = [e for e in events if isinstance(e, RequestReceived)]
    assert [(r.call_id, r.opnum, r.stub) for r in requests] == [
        (i + 2, i, s) for i, s in enumerate(stubs)
    ]


@SETTINGS
@given(stubs=stubs, cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_response_stream_reassembles_at_any_tcp_split(stubs: list[bytes], cuts: list[int]) -> None:
    # spec: rpc #72 (our side) — the client reassembles responses however TCP splits them
    server, client = new_server(), ClientConnection()
    server.receive_data(client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))], conc_mpx=True))
    drain(server)
    client.receive_data(server.data_to_send())
    drain(client)
    call_ids, replies = [], b""
    for s in stubs:
        call_id, data = client.request(0, 1, b"")
        server.receive_data(data)
        drain(server)
        call_ids.append(call_id)
        replies += server.send_response(call_id, s)
    events = feed(client, replies, cuts)
    assert [(e.call_id, e.stub) for e in events] == list(zip(call_ids, stubs, strict=True))


@st.composite
def fragmentation(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A stub and fragment sizes adding up to it: arbitrary cut points (some fragments empty),
    no fragment over the 5840-byte wire limit."""
    stub = draw(st.binary(max_size=12000))
    points = sorted({0, len(stub), *draw(st.lists(st.integers(0, len(stub)), max_size=16))})
    sizes: list[int] = []
    for a, b in itertools.pairwise(points):
        while b - a > 5840 - 24:
            sizes.append(5840 - 24)
            a += 5840 - 24
        sizes.append(b - a)
    for at in draw(st.lists(st.integers(0, len(sizes)), max_size=2)):
        sizes.insert(at, 0)
    return stub, sizes or [0]


@SETTINGS
@given(
    case=fragmentation(),
    call_id=st.integers(1, 2**32 - 1),
    alloc=st.sampled_from(["rem", "0", "total"]),
)
def test_request_fragments_of_any_size_reassemble(
    case: tuple[bytes, list[int]], call_id: int, alloc: str
) -> None:
    # spec: rpc #67, #69 — arbitrary fragment boundaries, any alloc_hint convention
    stub, sizes = case
    server, _, _ = bound_pair()
    pos, data = 0, b""
    for i, size in enumerate(sizes):
        flags = (1 if i == 0 else 0) | (2 if i == len(sizes) - 1 else 0)
        hint = {"rem": len(stub) - pos, "0": 0, "total": len(stub)}[alloc]
        data += build_pdu(
            Request(
                call_id=call_id,
                p_cont_id=0,
                opnum=4,
                stub=stub[pos : pos + size],
                alloc_hint=hint,
                pfc_flags=flags,
            )
        )
        pos += size
    server.receive_data(data)
    (request,) = drain(server)
    assert isinstance(request, RequestReceived) and request.stub == stub


@SETTINGS
@given(case=fragmentation())
def test_response_fragments_of_any_size_reassemble(case: tuple[bytes, list[int]]) -> None:
    stub, sizes = case
    _, client, _ = bound_pair()
    call_id, _ = client.request(0, 1, b"")
    pos, data = 0, b""
    for i, size in enumerate(sizes):
        flags = (1 if i == 0 else 0) | (2 if i == len(sizes) - 1 else 0)
        data += build_pdu(
            Response(call_id=call_id, p_cont_id=0, stub=stub[pos : pos + size], pfc_flags=flags)
        )
        pos += size
    client.receive_data(data)
    assert drain(client) == [ResponseReceived(call_id, stub)]


def _session_stream() -> bytes:
    client = ClientConnection()
    data = client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))], conc_mpx=True)
    return (
        data
        + request_fragments(2, 0, 1, bytes(7000), 4280)
        + request_fragments(3, 0, 1, b"x", 4280)
    )


SESSION = _session_stream()


@st.composite
def garbage(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=400))
    data = bytearray(SESSION)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


def _only_remote_errors(conn: Any, data: bytes, cuts: list[int], eof: bool) -> None:
    try:
        feed(conn, data, cuts)
        if eof:
            conn.receive_data(b"")
            drain(conn)
    except RemoteProtocolError:
        pass


@SETTINGS
@given(data=garbage(), cuts=st.lists(st.integers(0, 10**6), max_size=5), eof=st.booleans())
def test_server_fed_garbage_raises_only_remote_protocol_error(
    data: bytes, cuts: list[int], eof: bool
) -> None:
    _only_remote_errors(new_server(), data, cuts, eof)


@SETTINGS
@given(data=garbage(), cuts=st.lists(st.integers(0, 10**6), max_size=5), eof=st.booleans())
def test_client_fed_garbage_raises_only_remote_protocol_error(
    data: bytes, cuts: list[int], eof: bool
) -> None:
    _, client, _ = bound_pair()
    client.request(0, 1, b"")
    reply = response_fragments(2, 0, bytes(9000), 4280)
    mixed = reply[: len(data) % (len(reply) + 1)] + data
    _only_remote_errors(client, mixed, cuts, eof)


@st.composite
def request_streams(draw: st.DrawFn) -> bytes:
    """Single-fragment requests, mostly valid, some with a non-increasing call_id, an unknown
    p_cont_id, PFC_PENDING_CANCEL, a huge alloc_hint, big-endian drep, odd flags or a minor 1."""
    parts = []
    call_id = draw(st.integers(1, 10))
    for _ in range(draw(st.integers(1, 8))):
        call_id += draw(st.sampled_from([1, 1, 1, 0, -1, 5]))
        parts.append(
            build_pdu(
                Request(
                    call_id=max(call_id, 0),
                    p_cont_id=draw(st.sampled_from([0, 0, 0, 1])),
                    opnum=draw(st.integers(0, 3)),
                    stub=draw(st.binary(max_size=40)),
                    alloc_hint=draw(st.sampled_from([None, 0, 4 * 1024 * 1024 + 1])),
                    pfc_flags=draw(st.sampled_from([3, 3, 3, 7, 0x43, 0x23, 1])),
                    drep=draw(st.sampled_from([b"\x10\0\0\0"] * 3 + [b"\0\0\0\0"])),
                    rpc_vers_minor=draw(st.sampled_from([0, 0, 1])),
                )
            )
        )
    return b"".join(parts)


def _run_server(stream: bytes, fast: bool) -> tuple[list[Any], bytes, str]:
    server, _, _ = bound_pair()
    if not fast:
        server._fast_request = lambda: None  # type: ignore[method-assign]
    events: list[Any] = []
    error, out = "", b""
    server.receive_data(stream)
    try:
        while (event := server.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, RequestReceived):
                out += server.send_response(event.call_id, event.stub[::-1])
    except RemoteProtocolError as exc:
        error = str(exc)
    return events, out + server.data_to_send(), error


@SETTINGS
@given(request_streams())
def test_server_fast_path_matches_the_general_path(stream: bytes) -> None:
    # The one-step fast path must be an optimisation only: same events, bytes and errors.
    assert _run_server(stream, fast=True) == _run_server(stream, fast=False)


@SETTINGS
@given(
    replies=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from([3, 3, 1, 2, 0x23]), st.binary(max_size=30)),
        min_size=1,
        max_size=6,
    )
)
def test_client_fast_path_matches_the_general_path(replies: list[tuple[int, int, bytes]]) -> None:
    def run(fast: bool) -> tuple[list[Any], str]:
        server, client = new_server(), ClientConnection()
        server.receive_data(client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))], conc_mpx=True))
        drain(server)
        client.receive_data(server.data_to_send())
        drain(client)
        for _ in range(3):
            client.request(0, 1, b"")  # call_ids 2, 3, 4
        if not fast:
            client._fast_response = lambda: None  # type: ignore[method-assign]
        stream = b"".join(
            build_pdu(Response(call_id=c, p_cont_id=0, stub=s, pfc_flags=f)) for c, f, s in replies
        )
        events: list[Any] = []
        error = ""
        client.receive_data(stream)
        try:
            while (event := client.next_event()) is not NEED_DATA:
                events.append(event)
        except RemoteProtocolError as exc:
            error = str(exc)
        return events, error

    assert run(fast=True) == run(fast=False)
