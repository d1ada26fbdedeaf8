"""RPC acceptance #44-#66 against a running server over loopback, byte for byte.

The owners' tests check most of these on the sans-I/O ``ServerConnection`` (tests/rpc/
connection) and some through impacket; the running server adds its own paths (the inline fast
path packs reply headers itself, managers of five forms finish calls from other threads), so
here every rule is checked on the bytes a live ``rpc.Server`` writes, on every manager form
where a manager is involved, with a nonzero p_cont_id wherever "echoed" is part of the rule.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any
from uuid import UUID

import pytest

from winaio import rpc
from winaio.codes import NcaStatus, RpcStatus
from winaio.errors import RpcError

from .conftest import (
    ACC_IF,
    HEADER,
    U32,
    UNKNOWN,
    Wire,
    add_stub,
    bind_pdu,
    fault_fields,
    managers,
    port_of,
    read_hex,
    request_pdu,
    response_fields,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

DNE = rpc.PfcFlags.PFC_DID_NOT_EXECUTE
NDR20 = bytes.fromhex("045d888aeb1cc9119fe808002b104860 02000000")
NULL_SYNTAX = bytes(20)

# The captured impacket exchange (rpc-spec B10) was taken against an interface
# 12345678-1234-abcd-ef00-0123456789ab v1.0 whose opnum 0 takes (a, b) and answers
# (sum, ErrorCode): the same shape here, seven procedures so that opnum 7 is out of range.
CAPTURED_IF_UUID = UUID("12345678-1234-abcd-ef00-0123456789ab")
SUM = rpc.Procedure(
    "Sum",
    0,
    [rpc.Param("a", rpc.ULONG), rpc.Param("b", rpc.ULONG), rpc.Param("sum", rpc.ULONG, rpc.OUT)],
    returns=rpc.ULONG,
)
CAPTURED_IF = rpc.Interface(
    "captured",
    CAPTURED_IF_UUID,
    (1, 0),
    [SUM, *(rpc.Procedure(f"P{i}", i, [], returns=rpc.ULONG) for i in range(1, 7))],
)


def ack_fields(pdu: bytes) -> dict[str, Any]:
    """bind_ack / alter_context_resp fields (rpc-spec B3), checking the header and the 4-byte
    alignment of the result list from the start of the PDU (rpc #46)."""
    vers, minor, ptype, flags, drep, frag, auth, call_id = HEADER.unpack_from(pdu)
    assert (vers, minor, drep, auth, frag) == (5, 0, b"\x10\0\0\0", 0, len(pdu)), pdu.hex()
    xmit, recv, group, sec_len = struct.unpack_from("<HHIH", pdu, 16)
    sec_addr = pdu[26 : 26 + sec_len]
    at = (26 + sec_len + 3) & ~3
    assert pdu[26 + sec_len : at] == bytes(at - 26 - sec_len), "pad octets must be 0"
    n = pdu[at]
    assert pdu[at + 1 : at + 4] == b"\0\0\0"
    results = [
        (*struct.unpack_from("<HH", pdu, at + 4 + 24 * i), pdu[at + 8 + 24 * i : at + 28 + 24 * i])
        for i in range(n)
    ]
    assert len(pdu) == at + 4 + 24 * n, pdu.hex()
    return {
        "ptype": ptype,
        "flags": flags,
        "call_id": call_id,
        "max_xmit": xmit,
        "max_recv": recv,
        "assoc_group_id": group,
        "sec_addr": sec_addr,
        "results": results,
    }


def nak_fields(pdu: bytes) -> dict[str, Any]:
    vers, minor, ptype, _flags, drep, frag, auth, call_id = HEADER.unpack_from(pdu)
    assert (vers, minor, ptype, drep, auth, frag) == (5, 0, 13, b"\x10\0\0\0", 0, len(pdu))
    reason, n = struct.unpack_from("<HB", pdu, 16)
    versions = [tuple(pdu[19 + 2 * i : 21 + 2 * i]) for i in range(n)]
    return {"call_id": call_id, "reason": reason, "versions": versions}


def fragments(call_id: int, opnum: int, stub: bytes, max_frag: int) -> list[bytes]:
    """A request split into fragments of at most ``max_frag`` octets (rpc-spec B5)."""
    size = max_frag - 24
    pieces = [stub[i : i + size] for i in range(0, len(stub), size)] or [b""]
    out = []
    for i, piece in enumerate(pieces):
        flags = (0x01 if i == 0 else 0) | (0x02 if i == len(pieces) - 1 else 0)
        out.append(
            rpc.build_pdu(
                rpc.Request(
                    call_id=call_id,
                    p_cont_id=0,
                    opnum=opnum,
                    stub=piece,
                    alloc_hint=len(stub),
                    pfc_flags=flags,
                )
            )
        )
    assert all(len(f) <= max_frag for f in out)
    return out


def ctx(p_cont_id: int, syntax: rpc.SyntaxId = ACC_IF.syntax, *ts: rpc.SyntaxId) -> Any:
    return rpc.ContextElement(p_cont_id, syntax, ts or (rpc.NDR20_SYNTAX,))


# -- #44 #57 #60 #62 #64: the captured impacket session replayed byte for byte ------------------


@pytest.mark.parametrize("form", ["thread", "coroutine", "async_call", "inline"])
def test_44_64_57_captured_impacket_session_gets_the_captured_answers(
    make_server: Any, form: str
) -> None:
    # spec: rpc #44 #64 #62 #57 #60 [captured] (the 72-byte bind -> the 60-byte bind_ack but
    # for our port and association id; the request reusing call_id 1 -> the captured
    # response; opnum 7 -> the captured op_rng_error fault, flags 0x23)
    server = make_server()
    server.register_interface(CAPTURED_IF, managers(form, Sum=lambda a, b: (a + b, 0)))
    server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
    server.listen(wait=False)
    port = port_of(server)
    c = Wire(port)
    try:
        c.send(read_hex("impacket_bind"))
        ack = c.pdu()
        fields = ack_fields(ack)
        assert fields["sec_addr"] == str(port).encode() + b"\0"
        sec = struct.pack("<H", len(fields["sec_addr"])) + fields["sec_addr"]
        pad = bytes(-(26 + len(sec) - 2) % 4)
        body = (
            bytes.fromhex("b810b810")
            + U32.pack(fields["assoc_group_id"])
            + sec
            + pad
            + bytes.fromhex("01000000 00000000")
            + NDR20
        )
        expected = bytes.fromhex("05000c0310000000") + struct.pack("<HHI", 16 + len(body), 0, 1)
        assert ack == expected + body  # the captured bind_ack with our sec_addr and group
        assert fields["assoc_group_id"] != 0
        c.send(read_hex("impacket_request_add"))
        assert c.pdu() == read_hex("response_add")
        c.send(request_pdu(3, 7, b""))
        assert c.pdu() == read_hex("fault_op_rng_error")
        assert c.nothing_more(0.2)
    finally:
        c.close()


# -- #45 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        ((4280, 4280), (4280, 4280)),
        ((5840, 5840), (5840, 5840)),
        ((65535, 65535), (5840, 5840)),
        ((2000, 5000), (5000, 2000)),
    ],
)
def test_45_bind_ack_frag_sizes_and_the_responses_that_follow(
    start: Any, wire: Any, proposed: tuple[int, int], expected: tuple[int, int]
) -> None:
    # spec: rpc #45 [imp:rpcrt.py] [samba:dcerpc.idl] (max_xmit/max_recv <= the client's
    # proposals and <= 5840; and every response fragment then fits the client's max_recv)
    server = start(managers("inline", Echo=lambda len, data: data))
    c = wire(port_of(server))
    xmit, recv = proposed
    fields = ack_fields(c.bind(max_xmit=xmit, max_recv=recv))
    assert (fields["max_xmit"], fields["max_recv"]) == expected
    assert fields["max_xmit"] <= recv and fields["max_recv"] <= xmit
    data = bytes(i % 251 for i in range(12000))
    c.send(*fragments(2, 1, struct.pack("<II", len(data), len(data)) + data, fields["max_recv"]))
    stub = b""
    while True:
        pdu = c.pdu()
        assert len(pdu) <= min(recv, 5840), len(pdu)
        frag = response_fields(pdu)
        assert frag["call_id"] == 2
        stub += frag["stub"]
        if frag["flags"] & 0x02:
            break
    assert stub == struct.pack("<I", len(data)) + data


