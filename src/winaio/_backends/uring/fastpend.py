"""The C accelerator of the sockets' pended receive (``_io/_fastpend.c``), installed on
:class:`~.receives.Receives` (the backend's receive side) through the accelerators' one switch
(``_io._accel``).

Purpose: :func:`install_on` puts the C ``pend_receive`` (a method descriptor) on the receive
side's class when the accelerators are on, the Python method when they are off; the Python
method (``Receives.pend_receive``, with its continuation ``_pend_rest``) stays the reference and
the fallback of every shape the C does not take (``_fastpend.c``'s docstring).

Invariant: the C function checks the switch itself, so a method bound while it was on (a
``Socket``'s ``_pend``, bound at the socket's creation) follows a later switch-off; a method
bound while it was off stays the Python one (correct, only slower) until the socket is made
again.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

from ..._io import _accel, _slot
from ..._io._files import _IO_KEY, FileObject
from ..._io._overlapped import Overlapped
from ..._io._stream_ops import StreamReadOp
from ..._kernel._dispatcher import LOCK, ThreadState
from ..._kernel._threads import _tls, current_thread_state
from .backlog import Backlog
from .common import InFlight
from .deferral import Deferral
from .lead import Leadership, RingParker
from .ring import BackendRing
from .streams import Line, StreamLines

try:
    from ..._io import _fastio
except ImportError:  # not built (no C compiler): the Python method runs
    _fastio = None  # type: ignore[assignment]

__all__ = ["FAST", "install_on"]

#: The C function serves the hot shape on this CPython (built, and a layout it knows: 3.11,
#: 3.12); elsewhere it hands every call to the Python method.
FAST = False


def install_on(backend_class: type[Any]) -> None:
    """Register the installer of the C ``pend_receive`` for ``backend_class`` (``Receives``,
    once), and of the receive slots' switch (``_accel.slots()``: its ``_slots_on``; with
    ``py`` the C method hands the slot's shape to the Python one, which arms the Python
    slot)."""

    def install_slots(on: bool) -> None:
        backend_class._slots_on = _accel.slots() != "off"

    _accel.register(install_slots)
    if _fastio is None:
        return  # type: ignore[unreachable]  # (not built: the Python method runs)
    global FAST
    python = backend_class.__dict__["pend_receive"]
    descr, switch, fast = _fastio.configure_pend(
        backend_class, python, StreamReadOp, FileObject, Overlapped, ThreadState, RingParker,
        Leadership, Deferral, Backlog, StreamLines, Line, InFlight, BackendRing, LOCK, _tls,
        current_thread_state, deque, os.eventfd_write, _IO_KEY,
    )  # fmt: skip
    FAST = bool(fast)
    # The C receive slot (``_fastslot.c``): armed by this C function, reaped and delivered by
    # the completion side's; the Python slot functions take the C type too (``_io._slot``).
    _slot.SLOT_TYPES.add(_fastio.ReceiveSlot)
    _accel.C_SLOTS[0] = FAST

    def install(on: bool) -> None:
        # (``slots`` in effect: ``c`` arms the C slot here, ``py`` hands its shape to the
        # Python method, which arms the Python one; ``off``: requests)
        mode = _accel.slots()
        switch(3 if on and mode == "c" else 2 if on and mode == "py" else on)
        _slot.slot_class[0] = _fastio.ReceiveSlot if mode == "c" else _slot.ReceiveSlot
        _accel.install_methods(backend_class, {"pend_receive": (descr, python)}, on)

    _accel.register(install)
