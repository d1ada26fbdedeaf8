"""NDR encode+decode throughput: winaio.rpc._ndr vs impacket's NDR, same request, same run.

The request is a typical MS-RPC call parameter: a struct with a unique ``wchar_t*`` string, a
unique pointer to a conformant array of 64 structs (ulong, 2 x ushort, hyper) sized by a
sibling count, and a non-encapsulated union switched by a sibling level whose arm is another
unique string; then a trailing ushort parameter. One operation = encode the request stub from
its Python value + decode it back. impacket's value objects are built once, outside the loop
(its cost to build them is not counted), so the ratio is conservative.

Usage: ``python benchmarks/bench_ndr.py [--seconds S] [--repeat N]``. Prints one JSON object.
A script, not a test: it is not run in CI (timings on shared machines are noise).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from impacket.dcerpc.v5.dtypes import LPWSTR
from impacket.dcerpc.v5.ndr import (
    NDRCALL,
    NDRHYPER,
    NDRPOINTER,
    NDRSTRUCT,
    NDRULONG,
    NDRUNION,
    NDRUSHORT,
    NDRUniConformantArray,
)

from winaio.rpc._ndr import (
    HYPER,
    ULONG,
    USHORT,
    WCHAR,
    ConformantArray,
    Param,
    Procedure,
    String,
    Struct,
    Union,
    unique,
)

N_ITEMS = 64

# -- ours ---------------------------------------------------------------------------------------

ITEM = Struct([("id", ULONG), ("flags", USHORT), ("kind", USHORT), ("stamp", HYPER)])
REQUEST = Struct(
    [
        ("name", unique(String(WCHAR))),
        ("count", ULONG),
        ("items", unique(ConformantArray(ITEM, size_is="count"))),
        ("level", ULONG),
        ("info", Union(ULONG, {1: ULONG, 2: unique(String(WCHAR))}, switch_is="level")),
    ]
)
CALL = Procedure("Submit", 1, [Param("req", REQUEST), Param("tail", USHORT)])

VALUE = {
    "req": {
        "name": "\\\\server\\share\\some\\path.txt",
        "count": N_ITEMS,
        "items": [{"id": i, "flags": 3, "kind": 7, "stamp": i * 1_000_000} for i in range(N_ITEMS)],
        "level": 2,
        "info": (2, "an arm of the union"),
    },
    "tail": 0xBEEF,
}

# -- impacket -----------------------------------------------------------------------------------


class ImpItem(NDRSTRUCT):
    structure = (("id", NDRULONG), ("flags", NDRUSHORT), ("kind", NDRUSHORT), ("stamp", NDRHYPER))


class ImpItemArray(NDRUniConformantArray):
    item = ImpItem


class ImpItemArrayPtr(NDRPOINTER):
    referent = (("Data", ImpItemArray),)


class ImpInfo(NDRUNION):
    commonHdr = (("tag", NDRULONG),)
    union = {1: ("value", NDRULONG), 2: ("name", LPWSTR)}  # noqa: RUF012 - impacket's API


class ImpRequest(NDRSTRUCT):
    structure = (
        ("name", LPWSTR),
        ("count", NDRULONG),
        ("items", ImpItemArrayPtr),
        ("level", NDRULONG),
        ("info", ImpInfo),
    )


class ImpCall(NDRCALL):
    opnum = 1
    structure = (("req", ImpRequest), ("tail", NDRUSHORT))


def impacket_value() -> ImpCall:
    call = ImpCall()
    req = VALUE["req"]
    call["req"]["name"] = req["name"] + "\x00"
    call["req"]["count"] = req["count"]
    for src in req["items"]:
        item = ImpItem()
        for key in ("id", "flags", "kind", "stamp"):
            item[key] = src[key]
        call["req"]["items"].append(item)
    call["req"]["level"] = 2
    call["req"]["info"]["tag"] = 2
    call["req"]["info"]["name"] = req["info"][1] + "\x00"
    call["tail"] = VALUE["tail"]
    return call


# -- measurement --------------------------------------------------------------------------------


def rate(op: Callable[[], Any], seconds: float) -> float:
    """Operations per second of ``op`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(3):
        op()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            op()
        count += 10
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per side (median)")
    args = parser.parse_args()

    stub = CALL.encode_request(VALUE)
    assert CALL.decode_request(stub) == VALUE
    theirs = impacket_value()
    their_stub = theirs.getData()
    assert CALL.decode_request(their_stub) == VALUE, "impacket and winaio disagree"
    assert len(their_stub) == len(stub)

    def ours_op() -> None:
        CALL.decode_request(CALL.encode_request(VALUE))

    def ours_encode() -> None:
        CALL.encode_request(VALUE)

    def ours_decode() -> None:
        CALL.decode_request(stub)

    def impacket_op() -> None:
        ImpCall(theirs.getData())

    ours = [rate(ours_op, args.seconds) for _ in range(args.repeat)]
    imp = [rate(impacket_op, args.seconds) for _ in range(args.repeat)]
    ours_ops, imp_ops = statistics.median(ours), statistics.median(imp)
    result = {
        "benchmark": "ndr_encode_decode",
        "request": f"struct{{unique wstr, ulong, unique conformant array of {N_ITEMS} structs, "
        "ulong, union(unique wstr)}, ushort",
        "stub_octets": len(stub),
        "winaio_ops_per_s": round(ours_ops, 1),
        "winaio_encode_ops_per_s": round(rate(ours_encode, args.seconds), 1),
        "winaio_decode_ops_per_s": round(rate(ours_decode, args.seconds), 1),
        "impacket_ops_per_s": round(imp_ops, 1),
        "ratio": round(ours_ops / imp_ops, 1),
        "target_ratio": 20,
        "python": platform.python_version(),
        "repeat": args.repeat,
        "seconds": args.seconds,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
