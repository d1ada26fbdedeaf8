"""The C structures of the io_uring ABI, and stable addresses for Python buffers.

Purpose: ctypes mirrors of what io_uring_setup(2) and io_uring_enter(2) exchange
(``io_uring_params`` with its ring offsets, ``io_uring_getevents_arg``) and of what the kernel
reads through SQE pointers (``iovec``, ``msghdr``, ``sockaddr``, ``__kernel_timespec``), plus the
way to get an address for a Python buffer that stays valid while the kernel uses it.

Rules:

- Stdlib only; imports nothing from ``winaio``. No I/O, no threads.
- x86-64 / LP64 little-endian layouts only (``abi.probe`` refuses anything else).
- Buffer lifetime is the caller's job. Every helper that hands out an address also returns a
  *keepalive* object; the backend must hold it until the CQE of the operation has been reaped,
  even when the operation was cancelled (liburing issue #733: "Since a CQE will be posted
  regardless for the original request when you do a cancelation, yes you should keep the buffer
  alive until you get a CQE").
"""

from __future__ import annotations

import ctypes
import mmap
import socket
import struct
from collections.abc import Sequence
from typing import TypeAlias

__all__ = [
    "IoUringParams",
    "GeteventsArg",
    "KernelTimespec",
    "Iovec",
    "Msghdr",
    "ReadableBuffer",
    "WritableBuffer",
    "Pin",
    "SockAddress",
    "SockaddrBuffer",
    "pin_writable",
    "pin_readonly",
    "make_iovecs",
    "make_msghdr",
    "make_sockaddr",
    "parse_sockaddr",
    "make_timespec",
]


# --------------------------------------------------------------------------------------------
# io_uring_setup(2) / io_uring_enter(2) arguments


class SqringOffsets(ctypes.Structure):
    """``struct io_sqring_offsets``: byte offsets of the SQ ring fields in its mapping."""

    _fields_ = (
        *((name, ctypes.c_uint32) for name in ("head", "tail", "ring_mask", "ring_entries")),
        *((name, ctypes.c_uint32) for name in ("flags", "dropped", "array", "resv1")),
        ("user_addr", ctypes.c_uint64),
    )


class CqringOffsets(ctypes.Structure):
    """``struct io_cqring_offsets``: byte offsets of the CQ ring fields in its mapping."""

    _fields_ = (
        *((name, ctypes.c_uint32) for name in ("head", "tail", "ring_mask", "ring_entries")),
        *((name, ctypes.c_uint32) for name in ("overflow", "cqes", "flags", "resv1")),
        ("user_addr", ctypes.c_uint64),
    )


