"""The C hot shapes of events and single waits (``_io/_fastevent*.c``; issue 9's ping-pong).

``Event.set`` and ``_wait.wait_for_one`` in the kernel, SetEvent / ResetEvent /
WaitForSingleObject(Ex) in the alias layer: the Python functions are the reference and the
fallback. Every test runs on both implementations (``impl``: ``_accel.use``), and the
differential ones call both side by side on the same shapes: result, last error, object state.
The C path must run no Python frame on its hot shape (blocking or not), must not lose a wake-up
or leave a wait registered when an interrupt or a failed allocation cuts it, and must leave
every other shape (APCs, termination, abandoned mutexes, several waiters, subclasses, tag bits,
pseudo handles) to the Python function.

[MS:SetEvent], [MS:ResetEvent], [MS:WaitForSingleObject], [MS:WaitForSingleObjectEx].
"""

from __future__ import annotations

import functools
import gc
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import winaio
import winaio.win32 as w
from winaio import testing as wt
from winaio._io import _accel, _kernel_events
from winaio._kernel import _api, _dispatcher, _wait
from winaio._kernel._dispatcher import LOCK, ThreadState
from winaio._kernel._handles import HANDLE_TABLE
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio.codes import WaitCode, WinError
from winaio.errors import ThreadTerminated
from winaio.testing import PyParker, waiting_on
from winaio.win32 import _sync

INFINITE = 0xFFFFFFFF
WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
WAIT_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
WAIT_FAILED = int(WaitCode.WAIT_FAILED)
SYNCHRONIZE = 0x00100000
EVENT_MODIFY_STATE = 0x0002
BUILT = _kernel_events.c_wait_for_one is not None


