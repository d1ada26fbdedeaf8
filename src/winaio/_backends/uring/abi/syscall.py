"""The three io_uring system calls as this process reaches them (liburing's ``syscall.c``).

Purpose: the process-level plumbing beneath :class:`~.setup.Ring`, none of which knows about a
ring instance:

- ``_syscall``: the ``syscall()`` entry point of the C library (None without one), called
  raw; the three io_uring syscall numbers and the mmap offsets of the rings;
- :data:`ARGSZ_NONE` / :data:`ARGSZ_EXT`, the ready-made ``argsz`` arguments of io_uring_enter;
- :func:`full_fence`, the full memory barrier of the SQPOLL wake-up check;
- :class:`RingBusyError` and :func:`enter_error`, the errno -> exception mapping of
  io_uring_enter.

Rules:

- Every syscall of a ``Ring`` looks ``_syscall`` up in this module at call time
  (``syscall._syscall(...)``), so tests can monkeypatch this one name and intercept every
  setup, enter and register. The backend's hot ``BackendRing.enter`` binds it at import
  instead (tests patch that method directly).
- ``_syscall`` is called without argtypes, so io_uring_enter's 7th argument (``argsz``) must
  always be one of the ``c_size_t`` objects here (see :func:`_load_syscall`).
- x86-64 / LP64 only: :func:`full_fence` is a full barrier only there, which is why
  :func:`~.support.probe` refuses every other architecture (``abi``: memory ordering).
- Stdlib only; imports nothing from ``winaio`` but the other ABI modules.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from typing import Any

from .structs import GeteventsArg

__all__ = [
    "ARGSZ_EXT",
    "ARGSZ_NONE",
    "NR_IO_URING_ENTER",
    "NR_IO_URING_REGISTER",
    "NR_IO_URING_SETUP",
    "OFF_CQ_RING",
    "OFF_SQES",
    "OFF_SQ_RING",
    "RingBusyError",
    "enter_error",
    "full_fence",
]

NR_IO_URING_SETUP = 425  # the same numbers on every architecture (unified syscall table)
NR_IO_URING_ENTER = 426
NR_IO_URING_REGISTER = 427

OFF_SQ_RING = 0
OFF_CQ_RING = 0x8000000
OFF_SQES = 0x10000000


def _load_syscall() -> Any:
    try:
        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError, TypeError):  # not a libc platform
        return None
    # No argtypes on purpose: converting through argtypes costs ~0.5 us per call, more than
    # the syscall itself. Ints then travel as C int and pointers as ctypes objects or None.
    # syscall(2) reads every argument as a long: libffi sign-extends an int passed in a
    # register, but the 7th argument goes on the stack, where only 4 of its 8 bytes are
    # written. io_uring_enter's argsz is that argument, so it is always a c_size_t.
    fn.restype = ctypes.c_long
    return fn


_syscall = _load_syscall()

_fence_lock = threading.Lock()


def full_fence() -> None:
    """A full memory barrier (``mfence`` semantics: no later load passes an earlier store).

    Python has no barrier primitive, but every lock acquisition is an atomic read-modify-write:
    CPython's ``threading.Lock`` is a POSIX semaphore whose ``sem_trywait``/``sem_post`` are
    compare-and-swap loops in glibc (``sys.thread_info.lock == 'semaphore'``), a
    ``pthread_mutex`` otherwise, and a ``PyMutex`` (also a CAS) from 3.13. On x86-64 a
    ``lock``-prefixed instruction is a full barrier: loads and stores are not reordered with
    locked instructions (Intel SDM vol. 3A, 9.2.2), and x86-64 is the only architecture this
    layer runs on (:func:`~.support.probe` refuses weakly ordered CPUs). Any successful
    acquisition executes the CAS, contended or not. Costs about 0.1 us.
    """
    lock = _fence_lock
    lock.acquire()
    lock.release()


ARGSZ_NONE = ctypes.c_size_t(0)
ARGSZ_EXT = ctypes.c_size_t(ctypes.sizeof(GeteventsArg))


class RingBusyError(OSError):
    """io_uring_enter failed with EBUSY or EAGAIN: the kernel cannot take more requests until
    completions are reaped (CQ backlog) or memory frees up. Reap, then retry."""


def enter_error(err: int) -> OSError:
    """The exception for io_uring_enter's ``errno`` (EBUSY/EAGAIN: :class:`RingBusyError`)."""
    if err in (errno.EBUSY, errno.EAGAIN):
        return RingBusyError(err, os.strerror(err))
    return OSError(err, os.strerror(err))
