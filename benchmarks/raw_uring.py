"""The Python ceiling for io_uring: a minimal, self-contained pure-Python ctypes io_uring loop.

bench_io.py's ``raw_uring`` row (issue 9). It imports nothing from winaio on purpose: it is the
yardstick winaio's own rings are measured against, so it must not move when they do. It does
the least a Python program can do per read:

- ``io_uring_setup`` (syscall 425) with ``QD`` entries, the SQ/CQ rings and the SQE array
  mmapped; the SQ index array is filled once with the identity (SQE slot i = index i);
- prep: one ``struct.pack_into`` of the 40 meaningful bytes of an IORING_OP_READ SQE (the other
  24 stay zero), then the SQ tail is bumped;
- ``io_uring_enter(to_submit, 1, GETEVENTS)`` (syscall 426): submit what was prepared and wait
  for at least one completion;
- reap every CQE present (``struct.unpack_from``), re-arm one read per CQE into the same
  per-slot buffer, publish the CQ head.

There is no SQPOLL, no registered buffers or files and no batching beyond "everything that
completed": what fio calls its defaults. Ordering: stores to the SQ tail are made visible by the
``io_uring_enter`` system call that follows them, and the CQ tail is read right after that call
returns (x86-64's TSO needs nothing more; the syscall boundary covers other architectures).

Usable alone: ``python benchmarks/raw_uring.py FILE [--qd 32] [--direct] [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import mmap
import os
import random
import struct
import sys
import time
from collections.abc import Sequence

BLOCK = 4096

NR_IO_URING_SETUP = 425  # the same number on every architecture (unified syscall table)
NR_IO_URING_ENTER = 426
NR_IO_URING_REGISTER = 427
IORING_ENTER_GETEVENTS = 1
IORING_FEAT_SINGLE_MMAP = 1
IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000
IORING_OP_READ = 22  # Linux 5.6
#: io_uring_setup flags (5.19): task work without the IPI, and the SQ flag telling it is pending
#: (``RawRing(flags=COOP)``: ``bench_sockets``' ``raw_uring@coop`` ceiling; the files' raw
#: loop keeps the default flags).
IORING_SETUP_COOP_TASKRUN = 1 << 8
IORING_SETUP_TASKRUN_FLAG = 1 << 9
COOP = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG

_SQE = struct.Struct("<BBHiQQIIQ")  # opcode, flags, ioprio, fd, off, addr, len, rw_flags, user_data
_CQE = struct.Struct("<QiI")  # user_data, res, flags
_U32 = struct.Struct("<I")


class _SqOffsets(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in (
        "head", "tail", "ring_mask", "ring_entries", "flags", "dropped", "array", "resv1"
    )] + [("user_addr", ctypes.c_uint64)]  # fmt: skip


class _CqOffsets(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in (
        "head", "tail", "ring_mask", "ring_entries", "overflow", "cqes", "flags", "resv1"
    )] + [("user_addr", ctypes.c_uint64)]  # fmt: skip


class _Params(ctypes.Structure):
    _fields_ = [
        ("sq_entries", ctypes.c_uint32),
        ("cq_entries", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("sq_thread_cpu", ctypes.c_uint32),
        ("sq_thread_idle", ctypes.c_uint32),
        ("features", ctypes.c_uint32),
        ("wq_fd", ctypes.c_uint32),
        ("resv", ctypes.c_uint32 * 3),
        ("sq_off", _SqOffsets),
        ("cq_off", _CqOffsets),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class RawRing:
    """One io_uring instance with ``entries`` SQEs, driven from Python with no helper library.
    ``flags``: io_uring_setup flags (e.g. :data:`COOP`)."""

    def __init__(self, entries: int, flags: int = 0) -> None:
        params = _Params()
        params.flags = flags
        fd = _syscall(
            ctypes.c_long(NR_IO_URING_SETUP), ctypes.c_uint(entries), ctypes.byref(params)
        )
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"io_uring_setup: {os.strerror(err)}")
        self.fd = fd
        sq, cq = params.sq_off, params.cq_off
        sq_size = sq.array + params.sq_entries * 4
        cq_size = cq.cqes + params.cq_entries * 16
        try:
            if params.features & IORING_FEAT_SINGLE_MMAP:
                size = max(sq_size, cq_size)
                self.sq_map = self.cq_map = mmap.mmap(fd, size, offset=IORING_OFF_SQ_RING)
            else:
                self.sq_map = mmap.mmap(fd, sq_size, offset=IORING_OFF_SQ_RING)
                self.cq_map = mmap.mmap(fd, cq_size, offset=IORING_OFF_CQ_RING)
            self.sqe_map = mmap.mmap(fd, params.sq_entries * 64, offset=IORING_OFF_SQES)
        except OSError:
            os.close(fd)
            raise
        self.sq_entries = params.sq_entries
        self.sq_mask = _U32.unpack_from(self.sq_map, sq.ring_mask)[0]
        self.cq_mask = _U32.unpack_from(self.cq_map, cq.ring_mask)[0]
        self.sq_tail_off, self.cq_head_off, self.cq_tail_off = sq.tail, cq.head, cq.tail
        self.cqes_off = cq.cqes
        for i in range(params.sq_entries):  # identity index array: SQE slot i is entry i
            _U32.pack_into(self.sq_map, sq.array + 4 * i, i)
        self.sq_tail = _U32.unpack_from(self.sq_map, sq.tail)[0]

    def enter(self, to_submit: int, min_complete: int) -> int:
        while True:
            n = _syscall(
                ctypes.c_long(NR_IO_URING_ENTER),
                ctypes.c_int(self.fd),
                ctypes.c_uint(to_submit),
                ctypes.c_uint(min_complete),
                ctypes.c_uint(IORING_ENTER_GETEVENTS),
                None,
                ctypes.c_size_t(0),
            )
            if n >= 0:
                return int(n)
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise OSError(err, f"io_uring_enter: {os.strerror(err)}")

    def register(self, opcode: int, arg: ctypes.Array[ctypes.c_char], nr_args: int) -> None:
        """io_uring_register(fd, ``opcode``, ``arg``, ``nr_args``) (e.g. a provided-buffer ring,
        ``sock_raw_uring``'s ``raw_uring@mrecv``)."""
        rc = _syscall(
            ctypes.c_long(NR_IO_URING_REGISTER),
            ctypes.c_int(self.fd),
            ctypes.c_uint(opcode),
            arg,
            ctypes.c_uint(nr_args),
        )
        if rc < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"io_uring_register({opcode}): {os.strerror(err)}")

    def close(self) -> None:
        for m in {id(x): x for x in (self.sq_map, self.cq_map, self.sqe_map)}.values():
            m.close()
        os.close(self.fd)


