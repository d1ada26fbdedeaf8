"""io_uring_register(2): eventfd, fixed files, the opcode probe (liburing's ``register.c``).

Purpose: the ``register_*`` methods of :class:`~.setup.Ring` (a method group: the state is the
ring's ``fd``). Each is one io_uring_register call, EINTR retried; failures raise OSError.

Stdlib only; imports nothing from ``winaio`` but the other ABI modules.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import Any

from . import syscall
from .consts import RegisterOp

__all__ = ["RingRegister"]


class RingRegister:
    """The io_uring_register(2) methods of ``Ring`` (module docstring)."""

    __slots__ = ()
    fd: int  # set up by Ring

    def _register(self, opcode: int, arg: Any, nr_args: int) -> int:
        while True:
            ret: int = syscall._syscall(syscall.NR_IO_URING_REGISTER, self.fd, opcode, arg, nr_args)
            if ret >= 0:
                return ret
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise OSError(err, os.strerror(err))

    def register_eventfd(self, efd: int) -> None:
        """Signal ``efd`` (an ``os.eventfd``) whenever CQEs are posted (5.1), so a thread
        blocked in poll/select/read on it wakes up. One eventfd per ring."""
        self._register(RegisterOp.IORING_REGISTER_EVENTFD, ctypes.byref(ctypes.c_int32(efd)), 1)

    def unregister_eventfd(self) -> None:
        """Undo :meth:`register_eventfd`."""
        self._register(RegisterOp.IORING_UNREGISTER_EVENTFD, None, 0)

    def register_files(self, fds: list[int]) -> None:
        """Register a fixed-file table (5.1): with ``IOSQE_FIXED_FILE`` an SQE's ``fd`` is an
        index into ``fds``, which saves the per-request file lookup."""
        table = (ctypes.c_int32 * len(fds))(*fds)
        self._register(RegisterOp.IORING_REGISTER_FILES, table, len(fds))

    def unregister_files(self) -> None:
        """Drop the fixed-file table."""
        self._register(RegisterOp.IORING_UNREGISTER_FILES, None, 0)

    def probe_opcodes(self) -> frozenset[int]:
        """IORING_REGISTER_PROBE (5.6): the opcodes this kernel supports."""
        buf = (ctypes.c_uint8 * (16 + 8 * 256))()  # struct io_uring_probe + 256 ops, zeroed
        self._register(RegisterOp.IORING_REGISTER_PROBE, buf, 256)
        ops = struct.iter_unpack("<BBHI", bytes(buf)[16 : 16 + 8 * buf[1]])  # ops_len entries
        return frozenset(op for op, _, flags, _ in ops if flags & 1)  # IO_URING_OP_SUPPORTED
