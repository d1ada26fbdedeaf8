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
from ._io import _kernel_events  # noqa: F401  (installs the C Event.set / wait, issue 9)
from ._io._cancel import cancel_io as cancel_io
from ._io._cancel import cancel_io_ex as cancel_io_ex
from ._io._cancel import cancel_synchronous_io as cancel_synchronous_io

# issue 12 (fidelity): files, directory watches, locks, named-pipe calls, sync, Winsock
from ._io._create import create_file as create_file
from ._io._dirwatch import ChangeNotification as ChangeNotification
from ._io._dirwatch import DirectoryChange as DirectoryChange
from ._io._dirwatch import DirectoryFile as DirectoryFile
from ._io._dirwatch import find_first_change as find_first_change
from ._io._dirwatch import open_directory as open_directory
from ._io._dirwatch import parse_records as parse_change_records
from ._io._disk import DiskFile as DiskFile
from ._io._disk import open_file as open_file
from ._io._fileinfo import file_type as file_type
from ._io._fileinfo import set_end_of_file as set_end_of_file
from ._io._files import FileObject as File
from ._io._locks import lock_file as lock_file
from ._io._locks import unlock_file as unlock_file
from ._io._netevents import NetworkEvents as NetworkEvents
from ._io._netevents import event_select as event_select
from ._io._netevents import select_sockets as select_sockets
from ._io._netevents import take_network_events as take_network_events
from ._io._overlapped import Overlapped as Overlapped
from ._io._pipe_names import call_named_pipe as call_named_pipe
from ._io._pipe_names import create_named_pipe as create_named_pipe
from ._io._pipe_names import open_named_pipe as open_named_pipe
from ._io._pipe_names import wait_named_pipe as wait_named_pipe
from ._io._pipes import PipeEnd as PipeEnd
from ._io._port import CompletionPacket as CompletionPacket
from ._io._port import CompletionPort as CompletionPort
from ._io._share import delete_file as delete_file
from ._io._sockets import Socket as Socket
from ._io._sockets import create_socket as create_socket
from ._io._sockopts import get_option as get_socket_option
from ._io._sockopts import set_nonblocking as set_socket_nonblocking
from ._io._sockopts import set_option as set_socket_option
from ._io._streams import StreamFile as StreamFile
from ._io._streams import create_pipe as create_pipe
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
from ._kernel._locks import ConditionVariable as ConditionVariable
from ._kernel._locks import CriticalSection as CriticalSection
from ._kernel._locks import InitOnce as InitOnce
from ._kernel._locks import SRWLock as SRWLock
from ._kernel._locks import wait_on_address as wait_on_address
from ._kernel._locks import wake_by_address as wake_by_address
from ._kernel._thread_ext import resume_thread as resume_thread
from ._kernel._thread_ext import set_thread_priority as set_thread_priority
from ._kernel._thread_ext import suspend_thread as suspend_thread
from ._kernel._thread_ext import thread_priority as thread_priority
from ._pool import CallbackEnvironment as CallbackEnvironment
from ._pool import CallbackInstance as CallbackInstance
from ._pool import CallbackPriority as CallbackPriority
from ._pool import CleanupGroup as CleanupGroup
from ._pool import IoBinding as IoBinding
from ._pool import PoolCall as PoolCall
from ._pool import PoolIo as PoolIo
from ._pool import PoolTimer as PoolTimer
from ._pool import PoolWait as PoolWait
from ._pool import PoolWork as PoolWork
from ._pool import QueueTimer as QueueTimer
from ._pool import RegisteredWait as RegisteredWait
from ._pool import ThreadPool as ThreadPool
from ._pool import TimerQueue as TimerQueue
from ._pool import bind_io_completion_callback as bind_io_completion_callback
from ._pool import default_pool as default_pool
from ._pool import queue_user_work_item as queue_user_work_item
from ._pool import register_wait as register_wait
from .errors import IoError as IoError
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
    # overlapped I/O and completion ports
    "CompletionPacket",
    "CompletionPort",
    "DiskFile",
    "File",
    "Overlapped",
    "PipeEnd",
    "Socket",
    "StreamFile",
    "cancel_io",
    "cancel_io_ex",
    "cancel_synchronous_io",
    "create_named_pipe",
    "create_pipe",
    "create_socket",
    "open_file",
    "open_named_pipe",
    # thread pool
    "CallbackEnvironment",
    "CallbackInstance",
    "CallbackPriority",
    "CleanupGroup",
    "IoBinding",
    "PoolCall",
    "PoolIo",
    "PoolTimer",
    "PoolWait",
    "PoolWork",
    "QueueTimer",
    "RegisteredWait",
    "ThreadPool",
    "TimerQueue",
    "bind_io_completion_callback",
    "default_pool",
    "queue_user_work_item",
    "register_wait",
    # errors and codes
    "IoError",
    "ThreadTerminated",
    "Win32Error",
    "WinaioError",
    "codes",
    "errors",
    # issue 12 (fidelity): files, directory watches, locks, named-pipe calls, sync, Winsock
    "ChangeNotification",
    "ConditionVariable",
    "CriticalSection",
    "InitOnce",
    "NetworkEvents",
    "SRWLock",
    "event_select",
    "get_socket_option",
    "resume_thread",
    "select_sockets",
    "set_socket_nonblocking",
    "set_socket_option",
    "set_thread_priority",
    "suspend_thread",
    "take_network_events",
    "thread_priority",
    "wait_on_address",
    "wake_by_address",
    "DirectoryChange",
    "DirectoryFile",
    "call_named_pipe",
    "create_file",
    "delete_file",
    "file_type",
    "find_first_change",
    "lock_file",
    "open_directory",
    "parse_change_records",
    "set_end_of_file",
    "unlock_file",
    "wait_named_pipe",
]

__version__ = "0.1.0"
