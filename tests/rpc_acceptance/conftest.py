"""Audit fixtures: a running ``rpc.Server`` on 127.0.0.1:0 and a raw-socket client that sends
exact bytes and reads exact PDUs, so tests pin the wire (rpc-spec B2-B8) whatever path the
runtime takes (general dispatch or the inline fast path).

``FORMS`` are the five manager forms a server author can write (rpc-api: plain function on a
worker thread, ``async def`` on the loop, MS-async on the loop or on a worker thread, and
``@rpc.inline``); ``manager(form, fn)`` turns one plain function into each form, so that a
behaviour is checked on every path that can answer a call.
"""

from __future__ import annotations

import functools
import os
import pathlib
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from winaio import rpc
from winaio.testing import hex_reader

IF_UUID = UUID("a0d1c2b3-5e6f-4a7b-8c9d-0e1f2a3b4c5d")

ADD = rpc.Procedure(
    "Add", 0, [rpc.Param("a", rpc.ULONG), rpc.Param("b", rpc.ULONG)], returns=rpc.ULONG
)
ECHO = rpc.Procedure(
    "Echo",
    1,
    [
        rpc.Param("len", rpc.ULONG),
        rpc.Param("data", rpc.ConformantArray(rpc.BYTE, size_is="len")),
        rpc.Param("out", rpc.ConformantArray(rpc.BYTE, size_is="len"), rpc.OUT),
    ],
)
HOLD = rpc.Procedure("Hold", 2, [rpc.Param("ms", rpc.ULONG)], returns=rpc.ULONG)
PCTX = rpc.ContextHandle("ACC_CTX")
OPEN = rpc.Procedure("Open", 3, [rpc.Param("value", rpc.ULONG), rpc.Param("h", PCTX, rpc.OUT)])
READ = rpc.Procedure("Read", 4, [rpc.Param("h", PCTX)], returns=rpc.ULONG)
CLOSE = rpc.Procedure("Close", 5, [rpc.Param("h", PCTX, rpc.IN_OUT)])

#: Version 1.2: a client may bind 1.0-1.2 (rpc #50).
ACC_IF = rpc.Interface("acc", IF_UUID, (1, 2), [ADD, ECHO, HOLD, OPEN, READ, CLOSE])
OTHER_IF = rpc.Interface("other", UUID("a0d1c2b3-5e6f-4a7b-8c9d-0e1f2a3b4c5e"), (1, 0), [ADD])
UNKNOWN = rpc.SyntaxId(UUID("11111111-2222-3333-4444-555555555555"), 1, 0)

FORMS = ("thread", "coroutine", "async_call", "async_call_thread", "inline")

U32 = struct.Struct("<I")
HEADER = struct.Struct("<BBBB4sHHI")


def manager(form: str, fn: Callable[..., Any], seen: list[Any] | None = None) -> Callable[..., Any]:
    """``fn(**ins) -> result`` (or raise) as a manager of the given form; the MS-async forms
    append a weak reference to their call object to ``seen``."""
    if form == "thread":

        @functools.wraps(fn)
        def plain(*args: Any, **kw: Any) -> Any:
            return fn(*args, **kw)

        return plain
    if form == "inline":

        @rpc.inline
        @functools.wraps(fn)
        def fast(*args: Any, **kw: Any) -> Any:
            return fn(*args, **kw)

        return fast
    if form == "coroutine":

        async def coro(**kw: Any) -> Any:
            return fn(**kw)

        return coro

    def ms_async(call: rpc.ServerCall, **kw: Any) -> None:
        # RpcAsyncCompleteCall from another thread after the manager returned, or the
        # exception raised by the manager itself (the runtime maps it like any other form).
        if seen is not None:
            seen.append(weakref.ref(call))
        result = fn(**kw)
        threading.Thread(target=call.complete, args=(result,)).start()

    if form == "async_call":
        return rpc.async_manager(ms_async)
    assert form == "async_call_thread"
    return rpc.async_manager(thread=True)(ms_async)


def managers(
    form: str, seen: list[Any] | None = None, **fns: Callable[..., Any]
) -> dict[str, Callable[..., Any]]:
    return {name: manager(form, fn, seen) for name, fn in fns.items()}


def basic(form: str) -> dict[str, Callable[..., Any]]:
    return managers(
        form,
        Add=lambda a, b: (a + b) & 0xFFFFFFFF,
        Echo=lambda len, data: data,
    )