# -- #46 #47 #48 #49 #50 -------------------------------------------------------------------------


def test_46_47_48_unknown_and_unsupported_syntaxes_in_one_bind(start: Any, wire: Any) -> None:
    # spec: rpc #46 #47 #48 [MS-RPCE §3.3.1.5.6] (sec_addr NUL-terminated, results 4-aligned;
    # unknown abstract syntax -> 2/1, NDR64 only -> 2/2, both with a zero transfer syntax; a
    # bind_ack, not a bind_nak; the accepted context works)
    server = start(managers("inline", Add=lambda a, b: a + b))
    c = wire(port_of(server))
    c.send(
        bind_pdu(
            (ctx(0, UNKNOWN), ctx(1, ACC_IF.syntax, rpc.NDR64_SYNTAX), ctx(2)),
            call_id=7,
        )
    )
    fields = ack_fields(c.pdu())
    assert (fields["ptype"], fields["call_id"]) == (12, 7)
    assert fields["sec_addr"] == str(port_of(server)).encode() + b"\0"
    assert fields["results"] == [(2, 1, NULL_SYNTAX), (2, 2, NULL_SYNTAX), (0, 0, NDR20)]
    assert response_fields(c.request(8, 0, add_stub(1, 2), p_cont_id=2))["stub"] == U32.pack(3)
    fault = fault_fields(c.request(9, 0, add_stub(1, 2), p_cont_id=0))
    assert fault["status"] == NcaStatus.NCA_S_UNK_IF and fault["flags"] & DNE


