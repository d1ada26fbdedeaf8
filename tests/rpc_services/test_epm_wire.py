"""The endpoint mapper over loopback with winaio's own sans-I/O client (ept_map, ept_lookup with
its context-handle cursor, ept_lookup_handle_free, remote registration refused) and mgmt."""

from __future__ import annotations

import uuid
from typing import Any

from winaio import rpc
from winaio.rpc._epm import EPMAPPER, EPT_S_CANT_PERFORM_OP, EPT_S_NOT_REGISTERED
from winaio.rpc._epm._idl import EPT_INSERT, EPT_LOOKUP, EPT_LOOKUP_HANDLE_FREE, EPT_MAP
from winaio.rpc._interfaces._echo_idl import RPCECHO
from winaio.rpc._interfaces._mgmt_idl import MGMT, STOP_SERVER_LISTENING

NULL = rpc.ContextHandleValue.NULL


def lookup(client: Any, handle: rpc.ContextHandleValue, max_ents: int) -> Any:
    return client.call(
        EPT_LOOKUP, inquiry_type=0, object=None, ifid=None, vers_option=1,
        entry_handle=handle, max_ents=max_ents,
    )  # fmt: skip


def test_ept_map_over_the_wire(served: Any, raw_client: Any) -> None:
    # spec: rpc #90 #92 #96 #97
    client = raw_client(served.port, interface=EPMAPPER)

    def ept_map(tower: bytes) -> Any:
        return client.call(
            EPT_MAP, obj=None, entry_handle=NULL, max_towers=4,
            map_tower={"tower_length": len(tower), "tower_octet_string": tower},
        )  # fmt: skip

    out = ept_map(rpc.tcp_tower(RPCECHO, 0, "0.0.0.0").to_bytes())
    assert (out["num_towers"], out["status"], out["entry_handle"]) == (1, 0, NULL)
    tower = rpc.Tower.from_bytes(out["towers"][0]["tower_octet_string"])
    assert tower.string_binding == served.binding
    assert len(out["towers"][0]["tower_octet_string"]) == 75
    other = rpc.SyntaxId(uuid.UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
    out = ept_map(rpc.tcp_tower(other, 0).to_bytes())
    assert (out["num_towers"], out["status"]) == (0, EPT_S_NOT_REGISTERED)
    floors = rpc.decode_floors(rpc.tcp_tower(RPCECHO, 0).to_bytes())
    seven = rpc.encode_floors([*floors, floors[-1], floors[-1]])
    assert ept_map(seven)["status"] == EPT_S_NOT_REGISTERED


def test_lookup_cursor_is_a_context_handle(served: Any, raw_client: Any) -> None:
    # spec: rpc #95 (cursor), #87 (a handle that is not ours -> fault 0x1C00001A)
    client = raw_client(served.port, interface=EPMAPPER)
    first = lookup(client, NULL, 1)
    assert first["num_ents"] == 1 and not first["entry_handle"].is_null
    seen = [first["entries"][0]["annotation"]]
    handle = first["entry_handle"]
    while True:
        out = lookup(client, handle, 1)
        if out["status"] == EPT_S_NOT_REGISTERED:
            assert out["entry_handle"] == NULL
            break
        seen.append(out["entries"][0]["annotation"])
        handle = out["entry_handle"]
    assert sorted(seen) == ["winaio epmapper", "winaio rpcecho"]
    # Freeing an open cursor closes it; reusing it is then a context mismatch.
    open_cursor = lookup(client, NULL, 1)["entry_handle"]
    freed = client.call(EPT_LOOKUP_HANDLE_FREE, entry_handle=open_cursor)
    assert freed == {"entry_handle": NULL, "status": 0}
    fault = lookup(client, open_cursor, 1)
    assert isinstance(fault, rpc.FaultReceived) and fault.nca_status == 0x1C00001A
    forged = rpc.ContextHandleValue(0, uuid.uuid4())
    fault = lookup(client, forged, 1)
    assert isinstance(fault, rpc.FaultReceived) and fault.nca_status == 0x1C00001A
    assert lookup(client, NULL, 500)["num_ents"] == 2  # the connection goes on


def test_remote_registration_is_refused(served: Any, raw_client: Any) -> None:
    client = raw_client(served.port, interface=EPMAPPER)
    out = client.call(EPT_INSERT, num_ents=0, entries=[], replace=0)
    assert out == {"status": EPT_S_CANT_PERFORM_OP}
    assert len(served.endpoints.entries) == 2


def test_mgmt_remote_stop_is_refused(served: Any, raw_client: Any) -> None:
    client = raw_client(served.port, interface=MGMT)
    assert client.call(STOP_SERVER_LISTENING) == {"status": 5}
    assert served.server.is_listening()


def test_published_endpoints_follow_the_server(server_factory: Any) -> None:
    # Dynamic endpoints are registered once bound; unregistering an interface or adding a
    # binding updates the map (RpcEpRegister / RpcEpUnregister done by the server).
    served = server_factory()
    entries = served.endpoints.entries
    assert {(e.interface, e.tower.endpoint) for e in entries} == {
        (RPCECHO, str(served.port)),
        (EPMAPPER, str(served.port)),
    }
    name = f"winaio-test-{uuid.uuid4().hex[:8]}"
    served.server.use_protseq("ncalrpc", name)
    bindings = {(e.tower.protseq, e.tower.endpoint) for e in served.endpoints.entries}
    assert bindings == {("ncacn_ip_tcp", str(served.port)), ("ncalrpc", name)}
    assert len(served.endpoints.entries) == 4
    served.server.unregister_interface(rpc.ECHO_INTERFACE)
    assert {e.interface for e in served.endpoints.entries} == {EPMAPPER}
