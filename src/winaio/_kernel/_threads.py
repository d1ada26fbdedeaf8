"""Threads: per-thread kernel state, waitable thread objects, and the Win32 effects of thread exit.

Facts encoded here (win32-async-spec §1.2, §1.3, §3, §8):
- A thread object is signaled when the thread terminates and never resets.
- At exit: user and special APC queues are discarded (later QueueUserAPC -> ERROR_GEN_FAILURE),
  owned mutexes are abandoned, waitable timers it set with a completion routine are cancelled,
  and (through exit hooks registered by the I/O layer) its non-port-bound I/O is cancelled and
  waited for: the thread object is signaled after every exit hook has returned.
- An APC queued before the thread starts running executes first, before the start routine
  [MS:QueueUserAPC].
- TerminateThread and a normal return have identical object-level effects (§8, [W:ws/afd.c]).

How it maps onto CPython:
- Threads created by :func:`start_thread` (the CreateThread equivalent) run their exit effects in
  a ``finally`` of their bootstrap, before the thread object is signaled.
- Plain ``threading.Thread`` threads get their :class:`ThreadState` lazily on their first winaio
  call. Their exit effects run from a sentinel stored in a ``threading.local``: CPython clears a
  thread's locals when the thread ends, in that thread, before ``join()`` returns.
- **Deviation**: TerminateThread cannot stop a Python thread at an arbitrary point. It applies all
  exit effects at once (from the calling thread, which so waits for the target's I/O rundown;
  Windows' TerminateThread returns at once), wakes the target out of any winaio wait (which
  then raises :class:`~winaio.errors.ThreadTerminated`), and asks CPython to raise
  ThreadTerminated in the target at its next bytecode boundary (``PyThreadState_SetAsyncExc``); a
  target blocked in a foreign C call unwinds only when that call returns.

Rules: exit effects run exactly once per thread (``ThreadState.alive`` flips under the lock),
except for the plain daemon threads still running when the interpreter finalizes: the
finalizing main thread clears their locals and runs none of their effects
(:class:`_ExitSentinel`; nor did it ever run the main thread's own: CPython clears the main
thread's locals after Python code stops running).
"""

from __future__ import annotations

import ctypes
import itertools
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ThreadTerminated
from ._apc import run_apcs
from ._dispatcher import (
    LOCK,
    TERMINATED,
    DispatcherObject,
    ThreadState,
    complete_wait,
    run_block_hook,
    wake_waiters,
)

__all__ = [
    "EXIT_CANCEL_IO",
    "EXIT_MIGRATE_IO",
    "STILL_ACTIVE",
    "ExitThreadRequest",
    "KThread",
    "add_thread_exit_hook",
    "current_thread_state",
    "live_thread_states",
    "start_thread",
    "thread_state_by_id",
]

#: GetExitCodeThread's value for a running thread.
STILL_ACTIVE = 259
#: Exit code of a thread whose start routine raised (like an unhandled SEH exception).
_STATUS_UNHANDLED_EXCEPTION = 0xC0000144

_tls = threading.local()
_live: dict[int, ThreadState] = {}
_exit_hooks: list[Callable[[ThreadState], None]] = []
_exit_orders: list[int] = []  # ``_exit_hooks[i]``'s order, ascending

#: Exit-hook orders (``add_thread_exit_hook``): the I/O layer cancels the exiting thread's
#: non-port I/O and waits for its rundown (§8) first; only then does a backend migrate what
#: must outlive the thread (port-bound requests), so that migration never sees - and never
#: cancels or resubmits - a request the I/O layer is cancelling. Other hooks (timers, a ring
#: leader giving its ring up) use the default 0 and run before both.
EXIT_CANCEL_IO = 10
EXIT_MIGRATE_IO = 20
_thread_names = itertools.count()


