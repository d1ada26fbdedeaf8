"""Calls through the server runtime: the three manager forms, values in/values out, faults,
exactly-once completion from any thread (rpc #18-#22), over loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from winaio import rpc
from winaio.codes import RpcStatus
from winaio.errors import RpcError, Win32Error

from .conftest import TEST_IF, Client, address_of

pytestmark = pytest.mark.timeout(30)


def test_plain_function_manager_runs_on_a_worker_thread(started: Any, clients: Any) -> None:
    seen: list[str] = []

    def add(a: int, b: int) -> int:
        seen.append(threading.current_thread().name)
        assert rpc.current_call().procedure.name == "Add"
        return a + b

    server = started({"Add": add})
    client = clients(address_of(server))
    assert client.call("Add", a=2, b=40) == {"return": 42}
    assert seen and seen[0] != "winaio-rpc-loop"


def test_values_in_values_out_several_outputs(started: Any, clients: Any) -> None:
    server = started()
    client = clients(address_of(server))
    assert client.call("DivMod", a=17, b=5) == {"q": 3, "r": 2, "return": 0}
    assert client.call("Echo", len=3, data=b"abc") == {"out": b"abc"}


def test_tuple_outputs_in_declaration_order(started: Any, clients: Any) -> None:
    server = started({"DivMod": lambda a, b: (a // b, a % b, 7)})
    assert clients(address_of(server)).call("DivMod", a=9, b=2) == {"q": 4, "r": 1, "return": 7}


def test_async_def_manager_runs_on_the_loop(started: Any, clients: Any) -> None:
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        assert threading.current_thread().name == "winaio-rpc-loop"
        assert rpc.current_call().procedure.name == "Add"
        return a + b

    server = started({"Add": add})
    assert clients(address_of(server)).call("Add", a=1, b=2) == {"return": 3}


def test_20_ms_async_manager_completes_from_another_thread_after_returning(
    started: Any, clients: Any
) -> None:
    # spec: rpc #20
    returned = threading.Event()

    @rpc.async_manager
    def add(call: rpc.ServerCall, a: int, b: int) -> None:
        def later() -> None:
            returned.wait(5)
            call.complete(a + b)

        threading.Thread(target=later).start()
        returned.set()  # the dispatching code is gone before the completion

    server = started({"Add": add})
    assert clients(address_of(server)).call("Add", a=5, b=6) == {"return": 11}


def test_18_abort_sends_a_fault_with_that_status_and_no_stub(started: Any, clients: Any) -> None:
    # spec: rpc #18
    @rpc.async_manager
    def add(call: rpc.ServerCall, a: int, b: int) -> None:
        call.abort(0x1234)

    server = started({"Add": add})
    client = clients(address_of(server))
    client.send(
        0, rpc.Procedure("Add", 0, TEST_IF.procedure(0).params).encode_request({"a": 1, "b": 2})
    )
    raw = client.sock.recv(1024)
    assert raw[2] == rpc.PType.FAULT and len(raw) == 32
    assert int.from_bytes(raw[24:28], "little") == 0x1234
    assert not raw[3] & rpc.PfcFlags.PFC_DID_NOT_EXECUTE


def test_19_second_complete_or_abort_is_rejected_and_sends_nothing(
    started: Any, clients: Any
) -> None:
    # spec: rpc #19
    outcomes: list[int] = []
    done = threading.Event()

    @rpc.async_manager
    def add(call: rpc.ServerCall, a: int, b: int) -> None:
        call.complete(a + b)
        for again in (lambda: call.complete(0), lambda: call.abort(5)):
            try:
                again()
            except RpcError as exc:
                outcomes.append(exc.status)
        done.set()

    server = started({"Add": add})
    client = clients(address_of(server))
    assert client.call("Add", a=1, b=1) == {"return": 2}
    assert done.wait(5)
    assert outcomes == [RpcStatus.RPC_S_INVALID_ASYNC_HANDLE] * 2
    # Nothing else was sent: the next call's reply is the next thing on the wire.
    assert client.call("Add", a=2, b=2) == {"return": 4}


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ValueError("boom"), RpcStatus.RPC_S_CALL_FAILED),
        (RpcError(0x20000001), 0x20000001),
        (Win32Error(5), RpcStatus.RPC_S_ACCESS_DENIED),
    ],
)
def test_22_manager_exception_becomes_a_mapped_fault(
    started: Any, clients: Any, exc: BaseException, status: int
) -> None:
    # spec: rpc #22 (ValueError -> nca_s_fault_unspec, seen by the client as 1726)
    def add(a: int, b: int) -> int:
        raise exc

    server = started({"Add": add})
    client = clients(address_of(server))
    for _ in range(2):  # the call handle was destroyed: the server keeps serving
        fault = client.call("Add", a=1, b=2)
        assert isinstance(fault, rpc.FaultReceived)
        assert fault.status == status


def test_21_a_manager_awaiting_io_does_not_block_other_calls(started: Any, clients: Any) -> None:
    # spec: rpc #21 (same connection with CONC_MPX, and another connection)
    async def sleep(ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    server = started({"Sleep": sleep, "Add": lambda a, b: a + b})
    mpx = clients(address_of(server), conc_mpx=True)
    other = clients(address_of(server))
    t0 = time.monotonic()
    slow = mpx.send(2, TEST_IF.procedure("Sleep").encode_request({"ms": 1000}))
    fast = mpx.send(0, TEST_IF.procedure("Add").encode_request({"a": 1, "b": 1}))
    first = mpx.event()
    assert isinstance(first, rpc.ResponseReceived) and first.call_id == fast
    assert other.call("Add", a=3, b=4) == {"return": 7}
    assert time.monotonic() - t0 < 0.9
    second = mpx.event()
    assert second.call_id == slow


def test_bad_manager_result_faults_bad_stub_data(started: Any, clients: Any) -> None:
    server = started({"DivMod": lambda a, b: "not a result"})
    fault = clients(address_of(server)).call("DivMod", a=1, b=1)
    assert isinstance(fault, rpc.FaultReceived)
    assert fault.status == RpcStatus.RPC_X_BAD_STUB_DATA


def test_big_endian_request_gets_a_little_endian_reply(started: Any, clients: Any) -> None:
    server = started()
    client = clients(address_of(server))
    stub = TEST_IF.procedure("Add").encode_request({"a": 1, "b": 2}, byteorder="big")
    data = rpc.build_pdu(
        rpc.Request(call_id=2, p_cont_id=0, opnum=0, stub=stub, drep=b"\x00\x00\x00\x00")
    )
    client.sock.sendall(data)
    raw = client.sock.recv(1024)
    assert raw[4:8] == b"\x10\x00\x00\x00" and raw[24:28] == (3).to_bytes(4, "little")


def test_client_helper_is_a_wire_layer_client() -> None:
    assert Client.__doc__


def test_async_manager_on_a_worker_thread_that_ends_before_completion(
    started: Any, clients: Any
) -> None:
    # The seeds' shape: the dispatch thread returns (and here, exits); another thread completes.
    threads: list[threading.Thread] = []

    class ThreadPerCall:
        def submit(self, fn: Any, *args: Any) -> None:
            t = threading.Thread(target=fn, args=args)
            threads.append(t)
            t.start()

    @rpc.async_manager(thread=True)
    def add(call: rpc.ServerCall, a: int, b: int) -> None:
        dispatcher = threading.current_thread()

        def later() -> None:
            dispatcher.join(5)
            assert not dispatcher.is_alive()
            call.complete(a + b)

        threading.Thread(target=later).start()

    server = started({"Add": add}, executor=ThreadPerCall())
    assert clients(address_of(server)).call("Add", a=20, b=22) == {"return": 42}
    assert threads and not threads[0].is_alive()


def test_refused_and_failed_calls_are_logged(started: Any, clients: Any, caplog: Any) -> None:
    def add(a: int, b: int) -> int:
        raise RpcError(0x20000001)

    server = started({"Add": add})
    client = clients(address_of(server))
    with caplog.at_level("DEBUG", logger="winaio.rpc.server"):
        client.send(99, b"")  # opnum outside the interface: refused by the connection
        assert isinstance(client.event(), rpc.FaultReceived)
        assert isinstance(client.call("Add", a=1, b=1), rpc.FaultReceived)
    text = caplog.text
    assert "refused" in text and "test.Add (opnum 0) failed: status 0x20000001" in text


@pytest.mark.parametrize("how", ["abort", "RpcAsyncAbortCall", "raise"])
def test_18_a_status_that_is_no_32_bit_code_never_strands_the_call(
    started: Any, clients: Any, how: str
) -> None:
    # spec: rpc #18 (bad input): abort refuses it with ERROR_INVALID_PARAMETER and the call stays
    # open; a manager raising it faults RPC_S_CALL_FAILED. Either way the call ends.
    import winaio.win32 as w

    calls: list[rpc.ServerCall] = []
    arrived = threading.Event()

    @rpc.async_manager
    def hold(call: rpc.ServerCall, ms: int) -> None:
        calls.append(call)
        arrived.set()
        if how == "raise":
            raise RpcError(1 << 32)

    server = started({"Sleep": hold})
    client = clients(address_of(server))
    client.send(2, TEST_IF.procedure("Sleep").encode_request({"ms": 1}))
    assert arrived.wait(5)
    if how == "abort":
        with pytest.raises(RpcError) as err:
            calls[0].abort(1 << 32)
        assert err.value.status == 87
        with pytest.raises(RpcError):
            calls[0].abort(-(1 << 31) - 1)
        calls[0].abort(5)
        expected = 5
    elif how == "RpcAsyncAbortCall":
        assert w.RpcAsyncAbortCall(calls[0], 1 << 32) == 87
        assert w.RpcAsyncAbortCall(calls[0], 5) == w.RPC_S_OK
        expected = 5
    else:
        expected = RpcStatus.RPC_S_CALL_FAILED
    fault = client.event()
    assert isinstance(fault, rpc.FaultReceived) and fault.status == expected
    deadline = time.monotonic() + 5
    while server.active_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.active_calls == 0


@pytest.mark.parametrize("form", ["thread", "coroutine", "async_call", "async_thread", "inline"])
@pytest.mark.parametrize("procedure", ["Add", "DivMod"])  # fast path / general path
def test_15_current_call_inside_every_manager_form(
    started: Any, clients: Any, form: str, procedure: str
) -> None:
    # spec: rpc #15 (RpcServerTestCancel(NULL) inside any manager: the current call, not
    # cancelled -> RPC_S_CALL_IN_PROGRESS)
    import winaio.win32 as w

    seen: list[Any] = []

    def body(a: int, b: int) -> Any:
        call = rpc.current_call()
        seen.append((call.procedure.name, call.args, w.RpcServerTestCancel(None)))
        return a + b if procedure == "Add" else (a, b, 0)

    manager: Any
    if form == "thread":
        manager = body
    elif form == "inline":
        manager = rpc.inline(lambda a, b: body(a, b))
    elif form == "coroutine":

        async def manager(a: int, b: int) -> Any:
            return body(a, b)

    else:

        def manager(call: rpc.ServerCall, a: int, b: int) -> None:
            call.complete(body(a, b))

        manager = rpc.async_manager(manager, thread=form == "async_thread")
    server = started({procedure: manager})
    result = clients(address_of(server)).call(procedure, a=2, b=3)
    assert result == ({"return": 5} if procedure == "Add" else {"q": 2, "r": 3, "return": 0})
    assert seen == [(procedure, {"a": 2, "b": 3}, w.RPC_S_CALL_IN_PROGRESS)]
