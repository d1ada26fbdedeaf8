"""Thread pool and asyncio bridge benchmarks (issue 10). Prints one JSON object on stdout.

All rows are measured in one run, in interleaved rounds (every row once per round, the order
rotated from round to round); medians are reported with the median of the per-round ratios
(the steadier figure on a shared 2-vCPU VM) and the spread of the rounds (noise).

1. ``throughput``: N trivial work items through a pool of T threads, items/s:
   ``winaio.submit`` (TrySubmitThreadpoolCallback), ``winaio.work`` (one PoolWork submitted N
   times), ``winaio.call`` (a PoolCall result per item) vs ``tpe`` (ThreadPoolExecutor(T).submit,
   a Future per item); ceiling ``simplequeue``: T threads looping on ``SimpleQueue.get()`` (the
   cheapest hand-off CPython has). The pool has T threads and the completion-port concurrency
   value 1 (the IOCP knob: under CPython's GIL one running thread is the throughput optimum);
   the ``[c=T]`` rows run the same with concurrency T, like the executor. Targets: submit and
   call >= 1.0x tpe.
2. ``latency``: submit-to-run delay of one item into an idle pool, p50/p99 in us, winaio
   ``submit`` vs ``tpe``; the callback reports its sample through a ``SimpleQueue`` the
   submitter waits on. Target: p50 <= 1.0x tpe. The ``[quiet]`` rows measure the same delay
   with a callback that wakes nobody (the submitter sleeps, then reads the sample): on a
   2-vCPU VM the reply's wake-up decides where the scheduler puts the two threads, and so
   the cost of the next wake-up (samples are bimodal). Each row also gives ``all_samples``:
   p10/p50/p90 of every sample of every round (the shape the medians of rounds hide).
3. ``aio_reads``: an asyncio program, Q coroutines reading 4 KiB blocks at random offsets of a
   page-cached file, reads/s: ``winaio.aio`` (``Bridge.read``) vs ``loop.run_in_executor`` with
   ``os.pread``, and the third-party anchors ``aiofile`` and ``aiofiles`` - **each in its own
   child process**: a missing package or a crashed child makes that row ``unavailable`` and the
   run goes on. Ceiling: ``os.pread`` in a plain loop. Targets (Q = 32): >= 2x run_in_executor,
   >= 1.2x aiofile.
4. ``timers``: 1000 one-shot timers all due 50 ms ahead; arming cost (us/timer), and the time
   from the due time until the last callback ran (ms): winaio ``PoolTimer`` vs asyncio
   ``loop.call_later``. ``winaio.timers`` runs on a pool whose 4 workers exist (``min_threads``,
   as a server's pool: the loop of the asyncio row exists too); ``winaio.timers[cold]`` on a
   fresh pool that creates its workers during the burst (each ``Thread.start`` waits for the new
   thread to get the GIL from threads busy with callbacks: the cost of growing mid-burst).

The run holds ``/dev/cpu_dma_latency`` at 0 (``_latency_qos``; ``--no-latency-qos`` turns it
off; ``latency_qos`` in the JSON): the latency rows sleep and wake a thread per sample, and an
idle vCPU of these VMs halts at once (``guest_halt_poll_ns`` 0), each wake-up a VM exit that
adds the same ~40 us to both rows of a ratio (benchmarks/README.md "Latency rows").

Usage: ``.venv/bin/python benchmarks/bench_threadpool.py [--rounds 5] [--quick] [--output F]
[--sections latency,...]`` (the targets are computed only when every section ran)
(aiofile, aiofiles: the ``bench`` extra). Hold /work/coord/bench.lock while running.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _latency_qos import LatencyQoS

import winaio
import winaio.aio as aio
import winaio.testing

BLOCK = 4096
#: The sections, in the order a run measures them (``--sections`` picks a subset).
SECTIONS = ("throughput", "latency", "aio_reads", "timers")
HERE = os.path.dirname(os.path.abspath(__file__))
#: Test hooks of the child process (tests/threadpool/test_bench_threadpool.py): the named
#: anchor kills itself with SIGILL, or behaves as if its package were not installed.
CRASH_ENV = "WINAIO_BENCH_TP_CRASH"
MISSING_ENV = "WINAIO_BENCH_TP_MISSING"


# ---------------------------------------------------------------------------------- helpers


def _noop() -> None:
    pass


class Countdown:
    """Counts calls from any thread (itertools.count is atomic); sets an event at ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.counter = itertools.count(1)
        self.done = threading.Event()

    def __call__(self) -> None:
        if next(self.counter) == self.n:
            self.done.set()