def _require_c() -> None:
    if not BUILT:
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            pytest.fail("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
        pytest.skip("the C accelerator (winaio._io._fastio) was not built")


@pytest.fixture(params=["c", "python"])
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "c":
        _require_c()
    before = _accel.use(request.param == "c")
    try:
        yield request.param
    finally:
        _accel.use(before)


def _dup(h: int, access: int) -> int:
    out = w.Ref(0)
    proc = w.GetCurrentProcess()
    assert w.DuplicateHandle(proc, h, proc, out, access, False, 0)
    return out.value


class _SubEvent(Event):
    __slots__ = ()


def _state(obj: Any) -> tuple[Any, ...]:
    if isinstance(obj, Event):
        return ("event", obj.is_set(), obj.waiter_count)
    if isinstance(obj, winaio.Semaphore):
        return ("semaphore", obj.count)
    if isinstance(obj, winaio.Mutex):
        return ("mutex", obj.owner_thread_id, obj.abandoned)
    return (type(obj).__name__,)


def _world(signaled: bool) -> tuple[dict[str, Any], list[Any]]:
    """Fresh handles by shape name, and the objects whose state is compared."""
    auto = w.CreateEvent(None, False, signaled, None)
    manual = w.CreateEvent(None, True, signaled, None)
    sub = _SubEvent(False, signaled)
    hsub = HANDLE_TABLE.insert(sub)
    sem = w.CreateSemaphore(None, 1 if signaled else 0, 2, None)
    mutex = w.CreateMutex(None, False, None)
    closed = w.CreateEvent(None, True, True, None)
    assert w.CloseHandle(closed)
    handles: dict[str, Any] = {
        "auto": auto,
        "auto|1": auto | 1,
        "manual": manual,
        "subclass": hsub,
        "semaphore": sem,
        "mutex": mutex,
        "no SYNCHRONIZE": _dup(manual, EVENT_MODIFY_STATE),
        "SYNCHRONIZE only": _dup(auto, SYNCHRONIZE),
        "closed": closed,
        "NULL": 0,
        "None": None,
        "current thread": w.GetCurrentThread(),
        "float": float(auto),
        "str": str(auto),
        "-3": -3,
    }
    objects = [HANDLE_TABLE.resolve(h)[0] for h in (auto, manual, hsub, sem, mutex)]
    return handles, objects


CALLS: dict[str, tuple[str, Callable[[Any, Any], tuple[Any, ...]]]] = {
    "SetEvent": ("_SetEvent", lambda h, t: (h,)),
    "ResetEvent": ("_ResetEvent", lambda h, t: (h,)),
    "WaitForSingleObject": ("_WaitForSingleObject", lambda h, t: (h, t)),
    "WaitForSingleObjectEx": ("_WaitForSingleObjectEx", lambda h, t: (h, t, False)),
    "WaitForSingleObjectEx alertable": ("_WaitForSingleObjectEx", lambda h, t: (h, t, True)),
}
TIMEOUTS: list[Any] = [0, INFINITE, 1, 1.0, -1, True, 1 << 32]
HANDLE_NAMES = list(_world(False)[0])


@pytest.mark.parametrize("signaled", [True, False])
@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("handle", HANDLE_NAMES)
def test_the_c_functions_match_the_python_ones(
    impl: str, call: str, handle: str, signaled: bool
) -> None:
    """Differential: the installed function (C under ``impl == "c"``) against the Python
    reference on fresh, identical worlds: result, last error, every object's state."""
    py_name, args_of = CALLS[call]
    name = call.split()[0]
    for timeout in TIMEOUTS if name.startswith("Wait") else [None]:
        if (
            timeout != 0
            and name.startswith("Wait")
            and (not signaled or handle == "current thread")
        ):
            continue  # (would block: blocking shapes are covered with a second thread)
        outcomes = []
        for fn in (getattr(w, name), getattr(_sync, py_name)):
            handles, objects = _world(signaled)
            w.SetLastError(0xBEEF)
            result = fn(*args_of(handles[handle], timeout))
            outcomes.append((result, w.GetLastError(), [_state(o) for o in objects]))
        assert outcomes[0] == outcomes[1], (call, handle, timeout)


def test_the_installed_functions_follow_the_switch() -> None:
    _require_c()
    before = _accel.use(True)
    try:
        assert isinstance(Event.__dict__["set"], type(str.join))  # a method descriptor
        assert _api._wait_for_one is _kernel_events.c_wait_for_one
        _accel.use(False)
        assert Event.__dict__["set"] is _kernel_events.PY_EVENT_SET
        assert _api._wait_for_one is _kernel_events.PY_WAIT_FOR_ONE
    finally:
        _accel.use(before)


def test_the_hot_shapes_run_no_python_frame() -> None:
    _require_c()
    before = _accel.use(True)
    gc.collect()
    gc.disable()  # (a collection's callbacks, Hypothesis's gc timer, would read as frames)
    try:
        h = w.CreateEvent(None, False, False, None)
        ev = winaio.Event()
        current_thread_state()
        for call in (
            functools.partial(w.SetEvent, h),
            functools.partial(w.WaitForSingleObject, h, INFINITE),  # signaled: consumed
            functools.partial(w.WaitForSingleObject, h, 0),  # timeout
            functools.partial(w.WaitForSingleObjectEx, h, 0, True),
            functools.partial(w.ResetEvent, h),
            ev.set,
            functools.partial(_api._wait_for_one, ev, None, False),
            functools.partial(_api._wait_for_one, ev, 0.0, False),
        ):
            assert wt.python_frames(call) == set(), call
        # a wait that blocks, ended by another thread's SetEvent, on a fresh thread (parked on
        # its threading.Lock: this one's parker may have been replaced by earlier tests,
        # a WorkerParker or a ring's, whose waits the Python function makes)
        frames: list[set[str]] = []

        def blocked_wait() -> None:
            current_thread_state()
            threading.Timer(0.05, w.SetEvent, (h,)).start()
            frames.append(wt.python_frames(functools.partial(w.WaitForSingleObject, h, INFINITE)))

        t = threading.Thread(target=blocked_wait)
        t.start()
        t.join(10)
        assert frames == [set()]
        assert w.CloseHandle(h)
    finally:
        gc.enable()
        _accel.use(before)


Pair = tuple[Callable[[], object], Callable[[], int]]


def _pingpong(n: int, make: Callable[[], Pair]) -> None:
    """``n`` round trips between two threads, each direction a (signal, wait) pair."""
    (ping, ping_wait), (pong, pong_wait) = make(), make()
    errors: list[BaseException] = []

    def responder() -> None:
        try:
            for _ in range(n):
                assert ping_wait() == WAIT_OBJECT_0
                pong()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=responder)
    t.start()
    for _ in range(n):
        ping()
        assert pong_wait() == WAIT_OBJECT_0
    t.join(10)
    assert not t.is_alive() and not errors


