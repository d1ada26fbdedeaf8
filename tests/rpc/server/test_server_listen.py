"""The listen state machine and the interface/endpoint API (spec A11; rpc #26-#36, #98)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from winaio import rpc
from winaio.codes import RpcStatus
from winaio.errors import RpcError

from .conftest import TEST_IF, address_of, basic_managers

pytestmark = pytest.mark.timeout(30)


def status_of(fn: Any, *args: Any, **kw: Any) -> int:
    with pytest.raises(RpcError) as info:
        fn(*args, **kw)
    return info.value.status


def test_26_listen_without_endpoints(make_server: Any) -> None:
    # spec: rpc #26
    assert status_of(make_server().listen) == RpcStatus.RPC_S_NO_PROTSEQS_REGISTERED


def test_27_second_listen_while_listening(make_server: Any) -> None:
    # spec: rpc #27
    server = make_server()
    server.use_protseq("ncacn_ip_tcp")
    server.listen()
    assert status_of(server.listen) == RpcStatus.RPC_S_ALREADY_LISTENING


def test_28_stop_and_wait_before_any_listen(make_server: Any) -> None:
    # spec: rpc #28
    server = make_server()
    assert status_of(server.stop_listening) == RpcStatus.RPC_S_NOT_LISTENING
    assert status_of(server.wait) == RpcStatus.RPC_S_NOT_LISTENING


def test_29_is_listening_follows_listen_and_stop(make_server: Any) -> None:
    # spec: rpc #29
    server = make_server()
    server.use_protseq("ncacn_ip_tcp")
    assert not server.is_listening()
    server.listen()
    assert server.is_listening()
    server.stop_listening()
    assert not server.is_listening()
    server.stop_listening()  # a second stop is fine (Wine's test)


def test_30_wait_blocks_while_a_call_runs_then_a_second_wait_fails(
    started: Any, clients: Any
) -> None:
    # spec: rpc #30
    release = threading.Event()

    def sleep(ms: int) -> int:
        release.wait(10)
        return ms

    server = started({"Sleep": sleep})
    client = clients(address_of(server))
    client.send(2, TEST_IF.procedure("Sleep").encode_request({"ms": 7}))
    deadline = time.monotonic() + 5
    while server.active_calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop_listening()
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (server.wait(), returned.set()))
    waiter.start()
    assert not returned.wait(0.5)  # the call is still executing
    release.set()
    assert returned.wait(5)
    waiter.join()
    assert status_of(server.wait) == RpcStatus.RPC_S_NOT_LISTENING


def test_98_stop_lets_calls_in_flight_reply_before_connections_close(
    started: Any, clients: Any
) -> None:
    # spec: rpc #98
    release = threading.Event()

    def sleep(ms: int) -> int:
        release.wait(10)
        return ms + 1

    server = started({"Sleep": sleep, **basic_managers()})
    client = clients(address_of(server))
    client.send(2, TEST_IF.procedure("Sleep").encode_request({"ms": 41}))
    while server.active_calls == 0:
        time.sleep(0.01)
    server.stop_listening()
    # New calls are refused (did not execute) while the one in flight goes on.
    late = clients(address_of(server))
    fault = late.call("Add", a=1, b=1)
    assert isinstance(fault, rpc.FaultReceived) and fault.did_not_execute
    threading.Timer(0.2, release.set).start()
    server.wait()
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived)
    assert TEST_IF.procedure("Sleep").decode_response(reply.stub) == {"return": 42}
    assert client.sock.recv(10) == b""  # then the connection was closed
    assert server.connection_count == 0


def test_31_use_protseq_is_idempotent_and_checks_names(make_server: Any) -> None:
    # spec: rpc #31
    server = make_server()
    first = server.use_protseq("ncacn_ip_tcp", "0")
    again = server.use_protseq("ncacn_ip_tcp", first.endpoint)
    assert again == first and len(server.bindings) == 1
    assert status_of(server.use_protseq, "ncacn_np") == RpcStatus.RPC_S_PROTSEQ_NOT_SUPPORTED
    assert status_of(server.use_protseq, "ncadg_ip_udp") == RpcStatus.RPC_S_PROTSEQ_NOT_SUPPORTED
    assert status_of(server.use_protseq, "foo") == RpcStatus.RPC_S_INVALID_RPC_PROTSEQ
    assert (
        status_of(server.use_protseq, "ncacn_ip_tcp", "http")
        == RpcStatus.RPC_S_INVALID_ENDPOINT_FORMAT
    )


def test_32_unregister_unknown_and_all(make_server: Any) -> None:
    # spec: rpc #32
    server = make_server()
    other = rpc.Interface("other", "11111111-2222-3333-4444-555555555555", 1, [])
    auto = rpc.Interface("auto", "11111111-2222-3333-4444-666666666666", 1, [])
    assert status_of(server.unregister_interface, other) == RpcStatus.RPC_S_UNKNOWN_IF
    server.register_interface(TEST_IF, basic_managers())
    server.register_interface(other, {})
    server.register_interface(auto, {}, flags=rpc.IfFlags.AUTOLISTEN)
    server.unregister_interface(None)
    assert server.interfaces == (auto,)


def test_33_autolisten_interface_is_served_without_listen(make_server: Any, clients: Any) -> None:
    # spec: rpc #33
    server = make_server()
    server.use_protseq("ncacn_ip_tcp")
    server.register_interface(TEST_IF, basic_managers(), flags=rpc.IfFlags.AUTOLISTEN)
    assert not server.is_listening()
    assert clients(address_of(server)).call("Add", a=1, b=2) == {"return": 3}


def test_non_autolisten_interface_before_listen_is_refused(make_server: Any, clients: Any) -> None:
    server = make_server()
    server.use_protseq("ncacn_ip_tcp")
    server.register_interface(TEST_IF, basic_managers())
    fault = clients(address_of(server)).call("Add", a=1, b=2)
    assert isinstance(fault, rpc.FaultReceived) and fault.did_not_execute
    assert fault.status == RpcStatus.RPC_S_SERVER_TOO_BUSY  # nca_s_server_too_busy


def test_34_request_over_max_rpc_size_is_access_denied(started: Any, clients: Any) -> None:
    # spec: rpc #34
    server = started(max_rpc_size=64)
    client = clients(address_of(server))
    assert client.call("Echo", len=8, data=b"x" * 8) == {"out": b"x" * 8}
    fault = client.call("Echo", len=100, data=b"x" * 100)
    assert isinstance(fault, rpc.FaultReceived) and fault.did_not_execute
    assert fault.status == RpcStatus.RPC_S_ACCESS_DENIED


def test_35_security_callback_refusal(started: Any, clients: Any) -> None:
    # spec: rpc #35
    entered: list[int] = []
    seen: list[Any] = []

    def callback(interface: rpc.Interface, call: rpc.ServerCall) -> int:
        seen.append((interface, call.procedure.name))
        return 0 if call.procedure.name == "Echo" else 5

    def add(a: int, b: int) -> int:
        entered.append(1)
        return a + b

    server = started({"Add": add, "Echo": lambda len, data: data}, security_callback=callback)
    client = clients(address_of(server))
    fault = client.call("Add", a=1, b=2)
    assert isinstance(fault, rpc.FaultReceived)
    assert fault.status == RpcStatus.RPC_S_ACCESS_DENIED and fault.did_not_execute
    assert entered == []
    assert client.call("Echo", len=1, data=b"z") == {"out": b"z"}
    assert seen == [(TEST_IF, "Add"), (TEST_IF, "Echo")]


def test_36_secure_only_refuses_unauthenticated_calls(started: Any, clients: Any) -> None:
    # spec: rpc #36
    server = started(flags=rpc.IfFlags.ALLOW_SECURE_ONLY)
    fault = clients(address_of(server)).call("Add", a=1, b=2)
    assert isinstance(fault, rpc.FaultReceived) and fault.status == RpcStatus.RPC_S_ACCESS_DENIED


def test_local_only_refuses_tcp_and_serves_ncalrpc(
    make_server: Any, clients: Any, tmp_path: Any
) -> None:
    server = make_server(lrpc_dir=str(tmp_path))
    server.register_interface(TEST_IF, basic_managers(), flags=rpc.IfFlags.ALLOW_LOCAL_ONLY)
    server.use_protseq("ncacn_ip_tcp")
    server.use_protseq("ncalrpc", "winaio_test")
    server.listen()
    fault = clients(address_of(server)).call("Add", a=1, b=2)
    assert isinstance(fault, rpc.FaultReceived) and fault.status == RpcStatus.RPC_S_ACCESS_DENIED
    local = clients(address_of(server, "ncalrpc"), family=socket.AF_UNIX)
    assert local.call("Add", a=1, b=2) == {"return": 3}


def test_max_calls_refuses_with_server_too_busy(started: Any, clients: Any) -> None:
    release = threading.Event()

    def sleep(ms: int) -> int:
        release.wait(10)
        return ms

    server = started({"Sleep": sleep, **basic_managers()})
    server.stop_listening()
    server.wait()
    server.listen(max_calls=1)
    busy = clients(address_of(server))
    busy.send(2, TEST_IF.procedure("Sleep").encode_request({"ms": 1}))
    while server.active_calls == 0:
        time.sleep(0.01)
    fault = clients(address_of(server)).call("Add", a=1, b=2)
    assert isinstance(fault, rpc.FaultReceived) and fault.status == RpcStatus.RPC_S_SERVER_TOO_BUSY
    release.set()
    assert isinstance(busy.event(), rpc.ResponseReceived)


def test_bindings_ipv4_ipv6_and_ncalrpc(make_server: Any, clients: Any, tmp_path: Any) -> None:
    server = make_server(lrpc_dir=str(tmp_path))
    server.register_interface(TEST_IF, basic_managers())
    v4 = server.use_protseq("ncacn_ip_tcp")
    try:
        v6 = server.use_protseq("ncacn_ip_tcp", host="::1")
    except RpcError:
        v6 = None  # no IPv6 loopback on this machine
    lrpc = server.use_protseq("ncalrpc")
    server.listen()
    assert v4.string_binding == f"ncacn_ip_tcp:127.0.0.1[{v4.endpoint}]"
    assert lrpc.string_binding.startswith("ncalrpc:[LRPC-")
    assert set(server.bindings) == {b for b in (v4, v6, lrpc) if b is not None}
    assert clients(("127.0.0.1", int(v4.endpoint))).call("Add", a=1, b=1) == {"return": 2}
    if v6 is not None:
        c6 = clients(("::1", int(v6.endpoint)), family=socket.AF_INET6)
        assert c6.call("Add", a=2, b=2) == {"return": 4}
    path = f"{tmp_path}/{lrpc.endpoint}"
    assert clients(path, family=socket.AF_UNIX).call("Add", a=3, b=3) == {"return": 6}
    server.close()
    assert not (tmp_path / lrpc.endpoint).exists()


def test_endpoint_observers_hear_changes(make_server: Any) -> None:
    server = make_server()
    calls: list[int] = []
    server.on_endpoints_changed(lambda s: calls.append(len(s.bindings)))
    server.use_protseq("ncacn_ip_tcp")
    server.register_interface(TEST_IF, basic_managers())
    assert calls == [1, 1]


def test_listen_wait_returns_on_stop_or_close_from_another_thread(make_server: Any) -> None:
    # RpcServerListen(DontWait = FALSE) returns once stopped and drained.
    for how in ("stop", "close"):
        server = make_server()
        server.use_protseq("ncacn_ip_tcp")
        errors: list[BaseException] = []

        def serve(server: rpc.Server = server, errors: list[BaseException] = errors) -> None:
            try:
                server.listen(wait=True)
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=serve)
        t.start()
        deadline = time.monotonic() + 5
        while not server.is_listening() and time.monotonic() < deadline:
            time.sleep(0.01)
        if how == "stop":
            server.stop_listening()
        else:
            server.close()
        t.join(5)
        assert not t.is_alive() and errors == []
