"""Audit of the RPC server's fast path (``ServerConnection.answer_inline``, ``_server/_link``,
``FastPath``; docs/design.md §5): every request shape the fast path must hand over (or answer
identically) gets the same reply bytes on the wire as on the general path.

The general path is the same server with per-call DEBUG logging on (``_link`` then skips
``answer_inline``, as tests/rpc_acceptance/test_calls_exact.py uses). Each script is sent in ONE
``sendall`` so that several requests sit in the buffer the fast path walks; the replies are read
up to a sentinel call (or the server's close), and the two transcripts must be equal byte for
byte. A few exact values are pinned as well, so that both paths being wrong the same way fails.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from winaio import rpc
from winaio.errors import RpcError

from .conftest import (
    ACC_IF,
    U32,
    Wire,
    add_stub,
    bind_pdu,
    manager,
    port_of,
    request_pdu,
)

pytestmark = pytest.mark.timeout(60)

SENTINEL = 1000
FORMS = ("inline", "thread")


@contextlib.contextmanager
def general_path() -> Iterator[None]:
    log = logging.getLogger("winaio.rpc.server")
    old = log.level
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.setLevel(old)


def _call_id(pdu: bytes) -> int:
    return int(struct.unpack_from("<I" if pdu[4] & 0x10 else ">I", pdu, 12)[0])


def transcript(port: int, blob: bytes, sentinel: int = SENTINEL) -> list[bytes]:
    """Send ``blob`` at once; the PDUs received up to the sentinel's reply, or b"" at close."""
    c = Wire(port)
    try:
        c.send(blob)
        out: list[bytes] = []
        for _ in range(64):
            pdu = c.pdu()
            out.append(pdu)
            if not pdu or _call_id(pdu) == sentinel:
                break
        return out
    finally:
        c.close()


def raw_request(
    call_id: int,
    opnum: int,
    stub: bytes,
    *,
    flags: int = 0x03,
    minor: int = 0,
    big: bool = False,
    auth: bytes = b"",
    frag_length: int | None = None,
) -> bytes:
    """A request PDU built by hand (any drep, auth trailer, frag_length)."""
    e = ">" if big else "<"
    drep = b"\x00\x00\x00\x00" if big else b"\x10\x00\x00\x00"
    auth_len = max(len(auth) - 8, 0)
    size = 24 + len(stub) + len(auth) if frag_length is None else frag_length
    head = struct.pack("<BBBB", 5, minor, 0, flags) + drep
    head += struct.pack(e + "HHIIHH", size, auth_len, call_id, len(stub), 0, opnum)
    return head + stub + auth


def sentinel() -> bytes:
    return request_pdu(SENTINEL, 0, add_stub(40, 2))


@pytest.fixture
def servers() -> Iterator[Callable[..., rpc.Server]]:
    made: list[rpc.Server] = []

    def make(form: str, *, max_calls: int = 1234, **fns: Any) -> rpc.Server:
        server = rpc.Server()
        made.append(server)
        mgrs = {
            "Add": manager(form, lambda a, b: (a + b) & 0xFFFFFFFF),
            "Echo": manager(form, lambda len, data: data),
        }
        mgrs.update({k: manager(form, v) for k, v in fns.items()})
        server.register_interface(ACC_IF, mgrs)
        server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
        server.listen(max_calls, wait=False)
        return server

    yield make
    for server in made:
        server.close()


def both(servers: Any, form: str, blob: bytes, **kw: Any) -> tuple[list[bytes], list[bytes]]:
    fast = transcript(port_of(servers(form, **kw)), blob)
    with general_path():
        general = transcript(port_of(servers(form, **kw)), blob)
    for t in (fast, general):
        # The bind_ack names the server's port and its association group: not compared.
        assert t and t[0][2] == 12, t[:1]
        t[0] = b"bind_ack"
    return fast, general


def bind(minor: int = 0) -> bytes:
    pdu = bytearray(bind_pdu((rpc.ContextElement(0, ACC_IF.syntax, (rpc.NDR20_SYNTAX,)),)))
    pdu[1] = minor
    return bytes(pdu)


