"""What the io_uring ring stands on in the process: libc's syscall(), the fence, the errors.

Purpose: the process-level plumbing beneath :class:`~._uring_abi.Ring`, none of which knows
about a ring instance:

- the ``syscall()`` entry point of the C library (``_syscall``, None without one), the three
  io_uring syscall numbers and the mmap offsets of the rings;
- ``_ARGSZ_NONE`` / ``_ARGSZ_EXT``, the ready-made ``argsz`` arguments of io_uring_enter;
- :func:`full_fence`, the full memory barrier of the SQPOLL wake-up check;
- :class:`RingBusyError` and ``_enter_error``, the errno -> exception mapping of
  io_uring_enter;
- the diagnosis behind ``_uring_abi.probe()``: why io_uring cannot work here (platform,
  ``kernel.io_uring_disabled``, the errno of a refused io_uring_setup) in readable words.

Rules:

- **Nothing here calls** ``_syscall``. Every caller looks it up at call time in the
  ``_uring_abi`` module (which re-exports it), so tests can monkeypatch ``_uring_abi._syscall``
  and intercept every setup, enter and register of a ``Ring``. ``_uring_ring`` binds it at
  import instead (its ``enter`` is not patched that way).
- ``_syscall`` is called without argtypes, so io_uring_enter's 7th argument (``argsz``) must
  always be one of the ``c_size_t`` objects here (see :func:`_load_syscall`).
- x86-64 / LP64 only: :func:`full_fence` is a full barrier only there, which is why
  :func:`_platform_refusal` refuses every other architecture (``_uring_abi``: memory ordering).
- Stdlib only; imports nothing from ``winaio`` but the other ABI modules.

Availability (the facts :func:`_setup_refusal` and :func:`_read_disabled_sysctl` encode;
man page io_uring_setup(2)): io_uring_setup fails with ENOSYS when the kernel lacks it or a
seccomp filter blocks it (container runtimes increasingly do), with EPERM when
``kernel.io_uring_disabled`` (6.6+) is 2, or is 1 and the caller is neither in
``kernel.io_uring_group`` nor CAP_SYS_ADMIN. Kernels before 5.12 charge rings to
RLIMIT_MEMLOCK (ENOMEM). Kernels before 5.6 reject ``IORING_SETUP_CLAMP`` (EINVAL).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
import threading
from typing import Any

from ._uring_structs import GeteventsArg

__all__ = ["RingBusyError", "full_fence"]

_NR_IO_URING_SETUP = 425  # the same numbers on every architecture (unified syscall table)
_NR_IO_URING_ENTER = 426
_NR_IO_URING_REGISTER = 427

_OFF_SQ_RING = 0
_OFF_CQ_RING = 0x8000000
_OFF_SQES = 0x10000000


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
    layer runs on (:func:`~._uring_abi.probe` refuses weakly ordered CPUs). Any successful
    acquisition executes the CAS, contended or not. Costs about 0.1 us.
    """
    lock = _fence_lock
    lock.acquire()
    lock.release()


_ARGSZ_NONE = ctypes.c_size_t(0)
_ARGSZ_EXT = ctypes.c_size_t(ctypes.sizeof(GeteventsArg))


class RingBusyError(OSError):
    """io_uring_enter failed with EBUSY or EAGAIN: the kernel cannot take more requests until
    completions are reaped (CQ backlog) or memory frees up. Reap, then retry."""


def _enter_error(err: int) -> OSError:
    if err in (errno.EBUSY, errno.EAGAIN):
        return RingBusyError(err, os.strerror(err))
    return OSError(err, os.strerror(err))


# ------------------------------------------------------------------------------------------------
# availability diagnosis (for _uring_abi.probe)


def _platform_refusal() -> str:
    if not sys.platform.startswith("linux"):
        return f"io_uring is Linux-only (platform {sys.platform})"
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64") or sys.maxsize <= 2**32:
        return (
            f"architecture {platform.machine()} ({64 if sys.maxsize > 2**32 else 32}-bit Python):"
            " this ring relies on x86-64 TSO ordering and LP64 layouts (no memory barriers)"
        )
    if _syscall is None:
        return "the C library has no syscall()"
    return ""


def _read_disabled_sysctl() -> int:
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0  # the sysctl exists from 6.6 on; older kernels have no such switch


_SETUP_REFUSALS = {
    errno.ENOSYS: "ENOSYS (kernel built without io_uring, or blocked by seccomp)",
    errno.EPERM: "EPERM (denied by seccomp or an LSM policy)",
    errno.EACCES: "EACCES (denied by seccomp or an LSM policy)",
    errno.EINVAL: "EINVAL (kernel older than 5.6: no IORING_SETUP_CLAMP)",
    errno.ENOMEM: "ENOMEM (RLIMIT_MEMLOCK too low for the rings on kernels < 5.12)",
}


def _setup_refusal(err: int, disabled: int) -> str:
    if err == errno.EPERM and disabled == 1:
        return (
            "io_uring_setup: EPERM (kernel.io_uring_disabled=1 and this process is neither in"
            " kernel.io_uring_group nor CAP_SYS_ADMIN)"
        )
    return "io_uring_setup: " + _SETUP_REFUSALS.get(err, os.strerror(err))