def test_47_only_unknown_syntax_is_a_bind_ack_with_no_acceptance(start: Any, wire: Any) -> None:
    # spec: rpc #47 (not bind_nak: ptype 12 with result 2 reason 1)
    server = start(managers("thread", Add=lambda a, b: a + b))
    c = wire(port_of(server))
    fields = ack_fields(c.bind(ctx(0, UNKNOWN)))
    assert fields["ptype"] == 12 and fields["results"] == [(2, 1, NULL_SYNTAX)]


def test_49_windows_three_element_bind(start: Any, wire: Any) -> None:
    # spec: rpc #49 [MS-RPCE §3.3.1.5.3] (NDR, NDR64, BTFN 6cb71c2c-9812-4540-0300-...:
    # [0/0/NDR], [2/2/zeros], [3/bitmask/zeros], SecurityContextMultiplexing cleared)
    server = start(managers("inline", Add=lambda a, b: a + b))
    c = wire(port_of(server))
    btfn = rpc.bind_time_feature_syntax(0x03)
    assert str(btfn.uuid) == "6cb71c2c-9812-4540-0300-000000000000"
    fields = ack_fields(
        c.bind(ctx(0), ctx(1, ACC_IF.syntax, rpc.NDR64_SYNTAX), ctx(2, ACC_IF.syntax, btfn))
    )
    assert fields["results"] == [(0, 0, NDR20), (2, 2, NULL_SYNTAX), (3, 0x02, NULL_SYNTAX)]
    assert response_fields(c.request(2, 0, add_stub(4, 5)))["stub"] == U32.pack(9)


