"""Struct-based codecs for simple procedures: the server's per-call fast path.

Purpose: most calls of most interfaces move a few integers and a byte buffer. For such a
procedure the generic machinery (compiled nodes, a marshalling context, a scope dict, one
closure per parameter) costs far more than the bytes it moves. ``simple_codecs`` compiles a
*simple* procedure once into closures that do one ``struct`` call per run of scalars and one
slice per octet array, reading straight from the PDU buffer:

- ``decode(buf, start, end) -> tuple | None``: the [in] values in declaration order, from the
  little-endian stub ``buf[start:end]``;
- ``encode(outs, ins) -> bytes | None``: the little-endian response stub for ``outs`` (the [out]
  values in declaration order, then the return value), with ``ins`` (the decoded [in] values)
  available to ``size_is`` correlations.

A procedure is simple when every [in] parameter (for ``decode``) and every [out] parameter and
the return type (for ``encode``) is one of: a primitive other than ``wchar_t`` (integers,
boolean, char, float, double), a ``[v1_enum]``, a conformant array of octets (byte, unsigned
small, char) whose ``size_is`` is a plain name or a ``Ref``, or a top-level ``[ref]`` pointer to
one of those (no wire form). Pipes, strings, structures, unions, other pointers and context
handles are not simple: ``simple_codecs`` returns ``None`` for that direction.

Contract, the equivalence rule (tests/rpc/ndr/test_ndr_simple.py checks it with Hypothesis):
whenever a fast codec returns a value, it is exactly what ``Procedure.decode_request`` /
``encode_response`` return for the same input (alignment relative to the stub start
[C706 §14.2.2], max_count checked against its correlation [MS-RPCE §3.1.1.5.3.1], trailing
octets ignored). Whenever the input is anything else (a truncated stub, a correlation mismatch,
a value that does not pack, a non-``bytes`` buffer value) the fast codec returns ``None`` and
the caller takes the generic path, which raises the precise ``NdrError``. The fast codecs never
raise on bad wire data and never read past ``end``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, Final

from ._node import LayoutItem, phase_structs
from ._types import (
    BOOLEAN,
    BYTE,
    CHAR,
    USMALL,
    WCHAR,
    ConformantArray,
    Enum32,
    NdrType,
    Pointer,
    Primitive,
)

__all__ = ["SimpleDecode", "SimpleEncode", "simple_decoder", "simple_encoder"]

SimpleDecode = Callable[[bytes, int, int], "tuple[Any, ...] | list[Any] | None"]
SimpleEncode = Callable[[Sequence[Any], Sequence[Any]], "bytes | None"]

_OCTETS: Final = (BYTE, USMALL, CHAR)
_INTEGER_CODES: Final = frozenset("bBhHiIqQ?")
_PACK_ERRORS: Final = (struct.error, OverflowError, TypeError)

# One wire item: ("s", size, fmt) a scalar, or ("a", ref) an octet conformant array whose
# ref is (name, divide, add) or None.
_Item = tuple[Any, ...]
# A correlation resolved at compile time: (source, index, divide, add); source "in" or "out".
_Check = tuple[str, int, int, int] | None


def _item(desc: NdrType) -> _Item | None:
    if isinstance(desc, Pointer) and desc.kind == "ref":
        if desc.target == BOOLEAN:
            return None  # struct packs None as false; the generic encoder refuses a NULL [ref]
        desc = desc.target  # a top-level [ref] pointer has no wire form
    if isinstance(desc, Primitive):
        return None if desc == WCHAR else ("s", desc.size, desc.fmt)
    if isinstance(desc, Enum32):
        return ("s", 4, "i")
    if isinstance(desc, ConformantArray) and desc.element in _OCTETS:
        ref = desc.size_is
        return ("a", None if ref is None else (ref.name, ref.divide, ref.add))
    return None


def _items(types: Sequence[NdrType]) -> list[_Item] | None:
    items = [_item(t) for t in types]
    if any(it is None for it in items):
        return None
    return items  # type: ignore[return-value]


class _Segment:
    """A run of scalars, optionally closed by an octet array (whose max_count ends the run)."""

    __slots__ = ("array", "check", "scalars", "sizes", "structs")

    def __init__(self, layout: list[LayoutItem], scalars: tuple[int, ...], array: int | None):
        self.structs, self.sizes = phase_structs(tuple(layout), "<")
        self.scalars = scalars  # value indices packed by the struct (before max_count)
        self.array = array  # value index of the closing array, or None
        self.check: _Check = None


def _segments(items: list[_Item]) -> list[_Segment]:
    segments: list[_Segment] = []
    layout: list[LayoutItem] = []
    scalars: list[int] = []
    for index, item in enumerate(items):
        if item[0] == "s":
            size = item[1]
            layout.append((size, item[2], size, 1))
            scalars.append(index)
        else:
            layout.append((4, "I", 4, 1))
            segments.append(_Segment(layout, tuple(scalars), index))
            layout, scalars = [], []
    if scalars or not segments:
        segments.append(_Segment(layout, tuple(scalars), None))
    return segments


def simple_decoder(names: Sequence[str], types: Sequence[NdrType]) -> SimpleDecode | None:
    """Fast decoder of [in] parameters ``names``/``types`` (declaration order), or None."""
    items = _items(types)
    if items is None:
        return None
    segments = _segments(items)
    for seg in segments:
        if seg.array is not None:
            ref = items[seg.array][1]
            if ref is not None and ref[0] in names:
                source = list(names).index(ref[0])
                # Only an integer decoded before the array is checked (the generic decoder's
                # scope holds nothing else at that point).
                if (
                    source < seg.array
                    and items[source][0] == "s"
                    and items[source][2] in (_INTEGER_CODES)
                ):
                    seg.check = ("in", source, ref[1], ref[2])
    if not items:
        return _decode_nothing
    if len(segments) == 1:
        seg = segments[0]
        if seg.array is None:
            return _decode_scalars(seg)
        return _decode_one_array(seg)
    return _decode_general(segments)


def _decode_nothing(buf: bytes, start: int, end: int) -> tuple[Any, ...]:
    return ()


def _decode_scalars(seg: _Segment) -> SimpleDecode:
    unpack_from = seg.structs[0].unpack_from
    size = seg.sizes[0]

    def decode(buf: bytes, start: int, end: int) -> tuple[Any, ...] | None:
        if start + size > end:
            return None
        return unpack_from(buf, start)

    return decode


def _decode_one_array(seg: _Segment) -> SimpleDecode:
    # k scalars then an octet array (the array is the last [in] parameter).
    unpack_from = seg.structs[0].unpack_from
    size = seg.sizes[0]
    check = seg.check
    k = len(seg.scalars)
    if check is not None and check[2:] == (1, 0):
        source = check[1]
        if k == 1 and source == 0:
            # EchoData's shape: a length, then the octets it counts.

            def decode_counted(buf: bytes, start: int, end: int) -> tuple[Any, ...] | None:
                pos = start + size
                if pos > end:
                    return None
                count, n = unpack_from(buf, start)
                stop = pos + n
                if stop > end or count != n:
                    return None
                return (count, buf[pos:stop])

            return decode_counted

        def decode(buf: bytes, start: int, end: int) -> tuple[Any, ...] | None:
            pos = start + size
            if pos > end:
                return None
            items = unpack_from(buf, start)
            n = items[k]
            stop = pos + n
            if stop > end or items[source] != n:
                return None
            return (*items[:k], buf[pos:stop])

        return decode

    def decode_checked(buf: bytes, start: int, end: int) -> tuple[Any, ...] | None:
        pos = start + size
        if pos > end:
            return None
        items = unpack_from(buf, start)
        n = items[k]
        stop = pos + n
        if stop > end or (check is not None and items[check[1]] // check[2] + check[3] != n):
            return None
        return (*items[:k], buf[pos:stop])

    return decode_checked


def _decode_general(segments: list[_Segment]) -> SimpleDecode:
    plan = tuple((s.structs, s.sizes, s.array is not None, s.check) for s in segments)

    def decode(buf: bytes, start: int, end: int) -> list[Any] | None:
        pos = start
        values: list[Any] = []
        for structs, sizes, array, check in plan:
            phase = (pos - start) & 7
            size = sizes[phase]
            if pos + size > end:
                return None
            items = structs[phase].unpack_from(buf, pos)
            pos += size
            if not array:
                values += items
                continue
            n = items[-1]
            values += items[:-1]
            if check is not None and values[check[1]] // check[2] + check[3] != n:
                return None
            stop = pos + n
            if stop > end:
                return None
            values.append(buf[pos:stop])
            pos = stop
        return values

    return decode


def simple_encoder(
    names: Sequence[str],
    types: Sequence[NdrType],
    in_names: Sequence[str],
    *,
    single: bool = False,
) -> SimpleEncode | None:
    """Fast encoder of the outputs ``names``/``types`` ([out] parameters in declaration order,
    then the return value), or None. ``in_names``: the [in] parameters, in the order of the
    ``ins`` sequence given to the encoder, for correlations that name them. ``single`` (one
    output only): the encoder takes that output's value itself instead of a sequence."""
    if single and len(names) != 1:
        raise ValueError("single=True needs exactly one output")
    items = _items(types)
    if items is None:
        return None
    segments = _segments(items)
    for seg in segments:
        if seg.array is not None:
            ref = items[seg.array][1]
            # The generic encoder resolves a correlation in {[in] values} | {outputs}: outputs
            # first (an [in,out] parameter has its new value).
            if ref is not None and ref[0] in names:
                seg.check = ("out", list(names).index(ref[0]), ref[1], ref[2])
            elif ref is not None and ref[0] in in_names:
                seg.check = ("in", list(in_names).index(ref[0]), ref[1], ref[2])
    if not items:
        return _encode_nothing
    if len(segments) == 1:
        seg = segments[0]
        if seg.array is None:
            if single:
                return _encode_scalar(seg)
            return _encode_scalars(seg)
        return _encode_one_array(seg, single)
    encode = _encode_general(segments)
    return _single(encode) if single else encode


