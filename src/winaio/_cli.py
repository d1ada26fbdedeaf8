"""Command line: ``python -m winaio demo`` (the main job of ``make run``).

The demo shows the alertable model of the seeds: work finishes on other threads, and its
completion routines run *on the issuing thread*, one by one, only while that thread waits
alertably; each such wait returns WAIT_IO_COMPLETION. A waitable timer's completion routine
arrives the same way (an APC to the thread that set the timer).

No logic of its own beyond printing: everything goes through the public API.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import win32


def _demo(jobs: int) -> int:
    me = win32.GetCurrentThread()
    real_me = win32.Ref(0)
    win32.DuplicateHandle(
        win32.GetCurrentProcess(),
        me,
        win32.GetCurrentProcess(),
        real_me,
        0,
        False,
        win32.DUPLICATE_SAME_ACCESS,
    )
    main_tid = win32.GetCurrentThreadId()
    done: list[str] = []

    def completion(job: object) -> None:
        # Runs in the main thread, inside its alertable SleepEx.
        assert win32.GetCurrentThreadId() == main_tid
        done.append(str(job))
        print(f"  completion routine for job {job} ran on the issuing thread {main_tid}")

    def worker(job: object) -> int:
        # "I/O" finishing on another thread: it queues the completion routine to the issuer.
        win32.QueueUserAPC(completion, real_me.value, job)
        return 0

    print(f"main thread {main_tid}: starting {jobs} jobs on worker threads")
    threads = [win32.CreateThread(None, 0, worker, i, 0, None) for i in range(jobs)]
    win32.WaitForMultipleObjects(len(threads), threads, True, win32.INFINITE)
    print("all workers finished; no routine has run yet:", done == [])

    timer = win32.CreateWaitableTimer(None, False, None)
    win32.SetWaitableTimer(
        timer,
        -50 * 10_000,
        0,
        lambda arg, low, high: print(f"  timer routine ({arg}) ran"),
        "50 ms",
        False,
    )
    waits = 0
    while len(done) < jobs or waits < 2:
        code = win32.SleepEx(2000, True)
        waits += 1
        name = "WAIT_IO_COMPLETION" if code == win32.WAIT_IO_COMPLETION else str(code)
        print(f"SleepEx(2000, TRUE) returned {name}")
        if code == 0:
            break
    for handle in [*threads, timer, real_me.value]:
        win32.CloseHandle(handle)
    print(f"{len(done)} of {jobs} completion routines ran; all on thread {main_tid}")
    return 0 if len(done) == jobs else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m winaio``."""
    parser = argparse.ArgumentParser(prog="python -m winaio", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="alertable completion routines on the issuing thread")
    demo.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args(argv)
    return _demo(args.jobs)


if __name__ == "__main__":
    sys.exit(main())