@pytest.fixture(params=FORMS)
def form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_server() -> Iterator[Callable[..., rpc.Server]]:
    servers: list[rpc.Server] = []

    def make(**kw: Any) -> rpc.Server:
        server = rpc.Server(**kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def start(make_server: Callable[..., rpc.Server]) -> Callable[..., rpc.Server]:
    """``start(managers, **register_kw)``: a listening server on 127.0.0.1:0 serving ACC_IF."""

    def run(mgrs: dict[str, Any], *, server_kw: dict[str, Any] | None = None, **reg: Any) -> Any:
        server = make_server(**(server_kw or {}))
        server.register_interface(ACC_IF, mgrs, **reg)
        server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
        server.listen(wait=False)
        return server

    return run


def port_of(server: rpc.Server) -> int:
    (tcp,) = [b for b in server.bindings if b.protseq == "ncacn_ip_tcp"]
    return int(tcp.endpoint)


class Wire:
    """A raw TCP client: exact bytes out, exact PDUs in (split by frag_length)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, *pdus: bytes) -> None:
        self.sock.sendall(b"".join(pdus))

    def pdu(self, timeout: float = 10.0) -> bytes:
        """The next whole PDU; b"" if the server closed the connection first."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 10:
                size = struct.unpack_from("<H", self.buf, 8)[0]
                if size >= 16 and len(self.buf) >= size:
                    out, self.buf = self.buf[:size], self.buf[size:]
                    return out
            data = self.sock.recv(65536)
            if not data:
                assert not self.buf, f"connection closed mid-PDU: {self.buf.hex()}"
                return b""
            self.buf += data

    def nothing_more(self, wait: float = 0.3) -> bool:
        """True when no byte arrives within ``wait`` seconds (the connection stays open)."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        self.buf += data
        return False

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes (EOF or reset) without sending anything else."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536) == b"" and not self.buf
        except ConnectionResetError:
            return not self.buf

    def bind(
        self,
        *contexts: rpc.ContextElement,
        call_id: int = 1,
        flags: int = 0x03,
        assoc_group_id: int = 0,
        max_xmit: int = 4280,
        max_recv: int = 4280,
        p_cont_id: int = 0,
    ) -> bytes:
        """Send a bind (default: ACC_IF 1.0 on ``p_cont_id``, NDR) and return the reply PDU."""
        elements = contexts or (rpc.ContextElement(p_cont_id, ACC_IF.syntax, (rpc.NDR20_SYNTAX,)),)
        self.send(bind_pdu(elements, call_id, flags, assoc_group_id, max_xmit, max_recv))
        return self.pdu()

    def request(
        self, call_id: int, opnum: int, stub: bytes, p_cont_id: int = 0, **kw: Any
    ) -> bytes:
        self.send(request_pdu(call_id, opnum, stub, p_cont_id, **kw))
        return self.pdu()

    def close(self) -> None:
        self.sock.close()


def bind_pdu(
    contexts: tuple[rpc.ContextElement, ...] | list[rpc.ContextElement],
    call_id: int = 1,
    flags: int = 0x03,
    assoc_group_id: int = 0,
    max_xmit: int = 4280,
    max_recv: int = 4280,
) -> bytes:
    return rpc.build_pdu(
        rpc.Bind(
            call_id=call_id,
            pfc_flags=flags,
            max_xmit_frag=max_xmit,
            max_recv_frag=max_recv,
            assoc_group_id=assoc_group_id,
            contexts=tuple(contexts),
        )
    )


def request_pdu(call_id: int, opnum: int, stub: bytes, p_cont_id: int = 0, **kw: Any) -> bytes:
    return rpc.build_pdu(
        rpc.Request(call_id=call_id, p_cont_id=p_cont_id, opnum=opnum, stub=stub, **kw)
    )


def add_stub(a: int, b: int) -> bytes:
    return struct.pack("<II", a, b)


def fault_fields(pdu: bytes) -> dict[str, int]:
    """The fields of a fault PDU (rpc-spec B3), checking its fixed layout (rpc #60)."""
    assert len(pdu) == 32, f"fault PDU is {len(pdu)} bytes: {pdu.hex()}"
    vers, minor, ptype, flags, drep, frag, auth, call_id = HEADER.unpack_from(pdu)
    assert (vers, minor, ptype, drep, frag, auth) == (5, 0, 3, b"\x10\0\0\0", 32, 0), pdu.hex()
    hint, p_cont_id, cancels, _rsv, status, reserved = struct.unpack_from("<IHBBII", pdu, 16)
    assert (hint, reserved) == (0, 0), pdu.hex()
    return {
        "call_id": call_id,
        "flags": flags,
        "p_cont_id": p_cont_id,
        "cancel_count": cancels,
        "status": status,
    }


def response_fields(pdu: bytes) -> dict[str, Any]:
    vers, minor, ptype, flags, drep, frag, auth, call_id = HEADER.unpack_from(pdu)
    assert (vers, minor, ptype, drep, auth) == (5, 0, 2, b"\x10\0\0\0", 0), pdu.hex()
    assert frag == len(pdu)
    hint, p_cont_id, cancels, _rsv = struct.unpack_from("<IHBB", pdu, 16)
    return {
        "call_id": call_id,
        "flags": flags,
        "alloc_hint": hint,
        "p_cont_id": p_cont_id,
        "cancel_count": cancels,
        "stub": pdu[24:],
    }


@pytest.fixture
def wire() -> Iterator[Callable[[int], Wire]]:
    made: list[Wire] = []

    def make(port: int) -> Wire:
        w = Wire(port)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "pdu"


#: Bytes of tests/data/pdu/<name>.hex (the captured exchanges of rpc-spec B10).
read_hex = hex_reader(DATA)
