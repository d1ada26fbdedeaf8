"""Descriptor -> closures compiler: primitives, flat types and structures.

Purpose: walk a descriptor tree once per byte order and produce a :class:`~._node.Node` whose
closures marshal without looking at the descriptor again (no per-value ``isinstance`` dispatch).
Arrays, strings, pointers, unions and pipes live in sibling modules and call back into
:meth:`Compiler.node`.

Rules:
- Compilation is memoised by descriptor identity, which also closes the cycles that
  :class:`~._types.Lazy` creates (a node placeholder is registered before its target compiles).
- Members of a struct, elements of an array and arms of a union are compiled as *embedded*;
  parameters, pointer referents and standalone codecs as *top-level*. Only pointers behave
  differently in the two positions [C706 §14.3.10-14.3.12].
- Consecutive flat members of a struct are packed by one Struct chosen by the stream phase
  (see ``_node.phase_structs``); a struct made only of plain integer members decodes with a
  single ``unpack_from`` and ``dict(zip(...))``.
- A conformant struct writes the max_count(s) of its trailing conformant member before its own
  alignment gap and members [C706 §14.3.7.1-2]; when nested as the last member of another
  struct, the outer one hoists them instead (``enc_body``/``dec_body``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from ...codes import RpcStatus
from . import _arrays, _pipe, _pointers
from ._node import Flat, LayoutItem, Node, getter_for, phase_structs
from ._state import (
    ZEROS,
    DecodeContext,
    EncodeContext,
    Fail,
    Kit,
    Slot,
    octets,
)
from ._types import (
    BYTE,
    CHAR,
    USMALL,
    WCHAR,
    ConformantArray,
    ConformantVaryingArray,
    ContextHandle,
    ContextHandleValue,
    EncapsulatedUnion,
    Enum16,
    Enum32,
    FixedArray,
    Guid,
    Lazy,
    NdrType,
    Pipe,
    Pointer,
    Primitive,
    Range,
    String,
    Struct,
    Union,
    VaryingArray,
    VaryingString,
    Void,
)

__all__ = ["Compiler"]

_ENUM16_MAX = 0x7FFF  # enum values are 0..32767 [MS-RPCE §2.2.4.11]
_OCTETS = (BYTE, USMALL, CHAR)
_ENUM_RANGE = RpcStatus.RPC_X_ENUM_VALUE_OUT_OF_RANGE
_BOUND = RpcStatus.RPC_S_INVALID_BOUND


class Compiler:
    """Compiles descriptors for one byte order; reuse one per byte order to share nodes."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self._memo: dict[tuple[int, bool], tuple[NdrType, Node]] = {}
        self._pinned: list[NdrType] = []

    def pin(self, desc: NdrType) -> int:
        """``id(desc)``, kept valid for as long as this compiler's nodes live."""
        self._pinned.append(desc)
        return id(desc)

    def node(self, desc: NdrType, *, embedded: bool = False) -> Node:
        """The compiled node for ``desc`` (``embedded``: inside a struct, array or union)."""
        key = (id(desc), embedded and isinstance(desc, Pointer))
        hit = self._memo.get(key)
        if hit is not None:
            return hit[1]
        if isinstance(desc, Lazy):
            compiled = self._lazy(desc, key)
        else:
            compiled = self._compile(desc, embedded)
        # Keeping the descriptor in the memo pins its id() for the compiler's lifetime.
        self._memo[key] = (desc, compiled)
        return compiled

    def _compile(self, desc: NdrType, embedded: bool) -> Node:
        kit = self.kit
        if isinstance(desc, Primitive | Enum16 | Enum32 | Guid | ContextHandle | Range):
            # Arrays of these elements map to bytes / str instead of lists (see _arrays).
            wire = "bytes" if desc in _OCTETS else "wstr" if desc == WCHAR else ""
            return flat_node(scalar_flat(desc, kit), kit, wire)
        if isinstance(desc, Void):
            return Node(_enc_void, _dec_void, align=1, min_size=0)
        if isinstance(desc, Struct):
            return self._struct(desc)
        if isinstance(desc, FixedArray):
            element = self.node(desc.element, embedded=True)
            if element.flat is not None:
                return flat_node(fixed_array_flat(element, desc.count, kit), kit)
            return _arrays.fixed_array(self, desc, element)
        if isinstance(desc, ConformantArray | ConformantVaryingArray | VaryingArray):
            return _arrays.array(self, desc)
        if isinstance(desc, String | VaryingString):
            return _arrays.string(self, desc)
        if isinstance(desc, Pointer):
            return _pointers.pointer(self, desc, embedded)
        if isinstance(desc, Union | EncapsulatedUnion):
            return _pointers.union(self, desc)
        if isinstance(desc, Pipe):
            return _pipe.pipe_node(self, desc)
        raise TypeError(f"not an NDR descriptor: {desc!r}")

    def _lazy(self, desc: Lazy, key: tuple[int, bool]) -> Node:
        # Nodes compiled inside the cycle capture these trampolines before the target exists,
        # so they look the target up at call time.
        cell: list[Node] = []

        def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
            cell[0].enc(out, value, ctx, scope)

        def dec(
            buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
        ) -> tuple[Any, int]:
            return cell[0].dec(buf, pos, ctx, scope)

        holder = Node(enc, dec, align=1, min_size=1, defers=True)
        self._memo[key] = (desc, holder)
        target = self.node(desc.resolve())
        cell.append(target)
        holder.align, holder.salign, holder.min_size = target.align, target.salign, target.min_size
        return holder

    def _struct(self, desc: Struct) -> Node:
        fields = [(name, self.node(t, embedded=True)) for name, t in desc.fields]
        if all(n.flat is not None for _, n in fields):
            return flat_node(struct_flat(fields), self.kit)
        return struct_node(fields, self.kit)


