"""SQE preparation: liburing's ``io_uring_prep_*`` as methods that fill the next SQE slot.

Purpose: the pure field setters of the io_uring ABI. Each ``prep_*`` fills the next 64-byte
SQE of the mmap'd SQE array with a single precompiled ``struct.pack_into`` and advances a
private tail; nothing is visible to the kernel until ``Ring.submit()`` publishes the tail. No
syscalls here, so this is the sans-I/O half of ``Ring`` (which mixes :class:`SqePrep` in).

Rules:

- A slot is reused, so stale fields must not survive. The preps here only ever set the first
  40 bytes (through ``user_data``) and pack just those, which is ~60 ns cheaper than 64; the
  last 24 (buf_index, personality, file_index, addr3) are kept zero between uses. Invariant:
  those 24 bytes are zero in every free slot. Ring zeroes the array at creation;
  :meth:`SqePrep.prep_sqe`, the only writer of those fields, records the slot in
  ``_sq_dirty`` and it is zeroed again (``_sq_clean``) once the kernel has consumed the SQE,
  at the latest when the free-slot count is recomputed, before the slot is handed out again.
- Addresses are plain ints; the objects behind them (buffers, iovecs, msghdr, sockaddr,
  timespec) must be kept alive by the caller until the CQE arrives (see ``structs``).
- The hot preps (NOP, READ, WRITE, RECV, SEND) are written out in full: a shared helper would
  cost one more Python call per operation. The rest delegate to :meth:`SqePrep.prep_sqe`.
- Opcodes need the kernel version noted in each docstring; ``probe().opcodes`` tells.
- Not thread-safe: the caller serialises all SQ-side calls (prep and submit).
"""

from __future__ import annotations

import ctypes
import struct

from .consts import CancelFlags, IoringOp, MsgRingFlags
from .structs import KernelTimespec

__all__ = ["SQE", "SqePrep", "SubmissionQueueFull"]

# One 64-byte SQE: opcode, flags, ioprio, fd, off/addr2, addr, len, op_flags (rw_flags,
# poll32_events, msg_flags, timeout_flags, cancel_flags, accept_flags...), user_data,
# buf_index, personality, splice_fd_in/file_index, addr3, pad. ``off`` is signed so that -1
# can mean "current file position" (IORING_FEAT_RW_CUR_POS).
SQE = struct.Struct("<BBHiqQIIQHHiQQ")
_SQE_HEAD = struct.Struct("<BBHiqQIIQ")  # the first 40 bytes, through user_data
assert SQE.size == 64 and _SQE_HEAD.size == 40
_pack_sqe = SQE.pack_into
_pack_head = _SQE_HEAD.pack_into
_ZERO_TAIL = bytes(SQE.size - _SQE_HEAD.size)

_OP_NOP = int(IoringOp.IORING_OP_NOP)
_OP_READV = int(IoringOp.IORING_OP_READV)
_OP_WRITEV = int(IoringOp.IORING_OP_WRITEV)
_OP_READ = int(IoringOp.IORING_OP_READ)
_OP_WRITE = int(IoringOp.IORING_OP_WRITE)
_OP_SEND = int(IoringOp.IORING_OP_SEND)
_OP_RECV = int(IoringOp.IORING_OP_RECV)
_U32 = 0xFFFFFFFF


class SubmissionQueueFull(Exception):
    """Every SQE slot is prepared but not yet consumed: ``submit()``, then prepare again.

    This is liburing's ``io_uring_get_sqe()`` returning NULL.
    """


