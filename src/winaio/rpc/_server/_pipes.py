"""Asynchronous pipes on the server: chunks flow while the call runs (rpc-spec §A9, rpc #24, #25).

- ``PipeIn`` ([in] pipe): the manager pulls chunks. For a request in one fragment they are all
  there at dispatch; for a longer one the call is dispatched at its first fragment
  (``ServerConnection(stream_requests=...)``) and ``InStream`` decodes each fragment's chunks
  as it arrives. ``pull()`` returns the next chunk, an empty chunk once the pipe has ended (and
  forever after). With no chunk yet, a thread other than the loop's waits for one
  (``timeout`` expired: RpcError RPC_S_ASYNC_CALL_PENDING 997); on the loop thread ``pull()``
  never blocks and raises 997 at once, the MS asynchronous pull [MSL:server-side-asynchronous-
  pipe-handling]. ``for chunk in pipe`` (threads) and ``async for chunk in pipe`` (the loop).
  A request that ends before a pipe's terminator, or a malformed chunk, makes ``pull`` raise
  that NdrError (a manager that lets it escape faults with its status); a client that goes
  away makes it raise RPC_S_CALL_CANCELLED.
- ``PipeOut`` ([out] pipe): ``push(chunk)`` encodes the chunk and sends it at once as
  response fragment(s) (``OutStream``); ``push`` of an empty chunk ends the pipe and completing
  the call ends any pipe still open. The response stub holds the [out] pipes first, in
  declaration order [C706 §14.3, pipes], so a pipe is pushed only after the earlier ones
  ended: pushing into a later one first raises RPC_X_WRONG_PIPE_ORDER, pushing after the end
  RPC_X_PIPE_CLOSED.

Flow control, both ways: past ``HIGH_WATER`` octets of chunks not yet pulled the connection
stops reading (``transport.pause_reading``) until the manager has pulled below ``LOW_WATER``
(TCP then holds the client back); a ``push`` from a thread other than the loop's waits while
the connection's write buffer is above the transport's high-water mark (``pause_writing`` /
``resume_writing``), and ``await pipe.drain()`` does the same for a manager on the loop.

Threads: chunks are fed and sent on the loop thread; pulls and pushes come from any thread.
A ``PipeIn``'s state is guarded by its own condition; an ``OutStream``'s by its own lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Final

from ...codes import RpcStatus
from ...errors import NdrError, RpcError
from .._ndr import BYTE, CHAR, USMALL, WCHAR, Pipe, PipeReader, PipeWriter, Procedure
from .._ndr._state import ByteOrder

if TYPE_CHECKING:
    from ._call import ServerCall
    from ._link import Link

__all__ = ["HIGH_WATER", "LOW_WATER", "InStream", "OutStream", "PipeIn", "PipeOut", "empty_chunk"]

#: Octets of [in] pipe chunks a connection buffers before it stops reading, and resumes below.
HIGH_WATER: Final = 1 << 20
LOW_WATER: Final = 1 << 18

_PENDING: Final = int(RpcStatus.RPC_S_ASYNC_CALL_PENDING)
_CANCELLED: Final = int(RpcStatus.RPC_S_CALL_CANCELLED)
_CLOSED: Final = int(RpcStatus.RPC_X_PIPE_CLOSED)
_WRONG_ORDER: Final = int(RpcStatus.RPC_X_WRONG_PIPE_ORDER)
_BAD_STUB: Final = int(RpcStatus.RPC_X_BAD_STUB_DATA)


def empty_chunk(pipe: Pipe) -> Any:
    """The empty chunk of a pipe type: what its chunks are made of, with nothing in it."""
    element = pipe.element
    if element in (BYTE, USMALL, CHAR):
        return b""
    if element == WCHAR:
        return ""
    return []


class PipeIn:
    """An [in] pipe as a manager sees it (module docstring)."""

    def __init__(
        self, chunks: list[Any] | None = None, *, empty: Any = (), link: Link | None = None
    ) -> None:
        self._chunks: deque[tuple[Any, int]] = deque((c, 0) for c in chunks or ())
        self._ended = chunks is not None  # whole message: every chunk is here already
        if empty == ():
            empty = chunks[0][:0] if chunks and hasattr(chunks[0], "__getitem__") else []
        self._empty = empty
        self._error: RpcError | None = None
        self._link = link
        self._octets = 0  # octets of the queued chunks (streamed: flow control)
        self._paused = False  # this pipe made its connection stop reading
        self._cond = threading.Condition(threading.Lock())
        self._waiter: Any = None  # the future an ``async for`` awaits

    # -- manager side (any thread) -----------------------------------------------------------

    def pull(self, timeout: float | None = None) -> Any:
        """The next chunk; an empty one when the pipe is over (and forever after).

        Raises:
            RpcError: RPC_S_ASYNC_CALL_PENDING (997) when no chunk has arrived yet and this is
                the loop thread, or ``timeout`` expired; the pipe's error (NdrError, or
                RPC_S_CALL_CANCELLED if the client went away).
        """
        with self._cond:
            while not self._chunks and not self._ended and self._error is None:
                link = self._link
                if link is None or threading.get_ident() == link.loop_thread:
                    raise RpcError(_PENDING, "no pipe chunk has arrived yet")
                if not self._cond.wait(timeout):
                    raise RpcError(_PENDING, "no pipe chunk arrived in time")
            return self._take()

    def _take(self) -> Any:  # under self._cond
        if self._chunks:
            chunk, octets = self._chunks.popleft()
            if octets:
                self._octets -= octets
                if self._paused and self._octets < LOW_WATER:
                    self._paused = False
                    link = self._link
                    assert link is not None
                    link.server.engine.call_soon_threadsafe(link.resume_reading)
            return chunk
        if self._error is not None:
            raise self._error
        return self._empty

    def __iter__(self) -> Iterator[Any]:
        while True:
            chunk = self.pull()
            if not len(chunk):
                return
            yield chunk

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._chunks_async()

    async def _chunks_async(self) -> AsyncIterator[Any]:
        while True:
            with self._cond:
                if self._chunks or self._ended or self._error is not None:
                    chunk = self._take()
                    waiter = None
                else:
                    link = self._link
                    assert link is not None
                    waiter = self._waiter = link.server.engine.create_future()
            if waiter is not None:
                await waiter
                continue
            if not len(chunk):
                return
            yield chunk

    # -- runtime side (loop thread) ----------------------------------------------------------

    def feed(self, chunks: list[Any], octets: int) -> None:
        """Chunks decoded from the request (``octets``: their size on the wire)."""
        if not chunks:
            return
        each = octets // len(chunks)
        with self._cond:
            self._chunks.extend((c, each) for c in chunks)
            self._octets += each * len(chunks)
            pause = not self._paused and self._octets > HIGH_WATER
            if pause:
                self._paused = True
            self._wake()
        if pause and self._link is not None:
            self._link.pause_reading()

    def end(self, error: RpcError | None = None) -> None:
        """The pipe's terminator arrived (or ``error``: it never will)."""
        with self._cond:
            if self._ended or self._error is not None:
                return
            if error is None:
                self._ended = True
            else:
                self._error = error
            self._wake()

    def _wake(self) -> None:  # under self._cond
        self._cond.notify_all()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)


