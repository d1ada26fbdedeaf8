"""Per thread of a bench_sockets server under the C=64 client: CPU (user / kernel), context
switches and syscalls per echo. Not a test; prints one JSON object.

Run: ``flock /work/coord/bench.lock .venv/bin/python benchmarks/sock_threads.py [--rounds 3]
[--duration 3] [--servers winaio.core.t1,asyncio_protocol,raw_uring@coop] [--base-src DIR]
[--no-syscalls] [--output F]``.

What it answers: where a server's CPU per echo goes, thread by thread (winaio's port thread
``echo-port-0`` against its ring thread ``winaio-uring-0``; asyncio's and the raw loops' single
``main``), and what each thread asks of the kernel per echo: syscalls by type, futex waits
and wakes (the GIL's and the parkers' hand-offs), the wake-ups it makes (``sched_wakeup``: a
send waking the client), and how often it is switched out, asleep (voluntary) or preempted
(involuntary).

Method (perf-anchors.md §0): every server in its own process (``bench_sockets.py --serve``, so
``KIND@base``/``@coop``/... suffixes work as there), warmed up with ``--server-warmup`` C=64
echoes; then interleaved rounds (every server once, the starting one rotating), each a
``bench_sockets.py --client c64`` run of ``--duration`` seconds. Per run: ``/proc/PID/task/*/
stat`` and ``status`` before and after (user / kernel ticks, voluntary / involuntary
switches); then, unless ``--no-syscalls``, a second run of the same length under ``perf stat
--per-thread`` counting syscall and scheduler tracepoints (a separate run: counting
tracepoints costs kernel time, which would bias the first run's split). Everything is per
echo (the client's measured calls; the client's warm-up counts in the numerators: an upper
bound, equal for every row). Medians over rounds, and per-round ratios against
``asyncio_protocol`` (same round: the machine's state moves between rounds).

``--pin`` puts every thread of each server on CPU 0 and the clients on CPU 1 (before the
warm-up and again before every run: threads started later are pinned too): the client can
then never preempt the server, and the switches left are the server's own (its threads on
one CPU) - or another process's on that CPU: pinned rows need a quiet machine.

Threads are named by ``comm`` (winaio's servers name theirs: ``sock_winaio.name_threads``);
``main`` is the process's first thread. futex ``wake`` counts FUTEX_WAKE / WAKE_BITSET (one per
hand-off of the GIL or a lock to a waiting thread), ``wait`` the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import bench_procs
from bench_procs import noise_since, source_info

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "bench_sockets.py")
SERVERS = ("winaio.core.t1", "asyncio_protocol", "raw_uring@coop")
REFERENCE = "asyncio_protocol"
#: ``--pin``: the server's threads on one CPU, the client on the other, so that the client
#: never preempts the server: what is left of the server's switches is its own.
SERVER_CPU, CLIENT_CPU = 0, 1
#: ``--base-src``: servers named ``KIND@base`` run the winaio found there (bench_sockets).
BASE_ENV = "WINAIO_BENCH_BASE_SRC"

#: (label, perf event, filter or None). Per thread: the wake-ups it makes (``sched_wakeup``
#: fires in the waker), its switches out (``sched_switch`` fires in the task switched out).
_FUTEX_WAKE = "op == 1 || op == 129 || op == 10 || op == 138"
EVENTS: tuple[tuple[str, str, str | None], ...] = (
    ("syscalls", "raw_syscalls:sys_enter", None),
    ("futex", "syscalls:sys_enter_futex", None),
    ("futex_wake", "syscalls:sys_enter_futex", _FUTEX_WAKE),
    ("io_uring_enter", "syscalls:sys_enter_io_uring_enter", None),
    ("sendto", "syscalls:sys_enter_sendto", None),
    ("recvfrom", "syscalls:sys_enter_recvfrom", None),
    ("poll", "syscalls:sys_enter_poll", None),
    ("epoll_wait", "syscalls:sys_enter_epoll_wait", None),
    ("read", "syscalls:sys_enter_read", None),
    ("write", "syscalls:sys_enter_write", None),
    ("switches", "sched:sched_switch", None),
    ("wakeups_made", "sched:sched_wakeup", None),
)


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# -- /proc -------------------------------------------------------------------------------------


def thread_names(pid: int) -> dict[int, str]:
    """tid -> name (``main`` for the first thread; ``comm`` otherwise, ``-tid`` appended when
    two threads share it)."""
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for entry in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        tid = int(entry)
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
        except FileNotFoundError:
            continue
        name = "main" if tid == pid else comm
        seen[name] = seen.get(name, 0) + 1
        names[tid] = name if seen[name] == 1 else f"{name}-{tid}"
    return names


def snapshot(pid: int) -> dict[int, tuple[int, int, int, int]]:
    """tid -> (user ticks, kernel ticks, voluntary switches, involuntary switches)."""
    out: dict[int, tuple[int, int, int, int]] = {}
    for entry in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{entry}"
        try:
            with open(f"{base}/stat") as f:
                stat = f.read()
            with open(f"{base}/status") as f:
                status = f.read()
        except FileNotFoundError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        vol = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
        inv = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M)
        assert vol is not None and inv is not None
        out[int(entry)] = (int(fields[11]), int(fields[12]), int(vol[1]), int(inv[1]))
    return out


# -- one run -----------------------------------------------------------------------------------


def client_run(port: int, opts: argparse.Namespace) -> dict[str, Any]:
    args = ["--client", "c64", "--impl", "raw", "--port", str(port)]
    args += ["--duration", str(opts.duration), "--warmup", str(opts.warmup)]
    if not opts.pin:
        return bench_procs.run_script(BENCH, args, timeout=opts.duration + opts.warmup + 60)
    run = subprocess.run(
        [sys.executable, BENCH, *args],
        capture_output=True,
        text=True,
        timeout=opts.duration + opts.warmup + 60,
        preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CPU}),
    )
    if run.returncode != 0:
        raise RuntimeError(bench_procs.last_line(run.stderr) or f"exit {run.returncode}")
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def pin_server(pid: int) -> None:
    """Every thread of the server on :data:`SERVER_CPU` (affinity is per thread)."""
    for entry in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(entry), {SERVER_CPU})


def cpu_run(server: bench_procs.ServerProcess, opts: argparse.Namespace) -> dict[str, Any]:
    """One client run: calls/s and, per thread, user/sys us, switches per echo."""
    pid = server.proc.pid
    before = snapshot(pid)
    got = client_run(server.port, opts)
    after = snapshot(pid)
    calls = got["calls"]
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    names = thread_names(pid)
    threads: dict[str, dict[str, float]] = {}
    for tid, (u1, k1, v1, i1) in after.items():
        u0, k0, v0, i0 = before.get(tid, (0, 0, 0, 0))
        threads[names.get(tid, str(tid))] = {
            "user_us": (u1 - u0) * tick_us / calls,
            "sys_us": (k1 - k0) * tick_us / calls,
            "voluntary_per_kecho": 1e3 * (v1 - v0) / calls,
            "involuntary_per_kecho": 1e3 * (i1 - i0) / calls,
        }
    return {"calls_per_s": got["calls_per_s"], "threads": threads}


def perf_run(server: bench_procs.ServerProcess, opts: argparse.Namespace) -> dict[str, Any]:
    """One client run under ``perf stat --per-thread``: per thread, events per echo."""
    pid = server.proc.pid
    cmd = ["perf", "stat", "--per-thread", "-x", ",", "-p", str(pid)]
    for _label, event, filt in EVENTS:
        cmd += ["-e", event] + (["--filter", filt] if filt else [])
    with tempfile.NamedTemporaryFile("w+", suffix=".perf") as out:
        perf = subprocess.Popen([*cmd, "-o", out.name], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.2)  # perf attaches to every thread before the client starts
            got = client_run(server.port, opts)
        finally:
            perf.send_signal(signal.SIGINT)
            try:
                perf.wait(10)
            except subprocess.TimeoutExpired:
                perf.kill()
                perf.wait()
        out.seek(0)
        text = out.read()
    per_echo = parse_perf(text, thread_names(pid), got["calls"])
    return {"calls_per_s": got["calls_per_s"], "per_echo": per_echo}


def parse_perf(text: str, names: dict[int, str], calls: int) -> dict[str, dict[str, float]]:
    """``perf stat --per-thread -x,`` output (lines ``comm-tid,count,unit,event,...``) -> per
    thread name, :data:`EVENTS`' labels per echo. An event listed twice (futex, then futex
    filtered) is told apart by its order per thread; ``<not counted>`` is 0 (a thread that did
    not run); ``futex_wait`` is ``futex - futex_wake``."""
    counts: dict[str, dict[str, float]] = {}
    order: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 4 or "-" not in parts[0] or not parts[0].rsplit("-", 1)[1].isdigit():
            continue
        tid = int(parts[0].rsplit("-", 1)[1])
        name = names.get(tid, str(tid))
        key = (name, parts[3])
        nth = order[key] = order.get(key, -1) + 1
        labels = [label for label, event, _ in EVENTS if event == parts[3]]
        if nth >= len(labels):
            continue
        value = 0.0 if parts[1].startswith("<") else float(parts[1])
        counts.setdefault(name, {})[labels[nth]] = value / calls
    for row in counts.values():
        if "futex" in row and "futex_wake" in row:
            row["futex_wait"] = row["futex"] - row["futex_wake"]
    return counts


# -- report ------------------------------------------------------------------------------------


def _median_of(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per thread and field, the median over the runs that have it."""
    out: dict[str, dict[str, float]] = {}
    names = dict.fromkeys(n for run in runs for n in run)
    for name in names:
        fields = dict.fromkeys(f for run in runs if name in run for f in run[name])
        out[name] = {
            f: round(statistics.median(run[name].get(f, 0.0) for run in runs if name in run), 4)
            for f in fields
        }
    return out


