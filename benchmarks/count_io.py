"""User-space instructions per 4 KiB read (callgrind): the decision tool for bench_io.py's
rows on a noisy shared machine (cached reads by default, ``--direct`` for O_DIRECT).

Wall-clock IOPS on a 2-vCPU VM with other tenants move 20-70 % between rounds; instruction
counts do not. This runs bench_io's a.core loop (``File.start_read`` + ``CompletionPort.get_many``)
and a.win32 loop (``ReadFile`` + ``GetQueuedCompletionStatusEx``) for a fixed number of reads
under ``valgrind --tool=callgrind --separate-threads=yes``, twice (two lengths), and prints
the main thread's instructions per read as the difference divided by the extra reads, so
start-up, imports and the file's warm-up cancel out. Syscalls are not counted (kernel time is
the ``K`` of docs/design.md "Cached reads"; add it with the model there). Compare versions
with the same harness: absolute counts move with the loop around the calls (this one counts
~10.9K for a.core at QD32 where the loop the design notes used counted 9.4-9.6K, the same
bytecodes per read). O_DIRECT QD1 counts depend on timing (whether a wait ends in the
kernel or finds its CQE already there): on this VM they are bimodal, ~66K or ~72K for the same
code (a.core, 2026-12-05), so compare several runs of each version there.

The cached-read fast path runs in its C accelerator (``winaio._io._fastio``) when it was built;
``--pure`` counts the Python methods instead (WINAIO_PURE_PYTHON=1 in the children).

Usage: ``python benchmarks/count_io.py [--methods core,win32] [--qd 1,32,128]
[--reads 2000,10000] [--backend io_uring] [--direct] [--pure] [--path DIR]``; prints JSON
(O_DIRECT needs a directory on a filesystem that has it: not tmpfs). Needs valgrind (3.19 runs
io_uring programs). One child per count: ``--child METHOD QD N FILE``.
"""

from __future__ import annotations

import argparse
import glob
import json
import mmap
import os
import random
import shutil
import subprocess
import sys
import tempfile
from typing import Any

BLOCK = 4096
FILE_MIB = 64


def _core_slot(base: Any) -> Any:
    """``base`` (an OVERLAPPED class) with the buffer slot it reads into, as bench_io's rows."""

    class SlotOverlapped(base):  # type: ignore[misc, valid-type]
        __slots__ = ("slot",)

        def __init__(self, slot: int) -> None:
            super().__init__()
            self.slot = slot

    return SlotOverlapped