@pytest.fixture(params=["nogil-wake", "gil-wake"])
def wake(request: pytest.FixtureRequest) -> Iterator[str]:
    """The C Event.set's wake-up made without the GIL after LOCK (the default) or under LOCK
    with the GIL held (as the Python method makes it)."""
    fastio = _kernel_events.fastio
    if fastio is None:
        yield request.param
        return
    before = fastio.event_wake_without_gil(request.param == "nogil-wake")
    try:
        yield request.param
    finally:
        fastio.event_wake_without_gil(before)


@pytest.mark.parametrize("signaler", ["installed", "python"])
@pytest.mark.parametrize("waiter", ["installed", "python"])
def test_a_ping_pong_mixing_both_implementations(
    impl: str, wake: str, signaler: str, waiter: str
) -> None:
    """Each side's set and wait by the installed function or the Python reference: the two
    write the same state (a token per wake-up, no wake-up lost or doubled)."""
    events: list[Event] = []

    def make() -> Pair:
        ev = winaio.Event()
        events.append(ev)
        py_set = functools.partial(_kernel_events.PY_EVENT_SET, ev)
        fn = _api._wait_for_one if waiter == "installed" else _kernel_events.PY_WAIT_FOR_ONE
        return (ev.set if signaler == "installed" else py_set), functools.partial(
            fn, ev, None, False
        )

    _pingpong(2000, make)
    assert all(not ev.is_set() and ev.waiter_count == 0 for ev in events)
    ts = current_thread_state()
    assert ts.wait is None and not ts.wake_pending


def test_timed_waits_racing_with_sets_lose_and_double_nothing(impl: str, wake: str) -> None:
    """A waiter with short timeouts (its wait gives up while a set's token is being given:
    taken as consumed, the late post a spurious wake-up of a later wait) against sets each
    made once the previous one was consumed: every set is seen exactly once."""
    ev = winaio.Event()
    n = 3000
    got: list[int] = []
    waiter_state: list[Any] = []

    def waiter() -> None:
        ts = current_thread_state()
        while len(got) < n:
            if _api._wait_for_one(ev, 0.0002, False) == WAIT_OBJECT_0:
                got.append(1)
        waiter_state.append((ts.wait, ts.wake_pending))

    t = threading.Thread(target=waiter)
    t.start()
    for _ in range(n):
        ev.set()
        deadline = time.monotonic() + 5
        while ev.is_set() and time.monotonic() < deadline:
            time.sleep(0)
    t.join(10)
    assert len(got) == n and not ev.is_set() and ev.waiter_count == 0
    assert waiter_state == [(None, False)]


def test_a_win32_ping_pong(impl: str, wake: str) -> None:
    handles: list[int] = []

    def make() -> Pair:
        h = w.CreateEvent(None, False, False, None)
        handles.append(h)
        return functools.partial(w.SetEvent, h), functools.partial(
            w.WaitForSingleObject, h, INFINITE
        )

    _pingpong(2000, make)
    for h in handles:
        assert w.WaitForSingleObject(h, 0) == WAIT_TIMEOUT
        assert w.CloseHandle(h)


