"""Composition root: picks the I/O backend once per process and hands it to the I/O layer.

This is the only module that knows concrete backends (``winaio._backends``); ``winaio._io`` sees
only the ``Backend`` protocol, through the factory installed here.

Selection (done once, recorded with its reason in :func:`selection`):
1. ``WINAIO_BACKEND=io_uring|threads`` forces a backend (io_uring still has to pass the probe:
   forcing it where it cannot work is an error, not a silent fallback).
2. Otherwise io_uring if ``uring.probe_backend()`` says it works here, else threads - and the
   probe's reason (ENOSYS, EPERM from seccomp, io_uring_disabled, architecture...) is kept.

Each backend is a process-wide singleton created on first use; handles keep the backend they
were created with, so tests can run the same code on both (``winaio.testing.using_backend``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ._backends import uring
from ._backends._threads import ThreadBackend
from ._io import _backend as _io_backend
from ._io._backend import Backend

__all__ = ["Selection", "available_backends", "backend", "selection", "using_backend"]

BACKEND_NAMES = ("io_uring", "threads")


@dataclass(frozen=True)
class Selection:
    """Which backend new handles get by default, and why."""

    name: str
    reason: str
    io_uring_available: bool
    io_uring_reason: str


_lock = threading.Lock()
_instances: dict[str, Backend] = {}
_selection: Selection | None = None
_override = threading.local()


def _probe_io_uring() -> tuple[bool, str]:
    # Importing uring is safe everywhere (stdlib ctypes/mmap only, no syscall at import);
    # whether io_uring works here is the probe's answer, with its reason.
    return uring.probe_backend()


def _create(name: str) -> Backend:
    if name == "threads":
        return ThreadBackend()
    if name == "io_uring":
        ok, reason = _probe_io_uring()
        if not ok:
            raise RuntimeError(f"io_uring backend unavailable here: {reason}")
        return uring.IoUringBackend()
    raise ValueError(f"unknown backend {name!r} (choose from {', '.join(BACKEND_NAMES)})")


def selection() -> Selection:
    """The process default backend and the reasons it was chosen (computed once)."""
    global _selection
    with _lock:
        if _selection is None:
            ok, why = _probe_io_uring()
            forced = os.environ.get("WINAIO_BACKEND", "").strip()
            if forced:
                if forced not in BACKEND_NAMES:
                    raise ValueError(f"WINAIO_BACKEND={forced!r}: choose from {BACKEND_NAMES}")
                _selection = Selection(forced, "WINAIO_BACKEND", ok, why)
            elif ok:
                _selection = Selection("io_uring", "probe succeeded", ok, why)
            else:
                _selection = Selection("threads", f"io_uring unavailable: {why}", ok, why)
        return _selection


def backend(name: str | None = None) -> Backend:
    """The backend called ``name`` (default: this thread's override, else the process choice)."""
    if name is None:
        name = getattr(_override, "name", None) or selection().name
    with _lock:
        instance = _instances.get(name)
    if instance is not None:
        return instance
    created = _create(name)
    with _lock:
        instance = _instances.setdefault(name, created)
    if instance is not created:
        created.close()
    return instance


def available_backends() -> list[str]:
    """Backends usable on this machine, in preference order."""
    ok, _ = _probe_io_uring()
    return ["io_uring", "threads"] if ok else ["threads"]


@contextmanager
def using_backend(name: str) -> Iterator[Backend]:
    """Within the block, handles created by this thread use backend ``name``."""
    instance = backend(name)
    previous = getattr(_override, "name", None)
    _override.name = name
    try:
        yield instance
    finally:
        _override.name = previous


_factory: Callable[[str | None], Backend] = backend
_io_backend.set_backend_factory(_factory)
