"""The management interface's managers, answering from a server's own state.

rpc__mgmt_* [C706 App. Q], what RpcMgmtInqIfIds / RpcMgmtInqStats / RpcMgmtIsServerListening /
RpcMgmtStopServerListening / RpcMgmtInqServerPrincName return remotely [MSL]:
- ``inq_if_ids``: the interfaces registered on the server, mgmt itself excluded (rpcrt4
  answers mgmt inside the runtime; it is not an application interface).
- ``inq_stats``: calls in, calls out, packets in, packets out, at most ``count`` of them.
- ``is_server_listening``: status 0 and the boolean32 (the runtime's listen state).
- ``stop_server_listening``: refused with RPC_S_ACCESS_DENIED unless the service was created
  with ``allow_remote_stop`` - without an authorization function rpcrt4 allows every remote
  management call except this one [MSL:RpcMgmtSetAuthorizationFn].
- ``inq_princ_name``: no security provider is registered (auth level NONE only), so the name is
  empty and the status RPC_S_UNKNOWN_AUTHN_SERVICE; a buffer of 0 characters cannot hold the
  NUL (RPC_S_INVALID_ARG).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ...codes import RpcStatus
from ...errors import RpcError
from .._pdu import SyntaxId
from ._mgmt_idl import MGMT, STATS_COUNT

__all__ = ["MgmtService", "ServerState"]


class ServerState(Protocol):
    """What the managers read from the server (rpc.Server has all of it)."""

    @property
    def interfaces(self) -> tuple[Any, ...]: ...

    @property
    def stats(self) -> Any: ...

    def is_listening(self) -> bool: ...

    def stop_listening(self) -> None: ...


class MgmtService:
    """The five managers, bound to one server."""

    def __init__(self, server: ServerState, *, allow_remote_stop: bool = False) -> None:
        self._server = server
        self._allow_stop = allow_remote_stop

    def managers(self) -> dict[int | str, Callable[..., Any]]:
        return {
            "inq_if_ids": self.inq_if_ids,
            "inq_stats": self.inq_stats,
            "is_server_listening": self.is_server_listening,
            "stop_server_listening": self.stop_server_listening,
            "inq_princ_name": self.inq_princ_name,
        }

    def inq_if_ids(self) -> dict[str, Any]:
        ids = []
        for interface in self._server.interfaces:
            syntax: SyntaxId = interface.syntax
            if syntax != MGMT:
                ids.append(
                    {"uuid": syntax.uuid, "vers_major": syntax.major, "vers_minor": syntax.minor}
                )
        return {"if_id_vector": {"count": len(ids), "if_id": ids}, "status": 0}

    def inq_stats(self, count: int) -> dict[str, Any]:
        s = self._server.stats
        values = [s.calls_in, s.calls_out, s.pkts_in, s.pkts_out][: min(count, STATS_COUNT)]
        return {"count": len(values), "statistics": [v & 0xFFFFFFFF for v in values], "status": 0}

    def is_server_listening(self) -> dict[str, Any]:
        return {"status": 0, "return": int(self._server.is_listening())}

    def stop_server_listening(self) -> int:
        if not self._allow_stop:
            return int(RpcStatus.RPC_S_ACCESS_DENIED)
        self._server.stop_listening()
        return 0

    def inq_princ_name(self, authn_proto: int, princ_name_size: int) -> dict[str, Any]:
        if princ_name_size < 1:
            raise RpcError(RpcStatus.RPC_S_INVALID_ARG, "princ_name_size 0 cannot hold the NUL")
        return {"princ_name": "", "status": int(RpcStatus.RPC_S_UNKNOWN_AUTHN_SERVICE)}
