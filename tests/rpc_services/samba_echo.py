"""Samba's own rpcecho, driven from the *system* python3 (python3-samba). Not a test module.

Run by the tests in a subprocess (Samba's bindings belong to Debian's python3, not our venv):

    /usr/bin/python3 samba_echo.py requests            -> JSON {op: {"le": hex, "be": hex}}
    /usr/bin/python3 samba_echo.py responses < JSON    -> JSON {op: {"le": values, "be": values}}
    /usr/bin/python3 samba_echo.py client BINDING [DIR] -> JSON {op: values or {"error": ...}}

``requests`` marshals each opnum's [in] values with Samba's NDR (``ndr_pack_in``, both byte
orders); ``responses`` unmarshals response stubs with ``ndr_unpack_out``; ``client`` calls
every opnum through ``samba.dcerpc.echo.rpcecho(BINDING)`` (add ``[bigendian]`` to the binding
for big-endian NDR; DIR is the ncalrpc socket directory for ``ncalrpc:[name]`` bindings).
Values are reduced to JSON-friendly plain data.
"""

import json
import sys

from samba import param
from samba.dcerpc import base, echo
from samba.ndr import ndr_pack_in, ndr_unpack_out

PAYLOAD = list(b"winaio rpcecho \x00\xff")


def info_value(level, info):
    if level in (1, 2, 3, 4):
        return {"v": info.v}
    if level == 5:
        return {"v1": info.v1, "v2": info.v2}
    if level == 6:
        return {"v1": info.v1, "info1": {"v": info.info1.v}}
    return {"v1": info.v1, "info4": {"v": info.info4.v}}


def enum2(e1, e2):
    value = echo.Enum2()
    value.e1, value.e2 = e1, e2
    return value


def surrounding(x):
    value = echo.Surrounding()
    value.x = x
    value.surrounding = list(range(1, x + 1))
    return value


def calls():
    """(name, samba request object) per opnum, with sample [in] values."""
    out = []
    r = echo.AddOne()
    r.in_in_data = 41
    out.append(("AddOne", r))
    r = echo.EchoData()
    r.in_len, r.in_in_data = len(PAYLOAD), PAYLOAD
    out.append(("EchoData", r))
    r = echo.SinkData()
    r.in_len, r.in_data = len(PAYLOAD), PAYLOAD
    out.append(("SinkData", r))
    r = echo.SourceData()
    r.in_len = 300
    out.append(("SourceData", r))
    r = echo.TestCall()
    r.in_s1 = "hé ☃"
    out.append(("TestCall", r))
    for level in range(1, 8):
        r = echo.TestCall2()
        r.in_level = level
        out.append((f"TestCall2.{level}", r))
    r = echo.TestSleep()
    r.in_seconds = 0
    out.append(("TestSleep", r))
    r = echo.TestEnum()
    r.in_foo1 = echo.ECHO_ENUM2
    r.in_foo2 = enum2(echo.ECHO_ENUM1, echo.ECHO_ENUM2_32)
    r.in_foo3 = enum2(echo.ECHO_ENUM1, echo.ECHO_ENUM1_32)
    out.append(("TestEnum", r))
    r = echo.TestSurrounding()
    r.in_data = surrounding(3)
    out.append(("TestSurrounding", r))
    r = echo.TestDoublePointer()
    r.in_data = base.ndr_pointer(7)
    out.append(("TestDoublePointer", r))
    return out


def out_values(name, r):
    if name == "AddOne":
        return r.out_out_data
    if name == "EchoData":
        return list(r.out_out_data)
    if name == "SinkData":
        return None
    if name == "SourceData":
        return list(r.out_data)
    if name == "TestCall":
        return r.out_s2
    if name.startswith("TestCall2."):
        level = int(name.split(".")[1])
        return {"info": info_value(level, r.out_info), "result": r.result[0]}
    if name == "TestSleep":
        return r.result
    if name == "TestEnum":
        foo3 = r.out_foo3
        return {
            "foo1": r.out_foo1,
            "foo2": [r.out_foo2.e1, r.out_foo2.e2],
            "foo3": [foo3.e1, foo3.e2],
        }
    if name == "TestSurrounding":
        return {"x": r.out_data.x, "surrounding": list(r.out_data.surrounding)}
    return r.result


def requests():
    return {
        name: {"le": ndr_pack_in(r).hex(), "be": ndr_pack_in(r, bigendian=True).hex()}
        for name, r in calls()
    }


def responses(stubs):
    result = {}
    for order in ("le", "be"):
        # A fresh request object each time: unmarshalling checks [out] sizes against [in].
        for name, r in calls():
            if name in stubs:
                ndr_unpack_out(r, bytes.fromhex(stubs[name][order]), bigendian=order == "be")
                result.setdefault(name, {})[order] = out_values(name, r)
    return result


def client(binding, lrpc_dir=None):
    lp = param.LoadParm()
    if lrpc_dir:
        lp.set("ncalrpc dir", lrpc_dir)
    conn = echo.rpcecho(binding, lp)
    result = {}

    def attempt(name, fn):
        try:
            result[name] = fn()
        except Exception as exc:  # RuntimeError((status, message)) from Samba
            result[name] = {"error": repr(exc.args)}

    attempt("AddOne", lambda: conn.AddOne(41))
    attempt("EchoData", lambda: list(conn.EchoData(PAYLOAD)))
    attempt("SinkData", lambda: conn.SinkData(PAYLOAD))
    attempt("SourceData", lambda: list(conn.SourceData(300)))
    attempt("TestCall", lambda: conn.TestCall("hé ☃"))
    for level in range(1, 9):
        attempt(f"TestCall2.{level}", lambda level=level: call2(conn, level))
    attempt("TestSleep", lambda: conn.TestSleep(1))
    attempt("TestEnum", lambda: test_enum(conn))
    attempt("TestSurrounding", lambda: test_surrounding(conn))
    attempt("TestDoublePointer", lambda: conn.TestDoublePointer(base.ndr_pointer(7)))
    return result


def call2(conn, level):
    # Samba's Python stubs raise on a non-zero NTSTATUS and return only [out] info.
    info = conn.TestCall2(level)
    return {"info": info_value(level, info), "result": 0}


def test_enum(conn):
    foo1, foo2, foo3 = conn.TestEnum(
        echo.ECHO_ENUM2,
        enum2(echo.ECHO_ENUM1, echo.ECHO_ENUM2_32),
        enum2(echo.ECHO_ENUM1, echo.ECHO_ENUM1_32),
    )
    return {"foo1": foo1, "foo2": [foo2.e1, foo2.e2], "foo3": [foo3.e1, foo3.e2]}


def test_surrounding(conn):
    data = conn.TestSurrounding(surrounding(3))
    return {"x": data.x, "surrounding": list(data.surrounding)}


def main():
    mode = sys.argv[1]
    if mode == "requests":
        out = requests()
    elif mode == "responses":
        out = responses(json.load(sys.stdin))
    else:
        out = client(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
