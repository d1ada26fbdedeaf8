"""Protocol towers: the endpoint mapper's description of "interface X at address Y" (sans-I/O).

A tower is ``u16 floor_count`` then floors, each ``u16 lhs_length, lhs, u16 rhs_length, rhs``
(all counts little-endian) [C706 App. L], [MS-RPCE §2.2.1.2.x], rpc-spec §B12. The first octet
of a floor's lhs is its protocol identifier. The towers winaio builds and understands:

==========  =====================================  =========================================
floor       ncacn_ip_tcp (5 floors, 75 octets)     ncalrpc (4 floors)
==========  =====================================  =========================================
1           ``0d`` interface UUID (LE) + major     same
            u16 | rhs minor u16
2           ``0d`` transfer syntax, same layout    same
3           ``0b`` (CO RPC) | rhs u16 minor 0      ``0c`` (LRPC) | rhs u16 minor 0
4           ``07`` | port u16 **big-endian**       ``10`` | endpoint name, NUL-terminated
5           ``09`` | IPv4 address, 4 octets        (none)
==========  =====================================  =========================================

Rules:
- Floor 3's rhs is the 2-octet minor version MS emits (so an ncacn_ip_tcp tower is 75 octets,
  rpc #96); any rhs length is accepted on decode.
- Decoding is strict and bounded: a tower must hold exactly its floors (no octets left over, none
  missing); more than :data:`MAX_FLOORS` floors are refused, as an endpoint mapper must
  [MS-RPCE §3.1.3.5.3] (rpc #97). Failures raise :class:`winaio.errors.RpcError` with
  EPT_S_INVALID_ENTRY (1751).
- An ncacn_ip_tcp tower carries IPv4 only (DCE defines no IPv6 floor): an IPv6 or empty address
  is written as 0.0.0.0, which clients read as "the address you reached the mapper on".
- ``TWR_T`` is the NDR type ``twr_t`` that carries tower octets in EPM calls (a conformant struct:
  max_count hoisted, then tower_length, then the octets) [C706 App. O].
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from ..codes import RpcStatus
from ..errors import RpcError
from ._ndr import BYTE, ULONG, ConformantArray, Struct, full
from ._pdu import NDR20_SYNTAX, SyntaxId

__all__ = [
    "MAX_FLOORS",
    "TWR_T",
    "TWR_P_T",
    "Floor",
    "Tower",
    "decode_floors",
    "encode_floors",
    "lrpc_tower",
    "tcp_tower",
]

#: An endpoint mapper refuses towers with more floors [MS-RPCE §3.1.3.5.3].
MAX_FLOORS: Final = 6

# Protocol identifiers of floor lhs octet 0 [C706 App. L], [imp:epm.py], [wine:epm_towers.h].
PROTO_UUID: Final = 0x0D
PROTO_NCACN: Final = 0x0B  # DCE/RPC connection-oriented v5
PROTO_NCALRPC: Final = 0x0C
PROTO_TCP: Final = 0x07
PROTO_IP: Final = 0x09
PROTO_PIPE: Final = 0x10  # ncalrpc endpoint name
PROTO_NAMED_PIPE: Final = 0x0F
PROTO_NETBIOS: Final = 0x11
PROTO_HTTP: Final = 0x1F

_U16: Final = struct.Struct("<H")
_SYNTAX_LHS: Final = struct.Struct("<B16sH")
_INVALID: Final = int(RpcStatus.EPT_S_INVALID_ENTRY)

#: ``twr_t``: {[range(0,2000)] u32 tower_length; [size_is(tower_length)] byte octets[]}.
TWR_T: Final = Struct(
    [
        ("tower_length", ULONG),
        ("tower_octet_string", ConformantArray(BYTE, size_is="tower_length")),
    ],
    name="twr_t",
)
#: ``twr_p_t``: a full pointer to twr_t, the form EPM calls use.
TWR_P_T: Final = full(TWR_T)


def _bad(message: str) -> RpcError:
    return RpcError(_INVALID, message)


@dataclass(frozen=True, slots=True)
class Floor:
    """One tower floor: ``protocol`` is lhs octet 0, ``lhs_data`` the rest of the lhs."""

    protocol: int
    lhs_data: bytes
    rhs: bytes


def encode_floors(floors: tuple[Floor, ...] | list[Floor]) -> bytes:
    """Tower octets for ``floors`` (floor count, then each floor's lhs and rhs)."""
    parts = [_U16.pack(len(floors))]
    for f in floors:
        lhs = bytes((f.protocol,)) + f.lhs_data
        parts += [_U16.pack(len(lhs)), lhs, _U16.pack(len(f.rhs)), f.rhs]
    return b"".join(parts)


def decode_floors(
    data: bytes | bytearray | memoryview, *, max_floors: int = MAX_FLOORS
) -> tuple[Floor, ...]:
    """The floors of a tower; the octets must hold exactly them (RpcError 1751 otherwise)."""
    buf = bytes(data)
    if len(buf) < 2:
        raise _bad("tower shorter than its floor count")
    (count,) = _U16.unpack_from(buf, 0)
    if count > max_floors:
        raise _bad(f"tower has {count} floors (at most {max_floors})")
    pos, floors = 2, []
    for i in range(count):
        if pos + 2 > len(buf):
            raise _bad(f"floor {i + 1} runs past the tower")
        (n,) = _U16.unpack_from(buf, pos)
        lhs = buf[pos + 2 : pos + 2 + n]
        pos += 2 + n
        if n == 0 or len(lhs) != n or pos + 2 > len(buf):
            raise _bad(f"floor {i + 1} lhs runs past the tower")
        (m,) = _U16.unpack_from(buf, pos)
        rhs = buf[pos + 2 : pos + 2 + m]
        pos += 2 + m
        if len(rhs) != m:
            raise _bad(f"floor {i + 1} rhs runs past the tower")
        floors.append(Floor(lhs[0], lhs[1:], rhs))
    if pos != len(buf):
        raise _bad(f"{len(buf) - pos} octets after the last floor")
    return tuple(floors)


def _syntax_floor(s: SyntaxId) -> Floor:
    return Floor(PROTO_UUID, s.uuid.bytes_le + _U16.pack(s.major), _U16.pack(s.minor))


def _syntax_of(f: Floor, which: str) -> SyntaxId:
    if f.protocol != PROTO_UUID or len(f.lhs_data) != 18 or len(f.rhs) != 2:
        raise _bad(f"the {which} floor is not a UUID floor")
    (major,) = _U16.unpack_from(f.lhs_data, 16)
    (minor,) = _U16.unpack(f.rhs)
    return SyntaxId(UUID(bytes_le=f.lhs_data[:16]), major, minor)


def _name(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1")


@dataclass(frozen=True, slots=True)
class Tower:
    """A protocol tower as values: ``interface`` reached with ``transfer_syntax`` over
    ``protseq`` at ``endpoint`` (a TCP port as a decimal string, or an ncalrpc name) on
    ``address`` (an IPv4 address, or "" for ncalrpc)."""

    interface: SyntaxId
    transfer_syntax: SyntaxId
    protseq: str
    endpoint: str
    address: str = ""

    @property
    def string_binding(self) -> str:
        """``ncacn_ip_tcp:127.0.0.1[135]`` / ``ncalrpc:[name]`` [MSL:string-binding]."""
        return f"{self.protseq}:{self.address}[{self.endpoint}]"

    def floors(self) -> tuple[Floor, ...]:
        head = (_syntax_floor(self.interface), _syntax_floor(self.transfer_syntax))
        if self.protseq == "ncacn_ip_tcp":
            try:
                port = int(self.endpoint)
                addr = ipaddress.ip_address(self.address or "0.0.0.0")
            except ValueError as exc:
                raise _bad(f"not a TCP endpoint: {self.endpoint!r} at {self.address!r}") from exc
            if not 0 <= port <= 0xFFFF:
                raise _bad(f"TCP port {port} out of range")
            packed = addr.packed if addr.version == 4 else bytes(4)
            return (
                *head,
                Floor(PROTO_NCACN, b"", b"\x00\x00"),
                Floor(PROTO_TCP, b"", port.to_bytes(2, "big")),
                Floor(PROTO_IP, b"", packed),
            )
        if self.protseq == "ncalrpc":
            name = self.endpoint.encode("latin-1") + b"\x00"
            return (*head, Floor(PROTO_NCALRPC, b"", b"\x00\x00"), Floor(PROTO_PIPE, b"", name))
        raise _bad(f"no tower encoding for protocol sequence {self.protseq!r}")

    def to_bytes(self) -> bytes:
        return encode_floors(self.floors())

    @classmethod
    def from_floors(cls, floors: tuple[Floor, ...]) -> Tower:
        if len(floors) < 4:
            raise _bad(f"a tower needs at least 4 floors, not {len(floors)}")
        interface = _syntax_of(floors[0], "interface")
        transfer = _syntax_of(floors[1], "transfer syntax")
        rpc, rest = floors[2].protocol, floors[3:]
        if rpc == PROTO_NCACN and rest[0].protocol == PROTO_TCP:
            if len(rest[0].rhs) != 2:
                raise _bad("TCP port floor must hold 2 octets")
            address = ""
            if len(rest) > 1 and rest[1].protocol == PROTO_IP:
                if len(rest[1].rhs) != 4:
                    raise _bad("IP floor must hold 4 octets")
                address = str(ipaddress.IPv4Address(rest[1].rhs))
            port = int.from_bytes(rest[0].rhs, "big")
            return cls(interface, transfer, "ncacn_ip_tcp", str(port), address)
        if rpc == PROTO_NCALRPC and rest[0].protocol == PROTO_PIPE:
            return cls(interface, transfer, "ncalrpc", _name(rest[0].rhs))
        if rpc == PROTO_NCACN and rest[0].protocol == PROTO_NAMED_PIPE:
            host = _name(rest[1].rhs) if len(rest) > 1 else ""
            return cls(interface, transfer, "ncacn_np", _name(rest[0].rhs), host)
        raise _bad(f"unknown tower protocols 0x{rpc:02x}/0x{rest[0].protocol:02x}")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Tower:
        """Decode tower octets (RpcError 1751 for anything malformed or > 6 floors)."""
        return cls.from_floors(decode_floors(data))


def tcp_tower(
    interface: SyntaxId, port: int, address: str = "0.0.0.0", *, transfer: SyntaxId = NDR20_SYNTAX
) -> Tower:
    """The ncacn_ip_tcp tower of ``interface`` at ``address:port``."""
    return Tower(interface, transfer, "ncacn_ip_tcp", str(port), address)


def lrpc_tower(interface: SyntaxId, endpoint: str, *, transfer: SyntaxId = NDR20_SYNTAX) -> Tower:
    """The ncalrpc tower of ``interface`` at endpoint name ``endpoint``."""
    return Tower(interface, transfer, "ncalrpc", endpoint)
