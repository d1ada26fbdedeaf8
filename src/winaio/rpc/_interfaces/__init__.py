"""Built-in interfaces served by ``python -m winaio serve``: Samba's rpcecho and the DCE/RPC
remote management interface (the endpoint mapper lives in ``rpc._epm``)."""

from __future__ import annotations

from ._echo_idl import ECHO_PROCEDURES, RPCECHO

__all__ = ["ECHO_PROCEDURES", "RPCECHO"]
