"""Win32 conformance: invalid arguments. Every failure returns the documented failure value
and sets the documented last-error; failures have no side effect on valid objects.

§0 conventions, §1.1 handles, §2.1 step 1 validation, §2.3 object operations.
"""

from __future__ import annotations

import winaio.win32 as w

# DuplicateHandle options (winnt.h). Literal values so that behavioural tests do not depend on
# the alias layer exporting the names; test_constants checks the exports.
DUPLICATE_CLOSE_SOURCE = 0x1
DUPLICATE_SAME_ACCESS = 0x2

SENTINEL = 0xDEADBEEF
BOGUS = 0xDEADBEE0


def _closed_event() -> int:
    h = w.CreateEvent(None, True, True, None)
    assert h
    assert w.CloseHandle(h)
    return h


def test_constants() -> None:
    # spec: win32 §1.6 (the values the tests compare against)
    assert (w.TRUE, w.FALSE, w.NULL) == (True, False, 0)
    assert w.INFINITE == 0xFFFFFFFF
    assert w.INVALID_HANDLE_VALUE == -1
    assert w.MAXIMUM_WAIT_OBJECTS == 64
    assert w.WAIT_OBJECT_0 == 0
    assert w.WAIT_ABANDONED_0 == w.WAIT_ABANDONED == 0x80
    assert w.WAIT_IO_COMPLETION == 0xC0
    assert w.WAIT_TIMEOUT == 0x102
    assert w.WAIT_FAILED == 0xFFFFFFFF
    assert w.ERROR_INVALID_HANDLE == 6
    assert w.ERROR_INVALID_PARAMETER == 87
    assert w.ERROR_FILE_NOT_FOUND == 2
    assert w.ERROR_GEN_FAILURE == 31
    assert w.ERROR_NOT_SUPPORTED == 50
    assert w.ERROR_ALREADY_EXISTS == 183
    assert w.ERROR_NOT_OWNER == 288
    assert w.ERROR_TOO_MANY_POSTS == 298
    assert w.STATUS_USER_APC == 0xC0
    assert w.STATUS_PENDING == 0x103
    assert w.CREATE_SUSPENDED == 4
    assert w.STILL_ACTIVE == 259
    assert (w.DUPLICATE_CLOSE_SOURCE, w.DUPLICATE_SAME_ACCESS) == (1, 2)
    assert w.SYNCHRONIZE == 0x00100000
    assert w.EVENT_MODIFY_STATE == 2
    assert w.EVENT_ALL_ACCESS == 0x1F0003
    assert w.SEMAPHORE_MODIFY_STATE == 2
    assert w.MUTEX_MODIFY_STATE == 1
    assert w.TIMER_MODIFY_STATE == 2
    for name in ("SEMAPHORE_ALL_ACCESS", "MUTEX_ALL_ACCESS", "TIMER_ALL_ACCESS"):
        assert getattr(w, name) & w.SYNCHRONIZE, name
    assert w.QUEUE_USER_APC_FLAGS_NONE == 0
    assert w.QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC == 1


# ---------------------------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------------------------


