"""The NPFS data queue of one direction of a named-pipe connection (``_pipes``).

Purpose: the exact Windows model that a kernel socket cannot give (spec §7, §10,
[W:k32/pipe.c:test_blocking_rw]): a FIFO of chunks, one per write. The reference model is Wine's
``server/named_pipe.c`` (``message_queue_read``, ``reselect_write_queue``, ``pipe_end_peek``),
whose behaviour the kernel32/ntdll pipe tests pin down on real Windows.

Invariants:
- A chunk holds either copied bytes (a write that fit in the quota and has completed,
  ``op`` None; counted in ``buffered``) or a *pending* write's own buffer (``op`` set): its
  bytes are readable at once, and cancelling it removes what is still unread.
- Writes complete in FIFO order: a pending write completes when the reader consumed all of it,
  or as soon as its unread rest fits in the quota (``promote``). A zero-length message never
  blocks (it completes at once and stays queued, in order, as an empty message).
- Message read mode (message pipes only): one message per read; a buffer too small gives
  STATUS_BUFFER_OVERFLOW (ERROR_MORE_DATA) and keeps the rest (#65); a zero-byte read of a
  non-empty message is such an overflow with 0 bytes and consumes nothing.
- Byte read mode reads across message boundaries until the buffer is full; an empty message at
  the head is consumed by a read that returns 0 bytes (so a zero-length message write wakes
  exactly one pending read, even a zero-byte one); a zero-byte read of data consumes nothing.
- Nothing here completes a request: completions are collected in a ``Done`` list under the
  pipes' lock (``LOCK``) and delivered (``deliver``) after it is released.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

from ..codes import NtStatus
from ._ops import Operation

if TYPE_CHECKING:
    from ._pipe_ops import PipeFlushOp, PipeReadOp, PipeWriteOp

__all__ = ["LOCK", "Chunk", "Done", "Stream", "deliver"]

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_OVERFLOW = int(NtStatus.STATUS_BUFFER_OVERFLOW)

#: Guards every pipe's state (instances, connections, queues). Reentrant: a completion is never
#: delivered under it, but bookkeeping helpers call each other.
LOCK = threading.RLock()

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

    def free_quota(self) -> int:
        """Bytes a new write may still buffer without pending."""
        return max(0, self.quota - self.buffered)

    def read_into(self, buf: memoryview, message_mode: bool, done: Done) -> tuple[int, int]:
        """Consume data into ``buf`` (the queue is not empty). Returns (status, bytes)."""
        chunks = self.chunks
        if message_mode and self.message:
            # One message per read; what does not fit stays for the next read (#65).
            head = chunks[0]
            n = self._take(head, buf, 0)
            if head.left == 0:
                self._pop(done)
                return _SUCCESS, n
            return _OVERFLOW, n
        got = 0
        size = len(buf)
        while True:  # Wine's do-while: an empty head message is consumed even by a 0-byte read
            chunk = chunks[0]
            got += self._take(chunk, buf, got)
            if chunk.left == 0:
                self._pop(done)
            if got >= size or not chunks:
                return _SUCCESS, got

    def peek(self, size: int) -> tuple[bytes, int, int]:
        """PeekNamedPipe's view: (data, total available, length left in the head message).

        Message pipes return at most the head message [W:k32/pipe.c:test_peek_pipe].
        """
        avail = self.available()
        message_length = self.chunks[0].left if self.message and avail else 0
        limit = min(size, avail, message_length) if self.message and avail else min(size, avail)
        data = bytearray()
        for chunk in self.chunks:
            if len(data) >= limit:
                break
            data += chunk.data[chunk.pos : chunk.pos + limit - len(data)]
        return bytes(data), avail, message_length

    def _take(self, chunk: Chunk, buf: memoryview, at: int) -> int:
        n = min(len(buf) - at, chunk.left)
        if n:
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

    def reader_capacity(self) -> int:
        """Bytes the waiting readers would take at once (PIPE_NOWAIT write sizing)."""
        return sum(len(reader.buffer) for reader in self.readers)

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
