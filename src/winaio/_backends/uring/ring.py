"""The ring as the io_uring backend uses it: an ``SqeSink`` plus a split publish / enter.

Purpose: small additions to :class:`~.abi.Ring` that only the backend needs.

- :class:`BackendRing` *is* the ``SqeSink`` that FILE operations prepare their SQE through
  (``op.prep(ring, user_data)``): it pins the operation's memoryviews, builds the iovec array
  when there is more than one, writes a READ/WRITE (one buffer) or READV/WRITEV SQE, and returns
  the keepalive the backend holds until the CQE (liburing #733).
- :meth:`~BackendRing.withdraw` turns a prepared SQE nobody has submitted into a NOP (a
  cancel that wins without the kernel).
- :meth:`~BackendRing.publish` and :meth:`~BackendRing.enter` split ``Ring.submit()``: the
  backend publishes and submits under its lock (submission) and waits without it
  (``enter(0, 1)``: leaders; ``enter_timeout``), so that waiting threads never hold the lock
  that issuers need.

- The C accelerator (``winaio._io._fastio``, ``_fastring.c``) replaces ``cq_ready``,
  ``cq_has_overflow``, ``sq_ready``, ``reap``, ``publish``, ``enter`` and ``enter_timeout``
  on :class:`BackendRing` with functions of exactly the same effects (slots and the mmapped
  words read directly, io_uring_enter without the GIL, EINTR running the signal handlers);
  the Python methods stay the reference and take every shape the C ones do not handle
  (installed through ``winaio._io._accel``: :func:`_install`).

Rules: SQ side only (prep, publish, a submitting enter) under the backend's lock: the
submitting thread owns what it submits (``uring``). Imports ``abi`` and ``winaio._io._accel``
(the accelerator's switch).
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Sequence

from ..._io import _accel
from .abi import Ring

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python methods run
    _fastio = None  # type: ignore[assignment]
from .abi.consts import EnterFlags, IoringOp, SqRingFlags
from .abi.structs import GeteventsArg, KernelTimespec, make_iovecs, make_msghdr, pin_readonly
from .abi.syscall import ARGSZ_EXT, ARGSZ_NONE, NR_IO_URING_ENTER, _syscall, enter_error

_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof

__all__ = ["BackendRing"]

_GETEVENTS = int(EnterFlags.IORING_ENTER_GETEVENTS)
_EXT_ARG = int(EnterFlags.IORING_ENTER_EXT_ARG)
_U32 = 0xFFFFFFFF
_USER_DATA = struct.Struct("<Q")  # io_uring_sqe.user_data, at byte 32 of the 64-byte SQE
_OP_NOP = int(IoringOp.IORING_OP_NOP)
#: Linux caps one read/write at MAX_RW_COUNT (INT_MAX & PAGE_MASK); the SQE ``len`` is a u32.
_MAX_RW = 0x7FFFF000


class BackendRing(Ring):
    """A :class:`Ring` that is also an ``SqeSink`` (module docstring)."""

    __slots__ = ()

    # -- SqeSink ------------------------------------------------------------------------------

    def readv(self, fd: int, buffers: Sequence[memoryview], offset: int, user_data: int) -> object:
        """A positioned (scatter) read into ``buffers``; returns the keepalive."""
        if len(buffers) == 1:
            # One buffer (the common ReadFile case): READ needs no iovec array. This is
            # pin_writable() inlined for a non-empty memoryview (the hot path: ~0.3 us less).
            buf = buffers[0]
            n = buf.nbytes
            if n:
                anchor = _from_buffer(buf)  # holds an export: the memory cannot move or vanish
                self.prep_read(fd, _addressof(anchor), n if n < _MAX_RW else _MAX_RW, offset,
                               user_data)  # fmt: skip
                return anchor
        iov, count, keep = make_iovecs(buffers, writable=True)
        self.prep_readv(fd, iov, count, offset, user_data)
        return keep

    def writev(self, fd: int, buffers: Sequence[memoryview], offset: int, user_data: int) -> object:
        """A positioned (gather) write of ``buffers``; returns the keepalive."""
        if len(buffers) == 1:
            addr, n, keep = pin_readonly(buffers[0])
            self.prep_write(fd, addr, min(n, _MAX_RW), offset, user_data)
            return keep
        iov, count, keep = make_iovecs(buffers, writable=False)
        self.prep_writev(fd, iov, count, offset, user_data)
        return keep

    def recv(self, fd: int, buffers: Sequence[memoryview], flags: int, user_data: int) -> object:
        """A socket receive into ``buffers`` (RECV, or RECVMSG for several); the keepalive."""
        if len(buffers) == 1:
            buf = buffers[0]
            anchor = _from_buffer(buf)
            self.prep_recv(fd, _addressof(anchor), buf.nbytes, user_data, 0, flags)
            return anchor
        addr, _, keep = make_msghdr(buffers, writable=True)
        self.prep_recvmsg(fd, addr, user_data, 0, flags)
        return keep

    def withdraw(self, user_data: int, nop_user_data: int) -> bool:
        """Turn the prepared but unconsumed SQE with ``user_data`` into a NOP with
        ``nop_user_data``; False if there is none. Only safe while nobody can submit (the
        backend's lock: every submitting enter happens under it)."""
        u32 = self._sq_u32
        head = u32[self._sq_head_i]
        sqes = self._sqes
        mask = self._sq_mask
        for i in range((self._sq_tail - head) & _U32):
            offset = ((head + i) & mask) << 6
            if _USER_DATA.unpack_from(sqes, offset + 32)[0] == user_data:
                # A NOP touches nothing: its other fields may stay as they are.
                sqes[offset] = _OP_NOP
                _USER_DATA.pack_into(sqes, offset + 32, nop_user_data)
                return True
        return False

    # -- split submit -------------------------------------------------------------------------

    def publish(self) -> int:
        """Make every prepared SQE visible to the kernel; return how many it has not consumed.

        The u32 store of the tail is the release store of liburing's ``io_uring_smp_store_
        release`` (x86-64 TSO, see ``abi``): every SQE byte written before it is visible
        to the kernel once it sees the new tail.
        """
        if self._sq_dirty:
            self._sq_clean()
        u32 = self._sq_u32
        tail = self._sq_tail & _U32
        u32[self._sq_tail_i] = tail
        return (tail - u32[self._sq_head_i]) & _U32

    def enter(self, to_submit: int, wait_nr: int) -> int:
        """``io_uring_enter(to_submit, wait_nr, GETEVENTS if wait_nr)``: submit what was
        published and, with ``wait_nr``, sleep until that many CQEs are ready. No lock needed.

        Returns:
            The number of SQEs consumed (0 when interrupted by a signal: the caller loops and
            recomputes what is left from the kernel's SQ head).

        Raises:
            RingBusyError: EBUSY/EAGAIN (CQ backlog or no memory): reap, then call again.
            OSError: anything else (a broken ring).
        """
        flags = _GETEVENTS if wait_nr else 0
        ret: int = _syscall(NR_IO_URING_ENTER, self.fd, to_submit, wait_nr, flags, None, ARGSZ_NONE)
        if ret >= 0:
            return ret
        err = ctypes.get_errno()
        if err == errno.EINTR:
            return 0
        raise enter_error(err)

    def enter_timeout(self, to_submit: int, wait_nr: int, timeout: float) -> int:
        """:meth:`enter` that waits at most ``timeout`` seconds (``IORING_ENTER_EXT_ARG``,
        5.11; the probe of ``sqpoll`` needs it). Expiry (ETIME) and EINTR return 0."""
        ts = KernelTimespec()
        ts.tv_sec, ts.tv_nsec = divmod(max(0, round(timeout * 1e9)), 1_000_000_000)
        arg = GeteventsArg(ts=ctypes.addressof(ts))
        ret: int = _syscall(
            NR_IO_URING_ENTER, self.fd, to_submit, wait_nr, _GETEVENTS | _EXT_ARG,
            ctypes.byref(arg), ARGSZ_EXT,
        )  # fmt: skip
        if ret >= 0:
            return ret
        err = ctypes.get_errno()
        if err in (errno.EINTR, errno.ETIME):
            return 0
        raise enter_error(err)


#: The Python methods the C accelerator replaces on BackendRing (the reference, the fallback).
_PY_METHODS = {
    name: getattr(BackendRing, name)
    for name in ("cq_ready", "cq_has_overflow", "sq_ready", "reap", "publish", "enter",
                 "enter_timeout")
}  # fmt: skip
_OWN = {name for name in _PY_METHODS if name in BackendRing.__dict__}

_C_METHODS: dict[str, object] | None = None
if _fastio is not None:
    _C_METHODS = _fastio.configure_ring(
        "ring", BackendRing, _PY_METHODS, enter_error,
        (
            NR_IO_URING_ENTER, _GETEVENTS, _EXT_ARG,
            int(SqRingFlags.IORING_SQ_CQ_OVERFLOW | SqRingFlags.IORING_SQ_TASKRUN),
            int(SqRingFlags.IORING_SQ_CQ_OVERFLOW),
        ),
    )  # fmt: skip


def _install(on: bool) -> None:
    c = _C_METHODS or {}
    # (a Python method BackendRing inherits from RingQueue: None, its C one removed when off)
    _accel.install_methods(
        BackendRing,
        {name: (c.get(name), py if name in _OWN else None) for name, py in _PY_METHODS.items()},
        on,
    )


_accel.register(_install)
