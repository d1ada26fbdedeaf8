"""Samba's rpcecho test interface as NDR descriptors (sans-I/O).

``60a15ec5-4de8-11d7-a637-005056a20182`` v1.0, ``pointer_default(unique)``, from Samba's
``librpc/idl/echo.idl`` with the opnums of Samba 4.17 (rpc-spec §C4; the fork that puts
EchoString at opnum 2 is not followed). Samba's tools (``rpcclient echoaddone``...), its Python
client ``samba.dcerpc.echo`` and impacket all speak it, which makes it the interface every real
peer can exercise.

Rules carried over from pidl (Samba's IDL compiler):
- A top-level pointer is ``[ref]`` (no wire form) whatever the pointer_default; pointers below
  it follow pointer_default(unique). So ``[out,string] uint16 **s2`` is ``unique(String)`` and
  ``[in] uint16 ***data`` is ``unique(unique(USHORT))``.
- ``uint8`` is an unsigned small, ``hyper`` an unsigned 64-bit integer, ``NTSTATUS`` a u32.
- Non-encapsulated unions align their arm to the arm's own type (MIDL's default, not
  ``/ms_union``): TestCall2 level 1 is ``<tag u16> <v u8>``, level 5 pads to 8 before ``v1``.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

from .._ndr import (
    BYTE,
    ENUM16,
    IN,
    IN_OUT,
    OUT,
    UHYPER,
    ULONG,
    USHORT,
    USMALL,
    V1_ENUM,
    WCHAR,
    ConformantArray,
    Param,
    Procedure,
    String,
    Struct,
    Union,
    unique,
)
from .._pdu import SyntaxId

__all__ = [
    "RPCECHO",
    "ECHO_PROCEDURES",
    "ADD_ONE",
    "ECHO_DATA",
    "SINK_DATA",
    "SOURCE_DATA",
    "TEST_CALL",
    "TEST_CALL2",
    "TEST_SLEEP",
    "TEST_ENUM",
    "TEST_SURROUNDING",
    "TEST_DOUBLE_POINTER",
    "ECHO_ENUM1",
    "ECHO_ENUM2",
]

RPCECHO: Final = SyntaxId(UUID("60a15ec5-4de8-11d7-a637-005056a20182"), 1, 0)

ECHO_ENUM1: Final = 1
ECHO_ENUM2: Final = 2

_OCTETS_IN: Final = ConformantArray(BYTE, size_is="len")

ADD_ONE: Final = Procedure(
    "AddOne", 0, [Param("in_data", ULONG, IN), Param("out_data", ULONG, OUT)]
)
ECHO_DATA: Final = Procedure(
    "EchoData",
    1,
    [
        Param("len", ULONG, IN),
        Param("in_data", _OCTETS_IN, IN),
        Param("out_data", ConformantArray(BYTE, size_is="len"), OUT),
    ],
)
SINK_DATA: Final = Procedure(
    "SinkData", 2, [Param("len", ULONG, IN), Param("data", _OCTETS_IN, IN)]
)
SOURCE_DATA: Final = Procedure(
    "SourceData",
    3,
    [Param("len", ULONG, IN), Param("data", ConformantArray(BYTE, size_is="len"), OUT)],
)
TEST_CALL: Final = Procedure(
    "TestCall", 4, [Param("s1", String(WCHAR), IN), Param("s2", unique(String(WCHAR)), OUT)]
)

_INFO1: Final = Struct([("v", USMALL)], name="echo_info1")
_INFO4: Final = Struct([("v", UHYPER)], name="echo_info4")
ECHO_INFO: Final = Union(
    USHORT,
    {
        1: _INFO1,
        2: Struct([("v", USHORT)], name="echo_info2"),
        3: Struct([("v", ULONG)], name="echo_info3"),
        4: _INFO4,
        5: Struct([("v1", USMALL), ("v2", UHYPER)], name="echo_info5"),
        6: Struct([("v1", USMALL), ("info1", _INFO1)], name="echo_info6"),
        7: Struct([("v1", USMALL), ("info4", _INFO4)], name="echo_info7"),
    },
    switch_is="level",
)
TEST_CALL2: Final = Procedure(
    "TestCall2",
    5,
    [Param("level", USHORT, IN), Param("info", ECHO_INFO, OUT)],
    returns=ULONG,  # NTSTATUS
)
TEST_SLEEP: Final = Procedure("TestSleep", 6, [Param("seconds", ULONG, IN)], returns=ULONG)

_ENUM2: Final = Struct([("e1", ENUM16), ("e2", V1_ENUM)], name="echo_Enum2")
TEST_ENUM: Final = Procedure(
    "TestEnum",
    7,
    [
        Param("foo1", ENUM16, IN_OUT),
        Param("foo2", _ENUM2, IN_OUT),
        Param("foo3", Union(USHORT, {ECHO_ENUM1: ENUM16, ECHO_ENUM2: _ENUM2}, switch_is="foo1"),
              IN_OUT),
    ],
)  # fmt: skip
TEST_SURROUNDING: Final = Procedure(
    "TestSurrounding",
    8,
    [
        Param(
            "data",
            Struct(
                [("x", ULONG), ("surrounding", ConformantArray(USHORT, size_is="x"))],
                name="echo_Surrounding",
            ),
            IN_OUT,
        )
    ],
)
TEST_DOUBLE_POINTER: Final = Procedure(
    "TestDoublePointer", 9, [Param("data", unique(unique(USHORT)), IN)], returns=USHORT
)

ECHO_PROCEDURES: Final = (
    ADD_ONE,
    ECHO_DATA,
    SINK_DATA,
    SOURCE_DATA,
    TEST_CALL,
    TEST_CALL2,
    TEST_SLEEP,
    TEST_ENUM,
    TEST_SURROUNDING,
    TEST_DOUBLE_POINTER,
)
