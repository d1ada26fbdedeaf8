"""Property tests: generated descriptor trees and values for them.

- encode -> decode is the identity, in both byte orders and at every stub phase, and re-encoding
  the decoded value gives the same octets;
- decoding arbitrary octets (random or mutated valid stubs) raises only ``NdrError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio.errors import NdrError
from winaio.rpc._ndr import (
    BOOLEAN,
    BYTE,
    CHAR,
    CONTEXT_HANDLE,
    DOUBLE,
    ENUM16,
    ERROR_STATUS_T,
    FLOAT,
    GUID,
    HYPER,
    LONG,
    SHORT,
    SMALL,
    UHYPER,
    ULONG,
    USHORT,
    USMALL,
    V1_ENUM,
    VOID,
    WCHAR,
    Codec,
    ConformantArray,
    ConformantVaryingArray,
    ContextHandleValue,
    EncapsulatedUnion,
    Enum16,
    Enum32,
    FixedArray,
    Guid,
    NdrType,
    Param,
    Pipe,
    Pointer,
    Primitive,
    Procedure,
    Range,
    String,
    Struct,
    Union,
    VaryingArray,
    VaryingString,
    Void,
)
from winaio.rpc._ndr._types import ContextHandle

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- descriptor trees ---------------------------------------------------------------------------

LEAVES: list[NdrType] = [
    BYTE,
    CHAR,
    SMALL,
    USMALL,
    BOOLEAN,
    SHORT,
    USHORT,
    WCHAR,
    LONG,
    ULONG,
    ERROR_STATUS_T,
    HYPER,
    UHYPER,
    FLOAT,
    DOUBLE,
    ENUM16,
    V1_ENUM,
    GUID,
    CONTEXT_HANDLE,
    Range(USHORT, 3, 300),
]
DISCRIMINANTS: list[NdrType] = [SMALL, USMALL, SHORT, USHORT, LONG, ULONG, ENUM16, V1_ENUM]
CHARS = st.sampled_from([CHAR, WCHAR])
KINDS = st.sampled_from(["ref", "unique", "full"])

leaves = st.one_of(
    st.sampled_from(LEAVES),
    st.builds(VaryingString, CHARS, st.integers(1, 5)),
)


@st.composite
def union_types(draw: st.DrawFn, children: st.SearchStrategy[NdrType], switch: str = "") -> NdrType:
    tags = draw(st.lists(st.integers(0, 100), min_size=1, max_size=3, unique=True))
    arms = {tag: draw(st.one_of(children, st.just(VOID))) for tag in tags}
    default = draw(st.none() | children)
    disc = USHORT if switch else draw(st.sampled_from(DISCRIMINANTS))
    if switch:
        return Union(disc, arms, default=default, switch_is=switch, ms_union=draw(st.booleans()))
    if draw(st.booleans()):
        return EncapsulatedUnion(disc, arms, default=default)
    return Union(disc, arms, default=default, ms_union=draw(st.booleans()))


def conformant_types(children: st.SearchStrategy[NdrType]) -> st.SearchStrategy[NdrType]:
    return st.one_of(
        st.builds(ConformantArray, children),
        st.builds(ConformantVaryingArray, children),
        st.builds(String, CHARS),
        st.builds(lambda c: ConformantArray(ConformantArray(c)), children),
        st.builds(lambda c: ConformantVaryingArray(ConformantVaryingArray(c)), children),
    )


@st.composite
def struct_types(
    draw: st.DrawFn, children: st.SearchStrategy[NdrType], conformant_tail: bool
) -> NdrType:
    fields: list[tuple[str, NdrType]] = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["plain", "plain", "length_is", "size_is_ptr", "switch_is"]))
        if kind == "plain":
            fields.append((f"f{i}", draw(children)))
        elif kind == "length_is":
            element, count = draw(children), draw(st.integers(0, 3))
            fields.append((f"n{i}", ULONG))
            fields.append((f"f{i}", VaryingArray(element, count, length_is=f"n{i}")))
        elif kind == "size_is_ptr":
            array = ConformantArray(draw(children), size_is=f"n{i}")
            fields.append((f"n{i}", ULONG))
            fields.append((f"f{i}", Pointer(array, draw(KINDS))))
        else:
            fields.append((f"s{i}", USHORT))
            fields.append((f"f{i}", draw(union_types(children, switch=f"s{i}"))))
    if conformant_tail:
        if draw(st.booleans()):
            fields.append(("t", ULONG))
            fields.append(("tail", ConformantArray(draw(children), size_is="t")))
        else:
            fields.append(("tail", draw(conformant_types(children))))
    return Struct(fields)


def extend(children: st.SearchStrategy[NdrType]) -> st.SearchStrategy[NdrType]:
    conformant = st.one_of(conformant_types(children), struct_types(children, True))
    return st.one_of(
        st.builds(FixedArray, children, st.integers(1, 3)),
        st.builds(VaryingArray, children, st.integers(0, 3)),
        st.builds(Pointer, st.one_of(children, conformant), KINDS),
        struct_types(children, False),
        union_types(children),
    )


inline_types = st.recursive(leaves, extend, max_leaves=6)
any_types = st.one_of(
    inline_types,
    conformant_types(inline_types),
    struct_types(inline_types, True),
    st.builds(Pipe, st.sampled_from([BYTE, WCHAR, ULONG, HYPER, GUID])),
    st.builds(Pipe, st.builds(lambda t: Struct([("a", BYTE), ("b", t)]), st.sampled_from(LEAVES))),
)

# -- values for a descriptor --------------------------------------------------------------------

INTS = {
    "b": (-128, 127),
    "B": (0, 255),
    "h": (-(1 << 15), (1 << 15) - 1),
    "H": (0, (1 << 16) - 1),
    "i": (-(1 << 31), (1 << 31) - 1),
    "I": (0, (1 << 32) - 1),
    "q": (-(1 << 63), (1 << 63) - 1),
    "Q": (0, (1 << 64) - 1),
}
# Text that survives UTF-16 exactly: no surrogate code points (a surrogate pair spelt as two
# str characters would come back as one astral character).
WIDE_TEXT = st.characters(exclude_categories=("Cs",))
BMP_TEXT = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
LATIN1 = st.characters(max_codepoint=0xFF)


def run_of(element: NdrType, min_size: int, max_size: int) -> st.SearchStrategy[Any]:
    """A value for ``min..max`` consecutive elements: bytes, str or list."""
    if element in (BYTE, USMALL, CHAR):
        return st.binary(min_size=min_size, max_size=max_size)
    if element == WCHAR:
        return st.text(BMP_TEXT, min_size=min_size, max_size=max_size)
    return st.lists(values(element), min_size=min_size, max_size=max_size)


def rows_of(element: NdrType) -> st.SearchStrategy[Any]:
    return st.integers(0, 3).flatmap(lambda n: st.lists(run_of(element, n, n), max_size=3))


def values(t: NdrType) -> st.SearchStrategy[Any]:
    if isinstance(t, Primitive):
        if t == CHAR:
            return st.binary(min_size=1, max_size=1)
        if t == WCHAR:
            return st.integers(0, 0xFFFF).map(chr)
        if t == BOOLEAN:
            return st.booleans()
        if t == FLOAT:
            return st.floats(width=32, allow_nan=False)
        if t == DOUBLE:
            return st.floats(allow_nan=False)
        return st.integers(*INTS[t.fmt])
    if isinstance(t, Enum16):
        return st.integers(0, 32767)
    if isinstance(t, Enum32):
        return st.integers(*INTS["i"])
    if isinstance(t, Guid):
        return st.uuids()
    if isinstance(t, ContextHandle):
        return st.builds(ContextHandleValue, st.integers(*INTS["I"]), st.uuids())
    if isinstance(t, Range):
        return st.integers(t.low, t.high)
    if isinstance(t, Void):
        return st.none()
    if isinstance(t, VaryingString):
        alphabet = LATIN1 if t.char == CHAR else BMP_TEXT
        return st.text(alphabet, max_size=t.count - 1)
    if isinstance(t, String):
        return st.text(LATIN1 if t.char == CHAR else WIDE_TEXT, max_size=5)
    if isinstance(t, FixedArray):
        return run_of(t.element, t.count, t.count)
    if isinstance(t, VaryingArray):
        return run_of(t.element, 0, t.count)
    if isinstance(t, ConformantArray | ConformantVaryingArray):
        if type(t.element) is type(t):
            return rows_of(t.element.element)  # type: ignore[attr-defined]
        return run_of(t.element, 0, 3)
    if isinstance(t, Pointer):
        target = values(t.target)
        return target if t.kind == "ref" else st.none() | target
    if isinstance(t, Union | EncapsulatedUnion):
        return union_values(t)
    if isinstance(t, Struct):
        fields = st.fixed_dictionaries({name: values(ft) for name, ft in t.fields})
        return fields.map(lambda d: fix_correlations(t, d))
    if isinstance(t, Pipe):
        return st.lists(run_of(t.element, 1, 3), max_size=3)
    raise AssertionError(f"no value strategy for {t!r}")


def union_values(t: Union | EncapsulatedUnion) -> st.SearchStrategy[Any]:
    arms = dict(t.arms)
    options = [st.tuples(st.just(tag), values(arm)) for tag, arm in arms.items()]
    if t.default is not None:
        others = st.integers(0, 127).filter(lambda tag: tag not in arms)
        options.append(st.tuples(others, values(t.default)))
    return st.one_of(options)


def fix_correlations(t: Struct, d: dict[str, Any]) -> dict[str, Any]:
    """Make count and switch fields agree with the values they describe."""
    for name, ft in t.fields:
        value = d[name]
        if isinstance(ft, VaryingArray) and ft.length_is is not None:
            d[ft.length_is.name] = len(value)
        elif isinstance(ft, ConformantArray) and ft.size_is is not None:
            d[ft.size_is.name] = len(value)
        elif isinstance(ft, Pointer) and isinstance(ft.target, ConformantArray):
            if value is not None and ft.target.size_is is not None:
                d[ft.target.size_is.name] = len(value)
        elif isinstance(ft, Union) and ft.switch_is is not None:
            d[ft.switch_is.name] = value[0]
    return d


typed_values = any_types.flatmap(lambda t: st.tuples(st.just(t), values(t)))
byteorders = st.sampled_from(["little", "big"])

# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(typed_values, byteorders, st.integers(0, 7))
def test_encode_decode_is_identity(typed: tuple[NdrType, Any], byteorder: str, base: int) -> None:
    t, value = typed
    codec = Codec(t, byteorder=byteorder)  # type: ignore[arg-type]
    data = codec.encode(value, base=base)
    decoded = codec.decode(data, base=base)
    assert decoded == value
    assert codec.encode(decoded, base=base) == data
    # Alignment only sees the stub offset modulo 8.
    assert codec.encode(value, base=base + 8) == data


@SETTINGS
@given(st.lists(typed_values, min_size=1, max_size=3), byteorders)
def test_procedure_parameters_round_trip(typed: list[tuple[NdrType, Any]], byteorder: str) -> None:
    params = [Param(f"p{i}", t) for i, (t, _) in enumerate(typed)]
    proc = Procedure("generated", 1, params)
    args = {f"p{i}": value for i, (_, value) in enumerate(typed)}
    stub = proc.encode_request(args, byteorder=byteorder)  # type: ignore[arg-type]
    assert proc.decode_request(stub, byteorder=byteorder) == args  # type: ignore[arg-type]


def decodes_or_ndr_error(decode: Callable[[], Any]) -> None:
    try:
        decode()
    except NdrError as error:
        assert error.status in (0x6F7, 1733, 1734, 1781)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_types, st.binary(max_size=96), byteorders, st.integers(0, 7))
def test_arbitrary_octets_raise_only_ndr_error(
    t: NdrType, data: bytes, byteorder: str, base: int
) -> None:
    codec = Codec(t, byteorder=byteorder)  # type: ignore[arg-type]
    decodes_or_ndr_error(lambda: codec.decode_from(data, base=base))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_values, st.data())
def test_mutated_stubs_raise_only_ndr_error(
    typed: tuple[NdrType, Any], data: st.DataObject
) -> None:
    t, value = typed
    codec = Codec(t)
    stub = bytearray(codec.encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        if not stub:
            break
        where = data.draw(st.integers(0, len(stub) - 1))
        stub[where] = data.draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01, 0xAB]))
    cut = data.draw(st.integers(0, len(stub)))
    decodes_or_ndr_error(lambda: codec.decode_from(bytes(stub[:cut])))
    decodes_or_ndr_error(lambda: codec.decode_from(bytes(stub)))