@pytest.mark.parametrize(
    ("version", "result"),
    [((1, 0), (0, 0)), ((1, 2), (0, 0)), ((1, 3), (2, 1)), ((2, 0), (2, 1)), ((0, 2), (2, 1))],
)
def test_50_interface_version_rules(
    start: Any, wire: Any, version: tuple[int, int], result: tuple[int, int]
) -> None:
    # spec: rpc #50 [C706] (server has 1.2: major must match, client minor <= 1.2)
    server = start(managers("inline", Add=lambda a, b: a + b))
    c = wire(port_of(server))
    offered = rpc.SyntaxId(ACC_IF.syntax.uuid, *version)
    fields = ack_fields(c.bind(ctx(0, offered)))
    assert fields["results"][0][:2] == result
    if result == (0, 0):
        assert response_fields(c.request(2, 0, add_stub(1, 1)))["stub"] == U32.pack(2)
    else:
        fault = fault_fields(c.request(2, 0, add_stub(1, 1)))
        assert fault["status"] == NcaStatus.NCA_S_UNK_IF


# -- #51 #52 #53 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [(4, 0), (6, 0), (5, 2)])
def test_51_foreign_rpc_version_gets_bind_nak_4(
    start: Any, wire: Any, version: tuple[int, int]
) -> None:
    # spec: rpc #51 [MS-RPCE §2.2.2.5] (bind_nak reason 4, versions list {5.0}, call_id echoed)
    server = start(managers("inline", Add=lambda a, b: a + b))
    c = wire(port_of(server))
    data = bytearray(bind_pdu((ctx(0),), call_id=11))
    data[0], data[1] = version
    c.send(bytes(data))
    nak = nak_fields(c.pdu())
    assert nak == {"call_id": 11, "reason": 4, "versions": [(5, 0)]}


def test_52_unknown_auth_type_gets_bind_nak_8(start: Any, wire: Any) -> None:
    # spec: rpc #52 [MS-RPCE §3.3.3.5.3]
    server = start(managers("inline", Add=lambda a, b: a + b))
    c = wire(port_of(server))
    verifier = rpc.AuthVerifier(auth_type=0x44, auth_level=2, auth_value=b"\x01" * 32)
    c.send(
        rpc.build_pdu(
            rpc.Bind(
                call_id=3,
                max_xmit_frag=4280,
                max_recv_frag=4280,
                contexts=(ctx(0),),
                auth_verifier=verifier,
            )
        )
    )
    nak = nak_fields(c.pdu())
    assert (nak["call_id"], nak["reason"]) == (3, 8)


def test_53_second_bind_unknown_and_known_association(start: Any, wire: Any) -> None:
    # spec: rpc #53 [wine:rpc_server.c] [samba:dcesrv_core.c] (a second bind on a bound
    # connection and an unknown nonzero assoc_group_id -> bind_nak 0; the known id joins)
    server = start(managers("inline", Add=lambda a, b: a + b))
    first = wire(port_of(server))
    group = ack_fields(first.bind())["assoc_group_id"]
    assert group != 0
    first.send(bind_pdu((ctx(0),), call_id=2))
    assert nak_fields(first.pdu())["reason"] == 0
    assert response_fields(first.request(3, 0, add_stub(2, 2)))["stub"] == U32.pack(4)
    stranger = wire(port_of(server))
    stranger.send(bind_pdu((ctx(0),), call_id=1, assoc_group_id=(group ^ 0x5A5A) or 1))
    assert nak_fields(stranger.pdu())["reason"] == 0
    joiner = wire(port_of(server))
    assert ack_fields(joiner.bind(assoc_group_id=group))["assoc_group_id"] == group


# -- #54 ----------------------------------------------------------------------------------------


