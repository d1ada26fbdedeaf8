"""Procedures: the request and response stubs of one operation.

Purpose: an IDL operation as data: ``Procedure(name, opnum, params, returns)``, with
``encode_request``/``decode_request`` for the [in] direction and
``encode_response``/``decode_response`` for the [out] direction plus the return value.

Rules:
- Request stub: the [in] parameters in declaration order, then the [in] pipes. Response stub:
  the [out] pipes, then the [out] parameters in declaration order, then the return value
  [rpc-spec §A9, §B11], [C706 §14.3, pipes]. [in,out] parameters appear in both.
- Every parameter is its own top-level construct (deferred referents follow it) and its
  top-level [ref] pointer has no wire form: ``[out] u32 *x`` is declared ``ref(ULONG)`` (or just
  ``ULONG``) and its value is the integer.
- Correlations resolve in the parameter dict. For the response, values of [in] parameters
  (``max_towers`` in ept_map) may be passed along: they are used to size and check arrays but
  are not marshalled. ``decode_response(..., request=...)`` checks them the same way.
- Decoders ignore octets after the last parameter: what follows the NDR data (the MS-RPCE
  §2.2.2.13 verification trailer, auth padding) is the PDU layer's business.
- The return value is ``result["return"]``; no parameter may be called "return".
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._codec import run_decode, run_encode
from ._compile import Compiler
from ._node import Node
from ._simple import SimpleDecode, SimpleEncode, simple_decoder, simple_encoder
from ._state import ByteOrder, kit_for
from ._types import NdrType, Pipe

__all__ = ["IN", "IN_OUT", "OUT", "RETURN", "Direction", "Param", "Procedure"]

RETURN = "return"


class Direction(enum.Flag):
    """Directional attributes of a parameter."""

    IN = 1
    OUT = 2
    IN_OUT = IN | OUT


IN = Direction.IN
OUT = Direction.OUT
IN_OUT = Direction.IN_OUT


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: name, NDR type, direction (``IN``, ``OUT`` or ``IN_OUT``)."""

    name: str
    type: NdrType
    direction: Direction = Direction.IN

    def __post_init__(self) -> None:
        if not isinstance(self.type, NdrType):
            raise TypeError(f"parameter {self.name!r}: not an NdrType: {self.type!r}")
        if not self.direction & Direction.IN_OUT:
            raise ValueError(f"parameter {self.name!r} has no direction")


Steps = tuple[tuple[str, Node], ...]


