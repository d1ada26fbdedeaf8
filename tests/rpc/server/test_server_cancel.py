"""Cancel, orphan and disconnect (spec A6, B7; rpc #15, #16, #17 server side)."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import pytest

from winaio import rpc
from winaio.codes import NcaStatus, RpcStatus

from .conftest import TEST_IF, address_of, basic_managers

pytestmark = pytest.mark.timeout(30)

SLEEP = TEST_IF.procedure("Sleep")


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Held:
    """An MS-async Sleep manager that keeps its calls for the test to finish."""

    def __init__(self) -> None:
        self.calls: list[rpc.ServerCall] = []
        self.events: list[rpc.CallEvent] = []
        self.before: list[bool] = []

    def manager(self) -> Any:
        @rpc.async_manager
        def sleep(call: rpc.ServerCall, ms: int) -> None:
            self.before.append(call.test_cancel())
            call.on_event(self.events.append)
            self.calls.append(call)

        return sleep


def test_15_co_cancel_makes_test_cancel_true_and_notifies(started: Any, clients: Any) -> None:
    # spec: rpc #15
    held = Held()
    server = started({"Sleep": held.manager()})
    client = clients(address_of(server))
    call_id = client.send(2, SLEEP.encode_request({"ms": 1}))
    wait_for(lambda: held.calls)
    assert held.before == [False]  # RPC_S_CALL_IN_PROGRESS before the cancel
    client.sock.sendall(client.conn.cancel(call_id))
    wait_for(lambda: held.events)
    assert held.events == [rpc.CallEvent.CLIENT_CANCEL]
    assert held.calls[0].test_cancel()
    held.calls[0].complete(5)  # the manager decides: a normal reply
    reply = client.event()
    assert isinstance(reply, rpc.ResponseReceived) and reply.cancel_count == 1


def test_16_manager_that_aborts_on_cancel_gives_fault_cancel(started: Any, clients: Any) -> None:
    # spec: rpc #16
    @rpc.async_manager
    def sleep(call: rpc.ServerCall, ms: int) -> None:
        call.on_event(lambda ev: call.abort(RpcStatus.RPC_S_CALL_CANCELLED))

    server = started({"Sleep": sleep})
    client = clients(address_of(server))
    call_id = client.send(2, SLEEP.encode_request({"ms": 1}))
    time.sleep(0.1)
    client.sock.sendall(client.conn.cancel(call_id))
    fault = client.event()
    assert isinstance(fault, rpc.FaultReceived)
    assert fault.nca_status == NcaStatus.NCA_S_FAULT_CANCEL
    assert fault.status == RpcStatus.RPC_S_CALL_CANCELLED


def test_orphaned_call_sends_nothing_and_is_released(started: Any, clients: Any) -> None:
    # spec: rpc #17 (server side: nothing is sent for an orphaned call)
    held = Held()
    server = started({"Sleep": held.manager(), **basic_managers()})
    client = clients(address_of(server), features=0x2)  # KeepConnectionOnOrphan
    call_id = client.send(2, SLEEP.encode_request({"ms": 1}))
    wait_for(lambda: held.calls)
    client.sock.sendall(client.conn.orphan(call_id))
    wait_for(lambda: rpc.CallEvent.CLIENT_DISCONNECT in held.events)
    assert held.calls[0].test_cancel() and held.calls[0].disconnected
    held.calls[0].complete(1)  # accepted, dropped
    assert client.call("Add", a=1, b=2) == {"return": 3}  # the next thing on the wire
    wait_for(lambda: server.active_calls == 0)


def test_disconnect_tells_every_pending_call_and_drops_late_completions(
    started: Any, clients: Any
) -> None:
    held = Held()
    server = started({"Sleep": held.manager()})
    client = clients(address_of(server), conc_mpx=True)
    for ms in range(3):
        client.send(2, SLEEP.encode_request({"ms": ms}))
    wait_for(lambda: len(held.calls) == 3)
    client.close()
    wait_for(lambda: held.events.count(rpc.CallEvent.CLIENT_DISCONNECT) == 3)
    assert server.connection_count == 0
    refs = [weakref.ref(c) for c in held.calls]
    done = threading.Thread(target=lambda: [c.complete(1) for c in held.calls])
    done.start()
    done.join()
    wait_for(lambda: server.active_calls == 0)
    held.calls.clear()
    gc.collect()
    assert [r() for r in refs] == [None, None, None]  # no call object is left behind


def test_plain_manager_completing_after_disconnect_is_dropped(started: Any, clients: Any) -> None:
    release = threading.Event()
    finished = threading.Event()

    def sleep(ms: int) -> int:
        release.wait(10)
        finished.set()
        return ms

    server = started({"Sleep": sleep})
    client = clients(address_of(server))
    client.send(2, SLEEP.encode_request({"ms": 1}))
    wait_for(lambda: server.active_calls == 1)
    client.close()
    wait_for(lambda: server.connection_count == 0)
    release.set()
    assert finished.wait(5)
    wait_for(lambda: server.active_calls == 0)


def test_cancel_before_dispatch_is_visible(started: Any, clients: Any) -> None:
    # PFC_PENDING_CANCEL on the request: the call starts cancelled.
    held = Held()
    server = started({"Sleep": held.manager()})
    client = clients(address_of(server))
    stub = SLEEP.encode_request({"ms": 1})
    pdu = rpc.build_pdu(rpc.Request(call_id=9, p_cont_id=0, opnum=2, stub=stub, pfc_flags=0x07))
    client.sock.sendall(pdu)
    wait_for(lambda: held.calls)
    assert held.before == [True] and held.events == [rpc.CallEvent.CLIENT_CANCEL]
    held.calls[0].abort(RpcStatus.RPC_S_CALL_CANCELLED)
