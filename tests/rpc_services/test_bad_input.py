"""Bad input over loopback, bounded in count and time (issue 11, rpc-spec B2-B8).

Truncated and garbage PDUs, wrong versions, oversized requests and alloc_hints (no allocation
before the bytes arrive), unknown contexts, calls before bind, a client that stops mid-fragment,
abrupt disconnects with calls pending, 1000 concurrent connections and a flood past a
connection limit. Each time the server answers the right fault or closes that one connection,
keeps serving the others, and afterwards holds no extra fd, thread, connection or call.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import struct
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from winaio import rpc
from winaio.rpc._interfaces import _echo
from winaio.rpc._interfaces._echo_idl import RPCECHO
from winaio.testing import wait_until

_HDR = struct.Struct("<BBBBIHHI")
_REQ = struct.Struct("<IHH")


def request_pdu(call_id: int, stub: bytes, *, opnum: int = 0, p_cont_id: int = 0,
                flags: int = 3, alloc_hint: int | None = None, vers: int = 5,
                minor: int = 0, frag_length: int | None = None) -> bytes:  # fmt: skip
    hint = len(stub) if alloc_hint is None else alloc_hint
    size = 24 + len(stub) if frag_length is None else frag_length
    header = _HDR.pack(vers, minor, 0, flags, 0x10, size, 0, call_id)
    return header + _REQ.pack(hint, p_cont_id, opnum) + stub


def bind_pdu() -> bytes:
    """A bind for rpcecho v1.0 / NDR 2.0 (call_id 1)."""
    return rpc.ClientConnection().bind([rpc.ContextElement(0, RPCECHO, (rpc.NDR20_SYNTAX,))])


def closed_within(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes; fails if it does not close in time."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def pdus(data: bytes) -> list[tuple[int, int, bytes]]:
    """(ptype, pfc_flags, whole PDU) of each PDU in ``data``."""
    out, pos = [], 0
    while pos + 16 <= len(data):
        size = struct.unpack_from("<H", data, pos + 8)[0]
        out.append((data[pos + 2], data[pos + 3], data[pos : pos + size]))
        pos += size
    assert pos == len(data), data.hex()
    return out


def fault_status(pdu: bytes) -> int:
    assert pdu[2] == 3 and len(pdu) == 32, pdu.hex()  # spec: rpc #60
    return int(struct.unpack_from("<I", pdu, 24)[0])


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def clean(served: Any) -> Iterator[Any]:
    """Record fds and threads; after the test the server must be back where it was."""
    server = served.server

    def tasks() -> int:
        # Tasks alive on the server's event loop (async def managers, engine internals).
        return int(server.engine.run(lambda: len(asyncio.all_tasks())))

    wait_until(lambda: server.connection_count == 0, what="no connection before")
    before_fds, before_threads, before_tasks = fds(), threading.active_count(), tasks()
    yield served
    wait_until(lambda: server.connection_count == 0, timeout=10, what="connections closed")
    wait_until(lambda: server.active_calls == 0, timeout=10, what="no call left")
    wait_until(lambda: tasks() <= before_tasks, timeout=10, what="no task left")
    wait_until(lambda: fds() <= before_fds, timeout=10, what=f"fds back to {before_fds}")
    # Worker threads of the server's pool may have been started by the test: never more.
    assert threading.active_count() <= before_threads + 2
    assert _echo.pending_sleeps() == 0


def still_serving(served: Any, raw_client: Any) -> None:
    client = raw_client(served.port)
    assert client.call("AddOne", in_data=1) == {"out_data": 2}
    client.close()


def test_truncated_header_then_eof(clean: Any, raw_client: Any) -> None:
    for cut in (1, 10, 15, 20, 31):
        sock = socket.create_connection(("127.0.0.1", clean.port))
        sock.sendall(request_pdu(1, b"\x00" * 8)[:cut])
        sock.shutdown(socket.SHUT_WR)
        assert closed_within(sock) == b""
        sock.close()
    still_serving(clean, raw_client)


def test_garbage_closes_that_connection_only(clean: Any, raw_client: Any) -> None:
    other = raw_client(clean.port)
    for garbage in (os.urandom(64), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x05" * 40):
        sock = socket.create_connection(("127.0.0.1", clean.port))
        sock.sendall(garbage)
        closed_within(sock)  # whatever it says first (a fault or a bind_nak), it closes
        sock.close()
    assert other.call("AddOne", in_data=5) == {"out_data": 6}
    still_serving(clean, raw_client)


def test_bind_with_wrong_version_is_nakked(clean: Any, raw_client: Any) -> None:
    # spec: rpc #51 (rpc_vers != 5 -> bind_nak reason 4, versions {5.0})
    bind = bytearray(bind_pdu())
    bind[0] = 4
    sock = socket.create_connection(("127.0.0.1", clean.port))
    sock.settimeout(5)
    sock.sendall(bytes(bind))
    reply = sock.recv(4096)
    (ptype, _, nak), *_ = pdus(reply)
    assert ptype == 13 and struct.unpack_from("<H", nak, 16)[0] == 4
    assert nak[18:21] == b"\x01\x05\x00"
    sock.close()
    still_serving(clean, raw_client)


def test_request_with_wrong_minor_version_closes(clean: Any, raw_client: Any) -> None:
    client = raw_client(clean.port)
    client.send(request_pdu(5, b"\x01\x00\x00\x00", minor=7))
    closed_within(client.sock)
    still_serving(clean, raw_client)


def test_unknown_context_and_call_before_bind(clean: Any, raw_client: Any) -> None:
    # spec: rpc #55 (unknown p_cont_id -> nca_s_unk_if + DID_NOT_EXECUTE), #56 (before bind)
    client = raw_client(clean.port)
    client.send(request_pdu(10, b"\x01\x00\x00\x00", p_cont_id=7))
    (_ptype, flags, pdu), = pdus(client.sock.recv(4096))  # fmt: skip
    assert fault_status(pdu) == 0x1C010003 and flags & 0x20
    assert client.call("AddOne", in_data=1) == {"out_data": 2}  # the connection goes on

    sock = socket.create_connection(("127.0.0.1", clean.port))
    sock.settimeout(5)
    sock.sendall(request_pdu(1, b"\x01\x00\x00\x00"))
    (_ptype, flags, pdu), = pdus(sock.recv(4096))  # fmt: skip
    assert fault_status(pdu) == 0x1C010003 and flags & 0x20
    sock.close()


def test_huge_alloc_hint_is_refused_before_the_bytes_arrive(clean: Any, raw_client: Any) -> None:
    # spec: rpc #70 (over 4 MiB -> fault 5): the first fragment announces 4 GiB; the server must
    # refuse at once, without waiting for (or allocating) the rest.
    client = raw_client(clean.port)
    tracemalloc.start()
    try:
        client.send(request_pdu(10, b"\x00" * 64, flags=1, alloc_hint=0xFFFFFF00))
        client.sock.settimeout(5)
        (_ptype, flags, pdu), = pdus(client.sock.recv(4096))  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fault_status(pdu) == 5 and flags & 0x20
    assert peak < 1024 * 1024, peak
    # Later fragments of the refused call are dropped; the connection still serves.
    client.send(request_pdu(10, b"\x00" * 64, flags=2))
    assert client.call("AddOne", in_data=3) == {"out_data": 4}


def test_oversized_request_in_fragments_faults_5(clean: Any, raw_client: Any) -> None:
    # spec: rpc #70: 5 MiB in 5800-octet fragments with alloc_hint 0 (only a hint)
    client = raw_client(clean.port)
    chunk = b"\x00" * 5800
    count = 5 * 1024 * 1024 // len(chunk)
    frames = [request_pdu(20, chunk, opnum=1, flags=1 if i == 0 else (2 if i == count - 1 else 0),
                          alloc_hint=0) for i in range(count)]  # fmt: skip
    client.sock.settimeout(10)
    sender = threading.Thread(target=lambda: client.sock.sendall(b"".join(frames)))
    sender.start()
    (_ptype, _flags, pdu), = pdus(client.sock.recv(4096))  # fmt: skip
    sender.join(10)
    assert fault_status(pdu) == 5
    assert client.call("AddOne", in_data=7) == {"out_data": 8}


def test_fragment_larger_than_negotiated_closes(clean: Any, raw_client: Any) -> None:
    client = raw_client(clean.port)
    client.send(request_pdu(30, b"\x00" * 8, frag_length=65000))
    data = closed_within(client.sock)
    assert [fault_status(p) for _, _, p in pdus(data)] == [0x1C01000B]
    still_serving(clean, raw_client)


def test_client_stopping_mid_fragment_is_closed_by_the_idle_timeout(
    server_factory: Any, raw_client: Any
) -> None:
    served = server_factory(idle_timeout=0.5)
    client = raw_client(served.port)
    client.send(request_pdu(40, b"\x01\x00\x00\x00")[:20])  # and then nothing
    assert closed_within(client.sock, timeout=10) == b""
    wait_until(lambda: served.server.connection_count == 0, what="idle connection closed")
    still_serving(served, raw_client)


def test_abrupt_disconnect_with_calls_pending(clean: Any, raw_client: Any) -> None:
    # Three TestSleep(30) calls pending (their timers armed), then the client vanishes: the
    # calls are told, the timers cancelled, and nothing is sent or kept.
    client = raw_client(clean.port, conc_mpx=True)
    stub = (30).to_bytes(4, "little")
    for _ in range(3):
        _, data = client.conn.request(0, 6, stub)
        client.send(data)
    wait_until(lambda: clean.server.active_calls == 3, what="3 calls pending")
    wait_until(lambda: _echo.pending_sleeps() == 3, what="3 timers armed")
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # RST
    wait_until(lambda: clean.server.active_calls == 0, what="pending calls dropped")
    wait_until(lambda: _echo.pending_sleeps() == 0, what="timers cancelled")
    still_serving(clean, raw_client)


def _raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.slow
def test_thousand_concurrent_connections(clean: Any) -> None:
    _raise_nofile(fds() + 2 * 1000 + 64)
    bind = bind_pdu()
    socks = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", clean.port), timeout=10)
            s.sendall(bind)
            socks.append(s)
        for s in socks:
            assert s.recv(4096)[2] == 12  # bind_ack
        wait_until(lambda: clean.server.connection_count == 1000, what="1000 connections")
        for i, s in enumerate(socks):
            s.sendall(request_pdu(2, i.to_bytes(4, "little")))
        for i, s in enumerate(socks):
            reply = s.recv(4096)
            assert reply[2] == 2 and reply[24:28] == (i + 1).to_bytes(4, "little")
    finally:
        for s in socks:
            s.close()


def test_flood_past_the_connection_limit(server_factory: Any, raw_client: Any) -> None:
    served = server_factory(max_connections=20)
    before = fds()
    kept = [raw_client(served.port) for _ in range(20)]
    refused = []
    for _ in range(15):
        s = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        refused.append(s)
    for s in refused:
        assert closed_within(s) == b""  # accepted and closed at once
        s.close()
    for i, client in enumerate(kept):
        assert client.call("AddOne", in_data=i) == {"out_data": i + 1}
    for client in kept:
        client.close()
    wait_until(lambda: served.server.connection_count == 0, what="all closed")
    wait_until(lambda: fds() <= before, what="fds back")
