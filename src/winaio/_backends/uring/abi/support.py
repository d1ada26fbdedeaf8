"""Can io_uring work here, and what does this kernel support (liburing's ``io_uring_get_probe``).

Purpose: :func:`probe` creates and closes a 2-entry ring once and reports, in readable words,
why io_uring cannot be used when it cannot: the platform, ``kernel.io_uring_disabled``, the
errno of a refused io_uring_setup. Never raises for "unavailable".

Availability (the facts :func:`_setup_refusal` and :func:`_read_disabled_sysctl` encode;
man page io_uring_setup(2)): io_uring_setup fails with ENOSYS when the kernel lacks it or a
seccomp filter blocks it (container runtimes increasingly do), with EPERM when
``kernel.io_uring_disabled`` (6.6+) is 2, or is 1 and the caller is neither in
``kernel.io_uring_group`` nor CAP_SYS_ADMIN. Kernels before 5.12 charge rings to
RLIMIT_MEMLOCK (ENOMEM). Kernels before 5.6 reject ``IORING_SETUP_CLAMP`` (EINVAL). Only
x86-64 / LP64 is accepted: the ring relies on TSO ordering (``abi``: memory ordering).

Stdlib only; imports nothing from ``winaio`` but the other ABI modules.
"""

from __future__ import annotations

import errno
import os
import platform
import sys
from dataclasses import dataclass, field

from . import syscall
from .consts import Feature
from .setup import Ring

__all__ = ["ProbeResult", "probe"]


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


def _platform_refusal() -> str:
    if not sys.platform.startswith("linux"):
        return f"io_uring is Linux-only (platform {sys.platform})"
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64") or sys.maxsize <= 2**32:
        return (
            f"architecture {platform.machine()} ({64 if sys.maxsize > 2**32 else 32}-bit Python):"
            " this ring relies on x86-64 TSO ordering and LP64 layouts (no memory barriers)"
        )
    if syscall._syscall is None:
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