class SqePrep:
    """The ``prep_*`` half of ``Ring``; see the module docstring.

    Arguments common to every prep: ``user_data`` (u64, echoed in the CQE) and ``sqe_flags``
    (``IOSQE_*``: IO_LINK, ASYNC, CQE_SKIP_SUCCESS, FIXED_FILE...).

    Raises:
        SubmissionQueueFull: from every prep when no slot is free.
    """

    __slots__ = (
        "_sq_dirty",
        "_sq_head_i",
        "_sq_limit",
        "_sq_mask",
        "_sq_tail",
        "_sq_u32",
        "_sqes",
        "sq_entries",
    )
    # Set up by Ring.
    fd: int
    sq_entries: int
    _sqes: memoryview[int]  # the SQE array
    _sq_u32: memoryview[int]  # the SQ ring as u32 words
    _sq_head_i: int  # index of the kernel's SQ head in _sq_u32
    _sq_mask: int
    _sq_tail: int  # next slot to fill (free-running, unpublished)
    _sq_limit: int  # _sq_tail value at which the cached free count runs out
    _sq_dirty: list[int]  # tails of SQEs whose last 24 bytes prep_sqe set (see module doc)

    def _sq_reserve(self) -> None:
        # The cached free count ran out (or close() reset it): re-read the kernel's SQ head.
        if self.fd < 0:
            raise ValueError("I/O operation on a closed ring")
        tail = self._sq_tail
        head = self._sq_u32[self._sq_head_i]
        if self._sq_dirty:  # slots about to be handed out again must have zero tails
            self._sq_clean(head)
        free = self.sq_entries - ((tail - head) & _U32)
        if free <= 0:
            raise SubmissionQueueFull(f"all {self.sq_entries} SQEs are pending; submit() first")
        self._sq_limit = tail + free

    def prep_sqe(
        self,
        opcode: int,
        fd: int,
        addr: int,
        length: int,
        off: int,
        user_data: int,
        sqe_flags: int = 0,
        op_flags: int = 0,
        ioprio: int = 0,
        buf_index: int = 0,
        personality: int = 0,
        file_index: int = 0,
        addr3: int = 0,
    ) -> None:
        """Fill the next SQE field by field (any opcode). Raises SubmissionQueueFull."""
        tail = self._sq_tail
        if tail == self._sq_limit:
            self._sq_reserve()
        if buf_index or personality or file_index or addr3:
            _pack_sqe(
                self._sqes, (tail & self._sq_mask) << 6, opcode, sqe_flags, ioprio, fd, off,
                addr, length, op_flags, user_data, buf_index, personality, file_index, addr3, 0,
            )  # fmt: skip
            self._sq_dirty.append(tail)
        else:
            _pack_head(
                self._sqes, (tail & self._sq_mask) << 6, opcode, sqe_flags, ioprio, fd, off,
                addr, length, op_flags, user_data,
            )  # fmt: skip
        self._sq_tail = tail + 1

    def _sq_clean(self, head: int | None = None) -> None:
        # Zero the last 24 bytes of the dirty SQEs the kernel has consumed (copied) by now
        # (``head``: the kernel's SQ head as the caller read it). Called from _sq_reserve,
        # before a slot can be handed out again, which is what keeps the invariant whoever
        # consumes the SQEs and whenever (with SQPOLL the kernel does so asynchronously),
        # and after a submit, to keep the list short.
        if head is None:
            head = self._sq_u32[self._sq_head_i]
        pending = []
        for tail in self._sq_dirty:
            if 0 < ((head - tail) & _U32) <= self.sq_entries:
                start = ((tail & self._sq_mask) << 6) + _SQE_HEAD.size
                self._sqes[start : start + len(_ZERO_TAIL)] = _ZERO_TAIL
            else:
                pending.append(tail)
        self._sq_dirty = pending

    def prep_nop(self, user_data: int, sqe_flags: int = 0) -> None:
        """IORING_OP_NOP: completes with res 0."""
        tail = self._sq_tail
        if tail == self._sq_limit:
            self._sq_reserve()
        _pack_head(
            self._sqes, (tail & self._sq_mask) << 6, _OP_NOP, sqe_flags, 0, -1, 0, 0, 0, 0,
            user_data,
        )  # fmt: skip
        self._sq_tail = tail + 1

    def prep_read(
        self, fd: int, addr: int, nbytes: int, offset: int, user_data: int,
        sqe_flags: int = 0, rw_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_READ (5.6): pread(2); ``offset`` -1 = current position. res = bytes."""
        tail = self._sq_tail
        if tail == self._sq_limit:
            self._sq_reserve()
        _pack_head(
            self._sqes, (tail & self._sq_mask) << 6, _OP_READ, sqe_flags, 0, fd, offset, addr,
            nbytes, rw_flags, user_data,
        )  # fmt: skip
        self._sq_tail = tail + 1

    def prep_write(
        self, fd: int, addr: int, nbytes: int, offset: int, user_data: int,
        sqe_flags: int = 0, rw_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_WRITE (5.6): pwrite(2); ``offset`` -1 = current position."""
        tail = self._sq_tail
        if tail == self._sq_limit:
            self._sq_reserve()
        _pack_head(
            self._sqes, (tail & self._sq_mask) << 6, _OP_WRITE, sqe_flags, 0, fd, offset, addr,
            nbytes, rw_flags, user_data,
        )  # fmt: skip
        self._sq_tail = tail + 1

    def prep_readv(
        self, fd: int, iov_addr: int, nr_vecs: int, offset: int, user_data: int,
        sqe_flags: int = 0, rw_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_READV (5.1): preadv2(2) over an iovec array from :func:`make_iovecs`."""
        self.prep_sqe(_OP_READV, fd, iov_addr, nr_vecs, offset, user_data, sqe_flags, rw_flags)

    def prep_writev(
        self, fd: int, iov_addr: int, nr_vecs: int, offset: int, user_data: int,
        sqe_flags: int = 0, rw_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_WRITEV (5.1): pwritev2(2)."""
        self.prep_sqe(_OP_WRITEV, fd, iov_addr, nr_vecs, offset, user_data, sqe_flags, rw_flags)

    def prep_recv(
        self, fd: int, addr: int, nbytes: int, user_data: int,
        sqe_flags: int = 0, msg_flags: int = 0, ioprio: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_RECV (5.6): recv(2). res = bytes received, 0 at EOF. ``ioprio``: the
        ``IORING_RECVSEND_*`` flags (``consts.RecvSendFlags``; POLL_FIRST needs 5.19)."""
        tail = self._sq_tail
        if tail == self._sq_limit:
            self._sq_reserve()
        _pack_head(
            self._sqes, (tail & self._sq_mask) << 6, _OP_RECV, sqe_flags, ioprio, fd, 0, addr,
            nbytes, msg_flags, user_data,
        )  # fmt: skip
        self._sq_tail = tail + 1

    def prep_send(
        self, fd: int, addr: int, nbytes: int, user_data: int,
        sqe_flags: int = 0, msg_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_SEND (5.6): send(2); may be short, like send(2)."""
        tail = self._sq_tail
        if tail == self._sq_limit:
            self._sq_reserve()
        _pack_head(
            self._sqes, (tail & self._sq_mask) << 6, _OP_SEND, sqe_flags, 0, fd, 0, addr,
            nbytes, msg_flags, user_data,
        )  # fmt: skip
        self._sq_tail = tail + 1

    def prep_recvmsg(
        self, fd: int, msghdr_addr: int, user_data: int, sqe_flags: int = 0, msg_flags: int = 0
    ) -> None:
        """IORING_OP_RECVMSG (5.3): recvmsg(2) with a msghdr from :func:`make_msghdr`."""
        self.prep_sqe(IoringOp.IORING_OP_RECVMSG, fd, msghdr_addr, 1, 0, user_data, sqe_flags,
                      msg_flags)  # fmt: skip

    def prep_sendmsg(
        self, fd: int, msghdr_addr: int, user_data: int, sqe_flags: int = 0, msg_flags: int = 0
    ) -> None:
        """IORING_OP_SENDMSG (5.3): sendmsg(2)."""
        self.prep_sqe(IoringOp.IORING_OP_SENDMSG, fd, msghdr_addr, 1, 0, user_data, sqe_flags,
                      msg_flags)  # fmt: skip

    def prep_accept(
        self, fd: int, addr: int, addrlen_addr: int, user_data: int,
        sqe_flags: int = 0, accept_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_ACCEPT (5.5): accept4(2). ``addr``/``addrlen_addr`` from a
        :class:`SockaddrBuffer` or 0/0; ``accept_flags`` e.g. SOCK_CLOEXEC. res = new fd."""
        self.prep_sqe(IoringOp.IORING_OP_ACCEPT, fd, addr, 0, addrlen_addr, user_data, sqe_flags,
                      accept_flags)  # fmt: skip

    def prep_connect(
        self, fd: int, addr: int, addrlen: int, user_data: int, sqe_flags: int = 0
    ) -> None:
        """IORING_OP_CONNECT (5.5): connect(2) to a sockaddr from :func:`make_sockaddr`."""
        self.prep_sqe(IoringOp.IORING_OP_CONNECT, fd, addr, 0, addrlen, user_data, sqe_flags)

    def prep_poll_add(
        self, fd: int, poll_mask: int, user_data: int, sqe_flags: int = 0, poll_flags: int = 0
    ) -> None:
        """IORING_OP_POLL_ADD (5.1): one-shot poll; res = the ready ``select.POLL*`` mask.

        ``poll_flags=IORING_POLL_ADD_MULTI`` (5.13) makes it multishot.
        """
        self.prep_sqe(IoringOp.IORING_OP_POLL_ADD, fd, 0, poll_flags, 0, user_data, sqe_flags,
                      poll_mask)  # fmt: skip

    def prep_poll_remove(self, target_user_data: int, user_data: int, sqe_flags: int = 0) -> None:
        """IORING_OP_POLL_REMOVE (5.1): remove the poll whose user_data is the target."""
        self.prep_sqe(IoringOp.IORING_OP_POLL_REMOVE, -1, target_user_data, 0, 0, user_data,
                      sqe_flags)  # fmt: skip

    def prep_cancel(
        self, target_user_data: int, user_data: int, sqe_flags: int = 0, cancel_flags: int = 0
    ) -> None:
        """IORING_OP_ASYNC_CANCEL (5.5) by user_data; ``IORING_ASYNC_CANCEL_ALL`` (5.19)
        cancels every match. res = 0 / -ENOENT / -EALREADY (count with CANCEL_ALL)."""
        self.prep_sqe(IoringOp.IORING_OP_ASYNC_CANCEL, -1, target_user_data, 0, 0, user_data,
                      sqe_flags, cancel_flags)  # fmt: skip

    def prep_cancel_fd(
        self, fd: int, user_data: int, sqe_flags: int = 0,
        cancel_flags: int = CancelFlags.IORING_ASYNC_CANCEL_ALL,
    ) -> None:  # fmt: skip
        """IORING_OP_ASYNC_CANCEL with ``IORING_ASYNC_CANCEL_FD`` (5.19): requests on ``fd``."""
        self.prep_sqe(IoringOp.IORING_OP_ASYNC_CANCEL, fd, 0, 0, 0, user_data, sqe_flags,
                      cancel_flags | CancelFlags.IORING_ASYNC_CANCEL_FD)  # fmt: skip

    def prep_timeout(
        self, ts: KernelTimespec, count: int, user_data: int,
        sqe_flags: int = 0, timeout_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_TIMEOUT (5.4): res -ETIME on expiry, 0 once ``count`` other CQEs were
        posted (``count`` 0 = pure timer). Keep ``ts`` alive at least until submit()."""
        self.prep_sqe(IoringOp.IORING_OP_TIMEOUT, -1, ctypes.addressof(ts), 1, count, user_data,
                      sqe_flags, timeout_flags)  # fmt: skip

    def prep_timeout_remove(
        self, target_user_data: int, user_data: int, sqe_flags: int = 0
    ) -> None:
        """IORING_OP_TIMEOUT_REMOVE (5.5): cancel a pending TIMEOUT."""
        self.prep_sqe(IoringOp.IORING_OP_TIMEOUT_REMOVE, -1, target_user_data, 0, 0, user_data,
                      sqe_flags)  # fmt: skip

    def prep_link_timeout(
        self, ts: KernelTimespec, user_data: int, sqe_flags: int = 0, timeout_flags: int = 0
    ) -> None:
        """IORING_OP_LINK_TIMEOUT (5.5): must follow an SQE prepared with IOSQE_IO_LINK."""
        self.prep_sqe(IoringOp.IORING_OP_LINK_TIMEOUT, -1, ctypes.addressof(ts), 1, 0, user_data,
                      sqe_flags, timeout_flags)  # fmt: skip

    def prep_msg_ring(
        self, ring_fd: int, res: int, target_user_data: int, user_data: int,
        sqe_flags: int = 0, msg_flags: int = 0, cqe_flags: int = 0,
    ) -> None:  # fmt: skip
        """IORING_OP_MSG_RING (5.18): post ``(target_user_data, res, cqe_flags)`` into the ring
        ``ring_fd`` (a PostQueuedCompletionStatus, or a cross-thread wake-up). ``cqe_flags``
        needs ``IORING_MSG_RING_FLAGS_PASS`` (6.3). This ring gets its own CQE too; suppress
        it on success with ``sqe_flags=IOSQE_CQE_SKIP_SUCCESS``. (``IORING_MSG_RING_CQE_SKIP``
        suppresses the *target's* CQE and applies to fd passing only: with this data message
        the kernel fails the request with -EINVAL, <linux/io_uring.h>.)"""
        if cqe_flags:
            msg_flags |= MsgRingFlags.IORING_MSG_RING_FLAGS_PASS
        off = target_user_data - (1 << 64) if target_user_data >> 63 else target_user_data
        self.prep_sqe(IoringOp.IORING_OP_MSG_RING, ring_fd, 0, res & _U32, off, user_data,
                      sqe_flags, msg_flags, file_index=cqe_flags)  # fmt: skip