def test_54_alter_context_adds_an_interface_on_every_form(
    make_server: Any, wire: Any, form: str
) -> None:
    # spec: rpc #54 [C706 §12.6.4.1] (alter_context_resp ptype 15, same call_id, sec_addr_len 0;
    # requests on the new p_cont_id reach the new interface, the old one still works)
    other = rpc.Interface("other", "a0d1c2b3-5e6f-4a7b-8c9d-0e1f2a3b4c5e", (1, 0), [SUM])
    server = make_server()
    server.register_interface(ACC_IF, managers(form, Add=lambda a, b: a + b))
    server.register_interface(other, managers(form, Sum=lambda a, b: (a * b, 9)))
    server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
    server.listen(wait=False)
    c = wire(port_of(server))
    group = ack_fields(c.bind())["assoc_group_id"]
    c.send(
        rpc.build_pdu(
            rpc.AlterContext(
                call_id=5,
                max_xmit_frag=4280,
                max_recv_frag=4280,
                contexts=(ctx(4, other.syntax),),
            )
        )
    )
    fields = ack_fields(c.pdu())
    assert (fields["ptype"], fields["call_id"], fields["sec_addr"]) == (15, 5, b"")
    assert fields["results"] == [(0, 0, NDR20)] and fields["assoc_group_id"] == group
    reply = response_fields(c.request(6, 0, add_stub(6, 7), p_cont_id=4))
    assert (reply["stub"], reply["p_cont_id"]) == (struct.pack("<II", 42, 9), 4)
    reply = response_fields(c.request(7, 0, add_stub(6, 7), p_cont_id=0))
    assert (reply["stub"], reply["p_cont_id"]) == (U32.pack(13), 0)


# -- #55 #56 #58 ----------------------------------------------------------------------------------


