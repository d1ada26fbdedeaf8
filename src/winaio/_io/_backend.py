"""The Backend contract: how an I/O operation that would block gets finished.

A backend receives :class:`~._ops.Operation` objects whose non-blocking first attempt
(``op.try_now()``) could not finish them, and finishes each **exactly once** by calling
``op.complete(status, information)``. Everything Win32-visible (OVERLAPPED, events, APCs,
completion packets) happens in ``complete``; a backend knows nothing about it.

Invariants every backend keeps (checked by the shared contract suite, tests/io/contract):

1. **Exactly once.** Every submitted op is completed exactly once: with its real result, or with
   ``STATUS_CANCELLED`` after :meth:`Backend.cancel`, or with ``STATUS_CANCELLED`` from
   :meth:`Backend.close`. A cancel may lose the race against a normal completion; then the op
   completes normally (Win32 allows it, [MS:CancelIoEx]).
2. **Buffer ownership.** The backend keeps the op (and so its buffers and OVERLAPPED) referenced
   from ``submit`` until it has called ``complete`` - in particular after a cancel, until the
   kernel has really let go of the memory (io_uring: the CQE of the cancelled request,
   [liburing #733]; threads: the worker returned).
3. **No thread binding.** Requests are owned by backend threads, never by the thread that called
   ``submit``: a submitting thread may exit at once and its request keeps running (the Vista+
   rule for port-bound I/O, spec §8; the per-thread cancellation of §8 is done above, by
   ``_files`` at thread exit, through :meth:`cancel`).
4. **Close drains.** ``close()`` cancels what is in flight, waits for every op to be completed,
   then releases its threads and file descriptors. Submitting after close raises.
5. ``complete`` runs user-visible code only through the kernel layer (APCs are queued, never run),
   so a backend may call it from any of its threads, without holding its own locks.

Operation kinds (``op.kind``):

- ``FILE``: positioned reads/writes on regular files. io_uring prepares an SQE (``op.prep``);
  threads run ``op.run_blocking()`` on a worker.
- ``STREAM``: sockets and pipes. Readiness based: wait for ``op.poll_events`` on ``op.fd`` (io_uring
  POLL_ADD, threads epoll), then call ``op.try_now()`` again; ``None`` means "still would
  block", wait again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from ._ops import Operation

__all__ = [
    "Backend",
    "BackendStatistics",
    "IdleWork",
    "OpKind",
    "add_deferred_flush",
    "add_idle_work",
    "flush_deferred",
    "get_backend",
    "run_idle_work",
    "set_backend_factory",
]


class OpKind(enum.Enum):
    """How a backend finishes an operation (module docstring)."""

    FILE = "file"
    STREAM = "stream"
    #: Completed by in-process events (e.g. ConnectNamedPipe); never given to a backend.
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class BackendStatistics:
    """A snapshot of a backend's state."""

    name: str
    submitted: int
    completed: int
    cancelled: int
    in_flight: int
    threads: int
    detail: str = ""


class Backend(Protocol):
    """What the I/O layer needs from an I/O engine (module docstring lists the invariants)."""

    name: str

    def submit(self, op: Operation) -> None:
        """Start ``op``; it will be completed exactly once via ``op.complete``."""

    def cancel(self, op: Operation) -> None:
        """Ask for ``op`` to end early with STATUS_CANCELLED (it still completes exactly once)."""

    def close(self) -> None:
        """Cancel everything in flight, wait until all of it completed, release resources."""

    def statistics(self) -> BackendStatistics:
        """Counters for tests, benchmarks and diagnostics."""


_factory: Callable[[str | None], Backend] | None = None


def set_backend_factory(factory: Callable[[str | None], Backend]) -> None:
    """Installed once by ``winaio._runtime`` (the only module that knows concrete backends)."""
    global _factory
    _factory = factory


def get_backend(name: str | None = None) -> Backend:
    """The backend for new handles: ``name``, or the process default chosen by ``_runtime``.

    ``winaio/__init__`` imports ``_runtime``, which installs the factory, so it is always set
    once any part of the package is imported.
    """
    if _factory is None:
        raise RuntimeError("no I/O backend factory installed (winaio._runtime not imported)")
    return _factory(name)


class IdleWork:
    """Work a thread about to block in GetQueuedCompletionStatus may do itself instead: the
    thread backend runs a queued FILE request inline there, rather than hand it to a worker
    and wait for the worker to hand the completion back (two thread hand-offs).

    ``queued`` is a hint kept by the backends (requests they hold that a waiting thread could
    run); a port looks at it before calling :func:`run_idle_work`, so that it costs nothing
    when nothing is queued.
    """

    queued: ClassVar[int] = 0
    hooks: ClassVar[list[Callable[[], bool]]] = []
    #: A hint kept by backends: submissions deferred to their issuer's next wait (the io_uring
    #: ring's owner batches what it issues into one io_uring_enter). A port waiter about to
    #: take packets calls :func:`flush_deferred` first when it is set: the deferred requests
    #: reach the device before the waiter goes off to process what it dequeued.
    deferred: ClassVar[int] = 0
    flush_hooks: ClassVar[list[Callable[[], object]]] = []


def add_idle_work(fn: Callable[[], bool]) -> None:
    """Register ``fn`` (a backend, once at import): see :func:`run_idle_work`."""
    IdleWork.hooks.append(fn)


def run_idle_work() -> bool:
    """Called by a thread about to block on a completion port (no lock held): let a backend
    run one pending request on this thread. True if one ran (the caller looks again)."""
    return any(fn() for fn in IdleWork.hooks)


def add_deferred_flush(fn: Callable[[], object]) -> None:
    """Register ``fn`` (a backend, once at import): see :func:`flush_deferred`."""
    IdleWork.flush_hooks.append(fn)


def flush_deferred() -> None:
    """Called by a thread that takes completion packets (no lock held) while
    ``IdleWork.deferred`` is set: backends submit what they deferred, from this thread."""
    for fn in IdleWork.flush_hooks:
        fn()
