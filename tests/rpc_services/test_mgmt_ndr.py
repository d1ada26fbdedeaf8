"""The management interface's managers and descriptors against impacket's mgmt NDR (in memory).

impacket's ``hinq_if_ids`` / ``hinq_stats`` / ``his_server_listening`` /
``hstop_server_listening`` / ``hinq_princ_name`` (what rpcmap uses) marshal the requests and
parse our responses through ``StubDce``. Over TCP they run in ``test_peers_impacket.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from winaio import rpc
from winaio.rpc._interfaces._mgmt import MgmtService
from winaio.rpc._interfaces._mgmt_idl import MGMT, MGMT_PROCEDURES

ECHO = rpc.SyntaxId(uuid.UUID("60a15ec5-4de8-11d7-a637-005056a20182"), 1, 0)
OTHER = rpc.SyntaxId(uuid.UUID("12345678-1234-abcd-ef00-0123456789ab"), 2, 3)


@dataclass
class Iface:
    syntax: rpc.SyntaxId


@dataclass
class Stats:
    calls_in: int = 7
    calls_out: int = 6
    pkts_in: int = 9
    pkts_out: int = 8


@dataclass
class FakeServer:
    interfaces: tuple[Any, ...] = (Iface(ECHO), Iface(MGMT), Iface(OTHER))
    stats: Stats = field(default_factory=Stats)
    listening: bool = True
    stops: int = 0

    def is_listening(self) -> bool:
        return self.listening

    def stop_listening(self) -> None:
        self.stops += 1
        self.listening = False


def answer_with(service: MgmtService) -> Any:
    managers = service.managers()

    def answer(opnum: int, stub: bytes) -> bytes:
        procedure = MGMT_PROCEDURES[opnum]
        args = procedure.decode_request(stub)
        result = managers[procedure.name](**args)
        names = [p.name for p in procedure.out_params] + (
            [rpc.RETURN] if procedure.returns is not None else []
        )
        outs = {names[0]: result} if len(names) == 1 else dict(result)
        return procedure.encode_response({**args, **outs})

    return answer


@pytest.fixture
def mgmt(impacket: Any) -> Any:
    import impacket.dcerpc.v5.mgmt as mgmt

    return mgmt


def test_inq_if_ids_lists_the_application_interfaces(mgmt: Any, stub_dce: Any) -> None:
    from impacket.uuid import bin_to_uuidtup

    dce = stub_dce(answer_with(MgmtService(FakeServer())))
    resp = mgmt.hinq_if_ids(dce)
    vector = resp["if_id_vector"]
    assert vector["count"] == 2
    listed = [bin_to_uuidtup(item["Data"].getData()) for item in vector["if_id"]]
    assert listed == [(str(ECHO.uuid).upper(), "1.0"), (str(OTHER.uuid).upper(), "2.3")]


def test_inq_stats_and_listening(mgmt: Any, stub_dce: Any) -> None:
    server = FakeServer()
    dce = stub_dce(answer_with(MgmtService(server)))
    resp = mgmt.hinq_stats(dce)
    assert resp["count"] == 4 and list(resp["statistics"]) == [7, 6, 9, 8]
    resp = mgmt.hinq_stats(dce, count=2)
    assert list(resp["statistics"]) == [7, 6]
    assert mgmt.his_server_listening(dce)["status"] == 0
    listening = MGMT_PROCEDURES[2].decode_response(answer_with(MgmtService(server))(2, b""))
    assert listening == {"status": 0, "return": 1}


def test_remote_stop_is_refused_unless_allowed(mgmt: Any, stub_dce: Any) -> None:
    server = FakeServer()
    with pytest.raises(RuntimeError, match="status 0x00000005"):
        mgmt.hstop_server_listening(stub_dce(answer_with(MgmtService(server))))
    assert server.stops == 0 and server.listening
    service = MgmtService(server, allow_remote_stop=True)
    assert mgmt.hstop_server_listening(stub_dce(answer_with(service)))["status"] == 0
    assert server.stops == 1 and not server.listening


def test_inq_princ_name_without_a_security_provider(mgmt: Any, stub_dce: Any) -> None:
    resp = mgmt.hinq_princ_name(stub_dce(answer_with(MgmtService(FakeServer()))))
    assert resp["status"] == 1747  # RPC_S_UNKNOWN_AUTHN_SERVICE
    assert b"".join(resp["princ_name"]) == b"\x00"


def test_samba_inq_stats_layout_is_the_same_octets() -> None:
    # Samba reads mgmt_statistics {count; statistics[count]} (max_count hoisted before count);
    # C706/impacket read count then a conformant array. With max_count == count they agree.
    stub = MGMT_PROCEDURES[1].encode_response({"count": 4, "statistics": [1, 2, 3, 4], "status": 0})
    assert stub == bytes.fromhex("04000000 04000000 01000000 02000000 03000000 04000000 00000000")
