"""Can the io_uring backend run here? Probed once per process, with the reason either way.

Purpose: :func:`probe_backend` for ``winaio._runtime`` (backend selection) and for
``IoUringBackend()``. It builds on ``abi.probe()`` (platform, sysctl, io_uring_setup,
IORING_REGISTER_PROBE) and adds what this backend needs on top:

- the opcodes it issues: NOP, READ/WRITE and READV/WRITEV (FILE requests), POLL_ADD (STREAM
  readiness and the wake-up poll), ASYNC_CANCEL (CancelIoEx). All are in 5.6, which the ABI
  layer needs anyway; multishot polls (5.13) are optional: the backend falls back to
  one-shot polls when the kernel refuses them;
- ``IORING_FEAT_NODROP`` (5.5): without it a full CQ ring *drops* CQEs, and an operation
  whose CQE is lost would never complete (invariant 1);
- ``os.eventfd`` (Linux, Python 3.10+) for the wake-up.

:func:`recv_poll_first` probes one optional flag: ``IORING_RECVSEND_POLL_FIRST`` (5.19) on the
RECV of a socket receive that just failed with EAGAIN (``backend``), which spares the kernel a
second attempt that would fail too. Older kernels refuse the flag (-EINVAL): the RECV then goes
without it.

:func:`coop_taskrun` probes the backend rings' setup flags ``IORING_SETUP_COOP_TASKRUN |
IORING_SETUP_TASKRUN_FLAG`` (5.19; ``abi``'s task work facts, ``docs/design.md`` "Task work
without the IPI"): a 2-entry ring set up with them (older kernels refuse unknown setup flags
with EINVAL). :func:`ring_flags` is what a backend asks for: those flags where the kernel
takes them, by default (:data:`DEFAULT_COOP`; the flags change when a completion whose
submitter runs user code becomes visible: at its next kernel entry, a timer tick at most -
the documented deviation of docs/design.md §2); ``WINAIO_URING_COOP=0`` forces them off and
``1`` on (the A/B switch and the escape hatch). Unset or empty: the default. Any other value
is refused (:func:`coop_wanted`: ``ValueError`` naming the variable, its value and the values
it takes, when a backend is created), as ``WINAIO_BACKEND`` and ``WINAIO_SLOTS`` refuse theirs:
a typo must not silently pick a side of an A/B comparison (docs/design.md "The knobs'
values").

Rules: never raises for "unavailable" (a misspelt knob is not "unavailable": it raises);
imports only the ABI modules (safe on any platform).
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

from . import abi
from .abi import ProbeResult
from .abi.consts import Feature, IoringOp, RecvSendFlags, SetupFlags

__all__ = [
    "COOP_ENV",
    "COOP_VALUES",
    "DEFAULT_COOP",
    "REQUIRED_OPS",
    "coop_taskrun",
    "coop_wanted",
    "feature_names",
    "probe_backend",
    "recv_poll_first",
    "ring_flags",
    "setup_names",
]

REQUIRED_OPS = {
    IoringOp.IORING_OP_NOP: "NOP",
    IoringOp.IORING_OP_READV: "READV",
    IoringOp.IORING_OP_WRITEV: "WRITEV",
    IoringOp.IORING_OP_READ: "READ",
    IoringOp.IORING_OP_WRITE: "WRITE",
    IoringOp.IORING_OP_POLL_ADD: "POLL_ADD",
    IoringOp.IORING_OP_ASYNC_CANCEL: "ASYNC_CANCEL",
}

_lock = threading.Lock()
_probed: tuple[bool, str, ProbeResult | None] | None = None
_poll_first: int | None = None
_POLL_FIRST = int(RecvSendFlags.IORING_RECVSEND_POLL_FIRST)
_coop: int | None = None
_COOP = int(SetupFlags.IORING_SETUP_COOP_TASKRUN | SetupFlags.IORING_SETUP_TASKRUN_FLAG)
#: ``WINAIO_URING_COOP=1``: the backend's rings are set up with COOP_TASKRUN|TASKRUN_FLAG where
#: the kernel takes them; ``0``: without (read at each backend's creation; unset: the default).
COOP_ENV = "WINAIO_URING_COOP"
#: The values :data:`COOP_ENV` takes: off, on (unset or empty: :data:`DEFAULT_COOP`).
COOP_VALUES = ("0", "1")
#: Without the variable: COOP where the kernel takes it. Measured (docs/design.md "Task work
#: without the IPI" and "Where issue 9 stands after the third session"): the raw io_uring echo
#: 1.18-1.26x in every run; winaio's C=64 echo 0.99x in 29 rounds on a loaded machine and
#: 1.13x / 1.18x (medians; 9 of 10 rounds won) in the two later same-run comparisons; files
#: unharmed. Never measured slower.
DEFAULT_COOP = True
_kept: list[object] = []  # a probe's buffer the kernel might still write (never, in practice)


def _probe() -> tuple[bool, str, ProbeResult | None]:
    if not hasattr(os, "eventfd"):
        return False, "os.eventfd is missing (not Linux, or Python built without it)", None
    try:
        result = abi.probe()
    except Exception as exc:  # "unavailable" must never raise, whatever broke
        return False, f"io_uring probe failed: {exc!r}", None
    if not result.available:
        return False, result.reason, result
    missing = [name for op, name in REQUIRED_OPS.items() if op not in result.opcodes]
    if missing:
        return False, f"kernel {result.kernel} lacks io_uring opcodes {', '.join(missing)}", result
    if not result.features & Feature.IORING_FEAT_NODROP:
        return False, f"kernel {result.kernel} lacks IORING_FEAT_NODROP (5.5)", result
    return True, f"{result.reason} (kernel {result.kernel})", result


def probe_backend() -> tuple[bool, str]:
    """Whether the io_uring backend can run here, and why (probed once; never raises)."""
    global _probed
    with _lock:
        if _probed is None:
            _probed = _probe()
        ok, reason, _ = _probed
    return ok, reason


def recv_poll_first() -> int:
    """``IORING_RECVSEND_POLL_FIRST`` if RECV takes it here, else 0 (probed once; never
    raises): on a small ring of its own, a RECV with the flag on a socket holding one byte
    completes with that byte on 5.19+ and fails with -EINVAL before."""
    global _poll_first
    with _lock:
        if _poll_first is None:
            try:
                _poll_first = _POLL_FIRST if _recv_takes_poll_first() else 0
            except Exception:  # "unavailable" must never raise, whatever broke
                _poll_first = 0
        return _poll_first


def coop_taskrun() -> int:
    """``IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG`` if io_uring_setup takes them
    here, else 0 (probed once; never raises)."""
    global _coop
    with _lock:
        if _coop is None:
            try:
                abi.Ring(2, flags=_COOP).close()
            except Exception:  # EINVAL before 5.19; "unavailable" must never raise
                _coop = 0
            else:
                _coop = _COOP
        return _coop


def coop_wanted() -> bool:
    """Whether ``WINAIO_URING_COOP`` asks for COOP: ``1`` yes, ``0`` no, unset or empty
    :data:`DEFAULT_COOP` (surrounding blanks ignored, as ``WINAIO_BACKEND``'s).

    Raises:
        ValueError: any other value (the message names the variable, the value and
            :data:`COOP_VALUES`).
    """
    raw = os.environ.get(COOP_ENV, "")
    value = raw.strip()
    if value == "":
        return DEFAULT_COOP
    if value not in COOP_VALUES:
        default = "on" if DEFAULT_COOP else "off"
        raise ValueError(
            f"{COOP_ENV}={raw!r}: one of {', '.join(COOP_VALUES)} (0 off, 1 on; "
            f"unset: the default, {default})"
        )
    return value == "1"


def ring_flags() -> int:
    """The setup flags of a new backend ring: :func:`coop_taskrun`'s when :func:`coop_wanted`,
    else none (module docstring).

    Raises:
        ValueError: ``WINAIO_URING_COOP`` has a value it does not take (:func:`coop_wanted`).
    """
    return coop_taskrun() if coop_wanted() else 0


def _recv_takes_poll_first() -> bool:
    ring = abi.Ring(2)
    a, b = socket.socketpair()
    try:
        a.send(b"x")
        buf = bytearray(1)
        anchor = ctypes.c_char.from_buffer(buf)
        ring.prep_recv(b.fileno(), ctypes.addressof(anchor), 1, 1, ioprio=_POLL_FIRST)
        ring.submit_and_wait_timeout(1, 1.0)
        cqes = ring.reap()
        if not cqes:  # (cannot happen: a byte is there) the kernel may still own the buffer
            _kept.append(anchor)
            return False
        return cqes[0][1] == 1 and buf == b"x"
    finally:
        ring.close()
        a.close()
        b.close()


def feature_names(features: int) -> str:
    """``IORING_FEAT_*`` bits as ``SINGLE_MMAP|NODROP|...`` (for statistics)."""
    names = [f.name or "" for f in Feature if f & features]
    return "|".join(n.removeprefix("IORING_FEAT_") for n in names) or "none"


def setup_names(flags: int) -> str:
    """``IORING_SETUP_*`` bits that change behaviour, as ``COOP_TASKRUN|TASKRUN_FLAG``
    (``CLAMP``/``CQSIZE`` left out; for statistics)."""
    shown = flags & ~(SetupFlags.IORING_SETUP_CLAMP | SetupFlags.IORING_SETUP_CQSIZE)
    names = [f.name or "" for f in SetupFlags if f & shown]
    return "|".join(n.removeprefix("IORING_SETUP_") for n in names) or "none"