class InStream:
    """A request dispatched at its first fragment (loop thread): its [in] parameters once
    their octets are all here, then its [in] pipes' chunks as the fragments arrive."""

    def __init__(
        self, link: Link, procedure: Procedure, byteorder: ByteOrder, pipes: list[Pipe]
    ) -> None:
        self.link = link
        self.procedure = procedure
        self.byteorder = byteorder
        self.head: bytearray | None = bytearray()  # stub octets until the parameters decode
        self.pipes: list[PipeIn] = [PipeIn(empty=empty_chunk(p), link=link) for p in pipes]
        self._types = pipes
        self._readers: list[PipeReader] = []
        self.cancels = 0  # co_cancels that arrived before the call object existed

    def feed(self, data: bytes, last: bool) -> dict[str, Any] | int | None:
        """Stub octets of the next fragment. Returns the decoded [in] parameters when they
        become complete (the caller dispatches then), an NDR status when they can never
        decode, else None."""
        head = self.head
        if head is not None:
            head += data
            try:
                args, end = self.procedure.decode_request_head(
                    bytes(head), byteorder=self.byteorder
                )
            except NdrError as exc:
                if last or len(head) > self.link.server.max_request_size:
                    self.head = None
                    return exc.status  # never complete, or too big a head to wait for
                return None  # the parameters continue in the next fragment
            self.head = None
            self._readers = [
                PipeReader(t, byteorder=self.byteorder, offset=end) for t in self._types[:1]
            ]
            self._pipe_data(bytes(head[end:]), last)
            return args
        self._pipe_data(data, last)
        return None

    def _pipe_data(self, data: bytes, last: bool) -> None:
        index = len(self._readers) - 1
        while index < len(self.pipes) and data:
            reader = self._readers[index]
            try:
                chunks = reader.feed(data)
            except NdrError as exc:
                self.fail(exc)
                return
            self.pipes[index].feed(chunks, len(data) - len(reader.unused))
            if not reader.finished:
                break
            self.pipes[index].end()
            data = reader.unused
            index += 1
            if index < len(self.pipes):
                self._readers.append(
                    PipeReader(self._types[index], byteorder=self.byteorder, offset=reader.offset)
                )
        if last:
            error = NdrError("the request ended inside an [in] pipe", status=_BAD_STUB)
            for pipe in self.pipes:
                pipe.end(error)  # no-op for the pipes that ended

    def fail(self, error: RpcError) -> None:
        """No more chunks will come (bad data, or the client went away)."""
        self.head = None
        for pipe in self.pipes:
            pipe.end(error)


