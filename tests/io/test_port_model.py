"""Hypothesis state machine: a completion port against a reference model (win32-async-spec §6).

The model is the spec in a few lines: packets queue FIFO; threads blocked in
GetQueuedCompletionStatus are released LIFO; a packet goes to a waiter only while
running(P) < C, where running(P) counts the port's associated threads that are not blocked -
in GQCS *or anywhere else* (a kernel wait on an event here) (§6.6, §6.7). A thread entering GQCS
stops counting as running and takes a queued packet itself if running(P) < C.

Worker threads run commands; satisfaction of port waits is synchronous in the posting thread,
so right after each step the model knows exactly which worker got which packet.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import winaio
from winaio._io import _accel
from winaio.testing import wait_until_blocked

WORKERS = 3
CONCURRENCY = 1


class Worker:
    def __init__(self, wid: int) -> None:
        self.wid = wid
        self.commands: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.event = winaio.Event()
        self.thread = winaio.start_thread(self._run)

    def _run(self) -> None:
        while True:
            command = self.commands.get()
            if command is None:
                return
            self.results.put(command())

    def result(self) -> Any:
        try:
            return self.results.get(timeout=2)
        except queue.Empty:
            raise AssertionError(f"worker {self.wid} did not report") from None


class PortMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.port = winaio.CompletionPort(CONCURRENCY)
        self.workers = [Worker(i) for i in range(WORKERS)]
        # the model
        self.packets: deque[int] = deque()
        self.getters: list[int] = []
        self.running: set[int] = set()
        self.associated: set[int] = set()
        self.blocked_elsewhere: set[int] = set()
        self.wait_blocks: dict[int, Any] = {}
        self.next_key = 0

    def _idle(self, wid: int) -> bool:
        return wid not in self.getters and wid not in self.blocked_elsewhere

    def _release(self) -> dict[int, int]:
        handed: dict[int, int] = {}
        while self.packets and self.getters and len(self.running) < CONCURRENCY:
            wid = self.getters.pop()
            handed[wid] = self.packets.popleft()
            self.running.add(wid)
        return handed

    def _check_handed(self, handed: dict[int, int]) -> None:
        for wid, key in handed.items():
            wb = self.wait_blocks.pop(wid)
            assert wb.result is not None, f"worker {wid} should have been released"
            packet = self.workers[wid].result()
            assert packet is not None and packet.key == key, (wid, packet, key)

    @rule()
    def post(self) -> None:
        key = self.next_key
        self.next_key += 1
        self.port.post(0, key, None)
        self.packets.append(key)
        self._check_handed(self._release())

    @rule(wid=st.integers(0, WORKERS - 1))
    def worker_get(self, wid: int) -> None:
        if not self._idle(wid):
            return
        worker = self.workers[wid]
        # INFINITE, as a server's port threads wait (get_many's C shape; the port's close at
        # teardown releases a getter left blocked)
        worker.commands.put(_swallow(lambda: self.port.get(None)))
        self.associated.add(wid)
        self.running.discard(wid)
        if self.packets and len(self.running) < CONCURRENCY:
            key = self.packets.popleft()
            self.running.add(wid)
            packet = worker.result()
            assert packet is not None and packet.key == key
            return
        self.getters.append(wid)
        wait_until_blocked(worker.thread)
        self.wait_blocks[wid] = worker.thread.state.wait

    @rule(wid=st.integers(0, WORKERS - 1))
    def worker_blocks_elsewhere(self, wid: int) -> None:
        if not self._idle(wid):
            return
        worker = self.workers[wid]
        worker.commands.put(lambda: winaio.wait(worker.event, 10).code)
        wait_until_blocked(worker.thread)
        self.blocked_elsewhere.add(wid)
        if wid in self.associated:
            self.running.discard(wid)
            self._check_handed(self._release())

    @rule(wid=st.integers(0, WORKERS - 1))
    def worker_unblocks(self, wid: int) -> None:
        if wid not in self.blocked_elsewhere:
            return
        worker = self.workers[wid]
        worker.event.set()
        assert worker.result() == 0
        self.blocked_elsewhere.discard(wid)
        if wid in self.associated:
            self.running.add(wid)  # may exceed C for a while (§6.7)

    @invariant()
    def model_matches(self) -> None:
        assert self.port.queued == len(self.packets)
        assert self.port.running_threads == len(self.running)
        for wid in self.getters:
            assert self.wait_blocks[wid].result is None, f"worker {wid} woke early"

    def teardown(self) -> None:
        self.port.close()  # releases blocked getters with ERROR_ABANDONED_WAIT_0
        for worker in self.workers:
            worker.event.set()
        for worker in self.workers:
            worker.commands.put(None)
        for worker in self.workers:
            assert winaio.wait(worker.thread, 5).signaled


def _swallow(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return fn()
        except winaio.Win32Error as exc:
            return exc

    return run


class PythonPortMachine(PortMachine):
    """The same model on the Python ``get_many`` (its C accelerator, ``_fastring.c``, is what
    :class:`PortMachine` runs where it was built)."""

    def __init__(self) -> None:
        self.c_before = _accel.use(False)
        super().__init__()

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            _accel.use(self.c_before)


PortMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
PythonPortMachine.TestCase.settings = PortMachine.TestCase.settings
test_port_model = PortMachine.TestCase
test_port_model_python = PythonPortMachine.TestCase
