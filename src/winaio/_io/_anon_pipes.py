"""The named-pipe queries on anonymous pipes: PeekNamedPipe and GetNamedPipeInfo on CreatePipe's
ends.

On Windows an anonymous pipe is a named pipe without a name: CreatePipe creates the server end
for reading and opens the client end for writing, byte mode, one instance, both buffer sizes
``nSize`` (0: 4096) [W:k32/pipe.c:test_CreatePipe] - so ported code polls a child's output with
PeekNamedPipe. Here the ends are Linux pipes (``_streams.StreamFile``); this module answers:
- PeekNamedPipe on the read end: the bytes available (FIONREAD) and a copy of the first ones,
  not consumed (tee(2) into a scratch pipe); empty with no writer left -> ERROR_BROKEN_PIPE
  [W:k32/pipe.c:test_CreatePipe]. On the write end, which has no read access:
  ERROR_ACCESS_DENIED [MS:PeekNamedPipe].
- GetNamedPipeInfo: the read end reports PIPE_SERVER_END, both ends PIPE_TYPE_BYTE (0), the
  requested sizes and one instance [W:k32/pipe.c:test_CreatePipe].
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import stat
import struct
import termios
import weakref

from ..codes import WinError
from ..errors import Win32Error
from ._files import FileObject
from ._streams import StreamFile, create_pipe

__all__ = ["DEFAULT_SIZE", "anonymous_pipe_info", "create_anonymous_pipe", "is_anonymous_pipe",
           "peek_anonymous_pipe"]  # fmt: skip

DEFAULT_SIZE = 4096
_F_GETPIPE_SZ, _F_SETPIPE_SZ = 1032, 1031
_SPLICE_F_NONBLOCK = 0x02
_PIPE_SERVER_END = 0x01
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.tee.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint)
_LIBC.tee.restype = ctypes.c_ssize_t
#: The ``nSize`` each CreatePipe end was created with (GetNamedPipeInfo reports it).
_SIZES: weakref.WeakKeyDictionary[FileObject, int] = weakref.WeakKeyDictionary()


def create_anonymous_pipe(size: int = 0, overlapped: bool = False) -> tuple[StreamFile, StreamFile]:
    """CreatePipe: (read end, write end), remembering ``size`` for GetNamedPipeInfo."""
    read_end, write_end = create_pipe(overlapped=overlapped, size=size)
    requested = size if size > 0 else DEFAULT_SIZE
    _SIZES[read_end] = _SIZES[write_end] = requested
    return read_end, write_end


def is_anonymous_pipe(file: FileObject) -> bool:
    """True for an anonymous pipe end (a Linux pipe, not a socket or a named pipe)."""
    if file.sock is not None or file.fd < 0 or file.closing:
        return False
    try:
        return stat.S_ISFIFO(os.fstat(file.fd).st_mode)
    except OSError:
        return False


def _is_read_end(file: FileObject) -> bool:
    return fcntl.fcntl(file.fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY


def peek_anonymous_pipe(file: FileObject, size: int) -> tuple[bytes, int]:
    """PeekNamedPipe on an anonymous pipe: (up to ``size`` bytes, bytes available).

    Raises:
        Win32Error: ERROR_ACCESS_DENIED on the write end; ERROR_BROKEN_PIPE when the pipe is
            empty and its writers are gone.
    """
    if not _is_read_end(file):
        raise Win32Error(WinError.ERROR_ACCESS_DENIED, "the write end has no read access")
    available = int(struct.unpack("i", fcntl.ioctl(file.fd, termios.FIONREAD, b"\0" * 4))[0])
    if not available:
        poller = select.poll()
        poller.register(file.fd, select.POLLIN)
        if any(mask & select.POLLHUP for _, mask in poller.poll(0)):
            raise Win32Error(WinError.ERROR_BROKEN_PIPE, "the writer is gone")
        return b"", 0
    if size <= 0:
        return b"", available
    return _tee(file.fd, min(size, available)), available


def _tee(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of pipe ``fd``, left in it (tee(2) into a scratch pipe)."""
    scratch_r, scratch_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        capacity = fcntl.fcntl(fd, _F_GETPIPE_SZ)
        if capacity > fcntl.fcntl(scratch_w, _F_GETPIPE_SZ):
            try:
                fcntl.fcntl(scratch_w, _F_SETPIPE_SZ, capacity)
            except OSError:
                pass  # above pipe-max-size: peek what fits
        copied = _LIBC.tee(fd, scratch_w, size, _SPLICE_F_NONBLOCK)
        if copied <= 0:
            return b""  # drained by a reader meanwhile
        return os.read(scratch_r, copied)
    finally:
        os.close(scratch_r)
        os.close(scratch_w)


def anonymous_pipe_info(file: FileObject) -> tuple[int, int, int, int]:
    """GetNamedPipeInfo on an anonymous pipe: (flags, out size, in size, max instances)."""
    requested = _SIZES.get(file, DEFAULT_SIZE)
    return (_PIPE_SERVER_END if _is_read_end(file) else 0), requested, requested, 1
