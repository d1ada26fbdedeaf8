"""Win32 conformance: asynchronous procedure calls (behaviours 27-42).

Wine: k32/sync.c test_QueueUserAPC / test_alertable_wait, nt/sync.c test_delayexecution;
MS: QueueUserAPC, QueueUserAPC2, Asynchronous Procedure Calls.
"""

from __future__ import annotations

import struct
import time

import winaio.win32 as w

SENTINEL = 0xDEADBEEF


def _recorder(log: list, tag: object):
    """An APC routine that appends (tag, data, thread id) to ``log``."""

    def apc(data: object) -> None:
        log.append((tag, data, w.GetCurrentThreadId()))

    return apc


# ---------------------------------------------------------------------------------------------
# #27-#29: queuing and the alertable / non-alertable distinction
# ---------------------------------------------------------------------------------------------


def test_queue_apc_to_self_runs_in_alertable_sleep() -> None:
    # spec: win32 #27
    log: list = []
    me = w.GetCurrentThreadId()
    assert w.QueueUserAPC(_recorder(log, "a"), w.GetCurrentThread(), 1234) != 0
    assert log == []  # not run by queuing
    w.SetLastError(SENTINEL)
    assert w.SleepEx(100, True) == w.WAIT_IO_COMPLETION == 0xC0
    assert w.GetLastError() == SENTINEL
    assert log == [("a", 1234, me)]
    # the queue is empty now
    assert w.SleepEx(0, True) == 0
    assert log == [("a", 1234, me)]


def test_queue_apc_to_blocked_thread_interrupts_alertable_sleep(kit, testing) -> None:
    # spec: win32 #27 (cross-thread: the APC runs in the target, the sleep ends early)
    log: list = []
    result: list[int] = []

    def body() -> None:
        result.append(w.SleepEx(5000, True))

    t = kit.thread(body)
    testing.wait_until_blocked(t.tid)
    w.SetLastError(SENTINEL)
    assert w.QueueUserAPC(_recorder(log, "x"), t.handle, 7) != 0
    t.join()
    assert result == [w.WAIT_IO_COMPLETION]
    assert log == [("x", 7, t.tid)]


def test_sleep_without_apc_returns_zero_and_keeps_last_error() -> None:
    # spec: win32 #28
    w.SetLastError(SENTINEL)
    assert w.SleepEx(0, True) == 0
    assert w.GetLastError() == SENTINEL
    t0 = time.monotonic()
    assert w.SleepEx(10, False) == 0
    assert time.monotonic() - t0 >= 0.008
    assert w.GetLastError() == SENTINEL
    assert w.SleepEx(0, False) == 0
    assert w.SleepEx(10, True) == 0
    assert w.Sleep(0) is None
    assert w.Sleep(10) is None
    assert w.GetLastError() == SENTINEL


