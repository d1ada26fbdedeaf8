"""64-byte echo over loopback TCP: winaio's overlapped sockets and completion ports (server and
client) against the asyncio and uvloop Protocol echoes and the raw ceilings. Not a test; prints
one JSON object.

Run: ``flock /work/coord/bench.lock .venv/bin/python benchmarks/bench_sockets.py [--quick]
[--rounds 3] [--table] [--output F]`` (uvloop: the ``bench`` extra). Method of perf-anchors.md
§0 and §4: every server in its own process, every client run in another, interleaved rounds
(every server and mode once, then again, the starting server rotating), medians, ratios between
rows of the same run. Every server first serves ``--server-warmup`` C=64 echoes, unmeasured
(a fresh asyncio server's first ~200K echoes run at a third of its rate: :func:`warm_up`).

Servers (``--serve KIND`` prints ``PORT n``): ``winaio.core.t1`` / ``winaio.core.t2`` and
``winaio.win32.t1`` / ``winaio.win32.t2`` (``sock_winaio``: the IOCP echo through the core or the
Win32 aliases, 1 or 2 port threads), ``asyncio_protocol``, ``uvloop_protocol``, ``raw_threaded``
(the ceiling) and ``raw_epoll`` (``sock_anchors``), and ``raw_uring`` (``sock_raw_uring``: a
minimal ctypes io_uring echo, the Python floor of a completion-model server; ``raw_uring@coop``
the same on a ring with COOP_TASKRUN). Server-kind suffixes for same-run rows of one winaio:
``@pure`` (no C accelerators), ``@slots-MODE`` (receive slots), ``@coop``/``@nocoop`` (rings
with / without COOP_TASKRUN), ``@base`` (another tree's winaio). A server that
cannot start, is not installed or crashes makes its rows ``{"unavailable": reason}`` (with the
signal when it was killed by one) and the run goes on.

Clients (``--client MODE --impl raw|winaio``): the same raw-socket client (``sock_anchors``)
drives every server in ``c1`` (ping-pong, p50/p99 per round trip), ``c64`` (64 connections, one
message in flight on each, calls/s) and ``pipelined`` (64 messages per ``sendall`` on one
connection); the winaio client (``sock_winaio``) drives the raw echo servers in the same modes:
rows ``winaio.client@SERVER/MODE``.

Latency (C=1): the run holds ``/dev/cpu_dma_latency`` at 0 (``_latency_qos``; ``--no-latency-qos``
turns it off): on these KVM guests an idle vCPU halts at once (cpuidle ``haltpoll``) and every
wake-up is a VM exit, which put every C=1 row, the ceilings included, at 50-65 us. The JSON's
``latency_qos`` says whether the request was held (or why not) and the cpuidle driver;
``c1_wakeup_cap`` whether the ceilings' C=1 p50 still show the cap (``sock_report.c1_cap``), in
which case the C=1 targets say ``capped`` instead of met / not met.

Every row carries the client's CPU share (the client must not be the bottleneck: the raw rows
must stay well above the others, ``client_check``) and the server's CPU per call (steadier than
wall-clock rates on a shared machine), also split into user and kernel time (``server_user_...``,
``server_sys_us_per_call_median``). ``targets`` holds issue 9's: winaio C=1 p50 <= 1.1x the
asyncio Protocol echo's and C=64 calls/s >= 1.0x its, for the 1-port-thread winaio rows (the
winaio path against asyncio's single-threaded loop), and the alias layer within 1.25x of the
core; ``info_targets`` the same bounds for the 2-thread rows, as information (``T2_NOTE``);
``info_ratios`` compares every row with the raw ceilings, asyncio, uvloop and ``raw_uring``
(``sock_report``: targets, cap, ratios, table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import sys
import time
from typing import Any

import bench_procs
import sock_anchors
from _latency_qos import LatencyQoS
from bench_procs import cpu_times, noise_since, raise_nofile, source_info
from sock_report import (
    C1_CAP_US,
    INFO_SERVERS,
    MODES,
    c1_cap,
    client_check,
    info_ratios,
    table,
    targets,
)

WINAIO_SERVERS = ("winaio.core.t1", "winaio.core.t2", "winaio.win32.t1", "winaio.win32.t2")
ANCHORS = (
    "asyncio_protocol",
    "uvloop_protocol",
    "raw_threaded",
    "raw_epoll",
    "raw_uring",
    "raw_uring@coop",
)
SERVERS = WINAIO_SERVERS + ANCHORS
T2_NOTE = (
    "2 port threads on one GIL: a completion reaped by one thread and handed to the other "
    "(the port's LIFO waiter) costs a GIL hand-off (futex wake + sleep) per batch, and the "
    "threads take turns rather than run together; measured no faster than 1 thread in any "
    "mode (C=64 equal at best, C=1 slower) and the least steady rows. The targets compare "
    "the winaio path with asyncio's single-threaded loop, so they apply to the t1 rows; the "
    "t2 rows are reported against the same bounds as information (issue 9's Sockets part)."
)
#: ``--base-src``: a winaio server named ``KIND@base`` runs the winaio found there.
BASE_SUFFIX, BASE_ENV = "@base", "WINAIO_BENCH_BASE_SRC"
#: A winaio server named ``KIND@pure`` runs without the optional C accelerators
#: (``WINAIO_PURE_PYTHON=1``, the accelerators' switch).
PURE_SUFFIX = "@pure"
#: A winaio server named ``KIND@slots-MODE`` runs with the sockets' receive slots in ``MODE``
#: (``off``, ``py``, ``c``: ``WINAIO_SLOTS``, ``_io._accel.use_slots``), for same-run rows.
SLOTS_SUFFIX = "@slots-"
#: A winaio server named ``KIND@coop`` sets its io_uring rings up with COOP_TASKRUN (task work
#: without the IPI), ``KIND@nocoop`` without it (``WINAIO_URING_COOP=1`` / ``0``), whatever the
#: default is.
COOP_SUFFIX, NOCOOP_SUFFIX = "@coop", "@nocoop"
#: ``raw_uring@coop``: the raw io_uring echo on a ring with COOP_TASKRUN|TASKRUN_FLAG.
RAW_URING_COOP = "raw_uring@coop"
#: Test hooks: a simulated crashing / missing server (``_test_hooks``).
CRASH_ENV, MISSING_ENV = "WINAIO_BENCH_CRASH", "WINAIO_BENCH_MISSING"


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# -- child processes ---------------------------------------------------------------------------


def serve(kind: str, skip: bool) -> None:
    raise_nofile()
    _test_hooks(kind)
    if SLOTS_SUFFIX in kind:
        kind, mode = kind.split(SLOTS_SUFFIX)
        os.environ["WINAIO_SLOTS"] = mode
    for suffix, value in ((COOP_SUFFIX, "1"), (NOCOOP_SUFFIX, "0")):
        if kind.startswith("winaio.") and kind.endswith(suffix):
            kind = kind[: -len(suffix)]
            os.environ["WINAIO_URING_COOP"] = value
    if kind.endswith(PURE_SUFFIX):
        # The same winaio without its optional C accelerators (before/after in one run).
        kind = kind[: -len(PURE_SUFFIX)]
        os.environ["WINAIO_PURE_PYTHON"] = "1"
    if kind.endswith(BASE_SUFFIX):
        # Before/after in one interleaved run: this server runs the winaio of --base-src
        # (imported below, first on the path), with this tree's server code.
        kind = kind[: -len(BASE_SUFFIX)]
        sys.path.insert(0, os.environ[BASE_ENV])
    if kind.startswith("winaio."):
        import sock_winaio  # only in winaio's own server processes

        _, form, threads = kind.split(".")
        sock_winaio.serve(form, int(threads[1:]), skip)
    elif kind in ("raw_uring", RAW_URING_COOP):
        import sock_raw_uring  # ctypes and the raw ring: only in its own process

        sock_raw_uring.serve_raw_uring(coop=kind == RAW_URING_COOP)
    else:
        sock_anchors.SERVE[kind]()


def _test_hooks(kind: str) -> None:
    """The harness's own tests simulate a missing anchor and a crashing one (as
    ``io_thirdparty`` does for bench_io): ``WINAIO_BENCH_MISSING=KIND,...`` fails the server's
    start with ModuleNotFoundError; ``WINAIO_BENCH_CRASH=KIND`` kills it with SIGILL before it
    listens, ``KIND@connect`` when the first client connects."""
    if kind in os.environ.get(MISSING_ENV, "").split(","):
        raise ModuleNotFoundError(f"No module named {kind!r} (simulated: {MISSING_ENV})")
    crash = os.environ.get(CRASH_ENV, "").split(",")
    if kind in crash:
        os.kill(os.getpid(), signal.SIGILL)
    if f"{kind}@connect" in crash:
        lsock = socket.create_server(("127.0.0.1", 0))
        bench_procs.announce(lsock.getsockname()[1])
        lsock.accept()
        os.kill(os.getpid(), signal.SIGILL)


def client(mode: str, impl: str, port: int, load: sock_anchors.Load) -> dict[str, Any]:
    raise_nofile()
    if impl == "winaio":
        import sock_winaio  # only in the winaio client's processes

        return sock_winaio.CLIENTS[mode](port, load)
    return sock_anchors.CLIENTS[mode](port, load)


class Pair:
    """One (server, client implementation): the rows of every mode."""

    def __init__(self, server: str, impl: str) -> None:
        self.server, self.impl = server, impl
        #: mode -> list of (round, client result + server CPU); mode -> why it stopped.
        self.runs: dict[str, list[tuple[int, dict[str, Any]]]] = {m: [] for m in MODES}
        self.failed: dict[str, str] = {}

    def row(self, mode: str) -> str:
        prefix = "" if self.impl == "raw" else f"{self.impl}.client@"
        return f"{prefix}{self.server}/{mode}"


def measure(
    pair: Pair,
    server: bench_procs.ServerProcess,
    mode: str,
    rnd: int,
    opts: argparse.Namespace,
) -> None:
    args = [
        "--client",
        mode,
        "--impl",
        pair.impl,
        "--port",
        str(server.port),
        "--duration",
        str(opts.duration),
        "--warmup",
        str(opts.warmup),
        "--calls",
        str(opts.calls),
    ]
    if not server.alive():
        raise RuntimeError(f"server {bench_procs.exit_reason(server.proc.returncode)}")
    cpu0 = server.cpu_seconds()
    split0 = _cpu_split(server.proc.pid)
    try:
        got = bench_procs.run_script(__file__, args, timeout=opts.duration + opts.warmup + 60)
    except RuntimeError as exc:
        if server.alive():
            raise
        raise RuntimeError(f"server {bench_procs.exit_reason(server.proc.returncode)}") from exc
    if not server.alive():
        raise RuntimeError(f"server {bench_procs.exit_reason(server.proc.returncode)}")
    calls = got.get("calls") or 0
    if calls:
        # The server's CPU over the whole client run (connect, warm-up, drain included) per
        # measured call: an upper bound, comparable between rows of the same mode.
        got["server_cpu_us_per_call"] = 1e6 * (server.cpu_seconds() - cpu0) / calls
        user, system = _cpu_split(server.proc.pid)
        got["server_user_us_per_call"] = 1e6 * (user - split0[0]) / calls
        got["server_sys_us_per_call"] = 1e6 * (system - split0[1]) / calls
    pair.runs[mode].append((rnd, got))


# -- report ------------------------------------------------------------------------------------


def _cpu_split(pid: int) -> tuple[float, float]:
    """(user, kernel) CPU seconds a live process has used so far (every thread)."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(pair: Pair, mode: str, unavailable: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"server": pair.server, "client": pair.impl, "mode": mode}
    if unavailable:
        out["unavailable"] = unavailable
        return out
    runs = [r for _, r in pair.runs[mode]]
    if mode in pair.failed:
        out["failed"] = pair.failed[mode]
        if not runs:
            out["unavailable"] = f"unavailable: {pair.failed[mode]}"
            return out
    rates = [r["calls_per_s"] for r in runs]
    med = statistics.median(rates)
    out.update(
        calls_per_s_median=round(med),
        p50_us_median=round(statistics.median(r["p50_us"] for r in runs), 1),
        p99_us_median=round(statistics.median(r["p99_us"] for r in runs), 1),
        calls_per_s_rounds=[round(x) for x in rates],
        p50_us_rounds=[round(r["p50_us"], 1) for r in runs],
        spread_pct=round(100.0 * (max(rates) - min(rates)) / med, 1) if med else None,
        errors=sum(r.get("errors", 0) for r in runs),
        client_cpu_pct_median=round(statistics.median(r["client_cpu_pct"] for r in runs), 1),
        # The client's share of a core over calls/s (its warm-up at the same rate): CPU per call.
        client_cpu_us_per_call_median=round(
            statistics.median(1e4 * r["client_cpu_pct"] / r["calls_per_s"] for r in runs), 2
        ),
    )
    server_cpu = [r["server_cpu_us_per_call"] for r in runs if "server_cpu_us_per_call" in r]
    if server_cpu:
        out["server_cpu_us_per_call_median"] = round(statistics.median(server_cpu), 2)
    # The same split into user and kernel time (where the server's CPU goes: its Python, or
    # the syscalls and the network stack it drives).
    for key in ("server_user_us_per_call", "server_sys_us_per_call"):
        split = [r[key] for r in runs if key in r]
        if split:
            out[f"{key}_median"] = round(statistics.median(split), 2)
    # Per round too (c64): the server's CPU per echo can then be paired round by round between
    # rows, as the rates are (``sock_report.target``'s per-round ratios).
    for key in ("server_cpu_us_per_call", "server_user_us_per_call", "server_sys_us_per_call"):
        if all(key in r for r in runs):
            out[f"{key}_rounds"] = [round(r[key], 2) for r in runs]
    return out


