"""The raw io_uring ABI: one ring, its three syscalls, and nothing else.

Purpose: the thin layer an io_uring backend stands on. It creates a ring
(``io_uring_setup``), maps it, fills SQEs with one precompiled ``struct.pack_into`` each,
publishes and submits them (``io_uring_enter``), reaps CQEs, registers an eventfd or files
(``io_uring_register``), and probes what the running kernel supports. Vocabulary follows
liburing (sqe, cqe, ``prep_*``, ``user_data``, ``submit_and_wait``, ``cqe_seen``) so every name
can be checked against a man page.

Rules:

- No policy and no threads: no user_data bookkeeping, no buffer ownership, no reaper, no
  fallback. The backend decides all of that.
- **Not thread-safe by itself.** The caller serialises the SQ side (every ``prep_*``,
  ``submit*``) with one lock and the CQ side (``reap``, ``peek_cqe``, ``cqe_seen``,
  ``cq_advance``) with another. :meth:`Ring.wait_cqes` touches neither queue, so any number of
  threads may sit in it at once, with or without those locks.
- Stdlib only (ctypes, mmap, struct); imports nothing from ``winaio`` but the other ABI
  modules. ``Ring`` mixes in the SQE preps (``SqePrep``, ``_uring_prep``) and the CQE reader
  (``CqReap``, ``_uring_cq``), neither of which makes a syscall. The process-level plumbing
  (libc's ``syscall()``, syscall numbers, mmap offsets, :func:`full_fence`,
  :class:`RingBusyError`, the refusal diagnosis) is in ``_uring_sys``. The ``import x as x``
  lines re-export what was defined here before that split, so it stays importable from here.
- Every syscall of a ``Ring`` is made in this module and looks ``_syscall`` up in this
  module's globals at call time: monkeypatching ``_uring_abi._syscall`` intercepts them all.

Some facts about io_uring
-------------------------

Everything below is what this code relies on. Man pages: io_uring_setup(2),
io_uring_enter(2), io_uring_register(2); Jens Axboe, "Efficient IO with io_uring" (2019).

* **Two rings in shared memory.** io_uring_setup(2) returns a file descriptor and the offsets
  of the head, tail, mask and array fields; the application mmaps the SQ ring
  (``IORING_OFF_SQ_RING``), the CQ ring (``IORING_OFF_CQ_RING``) and the SQE array
  (``IORING_OFF_SQES``). Since 5.4 (``IORING_FEAT_SINGLE_MMAP``) the two rings share one
  mapping; before that they are two mmaps. Both layouts are handled; Python's ``mmap`` dup()s
  the descriptor, so a ring holds 3 descriptors (4 without SINGLE_MMAP) until :meth:`close`.
* **Who writes what.** Heads and tails are free-running ``u32`` counters, masked with
  ``ring_mask`` to index. The application owns the SQ tail and the CQ head; the kernel owns
  the SQ head and the CQ tail. The SQ ring holds *indices* into the SQE array; we fill it once
  with the identity mapping, so SQE slot ``tail & mask`` is always the next one.
* **Memory ordering.** The kernel reads the SQ tail with ``smp_load_acquire`` and publishes
  the CQ tail with ``smp_store_release``; liburing pairs them with a store-release of the SQ
  tail after writing SQEs, a load-acquire of the CQ tail before reading CQEs, and a
  store-release of the CQ head after reading them. Python has no barriers. On x86-64 (TSO)
  stores are not reordered with older stores and loads not with older loads or stores, so
  plain accesses done in program order already have those semantics; in CPython each access
  here is a separate opaque C call (``pack_into``, a memoryview item store), so the C
  compiler cannot reorder them either. On weakly ordered CPUs (aarch64, ppc64, riscv) that
  is not enough, so :func:`probe` reports io_uring unavailable there.
* **SQPOLL** (``IORING_SETUP_SQPOLL``; unprivileged and with ordinary, non-registered files
  since 5.11, ``IORING_FEAT_SQPOLL_NONFIXED``). The kernel starts one poller thread per ring
  (``iou-sqp-<pid>``, a thread of this process) that consumes SQEs as soon as it sees the SQ
  tail move: publishing the tail *is* submitting, and io_uring_enter's ``to_submit`` is
  ignored (it returns ``to_submit`` at once). Requests are issued by that thread, so they
  belong to it, not to whichever thread wrote or published the SQE: their task work runs
  there and no exit of an application thread affects them (io_uring_cancel_generic() skips
  SQPOLL rings for every task but the poller). After ``sq_thread_idle`` ms (rounded up to
  jiffies, so a few ms at HZ=250) without new SQEs the poller sets ``IORING_SQ_NEED_WAKEUP``
  in the SQ ring flags and sleeps; it must then be woken with
  io_uring_enter(``IORING_ENTER_SQ_WAKEUP``), which only wakes it - the request still belongs
  to the poller. It never sleeps while task work is pending, so completions are posted
  without anybody entering. The two sides form a Dekker pattern: the kernel sets the flag,
  issues a full barrier (``smp_mb__after_atomic``) and re-reads the SQ tail before sleeping;
  the application stores the tail, then reads the flag, and needs a full barrier in between
  too (liburing: ``io_uring_smp_mb()`` in ``sq_ring_needs_enter``), because x86-64 TSO *does*
  let a load pass an older store (the store buffer). :func:`full_fence` provides it. With
  ``IORING_ENTER_SQ_WAIT`` (5.10) io_uring_enter waits until the SQ ring has a free slot.
  Waiting for completions (``GETEVENTS``) works as without SQPOLL, from any thread.
* **Submission copies the SQE.** io_uring_enter(2) consumes each published SQE, so its slot
  is free once the call returns; with ``IORING_FEAT_SUBMIT_STABLE`` (5.5) so are the set-up
  structures it points at (iovecs, msghdr, timespec). Data buffers are used until the request
  completes; the simple rule is to keep everything until the CQE.
* **Exactly one CQE per SQE**, echoing its 64-bit ``user_data``, with ``res`` = result or
  ``-errno`` (``IOSQE_CQE_SKIP_SUCCESS``, 5.17, suppresses it on success; multishot requests
  post several, with ``IORING_CQE_F_MORE`` on all but the last). **Cancelling does not end a
  request's life**: ASYNC_CANCEL gets its own CQE (0 found, -ENOENT not found, -EALREADY
  already running) and the target still posts one (usually -ECANCELED). liburing issue #733
  (axboe): "Since a CQE will be posted regardless for the original request when you do a
  cancelation, yes you should keep the buffer alive until you get a CQE".
* **Links.** ``IOSQE_IO_LINK`` makes the next SQE wait for this one; if this one fails (a short
  read or write counts as failure) the rest of the chain completes with -ECANCELED. A
  LINK_TIMEOUT SQE must directly follow the request it guards: on expiry the request gets
  -ECANCELED and the timeout -ETIME; otherwise the timeout completes with -ECANCELED.
* **CQ overflow.** The CQ ring holds ``cq_entries`` (twice the SQ size unless
  ``cq_entries=`` is given). With ``IORING_FEAT_NODROP`` (5.5) the kernel parks the surplus on
  an internal list and sets ``IORING_SQ_CQ_OVERFLOW`` in the SQ ring flags; they move into the
  CQ ring when the application calls io_uring_enter(2) with ``IORING_ENTER_GETEVENTS``, which
  :meth:`Ring.reap` does when the ring looks empty and the flag is set. io_uring_enter may
  then return EBUSY if the backlog cannot be flushed: reap, then retry.
* **Waiting.** io_uring_enter(``GETEVENTS``, ``min_complete``) sleeps until that many CQEs sit
  between the CQ head and tail. A signal ends it with EINTR (retried here, PEP 475 style).
  ``IORING_FEAT_EXT_ARG`` (5.11) adds a timeout through ``io_uring_getevents_arg``; expiry
  returns ETIME (not an error here). ctypes drops the GIL for the call, so other threads run
  while one waits. Several threads may wait at once; which one the kernel wakes is not
  documented, so IOCP's LIFO release of waiters must be built above this layer.
* **Task work.** Many requests (sockets, poll) finish in "task work" run by the thread that
  *submitted* them. By default the kernel interrupts that thread to run it, so the CQE appears
  even if another thread is the one waiting. ``IORING_SETUP_COOP_TASKRUN`` and
  ``IORING_SETUP_DEFER_TASKRUN`` postpone it until the submitter enters the kernel (DEFER
  also requires ``SINGLE_ISSUER`` and that only the submitter waits): do not use them when one
  thread submits and another waits. Requests also belong to their submitter: if that thread
  exits first, a request still waiting for its task work completes with -ECANCELED (a RECV
  leaves the data in the socket). Submit from long-lived threads.
* **Teardown is asynchronous.** Closing the fd and unmapping cancels what is in flight, but
  the kernel may still write into user buffers while it finishes. Drain first (cancel, then
  reap every outstanding ``user_data``), then :meth:`Ring.close`. Never share a ring across
  ``fork()``.
* **Availability.** Why io_uring_setup can fail (seccomp, ``kernel.io_uring_disabled``,
  RLIMIT_MEMLOCK) is in ``_uring_sys``, with the diagnosis :func:`probe` reports. This module
  needs 5.6 (``IORING_SETUP_CLAMP``, ``IORING_REGISTER_PROBE``); opcodes and features beyond
  that are reported by :func:`probe`.
"""

