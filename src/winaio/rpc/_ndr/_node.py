"""Compiled form of a descriptor: a :class:`Node` of encode/decode closures.

Purpose: the contract between the compiler modules (``_compile``, ``_arrays``, ``_pointers``,
``_pipe``) and the entry points (``_codec``, ``_procedure``).

Rules:
- ``enc(out, value, ctx, scope)`` appends the full representation to ``out``, including its own
  leading alignment gap. The stream position is ``len(out)``: entry points pre-pad ``out`` with
  ``base % 8`` octets so that alignment is relative to the stub start, not to ``out``.
- ``dec(buf, pos, ctx, scope) -> (value, pos)`` never reads past ``len(buf)``: fixed parts rely on
  ``struct.unpack_from`` (which raises ``struct.error``), variable parts check their counts
  against the remaining octets before allocating anything.
- ``scope`` is the mapping correlations are resolved in: the enclosing struct's value, or the
  parameter dict.
- A conformant node (``nconf > 0``) also offers ``conf(value, scope) -> max_counts`` and
  ``enc_body``/``dec_body``, which take the max_counts that an enclosing struct hoisted.
- ``flat`` marks fixed-layout types (primitives, fixed arrays and structs of them): their whole
  representation is one precompiled :class:`struct.Struct` per alignment phase, so a run of
  them costs one ``pack``/``unpack_from`` call.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

from ._state import DecodeContext, EncodeContext

__all__ = ["Flat", "LayoutItem", "Node", "getter_for", "layout_format", "phase_structs"]

Enc = Callable[[bytearray, Any, EncodeContext, Mapping[str, Any]], None]
Dec = Callable[[bytes, int, DecodeContext, Mapping[str, Any]], tuple[Any, int]]
EncBody = Callable[[bytearray, Any, EncodeContext, Mapping[str, Any], list[int]], None]
DecBody = Callable[[bytes, int, DecodeContext, Mapping[str, Any], list[int]], tuple[Any, int]]
Conf = Callable[[Any, Mapping[str, Any]], list[int]]

# (alignment, struct format fragment, size in octets, number of items it packs). An empty
# fragment is a pure alignment point, e.g. the start of a nested struct.
LayoutItem = tuple[int, str, int, int]


class Flat:
    """Fixed layout of a flat type and the mapping between its value and its packed items."""

    __slots__ = ("build", "identity", "layout", "names", "nitems", "size", "split")

    def __init__(
        self,
        layout: tuple[LayoutItem, ...],
        split: Callable[[Any, list[Any]], None],
        build: Callable[[tuple[Any, ...], int], tuple[Any, int]],
        *,
        identity: bool = False,
    ) -> None:
        self.layout = layout
        self.nitems = sum(item[3] for item in layout)
        self.split = split
        self.build = build
        # identity: exactly one packed item, and it is the Python value itself.
        self.identity = identity
        self.size = layout_format(layout, 0)[1]
        # Set for a struct whose members are all identity items: its value is
        # dict(zip(names, items)), the fastest path there is.
        self.names: tuple[str, ...] | None = None


class Node:
    """One compiled type; see the module docstring for the calling conventions."""

    __slots__ = (
        "align",
        "conf",
        "dec",
        "dec_body",
        "defers",
        "enc",
        "enc_body",
        "flat",
        "min_size",
        "nconf",
        "salign",
        "wire",
    )

    def __init__(
        self,
        enc: Enc,
        dec: Dec,
        *,
        align: int,
        min_size: int,
        salign: int | None = None,
        flat: Flat | None = None,
        defers: bool = False,
        wire: str = "",
    ) -> None:
        self.enc = enc
        self.dec = dec
        # Alignment of the first octet of the representation.
        self.align = align
        # Contribution to an enclosing struct's alignment: the C memory alignment MIDL and pidl
        # use (arrays: their element, unions: their largest arm, pointers: 4) [C706 §14.3.7].
        self.salign = align if salign is None else salign
        # Lower bound of the wire size, used to reject impossible counts before allocating.
        self.min_size = min_size
        self.flat = flat
        # True when dec() may return a runtime.Slot that the caller must place.
        self.defers = defers
        # Element fast-path family for arrays: "bytes", "wstr", or "" (see _arrays).
        self.wire = wire
        self.nconf = 0
        self.conf: Conf | None = None
        self.enc_body: EncBody | None = None
        self.dec_body: DecBody | None = None


def layout_format(layout: tuple[LayoutItem, ...], phase: int) -> tuple[str, int]:
    """struct format (no byte-order prefix) and size of ``layout`` starting at ``phase``.

    Runs of the same single-letter code are merged ("IIII" -> "4I") to keep formats short.
    """
    parts: list[str] = []
    run_char, run_count = "", 0
    pos = phase
    for align, fmt, size, _ in layout:
        pad = -pos & (align - 1)
        if pad:
            if run_count:
                parts.append(f"{run_count}{run_char}")
                run_char, run_count = "", 0
            parts.append(f"{pad}x")
            pos += pad
        if not fmt:
            continue
        if len(fmt) == 1 and fmt != "s":
            if fmt == run_char:
                run_count += 1
            else:
                if run_count:
                    parts.append(f"{run_count}{run_char}")
                run_char, run_count = fmt, 1
        else:
            if run_count:
                parts.append(f"{run_count}{run_char}")
                run_char, run_count = "", 0
            parts.append(fmt)
        pos += size
    if run_count:
        parts.append(f"{run_count}{run_char}")
    return "".join(parts), pos - phase


def phase_structs(
    layout: tuple[LayoutItem, ...], prefix: str
) -> tuple[tuple[struct.Struct, ...], tuple[int, ...]]:
    """One Struct per stream phase (position mod 8), padding included, and their sizes.

    Every NDR alignment divides 8, so the gaps inside a run depend only on where it starts
    modulo 8; choosing the Struct by ``pos & 7`` makes the leading gap part of the pack.
    """
    structs: list[struct.Struct] = []
    sizes: list[int] = []
    for phase in range(8):
        fmt, size = layout_format(layout, phase)
        structs.append(struct.Struct(prefix + fmt))
        sizes.append(size)
    return tuple(structs), tuple(sizes)


def getter_for(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``value -> tuple of value[name]``: ``itemgetter`` (C speed), always returning a tuple."""
    if len(names) > 1:
        return itemgetter(*names)
    (name,) = names

    def one(value: Any) -> tuple[Any, ...]:
        return (value[name],)

    return one
