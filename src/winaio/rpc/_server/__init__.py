"""The RPC server runtime: interfaces, managers, calls, the listen state machine.

- ``_interface`` Interface, Registration (the EPV), manager kinds, IfFlags, async_manager
- ``_call``      ServerCall (owned by itself until complete/abort), CallEvent
- ``_pipes``     PipeIn/PipeOut: asynchronous pipes streamed as fragments, with flow control
- ``_fast``      the fast path: calls answered inside the wake-up that brought them
- ``_link``      one connection: drives a ServerConnection, checks and dispatches calls
- ``_output``    a connection's writes (one per wake-up) and back-pressure: ``Link``'s base
- ``_contexts``  context handle tables per association group, rundown
- ``_server``    Server: endpoints, registrations, listen/stop/wait, limits, stats

Imports the wire layer and the transport seam, never asyncio (only ``_transport._asyncio``).
"""

from __future__ import annotations

from ._call import CallEvent, ServerCall, current_call
from ._interface import (
    LISTEN_MAX_CALLS_DEFAULT,
    IfFlags,
    Interface,
    Registration,
    async_manager,
    inline,
)
from ._pipes import PipeIn, PipeOut
from ._server import Binding, Server, ServerStats, default_server, reset_default_server

__all__ = [
    "LISTEN_MAX_CALLS_DEFAULT",
    "Binding",
    "CallEvent",
    "IfFlags",
    "Interface",
    "PipeIn",
    "PipeOut",
    "Registration",
    "Server",
    "ServerCall",
    "ServerStats",
    "async_manager",
    "current_call",
    "default_server",
    "inline",
    "reset_default_server",
]
