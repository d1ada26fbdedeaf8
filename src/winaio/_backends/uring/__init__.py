"""The io_uring backend: one ring thread that owns every request, on a plain ring plus, for
deep FILE queues, a SQPOLL ring.

Purpose: finish the operations the I/O layer could not finish at once (``winaio._io._backend``)
with io_uring, at about a microsecond of backend Python per request on each side. The public
face is :class:`IoUringBackend` and :func:`probe_backend`; ``winaio._runtime`` is the only
module that imports this package.

Modules: ``abi`` (the raw io_uring ABI, split the way liburing splits its own code: no policy,
no threads), ``ring`` (the ring as an ``SqeSink``, split publish/enter), ``backend`` (the
backend object: threads, submission, cancellation, completion), ``sqpoll`` (the SQPOLL ring:
why, routing, wake-ups, fallback), ``streams`` (STREAM requests: per-descriptor FIFO lines
and readiness polls), ``backlog`` (what did not fit into the plain ring), ``close`` (salvaging
a dead ring thread), ``common`` (the shared vocabulary), ``probe`` (can it run here, and why
not).

Io_uring facts relied on (``abi`` has them with sources)
-----------------------------------------------------
- Requests belong to the task that *submitted* them (io_uring_enter): their task work runs in
  that thread; once it has exited, a request that needs task work (a poll firing, most
  socket I/O) completes with -ECANCELED instead of doing its work.
- Without COOP_TASKRUN/DEFER_TASKRUN, task work interrupts the submitter wherever it is, so a
  completion never waits for our next enter.
- Exactly one CQE per SQE, echoing user_data; a cancelled request still posts its own CQE,
  and until then the kernel may use its memory (liburing #733). ASYNC_CANCEL gets a CQE of
  its own (0, -ENOENT, -EALREADY).
- The kernel reads SQEs only up to the SQ tail we published; with IORING_FEAT_NODROP (5.5) no
  CQE is ever dropped (the probe requires it).
- A multishot POLL_ADD (5.13) posts a CQE, with IORING_CQE_F_MORE, for every wake-up of the
  file; older kernels refuse it with -EINVAL; a CQ overflow can end it (no F_MORE).

Threads and ownership (invariant 3)
-----------------------------------
One thread, ``winaio-uring-<n>``, is the only one that submits with ``io_uring_enter``: it
submits, sleeps in the kernel until completions arrive, reaps them (from both rings) in
batches and completes the operations. Win32 port-bound I/O must survive the exit of the
thread that issued it (spec §8), so no issuing thread ever submits. Issuers only *write* SQEs
into the plain SQ ring, under the backend's lock (a ``pack_into``; the kernel sees nothing until the
ring thread publishes the tail). Deep FILE queues go to the SQPOLL ring instead, where the
issuer publishes and the kernel's poller submits, so the request belongs to the poller;
the issuer only enters to wake a sleeping poller (``sqpoll``). The ring thread lives
until :meth:`IoUringBackend.close` has drained everything. SQPOLL on the second ring only; no
COOP_TASKRUN or DEFER_TASKRUN (facts above).

Wake-up protocol (no lost wake-ups, at most one eventfd write per sleep)
------------------------------------------------------------------------
The ring thread keeps a multishot ``POLL_ADD`` armed on an eventfd (user_data ``UD_WAKE``):
every eventfd write posts a CQE, and any CQE ends ``io_uring_enter(GETEVENTS,
min_complete=1)``. The eventfd is never read in multishot mode; its counter only grows. The
SQPOLL ring's CQEs write it too (``IORING_REGISTER_EVENTFD``).

- Ring thread, under the lock: publish the SQ tail (everything prepared so far), then set
  ``_sleeping`` - in the same critical section - then enter (submit + wait) without the lock.
  If CQEs are already waiting it does not wait and does not set the flag.
- Issuer, under the lock: prepare its SQE; if ``_sleeping`` is set, clear it and, after
  releasing the lock, write the eventfd once. Later issuers see the flag cleared and write
  nothing: their SQEs are published at the ring thread's next loop, which is sure to come.
  Requests that put nothing into the ring (a stream read queued behind another) never wake.

An SQE prepared before the ring thread's critical section is in the published tail; one
prepared after it sees ``_sleeping`` set, so a write follows (its own or the one already
decided in this round), and that write posts a CQE that ends the sleep - or, if it lands
before the ring thread reaches the kernel, makes the wait return at once. While the ring
thread works (flag clear) issuers never make a syscall: one wake-up and one enter serve a
whole burst. If the multishot poll ends (CQ overflow, or -EINVAL before 5.13), the ring thread
reads the eventfd dry and re-arms a (one-shot, after -EINVAL) poll before it sleeps again; the
re-armed poll fires at once if a write slipped in between, so the fallback is safe too.
(Measured: a plain ``os.eventfd_write`` + multishot poll round trip is the cheapest wake-up
here, cheaper than MSG_RING from a helper ring and than writing without releasing the GIL.)

A round of the ring thread: move the backlog into the ring, publish, then deliver the
completions reaped in the previous round, then enter. Delivery wakes the issuers, which need
the GIL; doing it last means the ring thread blocks in the kernel (releasing the GIL) a few
bytecodes after waking them (QD1 round trip through the backend: 47 -> 19 us).

FILE operations
---------------
``op.prep(ring, user_data)``: the ring is the ``SqeSink``. Every SQE gets a fresh user_data
from a counter (reserved values below ``FIRST_UD`` are internal: the wake-up poll, cancels);
``InFlight[user_data] = (op, keepalive)`` holds the operation, its buffers and the pinned iovecs
until the CQE, then ``op.from_cqe(res)`` -> ``op.complete``. An op whose SQE cannot even be
prepared (unusable buffer, offset out of range) completes at once with an error status.

Cancellation (invariants 1 and 2)
---------------------------------
``cancel(op)`` prepares ``IORING_OP_ASYNC_CANCEL`` for the op's in-flight user_data (a FILE
op's SQE, or the POLL_ADD of a line's head) in the ring that holds it (``sqpoll``). The
op still completes exactly once, from its own CQE: -ECANCELED becomes STATUS_CANCELLED,
anything else is the real result (the cancel lost the race; the cancel's own
-ENOENT/-EALREADY is ignored). Until that CQE the op stays in ``InFlight`` with its buffers
(liburing #733). Requests that never reached the kernel (queued behind a line's head, or still
in the backlog) are completed cancelled without it; see ``streams`` for the head
between two polls.

Backlog
-------
An issuer that finds the SQ ring full (``SubmissionQueueFull``) cannot submit (it must not
enter), so it appends the request to the backlog (``backlog``); once the backlog is non-empty
everything goes there, keeping FIFO order. The ring thread moves it into the ring at the top
of each round, entering to make room if needed.

Close (invariant 4): ``close()`` makes the ring thread cancel and drain everything, then
closes the rings; if the ring thread died, it salvages (``close``).

Invariant 5: ``op.complete`` is always called without the backend's lock held.
"""

from .backend import IoUringBackend
from .probe import probe_backend

__all__ = ["IoUringBackend", "probe_backend"]
