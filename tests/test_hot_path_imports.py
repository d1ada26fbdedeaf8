"""No function-local imports in the layers every request and every wait goes through.

A function-local ``import`` runs the import machinery on every call (issue 9 measured 3 us per
completion in ``Operation.complete`` against 54 ns for a module global). The kernel, the I/O
layer, the backends and the alias layer must import at module level; ``TYPE_CHECKING`` blocks
(annotations only) are fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import winaio

HOT_PACKAGES = ("_kernel", "_io", "_backends", "win32")


def _function_local_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(f"{path}:{node.lineno} in {func.name}()")
    return found


def test_no_function_local_imports_on_hot_paths() -> None:
    root = Path(winaio.__file__).parent
    files = [p for pkg in HOT_PACKAGES for p in sorted((root / pkg).rglob("*.py"))]
    assert len(files) > 20  # the packages are where this test thinks they are
    offenders = [hit for path in files for hit in _function_local_imports(path)]
    assert offenders == []


def test_the_scanner_sees_a_function_local_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\ndef f():\n    from os import path\n    return path\n")
    assert _function_local_imports(sample) == [f"{sample}:4 in f()"]
