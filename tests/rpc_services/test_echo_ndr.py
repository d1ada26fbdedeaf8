"""rpcecho's descriptors and managers against Samba's own NDR (python3-samba), both byte orders.

Samba marshals each opnum's request (``ndr_pack_in``); we decode it with our descriptor, run our
manager, encode the response, and Samba unmarshals it (``ndr_unpack_out``). Every opnum, every
TestCall2 union level (own-arm alignment: rpc #80), little- and big-endian NDR. The same
managers answer Samba's client over TCP in ``test_peers_samba.py``.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
from typing import Any

import pytest

from winaio import rpc
from winaio.errors import RpcError
from winaio.rpc._interfaces import _echo
from winaio.rpc._interfaces._echo_idl import ECHO_PROCEDURES

SCRIPT = pathlib.Path(__file__).with_name("samba_echo.py")
PAYLOAD = list(b"winaio rpcecho \x00\xff")
MANAGERS = {
    "AddOne": _echo.add_one,
    "EchoData": _echo.echo_data,
    "SinkData": _echo.sink_data,
    "SourceData": _echo.source_data,
    "TestCall": _echo.test_call,
    "TestCall2": _echo.test_call2,
    "TestSleep": lambda seconds: seconds,  # the timer path is exercised over TCP
    "TestEnum": _echo.test_enum,
    "TestSurrounding": _echo.test_surrounding,
    "TestDoublePointer": _echo.test_double_pointer,
}
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
    "TestSleep": 0,
    "TestEnum": {"foo1": 2, "foo2": [2, 2], "foo3": [1, 1]},
    "TestSurrounding": {"x": 6, "surrounding": [0] * 6},
    "TestDoublePointer": 7,
}


def outputs(procedure: rpc.Procedure, result: Any) -> dict[str, Any]:
    """A manager's return value as the dict of outputs (the runtime's rule, rpc-api §2)."""
    names = [p.name for p in procedure.out_params]
    if procedure.returns is not None:
        names.append(rpc.RETURN)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: result}
    return dict(result)


def samba(samba_python: str, *args: str, data: Any = None) -> Any:
    run = subprocess.run(
        [samba_python, str(SCRIPT), *args],
        input=None if data is None else json.dumps(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_every_opnum_in_both_byte_orders(samba_python: str) -> None:
    # spec: rpc #80 (union arm aligned to its own type: TestCall2 levels 1-7, TestEnum)
    procedures = {p.name: p for p in ECHO_PROCEDURES}
    requests = samba(samba_python, "requests")
    assert set(requests) == set(EXPECTED)
    stubs: dict[str, dict[str, str]] = {}
    for name, by_order in requests.items():
        procedure = procedures[name.split(".")[0]]
        stubs[name] = {}
        for order, hexstub in by_order.items():
            byteorder = "little" if order == "le" else "big"
            args = procedure.decode_request(bytes.fromhex(hexstub), byteorder=byteorder)
            result = outputs(procedure, MANAGERS[procedure.name](**args))
            stub = procedure.encode_response({**args, **result}, byteorder=byteorder)
            stubs[name][order] = stub.hex()
    decoded = samba(samba_python, "responses", data=stubs)
    for name, expected in EXPECTED.items():
        assert decoded[name] == {"le": expected, "be": expected}, name


def test_manager_bounds() -> None:
    with pytest.raises(RpcError) as info:
        _echo.source_data(_echo.MAX_SOURCE + 1)
    assert info.value.status == 0x1C00001B
    with pytest.raises(RpcError) as info:
        _echo.test_call2(8)
    assert info.value.status == 0x6F7
    assert _echo.test_double_pointer(None) == 0
