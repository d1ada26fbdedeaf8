"""Asynchronous pipes streamed as fragments (rpc-spec §A9; rpc #24, #25): [out] chunks leave as
they are pushed, [in] chunks reach the manager as request fragments arrive, with flow control
both ways, pipe order, and the end of a call (fault, orphan, disconnect) ending its pipes."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from winaio import rpc
from winaio.codes import RpcStatus
from winaio.errors import RpcError

from .conftest import Client, address_of

pytestmark = pytest.mark.timeout(60)

PIPE_UUID = UUID("6b3a5c1e-2f4d-4e8a-9b7c-0d1e2f3a4b5c")
BYTES = rpc.Pipe(rpc.BYTE)
SOURCE = rpc.Procedure(
    "Source",
    0,
    [
        rpc.Param("n", rpc.ULONG),
        rpc.Param("p", BYTES, rpc.OUT),
        rpc.Param("done", rpc.ULONG, rpc.OUT),
    ],
    returns=rpc.ULONG,
)
SINK = rpc.Procedure(
    "Sink", 1, [rpc.Param("tag", rpc.ULONG), rpc.Param("p", BYTES)], returns=rpc.ULONG
)
TWO_OUT = rpc.Procedure(
    "TwoOut", 2, [rpc.Param("a", rpc.Pipe(rpc.ULONG), rpc.OUT), rpc.Param("b", BYTES, rpc.OUT)]
)
TWO_IN = rpc.Procedure(
    "TwoIn", 3, [rpc.Param("a", rpc.Pipe(rpc.ULONG)), rpc.Param("b", BYTES)], returns=rpc.ULONG
)
PIPE_IF = rpc.Interface("pipes", PIPE_UUID, (1, 0), [SOURCE, SINK, TWO_OUT, TWO_IN])

HEAD = struct.Struct("<BBBBIHHI")  # common header


def pdus(sock: socket.socket, count: int, buf: bytearray | None = None) -> Iterator[bytes]:
    """``count`` whole PDUs read from ``sock`` (their bytes)."""
    buf = bytearray() if buf is None else buf
    while count:
        while len(buf) >= 10 and len(buf) >= struct.unpack_from("<H", buf, 8)[0]:
            size = struct.unpack_from("<H", buf, 8)[0]
            yield bytes(buf[:size])
            del buf[:size]
            count -= 1
            if not count:
                return
        data = sock.recv(1 << 20)
        assert data, "the server closed the connection"
        buf += data


def fields(pdu: bytes) -> dict[str, Any]:
    _v, _m, ptype, flags, _d, frag, _a, call_id = HEAD.unpack_from(pdu)
    out = {"ptype": ptype, "flags": flags, "call_id": call_id}
    if ptype == 2:
        out["alloc_hint"] = struct.unpack_from("<I", pdu, 16)[0]
        out["stub"] = pdu[24:frag]
    elif ptype == 3:
        out["status"] = struct.unpack_from("<I", pdu, 24)[0]
    return out


def fragments(data: bytes) -> list[bytes]:
    out = []
    while data:
        size = struct.unpack_from("<H", data, 8)[0]
        out.append(data[:size])
        data = data[size:]
    return out


@pytest.fixture
def pipe_server(make_server: Any) -> Any:
    def start(managers: dict[str, Any], **kw: Any) -> rpc.Server:
        server = make_server(**kw)
        server.register_interface(PIPE_IF, managers)
        server.use_protseq("ncacn_ip_tcp")
        server.listen()
        return server

    return start


# -- [out] pipes -------------------------------------------------------------------------------


def test_25_out_chunks_leave_as_they_are_pushed(pipe_server: Any, clients: Any) -> None:
    # spec: rpc #25 (u32 count + elements, terminator 0), A9 (pushed chunks are sent at once)
    release = threading.Event()

    def source(n: int, p: rpc.PipeOut) -> tuple[int, int]:
        p.push(b"first")
        assert release.wait(10)  # the client has seen "first" while the call still runs
        for i in range(n):
            p.push(bytes([i]) * 3000)  # bigger than a fragment: split across PDUs
        return n, 77

    server = pipe_server({"Source": source})
    client = clients(address_of(server), interface=PIPE_IF)
    call_id = client.send(0, SOURCE.encode_request({"n": 3}))
    sock = client.sock
    reader = bytearray()
    (first,) = pdus(sock, 1, reader)
    head = fields(first)
    assert head["ptype"] == 2 and head["call_id"] == call_id
    assert head["flags"] & 0x03 == 0x01  # PFC_FIRST_FRAG, not PFC_LAST_FRAG: the call goes on
    assert head["alloc_hint"] == 0 and head["stub"] == struct.pack("<I", 5) + b"first"
    release.set()
    stubs = [head["stub"]]
    while True:
        (pdu,) = pdus(sock, 1, reader)
        f = fields(pdu)
        assert f["call_id"] == call_id and not f["flags"] & 0x01
        stubs.append(f["stub"])
        if f["flags"] & 0x02:
            break
    chunks = [b"first"] + [bytes([i]) * 3000 for i in range(3)]
    expected = SOURCE.encode_response({"p": chunks, "done": 3, "return": 77})
    assert b"".join(stubs) == expected


def test_out_pipe_through_the_wire_client_and_empty_pipe(pipe_server: Any, clients: Any) -> None:
    def source(n: int, p: rpc.PipeOut) -> tuple[int, int]:
        for i in range(n):
            p.push(bytes([65 + i]) * (i + 1))
        return n, 0

    server = pipe_server({"Source": source})
    client = clients(address_of(server), interface=PIPE_IF)
    assert client.call("Source", n=3) == {"p": [b"A", b"BB", b"CCC"], "done": 3, "return": 0}
    assert client.call("Source", n=0) == {"p": [], "done": 0, "return": 0}


def test_out_pipes_are_pushed_in_order_and_closed_after_their_end(
    pipe_server: Any, clients: Any
) -> None:
    # spec: A9 (RPC_X_WRONG_PIPE_ORDER, RPC_X_PIPE_CLOSED)
    errors: list[int] = []

    def two_out(a: rpc.PipeOut, b: rpc.PipeOut) -> None:
        try:
            b.push(b"too early")
        except RpcError as exc:
            errors.append(exc.status)
        a.push([1, 2])
        a.push([])  # ends a
        try:
            a.push([3])
        except RpcError as exc:
            errors.append(exc.status)
        b.push(b"xy")
        # b is ended by completing the call

    server = pipe_server({"TwoOut": two_out})
    client = clients(address_of(server), interface=PIPE_IF)
    assert client.call("TwoOut") == {"a": [[1, 2]], "b": [b"xy"]}
    assert errors == [RpcStatus.RPC_X_WRONG_PIPE_ORDER, RpcStatus.RPC_X_PIPE_CLOSED]


def test_a_fault_after_streamed_chunks_ends_the_call(pipe_server: Any, clients: Any) -> None:
    def source(n: int, p: rpc.PipeOut) -> tuple[int, int]:
        p.push(b"partial")
        raise RpcError(0x20000007)

    server = pipe_server({"Source": source})
    client = clients(address_of(server), interface=PIPE_IF)
    client.send(0, SOURCE.encode_request({"n": 1}))
    first, fault = (fields(p) for p in pdus(client.sock, 2))
    assert first["ptype"] == 2 and first["flags"] & 0x03 == 0x01
    assert fault["ptype"] == 3 and fault["status"] == 0x20000007
    assert server.active_calls == 0


def test_out_pipe_flow_control_blocks_the_pushing_thread(pipe_server: Any, clients: Any) -> None:
    # A client that does not read: the manager's pushes stop once the write buffer is full,
    # instead of queueing everything in memory; reading lets them go on.
    pushed = []
    chunk = bytes(256 * 1024)

    def source(n: int, p: rpc.PipeOut) -> tuple[int, int]:
        for i in range(n):
            p.push(chunk)
            pushed.append(i)
        return n, 0

    server = pipe_server({"Source": source})
    client = clients(address_of(server), interface=PIPE_IF)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    total = 120  # 30 MiB if nothing held it back
    client.send(0, SOURCE.encode_request({"n": total}))
    # Wait until the pushes stop progressing (the write buffer is full), at most 5 s.
    deadline = time.monotonic() + 5
    last = -1
    while time.monotonic() < deadline and len(pushed) != last:
        last = len(pushed)
        time.sleep(0.3)
    stalled = len(pushed)
    assert stalled < total // 2, f"{stalled} pushes went on while the client read nothing"
    reader = bytearray()
    got = 0
    while True:
        (pdu,) = pdus(client.sock, 1, reader)
        f = fields(pdu)
        got += len(f["stub"])
        if f["flags"] & 0x02:
            break
    assert len(pushed) == total
    assert got == total * (4 + len(chunk)) + 4 + 8


def test_a_pushing_thread_waits_for_a_starved_loop(pipe_server: Any, clients: Any) -> None:
    # Pushes from a thread go through the server's inbox to the loop; while the loop cannot take
    # them (here: blocked on purpose, the client reading all the time), the pusher stops after
    # about 1 MiB in transit instead of queueing every chunk in memory. Pushes done while the
    # loop is blocked are bounded whatever the timing (a slow machine pushes fewer, never more).
    chunk = bytes(64 * 1024)
    started, blocked, gate = threading.Event(), threading.Event(), threading.Event()
    while_blocked: list[int] = []

    def source(n: int, p: rpc.PipeOut) -> tuple[int, int]:
        p.push(chunk)
        started.set()
        assert blocked.wait(10)  # the rest is pushed while the loop is blocked
        for i in range(1, n):
            p.push(chunk)
            if not gate.is_set():
                while_blocked.append(i)
        return n, 0

    def block_the_loop() -> None:
        blocked.set()
        gate.wait(5.0)

    server = pipe_server({"Source": source})
    client = clients(address_of(server), interface=PIPE_IF)
    total = 64  # 4 MiB
    got: list[int] = []

    def read_all() -> None:
        reader = bytearray()
        count = 0
        while True:
            (pdu,) = pdus(client.sock, 1, reader)
            f = fields(pdu)
            count += len(f["stub"])
            if f["flags"] & 0x02:
                got.append(count)
                return

    reading = threading.Thread(target=read_all)
    reading.start()
    client.send(0, SOURCE.encode_request({"n": total}))
    assert started.wait(10)
    server.inbox.push(block_the_loop)
    assert blocked.wait(10)
    time.sleep(1.0)  # let the pusher run ahead as far as it can
    gate.set()
    reading.join(30)
    assert not reading.is_alive()
    assert len(while_blocked) <= (1 << 20) // len(chunk) + 2, while_blocked
    assert got == [total * (4 + len(chunk)) + 4 + 8]


def test_out_chunks_wait_for_earlier_replies_without_conc_mpx() -> None:
    # spec: rpc #74, sans-I/O: a streaming call's parts are held until the calls before it are
    # answered, then leave before its final part.
    conn, calls = _two_calls(conc_mpx=False)
    first, second = calls
    assert conn.send_response_part(second, b"p1") == b""  # held: call 2 waits for call 1
    assert conn.send_response_part(second, b"p2") == b""
    out = fragments(conn.send_response(first, b"r1"))
    assert [(fields(f)["call_id"], fields(f)["flags"] & 3) for f in out] == [
        (first, 3), (second, 1), (second, 0),
    ]  # fmt: skip
    last = fragments(conn.send_response(second, b"end"))
    assert [(fields(f)["call_id"], fields(f)["flags"] & 3, fields(f)["stub"]) for f in last] == [
        (second, 2, b"end")
    ]


def test_out_chunks_leave_at_once_with_conc_mpx() -> None:
    # spec: rpc #73
    conn, (first, second) = _two_calls(conc_mpx=True)
    (part,) = fragments(conn.send_response_part(second, b"p1"))
    assert fields(part)["call_id"] == second and fields(part)["flags"] & 3 == 1
    (whole,) = fragments(conn.send_response(first, b"r1"))
    assert fields(whole)["flags"] & 3 == 3


def _two_calls(conc_mpx: bool) -> tuple[rpc.ServerConnection[Any], list[int]]:
    """A server connection with two dispatched calls (call_ids 2 and 3), sans-I/O."""
    registry: Any = rpc.SimpleRegistry()
    registry.register(PIPE_IF.syntax, "token")
    conn: rpc.ServerConnection[Any] = rpc.ServerConnection(registry)
    el = rpc.ContextElement(0, PIPE_IF.syntax, (rpc.NDR20_SYNTAX,))
    conn.receive_data(rpc.ClientConnection().bind([el], conc_mpx=conc_mpx))
    assert isinstance(conn.next_event(), rpc.Bound)
    conn.data_to_send()
    for call_id in (2, 3):
        conn.receive_data(struct.pack("<BBBBIHHIIHH", 5, 0, 0, 3, 0x10, 24, 0, call_id, 0, 0, 0))
        assert isinstance(conn.next_event(), rpc.RequestReceived)
    return conn, [2, 3]


# -- [in] pipes --------------------------------------------------------------------------------


def sink_request(client: Client, tag: int, chunks: list[bytes], *, cut: int = 0) -> list[bytes]:
    """The request PDUs of Sink(tag, chunks), as the client's connection fragments them (the
    last ``cut`` octets of the stub dropped: a pipe without its terminator)."""
    stub = SINK.encode_request({"tag": tag, "p": chunks})
    if cut:
        stub = stub[:-cut]
    _call_id, data = client.conn.request(0, 1, stub)
    return fragments(data)


def test_24_in_chunks_reach_the_manager_as_fragments_arrive(pipe_server: Any, clients: Any) -> None:
    # spec: rpc #24, A9: the manager pulls the first chunk before the client sent the rest
    first_pulled = threading.Event()
    seen: list[int] = []

    def sink(tag: int, p: rpc.PipeIn) -> int:
        total = 0
        for chunk in p:
            seen.append(len(chunk))
            first_pulled.set()
            total += sum(chunk)
        assert not p.pull()  # after the end: empty, again
        return total & 0xFFFFFFFF

    server = pipe_server({"Sink": sink})
    client = clients(address_of(server), interface=PIPE_IF)
    chunks = [bytes([i % 251]) * 4000 for i in range(12)]
    frags = sink_request(client, 5, chunks)
    assert len(frags) > 4
    client.sock.sendall(frags[0] + frags[1])
    assert first_pulled.wait(10), "no chunk reached the manager before the last fragment"
    assert len(seen) < len(chunks)
    client.sock.sendall(b"".join(frags[2:]))
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived)
    assert SINK.decode_response(reply.stub) == {"return": sum(sum(c) for c in chunks)}
    assert seen == [len(c) for c in chunks]


def test_in_pipe_bigger_than_the_request_limit_streams(pipe_server: Any, clients: Any) -> None:
    # A streamed request has no total size limit (its buffered chunks are bounded instead).
    def sink(tag: int, p: rpc.PipeIn) -> int:
        return sum(len(c) for c in p) & 0xFFFFFFFF

    server = pipe_server({"Sink": sink}, max_request_size=1 << 20)
    client = clients(address_of(server), interface=PIPE_IF)
    chunks = [bytes(60000)] * 40  # 2.4 MB > 1 MiB
    client.sock.sendall(b"".join(sink_request(client, 1, chunks)))
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived)
    assert SINK.decode_response(reply.stub) == {"return": 2_400_000}


def test_in_pipe_flow_control_stops_reading(pipe_server: Any, clients: Any) -> None:
    # The manager does not pull: the connection stops reading near HIGH_WATER instead of
    # buffering everything the client sends; pulling lets the rest in.
    from winaio.rpc._server._pipes import HIGH_WATER

    holder: list[rpc.PipeIn] = []
    go = threading.Event()

    def sink(tag: int, p: rpc.PipeIn) -> int:
        holder.append(p)
        assert go.wait(20)
        return sum(len(c) for c in p) & 0xFFFFFFFF

    server = pipe_server({"Sink": sink})
    client = clients(address_of(server), interface=PIPE_IF)
    chunks = [bytes(5000)] * 2000  # 10 MB
    data = b"".join(sink_request(client, 1, chunks))
    sent = threading.Event()
    sender = threading.Thread(target=lambda: (client.sock.sendall(data), sent.set()))
    sender.start()
    deadline = time.monotonic() + 10
    while not holder and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    assert not sent.is_set()  # the client is held back by TCP
    buffered = holder[0]._octets
    go.set()  # (before asserting: a failure must not leave the manager blocked)
    # One wake-up's read (uvloop reads up to 256 KiB) may land after the threshold.
    assert HIGH_WATER <= buffered < HIGH_WATER + 512 * 1024, buffered
    sender.join(20)
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived)
    assert SINK.decode_response(reply.stub) == {"return": 10_000_000}


def test_a_request_ending_inside_its_pipe_faults(pipe_server: Any, clients: Any) -> None:
    # The last fragment arrives before the pipe's terminator: pull raises bad stub data.
    def sink(tag: int, p: rpc.PipeIn) -> int:
        return sum(len(c) for c in p)

    server = pipe_server({"Sink": sink})
    client = clients(address_of(server), interface=PIPE_IF)
    client.sock.sendall(b"".join(sink_request(client, 1, [bytes(3000)] * 4, cut=4)))
    fault = client.event()
    assert isinstance(fault, rpc.FaultReceived)
    assert fault.status == RpcStatus.RPC_X_BAD_STUB_DATA
    assert server.active_calls == 0


def test_two_in_pipes_in_order_across_fragments(pipe_server: Any, clients: Any) -> None:
    def two_in(a: rpc.PipeIn, b: rpc.PipeIn) -> int:
        first = [x for chunk in a for x in chunk]
        second = b"".join(b)
        return (sum(first) + len(second)) & 0xFFFFFFFF

    server = pipe_server({"TwoIn": two_in})
    client = clients(address_of(server), interface=PIPE_IF)
    stub = TWO_IN.encode_request({"a": [list(range(1000)), [7] * 900], "b": [b"z" * 5000] * 3})
    _cid, data = client.conn.request(0, 3, stub)
    assert len(fragments(data)) > 1
    client.sock.sendall(data)
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived)
    assert TWO_IN.decode_response(reply.stub) == {"return": sum(range(1000)) + 6300 + 15000}


def test_in_pipe_on_the_loop_async_for_and_async_manager_pull(
    pipe_server: Any, clients: Any
) -> None:
    # An async def manager awaits chunks; an @async_manager on the loop gets 997 from pull()
    # when no chunk has arrived (the MS asynchronous pull) and never blocks the loop.
    pending: list[int] = []

    async def sink(tag: int, p: rpc.PipeIn) -> int:
        total = 0
        async for chunk in p:
            total += len(chunk)
            await asyncio.sleep(0)
        return total

    @rpc.async_manager
    def two_in(call: rpc.ServerCall, a: rpc.PipeIn, b: rpc.PipeIn) -> None:
        try:
            a.pull()
        except RpcError as exc:
            pending.append(exc.status)

        def drain() -> None:
            n = sum(len(c) for c in a) + sum(len(c) for c in b)
            call.complete(n)

        threading.Thread(target=drain).start()

    server = pipe_server({"Sink": sink, "TwoIn": two_in})
    client = clients(address_of(server), interface=PIPE_IF)
    frags = sink_request(client, 2, [bytes(4000)] * 6)
    client.sock.sendall(frags[0])
    time.sleep(0.2)
    client.sock.sendall(b"".join(frags[1:]))
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived)
    assert SINK.decode_response(reply.stub) == {"return": 24000}
    stub = TWO_IN.encode_request({"a": [[1] * 2000], "b": [b"q" * 3000]})
    _cid, data = client.conn.request(0, 3, stub)
    frags = fragments(data)
    client.sock.sendall(frags[0][: struct.unpack_from("<H", frags[0], 8)[0]])
    time.sleep(0.2)
    client.sock.sendall(b"".join(frags[1:]))
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived)
    assert TWO_IN.decode_response(reply.stub) == {"return": 5000}
    assert pending == [RpcStatus.RPC_S_ASYNC_CALL_PENDING]


@pytest.mark.parametrize("how", ["disconnect", "orphan"])
def test_the_client_going_away_ends_a_streamed_pipe(
    pipe_server: Any, clients: Any, how: str
) -> None:
    # spec: rpc #17 (orphan), disconnect: the manager's pull ends with RPC_S_CALL_CANCELLED
    outcome: list[Any] = []
    started = threading.Event()

    def sink(tag: int, p: rpc.PipeIn) -> int:
        started.set()
        try:
            for _ in p:
                pass
        except RpcError as exc:
            outcome.append(exc.status)
            raise
        outcome.append("ended")
        return 0

    server = pipe_server({"Sink": sink})
    client = clients(address_of(server), interface=PIPE_IF)
    frags = sink_request(client, 1, [bytes(4000)] * 6)
    client.sock.sendall(frags[0])
    assert started.wait(10)
    if how == "orphan":
        call_id = fields(frags[0])["call_id"]
        client.sock.sendall(struct.pack("<BBBBIHHI", 5, 0, 19, 3, 0x10, 16, 0, call_id))
    else:
        client.sock.close()
    deadline = time.monotonic() + 10
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcome == [RpcStatus.RPC_S_CALL_CANCELLED]
    while server.active_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.active_calls == 0


def test_cancel_before_the_parameters_arrived_reaches_the_call(
    pipe_server: Any, clients: Any
) -> None:
    # spec: rpc #15: a co_cancel between the first fragment and the dispatch counts
    cancelled: list[bool] = []

    def sink(tag: int, p: rpc.PipeIn) -> int:
        cancelled.append(rpc.current_call().test_cancel())
        return sum(len(c) for c in p)

    server = pipe_server({"Sink": sink})
    client = clients(address_of(server), interface=PIPE_IF)
    # The [in] parameter `tag` is split: 2 octets in the first fragment, 2 in the second.
    stub = SINK.encode_request({"tag": 1, "p": [b"abc"]})
    cid = 99
    first = struct.pack("<BBBBIHHIIHH", 5, 0, 0, 1, 0x10, 26, 0, cid, len(stub), 0, 1) + stub[:2]
    rest = stub[2:]
    last = struct.pack("<BBBBIHHIIHH", 5, 0, 0, 2, 0x10, 24 + len(rest), 0, cid, len(rest), 0, 1)
    cancel = struct.pack("<BBBBIHHI", 5, 0, 18, 3, 0x10, 16, 0, cid)
    client.sock.sendall(first + cancel + last + rest)
    reply = next(pdus(client.sock, 1))
    assert fields(reply)["ptype"] == 2 and fields(reply)["call_id"] == cid
    assert cancelled == [True]
