"""4 KiB random-read IOPS: winaio's overlapped file I/O against its anchors and ceilings.

Not a test and not run in CI: it prints one JSON document on stdout (progress goes to stderr).
See benchmarks/README.md for what every row means. The method is the one of
``shared/spec/perf-anchors.md`` section 0:

- one file (default 1 GiB of random data, created once in ``--path``, deleted at the end unless
  ``--keep``), 4 KiB reads at random 4 KiB-aligned offsets (one table shared by every row);
- two modes: ``buffered`` (page cache warm: the file is re-read with ``cat > /dev/null`` before
  every buffered run, because DAMON evicts cold pages on these VMs, and its residency is checked
  with mincore before and after the run) and ``direct`` (O_DIRECT / FILE_FLAG_NO_BUFFERING,
  4096-aligned buffers);
- queue depths 1, 32 and 128 (reads kept in flight; every completion re-arms one read into the
  same per-slot buffer);
- **interleaved rounds**: every configuration runs once, then again (``--rounds``, >= 3), each
  run ``--duration`` seconds after an unmeasured ``--warmup``; the median is reported. The machine
  is a noisy 2-vCPU VM, so compare ratios between rows, not absolute values.

Rows (``--methods`` selects some): winaio's (``io_winaio.py``: (a) port, (b) completion routines,
each through ``winaio.win32`` and the core, on the io_uring and thread backends) and the anchors
(``io_anchors.py``): ``raw_uring`` (the pure-Python ctypes io_uring loop, ``raw_uring.py``: the
Python ceiling), ``pread`` and ``fio`` (the synchronous and native ceilings), ``threadpool``, and
the third-party Python anchors ``caio``, ``aiofile``, ``liburing``, ``uring-api``, **each run in
its own child process**: one that crashes (the liburing wheel dies with SIGILL on CPUs without
AVX-512) or is missing makes its rows ``"unavailable": "<why>"`` and the run goes on.

The run holds ``/dev/cpu_dma_latency`` at 0 (``_latency_qos``; ``--no-latency-qos`` turns it
off; ``latency_qos`` in the JSON): the O_DIRECT QD1 rows sleep for every read, and on these KVM
guests the wake-up of a halted idle vCPU is a VM exit (~5 us of a ~50 us read: pread 51 -> 46 us
with the request held, same session, 2026-12-05); the buffered rows never sleep.

The JSON ``targets`` block lists every issue-9 target with its measured ratio (``io_report.py``);
``benchmarks/plot_io.py`` draws the IOPS-per-QD chart from the JSON. ``--install`` installs the
anchors first (pinned pip packages into this interpreter's environment, ``apt-get install -y
fio``); they are benchmark-only and deliberately not runtime requirements.

Usage::

    .venv/bin/python benchmarks/bench_io.py [--install] [--path DIR] [--size-mib 1024]
        [--duration 2] [--warmup 0.3] [--rounds 3] [--qd 1,32,128] [--modes buffered,direct]
        [--methods winaio.a.core,raw_uring,...] [--keep] [--file PATH] [--table] [--output F]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import io_anchors
import io_report
import io_winaio
from _latency_qos import LatencyQoS
from bench_procs import cpu_model as _cpu_model
from io_common import (
    MODES,
    Context,
    CpuSample,
    Runner,
    log,
    make_file,
    make_offsets,
    resident_fraction,
    save_offsets,
    warm,
)
from io_report import Row

import winaio
from winaio import testing
from winaio._runtime import backend as backend_instance

#: perf-anchors.md section 2 (same kind of VM, medians of 3 x 2 s) and issue 9's table - context,
#: not targets.
PUBLISHED_ANCHORS = {
    "perf_anchors_md": {
        "buffered": {"pread_qd1": 631_000, "liburing_qd32": 592_000, "caio_qd32": 225_000,
                     "fio_io_uring_qd32": 393_000},
        "direct": {"pread_qd1": 17_000, "liburing_qd128": 86_000, "fio_io_uring_qd128": 88_000},
    },
    "issue_9": {
        "direct": {"raw_qd1": 26_000, "raw_qd32": 105_000, "raw_qd128": 170_000,
                   "fio_qd1": 31_000, "fio_qd32": 155_000, "fio_qd128": 183_000},
        "buffered": {"raw_qd1": 176_000, "raw_qd32": 435_000, "pread_qd1": 724_000},
    },
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the method table

Make = Callable[[Context, str, int, "str | None"], Runner]


@dataclass(frozen=True)
class Method:
    name: str
    describe: str
    backends: tuple[str | None, ...]
    make: Make
    #: "n/a: why" for a (mode, qd) the method does not cover, else None
    covers: Callable[[str, int], str | None] = lambda mode, qd: None
    #: a third-party anchor run in a child process (``io_thirdparty.THIRD_PARTY``)
    child: bool = False


def _winaio(cls: Any) -> Make:
    return lambda ctx, mode, qd, backend: cls(ctx, mode, qd, backend)


def _local(cls: Any) -> Make:
    return lambda ctx, mode, qd, backend: cls(ctx, mode, qd)


def _fio(tuned: bool) -> Make:
    return lambda ctx, mode, qd, backend: io_anchors.FioRunner(ctx, mode, qd, tuned)


def _child(name: str) -> Make:
    return lambda ctx, mode, qd, backend: io_anchors.ChildRunner(ctx, name, mode, qd)


BACKENDS = io_winaio.WINAIO_BACKENDS
METHODS = [
    Method("winaio.a.win32", "(a) ReadFile + GetQueuedCompletionStatusEx, re-arm per entry",
           BACKENDS, _winaio(io_winaio.Win32PortRunner)),
    Method("winaio.a.core", "(a) File.start_read + CompletionPort.get_many, re-arm per packet",
           BACKENDS, _winaio(io_winaio.CorePortRunner)),
    Method("winaio.a.core.pure", "winaio.a.core with the cached-read fast path in Python "
           "(information: the C accelerator's row is winaio.a.core)", ("io_uring",),
           _winaio(io_winaio.CorePurePortRunner),
           covers=lambda mode, qd: None if mode == "buffered" else "n/a: page cache only"),
    Method("winaio.a.win32.pure", "winaio.a.win32 with the cached-read fast path in Python "
           "(information)", ("io_uring",), _winaio(io_winaio.Win32PurePortRunner),
           covers=lambda mode, qd: None if mode == "buffered" else "n/a: page cache only"),
    Method("winaio.b.win32", "(b) ReadFileEx + SleepEx(INFINITE, TRUE), re-arm in the routine",
           BACKENDS, _winaio(io_winaio.Win32ApcRunner)),
    Method("winaio.b.core", "(b) File.start_read(routine=) + winaio.sleep(alertable), re-arm",
           BACKENDS, _winaio(io_winaio.CoreApcRunner)),
    Method("raw_uring", "pure-Python ctypes io_uring: prep, enter(n, 1), reap all, re-arm each",
           (None,), _local(io_anchors.RawUringRunner)),
    Method("pread", "os.preadv loop, one thread, one aligned buffer (synchronous)", (None,),
           _local(io_anchors.PreadRunner),
           covers=lambda mode, qd: None if qd == 1 else "n/a: synchronous, QD1 only"),
    Method("preadv_nowait", "os.preadv(RWF_NOWAIT) over QD buffers, one thread: the syscall "
           "of winaio's cached-read fast path alone", (None,),
           _local(io_anchors.PreadvNowaitRunner),
           covers=lambda mode, qd: None if mode == "buffered" else "n/a: page cache only"),
    Method("threadpool", "ThreadPoolExecutor(N = thread backend workers) of os.preadv",
           (None,), _local(io_anchors.ThreadPoolRunner)),
    Method("fio", "fio io_uring engine, defaults (1 SQE per enter), --invalidate=0", (None,),
           _fio(False)),
    Method("fio_tuned", "fio io_uring, iodepth_batch_submit=QD/4 --fixedbufs --registerfiles",
           (None,), _fio(True),
           covers=lambda mode, qd: None if qd >= 4 else "n/a: batching needs QD >= 4"),
    Method("caio", "caio 0.12.10 linux_uring AsyncioContext, QD coroutines (child process)",
           (None,), _child("caio"), child=True),
    Method("aiofile", "aiofile 3.12.3 AIOFile.read(4096, offset), QD coroutines (child process)",
           (None,), _child("aiofile"), child=True),
    Method("liburing", "liburing 2026.3.30 raw loop: submit_and_wait(1), reap all, re-arm each "
           "(child process)", (None,), _child("liburing"), child=True),
    Method("uring-api", "uring-api 0.1.0rc5 Ring: prepare_read, wait(), re-arm each (child "
           "process)", (None,), _child("uring-api"), child=True),
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# running


def _backend_submitted(name: str | None) -> int | None:
    if name is None:
        return None
    return backend_instance(name).statistics().submitted


def run_one(ctx: Context, method: Method, row: Row, args: argparse.Namespace) -> dict[str, Any]:
    """One measured run of one row. An anchor whose child crashed raises AnchorCrashed."""
    record: dict[str, Any] = {}
    if row.mode == "buffered":
        resident = warm(ctx.path)
        if resident < 0.99:
            resident = warm(ctx.path)
        record["resident_before"] = round(resident, 4)
    runner: Runner | None = None
    try:
        runner = method.make(ctx, row.mode, row.qd, row.backend)
        marks: dict[str, Any] = {}

        def mark() -> None:
            marks["cpu"] = CpuSample.now()
            marks["submitted"] = _backend_submitted(row.backend)

        started = CpuSample.now()
        measured = runner.measure(args.warmup, args.duration, mark)
        submitted1 = _backend_submitted(row.backend)
        end = CpuSample.now()
        before: CpuSample = marks.get("cpu") or started
        submitted0 = marks.get("submitted")
    except io_anchors.AnchorUnavailable:
        raise
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        return record
    finally:
        if runner is not None:
            try:
                runner.close()
            except Exception as exc:
                record["close_error"] = f"{type(exc).__name__}: {exc}"
    record["iops"] = measured.iops
    record["ops"] = measured.ops
    record["seconds"] = round(measured.seconds, 3)
    record["errors"] = measured.errors
    if measured.extra:
        record["extra"] = measured.extra
    record["other_cpu_pct"], record["steal_pct"] = before.other_cpu_pct(end)
    if submitted0 is not None and submitted1 is not None and measured.ops:
        # Requests the backend had to finish, per read in the *measured* phase; the rest
        # completed inside ReadFile (RWF_NOWAIT page-cache hit: Windows' fast I/O path).
        record["backend_share"] = round((submitted1 - submitted0) / measured.ops, 4)
    if row.mode == "buffered":
        record["resident_after"] = round(resident_fraction(ctx.path), 4)
    return record


def build_rows(args: argparse.Namespace) -> list[tuple[Method, Row]]:
    wanted = set(args.methods.split(",")) if args.methods else None
    known = {m.name for m in METHODS}
    if wanted and wanted - known:
        raise SystemExit(f"unknown methods {sorted(wanted - known)}; choose from {sorted(known)}")
    backends = set(args.backends.split(","))
    rows = []
    for mode in args.modes:
        for qd in args.qds:
            for method in METHODS:
                if wanted and method.name not in wanted:
                    continue
                for backend in method.backends:
                    if backend is not None and backend not in backends:
                        continue
                    row = Row(method.name, backend, mode, qd, method.describe)
                    row.status = method.covers(mode, qd)
                    rows.append((method, row))
    return rows


def mark_unavailable(ctx: Context, rows: list[tuple[Method, Row]]) -> None:
    """Rows that cannot run here get their reason before the rounds start (third-party anchors
    are probed in a child process, once per mode)."""
    available = testing.available_backends()
    probed: dict[tuple[str, str], str | None] = {}
    for method, row in rows:
        if row.status:
            continue
        if row.backend is not None and row.backend not in available:
            row.status = f"unavailable: backend {row.backend} not usable here"
        elif method.name.startswith("fio"):
            row.status = io_anchors.fio_unavailable(row.mode)
        elif method.child:
            key = (method.name, row.mode)
            if key not in probed:
                probed[key] = io_anchors.probe(method.name, ctx, row.mode)
                log(f"probe {method.name} {row.mode}: {probed[key] or 'ok'}")
            row.status = probed[key]


def mark_crashed(rows: list[tuple[Method, Row]], method: Method, why: str) -> None:
    """A child crashed: every row of that anchor is unavailable for the rest of the run (the same
    binary would crash again), with the signal that killed it."""
    for other, row in rows:
        if other is method and not row.status:
            row.status = why


# ---------------------------------------------------------------------------------------------


def source_state() -> dict[str, Any]:
    """Which winaio was measured: the git commit of its checkout and any uncommitted src files
    (benchmarks are often run on a work tree that others are editing)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(winaio.__file__))))
    state: dict[str, Any] = {"package": os.path.dirname(os.path.abspath(winaio.__file__))}
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return state
    state["commit"] = head
    state["uncommitted_src"] = [line[3:] for line in dirty if line.strip()]
    return state


