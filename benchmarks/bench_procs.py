"""Pieces shared by the benchmarks whose rows run in their own processes (bench_rpc_server.py,
bench_sockets.py, io_anchors.py): a server child that announces its port, a client child that
prints one JSON object, why a child is unavailable (its exit status or signal), the machine's CPU
noise around a run, the commit measured, and the timing and ratio helpers of their reports.

Imports nothing from winaio and nothing outside the standard library: the anchors' child
processes load it too, and a benchmark must run whatever state the library is in.

Invariants: a child that fails never raises out of the harness unexplained (every failure is a
``RuntimeError`` carrying a one-line reason, suitable for a row's ``unavailable``); a
``ServerProcess`` is always reaped (``stop`` terminates, then kills after 5 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


# -- child processes ---------------------------------------------------------------------------


def last_line(text: str) -> str:
    """The last non-empty line of a traceback or message: the reason a row is unavailable."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def raise_nofile() -> None:
    """Lift the soft limit on open descriptors to the hard one (servers with many clients)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def signal_name(returncode: int) -> str:
    """``crashed with SIGILL (signal 4)`` for a child killed by a signal (``returncode`` < 0)."""
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "an unknown signal"
    return f"crashed with {name} (signal {-returncode})"


def exit_reason(returncode: int) -> str:
    """Why a child is gone: its signal, or its exit status."""
    return signal_name(returncode) if returncode < 0 else f"exit {returncode}"


def listener() -> socket.socket:
    """A listening TCP socket on 127.0.0.1, a port of the kernel's choosing (servers' side)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock


def announce(port: int) -> None:
    """What a server child prints once it listens (``ServerProcess`` waits for it)."""
    print(f"PORT {port}", flush=True)


class ServerProcess:
    """``python SCRIPT --serve KIND [extra...]`` in a child that prints ``PORT n`` when ready.

    Raises:
        RuntimeError: the child did not announce a port (the reason: its last line of output).
    """

    def __init__(
        self, script: str, kind: str, extra: list[str] | None = None, timeout: float = 120.0
    ) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, script, "--serve", kind, *(extra or [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = ""
        if self.proc.stdout and select.select([self.proc.stdout], [], [], timeout)[0]:
            line = self.proc.stdout.readline()
        elif self.proc.poll() is None:
            line = f"no PORT line after {timeout:.0f} s\n"
        if not line.startswith("PORT "):
            if not line:  # end of output: the child is exiting; let it finish
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
            died = self.proc.poll()  # on its own (a signal: a binary wheel's SIGILL...)
            self._end()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            why = last_line(line + err)
            if died is not None and died < 0:
                why = signal_name(died) + (f": {why}" if why else "")
            raise RuntimeError(f"{kind} did not start: {why}")
        self.port = int(line.split()[1])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (all its threads)."""
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        """End the server (if still running) and release its pipes."""
        self._end()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def _end(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (every thread), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_script(script: str, args: list[str], timeout: float) -> dict[str, Any]:
    """``python SCRIPT args...``: the JSON object it prints on stdout.

    Raises:
        RuntimeError: it failed (the reason: its last line of stderr, or its exit status or
            signal), or did not finish within ``timeout`` seconds.
    """
    try:
        run = subprocess.run(
            [sys.executable, script, *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"did not finish in {timeout:.0f} s") from None
    if run.returncode < 0:
        raise RuntimeError(signal_name(run.returncode))
    if run.returncode != 0:
        raise RuntimeError(last_line(run.stderr) or f"exit {run.returncode}")
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def emit(result: dict[str, Any], output: str | None) -> None:
    """Print a benchmark's JSON on stdout, and write it to ``output`` too when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        with open(output, "w") as f:
            f.write(text + "\n")


# -- the machine and the commit ----------------------------------------------------------------


def cpu_times() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def noise_since(before: list[int]) -> dict[str, float]:
    """Load average, busy and stolen share of all CPUs since ``before`` (``cpu_times()``)."""
    after = cpu_times()
    delta = [a - b for a, b in zip(after, before, strict=False)]
    total = sum(delta) or 1
    idle = delta[3] + delta[4]
    steal = delta[7] if len(delta) > 7 else 0
    return {
        "loadavg_1m": os.getloadavg()[0],
        "busy_pct": 100.0 * (total - idle) / total,
        "steal_pct": 100.0 * steal / total,
    }


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", HERE, *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def source_info() -> dict[str, Any]:
    """The commit measured and any uncommitted change under src/."""
    return {"commit": _git("rev-parse", "HEAD"), "dirty_src": _git("status", "--short", "src")}


def commit_label() -> str:
    """The same as one string: the short commit, and whether src/ has uncommitted changes."""
    head = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "src")
    return f"{head}{' + uncommitted src changes' if dirty else ''}" if head else "unknown"


# -- timing and ratios -------------------------------------------------------------------------


def run_timed(step: Callable[[], object], duration: float, warmup: float) -> list[float]:
    """Call ``step`` for ``warmup`` seconds unmeasured, then for ``duration`` seconds: the
    duration of every measured call."""
    end_warm = time.perf_counter() + warmup
    while time.perf_counter() < end_warm:
        step()
    samples: list[float] = []
    end = time.perf_counter() + duration
    while True:
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        samples.append(t1 - t0)
        if t1 >= end:
            return samples


def run_counted(step: Callable[[], object], count: int) -> list[float]:
    """Call ``step`` ``count`` times: the duration of every call."""
    clock = time.perf_counter
    samples: list[float] = []
    for _ in range(count):
        t0 = clock()
        step()
        samples.append(clock() - t0)
    return samples


def summary(samples: list[float], calls_per_sample: int) -> dict[str, Any]:
    """Calls, calls/s and the p50/p99 of ``samples`` (seconds each, ``calls_per_sample`` calls
    per sample)."""
    ordered = sorted(samples)
    total = sum(samples)
    return {
        "calls": len(samples) * calls_per_sample,
        "calls_per_s": len(samples) * calls_per_sample / total,
        "p50_us": ordered[len(ordered) // 2] * 1e6,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
    }


def ratio(num: Any, den: Any) -> float | None:
    """``num / den`` when both are numbers and ``den`` is not 0, else None."""
    if not isinstance(num, int | float) or not isinstance(den, int | float) or not den:
        return None
    return num / den
