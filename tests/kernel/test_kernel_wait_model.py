"""Hypothesis state machine: the dispatcher against a small reference model of Win32 waits.

Objects: a manual-reset and an auto-reset event, a semaphore (max 2) and a mutex. The main thread
signals, resets, pulses, releases and polls (timeout 0); worker threads block in infinite
wait-any / wait-all waits, release mutexes they own and exit (abandoning what they own).

The model is the spec, written as plainly as possible (win32-async-spec §1.2, §2.1, §2.3):
waiters of an object are considered in the order they started waiting; a wait-any takes the
first signaled object in array order; a wait-all needs all at once and then consumes all; the
satisfied waiter's side effects (auto-reset, count -= 1, ownership) are applied at that instant.
Satisfaction is synchronous in the signalling thread, so right after each step the set of
still-blocked workers is exact, and woken workers must report exactly the predicted code.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import winaio
from winaio.codes import WaitCode
from winaio.errors import Win32Error
from winaio.testing import wait_until_blocked

NAMES = ("ev_manual", "ev_auto", "sem", "mtx")
ABANDONED = int(WaitCode.WAIT_ABANDONED_0)


@dataclass
class ModelWaiter:
    wid: int
    objs: tuple[str, ...]
    wait_all: bool


@dataclass
class Model:
    events: dict[str, list[bool]] = field(
        default_factory=lambda: {"ev_manual": [False, True], "ev_auto": [False, False]}
    )
    sem: list[int] = field(default_factory=lambda: [0, 2])
    mutex: list[Any] = field(
        default_factory=lambda: [None, 0, False]
    )  # owner, recursion, abandoned
    waiters: list[ModelWaiter] = field(default_factory=list)

    def signaled_for(self, name: str, who: object) -> bool:
        if name in self.events:
            return self.events[name][0]
        if name == "sem":
            return self.sem[0] > 0
        return self.mutex[0] is None or self.mutex[0] == who

    def consume(self, name: str, who: object) -> bool:
        if name in self.events:
            if not self.events[name][1]:
                self.events[name][0] = False
            return False
        if name == "sem":
            self.sem[0] -= 1
            return False
        if self.mutex[0] == who:
            self.mutex[1] += 1
            return False
        abandoned = self.mutex[2]
        self.mutex[:] = [who, 1, False]
        return abandoned

    def try_satisfy(self, objs: tuple[str, ...], wait_all: bool, who: object) -> int | None:
        if wait_all:
            if not all(self.signaled_for(n, who) for n in objs):
                return None
            abandoned = [self.consume(n, who) for n in objs]
            return ABANDONED if any(abandoned) else 0
        for i, name in enumerate(objs):
            if self.signaled_for(name, who):
                return ABANDONED + i if self.consume(name, who) else i
        return None

    def wake(self, name: str) -> dict[int, int]:
        woken: dict[int, int] = {}
        for waiter in list(self.waiters):
            if name not in waiter.objs:
                continue
            code = self.try_satisfy(waiter.objs, waiter.wait_all, waiter.wid)
            if code is not None:
                self.waiters.remove(waiter)
                woken[waiter.wid] = code
        return woken


class Worker:
    """A winaio thread running commands; idle in a non-winaio queue get."""

    def __init__(self, wid: int) -> None:
        self.wid = wid
        self.commands: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.thread = winaio.start_thread(self._run)

    def _run(self) -> None:
        while True:
            command = self.commands.get()
            if command is None:
                return
            try:
                self.results.put(("ok", command()))
            except Win32Error as exc:
                self.results.put(("err", exc.winerror))

    def result(self) -> tuple[str, Any]:
        try:
            return self.results.get(timeout=2)
        except queue.Empty:
            raise AssertionError(f"worker {self.wid} did not report") from None


class WaitMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.objects: dict[str, winaio.DispatcherObject] = {
            "ev_manual": winaio.Event(manual_reset=True),
            "ev_auto": winaio.Event(manual_reset=False),
            "sem": winaio.Semaphore(0, 2),
            "mtx": winaio.Mutex(),
        }
        self.workers = [Worker(0), Worker(1), Worker(2)]
        self.blocked: set[int] = set()
        # The wait block of each blocked worker, captured when it blocked: satisfaction is
        # synchronous, so its `result` can be checked at once, without waiting on the thread.
        self.wait_blocks: dict[int, Any] = {}

    # ------------------------------------------------------------------ helpers
    def _settle(self, woken: dict[int, int]) -> None:
        for wid, code in woken.items():
            self.blocked.discard(wid)
            assert self.wait_blocks.pop(wid).result == code, f"worker {wid}"
        for wid, code in woken.items():
            assert self.workers[wid].result() == ("ok", code), f"worker {wid}"

    def _objs(self, names: tuple[str, ...]) -> list[winaio.DispatcherObject]:
        return [self.objects[n] for n in names]

    # ------------------------------------------------------------------ main-thread rules
    @rule(name=st.sampled_from(["ev_manual", "ev_auto"]))
    def set_event(self, name: str) -> None:
        event = self.objects[name]
        assert isinstance(event, winaio.Event)
        previous = event.set()
        assert previous == self.model.events[name][0]
        self.model.events[name][0] = True
        self._settle(self.model.wake(name))

    @rule(name=st.sampled_from(["ev_manual", "ev_auto"]))
    def reset_event(self, name: str) -> None:
        event = self.objects[name]
        assert isinstance(event, winaio.Event)
        event.reset()
        self.model.events[name][0] = False

    @rule(name=st.sampled_from(["ev_manual", "ev_auto"]))
    def pulse_event(self, name: str) -> None:
        event = self.objects[name]
        assert isinstance(event, winaio.Event)
        event.pulse()
        self.model.events[name][0] = True
        woken = self.model.wake(name)
        self.model.events[name][0] = False
        self._settle(woken)

    @rule(count=st.integers(1, 3))
    def release_semaphore(self, count: int) -> None:
        sem = self.objects["sem"]
        assert isinstance(sem, winaio.Semaphore)
        if self.model.sem[0] + count > self.model.sem[1]:
            try:
                sem.release(count)
            except Win32Error as exc:
                assert exc.winerror == 298  # ERROR_TOO_MANY_POSTS, count unchanged
            else:
                raise AssertionError("release past the maximum succeeded")
            return
        assert sem.release(count) == self.model.sem[0]
        self.model.sem[0] += count
        self._settle(self.model.wake("sem"))

    @rule(
        names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True).map(tuple),
        wait_all=st.booleans(),
    )
    def main_poll(self, names: tuple[str, ...], wait_all: bool) -> None:
        waiter = winaio.wait_all if wait_all else winaio.wait_any
        code = waiter(self._objs(names), 0).code
        expected = self.model.try_satisfy(names, wait_all, "main")
        assert code == (WaitCode.WAIT_TIMEOUT if expected is None else expected)

    @precondition(lambda self: self.model.mutex[0] == "main")
    @rule()
    def main_release_mutex(self) -> None:
        mutex = self.objects["mtx"]
        assert isinstance(mutex, winaio.Mutex)
        mutex.release()
        self.model.mutex[1] -= 1
        if self.model.mutex[1] == 0:
            self.model.mutex[0] = None
            self._settle(self.model.wake("mtx"))

    # ------------------------------------------------------------------ worker rules
    @rule(
        wid=st.integers(0, 2),
        names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True).map(tuple),
        wait_all=st.booleans(),
    )
    def worker_wait(self, wid: int, names: tuple[str, ...], wait_all: bool) -> None:
        if wid in self.blocked:
            return
        worker = self.workers[wid]
        objs = self._objs(names)
        waiter = winaio.wait_all if wait_all else winaio.wait_any
        worker.commands.put(lambda: waiter(objs, 10).code)
        expected = self.model.try_satisfy(names, wait_all, wid)
        if expected is not None:
            assert worker.result() == ("ok", expected)
            return
        self.model.waiters.append(ModelWaiter(wid, names, wait_all))
        self.blocked.add(wid)
        wait_until_blocked(worker.thread)
        self.wait_blocks[wid] = worker.thread.state.wait

    @rule(wid=st.integers(0, 2))
    def worker_release_mutex(self, wid: int) -> None:
        if wid in self.blocked:
            return
        worker = self.workers[wid]
        mutex = self.objects["mtx"]
        assert isinstance(mutex, winaio.Mutex)
        worker.commands.put(mutex.release)
        if self.model.mutex[0] != wid:
            assert worker.result() == ("err", 288)  # ERROR_NOT_OWNER
            return
        assert worker.result() == ("ok", self.model.mutex[1])
        self.model.mutex[1] -= 1
        if self.model.mutex[1] == 0:
            self.model.mutex[0] = None
            self._settle(self.model.wake("mtx"))

    @rule(wid=st.integers(0, 2))
    def worker_exit(self, wid: int) -> None:
        if wid in self.blocked:
            return
        worker = self.workers[wid]
        worker.commands.put(None)
        assert winaio.wait(worker.thread, 5).signaled
        self.workers[wid] = Worker(wid)
        # The replacement reuses the model id: the dead thread's ownership must be gone.
        if self.model.mutex[0] == wid:
            self.model.mutex[:] = [None, 0, True]
            self._settle(self.model.wake("mtx"))

    # ------------------------------------------------------------------ invariants
    @invariant()
    def blocked_workers_are_still_blocked(self) -> None:
        for wid in self.blocked:
            assert self.wait_blocks[wid].result is None, f"worker {wid} woke"

    @invariant()
    def object_states_match(self) -> None:
        for name in ("ev_manual", "ev_auto"):
            event = self.objects[name]
            assert isinstance(event, winaio.Event)
            assert event.is_set() == self.model.events[name][0]
        sem = self.objects["sem"]
        assert isinstance(sem, winaio.Semaphore)
        assert sem.count == self.model.sem[0]
        mutex = self.objects["mtx"]
        assert isinstance(mutex, winaio.Mutex)
        assert mutex.abandoned == self.model.mutex[2]

    def teardown(self) -> None:
        for worker in self.workers:
            if worker.thread.state.wait is not None:
                worker.thread.terminate(1)  # still blocked in a winaio wait
            else:
                worker.commands.put(None)
            assert winaio.wait(worker.thread, 5).signaled
        mutex = self.objects["mtx"]
        assert isinstance(mutex, winaio.Mutex)
        while self.model.mutex[0] == "main" and self.model.mutex[1] > 0:
            mutex.release()
            self.model.mutex[1] -= 1


WaitMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_wait_model = WaitMachine.TestCase
