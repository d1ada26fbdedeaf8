"""Entry points: run compiled nodes over a whole stub, and the single-type :class:`Codec`.

Purpose: the only place where the internal conventions (``Fail``, ``struct.error``, positions in
a pre-padded buffer) become the public contract: ``bytes`` out of encoders, and
:class:`winaio.errors.NdrError` with a stub offset out of everything that fails.

Rules:
- Alignment is relative to the stub start [C706 §14.2.2]. A caller marshalling at stub offset
  ``base`` gets the same octets as if the whole stub had been marshalled from 0; internally the
  buffer is pre-padded with ``base % 8`` octets, which is all alignment can see.
- Each top-level item (a parameter, or a codec's value) is one construct: its deferred referents
  are written right after it, before the next item [C706 §14.3.12.3].
- Decoders raise only ``NdrError``: truncation and garbage are RPC_X_BAD_STUB_DATA unless a more
  precise status applies (invalid bound, invalid tag, enum range).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...errors import NdrError
from ._compile import Compiler
from ._node import Node
from ._state import (
    ZEROS,
    ByteOrder,
    DecodeContext,
    EncodeContext,
    Fail,
    Slot,
    flush_decode,
    flush_encode,
    kit_for,
)
from ._types import NdrType

__all__ = ["Codec", "drep_byteorder", "run_decode", "run_encode"]

# Value errors a caller's data can provoke while encoding; anything else is a bug and propagates.
_VALUE_ERRORS = (
    struct.error,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
)


def _offset(pos: int | None, phase: int, base: int) -> int | None:
    return None if pos is None or pos < 0 else pos - phase + base


def run_encode(
    steps: Sequence[tuple[str, Node]],
    values: Mapping[str, Any],
    *,
    base: int = 0,
    referent_ids: Iterable[int] | None = None,
) -> bytes:
    """Encode ``values[name]`` for each step, in order, as top-level constructs."""
    phase = base & 7
    out = bytearray(phase)
    ctx = EncodeContext(iter(referent_ids) if referent_ids is not None else None)
    name = ""
    try:
        for name, node in steps:
            pending: list[Any] = []
            ctx.pending = pending
            node.enc(out, values[name], ctx, values)
            if pending:
                flush_encode(out, ctx, pending)
    except Fail as failure:
        where = _offset(failure.pos, phase, base)
        raise NdrError(f"{name}: {failure.message}", status=failure.status, offset=where) from None
    except _VALUE_ERRORS as exc:
        detail = f"missing value {exc}" if isinstance(exc, KeyError) else str(exc)
        where = _offset(len(out), phase, base)
        raise NdrError(f"cannot encode {name}: {detail}", offset=where) from exc
    return bytes(out[phase:]) if phase else bytes(out)


def run_decode(
    steps: Sequence[tuple[str, Node]],
    data: bytes | bytearray | memoryview,
    scope: dict[str, Any],
    *,
    base: int = 0,
    pos: int = 0,
) -> int:
    """Decode each step into ``scope[name]``; returns the offset (in ``data``) after the last."""
    buf = data if type(data) is bytes else bytes(data)
    phase = (base + pos) & 7
    if phase:
        buf = ZEROS[phase] + buf[pos:]
        start = phase
    else:
        start = pos
    shift = start - pos  # buffer position - position in ``data``
    ctx = DecodeContext()
    cursor = start
    name = ""
    try:
        for name, node in steps:
            pending: list[Slot] = []
            ctx.pending = pending
            value, cursor = node.dec(buf, cursor, ctx, scope)
            scope[name] = value
            if type(value) is Slot:
                value.container, value.key = scope, name
            if pending:
                cursor = flush_decode(buf, cursor, ctx, pending)
    except Fail as failure:
        where = None if failure.pos is None or failure.pos < 0 else failure.pos - shift + base
        raise NdrError(f"{name}: {failure.message}", status=failure.status, offset=where) from None
    except struct.error:
        raise NdrError(f"{name}: stub data truncated", offset=len(buf) - shift + base) from None
    except RecursionError:
        raise NdrError(f"{name}: stub data nested too deeply", offset=None) from None
    return cursor - shift


class Codec:
    """One descriptor compiled for one byte order: ``encode(value)`` / ``decode(stub)``.

    The value is marshalled as a single top-level construct (like one parameter), so a
    top-level ``Pointer`` is not embedded. ``base`` is the stub offset the octets start at.
    """

    __slots__ = ("_steps", "byteorder", "desc")

    def __init__(self, desc: NdrType, *, byteorder: ByteOrder = "little") -> None:
        self.desc = desc
        self.byteorder = byteorder
        self._steps = (("value", Compiler(kit_for(byteorder)).node(desc)),)

    def __repr__(self) -> str:
        return f"Codec({self.desc!r}, byteorder={self.byteorder!r})"

    def encode(
        self, value: Any, *, base: int = 0, referent_ids: Iterable[int] | None = None
    ) -> bytes:
        """Encode ``value``; ``referent_ids`` overrides the Windows-style id sequence."""
        return run_encode(self._steps, {"value": value}, base=base, referent_ids=referent_ids)

    def decode(self, data: bytes | bytearray | memoryview, *, base: int = 0) -> Any:
        """Decode a value that must use every octet of ``data``."""
        value, end = self.decode_from(data, base=base)
        if end != len(data):
            raise NdrError(f"{len(data) - end} octets left after the value", offset=end + base)
        return value

    def decode_from(
        self, data: bytes | bytearray | memoryview, pos: int = 0, *, base: int = 0
    ) -> tuple[Any, int]:
        """Decode a value starting at ``data[pos]`` (stub offset ``base + pos``); returns
        ``(value, end)`` with ``end`` the position in ``data`` after it."""
        scope: dict[str, Any] = {}
        end = run_decode(self._steps, data, scope, base=base, pos=pos)
        return scope["value"], end


def drep_byteorder(drep: bytes | bytearray) -> ByteOrder:
    """The integer byte order of a packed drep [C706 §14.1]; refuses what we do not speak.

    Byte 0: high nibble integer representation (0 big-endian, 1 little-endian), low nibble
    character set (0 ASCII, 1 EBCDIC); byte 1: floating point (0 IEEE). EBCDIC and non-IEEE
    floats are rejected with an ``NdrError`` rather than silently misread.
    """
    if len(drep) < 2:
        raise NdrError("drep needs at least 2 octets")
    integers, characters, floats = drep[0] >> 4, drep[0] & 0x0F, drep[1]
    if characters != 0:
        raise NdrError("EBCDIC character representation is not supported")
    if floats != 0:
        raise NdrError(f"floating-point representation {floats} (only IEEE, 0) is not supported")
    if integers == 1:
        return "little"
    if integers == 0:
        return "big"
    raise NdrError(f"unknown integer representation {integers}")
