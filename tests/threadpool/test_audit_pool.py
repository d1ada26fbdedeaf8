"""Audit of the thread pool's new worker path (``_pool/_worker.py``: the inlined port wait;
``ThreadPool.submit``'s token hand-off to a waiting worker; closing; sizing).

Pinned, without timing luck (waits bounded by LONG; absences checked over SHORT):
- no more callbacks run at once than ``max_threads``, even when every one of them blocks in a
  winaio wait (which lets the port release another worker, §6.7) - and exactly that many do;
- callbacks that do not block in a winaio wait count as running: no more of them run at once
  than the port's concurrency value, whatever the number of idle workers the hand-off could wake;
- one worker runs callbacks in FIFO order, whether handed off to it while it waits or queued
  while it is busy, across submit / call / submit_callback / work objects;
- close() while callbacks are queued and one is running: the queued ones still run, each once,
  close() returns only after the last, nothing runs after it, new submissions are refused;
- min_threads are started at once and kept; extra workers retire down to it, not below.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import winaio
from winaio.codes import WinError
from winaio.errors import Win32Error
from winaio.testing import wait_until

LONG = 5.0
SHORT = 0.1


class Gauge:
    """Counts callbacks running now, the peak, and the calls in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.order: list[int] = []
        self.done = winaio.Semaphore(0, 1 << 20)

    def enter(self, i: int) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.order.append(i)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
        self.done.release()

    def wait_done(self, count: int) -> None:
        for k in range(count):
            assert winaio.wait(self.done, LONG).signaled, f"{k} of {count} callbacks ended"


@pytest.mark.parametrize("max_threads", [1, 3])
def test_no_more_callbacks_run_at_once_than_max_threads(make_pool: Any, max_threads: int) -> None:
    pool = make_pool(max_threads=max_threads, concurrency=8)
    gauge = Gauge()
    gate = winaio.Event(manual_reset=True)

    def body(i: int) -> None:
        gauge.enter(i)
        try:
            # A winaio wait: the port counts this worker as blocked and would release another.
            assert winaio.wait(gate, LONG).signaled
        finally:
            gauge.leave()

    for i in range(40):
        pool.submit(body, i)
    wait_until(lambda: gauge.running == max_threads, LONG, "max_threads callbacks running")
    assert winaio.wait(winaio.Event(), SHORT).timed_out  # give an extra worker its chance
    assert gauge.running == max_threads and pool.thread_count == max_threads
    gate.set()
    gauge.wait_done(40)
    assert gauge.peak == max_threads
    assert sorted(gauge.order) == list(range(40))
    assert pool.thread_count <= max_threads


def test_callbacks_that_do_not_block_in_winaio_count_against_the_concurrency(
    make_pool: Any,
) -> None:
    # spec: win32 #80 (§6.7: a released thread counts as running until it waits on the port
    # again or blocks in a kernel wait; the hand-off in submit must respect it too)
    pool = make_pool(max_threads=4, min_threads=4, concurrency=1)
    wait_until(lambda: len(pool.port._getters) == 4, LONG, "four idle workers on the port")
    gauge = Gauge()
    release = threading.Event()  # not a winaio wait: the worker stays "running"

    def body(i: int) -> None:
        gauge.enter(i)
        try:
            if i == 0:
                assert release.wait(LONG)
        finally:
            gauge.leave()

    for i in range(20):
        pool.submit(body, i)
    wait_until(lambda: gauge.running == 1, LONG, "the first callback runs")
    assert winaio.wait(winaio.Event(), SHORT).timed_out  # nobody else may start meanwhile
    assert gauge.running == 1 and gauge.order == [0]
    release.set()
    gauge.wait_done(20)
    assert gauge.peak == 1
    assert gauge.order == list(range(20))  # one at a time: FIFO