def _waiters_released(manual: bool) -> None:
    ev = winaio.Event(manual_reset=manual)
    woke: list[int] = []
    lock = threading.Lock()

    def waiter(i: int) -> None:
        assert _api._wait_for_one(ev, 5.0, False) == WAIT_OBJECT_0
        with lock:
            woke.append(i)

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while ev.waiter_count < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    for n in range(1 if manual else 3):
        ev.set()
        deadline = time.monotonic() + 5
        while len(woke) < (3 if manual else n + 1) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.01)
        assert len(woke) == (3 if manual else n + 1)  # auto-reset: exactly one per set
        assert ev.is_set() is manual
    for t in threads:
        t.join(5)
    assert sorted(woke) == [0, 1, 2] and ev.waiter_count == 0


@pytest.mark.parametrize("manual", [False, True])
def test_several_waiters_go_to_the_python_walk(impl: str, manual: bool) -> None:
    """An auto-reset event with three waiters releases exactly one per set; a manual-reset
    one releases all."""
    _waiters_released(manual)


def test_an_apc_ends_an_alertable_blocked_wait(impl: str) -> None:
    """QueueUserAPC to a thread blocked in an alertable WaitForSingleObjectEx (C's own park
    loop): WAIT_IO_COMPLETION, the APC run, the wait unregistered, the event untouched."""
    h = w.CreateEvent(None, False, False, None)
    ran: list[object] = []
    out: list[int] = []
    ident: list[int] = []
    ready = threading.Event()

    def target() -> None:
        ident.append(w.GetCurrentThreadId())
        ready.set()
        out.append(w.WaitForSingleObjectEx(h, INFINITE, True))

    t = threading.Thread(target=target)
    t.start()
    ready.wait(5)
    ev = _sync.HANDLE_TABLE.resolve(h)[0]
    deadline = time.monotonic() + 5
    while ev.waiter_count == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    th = w.OpenThread(0x1FFFFF, False, ident[0])
    assert w.QueueUserAPC(ran.append, th, 7)
    t.join(5)
    assert out == [WAIT_IO_COMPLETION] and ran == [7]
    assert ev.waiter_count == 0 and not ev.is_set()
    assert w.CloseHandle(th) and w.CloseHandle(h)


def test_a_non_alertable_blocked_wait_ignores_apcs(impl: str) -> None:
    h = w.CreateEvent(None, False, False, None)
    out: list[int] = []
    ident: list[int] = []
    ran: list[object] = []
    ready = threading.Event()

    def target() -> None:
        ident.append(w.GetCurrentThreadId())
        ready.set()
        out.append(w.WaitForSingleObject(h, INFINITE))
        out.append(w.SleepEx(0, True))

    t = threading.Thread(target=target)
    t.start()
    ready.wait(5)
    ev = _sync.HANDLE_TABLE.resolve(h)[0]
    while ev.waiter_count == 0:
        time.sleep(0.001)
    th = w.OpenThread(0x1FFFFF, False, ident[0])
    assert w.QueueUserAPC(ran.append, th, 1)
    time.sleep(0.05)
    assert out == [] and ran == []
    assert w.SetEvent(h)
    t.join(5)
    assert out == [WAIT_OBJECT_0, WAIT_IO_COMPLETION] and ran == [1]
    assert w.CloseHandle(th) and w.CloseHandle(h)


def test_terminate_thread_ends_a_blocked_wait(impl: str) -> None:
    ev = winaio.Event()
    out: list[BaseException] = []

    def target() -> None:
        try:
            _api._wait_for_one(ev, None, False)
        except ThreadTerminated as exc:
            out.append(exc)
            raise

    t = winaio.start_thread(target)
    deadline = time.monotonic() + 5
    while ev.waiter_count == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    t.terminate(9)  # (signals the thread object at once: its exit effects ran)
    assert winaio.wait(t, 5).code == WAIT_OBJECT_0
    deadline = time.monotonic() + 5
    while not out and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(out) == 1 and ev.waiter_count == 0 and not ev.is_set()


