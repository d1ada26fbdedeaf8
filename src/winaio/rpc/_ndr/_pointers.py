"""Pointers (ref, unique, full) and unions (non-encapsulated and encapsulated).

Purpose: the two constructs whose representation depends on where they sit, compiled into
nodes. The deferral machinery itself is in ``_state``.

Rules:
- Top-level [ref] pointers (parameters, and pointers that are themselves a referent) have no
  wire form: the referent is marshalled in place [C706 §14.3.10-14.3.12]. NULL is
  RPC_X_NULL_REF_POINTER (1780).
- [unique]/[ptr] pointers are a u32 referent id (0 = NULL, any other value accepted) aligned to
  4. A top-level one is followed immediately by its referent; an embedded one (in a struct,
  array or union) queues the referent on the current construct [C706 §14.3.12.3].
- Embedded [ref] pointers carry a nonzero placeholder id; its value is ignored on decode (as
  Samba's ``ndr_pull_ref_ptr``): a ref pointer always has a referent.
- Full pointers alias by Python identity of the pointee when encoding (same object -> same id,
  pointee once) and by referent id when decoding (same id -> same object) [C706 §14.3.10].
  Encoded ids are Windows-style 0x00020000 + 4k unless the caller supplies its own.
- Unions: the discriminant is aligned to its own type (Windows does not pad it to the arms,
  impacket's note in ndr.py NDRUNION.getAlignment), then the arm: with ``ms_union`` aligned to the
  largest arm [MS-RPCE §2.2.4.5], otherwise to its own type. Encapsulated unions align the
  whole to max(discriminant, arms) first [C706 §14.3.8].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...codes import RpcStatus
from ._arrays import check_corr, value_of
from ._node import Node
from ._state import (
    ZEROS,
    DecodeContext,
    EncodeContext,
    Fail,
    Slot,
    corr_getter,
    resolve,
)
from ._types import EncapsulatedUnion, Lazy, NdrType, Pointer, Union, Void

if TYPE_CHECKING:
    from ._compile import Compiler

__all__ = ["pointer", "union"]

_NULL_REF = RpcStatus.RPC_X_NULL_REF_POINTER
_BAD = RpcStatus.RPC_X_BAD_STUB_DATA
_NULL_ID = bytes(4)


def pointer(comp: Compiler, desc: Pointer, embedded: bool) -> Node:
    # The referent is a construct of its own: compiled top-level even for embedded pointers.
    target = comp.node(desc.target)
    # Full pointers alias per referent type; a recursive type may be compiled more than once
    # (and reached through Lazy), so the type is identified by its resolved descriptor.
    resolved = desc.target
    while isinstance(resolved, Lazy):
        resolved = resolved.resolve()
    type_key = comp.pin(resolved)
    # ``None`` for a [ref] pointer to a pointer is the inner pointer's NULL, not a NULL [ref].
    nullable = desc.kind != "ref" or isinstance(resolved, Pointer)
    if embedded:
        return _embedded(comp, target, desc.kind, type_key, nullable)
    if desc.kind == "ref":
        return _top_ref(target, nullable)
    if desc.kind == "unique":
        return _top_unique(comp, target)
    return _top_full(comp, target, type_key)


def _top_ref(target: Node, nullable: bool) -> Node:
    tenc = target.enc

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        if value is None and not nullable:
            raise Fail("NULL [ref] pointer", _NULL_REF, len(out))
        tenc(out, value, ctx, scope)

    node = Node(
        enc,
        target.dec,
        align=target.align,
        salign=4,
        min_size=target.min_size,
        defers=target.defers,
    )
    return node


def _top_unique(comp: Compiler, target: Node) -> Node:
    tenc, tdec = target.enc, target.dec
    u32 = comp.kit.u32

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        out += ZEROS[-len(out) & 3]
        if value is None:
            out += _NULL_ID
            return
        out += u32.pack(ctx.new_id())
        tenc(out, value, ctx, scope)

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        (rid,) = u32.unpack_from(buf, pos)
        if not rid:
            return None, pos + 4
        return tdec(buf, pos + 4, ctx, scope)

    return Node(enc, dec, align=4, min_size=4, defers=target.defers)


def _top_full(comp: Compiler, target: Node, tid: int) -> Node:
    tenc, tdec = target.enc, target.dec
    u32 = comp.kit.u32

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        out += ZEROS[-len(out) & 3]
        if value is None:
            out += _NULL_ID
            return
        key = (id(value), tid)
        seen = ctx.full.get(key)
        if seen is not None:
            out += u32.pack(seen[0])
            return
        rid = ctx.new_id()
        # Registered before the referent so that a cycle back to it becomes an alias.
        ctx.full[key] = (rid, value)
        out += u32.pack(rid)
        tenc(out, value, ctx, scope)

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        (rid,) = u32.unpack_from(buf, pos)
        pos += 4
        if not rid:
            return None, pos
        key = rid, tid
        entry = ctx.full.get(key)
        if entry is not None:
            return _alias(entry), pos
        entry = ctx.full[key] = Slot(None, None)
        value, pos = tdec(buf, pos, ctx, scope)
        if type(value) is Slot:
            value.parent = entry
            return entry, pos
        resolve(entry, value)
        return value, pos

    return Node(enc, dec, align=4, min_size=4, defers=True)


def _alias(entry: Slot) -> Any:
    """The value of a full pointer whose referent id was seen before."""
    if entry.done:
        return entry.value
    alias = Slot(None, None)
    entry.aliases.append(alias)
    return alias


def _embedded(comp: Compiler, target: Node, kind: str, tid: int, nullable: bool) -> Node:
    tenc, tdec = target.enc, target.dec
    u32 = comp.kit.u32

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        out += ZEROS[-len(out) & 3]
        if value is None and kind != "ref":
            out += _NULL_ID
            return
        if value is None and not nullable:
            raise Fail("NULL embedded [ref] pointer", _NULL_REF, len(out))
        if kind == "full":
            key = (id(value), tid)
            seen = ctx.full.get(key)
            if seen is not None:
                out += u32.pack(seen[0])
                return
            rid = ctx.new_id()
            ctx.full[key] = (rid, value)
        else:
            rid = ctx.new_id()
        out += u32.pack(rid)
        ctx.pending.append((tenc, value, scope))

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        (rid,) = u32.unpack_from(buf, pos)
        pos += 4
        if kind == "full":
            if not rid:
                return None, pos
            key = rid, tid
            entry = ctx.full.get(key)
            if entry is not None:
                return _alias(entry), pos
            slot = ctx.full[key] = Slot(tdec, scope)
        elif rid or kind == "ref":
            slot = Slot(tdec, scope)
        else:
            return None, pos
        ctx.pending.append(slot)
        return slot, pos

    return Node(enc, dec, align=4, min_size=4, defers=True)


def union(comp: Compiler, desc: Union | EncapsulatedUnion) -> Node:
    disc = comp.node(desc.switch_type)
    disc_enc, disc_dec = disc.enc, disc.dec
    arms = [(tag, t, comp.node(t, embedded=True)) for tag, t in desc.arms]
    default = desc.default
    default_node = comp.node(default, embedded=True) if default is not None else None
    candidates = [n for _, _, n in arms] + ([default_node] if default_node is not None else [])
    arm_align = max((n.salign for n in candidates), default=1)
    largest = isinstance(desc, EncapsulatedUnion) or desc.ms_union

    def entry(t: NdrType, n: Node) -> tuple[Any, Any, int, bool]:
        # An empty arm has no octets, hence no alignment gap before it.
        mask = arm_align - 1 if largest and not isinstance(t, Void) else 0
        return n.enc, n.dec, mask, n.defers

    table = {tag: entry(t, n) for tag, t, n in arms}
    fallback = entry(default, default_node) if default is not None and default_node else None
    encapsulated = isinstance(desc, EncapsulatedUnion)
    whole = max(disc.align, arm_align) - 1 if encapsulated else 0
    switch_get = corr_getter(desc.switch_is if isinstance(desc, Union) else None)
    defers = any(n.defers for n in candidates)

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        tag, arm_value = value
        expected = value_of(switch_get, scope)
        if expected is not None and expected != tag:
            raise Fail(f"union tag {tag} but switch_is field is {expected}", _BAD, len(out))
        arm = table.get(tag, fallback)
        if arm is None:
            raise Fail(f"no union arm for tag {tag}", RpcStatus.RPC_S_INVALID_TAG, len(out))
        out += ZEROS[-len(out) & whole]
        disc_enc(out, tag, ctx, scope)
        out += ZEROS[-len(out) & arm[2]]
        arm[0](out, arm_value, ctx, scope)

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & whole
        tag, pos = disc_dec(buf, pos, ctx, scope)
        arm = table.get(tag, fallback)
        if arm is None:
            raise Fail(f"unknown union tag {tag}", RpcStatus.RPC_S_INVALID_TAG, pos)
        check_corr(switch_get, scope, tag, "union discriminant", pos)
        pos += -pos & arm[2]
        value, pos = arm[1](buf, pos, ctx, scope)
        if arm[3] and type(value) is Slot:
            value.wrap.append(tag)
            return value, pos
        return (tag, value), pos

    min_arm = min((n.min_size for n in candidates), default=0)
    return Node(
        enc,
        dec,
        align=max(disc.align, arm_align) if encapsulated else disc.align,
        salign=max(disc.salign, arm_align) if encapsulated else arm_align,
        min_size=disc.min_size + min_arm,
        defers=defers,
    )
