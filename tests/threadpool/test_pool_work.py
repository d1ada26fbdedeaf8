"""The Pythonic thread pool: workers, submit/call, work objects, instances, sizing, closing.

Behaviours from win32-async-spec §9 and Wine's threadpool tests (test_tp_simple, test_tp_work,
test_tp_work_scheduler, test_tp_instance, test_tp_disassociate), plus the completion-port rules
the workers obey (§6.7).
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest

import winaio
from winaio.codes import WaitCode, WinError
from winaio.errors import Win32Error
from winaio.testing import wait_until

LONG = 5.0
SHORT = 0.1


def test_submit_runs_on_a_named_worker_that_is_a_port_thread(
    pool: winaio.ThreadPool, recorder
) -> None:
    rec = recorder()
    seen: list[Any] = []

    def body(x: int) -> None:
        seen.append((threading.current_thread().name, winaio.current_thread().state.block_listener))
        rec(x)

    pool.submit(body, 7)
    rec.wait()
    assert rec.calls == [(7,)]
    name, listener = seen[0]
    assert name.startswith("winaio-worker-")
    assert listener is pool.port  # a port thread: associated with the pool's port (§6.7)


def test_call_result_exception_and_waitable(pool: winaio.ThreadPool) -> None:
    call = pool.call(lambda a, b: a + b, 2, 3)
    assert winaio.wait(call, LONG).signaled
    assert call.done() and call.result() == 5 and call.exception() is None

    def boom() -> None:
        raise KeyError("x")

    failed = pool.call(boom)
    with pytest.raises(KeyError):
        failed.result(LONG)
    assert isinstance(failed.exception(), KeyError)


def test_call_cancel_before_start_and_result_timeout(make_pool) -> None:
    pool = make_pool(max_threads=1)
    gate = winaio.Event(manual_reset=True)
    blocker = pool.call(winaio.wait, gate)
    queued = pool.call(lambda: "never")
    with pytest.raises(Win32Error) as info:
        queued.result(SHORT)
    assert info.value.winerror == WaitCode.WAIT_TIMEOUT
    assert queued.cancel() and queued.cancelled() and queued.done()
    assert winaio.wait(queued, 0).signaled
    with pytest.raises(Win32Error) as info:
        queued.result()
    assert info.value.winerror == WinError.ERROR_OPERATION_ABORTED
    gate.set()
    assert blocker.result(LONG).signaled
    assert not blocker.cancel()  # already done


def test_work_runs_once_per_submit_and_wait_blocks_until_done(make_pool, recorder) -> None:
    # [W:nt/threadpool.c:test_tp_work]: 5 submits -> 5 callbacks, WaitForWork waits for them.
    pool = make_pool(max_threads=1)
    rec = recorder()
    instances: list[Any] = []

    def callback(instance: winaio.CallbackInstance, tag: str) -> None:
        instances.append(instance)
        winaio.sleep(0.01)
        rec(tag)

    work = pool.create_work(callback, "t")
    for _ in range(5):
        work.submit()
    work.wait_callbacks()
    assert rec.calls == [("t",)] * 5
    assert all(i.object is work for i in instances)
    work.close()


def test_wait_callbacks_cancel_pending_drops_queued_callbacks(make_pool, recorder) -> None:
    pool = make_pool(max_threads=1)
    rec = recorder()
    gate = winaio.Event(manual_reset=True)
    started = winaio.Event(manual_reset=True)

    def callback(instance: winaio.CallbackInstance) -> None:
        started.set()
        winaio.wait(gate, LONG)
        rec()

    work = pool.create_work(callback)
    for _ in range(10):
        work.submit()
    assert winaio.wait(started, LONG).signaled
    threading.Timer(0.05, gate.set).start()
    work.wait_callbacks(cancel_pending=True)
    assert len(rec.calls) == 1  # the running one finished; the 9 queued ones were dropped
    work.close()


def test_two_busy_work_objects_alternate(make_pool) -> None:
    # [W:nt/threadpool.c:test_tp_work_scheduler]: 'work' callbacks do not block 'work2' ones.
    pool = make_pool(max_threads=1)
    order: list[str] = []
    gate = winaio.Event(manual_reset=True)
    pool.submit(winaio.wait, gate, LONG)  # hold the only worker while both objects queue up
    first = pool.create_work(lambda i: order.append("a"))
    second = pool.create_work(lambda i: order.append("b"))
    for _ in range(3):
        first.submit()
    for _ in range(3):
        second.submit()
    gate.set()
    first.wait_callbacks()
    second.wait_callbacks()
    assert order == ["a", "b", "a", "b", "a", "b"]
    first.close()
    second.close()


def test_priorities_high_before_normal_before_low(make_pool) -> None:
    pool = make_pool(max_threads=1)
    gate = winaio.Event(manual_reset=True)
    order: list[str] = []
    pool.submit(winaio.wait, gate)
    works = []
    for name, priority in (("low", 2), ("normal", 1), ("high", 0)):
        env = winaio.CallbackEnvironment(priority=winaio.CallbackPriority(priority))
        work = pool.create_work(lambda i, n=name: order.append(n), environment=env)
        work.submit()
        works.append(work)
    gate.set()
    for work in works:
        work.wait_callbacks()
        work.close()
    assert order == ["high", "normal", "low"]


def test_instance_actions_run_after_finalization(pool: winaio.ThreadPool) -> None:
    # [W:nt/threadpool.c:test_tp_instance]; order: finalization, mutex, semaphore, event.
    event = winaio.Event(manual_reset=True)
    sem = winaio.Semaphore(0, 5)
    mutex = winaio.Mutex()
    log: list[str] = []

    def callback(instance: winaio.CallbackInstance) -> None:
        assert winaio.wait(mutex, LONG).signaled  # the worker owns it now
        instance.release_mutex_on_return(mutex)
        instance.release_semaphore_on_return(sem, 2)
        instance.set_event_on_return(event)
        instance.set_event_on_return(winaio.Event())  # the first one set wins
        log.append("callback")

    def finalize(instance: winaio.CallbackInstance, context: Any) -> None:
        log.append(f"finalize {context}")
        assert mutex.owner_thread_id == threading.get_native_id()
        assert not event.is_set() and sem.count == 0

    env = winaio.CallbackEnvironment(finalization_callback=finalize)
    work = pool.create_work(callback, environment=env, context="ctx")
    work.submit()
    assert winaio.wait(event, LONG).signaled
    assert log == ["callback", "finalize ctx"]
    assert sem.count == 2
    assert mutex.owner_thread_id is None  # released by the worker after the callback
    work.close()


def test_instance_is_only_valid_during_its_callback(pool: winaio.ThreadPool) -> None:
    kept: list[winaio.CallbackInstance] = []
    work = pool.create_work(lambda instance: kept.append(instance))
    work.submit()
    work.wait_callbacks()
    with pytest.raises(Win32Error) as info:
        kept[0].set_event_on_return(winaio.Event())
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    work.close()


def test_instance_rejects_wrong_objects(pool: winaio.ThreadPool) -> None:
    errors: list[int] = []

    def callback(instance: winaio.CallbackInstance) -> None:
        for call in (
            lambda: instance.set_event_on_return(winaio.Semaphore(0, 1)),  # type: ignore[arg-type]
            lambda: instance.release_semaphore_on_return(winaio.Event()),  # type: ignore[arg-type]
            lambda: instance.release_semaphore_on_return(winaio.Semaphore(0, 1), 0),
            lambda: instance.release_mutex_on_return(winaio.Event()),  # type: ignore[arg-type]
        ):
            try:
                call()
            except Win32Error as exc:
                errors.append(exc.winerror)

    work = pool.create_work(callback)
    work.submit()
    work.wait_callbacks()
    work.close()
    assert errors == [
        WinError.ERROR_INVALID_HANDLE,
        WinError.ERROR_INVALID_HANDLE,
        WinError.ERROR_INVALID_PARAMETER,
        WinError.ERROR_INVALID_HANDLE,
    ]


def test_disassociate_lets_wait_callbacks_return(pool: winaio.ThreadPool) -> None:
    # [W:nt/threadpool.c:test_tp_disassociate]
    gate = winaio.Event(manual_reset=True)
    done = winaio.Event(manual_reset=True)

    def callback(instance: winaio.CallbackInstance) -> None:
        instance.disassociate()
        instance.disassociate()  # idempotent
        winaio.wait(gate, LONG)
        done.set()

    work = pool.create_work(callback)
    work.submit()
    work.wait_callbacks()  # returns although the callback still runs
    assert not done.is_set()
    gate.set()
    assert winaio.wait(done, LONG).signaled
    work.close()


def test_wait_callbacks_from_its_own_callback_does_not_deadlock(pool: winaio.ThreadPool) -> None:
    done = winaio.Event(manual_reset=True)

    def callback(instance: winaio.CallbackInstance) -> None:
        work.wait_callbacks()  # would deadlock on Windows; here it does not wait for itself
        done.set()

    work = pool.create_work(callback)
    work.submit()
    assert winaio.wait(done, LONG).signaled
    work.wait_callbacks()
    work.close()


def test_concurrency_value_limits_running_callbacks(make_pool) -> None:
    # §6.7: concurrency 1 -> a callback that keeps running (no kernel wait) holds the only slot
    # even though more workers are allowed; may_run_long() gives the slot up.
    pool = make_pool(max_threads=4, concurrency=1)
    second_ran = winaio.Event(manual_reset=True)
    release = threading.Event()  # a plain Python event: invisible to the port's accounting
    may: list[bool] = []

    def first(instance: winaio.CallbackInstance) -> None:
        pool.submit(second_ran.set)
        release.wait(SHORT)  # a non-winaio block: the slot stays taken
        assert not second_ran.is_set()  # still held back by the concurrency value
        may.append(instance.may_run_long())
        assert winaio.wait(second_ran, LONG).signaled
        release.set()

    work = pool.create_work(first)
    work.submit()
    work.wait_callbacks()
    assert may == [True]
    work.close()


def test_a_callback_blocked_in_a_kernel_wait_frees_its_slot(make_pool) -> None:
    pool = make_pool(max_threads=4, concurrency=1)
    gate = winaio.Event(manual_reset=True)
    other = winaio.Event(manual_reset=True)
    pool.submit(winaio.wait, gate, LONG)  # blocks in a winaio wait: running(P) drops
    pool.submit(other.set)
    assert winaio.wait(other, LONG).signaled
    gate.set()


def test_may_run_long_is_false_when_no_thread_can_be_added(make_pool) -> None:
    # [W:nt/threadpool.c:test_tp_group_cancel]: one thread max -> STATUS_TOO_MANY_THREADS.
    pool = make_pool(max_threads=1)
    result = pool.call(lambda: None)
    result.result(LONG)
    answers: list[bool] = []
    work = pool.create_work(lambda instance: answers.append(instance.may_run_long()))
    work.submit()
    work.wait_callbacks()
    work.close()
    env = winaio.CallbackEnvironment(long_function=True)
    work = pool.create_work(
        lambda instance: answers.append(instance.may_run_long()), environment=env
    )
    work.submit()
    work.wait_callbacks()
    work.close()
    assert answers == [False, True]


def test_workers_grow_to_the_maximum_and_no_further(make_pool) -> None:
    pool = make_pool(max_threads=3, concurrency=3)
    gate = winaio.Event(manual_reset=True)
    running = winaio.Semaphore(0, 10)

    def block() -> None:
        running.release()
        winaio.wait(gate, LONG)

    for _ in range(5):
        pool.submit(block)
    for _ in range(3):
        assert winaio.wait(running, LONG).signaled
    assert winaio.wait(running, SHORT).timed_out
    assert pool.thread_count == 3
    gate.set()
    for _ in range(2):
        assert winaio.wait(running, LONG).signaled


def test_idle_workers_retire_down_to_the_minimum(make_pool) -> None:
    pool = make_pool(max_threads=4, min_threads=1, idle_timeout=0.05, concurrency=4)
    assert pool.thread_count == 1
    gate = winaio.Event(manual_reset=True)
    running = winaio.Semaphore(0, 10)
    for _ in range(3):
        pool.submit(lambda: (running.release(), winaio.wait(gate, LONG)))
    for _ in range(3):
        assert winaio.wait(running, LONG).signaled
    assert pool.thread_count >= 3
    gate.set()
    wait_until(lambda: pool.thread_count == 1, LONG, "workers retire")
    pool.set_min_threads(2)
    assert pool.thread_count == 2 and pool.min_threads == 2
    pool.set_max_threads(0)
    assert pool.max_threads == 1 and pool.min_threads == 1


def test_close_runs_queued_callbacks_and_joins(make_pool) -> None:
    pool = make_pool(max_threads=2)
    ran: list[int] = []
    for i in range(50):
        pool.submit(ran.append, i)
    pool.close()
    assert sorted(ran) == list(range(50))
    assert pool.thread_count == 0 and pool.closed
    with pytest.raises(Win32Error) as info:
        pool.submit(print)
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
    with pytest.raises(Win32Error):
        pool.create_work(print)
    pool.close()  # idempotent


def test_close_from_a_callback_returns_and_threads_end(make_pool) -> None:
    pool = make_pool(max_threads=2)
    closed = winaio.Event(manual_reset=True)
    pool.submit(lambda: (pool.close(), closed.set()))
    assert winaio.wait(closed, LONG).signaled
    wait_until(lambda: pool.thread_count == 0, LONG, "workers end")


def test_callback_exceptions_are_reported_and_the_worker_survives(
    pool: winaio.ThreadPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))

    def boom(*_: Any) -> None:
        raise RuntimeError("boom")

    pool.submit(boom)
    work = pool.create_work(boom)
    work.submit()
    work.wait_callbacks()
    assert pool.call(lambda: "alive").result(LONG) == "alive"
    wait_until(lambda: len(seen) == 2, LONG)
    assert all(isinstance(e, RuntimeError) for e in seen)
    work.close()


def test_bad_input(make_pool) -> None:
    for kwargs in ({"max_threads": 0}, {"min_threads": -1}, {"max_threads": 2, "min_threads": 3},
                   {"idle_timeout": 0}):  # fmt: skip
        with pytest.raises(Win32Error) as info:
            winaio.ThreadPool(**kwargs)
        assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    pool = make_pool(max_threads=1)
    for call in (
        lambda: pool.submit(42),  # type: ignore[arg-type]
        lambda: pool.call(None),  # type: ignore[arg-type]
        lambda: pool.create_work("x"),  # type: ignore[arg-type]
        lambda: pool.create_work(print, environment=object()),  # type: ignore[arg-type]
        lambda: pool.create_work(print, environment=winaio.CallbackEnvironment(priority=7)),  # type: ignore[arg-type]
        lambda: pool.set_min_threads(-1),
    ):
        with pytest.raises(Win32Error) as info:
            call()
        assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    work = pool.create_work(print)
    work.close()
    for call in (work.close, work.submit):
        with pytest.raises(Win32Error) as info:
            call()
        assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
    with pytest.raises(Win32Error) as info:
        winaio.default_pool().close()
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER


def test_default_pool_is_shared() -> None:
    assert winaio.default_pool() is winaio.default_pool()
    assert winaio.default_pool().call(lambda: 1).result(LONG) == 1


@pytest.mark.parametrize("how", ["submit", "submit_queued", "work", "call"])
def test_a_callback_s_arguments_are_freed_when_it_returns(make_pool, how: str) -> None:
    # The worker keeps nothing of a finished callback while it waits for the next one: an RPC
    # server's call object passed to a pool callback must die when the callback returns.
    class Payload:
        pass

    pool = make_pool(max_threads=1, min_threads=1)
    payload = Payload()
    ref = weakref.ref(payload)
    ran = winaio.Event(manual_reset=True)

    def fn(*args: Any) -> None:
        ran.set()

    if how == "submit":  # a token handed straight to the waiting worker
        wait_until(lambda: len(pool.port._getters) == 1)
        pool.submit(fn, payload)
    elif how == "submit_queued":  # queued behind a busy worker: a token
        gate = winaio.Event(manual_reset=True)
        pool.submit(winaio.wait, gate, LONG)
        wait_until(lambda: not pool.port._getters)
        pool.submit(fn, payload)
        gate.set()
    elif how == "work":
        work = pool.create_work(fn, payload)
        work.submit()
    else:
        call = pool.call(fn, payload)
    assert winaio.wait(ran, LONG).signaled
    if how == "work":
        work.close()
        del work  # the object owns its arguments
    elif how == "call":
        winaio.wait(call, LONG)
        del call
    del payload
    wait_until(lambda: len(pool.port._getters) == 1)  # back waiting for its next packet
    gc.collect()
    assert ref() is None
