"""Fixtures shared by the io_uring tests (the suite runs with ``--import-mode=importlib``, so
shared helpers are fixtures rather than imported modules)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest


def _sq_poller_threads() -> set[str]:
    """Native ids of this process's io_uring SQ poller threads (``iou-sqp-<pid>``).

    A poller names itself (set_task_comm in io_sq_thread) only once it first runs, so callers
    wait for a new one to appear rather than expect it right after io_uring_setup.
    """
    out = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().startswith("iou-sqp"):
                    out.add(tid)
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread exited after listdir (open: ENOENT) or after open (read: ESRCH)
    return out


@pytest.fixture
def sq_pollers() -> Callable[[], set[str]]:
    """A function listing this process's SQ poller threads (see :func:`_sq_poller_threads`)."""
    return _sq_poller_threads