def test_apc_not_run_by_non_alertable_calls(kit) -> None:
    # spec: win32 #29 (the kernel-object part; ReadFile/WriteFile/GetQueuedCompletionStatus
    # belong to the I/O layer and are not part of winaio.win32's kernel contract yet)
    log: list = []
    signaled = kit.event(manual=True, initial=True)
    nonsignaled = kit.event(manual=True, initial=False)
    sig = kit.event(manual=False, initial=False)
    assert w.QueueUserAPC(_recorder(log, "a"), w.GetCurrentThread(), 0)
    w.Sleep(10)
    w.Sleep(0)
    assert w.SleepEx(10, False) == 0
    assert w.SleepEx(0, False) == 0
    assert w.WaitForSingleObject(nonsignaled, 10) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(signaled, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObjectEx(nonsignaled, 10, False) == w.WAIT_TIMEOUT
    assert w.WaitForMultipleObjects(1, [nonsignaled], False, 10) == w.WAIT_TIMEOUT
    assert w.WaitForMultipleObjectsEx(1, [nonsignaled], True, 10, False) == w.WAIT_TIMEOUT
    assert w.SignalObjectAndWait(sig, nonsignaled, 10, False) == w.WAIT_TIMEOUT
    assert log == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert len(log) == 1


def test_apc_does_not_interrupt_non_alertable_wait_of_target(kit, testing) -> None:
    # spec: win32 #29 (cross-thread: the blocked non-alertable wait is not interrupted; the
    # APC waits for the target's next alertable wait)
    log: list = []
    go = kit.event(manual=True)
    seen: list = []

    def body() -> None:
        seen.append(w.WaitForSingleObject(go, 5000))
        seen.append(list(log))  # APC must not have run yet
        seen.append(w.SleepEx(10, False))
        seen.append(list(log))
        seen.append(w.SleepEx(0, True))

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(_recorder(log, "a"), t.handle, 0)
    assert t.is_running(100)  # still blocked: the APC did not end the wait
    assert log == []
    assert w.SetEvent(go)
    t.join()
    assert seen == [w.WAIT_OBJECT_0, [], 0, [], w.WAIT_IO_COMPLETION]
    assert log == [("a", 0, t.tid)]


# ---------------------------------------------------------------------------------------------
# #30-#35: dispatch inside one alertable wait
# ---------------------------------------------------------------------------------------------


def test_two_apcs_run_fifo_in_one_wait(kit) -> None:
    # spec: win32 #30
    log: list = []
    e = kit.event(manual=True, initial=False)
    assert w.QueueUserAPC(_recorder(log, "A"), w.GetCurrentThread(), 1)
    assert w.QueueUserAPC(_recorder(log, "B"), w.GetCurrentThread(), 2)
    assert w.WaitForSingleObjectEx(e, 5000, True) == w.WAIT_IO_COMPLETION
    assert [(tag, data) for tag, data, _ in log] == [("A", 1), ("B", 2)]
    assert w.SleepEx(0, True) == 0  # nothing left for a second wait


def test_two_apcs_queued_by_other_thread_run_in_one_wait(kit) -> None:
    # spec: win32 #30 (queued cross-thread before the target's alertable wait)
    log: list = []
    go = kit.event(manual=True)
    never = kit.event(manual=True)
    seen: list = []

    def body() -> None:
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0
        seen.append(w.WaitForMultipleObjectsEx(1, [never], False, 5000, True))
        seen.append(w.SleepEx(0, True))

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    for i in range(5):
        assert w.QueueUserAPC(_recorder(log, i), t.handle, i * 10)
    assert w.SetEvent(go)
    t.join()
    assert seen == [w.WAIT_IO_COMPLETION, 0]
    assert log == [(i, i * 10, t.tid) for i in range(5)]


def test_apc_signaling_waited_object_still_returns_io_completion(kit) -> None:
    # spec: win32 #31 (queued before the wait)
    s = kit.semaphore(0, 1)

    def apc(_data: object) -> None:
        assert w.ReleaseSemaphore(s, 1, None)

    assert w.QueueUserAPC(apc, w.GetCurrentThread(), 0)
    assert w.WaitForSingleObjectEx(s, 5000, True) == w.WAIT_IO_COMPLETION
    assert w.WaitForSingleObjectEx(s, 200, True) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(s, 0) == w.WAIT_TIMEOUT


def test_apc_signaling_waited_object_blocked_thread(kit, testing) -> None:
    # spec: win32 #31 (Wine test_alertable_wait: APC queued while the thread is blocked in a
    # wait-all on the semaphore)
    s = kit.semaphore(0, 1)
    seen: list[int] = []

    def apc(_data: object) -> None:
        assert w.ReleaseSemaphore(s, 1, None)

    def body() -> None:
        seen.append(w.WaitForMultipleObjectsEx(1, [s], True, 5000, True))
        seen.append(w.WaitForMultipleObjectsEx(1, [s], True, 200, True))

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.ReleaseSemaphore(s, 1, None))
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(apc, t.handle, 0)
    t.join()
    assert seen == [w.WAIT_IO_COMPLETION, w.WAIT_OBJECT_0]


def test_signaled_object_beats_queued_apc(kit) -> None:
    # spec: win32 #32
    log: list = []
    manual = kit.event(manual=True, initial=True)
    auto = kit.event(manual=False, initial=True)
    assert w.QueueUserAPC(_recorder(log, "a"), w.GetCurrentThread(), 0)
    assert w.WaitForSingleObjectEx(manual, 0, True) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObjectEx(manual, 5000, True) == w.WAIT_OBJECT_0
    assert w.WaitForMultipleObjectsEx(2, [auto, manual], True, 5000, True) == w.WAIT_OBJECT_0
    assert w.SignalObjectAndWait(auto, auto, 5000, True) == w.WAIT_OBJECT_0
    assert log == []  # still queued
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert len(log) == 1
    assert w.SleepEx(0, True) == 0


