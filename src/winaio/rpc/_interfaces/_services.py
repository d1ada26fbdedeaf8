"""The built-in services wired to the server runtime: rpcecho, mgmt and the endpoint mapper.

``Interface`` objects for the three interfaces, the managers that serve them, and
:class:`DemoServices`, what ``python -m winaio serve`` runs:

- an **endpoint mapper** server (epmapper + mgmt) on TCP 135 when it can bind it, else on a
  configured fallback port (0 = dynamic), like Windows' RpcSs owning port 135;
- an **application** server (rpcecho + mgmt + epmapper) on a dynamic TCP port and an ncalrpc
  endpoint, whose bindings are registered in the shared :class:`EndpointMap` whenever they
  change (dynamic endpoints included, rpc #90), so ``rpcclient`` (which always asks the mapper
  on 135 first) and impacket's ``hept_map`` find it.

Both servers share one endpoint map; each answers mgmt about itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ...errors import RpcError, Win32Error
from .._epm import EPM_PROCEDURES, EPMAPPER, EndpointMap
from .._epm._service import EpmService
from .._pdu import NDR20_SYNTAX
from .._server import Interface, Server, async_manager, inline
from .._towers import Tower
from . import _echo
from ._echo_idl import ECHO_PROCEDURES, RPCECHO
from ._mgmt import MgmtService
from ._mgmt_idl import MGMT, MGMT_PROCEDURES

__all__ = [
    "ECHO_INTERFACE",
    "EPM_INTERFACE",
    "MGMT_INTERFACE",
    "DemoServices",
    "echo_managers",
    "publish_endpoints",
    "register_echo",
    "register_epm",
    "register_mgmt",
]

ECHO_INTERFACE: Final = Interface("rpcecho", RPCECHO.uuid, (1, 0), ECHO_PROCEDURES)
MGMT_INTERFACE: Final = Interface("mgmt", MGMT.uuid, (1, 0), MGMT_PROCEDURES)
EPM_INTERFACE: Final = Interface("epmapper", EPMAPPER.uuid, (3, 0), EPM_PROCEDURES)

#: The annotations ept_lookup lists (rpcdump prints them next to each UUID).
ANNOTATIONS: Final = {RPCECHO: "winaio rpcecho", MGMT: "winaio mgmt", EPMAPPER: "winaio epmapper"}


def echo_managers() -> dict[int | str, Callable[..., Any]]:
    """rpcecho's EPV (Samba's answers, ``_echo``), by procedure name.

    Every manager but TestSleep only computes, so they are declared non-blocking
    (``@rpc.inline``): each runs on the loop thread that received the call, as rpcrt4 runs a
    manager on its receiving thread, with no thread hop and no call object; the simple ones
    (AddOne, EchoData, SinkData, SourceData) take the runtime's fast path (docs/design.md §5).
    TestSleep is an MS asynchronous manager completed later from a timer.
    """
    return {
        "AddOne": inline(_echo.add_one),
        "EchoData": inline(_echo.echo_data),
        "SinkData": inline(_echo.sink_data),
        "SourceData": inline(_echo.source_data),
        "TestCall": inline(_echo.test_call),
        "TestCall2": inline(_echo.test_call2),
        "TestSleep": async_manager(_echo.test_sleep),
        "TestEnum": inline(_echo.test_enum),
        "TestSurrounding": inline(_echo.test_surrounding),
        "TestDoublePointer": inline(_echo.test_double_pointer),
    }


def register_echo(server: Server) -> None:
    """Serve Samba's rpcecho test interface (every opnum, Samba's answers) on ``server``."""
    server.register_interface(ECHO_INTERFACE, echo_managers())


def register_mgmt(server: Server, *, allow_remote_stop: bool = False) -> None:
    """Serve the DCE/RPC management interface about ``server`` itself (inq_if_ids, inq_stats,
    is_server_listening, stop_server_listening - refused unless ``allow_remote_stop`` -,
    inq_princ_name), so rpcmap-style tools can enumerate it."""
    service = MgmtService(server, allow_remote_stop=allow_remote_stop)
    server.register_interface(MGMT_INTERFACE, service.managers())


def register_epm(server: Server, endpoints: EndpointMap) -> None:
    """Serve the endpoint mapper (ept_map, ept_lookup, ept_lookup_handle_free) over
    ``endpoints`` on ``server`` (on TCP 135 for rpcclient; anywhere for impacket)."""
    server.register_interface(EPM_INTERFACE, EpmService(endpoints).managers())


def publish_endpoints(server: Server, endpoints: EndpointMap) -> None:
    """Keep ``endpoints`` in step with ``server``: every registered interface (mgmt excepted)
    on every binding, now and whenever bindings or interfaces change (RpcEpRegister)."""
    published: dict[Any, list[Tower]] = {}

    def sync(_: object = None) -> None:
        interfaces = [i for i in server.interfaces if i.syntax != MGMT]
        for interface in list(published):
            if interface not in interfaces:
                endpoints.unregister(interface.syntax, published.pop(interface))
        for interface in interfaces:
            towers = [
                Tower(interface.syntax, NDR20_SYNTAX, b.protseq, b.endpoint, b.address)
                for b in server.bindings
            ]
            old = published.get(interface, [])
            stale = [t for t in old if t not in towers]
            if stale:
                endpoints.unregister(interface.syntax, stale)
            endpoints.register(towers, ANNOTATIONS.get(interface.syntax, interface.name))
            published[interface] = towers

    server.on_endpoints_changed(sync)
    sync()


@dataclass
class DemoServices:
    """The two servers of ``python -m winaio serve`` and their shared endpoint map."""

    mapper: Server
    app: Server
    endpoints: EndpointMap
    mapper_fallback: str | None = None  # why the mapper is not on 135, if it is not

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        *,
        port: int = 0,
        epm_port: int = 135,
        epm_fallback_port: int = 0,
        ncalrpc: str | None = None,
        allow_remote_stop: bool = False,
        server_options: dict[str, Any] | None = None,
    ) -> DemoServices:
        options = server_options or {}
        endpoints = EndpointMap()
        mapper = Server(**options)
        register_epm(mapper, endpoints)
        register_mgmt(mapper)
        fallback = None
        try:
            mapper.use_protseq("ncacn_ip_tcp", str(epm_port), host=host)
        except (RpcError, Win32Error, OSError) as exc:
            # Busy (another mapper, another test run) or not allowed (no root): fall back.
            if epm_port == epm_fallback_port:
                raise
            where = f"port {epm_fallback_port}" if epm_fallback_port else "a dynamic port"
            fallback = f"port {epm_port} unavailable ({exc}); the mapper is on {where}"
            mapper.use_protseq("ncacn_ip_tcp", str(epm_fallback_port), host=host)
        app = Server(**options)
        register_echo(app)
        register_mgmt(app, allow_remote_stop=allow_remote_stop)
        register_epm(app, endpoints)
        app.use_protseq("ncacn_ip_tcp", str(port) if port else None, host=host)
        if ncalrpc is not None:
            app.use_protseq("ncalrpc", ncalrpc)
        publish_endpoints(app, endpoints)
        publish_endpoints(mapper, endpoints)
        mapper.listen(wait=False)
        app.listen(wait=False)
        return cls(mapper, app, endpoints, fallback)

    def stop(self) -> None:
        for server in (self.app, self.mapper):
            if server.is_listening():
                server.stop_listening()
        for server in (self.app, self.mapper):
            server.close()
