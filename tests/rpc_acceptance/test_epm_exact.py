"""RPC acceptance #94 with nothing left out: impacket's rpcdump.py against our mapper on 135
lists every registered interface exactly once, with its annotation and every binding, and
nothing else (the owners' test, tests/rpc_services/test_peers_impacket.py, checks the rpcecho
block only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from winaio import rpc
from winaio.testing import mapper_on_135, require_peer

from .conftest import ACC_IF, managers, port_of

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def blocks(stdout: str) -> dict[str, tuple[str, list[str]]]:
    """rpcdump's listing: 'UUID vX.Y' -> (annotation, sorted bindings); each UUID at most once."""
    out: dict[str, tuple[str, list[str]]] = {}
    for block in stdout.split("\n\n"):
        lines = block.splitlines()
        heads = [ln for ln in lines if ln.startswith("UUID    : ")]
        if not heads:
            continue
        (head,) = heads
        uuid_v, _, note = head[len("UUID    : ") :].partition(" v")
        version, _, annotation = note.partition(" ")
        key = f"{uuid_v} v{version}"
        assert key not in out, f"{key} listed twice"
        at = lines.index("Bindings: ")
        out[key] = (annotation, sorted(ln.strip() for ln in lines[at + 1 :]))
    return out


def test_94_rpcdump_lists_every_registered_interface_once(start: Any) -> None:
    # spec: rpc #94 [captured] (rpcdump.py 127.0.0.1: each registered IF with its annotation
    # and its ncacn_ip_tcp:127.0.0.1[port] bindings; the endpoint count it reports)
    script = os.path.join(os.path.dirname(sys.executable), "rpcdump.py")
    require_peer(os.path.exists(script), "impacket's rpcdump.py missing")
    endpoints = rpc.EndpointMap()
    server = start(managers("inline", Add=lambda a, b: a + b))
    rpc.register_echo(server)
    rpc.register_epm(server, endpoints)
    rpc.publish_endpoints(server, endpoints)
    port = port_of(server)
    mapper = mapper_on_135(endpoints)
    try:
        run = subprocess.run(
            [sys.executable, script, "127.0.0.1"], capture_output=True, text=True, timeout=60
        )
    finally:
        mapper.close()
    assert run.returncode == 0, run.stdout + run.stderr
    here = f"ncacn_ip_tcp:127.0.0.1[{port}]"
    acc = str(ACC_IF.syntax.uuid).upper()
    assert blocks(run.stdout) == {
        f"{acc} v1.2": ("acc", [here]),  # a user interface: annotated with its name
        "60A15EC5-4DE8-11D7-A637-005056A20182 v1.0": ("winaio rpcecho", [here]),
        "E1AF8308-5D1F-11C9-91A4-08002B14A0FA v3.0": (
            "winaio epmapper",
            sorted([here, "ncacn_ip_tcp:127.0.0.1[135]"]),
        ),
    }, run.stdout
    assert "[*] Received 4 endpoints." in run.stdout