def _kinds(pdus: list[bytes]) -> list[tuple[int, int]]:
    """(ptype, call_id) of each PDU; (-1, -1) for the close."""
    return [(12, 1) if p == b"bind_ack" else (p[2], _call_id(p)) if p else (-1, -1) for p in pdus]


def _fault_status(pdu: bytes) -> int:
    assert pdu[2] == 3, pdu.hex()
    return int(struct.unpack_from("<I", pdu, 24)[0])


@pytest.mark.parametrize("form", FORMS)
def test_requests_of_the_other_minor_version_get_the_same_replies(servers: Any, form: str) -> None:
    # spec: rpc #51
    blob = bind(1) + b"".join(
        raw_request(cid, 0, add_stub(cid, 1), minor=cid % 2) for cid in range(2, 10)
    )
    blob += raw_request(SENTINEL, 0, add_stub(40, 2), minor=1)
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast)[1:] == [(2, cid) for cid in range(2, 10)] + [(2, SENTINEL)]
    for pdu, cid in zip(fast[1:], range(2, 10), strict=False):
        assert pdu[1] == 1, "replies carry the bound minor version"  # as the bind_ack
        assert pdu[24:] == U32.pack(cid + 1)


@pytest.mark.parametrize("form", FORMS)
def test_big_endian_requests_between_little_endian_ones(servers: Any, form: str) -> None:
    # spec: rpc #76
    blob = bind()
    for cid in range(2, 8):
        big = cid % 2 == 1
        stub = struct.pack(">II" if big else "<II", cid, 100)
        blob += raw_request(cid, 0, stub, big=big)
    blob += sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast)[1:] == [(2, cid) for cid in range(2, 8)] + [(2, SENTINEL)]
    for pdu, cid in zip(fast[1:], range(2, 8), strict=False):
        assert pdu[24:] == U32.pack(cid + 100)  # the server answers in its own drep (NDR LE)


AUTH = struct.pack("<BBBBI", 10, 2, 0, 0, 0) + b"\x00" * 16  # NTLM, connect, a 16-byte token


def test_a_request_with_an_auth_verifier_after_an_inline_one(servers: Any) -> None:
    # spec: rpc #52 (the inline call before it is answered inside the same batch: its reply
    # comes first, then the fault for the authenticated request, then the close)
    blob = bind() + request_pdu(2, 0, add_stub(1, 2))
    blob += raw_request(3, 0, add_stub(3, 4), auth=AUTH)
    blob += request_pdu(4, 0, add_stub(5, 6)) + sentinel()
    fast, general = both(servers, "inline", blob)
    assert fast == general
    assert _kinds(fast) == [(12, 1), (2, 2), (3, 3), (-1, -1)]
    assert fast[1][24:] == U32.pack(3)
    assert fast[2][3] == 0x23 and _fault_status(fast[2]) == 5  # DID_NOT_EXECUTE, access denied


@pytest.mark.parametrize("form", FORMS)
def test_a_request_with_an_auth_verifier_is_refused_on_both_paths(servers: Any, form: str) -> None:
    # spec: rpc #52
    blob = bind() + raw_request(2, 0, add_stub(3, 4), auth=AUTH)
    blob += request_pdu(3, 0, add_stub(5, 6)) + sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast) == [(12, 1), (3, 2), (-1, -1)]
    assert fast[1][3] == 0x23 and _fault_status(fast[1]) == 5


TOP = 5840  # the server's transport maximum (rpc._pdu MAX_FRAG_SIZE, Windows' 5840)
PROTO_ERROR = 0x1C01000B  # nca_s_proto_error


