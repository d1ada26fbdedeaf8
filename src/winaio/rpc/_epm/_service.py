"""The epmapper interface's managers over an :class:`EndpointMap`.

ept_lookup and ept_map keep their cursor in the runtime's context handle (``entry_handle``,
``[in,out]``): the NULL handle arrives as ``None`` and starts an enumeration; the manager
returns the next cursor (an int) to keep the handle open, or ``None`` to send the NULL handle.
Handles live per association and go when it ends, so an abandoned enumeration costs nothing
after its client leaves; one that is not ours is the runtime's fault 0x1C00001A (rpc #87).
Remote registration (ept_insert, ept_delete, ept_mgmt_delete) is not offered: those answer
EPT_S_CANT_PERFORM_OP, as only ept_lookup, ept_map and ept_lookup_handle_free are required of a
Windows endpoint mapper [MS-RPCE §2.2.1.2]. ept_inq_object answers the nil object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from uuid import UUID

from ._idl import EPT_S_CANT_PERFORM_OP, EPT_S_OK
from ._mapper import EndpointMap

__all__ = ["EpmService"]

_NIL: Final = UUID(int=0)


class EpmService:
    """The seven managers, bound to one endpoint map."""

    def __init__(self, endpoints: EndpointMap) -> None:
        self.endpoints = endpoints

    def managers(self) -> dict[int | str, Callable[..., Any]]:
        return {
            "ept_insert": self.ept_insert,
            "ept_delete": self.ept_delete,
            "ept_lookup": self.ept_lookup,
            "ept_map": self.ept_map,
            "ept_lookup_handle_free": self.ept_lookup_handle_free,
            "ept_inq_object": self.ept_inq_object,
            "ept_mgmt_delete": self.ept_mgmt_delete,
        }

    def ept_insert(self, num_ents: int, entries: list[Any], replace: int) -> int:
        return EPT_S_CANT_PERFORM_OP

    def ept_delete(self, num_ents: int, entries: list[Any]) -> int:
        return EPT_S_CANT_PERFORM_OP

    def ept_mgmt_delete(self, object_speced: int, object: UUID | None, tower: Any) -> int:
        return EPT_S_CANT_PERFORM_OP

    def ept_inq_object(self) -> dict[str, Any]:
        return {"ept_object": _NIL, "status": EPT_S_OK}

    def ept_lookup(
        self,
        inquiry_type: int,
        object: UUID | None,
        ifid: dict[str, Any] | None,
        vers_option: int,
        entry_handle: int | None,
        max_ents: int,
    ) -> dict[str, Any]:
        return self.endpoints.ept_lookup(
            inquiry_type, object, ifid, vers_option, entry_handle, max_ents
        )

    def ept_map(
        self,
        obj: UUID | None,
        map_tower: dict[str, Any] | None,
        entry_handle: int | None,
        max_towers: int,
    ) -> dict[str, Any]:
        return self.endpoints.ept_map(obj, map_tower, entry_handle, max_towers)

    def ept_lookup_handle_free(self, entry_handle: int | None) -> dict[str, Any]:
        return {"entry_handle": None, "status": EPT_S_OK}
