"""A NaN timeout (``float("nan")``, e.g. a computed interval gone wrong) through the core's waits.

Every comparison with NaN is false, so a wait loop that asks "has the deadline passed?" with
``now >= deadline`` never ends; it also never sleeps (``remaining > 0`` is false too): a NaN
timeout spun a CPU forever in ``_kernel._wait.block``. Defined behaviour: a NaN timeout is a
zero timeout (WAIT_TIMEOUT at once, as ``timeout <= 0``), and the wait leaves nothing behind
(no waiter left on the object or the port).
"""

from __future__ import annotations

import threading

import winaio
from winaio.codes import WaitCode

NAN = float("nan")
TIMEOUT = int(WaitCode.WAIT_TIMEOUT)


def _within(seconds: float, call: object) -> object:
    """Run ``call`` in a daemon thread; its result, or fail if it has not returned in time."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(call()), daemon=True)  # type: ignore[operator]
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "a NaN timeout never ended the wait"
    return out[0]


def test_a_nan_timeout_on_an_event_wait_times_out_at_once() -> None:
    ev = winaio.Event(manual_reset=True)
    result = _within(5.0, lambda: winaio.wait(ev, NAN))
    assert isinstance(result, winaio.WaitResult) and result.code == TIMEOUT
    assert ev.waiter_count == 0


def test_a_nan_timeout_on_a_wait_for_several_objects_times_out_at_once() -> None:
    a, b = winaio.Event(), winaio.Event()
    result = _within(5.0, lambda: winaio.wait_any([a, b], NAN))
    assert isinstance(result, winaio.WaitResult) and result.code == TIMEOUT
    assert a.waiter_count == b.waiter_count == 0


def test_a_nan_timeout_on_a_completion_port_times_out_at_once() -> None:
    port = winaio.CompletionPort()
    assert _within(5.0, lambda: port.get(NAN)) is None
    assert _within(5.0, lambda: port.get_many(4, NAN)) == (TIMEOUT, [])
    port.post(1, "k")  # the port's waiter stack is empty again: the packet queues
    assert port.queued == 1
    port.close()