class ExitThreadRequest(SystemExit):
    """Raised by ``ExitThread``; a SystemExit so plain threads end quietly."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


class KThread(DispatcherObject):
    """A waitable thread object (signaled once the thread has exited)."""

    __slots__ = ("_exited", "_gate", "_state", "_suspend_count", "python_thread")
    type_name = "Thread"

    def __init__(self, state: ThreadState) -> None:
        super().__init__()
        self._state = state
        self._suspend_count = 0
        self._gate: threading.Lock | None = None
        #: Signaled: set after every exit hook, so after the thread's I/O rundown (§8).
        self._exited = False
        self.python_thread: threading.Thread | None = None
        state.thread = self

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._exited

    @property
    def state(self) -> ThreadState:
        """The kernel state of this thread."""
        return self._state

    @property
    def thread_id(self) -> int:
        """The Win32 thread id (the OS thread id, ``threading.get_native_id()``)."""
        return self._state.tid

    @property
    def is_alive(self) -> bool:
        """False once the thread's exit effects have run (the object is signaled)."""
        return not self._exited

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None while the thread runs (GetExitCodeThread gives STILL_ACTIVE)."""
        return self._state.exit_code if self._exited else None

    def resume(self) -> int:
        """ResumeThread: decrement the suspend count; the thread starts when it reaches 0.

        Returns the previous suspend count. Only creation-time suspension is supported
        (CPython cannot suspend a running thread).
        """
        with LOCK:
            previous = self._suspend_count
            if previous > 0:
                self._suspend_count = previous - 1
                gate = self._gate if previous == 1 else None
            else:
                gate = None
        if gate is not None:
            gate.release()
        return previous

    def terminate(self, exit_code: int) -> None:
        """TerminateThread (see the module docstring for the deviation)."""
        ts = self._state
        with LOCK:
            if not ts.alive or ts.terminating:
                return
            ts.terminating = True
            ts.exit_code = exit_code
            wb = ts.wait
            in_winaio_wait = wb is not None
            if wb is not None and wb.result is None:
                # Unlink at once: a dead thread must not consume a signal meant for others.
                complete_wait(wb, TERMINATED)
            gate = self._gate if self._suspend_count > 0 else None
        run_exit_effects(ts, exit_code)
        if ts is getattr(_tls, "ts", None):
            raise ThreadTerminated(exit_code)
        if gate is not None:
            # A never-started thread: let its bootstrap run, see `terminating` and return.
            gate.release()
        elif not in_winaio_wait and ts.ident:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ts.ident), ctypes.py_object(ThreadTerminated)
            )


class _ExitSentinel:
    """Runs a plain Python thread's exit effects when CPython clears its thread-locals."""

    __slots__ = ("state",)

    def __init__(self, state: ThreadState) -> None:
        self.state = state

    def __del__(self) -> None:
        state = self.state
        # Not at interpreter finalization: the finalizing main thread clears the daemon
        # threads' locals, but those threads are frozen for good (3.11 ends a thread that
        # wants the GIL back then) and may hold LOCK or a backend's lock, which the exit
        # effects take: they would wait forever (tests/kernel/test_exit_at_finalization.py).
        # Nothing would observe them either (no other thread runs Python any more; the
        # process's descriptors and io_uring requests die with it).
        if state.alive and not sys.is_finalizing():
            run_exit_effects(state, state.exit_code or 0)


def current_thread_state() -> ThreadState:
    """The calling thread's kernel state, created on first use for plain Python threads."""
    try:
        ts: ThreadState = _tls.ts
    except AttributeError:
        return _adopt_current_thread()
    return ts


def _adopt_current_thread() -> ThreadState:
    ts = ThreadState(threading.get_ident(), threading.get_native_id())
    KThread(ts).python_thread = threading.current_thread()
    _tls.ts = ts
    _tls.sentinel = _ExitSentinel(ts)
    with LOCK:
        _live[ts.tid] = ts
    return ts


def thread_state_by_id(tid: int) -> ThreadState | None:
    """The state of the live thread with Win32 id ``tid`` (OpenThread), or None."""
    return _live.get(tid)


def live_thread_states() -> list[ThreadState]:
    """A snapshot of the states of threads that have not exited."""
    with LOCK:
        return list(_live.values())


def add_thread_exit_hook(hook: Callable[[ThreadState], None], order: int = 0) -> None:
    """Register ``hook(state)`` to run at every thread exit, before the thread is signaled
    (a hook may block: the I/O layer's waits for the cancelled requests to complete).

    Hooks run in ascending ``order``, and in registration order within one order (explicit,
    not import-order luck: :data:`EXIT_CANCEL_IO` before :data:`EXIT_MIGRATE_IO`).
    Used by higher layers (the I/O layer cancels the exiting thread's non-port I/O, §8).
    Hooks run without the dispatcher lock, in the exiting thread (or the TerminateThread caller).
    """
    at = len(_exit_orders)
    while at and _exit_orders[at - 1] > order:
        at -= 1
    _exit_orders.insert(at, order)
    _exit_hooks.insert(at, hook)


def run_exit_effects(ts: ThreadState, exit_code: int) -> None:
    """Apply the Win32 effects of thread exit exactly once (module docstring)."""
    with LOCK:
        if not ts.alive:
            return
        ts.alive = False
        ts.exit_code = exit_code
        ts.apcs.clear()
        ts.special_apcs.clear()
    run_block_hook(ts)  # work left to its next port wait: it will not wait any more
    for hook in list(_exit_hooks):
        hook(ts)
    with LOCK:
        for mutex in list(ts.owned_mutexes):
            mutex._abandon_locked()
        listener = ts.block_listener
        if listener is not None:
            listener.thread_exited(ts)
            ts.block_listener = None
        _live.pop(ts.tid, None)
        thread = ts.thread
        if thread is not None:
            thread._exited = True  # only now: the exit hooks ran (their I/O rundown waits, §8)
            if thread._waiters:
                try:
                    wake_waiters(thread)
                except BaseException:  # (Ctrl-C) the walk is finished first: no
                    wake_waiters(thread)  # waiter of a signaled object is left asleep
                    raise


