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
from ._interrupts import carried, carry, interrupt
from ._ops import Operation

if TYPE_CHECKING:
    from ._pipe_ops import PipeFlushOp, PipeReadOp, PipeWriteOp

__all__ = ["LOCK", "Chunk", "Done", "Stream", "deliver", "delivered_again"]

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_OVERFLOW = int(NtStatus.STATUS_BUFFER_OVERFLOW)

#: Guards every pipe's state (instances, connections, queues). Reentrant: a completion is never
#: delivered under it, but bookkeeping helpers call each other.
LOCK = threading.RLock()

#: Completions decided under the lock, delivered after it: (op, status, information).
Done = list[tuple[Operation, int, int]]


def deliver(done: Done) -> None:
    """Complete each request of ``done``. A Ctrl-C cutting it completes the rest before it goes
    on (``Operation.complete`` delivers once: a request completed already is passed over)."""
    try:
        for op, status, information in done:
            op.complete(status, information)
    except BaseException as exc:
        if interrupt(exc):
            delivered_again(done)
        raise


def delivered_again(done: Done) -> None:
    """:func:`deliver`'s rest after an interrupt: every request of ``done`` not completed yet
    (a second interrupt stops it; the first one goes on)."""
    try:
        for op, status, information in done:
            if not op.done:
                op.complete(status, information)
    except BaseException as again:
        if not interrupt(again):
            raise


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
        got = 0
        chunk: Chunk | None = None
        message = message_mode and self.message
        # (At every check point here ``got`` is what was copied: a Ctrl-C carries the read's
        # result out, its consumed head chunk popped - :meth:`_read_cut`.)
        try:
            if message:
                # One message per read; what does not fit stays for the next read (#65).
                chunk = chunks[0]
                got = self._take(chunk, buf, 0)
                if chunk.left == 0:
                    self._pop(done)
                    return _SUCCESS, got
                return _OVERFLOW, got
            size = len(buf)
            while True:  # Wine's do-while: an empty head message is consumed even by a 0-byte read
                chunk = chunks[0]
                got += self._take(chunk, buf, got)
                if chunk.left == 0:
                    self._pop(done)
                if got >= size or not chunks:
                    return _SUCCESS, got
        except BaseException as exc:
            if chunk is not None and interrupt(exc) and (got or chunk.left == 0):
                self._read_cut(exc, chunk, got, message, done)
            raise

    def _read_cut(
        self, exc: BaseException, chunk: Chunk, got: int, message: bool, done: Done
    ) -> None:
        """An interrupt cut :meth:`read_into` once it copied ``got`` bytes (or consumed an empty
        message ``chunk``): the chunk it emptied is popped (its write completed), the read's
        result carried out on ``exc`` (``_interrupts.carry``)."""
        whole = chunk.left == 0
        if whole and self.chunks and self.chunks[0] is chunk:
            self._pop(done)
        carry(exc, ((_OVERFLOW if message and not whole else _SUCCESS, got),))

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
        # (no call from the removal to the completion's append: a Ctrl-C at ``popleft()``'s
        # return lost the chunk and its pending write's completion)
        chunks = self.chunks
        chunk = chunks[0]
        del chunks[0]
        op = chunk.op
        if op is not None:
            op.chunk = None
            done.append((op, _SUCCESS, op.nbytes))  # the reader took all of it

    def promote(self, done: Done) -> None:
        """Pending writes whose unread rest now fits in the quota become buffered: complete."""
        for chunk in self.chunks:
            op = chunk.op
            if op is None:
                continue
            if self.buffered + chunk.left > self.quota:
                break  # FIFO: a later write cannot complete before an earlier one
            # (the copy made first, then stored with no call in between: a Ctrl-C leaves the
            # chunk pending or buffered, never half)
            rest = bytes(chunk.data[chunk.pos :])
            n = len(rest)
            chunk.data = rest
            chunk.pos = 0
            chunk.op = None
            op.chunk = None
            self.buffered += n
            done.append((op, _SUCCESS, op.nbytes))

    def pump(self, done: Done) -> None:
        """Serve waiting readers, then promote writes and release flushers."""
        readers = self.readers
        reader = None
        # (a reader leaves the line once served, a flusher with no call before its append: a
        # Ctrl-C at ``popleft()``'s return lost it; one that cut a reader's copy finishes it)
        try:
            while readers and (self.chunks or self.closed is not None):
                reader = readers[0]
                result = reader.take(self, done)
                del readers[0]
                done.append((reader, *result))
            reader = None
            self.promote(done)
            if not self.chunks or self.closed is not None:
                status = _SUCCESS if not self.chunks else self.closed
                flushers = self.flushers
                while flushers:
                    flusher = flushers[0]
                    del flushers[0]
                    done.append((flusher, status or _SUCCESS, 0))
        except BaseException as exc:
            if interrupt(exc):
                self._pump_cut(exc, reader, done)
            raise

    def _pump_cut(self, exc: BaseException, reader: PipeReadOp | None, done: Done) -> None:
        """An interrupt cut :meth:`pump`: a reader whose copy it cut leaves the line with its
        carried result (``_interrupts.carried``), and the rest is pumped again."""
        tried = carried(exc)
        try:
            readers = self.readers
            if tried is not None and reader is not None and readers and readers[0] is reader:
                del readers[0]
                done.append((reader, *tried[0]))
            self.pump(done)
        except BaseException as again:  # (a second interrupt: the first one goes on)
            if not interrupt(again):
                raise

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
