"""NDR pipes: a chunk stream, whole-message and incremental [C706 §14.3, pipes].

Purpose: ``pipe T`` parameters. In a stub a pipe is a sequence of chunks, each ``u32 count``
(aligned to 4) followed by ``count`` elements, ended by a chunk of count 0. Whole-message
marshalling (the pipe value is a list of chunks) is a node like any other; asynchronous pipes
[MS-RPCE / MSL asynchronous pipes, rpc-spec §A9] push and pull chunk by chunk with
:class:`PipeWriter` and :class:`PipeReader`, which track the stub offset for alignment.

Rules:
- Elements are fixed-size (``_types.Pipe`` rejects pointers, conformant and varying types), so
  the size of a chunk is known from its count and the reader never guesses.
- An empty chunk is never sent in the middle: count 0 is the terminator. Writers skip empty
  chunks; ``end()`` writes the terminator.
- A chunk whose count needs more than ``max_chunk_octets`` is refused (RPC_X_BAD_STUB_DATA):
  an incremental reader must not wait forever for 0xFFFFFFFF elements.
- Sans-I/O: bytes in, chunks out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ...codes import RpcStatus
from ...errors import NdrError
from ._arrays import block_for
from ._node import Node, layout_format
from ._state import ZEROS, ByteOrder, DecodeContext, EncodeContext, Fail
from ._types import Pipe

if TYPE_CHECKING:
    from ._compile import Compiler

__all__ = ["PipeReader", "PipeWriter", "pipe_node"]

_BAD = RpcStatus.RPC_X_BAD_STUB_DATA
_TERMINATOR = bytes(4)
_DEFAULT_MAX_CHUNK = 4 * 1024 * 1024  # the MS default maximum request size [MS-RPCE §3.3.3.5.4]


def pipe_node(comp: Compiler, desc: Pipe) -> Node:
    element = comp.node(desc.element, embedded=True)
    block = block_for(element, comp.kit)
    prep, write, read = block.prep, block.write, block.read
    u32 = comp.kit.u32

    def enc(out: bytearray, chunks: Any, ctx: EncodeContext, scope: Mapping[str, Any]) -> None:
        for chunk in chunks:
            n, payload = prep(chunk)
            if n:
                out += ZEROS[-len(out) & 3]
                out += u32.pack(n)
                write(out, payload, ctx, scope)
        out += ZEROS[-len(out) & 3]
        out += _TERMINATOR

    def dec(buf: bytes, pos: int, ctx: DecodeContext, scope: Mapping[str, Any]) -> tuple[Any, int]:
        chunks: list[Any] = []
        while True:
            pos += -pos & 3
            (n,) = u32.unpack_from(buf, pos)
            pos += 4
            if not n:
                return chunks, pos
            chunk, pos = read(buf, pos, n, ctx, scope)
            chunks.append(chunk)

    return Node(enc, dec, align=4, min_size=4)


class _Compiled:
    """The element block of a pipe type, compiled for one byte order."""

    def __init__(self, pipe: Pipe, byteorder: ByteOrder) -> None:
        from ._compile import Compiler
        from ._state import kit_for

        if not isinstance(pipe, Pipe):
            raise TypeError(f"expected a Pipe descriptor, not {pipe!r}")
        kit = kit_for(byteorder)
        element = Compiler(kit).node(pipe.element, embedded=True)
        assert element.flat is not None
        self.block = block_for(element, kit)
        self.u32 = kit.u32
        self.align = element.align
        self.size = layout_format(element.flat.layout, 0)[1]
        self.stride = self.size + (-self.size & (self.align - 1))


class PipeWriter:
    """Encodes one pipe's chunks as they are pushed, starting at stub offset ``offset``."""

    def __init__(self, pipe: Pipe, *, byteorder: ByteOrder = "little", offset: int = 0) -> None:
        self._c = _Compiled(pipe, byteorder)
        self.offset = offset
        self.finished = False

    def chunk(self, elements: Any) -> bytes:
        """One chunk (``bytes``/``str``/list like an array value); empty input gives b""."""
        if self.finished:
            raise ValueError("the pipe was already terminated")
        c = self._c
        phase = self.offset & 7
        out = bytearray(phase)
        try:
            n, payload = c.block.prep(elements)
            if not n:
                return b""
            out += ZEROS[-len(out) & 3]
            out += c.u32.pack(n)
            c.block.write(out, payload, EncodeContext(), {})
        except Fail as failure:
            raise NdrError(failure.message, status=failure.status, offset=self.offset) from None
        except (struct.error, TypeError, ValueError, OverflowError) as exc:
            raise NdrError(f"cannot encode pipe chunk: {exc}", offset=self.offset) from exc
        return self._take(out, phase)

    def chunks(self, many: Iterable[Any]) -> bytes:
        return b"".join([self.chunk(elements) for elements in many])

    def end(self) -> bytes:
        """The terminating chunk (count 0)."""
        phase = self.offset & 7
        out = bytearray(phase)
        out += ZEROS[-len(out) & 3]
        out += _TERMINATOR
        self.finished = True
        return self._take(out, phase)

    def _take(self, out: bytearray, phase: int) -> bytes:
        data = bytes(out[phase:])
        self.offset += len(data)
        return data


class PipeReader:
    """Decodes a pipe's chunks from stub octets fed in any pieces.

    ``feed(data)`` returns the chunks completed by ``data``; after the terminator ``finished``
    is True and further octets (the parameters that follow the pipe) collect in ``unused``.
    """

    def __init__(
        self,
        pipe: Pipe,
        *,
        byteorder: ByteOrder = "little",
        offset: int = 0,
        max_chunk_octets: int = _DEFAULT_MAX_CHUNK,
    ) -> None:
        self._c = _Compiled(pipe, byteorder)
        self.offset = offset  # stub offset of the first octet in self._buf
        self.max_chunk_octets = max_chunk_octets
        self.finished = False
        self._buf = bytearray()
        #: Octets per element on the wire (alignment gaps included), for buffer accounting.
        self.element_size = self._c.stride

    @property
    def unused(self) -> bytes:
        return bytes(self._buf) if self.finished else b""

    def feed(self, data: bytes) -> list[Any]:
        self._buf += data
        chunks: list[Any] = []
        c = self._c
        while not self.finished:
            start = self.offset
            head = -start & 3
            if len(self._buf) < head + 4:
                break
            (n,) = c.u32.unpack_from(self._buf, head)
            if not n:
                self._consume(head + 4)
                self.finished = True
                break
            first = start + head + 4
            gap = -first & (c.align - 1)
            need = gap + (n - 1) * c.stride + c.size
            if need > self.max_chunk_octets:
                raise NdrError(f"pipe chunk of {n} elements is too big", status=_BAD, offset=start)
            if len(self._buf) < head + 4 + need:
                break
            phase = first & 7
            window = ZEROS[phase] + bytes(self._buf[head + 4 : head + 4 + need])
            try:
                chunk, _ = c.block.read(window, phase, n, DecodeContext(), {})
            except Fail as failure:
                raise NdrError(failure.message, status=failure.status, offset=start) from None
            chunks.append(chunk)
            self._consume(head + 4 + need)
        return chunks

    def _consume(self, count: int) -> None:
        del self._buf[:count]
        self.offset += count