def test_55_unknown_p_cont_id_is_unk_if_not_executed(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #55 [samba:dcesrv_core.c] (fault 0x1C010003 + DID_NOT_EXECUTE, the manager is
    # not entered, the connection goes on)
    entered: list[int] = []

    def add(a: int, b: int) -> int:
        entered.append(a)
        return a + b

    server = start(managers(form, Add=add))
    c = wire(port_of(server))
    c.bind(p_cont_id=2)
    fault = fault_fields(c.request(5, 0, add_stub(1, 1), p_cont_id=9))
    assert (fault["status"], fault["call_id"]) == (0x1C010003, 5)
    assert fault["flags"] == 0x03 | DNE
    assert entered == []
    assert response_fields(c.request(6, 0, add_stub(2, 3), p_cont_id=2))["stub"] == U32.pack(5)
    assert entered == [2]


def test_56_request_before_bind_is_never_dispatched(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #56 [MS-RPCE §3.3.3.5.1] (fault 0x1C010003 / 0x1C01000B or a close; never a
    # dispatch, never status 0)
    entered: list[int] = []

    def add(a: int, b: int) -> int:
        entered.append(a)
        return a + b

    server = start(managers(form, Add=add))
    c = wire(port_of(server))
    c.send(request_pdu(1, 0, add_stub(1, 1)))
    pdu = c.pdu()
    if pdu:
        fault = fault_fields(pdu)
        assert fault["status"] in (0x1C010003, 0x1C01000B)
        assert fault["flags"] & DNE
    time.sleep(0.1)
    assert entered == []


def test_58_request_after_unregister_is_unk_if(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #58 [wine:rpc_server.c] (bound, then the interface is unregistered: 0x1C010003,
    # not executed, on every form including the inline fast path)
    entered: list[int] = []

    def add(a: int, b: int) -> int:
        entered.append(a)
        return a + b

    server = start(managers(form, Add=add))
    c = wire(port_of(server))
    c.bind(p_cont_id=3)
    assert response_fields(c.request(2, 0, add_stub(1, 1), p_cont_id=3))["stub"] == U32.pack(2)
    server.unregister_interface(ACC_IF)
    fault = fault_fields(c.request(3, 0, add_stub(1, 1), p_cont_id=3))
    assert (fault["status"], fault["p_cont_id"], fault["flags"]) == (0x1C010003, 3, 0x03 | DNE)
    assert entered == [1]


# -- #57 #59 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("opnum", [len(ACC_IF.procedures), 200, 0xFFFF])
def test_57_opnum_out_of_range(start: Any, wire: Any, form: str, opnum: int) -> None:
    # spec: rpc #57 [captured] (opnum >= procedure count: 0x1C010002, flags 0x23, p_cont_id
    # echoed; the first opnum past the last procedure included)
    server = start(managers(form, Add=lambda a, b: a + b))
    c = wire(port_of(server))
    c.bind(p_cont_id=6)
    fault = fault_fields(c.request(2, opnum, add_stub(1, 1), p_cont_id=6))
    assert fault == {
        "call_id": 2,
        "flags": 0x23,
        "p_cont_id": 6,
        "cancel_count": 0,
        "status": 0x1C010002,
    }


@pytest.mark.parametrize(
    "stub",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01\x00", id="truncated-Add"),
        pytest.param(struct.pack("<II", 100, 100) + bytes(10), id="array-longer-than-stub"),
        pytest.param(struct.pack("<II", 4, 0xFFFFFFF0) + bytes(4), id="max_count-huge"),
    ],
)
def test_59_undecodable_stub_is_bad_stub_data(
    start: Any, wire: Any, form: str, stub: bytes
) -> None:
    # spec: rpc #59 [MS-RPCE §3.1.3.5.2] (fault 0x000006F7, not executed, on every form)
    entered: list[str] = []

    def add(a: int, b: int) -> int:
        entered.append("Add")
        return a + b

    def echo(len: int, data: bytes) -> bytes:
        entered.append("Echo")
        return data

    server = start(managers(form, Add=add, Echo=echo))
    c = wire(port_of(server))
    c.bind(p_cont_id=1)
    opnum = 1 if len(stub) > 8 else 0
    fault = fault_fields(c.request(2, opnum, stub, p_cont_id=1))
    assert (fault["status"], fault["p_cont_id"], fault["call_id"]) == (0x6F7, 1, 2)
    assert fault["flags"] & DNE
    assert entered == []
    assert response_fields(c.request(3, 0, add_stub(1, 1), p_cont_id=1))["stub"] == U32.pack(2)


# -- #61 -----------------------------------------------------------------------------------------

FORBIDDEN = [
    0,
    0x80000001,
    0x80000002,
    0x80000003,
    0xC0000005,
    0xC0000006,
    0xC000001D,
    0xC0000096,
    0xC00000AA,
    0xC00000FD,
    0xC0000194,
    0xC0000235,
    0xC0000409,
    0xC0000420,
]


@pytest.mark.parametrize("code", FORBIDDEN, ids=hex)
@pytest.mark.parametrize("how", ["raise", "abort"])
def test_61_forbidden_statuses_never_reach_the_wire(
    start: Any, wire: Any, code: int, how: str
) -> None:
    # spec: rpc #61 [MS-RPCE §3.3.3.5.1] (a manager raising, or aborting with, 0 or a
    # forbidden exception code: the fault carries another status; access violation -> 998)
    if how == "raise":

        def add(a: int, b: int) -> int:
            raise RpcError(code)

        mgrs = managers("thread", Add=add)
    else:

        @rpc.async_manager
        def aborting(call: rpc.ServerCall, a: int, b: int) -> None:
            threading.Thread(target=call.abort, args=(code,)).start()

        mgrs = {"Add": aborting}
    server = start(mgrs)
    c = wire(port_of(server))
    c.bind()
    fault = fault_fields(c.request(2, 0, add_stub(1, 1)))
    assert fault["status"] not in FORBIDDEN
    expected = 998 if code == 0xC0000005 else NcaStatus.NCA_S_FAULT_UNSPEC
    assert fault["status"] == expected


# -- #62 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5, 4000])
def test_62_response_echoes_call_id_and_p_cont_id_with_alloc_hint(
    start: Any, wire: Any, form: str, size: int
) -> None:
    # spec: rpc #62 [B3] (same call_id, p_cont_id echoed, alloc_hint = stub length, cancel
    # count 0, FIRST|LAST; sizes that need padding inside the stub)
    server = start(managers(form, Echo=lambda len, data: data))
    c = wire(port_of(server))
    c.bind(p_cont_id=0x1234)
    data = bytes(i % 256 for i in range(size))
    reply = response_fields(
        c.request(0x7FFF0001, 1, struct.pack("<II", size, size) + data, p_cont_id=0x1234)
    )
    stub = struct.pack("<I", size) + data
    assert reply == {
        "call_id": 0x7FFF0001,
        "flags": 0x03,
        "alloc_hint": len(stub),
        "p_cont_id": 0x1234,
        "cancel_count": 0,
        "stub": stub,
    }


# -- #63 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["thread", "coroutine", "async_call", "async_call_thread"])
def test_63_object_uuid_reaches_every_manager_form(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #63 [C706] [wine:rpc_message.c] (PFC_OBJECT_UUID: 40-byte header, stub at 40,
    # the object visible to the manager; without the flag the object is None)
    seen: list[Any] = []
    obj = UUID("01234567-89ab-cdef-0123-456789abcdef")

    def add(a: int, b: int) -> int:
        seen.append(rpc.current_call().object)
        return a + b

    def add_async(call: rpc.ServerCall, a: int, b: int) -> None:
        seen.append(call.object)
        call.complete(a + b)

    if form.startswith("async_call"):
        mgr = (
            rpc.async_manager(add_async)
            if form == "async_call"
            else rpc.async_manager(thread=True)(add_async)
        )
        mgrs = {"Add": mgr}
    else:
        mgrs = managers(form, Add=add)
    server = start(mgrs)
    c = wire(port_of(server))
    c.bind()
    pdu = request_pdu(2, 0, add_stub(3, 4), object=obj)
    assert pdu[3] & 0x80 and pdu[24:40] == obj.bytes_le and len(pdu) == 48
    c.send(pdu)
    assert response_fields(c.pdu())["stub"] == U32.pack(7)
    assert response_fields(c.request(3, 0, add_stub(1, 1)))["stub"] == U32.pack(2)
    assert seen == [obj, None]


# -- #65 #66 -------------------------------------------------------------------------------------


def test_65_first_bind_with_call_id_3(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #65 [captured] (rpcclient's second connection: bind call_id 3, then 4, 5...;
    # a first request reusing the bind's call_id is fine too)
    server = start(managers(form, Add=lambda a, b: a + b))
    c = wire(port_of(server))
    assert ack_fields(c.bind(call_id=3))["call_id"] == 3
    for call_id in (3, 4, 5):
        reply = response_fields(c.request(call_id, 0, add_stub(call_id, 1)))
        assert (reply["call_id"], reply["stub"]) == (call_id, U32.pack(call_id + 1))


def test_66_decreasing_call_id_is_a_protocol_error(start: Any, wire: Any, form: str) -> None:
    # spec: rpc #66 [MS-RPCE §3.3.3.5.2] (call_id 10 answered, then 9: fault 0x1C01000B for
    # call_id 9, the manager not entered for it; also after a burst answered in one wake-up)
    entered: list[int] = []

    def add(a: int, b: int) -> int:
        entered.append(a)
        return a + b

    server = start(managers(form, Add=add))
    c = wire(port_of(server))
    c.bind()
    c.send(*(request_pdu(10 + i, 0, add_stub(10 + i, 0)) for i in range(3)))
    assert [response_fields(c.pdu())["call_id"] for _ in range(3)] == [10, 11, 12]
    fault = fault_fields(c.request(9, 0, add_stub(9, 0)))
    assert (fault["status"], fault["call_id"]) == (NcaStatus.NCA_S_PROTO_ERROR, 9)
    time.sleep(0.05)
    assert entered == [10, 11, 12]


def test_66_connection_after_a_protocol_error_answers_or_closes(start: Any, wire: Any) -> None:
    # spec: rpc #66 (after the fault the server either goes on with increasing call_ids or
    # closes the connection; it never answers the decreasing call)
    server = start(managers("inline", Add=lambda a, b: a + b))
    c = wire(port_of(server))
    c.bind()
    assert response_fields(c.request(5, 0, add_stub(1, 1)))["call_id"] == 5
    assert fault_fields(c.request(4, 0, add_stub(1, 1)))["status"] == 0x1C01000B
    c.send(request_pdu(6, 0, add_stub(2, 2)))
    pdu = c.pdu()
    assert pdu == b"" or response_fields(pdu)["stub"] == U32.pack(4)


def test_status_names_used_here() -> None:
    assert RpcStatus.RPC_X_BAD_STUB_DATA == 0x6F7
    assert NcaStatus.NCA_S_OP_RNG_ERROR == 0x1C010002
    wait_for(lambda: True)