def test_close_handle_twice(kit) -> None:
    # spec: win32 §1.1 / #3
    h = w.CreateEvent(None, False, False, None)
    assert h
    w.SetLastError(SENTINEL)
    assert w.CloseHandle(h)
    assert not w.CloseHandle(h)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_close_invalid_handles() -> None:
    # spec: win32 §1.1 / #3
    for h in (w.NULL, BOGUS, BOGUS | 1):
        w.SetLastError(SENTINEL)
        assert not w.CloseHandle(h)
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_closed_handle_is_invalid_everywhere(kit) -> None:
    # spec: win32 #3 (every operation on a closed handle -> ERROR_INVALID_HANDLE)
    h = _closed_event()
    calls = {
        "SetEvent": lambda: w.SetEvent(h),
        "ResetEvent": lambda: w.ResetEvent(h),
        "PulseEvent": lambda: w.PulseEvent(h),
        "ReleaseSemaphore": lambda: w.ReleaseSemaphore(h, 1, None),
        "ReleaseMutex": lambda: w.ReleaseMutex(h),
        "SetWaitableTimer": lambda: w.SetWaitableTimer(h, -1, 0, None, None, False),
        "CancelWaitableTimer": lambda: w.CancelWaitableTimer(h),
        "TerminateThread": lambda: w.TerminateThread(h, 0),
        "GetExitCodeThread": lambda: w.GetExitCodeThread(h, w.Ref(0)),
    }
    for name, call in calls.items():
        w.SetLastError(SENTINEL)
        assert not call(), name
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE, name
    for bad in (h, BOGUS):
        w.SetLastError(SENTINEL)
        assert w.QueueUserAPC(lambda _d: None, bad, 0) == 0
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        w.SetLastError(SENTINEL)
        assert w.GetThreadId(bad) == 0
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_wrong_object_type(kit) -> None:
    # spec: win32 §1.7 (STATUS_OBJECT_TYPE_MISMATCH -> ERROR_INVALID_HANDLE)
    e = kit.event(manual=True, initial=False)
    s = kit.semaphore(0, 1)
    m = kit.mutex()
    t = kit.timer(manual=True)
    cases = [
        ("SetEvent(mutex)", lambda: w.SetEvent(m)),
        ("SetEvent(semaphore)", lambda: w.SetEvent(s)),
        ("ResetEvent(timer)", lambda: w.ResetEvent(t)),
        ("PulseEvent(semaphore)", lambda: w.PulseEvent(s)),
        ("ReleaseSemaphore(event)", lambda: w.ReleaseSemaphore(e, 1, None)),
        ("ReleaseSemaphore(mutex)", lambda: w.ReleaseSemaphore(m, 1, None)),
        ("ReleaseMutex(event)", lambda: w.ReleaseMutex(e)),
        ("ReleaseMutex(semaphore)", lambda: w.ReleaseMutex(s)),
        ("SetWaitableTimer(event)", lambda: w.SetWaitableTimer(e, -1, 0, None, None, False)),
        ("CancelWaitableTimer(mutex)", lambda: w.CancelWaitableTimer(m)),
        ("GetExitCodeThread(event)", lambda: w.GetExitCodeThread(e, w.Ref(0))),
        ("TerminateThread(event)", lambda: w.TerminateThread(e, 0)),
    ]
    for name, call in cases:
        w.SetLastError(SENTINEL)
        assert not call(), name
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE, name
    w.SetLastError(SENTINEL)
    assert w.QueueUserAPC(lambda _d: None, e, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.ResumeThread(e) == 0xFFFFFFFF
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    # none of the failed calls changed a state
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(s, 0) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(t, 0) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
    assert w.ReleaseMutex(m)


def test_duplicate_handle_invalid_arguments(kit) -> None:
    # spec: win32 §1.1
    e = kit.event()
    proc = w.GetCurrentProcess()
    out = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert not w.DuplicateHandle(proc, BOGUS, proc, out, 0, False, DUPLICATE_SAME_ACCESS)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    closed = _closed_event()
    w.SetLastError(SENTINEL)
    assert not w.DuplicateHandle(proc, closed, proc, out, 0, False, DUPLICATE_SAME_ACCESS)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert not w.DuplicateHandle(BOGUS, e, proc, out, 0, False, DUPLICATE_SAME_ACCESS)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert not w.DuplicateHandle(proc, e, w.NULL, out, 0, False, DUPLICATE_SAME_ACCESS)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    # the source is still valid after the failures
    assert w.SetEvent(e)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0


# ---------------------------------------------------------------------------------------------
# Waits (§2.1 step 1)
# ---------------------------------------------------------------------------------------------


def test_wait_multiple_with_one_invalid_handle_touches_nothing(kit) -> None:
    # spec: win32 #3 (§2.1: validation happens before any object is checked)
    auto = kit.event(manual=False, initial=True)
    sem = kit.semaphore(1, 1)
    for bad in (BOGUS, _closed_event(), w.NULL):
        for wait_all in (False, True):
            w.SetLastError(SENTINEL)
            r = w.WaitForMultipleObjects(3, [auto, sem, bad], wait_all, 0)
            assert r == w.WAIT_FAILED, (bad, wait_all)
            assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(sem, 0) == w.WAIT_OBJECT_0


def test_wait_multiple_bad_counts(kit) -> None:
    # spec: win32 #7
    events = [kit.event(manual=True, initial=True) for _ in range(65)]
    for count in (0, 65):
        for alertable in (False, True):
            w.SetLastError(SENTINEL)
            r = w.WaitForMultipleObjectsEx(count, events[:count], False, 0, alertable)
            assert r == w.WAIT_FAILED, count
            assert w.GetLastError() == w.ERROR_INVALID_PARAMETER, count


def test_wait_multiple_duplicate_handles(kit) -> None:
    # spec: win32 §2.1 step 1 (the array may not contain the same handle twice)
    auto = kit.event(manual=False, initial=True)
    other = kit.event(manual=True, initial=False)
    for wait_all in (False, True):
        for handles in ([auto, auto], [other, auto, auto], [auto, other, auto]):
            w.SetLastError(SENTINEL)
            r = w.WaitForMultipleObjects(len(handles), handles, wait_all, 0)
            assert r == w.WAIT_FAILED, (handles, wait_all)
            assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0  # not consumed


def test_signal_and_wait_bad_signal_handle_does_not_wait(kit) -> None:
    # spec: win32 #21 (an invalid signal handle: failure without consuming the wait object)
    auto = kit.event(manual=False, initial=True)
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(BOGUS, auto, 0, False) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0


# ---------------------------------------------------------------------------------------------
# Object operations (§2.3)
# ---------------------------------------------------------------------------------------------


def test_release_semaphore_non_positive_count(kit) -> None:
    # spec: win32 §2.3 (ReleaseSemaphore n <= 0 -> ERROR_INVALID_PARAMETER)
    s = kit.semaphore(0, 5)
    for n in (0, -1):
        prev = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        assert not w.ReleaseSemaphore(s, n, prev), n
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER, n
        assert prev.value == SENTINEL
    assert w.WaitForSingleObject(s, 0) == w.WAIT_TIMEOUT  # count still 0
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s, 5, prev)
    assert prev.value == 0


