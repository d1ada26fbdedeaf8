"""Protocol towers (rpc-spec §B12): byte-exact against the captured ept_map tower, round trips,
and the strict decoder's refusals."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from winaio import rpc
from winaio.codes import RpcStatus
from winaio.errors import RpcError

RPCECHO = rpc.SyntaxId(UUID("60a15ec5-4de8-11d7-a637-005056a20182"), 1, 0)
# The ncacn_ip_tcp tower of rpc-spec §B12 (rpcecho v1.0 on 127.0.0.1:15136), 75 octets, captured.
CAPTURED = bytes.fromhex(
    "0500"
    "1300 0d c55ea160e84dd711a637005056a20182 0100 0200 0000"
    "1300 0d 045d888aeb1cc9119fe808002b104860 0200 0200 0000"
    "0100 0b 0200 0000"
    "0100 07 0200 3b20"
    "0100 09 0400 7f000001".replace(" ", "")
)


def test_96_tcp_tower_is_the_captured_75_octets() -> None:
    # spec: rpc #96 (port big-endian, floor 3 = 01 00 0b 02 00 00 00, 75 bytes)
    tower = rpc.tcp_tower(RPCECHO, 15136, "127.0.0.1")
    data = tower.to_bytes()
    assert data == CAPTURED and len(data) == 75
    assert bytes.fromhex("01000b02000000") in data
    assert rpc.Tower.from_bytes(CAPTURED) == tower
    assert tower.string_binding == "ncacn_ip_tcp:127.0.0.1[15136]"


def test_96_ncalrpc_tower_round_trips() -> None:
    # spec: rpc #96
    tower = rpc.lrpc_tower(RPCECHO, "winaio-test")
    floors = rpc.decode_floors(tower.to_bytes())
    assert [f.protocol for f in floors] == [0x0D, 0x0D, 0x0C, 0x10]
    assert floors[3].rhs == b"winaio-test\x00"
    assert rpc.Tower.from_bytes(tower.to_bytes()) == tower
    assert tower.string_binding == "ncalrpc:[winaio-test]"


def test_ipv6_and_empty_addresses_become_0_0_0_0() -> None:
    for address in ("::1", ""):
        tower = rpc.tcp_tower(RPCECHO, 135, address)
        assert rpc.Tower.from_bytes(tower.to_bytes()).address == "0.0.0.0"


def test_97_more_than_six_floors_is_refused() -> None:
    # spec: rpc #97
    floors = rpc.decode_floors(CAPTURED)
    seven = rpc.encode_floors([*floors, floors[-1], floors[-1]])
    with pytest.raises(RpcError) as info:
        rpc.Tower.from_bytes(seven)
    assert info.value.status == RpcStatus.EPT_S_INVALID_ENTRY


@pytest.mark.parametrize(
    "data",
    [b"", b"\x05", CAPTURED[:-1], CAPTURED + b"\x00", bytes.fromhex("0100 0000 0000")],
)
def test_malformed_towers_are_refused_with_1751(data: bytes) -> None:
    with pytest.raises(RpcError) as info:
        rpc.Tower.from_bytes(data)
    assert info.value.status == RpcStatus.EPT_S_INVALID_ENTRY


def test_twr_t_carries_tower_octets_as_a_conformant_struct() -> None:
    codec = rpc.Codec(rpc.TWR_T)
    stub = codec.encode({"tower_length": 75, "tower_octet_string": CAPTURED})
    assert stub[:8] == bytes.fromhex("4b000000 4b000000") and stub[8:] == CAPTURED


@given(st.binary(max_size=120))
def test_decoder_raises_only_rpc_error(data: bytes) -> None:
    try:
        rpc.Tower.from_bytes(data)
    except RpcError as exc:
        assert exc.status == RpcStatus.EPT_S_INVALID_ENTRY


@given(
    port=st.integers(0, 0xFFFF),
    address=st.ip_addresses(v=4).map(str),
    major=st.integers(0, 0xFFFF),
    minor=st.integers(0, 0xFFFF),
)
def test_tcp_towers_round_trip(port: int, address: str, major: int, minor: int) -> None:
    tower = rpc.tcp_tower(rpc.SyntaxId(RPCECHO.uuid, major, minor), port, address)
    assert rpc.Tower.from_bytes(tower.to_bytes()) == tower
