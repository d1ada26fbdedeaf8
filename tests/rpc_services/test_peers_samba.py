"""Samba's own clients against a server started on loopback (rpc-spec §C4).

- Samba's Python rpcecho client (python3-samba, the system python3 in a subprocess): every opnum,
  little- and big-endian NDR (``[bigendian]`` in the binding: Samba then sends drep 00 00 00 00
  and reads our little-endian replies by their drep).
- ``rpcclient`` (smbclient): it always asks the endpoint mapper on TCP 135 first, so these tests
  run a mapper there (retrying while another work tree's test holds the port) and compare the
  exact output of echoaddone, echodata, sinkdata, sourcedata and epmlookup.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
from typing import Any

import pytest

from winaio import rpc

pytestmark = pytest.mark.interop

SCRIPT = pathlib.Path(__file__).with_name("samba_echo.py")
PAYLOAD = list(b"winaio rpcecho \x00\xff")
EXPECTED: dict[str, Any] = {
    "AddOne": 42,
    "EchoData": PAYLOAD,
    "SinkData": None,
    "SourceData": [i % 256 for i in range(300)],
    "TestCall": "hé ☃",
    "TestCall2.1": {"info": {"v": 10}, "result": 0},
    "TestCall2.2": {"info": {"v": 20}, "result": 0},
    "TestCall2.3": {"info": {"v": 30}, "result": 0},
    "TestCall2.4": {"info": {"v": 40}, "result": 0},
    "TestCall2.5": {"info": {"v1": 50, "v2": 60}, "result": 0},
    "TestCall2.6": {"info": {"v1": 70, "info1": {"v": 80}}, "result": 0},
    "TestCall2.7": {"info": {"v1": 80, "info4": {"v": 90}}, "result": 0},
    "TestSleep": 1,
    "TestEnum": {"foo1": 2, "foo2": [2, 2], "foo3": [1, 1]},
    "TestSurrounding": {"x": 6, "surrounding": [0] * 6},
    "TestDoublePointer": 7,
}


def samba_client(samba_python: str, binding: str, *extra: str) -> dict[str, Any]:
    run = subprocess.run(
        [samba_python, str(SCRIPT), "client", binding, *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout)
    return result


@pytest.mark.parametrize("order", ["", ",bigendian"])
def test_samba_python_client_every_opnum(samba_python: str, served: Any, order: str) -> None:
    got = samba_client(samba_python, f"ncacn_ip_tcp:127.0.0.1[{served.port}{order}]")
    level8 = got.pop("TestCall2.8")
    assert got == EXPECTED
    # Unknown union level: fault 0x6F7 (what Samba's server sends: DCERPC_FAULT_NDR), which
    # Samba's client maps to NT_STATUS_RPC_BAD_STUB_DATA 0xC003000C.
    assert level8 == {"error": repr((0xC003000C, "The stub received bad data."))}


def test_samba_python_client_over_ncalrpc(samba_python: str, tmp_path: Any) -> None:
    # ncalrpc: our Unix socket in the directory Samba's client is told to look in
    # ("ncalrpc dir"), both byte orders.
    server = rpc.Server(lrpc_dir=str(tmp_path))
    try:
        rpc.register_echo(server)
        server.use_protseq("ncalrpc", "winaio-echo")
        server.listen(wait=False)
        for order in ("", ",bigendian"):
            got = samba_client(samba_python, f"ncalrpc:[winaio-echo{order}]", str(tmp_path))
            got.pop("TestCall2.8")
            assert got == EXPECTED, order
    finally:
        server.close()


def rpcclient_run(rpcclient: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [rpcclient, "-U%", "-N", "ncacn_ip_tcp:127.0.0.1", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rpcclient_echo_commands(rpcclient: str, served: Any, epm135: Any) -> None:
    # spec: rpc #91 (echoaddone through our mapper on 135), #65 (call_ids across connections)
    run = rpcclient_run(rpcclient, "echoaddone 5")
    assert (run.returncode, run.stdout) == (0, "5 + 1 = 6\n"), run.stderr
    # echodata/sourcedata print only mismatches; sinkdata prints nothing.
    for command in ("echodata 1000", "sourcedata 1000", "sinkdata 1000", "echodata 70000"):
        run = rpcclient_run(rpcclient, command)
        assert (run.returncode, run.stdout) == (0, ""), (command, run.stderr)


def test_rpcclient_epmlookup(rpcclient: str, served: Any, epm135: Any) -> None:
    # spec: rpc #95 (each entry once, then "epm_Lookup no more entries")
    run = rpcclient_run(rpcclient, "epmlookup")
    assert run.returncode == 0, run.stderr
    nil = "00000000-0000-0000-0000-000000000000"
    echo = "60a15ec5-4de8-11d7-a637-005056a20182/0x00000001"
    epm = "e1af8308-5d1f-11c9-91a4-08002b14a0fa/0x00000003"
    expected = [
        f"{nil} ncacn_ip_tcp:127.0.0.1[{served.port},abstract_syntax={echo}]: winaio rpcecho",
        f"{nil} ncacn_ip_tcp:127.0.0.1[{served.port},abstract_syntax={epm}]: winaio epmapper",
        f"{nil} ncacn_ip_tcp:127.0.0.1[135,abstract_syntax={epm}]: winaio epmapper",
    ]
    assert sorted(run.stdout.splitlines()) == sorted(expected)
    # rpcclient stops at ept_s_not_registered and says so on stderr.
    assert run.stderr.splitlines()[-1] == "epm_Lookup no more entries", run.stderr