def test_an_abandoned_mutex_and_a_semaphore_keep_their_codes(impl: str) -> None:
    m = w.CreateMutex(None, False, None)

    def own() -> None:
        assert w.WaitForSingleObject(m, INFINITE) == WAIT_OBJECT_0

    t = threading.Thread(target=own)
    t.start()
    t.join()
    assert w.WaitForSingleObject(m, INFINITE) == int(WaitCode.WAIT_ABANDONED_0)
    assert w.ReleaseMutex(m)
    s = w.CreateSemaphore(None, 1, 1, None)
    assert w.WaitForSingleObject(s, 0) == WAIT_OBJECT_0
    assert w.WaitForSingleObject(s, 0) == WAIT_TIMEOUT


def test_a_bad_handle_fails_with_its_last_error(impl: str) -> None:
    h = w.CreateEvent(None, False, True, None)
    assert w.CloseHandle(h)
    assert w.WaitForSingleObject(h, INFINITE) == WAIT_FAILED
    assert w.GetLastError() == WinError.ERROR_INVALID_HANDLE
    assert w.SetEvent(h) is False
    assert w.GetLastError() == WinError.ERROR_INVALID_HANDLE
    ro = w.CreateEvent(None, False, False, None)
    sync_only = _dup(ro, SYNCHRONIZE)
    assert w.SetEvent(sync_only) is False and w.ResetEvent(sync_only) is False
    assert w.GetLastError() == WinError.ERROR_ACCESS_DENIED


# ---------------------------------------------------------------------- interrupts


@pytest.fixture
def plain_parker() -> Iterator[None]:
    """The calling thread parked on a fresh ``threading.Lock`` for the test (the C wait's
    shape: earlier tests may have given this long-lived thread a WorkerParker or a ring's
    parker, whose waits the Python function makes), swapped under LOCK outside any wait."""
    ts = current_thread_state()
    lock = threading.Lock()
    lock.acquire()
    with LOCK:
        assert ts.wait is None and not ts.wake_pending
        old, ts.parker = ts.parker, lock
    try:
        yield
    finally:
        with LOCK:
            ts.parker = old


class Interrupted(BaseException):
    """Raised by the tests' signal handler (a KeyboardInterrupt stand-in)."""


def _raise(signum: int, frame: Any) -> None:
    raise Interrupted


