"""Multidimensional conformant and conformant-varying arrays [C706 §14.3.3].

Purpose: ``[size_is(n, m)] T x[][]`` and its varying form, described as nested
:class:`~._types.ConformantArray` (or :class:`~._types.ConformantVaryingArray`) descriptors.

Rules:
- Wire order: every dimension's max_count, then (varying only) every dimension's
  ``(offset, actual_count)`` pair, then the elements in row-major order. The innermost dimension
  uses the element family's fast path (``bytes``/``str``/list), so a 2-D byte array is a list of
  ``bytes`` rows.
- Python value: nested lists, depth = number of dimensions - 1, of equal-length rows; ragged
  values fail to encode with RPC_S_INVALID_BOUND.
- Offsets are always 0 (``first_is`` is one-dimensional only).
- Decoding bounds the number of rows and of intermediate lists by the octets left (plus 65536
  empty rows), so a shape like [0xFFFFFFFF][0] cannot make us allocate.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

from ...codes import RpcStatus
from ._arrays import Block, check_corr, value_of
from ._node import Node
from ._state import ZEROS, DecodeContext, EncodeContext, Fail, Kit, corr_getter
from ._types import Ref

__all__ = ["multidim"]

_BOUND = RpcStatus.RPC_S_INVALID_BOUND
_BAD = RpcStatus.RPC_X_BAD_STUB_DATA
_EMPTY_ROWS = 0x10000


def multidim(
    kit: Kit,
    element: Node,
    block: Block,
    sizes: list[Ref | None],
    lengths: list[Ref | None],
    varying: bool,
) -> Node:
    k = len(sizes)
    size_gets = [corr_getter(r) for r in sizes]
    length_gets = [corr_getter(r) for r in lengths]
    prep, write, read = block.prep, block.write, block.read
    counts = struct.Struct(f"{kit.prefix}{k}I")
    pairs = struct.Struct(f"{kit.prefix}{2 * k}I")

    def shape_of(value: Any, pos: int) -> tuple[list[int], list[Any]]:
        level: list[Any] = [value]
        shape: list[int] = []
        for _ in range(k - 1):
            lengths_seen = {len(item) for item in level}
            if len(lengths_seen) > 1:
                raise Fail("ragged multidimensional array", _BOUND, pos)
            shape.append(lengths_seen.pop() if lengths_seen else 0)
            level = [row for item in level for row in item]
        prepared = [prep(row) for row in level]
        row_lengths = {n for n, _ in prepared}
        if len(row_lengths) > 1:
            raise Fail("ragged multidimensional array", _BOUND, pos)
        shape.append(row_lengths.pop() if row_lengths else 0)
        return shape, [payload for _, payload in prepared]

    def maxes_for(shape: list[int], scope: Mapping[str, Any], pos: int) -> list[int]:
        maxes: list[int] = []
        observable = True  # False once an outer dimension is 0: inner sizes are not in the data
        for dim, get in enumerate(size_gets):
            expected = value_of(get, scope)
            if expected is None:
                maxes.append(shape[dim])
            elif observable and (expected < shape[dim] if varying else expected != shape[dim]):
                raise Fail(
                    f"size_is says {expected}, dimension {dim} has {shape[dim]}", _BOUND, pos
                )
            else:
                maxes.append(expected)
            if varying and observable:
                expected = value_of(length_gets[dim], scope)
                if expected is not None and expected != shape[dim]:
                    raise Fail(f"length_is says {expected} for dimension {dim}", _BOUND, pos)
            observable = observable and shape[dim] > 0
        return maxes

    def conf(value: Any, scope: Mapping[str, Any]) -> list[int]:
        return maxes_for(shape_of(value, -1)[0], scope, -1)

    def enc_body(
        out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> None:
        shape, rows = shape_of(value, len(out))
        if varying:
            out += ZEROS[-len(out) & 3]
            out += pairs.pack(*[n for dim in shape for n in (0, dim)])
        for row in rows:
            write(out, row, ctx, scope)

    def enc(out: bytearray, value: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        maxes = maxes_for(shape_of(value, len(out))[0], scope, len(out))
        out += ZEROS[-len(out) & 3]
        out += counts.pack(*maxes)
        enc_body(out, value, ctx, scope, maxes)

    def dec_body(
        buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any], maxes: list[int]
    ) -> tuple[Any, int]:
        for dim, get in enumerate(size_gets):
            check_corr(get, scope, maxes[dim], f"max_count[{dim}]", pos)
        shape = maxes
        if varying:
            pos += -pos & 3
            variance = pairs.unpack_from(buf, pos)
            pos += 8 * k
            shape = list(variance[1::2])
            for dim in range(k):
                offset, actual = variance[2 * dim], variance[2 * dim + 1]
                if offset or actual > maxes[dim]:
                    raise Fail(
                        f"bad variance ({offset}, {actual}) for dimension {dim}", _BOUND, pos
                    )
                check_corr(length_gets[dim], scope, actual, f"actual_count[{dim}]", pos)
        outer = shape[:-1]
        total = 1
        for dim in outer:
            total *= dim
            # Rows of zero elements cost no octets; cap what such a claim can make us build.
            if total > len(buf) - pos + _EMPTY_ROWS:
                raise Fail("array shape cannot fit the stub", _BAD, pos)
        rows: list[Any] = []
        for _ in range(total):
            row, pos = read(buf, pos, shape[-1], ctx, scope)
            rows.append(row)
        return _nest(iter(rows), outer), pos

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        pos += -pos & 3
        maxes = list(counts.unpack_from(buf, pos))
        return dec_body(buf, pos + 4 * k, ctx, scope, maxes)

    node = Node(enc, dec, align=4, salign=element.salign, min_size=4 * k)
    node.nconf, node.conf, node.enc_body, node.dec_body = k, conf, enc_body, dec_body
    return node


def _nest(rows: Iterator[Any], dims: list[int]) -> list[Any]:
    def build(level: int) -> list[Any]:
        if level == len(dims) - 1:
            return [next(rows) for _ in range(dims[level])]
        return [build(level + 1) for _ in range(dims[level])]

    return build(0)
