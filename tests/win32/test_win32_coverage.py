"""docs/win32-coverage.md stays current with ``winaio.win32.__all__`` (issue 12).

Regenerate with ``python tools/gen_win32_coverage.py``; these tests say which names are behind.
"""

from __future__ import annotations

import importlib.util
import pathlib
from types import ModuleType

import winaio.win32 as win32

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "win32-coverage.md"
HOW = "run: python tools/gen_win32_coverage.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_cov", ROOT / "tools" / "gen_win32_coverage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_exported_name_is_in_the_coverage_doc() -> None:
    documented = _tool().documented_names(DOC.read_text())
    exported = set(win32.__all__)
    missing = sorted(exported - documented)
    stale = sorted(documented - exported)
    assert not missing, f"names missing from docs/win32-coverage.md: {missing}; {HOW}"
    assert not stale, f"docs/win32-coverage.md lists names no longer exported: {stale}; {HOW}"


def test_coverage_doc_is_current() -> None:
    assert DOC.read_text() == _tool().render(), f"docs/win32-coverage.md is out of date; {HOW}"


def test_missing_names_are_really_missing() -> None:
    exported = set(win32.__all__)
    assert sorted(set(_tool().MISSING) & exported) == []


def test_deviation_notes_name_exported_functions() -> None:
    tool = _tool()
    assert sorted(set(tool.DEVIATIONS) - set(win32.__all__)) == []
    statuses = {name: status for name, status, _ in tool.classify()[0]}
    assert statuses["TerminateThread"] == "deviation"
    assert statuses["CreateEvent"] == "exact"
