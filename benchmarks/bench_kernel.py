"""Kernel-layer micro benchmarks (issue: foundation). Prints one JSON object.

Measured side by side in one run, so that ratios are meaningful on a noisy 2-core VM:

- ``event_pingpong``: two threads bouncing on two auto-reset winaio Events (SetEvent -> the
  waiter wakes -> SetEvent back), round trips per second, vs the same with ``threading.Event``
  (wait + clear). Target: winaio >= 0.8x threading.Event.
- ``win32_event_pingpong``: the same through ``winaio.win32`` (handles, SetEvent,
  WaitForSingleObject), to show the alias layer's cost.
- ``apc_same_thread``: QueueUserAPC to the calling thread in batches of 100, then one
  SleepEx(0, TRUE) that dispatches them; microseconds per APC (queue + dispatch).
  Target: <= 2 us per APC.

Each figure is the median of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable

import winaio
from winaio import win32


def _pingpong(make: Callable[[], tuple[Callable[[], None], Callable[[], None]]], n: int) -> float:
    """Round trips/s between two threads. ``make`` returns (signal, wait) for one direction."""
    ping_signal, ping_wait = make()
    pong_signal, pong_wait = make()

    def responder() -> None:
        for _ in range(n):
            ping_wait()
            pong_signal()

    t = threading.Thread(target=responder)
    t.start()
    start = time.perf_counter()
    for _ in range(n):
        ping_signal()
        pong_wait()
    elapsed = time.perf_counter() - start
    t.join()
    return n / elapsed


def make_threading() -> tuple[Callable[[], None], Callable[[], None]]:
    event = threading.Event()

    def wait() -> None:
        event.wait()
        event.clear()

    return event.set, wait


def make_winaio() -> tuple[Callable[[], None], Callable[[], None]]:
    event = winaio.Event()
    wait = winaio.wait
    return event.set, lambda: wait(event)


def make_win32_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    handle = win32.CreateEvent(None, False, False, None)
    set_event = win32.SetEvent
    wait = win32.WaitForSingleObject
    infinite = win32.INFINITE

    def signal() -> None:
        set_event(handle)

    def waiter() -> None:
        wait(handle, infinite)

    return signal, waiter


def apc_cost(batches: int, batch: int = 100) -> float:
    """Microseconds per APC for queue + dispatch on the calling thread (win32 layer)."""
    me = win32.GetCurrentThread()
    queue_apc = win32.QueueUserAPC
    sleep_ex = win32.SleepEx
    counter = [0]

    def apc(_: object) -> None:
        counter[0] += 1

    start = time.perf_counter()
    for _ in range(batches):
        for _ in range(batch):
            queue_apc(apc, me, None)
        sleep_ex(0, True)
    elapsed = time.perf_counter() - start
    assert counter[0] == batches * batch
    return elapsed / (batches * batch) * 1e6


def apc_cost_core(batches: int, batch: int = 100) -> float:
    """Microseconds per APC for queue + dispatch on the calling thread (core API)."""
    me = winaio.current_thread()
    queue_apc = winaio.queue_apc
    counter = [0]

    def apc() -> None:
        counter[0] += 1

    start = time.perf_counter()
    for _ in range(batches):
        for _ in range(batch):
            queue_apc(me, apc)
        winaio.sleep(0, alertable=True)
    elapsed = time.perf_counter() - start
    assert counter[0] == batches * batch
    return elapsed / (batches * batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=20000, help="round trips per ping-pong round")
    args = parser.parse_args()

    rows: dict[str, list[float]] = {
        "threading_event_rt_per_s": [],
        "winaio_event_rt_per_s": [],
        "win32_event_rt_per_s": [],
        "apc_us_per_call_win32": [],
        "apc_us_per_call_core": [],
    }
    for _ in range(args.rounds):  # interleaved rounds: noise hits every row alike
        rows["threading_event_rt_per_s"].append(_pingpong(make_threading, args.n))
        rows["winaio_event_rt_per_s"].append(_pingpong(make_winaio, args.n))
        rows["win32_event_rt_per_s"].append(_pingpong(make_win32_pair, args.n))
        rows["apc_us_per_call_win32"].append(apc_cost(1000))
        rows["apc_us_per_call_core"].append(apc_cost_core(1000))
    med = {k: statistics.median(v) for k, v in rows.items()}
    result = {
        "benchmark": "kernel",
        "rounds": args.rounds,
        "median": {k: round(v, 3) for k, v in med.items()},
        "ratios": {
            "winaio_vs_threading_event": round(
                med["winaio_event_rt_per_s"] / med["threading_event_rt_per_s"], 3
            ),
            "win32_vs_threading_event": round(
                med["win32_event_rt_per_s"] / med["threading_event_rt_per_s"], 3
            ),
        },
        "targets": {
            "event_pingpong_ratio_min": 0.8,
            "apc_us_per_call_max": 2.0,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
