"""Fixtures for the Wine-derived conformance suite (issue 12): behaviours ported from Wine's
``dlls/kernel32/tests/{pipe,file,sync,change}.c``, ``dlls/ntdll/tests/pipe.c`` and
``dlls/ws2_32/tests/sock.c`` (which pass on real Windows), driven only through ``winaio.win32``.

Each test names its source: ``[W:k32/pipe.c:test_multiple_instances]`` (a Wine test function) or
``[MS:TransactNamedPipe]`` (an MS Learn page). The suite reuses the I/O conformance kit
(``tests/conformance_io/conftest.py``: the ``io`` fixture, parametrized over both I/O backends,
and its rules - no sleeps to synchronise, bounded waits, everything closed); the suite runs with
``--import-mode=importlib``, so that file is loaded here by path and its fixtures re-exported.
"""

from __future__ import annotations

import pathlib

import winaio.testing as wt

_KIT_PATH = pathlib.Path(__file__).resolve().parent.parent / "conformance_io" / "conftest.py"
kit = wt.load_kit(_KIT_PATH, "winaio_tests_io_kit")

# Fixtures (pytest collects them from this module's namespace).
backend = kit.backend
io = kit.io
testing = kit.testing
_clean_main_thread_apcs = kit._clean_main_thread_apcs
sock_impl = kit.sock_impl