def _child(method: str, qd: int, count: int, path: str) -> None:
    direct = bool(os.environ.get("COUNT_IO_DIRECT"))
    import winaio
    from winaio import testing, win32

    size = os.path.getsize(path)
    rng = random.Random(1)
    offsets = [rng.randrange(size // BLOCK) * BLOCK for _ in range(1 << 16)]
    mask = (1 << 16) - 1
    mem = mmap.mmap(-1, qd * BLOCK)
    views = [memoryview(mem)[i * BLOCK : (i + 1) * BLOCK] for i in range(qd)]
    done = errors = 0
    k = 0
    if method == "core":
        with testing.using_backend(os.environ.get("COUNT_IO_BACKEND", "io_uring")):
            file, _ = winaio.open_file(
                path,
                read=True,
                write=False,
                disposition=win32.OPEN_EXISTING,
                overlapped=True,
                direct=direct,
            )
        port = winaio.CompletionPort()
        file.associate(port, 1)
        ovs = [_core_slot(winaio.Overlapped)(i) for i in range(qd)]
        start_read, get_many = file.start_read, port.get_many
        for ov in ovs:
            ov.offset = offsets[k & mask]
            k += 1
            start_read(views[ov.slot], ov)
        issued = in_flight = qd
        while in_flight:
            _, packets = get_many(qd, None)
            done += len(packets)
            for packet in packets:
                if packet.status or packet.bytes_transferred != BLOCK:
                    errors += 1
                if issued < count:
                    ov = packet.overlapped
                    ov.offset = offsets[k & mask]
                    k += 1
                    issued += 1
                    start_read(views[ov.slot], ov)
                else:
                    in_flight -= 1
        file.close()
        port.close()
    else:
        with testing.using_backend(os.environ.get("COUNT_IO_BACKEND", "io_uring")):
            handle = win32.CreateFile(
                path, win32.GENERIC_READ, win32.FILE_SHARE_READ, None, win32.OPEN_EXISTING,
                win32.FILE_FLAG_OVERLAPPED | (win32.FILE_FLAG_NO_BUFFERING if direct else 0), None,
            )  # fmt: skip
        cport = win32.CreateIoCompletionPort(handle, None, 1, 0)
        wovs = [_core_slot(win32.OVERLAPPED)(i) for i in range(qd)]
        entries = [win32.OVERLAPPED_ENTRY() for _ in range(qd)]
        read_file, gqcs = win32.ReadFile, win32.GetQueuedCompletionStatusEx
        removed = win32.Ref(0)
        for wov in wovs:
            wov.Offset = offsets[k & mask]
            k += 1
            read_file(handle, views[wov.slot], BLOCK, None, wov)
        issued = in_flight = qd
        while in_flight:
            gqcs(cport, entries, qd, removed, win32.INFINITE, False)
            n = removed.value
            done += n
            for i in range(n):
                entry = entries[i]
                if entry.Internal or entry.dwNumberOfBytesTransferred != BLOCK:
                    errors += 1
                if issued < count:
                    wov = entry.lpOverlapped
                    wov.Offset = offsets[k & mask]
                    k += 1
                    issued += 1
                    read_file(handle, views[wov.slot], BLOCK, None, wov)
                else:
                    in_flight -= 1
        win32.CloseHandle(handle)
        win32.CloseHandle(cport)
    if errors or done != count:
        raise SystemExit(f"{method} qd{qd}: {done} reads, {errors} errors (expected {count})")


def _instructions(method: str, qd: int, count: int, path: str, workdir: str) -> int:
    """Main-thread instructions of one child run under callgrind."""
    out = os.path.join(workdir, f"cg.{method}.{qd}.{count}")
    subprocess.run(
        [
            "valgrind", "--tool=callgrind", "--separate-threads=yes",
            f"--callgrind-out-file={out}.%p", sys.executable, os.path.abspath(__file__),
            "--child", method, str(qd), str(count), path,
        ],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    (main,) = glob.glob(f"{out}.*-01")  # thread 1: the main thread
    with open(main) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {main}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="core,win32")
    ap.add_argument("--qd", default="1,32,128")
    ap.add_argument("--reads", default="2000,10000", help="the two run lengths")
    ap.add_argument("--backend", default="io_uring")
    ap.add_argument("--direct", action="store_true", help="O_DIRECT reads (FILE_FLAG_NO_BUFFERING)")
    ap.add_argument("--pure", action="store_true", help="the Python fast path (no C accelerator)")
    ap.add_argument("--path", default=tempfile.gettempdir(), help="directory for the file")
    ap.add_argument("--child", nargs=4, metavar=("METHOD", "QD", "N", "FILE"))
    args = ap.parse_args()
    if args.child:
        method, qd, count, path = args.child
        _child(method, int(qd), int(count), path)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("count_io.py needs valgrind (apt-get install valgrind)")
    os.environ["COUNT_IO_BACKEND"] = args.backend
    if args.direct:
        os.environ["COUNT_IO_DIRECT"] = "1"
    if args.pure:
        os.environ["WINAIO_PURE_PYTHON"] = "1"
    accelerated = subprocess.run(
        [sys.executable, "-c", "from winaio._io import _disk; print(_disk.accelerated())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip() == "True"  # fmt: skip
    short, long_ = (int(x) for x in args.reads.split(","))
    result: dict[str, Any] = {
        "backend": args.backend, "direct": args.direct, "reads": [short, long_],
        "accelerated": accelerated, "rows": {}
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="winaio-count-io-", dir=args.path) as workdir:
        path = os.path.join(workdir, "data")
        with open(path, "wb") as f:
            f.write(os.urandom(FILE_MIB << 20))
        with open(path, "rb") as f:  # into the page cache: every read is a cached read
            while f.read(1 << 20):
                pass
        for method in args.methods.split(","):
            for qd in (int(q) for q in args.qd.split(",")):
                a = _instructions(method, qd, short, path, workdir)
                b = _instructions(method, qd, long_, path, workdir)
                per_read = round((b - a) / (long_ - short))
                result["rows"][f"{method} qd{qd}"] = per_read
                print(f"{method} QD{qd}: {per_read} instructions per read", file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