def _expected(check: _Check, outs: Sequence[Any], ins: Sequence[Any]) -> int | None:
    if check is None:
        return None
    value = (outs if check[0] == "out" else ins)[check[1]]
    if not isinstance(value, int):
        return None  # not available: the generic encoder does not check it either
    return value // check[2] + check[3]


def _encode_nothing(outs: Sequence[Any], ins: Sequence[Any]) -> bytes:
    return b""


def _encode_scalars(seg: _Segment) -> SimpleEncode:
    pack = seg.structs[0].pack

    def encode(outs: Sequence[Any], ins: Sequence[Any]) -> bytes | None:
        try:
            return pack(*outs)
        except _PACK_ERRORS:
            return None

    return encode


def _encode_one_array(seg: _Segment, single: bool) -> SimpleEncode:
    pack = seg.structs[0].pack
    check = seg.check
    k = len(seg.scalars)
    if k == 0 and single and check is not None and check[0] == "in" and check[2:] == (1, 0):
        # EchoData's shape: the only output, sized by an [in] parameter. A value that is not
        # the same integer declines (the generic encoder then decides): always safe.
        index = check[1]

        def encode_sized(data: Any, ins: Sequence[Any]) -> bytes | None:
            if type(data) is not bytes:
                return None
            n = len(data)
            if ins[index] != n:
                return None
            return pack(n) + data

        return encode_sized
    if k == 0:
        # The array is the only output: ``single`` takes it bare.
        source, index, divide, add = check if check is not None else ("", 0, 1, 0)
        from_ins = source == "in"

        def encode_array(outs: Any, ins: Sequence[Any]) -> bytes | None:
            data = outs if single else outs[0]
            if type(data) is not bytes:
                return None
            n = len(data)
            if from_ins:
                value = ins[index]
                if isinstance(value, int) and value // divide + add != n:
                    return None
            elif check is not None:
                expected = _expected(check, (data,), ins)
                if expected is not None and expected != n:
                    return None
            return pack(n) + data

        return encode_array

    def encode(outs: Sequence[Any], ins: Sequence[Any]) -> bytes | None:
        data = outs[k]
        if type(data) is not bytes:
            return None
        n = len(data)
        if check is not None:
            expected = _expected(check, outs, ins)
            if expected is not None and expected != n:
                return None
        try:
            return pack(*outs[:k], n) + data
        except _PACK_ERRORS:
            return None

    return _single(encode) if single else encode