def echo_request(call_id: int, n: int) -> bytes:
    """Echo of ``n`` bytes: len, then the conformant array's max_count and its bytes."""
    return request_pdu(
        call_id, 1, U32.pack(n) * 2 + bytes(range(256)) * (n // 256) + bytes(n % 256)
    )


def _response_stub(pdus: list[bytes]) -> bytes:
    return b"".join(p[24:] for p in pdus)


@pytest.mark.parametrize("form", FORMS)
def test_a_fragment_of_exactly_the_maximum(servers: Any, form: str) -> None:
    # spec: rpc #70
    at = echo_request(2, TOP - 32)
    assert len(at) == TOP
    fast, general = both(servers, form, bind() + at + sentinel())
    assert fast == general
    assert _kinds(fast) == [(12, 1), (2, 2), (2, 2), (2, SENTINEL)]
    assert [len(p) for p in fast[1:3]] == [4280, 24 + (TOP - 28) - (4280 - 24)]
    assert [p[3] for p in fast[1:3]] == [0x01, 0x02]  # FIRST, then LAST
    n = TOP - 32
    assert _response_stub(fast[1:3]) == U32.pack(n) + echo_request(2, n)[32:]


def test_over_the_maximum_after_inline_ones_in_one_batch(servers: Any) -> None:
    # spec: rpc #70 (the calls before it in the batch are answered, then the fault, the close)
    blob = bind() + echo_request(2, TOP - 32) + request_pdu(4, 0, add_stub(7, 8))
    blob += echo_request(3, TOP - 24) + sentinel()
    fast, general = both(servers, "inline", blob)
    assert fast == general
    assert _kinds(fast) == [(12, 1), (2, 2), (2, 2), (2, 4), (3, 3), (-1, -1)]
    assert fast[3][24:] == U32.pack(15) and _fault_status(fast[4]) == PROTO_ERROR


@pytest.mark.parametrize("form", FORMS)
def test_over_the_maximum_ends_the_connection_on_both_paths(servers: Any, form: str) -> None:
    # spec: rpc #70
    over = echo_request(2, TOP - 24)
    assert len(over) == TOP + 8
    fast, general = both(servers, form, bind() + over + sentinel())
    assert fast == general
    assert _kinds(fast) == [(12, 1), (3, 2), (-1, -1)]
    assert _fault_status(fast[1]) == PROTO_ERROR


@pytest.mark.parametrize("form", FORMS)
def test_multi_fragment_requests_between_single_ones(servers: Any, form: str) -> None:
    # spec: rpc #68
    data = bytes(range(200))
    stub = U32.pack(len(data)) * 2 + data
    first = raw_request(3, 1, stub[:100], flags=0x01)
    middle = raw_request(3, 1, stub[100:150], flags=0x00)
    last = raw_request(3, 1, stub[150:], flags=0x02)
    blob = bind() + request_pdu(2, 0, add_stub(1, 1)) + first + middle + last
    blob += request_pdu(4, 0, add_stub(2, 2)) + sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast)[1:] == [(2, 2), (2, 3), (2, 4), (2, SENTINEL)]
    assert fast[2][24:] == U32.pack(len(data)) + data + b"\x00" * (-len(data) % 4)


@pytest.mark.parametrize("form", FORMS)
def test_a_single_fragment_request_inside_a_fragmented_one(servers: Any, form: str) -> None:
    # spec: rpc #68
    stub = U32.pack(8) * 2 + bytes(8)
    blob = bind() + raw_request(2, 1, stub[:8], flags=0x01)
    blob += request_pdu(3, 0, add_stub(1, 1))  # a new call while call 2 is being received
    blob += raw_request(2, 1, stub[8:], flags=0x02) + sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast) == [(12, 1), (3, 2), (-1, -1)]  # broken sequencing: fault, close
    assert _fault_status(fast[1]) == PROTO_ERROR


@pytest.mark.parametrize("form", FORMS)
def test_cancel_and_orphaned_next_to_inline_requests(servers: Any, form: str) -> None:
    # spec: rpc #71
    blob = bind() + request_pdu(2, 0, add_stub(1, 2))
    blob += rpc.build_pdu(rpc.CoCancel(call_id=3))  # for a call not received yet
    blob += request_pdu(3, 0, add_stub(3, 4))
    blob += rpc.build_pdu(rpc.Orphaned(call_id=9))  # for no call at all
    blob += request_pdu(4, 0, add_stub(5, 6)) + sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast)[1:] == [(2, 2), (2, 3), (2, 4), (2, SENTINEL)]
    assert [p[24:] for p in fast[1:4]] == [U32.pack(3), U32.pack(7), U32.pack(11)]