def loaded_digest() -> str:
    """A digest of the winaio modules this process imported (what was really measured)."""
    digest = hashlib.sha256()
    for name in sorted(sys.modules):
        if name == "winaio" or name.startswith("winaio."):
            path = getattr(sys.modules[name], "__file__", None)
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--path", default=tempfile.gettempdir(), help="directory for the file")
    ap.add_argument("--file", default=None, help="use this existing file instead (never deleted)")
    ap.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024)")
    ap.add_argument("--duration", type=float, default=2.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.3, help="unmeasured seconds before each")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median; >= 3)")
    ap.add_argument("--qd", default="1,32,128", help="queue depths, comma separated")
    ap.add_argument("--modes", default="buffered,direct", help="buffered and/or direct")
    ap.add_argument("--methods", default="", help="comma-separated subset of the rows")
    ap.add_argument("--backends", default="io_uring,threads", help="winaio backends to measure")
    ap.add_argument("--install", action="store_true", help="pip/apt-install the anchors first")
    ap.add_argument("--keep", action="store_true", help="keep the created file")
    ap.add_argument("--table", action="store_true", help="also print a markdown table (stderr)")
    ap.add_argument("--output", default=None, help="also write the JSON to this file")
    ap.add_argument("--seed", type=int, default=20261124, help="random offsets seed")
    no_qos = "do not hold /dev/cpu_dma_latency at 0 (benchmarks/README.md)"
    ap.add_argument("--no-latency-qos", dest="latency_qos", action="store_false", help=no_qos)
    args = ap.parse_args(argv)
    args.qds = [int(x) for x in args.qd.split(",") if x]
    args.modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in args.modes):
        ap.error(f"--modes: choose from {MODES}")
    if args.rounds < 1 or any(q < 1 for q in args.qds):
        ap.error("--rounds and --qd must be >= 1")
    if args.rounds < 3:
        log("warning: fewer than 3 rounds; medians of < 3 runs are not meaningful here")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the cleanups (the test file, the offsets file)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    installed = io_anchors.install(log) if args.install else None
    source_at_start = {**source_state(), "loaded_modules_sha256": loaded_digest()}

    created = args.file is None
    if created:
        log(f"creating a {args.size_mib} MiB random file in {args.path} ...")
        path = make_file(args.path, args.size_mib << 20)
    else:
        path = os.path.abspath(args.file)
    size = os.path.getsize(path)
    offsets = make_offsets(size, args.seed)
    fd, offsets_file = tempfile.mkstemp(prefix="winaio-bench-io-offsets-", suffix=".bin")
    os.close(fd)
    save_offsets(offsets, offsets_file)

    # Create both backends before anything is measured (threads, rings, probes).
    for name in BACKENDS:
        if name in testing.available_backends():
            backend_instance(name)
    ctx = Context(path, size, offsets, io_winaio.thread_pool_size(), offsets_file=offsets_file)
    pairs = build_rows(args)
    round_noise = []
    started = time.monotonic()
    # Held for every round (machine-wide, the anchors' children too): benchmarks/README.md
    # "Latency rows".
    with LatencyQoS(args.latency_qos) as qos:
        try:
            mark_unavailable(ctx, pairs)
            log(f"{sum(1 for _, r in pairs if not r.status)} configurations x {args.rounds} rounds"
                f" of {args.duration}s")  # fmt: skip
            for rnd in range(args.rounds):
                load_before = os.getloadavg()
                cpu0 = CpuSample.now()
                runnable = [(m, r) for m, r in pairs if not r.status]
                # Rotate the start so that no configuration always runs first (or after fio).
                shift = (rnd * len(runnable)) // max(1, args.rounds)
                for method, row in runnable[shift:] + runnable[:shift]:
                    if row.status:  # its anchor crashed earlier in this round
                        continue
                    t0 = time.monotonic()
                    try:
                        record = run_one(ctx, method, row, args)
                    except io_anchors.AnchorUnavailable as exc:
                        log(f"round {rnd + 1}/{args.rounds} {row.key}: {exc}")
                        mark_crashed(pairs, method, str(exc))
                        continue
                    record["round"] = rnd
                    row.rounds.append(record)
                    record["wall_s"] = round(time.monotonic() - t0, 2)
                    shown = f"{record['iops']:,.0f} IOPS" if "iops" in record else record["error"]
                    log(f"round {rnd + 1}/{args.rounds} {row.key}: {shown} ({record['wall_s']} s)")
                other, steal = cpu0.other_cpu_pct(CpuSample.now())
                round_noise.append({"round": rnd, "loadavg_1m_before": round(load_before[0], 2),
                                    "other_cpu_pct": other, "steal_pct": steal})  # fmt: skip
        finally:
            os.unlink(offsets_file)
            if created and not args.keep:
                os.unlink(path)
            elif created:
                log(f"kept {path}")

        latency_qos = qos.record()

    source_at_end = {**source_state(), "loaded_modules_sha256": loaded_digest()}
    source_changed = {k: v for k, v in source_at_end.items() if k != "loaded_modules_sha256"} != {
        k: v for k, v in source_at_start.items() if k != "loaded_modules_sha256"
    }
    if source_changed:
        log("warning: the winaio checkout changed during the run (see machine.source_*)")
    rows = [row for _, row in pairs]
    summaries = [row.summary() for row in rows]
    spreads = [s["spread_pct"] for s in summaries if s.get("spread_pct") is not None]
    stats = {name: backend_instance(name).statistics() for name in BACKENDS}
    target_list = io_report.targets(rows, args.qds)
    report = {
        "benchmark": "bench_io: 4 KiB random reads, winaio vs anchors and ceilings",
        "machine": {
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "winaio": winaio.__version__,
            "default_backend": testing.available_backends()[0],
            "source_at_start": source_at_start,
            "source_at_end": source_at_end,
            "source_changed_during_run": source_changed,
            # The cached-read fast path's C accelerator (winaio._io._fastio): the a.* rows use
            # it when active; the .pure rows run the Python methods.
            "fast_path_accelerator": {
                "built": io_winaio.accelerator_available(),
                "active": io_winaio.accelerated(),
            },
        },
        "config": {
            "file": path if not created or args.keep else "(temporary, deleted)",
            "file_bytes": size,
            "block": 4096,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "qd": args.qds,
            "modes": args.modes,
            "thread_backend_workers": ctx.thread_workers,
            "threadpool_workers": ctx.thread_workers,
            "total_wall_s": round(time.monotonic() - started, 1),
        },
        "installed": installed,
        "latency_qos": latency_qos,
        "noise": {
            "rounds": round_noise,
            "median_row_spread_pct": round(statistics.median(spreads), 1) if spreads else None,
            "max_row_spread_pct": max(spreads) if spreads else None,
            "note": "spread = (max - min) / median over the rounds of one row; other_cpu_pct ="
            " machine-wide CPU not used by this process or its children (other tenants)",
        },
        "targets_met": f"{sum(1 for t in target_list if t.get('met'))} of {len(target_list)}"
        f" ({sum(1 for t in target_list if t.get('met') is None)} not measured)",
        "targets": target_list,
        "rows": summaries,
        "info_ratios": io_report.info_ratios(rows, args.qds),
        "backend_statistics": {
            name: {"detail": s.detail, "submitted": s.submitted, "completed": s.completed}
            for name, s in stats.items()
        },
        "published_anchors": PUBLISHED_ANCHORS,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    if args.table:
        log(io_report.markdown_table(rows))
        log(io_report.targets_markdown(target_list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
