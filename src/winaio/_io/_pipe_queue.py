"""The NPFS data queue of one direction of a named-pipe connection (``_pipes``).

Purpose: the exact Windows model that a kernel socket cannot give (spec §7, §10,
[W:k32/pipe.c:test_blocking_rw]): a FIFO of chunks, one per write.

Invariants:
- A chunk holds either copied bytes (a write that fit in the quota and has completed,
  ``op`` None; counted in ``buffered``) or a *pending* write's own buffer (``op`` set): its
  bytes are readable at once, and cancelling it removes what is still unread.
- Writes complete in FIFO order: a pending write completes when the reader consumed all of it,
  or as soon as its unread rest fits in the quota (``promote``).
- Message mode keeps write boundaries: one message per read, the rest kept with
  STATUS_BUFFER_OVERFLOW (ERROR_MORE_DATA, #65); byte mode reads across boundaries.
- Nothing here completes a request: completions are collected in a ``Done`` list under the
  pipes' lock and delivered (``deliver``) after it is released.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..codes import NtStatus
from ._ops import Operation

if TYPE_CHECKING:
    from ._pipes import PipeFlushOp, PipeReadOp, PipeWriteOp

__all__ = ["Chunk", "Done", "Stream", "deliver"]

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_OVERFLOW = int(NtStatus.STATUS_BUFFER_OVERFLOW)

#: Completions decided under the lock, delivered after it: (op, status, information).
Done = list[tuple[Operation, int, int]]


def deliver(done: Done) -> None:
    for op, status, information in done:
        op.complete(status, information)


class Chunk:
    """One write in a stream: copied bytes (``op`` None) or a pending write's own buffer."""

    __slots__ = ("data", "op", "pos")

    def __init__(self, data: memoryview | bytes, op: PipeWriteOp | None) -> None:
        self.data = data
        self.pos = 0
        self.op = op

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


class Stream:
    """One direction of a connection: the NPFS data queue (module docstring)."""

    __slots__ = ("buffered", "chunks", "closed", "flushers", "message", "quota", "readers")

    def __init__(self, quota: int, message: bool) -> None:
        self.quota = quota
        self.message = message
        self.chunks: deque[Chunk] = deque()
        self.buffered = 0  # bytes of completed (copied) writes not yet read
        self.readers: deque[PipeReadOp] = deque()
        self.flushers: deque[PipeFlushOp] = deque()
        #: None while open; else the status requests now get (writer gone / disconnected).
        self.closed: int | None = None

    def available(self) -> int:
        return sum(chunk.left for chunk in self.chunks)

    def read_into(self, buf: memoryview, message_mode: bool, done: Done) -> tuple[int, int]:
        """Consume data into ``buf`` (the queue is not empty). Returns (status, bytes)."""
        chunks = self.chunks
        if message_mode and self.message:
            # One message per read; what does not fit stays for the next read (#65).
            n = self._take(chunks[0], buf, 0)
            if chunks[0].left == 0:
                self._pop(done)
                return _SUCCESS, n
            return _OVERFLOW, n
        got = 0
        while chunks and got < len(buf):
            chunk = chunks[0]
            got += self._take(chunk, buf, got)
            if chunk.left == 0:
                self._pop(done)  # fully read (or an empty message, skipped in byte mode)
        return _SUCCESS, got

    def _take(self, chunk: Chunk, buf: memoryview, at: int) -> int:
        n = min(len(buf) - at, chunk.left)
        buf[at : at + n] = chunk.data[chunk.pos : chunk.pos + n]
        chunk.pos += n
        if chunk.op is None:
            self.buffered -= n
        return n

    def _pop(self, done: Done) -> None:
        chunk = self.chunks.popleft()
        if chunk.op is not None:
            done.append((chunk.op, _SUCCESS, chunk.op.nbytes))  # the reader took all of it
            chunk.op.chunk = None

    def promote(self, done: Done) -> None:
        """Pending writes whose unread rest now fits in the quota become buffered: complete."""
        for chunk in self.chunks:
            op = chunk.op
            if op is None:
                continue
            if self.buffered + chunk.left > self.quota:
                break  # FIFO: a later write cannot complete before an earlier one
            chunk.data = bytes(chunk.data[chunk.pos :])
            chunk.pos = 0
            chunk.op = None
            op.chunk = None
            self.buffered += len(chunk.data)
            done.append((op, _SUCCESS, op.nbytes))

    def pump(self, done: Done) -> None:
        """Serve waiting readers, then promote writes and release flushers."""
        readers = self.readers
        while readers and (self.chunks or self.closed is not None):
            reader = readers.popleft()
            done.append((reader, *reader.take(self, done)))
        self.promote(done)
        if not self.chunks or self.closed is not None:
            status = _SUCCESS if not self.chunks else self.closed
            while self.flushers:
                done.append((self.flushers.popleft(), status or _SUCCESS, 0))

    def shut(self, status: int, done: Done, drop_data: bool) -> None:
        """The connection ended for this direction: fail what waits (``status``)."""
        self.closed = status
        if drop_data:
            for chunk in self.chunks:
                if chunk.op is not None:
                    done.append((chunk.op, status, 0))
                    chunk.op.chunk = None
            self.chunks.clear()
            self.buffered = 0
        while self.readers and not self.chunks:
            done.append((self.readers.popleft(), status, 0))
        while self.flushers:
            done.append((self.flushers.popleft(), status, 0))
