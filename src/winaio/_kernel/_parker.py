"""A thread's parker on a futex, woken without the GIL (pool workers, thread-backend issuers).

Why (submit-to-run latency, issue 10): a thread parked on a ``threading.Lock`` is woken by
``lock.release()``, a futex wake made *while the waker holds the GIL*. On a small machine the
kernel usually puts the woken worker on the waker's CPU and, about half the time (EEVDF wake-up
preemption), runs it at once: the worker returns from the futex, finds the GIL held and sleeps
on the GIL's condition variable; the waker's ``drop_gil`` (a signal inside the GIL mutex) then
costs two more wake-ups before the worker runs Python - three wake-ups and six context switches
instead of one and two (``sched_switch`` traces, docs/design.md). Here the pool's hand-off
(:meth:`WorkerParker.wake`, with no lock held) is a ``futex(FUTEX_WAKE)`` called through
``ctypes.CDLL``, which releases the GIL around the call: a worker that preempts its waker finds
the GIL free and runs its callback at once, and the waker goes on when the worker parks again.
``release`` (the kernel's ``wake_thread``, under the dispatcher lock) keeps the GIL.
(No fd: an eventfd would do the same, at one fd per worker.)

Semantics are those of ``_kernel._dispatcher.Parker`` (a ``threading.Lock`` used as a binary
semaphore): ``release`` gives the token, ``acquire`` takes it, blocking or not, with a timeout.
The token is a C int (the futex word): 0 none, 1 given; extra releases collapse into one token.
Only the owning thread acquires. A release skips the syscall unless the owner is asleep (or
about to be): the owner sets ``sleeping`` before ``FUTEX_WAIT(word, 0)``, which the kernel
refuses (EAGAIN) once the word is 1; a releaser stores the word before it reads ``sleeping``;
both run Python under the GIL, whose hand-overs order them (the Dekker pattern, one side in the
kernel). A token given late (``ThreadPool._handoff_locked`` wakes a worker after dropping the
dispatcher lock) is at worst a spurious wake-up, which every wait loop of the kernel re-checks.

:data:`AVAILABLE` is False where the futex syscall number is unknown or there is no libc: the
workers then keep their ``threading.Lock`` parkers (slower wake-ups, same semantics).

**Wakes deferred past the dispatcher lock** (the thread backend, issue 9: a worker that finished
a blocking ``pread`` delivers the completion under the dispatcher lock, and the port waiter it
ends would be woken GIL-held, inside that lock: the same three wake-ups). A thread that calls
:func:`defer_wakes` before such a delivery collects, instead of waking them, the parkers whose
owner sleeps (their token is given under the lock as always: ``word`` = 1, so an owner that
looks before the syscall finds it), and :func:`flush_wakes` issues their ``FUTEX_WAKE`` after
the lock, without the GIL. The list is the calling thread's own (a ``threading.local``): no
other thread's releases land in it. A flush that comes after its owner woke for another
reason is a spurious wake-up of a later wait, which every wait loop re-checks.
:func:`bind` gives a thread that still parks on its ``threading.Lock`` a :class:`WorkerParker`
(the thread backend binds its issuers: the threads most likely to wait for their requests).
"""

from __future__ import annotations

import ctypes
import platform
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._clock import monotonic
from ._dispatcher import LOCK, ThreadState

__all__ = [
    "AVAILABLE",
    "Wake",
    "WorkerParker",
    "bind",
    "defer_wakes",
    "deferral",
    "deferred_wakes",
    "flush_wakes",
]

#: SYS_futex per architecture (asm/unistd.h; the unified table's number on newer ones).
_NR_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98, "riscv64": 98}.get(
    platform.machine().lower()
)
_FUTEX_WAIT_PRIVATE = 0 | 128
_FUTEX_WAKE_PRIVATE = 1 | 128


def _load_syscall(library: type[ctypes.CDLL]) -> Any:
    try:
        fn = library(None, use_errno=True).syscall
    except (OSError, AttributeError, TypeError):  # not a libc platform
        return None
    # No argtypes: converting through them costs more than the call (the io_uring ABI layer
    # measured ~0.5 us); ints travel as C int, pointers as ctypes objects or None.
    fn.restype = ctypes.c_long
    return fn


#: syscall(2) without the GIL (ctypes.CDLL releases it around foreign calls) and with it
#: (ctypes.PyDLL keeps it).
_syscall: Any = _load_syscall(ctypes.CDLL) if _NR_FUTEX is not None else None
_syscall_gil: Any = _load_syscall(ctypes.PyDLL) if _syscall is not None else None
#: The ``sleeping`` flag is ordered against the token by the GIL (module docstring): a
#: free-threaded build without it keeps ``threading.Lock`` parkers.
_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()
#: True where workers park on a :class:`WorkerParker`.
AVAILABLE = _syscall is not None and _syscall_gil is not None and _GIL


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


_addressof = ctypes.addressof


def _take(word: ctypes.c_int) -> bool:
    """Consume the token if it is there (the owner only)."""
    if word.value:
        word.value = 0
        return True
    return False