@dataclass(frozen=True, init=False)
class Procedure:
    """An RPC operation's stubs. Compiled lazily, once per byte order."""

    name: str
    opnum: int
    params: tuple[Param, ...]
    returns: NdrType | None
    _plans: dict[str, tuple[Steps, Steps]] = field(compare=False, repr=False)

    def __init__(
        self, name: str, opnum: int, params: Iterable[Param], returns: NdrType | None = None
    ) -> None:
        params = tuple(params)
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: duplicate parameter names")
        if RETURN in names:
            raise ValueError(f"{name}: {RETURN!r} is reserved for the return value")
        if not 0 <= opnum <= 0xFFFF:
            raise ValueError(f"{name}: opnum {opnum} out of range")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "opnum", opnum)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "returns", returns)
        object.__setattr__(self, "_plans", {})

    @property
    def in_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.direction & Direction.IN)

    @property
    def out_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.direction & Direction.OUT)

    def _plan(self, byteorder: ByteOrder) -> tuple[Steps, Steps]:
        plan = self._plans.get(byteorder)
        if plan is None:
            compiler = Compiler(kit_for(byteorder))

            def steps(params: Sequence[Param]) -> Steps:
                return tuple((p.name, compiler.node(p.type)) for p in params)

            ins = [p for p in self.in_params if not isinstance(p.type, Pipe)]
            ins += [p for p in self.in_params if isinstance(p.type, Pipe)]
            outs = [p for p in self.out_params if isinstance(p.type, Pipe)]
            outs += [p for p in self.out_params if not isinstance(p.type, Pipe)]
            out_steps = steps(outs)
            if self.returns is not None:
                out_steps += ((RETURN, compiler.node(self.returns)),)
            plan = self._plans[byteorder] = (steps(ins), out_steps)
        return plan

    def little_endian_codecs(
        self,
    ) -> tuple[Callable[[bytes], dict[str, Any]], Callable[[Mapping[str, Any]], bytes]]:
        """(decode_request, encode_response) for little-endian stubs at base 0, bound once:
        the server runtime's per-call path (no keyword handling, no plan lookup)."""
        ins, outs = self._plan("little")

        def decode(stub: bytes) -> dict[str, Any]:
            scope: dict[str, Any] = {}
            run_decode(ins, stub, scope)
            return scope

        def encode(values: Mapping[str, Any]) -> bytes:
            return run_encode(outs, values)

        return decode, encode

    def simple_codecs(self) -> tuple[SimpleDecode | None, SimpleEncode | None]:
        """Struct-based little-endian fast codecs for a simple procedure (see ``_simple``):
        ``decode(buf, start, end) -> [in] values | None`` and
        ``encode(outputs, ins) -> stub | None`` (with exactly one output, ``outputs`` is that
        value itself, not a sequence); each is None when its direction is not simple.
        A None *result* means "take the generic path", which raises the precise error."""
        ins = self.in_params
        outs = self.out_params
        decode = None
        if not any(isinstance(p.type, Pipe) for p in ins):
            decode = simple_decoder([p.name for p in ins], [p.type for p in ins])
        encode = None
        if not any(isinstance(p.type, Pipe) for p in outs):
            names = [p.name for p in outs]
            types = [p.type for p in outs]
            if self.returns is not None:
                names.append(RETURN)
                types.append(self.returns)
            in_names = [p.name for p in ins]
            encode = simple_encoder(names, types, in_names, single=len(names) == 1)
        return decode, encode

    def encode_request(
        self,
        args: Mapping[str, Any],
        *,
        byteorder: ByteOrder = "little",
        base: int = 0,
        referent_ids: Iterable[int] | None = None,
    ) -> bytes:
        """The request stub for ``args`` (a mapping with every [in] parameter)."""
        steps = self._plan(byteorder)[0]
        return run_encode(steps, args, base=base, referent_ids=referent_ids)

    def decode_request(
        self,
        stub: bytes | bytearray | memoryview,
        *,
        byteorder: ByteOrder = "little",
        base: int = 0,
    ) -> dict[str, Any]:
        """The [in] parameters of a request stub."""
        scope: dict[str, Any] = {}
        run_decode(self._plan(byteorder)[0], stub, scope, base=base)
        return scope

    def encode_response(
        self,
        results: Mapping[str, Any],
        *,
        byteorder: ByteOrder = "little",
        base: int = 0,
        referent_ids: Iterable[int] | None = None,
    ) -> bytes:
        """The response stub: every [out] parameter and ``results["return"]`` if any."""
        steps = self._plan(byteorder)[1]
        return run_encode(steps, results, base=base, referent_ids=referent_ids)

    def decode_request_head(
        self, stub: bytes | bytearray | memoryview, *, byteorder: ByteOrder = "little"
    ) -> tuple[dict[str, Any], int]:
        """The [in] parameters that precede the [in] pipes, and the stub offset where the pipes
        start (a streamed request: the pipes' chunks are read as they arrive, ``PipeReader``)."""
        ins = self._plan(byteorder)[0]
        steps = tuple(step for step in ins if not isinstance(self._type(step[0]), Pipe))
        scope: dict[str, Any] = {}
        end = run_decode(steps, stub, scope)
        return scope, end

    def encode_response_tail(self, results: Mapping[str, Any], *, base: int) -> bytes:
        """The response stub after the [out] pipes (the [out] parameters and the return value),
        at stub offset ``base``: the pipes' chunks were streamed (``PipeWriter``)."""
        outs = self._plan("little")[1]
        steps = tuple(step for step in outs if not isinstance(self._type(step[0]), Pipe))
        return run_encode(steps, results, base=base)

    def _type(self, name: str) -> NdrType | None:
        for p in self.params:
            if p.name == name:
                return p.type
        return self.returns if name == RETURN else None

    def decode_response(
        self,
        stub: bytes | bytearray | memoryview,
        *,
        byteorder: ByteOrder = "little",
        base: int = 0,
        request: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The [out] parameters (and "return") of a response stub.

        ``request`` (the [in] values of the call) lets correlations that name [in] parameters
        be checked; without it those counts are taken from the wire.
        """
        steps = self._plan(byteorder)[1]
        scope: dict[str, Any] = dict(request) if request is not None else {}
        run_decode(steps, stub, scope, base=base)
        return {name: scope[name] for name, _ in steps}