class IoUringParams(ctypes.Structure):
    """``struct io_uring_params`` (120 bytes), in and out of io_uring_setup(2)."""

    _fields_ = (
        ("sq_entries", ctypes.c_uint32),
        ("cq_entries", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("sq_thread_cpu", ctypes.c_uint32),
        ("sq_thread_idle", ctypes.c_uint32),
        ("features", ctypes.c_uint32),
        ("wq_fd", ctypes.c_uint32),
        ("resv", ctypes.c_uint32 * 3),
        ("sq_off", SqringOffsets),
        ("cq_off", CqringOffsets),
    )


class GeteventsArg(ctypes.Structure):
    """``struct io_uring_getevents_arg`` (24 bytes) for ``IORING_ENTER_EXT_ARG``."""

    _fields_ = (
        ("sigmask", ctypes.c_uint64),
        ("sigmask_sz", ctypes.c_uint32),
        ("min_wait_usec", ctypes.c_uint32),
        ("ts", ctypes.c_uint64),
    )


# --------------------------------------------------------------------------------------------
# C structures the kernel reads through SQE pointers (LP64)


class KernelTimespec(ctypes.Structure):
    """``struct __kernel_timespec`` (TIMEOUT, LINK_TIMEOUT, io_uring_getevents_arg.ts)."""

    _fields_ = (("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_int64))


class Iovec(ctypes.Structure):
    """``struct iovec``."""

    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class Msghdr(ctypes.Structure):
    """``struct msghdr``. RECVMSG writes ``msg_namelen``, ``msg_controllen`` and ``msg_flags``
    back into it on completion, as recvmsg(2) does."""

    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


# --------------------------------------------------------------------------------------------
# Buffers: addresses the kernel can use, plus the object that keeps them valid

ReadableBuffer: TypeAlias = bytes | bytearray | memoryview | mmap.mmap
WritableBuffer: TypeAlias = bytearray | memoryview | mmap.mmap
Pin: TypeAlias = tuple[int, int, object]
"""``(address, nbytes, keepalive)``: hold ``keepalive`` until the operation's CQE is reaped."""


class _PyBuffer(ctypes.Structure):
    # Py_buffer (Include/pybuffer.h); only ``buf`` is read, the rest sizes the struct.
    _fields_ = (
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    )


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = (ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int)
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = (ctypes.POINTER(_PyBuffer),)
_release_buffer.restype = None

# CPython keeps a bytes object's data inline right after its header, so its address is
# id(b) + (basicsize - 1) and never changes while the object lives. Checked once here against
# the documented route (ctypes.cast); if the layout ever differs, the slow route is used.
_BYTES_DATA = bytes.__basicsize__ - 1
_probe_bytes = b"winaio"
_BYTES_FAST = (
    id(_probe_bytes) + _BYTES_DATA
    == ctypes.cast(ctypes.c_char_p(_probe_bytes), ctypes.c_void_p).value
)


def _nbytes(buf: ReadableBuffer) -> int:
    if type(buf) is memoryview:
        return buf.nbytes
    if type(buf) in (bytes, bytearray, mmap.mmap):
        return len(buf)
    return memoryview(buf).nbytes


def pin_writable(buf: WritableBuffer) -> Pin:
    """Address of a writable, C-contiguous buffer (bytearray, mmap, writable memoryview).

    The keepalive is a ctypes object holding a buffer export on ``buf``: while it lives a
    bytearray cannot be resized (so it cannot move) and an mmap cannot be closed.

    Raises:
        TypeError: ``buf`` is read-only or not C-contiguous.
    """
    n = _nbytes(buf)
    if n == 0:
        return 0, 0, buf
    anchor = ctypes.c_char.from_buffer(buf)
    return ctypes.addressof(anchor), n, anchor


def pin_readonly(buf: ReadableBuffer) -> Pin:
    """Address of any C-contiguous buffer the kernel will only read (WRITE, SEND, WRITEV...).

    ``bytes`` are immutable and never move, so the keepalive is the object itself (no copy).
    Writable buffers are pinned as in :func:`pin_writable`. Other read-only buffers (a
    memoryview slice of bytes, a read-only mmap) are pinned through a memoryview, which holds
    an export on the underlying object.
    """
    if type(buf) is bytes:
        if _BYTES_FAST:
            return id(buf) + _BYTES_DATA, len(buf), buf
        addr = ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value  # pragma: no cover
        return int(addr or 0), len(buf), buf  # pragma: no cover
    view = memoryview(buf)
    if not view.readonly:
        return pin_writable(view)
    if view.nbytes == 0:
        return 0, 0, view
    pybuf = _PyBuffer()
    if _get_buffer(view, ctypes.byref(pybuf), 0) != 0:  # pragma: no cover (raises instead)
        raise BufferError("PyObject_GetBuffer failed")
    addr = int(pybuf.buf or 0)
    _release_buffer(ctypes.byref(pybuf))  # the memoryview we return keeps the export alive
    return addr, view.nbytes, view


def make_iovecs(bufs: Sequence[ReadableBuffer], *, writable: bool) -> Pin:
    """A ``struct iovec[]`` for READV/WRITEV/SENDMSG/RECVMSG: ``(address, count, keepalive)``.

    ``writable=True`` for READV/RECVMSG (the kernel writes into the buffers).
    """
    arr = (Iovec * len(bufs))()
    keep: list[object] = [arr]
    for i, buf in enumerate(bufs):
        if writable:
            if isinstance(buf, bytes):
                raise TypeError("bytes cannot receive data; use a bytearray")
            addr, n, anchor = pin_writable(buf)
        else:
            addr, n, anchor = pin_readonly(buf)
        arr[i].iov_base = addr
        arr[i].iov_len = n
        keep.append(anchor)
    return ctypes.addressof(arr), len(bufs), keep


def make_msghdr(
    bufs: Sequence[ReadableBuffer],
    *,
    writable: bool,
    name: SockaddrBuffer | bytes | None = None,
    control: bytearray | bytes | None = None,
) -> tuple[int, Msghdr, object]:
    """A ``struct msghdr`` for SENDMSG/RECVMSG: ``(address, msghdr, keepalive)``.

    Args:
        bufs: the data buffers (scatter/gather list).
        writable: True for RECVMSG.
        name: SENDMSG: a destination from :func:`make_sockaddr`; RECVMSG: a
            :class:`SockaddrBuffer` that receives the source address.
        control: ancillary data buffer (bytearray for RECVMSG).

    After a RECVMSG completes, ``msghdr.msg_namelen``/``msg_controllen``/``msg_flags`` hold the
    values the kernel wrote back.
    """
    iov_addr, iov_n, iov_keep = make_iovecs(bufs, writable=writable)
    hdr = Msghdr()
    hdr.msg_iov = iov_addr
    hdr.msg_iovlen = iov_n
    keep: list[object] = [hdr, iov_keep]
    if isinstance(name, SockaddrBuffer):
        hdr.msg_name = name.addr
        hdr.msg_namelen = name.capacity
        keep.append(name)
    elif name is not None:
        hdr.msg_name, hdr.msg_namelen, anchor = pin_readonly(name)
        keep.append(anchor)
    if control is not None:
        if writable and isinstance(control, bytes):
            raise TypeError("bytes cannot receive ancillary data; use a bytearray")
        pinned = pin_writable(control) if isinstance(control, bytearray) else pin_readonly(control)
        hdr.msg_control, hdr.msg_controllen, anchor = pinned
        keep.append(anchor)
    return ctypes.addressof(hdr), hdr, keep


def make_timespec(seconds: float) -> KernelTimespec:
    """A relative ``__kernel_timespec``; negative values are clamped to zero."""
    ns = max(0, round(seconds * 1e9))
    return KernelTimespec(ns // 1_000_000_000, ns % 1_000_000_000)


# --------------------------------------------------------------------------------------------
# sockaddr (numeric addresses only: no name resolution in this layer)

_SA_FAMILY = struct.Struct("<H")
_SIN = struct.Struct("<H2s4s8x")  # family, port (network order), in_addr
_SIN6 = struct.Struct("<H2s4s16sI")  # family, port, flowinfo (network order), in6_addr, scope
_UNIX_PATH_MAX = 108
_SOCKADDR_STORAGE = 128

SockAddress: TypeAlias = tuple[str, int] | tuple[str, int, int, int] | str | bytes


def make_sockaddr(family: int, address: SockAddress) -> bytes:
    """Pack a socket-module style address into a ``struct sockaddr`` for CONNECT or SENDMSG.

    ``AF_INET``: ``(host, port)``; ``AF_INET6``: ``(host, port[, flowinfo[, scope_id]])``;
    ``AF_UNIX``: a path (str or bytes; a leading NUL byte means the abstract namespace).
    Hosts must be numeric. The result is ``bytes``; its length is the socklen to pass.
    """
    if family == socket.AF_INET and isinstance(address, tuple):
        return _SIN.pack(
            family, address[1].to_bytes(2, "big"), socket.inet_pton(family, address[0])
        )
    if family == socket.AF_INET6 and isinstance(address, tuple):
        host, port, flowinfo, scope_id = (*address, 0, 0)[:4]
        return _SIN6.pack(
            family,
            port.to_bytes(2, "big"),
            flowinfo.to_bytes(4, "big"),
            socket.inet_pton(family, host),
            scope_id,
        )
    if family == socket.AF_UNIX and isinstance(address, str | bytes):
        path = address.encode() if isinstance(address, str) else address
        if path[:1] != b"\0":
            path += b"\0"  # filesystem names are NUL-terminated; abstract ones are not
        if len(path) > _UNIX_PATH_MAX:
            raise ValueError("AF_UNIX path too long")
        return _SA_FAMILY.pack(family) + path
    raise ValueError(f"unsupported address family {family} / address {address!r}")


def parse_sockaddr(data: bytes | bytearray | memoryview) -> SockAddress:
    """Inverse of :func:`make_sockaddr`, with the socket module's conventions."""
    data = bytes(data)
    if len(data) < 2:
        return ""  # unnamed (e.g. the peer of an unbound AF_UNIX socket)
    (family,) = _SA_FAMILY.unpack_from(data)
    if family == socket.AF_INET:
        _, port, addr = _SIN.unpack_from(data)
        return socket.inet_ntop(family, addr), int.from_bytes(port, "big")
    if family == socket.AF_INET6:
        _, port, flow, addr, scope = _SIN6.unpack_from(data)
        host = socket.inet_ntop(family, addr)
        return host, int.from_bytes(port, "big"), int.from_bytes(flow, "big"), scope
    if family == socket.AF_UNIX:
        path = data[2:]
        if path[:1] == b"\0":
            return path  # abstract: bytes, as the socket module returns them
        return path.split(b"\0", 1)[0].decode(errors="surrogateescape")
    raise ValueError(f"unsupported address family {family}")


class SockaddrBuffer:
    """A ``sockaddr_storage`` plus its ``socklen_t`` that the kernel fills in.

    ACCEPT takes ``addr`` and ``len_addr``; RECVMSG takes the object through
    :func:`make_msghdr`. The object is its own keepalive.
    """

    __slots__ = ("_len", "_storage", "addr", "capacity", "len_addr")

    def __init__(self) -> None:
        self.capacity = _SOCKADDR_STORAGE
        self._storage = (ctypes.c_char * _SOCKADDR_STORAGE)()
        self._len = ctypes.c_uint32(_SOCKADDR_STORAGE)
        self.addr = ctypes.addressof(self._storage)
        self.len_addr = ctypes.addressof(self._len)

    @property
    def length(self) -> int:
        """The socklen the kernel wrote back (ACCEPT)."""
        return int(self._len.value)

    def parse(self, length: int | None = None) -> SockAddress:
        """Decode the address; ``length`` defaults to :attr:`length` (RECVMSG: msg_namelen)."""
        n = self.length if length is None else length
        return parse_sockaddr(self._storage.raw[: min(n, self.capacity)])