class WorkerParker:
    """The parker of a pool worker thread (module docstring)."""

    __slots__ = ("_addr", "_word", "sleeping")

    def __init__(self) -> None:
        self._word = ctypes.c_int(0)
        #: The word's address as a pointer argument (a bare Python int would travel as a
        #: 32-bit C int: a truncated address, EFAULT, and a waiter that never sleeps).
        self._addr = ctypes.c_void_p(_addressof(self._word))
        #: The owner is in (or entering) FUTEX_WAIT: a release must make the syscall.
        self.sleeping = False

    def release(self) -> None:
        """Give the token (``wake_thread``, under the dispatcher lock): the wake-up keeps the
        GIL, as ``threading.Lock.release`` does - dropping it here would let the woken worker
        run into the dispatcher lock still held by its waker - unless the releasing thread
        defers its wakes past the lock (:func:`defer_wakes`)."""
        self._word.value = 1
        if self.sleeping:
            deferred = _deferral.wakes
            if deferred is not None:
                deferred.append(self._wake_now)
            else:
                _syscall_gil(_NR_FUTEX, self._addr, _FUTEX_WAKE_PRIVATE, 1)

    def _wake_now(self) -> None:
        """The deferred half of :meth:`release` (:func:`flush_wakes`), without the GIL."""
        _syscall(_NR_FUTEX, self._addr, _FUTEX_WAKE_PRIVATE, 1)

    def wake(self) -> None:
        """Give the token with no lock held (``ThreadPool._handoff_locked``'s caller): the
        wake-up syscall runs without the GIL (module docstring)."""
        self._word.value = 1
        if self.sleeping:
            _syscall(_NR_FUTEX, self._addr, _FUTEX_WAKE_PRIVATE, 1)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the token; block (without the GIL) up to ``timeout`` seconds (-1: forever)."""
        word = self._word
        if _take(word):
            return True
        if not blocking:
            return False
        deadline = None if timeout < 0 else monotonic() + timeout
        addr = self._addr
        while True:
            if deadline is None:
                spec = None
            else:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    return False
                seconds = int(remaining)
                spec = ctypes.byref(_Timespec(seconds, int((remaining - seconds) * 1e9)))
            self.sleeping = True
            # EINTR, EAGAIN (the word was already 1), ETIMEDOUT: all end up re-checked here.
            _syscall(_NR_FUTEX, addr, _FUTEX_WAIT_PRIVATE, 0, spec)
            self.sleeping = False
            if _take(word):
                return True


#: A deferred wake-up: a syscall that releases the GIL (a futex wake, an eventfd write).
Wake = Callable[[], object]


class _Deferral(threading.local):
    #: The calling thread's deferred wakes (:func:`defer_wakes`), None when it defers nothing.
    wakes: list[Wake] | None = None


#: The calling thread's deferral (``wakes``): :func:`defer_wakes` and :func:`flush_wakes`
#: are the API; a hot path may inline them on it (the thread backend's delivery).
deferral = _Deferral()
_deferral = deferral


def defer_wakes() -> list[Wake] | None:
    """From now on, :meth:`WorkerParker.release` calls made by this thread collect the wakes
    instead of making them (module docstring). Returns what to pass to :func:`flush_wakes`
    (the previous list: deferrals nest)."""
    previous = _deferral.wakes
    _deferral.wakes = []
    return previous


def deferred_wakes() -> list[Wake] | None:
    """The calling thread's list of deferred wakes, None unless it defers them: another parker
    (the io_uring ring leader's poke) may append its own wake-up there, under the dispatcher
    lock, once its token is given."""
    return _deferral.wakes


def flush_wakes(previous: list[Wake] | None) -> int:
    """Make, without the GIL, the wakes collected since :func:`defer_wakes` (call it with no
    lock held, in a ``finally``); returns how many there were."""
    wakes = _deferral.wakes
    _deferral.wakes = previous
    if not wakes:
        return 0
    for wake in wakes:
        wake()
    return len(wakes)


_LockType = type(threading.Lock())


def bind(ts: ThreadState) -> bool:
    """Give the calling thread ``ts`` a :class:`WorkerParker` where it still parks on its
    original ``threading.Lock``: its parker, or the ``lock`` a wrapping parker keeps (the
    io_uring ring's ``RingParker``). Done under the dispatcher lock while the thread is in none
    of its waits (the swap the kernel allows: ``_dispatcher.Parker``); an outstanding token
    moves along. True if swapped. A no-op where :data:`AVAILABLE` is False."""
    if not AVAILABLE or ts.ident != threading.get_ident():
        return False
    with LOCK:
        if ts.wait is not None:
            return False
        holder: Any = ts
        old: Any = ts.parker
        if old.__class__ is not _LockType:
            holder = old
            old = getattr(old, "lock", None)
            if old.__class__ is not _LockType:
                return False
        new = WorkerParker()
        if old.acquire(False):  # a token outstanding (wake_pending): it stays given
            new._word.value = 1
        if holder is ts:
            ts.parker = new
        else:
            holder.lock = new
        return True
