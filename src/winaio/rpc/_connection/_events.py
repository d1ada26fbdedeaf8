"""Events returned by ``ServerConnection.next_event()`` and ``ClientConnection.next_event()``.

Purpose: the vocabulary between the sans-I/O connection state machines and the runtime that
drives them (h11's ``_events.py``). Events are frozen, slotted dataclasses (``RequestReceived``,
made once per call, is an immutable NamedTuple for speed); do not subclass them.
``NEED_DATA`` is a sentinel, not an event: it means "feed me more bytes".

Rules:
- An event reports something that has already happened on the wire or in the connection
  state: when ``Bound`` comes out, the bind_ack is already queued in ``data_to_send()``; when
  ``RequestRejected`` comes out, the fault is queued (or held back until earlier calls are
  answered, on connections without PFC_CONC_MPX).
- Server-role events carry the interface *token* that the registry returned for the
  presentation context (type parameter ``IfT``); the connection never looks inside it.
- Stubs are opaque ``bytes``: NDR belongs to the layer above. ``RequestReceived.drep`` is the
  request's data representation, passed along so that the NDR decoder can honour a big-endian
  peer. It says nothing about the reply: drep is per PDU [C706 §12.6.3.1, §14.1], and every PDU
  we send (responses included) is little-endian, drep ``10 00 00 00``, so a reply stub is always
  encoded little-endian whatever the request used (Samba's client, rpc-spec C4, checks exactly
  that with ``[bigendian]`` calls).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, Literal, NamedTuple, TypeAlias, TypeVar
from uuid import UUID

from .._pdu import ContextResult, SyntaxId

__all__ = [
    "NEED_DATA",
    "NeedData",
    "DISPATCHED",
    "Dispatched",
    "InlineHandler",
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

IfT = TypeVar("IfT")


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    DISPATCHED = "DISPATCHED"

    def __repr__(self) -> str:
        return self.value


#: Returned by ``next_event()`` when the buffered bytes do not hold a complete PDU.
NEED_DATA: Final = _Sentinel.NEED_DATA
NeedData: TypeAlias = Literal[_Sentinel.NEED_DATA]
#: Returned by an ``answer_inline`` handler for a request it dispatched but did not answer:
#: the call is pending, answered later with ``send_response``/``send_fault``.
DISPATCHED: Final = _Sentinel.DISPATCHED
Dispatched: TypeAlias = Literal[_Sentinel.DISPATCHED]
#: ``handler(token, opnum, call_id, buf, start, end)`` -> response stub (bytes), fault status
#: (int), DISPATCHED, or None (declined).
InlineHandler: TypeAlias = Callable[
    [IfT, int, int, bytes, int, int], "bytes | int | Dispatched | None"
]


@dataclass(frozen=True, slots=True)
class AcceptedContext(Generic[IfT]):
    """A negotiated presentation context: requests naming ``p_cont_id`` go to ``interface``."""

    p_cont_id: int
    abstract_syntax: SyntaxId
    transfer_syntax: SyntaxId
    interface: IfT


# --- server role ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bound(Generic[IfT]):
    """A bind was accepted and its bind_ack queued.

    ``results`` answers each proposed element in order; ``accepted`` lists the new contexts.
    A bind_ack whose elements are all rejected is still a bind_ack [MS-RPCE §3.3.1.5.6], so
    ``accepted`` may be empty. ``bind_time_features`` is the negotiate_ack bitmask we sent,
    or None if the client did not offer bind time feature negotiation.
    """

    call_id: int
    assoc_group_id: int
    accepted: tuple[AcceptedContext[IfT], ...]
    results: tuple[ContextResult, ...]
    max_xmit_frag: int
    max_recv_frag: int
    conc_mpx: bool
    bind_time_features: int | None


@dataclass(frozen=True, slots=True)
class ContextAltered(Generic[IfT]):
    """An alter_context was answered (alter_context_resp queued); ``accepted`` are new contexts."""

    call_id: int
    accepted: tuple[AcceptedContext[IfT], ...]
    results: tuple[ContextResult, ...]


@dataclass(frozen=True, slots=True)
class BindRefused:
    """A bind was answered with a bind_nak (queued). Samba closes the connection afterwards."""

    call_id: int
    provider_reject_reason: int


class RequestReceived(NamedTuple, Generic[IfT]):
    """A complete (reassembled) request to dispatch; answer it with exactly one of
    ``send_response(call_id, ...)`` / ``send_fault(call_id, ...)``.

    ``cancel_count`` counts cancels that arrived before dispatch (PFC_PENDING_CANCEL on the
    first fragment, or co_cancel PDUs during reassembly).

    ``drep`` is the byte order to *decode* ``stub`` with (``winaio.rpc.drep_byteorder``); the
    reply given to ``send_response`` must be little-endian NDR regardless (see module doc).

    The one event that is a (generic) NamedTuple rather than a frozen dataclass: it is made
    once per call, and a tuple is built in a quarter of the time (measured 0.25 vs 1.0 us).
    """

    call_id: int
    p_cont_id: int
    opnum: int
    stub: bytes
    object: UUID | None
    interface: IfT
    pfc_flags: int
    drep: bytes
    cancel_count: int = 0


@dataclass(frozen=True, slots=True)
class RequestFragment:
    """More stub octets of a request dispatched before its last fragment (a *streamed*
    request, see ``ServerConnection(stream_requests=...)``): one fragment's stub, in order;
    ``last`` on the final one. Its RequestReceived came without PFC_LAST_FRAG in ``pfc_flags``.
    """

    call_id: int
    stub: bytes
    last: bool


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """A request was answered with a fault by the connection itself (never dispatched).

    Raised for: unknown p_cont_id or no bind (nca_s_unk_if, rpc #55, #56), call_id not
    increasing (nca_s_proto_error, rpc #66), reassembled stub over the size limit (5, rpc #70).
    """

    call_id: int
    p_cont_id: int
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """A co_cancel arrived for a dispatched call; ``cancel_count`` so far [C706 §12.6.4.6]."""

    call_id: int
    cancel_count: int


@dataclass(frozen=True, slots=True)
class CallOrphaned:
    """The client abandoned a dispatched call (orphaned PDU): nothing will be sent for it."""

    call_id: int


# --- client role ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindAccepted:
    """bind_ack received. ``accepted`` are the p_cont_ids the server accepted (maybe none:
    the caller must then fail its calls, [MS-RPCE §3.3.1.5.6]). ``max_xmit_frag`` is what the
    server sends, ``max_recv_frag`` what it accepts (our request fragment size)."""

    call_id: int
    assoc_group_id: int
    max_xmit_frag: int
    max_recv_frag: int
    conc_mpx: bool
    results: tuple[ContextResult, ...]
    accepted: tuple[int, ...]
    bind_time_features: int | None
    sec_addr: bytes


@dataclass(frozen=True, slots=True)
class BindRejected:
    """bind_nak received; ``versions`` are the protocol versions the server supports."""

    call_id: int
    provider_reject_reason: int
    versions: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class AlterContextAccepted:
    """alter_context_resp received; ``accepted`` are the newly usable p_cont_ids."""

    call_id: int
    results: tuple[ContextResult, ...]
    accepted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """All response fragments of a call arrived; ``stub`` is the reassembled stub data."""

    call_id: int
    stub: bytes
    cancel_count: int = 0


@dataclass(frozen=True, slots=True)
class FaultReceived:
    """A fault PDU ended the call. ``nca_status`` is the wire value, ``status`` the RPC_STATUS
    the caller sees (``codes.nca_to_rpc_status``; RPC_S_PROTOCOL_ERROR for statuses a server
    must never send, [MS-RPCE §3.3.2.5.1])."""

    call_id: int
    status: int
    nca_status: int
    did_not_execute: bool


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    """The server sent a shutdown PDU: close the connection once idle [MS-RPCE §3.3.3.4.2]."""


# --- both roles -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the stream (``receive_data(b"")``) or ``close()`` was called.

    ``pending_call_ids``: calls that will never be answered (client) or whose answers will not
    be delivered (server). Server role: ``association_ended`` is True when this was the last
    connection of its association group, i.e. the moment to run down its context handles.
    """

    pending_call_ids: tuple[int, ...] = ()
    assoc_group_id: int = 0
    association_ended: bool = False


ServerEvent: TypeAlias = (
    Bound[IfT]
    | ContextAltered[IfT]
    | BindRefused
    | RequestReceived[IfT]
    | RequestFragment
    | RequestRejected
    | CancelRequested
    | CallOrphaned
    | ConnectionClosed
)
ClientEvent: TypeAlias = (
    BindAccepted
    | BindRejected
    | AlterContextAccepted
    | ResponseReceived
    | FaultReceived
    | ShutdownRequested
    | ConnectionClosed
)