from __future__ import annotations

import array
import ctypes
import errno
import mmap
import os
import platform
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from ._uring_consts import EnterFlags, Feature, RegisterOp, SetupFlags, SqRingFlags
from ._uring_cq import _CQE as _CQE
from ._uring_cq import Cqe, CqReap
from ._uring_cq import _iter_cqes as _iter_cqes
from ._uring_cq import _unpack_cqe as _unpack_cqe
from ._uring_prep import SqePrep, SubmissionQueueFull
from ._uring_structs import GeteventsArg, IoUringParams, KernelTimespec
from ._uring_sys import (
    _ARGSZ_EXT,
    _NR_IO_URING_REGISTER,
    _NR_IO_URING_SETUP,
    _OFF_CQ_RING,
    _OFF_SQ_RING,
    _OFF_SQES,
    RingBusyError,
    _platform_refusal,
    _read_disabled_sysctl,
    _setup_refusal,
    full_fence,
)
from ._uring_sys import _ARGSZ_NONE as _ARGSZ_NONE
from ._uring_sys import _NR_IO_URING_ENTER as _NR_IO_URING_ENTER
from ._uring_sys import _SETUP_REFUSALS as _SETUP_REFUSALS
from ._uring_sys import _enter_error as _enter_error
from ._uring_sys import _fence_lock as _fence_lock
from ._uring_sys import _load_syscall as _load_syscall
from ._uring_sys import _syscall as _syscall

