"""Arrays and strings: fixed, conformant, varying, conformant-varying, multidimensional.

Purpose: compile the array descriptors of ``_types`` into nodes, with fast paths per element
family: octets (``bytes``), ``wchar_t`` (``str`` via one UTF-16 codec call), plain integers (one
``struct`` call for the whole array), flat structs (``iter_unpack`` over a memoryview), and a
general per-element loop for the rest.

Rules [C706 §14.3.3-14.3.5], [MS-RPCE §3.1.1.5.3]:
- Counts are u32s aligned to 4; elements then align to their own type. Conformant arrays send
  ``max_count``; varying ones ``offset, actual_count``; conformant-varying both, max first.
- No elements, no alignment gap: a gap precedes a primitive [C706 §14.2.2], so an empty array
  of hypers after its count adds nothing (Samba pidl and impacket agree; Wine's
  NdrConformantArrayMarshall aligns unconditionally).
- Multidimensional conformant arrays send every max_count first, then (varying) every
  (offset, actual_count) pair, then the elements in row-major order.
- Decoding is strict: ``actual_count > max_count`` or ``offset + actual_count > max_count`` is
  RPC_S_INVALID_BOUND; a correlation mismatch, or a nonzero offset without ``first_is``, is
  RPC_X_BAD_STUB_DATA; a string without its NUL terminator is RPC_S_INVALID_BOUND (as Wine's
  ``validate_string_data``). Every count is checked against the octets left before anything is
  allocated, so a max_count of 0xFFFFFFFF in a 4-octet stub fails at once.
- On encoding, a value whose length disagrees with its ``size_is``/``length_is`` field, or does
  not fit a fixed bound, is RPC_S_INVALID_BOUND.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ...codes import RpcStatus
from ._node import Node, getter_for, layout_format
from ._state import ZEROS, DecodeContext, EncodeContext, Fail, Kit, Slot, corr_getter, octets
from ._types import (
    CHAR,
    ConformantArray,
    ConformantVaryingArray,
    FixedArray,
    Ref,
    String,
    VaryingArray,
    VaryingString,
)

if TYPE_CHECKING:
    from ._compile import Compiler

__all__ = [
    "Block",
    "array",
    "block_for",
    "check_corr",
    "fixed_array",
    "require",
    "string",
    "value_of",
]

_BOUND = RpcStatus.RPC_S_INVALID_BOUND
_BAD = RpcStatus.RPC_X_BAD_STUB_DATA

Prep = Callable[[Any], tuple[int, Any]]
Write = Callable[[bytearray, Any, EncodeContext, Mapping[str, Any]], None]
Read = Callable[[bytes, int, int, DecodeContext, Mapping[str, Any]], tuple[Any, int]]


class Block:
    """How to marshal ``n`` consecutive elements: ``prep(value) -> (n, payload)``,
    ``write(out, payload, ...)``, ``read(buf, pos, n, ...) -> (value, pos)``."""

    __slots__ = ("prep", "read", "write")

    def __init__(self, prep: Prep, write: Write, read: Read) -> None:
        self.prep, self.write, self.read = prep, write, read


def _short(pos: int, need: int, buf: bytes) -> Fail:
    return Fail(f"array needs {need} octets, {len(buf) - pos} left", _BAD, pos)


def block_for(element: Node, kit: Kit) -> Block:
    """The fastest marshalling strategy for runs of ``element``."""
    if element.wire == "bytes":
        return _bytes_block()
    if element.wire == "wstr":
        return _wstr_block(kit)
    flat = element.flat
    if flat is not None and flat.identity and len(flat.layout) == 1:
        return _prim_block(flat.layout[0][1], flat.layout[0][0], kit)
    if flat is not None and flat.size > 0:
        return _flat_block(element, kit)
    if element.min_size <= 0:
        raise TypeError("array elements must have a nonzero wire size")
    return _general_block(element)


def _bytes_block() -> Block:
    def prep(value: Any) -> tuple[int, Any]:
        data = value if type(value) is bytes else octets(value)
        return len(data), data

    def write(out: bytearray, data: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        out += data

    def read(
        buf: bytes, pos: int, n: int, ctx: DecodeContext, scope: Mapping[str, Any]
    ) -> tuple[Any, int]:
        end = pos + n
        if end > len(buf):
            raise _short(pos, n, buf)
        return buf[pos:end], end

    return Block(prep, write, read)


def _wstr_block(kit: Kit) -> Block:
    codec = kit.utf16

    def prep(value: Any) -> tuple[int, Any]:
        # surrogatepass: a lone surrogate is a valid wchar_t and must survive the round trip.
        data = value.encode(codec, "surrogatepass")
        return len(data) >> 1, data

    def write(out: bytearray, data: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        if data:
            out += ZEROS[len(out) & 1]
            out += data

    def read(
        buf: bytes, pos: int, n: int, ctx: DecodeContext, scope: Mapping[str, Any]
    ) -> tuple[Any, int]:
        if not n:
            return "", pos
        pos += pos & 1
        end = pos + 2 * n
        if end > len(buf):
            raise _short(pos, 2 * n, buf)
        return buf[pos:end].decode(codec, "surrogatepass"), end

    return Block(prep, write, read)


def _prim_block(code: str, size: int, kit: Kit) -> Block:
    prefix = kit.prefix
    mask = size - 1

    def prep(value: Any) -> tuple[int, Any]:
        return len(value), value

    def write(out: bytearray, items: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        if items:
            out += ZEROS[-len(out) & mask]
            out += struct.pack(f"{prefix}{len(items)}{code}", *items)

    def read(
        buf: bytes, pos: int, n: int, ctx: DecodeContext, scope: Mapping[str, Any]
    ) -> tuple[Any, int]:
        if not n:
            return [], pos
        pos += -pos & mask
        if pos + n * size > len(buf):
            raise _short(pos, n * size, buf)
        return list(struct.unpack_from(f"{prefix}{n}{code}", buf, pos)), pos + n * size

    return Block(prep, write, read)


def _flat_block(element: Node, kit: Kit) -> Block:
    flat = element.flat
    assert flat is not None
    mask = element.align - 1
    fmt, size = layout_format(flat.layout, 0)
    # Elements are aligned to their own alignment; NDR has no trailing pad after the last one.
    stride = size + (-size & mask)
    last = struct.Struct(kit.prefix + fmt)
    each = struct.Struct(f"{kit.prefix}{fmt}{stride - size}x") if stride > size else last
    trail = stride - size
    names, split, build = flat.names, flat.split, flat.build
    pack = each.pack

    def prep(value: Any) -> tuple[int, Any]:
        return len(value), value

    if names is not None:
        getter = getter_for(names)

        def packed(items: Any) -> bytes:
            return b"".join([pack(*getter(item)) for item in items])

    else:

        def packed(items: Any) -> bytes:
            parts = []
            for item in items:
                acc: list[Any] = []
                split(item, acc)
                parts.append(pack(*acc))
            return b"".join(parts)

    def write(out: bytearray, items: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        if items:
            out += ZEROS[-len(out) & mask]
            out += packed(items)
            if trail:
                del out[-trail:]

    def read(
        buf: bytes, pos: int, n: int, ctx: DecodeContext, scope: Mapping[str, Any]
    ) -> tuple[Any, int]:
        if not n:
            return [], pos
        pos += -pos & mask
        body = (n - 1) * stride
        if pos + body + size > len(buf):
            raise _short(pos, body + size, buf)
        rows = list(each.iter_unpack(memoryview(buf)[pos : pos + body]))
        rows.append(last.unpack_from(buf, pos + body))
        if names is not None:
            # map/zip in C: the rows and ``names`` have the same length by construction.
            return list(map(dict, map(zip, repeat(names), rows))), pos + body + size
        return [build(row, 0)[0] for row in rows], pos + body + size

    return Block(prep, write, read)


def _general_block(element: Node) -> Block:
    enc, dec, min_size, defers = element.enc, element.dec, element.min_size, element.defers

    def prep(value: Any) -> tuple[int, Any]:
        return len(value), value

    def write(out: bytearray, items: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        for item in items:
            enc(out, item, ctx, scope)

    def read(
        buf: bytes, pos: int, n: int, ctx: DecodeContext, scope: Mapping[str, Any]
    ) -> tuple[Any, int]:
        if n * min_size > len(buf) - pos:
            raise _short(pos, n * min_size, buf)
        result: list[Any] = []
        append = result.append
        for index in range(n):
            item, pos = dec(buf, pos, ctx, scope)
            append(item)
            if defers and type(item) is Slot:
                item.container, item.key = result, index
        return result, pos

    return Block(prep, write, read)


# -- fixed arrays of non-flat elements ---------------------------------------------------------


def fixed_array(comp: Compiler, desc: FixedArray, element: Node) -> Node:
    """``T x[count]`` where T has pointers, unions or strings (no header on the wire)."""
    block = block_for(element, comp.kit) if desc.count else _general_block(element)
    prep, write, read, count = block.prep, block.write, block.read, desc.count

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        n, payload = prep(value)
        if n != count:
            raise Fail(f"fixed array needs {count} elements, got {n}", _BOUND, len(out))
        write(out, payload, ctx, scope)

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        return read(buf, pos, count, ctx, scope)

    return Node(
        enc, dec, align=element.align, salign=element.salign, min_size=count * element.min_size
    )


# -- one-dimensional conformant / varying arrays -------------------------------------------------

Getter = Callable[[Mapping[str, Any]], int | None] | None


def check_corr(get: Getter, scope: Mapping[str, Any], wire: int, what: str, pos: int) -> None:
    # Correlation validation [MS-RPCE §3.1.1.5.3.1]: equal, or not available to check.
    if get is not None:
        expected = get(scope)
        if expected is not None and expected != wire:
            raise Fail(f"{what} is {wire} but its correlated field says {expected}", _BAD, pos)


def _check_variance(maximum: int, offset: int, actual: int, first: Getter, pos: int) -> None:
    if actual > maximum or offset + actual > maximum:
        raise Fail(f"offset {offset} + actual_count {actual} > max_count {maximum}", _BOUND, pos)
    if first is None and offset:
        # Without first_is the offset must be 0 [MS-RPCE §3.1.1.5.3.2.1.7].
        raise Fail(f"nonzero offset {offset} without first_is", _BAD, pos)


def value_of(get: Getter, scope: Mapping[str, Any]) -> int | None:
    """Encoding side: the correlated value, or None when there is none to use."""
    return None if get is None else get(scope)


def require(get: Getter, scope: Mapping[str, Any], actual: int, what: str, pos: int) -> None:
    """Encoding side: a correlated count must agree with the data it describes."""
    expected = value_of(get, scope)
    if expected is not None and expected != actual:
        raise Fail(f"{what} field says {expected} but the value has {actual}", _BOUND, pos)


def array(comp: Compiler, desc: ConformantArray | ConformantVaryingArray | VaryingArray) -> Node:
    if isinstance(desc, VaryingArray):
        return _varying(comp, desc)
    sizes: list[Ref | None] = []
    lengths: list[Ref | None] = []
    inner: Any = desc
    kind = type(desc)
    while isinstance(inner, kind):
        sizes.append(inner.size_is)
        lengths.append(getattr(inner, "length_is", None))
        inner = inner.element
    element = comp.node(inner, embedded=True)
    block = block_for(element, comp.kit)
    if len(sizes) > 1:
        from ._multidim import multidim

        return multidim(comp.kit, element, block, sizes, lengths, kind is ConformantVaryingArray)
    if isinstance(desc, ConformantArray):
        return _conformant(comp.kit, element, block, desc)
    return _conformant_varying(comp.kit, element, block, desc)


def _conformant(kit: Kit, element: Node, block: Block, desc: ConformantArray) -> Node:
    prep, write, read = block.prep, block.write, block.read
    size_get = corr_getter(desc.size_is)
    u32 = kit.u32

    def conf(value: Any, scope: Mapping[str, Any]) -> list[int]:
        n, _ = prep(value)
        require(size_get, scope, n, "size_is", -1)
        return [n]

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        n, payload = prep(value)
        require(size_get, scope, n, "size_is", len(out))
        out += ZEROS[-len(out) & 3]
        out += u32.pack(n)
        write(out, payload, ctx, scope)

    def enc_body(
        out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> None:
        write(out, prep(value)[1], ctx, scope)

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        (n,) = u32.unpack_from(buf, pos)
        check_corr(size_get, scope, n, "max_count", pos)
        return read(buf, pos + 4, n, ctx, scope)

    def dec_body(
        buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> tuple[Any, int]:
        check_corr(size_get, scope, maxes[0], "max_count", pos)
        return read(buf, pos, maxes[0], ctx, scope)

    node = Node(enc, dec, align=4, salign=element.salign, min_size=4)
    node.nconf, node.conf, node.enc_body, node.dec_body = 1, conf, enc_body, dec_body
    return node


def _conformant_varying(
    kit: Kit, element: Node, block: Block, desc: ConformantVaryingArray
) -> Node:
    prep, write, read = block.prep, block.write, block.read
    size_get, length_get = corr_getter(desc.size_is), corr_getter(desc.length_is)
    first_get = corr_getter(desc.first_is)
    u32x2, u32x3 = kit.u32x2, kit.u32x3

    def header(n: int, scope: Mapping[str, Any], pos: int) -> tuple[int, int]:
        require(length_get, scope, n, "length_is", pos)
        maximum = value_of(size_get, scope)
        offset = value_of(first_get, scope) or 0
        if maximum is None:
            maximum = offset + n
        if offset + n > maximum:
            raise Fail(f"offset {offset} + {n} elements > max_count {maximum}", _BOUND, pos)
        return maximum, offset

    def conf(value: Any, scope: Mapping[str, Any]) -> list[int]:
        return [header(prep(value)[0], scope, -1)[0]]

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        n, payload = prep(value)
        maximum, offset = header(n, scope, len(out))
        out += ZEROS[-len(out) & 3]
        out += u32x3.pack(maximum, offset, n)
        write(out, payload, ctx, scope)

    def enc_body(
        out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> None:
        n, payload = prep(value)
        offset = header(n, scope, len(out))[1]
        out += ZEROS[-len(out) & 3]
        out += u32x2.pack(offset, n)
        write(out, payload, ctx, scope)

    def variance(
        buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any], maximum: int
    ) -> tuple[Any, int]:
        pos += -pos & 3
        offset, actual = u32x2.unpack_from(buf, pos)
        _check_variance(maximum, offset, actual, first_get, pos)
        check_corr(length_get, scope, actual, "actual_count", pos)
        check_corr(first_get, scope, offset, "offset", pos)
        return read(buf, pos + 8, actual, ctx, scope)

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        (maximum,) = kit.u32.unpack_from(buf, pos)
        check_corr(size_get, scope, maximum, "max_count", pos)
        return variance(buf, pos + 4, ctx, scope, maximum)

    def dec_body(
        buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> tuple[Any, int]:
        check_corr(size_get, scope, maxes[0], "max_count", pos)
        return variance(buf, pos, ctx, scope, maxes[0])

    node = Node(enc, dec, align=4, salign=element.salign, min_size=12)
    node.nconf, node.conf, node.enc_body, node.dec_body = 1, conf, enc_body, dec_body
    return node


def _varying(comp: Compiler, desc: VaryingArray) -> Node:
    element = comp.node(desc.element, embedded=True)
    block = block_for(element, comp.kit)
    prep, write, read, count = block.prep, block.write, block.read, desc.count
    length_get, first_get = corr_getter(desc.length_is), corr_getter(desc.first_is)
    u32x2 = comp.kit.u32x2

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        n, payload = prep(value)
        require(length_get, scope, n, "length_is", len(out))
        offset = value_of(first_get, scope) or 0
        if offset + n > count:
            raise Fail(f"offset {offset} + {n} elements > array size {count}", _BOUND, len(out))
        out += ZEROS[-len(out) & 3]
        out += u32x2.pack(offset, n)
        write(out, payload, ctx, scope)

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        offset, actual = u32x2.unpack_from(buf, pos)
        _check_variance(count, offset, actual, first_get, pos)
        check_corr(length_get, scope, actual, "actual_count", pos)
        check_corr(first_get, scope, offset, "offset", pos)
        return read(buf, pos + 8, actual, ctx, scope)

    return Node(enc, dec, align=4, salign=element.salign, min_size=8)


# -- strings [C706 §14.3.4], [MS-RPCE §2.2.4.1.1] ---------------------------------------------


def string(comp: Compiler, desc: String | VaryingString) -> Node:
    kit = comp.kit
    wide = desc.char != CHAR
    csize = 2 if wide else 1
    codec, errors = (kit.utf16, "surrogatepass") if wide else ("latin-1", "strict")
    terminator = ZEROS[csize]
    u32, u32x2, u32x3 = kit.u32, kit.u32x2, kit.u32x3

    def prep(value: Any) -> tuple[int, bytes]:
        data = value.encode(codec, errors) + terminator
        return len(data) // csize, data

    def body(
        buf: bytes, pos: int, maximum: int, size_get: Getter, scope: Mapping[str, Any]
    ) -> tuple[str, int]:
        pos += -pos & 3
        offset, actual = u32x2.unpack_from(buf, pos)
        pos += 8
        _check_variance(maximum, offset, actual, None, pos - 8)
        check_corr(size_get, scope, maximum, "max_count", pos - 8)
        end = pos + actual * csize
        if end > len(buf):
            raise _short(pos, actual * csize, buf)
        if not actual or buf[end - csize : end] != terminator:
            raise Fail("string is not NUL-terminated", _BOUND, pos)
        return buf[pos : end - csize].decode(codec, errors), end

    if isinstance(desc, VaryingString):
        count = desc.count

        def enc_varying(
            out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]
        ) -> None:
            n, data = prep(value)
            if n > count:
                raise Fail(f"string of {n} characters (with NUL) > {count}", _BOUND, len(out))
            out += ZEROS[-len(out) & 3]
            out += u32x2.pack(0, n)
            out += data

        def dec_varying(
            buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
        ) -> tuple[Any, int]:
            return body(buf, pos, count, None, scope)

        return Node(enc_varying, dec_varying, align=4, salign=csize, min_size=8 + csize)

    size_get = corr_getter(desc.size_is)

    def maximum_for(n: int, scope: Mapping[str, Any], pos: int) -> int:
        maximum = value_of(size_get, scope)
        if maximum is None:
            return n
        if n > maximum:
            raise Fail(f"string of {n} characters (with NUL) > size_is {maximum}", _BOUND, pos)
        return maximum

    def conf(value: Any, scope: Mapping[str, Any]) -> list[int]:
        return [maximum_for(prep(value)[0], scope, -1)]

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        n, data = prep(value)
        maximum = maximum_for(n, scope, len(out))
        out += ZEROS[-len(out) & 3]
        out += u32x3.pack(maximum, 0, n)
        out += data

    def enc_body(
        out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> None:
        n, data = prep(value)
        out += ZEROS[-len(out) & 3]
        out += u32x2.pack(0, n)
        out += data

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        (maximum,) = u32.unpack_from(buf, pos)
        return body(buf, pos + 4, maximum, size_get, scope)

    def dec_body(
        buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> tuple[Any, int]:
        return body(buf, pos, maxes[0], size_get, scope)

    node = Node(enc, dec, align=4, salign=csize, min_size=12 + csize)
    node.nconf, node.conf, node.enc_body, node.dec_body = 1, conf, enc_body, dec_body
    return node
