"""The raw io_uring ABI: a ring, its three syscalls, and nothing else.

Purpose: the thin layer an io_uring backend stands on. It creates a ring
(``io_uring_setup``), maps it, fills SQEs with one precompiled ``struct.pack_into`` each,
publishes and submits them (``io_uring_enter``), reaps CQEs, registers an eventfd or files
(``io_uring_register``), and probes what the running kernel supports. Vocabulary follows
liburing (sqe, cqe, ``prep_*``, ``user_data``, ``submit_and_wait``, ``cqe_seen``) so every name
can be checked against a man page, and so does the split into modules:

- ``consts``: the uapi constants (``<linux/io_uring.h>``);
- ``structs``: the C structures and stable addresses for Python buffers;
- ``syscall``: libc's ``syscall()``, the syscall numbers, :func:`full_fence`, the errors
  (liburing's ``syscall.c``);
- ``setup``: :class:`Ring`: io_uring_setup, the mappings, close (``setup.c``);
- ``prep``: the ``prep_*`` SQE writers (the inline preps of ``liburing.h``);
- ``queue``: publishing, submitting, waiting and reaping (``queue.c``);
- ``register``: io_uring_register (``register.c``);
- ``support``: :func:`probe`: can io_uring work here, and what does it support
  (``io_uring_get_probe``).

``Ring`` is one object with the methods of ``prep``, ``queue`` and ``register`` (liburing's
functions over one ``struct io_uring``): those modules define method groups, not state.

Rules:

- No policy and no threads: no user_data bookkeeping, no buffer ownership, no reaper, no
  fallback. The backend decides all of that.
- **Not thread-safe by itself.** The caller serialises the SQ side (every ``prep_*``,
  ``submit*``) with one lock and the CQ side (``reap``, ``peek_cqe``, ``cqe_seen``,
  ``cq_advance``) with another. :meth:`Ring.wait_cqes` touches neither queue, so any number of
  threads may sit in it at once, with or without those locks.
- Stdlib only (ctypes, mmap, struct); imports nothing from ``winaio``.
- Every syscall of a ``Ring`` looks ``syscall._syscall`` up at call time: monkeypatching that
  one name intercepts them all.

Some facts about io_uring
-------------------------

Everything below is what this code relies on. Man pages: io_uring_setup(2),
io_uring_enter(2), io_uring_register(2); Jens Axboe, "Efficient IO with io_uring" (2019).

* **Two rings in shared memory.** io_uring_setup(2) returns a file descriptor and the offsets
  of the head, tail, mask and array fields; the application mmaps the SQ ring
  (``IORING_OFF_SQ_RING``), the CQ ring (``IORING_OFF_CQ_RING``) and the SQE array
  (``IORING_OFF_SQES``). Since 5.4 (``IORING_FEAT_SINGLE_MMAP``) the two rings share one
  mapping; before that they are two mmaps. Both layouts are handled; Python's ``mmap`` dup()s
  the descriptor, so a ring holds 3 descriptors (4 without SINGLE_MMAP) until :meth:`Ring.close`.
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
* **Task work.** Many requests (sockets, poll, buffered and O_DIRECT reads) finish in "task
  work" run by the thread that *submitted* them (io_uring_enter): the wake-up or the device
  completion queues it on that task (``io_req_normal_work_add``: ``io_uring/io_uring.c``,
  ``io_uring/tw.c`` from 6.19), and the CQE is posted when it runs. It runs whenever that
  task returns to user mode (the end of any syscall or interrupt: ``TIF_NOTIFY_SIGNAL``) or
  waits in io_uring_enter(``GETEVENTS``); any other thread entering the kernel runs only its
  *own*. How the task is told (``task_work_add``'s notify method, ``kernel/task_work.c``):

  - by default ``TWA_SIGNAL`` (``set_notify_signal``): the flag is set, a task asleep in an
    interruptible wait is woken (``wake_up_state(TASK_INTERRUPTIBLE)``), and a task running
    elsewhere gets an IPI (``kick_process``) so that it enters the kernel at once;
  - with ``IORING_SETUP_COOP_TASKRUN`` (5.19) ``TWA_SIGNAL_NO_IPI`` (``__set_notify_signal``):
    the same without the IPI. An interruptibly sleeping submitter (futex, poll, nanosleep,
    io_uring_enter...) is still woken at once; one running in user mode runs the work at its
    next syscall, page fault or interrupt - at the latest its next timer tick (CONFIG_HZ=250:
    4 ms; no ``nohz_full`` CPU here); one in an uninterruptible sleep at its return, as with
    TWA_SIGNAL. A completion is delayed at most that long, never lost. The IPI saved is a VM
    exit on a virtual machine; the work then often runs when the submitter's own next
    syscall returns, batched;
  - ``IORING_SETUP_TASKRUN_FLAG`` (with COOP or DEFER) makes the kernel set
    ``IORING_SQ_TASKRUN`` in the SQ ring's flags when a task's list of this ring's task work
    goes from empty to non-empty, and clear it when *any* task has run its list for this
    ring (``ctx_flush_and_put``). On a ring several threads submit to it is therefore a hint,
    not a count: set means some task may have work pending (the caller's own, or another's),
    clear does not prove the caller has none. A reader that finds the CQ ring empty and the
    flag set flushes (io_uring_enter(0, 0, ``GETEVENTS``), liburing's ``cq_ring_needs_flush``),
    which posts the CQEs of the caller's own pending work; another task's work is posted when
    that task enters the kernel, and its CQE then wakes io_uring_enter's waiters and signals
    a registered eventfd at that moment (``IORING_CQ_EVENTFD_DISABLED`` is read then).
  - ``IORING_SETUP_DEFER_TASKRUN`` (6.1) runs the work only in io_uring_enter(``GETEVENTS``)
    and needs ``SINGLE_ISSUER`` and that only the submitter waits: not for rings one thread
    submits to and another waits on.

  Requests also belong to their submitter: if that thread exits first, a request still
  waiting for its task work completes with -ECANCELED (a RECV leaves the data in the
  socket). Submit from long-lived threads.
* **Teardown is asynchronous.** Closing the fd and unmapping cancels what is in flight, but
  the kernel may still write into user buffers while it finishes. Drain first (cancel, then
  reap every outstanding ``user_data``), then :meth:`Ring.close`. Never share a ring across
  ``fork()``.
* **Availability.** Why io_uring_setup can fail (seccomp, ``kernel.io_uring_disabled``,
  RLIMIT_MEMLOCK) is in ``support``, with the diagnosis :func:`probe` reports. This module
  needs 5.6 (``IORING_SETUP_CLAMP``, ``IORING_REGISTER_PROBE``); opcodes and features beyond
  that are reported by :func:`probe`.
"""

from .prep import SubmissionQueueFull
from .queue import Cqe
from .setup import Ring
from .support import ProbeResult, probe
from .syscall import RingBusyError, full_fence

__all__ = [
    "Cqe",
    "ProbeResult",
    "Ring",
    "RingBusyError",
    "SubmissionQueueFull",
    "full_fence",
    "probe",
]
