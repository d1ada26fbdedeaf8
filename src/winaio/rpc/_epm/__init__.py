"""The endpoint mapper: the endpoint map (sans-I/O) and the epmapper interface's descriptors.

``EndpointMap`` is the database the server registers its endpoints in; ``EPM_PROCEDURES`` /
``EPMAPPER`` describe interface e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0 (rpc-spec §B12).
"""

from __future__ import annotations

from ._idl import (
    EPM_PROCEDURES,
    EPMAPPER,
    EPT_LOOKUP,
    EPT_LOOKUP_HANDLE_FREE,
    EPT_MAP,
    EPT_S_CANT_PERFORM_OP,
    EPT_S_NOT_REGISTERED,
    EPT_S_OK,
)
from ._mapper import EndpointEntry, EndpointMap, interface_towers

__all__ = [
    "EPMAPPER",
    "EPM_PROCEDURES",
    "EPT_LOOKUP",
    "EPT_LOOKUP_HANDLE_FREE",
    "EPT_MAP",
    "EPT_S_CANT_PERFORM_OP",
    "EPT_S_NOT_REGISTERED",
    "EPT_S_OK",
    "EndpointEntry",
    "EndpointMap",
    "interface_towers",
]
