"""Context handles per association group, rundown (rpc #86-#89), and pipes (rpc #24, #25)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from winaio import rpc
from winaio.codes import RpcStatus

from .conftest import TEST_IF, address_of

pytestmark = pytest.mark.timeout(30)


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Store:
    def __init__(self) -> None:
        self.rundowns: list[Any] = []
        self.reading = threading.Event()
        self.release = threading.Event()
        self.block = False

    def managers(self) -> dict[str, Any]:
        def read(h: Any) -> int:
            if self.block:
                self.reading.set()
                self.release.wait(10)
            return int(h["value"])

        return {
            "Open": lambda value: {"value": value},
            "Read": read,
            "Close": lambda h: None,
        }


def started_store(started: Any, store: Store) -> rpc.Server:
    return started(store.managers(), rundowns={"PCTX": store.rundowns.append})


def test_86_open_returns_a_nonzero_handle_and_close_returns_zeros(
    started: Any, clients: Any
) -> None:
    # spec: rpc #86
    store = Store()
    server = started_store(started, store)
    client = clients(address_of(server))
    client.send(4, TEST_IF.procedure("Open").encode_request({"value": 7}))
    raw = client.event().stub
    assert len(raw) == 20 and raw != bytes(20)
    handle = TEST_IF.procedure("Open").decode_response(raw)["h"]
    assert client.call("Read", h=handle) == {"return": 7}
    client.send(6, TEST_IF.procedure("Close").encode_request({"h": handle}))
    assert client.event().stub == bytes(20)
    assert server.contexts.open_count() == 0


def test_87_closed_or_unknown_handle_faults_context_mismatch(started: Any, clients: Any) -> None:
    # spec: rpc #87
    store = Store()
    server = started_store(started, store)
    client = clients(address_of(server))
    handle = client.call("Open", value=1)["h"]
    client.call("Close", h=handle)
    for h in (handle, rpc.ContextHandleValue(0, handle.uuid.__class__(int=12345))):
        fault = client.call("Read", h=h)
        assert isinstance(fault, rpc.FaultReceived)
        assert fault.nca_status == 0x1C00001A and fault.status == RpcStatus.RPC_S_INVALID_HANDLE
    null = client.call("Read", h=rpc.ContextHandleValue.NULL)
    assert isinstance(null, rpc.FaultReceived) and null.nca_status == 0x1C00001A
    assert store.rundowns == []


def test_in_out_null_handle_reaches_the_manager_as_none(started: Any, clients: Any) -> None:
    seen: list[Any] = []

    def close(h: Any) -> Any:
        seen.append(h)
        return None

    server = started({"Close": close})
    client = clients(address_of(server))
    assert client.call("Close", h=rpc.ContextHandleValue.NULL) == {"h": rpc.ContextHandleValue.NULL}
    assert seen == [None]


def test_88_rundown_once_per_open_handle_when_the_association_ends(
    started: Any, clients: Any
) -> None:
    # spec: rpc #88 (scope = association group: a second connection joins it)
    store = Store()
    server = started_store(started, store)
    first = clients(address_of(server))
    group = first.bound.assoc_group_id
    second = clients(address_of(server), assoc_group_id=group)
    assert isinstance(second.bound, rpc.BindAccepted)
    a = first.call("Open", value=1)["h"]
    b = first.call("Open", value=2)["h"]
    closed = first.call("Open", value=3)["h"]
    first.call("Close", h=closed)
    assert second.call("Read", h=a) == {"return": 1}  # same association, same handles
    first.close()
    time.sleep(0.2)
    assert store.rundowns == []  # the association still has a connection
    second.close()
    wait_for(lambda: len(store.rundowns) == 2)
    time.sleep(0.1)
    assert sorted(v["value"] for v in store.rundowns) == [1, 2]
    assert server.contexts.open_count() == 0
    assert b is not None


def test_89_rundown_waits_for_the_manager_using_the_handle(started: Any, clients: Any) -> None:
    # spec: rpc #89
    store = Store()
    server = started_store(started, store)
    client = clients(address_of(server))
    handle = client.call("Open", value=5)["h"]
    store.block = True
    client.send(5, TEST_IF.procedure("Read").encode_request({"h": handle}))
    assert store.reading.wait(5)
    client.close()
    wait_for(lambda: server.connection_count == 0)
    time.sleep(0.2)
    assert store.rundowns == []  # Read is still using it
    store.release.set()
    wait_for(lambda: store.rundowns == [{"value": 5}])


def test_24_in_pipe_pull_and_end(started: Any, clients: Any) -> None:
    # spec: rpc #24, #25 (chunks u32 count + elements, terminated by count 0)
    pulled: list[Any] = []

    def sum_pipe(p: rpc.PipeIn) -> int:
        total = 0
        while True:
            chunk = p.pull()
            pulled.append(chunk)
            if not chunk:
                break
            total += sum(chunk)
        assert not p.pull()  # after the end: count 0 again
        return total

    server = started({"SumPipe": sum_pipe})
    client = clients(address_of(server))
    assert client.call("SumPipe", p=[[1, 2, 3], [4], [5, 6]]) == {"return": 21}
    assert pulled == [[1, 2, 3], [4], [5, 6], []]


def test_out_pipe_push_chunks(started: Any, clients: Any) -> None:
    async def count_pipe(n: int, p: rpc.PipeOut) -> None:
        for start in range(0, n, 3):
            p.push(list(range(start, min(start + 3, n))))
        p.push([])

    server = started({"CountPipe": count_pipe})
    client = clients(address_of(server))
    assert client.call("CountPipe", n=7) == {"p": [[0, 1, 2], [3, 4, 5], [6]]}
