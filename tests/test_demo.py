"""The main job (`make run`) keeps working: the demo runs and every behaviour it shows holds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import winaio.testing


@pytest.mark.parametrize("backend", ["io_uring", "threads"])
def test_demo_runs(backend: str) -> None:
    # spec: win32 #67 #109 #108 (alertable routine on the issuing thread; port-bound I/O
    # outlives its thread; non-port I/O is cancelled at thread exit)
    if backend not in winaio.testing.available_backends():
        pytest.skip(f"{backend} unavailable here")
    env = {**os.environ, "WINAIO_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-m", "winaio", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on the issuing thread" in result.stdout
    assert "outlived its thread" in result.stdout
    assert "ERROR_OPERATION_ABORTED" in result.stdout
    assert f"I/O backend: {backend}" in result.stdout


def test_readme_example_runs() -> None:
    # The README's example is code: run it (in a fresh interpreter) so it keeps working.
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert blocks, "the README has no python example"
    code = blocks[0] + "\nassert key.value == 42 and n.value > 0\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
