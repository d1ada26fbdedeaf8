"""Pieces shared by the server and client connection state machines.

Contents: the stream framer both roles inherit (receive buffer, ``data_to_send`` queue, error
latch), the ``InterfaceRegistry`` protocol a server connection consults during presentation
context negotiation, a dict-backed implementation of it, and ``AssociationGroups``, the allocator
of assoc_group_ids that all server connections of one server share.

Rules and invariants:
- Framing [spec B1]: PDUs follow each other on the stream without any extra framing; a PDU is
  complete when ``frag_length`` bytes (from its common header) are buffered. The header is
  checked as soon as its 16 bytes arrive, so a stream of garbage is rejected at once instead of
  waiting for a bogus frag_length worth of bytes.
- Bytes are never re-scanned: the receive buffer is an immutable ``bytes`` plus a read offset;
  new data is appended to the unread tail only. Every loop iteration consumes at least one
  whole PDU, so feeding any byte string terminates in time linear in its length.
- After a RemoteProtocolError the connection is broken: ``next_event()`` raises again. The
  runtime should write ``data_to_send()`` (it may hold a last fault) and close the transport.
- Not thread-safe, like h11: one owner drives a connection. ``AssociationGroups`` is shared by
  connections and must be guarded by the runtime if those run on several threads.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final, Generic, Protocol, TypeVar
from uuid import UUID

from ...errors import LocalProtocolError, RemoteProtocolError
from .._pdu import Header, SyntaxId, decode_header
from ._events import NEED_DATA, ConnectionClosed, NeedData

__all__ = [
    "AssociationGroups",
    "InterfaceRegistry",
    "SimpleRegistry",
]

IfT = TypeVar("IfT")
IfT_co = TypeVar("IfT_co", covariant=True)


class InterfaceRegistry(Protocol[IfT_co]):
    """What a ServerConnection needs to know about registered interfaces.

    ``lookup(if_uuid)`` returns the registered versions of that interface UUID, mapping
    ``(major, minor)`` to an opaque token (typically the runtime's interface object) that the
    connection hands back in ``AcceptedContext`` / ``RequestReceived``; an empty mapping if
    the UUID is not registered. The connection applies the version rule (:func:`select_interface`).
    """

    def lookup(self, if_uuid: UUID) -> Mapping[tuple[int, int], IfT_co]: ...


class SimpleRegistry(Generic[IfT]):
    """A dict-backed InterfaceRegistry: ``register(SyntaxId, token)`` / ``unregister(SyntaxId)``."""

    def __init__(self) -> None:
        self._by_uuid: dict[UUID, dict[tuple[int, int], IfT]] = {}

    def register(self, syntax: SyntaxId, token: IfT) -> None:
        self._by_uuid.setdefault(syntax.uuid, {})[(syntax.major, syntax.minor)] = token

    def unregister(self, syntax: SyntaxId) -> bool:
        versions = self._by_uuid.get(syntax.uuid, {})
        removed = versions.pop((syntax.major, syntax.minor), None) is not None
        if not versions:
            self._by_uuid.pop(syntax.uuid, None)
        return removed

    def lookup(self, if_uuid: UUID) -> Mapping[tuple[int, int], IfT]:
        return self._by_uuid.get(if_uuid, {})


class AssociationGroups:
    """Allocator and membership count of association groups, shared by server connections.

    A bind with assoc_group_id 0 creates a group with a fresh nonzero id; a bind naming a known
    id joins that group; an unknown nonzero id is refused (bind_nak reason 0, rpc #53)
    [MS-RPCE §3.3.1.5.7], [samba:dcesrv_core.c dcesrv_bind]. If the connections pass a ``peer``
    (the client's IP address for TCP) a group can only be joined from the peer that created it,
    as MS-RPCE §3.3.1.5.7 requires. ``leave`` reports when a group's last connection is gone,
    which is when its context handles must be run down [MS-RPCE §3.3.3.7.1].

    Ids are random 32-bit values by default (Windows also uses unpredictable ids), so that a
    client cannot guess its way into another client's association; ``id_factory`` overrides
    that (tests use it to reproduce captured bind_acks byte for byte).
    """

    def __init__(self, *, id_factory: Callable[[], int] | None = None) -> None:
        self._factory = id_factory if id_factory is not None else lambda: secrets.randbits(32)
        self._members: dict[int, int] = {}
        self._peers: dict[int, Hashable | None] = {}

    def __contains__(self, assoc_group_id: object) -> bool:
        return assoc_group_id in self._members

    def __len__(self) -> int:
        return len(self._members)

    def members(self, assoc_group_id: int) -> int:
        """Number of connections currently in the group (0 if unknown)."""
        return self._members.get(assoc_group_id, 0)

    def may_join(self, assoc_group_id: int, peer: Hashable | None = None) -> bool:
        if assoc_group_id not in self._members:
            return False
        owner = self._peers[assoc_group_id]
        return owner is None or peer is None or owner == peer

    def create(self, peer: Hashable | None = None) -> int:
        for _ in range(64):
            group = self._factory() & 0xFFFFFFFF
            if group and group not in self._members:
                self._members[group] = 1
                self._peers[group] = peer
                return group
        raise LocalProtocolError("id_factory keeps returning 0 or ids that are in use")

    def join(self, assoc_group_id: int, peer: Hashable | None = None) -> bool:
        if not self.may_join(assoc_group_id, peer):
            return False
        self._members[assoc_group_id] += 1
        return True

    def leave(self, assoc_group_id: int) -> bool:
        """Drop one membership; True if that was the group's last connection (group removed)."""
        count = self._members.get(assoc_group_id)
        if count is None:
            return False
        if count > 1:
            self._members[assoc_group_id] = count - 1
            return False
        del self._members[assoc_group_id]
        del self._peers[assoc_group_id]
        return True


_Input = bytes | bytearray | memoryview


class ConnectionBase:
    """Receive buffer, output queue and error latch shared by both roles (not public)."""

    def __init__(self) -> None:
        self._buf: bytes = b""
        self._off: int = 0
        self._eof: bool = False
        self._error: RemoteProtocolError | None = None
        self._closed: ConnectionClosed | None = None
        self._out: list[bytes] = []
        # Negotiated by bind/bind_ack; identical meaning in both roles.
        self._bound = False
        self._assoc_group_id = 0
        self._conc_mpx = False
        self._xmit = 0
        self._features: int | None = None

    # -- negotiated state (both roles) ---------------------------------------------------------

    @property
    def bound(self) -> bool:
        """A bind was accepted (server: we sent bind_ack; client: we received it)."""
        return self._bound

    @property
    def assoc_group_id(self) -> int:
        return self._assoc_group_id

    @property
    def conc_mpx(self) -> bool:
        """PFC_CONC_MPX was negotiated: calls are multiplexed [MS-RPCE §3.3.1.5.8]."""
        return self._conc_mpx

    @property
    def max_xmit_frag(self) -> int:
        """Largest fragment we send (negotiated in bind / bind_ack)."""
        return self._xmit

    @property
    def bind_time_features(self) -> int | None:
        """The negotiated bind time feature bitmask, None if none was negotiated."""
        return self._features

    # -- input ---------------------------------------------------------------------------------

    def receive_data(self, data: _Input) -> None:
        """Buffer bytes read from the transport; ``b""`` means the peer closed (EOF)."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() after EOF")
        chunk = data if type(data) is bytes else bytes(data)
        if self._off >= len(self._buf):
            self._buf = chunk
        else:
            self._buf = self._buf[self._off :] + chunk
        self._off = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed (nonzero: the peer is in the middle of a PDU)."""
        return len(self._buf) - self._off

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """(unprocessed bytes, EOF seen) — like h11, for debugging and tests."""
        return self._buf[self._off :], self._eof

    def _frame(self) -> Header | None:
        """Header of the next PDU if all its bytes are buffered, else None (need more data)."""
        buf, off = self._buf, self._off
        available = len(buf) - off
        if available < 16:
            if self._eof and available:
                raise RemoteProtocolError("the peer closed the connection in the middle of a PDU")
            return None
        h = decode_header(buf, off)
        self._check_header(h)
        if h.frag_length > available:
            if self._eof:
                raise RemoteProtocolError("the peer closed the connection in the middle of a PDU")
            return None
        return h

    def _check_header(self, h: Header) -> None:
        """Role-specific checks that can be made before the PDU body has arrived."""

    # -- events --------------------------------------------------------------------------------

    def _next_event(self) -> Any:
        """The event loop both roles share: the role's fast path for the common PDU, else whole
        PDUs one by one through ``_on_pdu`` until one yields an event. A RemoteProtocolError
        latches the connection broken (``_check_alive`` raises it again)."""
        self._check_alive()
        fast = self._fast_path()
        if fast is not None:
            return fast
        try:
            while True:
                h = self._frame()
                if h is None:
                    return self._need_data()
                off = self._off
                self._off = off + h.frag_length
                event = self._on_pdu(h, off)
                if event is not None:
                    return event
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def _fast_path(self) -> Any:
        """The role's one-step path for its most common PDU, or None to take the general path."""
        return None

    def _on_pdu(self, h: Header, off: int) -> Any:
        """Handle the whole PDU at ``off`` (already consumed); an event or None."""
        raise NotImplementedError

    # -- output --------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Take everything queued for the transport (replies the connection made by itself)."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    # -- errors --------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._error is not None:
            raise RemoteProtocolError(
                f"the connection is broken: {self._error}",
                status=self._error.status,
                reject_reason=self._error.reject_reason,
            )

    def _need_data(self) -> NeedData | ConnectionClosed:
        if self._eof:
            return self.close()
        return NEED_DATA

    def close(self) -> ConnectionClosed:
        """Mark the connection closed (idempotent) and return the ConnectionClosed event."""
        if self._closed is None:
            self._eof = True
            self._buf, self._off = b"", 0  # whatever was not processed never will be
            self._closed = self._on_close()
        return self._closed

    def _on_close(self) -> ConnectionClosed:
        return ConnectionClosed()


MAX_REQUEST_SIZE: Final = 4 * 1024 * 1024  # [MS-RPCE §3.3.3.5.4], Samba's default too

#: Statuses a server MUST NOT put in a fault [MS-RPCE §3.3.3.5.1]; a client treats them as a
#: protocol error [MS-RPCE §3.3.2.5.1].
FORBIDDEN_FAULT_STATUSES: Final = frozenset(
    {
        0x00000000, 0x80000001, 0x80000002, 0x80000003, 0xC0000005, 0xC0000006, 0xC000001D,
        0xC0000096, 0xC00000AA, 0xC00000FD, 0xC0000194, 0xC0000235, 0xC0000409, 0xC0000420,
    }
)  # fmt: skip
