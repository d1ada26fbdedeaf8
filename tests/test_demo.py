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


_README_RPC_CLIENT = """
import threading, time
from impacket.dcerpc.v5 import transport
from impacket.uuid import uuidtup_to_bin

dce = transport.DCERPCTransportFactory(binding.string_binding).get_dce_rpc()
dce.connect()
dce.bind(uuidtup_to_bin((str(SEEDS.uuid), "1.0")))
dce.call(0, (5).to_bytes(4, "little"))
deadline = time.monotonic() + 30
while server.active_calls != 1 or io.outstanding != 1:  # the manager has returned, I/O pends
    assert time.monotonic() < deadline, "the call never became pending"
    time.sleep(0.01)
writer.write(b"hello")
reply = dce.recv()
assert reply[:8] == (5).to_bytes(4, "little") * 2 and reply[8:13] == b"hello", reply
dce.disconnect()
server.close()
pool.close()
reader.close()
writer.close()
print("README RPC example: ok")
"""


def test_readme_rpc_example_runs() -> None:
    # spec: rpc #20 (the README's server: a port thread completes the call after the manager
    # returned). The second README block, called by impacket in a fresh interpreter.
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert len(blocks) >= 2, "the README has no RPC example"
    assert "rpc.async_manager" in blocks[1]
    result = subprocess.run(
        [sys.executable, "-c", blocks[1] + _README_RPC_CLIENT],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "README RPC example: ok" in result.stdout
