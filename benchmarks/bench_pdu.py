"""Throughput of the DCE/RPC wire layer (PDU codec + sans-I/O connections). Not a test.

Run: ``.venv/bin/python benchmarks/bench_pdu.py [--quick]``. Prints one JSON object.
Each figure is the median of 5 rounds (perf-anchors.md §0: this machine is noisy; compare
ratios, not absolute values). What is measured:

- ``parse_pdu``: generic ``parse_pdu`` (dataclass per PDU) for a 64-byte-stub request, a
  response, impacket's 72-byte bind and a bind_ack; PDUs/s.
- ``server_pipelined_64B``: N single-fragment requests with 64-byte stubs in one buffer fed
  to a bound ServerConnection, drained to RequestReceived events (requests/s), and the same
  plus ``send_response`` of a 64-byte stub per call (calls/s through the server connection).
- ``client_pipelined_64B``: N responses in one buffer through a bound CONC_MPX
  ClientConnection (responses/s), and ``request()`` building (requests/s).
- ``server_1MiB_in_4280B_fragments``: one 1 MiB request cut into 4280-byte fragments (impacket's
  fragment size), fed at once; MiB/s and fragments/s of reassembly.
- ``response_1MiB``: ``send_response`` of 1 MiB fragmented to 5840 bytes; MiB/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from uuid import UUID

from winaio.rpc._connection import (
    NEED_DATA,
    ClientConnection,
    ServerConnection,
    SimpleRegistry,
)
from winaio.rpc._pdu import (
    NDR20_SYNTAX,
    ContextElement,
    SyntaxId,
    parse_pdu,
    request_fragments,
    response_fragments,
)

IFACE = SyntaxId(UUID("12345678-1234-abcd-ef00-0123456789ab"), 1, 0)
BIND = bytes.fromhex(
    "05000b031000000048000000010000 00b810b810000000000100000000000100"
    "78563412341 2cdabef000123456789ab01000000045d888aeb1cc9119fe808002b10486002000000".replace(
        " ", ""
    )
)
BIND_ACK = bytes.fromhex(
    "05000c03100000003c00000001000000b810b8104523010005003530303000000100000000000000"
    "045d888aeb1cc9119fe808002b10486002000000"
)


def median_rate(work: Callable[[], int], rounds: int) -> float:
    """Median over rounds of (units of work done / seconds)."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        units = work()
        rates.append(units / (time.perf_counter() - start))
    return statistics.median(rates)


def new_server(
    max_frag: int = 5840, conc_mpx: bool = False
) -> tuple[ServerConnection[str], ClientConnection]:
    registry: SimpleRegistry[str] = SimpleRegistry()
    registry.register(IFACE, "iface")
    server = ServerConnection(registry, max_frag=max_frag)
    client = ClientConnection(max_xmit_frag=max_frag, max_recv_frag=max_frag)
    server.receive_data(client.bind([ContextElement(0, IFACE, (NDR20_SYNTAX,))], conc_mpx=conc_mpx))
    server.next_event()
    client.receive_data(server.data_to_send())
    client.next_event()
    return server, client


def bench_parse(n: int, rounds: int) -> dict[str, float]:
    samples = {
        "request_64B": request_fragments(1, 0, 3, bytes(64), 5840),
        "response_64B": response_fragments(1, 0, bytes(64), 5840),
        "bind_72B": BIND,
        "bind_ack_60B": BIND_ACK,
    }
    out = {}
    for name, data in samples.items():

        def work(data: bytes = data) -> int:
            for _ in range(n):
                parse_pdu(data)
            return n

        out[name] = round(median_rate(work, rounds))
    return out


def bench_server_pipelined(n: int, rounds: int) -> dict[str, float]:
    stub = bytes(64)
    # call_ids must increase on a connection, so each round uses a fresh connection.
    streams = [b"".join(request_fragments(i + 2, 0, 1, stub, 5840) for i in range(n))]

    def receive_only() -> int:
        server, _ = new_server()
        server.receive_data(streams[0])
        count = 0
        while server.next_event() is not NEED_DATA:
            count += 1
        assert count == n
        return n

    def receive_and_respond() -> int:
        server, _ = new_server()
        server.receive_data(streams[0])
        out = []
        while (event := server.next_event()) is not NEED_DATA:
            out.append(server.send_response(event.call_id, stub))  # type: ignore[union-attr]
        assert len(out) == n
        return n

    return {
        "requests_per_s": round(median_rate(receive_only, rounds)),
        "calls_per_s_receive_and_respond": round(median_rate(receive_and_respond, rounds)),
    }


def bench_client_pipelined(n: int, rounds: int) -> dict[str, float]:
    stub = bytes(64)

    def build_requests() -> int:
        _, client = new_server(conc_mpx=True)
        for _ in range(n):
            client.request(0, 1, stub)
        return n

    def receive_responses() -> int:
        _, client = new_server(conc_mpx=True)
        ids = [client.request(0, 1, stub)[0] for _ in range(n)]
        client.receive_data(b"".join(response_fragments(i, 0, stub, 5840) for i in ids))
        count = 0
        while client.next_event() is not NEED_DATA:
            count += 1
        assert count == n
        return n

    return {
        "requests_built_per_s": round(median_rate(build_requests, rounds)),
        "responses_per_s": round(median_rate(receive_responses, rounds)),
    }


def bench_large(rounds: int) -> dict[str, float]:
    stub = bytes(range(256)) * 4096  # 1 MiB
    request = request_fragments(2, 0, 1, stub, 4280)
    n_frags = -(-len(stub) // ((4280 - 24) // 16 * 16))

    def reassemble() -> int:
        server, _ = new_server(max_frag=4280)
        server.receive_data(request)
        event = server.next_event()
        assert event is not NEED_DATA and len(event.stub) == len(stub)  # type: ignore[union-attr]
        return 1

    def respond() -> int:
        server, _ = new_server()
        server.receive_data(request_fragments(2, 0, 1, b"", 5840))
        server.next_event()
        server.send_response(2, stub)
        return 1

    per_s = median_rate(reassemble, rounds)
    return {
        "server_1MiB_in_4280B_fragments_MiB_per_s": round(per_s, 1),
        "server_1MiB_in_4280B_fragments_fragments_per_s": round(per_s * n_frags),
        "response_1MiB_in_5840B_fragments_MiB_per_s": round(median_rate(respond, rounds), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    args = parser.parse_args()
    n, rounds = (2_000, 3) if args.quick else (20_000, 5)
    result = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "n_per_round": n,
        "rounds": rounds,
        "parse_pdu_per_s": bench_parse(n, rounds),
        "server_pipelined_64B": bench_server_pipelined(n, rounds),
        "client_pipelined_64B": bench_client_pipelined(n, rounds),
        "large": bench_large(rounds),
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
