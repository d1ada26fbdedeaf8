"""Draw bench_io.py's results at a glance: IOPS per queue depth, winaio against its ceilings.

One panel per mode (page cache / O_DIRECT), queue depth on the x axis, median IOPS on a log
y axis with the min-max of the rounds as error bars. winaio's rows are solid lines, the ceilings
(the raw Python io_uring loop, fio, pread) dashed, other anchors dotted. Rows the run marked
unavailable are listed under the chart with their reason.

matplotlib is a benchmark-only dependency (the ``bench`` extra: ``pip install -e '.[bench]'``).

Usage: ``.venv/bin/python benchmarks/plot_io.py benchmarks/recorded/bench_io-DATE.json
[-o chart.png]`` (default output: the JSON's name with ``.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: row key -> (label, style); the order is the legend's.
SERIES: dict[tuple[str, str | None], tuple[str, dict[str, Any]]] = {
    ("winaio.a.core", "io_uring"): ("winaio core: port (io_uring)", {"color": "C0", "ls": "-"}),
    ("winaio.a.win32", "io_uring"): ("winaio.win32: port (io_uring)", {"color": "C1", "ls": "-"}),
    ("winaio.b.core", "io_uring"): ("winaio core: APC (io_uring)", {"color": "C2", "ls": "-"}),
    ("winaio.a.core", "threads"): ("winaio core: port (threads)", {"color": "C4", "ls": "-"}),
    ("raw_uring", None): ("raw Python io_uring loop", {"color": "k", "ls": "--"}),
    ("fio", None): ("fio io_uring", {"color": "C3", "ls": "--"}),
    ("pread", None): ("pread (QD1)", {"color": "C7", "ls": "--"}),
    ("preadv_nowait", None): ("preadv2 RWF_NOWAIT loop", {"color": "C7", "ls": "-."}),
    ("liburing", None): ("liburing", {"color": "C5", "ls": ":"}),
    ("uring-api", None): ("uring-api", {"color": "C6", "ls": ":"}),
    ("caio", None): ("caio", {"color": "C8", "ls": ":"}),
    ("threadpool", None): ("ThreadPoolExecutor", {"color": "C9", "ls": ":"}),
}
TITLES = {"buffered": "page cache (buffered)", "direct": "O_DIRECT"}


def series(report: dict[str, Any], mode: str) -> dict[tuple[str, str | None], list[Any]]:
    """(method, backend) -> [(qd, median, low, high), ...] for the measured rows of ``mode``."""
    out: dict[tuple[str, str | None], list[Any]] = {}
    for row in report["rows"]:
        key = (row["method"], row["backend"])
        if row["mode"] != mode or key not in SERIES or "iops_median" not in row:
            continue
        rounds = row.get("iops_rounds") or [row["iops_median"]]
        out.setdefault(key, []).append((row["qd"], row["iops_median"], min(rounds), max(rounds)))
    return {k: sorted(v) for k, v in out.items()}


def unavailable(report: dict[str, Any]) -> list[str]:
    seen: dict[str, str] = {}
    for row in report["rows"]:
        why = row.get("unavailable")
        if why and (row["method"], row["backend"]) in SERIES:
            seen.setdefault(f"{row['method']} ({row['mode']})", why)
    return [f"{name}: {why}" for name, why in seen.items()]


def draw(report: dict[str, Any], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ("buffered", "direct") if m in report["config"]["modes"]]
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 5.2), squeeze=False)
    qds = report["config"]["qd"]
    for ax, mode in zip(axes[0], modes, strict=True):
        data = series(report, mode)
        for key, (label, style) in SERIES.items():
            points = data.get(key)
            if not points:
                continue
            x = [qds.index(p[0]) for p in points]
            y = [p[1] for p in points]
            err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label, lw=1.6, **style)
        ax.set_yscale("log")
        ax.set_xticks(range(len(qds)), [f"QD{q}" for q in qds])
        ax.set_title(TITLES.get(mode, mode))
        ax.set_xlabel("4 KiB random reads kept in flight")
        ax.set_ylabel("IOPS (median of rounds; bars: min-max)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    machine = report["machine"]
    source = machine.get("source_at_start", {})
    fig.suptitle(
        f"bench_io - winaio {machine.get('winaio')} @ {source.get('commit', '?')}, "
        f"{machine.get('cpus')} vCPU {machine.get('cpu_model', '')}, "
        f"{report['config']['rounds']} rounds x {report['config']['duration_s']} s",
        fontsize=10,
    )
    notes = unavailable(report)
    if notes:
        fig.text(0.01, 0.01, "\n".join(notes)[:1500], fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.04 + 0.012 * len(notes), 1, 0.95))
    fig.savefig(output, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("report", help="a JSON written by bench_io.py")
    ap.add_argument("-o", "--output", default=None, help="the PNG to write")
    args = ap.parse_args(argv)
    path = Path(args.report)
    report = json.loads(path.read_text())
    if "bench_io.py" in report and "rows" not in report:  # a run_all.py document
        report = report["bench_io.py"]
    output = Path(args.output) if args.output else path.with_suffix(".png")
    try:
        draw(report, output)
    except ImportError as exc:
        print(f"matplotlib is needed: pip install -e '.[bench]' ({exc})", file=sys.stderr)
        return 2
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
