"""Per-message marshalling state shared by the compiled closures.

Purpose: the pieces of NDR that are not about one type but about a whole octet stream: the
deferred-referent queues, referent id allocation, the full-pointer alias tables, correlation
lookup, and the internal failure type.

Rules:
- Deferral [C706 §14.3.12.3]: an embedded pointer writes its referent id in place and queues its
  referent on ``ctx.pending``, the list of the construct being marshalled. When that construct
  (a top-level parameter, or one deferred referent) is finished, its queue is drained in
  encounter order, depth first: each referent gets a fresh queue, so the referents embedded in
  it are written right after it and before its later siblings: the order of impacket's
  ``getDataReferents`` and of Samba pidl (a pointee's NDR_BUFFERS follow its NDR_SCALARS before
  the next pointer). The drain loops are iterative, so a long linked list cannot exhaust the
  stack.
- Decoding cannot store a deferred referent in its container yet, so an embedded pointer returns
  a :class:`Slot`; whoever receives a value from a type with ``defers`` set registers the slot's
  container and key (struct dict, list index, parameter dict). Unions wrap: the slot records the
  tags to re-apply as ``(tag, value)``. Full pointers share one slot per referent id, and aliases
  receive the same Python object [C706 §14.3.10].
- Internally failures raise :class:`Fail` with a buffer position; the top-level entry points turn
  it into :class:`winaio.errors.NdrError` with the stub offset. Never raise ``NdrError`` here.
- Imports only the standard library and ``winaio.codes``.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from ...codes import RpcStatus
from ._types import Ref

__all__ = [
    "ZEROS",
    "ByteOrder",
    "DecodeContext",
    "EncodeContext",
    "Fail",
    "Kit",
    "Slot",
    "corr_getter",
    "flush_decode",
    "flush_encode",
    "kit_for",
    "octets",
    "resolve",
]

ByteOrder = Literal["little", "big"]

# Padding is written as zeros (senders SHOULD write 0) and never read [MS-RPCE §3.1.1.5.3.2.2.6].
ZEROS: tuple[bytes, ...] = tuple(bytes(n) for n in range(8))

BAD_STUB = RpcStatus.RPC_X_BAD_STUB_DATA
INVALID_BOUND = RpcStatus.RPC_S_INVALID_BOUND

# Windows allocates referent ids as 0x00020000 + 4k [rpc-spec §B11, captured].
_FIRST_REFERENT_ID = 0x00020000
_REFERENT_ID_STEP = 4


def octets(value: Any) -> bytes:
    """The octets of an octet-array value: ``bytes``, or anything ``bytes()`` copies (a
    bytearray, a memoryview, an iterable of small ints). An ``int`` is refused (TypeError, an
    NdrError for the caller) instead of ``bytes(n)`` allocating n zero octets."""
    if type(value) is bytes:
        return value
    if isinstance(value, int):
        raise TypeError(f"an octet array value must be bytes-like, not int {value!r}")
    return bytes(value)


class Fail(Exception):
    """Internal marshalling failure; converted to ``NdrError`` at the entry points."""

    def __init__(self, message: str, status: int = BAD_STUB, pos: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = int(status)
        self.pos = pos


class Kit:
    """Byte-order dependent constants, built once per byte order."""

    __slots__ = ("little", "prefix", "u16", "u32", "u32x2", "u32x3", "utf16")

    def __init__(self, byteorder: ByteOrder) -> None:
        if byteorder not in ("little", "big"):
            raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}")
        self.little = byteorder == "little"
        self.prefix = "<" if self.little else ">"
        self.u16 = struct.Struct(self.prefix + "H")
        self.u32 = struct.Struct(self.prefix + "I")
        self.u32x2 = struct.Struct(self.prefix + "II")
        self.u32x3 = struct.Struct(self.prefix + "III")
        self.utf16 = "utf-16-le" if self.little else "utf-16-be"

    def uuid_bytes(self, value: uuid.UUID) -> bytes:
        # Data1..Data3 follow the integer byte order; Data4 is an octet array [C706 App. A].
        return value.bytes_le if self.little else value.bytes

    def uuid_from(self, raw: bytes) -> uuid.UUID:
        return uuid.UUID(bytes_le=raw) if self.little else uuid.UUID(bytes=raw)


_KITS = {"little": Kit("little"), "big": Kit("big")}


def kit_for(byteorder: ByteOrder) -> Kit:
    try:
        return _KITS[byteorder]
    except KeyError:
        raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}") from None


def corr_getter(corr: Ref | None) -> Callable[[Mapping[str, Any]], int | None] | None:
    """Compile a correlation into ``scope -> int | None`` (None: not available, don't check)."""
    if corr is None:
        return None
    name, divide, add = corr.name, corr.divide, corr.add

    def get(scope: Mapping[str, Any]) -> int | None:
        value = scope.get(name)
        # A slot (deferred pointer not yet decoded) or a non-integer is "not available".
        if not isinstance(value, int):
            return None
        return value // divide + add

    return get


# -- encoding ----------------------------------------------------------------------------------

EncodeFn = Callable[[bytearray, Any, "EncodeContext", Mapping[str, Any]], None]


class EncodeContext:
    """State of one encoding run (one request or response stub)."""

    __slots__ = ("_ids", "_next", "full", "pending")

    def __init__(self, referent_ids: Iterator[int] | None = None) -> None:
        self.pending: list[tuple[EncodeFn, Any, Mapping[str, Any]]] = []
        # (id(value), id(node)) -> (referent id, value): the value is kept to pin its id().
        self.full: dict[tuple[int, int], tuple[int, Any]] = {}
        self._ids = referent_ids
        self._next = _FIRST_REFERENT_ID

    def new_id(self) -> int:
        if self._ids is None:
            rid = self._next
            self._next = rid + _REFERENT_ID_STEP
            return rid
        rid = next(self._ids, 0)
        if not 0 < rid <= 0xFFFFFFFF:
            raise Fail("referent id source exhausted or gave an invalid id")
        return rid


def flush_encode(out: bytearray, ctx: EncodeContext, pending: list[Any]) -> None:
    """Write deferred referents depth first, each as its own construct [C706 §14.3.12.3]."""
    stack = [iter(pending)]
    while stack:
        for enc, value, scope in stack[-1]:
            queue: list[tuple[EncodeFn, Any, Mapping[str, Any]]] = []
            ctx.pending = queue
            enc(out, value, ctx, scope)
            if queue:
                stack.append(iter(queue))
                break
        else:
            stack.pop()
    ctx.pending = []


# -- decoding ----------------------------------------------------------------------------------

DecodeFn = Callable[[bytes, int, "DecodeContext", Mapping[str, Any]], tuple[Any, int]]


class Slot:
    """A decoded pointer whose referent is not decoded yet (see the module docstring)."""

    __slots__ = ("aliases", "container", "dec", "done", "key", "parent", "scope", "value", "wrap")

    def __init__(self, dec: DecodeFn | None, scope: Mapping[str, Any] | None) -> None:
        self.dec = dec
        self.scope = scope
        self.container: Any = None
        self.key: Any = None
        self.wrap: list[Any] = []
        self.parent: Slot | None = None
        self.aliases: list[Slot] = []
        self.done = False
        self.value: Any = None


def resolve(slot: Slot, value: Any) -> None:
    """Give ``slot`` its referent: store it (re-wrapped in union tags) and feed the aliases."""
    stored = value
    for tag in slot.wrap:
        stored = (tag, stored)
    if slot.parent is not None:
        resolve(slot.parent, stored)
    elif slot.container is not None:
        slot.container[slot.key] = stored
    slot.done = True
    slot.value = value
    aliases, slot.aliases = slot.aliases, []
    for alias in aliases:
        resolve(alias, value)


class DecodeContext:
    """State of one decoding run."""

    __slots__ = ("full", "pending")

    def __init__(self) -> None:
        self.pending: list[Slot] = []
        # (referent id, id(target node)) -> the slot of that referent
        self.full: dict[tuple[int, int], Slot] = {}


def flush_decode(buf: bytes, pos: int, ctx: DecodeContext, pending: list[Slot]) -> int:
    """Read deferred referents in the order :func:`flush_encode` wrote them."""
    stack = [iter(pending)]
    while stack:
        for slot in stack[-1]:
            queue: list[Slot] = []
            ctx.pending = queue
            dec = slot.dec
            assert dec is not None and slot.scope is not None
            value, pos = dec(buf, pos, ctx, slot.scope)
            if type(value) is Slot:
                # The referent is itself waiting (a union whose arm is a pointer): chain it.
                value.parent = slot
            else:
                resolve(slot, value)
            if queue:
                stack.append(iter(queue))
                break
        else:
            stack.pop()
    ctx.pending = []
    return pos
