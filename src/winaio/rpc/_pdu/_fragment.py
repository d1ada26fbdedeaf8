"""Fast builders for the PDUs a connection sends per call: request/response fragments, faults.

Purpose: the connection state machines send one of these per call, so they skip the generic
dataclass path of :mod:`._pdu_codec` and pack the fixed header with one precompiled struct.
Tests check that their output parses back to the equivalent dataclasses.

Rules and invariants ([C706 §12.6.3.1], [MS-RPCE §2.2.2.6, §3.3.1.5.8], spec B5):
- Everything we send is little-endian with drep ``10 00 00 00``, rpc_vers 5, the given
  rpc_vers_minor (0, or the peer's minor when echoing it), auth_length 0, and
  frag_length == the bytes written (rpc #43).
- A stub is cut into fragments no longer than ``max_frag`` bytes on the wire. The first
  fragment has PFC_FIRST_FRAG, the last PFC_LAST_FRAG, a single fragment both; every fragment
  carries the same call_id and p_cont_id (and opnum), and ``alloc_hint`` is the number of stub
  bytes from this fragment to the end of the call, as MS-RPCE §2.2.2.6 recommends (so it equals
  the stub length on the first/only fragment, rpc #62).
- Multi-fragment calls use stub chunks that are a multiple of 16 bytes, like Windows: NDR does
  not need it (alignment is relative to the reassembled stub) but it keeps every non-last
  fragment free of auth padding should a security provider be added.
- All fragments of a call are returned as one ``bytes`` object, so a caller that writes it at
  once can never interleave fragments of different calls (rpc #74).
"""

from __future__ import annotations

import struct
from typing import Final
from uuid import UUID

from ...errors import LocalProtocolError
from ._types import FAULT_LENGTH, PfcFlags, PType

__all__ = ["fault_pdu", "request_fragments", "response_fragments"]

_FIRST: Final = int(PfcFlags.PFC_FIRST_FRAG)
_LAST: Final = int(PfcFlags.PFC_LAST_FRAG)
_DID_NOT_EXECUTE: Final = int(PfcFlags.PFC_DID_NOT_EXECUTE)
_OBJECT_UUID: Final = int(PfcFlags.PFC_OBJECT_UUID)
_DREP_LE: Final = 0x00000010  # packed_drep 10 00 00 00 read as a little-endian u32
_REQUEST: Final = int(PType.REQUEST)
_RESPONSE: Final = int(PType.RESPONSE)
_FAULT: Final = int(PType.FAULT)

# vers minor ptype flags drep frag_length auth_length call_id | body fields
_REQ_HDR = struct.Struct("<BBBBIHHIIHH")  # + alloc_hint p_cont_id opnum = 24
_RESP_HDR = struct.Struct("<BBBBIHHIIHBx")  # + alloc_hint p_cont_id cancel_count rsv = 24
_FAULT_PDU = struct.Struct("<BBBBIHHIIHBxI4x")  # + ... status reserved = 32


def _chunk(max_frag: int, header: int) -> int:
    room = max_frag - header
    if room < 16 or max_frag > 0xFFFF:
        raise LocalProtocolError(f"max_frag {max_frag} cannot carry a {header}-byte header")
    return room - room % 16


def response_fragments(
    call_id: int,
    p_cont_id: int,
    stub: bytes,
    max_frag: int,
    *,
    cancel_count: int = 0,
    rpc_vers_minor: int = 0,
    first: bool = True,
    last: bool = True,
) -> bytes:
    """All response PDUs (ptype 2) of one call, fragmented to ``max_frag`` (rpc #62, #71).

    A streamed response (asynchronous [out] pipes, rpc-spec §A9) is sent in parts: ``first``
    False continues a response whose first fragment was sent (no PFC_FIRST_FRAG), ``last``
    False leaves it open (no PFC_LAST_FRAG, alloc_hint 0: the rest of the stub is not known
    yet, and 0 is "no hint" [C706 §12.6.3.1]). A closing part may be empty: one fragment with
    no stub octets carries PFC_LAST_FRAG.
    """
    n = len(stub)
    pack = _RESP_HDR.pack
    if n + 24 <= max_frag:
        flags = (_FIRST if first else 0) | (_LAST if last else 0)
        head = pack(
            5, rpc_vers_minor, _RESPONSE, flags, _DREP_LE, n + 24, 0, call_id, n if last else 0,
            p_cont_id, cancel_count,
        )  # fmt: skip
        return head + stub
    chunk = _chunk(max_frag, 24)
    view = memoryview(stub)
    parts: list[bytes | memoryview] = []
    pos = 0
    while pos < n:
        end = min(pos + chunk, n)
        flags = (_FIRST if pos == 0 and first else 0) | (_LAST if end == n and last else 0)
        head = pack(
            5, rpc_vers_minor, _RESPONSE, flags, _DREP_LE, end - pos + 24, 0, call_id,
            n - pos if last else 0, p_cont_id, cancel_count,
        )  # fmt: skip
        parts.append(head)
        parts.append(view[pos:end])
        pos = end
    return b"".join(parts)


def request_fragments(
    call_id: int,
    p_cont_id: int,
    opnum: int,
    stub: bytes,
    max_frag: int,
    *,
    object: UUID | None = None,
    rpc_vers_minor: int = 0,
) -> bytes:
    """All request PDUs (ptype 0) of one call; 40-byte headers with ``object`` (rpc #63)."""
    n = len(stub)
    header = 24 if object is None else 40
    extra = b"" if object is None else object.bytes_le
    obj_flag = 0 if object is None else _OBJECT_UUID
    pack = _REQ_HDR.pack
    if n + header <= max_frag:
        head = pack(
            5, rpc_vers_minor, _REQUEST, _FIRST | _LAST | obj_flag, _DREP_LE, n + header, 0,
            call_id, n, p_cont_id, opnum,
        )  # fmt: skip
        return head + extra + stub
    chunk = _chunk(max_frag, header)
    view = memoryview(stub)
    parts: list[bytes | memoryview] = []
    pos = 0
    while pos < n:
        end = min(pos + chunk, n)
        flags = (_FIRST if pos == 0 else 0) | (_LAST if end == n else 0) | obj_flag
        head = pack(
            5, rpc_vers_minor, _REQUEST, flags, _DREP_LE, end - pos + header, 0, call_id,
            n - pos, p_cont_id, opnum,
        )  # fmt: skip
        parts.append(head)
        parts.append(extra)
        parts.append(view[pos:end])
        pos = end
    return b"".join(parts)


def fault_pdu(
    call_id: int,
    p_cont_id: int,
    status: int,
    *,
    cancel_count: int = 0,
    did_not_execute: bool = False,
    rpc_vers_minor: int = 0,
) -> bytes:
    """A 32-byte fault PDU: alloc_hint 0, no stub, status at offset 24 (rpc #60).

    The caller is responsible for the status value (see ServerConnection.send_fault for the
    mapping and the statuses that must never be sent).
    """
    flags = _FIRST | _LAST | (_DID_NOT_EXECUTE if did_not_execute else 0)
    return _FAULT_PDU.pack(
        5, rpc_vers_minor, _FAULT, flags, _DREP_LE, FAULT_LENGTH, 0, call_id, 0, p_cont_id,
        cancel_count, status,
    )  # fmt: skip