@pytest.mark.parametrize("form", FORMS)
def test_a_call_id_that_does_not_increase_in_a_batch(servers: Any, form: str) -> None:
    # spec: rpc #66
    blob = bind() + request_pdu(5, 0, add_stub(1, 2)) + request_pdu(5, 0, add_stub(3, 4))
    blob += request_pdu(6, 0, add_stub(5, 6)) + sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast) == [(12, 1), (2, 5), (3, 5), (2, 6), (2, SENTINEL)]
    assert fast[1][24:] == U32.pack(3) and fast[3][24:] == U32.pack(11)
    assert fast[2][3] == 0x23 and _fault_status(fast[2]) == PROTO_ERROR


@pytest.mark.parametrize("form", FORMS)
def test_context_handle_calls_next_to_inline_ones(servers: Any, form: str) -> None:
    # spec: rpc #80

    def open_(value: int) -> Any:
        return value  # the context of the new handle

    def read(h: Any) -> int:
        return int(h) + 1

    def close(h: Any) -> Any:
        return None  # the handle is closed

    results = []
    for general in (False, True):
        ctx = general_path() if general else contextlib.nullcontext()
        with ctx:
            server = servers(form, Open=open_, Read=read, Close=close)
            c = Wire(port_of(server))
            try:
                c.bind()
                opened = c.request(2, 3, U32.pack(41))
                assert opened[2] == 2, opened.hex()
                handle = opened[24:44]
                c.send(
                    request_pdu(3, 0, add_stub(1, 2))
                    + request_pdu(4, 4, handle)
                    + request_pdu(5, 0, add_stub(3, 4))
                    + request_pdu(6, 5, handle)
                )
                got = [c.pdu() for _ in range(4)]
                # After the close's reply (pipelined behind it, a thread-form Read may still
                # find the handle: calls on one connection run concurrently).
                c.send(request_pdu(7, 4, handle) + sentinel())
                got += [c.pdu(), c.pdu()]
            finally:
                c.close()
        results.append([p.replace(handle, b"H" * 20) for p in got])
    fast, general_ = results
    assert fast == general_
    assert _kinds(fast) == [(2, 3), (2, 4), (2, 5), (2, 6), (3, 7), (2, SENTINEL)]
    assert fast[1][24:] == U32.pack(42) and fast[3][24:] == bytes(20)


def test_max_calls_reached_gets_the_same_answer(servers: Any) -> None:
    # spec: rpc #27
    results = []
    for general in (False, True):
        ctx = general_path() if general else contextlib.nullcontext()
        gate = threading.Event()
        entered = threading.Event()

        def hold(ms: int, gate: threading.Event = gate, entered: threading.Event = entered) -> int:
            entered.set()
            assert gate.wait(30)
            return ms

        with ctx:
            server = servers("thread", max_calls=1, Hold=hold)
            a = Wire(port_of(server))
            b = Wire(port_of(server))
            try:
                a.bind()
                b.bind()
                a.send(request_pdu(2, 2, U32.pack(7)))
                assert entered.wait(10)
                got = transcript_on(b, request_pdu(3, 0, add_stub(1, 2)) + sentinel())
                gate.set()
                held = a.pdu()
            finally:
                gate.set()
                a.close()
                b.close()
        results.append((got, held))
    assert results[0] == results[1]
    got, held = results[0]
    assert held[2] == 2 and held[24:] == U32.pack(7)
    # Both refused while the one call slot is taken: nca_s_server_too_busy, DID_NOT_EXECUTE.
    assert [(p[2], p[3], _call_id(p), _fault_status(p)) for p in got] == [
        (3, 0x23, 3, 0x1C010014),
        (3, 0x23, SENTINEL, 0x1C010014),
    ]


def transcript_on(c: Wire, blob: bytes) -> list[bytes]:
    c.send(blob)
    out = []
    for _ in range(8):
        pdu = c.pdu()
        out.append(pdu)
        if not pdu or _call_id(pdu) == SENTINEL:
            break
    return out


