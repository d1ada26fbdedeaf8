"""The main job: ``python -m winaio serve`` (``make run``) as a user runs it.

It prints its endpoints and commands to try, serves rpcecho/mgmt/epmapper, logs one line per
connection and per failed call (``--verbose``: per call), and stops cleanly on SIGTERM/SIGINT.
The mapper is put on a dynamic port here (``--epm-port 0``): port 135 belongs to the peer tests.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from impacket.dcerpc.v5 import transport
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.uuid import uuidtup_to_bin

ECHO_IF = uuidtup_to_bin(("60a15ec5-4de8-11d7-a637-005056a20182", "1.0"))


class Serve:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "winaio", "serve", "--epm-port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.banner: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                return
        raise AssertionError("serve did not start:\n" + "\n".join(self.banner))

    def binding(self, prefix: str) -> str:
        for line in self.banner:
            if line.strip().startswith(prefix):
                return line.split()[-1]
        raise AssertionError(f"no {prefix!r} line in {self.banner}")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        return out


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Serve] = []

    def start(*args: str) -> Serve:
        s = Serve(*args)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def call_add_one(binding: str, value: int) -> int:
    t = transport.DCERPCTransportFactory(binding)
    dce = t.get_dce_rpc()
    dce.connect()
    try:
        dce.bind(ECHO_IF)
        dce.call(0, value.to_bytes(4, "little"))
        answer = int.from_bytes(dce.recv()[:4], "little")
        dce.call(5, b"\x08\x00")  # TestCall2 level 8: a failed call (fault 0x6F7)
        with pytest.raises(DCERPCException):
            dce.recv()
        return answer
    finally:
        dce.disconnect()


def test_serve_prints_endpoints_serves_logs_and_stops(serve: Any) -> None:
    s = serve()
    text = "\n".join(s.banner)
    assert re.search(r"endpoint mapper \(epmapper, mgmt\)\s+ncacn_ip_tcp:127\.0\.0\.1\[\d+\]", text)
    assert re.search(r"rpcecho, mgmt, epmapper\s+ncalrpc:\[winaio-rpcecho-\d+\]", text)
    assert "rpcmap.py -auth-level 1" in text and "samba.dcerpc import echo" in text
    binding = s.binding("rpcecho, mgmt, epmapper          ncacn_ip_tcp")
    assert call_add_one(binding, 41) == 42
    out = s.stop()
    assert re.search(r"INFO winaio\.rpc\.server: ncacn_ip_tcp .*: connected", out)
    assert re.search(r"INFO winaio\.rpc\.server: ncacn_ip_tcp .*: closed", out)
    assert re.search(r"WARNING winaio\.rpc\.server: .*TestCall2 \(opnum 5\) failed", out), out
    assert "DEBUG" not in out  # per-call lines only with --verbose
    assert out.rstrip().endswith("stopped")


def test_serve_verbose_logs_every_call_and_stops_on_ctrl_c(serve: Any) -> None:
    s = serve("--verbose")
    assert call_add_one(s.binding("rpcecho, mgmt, epmapper          ncacn_ip_tcp"), 1) == 2
    out = s.stop(signal.SIGINT)
    assert re.search(r"DEBUG winaio\.rpc\.server: .*AddOne", out), out
    assert out.rstrip().endswith("stopped")


def test_sigterm_lets_a_call_in_flight_finish(serve: Any) -> None:
    # spec: rpc #98 (stopping lets in-flight calls finish and their replies reach impacket)
    s = serve()
    t = transport.DCERPCTransportFactory(s.binding("rpcecho, mgmt, epmapper          ncacn_ip_tcp"))
    dce = t.get_dce_rpc()
    dce.connect()
    dce.bind(ECHO_IF)
    dce.call(6, (1).to_bytes(4, "little"))  # TestSleep(1), answered from a timer
    time.sleep(0.2)
    s.proc.send_signal(signal.SIGTERM)
    assert dce.recv() == (1).to_bytes(4, "little")
    out, _ = s.proc.communicate(timeout=30)
    assert s.proc.returncode == 0 and out.rstrip().endswith("stopped"), out
    dce.disconnect()