class OutStream:
    """A call's [out] pipes, sent as response fragments as they are pushed (any thread)."""

    def __init__(self, link: Link, call: ServerCall, pipes: list[Pipe]) -> None:
        self.link = link
        self.call = call
        self._writers = [PipeWriter(p) for p in pipes[:1]]
        self._types = pipes
        self._current = 0
        self._held = b""  # a terminator, sent with the next chunk or the final stub
        self._lock = threading.Lock()
        self.pipes = [PipeOut(self, i) for i in range(len(pipes))]

    def push(self, index: int, chunk: Any) -> None:
        with self._lock:
            if self.call.done or index < self._current:
                raise RpcError(_CLOSED, "push after the end of the pipe")
            if index > self._current:
                raise RpcError(_WRONG_ORDER, "an earlier [out] pipe has not ended")
            writer = self._writers[index]
            if not len(chunk):
                self._end_current()
                return
            data = writer.chunk(chunk)  # NdrError for a chunk that does not marshal
            if self._held:
                data = self._held + data
                self._held = b""
            self.link.send_part(self.call, data)
        self.link.wait_writable()

    def _end_current(self) -> None:  # under self._lock
        writer = self._writers[self._current]
        self._held += writer.end()
        self._current += 1
        if self._current < len(self._types):
            self._writers.append(PipeWriter(self._types[self._current], offset=writer.offset))

    def finish(self) -> tuple[bytes, int]:
        """End every pipe still open: (the octets not sent yet, the stub offset after them)."""
        with self._lock:
            while self._current < len(self._types):
                self._end_current()
            held, self._held = self._held, b""
            return held, self._writers[-1].offset


class PipeOut:
    """An [out] pipe (module docstring): ``push(chunk)``; an empty chunk ends the pipe."""

    __slots__ = ("_index", "_stream")

    def __init__(self, stream: OutStream, index: int) -> None:
        self._stream = stream
        self._index = index

    def push(self, chunk: Any) -> None:
        """Send ``chunk`` now (an empty one ends the pipe).

        Raises:
            RpcError: RPC_X_PIPE_CLOSED after the end, RPC_X_WRONG_PIPE_ORDER before an
                earlier pipe ended; NdrError for a chunk that does not marshal.
        """
        self._stream.push(self._index, chunk)

    async def drain(self) -> None:
        """Wait (on the loop) until the connection's write buffer is below its high-water
        mark: the flow control of a manager pushing from the loop."""
        await self._stream.link.drained()
