"""Win32 conformance: events, semaphores and mutexes (behaviours 11-20) plus named objects
and handle duplication (§1.1, §2.3).

Wine: k32/sync.c test_event / test_semaphore / test_mutex / test_temporary_objects,
nt/sync.c test_event / test_semaphore / test_mutant.
"""

from __future__ import annotations

import winaio.win32 as w

# DuplicateHandle options (winnt.h). Literal values so that behavioural tests do not depend on
# the alias layer exporting the names; test_constants checks the exports.
DUPLICATE_CLOSE_SOURCE = 0x1
DUPLICATE_SAME_ACCESS = 0x2

SENTINEL = 0xDEADBEEF


def _waiter(kit, h: int, results: list[int], timeout_ms: int = 5000):
    def body() -> None:
        results.append(w.WaitForSingleObject(h, timeout_ms))

    return kit.thread(body)


def _wait_any_thread(workers) -> int:
    """Index of the first worker whose thread ends (5 s bound)."""
    handles = [t.handle for t in workers]
    r = w.WaitForMultipleObjects(len(handles), handles, False, 5000)
    assert w.WAIT_OBJECT_0 <= r < w.WAIT_OBJECT_0 + len(handles), f"no thread ended: {r:#x}"
    return r - w.WAIT_OBJECT_0


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


def test_auto_event_set_releases_exactly_one_of_three(kit, testing) -> None:
    # spec: win32 #11
    e = kit.event(manual=False, initial=False)
    results: list[int] = []
    workers = [_waiter(kit, e, results) for _ in range(3)]
    kit.on_cleanup(lambda: [w.SetEvent(e) for _ in range(3)])
    testing.wait_until_waiters(e, 3)

    assert w.SetEvent(e)
    # the event was consumed by the released waiter at once: it is nonsignaled now
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT
    first = _wait_any_thread(workers)
    rest = [t for i, t in enumerate(workers) if i != first]
    # the two others are still blocked
    assert w.WaitForMultipleObjects(2, [t.handle for t in rest], False, 100) == w.WAIT_TIMEOUT
    assert results == [w.WAIT_OBJECT_0]
    testing.wait_until_waiters(e, 2)

    # each further SetEvent releases one more
    assert w.SetEvent(e)
    second = _wait_any_thread(rest)
    last = rest[1 - second]
    assert last.is_running(50)
    assert w.SetEvent(e)
    for t in workers:
        t.join()
    assert results == [w.WAIT_OBJECT_0] * 3
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT


def test_auto_event_without_waiters_stays_signaled_until_consumed(kit) -> None:
    # spec: win32 #11 (SetEvent with no waiter: signaled until one wait consumes it)
    e = kit.event(manual=False, initial=False)
    assert w.SetEvent(e)
    assert w.SetEvent(e)  # setting twice does not count twice
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT


def test_manual_event_set_releases_all_and_stays_signaled(kit, testing) -> None:
    # spec: win32 #12
    e = kit.event(manual=True, initial=False)
    results: list[int] = []
    workers = [_waiter(kit, e, results) for _ in range(3)]
    kit.on_cleanup(lambda: w.SetEvent(e))
    testing.wait_until_waiters(e, 3)
    assert w.SetEvent(e)
    handles = [t.handle for t in workers]
    assert w.WaitForMultipleObjects(3, handles, True, 5000) == w.WAIT_OBJECT_0
    for t in workers:
        t.join()
    assert results == [w.WAIT_OBJECT_0] * 3
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0
    assert w.ResetEvent(e)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT


def test_pulse_manual_event_releases_all_waiters_then_resets(kit, testing) -> None:
    # spec: win32 #13
    e = kit.event(manual=True, initial=False)
    results: list[int] = []
    workers = [_waiter(kit, e, results) for _ in range(2)]
    kit.on_cleanup(lambda: w.SetEvent(e))
    testing.wait_until_waiters(e, 2)
    assert w.PulseEvent(e)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT
    for t in workers:
        t.join()
    assert results == [w.WAIT_OBJECT_0] * 2
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT


def test_pulse_event_without_waiters_only_resets(kit) -> None:
    # spec: win32 #13 (no waiters: PulseEvent only leaves the event nonsignaled)
    for manual in (True, False):
        e = kit.event(manual=manual, initial=True)
        assert w.PulseEvent(e)
        assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT
        assert w.PulseEvent(e)  # already nonsignaled: still succeeds, still nonsignaled
        assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT


