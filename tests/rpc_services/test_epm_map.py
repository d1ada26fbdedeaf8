"""The endpoint map and the epmapper descriptors, in memory: captured bytes and impacket's NDR.

impacket's own helpers (``hept_map``, ``hept_lookup``) marshal the requests and parse our
responses through ``StubDce`` (no socket), so these check the wire format against a real
implementation; the end-to-end runs over TCP are in ``test_peers_*``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from winaio import rpc
from winaio.rpc._epm import EPM_PROCEDURES, EPT_S_NOT_REGISTERED, EndpointMap
from winaio.rpc._epm._idl import EPT_LOOKUP, EPT_MAP, RPC_IF_ID
from winaio.rpc._interfaces import RPCECHO

MGMT = rpc.SyntaxId(uuid.UUID("afa8bd80-7d8a-11c9-bef4-08002b102989"), 1, 0)
OTHER = rpc.SyntaxId(uuid.UUID("12345678-1234-abcd-ef00-0123456789ab"), 2, 1)

# rpc-spec §B12 [captured]: Samba's ept_map response for rpcecho on 127.0.0.1:15136.
CAPTURED_MAP_RESPONSE = bytes.fromhex(
    "00000000 00000000000000000000000000000000"
    "01000000"
    "01000000 00000000 01000000 03000000"
    "4b000000 4b000000 0500"
    "1300 0d c55ea160e84dd711a637005056a20182 0100 0200 0000"
    "1300 0d 045d888aeb1cc9119fe808002b104860 0200 0200 0000"
    "0100 0b 0200 0000 0100 07 0200 3b20 0100 09 0400 7f000001 00 00000000".replace(" ", "")
)


def handle_of(cursor: int | None) -> rpc.ContextHandleValue:
    # What the EPM interface's context handle machinery does, reduced to the wire value.
    if cursor is None:
        return rpc.ContextHandleValue.NULL
    return rpc.ContextHandleValue(0, uuid.UUID(int=cursor + 1))


def cursor_of(handle: rpc.ContextHandleValue) -> int | None:
    return None if handle.is_null else handle.uuid.int - 1


def serve(epm: EndpointMap) -> Any:
    def answer(opnum: int, stub: bytes) -> bytes:
        if opnum == EPT_MAP.opnum:
            args = EPT_MAP.decode_request(stub)
            out = epm.ept_map(
                args["obj"], args["map_tower"], cursor_of(args["entry_handle"]),
                args["max_towers"],
            )  # fmt: skip
            out["entry_handle"] = handle_of(out["entry_handle"])
            return EPT_MAP.encode_response({**out, "max_towers": args["max_towers"]})
        assert opnum == EPT_LOOKUP.opnum
        args = EPT_LOOKUP.decode_request(stub)
        out = epm.ept_lookup(
            args["inquiry_type"], args["object"], args["ifid"], args["vers_option"],
            cursor_of(args["entry_handle"]), args["max_ents"],
        )  # fmt: skip
        out["entry_handle"] = handle_of(out["entry_handle"])
        return EPT_LOOKUP.encode_response({**out, "max_ents": args["max_ents"]})

    return answer


@pytest.fixture
def epm() -> EndpointMap:
    m = EndpointMap()
    m.register([rpc.tcp_tower(RPCECHO, 15136, "127.0.0.1")], "rpcecho")
    m.register([rpc.lrpc_tower(RPCECHO, "winaio-echo")], "rpcecho")
    m.register([rpc.tcp_tower(MGMT, 15136, "127.0.0.1")], "mgmt")
    return m


def test_procedures_cover_opnums_0_to_6() -> None:
    assert [p.opnum for p in EPM_PROCEDURES] == list(range(7))


def test_ept_map_reproduces_the_captured_response(epm: EndpointMap) -> None:
    # spec: rpc #96 (big-endian port floor, floor 3 = 01 00 0b 02 00 00 00, 75-octet tower)
    # Samba's request [captured]: obj NULL, the rpcecho tower with port 0 / 0.0.0.0, max 1.
    query = rpc.tcp_tower(RPCECHO, 0, "0.0.0.0").to_bytes()
    request = EPT_MAP.encode_request(
        {
            "obj": None,
            "map_tower": {"tower_length": len(query), "tower_octet_string": query},
            "entry_handle": rpc.ContextHandleValue.NULL,
            "max_towers": 1,
        }
    )
    args = EPT_MAP.decode_request(request)
    out = epm.ept_map(args["obj"], args["map_tower"], None, args["max_towers"])
    assert out["num_towers"] == 1 and out["entry_handle"] is None and out["status"] == 0
    out["entry_handle"] = handle_of(None)
    stub = EPT_MAP.encode_response({**out, "max_towers": 1}, referent_ids=[3])
    assert stub == CAPTURED_MAP_RESPONSE
    assert len(out["towers"][0]["tower_octet_string"]) == 75


def test_hept_map_finds_the_registered_port(epm: EndpointMap, impacket: Any, stub_dce: Any) -> None:
    # spec: rpc #90 (impacket hept_map -> ncacn_ip_tcp:127.0.0.1[port]) and rpc #93 (impacket
    # sends obj = &nil, which matches the nil-object registration)
    from impacket.uuid import uuidtup_to_bin

    dce = stub_dce(serve(epm))
    binding = impacket.hept_map("127.0.0.1", uuidtup_to_bin((str(RPCECHO.uuid), "1.0")),
                                protocol="ncacn_ip_tcp", dce=dce)  # fmt: skip
    assert binding == "ncacn_ip_tcp:127.0.0.1[15136]"
    args = EPT_MAP.decode_request(dce.requests[0][1])
    assert args["obj"] == uuid.UUID(int=0)


def test_ept_map_of_an_unregistered_interface(epm: EndpointMap, impacket: Any,
                                              stub_dce: Any) -> None:  # fmt: skip
    # spec: rpc #92 (num_towers 0, status 0x16C9A0D6)
    from impacket.uuid import uuidtup_to_bin

    out = epm.ept_map(None, {"tower_octet_string": rpc.tcp_tower(OTHER, 0).to_bytes()}, None, 4)
    assert (out["num_towers"], out["status"]) == (0, EPT_S_NOT_REGISTERED)
    dce = stub_dce(serve(epm))
    with pytest.raises(RuntimeError, match="16c9a0d6"):
        impacket.hept_map("127.0.0.1", uuidtup_to_bin((str(OTHER.uuid), "2.1")),
                          protocol="ncacn_ip_tcp", dce=dce)  # fmt: skip


def test_ept_map_version_and_protocol_rules(epm: EndpointMap) -> None:
    def hits(tower: rpc.Tower, obj: uuid.UUID | None = None) -> list[rpc.Tower]:
        out = epm.ept_map(obj, {"tower_octet_string": tower.to_bytes()}, None, 10)
        return [rpc.Tower.from_bytes(t["tower_octet_string"]) for t in out["towers"]]

    newer_minor = rpc.SyntaxId(RPCECHO.uuid, 1, 1)
    other_major = rpc.SyntaxId(RPCECHO.uuid, 2, 0)
    assert hits(rpc.tcp_tower(newer_minor, 0)) == []  # client minor above the server's
    assert hits(rpc.tcp_tower(other_major, 0)) == []
    # The request's address floor is ignored (rpc #97); the reply names the registered one.
    (tcp,) = hits(rpc.tcp_tower(RPCECHO, 9, "10.1.2.3"))
    assert (tcp.address, tcp.endpoint) == ("127.0.0.1", "15136")
    (lrpc,) = hits(rpc.lrpc_tower(RPCECHO, "whatever"))
    assert lrpc.string_binding == "ncalrpc:[winaio-echo]"
    # A specific object matches nil-object registrations too (rpc #93).
    assert len(hits(rpc.tcp_tower(RPCECHO, 0), uuid.uuid4())) == 1


def test_ept_map_rejects_towers_of_more_than_six_floors(epm: EndpointMap) -> None:
    # spec: rpc #97
    floors = rpc.decode_floors(rpc.tcp_tower(RPCECHO, 0).to_bytes())
    extra = rpc.Floor(0x09, b"", b"\x7f\x00\x00\x01")
    seven = rpc.encode_floors([*floors, extra, extra])
    out = epm.ept_map(None, {"tower_octet_string": seven}, None, 4)
    assert (out["num_towers"], out["status"]) == (0, EPT_S_NOT_REGISTERED)
    garbage = epm.ept_map(None, {"tower_octet_string": b"\x05\x00\x13"}, None, 4)
    assert garbage["status"] == EPT_S_NOT_REGISTERED


def test_hept_lookup_lists_every_entry_once(epm: EndpointMap, impacket: Any,
                                            stub_dce: Any) -> None:  # fmt: skip
    # spec: rpc #94 (what rpcdump prints comes from hept_lookup) and rpc #95 (cursor rule)
    entries = impacket.hept_lookup(None, dce=stub_dce(serve(epm)))
    listed = [(e["annotation"], impacket.PrintStringBinding(e["tower"]["Floors"])) for e in entries]
    assert sorted(listed) == sorted(
        [
            (b"rpcecho\x00", "ncacn_ip_tcp:127.0.0.1[15136]"),
            (b"rpcecho\x00", "ncalrpc:[winaio-echo]"),
            (b"mgmt\x00", "ncacn_ip_tcp:127.0.0.1[15136]"),
        ]
    )


def test_lookup_cursor_one_entry_at_a_time(epm: EndpointMap) -> None:
    # spec: rpc #95: rpcclient epmlookup asks max_ents 1 until ept_s_not_registered
    seen, cursor = [], None
    for _ in range(10):
        out = epm.ept_lookup(0, None, None, 0, cursor, 1)
        if out["status"] == EPT_S_NOT_REGISTERED:
            assert out["num_ents"] == 0 and out["entry_handle"] is None
            break
        assert out["num_ents"] == 1 and out["entry_handle"] is not None
        seen.append(out["entries"][0]["annotation"])
        cursor = out["entry_handle"]
    assert seen == ["rpcecho", "rpcecho", "mgmt"]
    # A short batch ends the enumeration with the nil handle (impacket's stop rule).
    out = epm.ept_lookup(0, None, None, 0, None, 500)
    assert out["num_ents"] == 3 and out["entry_handle"] is None and out["status"] == 0


def test_lookup_by_interface_and_version(epm: EndpointMap) -> None:
    def count(inquiry: int, ifid: Any, vers: int, obj: uuid.UUID | None = None) -> int:
        return int(epm.ept_lookup(inquiry, obj, ifid, vers, None, 500)["num_ents"])

    echo = {"uuid": RPCECHO.uuid, "vers_major": 1, "vers_minor": 0}
    assert count(1, echo, 1) == 2  # by interface, all versions
    assert count(1, {**echo, "vers_minor": 1}, 2) == 0  # compatible needs minor >= 1
    assert count(1, {**echo, "vers_major": 2}, 4) == 0  # major only
    assert count(1, {**echo, "vers_minor": 5}, 5) == 2  # up to 1.5
    assert count(1, echo, 3) == 2  # exact
    assert count(2, None, 0, uuid.uuid4()) == 0  # by object: none registered with it
    assert count(2, None, 0, uuid.UUID(int=0)) == 3
    # The descriptor of rpc_if_id_t round-trips (16 + 2 + 2 octets).
    assert len(rpc.Codec(RPC_IF_ID).encode(echo)) == 20


def test_register_replaces_and_unregister_removes(epm: EndpointMap) -> None:
    epm.register([rpc.tcp_tower(RPCECHO, 15136, "127.0.0.1")], "renamed")
    assert [e.annotation for e in epm.entries].count("renamed") == 1
    assert len(epm.entries) == 3
    epm.unregister(RPCECHO)
    assert [e.annotation for e in epm.entries] == ["mgmt"]
    with pytest.raises(ValueError):
        epm.register([rpc.tcp_tower(OTHER, 1)], "x" * 64)


def test_wildcard_registration_answers_the_address_the_client_used() -> None:
    m = EndpointMap()
    m.register([rpc.tcp_tower(RPCECHO, 4000, "0.0.0.0")])
    query = {"tower_octet_string": rpc.tcp_tower(RPCECHO, 0).to_bytes()}
    (t,) = m.ept_map(None, query, None, 1, local_address="127.0.0.2")["towers"]
    assert rpc.Tower.from_bytes(t["tower_octet_string"]).address == "127.0.0.2"