def summarize(kind: str, cpu: list[dict[str, Any]], perf: list[dict[str, Any]]) -> dict[str, Any]:
    if not cpu:
        return {"unavailable": "no run"}
    threads = _median_of([r["threads"] for r in cpu])
    totals = [
        {
            "user_us": sum(t["user_us"] for t in r["threads"].values()),
            "sys_us": sum(t["sys_us"] for t in r["threads"].values()),
        }
        for r in cpu
    ]
    row: dict[str, Any] = {
        "calls_per_s_median": round(statistics.median(r["calls_per_s"] for r in cpu)),
        "calls_per_s_rounds": [round(r["calls_per_s"]) for r in cpu],
        "server_user_us_per_echo_median": round(statistics.median(t["user_us"] for t in totals), 3),
        "server_sys_us_per_echo_median": round(statistics.median(t["sys_us"] for t in totals), 3),
        "threads": threads,
    }
    if perf:
        row["syscalls_per_echo"] = _median_of([r["per_echo"] for r in perf])
        row["perf_calls_per_s_rounds"] = [round(r["calls_per_s"]) for r in perf]
    return row


def ratios(cpu: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per-round calls/s ratios against the reference, their median, and how many rounds are
    at or above 1.0 (issue 9's "reliably")."""
    ref = cpu.get(REFERENCE, [])
    out: dict[str, Any] = {}
    for kind, runs in cpu.items():
        if kind == REFERENCE or not ref:
            continue
        per = [a["calls_per_s"] / b["calls_per_s"] for a, b in zip(runs, ref, strict=False)]
        if per:
            out[f"{kind} / {REFERENCE}"] = {
                "per_round": [round(x, 3) for x in per],
                "median": round(statistics.median(per), 3),
                "rounds_at_or_above_1": sum(1 for x in per if x >= 1.0),
            }
    return out


# -- harness -----------------------------------------------------------------------------------


def harness(opts: argparse.Namespace) -> dict[str, Any]:
    kinds = [k for k in opts.servers.split(",") if k]
    servers: dict[str, bench_procs.ServerProcess] = {}
    unavailable: dict[str, str] = {}
    cpu: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    perf: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    noise: list[dict[str, float]] = []
    load_start = os.getloadavg()
    syscalls: str | bool = opts.syscalls
    if syscalls and shutil.which("perf") is None:
        syscalls = opts.syscalls = "unavailable: no perf on PATH"
    try:
        for kind in kinds:
            try:
                servers[kind] = bench_procs.ServerProcess(BENCH, kind)
            except RuntimeError as exc:
                unavailable[kind] = str(exc)
            log(f"server {kind}: {'up' if kind in servers else unavailable[kind]}")
        for server in servers.values():
            if opts.pin:
                pin_server(server.proc.pid)
            if opts.server_warmup > 0:
                args = ["--client", "c64", "--impl", "raw", "--port", str(server.port)]
                bench_procs.run_script(BENCH, [*args, "--calls", str(opts.server_warmup)], 600)
        for rnd in range(opts.rounds):
            before = bench_procs.cpu_times()
            live = [k for k in kinds if k in servers]
            shift = rnd % max(len(live), 1)
            for kind in live[shift:] + live[:shift]:
                server = servers[kind]
                try:
                    if opts.pin:
                        pin_server(server.proc.pid)  # (threads started since, too)
                    cpu[kind].append(cpu_run(server, opts))
                    if opts.syscalls is True:
                        perf[kind].append(perf_run(server, opts))
                except RuntimeError as exc:
                    unavailable[kind] = f"round {rnd}: {exc}"
                    servers.pop(kind).stop()
                    log(f"round {rnd}: {kind}: failed: {exc}")
                    continue
                main = cpu[kind][-1]
                log(f"round {rnd}: {kind}: {main['calls_per_s']:.0f} calls/s")
            noise.append(noise_since(before))
    finally:
        for server in servers.values():
            server.stop()
    rows = {k: ({"unavailable": unavailable[k]} if k in unavailable and not cpu[k] else
                summarize(k, cpu[k], perf[k])) for k in kinds}  # fmt: skip
    return {
        "benchmark": "sock_threads",
        "method": "per thread of each bench_sockets server under the c64 client: /proc ticks "
        "and switches per echo, then perf stat --per-thread tracepoint counts per echo in a "
        f"second run; {opts.duration}s runs, {opts.rounds} interleaved rounds (rotated), medians",
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count(), **source_info()},
        "load": {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "config": vars(opts),
        "syscalls": syscalls,
        "rows": rows,
        "ratios": ratios({k: v for k, v in cpu.items() if v}),
        "noise": noise,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="client warm-up (s): 0, so that every echo the server made counts (each server "
        "is warmed up once, --server-warmup)",
    )
    parser.add_argument("--server-warmup", type=int, default=200_000)
    parser.add_argument("--no-syscalls", dest="syscalls", action="store_false")
    parser.add_argument(
        "--pin",
        action="store_true",
        help=f"server threads on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}",
    )
    parser.add_argument("--base-src", help="servers named KIND@base run the winaio there")
    parser.add_argument("--output", help="also write the JSON there")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.base_src:
        os.environ[BASE_ENV] = os.path.abspath(opts.base_src)
    with contextlib.suppress(AttributeError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    bench_procs.emit(harness(opts), opts.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
