"""The requests on a named-pipe end (``_pipes.PipeEnd``): read, write, transact, flush, connect.

Each is a LOCAL operation (never given to a backend) completed in-process through the usual funnel
(``Operation.complete`` -> ``_dispatch.deliver``), so events, the file object, completion ports,
completion routines, CancelIo/CancelIoEx/CancelSynchronousIo and the thread-exit rule all apply
unchanged. The state rules they apply (what each end state gives, PIPE_NOWAIT, the write quota,
message mode) are written in ``_pipes``' docstring; the data queue is ``_pipe_queue.Stream``.

Invariants: a request decides its outcome under ``_pipe_queue.LOCK`` and delivers the
completions it caused (``Done``) after releasing it; a request that waits is in exactly one of
its end's queues (a stream's ``readers``/``flushers``/``chunks``, or ``connect_ops``), and a
cancel withdraws it from that queue (``_withdraw_locked``) before it completes cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from ..codes import NtStatus
from ._backend import OpKind
from ._interrupts import carried, carry, interrupt
from ._ops import CompletionRoutine, Operation
from ._overlapped import Overlapped
from ._pipe_queue import LOCK, Chunk, Done, Stream, deliver, delivered_again

if TYPE_CHECKING:
    from ._pipes import PipeEnd

__all__ = [
    "ConnectPipeOp",
    "PipeFlushOp",
    "PipeReadOp",
    "PipeTransactOp",
    "PipeWriteOp",
]

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
_CLOSING = int(NtStatus.STATUS_PIPE_CLOSING)
_LISTENING = int(NtStatus.STATUS_PIPE_LISTENING)
_CONNECTED = int(NtStatus.STATUS_PIPE_CONNECTED)
_DISCONNECTED = int(NtStatus.STATUS_PIPE_DISCONNECTED)
_EMPTY = int(NtStatus.STATUS_PIPE_EMPTY)
_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_BAD_READ_MODE = int(NtStatus.STATUS_INVALID_READ_MODE)
_BUSY = int(NtStatus.STATUS_PIPE_BUSY)


class _PipeOp(Operation):
    """A request on a pipe end: LOCAL (completed in-process); on cancel it withdraws itself
    from the queue that holds it (``_withdraw_locked``) before completing cancelled."""

    __slots__ = ()
    kind = OpKind.LOCAL

    @property
    def end(self) -> PipeEnd:
        """The pipe end this request is on."""
        # Only a PipeEnd makes these requests (its ``read_op`` & co.); ``cast`` instead of an
        # isinstance check keeps ``_pipes`` (which makes them) out of this module's imports.
        return cast("PipeEnd", self.file)

    def _withdraw_locked(self, done: Done) -> None:
        raise NotImplementedError

    def cancel_local(self) -> None:
        done: Done = []
        with LOCK:
            self._withdraw_locked(done)
        deliver(done)
        self.complete(_CANCELLED, 0)


class PipeReadOp(_PipeOp):
    """ReadFile on a pipe end (message aware)."""

    __slots__ = ("buffer",)

    def __init__(
        self,
        end: PipeEnd,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None,
    ) -> None:
        super().__init__(end, overlapped, routine)
        self.buffer = buffers[0] if len(buffers) == 1 else memoryview(
            bytearray(sum(len(b) for b in buffers))
        )  # fmt: skip

    def take(self, stream: Stream, done: Done) -> tuple[int, int]:
        """Complete from ``stream`` (data is there, or the stream is closed)."""
        if not stream.chunks:
            return stream.closed or _BROKEN, 0
        return stream.read_into(self.buffer, self.end.read_message, done)

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        done: Done = []
        stream = None
        result = None
        try:
            with LOCK:
                status = end.state_status()
                stream = end.incoming
                if status is not None or stream is None:
                    return status or _DISCONNECTED, 0
                if stream.readers or not (stream.chunks or stream.closed is not None):
                    if end.nowait and not self.submitted:
                        return _EMPTY, 0
                    stream.readers.append(self)  # wait in line (issue order, #66)
                    return None
                result = self.take(stream, done)
                stream.pump(done)
            deliver(done)
            return result
        except BaseException as exc:
            if interrupt(exc) and stream is not None:
                _cut(exc, stream, done, result, self in stream.readers)
            raise

    def _withdraw_locked(self, done: Done) -> None:
        stream = self.end.incoming
        if stream is not None and self in stream.readers:
            stream.readers.remove(self)


class PipeTransactOp(PipeReadOp):
    """TransactNamedPipe: one message out (never waits for the quota), one message in.

    [W:k32/pipe.c:test_transact]: needs message read mode (else ERROR_BAD_PIPE) and an empty
    read queue (else ERROR_PIPE_BUSY); a cancel only withdraws the read, the message stays sent.
    """

    __slots__ = ("data",)

    def __init__(
        self,
        end: PipeEnd,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        data: memoryview | bytes,
    ) -> None:
        super().__init__(end, overlapped, buffers, None)
        self.data = data

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        done: Done = []
        with LOCK:
            incoming, outgoing = end.incoming, end.outgoing
            if end.state != "connected" or incoming is None or outgoing is None:
                return end._no_connection_status(), 0
            if not end.read_message:
                return _BAD_READ_MODE, 0
            if incoming.chunks:
                return _BUSY, 0
            outgoing.chunks.append(Chunk(bytes(self.data), None))
            outgoing.buffered += len(self.data)
            outgoing.pump(done)
            incoming.readers.append(self)
        deliver(done)
        return None


class PipeWriteOp(_PipeOp):
    """WriteFile on a pipe end: buffered at once when it fits the quota, else pending."""

    __slots__ = ("chunk", "data", "nbytes")

    def __init__(
        self,
        end: PipeEnd,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None,
    ) -> None:
        super().__init__(end, overlapped, routine)
        self.data: memoryview | bytes = buffers[0] if len(buffers) == 1 else b"".join(buffers)
        self.nbytes = len(self.data)
        self.chunk: Chunk | None = None

    def may_overtake(self) -> bool:
        return not self.nbytes

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        done: Done = []
        stream = None
        result = None
        try:
            with LOCK:
                status = end.state_status()
                stream = end.outgoing
                if status is not None or stream is None:
                    return status or _DISCONNECTED, 0
                if stream.closed is not None:
                    return (_CLOSING if stream.closed == _BROKEN else stream.closed), 0
                result = self._write_locked(stream, end.nowait, done)
            deliver(done)
            return result
        except BaseException as exc:
            if interrupt(exc) and stream is not None:
                chunk = self.chunk
                _cut(exc, stream, done, result, chunk is not None and chunk in stream.chunks)
            raise

    def _write_locked(self, stream: Stream, nowait: bool, done: Done) -> tuple[int, int] | None:
        nbytes = self.nbytes
        if not nbytes:
            if stream.message:  # an empty message: queued in order, never blocks
                stream.chunks.append(Chunk(b"", None))
                stream.pump(done)
            return _SUCCESS, 0
        if nowait and stream.message and nbytes > stream.free_quota() + stream.reader_capacity():
            return (
                _SUCCESS,
                0,
            )  # a message is written whole or not at all [W:k32/pipe.c:test_nowait]
        pending_before = any(chunk.op is not None for chunk in stream.chunks)
        if not pending_before and stream.buffered + nbytes <= stream.quota:
            chunk = Chunk(bytes(self.data), None)
            # (from the count to the append no call; a Ctrl-C once the bytes are in the pipe
            # carries the write's result out: ``_interrupts.carry``)
            try:
                stream.buffered += nbytes
                stream.chunks.append(chunk)
                stream.pump(done)
            except BaseException as exc:
                carry(exc, ((_SUCCESS, nbytes),))
                raise
            return _SUCCESS, nbytes
        # Pending, holding its own data (readable at once, removable on cancel). (A Ctrl-C
        # once it is queued: ``try_now`` finds it in the pipe, pending.)
        chunk = self.chunk = Chunk(memoryview(self.data), self)
        stream.chunks.append(chunk)
        stream.pump(done)
        for index, (op, status, information) in enumerate(done):
            if op is self:  # a waiting reader took all of it: finished inside the call
                del done[index]
                return status, information
        if nowait:  # keep what the readers took, drop the rest
            stream.chunks.remove(chunk)
            self.chunk = None
            stream.pump(done)
            return _SUCCESS, chunk.pos
        return None

    def _withdraw_locked(self, done: Done) -> None:
        stream = self.end.outgoing
        chunk = self.chunk
        if stream is not None and chunk is not None and chunk in stream.chunks:
            stream.chunks.remove(chunk)  # its unread bytes leave the pipe (§7)
            self.chunk = None
            stream.pump(done)


class PipeFlushOp(_PipeOp):
    """FlushFileBuffers: completes when the peer has read everything this end wrote."""

    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        with LOCK:
            if end.pipe is None:
                return _DISCONNECTED, 0  # a client cut by DisconnectNamedPipe
            stream = end.outgoing
            if end.state != "connected" or stream is None or not stream.chunks:
                return _SUCCESS, 0  # nothing to wait for [W:nt/pipe.c:test_pipe_state]
            stream.flushers.append(self)
            return None

    def _withdraw_locked(self, done: Done) -> None:
        stream = self.end.outgoing
        if stream is not None and self in stream.flushers:
            stream.flushers.remove(self)


class ConnectPipeOp(_PipeOp):
    """ConnectNamedPipe: completed in-process by a client's CreateFile."""

    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        with LOCK:
            state = end.state
            if state == "connected":
                return _CONNECTED, 0
            if state == "closing":
                return _CLOSING, 0
            pipe = end.pipe
            assert pipe is not None  # server ends keep their pipe
            pipe.listen(end)  # a disconnected instance listens again (joins the FIFO's tail)
            if end.nowait:
                return _LISTENING, 0  # PIPE_NOWAIT never pends [W:k32/pipe.c:test_nowait]
            end.connect_ops.append(self)
        return None

    def _withdraw_locked(self, done: Done) -> None:
        end = self.end
        if self in end.connect_ops:
            end.connect_ops.remove(self)


def _cut(
    exc: BaseException,
    stream: Stream,
    done: Done,
    result: tuple[int, int] | None,
    queued: bool,
) -> None:
    """An interrupt ``exc`` (Ctrl-C) cut a read's or a write's copy (``try_now``): what it
    decided is finished before the interrupt goes on - the stream pumped again (a pump it cut),
    the completions it caused delivered (the other end's requests), and its own outcome
    carried out (``_interrupts.carry``) for ``_issue.start`` to finish: its ``result`` (or the
    one its copy carried), or pending when it is ``queued`` in the pipe (a reader in line, a
    pending write's chunk). Nothing moved and not queued: nothing carried (never issued)."""
    tried = carried(exc)
    if tried is not None:
        result = tried[0]
    try:
        with LOCK:
            stream.pump(done)
    except BaseException as again:  # (a second interrupt: the first one goes on)
        if not interrupt(again):
            raise
    delivered_again(done)
    if result is not None:
        carry(exc, (result,))
    elif queued:
        carry(exc, (None,))