def start_thread(
    fn: Callable[..., int | None],
    *args: Any,
    suspended: bool = False,
    name: str | None = None,
) -> KThread:
    """CreateThread: run ``fn(*args)`` on a new thread whose exit has Win32 effects.

    Args:
        fn: the start routine; its return value (None = 0) becomes the exit code.
        suspended: CREATE_SUSPENDED; the routine starts after :meth:`KThread.resume`.
        name: the Python thread name (default ``winaio-thread-<n>``).

    Returns:
        The waitable thread object; its id is valid at once.

    An interrupt (Ctrl-C) inside the call goes on once the thread is started: one cut before
    ``Thread.start`` ran (building the objects, at its entry) starts the thread anyway (a caller
    that counted a thread before the call - the pool's ``_spawn`` - gets it: else it never
    started and ``close()`` waited for ever); one after it leaves the thread running and
    registered (``_bootstrap`` registers itself too). A cut inside ``Thread.start`` is
    CPython's thread creation (it may have started the thread: not made again).
    """
    kthread: KThread | None = None
    try:
        kthread = _new_thread(fn, args, suspended, name)
        thread = kthread.python_thread
        assert thread is not None
        thread.start()  # returns once the new thread has published its ident and native id
    except BaseException as exc:
        if not isinstance(exc, Exception) and _cut_before_start(exc):
            if kthread is None:  # (cut while building: built again)
                kthread = _new_thread(fn, args, suspended, name)
            thread = kthread.python_thread
            assert thread is not None
            thread.start()
        raise
    # The new thread stores the same two values itself first thing; whichever runs first wins
    # with identical data, so its id is valid both for the caller and for the thread.
    ts = kthread._state
    ts.ident = thread.ident or 0
    ts.tid = thread.native_id or 0
    _register(ts)
    return kthread


def _new_thread(
    fn: Callable[..., int | None], args: tuple[Any, ...], suspended: bool, name: str | None
) -> KThread:
    """The thread object of :func:`start_thread` and its Python thread, not started."""
    ts = ThreadState(0, 0)
    kthread = KThread(ts)
    gate: threading.Lock | None = None
    if suspended:
        gate = threading.Lock()
        gate.acquire()
        kthread._gate = gate
        kthread._suspend_count = 1
    kthread.python_thread = threading.Thread(
        target=_bootstrap,
        args=(ts, gate, fn, args),
        name=name or f"winaio-thread-{next(_thread_names)}",
        daemon=True,
    )
    return kthread


def _cut_before_start(exc: BaseException) -> bool:
    """The interrupt ``exc`` cut :func:`start_thread` before ``Thread.start`` ran: no frame of
    it in the traceback, or its frame at its first line (the entry's check)."""
    code = threading.Thread.start.__code__
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return tb.tb_lineno == code.co_firstlineno
        tb = tb.tb_next
    return True


def _register(ts: ThreadState) -> None:
    """A started thread in the live table (OpenThread) unless it has exited already."""
    with LOCK:
        if ts.alive:
            _live[ts.tid] = ts


def _bootstrap(
    ts: ThreadState,
    gate: threading.Lock | None,
    fn: Callable[..., int | None],
    args: tuple[Any, ...],
) -> None:
    ts.ident = threading.get_ident()
    ts.tid = threading.get_native_id()
    _tls.ts = ts
    exit_code = 0
    try:
        _register(ts)  # (and by the caller: an interrupt may have cut its registration)
        if gate is not None:
            gate.acquire()
        if ts.terminating:
            return
        # Spec §3: an APC queued before the thread begins running executes first.
        run_apcs(ts)
        result = fn(*args)
        exit_code = 0 if result is None else int(result) & 0xFFFFFFFF
    except ExitThreadRequest as request:
        exit_code = request.exit_code & 0xFFFFFFFF
    except ThreadTerminated:
        exit_code = ts.exit_code if ts.exit_code is not None else 0
    except BaseException:
        exit_code = _STATUS_UNHANDLED_EXCEPTION
        raise
    finally:
        try:
            run_exit_effects(ts, exit_code)
        except ThreadTerminated:
            # A TerminateThread async exception landing during our own exit: already exited.
            pass


def check_terminating(ts: ThreadState) -> None:
    """Raise ThreadTerminated in a thread that TerminateThread has ended."""
    if ts.terminating:
        raise ThreadTerminated(ts.exit_code if ts.exit_code is not None else 0)