__all__ = [
    "Cqe",
    "ProbeResult",
    "Ring",
    "RingBusyError",
    "SubmissionQueueFull",
    "full_fence",
    "probe",
]

_GETEVENTS = int(EnterFlags.IORING_ENTER_GETEVENTS)
_EXT_ARG = int(EnterFlags.IORING_ENTER_EXT_ARG)
_SQ_WAKEUP = int(EnterFlags.IORING_ENTER_SQ_WAKEUP)
_SQ_WAIT = int(EnterFlags.IORING_ENTER_SQ_WAIT)
_NEED_WAKEUP = int(SqRingFlags.IORING_SQ_NEED_WAKEUP)
_NEEDS_FLUSH = int(SqRingFlags.IORING_SQ_CQ_OVERFLOW | SqRingFlags.IORING_SQ_TASKRUN)
_SQPOLL = int(SetupFlags.IORING_SETUP_SQPOLL)
_U32 = 0xFFFFFFFF

# Setup flags this layer understands. IOPOLL changes how completions are found, SQE128/CQE32
# change the entry sizes, NO_MMAP/NO_SQARRAY change the mapping: all refused.
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


class Ring(SqePrep, CqReap):
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
        OSError: io_uring_setup(2) or mmap(2) failed (use :func:`probe` to find out whether
            io_uring can work at all).
        ValueError: unsupported setup flags.

    Attributes: ``fd`` (-1 once closed), ``sq_entries``, ``cq_entries``, ``features``,
    ``flags``. Methods of a closed ring raise ValueError.
    """

    __slots__ = (
        "_cq_head", "_cq_head_i", "_cq_mask", "_cq_tail_i", "_cq_u32", "_cqes", "_maps",
        "_sq_flags_i", "_sq_tail_i", "_views", "cq_entries", "fd", "features", "flags",
        "sqpoll",
    )  # fmt: skip
    # The CQ fields are annotated in CqReap, the rest of the SQ ones in SqePrep.
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
        if _syscall is None:
            raise OSError(errno.ENOSYS, "no syscall() in this C library")
        params = IoUringParams()
        params.flags = flags | SetupFlags.IORING_SETUP_CLAMP
        if cq_entries is not None:
            params.flags |= SetupFlags.IORING_SETUP_CQSIZE
            params.cq_entries = cq_entries
        if self.sqpoll:
            params.sq_thread_idle = max(1, sq_thread_idle)
        fd: int = _syscall(_NR_IO_URING_SETUP, entries, ctypes.byref(params))
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
            sq_map = cq_map = self._mmap(max(sq_size, cq_size), _OFF_SQ_RING)
        else:  # kernels before 5.4: one mapping per ring
            sq_map, cq_map = self._mmap(sq_size, _OFF_SQ_RING), self._mmap(cq_size, _OFF_CQ_RING)
        sqe_map = self._mmap(64 * self.sq_entries, _OFF_SQES)

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

    # -- SQ side: submit ----------------------------------------------------------------------

    def sq_ready(self) -> int:
        """SQEs prepared but not yet consumed by the kernel."""
        return (self._sq_tail - self._sq_u32[self._sq_head_i]) & _U32

    def sq_space_left(self) -> int:
        """How many more SQEs can be prepared before submit() is needed."""
        return self.sq_entries - self.sq_ready()

    def submit(self, wait_nr: int = 0) -> int:
        """Publish the prepared SQEs and submit them; with ``wait_nr`` > 0 also wait until that
        many CQEs are ready (liburing's ``io_uring_submit_and_wait``).

        Returns:
            The number of SQEs the kernel consumed. It can be less than prepared when one
            failed at set-up (its CQE carries the error); the rest go with the next call.
            With SQPOLL: the number published and not yet consumed by the poller (all of
            them will be, without another call).

        Raises:
            RingBusyError: EBUSY/EAGAIN; reap completions, then call again.
            OSError: any other io_uring_enter(2) error. EINTR is retried.
        """
        u32 = self._sq_u32
        tail = self._sq_tail & _U32
        u32[self._sq_tail_i] = tail  # the release store: every SQE write above precedes it
        to_submit = (tail - u32[self._sq_head_i]) & _U32
        if self.sqpoll:
            # liburing's sq_ring_needs_enter(): tail store, full barrier, flags load.
            flags = _GETEVENTS if wait_nr else 0
            if to_submit and self.sq_needs_wakeup():
                flags |= _SQ_WAKEUP
            if not flags:
                return to_submit
        elif wait_nr:
            flags = _GETEVENTS
        elif to_submit:
            flags = 0
        else:
            return 0
        ret: int = _syscall(
            _NR_IO_URING_ENTER, self.fd, to_submit, wait_nr, flags, None, _ARGSZ_NONE
        )
        if ret < 0:
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise _enter_error(err)
            return self._enter(True, wait_nr, None)
        if self._sq_dirty:
            self._sq_clean()
        return ret

    def submit_and_wait_timeout(self, wait_nr: int, timeout: float | None) -> int:
        """Like :meth:`submit` but waits at most ``timeout`` seconds (None = forever).
        Needs ``IORING_FEAT_EXT_ARG`` (5.11) for a timeout; see :meth:`wait_cqes`."""
        self._sq_u32[self._sq_tail_i] = self._sq_tail & _U32
        return self._enter(True, wait_nr, timeout)

    def wait_cqes(self, wait_nr: int = 1, timeout: float | None = None) -> int:
        """Wait until ``wait_nr`` CQEs are ready or ``timeout`` seconds pass; submit nothing.

        Safe to call from several threads at once and without the SQ/CQ locks.

        Returns:
            :meth:`cq_ready` on return (may be < ``wait_nr`` after a timeout).

        Raises:
            NotImplementedError: a timeout without ``IORING_FEAT_EXT_ARG`` (< 5.11). The
                backend then polls a registered eventfd with a timeout, or queues a TIMEOUT
                SQE with a reserved user_data before waiting (liburing's fallback).
        """
        self._enter(False, wait_nr, timeout)
        return self.cq_ready()

    def _enter(self, submit: bool, wait_nr: int, timeout: float | None) -> int:
        # The slow and general io_uring_enter loop: EINTR retry, EXT_ARG timeout, errors.
        flags = _GETEVENTS if wait_nr else 0
        argp: Any = None
        argsz = _ARGSZ_NONE
        deadline = 0.0
        ts = KernelTimespec()
        if timeout is not None:
            if not self.features & Feature.IORING_FEAT_EXT_ARG:
                raise NotImplementedError("wait timeouts need IORING_FEAT_EXT_ARG (Linux 5.11)")
            deadline = time.monotonic() + timeout
            arg = GeteventsArg(ts=ctypes.addressof(ts))
            argp, argsz, flags = ctypes.byref(arg), _ARGSZ_EXT, _GETEVENTS | _EXT_ARG
        while True:
            to_submit = self.sq_ready() if submit else 0
            wake = _SQ_WAKEUP if to_submit and self.sqpoll and self.sq_needs_wakeup() else 0
            if timeout is not None:
                ns = max(0, round((deadline - time.monotonic()) * 1e9))
                ts.tv_sec, ts.tv_nsec = divmod(ns, 1_000_000_000)
            if not (to_submit or flags):
                return 0
            ret: int = _syscall(
                _NR_IO_URING_ENTER, self.fd, to_submit, wait_nr, flags | wake, argp, argsz
            )
            if ret >= 0:
                if submit and self._sq_dirty:  # never from wait_cqes: it holds no SQ lock
                    self._sq_clean()
                return ret
            err = ctypes.get_errno()
            if err == errno.ETIME:
                return 0
            if err != errno.EINTR:
                raise _enter_error(err)

    # -- SQPOLL -------------------------------------------------------------------------------

    def sq_needs_wakeup(self) -> bool:
        """SQPOLL: True when the poller sleeps (``IORING_SQ_NEED_WAKEUP``) and SQEs published
        before this call would wait for :meth:`wakeup_sq`. Call it *after* publishing the
        tail: it issues the full barrier of the module docstring before reading the flag."""
        full_fence()
        return bool(self._sq_u32[self._sq_flags_i] & _NEED_WAKEUP)

    def wakeup_sq(self, wait_for_space: bool = False) -> None:
        """SQPOLL: io_uring_enter(``SQ_WAKEUP``): wake the poller (harmless when it is awake).
        Submits nothing itself, so the caller owns no request afterwards. With
        ``wait_for_space``, also ``SQ_WAIT`` (5.10): return only once the SQ ring has a free
        slot. EINTR is retried.

        Raises:
            OSError: EOWNERDEAD when the poller is gone, EBADF on a closed ring...
        """
        flags = _SQ_WAKEUP | _SQ_WAIT if wait_for_space else _SQ_WAKEUP
        while _syscall(_NR_IO_URING_ENTER, self.fd, 0, 0, flags, None, _ARGSZ_NONE) < 0:
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise OSError(err, os.strerror(err))

    # -- CQ side (the rest is CqReap) ---------------------------------------------------------

    def cq_has_overflow(self) -> bool:
        """True when completions are waiting on the kernel's overflow list."""
        return bool(self._sq_u32[self._sq_flags_i] & SqRingFlags.IORING_SQ_CQ_OVERFLOW)

    def _flush(self) -> bool:
        # Move overflowed CQEs (and deferred task work) into the CQ ring. SQ untouched.
        if not self._sq_u32[self._sq_flags_i] & _NEEDS_FLUSH:
            return False
        while _syscall(_NR_IO_URING_ENTER, self.fd, 0, 0, _GETEVENTS, None, _ARGSZ_NONE) < 0:
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise _enter_error(err)
        return True

    # -- io_uring_register(2) -----------------------------------------------------------------

    def _register(self, opcode: int, arg: Any, nr_args: int) -> int:
        while True:
            ret: int = _syscall(_NR_IO_URING_REGISTER, self.fd, opcode, arg, nr_args)
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


# ------------------------------------------------------------------------------------------------
# probe


@dataclass(frozen=True)
class ProbeResult:
    """What :func:`probe` found. ``reason`` explains ``available`` either way."""

    available: bool
    reason: str
    opcodes: frozenset[int] = frozenset()
    features: Feature = Feature(0)  # noqa: RUF009 (an immutable int flag)
    kernel: str = field(default_factory=platform.release)

    def supports(self, *opcodes: int) -> bool:
        """True when io_uring is available and every opcode is supported."""
        return self.available and all(op in self.opcodes for op in opcodes)


def probe() -> ProbeResult:
    """Find out once per process whether io_uring can be used, and what it supports.

    Creates and closes a 2-entry ring. Never raises for "io_uring is not available": that
    comes back as ``available=False`` with a human-readable ``reason``.
    """
    refusal = _platform_refusal()
    if refusal:
        return ProbeResult(False, refusal)
    disabled = _read_disabled_sysctl()
    if disabled == 2:
        return ProbeResult(False, "io_uring is disabled system-wide (kernel.io_uring_disabled=2)")
    try:
        ring = Ring(2)
    except OSError as e:
        return ProbeResult(False, _setup_refusal(e.errno or 0, disabled))
    with ring:
        try:
            opcodes = ring.probe_opcodes()
        except OSError as e:
            reason = f"IORING_REGISTER_PROBE failed ({os.strerror(e.errno or 0)}; kernel < 5.6?)"
            return ProbeResult(False, reason, features=ring.features)
    reason = f"io_uring available: {len(opcodes)} opcodes, features {int(ring.features):#x}"
    return ProbeResult(True, reason, opcodes, ring.features)