@pytest.mark.parametrize("busy_first", [False, True], ids=["handed-off", "queued"])
def test_a_single_worker_runs_callbacks_in_fifo_order(make_pool: Any, busy_first: bool) -> None:
    pool = make_pool(max_threads=1, min_threads=1)
    gauge = Gauge()
    gate = winaio.Event(manual_reset=True, initial_state=not busy_first)

    def plain(i: int) -> None:
        if i == 0:
            assert winaio.wait(gate, LONG).signaled
        gauge.enter(i)
        gauge.leave()

    def with_instance(instance: Any, i: int) -> None:
        plain(i)

    works = []
    count = 200
    for i in range(count):
        kind = i % 4
        if kind == 0:
            pool.submit(plain, i)
        elif kind == 1:
            pool.call(plain, i)
        elif kind == 2:
            pool.submit_callback(with_instance, i)
        else:
            work = pool.create_work(with_instance, i)
            works.append(work)
            work.submit()
        if not busy_first and i % 7 == 0:
            # Let the worker drain and wait again: the next submit is a hand-off.
            wait_until(lambda n=i + 1: len(gauge.order) == n, LONG, "drained")
    gate.set()
    gauge.wait_done(count)
    assert gauge.order == list(range(count))
    assert gauge.peak == 1 and pool.thread_count == 1
    for work in works:
        work.close()


def test_close_with_callbacks_queued_and_running(make_pool: Any) -> None:
    pool = make_pool(max_threads=2, concurrency=1)
    gauge = Gauge()
    gate = winaio.Event(manual_reset=True)
    started = winaio.Event(manual_reset=True)

    def first(i: int) -> None:
        gauge.enter(i)
        started.set()
        try:
            assert winaio.wait(gate, LONG).signaled
        finally:
            gauge.leave()

    def rest(i: int) -> None:
        gauge.enter(i)
        gauge.leave()

    pool.submit(first, 0)
    assert winaio.wait(started, LONG).signaled
    for i in range(1, 51):
        pool.submit(rest, i)
    closed = threading.Event()

    def closer() -> None:
        pool.close()
        closed.set()

    t = threading.Thread(target=closer)
    t.start()
    wait_until(lambda: pool.closed, LONG, "close() started")
    with pytest.raises(Win32Error) as info:
        pool.submit(rest, 99)
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
    assert not closed.wait(SHORT), "close() returned while a callback was still running"
    gate.set()
    t.join(LONG)
    assert closed.is_set()
    ran = len(gauge.order)
    assert sorted(gauge.order) == list(range(51)) and ran == 51
    assert pool.thread_count == 0 and gauge.running == 0
    assert winaio.wait(winaio.Event(), SHORT).timed_out
    assert len(gauge.order) == ran  # nothing after close() returned


def test_min_threads_are_kept_and_extra_workers_retire_down_to_them(make_pool: Any) -> None:
    pool = make_pool(max_threads=4, min_threads=2, idle_timeout=0.05)
    assert pool.thread_count == 2
    gauge = Gauge()
    all_in = winaio.Event(manual_reset=True)

    def body(i: int) -> None:
        gauge.enter(i)
        try:
            if gauge.running == 4:
                all_in.set()
            assert winaio.wait(all_in, LONG).signaled  # four at once: four workers
        finally:
            gauge.leave()

    for i in range(4):
        pool.submit(body, i)
    gauge.wait_done(4)
    assert gauge.peak == 4
    wait_until(lambda: pool.thread_count == 2, LONG, "extra workers retired")
    for _ in range(3):  # several idle timeouts later: still the minimum
        assert winaio.wait(winaio.Event(), SHORT).timed_out
        assert pool.thread_count == 2
    done = pool.call(lambda: 5)
    assert winaio.wait(done, LONG).signaled and done.result() == 5


def test_close_from_inside_a_callback_with_callbacks_queued(make_pool: Any) -> None:
    pool = make_pool(max_threads=1, min_threads=1)
    gauge = Gauge()
    gate = winaio.Event(manual_reset=True)
    returned = threading.Event()

    def closer(i: int) -> None:
        gauge.enter(i)
        try:
            assert winaio.wait(gate, LONG).signaled
            pool.close()  # one of its own workers: returns at once, cannot join itself
            returned.set()
        finally:
            gauge.leave()

    def rest(i: int) -> None:
        gauge.enter(i)
        gauge.leave()

    pool.submit(closer, 0)
    for i in range(1, 21):
        pool.submit(rest, i)
    gate.set()
    gauge.wait_done(21)
    assert returned.is_set()
    assert gauge.order == list(range(21))  # queued before the close: all still run, in order
    wait_until(lambda: pool.thread_count == 0, LONG, "the worker ended by itself")
    with pytest.raises(Win32Error) as info:
        pool.submit(rest, 99)
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
