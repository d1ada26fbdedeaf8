"""CQE reaping: liburing's ``io_uring_peek_cqe`` / ``cqe_seen`` / ``cq_advance`` as methods.

Purpose: the completion-queue half of ``Ring`` (which mixes :class:`CqReap` in, next to
``SqePrep``). It reads CQEs out of the mmap'd CQ ring and publishes the new CQ head; there is
no syscall here. The one CQ-side call into the kernel, flushing the overflow backlog
(io_uring_enter with ``GETEVENTS``), is ``Ring._flush`` in ``_uring_abi``, so that every
``_syscall`` of a ring goes through that module's global.

Rules (the facts are in ``_uring_abi``: who writes what, memory ordering, CQ overflow):

- The application owns the CQ head, the kernel the CQ tail; both are free-running ``u32``
  counters masked with the ring's ``ring_mask``. ``_cq_head`` is our copy of the head: the
  kernel sees a new head only once it is stored into the ring, after the CQEs before it have
  been read.
- Ordering, x86-64 TSO only: the u32 load of the CQ tail is liburing's load-acquire (CQEs
  are read after it), the u32 store of the CQ head its store-release (the slots may be reused
  by the kernel from then on). Each is a separate opaque C call (a memoryview item access),
  so the C compiler cannot reorder them either.
- A CQE is 16 bytes (``struct io_uring_cqe``: user_data, res, flags; no ``CQE32``, which
  ``Ring`` refuses), so slot ``i`` starts at byte ``i << 4`` of the CQE array.
- Not thread-safe: the caller serialises every CQ-side call (``reap``, ``peek_cqe``,
  ``cqe_seen``, ``cq_advance``) with one lock.
"""

from __future__ import annotations

import struct

__all__ = ["Cqe", "CqReap"]

Cqe = tuple[int, int, int]
"""A reaped completion: ``(user_data, res, flags)``; ``res`` is ``-errno`` on failure."""

_CQE = struct.Struct("<QiI")  # struct io_uring_cqe: user_data, res, flags
_unpack_cqe = _CQE.unpack_from
_iter_cqes = _CQE.iter_unpack
_U32 = 0xFFFFFFFF


class CqReap:
    """The CQ half of ``Ring``; see the module docstring.

    Its fields are slots of ``Ring``: only one base of a class may have a non-empty
    ``__slots__`` layout, and that is ``SqePrep``. mypy checks assignments against this
    class's empty ``__slots__``, hence the two ``type: ignore[misc]`` on ``_cq_head``.
    """

    __slots__ = ()
    # Set up by Ring.
    cq_entries: int
    _cq_u32: memoryview[int]  # the CQ ring as u32 words (the SQ ring's are in SqePrep)
    _cqes: memoryview[int]  # the CQE array
    _cq_head: int  # our CQ head (the kernel sees it only once stored into the ring)
    _cq_mask: int
    _cq_head_i: int  # indices of ring fields in the u32 views (byte offset >> 2)
    _cq_tail_i: int

    def _flush(self) -> bool:
        # Ring: move overflowed CQEs into the CQ ring; True when it entered the kernel.
        raise NotImplementedError

    def cq_ready(self) -> int:
        """CQEs in the CQ ring not yet reaped (excludes any overflow backlog)."""
        return (self._cq_u32[self._cq_tail_i] - self._cq_head) & _U32

    def reap(self, max_n: int = 0x7FFFFFFF) -> list[Cqe]:
        """Take up to ``max_n`` CQEs as ``(user_data, res, flags)`` and advance the CQ head once.

        Reads the CQ tail, unpacks the entries in one pass (two across the ring's wrap), then
        publishes the new head. When the ring is empty but the kernel has an overflow backlog,
        it is flushed first. Returns ``[]`` when nothing is ready; never blocks.
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