def _enc_void(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
    return None


def _dec_void(
    buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
) -> tuple[Any, int]:
    return None, pos


# -- flat types --------------------------------------------------------------------------------


def _append(value: Any, acc: list[Any]) -> None:
    acc.append(value)


def _take(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
    return items[i], i + 1


def scalar_flat(desc: NdrType, kit: Kit) -> Flat:
    """Flat description of a primitive-like type."""
    if isinstance(desc, Primitive):
        item: LayoutItem = (desc.size, desc.fmt, desc.size, 1)
        if desc == WCHAR:

            def split_wchar(value: Any, acc: list[Any]) -> None:
                acc.append(ord(value))

            def build_wchar(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
                return chr(items[i]), i + 1

            return Flat((item,), split_wchar, build_wchar)
        return Flat((item,), _append, _take, identity=True)
    if isinstance(desc, Enum16):

        def split_enum(value: Any, acc: list[Any]) -> None:
            if not 0 <= value <= _ENUM16_MAX:
                raise Fail(f"enum value {value} outside 0..32767", _ENUM_RANGE)
            acc.append(value)

        def build_enum(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
            value = items[i]
            if value > _ENUM16_MAX:
                raise Fail(f"enum value {value} outside 0..32767", _ENUM_RANGE)
            return value, i + 1

        return Flat(((2, "H", 2, 1),), split_enum, build_enum)
    if isinstance(desc, Enum32):
        return Flat(((4, "i", 4, 1),), _append, _take, identity=True)
    if isinstance(desc, Range):
        low, high, name = desc.low, desc.high, desc.base.name

        def split_range(value: Any, acc: list[Any]) -> None:
            if not low <= value <= high:
                raise Fail(f"{name} value {value} outside [range({low}, {high})]")
            acc.append(value)

        def build_range(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
            value = items[i]
            if not low <= value <= high:
                raise Fail(f"{name} value {value} outside [range({low}, {high})]")
            return value, i + 1

        size = desc.base.size
        return Flat(((size, desc.base.fmt, size, 1),), split_range, build_range)
    if isinstance(desc, Guid):
        uuid_bytes, uuid_from = kit.uuid_bytes, kit.uuid_from

        def split_guid(value: Any, acc: list[Any]) -> None:
            acc.append(uuid_bytes(value))

        def build_guid(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
            return uuid_from(items[i]), i + 1

        return Flat(((4, "", 0, 0), (1, "16s", 16, 1)), split_guid, build_guid)
    if isinstance(desc, ContextHandle):
        uuid_bytes, uuid_from = kit.uuid_bytes, kit.uuid_from

        def split_handle(value: Any, acc: list[Any]) -> None:
            acc.append(value.attributes)
            acc.append(uuid_bytes(value.uuid))

        def build_handle(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
            return ContextHandleValue(items[i], uuid_from(items[i + 1])), i + 2

        return Flat(((4, "I", 4, 1), (1, "16s", 16, 1)), split_handle, build_handle)
    raise TypeError(f"not a scalar descriptor: {desc!r}")


def fixed_array_flat(element: Node, count: int, kit: Kit) -> Flat:
    """Flat description of ``T x[count]`` for a flat ``T``."""
    flat = element.flat
    assert flat is not None
    if element.wire == "bytes":

        def split_bytes(value: Any, acc: list[Any]) -> None:
            data = value if type(value) is bytes else octets(value)
            if len(data) != count:
                raise Fail(f"fixed array needs {count} octets, got {len(data)}", _BOUND)
            acc.append(data)

        return Flat(((1, f"{count}s", count, 1),), split_bytes, _take)
    if element.wire == "wstr":
        codec = kit.utf16

        def split_wstr(value: Any, acc: list[Any]) -> None:
            data = value.encode(codec, "surrogatepass")
            if len(data) != 2 * count:
                raise Fail(f"fixed array needs {count} UTF-16 units, got {len(data) // 2}", _BOUND)
            acc.append(data)

        def build_wstr(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
            return items[i].decode(codec, "surrogatepass"), i + 1

        return Flat(((2, f"{2 * count}s", 2 * count, 1),), split_wstr, build_wstr)
    if flat.identity and len(flat.layout) == 1:
        size = flat.layout[0][0]
        code = flat.layout[0][1]
        layout: tuple[LayoutItem, ...] = ((size, f"{count}{code}", size * count, count),)

        def split_list(value: Any, acc: list[Any]) -> None:
            if len(value) != count:
                raise Fail(f"fixed array needs {count} elements, got {len(value)}", _BOUND)
            acc.extend(value)

        def build_list(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
            return list(items[i : i + count]), i + count

        return Flat(layout if count else (), split_list, build_list)
    esplit, ebuild = flat.split, flat.build

    def split_each(value: Any, acc: list[Any]) -> None:
        if len(value) != count:
            raise Fail(f"fixed array needs {count} elements, got {len(value)}", _BOUND)
        for item in value:
            esplit(item, acc)

    def build_each(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
        result = []
        for _ in range(count):
            item, i = ebuild(items, i)
            result.append(item)
        return result, i

    return Flat(flat.layout * count, split_each, build_each)


def struct_flat(fields: list[tuple[str, Node]]) -> Flat:
    """Flat description of a struct whose members are all flat."""
    align = max(n.salign for _, n in fields)
    layout: tuple[LayoutItem, ...] = ((align, "", 0, 0),)
    plan: list[tuple[str, Flat]] = []
    for name, n in fields:
        assert n.flat is not None
        layout += n.flat.layout
        plan.append((name, n.flat))

    def split(value: Any, acc: list[Any]) -> None:
        for name, flat in plan:
            flat.split(value[name], acc)

    def build(items: tuple[Any, ...], i: int) -> tuple[Any, int]:
        result = {}
        for name, flat in plan:
            result[name], i = flat.build(items, i)
        return result, i

    flat = Flat(layout, split, build)
    if all(f.identity for _, f in plan):
        flat.names = tuple(name for name, _ in plan)
    return flat


def flat_node(flat: Flat, kit: Kit, wire: str = "") -> Node:
    """A node that packs/unpacks ``flat`` with one Struct per stream phase."""
    structs, sizes = phase_structs(flat.layout, kit.prefix)
    align = flat.layout[0][0] if flat.layout else 1
    names = flat.names
    enc: Callable[[bytearray, Any, EncodeContext, Mapping[str, Any]], None]
    dec: Callable[[bytes, int, DecodeContext, Mapping[str, Any]], tuple[Any, int]]
    if flat.identity:

        def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
            out += structs[len(out) & 7].pack(value)

        def dec(
            buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
        ) -> tuple[Any, int]:
            phase = pos & 7
            return structs[phase].unpack_from(buf, pos)[0], pos + sizes[phase]

    elif names is not None:
        getter = getter_for(names)

        def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
            out += structs[len(out) & 7].pack(*getter(value))

        def dec(
            buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
        ) -> tuple[Any, int]:
            phase = pos & 7
            items = structs[phase].unpack_from(buf, pos)
            return dict(zip(names, items)), pos + sizes[phase]  # noqa: B905 - same length

    else:
        split, build = flat.split, flat.build

        def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
            acc: list[Any] = []
            split(value, acc)
            out += structs[len(out) & 7].pack(*acc)

        def dec(
            buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
        ) -> tuple[Any, int]:
            phase = pos & 7
            value, _ = build(structs[phase].unpack_from(buf, pos), 0)
            return value, pos + sizes[phase]

    return Node(enc, dec, align=align, min_size=flat.size, flat=flat, wire=wire)


# -- general structures ------------------------------------------------------------------------

EncStep = Callable[[bytearray, Any, EncodeContext], None]
DecStep = Callable[[bytes, int, DecodeContext, dict[str, Any]], int]


def _run_steps(run: list[tuple[str, Node]], kit: Kit) -> tuple[EncStep, DecStep]:
    """One step for consecutive flat members: a single pack/unpack per phase."""
    layout: tuple[LayoutItem, ...] = ()
    plan: list[tuple[str, Flat]] = []
    for name, n in run:
        assert n.flat is not None
        layout += n.flat.layout
        plan.append((name, n.flat))
    structs, sizes = phase_structs(layout, kit.prefix)
    names = tuple(name for name, _ in plan)
    if all(f.identity for _, f in plan):
        getter = getter_for(names)

        def enc_run(out: bytearray, value: Any, ctx: EncodeContext) -> None:
            out += structs[len(out) & 7].pack(*getter(value))

        def dec_run(buf: bytes, pos: int, ctx: DecodeContext, d: dict[str, Any]) -> int:
            phase = pos & 7
            d.update(zip(names, structs[phase].unpack_from(buf, pos)))  # noqa: B905 - same length
            return pos + sizes[phase]

        return enc_run, dec_run

    def enc_mixed(out: bytearray, value: Any, ctx: EncodeContext) -> None:
        acc: list[Any] = []
        for name, flat in plan:
            flat.split(value[name], acc)
        out += structs[len(out) & 7].pack(*acc)

    def dec_mixed(buf: bytes, pos: int, ctx: DecodeContext, d: dict[str, Any]) -> int:
        phase = pos & 7
        items = structs[phase].unpack_from(buf, pos)
        i = 0
        for name, flat in plan:
            d[name], i = flat.build(items, i)
        return pos + sizes[phase]

    return enc_mixed, dec_mixed


def _field_steps(name: str, n: Node) -> tuple[EncStep, DecStep]:
    fenc, fdec = n.enc, n.dec

    def enc_field(out: bytearray, value: Any, ctx: EncodeContext) -> None:
        fenc(out, value[name], ctx, value)

    if not n.defers:

        def dec_field(buf: bytes, pos: int, ctx: DecodeContext, d: dict[str, Any]) -> int:
            d[name], pos = fdec(buf, pos, ctx, d)
            return pos

        return enc_field, dec_field

    def dec_deferred(buf: bytes, pos: int, ctx: DecodeContext, d: dict[str, Any]) -> int:
        item, pos = fdec(buf, pos, ctx, d)
        d[name] = item
        if type(item) is Slot:
            item.container, item.key = d, name
        return pos

    return enc_field, dec_deferred


def _steps(fields: list[tuple[str, Node]], kit: Kit) -> tuple[list[EncStep], list[DecStep]]:
    enc_steps: list[EncStep] = []
    dec_steps: list[DecStep] = []
    run: list[tuple[str, Node]] = []
    for name, n in [*fields, ("", None)]:
        if n is not None and n.flat is not None:
            run.append((name, n))
            continue
        if run:
            e, d = _run_steps(run, kit)
            enc_steps.append(e)
            dec_steps.append(d)
            run = []
        if n is not None:
            e, d = _field_steps(name, n)
            enc_steps.append(e)
            dec_steps.append(d)
    return enc_steps, dec_steps


def struct_node(fields: list[tuple[str, Node]], kit: Kit) -> Node:
    """A struct with at least one non-flat member (pointers, arrays, unions, strings)."""
    align = max(n.salign for _, n in fields)
    amask = align - 1
    last_name, last = fields[-1]
    body = fields[:-1] if last.nconf else fields
    enc_steps, dec_steps = _steps(body, kit)
    min_size = sum(n.min_size for _, n in fields)

    def enc_members(out: bytearray, value: Any, ctx: EncodeContext) -> None:
        out += ZEROS[-len(out) & amask]
        for step in enc_steps:
            step(out, value, ctx)

    def dec_members(buf: bytes, pos: int, ctx: DecodeContext) -> tuple[dict[str, Any], int]:
        pos += -pos & amask
        d: dict[str, Any] = {}
        for step in dec_steps:
            pos = step(buf, pos, ctx, d)
        return d, pos

    if not last.nconf:

        def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
            enc_members(out, value, ctx)

        def dec(
            buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
        ) -> tuple[Any, int]:
            return dec_members(buf, pos, ctx)

        return Node(enc, dec, align=align, min_size=min_size)

    # Conformant struct [C706 §14.3.7.1-2]: the trailing member's max_counts go first.
    nconf = last.nconf
    counts = struct.Struct(f"{kit.prefix}{nconf}I")
    last_conf, last_enc_body, last_dec_body = last.conf, last.enc_body, last.dec_body
    assert last_conf is not None and last_enc_body is not None and last_dec_body is not None

    def conf(value: Any, scope: Mapping[str, Any]) -> list[int]:
        return last_conf(value[last_name], value)

    def enc_body(
        out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> None:
        enc_members(out, value, ctx)
        last_enc_body(out, value[last_name], ctx, value, maxes)

    def enc_conformant(
        out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]
    ) -> None:
        maxes = last_conf(value[last_name], value)
        out += ZEROS[-len(out) & 3]
        out += counts.pack(*maxes)
        enc_body(out, value, ctx, scope, maxes)

    def dec_body(
        buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> tuple[Any, int]:
        d, pos = dec_members(buf, pos, ctx)
        d[last_name], pos = last_dec_body(buf, pos, ctx, d, maxes)
        return d, pos

    def dec_conformant(
        buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]
    ) -> tuple[Any, int]:
        pos += -pos & 3
        maxes = list(counts.unpack_from(buf, pos))
        return dec_body(buf, pos + 4 * nconf, ctx, scope, maxes)

    node = Node(enc_conformant, dec_conformant, align=4, salign=align, min_size=min_size)
    node.nconf, node.conf, node.enc_body, node.dec_body = nconf, conf, enc_body, dec_body
    return node
