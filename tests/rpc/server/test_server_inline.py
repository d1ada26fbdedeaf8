"""``@rpc.inline`` managers and the runtime's inline fast path (``Link._inline``,
``ServerConnection.answer_inline``, ``_ndr/_simple.py``).

The fast path must be invisible on the wire: a Hypothesis test feeds the same byte streams
(valid, mutated and refused calls, faults, cancels, fragments, garbage) to a connection with the
fast path and to one without it (per-call DEBUG logging turns it off) and compares every byte
written. The other tests check the manager form over loopback: where it runs, its faults and
logs, ``current_call()``, reply order and the waiters of stop/unregister.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio import rpc
from winaio.codes import RpcStatus
from winaio.errors import RpcError
from winaio.rpc._server._fast import FastPath
from winaio.rpc._server._link import Link

from .conftest import TEST_IF, TEST_UUID, address_of

pytestmark = pytest.mark.timeout(60)

LOGGER = logging.getLogger("winaio.rpc.server")

# -- a differential test: fast path against general path ------------------------------------

MIXED = rpc.Procedure(
    "Mixed",
    9,
    [
        rpc.Param("s", rpc.USHORT),
        rpc.Param("data", rpc.ConformantArray(rpc.BYTE, size_is="s")),
        rpc.Param("h", rpc.UHYPER),
        rpc.Param("c", rpc.CHAR),
        rpc.Param("tail", rpc.ConformantArray(rpc.USMALL)),
        rpc.Param("x", rpc.USMALL, rpc.OUT),
        rpc.Param("n", rpc.ULONG, rpc.OUT),
        rpc.Param("blob", rpc.ConformantArray(rpc.BYTE, size_is=rpc.Ref("n", divide=2)), rpc.OUT),
    ],
    returns=rpc.HYPER,
)
NOTHING = rpc.Procedure("Nothing", 10, [])
FLOATS = rpc.Procedure(
    "Floats",
    11,
    [rpc.Param("f", rpc.FLOAT), rpc.Param("d", rpc.DOUBLE), rpc.Param("b", rpc.BOOLEAN)],
    returns=rpc.DOUBLE,
)
ASYNC_ADD = rpc.Procedure(
    "AsyncAdd", 12, [rpc.Param("a", rpc.ULONG), rpc.Param("b", rpc.ULONG)], returns=rpc.ULONG
)
ASYNC_ECHO = rpc.Procedure("AsyncEcho", 13, list(TEST_IF.procedure("Echo").params))
DIFF_IF = rpc.Interface(
    "diff",
    TEST_UUID,
    (1, 0),
    [*TEST_IF.procedures[:4], MIXED, NOTHING, FLOATS, ASYNC_ADD, ASYNC_ECHO],
)
#: MS-async calls left pending by their manager; run_link completes them at the end.
LATER: list[tuple[rpc.ServerCall, Any]] = []


@rpc.inline
def add(a: int, b: int) -> int:
    if a == 13:
        raise RpcError(0x20000001)
    if a == 14:
        raise ValueError("boom")
    return (a + b) & 0xFFFFFFFF if a != 15 else -1  # -1 does not marshal: bad stub data


@rpc.inline
def echo(len: int, data: bytes) -> Any:
    if len == 3:
        return data[:-1]  # disagrees with size_is(len): RPC_S_INVALID_BOUND
    if len == 4:
        return bytearray(data)  # not bytes: the generic encoder takes it
    return data


@rpc.inline
def sleep(ms: int) -> int:
    return ms


@rpc.inline
def divmod_(a: int, b: int) -> Any:
    if b == 0:
        return "not a result"
    if a % 3 == 0:
        return {"q": a // b, "r": a % b, "return": 0}
    if a % 3 == 1:
        return [a // b, a % b, 0]
    return {"q": a // b}  # lacks outputs: RPC_X_BAD_STUB_DATA


@rpc.inline
def mixed(s: int, data: bytes, h: int, c: bytes, tail: bytes) -> Any:
    n = 2 * len(tail)
    return (s & 0xFF, n, tail, h - (1 << 63))


@rpc.inline
def nothing() -> None:
    return None


@rpc.inline
def floats(**kw: Any) -> float:  # keyword form: no positional call
    return kw["d"] + kw["f"] if kw["b"] else kw["d"]


@rpc.async_manager
def async_add(call: rpc.ServerCall, a: int, b: int) -> None:
    mode = a % 7
    if mode == 1:
        LATER.append((call, (a + b) & 0xFFFFFFFF))  # completes later
    elif mode == 2:
        call.abort(0x20000002)
    elif mode == 3:
        raise RpcError(0x20000003)
    elif mode == 4:
        call.complete(a)
        call.complete(b)  # RPC_S_INVALID_ASYNC_HANDLE raised here: the first reply stands
    elif mode == 5:
        LATER.append((call, None))  # aborted later
    elif mode == 6:
        call.complete(-1)  # does not marshal: bad stub data
    else:
        call.complete((a + b) & 0xFFFFFFFF)


@rpc.async_manager
def async_echo(call: rpc.ServerCall, len: int, data: bytes) -> None:
    if len % 2:
        LATER.append((call, data))
    else:
        call.complete(data if len != 4 else data + b"!")


DIFF_MANAGERS = {
    "Add": add,
    "Echo": echo,
    "Sleep": sleep,
    "DivMod": divmod_,
    "Mixed": mixed,
    "Nothing": nothing,
    "Floats": floats,
    "AsyncAdd": async_add,
    "AsyncEcho": async_echo,
}


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, key: str) -> Any:
        return ("127.0.0.1", 4242)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def diff_server() -> Iterator[rpc.Server]:
    server = rpc.Server()
    server.register_interface(DIFF_IF, DIFF_MANAGERS)
    server.use_protseq("ncacn_ip_tcp")
    server.listen()
    yield server
    server.close()


def bind_bytes(conc_mpx: bool) -> bytes:
    client = rpc.ClientConnection()
    el = rpc.ContextElement(0, DIFF_IF.syntax, (rpc.NDR20_SYNTAX,))
    return client.bind([el], conc_mpx=conc_mpx)


def stubs() -> st.SearchStrategy[tuple[int, bytes]]:
    u32 = st.integers(0, 2**32 - 1)
    small = st.integers(0, 20)
    valid = st.one_of(
        st.tuples(u32, u32).map(lambda v: (0, struct.pack("<II", *v))),
        st.binary(max_size=12).map(lambda d: (1, struct.pack("<II", len(d), len(d)) + d)),
        u32.map(lambda v: (2, struct.pack("<I", v))),
        st.tuples(u32, st.integers(0, 3)).map(lambda v: (3, struct.pack("<II", *v))),
        st.tuples(small, st.integers(0, 2**64 - 1), st.binary(max_size=6)).map(
            lambda v: (
                9,
                MIXED.encode_request(
                    {"s": v[0], "data": bytes(v[0]), "h": v[1], "c": b"z", "tail": v[2]}
                ),
            )
        ),
        st.just((10, b"")),
        st.tuples(st.floats(width=32), st.floats(), st.booleans()).map(
            lambda v: (11, FLOATS.encode_request({"f": v[0], "d": v[1], "b": v[2]}))
        ),
        st.tuples(st.integers(0, 30), u32).map(lambda v: (12, struct.pack("<II", *v))),
        st.binary(max_size=8).map(lambda d: (13, struct.pack("<II", len(d), len(d)) + d)),
    )
    return valid


@st.composite
def streams(draw: Any) -> tuple[bool, list[bytes]]:
    conc_mpx = draw(st.booleans())
    pdus: list[bytes] = []
    call_id = 2
    for _ in range(draw(st.integers(1, 12))):
        opnum, stub = draw(stubs())
        kind = draw(st.integers(0, 12))
        if kind == 0:  # a mutated stub
            if stub:
                pos = draw(st.integers(0, len(stub) - 1))
                stub = stub[:pos] + bytes([draw(st.integers(0, 255))]) + stub[pos + 1 :]
            else:
                stub = draw(st.binary(max_size=4))
        elif kind == 1:  # truncated
            stub = stub[: draw(st.integers(0, len(stub)))]
        elif kind == 2:  # an opnum that has no manager or no procedure
            opnum = draw(st.sampled_from([4, 5, 7, 8, 12, 99]))
        call_id += draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
        flags = 3
        if kind == 3:
            flags |= 0x04  # PFC_PENDING_CANCEL
        p_cont_id = 1 if kind == 4 else 0
        pdu = struct.pack("<BBBBIHHIIHH", 5, 0, 0, flags, 0x10, 24 + len(stub), 0, call_id,
                          len(stub), p_cont_id, opnum) + stub  # fmt: skip
        if kind == 5:  # the same request in two fragments
            half = len(stub) // 2
            first = struct.pack("<BBBBIHHIIHH", 5, 0, 0, 1, 0x10, 24 + half, 0, call_id,
                                len(stub), p_cont_id, opnum) + stub[:half]  # fmt: skip
            rest = stub[half:]
            last = struct.pack("<BBBBIHHIIHH", 5, 0, 0, 2, 0x10, 24 + len(rest), 0, call_id,
                               len(rest), p_cont_id, opnum) + rest  # fmt: skip
            pdu = first + last
        elif kind == 6:  # a co_cancel for it follows
            pdu += struct.pack("<BBBBIHHI", 5, 0, 18, 3, 0x10, 16, 0, call_id)
        elif kind == 7 and draw(st.integers(0, 3)) == 0:  # garbage: the connection breaks
            pdu = draw(st.binary(min_size=16, max_size=30))
        pdus.append(pdu)
    data = b"".join(pdus)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return conc_mpx, [c for c in chunks if c]


def run_link(server: rpc.Server, conc_mpx: bool, chunks: list[bytes]) -> tuple[Any, ...]:
    def body() -> tuple[Any, ...]:
        link = Link(server, "ncacn_ip_tcp")
        transport = Transport()
        link.connection_made(transport)
        link.data_received(bind_bytes(conc_mpx))
        transport.written.clear()  # the bind_ack carries a random assoc_group_id
        stats = server.stats
        before = (stats.calls_in, stats.calls_out)
        for chunk in chunks:
            if transport.closed:
                break
            link.data_received(chunk)
        while LATER:
            call, value = LATER.pop(0)
            if value is None:
                call.abort(0x20000005)
            else:
                call.complete(value)
        out = b"".join(transport.written)
        link.connection_lost(None)
        after = (stats.calls_in - before[0], stats.calls_out - before[1])
        return out, transport.closed, after

    result: tuple[Any, ...] = server.engine.run(body)
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_fast_path_writes_exactly_what_the_general_path_writes(
    diff_server: rpc.Server, stream: tuple[bool, list[bytes]]
) -> None:
    conc_mpx, chunks = stream
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        fast = run_link(diff_server, conc_mpx, chunks)
        LOGGER.setLevel(logging.DEBUG)  # per-call debug lines: the fast path stays off
        LOGGER.propagate, propagate = False, LOGGER.propagate
        try:
            general = run_link(diff_server, conc_mpx, chunks)
        finally:
            LOGGER.propagate = propagate
    finally:
        LOGGER.setLevel(level)
    assert fast == general
    assert diff_server.active_calls == 0


def test_fast_path_is_taken_for_simple_inline_procedures(diff_server: rpc.Server) -> None:
    reg = diff_server.registration(DIFF_IF)
    assert reg is not None
    assert sorted(reg.inline_ops) == [0, 1, 2, 3, 9, 10, 11, 12, 13]
    stub = struct.pack("<II", 3, 4)
    pdu = struct.pack("<BBBBIHHIIHH", 5, 0, 0, 3, 0x10, 24 + len(stub), 0, 7, 8, 0, 0) + stub
    calls = []

    def spy(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    original = FastPath.handle
    FastPath.handle = spy  # type: ignore[method-assign]
    try:
        out, closed, counted = run_link(diff_server, False, [pdu])
    finally:
        FastPath.handle = original  # type: ignore[method-assign]
    assert len(calls) == 1 and not closed and counted == (1, 1)
    assert out[2] == 2 and out[24:28] == struct.pack("<I", 7)  # a response: 3 + 4


# -- the manager form over loopback ---------------------------------------------------------


def test_inline_manager_runs_on_the_loop_thread(started: Any, clients: Any) -> None:
    seen: list[str] = []

    @rpc.inline
    def add_here(a: int, b: int) -> int:
        seen.append(threading.current_thread().name)
        return a + b

    @rpc.inline
    def echo_here(len: int, data: bytes) -> bytes:
        seen.append(threading.current_thread().name)
        return data

    class NoExecutor:
        def submit(self, fn: Any, *args: Any) -> None:
            raise AssertionError("an inline manager must not use the executor")

        def shutdown(self, wait: bool = True) -> None:
            pass

    server = started({"Add": add_here, "Echo": echo_here}, executor=NoExecutor())
    client = clients(address_of(server))
    assert client.call("Add", a=2, b=3) == {"return": 5}
    assert client.call("Echo", len=3, data=b"abc") == {"out": b"abc"}
    assert seen == ["winaio-rpc-loop", "winaio-rpc-loop"]


def test_inline_manager_of_a_non_simple_procedure_runs_inline_too(
    started: Any, clients: Any
) -> None:
    # Open returns a context handle: the general path, still on the loop thread.
    threads: list[str] = []

    @rpc.inline
    def open_(value: int) -> Any:
        threads.append(threading.current_thread().name)
        return {"value": value}

    @rpc.inline
    def read(h: Any) -> int:
        return int(h["value"])

    server = started({"Open": open_, "Read": read})
    client = clients(address_of(server))
    handle = client.call("Open", value=41)["h"]
    assert client.call("Read", h=handle) == {"return": 41}
    assert threads == ["winaio-rpc-loop"]


@pytest.mark.parametrize(
    ("a", "status"),
    [
        (13, 0x20000001),
        (14, RpcStatus.RPC_S_CALL_FAILED),
        (15, RpcStatus.RPC_X_BAD_STUB_DATA),
    ],
)
def test_inline_faults_and_their_log_lines(
    started: Any, clients: Any, caplog: Any, a: int, status: int
) -> None:
    # spec: rpc #22
    server = started({"Add": add})
    client = clients(address_of(server))
    with caplog.at_level("WARNING", logger="winaio.rpc.server"):
        fault = client.call("Add", a=a, b=1)
    assert isinstance(fault, rpc.FaultReceived) and fault.status == status
    assert not fault.did_not_execute
    assert f"test.Add (opnum 0) failed: status 0x{int(status):x}" in caplog.text
    assert client.call("Add", a=1, b=1) == {"return": 2}  # the server keeps serving


def test_current_call_inside_an_inline_manager(started: Any, clients: Any) -> None:
    seen: dict[str, Any] = {}

    @rpc.inline
    def add_call(a: int, b: int) -> int:
        call = rpc.current_call()
        assert rpc.current_call() is call
        seen.update(
            opnum=call.opnum, call_id=call.call_id, args=dict(call.args), peer=call.client_address
        )
        with pytest.raises(RpcError) as err:
            call.complete(0)  # an inline call completes by returning
        seen["status"] = err.value.status
        return a + b

    server = started({"Add": add_call})
    client = clients(address_of(server))
    assert client.call("Add", a=1, b=2) == {"return": 3}
    assert seen["opnum"] == 0 and seen["args"] == {"a": 1, "b": 2}
    assert seen["peer"][0] == "127.0.0.1" and seen["call_id"] >= 1
    assert seen["status"] == RpcStatus.RPC_S_INVALID_ASYNC_HANDLE
    with pytest.raises(RpcError):
        rpc.current_call()  # outside a manager again


def raw_request(call_id: int, opnum: int, stub: bytes) -> bytes:
    head = struct.pack("<BBBBIHHIIHH", 5, 0, 0, 3, 0x10, 24 + len(stub), 0, call_id, len(stub), 0,
                       opnum)  # fmt: skip
    return head + stub


def raw_replies(sock: Any, count: int) -> list[bytes]:
    buf = b""
    frames: list[bytes] = []
    while len(frames) < count:
        while len(buf) >= 10 and len(buf) >= struct.unpack_from("<H", buf, 8)[0]:
            size = struct.unpack_from("<H", buf, 8)[0]
            frames.append(buf[:size])
            buf = buf[size:]
        if len(frames) < count:
            data = sock.recv(65536)
            assert data, "closed"
            buf += data
    return frames


def test_inline_replies_wait_for_an_earlier_pending_call(started: Any, clients: Any) -> None:
    # spec: rpc #74 (no CONC_MPX: replies in request order, even the inline ones)
    pending: list[rpc.ServerCall] = []
    arrived = threading.Event()

    @rpc.async_manager
    def slow(call: rpc.ServerCall, ms: int) -> None:
        pending.append(call)
        arrived.set()

    server = started({"Sleep": slow, "Add": add})
    client = clients(address_of(server))
    adds = [TEST_IF.procedure("Add").encode_request({"a": i, "b": 1}) for i in range(3)]
    data = raw_request(5, 2, struct.pack("<I", 1))
    data += b"".join(raw_request(6 + i, 0, stub) for i, stub in enumerate(adds))
    client.sock.sendall(data)
    assert arrived.wait(5)
    pending[0].complete(7)
    frames = raw_replies(client.sock, 4)
    assert [struct.unpack_from("<I", f, 12)[0] for f in frames] == [5, 6, 7, 8]
    assert [f[2] for f in frames] == [2, 2, 2, 2]


def test_inline_replies_do_not_wait_with_conc_mpx(started: Any, clients: Any) -> None:
    # spec: rpc #73
    pending: list[rpc.ServerCall] = []

    @rpc.async_manager
    def slow(call: rpc.ServerCall, ms: int) -> None:
        pending.append(call)

    server = started({"Sleep": slow, "Add": add})
    client = clients(address_of(server), conc_mpx=True)
    first = client.send(2, TEST_IF.procedure("Sleep").encode_request({"ms": 1}))
    fast = client.send(0, TEST_IF.procedure("Add").encode_request({"a": 1, "b": 1}))
    assert client.event().call_id == fast
    pending[0].complete(7)
    assert client.event().call_id == first


def test_unregister_and_wait_wait_for_a_running_inline_call(started: Any, clients: Any) -> None:
    # An inline call is never counted as active; Server.dispatching covers it, so a waiter
    # cannot return while one runs (this manager sleeps, releasing the GIL mid-call).
    running = threading.Event()
    done = threading.Event()

    @rpc.inline
    def slow_add(a: int, b: int) -> int:
        running.set()
        done.wait(0.2)
        return a + b

    server = started({"Add": slow_add})
    client = clients(address_of(server))
    client.send(0, TEST_IF.procedure("Add").encode_request({"a": 1, "b": 1}))
    assert running.wait(5)
    threading.Timer(0.05, done.set).start()
    server.unregister_interface(TEST_IF, wait=True)
    assert done.is_set()  # the call was still running when unregister was asked
    assert isinstance(client.event(), rpc.ResponseReceived)
    fault = client.call("Add", a=1, b=1)
    assert isinstance(fault, rpc.FaultReceived) and fault.did_not_execute
    server.stop_listening()
    server.wait(5)
    assert server.active_calls == 0 and server.dispatching == 0


def test_inline_refuses_coroutines_and_async_managers() -> None:
    async def coro() -> None:
        pass

    with pytest.raises(TypeError):
        rpc.inline(coro)

    @rpc.async_manager
    def am(call: Any) -> None:
        pass

    with pytest.raises(TypeError):
        rpc.inline(am)
    assert rpc.inline(add) is add  # marking twice is harmless


def test_fast_path_call_objects_are_built_like_the_constructor_builds_them(
    diff_server: rpc.Server,
) -> None:
    # FastPath._async_call builds ServerCall without its __init__: same attributes, same values.
    seen: list[rpc.ServerCall] = []

    @rpc.async_manager
    def keep(call: rpc.ServerCall, a: int, b: int) -> None:
        seen.append(call)
        call.complete(a + b)

    iface = rpc.Interface("keep", TEST_UUID, (1, 0), [ASYNC_ADD])
    server = rpc.Server()
    try:
        server.register_interface(iface, {"AsyncAdd": keep})
        server.use_protseq("ncacn_ip_tcp")
        server.listen()
        stub = struct.pack("<II", 2, 3)
        pdu = struct.pack("<BBBBIHHIIHH", 5, 0, 0, 3, 0x10, 32, 0, 9, 8, 0, 12) + stub
        out, _closed, counted = run_link(server, False, [pdu])
        assert counted == (1, 1) and out[24:28] == struct.pack("<I", 5)
        (fast,) = seen
        link, reg, op = fast._link, fast.registration, fast.operation
        made = rpc.ServerCall(link, reg, op, 9, None, None, 0, (2, 3))
        assert set(vars(fast)) - {"_done"} == set(vars(made))  # (_done: it has completed)
        assert (fast.call_id, fast.ins, fast.object) == (9, (2, 3), None)
        assert fast.args == {"a": 2, "b": 3}
        assert fast.done and not fast.cancelled and not fast.disconnected
    finally:
        server.close()