def test_release_semaphore_huge_count(kit) -> None:
    # spec: win32 #16 (an overflowing count is "over max", not a wrap-around)
    s = kit.semaphore(1, 0x7FFFFFFF)
    w.SetLastError(SENTINEL)
    assert not w.ReleaseSemaphore(s, 0x7FFFFFFF, None)
    assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(s, 1, prev)
    assert prev.value == 1


def test_create_semaphore_invalid_counts() -> None:
    # spec: win32 #15
    for initial, maximum in ((-1, 5), (0, 0), (0, -5), (3, 2)):
        w.SetLastError(SENTINEL)
        assert w.CreateSemaphore(None, initial, maximum, None) == w.NULL
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


def test_create_invalid_semaphore_with_name_creates_nothing(kit) -> None:
    # spec: win32 #15 (a failed named creation leaves no object behind)
    name = kit.name("badsem")
    assert w.CreateSemaphore(None, 2, 1, name) == w.NULL
    w.SetLastError(SENTINEL)
    assert w.OpenSemaphore(w.SEMAPHORE_ALL_ACCESS, False, name) == w.NULL
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND


def test_release_mutex_never_owned_and_after_full_release(kit) -> None:
    # spec: win32 #17
    m = kit.mutex(owned=True)
    assert w.ReleaseMutex(m)
    for _ in range(2):
        w.SetLastError(SENTINEL)
        assert not w.ReleaseMutex(m)
        assert w.GetLastError() == w.ERROR_NOT_OWNER


def test_set_waitable_timer_negative_period(kit) -> None:
    # spec: win32 #43
    t = kit.timer()
    w.SetLastError(SENTINEL)
    assert not w.SetWaitableTimer(t, -10000, -1, None, None, False)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert not w.SetWaitableTimer(t, 10000, -100, None, None, False)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert w.WaitForSingleObject(t, 30) == w.WAIT_TIMEOUT


def test_named_object_name_collisions(kit) -> None:
    # spec: win32 §2.3 named objects (existing name of another type -> ERROR_INVALID_HANDLE)
    sn = kit.name("sem")
    kit.semaphore(0, 1, name=sn)
    for create in (
        lambda: w.CreateEvent(None, True, False, sn),
        lambda: w.CreateMutex(None, False, sn),
        lambda: w.CreateWaitableTimer(None, True, sn),
    ):
        w.SetLastError(SENTINEL)
        assert create() == w.NULL
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    tn = kit.name("timer")
    kit.timer(name=tn)
    w.SetLastError(SENTINEL)
    assert w.CreateSemaphore(None, 0, 1, tn) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.OpenWaitableTimer(w.TIMER_ALL_ACCESS, False, sn) == w.NULL
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_create_existing_name_returns_already_exists_for_every_type(kit) -> None:
    # spec: win32 §2.3 named objects
    creators = (
        lambda n: w.CreateEvent(None, False, False, n),
        lambda n: w.CreateSemaphore(None, 0, 3, n),
        lambda n: w.CreateMutex(None, False, n),
        lambda n: w.CreateWaitableTimer(None, False, n),
    )
    for create in creators:
        name = kit.name("dup")
        w.SetLastError(SENTINEL)
        h1 = kit.keep(create(name))
        assert w.GetLastError() == 0
        w.SetLastError(SENTINEL)
        h2 = kit.keep(create(name))
        assert w.GetLastError() == w.ERROR_ALREADY_EXISTS
        assert h1 != h2
