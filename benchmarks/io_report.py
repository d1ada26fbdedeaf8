"""bench_io.py's report: one row per (method, backend, mode, QD), the issue-9 targets with their
measured ratios, comparisons without a target, and the markdown table.

Every ratio is computed between rows of the same run (medians of interleaved rounds), with the
median of the per-round ratios beside it: the steadier figure on a shared machine.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from io_common import MODES

CORE = "winaio.a.core"
WIN32 = "winaio.a.win32"


@dataclass
class Row:
    method: str
    backend: str | None
    mode: str
    qd: int
    describe: str
    status: str | None = None  # "n/a: ..." / "unavailable: ..." / None when measured
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        name = self.method if self.backend is None else f"{self.method}/{self.backend}"
        return f"{name} {self.mode} qd{self.qd}"

    def iops(self) -> list[float]:
        return [r["iops"] for r in self.rounds if "iops" in r]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "backend": self.backend,
            "mode": self.mode,
            "qd": self.qd,
            "what": self.describe,
        }
        if self.status:
            out["unavailable" if self.status.startswith("unavailable") else "status"] = self.status
            return out
        values = self.iops()
        if not values:
            out["unavailable"] = "unavailable: every round failed: " + "; ".join(
                str(r.get("error")) for r in self.rounds
            )
            out["rounds"] = self.rounds
            return out
        med = statistics.median(values)
        out["iops_median"] = round(med)
        out["us_per_op"] = round(1e6 / med, 2) if med else None
        out["spread_pct"] = round(100 * (max(values) - min(values)) / med, 1) if med else None
        out["iops_rounds"] = [round(v) for v in values]
        errors = sum(r.get("errors", 0) for r in self.rounds)
        out["errors"] = errors
        shares = [r["backend_share"] for r in self.rounds if "backend_share" in r]
        if shares:
            out["backend_share"] = round(statistics.median(shares), 4)
        res = [r["resident_before"] for r in self.rounds if "resident_before" in r]
        if res:
            out["page_cache_resident_min"] = round(min(res), 4)
            after = [r["resident_after"] for r in self.rounds if "resident_after" in r]
            out["page_cache_resident_after_min"] = round(min(after), 4) if after else None
        others = [r["other_cpu_pct"] for r in self.rounds if "other_cpu_pct" in r]
        if others:
            out["other_cpu_pct_max"] = max(others)
        extra = [r["extra"] for r in self.rounds if r.get("extra")]
        if extra:
            out["extra_last_round"] = extra[-1]
        failed = [r["error"] for r in self.rounds if "error" in r]
        if failed:
            out["failed_rounds"] = failed
        return out


def _median(row: Row | None) -> float | None:
    if row is None or row.status:
        return None
    values = row.iops()
    return statistics.median(values) if values else None


def ratio_entry(
    what: str,
    num: Row | None,
    den: Row | None,
    threshold: float | None,
    *,
    latency: bool = False,
) -> dict[str, Any]:
    """``num``/``den`` IOPS (``latency``: per-read time, i.e. den/num IOPS, which must stay
    <= ``threshold``; otherwise the ratio must reach ``threshold``)."""
    entry: dict[str, Any] = {
        "target": what,
        "numerator": num.key if num else None,
        "denominator": den.key if den else None,
    }
    a, b = _median(num), _median(den)
    if a is None or b is None or not a or not b:
        missing = [r.key for r in (num, den) if r is not None and _median(r) is None]
        reasons = [r.summary().get("unavailable") or r.status for r in (num, den) if r is not None]
        entry.update(ratio=None, met=None)
        entry["why_no_ratio"] = f"not measured: {missing or 'row not selected'}"
        if any(reasons):
            entry["why_no_ratio"] += f" ({'; '.join(str(r) for r in reasons if r)})"
        return entry
    assert num is not None and den is not None
    ratio = b / a if latency else a / b
    entry["ratio"] = round(ratio, 3)
    pairs = zip(num.iops(), den.iops(), strict=False)
    per_round = [(y / x if latency else x / y) for x, y in pairs if x and y]
    if per_round:
        entry["ratio_median_of_rounds"] = round(statistics.median(per_round), 3)
    if threshold is not None:
        if latency:
            entry["threshold_max"] = threshold
            entry["met"] = ratio <= threshold
        else:
            entry["threshold"] = threshold
            entry["met"] = ratio >= threshold
    return entry


def targets(rows: list[Row], qds: list[int]) -> list[dict[str, Any]]:
    """Every issue-9 target of bench_io with its measured ratio (``met`` None: not measured)."""
    index = {(r.method, r.backend, r.mode, r.qd): r for r in rows}

    def get(method: str, backend: str | None, mode: str, qd: int) -> Row | None:
        return index.get((method, backend, mode, qd))

    out = []
    for qd in (32, 128):
        out.append(ratio_entry(
            f"O_DIRECT QD{qd}: {CORE}/io_uring >= 0.8x the raw Python io_uring loop",
            get(CORE, "io_uring", "direct", qd), get("raw_uring", None, "direct", qd), 0.8,
        ))  # fmt: skip
    out.append(ratio_entry(
        f"O_DIRECT QD128: {CORE}/io_uring >= 0.7x fio (io_uring engine)",
        get(CORE, "io_uring", "direct", 128), get("fio", None, "direct", 128), 0.7,
    ))  # fmt: skip
    out.append(ratio_entry(
        f"O_DIRECT QD1: {CORE}/io_uring per-read latency <= 1.3x pread's",
        get(CORE, "io_uring", "direct", 1), get("pread", None, "direct", 1), 1.3, latency=True,
    ))  # fmt: skip
    out.append(ratio_entry(
        f"buffered QD32: {CORE}/io_uring >= 0.8x the raw Python io_uring loop",
        get(CORE, "io_uring", "buffered", 32), get("raw_uring", None, "buffered", 32), 0.8,
    ))  # fmt: skip
    for mode in MODES:
        for qd in qds:
            for backend in ("io_uring", "threads"):
                num, den = get(WIN32, backend, mode, qd), get(CORE, backend, mode, qd)
                if num is None and den is None:
                    continue
                out.append(ratio_entry(
                    f"{mode} QD{qd}: {WIN32}/{backend} >= 0.8x {CORE}/{backend} (alias layer)",
                    num, den, 0.8,
                ))  # fmt: skip
    for mode in MODES:
        for qd in qds:
            num, den = get(CORE, "threads", mode, qd), get("threadpool", None, mode, qd)
            if num is None and den is None:
                continue
            out.append(ratio_entry(
                f"{mode} QD{qd}: {CORE}/threads >= 0.9x a ThreadPoolExecutor of the same size",
                num, den, 0.9,
            ))  # fmt: skip
    return out


def info_ratios(rows: list[Row], qds: list[int]) -> list[dict[str, Any]]:
    """Comparisons without a target: winaio (a and b) against every anchor at the same mode and
    QD, io_uring against threads, (b) win32 against core. The earlier issue-4 thresholds are
    kept for the three comparisons that had one."""
    index = {(r.method, r.backend, r.mode, r.qd): r for r in rows}
    earlier = {("liburing", "buffered", 32): 0.5, ("caio", "buffered", 32): 1.5,
               ("fio", "direct", 128): 0.9}  # fmt: skip
    anchors = ("raw_uring", "pread", "preadv_nowait", "fio", "fio_tuned", "liburing",
               "uring-api", "caio", "aiofile", "threadpool")  # fmt: skip
    out = []
    for mode in MODES:
        for qd in qds:
            for flavour in ("a", "b"):
                for api in ("core", "win32"):
                    num = index.get((f"winaio.{flavour}.{api}", "io_uring", mode, qd))
                    if num is None or num.status:
                        continue
                    for anchor in anchors:
                        den = index.get((anchor, None, mode, 1 if anchor == "pread" else qd))
                        if den is None or den.status:
                            continue
                        threshold = earlier.get((anchor, mode, qd)) if flavour == "a" else None
                        label = f"{mode} QD{qd}: {num.key.split()[0]} vs {den.key.split()[0]}"
                        if threshold is not None:
                            label += f" (issue 4: >= {threshold}x)"
                        out.append(ratio_entry(label, num, den, threshold))
            for flavour in ("a", "b"):
                for api in ("core", "win32"):
                    num = index.get((f"winaio.{flavour}.{api}", "io_uring", mode, qd))
                    den = index.get((f"winaio.{flavour}.{api}", "threads", mode, qd))
                    if num and den:
                        label = f"{mode} QD{qd}: winaio.{flavour}.{api} io_uring vs threads"
                        out.append(ratio_entry(label, num, den, None))
            num = index.get(("winaio.b.win32", "io_uring", mode, qd))
            den = index.get(("winaio.b.core", "io_uring", mode, qd))
            if num and den:
                label = f"{mode} QD{qd}: winaio.b win32 alias layer vs core"
                out.append(ratio_entry(label, num, den, None))
    return out


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| row | mode | QD | IOPS (median) | us/op | spread | backend share | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary()
        name = row.method if row.backend is None else f"{row.method}/{row.backend}"
        if "iops_median" not in s:
            note = s.get("unavailable") or s.get("status") or ""
            lines.append(f"| {name} | {row.mode} | {row.qd} | - | - | - | - | {note} |")
            continue
        share = s.get("backend_share")
        note = f"errors {s['errors']}" if s.get("errors") else ""
        if "page_cache_resident_min" in s:
            note = (note + f" resident>={s['page_cache_resident_min']:.3f}").strip()
        lines.append(
            f"| {name} | {row.mode} | {row.qd} | {s['iops_median']:,} | {s['us_per_op']} |"
            f" {s['spread_pct']}% | {'' if share is None else share} | {note} |"
        )
    return "\n".join(lines)


def targets_markdown(targets_: list[dict[str, Any]]) -> str:
    """The ``targets`` block as a markdown table (for benchmarks/README.md)."""
    lines = [
        "| target | ratio (of medians) | median of per-round ratios | threshold | met |",
        "|---|---|---|---|---|",
    ]
    for t in targets_:
        threshold = (
            f"<= {t['threshold_max']}" if "threshold_max" in t else f">= {t.get('threshold')}"
        )
        ratio = "-" if t.get("ratio") is None else f"{t['ratio']:.2f}x"
        per_round = t.get("ratio_median_of_rounds")
        per_round_s = "-" if per_round is None else f"{per_round:.2f}x"
        met = {True: "yes", False: "**no**", None: f"not measured ({t.get('why_no_ratio', '')})"}
        lines.append(
            f"| {t['target']} | {ratio} | {per_round_s} | {threshold} | {met[t.get('met')]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/io_report.py RUN.json``: a recorded run's targets as markdown."""
    import argparse
    import json
    import sys

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("report", help="a JSON written by bench_io.py (or run_all.py)")
    args = ap.parse_args(argv)
    with open(args.report) as f:
        report = json.load(f)
    report = report.get("bench_io.py", report)
    print(f"Targets met: {report.get('targets_met')}\n")
    print(targets_markdown(report["targets"]))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
