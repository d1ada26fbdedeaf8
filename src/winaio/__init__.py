"""winaio: the Windows asynchronous I/O model and Microsoft asynchronous RPC, for Python on Linux.

Layers (each imports only the ones below it; see docs/design.md):

- ``winaio.codes`` / ``winaio.errors``: status codes with their Win32/RPC spellings, exceptions.
- kernel objects, waits and APCs (this package's top level): Pythonic, seconds, exceptions.
- ``winaio.win32``: the same functionality under the exact Win32 names and conventions.
- ``winaio.rpc``: DCE/RPC (NDR 2.0, connection-oriented PDUs) and the MS async RPC model.

Quick tour::

    import winaio

    done = winaio.Event(manual_reset=True)
    worker = winaio.start_thread(lambda: done.set())
    assert winaio.wait_all([done, worker], timeout=5).signaled

    winaio.queue_apc(winaio.current_thread(), print, "runs at the next alertable wait")
    assert winaio.sleep(1, alertable=True)          # True: returned early because an APC ran
"""

from __future__ import annotations

from . import _runtime  # noqa: F401  (installs the I/O backend factory)
from . import codes as codes
from . import errors as errors
from ._kernel import DispatcherObject as DispatcherObject
from ._kernel import Event as Event
from ._kernel import KThread as Thread
from ._kernel import Mutex as Mutex
from ._kernel import Semaphore as Semaphore
from ._kernel import WaitableTimer as WaitableTimer
from ._kernel import WaitResult as WaitResult
from ._kernel import WaitStatus as WaitStatus
from ._kernel import current_thread as current_thread
from ._kernel import exit_thread as exit_thread
from ._kernel import queue_apc as queue_apc
from ._kernel import queue_special_apc as queue_special_apc
from ._kernel import signal_and_wait as signal_and_wait
from ._kernel import sleep as sleep
from ._kernel import start_thread as start_thread
from ._kernel import test_alert as test_alert
from ._kernel import wait as wait
from ._kernel import wait_all as wait_all
from ._kernel import wait_any as wait_any
from .errors import ThreadTerminated as ThreadTerminated
from .errors import Win32Error as Win32Error
from .errors import WinaioError as WinaioError

__all__ = [
    # kernel objects
    "DispatcherObject",
    "Event",
    "Mutex",
    "Semaphore",
    "Thread",
    "WaitableTimer",
    # waits
    "WaitResult",
    "WaitStatus",
    "signal_and_wait",
    "sleep",
    "wait",
    "wait_all",
    "wait_any",
    # threads and APCs
    "current_thread",
    "exit_thread",
    "queue_apc",
    "queue_special_apc",
    "start_thread",
    "test_alert",
    # errors and codes
    "ThreadTerminated",
    "Win32Error",
    "WinaioError",
    "codes",
    "errors",
]

__version__ = "0.1.0"
