"""Connection limits and hygiene: many connections without a thread each, a client stopping
mid-PDU, a flood past max_connections, garbage closing only its own connection."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest

from winaio import rpc

from .conftest import TEST_IF, address_of

pytestmark = pytest.mark.timeout(60)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_many_connections_are_served_without_a_thread_each(started: Any, clients: Any) -> None:
    server = started()
    before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd"))
    conns = [clients(address_of(server)) for _ in range(150)]
    assert all(isinstance(c.bound, rpc.BindAccepted) for c in conns)
    for i, c in enumerate(conns):
        assert c.call("Add", a=i, b=1) == {"return": i + 1}
    assert threading.active_count() - before <= 4  # workers of the pool, not one per connection
    assert server.connection_count == 150
    for c in conns:
        c.close()
    wait_for(lambda: server.connection_count == 0)
    assert server.active_calls == 0
    wait_for(lambda: len(os.listdir("/proc/self/fd")) <= fds_before)  # every socket released


def test_client_stopping_mid_pdu_is_closed_after_idle_timeout(started: Any, clients: Any) -> None:
    server = started(idle_timeout=0.3)
    stuck = clients(address_of(server))
    healthy = clients(address_of(server))
    pdu = rpc.build_pdu(
        rpc.Request(
            call_id=5,
            p_cont_id=0,
            opnum=0,
            stub=TEST_IF.procedure("Add").encode_request({"a": 1, "b": 2}),
        )
    )
    stuck.sock.sendall(pdu[:20])  # half a request, then silence
    assert stuck.sock.recv(10) == b""  # closed by the server
    assert healthy.call("Add", a=2, b=2) == {"return": 4}
    wait_for(lambda: server.connection_count == 1)


def test_flood_past_max_connections_closes_only_the_extra_ones(started: Any, clients: Any) -> None:
    server = started(max_connections=5)
    kept = [clients(address_of(server)) for _ in range(5)]
    refused = []
    for _ in range(5):
        s = socket.create_connection(address_of(server), timeout=5)
        refused.append(s)
    for s in refused:
        try:
            assert s.recv(10) == b""
        except ConnectionResetError:
            pass
        s.close()
    for i, c in enumerate(kept):
        assert c.call("Add", a=i, b=i) == {"return": 2 * i}
    assert server.connection_count == 5


def test_garbage_closes_that_connection_only(started: Any, clients: Any) -> None:
    server = started()
    good = clients(address_of(server))
    bad = clients(address_of(server))
    bad.sock.sendall(b"\x05\x00\x00\x03\x10\x00\x00\x00" + b"\xff" * 40)  # frag_length 0
    data = bad.sock.recv(100)
    while data:
        data = bad.sock.recv(100)
    assert good.call("Add", a=1, b=1) == {"return": 2}
    wait_for(lambda: server.connection_count == 1)
