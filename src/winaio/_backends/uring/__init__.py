"""The io_uring backend: issuers submit their own requests, waiting threads reap them.

Purpose: finish the operations the I/O layer could not finish at once (``winaio._io._backend``)
with io_uring, at the cost of a raw io_uring loop: the thread that issues a request submits it
(``io_uring_enter`` from that thread, like ``io_uring_submit``), and the thread that waits for
a completion - in GetQueuedCompletionStatus, an alertable wait, or on the request's event -
waits in the kernel on the ring and delivers the completions itself (``lead``). The public
face is :class:`IoUringBackend` and :func:`probe_backend`; ``winaio._runtime`` is the only
module that imports this package.

Modules: ``abi`` (the raw io_uring ABI, split the way liburing splits its own code: no policy,
no threads), ``ring`` (the ring as an ``SqeSink``, split publish/enter), ``backend`` (the
backend object: the Backend protocol, its parts wired), ``submission`` (the SQ side:
submitting, arming a line's head, cancelling), ``lead`` (waiting threads that reap: leaders,
followers, pokes, the watch), ``streams`` (STREAM requests: per-descriptor FIFO lines and
readiness polls), ``backlog`` (what the ring thread submits), ``migration`` (who submitted
what; what migrates when a submitter exits), ``reaper`` (the completion side: reaping the CQ
ring, mapping CQEs, delivering; the CQ lock), ``deferral`` (the ring owner's burst, deferred to
its next wait; the ports' flush hook), ``ringthread`` (the ring thread: its loop, the leaders'
poke poll, its sleep and wake-ups), ``close`` (draining after a dead ring thread), ``common``
(the shared vocabulary), ``probe`` (can it run here, and why not).

Io_uring facts relied on (``abi`` has them with sources; checked on 6.18)
-------------------------------------------------------------------------
- Requests belong to the task that *submitted* them (io_uring_enter): their task work runs in
  that thread (without COOP_TASKRUN/DEFER_TASKRUN it interrupts the thread wherever it is, a
  thread parked on a lock included, so a completion never waits for its submitter to enter).
- Once the submitter has exited, a request that still needs task work completes with an
  error instead of doing its work: a poll or a socket read that was waiting with -ECANCELED
  (the data stays in the socket), a buffered read that missed the page cache with -EFAULT;
  an O_DIRECT read already at the device completes normally. Exiting does not cancel
  anything else by itself. Any thread may cancel any request (ASYNC_CANCEL by user_data).
- Exactly one CQE per SQE, echoing user_data; a cancelled request still posts its own CQE,
  and until then the kernel may use its memory (liburing #733). ASYNC_CANCEL gets a CQE of
  its own (0, -ENOENT, -EALREADY).
- The kernel reads SQEs only up to the SQ tail we published, and io_uring_enter consumes
  them from the head in order; with IORING_FEAT_NODROP (5.5) no CQE is ever dropped.
- Any number of threads may wait for CQEs (GETEVENTS) on one ring; a registered eventfd is
  signalled for every CQE unless IORING_CQ_EVENTFD_DISABLED (5.8) is set.

Who submits (invariant 3: port-bound I/O outlives its issuer)
------------------------------------------------------------
Every SQE is prepared, published and submitted in one critical section of the backend's
lock, by the thread that needs it: the issuer (``submit``), a canceller (``cancel``), whoever
reaped the poll of a line's head and polls again (``streams``). So the SQ ring never holds an
SQE that nobody has submitted, and each request's submitter is known (``InFlight``). Issuing
a pending request costs its issuer one io_uring_enter and no thread hand-off.

Requests then belong to their submitting thread (facts above). The Win32 rule says a
request that is not bound to a completion port dies with its issuing thread - which
io_uring's rule would give for free - but a port-bound one must outlive it, and a request
submitted by a thread that is not its issuer (a re-poll) must outlive that thread too. Hence
**migration**, in a thread exit hook that runs in the exiting thread before it is gone: every
request it submitted that is still in the kernel and not being cancelled anyway (the I/O
layer's exit hook cancels the thread's own non-port requests first, spec §8) is cancelled by
it (ASYNC_CANCEL) and marked migrating. When its CQE comes: a success is delivered as usual;
an error (-ECANCELED: the cancel won; or whatever the kernel says when the request died with
its submitter) puts the request into the backlog, and the **ring thread**, which lives as
long as the backend, submits it again. Reads and writes at an offset and readiness polls are
idempotent until they complete, so the request is the same request.

Who reaps
---------
A thread that blocks in any wait while it has issued requests on this backend waits in the
kernel on the ring, reaps and delivers (``lead``: leaders, followers, pokes). The ring thread
reaps only when no waiting thread is responsible for the ring: its eventfd is signalled for
CQEs while nobody owns the ring, and it watches owners that went away.

The ring thread (``winaio-uring-<n>``)
-------------------------------------
It submits the backlog (a full SQ ring, SQEs the kernel refused with EBUSY, migrated requests),
arms the leaders' poke poll, reaps while nobody owns the ring, watches absent owners, and
drains everything at close. It sleeps on its eventfd (``poll``): writes from threads that need
it (at most one per sleep: ``RingThread.sleeping``), and the ring's CQEs while nobody owns it.
Task work for the requests it submitted interrupts that sleep inside the kernel, not in Python.

FILE operations
---------------
``op.prep(ring, user_data)``: the ring is the ``SqeSink``. Every SQE gets a fresh user_data
from a counter (reserved values below ``FIRST_UD`` are internal: the poke poll, cancels);
``InFlight[user_data] = (op, keepalive, submitter)`` holds the operation, its buffers and the
pinned iovecs until the CQE, then ``op.from_cqe(res)`` -> ``op.complete``. An op whose SQE
cannot even be prepared (unusable buffer, offset out of range) completes at once with an
error status.

Cancellation (invariants 1 and 2)
---------------------------------
``cancel(op)`` submits ``IORING_OP_ASYNC_CANCEL`` for the op's in-flight user_data (a FILE
op's SQE, or the POLL_ADD of a line's head). The op still completes exactly once, from its own
CQE: an error on a cancelled op becomes STATUS_CANCELLED, a success is the real result (the
cancel lost the race; the cancel's own -ENOENT/-EALREADY is ignored). Until that CQE the op
stays in ``InFlight`` with its buffers (liburing #733). Requests that never reached the
kernel (queued behind a line's head, or still in the backlog) are completed cancelled without
it; see ``streams`` for the head between two polls.

Close (invariant 4): ``close()`` makes the ring thread cancel and drain everything, then
closes the ring; if the ring thread died, the closing thread drains (``close``).

Invariant 5: ``op.complete`` is always called without the backend's locks held.
"""

from .backend import IoUringBackend
from .probe import probe_backend

__all__ = ["IoUringBackend", "probe_backend"]
