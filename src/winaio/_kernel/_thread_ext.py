"""Thread controls beside CreateThread: SuspendThread and thread priorities.

Facts encoded here ([MS:SuspendThread], [MS:ResumeThread], [MS:SetThreadPriority],
[MS:GetThreadPriority]):
- Each thread has a suspend count (at most MAXIMUM_SUSPEND_COUNT = 127: beyond,
  ERROR_SIGNAL_REFUSED); SuspendThread/ResumeThread return the previous count; the thread runs
  while the count is 0. Suspending a thread that has exited fails ERROR_ACCESS_DENIED.
- Priorities: THREAD_PRIORITY_IDLE (-15), LOWEST..HIGHEST (-2..2), TIME_CRITICAL (15); others
  fail ERROR_INVALID_PARAMETER. THREAD_MODE_BACKGROUND_BEGIN/END apply to the calling thread only
  (else ERROR_INVALID_PARAMETER) and fail ERROR_THREAD_MODE_ALREADY_BACKGROUND /
  ERROR_THREAD_MODE_NOT_BACKGROUND when repeated.

Documented deviations (CPython cannot do what the NT scheduler does):
- A thread suspends itself at once (the call returns when another thread resumes it). Another
  thread stops at a safe point: its next winaio wait, or when the wait it is in ends - through
  the special-APC mechanism (``_apc``), so an alertable wait it is in returns
  WAIT_IO_COMPLETION after the resume. A thread running pure Python code is not stopped.
- Priorities are recorded and reported back, not applied (raising a thread's priority needs
  privileges on Linux and lowering it cannot be undone).
"""

from __future__ import annotations

from ..codes import WinError
from ..errors import Win32Error
from ._apc import queue_special_apc
from ._dispatcher import LOCK, ThreadState
from ._objects import Event
from ._threads import KThread, current_thread_state
from ._wait import wait_for_one

__all__ = [
    "MAXIMUM_SUSPEND_COUNT",
    "THREAD_MODE_BACKGROUND_BEGIN",
    "THREAD_MODE_BACKGROUND_END",
    "THREAD_PRIORITIES",
    "resume_thread",
    "set_thread_priority",
    "suspend_thread",
    "thread_priority",
]

MAXIMUM_SUSPEND_COUNT = 127
THREAD_MODE_BACKGROUND_BEGIN = 0x00010000
THREAD_MODE_BACKGROUND_END = 0x00020000
THREAD_PRIORITIES = frozenset({-15, -2, -1, 0, 1, 2, 15})
_PRIORITY_KEY = "thread_priority"
_BACKGROUND_KEY = "thread_background"
_RESUMED_KEY = "thread_resumed"


def _park(thread: KThread) -> None:
    """Run by the suspended thread itself: wait (non-alertably) until the count is 0."""
    ts = thread.state
    while True:
        with LOCK:
            if thread._suspend_count == 0 or not ts.alive:
                return
            resumed = ts.extensions.get(_RESUMED_KEY)
            if resumed is None:
                resumed = ts.extensions[_RESUMED_KEY] = Event(manual_reset=True)
        wait_for_one(resumed, None, False)


def suspend_thread(thread: KThread) -> int:
    """SuspendThread: increment the suspend count; returns the previous one (module docstring).

    Raises:
        Win32Error: ERROR_ACCESS_DENIED (the thread has exited), ERROR_SIGNAL_REFUSED (127).
    """
    ts = thread.state
    caller = current_thread_state()
    with LOCK:
        if not ts.alive or ts.terminating:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "the thread has exited")
        previous = thread._suspend_count
        if previous >= MAXIMUM_SUSPEND_COUNT:
            raise Win32Error(WinError.ERROR_SIGNAL_REFUSED, "suspend count at its maximum")
        thread._suspend_count = previous + 1
        if previous == 0:
            # Running (a thread created suspended keeps a count >= 1 until it starts): its
            # creation gate has served; ResumeThread must not release it again.
            thread._gate = None
        resumed = ts.extensions.get(_RESUMED_KEY)
        if resumed is not None:
            resumed._signaled = False
    if previous == 0:
        if ts is caller:
            _park(thread)
        else:
            queue_special_apc(ts, _park, (thread,), caller)
    return previous


def resume_thread(thread: KThread) -> int:
    """ResumeThread: decrement the suspend count (releasing a thread created suspended or
    stopped by :func:`suspend_thread` when it reaches 0); returns the previous count."""
    previous = thread.resume()
    if previous == 1:
        resumed = thread.state.extensions.get(_RESUMED_KEY)
        if resumed is not None:
            resumed.set()
    return previous


def thread_priority(ts: ThreadState) -> int:
    """GetThreadPriority (THREAD_PRIORITY_NORMAL = 0 until set)."""
    return int(ts.extensions.get(_PRIORITY_KEY, 0))


def set_thread_priority(ts: ThreadState, priority: int) -> None:
    """SetThreadPriority (recorded, module docstring).

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER, ERROR_THREAD_MODE_ALREADY_BACKGROUND,
            ERROR_THREAD_MODE_NOT_BACKGROUND.
    """
    if priority in (THREAD_MODE_BACKGROUND_BEGIN, THREAD_MODE_BACKGROUND_END):
        if ts is not current_thread_state():
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "background mode: own thread only")
        background = bool(ts.extensions.get(_BACKGROUND_KEY))
        if priority == THREAD_MODE_BACKGROUND_BEGIN:
            if background:
                raise Win32Error(WinError.ERROR_THREAD_MODE_ALREADY_BACKGROUND)
            ts.extensions[_BACKGROUND_KEY] = True
        else:
            if not background:
                raise Win32Error(WinError.ERROR_THREAD_MODE_NOT_BACKGROUND)
            ts.extensions[_BACKGROUND_KEY] = False
        return
    if priority not in THREAD_PRIORITIES:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"priority {priority}")
    ts.extensions[_PRIORITY_KEY] = priority
