"""Sans-I/O NDR 2.0 transfer syntax [C706 ch.14] with the Microsoft extensions [MS-RPCE §2.2.4].

Bytes in, Python values out, and back: no sockets, no threads, no clocks. Imports only the
standard library, ``winaio.codes`` and ``winaio.errors``.

Declaring types
    Descriptors are frozen objects mirroring IDL (``_types``)::

        TWR_T = Struct([("tower_length", ULONG),
                        ("tower_octet_string", ConformantArray(BYTE, size_is="tower_length"))],
                       name="twr_t")
        ept_map = Procedure("ept_map", 3, [
            Param("obj", full(GUID), IN),
            Param("map_tower", full(TWR_T), IN),
            Param("entry_handle", CONTEXT_HANDLE, IN_OUT),
            Param("max_towers", ULONG, IN),
            Param("num_towers", ULONG, OUT),          # [out] u32 * : top-level ref, no wire form
            Param("towers", ConformantVaryingArray(full(TWR_T), size_is="max_towers",
                                                   length_is="num_towers"), OUT),
            Param("status", ERROR_STATUS_T, OUT),
        ])
        stub = ept_map.encode_request({"obj": None, "map_tower": {...}, ...})
        args = ept_map.decode_request(stub)
        out = ept_map.decode_response(resp_stub, request=args)

    Correlations (``size_is``, ``length_is``, ``first_is``, ``switch_is``) name a sibling field
    or a parameter (:class:`Ref` adds ``/ divide + add``); nothing is ever evaluated.
    :class:`Codec` marshals a single type (``Codec(T).encode(v)`` / ``.decode(stub)``).

Python values
    ========================================  ===============================================
    integer primitives, enums                 ``int`` (boolean: ``bool``; float/double: ``float``)
    ``char`` / ``wchar_t``                    ``bytes`` of length 1 / ``str`` of length 1
    arrays of byte, unsigned small, char      ``bytes``
    arrays of ``wchar_t``                     ``str`` (UTF-16 code units, lone surrogates kept)
    other arrays, pipes' chunks               ``list`` (multidimensional: list of rows)
    ``[string]`` char / wchar_t               ``str`` without the NUL (char is Latin-1)
    struct                                    ``dict`` field name -> value
    union (both kinds)                        ``(tag, arm_value)``; an empty arm is ``None``
    pointer                                   the pointee, or ``None`` for NULL
    GUID / context handle                     ``uuid.UUID`` / :class:`ContextHandleValue`
    pipe (whole message)                      list of chunks
    ========================================  ===============================================

Rules of the octet stream (see the module docstrings for the details and citations)
    - Alignment is relative to the start of the reassembled stub (``base`` = offset of the first
      octet); padding is written as zeros and ignored when read [MS-RPCE §3.1.1.5.3.2.2.6].
    - Byte order follows drep (``byteorder="little"|"big"``, :func:`drep_byteorder`); characters
      must be ASCII and floats IEEE.
    - Embedded pointers' referents follow their top-level parameter in encounter order, depth
      first; full pointers alias by object identity; encoded referent ids are 0x00020000 + 4k,
      any nonzero id is accepted.
    - Decoding is strict and bounded: every failure is :class:`winaio.errors.NdrError` with a
      status (RPC_X_BAD_STUB_DATA 0x6F7 by default; RPC_S_INVALID_BOUND 1734, RPC_S_INVALID_TAG
      1733, RPC_X_NULL_REF_POINTER 1780, RPC_X_ENUM_VALUE_OUT_OF_RANGE 1781) and a stub offset.

Performance: each descriptor is compiled once per byte order into closures; runs of fixed-size
members are one precompiled ``struct.Struct`` call, octet and wchar_t arrays are single slices
and codec calls.
"""

from __future__ import annotations

from ._codec import Codec, drep_byteorder
from ._pipe import PipeReader, PipeWriter
from ._procedure import IN, IN_OUT, OUT, RETURN, Direction, Param, Procedure
from ._types import (
    BOOLEAN,
    BYTE,
    CHAR,
    CONTEXT_HANDLE,
    DOUBLE,
    ENUM16,
    ERROR_STATUS_T,
    FLOAT,
    GUID,
    HYPER,
    LONG,
    SHORT,
    SMALL,
    UHYPER,
    ULONG,
    USHORT,
    USMALL,
    V1_ENUM,
    VOID,
    WCHAR,
    ConformantArray,
    ConformantVaryingArray,
    ContextHandle,
    ContextHandleValue,
    EncapsulatedUnion,
    Enum16,
    Enum32,
    FixedArray,
    Guid,
    Lazy,
    NdrType,
    Pipe,
    Pointer,
    Primitive,
    Range,
    Ref,
    String,
    Struct,
    Union,
    VaryingArray,
    VaryingString,
    Void,
    full,
    is_conformant,
    ref,
    unique,
)

__all__ = [
    # primitives
    "BOOLEAN",
    "BYTE",
    "CHAR",
    "DOUBLE",
    "ERROR_STATUS_T",
    "FLOAT",
    "HYPER",
    "LONG",
    "SHORT",
    "SMALL",
    "UHYPER",
    "ULONG",
    "USHORT",
    "USMALL",
    "WCHAR",
    "Primitive",
    # scalar constructed types
    "CONTEXT_HANDLE",
    "ENUM16",
    "GUID",
    "V1_ENUM",
    "VOID",
    "ContextHandle",
    "ContextHandleValue",
    "Enum16",
    "Enum32",
    "Guid",
    "Range",
    "Void",
    # constructed types
    "ConformantArray",
    "ConformantVaryingArray",
    "EncapsulatedUnion",
    "FixedArray",
    "Lazy",
    "NdrType",
    "Pipe",
    "Pointer",
    "Ref",
    "String",
    "Struct",
    "Union",
    "VaryingArray",
    "VaryingString",
    "full",
    "is_conformant",
    "ref",
    "unique",
    # marshalling
    "Codec",
    "drep_byteorder",
    "PipeReader",
    "PipeWriter",
    # procedures
    "IN",
    "IN_OUT",
    "OUT",
    "RETURN",
    "Direction",
    "Param",
    "Procedure",
]