@pytest.mark.parametrize("form", FORMS)
def test_object_uuid_unknown_context_opnum_and_huge_hint_in_one_batch(
    servers: Any, form: str
) -> None:
    # spec: rpc #55 #69 #70 (each request the fast path must hand over sits between inline ones)
    obj = rpc.build_pdu(
        rpc.Request(
            call_id=3,
            p_cont_id=0,
            opnum=0,
            stub=add_stub(3, 4),
            object=UUID("01234567-89ab-cdef-0123-456789abcdef"),
        )
    )
    blob = bind() + request_pdu(2, 0, add_stub(1, 2)) + obj
    blob += request_pdu(4, 0, add_stub(5, 6), p_cont_id=7)  # no such context
    blob += request_pdu(5, 0, add_stub(7, 8))
    blob += request_pdu(6, 0, add_stub(9, 10), alloc_hint=5 << 20)  # over the limit
    blob += request_pdu(7, 0, add_stub(11, 12)) + sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast) == [
        (12, 1),
        (2, 2),
        (2, 3),
        (3, 4),
        (2, 5),
        (3, 6),
        (2, 7),
        (2, SENTINEL),
    ]
    assert [fast[i][24:] for i in (1, 2, 4, 6)] == [U32.pack(v) for v in (3, 7, 15, 23)]
    assert fast[3][3] == 0x23 and _fault_status(fast[3]) == 0x1C010003  # nca_s_unk_if
    # An alloc_hint announcing more than the 4 MiB limit is refused up front (status 5).
    assert fast[5][3] == 0x23 and _fault_status(fast[5]) == 5


@pytest.mark.parametrize("form", FORMS)
def test_an_opnum_out_of_range_between_inline_requests(servers: Any, form: str) -> None:
    # spec: rpc #57
    blob = bind() + request_pdu(2, 0, add_stub(1, 2)) + request_pdu(3, 99, b"")
    blob += request_pdu(4, 0, add_stub(3, 4)) + sentinel()
    fast, general = both(servers, form, blob)
    assert fast == general
    assert _kinds(fast) == [(12, 1), (2, 2), (3, 3), (2, 4), (2, SENTINEL)]
    assert _fault_status(fast[2]) == 0x1C010002  # nca_s_op_rng_error


def _add_or_raise(a: int, b: int) -> int:
    if a == 13:
        raise ValueError("unlucky")
    if a == 14:
        raise RpcError(0x6F7, "explicit")  # RPC_X_BAD_STUB_DATA
    if a == 15:
        raise RpcError(1234567, "an application code")
    return (a + b) & 0xFFFFFFFF


@pytest.mark.parametrize("form", FORMS)
def test_bad_stubs_and_raising_managers_between_inline_requests(servers: Any, form: str) -> None:
    # spec: rpc #22 #59 (the fast path declines a stub it cannot decode; a manager's exception
    # becomes the same fault on both paths)
    blob = bind() + request_pdu(2, 0, add_stub(1, 2))
    blob += request_pdu(3, 0, add_stub(1, 2)[:4])  # short stub
    blob += request_pdu(4, 1, U32.pack(4) + U32.pack(5) + bytes(4))  # max_count != len
    blob += request_pdu(5, 0, add_stub(13, 0))
    blob += request_pdu(6, 0, add_stub(14, 0))
    blob += request_pdu(7, 0, add_stub(15, 0))
    blob += request_pdu(8, 0, add_stub(3, 4)) + sentinel()
    fast, general = both(servers, form, blob, Add=_add_or_raise)
    assert fast == general
    kinds = _kinds(fast)
    assert kinds == [(12, 1), (2, 2), (3, 3), (3, 4), (3, 5), (3, 6), (3, 7), (2, 8), (2, SENTINEL)]
    statuses = [_fault_status(p) for p in fast[2:7]]
    # bad stub data twice, the unmapped exception's fault, then the two explicit statuses
    assert statuses == [0x6F7, 0x6F7, 0x1C000012, 0x6F7, 1234567]
    assert fast[7][24:] == U32.pack(7)
