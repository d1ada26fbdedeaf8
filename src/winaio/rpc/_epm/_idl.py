"""The endpoint mapper interface (epmapper) as NDR descriptors (sans-I/O).

``e1af8308-5d1f-11c9-91a4-08002b14a0fa`` v3.0, ``pointer_default(ptr)``, on TCP 135
[C706 App. O], [MS-RPCE §2.2.1.2], rpc-spec §B12. Opnums 0 ept_insert, 1 ept_delete,
2 ept_lookup, 3 ept_map, 4 ept_lookup_handle_free, 5 ept_inq_object, 6 ept_mgmt_delete; MS only
requires 2, 3 and 4, the others answer EPT_S_CANT_PERFORM_OP (opnum 7, MS's ept_map_auth, is
out of range).

Rules:
- ``[range(0,500)]`` on ``max_ents``/``max_towers`` [MS-RPCE §2.2.1.2.4-5]: a larger count is
  undecodable stub data (fault 0x6F7), which also bounds what a reply can hold.
- ``error_status_t status`` is the last [out] (C706's ``[out] error_status_t *status``; Samba
  declares it the return value: the octets are the same).
- ``ept_entry_t.annotation`` is ``[string] char[64]``: a varying string, offset 0, actual count
  including the NUL (rpcdump strips the last octet) [samba:epmapper.idl].
- ``ept_inq_object`` follows C706 (``[out] uuid_t *ept_object``), not Samba's ``[in]``.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

from .._ndr import (
    CHAR,
    CONTEXT_HANDLE,
    ERROR_STATUS_T,
    GUID,
    IN,
    IN_OUT,
    OUT,
    ULONG,
    USHORT,
    ConformantArray,
    ConformantVaryingArray,
    Param,
    Procedure,
    Range,
    Struct,
    VaryingString,
    full,
)
from .._pdu import SyntaxId
from .._towers import TWR_P_T

__all__ = [
    "EPMAPPER",
    "EPM_PROCEDURES",
    "EPT_INSERT",
    "EPT_DELETE",
    "EPT_LOOKUP",
    "EPT_MAP",
    "EPT_LOOKUP_HANDLE_FREE",
    "EPT_INQ_OBJECT",
    "EPT_MGMT_DELETE",
    "EPT_ENTRY_T",
    "RPC_IF_ID",
    "MAX_ENTRIES",
    "ANNOTATION_MAX",
    "EPT_S_OK",
    "EPT_S_NOT_REGISTERED",
    "EPT_S_CANT_PERFORM_OP",
]

EPMAPPER: Final = SyntaxId(UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa"), 3, 0)

#: What ept_lookup/ept_map answer: 0, DCE's ept_s_not_registered ("no (more) entries", what
#: every client tests for [captured], [samba:epmapper.idl]) and Win32 EPT_S_CANT_PERFORM_OP.
EPT_S_OK: Final = 0
EPT_S_NOT_REGISTERED: Final = 0x16C9A0D6
EPT_S_CANT_PERFORM_OP: Final = 1752

#: ``[range(0,500)]`` of max_ents / max_towers [MS-RPCE §2.2.1.2.4].
MAX_ENTRIES: Final = 500
#: ``[string] char annotation[64]``: at most 63 characters and the NUL.
ANNOTATION_MAX: Final = 64

_COUNT: Final = Range(ULONG, 0, MAX_ENTRIES)

RPC_IF_ID: Final = Struct(
    [("uuid", GUID), ("vers_major", USHORT), ("vers_minor", USHORT)], name="rpc_if_id_t"
)
EPT_ENTRY_T: Final = Struct(
    [
        ("object", GUID),
        ("tower", TWR_P_T),
        ("annotation", VaryingString(CHAR, ANNOTATION_MAX)),
    ],
    name="ept_entry_t",
)
_STATUS: Final = Param("status", ERROR_STATUS_T, OUT)

EPT_INSERT: Final = Procedure(
    "ept_insert",
    0,
    [
        Param("num_ents", ULONG, IN),
        Param("entries", ConformantArray(EPT_ENTRY_T, size_is="num_ents"), IN),
        Param("replace", ULONG, IN),
        _STATUS,
    ],
)
EPT_DELETE: Final = Procedure(
    "ept_delete",
    1,
    [
        Param("num_ents", ULONG, IN),
        Param("entries", ConformantArray(EPT_ENTRY_T, size_is="num_ents"), IN),
        _STATUS,
    ],
)
EPT_LOOKUP: Final = Procedure(
    "ept_lookup",
    2,
    [
        Param("inquiry_type", ULONG, IN),
        Param("object", full(GUID), IN),
        Param("ifid", full(RPC_IF_ID), IN),
        Param("vers_option", ULONG, IN),
        Param("entry_handle", CONTEXT_HANDLE, IN_OUT),
        Param("max_ents", _COUNT, IN),
        Param("num_ents", ULONG, OUT),
        Param(
            "entries",
            ConformantVaryingArray(EPT_ENTRY_T, size_is="max_ents", length_is="num_ents"),
            OUT,
        ),
        _STATUS,
    ],
)
EPT_MAP: Final = Procedure(
    "ept_map",
    3,
    [
        Param("obj", full(GUID), IN),
        Param("map_tower", TWR_P_T, IN),
        Param("entry_handle", CONTEXT_HANDLE, IN_OUT),
        Param("max_towers", _COUNT, IN),
        Param("num_towers", ULONG, OUT),
        Param(
            "towers",
            ConformantVaryingArray(TWR_P_T, size_is="max_towers", length_is="num_towers"),
            OUT,
        ),
        _STATUS,
    ],
)
EPT_LOOKUP_HANDLE_FREE: Final = Procedure(
    "ept_lookup_handle_free", 4, [Param("entry_handle", CONTEXT_HANDLE, IN_OUT), _STATUS]
)
EPT_INQ_OBJECT: Final = Procedure("ept_inq_object", 5, [Param("ept_object", GUID, OUT), _STATUS])
EPT_MGMT_DELETE: Final = Procedure(
    "ept_mgmt_delete",
    6,
    [
        Param("object_speced", ULONG, IN),
        Param("object", full(GUID), IN),
        Param("tower", TWR_P_T, IN),
        _STATUS,
    ],
)

EPM_PROCEDURES: Final = (
    EPT_INSERT,
    EPT_DELETE,
    EPT_LOOKUP,
    EPT_MAP,
    EPT_LOOKUP_HANDLE_FREE,
    EPT_INQ_OBJECT,
    EPT_MGMT_DELETE,
)
