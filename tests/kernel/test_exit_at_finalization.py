"""A plain daemon thread's exit effects at interpreter finalization (``_kernel/_threads.py``,
``_ExitSentinel``): the finalizing main thread clears the daemon threads' locals, but those
threads are frozen for good (CPython ends a thread that wants the GIL back then), possibly
holding the kernel's LOCK; running their exit effects then waited for LOCK forever and the
process never exited (seen ~1 run in 20 of ``benchmarks/sock_instructions.py`` on the thread
backend: its reactor thread held LOCK). Each test runs a child that must exit, bounded.

The other half of the rule (a plain thread that ends while the interpreter runs still gets its
exit effects) is tests/kernel/test_kernel_core.py's abandoned-mutex test (spec: win32 #18)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import threading
    import time

    from winaio._kernel import _threads
    from winaio._kernel._dispatcher import LOCK

    held = threading.Event()


    def hold():
        _threads.current_thread_state()  # its exit sentinel, in the thread's locals
        with LOCK:
            held.set()
            while True:  # (gives the GIL up and back: frozen here at finalization)
                time.sleep(0.001)


    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(10)
    print("exiting", flush=True)
    """
)


def test_a_daemon_thread_holding_the_kernel_lock_does_not_hang_the_exit() -> None:
    # spec: win32 #18 (a plain thread's exit effects: not at finalization)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30
    )  # (before the fix: TimeoutExpired, the child waiting for LOCK in the sentinel)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "exiting\n"
    assert done.stderr == ""