@pytest.mark.parametrize("api", ["core", "win32"])
def test_a_real_signal_in_a_blocked_wait_unregisters_it(
    impl: str, api: str, plain_parker: None
) -> None:
    """SIGUSR1 delivered to the main thread blocked in the wait: the handler's exception comes
    out of the C park loop (as out of ``lock.acquire``), the wait is unregistered
    (``abandon_wait``), the parker locked again, and a later SetEvent is not lost."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals run on the main thread")
    h = w.CreateEvent(None, False, False, None)
    ev = _sync.HANDLE_TABLE.resolve(h)[0]
    main = threading.get_ident()
    old = signal.signal(signal.SIGUSR1, _raise)
    ts = current_thread_state()

    def kill() -> None:
        deadline = time.monotonic() + 5
        while ev.waiter_count == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGUSR1)

    t = threading.Thread(target=kill)
    t.start()
    try:
        with pytest.raises(Interrupted):
            if api == "core":
                _api._wait_for_one(ev, None, False)
            else:
                w.WaitForSingleObject(h, INFINITE)
    finally:
        signal.signal(signal.SIGUSR1, old)
        t.join(5)
    assert ev.waiter_count == 0 and ts.wait is None and not ts.wake_pending
    assert not LOCK.locked()
    assert w.SetEvent(h)
    assert w.WaitForSingleObject(h, 0) == WAIT_OBJECT_0  # kept, then consumed once
    assert w.WaitForSingleObject(h, 0) == WAIT_TIMEOUT
    assert w.CloseHandle(h)


def test_an_interrupt_at_abandon_waits_entry_is_made_again(plain_parker: None) -> None:
    """A second interrupt at ``abandon_wait``'s entry (a profile hook raising there, where a
    signal that came while C ran is raised): the C path makes the call again (it is
    idempotent) and raises the first interrupt; nothing stays registered."""
    _require_c()
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals run on the main thread")
    before = _accel.use(True)
    ev = winaio.Event()
    main = threading.get_ident()
    old = signal.signal(signal.SIGUSR1, _raise)
    ts = current_thread_state()
    code = _wait.abandon_wait.__code__
    hits: list[int] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code and not hits:
            hits.append(1)
            raise KeyboardInterrupt

    def kill() -> None:
        while ev.waiter_count == 0:
            time.sleep(0.001)
        time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGUSR1)

    t = threading.Thread(target=kill)
    t.start()
    sys.setprofile(profile)
    try:
        with pytest.raises(Interrupted):
            _api._wait_for_one(ev, None, False)
    finally:
        sys.setprofile(None)
        signal.signal(signal.SIGUSR1, old)
        t.join(5)
        _accel.use(before)
    assert hits == [1]
    assert ev.waiter_count == 0 and ts.wait is None and not ts.wake_pending


_NOMEM = textwrap.dedent(
    """
    import sys, threading, time, _testcapi
    from winaio._kernel._dispatcher import LOCK
    from winaio._kernel._threads import current_thread_state
    from winaio import win32 as w

    ts = current_thread_state()
    bad = set()
    for k in range(int(sys.argv[1])):
        h = w.CreateEvent(None, False, False, None)
        obj = w._sync.HANDLE_TABLE.resolve(h)[0]
        stop = []

        def setter():
            # sets the event once the main thread's wait is registered; its own allocations
            # may be the one that fails: it tries again
            while not stop:
                try:
                    if obj.waiter_count:
                        w.SetEvent(h)
                    time.sleep(0.0002)
                except BaseException:
                    pass

        t = threading.Thread(target=setter)
        t.start()
        _testcapi.set_nomemory(k, k + 1)  # the k-th allocation from here fails
        try:
            r = w.WaitForSingleObject(h, 0xFFFFFFFF)
        except MemoryError:
            r = None
        finally:
            _testcapi.remove_mem_hooks()
        stop.append(1)
        t.join()
        if LOCK.locked():
            bad.add("LOCK left held")
            LOCK.release()
        if obj.waiter_count or ts.wait is not None:
            bad.add("a wait left registered")
        if ts.wake_pending or not ts.parker.locked():
            bad.add("a token left outstanding")
        if r == 0 and obj.is_set():
            bad.add("the event not consumed")
        w.CloseHandle(h)
    print(sorted(bad))
    """
)


def test_a_failed_allocation_in_the_wait_leaves_no_half_state() -> None:
    """Each allocation of the C wait (the wait block, its tuple, the waiter list's entry) made
    to fail in turn, in a child under the debug allocator: no crash, no lock held, no wait
    left registered, no SetEvent lost."""
    _require_c()
    wt.nomem_sweep(_NOMEM, "40")


def test_no_reference_leaks(impl: str) -> None:
    h = w.CreateEvent(None, False, False, None)
    ev = _sync.HANDLE_TABLE.resolve(h)[0]

    def burst() -> None:
        for _ in range(200):
            w.SetEvent(h)
            w.WaitForSingleObject(h, INFINITE)
            w.WaitForSingleObject(h, 0)
            w.ResetEvent(h)
            ev.set()
            _api._wait_for_one(ev, None, False)

    burst()
    gc.collect()
    before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    blocks = sys.getallocatedblocks()
    for _ in range(5):
        burst()
    gc.collect()
    assert sys.getallocatedblocks() - blocks < 50
    if before is not None:
        assert sys.gettotalrefcount() - before < 50
    assert w.CloseHandle(h)


# ---------------------------------------------------------------------- the Python walk


@contextmanager
def _interrupt_at(code: Any, event: str = "call", name: str = "") -> Iterator[list[int]]:
    """The first ``event`` of ``code`` (a "call": a Python function's entry, where a signal
    that came while C code ran is raised) or of the C function ``name`` ("c_return": just
    after a builtin returned, the eval-breaker check after a call) raises ``Interrupted``."""
    hits: list[int] = []

    def profile(frame: Any, ev: str, arg: Any) -> None:
        if hits or ev != event:
            return
        if (ev == "call" and frame.f_code is code) or (
            ev == "c_return" and getattr(arg, "__name__", "") == name
        ):
            hits.append(1)
            raise Interrupted

    sys.setprofile(profile)
    try:
        yield hits
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize("where", ["end_wait", "unlink_wait"])
def test_an_interrupt_inside_complete_wait_leaves_no_waiter_asleep(where: str) -> None:
    """review8: a Ctrl-C at ``end_wait``'s entry (after ``unlink_wait``) or at
    ``unlink_wait``'s left the waiter out of every list with no result: the walk that
    ``Event.set`` makes again could not find it; it slept for ever. Python Event.set (the C
    one wakes a lone plain waiter without the walk, and so does the Python one since pure's
    hot shape: the waiter waits on two objects here, which the walk ends)."""
    ev = Event()
    other = Event()
    ts, wb = waiting_on(ev)
    wb.objects = (ev, other)  # a two-object wait: Event.set walks (a lone waiter is inline)
    other._waiters[wb] = None
    code = getattr(_dispatcher, where).__code__
    with _interrupt_at(code) as hits, pytest.raises(Interrupted):
        _kernel_events.PY_EVENT_SET(ev)
    assert hits == [1]
    assert wb.result == 0 and ts.wake_pending and ev.waiter_count == 0 and not ev.is_set()
    assert other.waiter_count == 0
    assert ts.parker.acquire(False)  # the token was given once
    assert not LOCK.locked()


def test_an_interrupt_at_a_python_parkers_release_entry_gives_the_token() -> None:
    """review8: ``end_wait`` set ``wake_pending`` and a Ctrl-C at a Python parker's
    ``release`` entry left it unreleased: the thread slept for ever with a token counted as
    given. The release is made again (once)."""
    ev = Event()
    parker = PyParker()
    ts, wb = waiting_on(ev, parker=parker)
    with _interrupt_at(PyParker.release.__code__) as hits, pytest.raises(Interrupted):
        _kernel_events.PY_EVENT_SET(ev)
    assert hits == [1]
    assert wb.result == 0 and ts.wake_pending and parker.released == 1
    assert parker.lock.acquire(False)


def test_an_interrupt_after_a_lock_parkers_release_does_not_release_twice() -> None:
    """A ``threading.Lock`` parker's release (C) that ran before the interrupt (raised at the
    eval-breaker check after the call) is not made again (a second one would raise)."""
    ev = Event()
    ts, wb = waiting_on(ev)
    with _interrupt_at(None, "c_return", "release") as hits, pytest.raises(Interrupted):
        _kernel_events.PY_EVENT_SET(ev)
    assert hits == [1]
    assert wb.result == 0 and ts.wake_pending
    assert ts.parker.acquire(False) and not ts.parker.acquire(False)  # one token


def test_wake_thread_gives_the_token_again_after_an_interrupt_at_release() -> None:
    ts = ThreadState(0, 0)
    parker = PyParker()
    ts.parker = parker
    with _interrupt_at(PyParker.release.__code__) as hits, pytest.raises(Interrupted), LOCK:
        _dispatcher.wake_thread(ts)
    assert hits == [1] and ts.wake_pending and parker.released == 1
