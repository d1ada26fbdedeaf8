"""Fixtures for the second Wine-derived conformance suite: behaviours ported from Wine's
``dlls/kernel32/tests/{pipe,file,sync,thread}.c``, ``dlls/ntdll/tests/pipe.c`` and
``dlls/ws2_32/tests/sock.c`` (which pass on real Windows) that ``tests/conformance_wine/`` does
not cover yet, driven only through ``winaio.win32``.

Each test names its source (``[W:k32/pipe.c:test_NamedPipe_2]``); where Wine marks a check
``todo_wine`` the Windows result is the one asserted. The suite reuses the I/O conformance kit
(``tests/conformance_io/conftest.py``: the ``io`` fixture parametrized over both I/O backends,
bounded waits, everything closed at teardown), loaded by path as ``tests/conformance_wine`` does.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

_KIT_PATH = pathlib.Path(__file__).resolve().parent.parent / "conformance_io" / "conftest.py"
_NAME = "winaio_tests_io_kit"
kit = sys.modules.get(_NAME)
if kit is None:
    _spec = importlib.util.spec_from_file_location(_NAME, _KIT_PATH)
    assert _spec is not None and _spec.loader is not None
    kit = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = kit  # dataclasses look their module up
    _spec.loader.exec_module(kit)

# Fixtures (pytest collects them from this module's namespace).
backend = kit.backend
io = kit.io
testing = kit.testing
_clean_main_thread_apcs = kit._clean_main_thread_apcs
