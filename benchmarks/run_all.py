"""Run every benchmark script in this folder and print one JSON object keyed by script.

Not part of CI (timings are noisy on shared 2-core VMs; compare ratios from one run).
``make bench`` calls this. bench_io.py gets ``--install`` so its anchors (caio, aiofile,
liburing, uring-api, fio) are present; pass extra arguments for bench_io after ``--``.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SCRIPTS = [
    "bench_kernel.py",
    "bench_alias.py",
    "bench_ndr.py",
    "bench_pdu.py",
    "bench_rpc_server.py",
    "bench_threadpool.py",
    "bench_sockets.py",
    "bench_uring_abi.py",
    "bench_io.py",
]


def main() -> int:
    extra = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    results: dict[str, object] = {}
    failed = 0
    for script in SCRIPTS:
        args = [sys.executable, str(HERE / script)]
        if script == "bench_io.py":
            args += ["--install", *extra]
        print(f"running {script} ...", file=sys.stderr)
        run = subprocess.run(args, capture_output=True, text=True)
        if run.returncode != 0:
            failed += 1
            results[script] = {"error": run.stderr[-2000:]}
            continue
        try:
            results[script] = json.loads(run.stdout)
        except json.JSONDecodeError:
            results[script] = {"output": run.stdout[-2000:]}
    print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