def test_signaled_object_beats_queued_apc_in_wait_any(kit) -> None:
    # spec: win32 #32 (wait-any: object at index 1 signaled, APC queued -> WAIT_OBJECT_0+1)
    log: list = []
    a = kit.event(manual=True, initial=False)
    b = kit.event(manual=False, initial=True)
    assert w.QueueUserAPC(_recorder(log, "a"), w.GetCurrentThread(), 0)
    assert w.WaitForMultipleObjectsEx(2, [a, b], False, 5000, True) == w.WAIT_OBJECT_0 + 1
    assert log == []
    assert w.WaitForMultipleObjectsEx(2, [a, b], False, 5000, True) == w.WAIT_IO_COMPLETION
    assert len(log) == 1


def test_apc_queued_during_dispatch_runs_before_return(kit) -> None:
    # spec: win32 #33
    log: list = []
    e = kit.event(manual=True, initial=False)

    def second(data: object) -> None:
        log.append(("B", data))

    def first(data: object) -> None:
        log.append(("A", data))
        assert w.QueueUserAPC(second, w.GetCurrentThread(), 2)

    assert w.QueueUserAPC(first, w.GetCurrentThread(), 1)
    assert w.WaitForSingleObjectEx(e, 5000, True) == w.WAIT_IO_COMPLETION
    assert log == [("A", 1), ("B", 2)]
    assert w.SleepEx(0, True) == 0


def test_apc_queued_during_dispatch_runs_before_return_cross_thread(kit, testing) -> None:
    # spec: win32 #33 (the nested APC is queued to the target by its own running APC)
    log: list = []
    seen: list = []

    def second(data: object) -> None:
        log.append(("B", data, w.GetCurrentThreadId()))

    def first(data: object) -> None:
        log.append(("A", data, w.GetCurrentThreadId()))
        assert w.QueueUserAPC(second, w.GetCurrentThread(), 2)

    def body() -> None:
        seen.append(w.SleepEx(5000, True))
        seen.append(list(log))

    t = kit.thread(body)
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(first, t.handle, 1)
    t.join()
    assert seen == [w.WAIT_IO_COMPLETION, [("A", 1, t.tid), ("B", 2, t.tid)]]


def test_apcs_doing_non_alertable_waits_complete_in_one_alertable_wait(kit, testing) -> None:
    # spec: win32 #34 (Wine test_alertable_wait, with WaitForMultipleObjectsEx standing in for
    # NtWaitForMultipleObjects: STATUS_USER_APC == WAIT_IO_COMPLETION)
    s0 = kit.semaphore(0, 2)
    s1 = kit.semaphore(0, 1)
    apc_results: list[int] = []
    seen: list[int] = []

    def apc(_data: object) -> None:
        apc_results.append(w.WaitForSingleObject(s0, 5000))

    def body() -> None:
        seen.append(w.WaitForMultipleObjectsEx(1, [s1], False, 5000, True))
        seen.append(w.WaitForSingleObject(s0, 0))

    t = kit.thread(body)
    kit.on_cleanup(lambda: (w.ReleaseSemaphore(s0, 2, None), w.ReleaseSemaphore(s1, 1, None)))
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(apc, t.handle, 0)
    assert w.QueueUserAPC(apc, t.handle, 0)
    assert w.ReleaseSemaphore(s0, 2, None)
    t.join()
    assert apc_results == [w.WAIT_OBJECT_0, w.WAIT_OBJECT_0]
    assert seen == [w.WAIT_IO_COMPLETION, w.WAIT_TIMEOUT]


def test_wait_all_alertable_interrupted_by_apc(kit, testing) -> None:
    # spec: win32 #35
    e1 = kit.event(manual=True, initial=True)
    e2 = kit.event(manual=True, initial=False)
    log: list = []
    seen: list[int] = []

    def body() -> None:
        seen.append(w.WaitForMultipleObjectsEx(2, [e1, e2], True, 5000, True))

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(e2))
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(_recorder(log, "a"), t.handle, 0)
    t.join()
    assert seen == [w.WAIT_IO_COMPLETION]
    assert log == [("a", 0, t.tid)]
    assert w.WaitForSingleObject(e1, 0) == w.WAIT_OBJECT_0  # untouched
    assert w.WaitForSingleObject(e2, 0) == w.WAIT_TIMEOUT