def test_pulse_auto_event_releases_exactly_one(kit, testing) -> None:
    # spec: win32 #14
    e = kit.event(manual=False, initial=False)
    results: list[int] = []
    workers = [_waiter(kit, e, results) for _ in range(2)]
    kit.on_cleanup(lambda: [w.SetEvent(e) for _ in range(2)])
    testing.wait_until_waiters(e, 2)
    assert w.PulseEvent(e)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT
    first = _wait_any_thread(workers)
    other = workers[1 - first]
    assert other.is_running(100)
    assert results == [w.WAIT_OBJECT_0]
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT
    assert w.SetEvent(e)
    for t in workers:
        t.join()
    assert results == [w.WAIT_OBJECT_0] * 2


def test_pulse_does_not_release_wait_all_waiter(kit, testing) -> None:
    # spec: win32 #13 (§2.3: a wait-all waiter is not released unless all its objects are
    # signaled at that instant)
    e = kit.event(manual=True, initial=False)
    other = kit.event(manual=True, initial=False)
    results: list[int] = []

    def body() -> None:
        results.append(w.WaitForMultipleObjects(2, [e, other], True, 5000))

    t = kit.thread(body)
    kit.on_cleanup(lambda: (w.SetEvent(e), w.SetEvent(other)))
    testing.wait_until_waiters(e, 1)
    assert w.PulseEvent(e)
    assert w.SetEvent(other)
    assert t.is_running(100)  # e was pulsed while `other` was nonsignaled
    assert w.SetEvent(e)
    t.join()
    assert results == [w.WAIT_OBJECT_0]


# ---------------------------------------------------------------------------------------------
# Semaphores
# ---------------------------------------------------------------------------------------------


def test_create_semaphore_initial_above_max_fails() -> None:
    # spec: win32 #15
    w.SetLastError(SENTINEL)
    assert w.CreateSemaphore(None, 2, 1, None) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


def test_create_semaphore_bad_counts_fail() -> None:
    # spec: win32 #15 (§2.3: max <= 0 or initial < 0 -> ERROR_INVALID_PARAMETER)
    for initial, maximum in ((-1, 1), (0, 0), (0, -1), (1, 0), (-1, -1), (5, 4)):
        w.SetLastError(SENTINEL)
        assert w.CreateSemaphore(None, initial, maximum, None) == w.NULL, (initial, maximum)
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER, (initial, maximum)


def test_create_semaphore_edge_counts_succeed(kit) -> None:
    # spec: win32 #15 (contrast: initial == max and initial == 0 are fine)
    s = kit.semaphore(1, 1)
    assert w.WaitForSingleObject(s, 0) == w.WAIT_OBJECT_0
    s = kit.semaphore(0, 1)
    assert w.WaitForSingleObject(s, 0) == w.WAIT_TIMEOUT


