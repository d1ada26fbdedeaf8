"""The DCE/RPC remote management interface (mgmt) as NDR descriptors (sans-I/O).

``afa8bd80-7d8a-11c9-bef4-08002b102989`` v1.0 [C706 App. Q (rpc__mgmt_*)], [samba:mgmt.idl],
[imp:mgmt.py]. Every DCE/MS server answers it on every endpoint; rpcmap-style tools call
``inq_if_ids`` to enumerate the interfaces a server offers.

Wire notes (the sources disagree on some declarations; the octets decide):
- ``inq_if_ids``: ``[out] rpc_if_id_vector_p_t *if_id_vector, [out] error_status_t *status``;
  the vector is a conformant struct ``{u32 count; [size_is(count)] rpc_if_id_p_t if_id[]}``
  (max_count hoisted), each element a unique pointer to ``rpc_if_id_t``.
- ``inq_stats``: C706/impacket send ``[in] u32 count`` and read ``count, statistics[] (a
  conformant array), status``; Samba sends one more u32 (ignored: decoders stop after the last
  [in]) and reads ``mgmt_statistics {count; statistics[count]}`` (max_count hoisted before count).
  Both layouts are the same octets when max_count == count, which is what the server answers.
- ``is_server_listening``: ``boolean32`` return after ``[out] status`` (impacket reads only the
  status; the listening flag is the return value).
- ``inq_princ_name``: ``[out, string, size_is(princ_name_size)] char princ_name[]``, then status.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

from .._ndr import (
    CHAR,
    ERROR_STATUS_T,
    GUID,
    IN,
    IN_OUT,
    OUT,
    ULONG,
    USHORT,
    ConformantArray,
    Param,
    Procedure,
    String,
    Struct,
    unique,
)
from .._pdu import SyntaxId

__all__ = [
    "MGMT",
    "MGMT_PROCEDURES",
    "INQ_IF_IDS",
    "INQ_STATS",
    "IS_SERVER_LISTENING",
    "STOP_SERVER_LISTENING",
    "INQ_PRINC_NAME",
    "STATS_COUNT",
]

MGMT: Final = SyntaxId(UUID("afa8bd80-7d8a-11c9-bef4-08002b102989"), 1, 0)

#: rpc_c_stats_calls_in, calls_out, pkts_in, pkts_out [C706 App. Q].
STATS_COUNT: Final = 4

_RPC_IF_ID: Final = Struct(
    [("uuid", GUID), ("vers_major", USHORT), ("vers_minor", USHORT)], name="rpc_if_id_t"
)
_STATUS: Final = Param("status", ERROR_STATUS_T, OUT)

INQ_IF_IDS: Final = Procedure(
    "inq_if_ids",
    0,
    [
        Param(
            "if_id_vector",
            unique(
                Struct(
                    [
                        ("count", ULONG),
                        ("if_id", ConformantArray(unique(_RPC_IF_ID), size_is="count")),
                    ],
                    name="rpc_if_id_vector_t",
                )
            ),
            OUT,
        ),
        _STATUS,
    ],
)
INQ_STATS: Final = Procedure(
    "inq_stats",
    1,
    [
        Param("count", ULONG, IN_OUT),
        Param("statistics", ConformantArray(ULONG, size_is="count"), OUT),
        _STATUS,
    ],
)
IS_SERVER_LISTENING: Final = Procedure("is_server_listening", 2, [_STATUS], returns=ULONG)
STOP_SERVER_LISTENING: Final = Procedure("stop_server_listening", 3, [_STATUS])
INQ_PRINC_NAME: Final = Procedure(
    "inq_princ_name",
    4,
    [
        Param("authn_proto", ULONG, IN),
        Param("princ_name_size", ULONG, IN),
        Param("princ_name", String(CHAR, size_is="princ_name_size"), OUT),
        _STATUS,
    ],
)

MGMT_PROCEDURES: Final = (
    INQ_IF_IDS,
    INQ_STATS,
    IS_SERVER_LISTENING,
    STOP_SERVER_LISTENING,
    INQ_PRINC_NAME,
)