def test_wait_all_alertable_with_queued_apc_at_entry(kit) -> None:
    # spec: win32 #35 (the APC is already queued when the wait-all starts)
    e1 = kit.event(manual=False, initial=True)
    e2 = kit.event(manual=False, initial=False)
    log: list = []
    assert w.QueueUserAPC(_recorder(log, "a"), w.GetCurrentThread(), 0)
    assert w.WaitForMultipleObjectsEx(2, [e1, e2], True, 5000, True) == w.WAIT_IO_COMPLETION
    assert len(log) == 1
    assert w.WaitForSingleObject(e1, 0) == w.WAIT_OBJECT_0  # not consumed


# ---------------------------------------------------------------------------------------------
# #36-#38: APCs and thread lifetime
# ---------------------------------------------------------------------------------------------


def test_queue_apc_to_terminated_thread_fails(kit) -> None:
    # spec: win32 #36 (Wine: a suspended thread terminated before it ran)
    log: list = []
    t = kit.thread(lambda: None, suspended=True, terminated_ok=True)
    assert w.TerminateThread(t.handle, 0xDEADBEEF)
    assert t.join() == 0xDEADBEEF
    w.SetLastError(SENTINEL)
    assert w.QueueUserAPC(_recorder(log, "a"), t.handle, 0) == 0
    assert w.GetLastError() == w.ERROR_GEN_FAILURE == 31
    assert not t.started  # a thread terminated while suspended never ran its routine
    assert log == []


def test_queue_apc_to_finished_thread_fails(kit) -> None:
    # spec: win32 #36 (a thread that returned normally)
    log: list = []
    t = kit.thread(lambda: 5)
    assert t.join() == 5
    w.SetLastError(SENTINEL)
    assert w.QueueUserAPC(_recorder(log, "a"), t.handle, 0) == 0
    assert w.GetLastError() == w.ERROR_GEN_FAILURE
    w.SetLastError(SENTINEL)
    assert not w.QueueUserAPC2(_recorder(log, "b"), t.handle, 0, w.QUEUE_USER_APC_FLAGS_NONE)
    assert w.GetLastError() == w.ERROR_GEN_FAILURE
    assert log == []


def test_apc_to_suspended_thread_runs_before_start_routine(kit) -> None:
    # spec: win32 #37
    log: list = []

    def body() -> int:
        log.append(("start", None, w.GetCurrentThreadId()))
        return 0

    t = kit.thread(body, suspended=True)
    code = w.Ref(0)
    assert w.GetExitCodeThread(t.handle, code)
    assert code.value == w.STILL_ACTIVE == 259
    assert w.QueueUserAPC(_recorder(log, "apc1"), t.handle, 1)
    assert w.QueueUserAPC(_recorder(log, "apc2"), t.handle, 2)
    assert t.is_running(50)
    assert log == []
    assert w.ResumeThread(t.handle) == 1
    assert t.join() == 0
    assert log == [("apc1", 1, t.tid), ("apc2", 2, t.tid), ("start", None, t.tid)]


def test_apcs_pending_at_thread_end_are_discarded(kit, testing) -> None:
    # spec: win32 #38
    log: list = []
    go = kit.event(manual=True)

    def body() -> int:
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0
        return 3

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(_recorder(log, "a"), t.handle, 0)
    assert w.QueueUserAPC2(_recorder(log, "b"), t.handle, 0, w.QUEUE_USER_APC_FLAGS_NONE)
    assert w.SetEvent(go)
    assert t.join() == 3
    assert log == []
    assert w.QueueUserAPC(_recorder(log, "c"), t.handle, 0) == 0
    assert log == []


def test_apcs_pending_at_exit_thread_are_discarded(kit, testing) -> None:
    # spec: win32 #38 (ExitThread)
    log: list = []
    go = kit.event(manual=True)

    def body() -> None:
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0
        w.ExitThread(9)
        raise AssertionError("ExitThread returned")

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(_recorder(log, "a"), t.handle, 0)
    assert w.SetEvent(go)
    assert t.join() == 9
    assert log == []


# ---------------------------------------------------------------------------------------------
# #39-#42: NtTestAlert and QueueUserAPC2
# ---------------------------------------------------------------------------------------------