def test_release_semaphore_over_max(kit) -> None:
    # spec: win32 #16
    s = kit.semaphore(0, 2)
    prev = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert not w.ReleaseSemaphore(s, 3, prev)
    assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS == 298
    assert prev.value == SENTINEL

    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s, 1, prev)
    assert prev.value == 0
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s, 1, prev)
    assert prev.value == 1

    prev = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert not w.ReleaseSemaphore(s, 1, prev)
    assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS
    assert prev.value == SENTINEL
    # count unchanged by the failures: exactly 2
    assert w.WaitForSingleObject(s, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(s, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(s, 0) == w.WAIT_TIMEOUT


def test_release_semaphore_failure_leaves_count(kit) -> None:
    # spec: win32 #16 (a too-large release leaves the count as it was, here 1)
    s = kit.semaphore(1, 3)
    assert not w.ReleaseSemaphore(s, 3, None)
    assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s, 2, prev)
    assert prev.value == 1
    for _ in range(3):
        assert w.WaitForSingleObject(s, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(s, 0) == w.WAIT_TIMEOUT


def test_release_semaphore_wakes_up_to_n_waiters(kit, testing) -> None:
    # spec: win32 #16 (§2.3: up to n waiters wake)
    s = kit.semaphore(0, 10)
    results: list[int] = []
    workers = [_waiter(kit, s, results) for _ in range(3)]
    kit.on_cleanup(lambda: w.ReleaseSemaphore(s, 3, None))
    testing.wait_until_waiters(s, 3)
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s, 2, prev)
    assert prev.value == 0
    a = _wait_any_thread(workers)
    rest = [t for i, t in enumerate(workers) if i != a]
    b = _wait_any_thread(rest)
    last = rest[1 - b]
    assert last.is_running(100)
    assert w.WaitForSingleObject(s, 0) == w.WAIT_TIMEOUT  # both units went to waiters
    assert w.ReleaseSemaphore(s, 1, None)
    for t in workers:
        t.join()
    assert results == [w.WAIT_OBJECT_0] * 3


# ---------------------------------------------------------------------------------------------
# Mutexes
# ---------------------------------------------------------------------------------------------


def test_mutex_recursion_31_and_non_owner_release(kit) -> None:
    # spec: win32 #17
    m = kit.mutex(owned=False)
    w.SetLastError(SENTINEL)
    for _ in range(31):
        assert w.WaitForSingleObject(m, w.INFINITE) == w.WAIT_OBJECT_0
    assert w.GetLastError() == SENTINEL

    result: list[tuple[bool, int]] = []

    def non_owner() -> None:
        w.SetLastError(SENTINEL)
        ok = w.ReleaseMutex(m)
        result.append((ok, w.GetLastError()))
        result.append((w.WaitForSingleObject(m, 0) == w.WAIT_TIMEOUT, 0))

    kit.thread(non_owner).join()
    assert result == [(False, w.ERROR_NOT_OWNER), (True, 0)]

    for _ in range(31):
        assert w.ReleaseMutex(m)
    w.SetLastError(SENTINEL)
    assert not w.ReleaseMutex(m)
    assert w.GetLastError() == w.ERROR_NOT_OWNER == 288


def test_mutex_signaled_only_after_as_many_releases_as_acquisitions(kit) -> None:
    # spec: win32 #17 (§2.3)
    m = kit.mutex(owned=True)  # recursion 1
    assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0  # recursion 2

    def other_can_acquire() -> bool:
        got: list[int] = []

        def body() -> None:
            r = w.WaitForSingleObject(m, 0)
            got.append(r)
            if r == w.WAIT_OBJECT_0:
                assert w.ReleaseMutex(m)

        kit.thread(body).join()
        return got == [w.WAIT_OBJECT_0]

    assert not other_can_acquire()
    assert w.ReleaseMutex(m)
    assert not other_can_acquire()
    assert w.ReleaseMutex(m)
    assert other_can_acquire()
    assert not w.ReleaseMutex(m)
    assert w.GetLastError() == w.ERROR_NOT_OWNER


def test_mutex_abandoned_when_owner_returns(kit) -> None:
    # spec: win32 #18
    m = kit.mutex()
    got: list[int] = []

    def owner() -> None:
        got.append(w.WaitForSingleObject(m, 0))

    t = kit.thread(owner)
    assert t.join() == 0
    assert got == [w.WAIT_OBJECT_0]

    w.SetLastError(SENTINEL)
    assert w.WaitForSingleObject(m, 0) == w.WAIT_ABANDONED == w.WAIT_ABANDONED_0 == 0x80
    assert w.GetLastError() == SENTINEL
    # the caller now owns it (recursion 1): another thread cannot take it
    other: list[int] = []

    def try_take() -> None:
        other.append(w.WaitForSingleObject(m, 0))

    kit.thread(try_take).join()
    assert other == [w.WAIT_TIMEOUT]
    assert w.ReleaseMutex(m)
    assert not w.ReleaseMutex(m)  # recursion was exactly 1
    assert w.GetLastError() == w.ERROR_NOT_OWNER
    # the abandoned flag was cleared by the first acquisition
    assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
    assert w.ReleaseMutex(m)


def test_mutex_abandoned_wakes_blocked_waiter(kit, testing) -> None:
    # spec: win32 #18 (the next *waiter* gets WAIT_ABANDONED and ownership)
    m = kit.mutex()
    go = kit.event(manual=True)
    acquired = kit.event(manual=True)
    waited: list[int] = []

    def owner() -> None:
        assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
        assert w.SetEvent(acquired)
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0

    def waiter() -> None:
        r = w.WaitForSingleObject(m, 5000)
        waited.append(r)
        if r in (w.WAIT_OBJECT_0, w.WAIT_ABANDONED):
            # owner now; a second acquisition is a plain recursion
            waited.append(w.WaitForSingleObject(m, 0))
            assert w.ReleaseMutex(m)
            assert w.ReleaseMutex(m)

    o = kit.thread(owner)
    kit.on_cleanup(lambda: w.SetEvent(go))
    assert w.WaitForSingleObject(acquired, 5000) == w.WAIT_OBJECT_0
    wt = kit.thread(waiter)
    testing.wait_until_waiters(m, 1)
    assert w.SetEvent(go)
    o.join()
    wt.join()
    assert waited == [w.WAIT_ABANDONED, w.WAIT_OBJECT_0]
    assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
    assert w.ReleaseMutex(m)


def test_closing_mutex_handle_does_not_wake_waiters(kit, testing) -> None:
    # spec: win32 #19 (closing the owner's handle neither releases nor abandons; the owner's
    # end does)
    m = w.CreateMutex(None, False, None)
    assert m
    m2 = kit.dup(m)  # the waiter's handle
    go = kit.event(manual=True)
    acquired = kit.event(manual=True)
    waited: list[int] = []

    def owner() -> None:
        assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
        assert w.SetEvent(acquired)
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0

    def waiter() -> None:
        r = w.WaitForSingleObject(m2, 5000)
        waited.append(r)
        if r in (w.WAIT_OBJECT_0, w.WAIT_ABANDONED):
            assert w.ReleaseMutex(m2)

    o = kit.thread(owner)
    kit.on_cleanup(lambda: w.SetEvent(go))
    assert w.WaitForSingleObject(acquired, 5000) == w.WAIT_OBJECT_0
    wt = kit.thread(waiter)
    testing.wait_until_waiters(m2, 1)

    assert w.CloseHandle(m)  # the handle the owner acquired through
    assert wt.is_running(100)  # not woken
    assert waited == []

    assert w.SetEvent(go)  # the owner returns while still owning the mutex
    o.join()
    wt.join()
    assert waited == [w.WAIT_ABANDONED]


def test_wait_any_reports_abandoned_index(kit) -> None:
    # spec: win32 #20
    e = kit.event(manual=True, initial=False)
    m = kit.mutex()

    def owner() -> None:
        assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0

    kit.thread(owner).join()
    w.SetLastError(SENTINEL)
    assert w.WaitForMultipleObjects(2, [e, m], False, 0) == w.WAIT_ABANDONED_0 + 1 == 0x81
    assert w.GetLastError() == SENTINEL
    # the caller owns it now, the abandoned state is gone
    assert w.WaitForMultipleObjects(2, [e, m], False, 0) == w.WAIT_OBJECT_0 + 1
    assert w.ReleaseMutex(m)
    assert w.ReleaseMutex(m)


def test_wait_any_abandoned_mutex_before_signaled_event(kit) -> None:
    # spec: win32 #20 (abandoned mutex at index 0 wins over a signaled event at index 1)
    e = kit.event(manual=True, initial=True)
    m = kit.mutex()

    def owner() -> None:
        assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0

    kit.thread(owner).join()
    assert w.WaitForMultipleObjectsEx(2, [m, e], False, 0, True) == w.WAIT_ABANDONED_0
    assert w.ReleaseMutex(m)


# ---------------------------------------------------------------------------------------------
# Named objects (§2.3) and handle rules (§1.1)
# ---------------------------------------------------------------------------------------------


def test_named_event_create_twice_is_same_object(kit) -> None:
    # spec: win32 §2.3 named objects
    name = kit.name("evt")
    w.SetLastError(SENTINEL)
    h1 = kit.keep(w.CreateEvent(None, False, False, name))
    assert w.GetLastError() == 0
    w.SetLastError(SENTINEL)
    h2 = kit.keep(w.CreateEventW(None, True, True, name))  # parameters of an existing object
    assert w.GetLastError() == w.ERROR_ALREADY_EXISTS == 183
    assert h2 != h1
    # same object, and it kept its original (auto-reset, nonsignaled) state
    assert w.WaitForSingleObject(h2, 0) == w.WAIT_TIMEOUT
    assert w.SetEvent(h2)
    assert w.WaitForSingleObject(h1, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(h2, 0) == w.WAIT_TIMEOUT


def test_named_objects_are_case_sensitive(kit) -> None:
    # spec: win32 §2.3 named objects
    name = kit.name("Case")
    h1 = kit.keep(w.CreateEvent(None, True, False, name))
    w.SetLastError(SENTINEL)
    h2 = kit.keep(w.CreateEvent(None, True, False, name.upper()))
    assert w.GetLastError() == 0
    assert w.SetEvent(h1)
    assert w.WaitForSingleObject(h2, 0) == w.WAIT_TIMEOUT
    w.SetLastError(SENTINEL)
    assert w.OpenEvent(w.EVENT_ALL_ACCESS, False, name.lower()) == w.NULL
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND

    mname = kit.name("Mtx")
    kit.mutex(name=mname)
    w.SetLastError(SENTINEL)
    assert w.OpenMutex(w.MUTEX_ALL_ACCESS, False, mname.upper()) == w.NULL
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND
    w.SetLastError(SENTINEL)
    kit.mutex(name=mname.lower())
    assert w.GetLastError() == 0


def test_open_unknown_name_fails_file_not_found() -> None:
    # spec: win32 §2.3 named objects
    name = "winaio-conformance-never-created"
    for open_fn, access in (
        (w.OpenEvent, w.EVENT_ALL_ACCESS),
        (w.OpenSemaphore, w.SEMAPHORE_ALL_ACCESS),
        (w.OpenMutex, w.MUTEX_ALL_ACCESS),
        (w.OpenWaitableTimer, w.TIMER_ALL_ACCESS),
    ):
        w.SetLastError(SENTINEL)
        assert open_fn(access, False, name) == w.NULL, open_fn
        assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND, open_fn


def test_open_with_null_name_fails_invalid_parameter() -> None:
    # spec: win32 §2.3 named objects (Open* with a NULL name)
    for open_fn, access in (
        (w.OpenEvent, w.EVENT_ALL_ACCESS),
        (w.OpenSemaphore, w.SEMAPHORE_ALL_ACCESS),
        (w.OpenMutex, w.MUTEX_ALL_ACCESS),
        (w.OpenWaitableTimer, w.TIMER_ALL_ACCESS),
    ):
        w.SetLastError(SENTINEL)
        assert open_fn(access, False, None) == w.NULL, open_fn
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER, open_fn


def test_open_returns_the_same_object(kit) -> None:
    # spec: win32 §2.3 named objects
    en, sn, mn, tn = (kit.name(t) for t in ("e", "s", "m", "t"))
    e = kit.event(manual=False, name=en)
    s = kit.semaphore(0, 5, name=sn)
    m = kit.mutex(owned=True, name=mn)
    t = kit.timer(manual=True, name=tn)

    w.SetLastError(SENTINEL)
    e2 = kit.keep(w.OpenEvent(w.EVENT_ALL_ACCESS, False, en))
    assert e2 != e
    assert w.SetEvent(e2)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0

    s2 = kit.keep(w.OpenSemaphore(w.SEMAPHORE_ALL_ACCESS, False, sn))
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s2, 2, prev)
    assert prev.value == 0
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s, 1, prev)
    assert prev.value == 2

    m2 = kit.keep(w.OpenMutex(w.MUTEX_ALL_ACCESS, False, mn))
    assert w.ReleaseMutex(m2)  # ownership is per object, not per handle
    assert not w.ReleaseMutex(m)
    assert w.GetLastError() == w.ERROR_NOT_OWNER

    t2 = kit.keep(w.OpenWaitableTimer(w.TIMER_ALL_ACCESS, False, tn))
    assert w.SetWaitableTimer(t2, -1, 0, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0


def test_create_existing_named_semaphore_and_mutex(kit) -> None:
    # spec: win32 §2.3 named objects (existing object returned; creation arguments ignored)
    sn, mn = kit.name("s"), kit.name("m")
    s = kit.semaphore(1, 1, name=sn)
    w.SetLastError(SENTINEL)
    s2 = kit.keep(w.CreateSemaphore(None, 0, 10, sn))
    assert w.GetLastError() == w.ERROR_ALREADY_EXISTS
    assert not w.ReleaseSemaphore(s2, 1, None)  # still count 1 of max 1
    assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS
    assert w.WaitForSingleObject(s, 0) == w.WAIT_OBJECT_0

    m = kit.mutex(owned=False, name=mn)
    got: list[tuple[int, int]] = []

    def body() -> None:
        w.SetLastError(SENTINEL)
        h = w.CreateMutex(None, True, mn)  # bInitialOwner ignored for an existing mutex
        got.append((int(h != 0), w.GetLastError()))
        if h:
            assert w.CloseHandle(h)

    kit.thread(body).join()
    assert got == [(1, w.ERROR_ALREADY_EXISTS)]
    assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0  # not abandoned, not owned
    assert w.ReleaseMutex(m)


def test_open_after_last_handle_closed_fails(kit) -> None:
    # spec: win32 §1.1 (temporary objects vanish with their last handle)
    cases = (
        (lambda n: w.CreateEvent(None, True, False, n), w.OpenEvent, w.EVENT_ALL_ACCESS),
        (lambda n: w.CreateSemaphore(None, 0, 1, n), w.OpenSemaphore, w.SEMAPHORE_ALL_ACCESS),
        (lambda n: w.CreateMutex(None, False, n), w.OpenMutex, w.MUTEX_ALL_ACCESS),
        (lambda n: w.CreateWaitableTimer(None, True, n), w.OpenWaitableTimer, w.TIMER_ALL_ACCESS),
    )
    for create, open_fn, access in cases:
        name = kit.name("tmp")
        h = create(name)
        assert h
        h2 = open_fn(access, False, name)
        assert h2
        assert w.CloseHandle(h)
        h3 = open_fn(access, False, name)  # still alive through h2
        assert h3
        assert w.CloseHandle(h2)
        assert w.CloseHandle(h3)
        w.SetLastError(SENTINEL)
        assert open_fn(access, False, name) == w.NULL
        assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND
        # creating the name again makes a new object (no ERROR_ALREADY_EXISTS)
        w.SetLastError(SENTINEL)
        h4 = create(name)
        assert h4
        assert w.GetLastError() == 0
        assert w.CloseHandle(h4)


def test_name_of_another_object_type(kit) -> None:
    # spec: win32 §2.3 named objects (one namespace; type mismatch -> ERROR_INVALID_HANDLE)
    mn = kit.name("mtx")
    m = kit.mutex(name=mn)
    w.SetLastError(SENTINEL)
    assert w.CreateEvent(None, True, False, mn) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.CreateSemaphore(None, 0, 1, mn) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.CreateWaitableTimer(None, True, mn) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.OpenEvent(w.EVENT_ALL_ACCESS, False, mn) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE

    en = kit.name("evt")
    kit.event(name=en)
    w.SetLastError(SENTINEL)
    assert w.CreateMutex(None, False, en) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.OpenMutex(w.MUTEX_ALL_ACCESS, False, en) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.OpenSemaphore(w.SEMAPHORE_ALL_ACCESS, False, en) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    # the mutex itself is untouched
    assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
    assert w.ReleaseMutex(m)


def test_duplicate_handle_refers_to_same_object(kit) -> None:
    # spec: win32 §1.1 (handles are references to ref-counted objects)
    e = w.CreateEvent(None, False, False, None)
    assert e
    out = w.Ref(0)
    proc = w.GetCurrentProcess()
    w.SetLastError(SENTINEL)
    assert w.DuplicateHandle(proc, e, proc, out, 0, False, DUPLICATE_SAME_ACCESS)
    d = kit.keep(int(out.value))
    assert d != e
    assert w.SetEvent(d)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0
    assert w.CloseHandle(e)  # the object lives on through the duplicate
    assert w.SetEvent(d)
    assert w.WaitForSingleObject(d, 0) == w.WAIT_OBJECT_0


def test_duplicate_handle_close_source(kit) -> None:
    # spec: win32 §1.1
    s = w.CreateSemaphore(None, 1, 1, None)
    assert s
    out = w.Ref(0)
    proc = w.GetCurrentProcess()
    opts = DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE
    assert w.DuplicateHandle(proc, s, proc, out, 0, False, opts)
    d = int(out.value)
    if d != s:
        w.SetLastError(SENTINEL)
        assert not w.CloseHandle(s)  # the source was closed by DuplicateHandle
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    kit.keep(d)
    assert w.WaitForSingleObject(d, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(d, 0) == w.WAIT_TIMEOUT


def test_duplicate_current_thread_pseudo_handle(kit) -> None:
    # spec: win32 §1.1 (a duplicated pseudo handle is a real handle to the calling thread)
    got: list[int] = []
    published = kit.event(manual=True)
    go = kit.event(manual=True)

    def body() -> None:
        out = w.Ref(0)
        proc = w.GetCurrentProcess()
        assert w.DuplicateHandle(
            proc, w.GetCurrentThread(), proc, out, 0, False, DUPLICATE_SAME_ACCESS
        )
        got.append(int(out.value))
        assert w.SetEvent(published)
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    assert w.WaitForSingleObject(published, 5000) == w.WAIT_OBJECT_0
    assert got, "thread did not duplicate its pseudo handle"
    real = kit.keep(got[0])
    assert real not in (w.GetCurrentThread(), w.GetCurrentProcess())
    assert w.GetThreadId(real) == t.tid
    assert w.WaitForSingleObject(real, 0) == w.WAIT_TIMEOUT  # the thread is still running
    assert w.SetEvent(go)
    t.join()
    assert w.WaitForSingleObject(real, 5000) == w.WAIT_OBJECT_0
