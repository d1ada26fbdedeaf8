"""rpc-spec ACCEPTANCE BEHAVIORS 76-85 (wire-level NDR) and the 20-octet handle of 86."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winaio.codes import NcaStatus, RpcStatus, rpc_to_nca_status
from winaio.errors import NdrError
from winaio.rpc._ndr import (
    CONTEXT_HANDLE,
    ENUM16,
    HYPER,
    IN,
    IN_OUT,
    OUT,
    SHORT,
    ULONG,
    USHORT,
    USMALL,
    V1_ENUM,
    WCHAR,
    Codec,
    ConformantArray,
    ConformantVaryingArray,
    ContextHandleValue,
    Param,
    Procedure,
    String,
    Struct,
    Union,
    full,
    ref,
    unique,
)


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


# -- 76: padding values are ignored -------------------------------------------------------------


def test_76_nonzero_padding_is_ignored() -> None:
    # spec: rpc #76
    t = Struct([("a", USMALL), ("b", HYPER), ("c", USHORT), ("d", ULONG)])
    value = {"a": 1, "b": 2, "c": 3, "d": 4}
    zero = Codec(t).encode(value)
    assert zero == bytes.fromhex("01 00000000000000 0200000000000000 0300 0000 04000000")
    for fill in (0xAB, 0xBF, 0xFF):
        dirty = bytearray(zero)
        for gap in (*range(1, 8), 18, 19):
            dirty[gap] = fill
        assert Codec(t).decode(bytes(dirty)) == value


def test_76_padding_before_counts_and_referents_is_ignored() -> None:
    # spec: rpc #76
    proc = Procedure("p", 0, [Param("c", USMALL), Param("s", unique(String(WCHAR)))])
    stub = bytes.fromhex("07 bdbdbd") + u32(0x1234, 3, 0, 3) + "ab\0".encode("utf-16-le")
    assert proc.decode_request(stub) == {"c": 7, "s": "ab"}


# -- 77: referent ids ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 0xFFFFFFFF), st.integers(1, 0xFFFFFFFF))
def test_77_any_nonzero_referent_id_is_accepted(first: int, second: int) -> None:
    # spec: rpc #77
    t = Struct([("p", unique(ULONG)), ("q", ref(ULONG)), ("r", unique(ULONG))])
    stub = u32(first, second, 0, 10, 20)
    assert Codec(t).decode(stub) == {"p": 10, "q": 20, "r": None}


def test_77_zero_decodes_as_null_for_unique_and_full_pointers() -> None:
    # spec: rpc #77
    proc = Procedure("p", 0, [Param("a", unique(ULONG)), Param("b", full(ULONG))])
    assert proc.decode_request(bytes(8)) == {"a": None, "b": None}
    assert proc.encode_request({"a": None, "b": None}) == bytes(8)


# -- 78: the captured unique wchar_t* ----------------------------------------------------------


def test_78_unique_wstr_hi(golden: Callable[[str], bytes]) -> None:
    # spec: rpc #78
    codec = Codec(unique(String(WCHAR)))
    data = codec.encode("hi")
    assert data == u32(0x00020000, 3, 0, 3) + bytes.fromhex("6800 6900 0000")
    proc = Procedure("p", 0, [Param("s", unique(String(WCHAR))), Param("n", ULONG)])
    assert proc.encode_request({"s": "hi", "n": 7}, referent_ids=[0x27E2]) == golden(
        "unique_wstr_hi_then_ulong"
    )


# -- 79: conformant structs hoist max_count ----------------------------------------------------


def test_79_conformant_struct_hoists_max_count(golden: Callable[[str], bytes]) -> None:
    # spec: rpc #79
    t = Struct([("n", ULONG), ("a", ConformantArray(ULONG, size_is="n"))])
    assert Codec(t).encode({"n": 2, "a": [10, 20]}) == golden("conformant_struct")


def test_79_hoisting_goes_through_nested_structs_and_strings() -> None:
    # spec: rpc #79
    inner = Struct([("len", USHORT), ("name", String(WCHAR))])
    outer = Struct([("x", HYPER), ("inner", inner)])
    data = Codec(outer).encode({"x": 1, "inner": {"len": 2, "name": "a"}})
    assert data == (
        u32(2)  # hoisted max_count of inner.name, before the outer struct's gap
        + bytes(4)  # gap to the outer struct's alignment (8)
        + struct.pack("<q", 1)
        + bytes.fromhex("0200 0000")  # len, gap to 4
        + u32(0, 2)  # offset and actual_count stay in place
        + "a\0".encode("utf-16-le")
    )
    assert Codec(outer).decode(data) == {"x": 1, "inner": {"len": 2, "name": "a"}}


def test_79_conformant_varying_struct_keeps_variance_in_place() -> None:
    # spec: rpc #79
    t = Struct([("n", ULONG), ("a", ConformantVaryingArray(USHORT, size_is="n"))])
    data = Codec(t).encode({"n": 4, "a": [7]})
    assert data == u32(4, 4, 0, 1) + bytes.fromhex("0700")


# -- 80: non-encapsulated unions ----------------------------------------------------------------


def test_80_discriminant_is_marshalled_twice_and_arm_aligned_to_largest(
    golden: Callable[[str], bytes],
) -> None:
    # spec: rpc #80
    info = Union(USHORT, {1: SHORT, 2: ULONG}, switch_is="level")
    proc = Procedure("p", 0, [Param("level", USHORT), Param("info", info)])
    # level, then the discriminant again, then the arm: the SHORT arm is aligned to 4, the
    # alignment of the largest arm [MS-RPCE §2.2.4.5].
    stub = proc.encode_request({"level": 1, "info": (1, -2)})
    assert stub == bytes.fromhex("0100 0100 feff")
    assert proc.decode_request(stub) == {"level": 1, "info": (1, -2)}
    stub = proc.encode_request({"level": 2, "info": (2, 5)})
    assert stub == bytes.fromhex("0200 0200 05000000")
    # The captured union alone: u16 tag 2 + ulong arm [rpc-spec §B11].
    assert Codec(Union(USHORT, {2: ULONG})).encode((2, 5)) == golden("union_u16_ulong_arm")


def test_80_arm_is_aligned_to_its_own_type_by_default() -> None:
    # spec: rpc #80 (MIDL default, pidl, widl; largest-arm alignment only with ms_union)
    info = Union(USMALL, {1: SHORT, 2: ULONG})
    proc = Procedure("p", 0, [Param("info", info)])
    assert proc.encode_request({"info": (1, 3)}) == bytes.fromhex("01 00 0300")
    legacy = Union(USMALL, {1: SHORT, 2: ULONG}, ms_union=True)
    assert Codec(legacy).encode((1, 3)) == bytes.fromhex("01 000000 0300")


def test_80_switch_is_disagreement_is_bad_stub_data() -> None:
    # spec: rpc #80
    info = Union(USHORT, {1: SHORT, 2: ULONG}, switch_is="level")
    proc = Procedure("p", 0, [Param("level", USHORT), Param("info", info)])
    with pytest.raises(NdrError) as info_error:
        proc.decode_request(bytes.fromhex("0100 0200 05000000"))
    assert info_error.value.status == RpcStatus.RPC_X_BAD_STUB_DATA
    with pytest.raises(NdrError):
        proc.encode_request({"level": 1, "info": (2, 5)})


# -- 81: struct alignment -----------------------------------------------------------------------


def test_81_struct_after_short_aligns_to_eight(golden: Callable[[str], bytes]) -> None:
    # spec: rpc #81
    proc = Procedure(
        "p", 0, [Param("x", SHORT), Param("s", Struct([("a", USMALL), ("b", ULONG), ("c", HYPER)]))]
    )
    value = {"x": 1, "s": {"a": 2, "b": 3, "c": 4}}
    assert proc.encode_request(value) == golden("short_then_struct")
    assert proc.decode_request(golden("short_then_struct")) == value


# -- 82: enums ----------------------------------------------------------------------------------


def test_82_enum_is_two_octets_v1_enum_four() -> None:
    # spec: rpc #82
    assert Codec(ENUM16).encode(3) == bytes.fromhex("0300")
    assert Codec(V1_ENUM).encode(3) == bytes.fromhex("03000000")
    t = Struct([("e", ENUM16), ("v", V1_ENUM)])
    assert Codec(t).encode({"e": 1, "v": 2}) == bytes.fromhex("0100 0000 02000000")


def test_82_enum16_range_is_enforced_both_ways() -> None:
    # spec: rpc #82
    for bad in (32768, 65535, -1):
        with pytest.raises(NdrError) as info:
            Codec(ENUM16).encode(bad)
        assert info.value.status == RpcStatus.RPC_X_ENUM_VALUE_OUT_OF_RANGE
    with pytest.raises(NdrError) as info:
        Codec(ENUM16).decode(bytes.fromhex("0080"))
    assert info.value.status == RpcStatus.RPC_X_ENUM_VALUE_OUT_OF_RANGE
    assert Codec(ENUM16).decode(bytes.fromhex("ff7f")) == 32767
    assert Codec(V1_ENUM).decode(bytes.fromhex("ffffffff")) == -1


# -- 83: conformant varying bounds --------------------------------------------------------------


@pytest.mark.parametrize(
    ("maximum", "offset", "actual"),
    [(2, 0, 3), (4, 3, 2), (0, 0, 1), (0xFFFFFFFF, 0xFFFFFFFF, 1)],
)
def test_83_variance_beyond_max_count_is_invalid_bound(
    maximum: int, offset: int, actual: int
) -> None:
    # spec: rpc #83
    t = ConformantVaryingArray(ULONG, first_is="first")
    stub = u32(maximum, offset, actual) + u32(*range(actual))
    with pytest.raises(NdrError) as info:
        Codec(t).decode(stub)
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND
    assert info.value.offset == 4
    assert rpc_to_nca_status(info.value.status) == NcaStatus.NCA_S_FAULT_INVALID_BOUND == 0x1C000007


def test_83_strings_are_checked_the_same_way() -> None:
    # spec: rpc #83
    with pytest.raises(NdrError) as info:
        Codec(String(WCHAR)).decode(u32(1, 0, 2) + bytes(4))
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND


def test_83_encoding_more_than_size_is_allows_is_refused() -> None:
    # spec: rpc #83
    t = Struct([("n", ULONG), ("a", ConformantVaryingArray(ULONG, size_is="n"))])
    with pytest.raises(NdrError) as info:
        Codec(t).encode({"n": 1, "a": [1, 2]})
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND


# -- 84: deferral order -------------------------------------------------------------------------


def test_84_embedded_pointees_follow_their_parameter_in_encounter_order() -> None:
    # spec: rpc #84
    inner = Struct([("v", ULONG), ("deep", unique(USHORT))])
    s = Struct([("p", unique(inner)), ("q", unique(ULONG)), ("x", ULONG)])
    proc = Procedure("p", 0, [Param("s", s), Param("after", ULONG)])
    stub = proc.encode_request({"s": {"p": {"v": 1, "deep": 2}, "q": 3, "x": 4}, "after": 5})
    assert stub == (
        u32(0x20000, 0x20004, 4)  # s inline: referent ids of p and q, then x
        + u32(1, 0x20008)  # p's referent (deferred), with its own embedded pointer
        + bytes.fromhex("0200 0000")  # deep's referent: deferred again, right after p's
        + u32(3)  # then q's referent
        + u32(5)  # and only then the next parameter
    )
    assert proc.decode_request(stub) == {
        "s": {"p": {"v": 1, "deep": 2}, "q": 3, "x": 4},
        "after": 5,
    }


def test_84_top_level_pointer_referents_are_not_deferred() -> None:
    # spec: rpc #84
    proc = Procedure("p", 0, [Param("a", unique(ULONG)), Param("b", unique(ULONG))])
    assert proc.encode_request({"a": 1, "b": 2}) == u32(0x20000, 1, 0x20004, 2)


def test_84_array_of_pointers_defers_after_the_whole_array() -> None:
    # spec: rpc #84
    t = ConformantArray(unique(String(WCHAR)))
    data = Codec(t).encode(["a", None, "b"])
    assert data == (
        u32(3, 0x20000, 0, 0x20004)
        + u32(2, 0, 2)
        + "a\0".encode("utf-16-le")
        + u32(2, 0, 2)
        + "b\0".encode("utf-16-le")
    )


# -- 85: full pointers --------------------------------------------------------------------------


def test_85_full_pointer_aliases_share_one_referent() -> None:
    # spec: rpc #85
    point = Struct([("x", ULONG), ("y", ULONG)])
    t = Struct([("a", full(point)), ("b", full(point)), ("c", full(point))])
    shared = {"x": 1, "y": 2}
    other = {"x": 1, "y": 2}  # equal but a different object: not an alias
    data = Codec(t).encode({"a": shared, "b": shared, "c": other})
    assert data == u32(0x20000, 0x20000, 0x20004, 1, 2, 1, 2)
    decoded = Codec(t).decode(data)
    assert decoded == {"a": shared, "b": shared, "c": other}
    assert decoded["a"] is decoded["b"]
    assert decoded["a"] is not decoded["c"]


def test_85_aliases_across_parameters_and_in_cycles() -> None:
    # spec: rpc #85
    node = Struct([("v", ULONG), ("peer", full(ULONG))])
    proc = Procedure("p", 0, [Param("first", full(node)), Param("second", full(node))])
    value = {"v": 7, "peer": None}
    stub = proc.encode_request({"first": value, "second": value})
    assert stub == u32(0x20000, 7, 0, 0x20000)
    decoded = proc.decode_request(stub)
    assert decoded["first"] is decoded["second"] and decoded["first"] == value


def test_85_self_referencing_full_pointer() -> None:
    # spec: rpc #85
    from winaio.rpc._ndr import Lazy

    node = Struct([("v", ULONG), ("next", full(Lazy(lambda: node)))])
    ring: dict[str, object] = {"v": 1}
    ring["next"] = {"v": 2, "next": ring}
    data = Codec(full(node)).encode(ring)
    assert data == u32(0x20000, 1, 0x20004, 2, 0x20000)
    decoded = Codec(full(node)).decode(data)
    assert decoded["v"] == 1 and decoded["next"]["v"] == 2
    assert decoded["next"]["next"] is decoded


# -- 86: context handles ------------------------------------------------------------------------


def test_86_context_handle_out_of_create_is_20_octets_and_close_zeroes_it() -> None:
    # spec: rpc #86
    create = Procedure("create", 0, [Param("handle", CONTEXT_HANDLE, OUT)], ULONG)
    close = Procedure("close", 1, [Param("handle", CONTEXT_HANDLE, IN_OUT)], ULONG)
    handle = ContextHandleValue(0, uuid.uuid4())
    stub = create.encode_response({"handle": handle, "return": 0})
    assert len(stub) == 24 and stub[:20] != bytes(20)
    assert create.decode_response(stub)["handle"] == handle
    request = close.encode_request({"handle": handle})
    assert len(request) == 20 and close.decode_request(request)["handle"] == handle
    reply = close.encode_response({"handle": ContextHandleValue.NULL, "return": 0})
    assert reply[:20] == bytes(20)
    assert close.decode_response(reply)["handle"].is_null


def test_86_context_handle_attributes_follow_drep() -> None:
    # spec: rpc #86
    handle = ContextHandleValue(1, uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"))
    big = Codec(CONTEXT_HANDLE, byteorder="big").encode(handle)
    assert big == bytes.fromhex("00000001 00112233 4455 6677 8899aabbccddeeff")
    assert Codec(CONTEXT_HANDLE, byteorder="big").decode(big) == handle
    assert Param("h", CONTEXT_HANDLE, IN).direction is IN
