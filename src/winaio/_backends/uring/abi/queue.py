"""Publishing, submitting, waiting and reaping (liburing's ``queue.c``).

Purpose: the queue methods of :class:`~.setup.Ring` (a method group; the state is the ring's):

- SQ side: :meth:`RingQueue.submit` publishes the SQ tail and enters the kernel (with SQPOLL
  only when the poller sleeps), :meth:`RingQueue.wait_cqes` waits without submitting,
  :meth:`RingQueue.wakeup_sq` wakes a sleeping SQ poller;
- CQ side: :meth:`RingQueue.reap` takes CQEs out of the mmap'd CQ ring in one pass and
  publishes the new CQ head; no syscall, except flushing the kernel's overflow backlog
  (io_uring_enter with ``GETEVENTS``) when the ring looks empty and the kernel says it has one.

Rules (the facts are in ``abi``: who writes what, memory ordering, SQPOLL, CQ overflow):

- The application owns the SQ tail and the CQ head, the kernel the SQ head and the CQ tail;
  all are free-running ``u32`` counters masked with the ring's ``ring_mask``. ``_cq_head`` is
  our copy of the head: the kernel sees a new head only once it is stored into the ring,
  after the CQEs before it have been read.
- Ordering, x86-64 TSO only: the u32 load of the CQ tail is liburing's load-acquire (CQEs
  are read after it), the u32 store of the CQ head its store-release (the slots may be reused
  by the kernel from then on); the u32 store of the SQ tail is the release store after the
  SQE writes. Each is a separate opaque C call (a memoryview item access), so the C compiler
  cannot reorder them either. Between the SQ tail store and the SQPOLL flag load a full
  barrier is needed (:func:`~.syscall.full_fence`).
- A CQE is 16 bytes (``struct io_uring_cqe``: user_data, res, flags; no ``CQE32``, which
  ``Ring`` refuses), so slot ``i`` starts at byte ``i << 4`` of the CQE array.
- Not thread-safe: the caller serialises every SQ-side call and, separately, every CQ-side
  call (``reap``, ``peek_cqe``, ``cqe_seen``, ``cq_advance``). ``wait_cqes`` touches neither.
- Every syscall looks ``syscall._syscall`` up at call time (tests intercept it there).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import time
from typing import Any

from . import syscall
from .consts import CqRingFlags, EnterFlags, Feature, SqRingFlags
from .structs import GeteventsArg, KernelTimespec
from .syscall import ARGSZ_EXT, ARGSZ_NONE, NR_IO_URING_ENTER, enter_error, full_fence

__all__ = ["Cqe", "RingQueue"]

Cqe = tuple[int, int, int]
"""A reaped completion: ``(user_data, res, flags)``; ``res`` is ``-errno`` on failure."""

_CQE = struct.Struct("<QiI")  # struct io_uring_cqe: user_data, res, flags
_unpack_cqe = _CQE.unpack_from
_iter_cqes = _CQE.iter_unpack
_U32 = 0xFFFFFFFF
_GETEVENTS = int(EnterFlags.IORING_ENTER_GETEVENTS)
_EXT_ARG = int(EnterFlags.IORING_ENTER_EXT_ARG)
_SQ_WAKEUP = int(EnterFlags.IORING_ENTER_SQ_WAKEUP)
_SQ_WAIT = int(EnterFlags.IORING_ENTER_SQ_WAIT)
_NEED_WAKEUP = int(SqRingFlags.IORING_SQ_NEED_WAKEUP)
_NEEDS_FLUSH = int(SqRingFlags.IORING_SQ_CQ_OVERFLOW | SqRingFlags.IORING_SQ_TASKRUN)
_EVENTFD_DISABLED = int(CqRingFlags.IORING_CQ_EVENTFD_DISABLED)
_CQ_OVERFLOW = int(SqRingFlags.IORING_SQ_CQ_OVERFLOW)


class RingQueue:
    """The queue methods of ``Ring`` (module docstring).

    Its fields are slots of ``Ring`` (only one base of a class may have a non-empty
    ``__slots__`` layout, and that is ``SqePrep``); mypy checks assignments against this
    class's empty ``__slots__``, hence the ``type: ignore[misc]`` on ``_cq_head``.
    """

    __slots__ = ()
    # Set up by Ring.
    fd: int
    sqpoll: bool
    features: Feature
    sq_entries: int
    cq_entries: int
    _sq_u32: memoryview[int]  # the SQ ring as u32 words
    _sq_head_i: int  # indices of ring fields in the u32 views (byte offset >> 2)
    _sq_tail_i: int
    _sq_flags_i: int
    _sq_tail: int  # next SQE to prepare (unpublished)
    _sq_dirty: list[int]
    _cq_u32: memoryview[int]  # the CQ ring as u32 words
    _cqes: memoryview[int]  # the CQE array
    _cq_head: int  # our CQ head (the kernel sees it only once stored into the ring)
    _cq_mask: int
    _cq_head_i: int
    _cq_tail_i: int
    _cq_flags_i: int  # 0 when the kernel has no CQ flags word (< 5.8)

    def _sq_clean(self, head: int | None = None) -> None:
        raise NotImplementedError  # SqePrep's

    # -- SQ side ----------------------------------------------------------------------

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
        ret: int = syscall._syscall(
            NR_IO_URING_ENTER, self.fd, to_submit, wait_nr, flags, None, ARGSZ_NONE
        )
        if ret < 0:
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise enter_error(err)
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
        argsz = ARGSZ_NONE
        deadline = 0.0
        ts = KernelTimespec()
        if timeout is not None:
            if not self.features & Feature.IORING_FEAT_EXT_ARG:
                raise NotImplementedError("wait timeouts need IORING_FEAT_EXT_ARG (Linux 5.11)")
            deadline = time.monotonic() + timeout
            arg = GeteventsArg(ts=ctypes.addressof(ts))
            argp, argsz, flags = ctypes.byref(arg), ARGSZ_EXT, _GETEVENTS | _EXT_ARG
        while True:
            to_submit = self.sq_ready() if submit else 0
            wake = _SQ_WAKEUP if to_submit and self.sqpoll and self.sq_needs_wakeup() else 0
            if timeout is not None:
                ns = max(0, round((deadline - time.monotonic()) * 1e9))
                ts.tv_sec, ts.tv_nsec = divmod(ns, 1_000_000_000)
            if not (to_submit or flags):
                return 0
            ret: int = syscall._syscall(
                NR_IO_URING_ENTER, self.fd, to_submit, wait_nr, flags | wake, argp, argsz
            )
            if ret >= 0:
                if submit and self._sq_dirty:  # never from wait_cqes: it holds no SQ lock
                    self._sq_clean()
                return ret
            err = ctypes.get_errno()
            if err == errno.ETIME:
                return 0
            if err != errno.EINTR:
                raise enter_error(err)

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
        while syscall._syscall(NR_IO_URING_ENTER, self.fd, 0, 0, flags, None, ARGSZ_NONE) < 0:
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise OSError(err, os.strerror(err))

    # -- CQ side ---------------------------------------------------------

    def cq_eventfd_toggle(self, enabled: bool) -> None:
        """liburing's ``io_uring_cq_eventfd_toggle``: set or clear
        ``IORING_CQ_EVENTFD_DISABLED`` (5.8) in the CQ ring flags, so that new CQEs do (not)
        signal the eventfd registered with :meth:`~.register.RingRegister.register_eventfd`.
        No syscall. The kernel reads the flag after it has published a CQE's tail; a caller
        that enables it and must not miss a CQE posted meanwhile issues :func:`full_fence`
        and then looks at :meth:`cq_ready` (the Dekker pattern of the SQPOLL wake-up).

        Raises:
            OSError: EOPNOTSUPP on a kernel without the CQ flags word (< 5.8).
        """
        i = self._cq_flags_i
        if not i:
            raise OSError(errno.EOPNOTSUPP, "no CQ ring flags before Linux 5.8")
        flags = self._cq_u32[i]
        self._cq_u32[i] = flags & ~_EVENTFD_DISABLED if enabled else flags | _EVENTFD_DISABLED

    def cq_eventfd_enabled(self) -> bool:
        """False while ``IORING_CQ_EVENTFD_DISABLED`` is set."""
        i = self._cq_flags_i
        return not (i and self._cq_u32[i] & _EVENTFD_DISABLED)

    def cq_has_overflow(self) -> bool:
        """True when completions are waiting on the kernel's overflow list."""
        return bool(self._sq_u32[self._sq_flags_i] & _CQ_OVERFLOW)

    def _flush(self) -> bool:
        # Move overflowed CQEs into the CQ ring and run this thread's task work (which posts
        # the CQEs of the requests it submitted whose work is pending). SQ untouched.
        if not self._sq_u32[self._sq_flags_i] & _NEEDS_FLUSH:
            return False
        enter = syscall._syscall
        while enter(NR_IO_URING_ENTER, self.fd, 0, 0, _GETEVENTS, None, ARGSZ_NONE) < 0:
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise enter_error(err)
        return True

    def cq_ready(self) -> int:
        """CQEs in the CQ ring not yet reaped (excludes any overflow backlog)."""
        return (self._cq_u32[self._cq_tail_i] - self._cq_head) & _U32

    def reap(self, max_n: int = 0x7FFFFFFF) -> list[Cqe]:
        """Take up to ``max_n`` CQEs as ``(user_data, res, flags)`` and advance the CQ head once.

        Reads the CQ tail, unpacks the entries in one pass (two across the ring's wrap), then
        publishes the new head. When the ring is empty but the kernel has an overflow backlog or
        task work pending (``IORING_SQ_TASKRUN``: liburing's ``cq_ring_needs_flush``), it is
        flushed first (liburing's ``io_uring_peek_batch_cqe``). Returns ``[]`` when nothing is
        ready; never blocks.
        """
        head = self._cq_head
        u32 = self._cq_u32
        n = (u32[self._cq_tail_i] - head) & _U32  # the acquire load: CQEs are read after it
        if not n:
            if not self._flush():
                return []
            n = (u32[self._cq_tail_i] - head) & _U32
            if not n:
                return []
        if n > max_n:
            n = max_n
        start = head & self._cq_mask
        if n == 1:
            cqes = [_unpack_cqe(self._cqes, start << 4)]
        else:
            end = start + n
            if end <= self.cq_entries:
                cqes = list(_iter_cqes(self._cqes[start << 4 : end << 4]))
            else:
                cqes = list(_iter_cqes(self._cqes[start << 4 :]))
                cqes += _iter_cqes(self._cqes[: (end - self.cq_entries) << 4])
        head = (head + n) & _U32
        self._cq_head = head  # type: ignore[misc]  # a slot of Ring (class docstring)
        u32[self._cq_head_i] = head  # the release store: the slots may be reused now
        return cqes

    def peek_cqe(self) -> Cqe | None:
        """The oldest CQE without consuming it (then :meth:`cqe_seen`), or None."""
        if not self.cq_ready() and not (self._flush() and self.cq_ready()):
            return None
        return _unpack_cqe(self._cqes, (self._cq_head & self._cq_mask) << 4)

    def cqe_seen(self) -> None:
        """Consume the CQE returned by :meth:`peek_cqe`."""
        self.cq_advance(1)

    def cq_advance(self, n: int) -> None:
        """Consume ``n`` CQEs without reading them."""
        self._cq_head = (self._cq_head + n) & _U32  # type: ignore[misc]  # a slot of Ring
        self._cq_u32[self._cq_head_i] = self._cq_head
