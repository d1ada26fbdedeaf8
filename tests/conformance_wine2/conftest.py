"""Fixtures for the second Wine-derived conformance suite: behaviours ported from Wine's
``dlls/kernel32/tests/{pipe,file,sync,thread,timer}.c``, ``dlls/ntdll/tests/pipe.c`` and
``dlls/ws2_32/tests/sock.c`` (which pass on real Windows) that ``tests/conformance_wine/`` does
not cover yet, driven only through ``winaio.win32``.

Each test names its source (``[W:k32/pipe.c:test_NamedPipe_2]``); where Wine marks a check
``todo_wine`` the Windows result is the one asserted. The suite reuses the I/O conformance kit
(``tests/conformance_io/conftest.py``: the ``io`` fixture parametrized over both I/O backends,
bounded waits, everything closed at teardown), loaded by path as ``tests/conformance_wine`` does;
``kit`` gives the same helpers once, for tests that do no I/O.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

import winaio.testing as wt

_KIT_PATH = pathlib.Path(__file__).resolve().parent.parent / "conformance_io" / "conftest.py"
io_kit = wt.load_kit(_KIT_PATH, "winaio_tests_io_kit")

# Fixtures (pytest collects them from this module's namespace).
backend = io_kit.backend
io = io_kit.io
testing = io_kit.testing
_clean_main_thread_apcs = io_kit._clean_main_thread_apcs
sock_impl = io_kit.sock_impl


@pytest.fixture
def kit(tmp_path: pathlib.Path) -> Iterator[Any]:
    """The I/O kit's helpers for tests that do no I/O (one run, not one per backend)."""
    with io_kit.IoKit("none", tmp_path) as k:
        yield k
