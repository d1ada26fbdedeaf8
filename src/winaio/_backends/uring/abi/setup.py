"""Creating, mapping and closing a ring (liburing's ``setup.c``): :class:`Ring`.

Purpose: ``Ring(entries, flags=...)`` calls io_uring_setup(2), maps the SQ ring, CQ ring and
SQE array (one or two ring mappings, see ``abi``: two rings in shared memory), fills the SQ
index array with the identity, and closes everything again. ``Ring`` also has the methods of
``prep`` (SQE writers), ``queue`` (submit, wait, reap) and ``register``.

Rules: setup flags this layer does not understand are refused (IOPOLL changes how completions
are found, SQE128/CQE32 change the entry sizes, NO_MMAP/NO_SQARRAY change the mapping).
Stdlib only; imports nothing from ``winaio`` but the other ABI modules.
"""

from __future__ import annotations

import array
import ctypes
import errno
import mmap
import os

from . import syscall
from .consts import Feature, SetupFlags
from .prep import SqePrep
from .queue import RingQueue
from .register import RingRegister
from .structs import IoUringParams
from .syscall import NR_IO_URING_SETUP, OFF_CQ_RING, OFF_SQ_RING, OFF_SQES

__all__ = ["Ring"]

_SQPOLL = int(SetupFlags.IORING_SETUP_SQPOLL)

# Setup flags this layer understands (module docstring).
_ALLOWED_SETUP = (
    SetupFlags.IORING_SETUP_SQPOLL
    | SetupFlags.IORING_SETUP_CQSIZE
    | SetupFlags.IORING_SETUP_CLAMP
    | SetupFlags.IORING_SETUP_SUBMIT_ALL
    | SetupFlags.IORING_SETUP_COOP_TASKRUN
    | SetupFlags.IORING_SETUP_TASKRUN_FLAG
    | SetupFlags.IORING_SETUP_SINGLE_ISSUER
    | SetupFlags.IORING_SETUP_DEFER_TASKRUN
)


