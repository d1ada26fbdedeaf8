"""Stream file objects: anonymous pipes (win32-async-spec §10), and the base of sockets
(``_sockets.Socket``).

Facts encoded here:
- A read on a pipe whose writer is gone fails with ERROR_BROKEN_PIPE: at once (no notification)
  when issued after the fact, as a completion when the request was pending (#51, #90).
- A write to a pipe whose reader is gone fails with ERROR_NO_DATA when issued after the fact;
  a write that was pending when the peer went away completes with ERROR_BROKEN_PIPE (#120).

Every descriptor here is non-blocking; blocking (synchronous-handle) semantics are provided
by ``_files.run_sync`` waiting on the request.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from .._kernel import _wait
from ..codes import NtStatus
from ..errors import Win32Error
from ._files import FileObject
from ._issue import start
from ._ops import CompletionRoutine, Operation
from ._overlapped import STATUS_PENDING, Overlapped
from ._requests import RequestMethods
from ._stream_ops import StreamReadOp, StreamWriteOp

__all__ = ["PipeWriteOp", "StreamFile", "create_pipe"]

_PIPE_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
_PIPE_CLOSING = int(NtStatus.STATUS_PIPE_CLOSING)


class PipeWriteOp(StreamWriteOp):
    """A pipe write: a reader that is already gone means ERROR_NO_DATA, not a broken pipe."""

    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        result = super().try_now()
        if result is not None and result[0] == _PIPE_BROKEN and not self.submitted:
            return _PIPE_CLOSING, result[1]
        return result


class StreamFile(RequestMethods, FileObject):
    """A byte stream: an anonymous pipe end (or, through ``_sockets.Socket``, a socket).

    Its descriptor is made non-blocking: backends retry ``try_now`` on their own threads, which
    must never block in a read or a write.
    """

    __slots__ = ()
    #: No page-cache attempt for streams (``_requests.read_file`` looks for one).
    read_now: ClassVar[None] = None

    def __init__(self, fd: int, **kwargs: Any) -> None:
        super().__init__(fd, **kwargs)
        if fd >= 0:
            os.set_blocking(fd, False)

    def start_read(
        self,
        buffer: Any,
        overlapped: Overlapped,
        *,
        size: int | None = None,
        routine: CompletionRoutine | None = None,
    ) -> bool:
        """ReadFile / WSARecv (see :meth:`RequestMethods.start_read`). The hot case - one whole
        writable byte buffer, overlapped, no routine - builds its request at once."""
        if size is None and routine is None and overlapped is not None and self.overlapped:
            cls = buffer.__class__
            try:
                hot = cls is bytearray or (
                    cls is memoryview
                    and not buffer.readonly
                    and buffer.c_contiguous
                    and buffer.ndim == 1
                    and buffer.format == "B"
                )
            except ValueError:  # a released memoryview: the general path reports it
                hot = False
            if hot:
                view = buffer if cls is memoryview else memoryview(buffer)
                return start(self.read_op((view,), overlapped)) != STATUS_PENDING
        return RequestMethods.start_read(self, buffer, overlapped, size=size, routine=routine)

    def start_write(
        self,
        data: Any,
        overlapped: Overlapped,
        *,
        size: int | None = None,
        routine: CompletionRoutine | None = None,
    ) -> bool:
        """WriteFile / WSASend (see :meth:`RequestMethods.start_write`); the hot case as for
        :meth:`start_read`, with read-only buffers too."""
        if size is None and routine is None and overlapped is not None and self.overlapped:
            cls = data.__class__
            if cls is bytes or cls is bytearray:
                return start(self.write_op((memoryview(data),), overlapped)) != STATUS_PENDING
            try:
                hot = cls is memoryview and data.c_contiguous and data.ndim == 1
                hot = hot and data.format == "B"
            except ValueError:  # a released memoryview: the general path reports it
                hot = False
            if hot:
                return start(self.write_op((data,), overlapped)) != STATUS_PENDING
        return RequestMethods.start_write(self, data, overlapped, size=size, routine=routine)

    def read_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """The request object for ReadFile/ReadFileEx."""
        return StreamReadOp(self, overlapped, buffers, routine)

    def write_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """The request object for WriteFile/WriteFileEx."""
        if self.sock is None:
            return PipeWriteOp(self, overlapped, buffers, routine)
        return StreamWriteOp(self, overlapped, buffers, routine)

    def flush(self, timeout: float | None = None) -> None:
        """FlushFileBuffers on a pipe: wait until the reader consumed everything written.

        Raises:
            Win32Error: WAIT_TIMEOUT if ``timeout`` elapses first.
        """
        sock = self.sock
        if sock is None or sock.family != socket.AF_UNIX:
            return  # anonymous pipes and sockets: nothing is buffered on our side
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while _unread(self.fd):
            if deadline is not None and time.monotonic() >= deadline:
                raise Win32Error(258, "the reader did not drain the pipe")
            _wait.sleep(delay, False)  # a kernel wait: counts as blocked for port accounting
            delay = min(delay * 2, 0.02)


def _unread(fd: int) -> int:
    # SIOCOUTQ on an AF_UNIX stream socket: bytes written and not yet read by the peer.
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])


def create_pipe(overlapped: bool = False, size: int = 0) -> tuple[StreamFile, StreamFile]:
    """CreatePipe: (read end, write end). Windows gives synchronous handles; ``overlapped``
    is the Pythonic core's extension for overlapped anonymous pipes."""
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    if size > 0:
        try:
            fcntl.fcntl(write_fd, 1031, size)  # F_SETPIPE_SZ: honour nSize approximately
        except OSError:
            pass
    return (
        StreamFile(read_fd, overlapped=overlapped),
        StreamFile(write_fd, overlapped=overlapped),
    )
