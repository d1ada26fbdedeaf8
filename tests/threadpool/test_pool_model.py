"""A Hypothesis state machine for the pool's callback bookkeeping (pending / running counts,
cancellation, round-robin between objects) against a reference model.

One worker; a "hold" item can occupy it so that submissions queue up. Rules submit callbacks to
two work objects, cancel an object's queued callbacks, hold and release the worker, and check
after every release that each object ran exactly the callbacks the model expects, in the
alternating order of Wine's scheduler.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import winaio

LONG = 5.0


class PoolModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pool = winaio.ThreadPool(max_threads=1, concurrency=1, idle_timeout=60)
        self.runs: list[str] = []
        self.works = {
            name: self.pool.create_work(lambda instance, n=name: self.runs.append(n))
            for name in ("a", "b")
        }
        self.queued: dict[str, int] = {"a": 0, "b": 0}
        self.order: list[str] = []  # the model's queue of objects (each once while pending)
        self.expected: list[str] = []
        self.gate: winaio.Event | None = None

    @precondition(lambda self: self.gate is None)
    @rule()
    def hold(self) -> None:
        gate = winaio.Event(manual_reset=True)
        started = winaio.Event(manual_reset=True)
        self.pool.submit(lambda: (started.set(), winaio.wait(gate, LONG)))
        assert winaio.wait(started, LONG).signaled
        self.gate = gate

    @rule(name=st.sampled_from(["a", "b"]), count=st.integers(1, 4))
    def submit(self, name: str, count: int) -> None:
        for _ in range(count):
            self.works[name].submit()
        if self.gate is None:
            self._settle()  # the worker is free: they run now, in submission order
            self.expected += [name] * count
            return
        if not self.queued[name]:
            self.order.append(name)
        self.queued[name] += count

    @precondition(lambda self: self.gate is not None)
    @rule(name=st.sampled_from(["a", "b"]))
    def cancel(self, name: str) -> None:
        self.works[name].wait_callbacks(cancel_pending=True)
        self.queued[name] = 0
        if name in self.order:
            self.order.remove(name)

    @precondition(lambda self: self.gate is not None)
    @rule()
    def release(self) -> None:
        assert self.gate is not None
        # Model of the scheduler: take the head object, re-queue it at the tail if it still has
        # pending callbacks.
        while self.order:
            name = self.order.pop(0)
            self.expected.append(name)
            self.queued[name] -= 1
            if self.queued[name]:
                self.order.append(name)
        self.gate.set()
        self.gate = None
        self._settle()

    def _settle(self) -> None:
        for work in self.works.values():
            work.wait_callbacks()

    @invariant()
    def ran_what_the_model_says(self) -> None:
        if self.gate is None:
            self._settle()
            assert self.runs == self.expected

    def teardown(self) -> None:
        if self.gate is not None:
            self.gate.set()
        for work in self.works.values():
            work.wait_callbacks()
            work.close()
        self.pool.close()


TestPoolModel: Any = PoolModel.TestCase
TestPoolModel.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
