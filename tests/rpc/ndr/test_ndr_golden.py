"""Golden vectors: every NDR octet string captured in rpc-spec §B10-B12, both directions.

Each vector is decoded into the expected Python value and that value is encoded back to the
same octets (with the captured referent ids where the capture used non-Windows ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from winaio.rpc._ndr import (
    CONTEXT_HANDLE,
    GUID,
    HYPER,
    IN,
    OUT,
    SHORT,
    ULONG,
    USHORT,
    USMALL,
    WCHAR,
    Codec,
    ConformantArray,
    ContextHandleValue,
    NdrType,
    Param,
    Procedure,
    String,
    Struct,
    Union,
    ref,
    unique,
)

ADD = Procedure(
    "add", 0, [Param("a", ULONG, IN), Param("b", ULONG, IN), Param("sum", ULONG, OUT)], ULONG
)
ECHO_ADD_ONE = Procedure(
    "AddOne", 0, [Param("in_data", ULONG, IN), Param("out_data", ref(ULONG), OUT)]
)
SYNTAX_ID = Struct([("uuid", GUID), ("major", USHORT), ("minor", USHORT)], name="p_syntax_id_t")
CONFORMANT = Struct([("n", ULONG), ("a", ConformantArray(ULONG, size_is="n"))])
SHORT_THEN_STRUCT = Procedure(
    "short_then_struct",
    0,
    [Param("x", SHORT), Param("s", Struct([("a", USMALL), ("b", ULONG), ("c", HYPER)]))],
)
UNION_U16 = Union(USHORT, {1: SHORT, 2: ULONG})
WSTR_THEN_ULONG = Procedure(
    "wstr_then_ulong", 0, [Param("s", unique(String(WCHAR))), Param("n", ULONG)]
)


@dataclass
class Vector:
    """One golden vector: how to encode/decode it and the value it carries."""

    name: str
    encode: Callable[..., bytes]
    decode: Callable[[bytes], Any]
    value: Any
    referent_ids: list[int] | None = None


def codec_vector(name: str, t: NdrType, value: Any, ids: list[int] | None = None) -> Vector:
    codec = Codec(t)
    return Vector(name, codec.encode, codec.decode, value, ids)


def request_vector(name: str, proc: Procedure, value: Any, ids: list[int] | None = None) -> Vector:
    return Vector(name, proc.encode_request, proc.decode_request, value, ids)


def response_vector(name: str, proc: Procedure, value: Any) -> Vector:
    return Vector(name, proc.encode_response, proc.decode_response, value)


VECTORS = [
    # spec: rpc §B10
    request_vector("impacket_add_request_stub", ADD, {"a": 2, "b": 40}),
    response_vector("impacket_add_response_stub", ADD, {"sum": 42, "return": 0}),
    request_vector("rpcecho_addone_request_stub", ECHO_ADD_ONE, {"in_data": 5}),
    response_vector("rpcecho_addone_response_stub", ECHO_ADD_ONE, {"out_data": 6}),
    codec_vector(
        "syntax_ndr20",
        SYNTAX_ID,
        {"uuid": uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), "major": 2, "minor": 0},
    ),
    codec_vector(
        "syntax_test_if",
        SYNTAX_ID,
        {"uuid": uuid.UUID("12345678-1234-abcd-ef00-0123456789ab"), "major": 1, "minor": 0},
    ),
    # spec: rpc §B11
    codec_vector("conformant_struct", CONFORMANT, {"n": 2, "a": [10, 20]}),
    request_vector("short_then_struct", SHORT_THEN_STRUCT, {"x": 1, "s": {"a": 2, "b": 3, "c": 4}}),
    codec_vector("union_u16_ulong_arm", UNION_U16, (2, 5)),
    request_vector("unique_wstr_hi_then_ulong", WSTR_THEN_ULONG, {"s": "hi", "n": 7}, [0x27E2]),
]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_golden_vector_decodes_to_its_value(vector: Vector, golden: Callable[[str], bytes]) -> None:
    assert vector.decode(golden(vector.name)) == vector.value


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_golden_vector_encodes_byte_exactly(vector: Vector, golden: Callable[[str], bytes]) -> None:
    kwargs = {"referent_ids": vector.referent_ids} if vector.referent_ids else {}
    assert vector.encode(vector.value, **kwargs) == golden(vector.name)


def test_impacket_padding_variant_decodes_like_the_zero_padded_one(
    golden: Callable[[str], bytes],
) -> None:
    # spec: rpc #76
    padded = golden("short_then_struct_impacket_pad")
    assert padded != golden("short_then_struct")
    assert SHORT_THEN_STRUCT.decode_request(padded) == {"x": 1, "s": {"a": 2, "b": 3, "c": 4}}


def test_windows_referent_ids_by_default(golden: Callable[[str], bytes]) -> None:
    # Same vector with our own ids: only the referent id differs (0x00020000, Windows style).
    ours = WSTR_THEN_ULONG.encode_request({"s": "hi", "n": 7})
    captured = golden("unique_wstr_hi_then_ulong")
    assert ours[:4] == bytes.fromhex("00000200")
    assert ours[4:] == captured[4:]


# -- rpc-spec §B12: the endpoint mapper --------------------------------------------------------


def ept_map_response(epm: SimpleNamespace) -> dict[str, Any]:
    tower = {"tower_length": 75, "tower_octet_string": epm.RPCECHO_TOWER}
    return {
        "entry_handle": ContextHandleValue.NULL,
        "num_towers": 1,
        "towers": [tower],
        "status": 0,
    }


def test_ept_map_response_decodes(epm: SimpleNamespace, golden: Callable[[str], bytes]) -> None:
    stub = golden("epm_map_response_stub")
    assert len(stub) == 128
    decoded = epm.EPT_MAP.decode_response(stub, request={"max_towers": 1})
    assert decoded == ept_map_response(epm)
    # The port floor is big-endian inside the opaque tower octets (rpc-spec #96's layout).
    tower = decoded["towers"][0]["tower_octet_string"]
    assert tower[-11:-9] == b"\x3b\x20"


def test_ept_map_response_encodes_byte_exactly(
    epm: SimpleNamespace, golden: Callable[[str], bytes]
) -> None:
    # max_towers is an [in] parameter: it sizes the [out] array (max_count) but is not sent.
    values = {**ept_map_response(epm), "max_towers": 1}
    assert epm.EPT_MAP.encode_response(values, referent_ids=[3]) == golden("epm_map_response_stub")


def test_ept_map_response_checks_max_count_against_the_request(
    epm: SimpleNamespace, golden: Callable[[str], bytes]
) -> None:
    from winaio.errors import NdrError

    with pytest.raises(NdrError) as info:
        epm.EPT_MAP.decode_response(golden("epm_map_response_stub"), request={"max_towers": 4})
    assert info.value.status == 0x6F7
    assert info.value.offset == 24  # the max_count of towers[]


def test_ept_map_request_round_trips(epm: SimpleNamespace) -> None:
    request = {
        "obj": uuid.UUID(int=0),
        "map_tower": {"tower_length": 75, "tower_octet_string": epm.RPCECHO_TOWER},
        "entry_handle": ContextHandleValue.NULL,
        "max_towers": 1,
    }
    stub = epm.EPT_MAP.encode_request(request)
    # obj: referent id + nil uuid; map_tower: referent id + twr_t inline (max_count, length, ...)
    assert stub[:4] == bytes.fromhex("00000200") and stub[4:20] == bytes(16)
    assert stub[20:32] == bytes.fromhex("04000200 4b000000 4b000000")
    assert stub[-24:] == bytes(20) + bytes.fromhex("01000000")
    assert epm.EPT_MAP.decode_request(stub) == request
    # Samba sends obj = NULL (rpc-spec §B12): a NULL full pointer is four zero octets.
    samba = epm.EPT_MAP.encode_request({**request, "obj": None})
    assert samba[:4] == bytes(4) and epm.EPT_MAP.decode_request(samba)["obj"] is None


def test_context_handle_is_twenty_octets() -> None:
    handle = ContextHandleValue(0, uuid.UUID("6f6e6568-7475-656b-616e-647961736f6e"))
    data = Codec(CONTEXT_HANDLE).encode(handle)
    assert data == bytes(4) + handle.uuid.bytes_le
    assert Codec(CONTEXT_HANDLE).decode(data) == handle