def test_nt_test_alert_runs_pending_apcs_once() -> None:
    # spec: win32 #39
    log: list = []
    assert w.QueueUserAPC(_recorder(log, "a"), w.GetCurrentThread(), 1)
    assert w.QueueUserAPC(_recorder(log, "b"), w.GetCurrentThread(), 2)
    assert w.NtTestAlert() == 0
    assert [(tag, data) for tag, data, _ in log] == [("a", 1), ("b", 2)]
    assert w.NtTestAlert() == 0
    assert len(log) == 2
    assert w.SleepEx(0, True) == 0


def test_nt_test_alert_without_apcs() -> None:
    # spec: win32 #39
    w.SetLastError(SENTINEL)
    assert w.NtTestAlert() == 0
    assert w.NtTestAlert() == 0


def test_queue_user_apc2_none_behaves_like_queue_user_apc() -> None:
    # spec: win32 #40
    log: list = []
    w.SetLastError(SENTINEL)
    assert w.QueueUserAPC2(
        _recorder(log, "a"), w.GetCurrentThread(), 5, w.QUEUE_USER_APC_FLAGS_NONE
    )
    assert log == []
    assert w.SleepEx(10, False) == 0
    assert log == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert [(tag, data) for tag, data, _ in log] == [("a", 5)]
    assert w.SleepEx(0, True) == 0


def test_queue_user_apc2_interleaves_fifo_with_queue_user_apc() -> None:
    # spec: win32 #40 (one queue, FIFO across both producers)
    log: list = []
    me = w.GetCurrentThread()
    assert w.QueueUserAPC(_recorder(log, 1), me, 0)
    assert w.QueueUserAPC2(_recorder(log, 2), me, 0, w.QUEUE_USER_APC_FLAGS_NONE)
    assert w.QueueUserAPC(_recorder(log, 3), me, 0)
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert [tag for tag, _, _ in log] == [1, 2, 3]


def test_queue_user_apc2_callback_data_context() -> None:
    # spec: win32 #40 (QUEUE_USER_APC_CALLBACK_DATA_CONTEXT passes an APC_CALLBACK_DATA)
    got: list = []
    payload = object()

    def apc(cb: object) -> None:
        got.append(cb)

    assert w.QUEUE_USER_APC_CALLBACK_DATA_CONTEXT == 0x10000
    assert w.QueueUserAPC2(
        apc, w.GetCurrentThread(), payload, w.QUEUE_USER_APC_CALLBACK_DATA_CONTEXT
    )
    assert got == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert len(got) == 1
    cb = got[0]
    assert cb is not payload
    assert cb.Parameter is payload
    assert cb.ContextRecord is None
    assert hasattr(cb, "Reserved0")
    assert hasattr(cb, "Reserved1")


def test_special_apc_to_self_runs_before_return() -> None:
    # spec: win32 #41
    log: list = []
    is_64bit = struct.calcsize("P") == 8
    w.SetLastError(SENTINEL)
    ok = w.QueueUserAPC2(
        _recorder(log, "s"), w.GetCurrentThread(), 0, w.QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC
    )
    if not is_64bit:
        assert not ok
        assert w.GetLastError() == w.ERROR_NOT_SUPPORTED == 50
        assert log == []
        return
    assert ok
    assert [(tag, data) for tag, data, _ in log] == [("s", 0)]
    assert w.SleepEx(0, True) == 0  # not run again
    assert len(log) == 1


def test_special_apc_to_self_with_ordinary_apc_queued() -> None:
    # spec: win32 #41 (the special APC does not drain the ordinary queue)
    log: list = []
    me = w.GetCurrentThread()
    assert w.QueueUserAPC(_recorder(log, "normal"), me, 0)
    assert w.QueueUserAPC2(
        _recorder(log, "special"), me, 0, w.QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC
    )
    assert [tag for tag, _, _ in log] == ["special"]
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert [tag for tag, _, _ in log] == ["special", "normal"]


def test_special_apc_waits_for_non_alertable_wait_to_finish(kit, testing) -> None:
    # spec: win32 #42
    log: list = []
    go = kit.event(manual=True)
    seen: list = []

    def body() -> None:
        seen.append(w.WaitForSingleObject(go, 5000))
        # runs "after that call completes": by the time the wait has returned to the caller
        seen.append([tag for tag, _, _ in log])

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC2(
        _recorder(log, "special"), t.handle, 42, w.QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC
    )
    assert t.is_running(100)  # the wait was not interrupted
    assert log == []
    assert w.SetEvent(go)
    t.join()
    assert seen == [w.WAIT_OBJECT_0, ["special"]]
    assert log == [("special", 42, t.tid)]
