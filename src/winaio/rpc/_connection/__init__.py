"""The DCE/RPC connection-oriented wire layer, sans-I/O: one import point for the runtime.

Layout (each module's docstring holds its rules and spec citations):

- ``_pdu``               PDU dataclasses, enums (PType, PfcFlags, ...), SyntaxId, NDR20/NDR64
- ``_pdu_codec``         ``parse_pdu`` / ``build_pdu`` with strict validation
- ``_fragment``          fast builders for request/response fragments and fault PDUs
- ``_connection_events`` the events below and ``NEED_DATA``
- ``_connection_base``   stream framing, InterfaceRegistry, AssociationGroups
- ``_connection_contexts`` presentation-context negotiation, fault status rules
- ``_connection_server`` ServerConnection (per-call records in ``_connection_calls``)
- ``_binding``           ServerConnection's base: bind / alter_context (split from ``_server``)
- ``_connection_client`` ClientConnection

Driving a connection (both roles, h11 style): feed every read with ``receive_data(data)``
(``b""`` at EOF), call ``next_event()`` until it returns ``NEED_DATA``, then write
``data_to_send()``. Methods that make the connection send something (``send_response``,
``send_fault``, ``send_shutdown``, ``bind``, ``request``, ``cancel``, ``orphan`` ...) return
the bytes to write; on the server they include anything queued before them, so writing every
``bytes`` obtained, in the order obtained, is always correct. A ``RemoteProtocolError`` from
``next_event()`` means the peer broke the protocol: write ``data_to_send()`` (it may hold a
last fault), close the transport and call ``close()``. ``LocalProtocolError`` means the
caller misused the API; the connection is unchanged.

Server events: Bound, ContextAltered, BindRefused, RequestReceived, RequestFragment,
RequestRejected, CancelRequested, CallOrphaned, ConnectionClosed. Client events: BindAccepted,
BindRejected, AlterContextAccepted, ResponseReceived, FaultReceived, ShutdownRequested,
ConnectionClosed.

Nothing here imports socket, asyncio, threading, time or the NDR package: stub data is opaque.
"""

from __future__ import annotations

from ._base import AssociationGroups, InterfaceRegistry, SimpleRegistry
from ._client import ClientConnection
from ._contexts import SUPPORTED_BIND_TIME_FEATURES, fault_status, select_interface
from ._events import (
    DISPATCHED,
    NEED_DATA,
    AcceptedContext,
    AlterContextAccepted,
    BindAccepted,
    BindRefused,
    BindRejected,
    Bound,
    CallOrphaned,
    CancelRequested,
    ClientEvent,
    ConnectionClosed,
    ContextAltered,
    FaultReceived,
    InlineHandler,
    NeedData,
    RequestFragment,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    ServerEvent,
    ShutdownRequested,
)
from ._server import ServerConnection

__all__ = [
    "DISPATCHED",
    "InlineHandler",
    "ServerConnection",
    "ClientConnection",
    "AssociationGroups",
    "InterfaceRegistry",
    "SimpleRegistry",
    "select_interface",
    "fault_status",
    "SUPPORTED_BIND_TIME_FEATURES",
    "NEED_DATA",
    "NeedData",
    "AcceptedContext",
    "Bound",
    "ContextAltered",
    "BindRefused",
    "RequestReceived",
    "RequestFragment",
    "RequestRejected",
    "CancelRequested",
    "CallOrphaned",
    "BindAccepted",
    "BindRejected",
    "AlterContextAccepted",
    "ResponseReceived",
    "FaultReceived",
    "ShutdownRequested",
    "ConnectionClosed",
    "ServerEvent",
    "ClientEvent",
]