def _throughput(submit: Callable[[Callable[[], None]], Any], n: int) -> float:
    countdown = Countdown(n)
    start = time.perf_counter()
    for _ in range(n):
        submit(countdown)
    if not countdown.done.wait(60):
        raise RuntimeError("work items did not all run")
    return n / (time.perf_counter() - start)


class SimpleQueuePool:
    """The ceiling: T threads looping on SimpleQueue.get()."""

    def __init__(self, threads: int) -> None:
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        get = self.q.get
        while True:
            fn = get()
            if fn is None:
                return
            fn()

    def close(self) -> None:
        for _ in self.threads:
            self.q.put(None)
        for t in self.threads:
            t.join()


def bench_throughput(threads: int, n: int, rounds: int) -> dict[str, Any]:
    pool = winaio.ThreadPool(max_threads=threads, min_threads=threads, concurrency=1)
    wide = winaio.ThreadPool(max_threads=threads, min_threads=threads, concurrency=threads)
    tpe = ThreadPoolExecutor(threads)
    ceiling = SimpleQueuePool(threads)
    work_countdown: list[Countdown] = []
    work = pool.create_work(lambda instance: work_countdown[0]())

    def run_work(n: int) -> float:
        work_countdown[:] = [Countdown(n)]
        start = time.perf_counter()
        submit = work.submit
        for _ in range(n):
            submit()
        work_countdown[0].done.wait(60)
        return n / (time.perf_counter() - start)

    rows: dict[str, Callable[[int], float]] = {
        "winaio.submit": lambda k: _throughput(pool.submit, k),
        "winaio.work": run_work,
        "winaio.call": lambda k: _throughput(pool.call, k),
        f"winaio.submit[c={threads}]": lambda k: _throughput(wide.submit, k),
        f"winaio.call[c={threads}]": lambda k: _throughput(wide.call, k),
        "tpe": lambda k: _throughput(tpe.submit, k),
        "simplequeue": lambda k: _throughput(ceiling.q.put, k),
    }
    for fn in rows.values():  # warm-up: threads started, code paths hot
        fn(n // 10)
    results = _rounds(rows, n, rounds)
    work.close()
    pool.close()
    wide.close()
    tpe.shutdown()
    ceiling.close()
    return _report(results, "tpe", unit="items/s", higher_is_better=True)


def _latency(submit: Callable[..., Any], samples: int) -> dict[str, Any]:
    out: queue.SimpleQueue[float] = queue.SimpleQueue()
    clock = time.perf_counter

    def record(t0: float) -> None:
        out.put(clock() - t0)

    values = []
    for _ in range(samples):
        time.sleep(0.0002)  # let the workers go back to waiting: an idle pool
        submit(record, clock())
        values.append(out.get(timeout=10) * 1e6)
    return _percentiles(values)


def _percentiles(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    return {
        "p50": statistics.median(values),
        "p99": values[int(len(values) * 0.99) - 1],
        "samples": values,
    }


def _spread(values: list[float]) -> dict[str, float]:
    """p10/p50/p90 of every sample of a row (all rounds pooled): the shape of the
    distribution, which the medians of the rounds hide (samples are bimodal on 2 vCPUs)."""
    values = sorted(values)
    n = len(values)
    return {f"p{q}": round(values[min(n - 1, n * q // 100)], 1) for q in (10, 50, 90)}


def _latency_quiet(submit: Callable[..., Any], samples: int) -> dict[str, Any]:
    """The same delay, but the callback wakes nobody: it appends its sample to a list that the
    submitter reads after sleeping (the reply's cross-thread wake-up, which the scheduler may
    place badly for the *next* sample, is not part of the measurement)."""
    box: list[float] = []
    put = box.append
    clock = time.perf_counter

    def record(t0: float) -> None:
        put(clock() - t0)

    for _ in range(samples):
        time.sleep(0.0002)
        count = len(box)
        submit(record, clock())
        while len(box) == count:
            time.sleep(0.0002)
    return _percentiles([v * 1e6 for v in box])


def bench_latency(threads: int, samples: int, rounds: int) -> dict[str, Any]:
    pool = winaio.ThreadPool(max_threads=threads, min_threads=threads, concurrency=threads)
    tpe = ThreadPoolExecutor(threads)
    for _ in range(threads * 2):
        tpe.submit(_noop).result()
    rows = {
        "winaio.submit": lambda k: _latency(pool.submit, k),
        "tpe": lambda k: _latency(tpe.submit, k),
        "winaio.submit[quiet]": lambda k: _latency_quiet(pool.submit, k),
        "tpe[quiet]": lambda k: _latency_quiet(tpe.submit, k),
    }
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in rows}
    names = list(rows)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            per_round[name].append(rows[name](samples))
    pool.close()
    tpe.shutdown()
    out: dict[str, Any] = {"unit": "us", "rows": {}}
    for name, values in per_round.items():
        out["rows"][name] = {
            "p50": statistics.median(v["p50"] for v in values),
            "p99": statistics.median(v["p99"] for v in values),
            "rounds_p50": [round(v["p50"], 1) for v in values],
            "all_samples": _spread([x for v in values for x in v["samples"]]),
        }
    for suffix in ("", "[quiet]"):
        ratios = [
            a["p50"] / b["p50"]
            for a, b in zip(
                per_round[f"winaio.submit{suffix}"], per_round[f"tpe{suffix}"], strict=True
            )
        ]
        key = "quiet_" if suffix else ""
        out[f"{key}p50_ratio_winaio_over_tpe"] = statistics.median(ratios)
        out[f"{key}p50_ratio_per_round"] = [round(r, 3) for r in ratios]
    return out


# ---------------------------------------------------------------------------------- asyncio reads


def make_file(size_mib: int) -> str:
    fd, path = tempfile.mkstemp(prefix="winaio-bench-tp-", suffix=".bin")
    chunk = os.urandom(1 << 20)
    with os.fdopen(fd, "wb") as f:
        for _ in range(size_mib):
            f.write(chunk)
    with open(path, "rb") as f:  # into the page cache
        while f.read(1 << 20):
            pass
    return path


def offsets_for(size: int, count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    blocks = size // BLOCK
    return [rng.randrange(blocks) * BLOCK for _ in range(count)]


async def _reader_loop(
    read: Callable[[int], Any], offsets: list[int], qd: int, seconds: float
) -> int:
    clock = time.perf_counter
    deadline = clock() + seconds
    state = {"k": 0, "done": 0}
    mask = len(offsets) - 1

    async def worker() -> None:
        while clock() < deadline:
            k = state["k"]
            state["k"] = k + 1
            await read(offsets[k & mask])
            state["done"] += 1

    await asyncio.gather(*(worker() for _ in range(qd)))
    return state["done"]


def run_reads(method: str, path: str, offsets: list[int], qd: int, seconds: float) -> float:
    """Reads/s of one asyncio method (also the child-process entry point)."""
    if method == "pread":  # the ceiling: no asyncio at all
        fd = os.open(path, os.O_RDONLY)
        pread, clock, mask = os.pread, time.perf_counter, len(offsets) - 1
        k = 0
        deadline = clock() + seconds
        start = clock()
        while clock() < deadline:
            for _ in range(256):
                pread(fd, BLOCK, offsets[k & mask])
                k += 1
        elapsed = clock() - start
        os.close(fd)
        return k / elapsed

    async def main() -> float:
        loop = asyncio.get_running_loop()
        cleanup: list[Callable[[], Any]] = []
        if method == "winaio.aio":
            file, _ = winaio.open_file(path, read=True, write=False, disposition=3,
                                       overlapped=True)  # fmt: skip
            bridge = aio.Bridge()
            bufs: dict[Any, bytearray] = {}

            async def read(offset: int) -> Any:
                task = asyncio.current_task()
                buf = bufs.get(task)
                if buf is None:
                    buf = bufs[task] = bytearray(BLOCK)
                return await bridge.read(file, buf, offset)

            cleanup += [bridge.close, file.close]
        elif method == "run_in_executor":
            fd = os.open(path, os.O_RDONLY)
            pread = os.pread

            def read(offset: int) -> Any:
                return loop.run_in_executor(None, pread, fd, BLOCK, offset)

            cleanup.append(lambda: os.close(fd))
        elif method == "aiofile":
            from aiofile import AIOFile

            afp = AIOFile(path, "rb")
            await afp.open()

            def read(offset: int) -> Any:
                return afp.read(BLOCK, offset)

            cleanup.append(afp.close)
        elif method == "aiofiles":
            import aiofiles

            handles: dict[Any, Any] = {}

            async def read(offset: int) -> Any:
                task = asyncio.current_task()
                f = handles.get(task)
                if f is None:
                    f = handles[task] = await aiofiles.open(path, "rb")
                await f.seek(offset)
                return await f.read(BLOCK)

            async def close_all() -> None:
                for f in handles.values():
                    await f.close()

            cleanup.append(close_all)
        else:
            raise ValueError(method)
        await _reader_loop(read, offsets, qd, min(0.2, seconds / 4))  # warm-up
        start = time.perf_counter()
        done = await _reader_loop(read, offsets, qd, seconds)
        rate = done / (time.perf_counter() - start)
        for fn in cleanup:
            result = fn()
            if asyncio.iscoroutine(result):
                await result
        return rate

    return asyncio.run(main())


def run_child(method: str, path: str, offsets_file: str, qd: int, seconds: float) -> dict[str, Any]:
    """Run one third-party anchor in its own process (module docstring)."""
    args = [sys.executable, os.path.abspath(__file__), "--child", method, "--child-path", path]
    args += ["--child-offsets", offsets_file, "--qd", str(qd), "--seconds", str(seconds)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=seconds * 10 + 60)
    except subprocess.TimeoutExpired:
        return {"unavailable": "unavailable: timed out"}
    if done.returncode < 0:
        return {"unavailable": f"unavailable: crashed with signal {-done.returncode}"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        if "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr:
            return {"unavailable": f"unavailable: not installed ({tail[0]})"}
        return {"unavailable": f"unavailable: failed ({tail[0]})"}
    return json.loads(done.stdout)


def bench_aio_reads(qd: int, seconds: float, rounds: int, size_mib: int) -> dict[str, Any]:
    path = make_file(size_mib)
    offsets = offsets_for(size_mib << 20, 1 << 16, seed=10)
    fd, offsets_file = tempfile.mkstemp(prefix="winaio-bench-offsets-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(offsets, f)
    children = ("aiofile", "aiofiles")
    unavailable: dict[str, str] = {}

    def row(method: str) -> Callable[[int], float]:
        if method in children:

            def child(_: int) -> float:
                if method in unavailable:
                    return float("nan")
                got = run_child(method, path, offsets_file, qd, seconds)
                if "unavailable" in got:
                    unavailable[method] = got["unavailable"]
                    return float("nan")
                return float(got["reads_per_s"])

            return child
        return lambda _: run_reads(method, path, offsets, qd, seconds)

    methods = ["winaio.aio", "run_in_executor", "aiofile", "aiofiles", "pread"]
    try:
        results = _rounds({m: row(m) for m in methods}, 0, rounds)
    finally:
        os.unlink(path)
        os.unlink(offsets_file)
    report = _report(results, "run_in_executor", unit="reads/s", higher_is_better=True)
    report["qd"] = qd
    for method, reason in unavailable.items():
        report["rows"][method] = {"unavailable": reason}
    ratio = _ratio_of_medians(results, "winaio.aio", "aiofile")
    report["winaio_over_aiofile"] = ratio
    return report


# ---------------------------------------------------------------------------------- timers


def _timers_winaio(count: int, ahead: float, warm: bool = True) -> dict[str, float]:
    fired: list[float] = []
    done = threading.Event()
    clock = time.perf_counter
    lock = threading.Lock()

    def callback(instance: Any) -> None:
        now = clock()
        with lock:
            fired.append(now)
            if len(fired) == count:
                done.set()

    with winaio.ThreadPool(max_threads=4, min_threads=4 if warm else 0) as pool:
        timers = [pool.create_timer(callback) for _ in range(count)]
        if warm:  # the wait thread is up too (a timer far ahead), every worker waiting
            timers.append(pool.create_timer(callback))
            timers[-1].set(3600.0)
            time.sleep(0.01)
        start = clock()
        due = start + ahead
        for timer in timers[:count]:
            timer.set(max(due - clock(), 0.0))
        armed = clock()
        done.wait(30)
        for timer in timers:
            timer.close()
    return {
        "arm_us": (armed - start) / count * 1e6,
        "fire_span_ms": (max(fired) - due) * 1e3,
        "late_p50_ms": (statistics.median(fired) - due) * 1e3,
    }


def _timers_asyncio(count: int, ahead: float) -> dict[str, float]:
    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        done = loop.create_future()
        clock = time.perf_counter

        def callback() -> None:
            fired.append(clock())
            if len(fired) == count:
                done.set_result(None)

        start = clock()
        due = start + ahead
        for _ in range(count):
            loop.call_later(max(due - clock(), 0.0), callback)
        armed = clock()
        await done
        return {
            "arm_us": (armed - start) / count * 1e6,
            "fire_span_ms": (max(fired) - due) * 1e3,
            "late_p50_ms": (statistics.median(fired) - due) * 1e3,
        }

    return asyncio.run(main())


def bench_timers(count: int, rounds: int) -> dict[str, Any]:
    rows: dict[str, Callable[[int, float], dict[str, float]]] = {
        "winaio.timers": _timers_winaio,
        "winaio.timers[cold]": lambda n, ahead: _timers_winaio(n, ahead, warm=False),
        "asyncio.call_later": _timers_asyncio,
    }
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in rows}
    names = list(rows)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            per_round[name].append(rows[name](count, 0.05))
    out: dict[str, Any] = {"count": count, "rows": {}}
    for name, values in per_round.items():
        out["rows"][name] = {key: statistics.median(v[key] for v in values) for key in values[0]}
        out["rows"][name]["rounds_fire_span_ms"] = [round(v["fire_span_ms"], 2) for v in values]
    a = out["rows"]["asyncio.call_later"]
    for name, suffix in (("winaio.timers", ""), ("winaio.timers[cold]", "_cold")):
        w = out["rows"][name]
        out[f"arm_ratio_winaio{suffix}_over_asyncio"] = w["arm_us"] / a["arm_us"]
        out[f"fire_span_ratio_winaio{suffix}_over_asyncio"] = w["fire_span_ms"] / max(
            a["fire_span_ms"], 1e-3
        )
    return out


# ---------------------------------------------------------------------------------- rounds


def _rounds(rows: dict[str, Callable[[int], float]], n: int, rounds: int) -> dict[str, list[float]]:
    names = list(rows)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            print(f"  round {r + 1}/{rounds}: {name}", file=sys.stderr)
            results[name].append(rows[name](n))
    return results


def _ratio_of_medians(results: dict[str, list[float]], a: str, b: str) -> float | None:
    va = [x for x in results.get(a, []) if x == x]
    vb = [x for x in results.get(b, []) if x == x]
    if not va or not vb:
        return None
    return statistics.median(va) / statistics.median(vb)


def _report(
    results: dict[str, list[float]], base: str, *, unit: str, higher_is_better: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": unit, "rows": {}}
    base_values = results[base]
    for name, values in results.items():
        clean = [v for v in values if v == v]
        if not clean:
            out["rows"][name] = {"unavailable": "no measurement"}
            continue
        median = statistics.median(clean)
        row: dict[str, Any] = {
            "median": round(median, 1),
            "rounds": [round(v, 1) for v in values],
            "noise_pct": round((max(clean) - min(clean)) / median * 100, 1),
        }
        pairs = [a / b for a, b in zip(values, base_values, strict=True) if a == a and b == b]
        if name != base and pairs:
            row[f"ratio_to_{base}"] = round(statistics.median(pairs), 3)
        out["rows"][name] = row
    return out


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "-C", HERE, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()  # fmt: skip
    except OSError:
        commit = "?"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "backend": winaio.testing.available_backends(),
    }


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []

    def add(name: str, value: float | None, op: str, goal: float) -> None:
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        out.append({"target": name, "value": value, "goal": f"{op} {goal}", "met": met})

    rows = report["throughput"]["rows"]
    add("throughput winaio.submit / tpe", rows["winaio.submit"].get("ratio_to_tpe"), ">=", 1.0)
    add("throughput winaio.call / tpe", rows["winaio.call"].get("ratio_to_tpe"), ">=", 1.0)
    add("latency p50 winaio / tpe", report["latency"]["p50_ratio_winaio_over_tpe"], "<=", 1.0)
    reads = report["aio_reads"]["rows"]
    add("aio reads winaio / run_in_executor", reads["winaio.aio"].get("ratio_to_run_in_executor"),
        ">=", 2.0)  # fmt: skip
    add("aio reads winaio / aiofile", report["aio_reads"]["winaio_over_aiofile"], ">=", 1.2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--qd", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--timers", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="3 rounds, shorter runs")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated subset of: " + ", ".join(SECTIONS))  # fmt: skip
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument(
        "--no-latency-qos",
        dest="latency_qos",
        action="store_false",
        help="do not hold /dev/cpu_dma_latency at 0 during the run (benchmarks/README.md)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-path", help=argparse.SUPPRESS)
    parser.add_argument("--child-offsets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if os.environ.get(CRASH_ENV) == args.child:
            os.kill(os.getpid(), signal.SIGILL)
        if os.environ.get(MISSING_ENV) == args.child:
            raise ModuleNotFoundError(f"No module named {args.child!r} (simulated)")
        with open(args.child_offsets) as f:
            offsets = json.load(f)
        rate = run_reads(args.child, args.child_path, offsets, args.qd, args.seconds)
        print(json.dumps({"reads_per_s": rate}))
        return 0
    if args.quick:
        args.rounds, args.items, args.samples, args.seconds = 3, 20_000, 200, 0.5
    report: dict[str, Any] = {"machine": machine(), "params": vars(args)}
    sections = args.sections.split(",")
    for name in sections:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}")
    with LatencyQoS(args.latency_qos) as qos:
        measure(args, sections, report)
        report["latency_qos"] = qos.record()
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


def measure(args: argparse.Namespace, sections: list[str], report: dict[str, Any]) -> None:
    """Every section asked for, into ``report`` (with the targets when every section ran)."""
    if "throughput" in sections:
        print("throughput", file=sys.stderr)
        report["throughput"] = bench_throughput(args.threads, args.items, args.rounds)
    if "latency" in sections:
        print("latency", file=sys.stderr)
        report["latency"] = bench_latency(args.threads, args.samples, args.rounds)
    if "aio_reads" in sections:
        print("aio reads", file=sys.stderr)
        report["aio_reads"] = bench_aio_reads(args.qd, args.seconds, args.rounds, args.size_mib)
    if "timers" in sections:
        print("timers", file=sys.stderr)
        report["timers"] = bench_timers(args.timers, args.rounds)
    if len(sections) == len(SECTIONS):
        report["targets"] = targets(report)


if __name__ == "__main__":
    raise SystemExit(main())
