"""Fixtures shared by the benchmarks' tests (the suite runs with ``--import-mode=importlib``, so
shared helpers are fixtures rather than imported modules).

The benchmark scripts are modules of ``benchmarks/`` (not a package, not installed): a test
imports one with that folder first on ``sys.path`` for the test's duration
(:func:`bench_import`), as the scripts import each other when they run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent.parent / "benchmarks"


@pytest.fixture
def bench_import(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """``bench_import(name)``: the benchmark module ``name`` (``bench_sockets``,
    ``sock_report``...), imported with ``benchmarks/`` first on ``sys.path`` until the test
    ends."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module
