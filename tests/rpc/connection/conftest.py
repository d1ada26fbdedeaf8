"""h11-style helpers: a ServerConnection and a ClientConnection wired back to back in memory.

Helpers are handed to tests through fixtures (tests run with --import-mode=importlib, so test
modules cannot import each other).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from winaio.rpc._connection import (
    NEED_DATA,
    AssociationGroups,
    BindAccepted,
    Bound,
    ClientConnection,
    ClientEvent,
    ServerConnection,
    ServerEvent,
    SimpleRegistry,
)
from winaio.rpc._pdu import NDR20_SYNTAX, ContextElement, SyntaxId, decode_header
from winaio.testing import hex_reader

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
ECHO = SyntaxId(UUID("60a15ec5-4de8-11d7-a637-005056a20182"), 1, 0)


def make_registry() -> SimpleRegistry[str]:
    registry: SimpleRegistry[str] = SimpleRegistry()
    registry.register(IFACE, "iface")
    registry.register(ECHO, "echo")
    return registry


def drain(conn: ServerConnection[str] | ClientConnection) -> list[Any]:
    """All events until NEED_DATA (or ConnectionClosed, which repeats forever)."""
    events: list[Any] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if type(event).__name__ == "ConnectionClosed":
            return events


def split_pdus(data: bytes) -> list[bytes]:
    """Cut a byte stream into whole PDUs using each header's frag_length."""
    out, pos = [], 0
    while pos < len(data):
        n = decode_header(data, pos).frag_length
        out.append(data[pos : pos + n])
        pos += n
    assert pos == len(data), "stream ends inside a PDU"
    return out


@dataclass
class Pair:
    """A client and a server connection plus a log of every byte each side wrote."""

    server: ServerConnection[str]
    client: ClientConnection
    server_wrote: list[bytes] = field(default_factory=list)
    client_wrote: list[bytes] = field(default_factory=list)

    def to_server(self, data: bytes) -> list[ServerEvent[str]]:
        """Deliver client bytes to the server; returns the server's events (replies queued)."""
        self.client_wrote.append(data)
        self.server.receive_data(data)
        return drain(self.server)

    def to_client(self, data: bytes) -> list[ClientEvent]:
        self.server_wrote.append(data)
        self.client.receive_data(data)
        return drain(self.client)

    def flush(self) -> list[ClientEvent]:
        """Deliver whatever the server queued (bind_ack, faults...) to the client."""
        return self.to_client(self.server.data_to_send())

    def bind(
        self, *contexts: ContextElement, **kw: Any
    ) -> tuple[list[ServerEvent[str]], list[ClientEvent]]:
        elements = contexts or (ContextElement(0, IFACE, (NDR20_SYNTAX,)),)
        server_events = self.to_server(self.client.bind(elements, **kw))
        return server_events, self.flush()

    def bound(self, **kw: Any) -> tuple[Bound[str], BindAccepted]:
        (bound,), (accepted,) = self.bind(**kw)
        assert isinstance(bound, Bound) and isinstance(accepted, BindAccepted)
        return bound, accepted

    def call(self, opnum: int, stub: bytes, p_cont_id: int = 0) -> Any:
        """Client sends a request; returns (call_id, server events)."""
        call_id, data = self.client.request(p_cont_id, opnum, stub)
        return call_id, self.to_server(data)

    def answer(self, call_id: int, stub: bytes) -> list[ClientEvent]:
        """Server responds to call_id; the bytes go to the client."""
        return self.to_client(self.server.send_response(call_id, stub))

    def all_wire_bytes(self) -> list[bytes]:
        return [pdu for chunk in self.server_wrote + self.client_wrote for pdu in split_pdus(chunk)]


PairFactory = Callable[..., Pair]


@pytest.fixture
def pair_factory() -> Iterator[PairFactory]:
    def make(
        *,
        registry: SimpleRegistry[str] | None = None,
        groups: AssociationGroups | None = None,
        server: dict[str, Any] | None = None,
        client: dict[str, Any] | None = None,
    ) -> Pair:
        return Pair(
            ServerConnection(
                registry if registry is not None else make_registry(),
                assoc_groups=groups,
                **(server or {}),
            ),
            ClientConnection(**(client or {})),
        )

    yield make


@pytest.fixture
def pair(pair_factory: PairFactory) -> Pair:
    return pair_factory()


@pytest.fixture(name="drain")
def drain_fixture() -> Callable[[Any], list[Any]]:
    return drain


@pytest.fixture(name="split_pdus")
def split_pdus_fixture() -> Callable[[bytes], list[bytes]]:
    return split_pdus


DATA = Path(__file__).resolve().parents[2] / "data" / "pdu"


#: Bytes of tests/data/pdu/<name>.hex (hex digits, whitespace ignored, '#' comments).
read_hex = hex_reader(DATA)


@pytest.fixture
def golden() -> Callable[[str], bytes]:
    return read_hex