class Ring(SqePrep, RingQueue, RingRegister):
    """One io_uring instance: SQ ring, CQ ring and SQE array mapped into this process.

    Args:
        entries: SQ size; rounded up to a power of two and clamped to the kernel maximum.
        flags: extra ``IORING_SETUP_*`` flags (only those this layer understands).
        cq_entries: CQ size (``IORING_SETUP_CQSIZE``); default twice the SQ size.
        sq_thread_idle: with ``IORING_SETUP_SQPOLL``, ms without SQEs before the poller
            sleeps (default 1; the kernel's own default, 0 -> 1 s, would be a CPU hog).
        _single_mmap: tests only; False forces the pre-5.4 layout (one mmap per ring).

    With SQPOLL (module docstring) :meth:`submit` publishes the SQ tail and wakes the poller
    when it sleeps; it does not wait for the kernel to consume the SQEs (``sq_ready()``
    counts those it has not consumed yet). ``sqpoll`` tells which kind of ring this is.

    Raises:
        OSError: io_uring_setup(2) or mmap(2) failed (use :func:`~.support.probe` to find out
            whether io_uring can work at all).
        ValueError: unsupported setup flags.

    Attributes: ``fd`` (-1 once closed), ``sq_entries``, ``cq_entries``, ``features``,
    ``flags``. Methods of a closed ring raise ValueError.
    """

    __slots__ = (
        "_cq_flags_i", "_cq_head", "_cq_head_i", "_cq_mask", "_cq_tail_i", "_cq_u32", "_cqes",
        "_maps", "_sq_flags_i", "_sq_tail_i", "_views", "cq_entries", "fd", "features",
        "flags", "sqpoll",
    )  # fmt: skip
    # The fields are annotated in RingQueue and SqePrep.
    _sq_tail_i: int  # indices of ring fields in the u32 views (byte offset >> 2)
    _sq_flags_i: int

    def __init__(
        self,
        entries: int,
        *,
        flags: int = 0,
        cq_entries: int | None = None,
        sq_thread_idle: int = 1,
        _single_mmap: bool | None = None,
    ) -> None:
        self.fd = -1
        self.sqpoll = bool(flags & _SQPOLL)
        self._sq_tail = self._sq_limit = 0
        self._sq_dirty = []
        self._maps: list[mmap.mmap] = []
        self._views: list[memoryview] = []
        if flags & ~_ALLOWED_SETUP:
            raise ValueError(
                f"setup flags not supported here: {SetupFlags(flags & ~_ALLOWED_SETUP)!r}"
            )
        if syscall._syscall is None:
            raise OSError(errno.ENOSYS, "no syscall() in this C library")
        params = IoUringParams()
        params.flags = flags | SetupFlags.IORING_SETUP_CLAMP
        if cq_entries is not None:
            params.flags |= SetupFlags.IORING_SETUP_CQSIZE
            params.cq_entries = cq_entries
        if self.sqpoll:
            params.sq_thread_idle = max(1, sq_thread_idle)
        fd: int = syscall._syscall(NR_IO_URING_SETUP, entries, ctypes.byref(params))
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self.flags = SetupFlags(params.flags)
        self.features = Feature(params.features)
        self.sq_entries = int(params.sq_entries)
        self.cq_entries = int(params.cq_entries)
        try:
            self._map(params, _single_mmap)
        except BaseException:
            self.close()
            raise

    def _map(self, p: IoUringParams, single_mmap: bool | None) -> None:
        sq, cq = p.sq_off, p.cq_off
        sq_size = sq.array + 4 * self.sq_entries
        cq_size = cq.cqes + 16 * self.cq_entries
        if single_mmap is None:
            single_mmap = bool(self.features & Feature.IORING_FEAT_SINGLE_MMAP)
        if single_mmap:
            sq_map = cq_map = self._mmap(max(sq_size, cq_size), OFF_SQ_RING)
        else:  # kernels before 5.4: one mapping per ring
            sq_map, cq_map = self._mmap(sq_size, OFF_SQ_RING), self._mmap(cq_size, OFF_CQ_RING)
        sqe_map = self._mmap(64 * self.sq_entries, OFF_SQES)

        sq_view, cq_view = memoryview(sq_map), memoryview(cq_map)
        self._sq_u32 = sq_view.cast("I")
        self._cq_u32 = cq_view.cast("I")
        self._cqes = cq_view[cq.cqes : cq_size]
        self._sqes = memoryview(sqe_map)
        self._sqes[:] = bytes(len(self._sqes))  # SqePrep relies on zeroed SQE tails
        sq_array = sq_view[sq.array : sq_size].cast("I")
        sq_array[:] = array.array("I", range(self.sq_entries))  # identity: slot i is SQE i
        self._views = [sq_array, self._sqes, self._cqes, self._cq_u32, self._sq_u32]
        self._views += [cq_view, sq_view]

        self._sq_head_i, self._sq_tail_i = sq.head >> 2, sq.tail >> 2
        self._sq_flags_i = sq.flags >> 2
        self._cq_head_i, self._cq_tail_i = cq.head >> 2, cq.tail >> 2
        self._cq_flags_i = cq.flags >> 2  # 0 before 5.8: no CQ flags word
        self._sq_mask = int(self._sq_u32[sq.ring_mask >> 2])
        self._cq_mask = int(self._cq_u32[cq.ring_mask >> 2])
        self._sq_tail = int(self._sq_u32[self._sq_tail_i])  # next SQE to prepare (unpublished)
        self._sq_limit = self._sq_tail  # first prep re-reads the kernel head
        self._cq_head = int(self._cq_u32[self._cq_head_i])

    def _mmap(self, size: int, offset: int) -> mmap.mmap:
        flags, prot = mmap.MAP_SHARED | mmap.MAP_POPULATE, mmap.PROT_READ | mmap.PROT_WRITE
        self._maps.append(mmap.mmap(self.fd, size, flags, prot, offset=offset))
        return self._maps[-1]

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Unmap the rings and close the fd. Idempotent.

        Does not wait for in-flight requests: the kernel cancels them asynchronously and may
        still touch their buffers, so drain (cancel + reap) before closing.
        """
        self._sq_limit = self._sq_tail  # the next prep_* takes the slow path and sees fd == -1
        for view in self._views:
            view.release()
        self._views = []
        for m in self._maps:
            m.close()
        self._maps = []
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover (interpreter shutdown)
            pass

    def __repr__(self) -> str:
        return f"<Ring fd={self.fd} sq_entries={self.sq_entries} cq_entries={self.cq_entries}>"
