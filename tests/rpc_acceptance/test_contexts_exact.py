"""RPC acceptance #86-#89 against a running server: context handles on the wire, for every
manager form, and their scope (the association group: a handle of one association is unknown
to another) and rundown (once per open handle, on orderly and abortive disconnects, only for
the association that ended).

The owners' tests (tests/rpc/server/test_server_contexts.py) check one manager form over one
association; these add the forms, the cross-association rule and the abortive close.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

from winaio import rpc

from .conftest import (
    CLOSE,
    OPEN,
    READ,
    U32,
    Wire,
    fault_fields,
    managers,
    port_of,
    request_pdu,
    response_fields,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

DNE = rpc.PfcFlags.PFC_DID_NOT_EXECUTE
NULL_HANDLE = bytes(20)


class Store:
    """Open/Read/Close managers over a value, with the rundowns they get."""

    def __init__(self) -> None:
        self.rundowns: list[Any] = []
        self.entered: list[str] = []
        self.lock = threading.Lock()

    def managers(self, form: str) -> dict[str, Any]:
        def open_(value: int) -> Any:
            self.entered.append("Open")
            return {"value": value}

        def read(h: Any) -> int:
            self.entered.append("Read")
            return int(h["value"])

        def close(h: Any) -> None:
            self.entered.append("Close")
            return None

        return managers(form, Open=open_, Read=read, Close=close)

    def rundown(self, obj: Any) -> None:
        with self.lock:
            self.rundowns.append(obj["value"])


def serve(start: Any, store: Store, form: str) -> rpc.Server:
    server: rpc.Server = start(store.managers(form), rundowns={"ACC_CTX": store.rundown})
    return server


def open_handle(c: Wire, call_id: int, value: int) -> bytes:
    reply = response_fields(c.request(call_id, OPEN.opnum, U32.pack(value)))
    handle: bytes = reply["stub"]
    return handle


# -- #86 #87 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["thread", "coroutine", "async_call", "async_call_thread"])
def test_86_87_handle_bytes_on_every_form(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #86 [MS-RPCE §2.2.1.1.4] (Open's [out] handle: 20 octets, attributes 0, a
    # nonzero UUID, distinct per Open; Close's [in,out] handle comes back as 20 zero octets)
    # spec: rpc #87 [wine:rpc_message.c] (then the closed handle, a forged one and the NULL
    # handle -> fault 0x1C00001A, not executed)
    store = Store()
    server = serve(start, store, form)
    c = wire(port_of(server))
    c.bind()
    h1 = open_handle(c, 2, 11)
    h2 = open_handle(c, 3, 12)
    for h in (h1, h2):
        assert len(h) == 20 and h[:4] == bytes(4) and h[4:] != bytes(16)
    assert h1 != h2
    assert response_fields(c.request(4, READ.opnum, h2))["stub"] == U32.pack(12)
    assert response_fields(c.request(5, CLOSE.opnum, h1))["stub"] == NULL_HANDLE
    assert server.contexts.open_count() == 1
    forged = bytes(4) + bytes(reversed(h2[4:]))
    for call_id, h in ((6, h1), (7, forged), (8, NULL_HANDLE)):
        fault = fault_fields(c.request(call_id, READ.opnum, h))
        assert (fault["status"], fault["call_id"]) == (0x1C00001A, call_id)
        assert fault["flags"] & DNE
    assert store.entered == ["Open", "Open", "Read", "Close"]
    c.close()
    wait_for(lambda: store.rundowns == [12])  # h1 was closed: only h2 is run down


def test_87_a_handle_is_unknown_to_another_association(start: Any, wire: Any) -> None:
    # spec: rpc #87 (handles live in their association group: a valid handle of association
    # A presented on association B is a context mismatch; on A's second connection it works)
    store = Store()
    server = serve(start, store, "thread")
    a1 = wire(port_of(server))
    group = struct.unpack_from("<I", a1.bind(), 20)[0]
    h = open_handle(a1, 2, 5)
    b = wire(port_of(server))
    assert struct.unpack_from("<I", b.bind(), 20)[0] != group
    fault = fault_fields(b.request(2, READ.opnum, h))
    assert fault["status"] == 0x1C00001A
    a2 = wire(port_of(server))
    assert struct.unpack_from("<I", a2.bind(assoc_group_id=group), 20)[0] == group
    assert response_fields(a2.request(2, READ.opnum, h))["stub"] == U32.pack(5)


# -- #88 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("close", ["orderly", "abortive"])
def test_88_rundown_only_for_the_association_that_ended(start: Any, wire: Any, close: str) -> None:
    # spec: rpc #88 [MSL:server-context-run-down-routine] (two associations with open handles:
    # ending one runs down exactly its open handles, once each, whether the client closes or
    # resets the connection; the other association's handles stay usable)
    store = Store()
    server = serve(start, store, "thread")
    a = wire(port_of(server))
    a.bind()
    b = wire(port_of(server))
    b.bind()
    for i, value in enumerate((1, 2, 3)):
        open_handle(a, 2 + i, value)
    closed = open_handle(a, 5, 4)
    assert response_fields(a.request(6, CLOSE.opnum, closed))["stub"] == NULL_HANDLE
    hb = open_handle(b, 2, 100)
    if close == "abortive":
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    a.close()
    wait_for(lambda: len(store.rundowns) == 3)
    time.sleep(0.2)
    assert sorted(store.rundowns) == [1, 2, 3]
    assert response_fields(b.request(3, READ.opnum, hb))["stub"] == U32.pack(100)
    assert server.contexts.open_count() == 1
    b.close()
    wait_for(lambda: len(store.rundowns) == 4)
    assert sorted(store.rundowns) == [1, 2, 3, 100]
    assert server.contexts.open_count() == 0


def test_88_no_rundown_while_a_connection_of_the_association_remains(start: Any, wire: Any) -> None:
    # spec: rpc #88 ("the client's last connection of an association": closing the one that
    # opened the handle is not enough)
    store = Store()
    server = serve(start, store, "inline")
    a1 = wire(port_of(server))
    group = struct.unpack_from("<I", a1.bind(), 20)[0]
    h = open_handle(a1, 2, 9)
    a2 = wire(port_of(server))
    a2.bind(assoc_group_id=group)
    a1.close()
    time.sleep(0.3)
    assert store.rundowns == []
    assert response_fields(a2.request(2, READ.opnum, h))["stub"] == U32.pack(9)
    a2.close()
    wait_for(lambda: store.rundowns == [9])


# -- #89 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["thread", "async_call"])
def test_89_rundown_waits_for_every_manager_using_the_handle(
    start: Any, wire: Any, form: str
) -> None:
    # spec: rpc #89 [DCE appdev "Context Rundown Procedure"] (two calls use the handle when
    # the association ends; the rundown runs once, after the last of them returned or
    # completed)
    store = Store()
    release = threading.Event()
    pending: list[rpc.ServerCall] = []
    using = threading.Semaphore(0)

    def read_thread(h: Any) -> int:
        using.release()
        release.wait(10)
        return int(h["value"])

    @rpc.async_manager
    def read_async(call: rpc.ServerCall, h: Any) -> None:
        pending.append(call)
        using.release()

    mgrs = store.managers("thread")
    mgrs["Read"] = read_thread if form == "thread" else read_async
    server = start(mgrs, rundowns={"ACC_CTX": store.rundown})
    c = wire(port_of(server))
    c.bind(flags=0x03 | rpc.PfcFlags.PFC_CONC_MPX)
    h = open_handle(c, 2, 77)
    c.send(request_pdu(3, READ.opnum, h), request_pdu(4, READ.opnum, h))
    assert using.acquire(timeout=5) and using.acquire(timeout=5)
    c.close()
    wait_for(lambda: server.connection_count == 0)
    time.sleep(0.2)
    assert store.rundowns == []
    if pending:
        pending[0].complete(1)
        time.sleep(0.2)
        assert store.rundowns == []  # the second call still uses it
        pending[1].complete(1)
    else:
        release.set()
    wait_for(lambda: store.rundowns == [77])
    time.sleep(0.1)
    assert store.rundowns == [77]
    wait_for(lambda: server.active_calls == 0)