def _single(encode: SimpleEncode) -> SimpleEncode:
    def one(value: Any, ins: Sequence[Any]) -> bytes | None:
        return encode((value,), ins)

    return one


def _encode_scalar(seg: _Segment) -> SimpleEncode:
    pack = seg.structs[0].pack

    def encode(value: Any, ins: Sequence[Any]) -> bytes | None:
        try:
            return pack(value)
        except _PACK_ERRORS:
            return None

    return encode


def _encode_general(segments: list[_Segment]) -> SimpleEncode:
    plan = tuple((s.structs, s.sizes, s.scalars, s.array, s.check) for s in segments)

    def encode(outs: Sequence[Any], ins: Sequence[Any]) -> bytes | None:
        parts: list[bytes] = []
        pos = 0
        try:
            for structs, sizes, scalars, array, check in plan:
                phase = pos & 7
                values = [outs[i] for i in scalars]
                if array is None:
                    parts.append(structs[phase].pack(*values))
                    pos += sizes[phase]
                    continue
                data = outs[array]
                if type(data) is not bytes:
                    return None
                n = len(data)
                expected = _expected(check, outs, ins)
                if expected is not None and expected != n:
                    return None
                values.append(n)
                parts.append(structs[phase].pack(*values))
                parts.append(data)
                pos += sizes[phase] + n
        except _PACK_ERRORS:
            return None
        return b"".join(parts)

    return encode