# -- harness -----------------------------------------------------------------------------------


def winaio_backend() -> dict[str, str]:
    """The backend the winaio processes get (same machine, same environment)."""
    try:
        from winaio._runtime import selection  # the harness itself never runs winaio I/O

        chosen = selection()
        return {"name": chosen.name, "reason": chosen.reason}
    except Exception as exc:  # the rows then say what failed
        return {"name": "unknown", "reason": str(exc)}


def warm_up(servers: dict[str, bench_procs.ServerProcess], opts: argparse.Namespace) -> None:
    """Serve ``opts.server_warmup`` C=64 echoes on every server before the first round, not
    measured: a fresh asyncio server runs its first ~200K echoes at a third of its rate
    (``sock.recv(256 KiB)`` per read: glibc trims and regrows the heap top per call until its
    layout settles; perf: page faults, munmap), and the rows compare steady states."""
    if opts.server_warmup <= 0:
        return
    for kind, server in servers.items():
        args = ["--client", "c64", "--impl", "raw", "--port", str(server.port)]
        try:
            bench_procs.run_script(__file__, [*args, "--calls", str(opts.server_warmup)], 600)
        except RuntimeError as exc:  # its rows say so when measured
            log(f"server {kind}: warm-up failed: {exc}")


def harness(opts: argparse.Namespace) -> dict[str, Any]:
    kinds = [k for k in opts.servers.split(",") if k]
    on = [k for k in opts.winaio_client_on.split(",") if k]
    pairs = {kind: Pair(kind, "raw") for kind in kinds}
    for kind in on:
        pairs[f"winaio.client@{kind}"] = Pair(kind, "winaio")
    extra = [] if opts.skip else ["--no-skip"]
    servers: dict[str, bench_procs.ServerProcess] = {}
    unavailable: dict[str, str] = {}
    load_start = os.getloadavg()
    for kind in dict.fromkeys([*kinds, *on]):
        try:
            servers[kind] = bench_procs.ServerProcess(__file__, kind, extra)
        except Exception as exc:
            unavailable[kind] = f"unavailable: {exc}"
        log(f"server {kind}: {'up' if kind in servers else unavailable[kind]}")
    noise: list[dict[str, float]] = []
    order = list(pairs)
    try:
        warm_up(servers, opts)
        for rnd in range(opts.rounds):
            before = cpu_times()
            shift = rnd % len(order)
            for key in order[shift:] + order[:shift]:
                pair = pairs[key]
                server = servers.get(pair.server)
                if server is None:
                    continue
                for mode in opts.modes.split(","):
                    if mode in pair.failed:
                        continue
                    try:
                        measure(pair, server, mode, rnd, opts)
                    except Exception as exc:
                        pair.failed[mode] = str(exc)
                        log(f"round {rnd}: {pair.row(mode)}: failed: {exc}")
                        continue
                    got = pair.runs[mode][-1][1]
                    log(
                        f"round {rnd}: {pair.row(mode)}: {got['calls_per_s']:.0f} calls/s, "
                        f"p50 {got['p50_us']:.0f} us, client CPU {got['client_cpu_pct']:.0f}%"
                    )
            noise.append(noise_since(before))
    finally:
        for server in servers.values():
            server.stop()

    rows: dict[str, dict[str, Any]] = {}
    for pair in pairs.values():
        for mode in opts.modes.split(","):
            rows[pair.row(mode)] = summarize(pair, mode, unavailable.get(pair.server))
    cap = c1_cap(rows, opts.c1_cap_us)
    return {
        "benchmark": "bench_sockets",
        "method": "perf-anchors.md §0/§4: 64-byte echo over loopback TCP; every server in its "
        f"own process, every client run in another; {opts.duration}s runs after {opts.warmup}s "
        f"warm-up, {opts.rounds} interleaved rounds (rotated), medians",
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cpu_model": bench_procs.cpu_model(),
            "winaio_backend": winaio_backend(),
            **source_info(),
        },
        "load": {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "config": {
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "server_warmup_c64_echoes": opts.server_warmup,
            "rounds": opts.rounds,
            "calls_per_run": opts.calls or None,
            "winaio_skip_completion_port_on_success": opts.skip,
            "connections_c64": 64,
            "pipeline_depth": 64,
            "message_bytes": 64,
        },
        "rows": rows,
        "c1_wakeup_cap": cap,
        "targets": targets(rows, pairs, cap=cap),
        "info_targets": {"note": T2_NOTE, "rows": targets(rows, pairs, INFO_SERVERS, cap)},
        "info_ratios": info_ratios(rows),
        "client_check": client_check(rows),
        "noise": noise,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--serve", help="(child) run the echo server KIND")
    parser.add_argument("--client", choices=MODES, help="(child) run one client MODE")
    parser.add_argument("--impl", choices=["raw", "winaio"], default="raw")
    parser.add_argument("--port", type=int)
    parser.add_argument("--duration", type=float, default=2.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--calls",
        type=int,
        default=0,
        help="instead of timed runs: exactly N measured calls per run (batches when pipelined), "
        "no warm-up (the harness's own tests)",
    )
    parser.add_argument(
        "--server-warmup",
        type=int,
        default=200_000,
        help="C=64 echoes every server serves before the first round, not measured "
        "(0: none; --quick and --calls: none)",
    )
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--winaio-client-on",
        default="raw_threaded",
        help="servers the winaio client drives (comma list; empty: none)",
    )
    parser.add_argument(
        "--no-skip",
        dest="skip",
        action="store_false",
        help="winaio servers: no FILE_SKIP_COMPLETION_PORT_ON_SUCCESS",
    )
    parser.add_argument(
        "--base-src",
        help="a src directory holding another winaio (e.g. main's, from git archive): servers "
        "named KIND@base (in --servers) run it, for before/after rows in one interleaved run",
    )
    parser.add_argument(
        "--no-latency-qos",
        dest="latency_qos",
        action="store_false",
        help="do not hold /dev/cpu_dma_latency at 0 during the run (C=1 rows then include the "
        "idle vCPU's wake-up: see _latency_qos.py)",
    )
    parser.add_argument(
        "--c1-cap-us",
        type=float,
        default=C1_CAP_US,
        help="C=1 p50 above which every ceiling counts as capped by the idle wake-up "
        "(sock_report.C1_CAP_US)",
    )
    parser.add_argument("--quick", action="store_true", help="0.5 s runs, 1 round")
    parser.add_argument("--table", action="store_true", help="markdown table on stderr")
    parser.add_argument("--output", help="also write the JSON there")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.serve:
        serve(opts.serve, opts.skip)
        return 0
    if opts.client:
        load = sock_anchors.Load(opts.duration, opts.warmup, opts.calls)
        result = client(opts.client, opts.impl, opts.port, load)
        print(json.dumps(result))
        return 0
    if opts.base_src:
        os.environ[BASE_ENV] = os.path.abspath(opts.base_src)  # the servers inherit it
    if opts.quick:
        opts.duration, opts.warmup, opts.rounds = 0.5, 0.1, 1
    if opts.quick or opts.calls:
        opts.server_warmup = 0
    started = time.monotonic()
    # Held by this process for the whole run: the request is machine-wide, so the servers and
    # clients (its children) run under it too.
    with LatencyQoS(opts.latency_qos) as qos:
        log(f"latency QoS: {qos.state}" + (f" ({qos.reason})" if qos.reason else ""))
        result = harness(opts)
        result["latency_qos"] = qos.record()
    result["wall_s"] = round(time.monotonic() - started, 1)
    bench_procs.emit(result, opts.output)
    if opts.table:
        log(table(result["rows"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
