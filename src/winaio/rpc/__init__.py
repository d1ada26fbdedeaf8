"""DCE/RPC for winaio: NDR 2.0, connection-oriented PDUs and the Microsoft async RPC model.

The wire layer (``_ndr``, ``_pdu``, ``_connection``) is sans-I/O: bytes in, events out. It imports
only the standard library and ``winaio.codes`` / ``winaio.errors``.
"""

from __future__ import annotations

__all__: list[str] = []
