"""The C hot shapes of the kernel's events and single waits (``_fastevent.c``, issue 9).

``Event.set`` and ``_wait.wait_for_one`` (what ``winaio.wait`` calls) have their hot shapes in
C when the accelerator is built: an exact ``Event`` with no waiter or one plain single-object
waiter parked on its ``threading.Lock``; a wait on an exact ``Event``, INFINITE or a zero
timeout, by a thread that parks on its ``threading.Lock`` and is no completion port's. The
Python functions stay the reference and the fallback: every other shape goes to them before
anything is touched (docs/design.md, "The event hot shapes in C"). The alias layer's SetEvent /
ResetEvent / WaitForSingleObject(Ex) build on these (``win32._sync``).

Installed through ``_accel`` (``_accel.use(False)`` puts the Python functions back): the C
``Event.set`` on the class, the C ``wait_for_one`` as the core API's ``_wait_for_one``; the C
functions' own switch (``event_set_enabled``) sends their calls to Python when off. Lives in
``_io`` because the kernel layer knows nothing of the accelerator.
"""

from __future__ import annotations

from typing import Any

from .._kernel import _api, _wait
from .._kernel._dispatcher import LOCK, TERMINATED, ThreadState, WaitBlock
from .._kernel._objects import Event
from .._kernel._threads import _tls, check_terminating
from ..codes import WaitCode
from . import _accel
from . import _disk as _disk  # configures the accelerator first (its locks)

__all__ = ["PY_EVENT_SET", "PY_WAIT_FOR_ONE", "c_wait_for_one", "fastio"]

#: The Python functions: the reference and the fallback.
PY_EVENT_SET = Event.set
PY_WAIT_FOR_ONE = _wait.wait_for_one

try:
    from . import _fastio as _built
except ImportError:  # not built: the Python functions run
    _built = None  # type: ignore[assignment]
#: The accelerator module when it was built and configured (``_disk``), else None.
fastio: Any = _built if _disk.accelerator_available() else None
_fastio = fastio
_C_SET: Any = None
#: The C ``wait_for_one`` (None when not built); the alias layer's C functions use it too.
c_wait_for_one: Any = None
if _fastio is not None:
    _C_SET, c_wait_for_one = _fastio.configure_event(
        Event, WaitBlock, ThreadState, LOCK, _tls, PY_EVENT_SET, PY_WAIT_FOR_ONE,
        _wait.abandon_wait, check_terminating, _wait._finish, TERMINATED,
        int(WaitCode.WAIT_IO_COMPLETION), int(WaitCode.WAIT_TIMEOUT),
    )  # fmt: skip


def _install(on: bool) -> None:
    _accel.install_methods(Event, {"set": (_C_SET, PY_EVENT_SET)}, on)
    c_on = on and c_wait_for_one is not None
    _api._wait_for_one = c_wait_for_one if c_on else PY_WAIT_FOR_ONE
    if _fastio is not None:
        _fastio.event_set_enabled(on)


_accel.register(_install)
