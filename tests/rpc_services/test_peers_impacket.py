"""impacket, a real DCE/RPC client, against a server started on loopback (rpc-spec §C1, §C2).

Bind, every rpcecho opnum (impacket's NDR where it has the types; raw stubs through
``dce.call``/``dce.recv`` for TestCall2, TestEnum, TestSurrounding and TestDoublePointer, whose
unions, conformant structs and double pointers impacket's NDR cannot express), faults, 100 KB
calls fragmented both ways, ``hept_map``, ``hept_lookup`` and impacket's ``rpcdump.py`` /
``rpcmap.py`` examples.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from impacket.dcerpc.v5 import epm, mgmt, transport
from impacket.dcerpc.v5.dtypes import ULONG, WSTR
from impacket.dcerpc.v5.ndr import NDRCALL, NDRPOINTER, NDRUniConformantArray
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.uuid import uuidtup_to_bin

from winaio.rpc._interfaces._echo_idl import ECHO_PROCEDURES, RPCECHO

pytestmark = pytest.mark.interop

ECHO_IF = uuidtup_to_bin((str(RPCECHO.uuid), "1.0"))
PROC = {p.name: p for p in ECHO_PROCEDURES}


class DCERPCSessionError(DCERPCException):
    pass


class BYTES(NDRUniConformantArray):
    item = "c"


class LPWSTR_OUT(NDRPOINTER):
    referent = (("Data", WSTR),)


class AddOne(NDRCALL):
    opnum = 0
    structure = (("in_data", ULONG),)


class AddOneResponse(NDRCALL):
    structure = (("out_data", ULONG),)


class EchoData(NDRCALL):
    opnum = 1
    structure = (("len", ULONG), ("in_data", BYTES))


class EchoDataResponse(NDRCALL):
    structure = (("out_data", BYTES),)


class SinkData(NDRCALL):
    opnum = 2
    structure = (("len", ULONG), ("data", BYTES))


class SourceData(NDRCALL):
    opnum = 3
    structure = (("len", ULONG),)


class SourceDataResponse(NDRCALL):
    structure = (("data", BYTES),)


class EchoTestCall(NDRCALL):
    opnum = 4
    structure = (("s1", WSTR),)


class EchoTestCallResponse(NDRCALL):
    structure = (("s2", LPWSTR_OUT),)


class EchoTestSleep(NDRCALL):
    opnum = 6
    structure = (("seconds", ULONG),)


class EchoTestSleepResponse(NDRCALL):
    structure = (("result", ULONG),)


@pytest.fixture
def dce(served: Any) -> Any:
    t = transport.DCERPCTransportFactory(served.binding)
    t.set_connect_timeout(10)
    d = t.get_dce_rpc()
    d.connect()
    d.bind(ECHO_IF)
    yield d
    d.disconnect()


def raw(dce: Any, name: str, **args: Any) -> dict[str, Any]:
    procedure = PROC[name]
    dce.call(procedure.opnum, procedure.encode_request(args))
    return procedure.decode_response(dce.recv(), request=args)


def test_bind_and_every_opnum(dce: Any) -> None:
    # spec: rpc #44 (impacket's bind accepted) #62 (response call_id/p_cont_id/alloc_hint) #64
    req = AddOne()
    req["in_data"] = 41
    assert dce.request(req, checkError=False)["out_data"] == 42

    payload = bytes(range(256)) * 4
    req = EchoData()
    req["len"] = len(payload)
    req["in_data"] = list(payload)
    resp = dce.request(req, checkError=False)
    assert b"".join(resp["out_data"]) == payload

    req = SinkData()
    req["len"] = 3
    req["data"] = list(b"abc")
    dce.call(req.opnum, req)
    assert dce.recv() == b""  # no [out] parameters: an empty response stub

    req = SourceData()
    req["len"] = 300
    data = b"".join(dce.request(req, checkError=False)["data"])
    assert data == bytes(i % 256 for i in range(300))

    req = EchoTestCall()
    req["s1"] = "winaio\x00"
    assert dce.request(req, checkError=False)["s2"] == "winaio\x00"

    arms = {1: {"v": 10}, 5: {"v1": 50, "v2": 60}, 7: {"v1": 80, "info4": {"v": 90}}}
    for level, arm in arms.items():
        assert raw(dce, "TestCall2", level=level) == {"info": (level, arm), "return": 0}

    req = EchoTestSleep()
    req["seconds"] = 1
    assert dce.request(req, checkError=False)["result"] == 1

    enum2 = {"e1": 1, "e2": 2}
    out = raw(dce, "TestEnum", foo1=2, foo2=enum2, foo3=(2, enum2))
    assert out == {"foo1": 2, "foo2": {"e1": 2, "e2": 2}, "foo3": (2, enum2)}

    out = raw(dce, "TestSurrounding", data={"x": 2, "surrounding": [7, 8]})
    assert out == {"data": {"x": 4, "surrounding": [0, 0, 0, 0]}}

    assert raw(dce, "TestDoublePointer", data=7) == {"return": 7}
    assert raw(dce, "TestDoublePointer", data=None) == {"return": 0}


def test_faults(dce: Any) -> None:
    # spec: rpc #57 (opnum out of range -> nca_s_op_rng_error), #59 (undecodable stub -> 0x6F7)
    dce.call(10, b"")
    with pytest.raises(DCERPCException, match="nca_s_op_rng_error"):
        dce.recv()
    dce.call(0, b"\x01")  # AddOne with a truncated u32
    with pytest.raises(DCERPCException, match="rpc_x_bad_stub_data"):
        dce.recv()
    dce.call(PROC["TestCall2"].opnum, b"\x08\x00")  # a level Samba's server cannot push either
    with pytest.raises(DCERPCException, match="rpc_x_bad_stub_data"):
        dce.recv()
    # The connection keeps working after faults.
    assert raw(dce, "AddOne", in_data=1) == {"out_data": 2}


def test_100kb_calls_are_fragmented_both_ways(dce: Any) -> None:
    # spec: rpc #67 (impacket fragments the request), #71/#72 (our response fragments)
    payload = os.urandom(100 * 1024)
    out = raw(dce, "EchoData", len=len(payload), in_data=payload)
    assert out["out_data"] == payload
    assert raw(dce, "SourceData", len=100 * 1024)["data"] == bytes(range(256)) * 400


def test_hept_map_through_our_mapper(served: Any) -> None:
    # spec: rpc #90 (hept_map returns ncacn_ip_tcp:127.0.0.1[port]) #93 (impacket's obj=&nil)
    t = transport.DCERPCTransportFactory(served.binding)
    d = t.get_dce_rpc()
    d.connect()
    try:
        found = epm.hept_map("127.0.0.1", ECHO_IF, protocol="ncacn_ip_tcp", dce=d)
    finally:
        d.disconnect()
    assert found == served.binding


def test_hept_lookup_lists_the_served_interfaces(served: Any) -> None:
    # spec: rpc #94 #95
    t = transport.DCERPCTransportFactory(served.binding)
    d = t.get_dce_rpc()
    d.connect()
    try:
        entries = epm.hept_lookup(None, dce=d)
    finally:
        d.disconnect()
    listed = {(e["annotation"], epm.PrintStringBinding(e["tower"]["Floors"])) for e in entries}
    assert (b"winaio rpcecho\x00", served.binding) in listed
    assert (b"winaio epmapper\x00", served.binding) in listed


def test_mgmt_inq_if_ids(served: Any) -> None:
    t = transport.DCERPCTransportFactory(served.binding)
    d = t.get_dce_rpc()
    d.connect()
    d.bind(mgmt.MSRPC_UUID_MGMT)
    try:
        ids = mgmt.hinq_if_ids(d)["if_id_vector"]["if_id"]
        assert mgmt.his_server_listening(d)["status"] == 0
    finally:
        d.disconnect()
    from impacket.uuid import bin_to_uuidtup

    listed = {bin_to_uuidtup(i["Data"].getData()) for i in ids}
    assert (str(RPCECHO.uuid).upper(), "1.0") in listed


def test_rpcmap_example_enumerates_us(served: Any) -> None:
    script = os.path.join(os.path.dirname(sys.executable), "rpcmap.py")
    run = subprocess.run(
        [sys.executable, script, "-auth-level", "1", served.binding],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "UUID: 60A15EC5-4DE8-11D7-A637-005056A20182 v1.0" in run.stdout


def test_rpcdump_example_lists_every_interface(served: Any, epm135: Any) -> None:
    # spec: rpc #94 (rpcdump.py only talks to port 135)
    script = os.path.join(os.path.dirname(sys.executable), "rpcdump.py")
    run = subprocess.run([sys.executable, script, "127.0.0.1"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    blocks = run.stdout.split("\n\n")
    echo = next(b for b in blocks if "UUID    : 60A15EC5-4DE8-11D7-A637-005056A20182" in b)
    assert echo.splitlines()[-5:] == [
        "Protocol: N/A ",
        "Provider: N/A ",
        "UUID    : 60A15EC5-4DE8-11D7-A637-005056A20182 v1.0 winaio rpcecho",
        "Bindings: ",
        f"          {served.binding}",
    ], echo
    # And hept_map without a dce: impacket connects to the mapper on 135 itself (rpc #90).
    assert epm.hept_map("127.0.0.1", ECHO_IF, protocol="ncacn_ip_tcp") == served.binding
