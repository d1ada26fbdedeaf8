"""Fixtures for the NDR tests: golden vectors (tests/data/ndr) and shared IDL descriptors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from winaio.rpc import TWR_T
from winaio.rpc._ndr import (
    CHAR,
    CONTEXT_HANDLE,
    ERROR_STATUS_T,
    GUID,
    IN,
    IN_OUT,
    OUT,
    ULONG,
    USHORT,
    ConformantVaryingArray,
    Param,
    Procedure,
    Struct,
    VaryingString,
    full,
)
from winaio.testing import hex_reader

DATA = Path(__file__).resolve().parents[2] / "data" / "ndr"


#: Bytes of tests/data/ndr/<name>.hex (hex digits, whitespace ignored, '#' comments).
read_hex = hex_reader(DATA)


@pytest.fixture
def golden() -> Callable[[str], bytes]:
    return read_hex


# The endpoint mapper's types [C706 App. O], [MS-RPCE §2.2.1.2], rpc-spec §B12; twr_t is the
# library's (winaio.rpc.TWR_T).
EPT_ENTRY_T = Struct(
    [("object", GUID), ("tower", full(TWR_T)), ("annotation", VaryingString(CHAR, 64))],
    name="ept_entry_t",
)
EPT_MAP = Procedure(
    "ept_map",
    3,
    [
        Param("obj", full(GUID), IN),
        Param("map_tower", full(TWR_T), IN),
        Param("entry_handle", CONTEXT_HANDLE, IN_OUT),
        Param("max_towers", ULONG, IN),
        Param("num_towers", ULONG, OUT),
        Param(
            "towers",
            ConformantVaryingArray(full(TWR_T), size_is="max_towers", length_is="num_towers"),
            OUT,
        ),
        Param("status", ERROR_STATUS_T, OUT),
    ],
)
RPC_IF_ID = Struct([("uuid", GUID), ("vers_major", USHORT), ("vers_minor", USHORT)])
EPT_LOOKUP = Procedure(
    "ept_lookup",
    2,
    [
        Param("inquiry_type", ULONG, IN),
        Param("object", full(GUID), IN),
        Param("ifid", full(RPC_IF_ID), IN),
        Param("vers_option", ULONG, IN),
        Param("entry_handle", CONTEXT_HANDLE, IN_OUT),
        Param("max_ents", ULONG, IN),
        Param("num_ents", ULONG, OUT),
        Param(
            "entries",
            ConformantVaryingArray(EPT_ENTRY_T, size_is="max_ents", length_is="num_ents"),
            OUT,
        ),
        Param("status", ERROR_STATUS_T, OUT),
    ],
)

# The ncacn_ip_tcp tower of rpc-spec §B12 (rpcecho v1.0 on 127.0.0.1:15136), 75 octets.
RPCECHO_TOWER = bytes.fromhex(
    "0500"
    "1300 0d c55ea160e84dd711a637005056a20182 0100 0200 0000"
    "1300 0d 045d888aeb1cc9119fe808002b104860 0200 0200 0000"
    "0100 0b 0200 0000"
    "0100 07 0200 3b20"
    "0100 09 0400 7f000001".replace(" ", "")
)


@pytest.fixture
def epm() -> SimpleNamespace:
    return SimpleNamespace(
        TWR_T=TWR_T,
        EPT_ENTRY_T=EPT_ENTRY_T,
        EPT_MAP=EPT_MAP,
        EPT_LOOKUP=EPT_LOOKUP,
        RPC_IF_ID=RPC_IF_ID,
        RPCECHO_TOWER=RPCECHO_TOWER,
    )
