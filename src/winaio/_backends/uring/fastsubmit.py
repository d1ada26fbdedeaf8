"""The C accelerator of the backend's QD1 O_DIRECT read (``_io/_fastdirect_ring.c``), installed
on :class:`~.backend.IoUringBackend` as ``submit`` through the accelerators' one switch
(``_io._accel``).

Purpose: :func:`install_on` puts the C ``submit`` (a method descriptor) on the backend class
when the accelerators are on, the Python method when they are off. The C method takes one
shape - a pinned ``FileReadOp`` (the O_DIRECT hot path's, ``_ops.pinned_read``) issued while
the ring holds nothing else - and hands every other call to the Python ``submit``, which stays
the reference and the fallback (``_fastdirect_ring.c``'s docstring).

Invariant: the C function checks the switch itself, so a method bound while it was on follows
a later switch-off.
"""

from __future__ import annotations

import os
from typing import Any

from ..._io import _accel
from ..._io._files import FileObject
from ..._io._ops import FileReadOp
from ..._kernel._dispatcher import ThreadState
from .abi import RingBusyError
from .backlog import Backlog
from .common import InFlight
from .lead import RingParker
from .ring import BackendRing
from .submission import Submission

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python method runs
    _fastio = None  # type: ignore[assignment]

__all__ = ["install_on"]


def install_on(backend_class: type[Any]) -> None:
    """Register the installer of the C ``submit`` for ``backend_class`` (once)."""
    if _fastio is None:
        return  # type: ignore[unreachable]  # (not built: the Python method runs)
    python = backend_class.__dict__["submit"]
    descr = _fastio.configure_submit(
        backend_class, python, FileReadOp, FileObject, BackendRing, InFlight, Backlog,
        Submission, ThreadState, RingParker, RingBusyError, os.eventfd_write,
    )  # fmt: skip

    def install(on: bool) -> None:
        _fastio.submit_set_enabled(on)
        _accel.install_methods(backend_class, {"submit": (descr, python)}, on)

    _accel.register(install)
