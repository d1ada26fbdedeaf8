"""Cross-check against impacket's NDR (impacket.dcerpc.v5.ndr / dtypes / epm), both ways.

impacket pads with 0xAB/0xBF/... octets and picks random referent ids, so these also exercise
"padding values are ignored" (#76) and "any nonzero referent id" (#77) with a real peer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from impacket.dcerpc.v5 import epm as imp_epm
from impacket.dcerpc.v5.dtypes import LPWSTR, RPC_UNICODE_STRING
from impacket.dcerpc.v5.ndr import (
    NDRCALL,
    NDRHYPER,
    NDRPOINTER,
    NDRSHORT,
    NDRSTRUCT,
    NDRULONG,
    NDRUNION,
    NDRUSHORT,
    NDRUSMALL,
    NDRUniConformantArray,
)

from winaio.rpc._ndr import (
    HYPER,
    SHORT,
    ULONG,
    USHORT,
    USMALL,
    WCHAR,
    ConformantArray,
    ConformantVaryingArray,
    ContextHandleValue,
    Param,
    Procedure,
    Ref,
    String,
    Struct,
    Union,
    unique,
)

pytestmark = pytest.mark.interop

# -- a typical request: strings, a pointer to an array of structs, a union -----------------------


class IMP_ITEM(NDRSTRUCT):
    structure = (("id", NDRULONG), ("flags", NDRUSHORT), ("kind", NDRUSHORT), ("stamp", NDRHYPER))


class IMP_ITEM_ARRAY(NDRUniConformantArray):
    item = IMP_ITEM


class IMP_PITEM_ARRAY(NDRPOINTER):
    referent = (("Data", IMP_ITEM_ARRAY),)


class IMP_INFO(NDRUNION):
    commonHdr = (("tag", NDRULONG),)
    union = {1: ("value", NDRULONG), 2: ("name", LPWSTR)}  # noqa: RUF012 - impacket's API


class IMP_REQ(NDRSTRUCT):
    structure = (
        ("name", LPWSTR),
        ("count", NDRULONG),
        ("items", IMP_PITEM_ARRAY),
        ("level", NDRULONG),
        ("info", IMP_INFO),
    )


class IMP_CALL(NDRCALL):
    opnum = 1
    structure = (("req", IMP_REQ), ("tail", NDRUSHORT))


ITEM = Struct([("id", ULONG), ("flags", USHORT), ("kind", USHORT), ("stamp", HYPER)])
INFO = Union(ULONG, {1: ULONG, 2: unique(String(WCHAR))}, switch_is="level")
REQ = Struct(
    [
        ("name", unique(String(WCHAR))),
        ("count", ULONG),
        ("items", unique(ConformantArray(ITEM, size_is="count"))),
        ("level", ULONG),
        ("info", INFO),
    ]
)
CALL = Procedure("call", 1, [Param("req", REQ), Param("tail", USHORT)])


def our_request(n: int, level: int) -> dict[str, Any]:
    items = [{"id": i, "flags": 3, "kind": 7, "stamp": -i * 1000} for i in range(n)]
    arm: Any = 99 if level == 1 else "arm"
    return {
        "req": {"name": "hello", "count": n, "items": items, "level": level, "info": (level, arm)},
        "tail": 0xBEEF,
    }


def impacket_request(n: int, level: int) -> IMP_CALL:
    call = IMP_CALL()
    call["req"]["name"] = "hello\x00"  # impacket wants the terminator spelled out
    call["req"]["count"] = n
    for i in range(n):
        item = IMP_ITEM()
        item["id"], item["flags"], item["kind"], item["stamp"] = i, 3, 7, -i * 1000
        call["req"]["items"].append(item)
    call["req"]["level"] = level
    call["req"]["info"]["tag"] = level
    if level == 1:
        call["req"]["info"]["value"] = 99
    else:
        call["req"]["info"]["name"] = "arm\x00"
    call["tail"] = 0xBEEF
    return call


@pytest.mark.parametrize(("n", "level"), [(0, 1), (1, 2), (5, 1), (64, 2)])
def test_impacket_request_decodes(n: int, level: int) -> None:
    stub = impacket_request(n, level).getData()
    assert CALL.decode_request(stub) == our_request(n, level)


@pytest.mark.parametrize(("n", "level"), [(0, 1), (1, 2), (5, 1), (64, 2)])
def test_our_request_decodes_in_impacket(n: int, level: int) -> None:
    stub = CALL.encode_request(our_request(n, level))
    theirs = IMP_CALL(stub)
    req = theirs["req"]
    assert req["name"] == "hello\x00"
    assert req["count"] == n
    items = [(x["id"], x["flags"], x["kind"], x["stamp"]) for x in req["items"]]
    assert items == [(i, 3, 7, -i * 1000) for i in range(n)]
    assert req["level"] == level and req["info"]["tag"] == level
    if level == 1:
        assert req["info"]["value"] == 99
    else:
        assert req["info"]["name"] == "arm\x00"
    assert theirs["tail"] == 0xBEEF
    # and impacket re-encodes what it read to the same octets, modulo its own padding/ids
    assert len(theirs.getData()) == len(stub)


# -- rpc-spec §B11 examples as impacket builds them ---------------------------------------------


class IMP_ABC(NDRSTRUCT):
    structure = (("a", NDRUSMALL), ("b", NDRULONG), ("c", NDRHYPER))


class IMP_SHORT_THEN_STRUCT(NDRCALL):
    structure = (("x", NDRSHORT), ("s", IMP_ABC))


def test_impacket_pads_with_nonzero_octets_and_we_ignore_them(
    golden: Callable[[str], bytes],
) -> None:
    # spec: rpc #76
    call = IMP_SHORT_THEN_STRUCT()
    call["x"] = 1
    call["s"]["a"], call["s"]["b"], call["s"]["c"] = 2, 3, 4
    stub = call.getData()
    assert stub == golden("short_then_struct_impacket_pad")
    proc = Procedure(
        "p", 0, [Param("x", SHORT), Param("s", Struct([("a", USMALL), ("b", ULONG), ("c", HYPER)]))]
    )
    assert proc.decode_request(stub) == {"x": 1, "s": {"a": 2, "b": 3, "c": 4}}


class IMP_ULONG_ARRAY(NDRUniConformantArray):
    item = "<L"


class IMP_CONFORMANT(NDRSTRUCT):
    structure = (("n", NDRULONG), ("a", IMP_ULONG_ARRAY))


def test_impacket_conformant_struct_matches_the_golden_vector(
    golden: Callable[[str], bytes],
) -> None:
    # spec: rpc #79
    s = IMP_CONFORMANT()
    s["n"] = 2
    s["a"] = [10, 20]
    assert s.getData() == golden("conformant_struct")
    assert IMP_CONFORMANT(golden("conformant_struct"))["a"] == [10, 20]


# -- RPC_UNICODE_STRING: divided correlations -------------------------------------------------

UNICODE_STRING = Struct(
    [
        ("Length", USHORT),
        ("MaximumLength", USHORT),
        (
            "Buffer",
            unique(ConformantVaryingArray(WCHAR, Ref("MaximumLength", 2), Ref("Length", 2))),
        ),
    ]
)


class IMP_US_CALL(NDRCALL):
    structure = (("s", RPC_UNICODE_STRING), ("n", NDRULONG))


US_CALL = Procedure("us", 0, [Param("s", UNICODE_STRING), Param("n", ULONG)])


@pytest.mark.parametrize("text", ["", "a", "Administrator", "\u00e9t\u00e9"])
def test_rpc_unicode_string_both_ways(text: str) -> None:
    call = IMP_US_CALL()
    # impacket's NDRCALL["s"] would return s["Data"]: go through .fields for the struct itself
    call.fields["s"]["Data"] = text
    call["n"] = 7
    expected = {
        "s": {"Length": 2 * len(text), "MaximumLength": 2 * len(text), "Buffer": text},
        "n": 7,
    }
    assert US_CALL.decode_request(call.getData()) == expected
    theirs = IMP_US_CALL(US_CALL.encode_request(expected))
    assert theirs.fields["s"]["Length"] == 2 * len(text)
    assert theirs.fields["s"]["Data"] == text
    assert theirs["n"] == 7


# -- the endpoint mapper, impacket's own classes -------------------------------------------------


def test_impacket_ept_map_request_decodes(epm: SimpleNamespace) -> None:
    request = imp_epm.ept_map()
    request["obj"] = b"\x00" * 16  # impacket sends referent id + nil uuid (rpc-spec §B12)
    request["map_tower"]["tower_length"] = len(epm.RPCECHO_TOWER)
    request["map_tower"]["tower_octet_string"] = epm.RPCECHO_TOWER
    request["max_towers"] = 4
    request.fields["obj"].fields["ReferentID"] = 1
    request.fields["map_tower"].fields["ReferentID"] = 2
    ours = epm.EPT_MAP.decode_request(request.getData())
    assert ours == {
        "obj": uuid.UUID(int=0),
        "map_tower": {"tower_length": 75, "tower_octet_string": epm.RPCECHO_TOWER},
        "entry_handle": ContextHandleValue.NULL,
        "max_towers": 4,
    }
    # ... and what we encode, impacket reads back.
    theirs = imp_epm.ept_map(epm.EPT_MAP.encode_request(ours))
    assert theirs["max_towers"] == 4
    assert b"".join(theirs["map_tower"]["tower_octet_string"]) == epm.RPCECHO_TOWER


def test_captured_ept_map_response_reads_the_same_in_impacket(
    epm: SimpleNamespace, golden: Callable[[str], bytes]
) -> None:
    theirs = imp_epm.ept_mapResponse(golden("epm_map_response_stub"))
    assert theirs["num_towers"] == 1 and theirs["status"] == 0
    tower = b"".join(theirs["ITowers"][0]["Data"]["tower_octet_string"])
    assert tower == epm.RPCECHO_TOWER
    ours = epm.EPT_MAP.decode_response(golden("epm_map_response_stub"))
    assert ours["towers"][0]["tower_octet_string"] == tower


def ept_entries(epm: SimpleNamespace) -> list[dict[str, Any]]:
    return [
        {
            "object": uuid.UUID(int=0),
            "tower": {"tower_length": 75, "tower_octet_string": epm.RPCECHO_TOWER},
            "annotation": "rpcecho",
        },
        {
            "object": uuid.UUID("12345678-1234-abcd-ef00-0123456789ab"),
            "tower": {"tower_length": 3, "tower_octet_string": b"\x01\x02\x03"},
            "annotation": "",
        },
    ]


def test_our_ept_lookup_response_reads_in_impacket(epm: SimpleNamespace) -> None:
    entries = ept_entries(epm)
    stub = epm.EPT_LOOKUP.encode_response(
        {
            "entry_handle": ContextHandleValue.NULL,
            "num_ents": 2,
            "entries": entries,
            "status": 0,
            "max_ents": 500,
        }
    )
    theirs = imp_epm.ept_lookupResponse(stub)
    assert theirs["num_ents"] == 2 and theirs["status"] == 0
    for entry, mine in zip(theirs["entries"], entries, strict=True):
        assert entry["object"] == mine["object"].bytes_le
        assert b"".join(entry["annotation"]) == mine["annotation"].encode() + b"\x00"
        tower = b"".join(entry["tower"]["tower_octet_string"])
        assert tower == mine["tower"]["tower_octet_string"]


def test_impacket_ept_lookup_response_decodes(epm: SimpleNamespace) -> None:
    response = imp_epm.ept_lookupResponse()
    response["num_ents"] = 2
    for mine in ept_entries(epm):
        entry = imp_epm.ept_entry_t()
        entry["object"] = mine["object"].bytes_le
        entry["tower"]["tower_length"] = mine["tower"]["tower_length"]
        entry["tower"]["tower_octet_string"] = mine["tower"]["tower_octet_string"]
        entry["annotation"] = [bytes([c]) for c in mine["annotation"].encode() + b"\x00"]
        response["entries"].append(entry)
    response["status"] = 0x16C9A0D6
    ours = epm.EPT_LOOKUP.decode_response(response.getData())
    assert ours["num_ents"] == 2
    assert ours["entries"] == ept_entries(epm)
    assert ours["status"] == 0x16C9A0D6