class AlignedBuffers:
    """``count`` page-aligned 4 KiB buffers in one anonymous mmap, with their addresses."""

    def __init__(self, count: int) -> None:
        self.mem = mmap.mmap(-1, count * BLOCK)
        self._anchor = ctypes.c_char.from_buffer(self.mem)  # kept: the address stays valid
        base = ctypes.addressof(self._anchor)
        self.addresses = [base + i * BLOCK for i in range(count)]

    def close(self) -> None:
        del self._anchor
        self.mem.close()


def read_loop(
    ring: RawRing,
    fd: int,
    addresses: Sequence[int],
    offsets: Sequence[int],
    start: int,
    seconds: float,
) -> tuple[int, int]:
    """Keep ``len(addresses)`` 4 KiB reads in flight for ``seconds``, then drain.

    Returns (completed reads, failed or short reads).
    """
    qd = len(addresses)
    mask = len(offsets) - 1  # a power of two
    pack_sqe, unpack_cqe, pack_u32, unpack_u32 = (
        _SQE.pack_into, _CQE.unpack_from, _U32.pack_into, _U32.unpack_from
    )  # fmt: skip
    sqes, sq_map, cq_map = ring.sqe_map, ring.sq_map, ring.cq_map
    sq_mask, cq_mask = ring.sq_mask, ring.cq_mask
    sq_tail_off, cq_head_off, cq_tail_off = ring.sq_tail_off, ring.cq_head_off, ring.cq_tail_off
    cqes_off = ring.cqes_off
    enter = ring.enter
    op = IORING_OP_READ
    tail = ring.sq_tail
    k = start
    for slot in range(qd):
        pack_sqe(sqes, (tail & sq_mask) * 64, op, 0, 0, fd, offsets[k & mask], addresses[slot],
                 BLOCK, 0, slot)  # fmt: skip
        tail += 1
        k += 1
    pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)
    to_submit = qd
    in_flight = qd
    done = errors = 0
    rearm = True
    clock = time.perf_counter
    deadline = clock() + seconds
    head = unpack_u32(cq_map, cq_head_off)[0]
    while in_flight:
        enter(to_submit, 1)
        to_submit = 0
        cq_tail = unpack_u32(cq_map, cq_tail_off)[0]
        while head != cq_tail:
            slot, res, _flags = unpack_cqe(cq_map, cqes_off + (head & cq_mask) * 16)
            head = (head + 1) & 0xFFFFFFFF
            done += 1
            if res != BLOCK:
                errors += 1
            if rearm:
                pack_sqe(sqes, (tail & sq_mask) * 64, op, 0, 0, fd, offsets[k & mask],
                         addresses[slot], BLOCK, 0, slot)  # fmt: skip
                tail += 1
                k += 1
                to_submit += 1
            else:
                in_flight -= 1
        pack_u32(cq_map, cq_head_off, head)
        if to_submit:
            pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)
        if rearm and clock() >= deadline:
            rearm = False
    ring.sq_tail = tail
    return done, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--qd", type=int, default=32)
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args(argv)
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECT if args.direct else 0)
    fd = os.open(args.file, flags)
    blocks = os.fstat(fd).st_size // BLOCK
    rng = random.Random(1)
    offsets = [rng.randrange(blocks) * BLOCK for _ in range(1 << 16)]
    ring, bufs = RawRing(max(8, args.qd)), AlignedBuffers(args.qd)
    try:
        t0 = time.perf_counter()
        done, errors = read_loop(ring, fd, bufs.addresses, offsets, 0, args.seconds)
        elapsed = time.perf_counter() - t0
    finally:
        ring.close()
        bufs.close()
        os.close(fd)
    print(f"{done / elapsed:,.0f} IOPS ({done} reads, {errors} errors, QD{args.qd})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
