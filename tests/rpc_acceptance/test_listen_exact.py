"""RPC acceptance #26-#36 and #98 against a running server: the pre-dispatch checks on every
manager form (the inline fast path must not skip them), exact fault bytes, and the listen state
machine waiting for calls of every form, MS-async calls still pending included.

The owners' tests (tests/rpc/server/test_server_listen.py, test_server_win32.py) check the
status codes; these add the boundaries (MaxRpcSize exactly), the callback's verdict other than 5,
that no manager is ever entered, and impacket as the client of #98.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from typing import Any

import pytest

from winaio import rpc
from winaio.codes import NcaStatus, RpcStatus
from winaio.errors import RpcError

from .conftest import (
    ACC_IF,
    IF_UUID,
    U32,
    Wire,
    add_stub,
    fault_fields,
    managers,
    port_of,
    request_pdu,
    response_fields,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

DNE = rpc.PfcFlags.PFC_DID_NOT_EXECUTE


def echo_data(n: int) -> bytes:
    return bytes(i % 256 for i in range(n))


def echo_request(n: int) -> bytes:
    data = echo_data(n)
    return struct.pack("<II", n, n) + data


def counting(form: str, entered: list[str]) -> dict[str, Any]:
    def add(a: int, b: int) -> int:
        entered.append("Add")
        return a + b

    def echo(len: int, data: bytes) -> bytes:
        entered.append("Echo")
        return data

    return managers(form, Add=add, Echo=echo)


# -- #34 ----------------------------------------------------------------------------------------


def test_34_max_rpc_size_boundary_on_every_form(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #34 [MSL:RpcServerRegisterIf2] (a request stub of exactly MaxRpcSize octets is
    # served; one octet more: fault status 5 with DID_NOT_EXECUTE, the manager never entered)
    entered: list[str] = []
    server = start(counting(form, entered), max_rpc_size=64)
    c = wire(port_of(server))
    c.bind()
    exact = echo_request(56)  # 8 + 56 = 64 octets
    assert len(exact) == 64
    reply = response_fields(c.request(2, 1, exact))
    assert reply["stub"] == struct.pack("<I", 56) + echo_data(56)
    assert entered == ["Echo"]
    over = echo_request(57)
    fault = fault_fields(c.request(3, 1, over))
    assert (fault["status"], fault["call_id"], fault["flags"]) == (5, 3, 0x03 | DNE)
    assert entered == ["Echo"]
    assert c.nothing_more(0.1)
    # Other procedures below the limit still run.
    assert response_fields(c.request(4, 0, add_stub(1, 2)))["stub"] == U32.pack(3)


def test_34_max_rpc_size_counts_the_reassembled_stub(start: Any, wire: Any) -> None:
    # spec: rpc #34 (a request whose fragments are each small but whose stub exceeds the
    # limit is refused the same way)
    entered: list[str] = []
    server = start(counting("inline", entered), max_rpc_size=64)
    c = wire(port_of(server))
    c.bind()
    stub = echo_request(100)
    first = rpc.build_pdu(
        rpc.Request(call_id=2, p_cont_id=0, opnum=1, stub=stub[:40], pfc_flags=0x01)
    )
    last = rpc.build_pdu(
        rpc.Request(call_id=2, p_cont_id=0, opnum=1, stub=stub[40:], pfc_flags=0x02)
    )
    c.send(first, last)
    fault = fault_fields(c.pdu())
    assert (fault["status"], fault["call_id"]) == (5, 2)
    assert fault["flags"] & DNE and entered == []
    assert c.nothing_more(0.2)


# -- #35 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("verdict", [5, 1783, 0x20000001, "raise"])
def test_35_security_callback_refusal_is_5_whatever_it_returned(
    start: Any, wire: Any, form: str, verdict: Any
) -> None:
    # spec: rpc #35 [MSL:RpcServerRegisterIf2] (any nonzero verdict, or an exception in the
    # callback, refuses the call with status 5 and DID_NOT_EXECUTE; the manager is not entered;
    # the callback sees every call, and a 0 verdict lets it run)
    entered: list[str] = []
    asked: list[tuple[str, str]] = []

    def callback(interface: rpc.Interface, call: rpc.ServerCall) -> int:
        asked.append((interface.name, call.procedure.name))
        if call.procedure.name == "Echo":
            return 0
        if verdict == "raise":
            raise RuntimeError("callback failed")
        return int(verdict)

    server = start(counting(form, entered), security_callback=callback)
    c = wire(port_of(server))
    c.bind()
    fault = fault_fields(c.request(2, 0, add_stub(1, 2)))
    assert (fault["status"], fault["flags"]) == (5, 0x03 | DNE)
    assert entered == []
    reply = response_fields(c.request(3, 1, echo_request(3)))
    assert reply["stub"] == struct.pack("<I", 3) + echo_data(3)
    assert entered == ["Echo"]
    assert asked == [("acc", "Add"), ("acc", "Echo")]


# -- #36 ----------------------------------------------------------------------------------------


def test_36_secure_only_refuses_every_unauthenticated_call(
    start: Any, wire: Any, form: str
) -> None:
    # spec: rpc #36 [MSL:interface-registration-flags] (auth level NONE: status 5, not
    # executed, on every manager form; the connection stays usable)
    entered: list[str] = []
    server = start(counting(form, entered), flags=rpc.IfFlags.ALLOW_SECURE_ONLY)
    c = wire(port_of(server))
    c.bind()
    for call_id in (2, 3):
        fault = fault_fields(c.request(call_id, 0, add_stub(1, 2)))
        assert (fault["status"], fault["call_id"], fault["flags"]) == (5, call_id, 0x03 | DNE)
    assert entered == []


# -- #33 ----------------------------------------------------------------------------------------


def test_33_autolisten_serves_without_listen_and_others_wait_for_it(
    make_server: Any, wire: Any, form: str
) -> None:
    # spec: rpc #33 [MSL:interface-registration-flags] (the AUTOLISTEN interface answers at
    # once; a plain interface of the same server is refused until server_listen)
    entered: list[str] = []
    server = make_server()
    server.register_interface(ACC_IF, counting(form, entered), flags=rpc.IfFlags.AUTOLISTEN)
    server.register_interface(rpc_other(), {"Add": lambda a, b: a * b})
    server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
    assert not server.is_listening()
    c = wire(port_of(server))
    c.bind()
    assert response_fields(c.request(2, 0, add_stub(20, 22)))["stub"] == U32.pack(42)
    o = wire(port_of(server))
    o.bind(rpc.ContextElement(0, rpc_other().syntax, (rpc.NDR20_SYNTAX,)))
    fault = fault_fields(o.request(2, 0, add_stub(6, 7)))
    assert fault["flags"] & DNE and fault["status"] == NcaStatus.NCA_S_SERVER_TOO_BUSY
    server.listen(wait=False)
    assert response_fields(o.request(3, 0, add_stub(6, 7)))["stub"] == U32.pack(42)
    assert entered == ["Add"]


def rpc_other() -> rpc.Interface:
    return rpc.Interface(
        "other2",
        "a0d1c2b3-5e6f-4a7b-8c9d-0e1f2a3b4c60",
        (1, 0),
        [ACC_IF.procedure("Add")],
    )


# -- #30 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["thread", "coroutine", "async_call", "async_call_thread"])
def test_30_wait_blocks_while_a_call_of_any_form_is_pending(
    start: Any, wire: Any, form: str
) -> None:
    # spec: rpc #30 [wine:tests/server.c] (stop_listening, then wait_server_listen blocks while
    # the call executes, an MS-async call not yet completed included; returns 0 once it has
    # replied; a second wait -> 1715)
    release = threading.Event()
    pending: list[rpc.ServerCall] = []

    if form == "thread":

        def hold(ms: int) -> int:
            release.wait(10)
            return ms

    elif form == "coroutine":

        async def hold(ms: int) -> int:  # type: ignore[misc]
            while not release.is_set():
                await asyncio.sleep(0.01)
            return ms

    else:

        def ms_async(call: rpc.ServerCall, ms: int) -> None:
            pending.append(call)

        hold = (  # type: ignore[assignment]
            rpc.async_manager(ms_async)
            if form == "async_call"
            else rpc.async_manager(thread=True)(ms_async)
        )

    server = start({"Hold": hold})
    c = wire(port_of(server))
    c.bind()
    c.send(request_pdu(2, 2, U32.pack(7)))
    wait_for(lambda: server.active_calls == 1)
    server.stop_listening()
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (server.wait(), returned.set()))
    waiter.start()
    assert not returned.wait(0.5)
    if pending:
        threading.Thread(target=pending[0].complete, args=(7,)).start()
    else:
        release.set()
    assert response_fields(c.pdu())["stub"] == U32.pack(7)
    assert returned.wait(5)
    waiter.join()
    with pytest.raises(RpcError) as info:
        server.wait()
    assert info.value.status == RpcStatus.RPC_S_NOT_LISTENING


# -- #98 ----------------------------------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("form", ["thread", "async_call"])
def test_98_stop_listening_lets_impackets_call_in_flight_finish(
    start: Any, wire: Any, form: str
) -> None:
    # spec: rpc #98 [MSL:RpcServerListen] [wine:tests/server.c] (impacket has a call in flight;
    # stop_listening + wait: its reply reaches impacket, then the connection closes; a new
    # call on another connection meanwhile is refused, not executed)
    transport = pytest.importorskip("impacket.dcerpc.v5.transport")
    from impacket.uuid import uuidtup_to_bin

    release = threading.Event()
    pending: list[rpc.ServerCall] = []

    def hold_thread(ms: int) -> int:
        release.wait(10)
        return ms + 1

    def hold_async(call: rpc.ServerCall, ms: int) -> None:
        pending.append(call)

    hold = hold_thread if form == "thread" else rpc.async_manager(hold_async)
    server = start({"Hold": hold, **managers("thread", Add=lambda a, b: a + b)})
    port = port_of(server)
    t = transport.DCERPCTransportFactory(f"ncacn_ip_tcp:127.0.0.1[{port}]")
    t.set_connect_timeout(5)
    dce = t.get_dce_rpc()
    dce.connect()
    try:
        dce.bind(uuidtup_to_bin((str(IF_UUID), "1.0")))
        dce.call(2, U32.pack(41))
        wait_for(lambda: server.active_calls == 1)
        server.stop_listening()
        late = wire(port)
        late.bind()
        fault = fault_fields(late.request(2, 0, add_stub(1, 1)))
        assert fault["flags"] & DNE
        done = threading.Thread(target=server.wait)
        done.start()
        time.sleep(0.2)
        assert done.is_alive()  # the call in flight holds wait()
        if pending:
            pending[0].complete(42)
        else:
            release.set()
        assert bytes(dce.recv()) == U32.pack(42)
        done.join(10)
        assert not done.is_alive()
        assert late.closed()
        wait_for(lambda: server.connection_count == 0)
    finally:
        dce.disconnect()


def test_wire_helper_round_trip(start: Any) -> None:
    server = start(managers("inline", Add=lambda a, b: a + b))
    c = Wire(port_of(server))
    try:
        assert c.bind()[2] == rpc.PType.BIND_ACK
        assert response_fields(c.request(1, 0, add_stub(1, 1)))["stub"] == U32.pack(2)
    finally:
        c.close()
    assert len(echo_request(3)) == 11
