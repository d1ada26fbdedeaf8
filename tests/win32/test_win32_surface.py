"""The public surfaces: the alias layer's table, docstrings, generated constants, layering."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
import subprocess
import sys

import winaio
import winaio.win32 as win32

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_constants_are_current() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_win32_constants.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    current = (ROOT / "src" / "winaio" / "win32" / "_constants.py").read_text()
    assert current == gen.render(), "run: python tools/gen_win32_constants.py"


def test_every_win32_function_names_its_ms_page_and_core_delegate() -> None:
    missing = []
    for name in win32.__all__:
        obj = getattr(win32, name)
        if inspect.isfunction(obj) and name[0].isupper():
            doc = inspect.getdoc(obj) or ""
            if "[MS:" not in doc and "[Nt" not in doc:
                missing.append(name)
    assert missing == []


def test_every_public_core_name_is_documented() -> None:
    undocumented = [
        name
        for name in winaio.__all__
        if not inspect.ismodule(getattr(winaio, name)) and not inspect.getdoc(getattr(winaio, name))
    ]
    assert undocumented == []


def test_all_lists_only_existing_names() -> None:
    for module in (winaio, win32):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_kernel_and_rpc_wire_layer_never_import_asyncio() -> None:
    code = (
        "import sys, winaio, winaio.win32, winaio.rpc\n"
        "bad = [m for m in ('asyncio',) if m in sys.modules]\n"
        "print(bad)\n"
        "raise SystemExit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
