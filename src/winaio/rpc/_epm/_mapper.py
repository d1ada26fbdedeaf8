"""The endpoint map: which interface is reachable at which tower, and the EPM operations on it.

Sans-I/O: ``EndpointMap`` holds registrations and answers ept_map / ept_lookup /
ept_lookup_handle_free with plain values (the dicts of [out] parameters the interface's
managers return). The server registers its endpoints here (dynamic TCP ports included, once
bound); the EPM interface (``_epm._manager``) exposes it on the wire.

Rules (rpc-spec §B12, with the sources cited there):
- ept_map matches an entry when the tower's interface UUID and major version are equal and the
  requested minor is at most the registered one, the transfer syntax is the same and the
  protocol sequence (floors 3-4) is the same. The request's network-address floor is ignored
  (rpc #97): the reply carries the registered address, or the address the client reached us on
  when the entry was registered on a wildcard address. A NULL or nil object matches every
  registration (Samba sends NULL, impacket &nil: rpc #93); another object matches
  registrations of that object or of the nil object. No match -> num_towers 0 and
  ept_s_not_registered 0x16C9A0D6 (rpc #92). A tower that does not decode (more than 6 floors,
  octets left over, unknown protocols) matches nothing.
- ept_lookup: inquiry_type 0 all, 1 by interface, 2 by object, 3 both; vers_option 1 all,
  2 compatible, 3 exact, 4 major only, 5 up to (0, which rpcclient sends, is "all").
- ept_map returns a non-nil handle only when more towers remain than max_towers (Samba and
  impacket ask once and never free it).
- The ept_lookup cursor [captured]: the nil handle starts an enumeration; a batch of max_ents
  entries that fills up returns a non-nil handle, a shorter one the nil handle; a call that yields
  nothing answers ept_s_not_registered and the nil handle. So impacket (stops at the nil
  handle) and rpcclient epmlookup (stops at ept_s_not_registered) each list every entry once
  (rpc #95). Here a cursor is the index of the next entry (``None`` = the nil handle); the
  EPM interface keeps it in a context handle of the runtime (per association, dropped when
  the association ends), so an unknown handle is the runtime's fault
  nca_s_fault_context_mismatch (rpc #87). ept_lookup_handle_free closes it.
- Registrations are immutable tuples replaced whole under a lock: readers never lock.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from ...errors import RpcError
from .._pdu import NDR20_SYNTAX, SyntaxId
from .._towers import Tower
from ._idl import ANNOTATION_MAX, EPT_S_NOT_REGISTERED, EPT_S_OK, MAX_ENTRIES

__all__ = [
    "EndpointEntry",
    "EndpointMap",
    "RPC_C_EP_ALL_ELTS",
    "RPC_C_EP_MATCH_BY_IF",
    "RPC_C_EP_MATCH_BY_OBJ",
    "RPC_C_EP_MATCH_BY_BOTH",
    "RPC_C_VERS_ALL",
    "RPC_C_VERS_COMPATIBLE",
    "RPC_C_VERS_EXACT",
    "RPC_C_VERS_MAJOR_ONLY",
    "RPC_C_VERS_UPTO",
]

NIL: Final = UUID(int=0)

# inquiry_type and vers_option of ept_lookup [MS-RPCE §2.2.1.2.4], [C706 App. O].
RPC_C_EP_ALL_ELTS: Final = 0
RPC_C_EP_MATCH_BY_IF: Final = 1
RPC_C_EP_MATCH_BY_OBJ: Final = 2
RPC_C_EP_MATCH_BY_BOTH: Final = 3
RPC_C_VERS_ALL: Final = 1
RPC_C_VERS_COMPATIBLE: Final = 2
RPC_C_VERS_EXACT: Final = 3
RPC_C_VERS_MAJOR_ONLY: Final = 4
RPC_C_VERS_UPTO: Final = 5

_WILDCARDS: Final = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class EndpointEntry:
    """One registration: ``interface`` reached through ``tower``, for ``object``."""

    tower: Tower
    annotation: str = ""
    object: UUID = NIL

    @property
    def interface(self) -> SyntaxId:
        return self.tower.interface

    def tower_for(self, local_address: str | None) -> Tower:
        """The tower to hand out: a wildcard address becomes the one the client used."""
        t = self.tower
        if t.protseq != "ncacn_ip_tcp" or t.address not in _WILDCARDS or not local_address:
            return t
        try:
            if ipaddress.ip_address(local_address).version != 4:
                return t
        except ValueError:
            return t
        return Tower(t.interface, t.transfer_syntax, t.protseq, t.endpoint, local_address)


def _tower_value(tower: Tower) -> dict[str, Any]:
    octets = tower.to_bytes()
    return {"tower_length": len(octets), "tower_octet_string": octets}


def _version_matches(option: int, wanted: SyntaxId, have: SyntaxId) -> bool:
    if option in (0, RPC_C_VERS_ALL):
        return True
    if option == RPC_C_VERS_COMPATIBLE:
        return have.major == wanted.major and have.minor >= wanted.minor
    if option == RPC_C_VERS_EXACT:
        return (have.major, have.minor) == (wanted.major, wanted.minor)
    if option == RPC_C_VERS_MAJOR_ONLY:
        return have.major == wanted.major
    if option == RPC_C_VERS_UPTO:
        return (have.major, have.minor) <= (wanted.major, wanted.minor)
    return False


class EndpointMap:
    """The endpoint database of one server (thread-safe; lookups never lock)."""

    def __init__(self) -> None:
        self._entries: tuple[EndpointEntry, ...] = ()
        self._lock = threading.Lock()

    # -- registrations ------------------------------------------------------------------------

    @property
    def entries(self) -> tuple[EndpointEntry, ...]:
        return self._entries

    def register(
        self,
        towers: Iterable[Tower],
        annotation: str = "",
        objects: Sequence[UUID] = (),
    ) -> None:
        """Add (or replace) the entries for ``towers`` x ``objects`` (nil object if none),
        like RpcEpRegister with replace semantics for the same interface, tower and object."""
        if len(annotation.encode("latin-1")) >= ANNOTATION_MAX:
            raise ValueError(f"annotation longer than {ANNOTATION_MAX - 1} characters")
        new = [
            EndpointEntry(tower, annotation, obj) for tower in towers for obj in (objects or (NIL,))
        ]
        keys = {(e.tower, e.object) for e in new}
        with self._lock:
            kept = [e for e in self._entries if (e.tower, e.object) not in keys]
            self._entries = (*kept, *new)

    def unregister(self, interface: SyntaxId, towers: Iterable[Tower] | None = None) -> None:
        """Remove ``interface``'s entries (only those on ``towers`` if given): RpcEpUnregister."""
        only = set(towers) if towers is not None else None
        with self._lock:
            self._entries = tuple(
                e
                for e in self._entries
                if e.interface != interface or (only is not None and e.tower not in only)
            )

    @staticmethod
    def _batch(
        matches: list[Any], cursor: int | None, limit: int, *, exact: bool = False
    ) -> tuple[list[Any], int | None, int]:
        """Up to ``limit`` matches from ``cursor``; the next cursor is set when the batch is full
        (ept_lookup: rpcclient restarts at a nil handle, so only an empty batch may end it) or,
        with ``exact``, only when matches remain (ept_map: one-shot clients leave no handle)."""
        start = cursor or 0
        batch = matches[start : start + limit] if limit else []
        if not batch:
            return [], None, EPT_S_NOT_REGISTERED
        end = start + len(batch)
        more = end < len(matches) if exact else len(batch) == limit
        return batch, end if more else None, EPT_S_OK

    # -- operations ---------------------------------------------------------------------------

    def ept_map(
        self,
        obj: UUID | None,
        map_tower: dict[str, Any] | None,
        cursor: int | None,
        max_towers: int,
        *,
        local_address: str | None = None,
    ) -> dict[str, Any]:
        """ept_map: the towers registered for the interface and protocols of ``map_tower``."""
        limit = min(max_towers, MAX_ENTRIES)
        wanted = self._decode(map_tower)
        matches: list[Any] = []
        if wanted is not None:
            for e in self._entries:
                t = e.tower
                if (
                    t.interface.uuid == wanted.interface.uuid
                    and t.interface.major == wanted.interface.major
                    and wanted.interface.minor <= t.interface.minor
                    and t.transfer_syntax == wanted.transfer_syntax
                    and t.protseq == wanted.protseq
                    and (obj is None or obj == NIL or e.object in (obj, NIL))
                ):
                    matches.append(_tower_value(e.tower_for(local_address)))
        batch, cursor, status = self._batch(matches, cursor, limit, exact=True)
        return {"entry_handle": cursor, "num_towers": len(batch), "towers": batch, "status": status}

    @staticmethod
    def _decode(map_tower: dict[str, Any] | None) -> Tower | None:
        if map_tower is None:
            return None
        try:
            return Tower.from_bytes(map_tower["tower_octet_string"])
        except RpcError:
            return None  # malformed or > 6 floors: matches nothing (rpc #97)

    def ept_lookup(
        self,
        inquiry_type: int,
        object: UUID | None,
        ifid: dict[str, Any] | None,
        vers_option: int,
        cursor: int | None,
        max_ents: int,
        *,
        local_address: str | None = None,
    ) -> dict[str, Any]:
        """ept_lookup: the entries selected by ``inquiry_type``, a batch at a time."""
        by_if = inquiry_type in (RPC_C_EP_MATCH_BY_IF, RPC_C_EP_MATCH_BY_BOTH)
        by_obj = inquiry_type in (RPC_C_EP_MATCH_BY_OBJ, RPC_C_EP_MATCH_BY_BOTH)
        wanted = None
        if by_if and ifid is not None:
            wanted = SyntaxId(ifid["uuid"], ifid["vers_major"], ifid["vers_minor"])
        matches: list[Any] = []
        if inquiry_type <= RPC_C_EP_MATCH_BY_BOTH:
            for e in self._entries:
                if wanted is not None and (
                    e.interface.uuid != wanted.uuid
                    or not _version_matches(vers_option, wanted, e.interface)
                ):
                    continue
                if by_obj and object is not None and e.object != object:
                    continue
                matches.append(
                    {
                        "object": e.object,
                        "tower": _tower_value(e.tower_for(local_address)),
                        "annotation": e.annotation,
                    }
                )
        batch, cursor, status = self._batch(matches, cursor, min(max_ents, MAX_ENTRIES))
        return {"entry_handle": cursor, "num_ents": len(batch), "entries": batch, "status": status}


def interface_towers(interface: SyntaxId, endpoints: Iterable[tuple[str, str, str]]) -> list[Tower]:
    """Towers of ``interface`` for ``(protseq, address, endpoint)`` triples (NDR 2.0)."""
    return [Tower(interface, NDR20_SYNTAX, p, e, a) for p, a, e in endpoints]
