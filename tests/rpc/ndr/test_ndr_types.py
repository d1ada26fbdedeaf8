"""Each descriptor on its own: wire form in both byte orders, values, errors, validation."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from winaio.codes import NcaStatus, RpcStatus, rpc_to_nca_status
from winaio.errors import NdrError
from winaio.rpc._ndr import (
    BOOLEAN,
    BYTE,
    CHAR,
    DOUBLE,
    ERROR_STATUS_T,
    FLOAT,
    GUID,
    HYPER,
    IN,
    LONG,
    OUT,
    SHORT,
    SMALL,
    UHYPER,
    ULONG,
    USHORT,
    USMALL,
    VOID,
    WCHAR,
    Codec,
    ConformantArray,
    ConformantVaryingArray,
    EncapsulatedUnion,
    FixedArray,
    Lazy,
    NdrType,
    Param,
    Pipe,
    Pointer,
    Procedure,
    Range,
    Ref,
    String,
    Struct,
    Union,
    VaryingArray,
    VaryingString,
    drep_byteorder,
    is_conformant,
    ref,
    unique,
)


def roundtrip(t: NdrType, value: Any, byteorder: str = "little", base: int = 0) -> bytes:
    codec = Codec(t, byteorder=byteorder)  # type: ignore[arg-type]
    data = codec.encode(value, base=base)
    assert codec.decode(data, base=base) == value
    return data


# -- primitives ---------------------------------------------------------------------------------

PRIMITIVES = [
    (BYTE, 0xFE, "fe", "fe"),
    (SMALL, -2, "fe", "fe"),
    (USMALL, 7, "07", "07"),
    (CHAR, b"A", "41", "41"),
    (BOOLEAN, True, "01", "01"),
    (SHORT, -2, "feff", "fffe"),
    (USHORT, 0x1234, "3412", "1234"),
    (WCHAR, "\u20ac", "ac20", "20ac"),
    (LONG, -2, "feffffff", "fffffffe"),
    (ULONG, 0x12345678, "78563412", "12345678"),
    (ERROR_STATUS_T, 0x16C9A0D6, "d6a0c916", "16c9a0d6"),
    (HYPER, -2, "feffffffffffffff", "fffffffffffffffe"),
    (UHYPER, 1 << 63, "0000000000000080", "8000000000000000"),
    (FLOAT, 1.5, "0000c03f", "3fc00000"),
    (DOUBLE, -0.5, "000000000000e0bf", "bfe0000000000000"),
]


@pytest.mark.parametrize(("t", "value", "little", "big"), PRIMITIVES, ids=lambda x: str(x))
def test_primitive_in_both_byte_orders(t: NdrType, value: Any, little: str, big: str) -> None:
    assert roundtrip(t, value, "little") == bytes.fromhex(little)
    assert roundtrip(t, value, "big") == bytes.fromhex(big)


def test_boolean_decodes_any_nonzero_octet_as_true() -> None:
    assert Codec(BOOLEAN).decode(b"\x05") is True
    assert Codec(BOOLEAN).decode(b"\x00") is False


def test_primitives_align_to_their_size_relative_to_the_stub_start() -> None:
    proc = Procedure("p", 0, [Param("a", BYTE), Param("b", HYPER), Param("c", SHORT)])
    assert proc.encode_request({"a": 1, "b": 2, "c": 3}) == bytes.fromhex(
        "01 00000000000000 0200000000000000 0300"
    )
    # base = 4: the stub started 4 octets earlier, so the hyper needs only 3 octets of gap.
    assert proc.encode_request({"a": 1, "b": 2, "c": 3}, base=4) == bytes.fromhex(
        "01 000000 0200000000000000 0300"
    )
    assert proc.decode_request(bytes.fromhex("01 000000 0200000000000000 0300"), base=4) == {
        "a": 1,
        "b": 2,
        "c": 3,
    }


def test_out_of_range_integers_fail_to_encode() -> None:
    for t, bad in ((USHORT, 70000), (BYTE, -1), (ULONG, 1 << 32), (CHAR, b"ab"), (WCHAR, "ab")):
        with pytest.raises(NdrError) as info:
            Codec(t).encode(bad)
        assert info.value.status == RpcStatus.RPC_X_BAD_STUB_DATA


def test_guid_follows_drep() -> None:
    value = uuid.UUID("12345678-1234-abcd-ef00-0123456789ab")
    assert roundtrip(GUID, value) == value.bytes_le
    assert roundtrip(GUID, value, "big") == value.bytes


def test_range_is_enforced() -> None:
    t = Range(ULONG, 0, 500)
    assert roundtrip(t, 500) == bytes.fromhex("f4010000")
    with pytest.raises(NdrError):
        Codec(t).encode(501)
    with pytest.raises(NdrError):
        Codec(t).decode(bytes.fromhex("f5010000"))
    with pytest.raises(TypeError):
        Range(FLOAT, 0, 1)  # type: ignore[arg-type]


# -- arrays -------------------------------------------------------------------------------------


def test_fixed_arrays() -> None:
    assert roundtrip(FixedArray(BYTE, 3), b"abc") == b"abc"
    assert roundtrip(FixedArray(WCHAR, 2), "hi") == "hi".encode("utf-16-le")
    assert roundtrip(FixedArray(USHORT, 2), [1, 2], "big") == bytes.fromhex("00010002")
    pair = Struct([("a", BYTE), ("b", USHORT)])
    assert roundtrip(FixedArray(pair, 2), [{"a": 1, "b": 2}, {"a": 3, "b": 4}]) == bytes.fromhex(
        "01 00 0200 03 00 0400"
    )
    matrix = FixedArray(FixedArray(SHORT, 2), 2)
    assert roundtrip(matrix, [[1, 2], [3, 4]]) == bytes.fromhex("0100 0200 0300 0400")
    with pytest.raises(NdrError) as info:
        Codec(FixedArray(BYTE, 3)).encode(b"ab")
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND


def test_fixed_array_of_pointers_defers_its_referents() -> None:
    t = FixedArray(unique(ULONG), 2)
    assert roundtrip(t, [5, None]) == struct.pack("<III", 0x20000, 0, 5)


def test_conformant_array_families() -> None:
    assert roundtrip(ConformantArray(BYTE), b"\x00\xff") == bytes.fromhex("02000000 00ff")
    assert roundtrip(ConformantArray(CHAR), b"") == bytes.fromhex("00000000")
    assert roundtrip(ConformantArray(WCHAR), "\ud800x") == bytes.fromhex("02000000 00d8 7800")
    assert roundtrip(ConformantArray(HYPER), [1], base=4) == bytes.fromhex(
        "01000000 0100000000000000"
    )
    assert roundtrip(ConformantArray(BOOLEAN), [True, False]) == bytes.fromhex("02000000 0100")
    assert roundtrip(ConformantArray(GUID), [uuid.UUID(int=1)]) == bytes.fromhex(
        "01000000" + uuid.UUID(int=1).bytes_le.hex()
    )


def test_array_of_flat_structs_has_no_trailing_pad_after_the_last_element() -> None:
    item = Struct([("id", ULONG), ("flag", USHORT)])
    value = [{"id": 1, "flag": 2}, {"id": 3, "flag": 4}]
    data = roundtrip(ConformantArray(item), value)
    assert data == bytes.fromhex("02000000 01000000 0200 0000 03000000 0400")
    proc = Procedure("p", 0, [Param("a", ConformantArray(item)), Param("b", USHORT)])
    stub = proc.encode_request({"a": value, "b": 9})
    assert stub == data + bytes.fromhex("0900")
    assert proc.decode_request(stub) == {"a": value, "b": 9}


def test_varying_array() -> None:
    t = VaryingArray(ULONG, 4, length_is="n")
    s = Struct([("n", ULONG), ("a", t)])
    assert roundtrip(s, {"n": 2, "a": [7, 8]}) == struct.pack("<5I", 2, 0, 2, 7, 8)
    with pytest.raises(NdrError) as info:
        Codec(VaryingArray(ULONG, 1)).encode([1, 2])
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND
    with pytest.raises(NdrError) as info:
        Codec(VaryingArray(ULONG, 4)).decode(struct.pack("<3I", 1, 1, 9))
    assert info.value.status == RpcStatus.RPC_X_BAD_STUB_DATA  # offset without first_is


def test_first_is_sets_and_checks_the_offset() -> None:
    t = Struct([("first", ULONG), ("a", ConformantVaryingArray(USHORT, first_is="first"))])
    data = roundtrip(t, {"first": 1, "a": [5]})
    assert data == struct.pack("<4I", 2, 1, 1, 1) + bytes.fromhex("0500")


def test_rpc_unicode_string_uses_divided_correlations() -> None:
    buffer = unique(ConformantVaryingArray(WCHAR, Ref("MaximumLength", 2), Ref("Length", 2)))
    t = Struct([("Length", USHORT), ("MaximumLength", USHORT), ("Buffer", buffer)])
    value = {"Length": 6, "MaximumLength": 10, "Buffer": "abc"}
    data = roundtrip(t, value)
    assert data == bytes.fromhex("0600 0a00 00000200") + struct.pack("<3I", 5, 0, 3) + b"a\0b\0c\0"
    with pytest.raises(NdrError):
        Codec(t).decode(bytes.fromhex("0800 0a00 00000200") + data[8:])  # Length says 4 chars


def test_multidimensional_conformant_arrays_send_all_max_counts_first() -> None:
    t = ConformantArray(ConformantArray(USHORT, size_is="m"), size_is="n")
    s = Struct([("n", ULONG), ("m", ULONG), ("a", t)])
    value = {"n": 2, "m": 3, "a": [[1, 2, 3], [4, 5, 6]]}
    data = roundtrip(s, value)
    assert data == struct.pack("<4I", 2, 3, 2, 3) + struct.pack("<6H", 1, 2, 3, 4, 5, 6)
    assert (
        roundtrip(ConformantArray(ConformantArray(BYTE)), [b"ab", b"cd"])
        == struct.pack("<2I", 2, 2) + b"abcd"
    )
    assert roundtrip(ConformantArray(ConformantArray(BYTE)), []) == bytes(8)
    with pytest.raises(NdrError) as info:
        Codec(ConformantArray(ConformantArray(BYTE))).encode([b"a", b"bc"])
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND


def test_multidimensional_conformant_varying_array() -> None:
    t = ConformantVaryingArray(ConformantVaryingArray(USHORT))
    data = roundtrip(t, [[1], [2]])
    assert data == struct.pack("<6I", 2, 1, 0, 2, 0, 1) + struct.pack("<2H", 1, 2)
    with pytest.raises(NdrError) as info:
        Codec(t).decode(struct.pack("<6I", 2, 1, 0, 3, 0, 1) + bytes(6))
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND


def test_huge_counts_fail_fast_without_allocating() -> None:
    for t in (
        ConformantArray(BYTE),
        ConformantArray(ULONG),
        ConformantArray(Struct([("a", ULONG), ("b", BYTE)])),
        ConformantArray(unique(ULONG)),
        ConformantArray(WCHAR),
        String(WCHAR),
        Pipe(ULONG),
    ):
        with pytest.raises(NdrError) as info:
            Codec(t).decode(b"\xff\xff\xff\xff" * 3)
        assert info.value.status in (RpcStatus.RPC_X_BAD_STUB_DATA, RpcStatus.RPC_S_INVALID_BOUND)
    with pytest.raises(NdrError):
        Codec(ConformantArray(ConformantArray(BYTE))).decode(struct.pack("<2I", 0xFFFFFFFF, 0))


# -- strings ------------------------------------------------------------------------------------


def test_strings_count_the_terminator() -> None:
    assert roundtrip(String(CHAR), "ab") == struct.pack("<3I", 3, 0, 3) + b"ab\0"
    assert roundtrip(String(WCHAR), "") == struct.pack("<3I", 1, 0, 1) + b"\0\0"
    assert roundtrip(String(WCHAR), "\U0001f600") == struct.pack("<3I", 3, 0, 3) + (
        "\U0001f600\0".encode("utf-16-le")
    )
    assert roundtrip(String(CHAR), "\xe9") == struct.pack("<3I", 2, 0, 2) + b"\xe9\0"
    assert roundtrip(VaryingString(CHAR, 64), "ept") == struct.pack("<2I", 0, 4) + b"ept\0"
    assert roundtrip(String(WCHAR), "hi", "big") == struct.pack(">3I", 3, 0, 3) + (
        "hi\0".encode("utf-16-be")
    )


def test_string_max_count_may_exceed_the_length() -> None:
    s = Struct([("size", ULONG), ("name", unique(String(WCHAR, size_is="size")))])
    data = roundtrip(s, {"size": 10, "name": "ab"})
    assert data[8:20] == struct.pack("<3I", 10, 0, 3)
    assert Codec(String(WCHAR)).decode(struct.pack("<3I", 9, 0, 2) + b"x\0\0\0") == "x"


@pytest.mark.parametrize(
    "stub",
    [
        struct.pack("<3I", 2, 0, 2) + b"ab",  # no terminator
        struct.pack("<3I", 2, 0, 0),  # actual_count 0: not even the terminator
        struct.pack("<3I", 1, 0, 2) + b"a\0",  # actual > max
    ],
)
def test_malformed_strings_are_invalid_bound(stub: bytes) -> None:
    with pytest.raises(NdrError) as info:
        Codec(String(CHAR)).decode(stub)
    assert info.value.status == RpcStatus.RPC_S_INVALID_BOUND


def test_non_latin1_char_strings_fail_to_encode() -> None:
    with pytest.raises(NdrError):
        Codec(String(CHAR)).encode("\u20ac")
    with pytest.raises(NdrError):
        Codec(VaryingString(CHAR, 2)).encode("ab")  # 3 with the NUL


# -- unions -------------------------------------------------------------------------------------


def test_unknown_union_tag_is_invalid_tag() -> None:
    t = Union(ULONG, {1: ULONG})
    with pytest.raises(NdrError) as info:
        Codec(t).decode(struct.pack("<2I", 9, 0))
    assert info.value.status == RpcStatus.RPC_S_INVALID_TAG
    assert rpc_to_nca_status(info.value.status) == NcaStatus.NCA_S_FAULT_INVALID_TAG == 0x1C000006
    with pytest.raises(NdrError) as info:
        Codec(t).encode((9, 0))
    assert info.value.status == RpcStatus.RPC_S_INVALID_TAG


def test_union_default_and_empty_arms() -> None:
    t = Union(USHORT, {1: VOID, 2: HYPER}, default=USHORT)
    assert roundtrip(t, (1, None)) == bytes.fromhex("0100")
    assert roundtrip(t, (2, 3)) == bytes.fromhex("0200 000000000000 0300000000000000")
    assert roundtrip(t, (77, 3)) == bytes.fromhex("4d00 0300")  # default arm, own alignment


def test_encapsulated_union_aligns_as_a_whole() -> None:
    t = EncapsulatedUnion(USHORT, {1: HYPER, 2: USHORT})
    proc = Procedure("p", 0, [Param("c", BYTE), Param("u", t)])
    stub = proc.encode_request({"c": 9, "u": (2, 5)})
    assert stub == bytes.fromhex("09 00000000000000 0200 000000000000 0500")
    assert proc.decode_request(stub) == {"c": 9, "u": (2, 5)}


def test_union_with_pointer_arm_in_a_struct() -> None:
    info = Union(ULONG, {1: ULONG, 2: unique(String(WCHAR))}, switch_is="level")
    t = Struct([("level", ULONG), ("info", info), ("tail", USHORT)])
    data = roundtrip(t, {"level": 2, "info": (2, "x"), "tail": 3})
    assert data == struct.pack("<3I", 2, 2, 0x20000) + bytes.fromhex("0300 0000") + (
        struct.pack("<3I", 2, 0, 2) + b"x\0\0\0"
    )
    assert roundtrip(ConformantArray(EncapsulatedUnion(ULONG, {1: unique(ULONG)})), [(1, 4)])


def test_nested_unions_with_pointer_arms_rewrap_the_tags() -> None:
    inner = EncapsulatedUnion(USHORT, {5: unique(ULONG)})
    outer = EncapsulatedUnion(USHORT, {1: inner, 2: VOID})
    t = Struct([("u", outer)])
    assert roundtrip(t, {"u": (1, (5, 42))})
    assert roundtrip(unique(outer), (1, (5, 42)))
    assert roundtrip(FixedArray(outer, 2), [(1, (5, None)), (2, None)])


# -- pointers -----------------------------------------------------------------------------------


def test_null_ref_pointer_fails_to_encode() -> None:
    for t in (ref(ULONG), Struct([("p", ref(ULONG))])):
        with pytest.raises(NdrError) as info:
            Codec(t).encode(None if isinstance(t, Pointer) else {"p": None})
        assert info.value.status == RpcStatus.RPC_X_NULL_REF_POINTER


def test_embedded_ref_pointer_has_a_placeholder_and_a_deferred_referent() -> None:
    t = Struct([("p", ref(ULONG)), ("x", ULONG)])
    assert roundtrip(t, {"p": 5, "x": 6}) == struct.pack("<3I", 0x20000, 6, 5)
    # any placeholder value, even 0, still has a referent (Samba's ndr_pull_ref_ptr)
    assert Codec(t).decode(struct.pack("<3I", 0, 6, 5)) == {"p": 5, "x": 6}


def test_pointer_to_pointer_is_immediate() -> None:
    # rpcecho TestCall: [out, string] uint16 **s2 = top-level ref -> unique -> string
    proc = Procedure("TestCall", 4, [Param("s2", ref(unique(String(WCHAR))), OUT)])
    stub = proc.encode_response({"s2": "ok"})
    assert stub == struct.pack("<4I", 0x20000, 3, 0, 3) + "ok\0".encode("utf-16-le")
    assert proc.decode_response(stub) == {"s2": "ok"}
    assert proc.decode_response(bytes(4)) == {"s2": None}


def test_long_linked_list_does_not_recurse() -> None:
    node = Struct([("v", ULONG), ("next", unique(Lazy(lambda: node, "node")))])
    head: dict[str, Any] | None = None
    for i in range(3000):
        head = {"v": i, "next": head}
    data = Codec(node).encode(head)
    assert len(data) == 3000 * 8
    decoded = Codec(node).decode(data)
    count = 0
    while decoded is not None:
        decoded, count = decoded["next"], count + 1
    assert count == 3000


def test_custom_referent_ids() -> None:
    t = Struct([("a", unique(ULONG)), ("b", unique(ULONG))])
    assert Codec(t).encode({"a": 1, "b": 2}, referent_ids=[1, 2]) == struct.pack("<4I", 1, 2, 1, 2)
    with pytest.raises(NdrError):
        Codec(t).encode({"a": 1, "b": 2}, referent_ids=[1])


# -- pipes --------------------------------------------------------------------------------------


def test_pipe_whole_message() -> None:
    assert roundtrip(Pipe(ULONG), [[1, 2], [3]]) == struct.pack("<6I", 2, 1, 2, 1, 3, 0)
    assert roundtrip(Pipe(BYTE), [b"ab", b"c"]) == bytes.fromhex(
        "02000000 6162 0000 01000000 63 000000 00000000"
    )
    assert Codec(Pipe(ULONG)).encode([[], [1]]) == struct.pack("<3I", 1, 1, 0)


def test_pipes_follow_in_params_and_precede_out_params() -> None:
    proc = Procedure(
        "p",
        0,
        [Param("data", Pipe(BYTE), IN), Param("n", ULONG, IN), Param("back", Pipe(USHORT), OUT)],
        ULONG,
    )
    stub = proc.encode_request({"data": [b"xy"], "n": 5})
    assert stub == struct.pack("<2I", 5, 2) + b"xy" + bytes(2) + bytes(4)
    reply = proc.encode_response({"back": [[1]], "return": 0})
    assert reply == struct.pack("<I", 1) + bytes.fromhex("0100 0000") + bytes(4) + bytes(4)
    assert proc.decode_response(reply) == {"back": [[1]], "return": 0}


# -- codec, drep, entry points ------------------------------------------------------------------


def test_truncation_anywhere_is_bad_stub_data() -> None:
    t = Struct(
        [
            ("a", USHORT),
            ("s", unique(String(WCHAR))),
            ("u", Union(ULONG, {1: HYPER})),
            ("arr", ConformantArray(Struct([("x", ULONG), ("y", BYTE)]))),
        ]
    )
    data = Codec(t).encode({"a": 1, "s": "abc", "u": (1, 2), "arr": [{"x": 1, "y": 2}] * 3})
    for cut in range(len(data)):
        with pytest.raises(NdrError) as info:
            Codec(t).decode(data[:cut])
        assert info.value.status in (RpcStatus.RPC_X_BAD_STUB_DATA, RpcStatus.RPC_S_INVALID_BOUND)


def test_trailing_octets_are_rejected_by_codec_and_ignored_by_procedures() -> None:
    with pytest.raises(NdrError) as info:
        Codec(ULONG).decode(bytes(5))
    assert info.value.offset == 4
    proc = Procedure("p", 0, [Param("a", ULONG)])
    assert proc.decode_request(bytes(8)) == {"a": 0}
    assert Codec(ULONG).decode_from(bytes(9), 4) == (0, 8)


def test_missing_parameter_is_a_clear_error() -> None:
    proc = Procedure("p", 0, [Param("a", ULONG), Param("b", ULONG)])
    with pytest.raises(NdrError, match="'b'"):
        proc.encode_request({"a": 1})


def test_drep_byteorder() -> None:
    assert drep_byteorder(b"\x10\x00\x00\x00") == "little"
    assert drep_byteorder(b"\x00\x00\x00\x00") == "big"
    for bad in (b"\x11\x00\x00\x00", b"\x10\x01\x00\x00", b"\x20\x00", b"\x10"):
        with pytest.raises(NdrError):
            drep_byteorder(bad)


# -- descriptor validation ----------------------------------------------------------------------


def test_invalid_descriptors_are_rejected_at_construction() -> None:
    with pytest.raises(TypeError):
        Struct([("a", ConformantArray(BYTE)), ("b", ULONG)])  # conformant not last
    with pytest.raises(ValueError, match="at least one"):
        Struct([])
    with pytest.raises(ValueError, match="duplicate"):
        Struct([("a", ULONG), ("a", ULONG)])
    with pytest.raises(TypeError):
        FixedArray(ConformantArray(BYTE), 2)
    with pytest.raises(TypeError):
        ConformantArray(Struct([("n", ULONG), ("a", ConformantArray(BYTE))]))
    with pytest.raises(TypeError):
        Pipe(unique(ULONG))
    with pytest.raises(TypeError):
        Pipe(ConformantArray(ULONG))
    with pytest.raises(TypeError):
        Union(FLOAT, {1: ULONG})
    with pytest.raises(TypeError):
        Union(ULONG, {1: String(WCHAR)})
    with pytest.raises(TypeError):
        String(ULONG)
    with pytest.raises(ValueError, match="reserved"):
        Procedure("p", 0, [Param("return", ULONG)])
    with pytest.raises(TypeError):
        Codec(ConformantArray(FixedArray(BYTE, 0)))  # zero-size elements
    assert is_conformant(Struct([("a", ULONG), ("s", String(CHAR))]))
    assert not is_conformant(Struct([("a", ULONG), ("s", unique(String(CHAR)))]))


def test_error_offsets_are_stub_offsets() -> None:
    proc = Procedure("p", 0, [Param("a", BYTE), Param("b", ConformantArray(ULONG))])
    stub = proc.encode_request({"a": 1, "b": [1, 2]}, base=3)
    assert stub == b"\x01" + struct.pack("<3I", 2, 1, 2)  # a at 3, max_count at 4
    with pytest.raises(NdrError) as info:
        proc.decode_request(stub[:-1], base=3)
    assert info.value.offset == 8  # where the elements start, in stub coordinates
    with pytest.raises(NdrError) as info:
        proc.decode_request(stub[:3], base=3)
    assert info.value.offset == 6  # the stub ends inside max_count
