"""Hypothesis fuzz over loopback: captured PDUs (tests/data/pdu), mutated, sent to a live server.

Each example opens a connection, sends a captured bind and request (impacket's, rpc-spec §B10,
retargeted at rpcecho) with random byte flips, truncations, insertions and splices, and reads
until the server answers or closes. Whatever it receives must be whole PDUs (never a partial or
garbled one); the server must close or keep serving that connection, and every example ends with
a well-formed call on a fresh connection answered correctly. Bounded: 60 examples, a few seconds.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio.rpc._interfaces._echo_idl import RPCECHO
from winaio.testing import hex_reader, wait_until

DATA = Path(__file__).resolve().parents[1] / "data" / "pdu"
IMPACKET_IFACE = bytes.fromhex("785634123412cdabef000123456789ab")


read_hex = hex_reader(DATA)


# impacket's captured bind for 12345678-...-0123456789ab, retargeted at rpcecho v1.0, and its
# captured request (opnum 0, stub 02000000 28000000: AddOne(2) plus 4 octets it ignores).
BIND = read_hex("impacket_bind").replace(IMPACKET_IFACE, RPCECHO.uuid.bytes_le)
REQUEST = read_hex("impacket_request_add")

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 200), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 200), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 200), st.integers(0, 255)),
    st.tuples(st.just("dup"), st.integers(0, 200), st.integers(1, 40)),
)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in ops:
        pos %= len(buf) + 1
        if op == "flip" and pos < len(buf):
            buf[pos] ^= arg
        elif op == "cut":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = bytes([arg])
        elif op == "dup":
            buf[pos:pos] = buf[pos : pos + arg]
        if not buf:
            break
    return bytes(buf)


def whole_pdus(data: bytes) -> None:
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 16, data.hex()
        assert data[pos] == 5, data.hex()
        (size,) = struct.unpack_from("<H", data, pos + 8)
        assert size >= 16 and pos + size <= len(data), data.hex()
        pos += size


def exchange(port: int, payload: bytes) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.5)  # a server may also wait for more: then we stop listening
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received
    finally:
        sock.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bind_ops=st.lists(mutation, max_size=3),
    request_ops=st.lists(mutation, max_size=3),
    split=st.booleans(),
)
def test_mutated_captured_pdus(
    served: Any, raw_client: Any, bind_ops: Any, request_ops: Any, split: bool
) -> None:
    payload = mutate(BIND, bind_ops) + mutate(REQUEST, request_ops)
    if split:
        payload = payload[: len(payload) // 2]
    whole_pdus(exchange(served.port, payload))
    client = raw_client(served.port)
    assert client.call("AddOne", in_data=9) == {"out_data": 10}
    client.close()
    wait_until(lambda: served.server.active_calls == 0, what="no call left")
