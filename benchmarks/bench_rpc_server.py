"""The RPC server against what a user would pick instead. Not a test; prints one JSON object.

Run: ``flock /work/coord/bench.lock .venv/bin/python benchmarks/bench_rpc_server.py [--quick]``
(uvloop comes with the ``bench`` extra). Method of perf-anchors.md §0 and §4: loopback, one
client process <-> one server process, 3 s runs after a 0.3 s warm-up, interleaved rounds,
medians, ratios between rows of the same run.

Servers, each in its own process (``--serve KIND`` prints ``PORT n``):

- ``winaio``: our RPC server answering rpcecho EchoData (opnum 1) of 64 bytes: 96-byte request
  PDUs (stub: len, max_count, 64 octets) and 92-byte response PDUs (max_count, 64 octets).
- ``raw_threaded``: the ceiling, blocking sockets with one thread per connection; it cuts the
  stream into DCE/RPC frames by ``frag_length`` (offset 8) and echoes every frame of one
  ``recv`` back in one ``sendall``: no DCE/RPC, no NDR.
- ``asyncio_protocol`` / ``uvloop_protocol``: the same echo as an ``asyncio.Protocol``
  (``data_received`` splits the frames, one ``transport.write`` per wake-up).
- ``winaio_baseline`` (with ``--baseline-src DIR``): ``winaio`` from another source tree, for
  before/after rows measured in the same run.

Clients, each in its own process (``--client MODE``), drive every server in turn with the same
bytes: a bind (the echo servers return it, our server a bind_ack), then

- ``pipelined``: C=64, one connection, 64 request frames in one ``sendall`` then the 64 replies
  read; calls/s and the batch round-trip p50/p99;
- ``pingpong``: C=1, one request, one reply; calls/s and the per-call p50/p99;
- ``impacket``: impacket's ``dce.call``/``dce.recv`` (C=1, our server only);
- ``idle``: opens N connections (bound), waits, and the harness reads the server's RSS before and
  after: memory per idle connection.

Rows of the pipelined and ping-pong clients also carry ``server_cpu_us_per_call_median``: the
server process's CPU time (user + system, every thread) over the client's run divided by the
calls it answered (warm-up included): on a shared machine the steadiest per-call figure.

A server that cannot start or crashes, or a client that fails, makes its row
``{"unavailable": reason}``; the run goes on. Targets (issue 11): winaio C=64 calls/s >= 0.5x the
uvloop Protocol echo (reported whatever it is), C=1 p50 <= 1.25x the raw threaded echo, and at most
16 KiB per idle connection over 1000 connections.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from typing import Any
from uuid import UUID

import bench_procs
from bench_procs import (
    announce,
    cpu_times,
    last_line,
    noise_since,
    raise_nofile,
    ratio,
    run_timed,
    source_info,
    summary,
)

SERVERS = ["winaio", "raw_threaded", "asyncio_protocol", "uvloop_protocol"]
ECHO_UUID = UUID("60a15ec5-4de8-11d7-a637-005056a20182")
NDR20 = UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")
PAYLOAD = bytes(range(64))
_HDR = struct.Struct("<BBBBIHHI")


# -- frames ------------------------------------------------------------------------------------


def bind_pdu(call_id: int = 1) -> bytes:
    """A bind for rpcecho v1.0 / NDR 2.0, as impacket sends it (72 bytes, 4280/4280)."""
    body = struct.pack("<HHIBBH", 4280, 4280, 0, 1, 0, 0)
    body += struct.pack("<HBB", 0, 1, 0) + ECHO_UUID.bytes_le + struct.pack("<HH", 1, 0)
    body += NDR20.bytes_le + struct.pack("<HH", 2, 0)
    return _HDR.pack(5, 0, 11, 3, 0x10, 16 + len(body), 0, call_id) + body


def echo_request(call_id: int) -> bytes:
    """rpcecho EchoData(len=64, in_data=64 octets): a 96-byte request PDU."""
    stub = struct.pack("<II", len(PAYLOAD), len(PAYLOAD)) + PAYLOAD
    return (
        _HDR.pack(5, 0, 0, 3, 0x10, 24 + len(stub), 0, call_id)
        + struct.pack("<IHH", len(stub), 0, 1)
        + stub
    )


def split_frames(buf: bytearray) -> tuple[list[bytes], int]:
    """Whole frames at the start of ``buf`` (by frag_length) and the bytes they use."""
    frames, pos, n = [], 0, len(buf)
    while n - pos >= 10:
        size = buf[pos + 8] | buf[pos + 9] << 8
        if size < 16:
            raise ValueError(f"frame of {size} bytes")
        if n - pos < size:
            break
        frames.append(bytes(buf[pos : pos + size]))
        pos += size
    return frames, pos


# -- servers (each runs in its own process) ----------------------------------------------------


def serve_raw_threaded() -> None:
    listener = bench_procs.listener()
    announce(listener.getsockname()[1])

    def handle(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        with conn:
            while data := conn.recv(65536):
                buf += data
                frames, used = split_frames(buf)
                if used:
                    del buf[:used]
                    conn.sendall(b"".join(frames))

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def serve_asyncio(use_uvloop: bool) -> None:
    import asyncio

    if use_uvloop:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    else:
        loop_factory = asyncio.new_event_loop

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buf = bytearray()
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            buf = self.buf
            buf += data
            frames, used = split_frames(buf)
            if used:
                del buf[:used]
                self.transport.write(b"".join(frames))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=4096)
        announce(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    loop = loop_factory()
    loop.run_until_complete(main())


def serve_winaio() -> None:
    # The server runtime with the built-in rpcecho interface (what `python -m winaio serve`
    # runs), on the default engine (uvloop when installed).
    from winaio import rpc

    server = rpc.Server()
    rpc.register_echo(server)
    server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
    server.listen()  # before the port is announced: the first call finds the server listening
    announce(int(server.bindings[0].endpoint))
    server.wait()


def serve_winaio_baseline() -> None:
    # The same server from another source tree (``--baseline-src``: e.g. ``git archive`` of an
    # earlier commit's src/), for before/after rows of one run.
    src = os.environ.get("WINAIO_BASELINE_SRC", "")
    if not os.path.isdir(os.path.join(src, "winaio")):
        raise SystemExit(f"no winaio package under --baseline-src {src!r}")
    sys.path.insert(0, src)
    import winaio

    if not os.path.abspath(winaio.__file__).startswith(os.path.abspath(src)):
        raise SystemExit(f"winaio imported from {winaio.__file__}, not {src}")
    serve_winaio()


SERVE = {
    "raw_threaded": serve_raw_threaded,
    "asyncio_protocol": lambda: serve_asyncio(False),
    "uvloop_protocol": lambda: serve_asyncio(True),
    "winaio": serve_winaio,
    "winaio_baseline": serve_winaio_baseline,
}


# -- clients (each runs in its own process) ----------------------------------------------------


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.call_id = 1
        self.sock.sendall(bind_pdu())
        (reply,) = self.read(1)
        if reply[2] not in (11, 12):  # echoed bind, or bind_ack
            raise RuntimeError(f"bind answered with PTYPE {reply[2]}")

    def read(self, count: int) -> list[bytes]:
        out: list[bytes] = []
        while len(out) < count:
            frames, used = split_frames(self.buf)
            if used:
                del self.buf[:used]
                out += frames
                continue
            data = self.sock.recv(262144)
            if not data:
                raise RuntimeError("connection closed by the server")
            self.buf += data
        return out

    def batch(self, count: int) -> bytes:
        frames = []
        for _ in range(count):
            frames.append(echo_request(self.call_id))
            self.call_id += 1
        return b"".join(frames)


def check_reply(frame: bytes) -> bool:
    ptype = frame[2]
    if ptype == 0:  # an echo server returned our request
        return frame[-64:] == PAYLOAD
    return ptype == 2 and len(frame) == 92 and frame[-64:] == PAYLOAD


def client_pipelined(port: int, duration: float, warmup: float, depth: int) -> dict[str, Any]:
    client = Client(port)
    errors = 0

    def step() -> None:
        nonlocal errors
        client.sock.sendall(client.batch(depth))
        for frame in client.read(depth):
            errors += not check_reply(frame)

    result = summary(run_timed(step, duration, warmup), depth)
    result["errors"] = errors
    result["calls_total"] = client.call_id - 1  # warm-up included: for the server's CPU/call
    return result


def client_pingpong(port: int, duration: float, warmup: float) -> dict[str, Any]:
    client = Client(port)
    errors = 0

    def step() -> None:
        nonlocal errors
        client.sock.sendall(client.batch(1))
        (frame,) = client.read(1)
        errors += not check_reply(frame)

    result = summary(run_timed(step, duration, warmup), 1)
    result["errors"] = errors
    result["calls_total"] = client.call_id - 1
    return result


def client_impacket(port: int, duration: float, warmup: float) -> dict[str, Any]:
    from impacket.dcerpc.v5 import transport
    from impacket.uuid import uuidtup_to_bin

    t = transport.DCERPCTransportFactory(f"ncacn_ip_tcp:127.0.0.1[{port}]")
    t.set_connect_timeout(10)
    dce = t.get_dce_rpc()
    dce.connect()
    dce.bind(uuidtup_to_bin((str(ECHO_UUID), "1.0")))
    stub = struct.pack("<II", len(PAYLOAD), len(PAYLOAD)) + PAYLOAD
    errors = 0

    def step() -> None:
        nonlocal errors
        dce.call(1, stub)
        errors += dce.recv()[-64:] != PAYLOAD

    result = summary(run_timed(step, duration, warmup), 1)
    result["errors"] = errors
    dce.disconnect()
    return result


def client_idle(port: int, connections: int) -> None:
    """Open ``connections`` bound connections, say so, hold them until stdin closes."""
    raise_nofile()
    clients = [Client(port) for _ in range(connections)]
    print(json.dumps({"open": len(clients)}), flush=True)
    sys.stdin.read()
    for client in clients:
        client.sock.close()


# -- harness -----------------------------------------------------------------------------------


class ServerProcess(bench_procs.ServerProcess):
    def __init__(self, kind: str) -> None:
        super().__init__(__file__, kind)


def run_client(args: list[str], timeout: float) -> dict[str, Any]:
    return bench_procs.run_script(__file__, ["--client", *args], timeout)


def measure_idle(kind: str, connections: int) -> dict[str, Any]:
    server = ServerProcess(kind)
    try:
        # Warm up (first connections create the server's per-connection machinery and grow its
        # allocator arenas) so that the difference is what idle connections hold.
        for _ in range(50):
            Client(server.port).sock.close()
        time.sleep(0.5)
        before = server.rss_kib()
        holder = subprocess.Popen(
            [sys.executable, __file__, "--client", "idle", "--port", str(server.port),
             "--connections", str(connections)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            line = holder.stdout.readline() if holder.stdout else ""
            if not line:
                err = holder.stderr.read() if holder.stderr else ""
                raise RuntimeError(f"idle client failed: {last_line(err)}")
            time.sleep(1.0)
            after = server.rss_kib()
            if not server.alive():
                raise RuntimeError("server died while holding connections")
        finally:
            if holder.stdin:
                holder.stdin.close()
            holder.wait(30)
        return {
            "connections": connections,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": (after - before) / connections,
        }
    finally:
        server.stop()


def harness(opts: argparse.Namespace) -> dict[str, Any]:
    kinds = opts.servers.split(",")
    servers: dict[str, ServerProcess] = {}
    unavailable: dict[str, str] = {}
    for kind in kinds:
        try:
            servers[kind] = ServerProcess(kind)
        except Exception as exc:
            unavailable[kind] = str(exc)
        print(f"server {kind}: {'up' if kind in servers else unavailable[kind]}", file=sys.stderr)
    timing = ["--duration", str(opts.duration), "--warmup", str(opts.warmup)]
    modes = {
        "c64_pipelined": ["pipelined", "--depth", "64"],
        "c1_pingpong": ["pingpong"],
        "c1_impacket": ["impacket"],
    }
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    failures: dict[str, str] = {}
    noise: list[dict[str, float]] = []
    for rnd in range(opts.rounds):
        before = cpu_times()
        order = kinds[rnd % len(kinds) :] + kinds[: rnd % len(kinds)]
        for kind in order:
            for mode, margs in modes.items():
                if mode == "c1_impacket" and kind != "winaio":
                    continue
                row = f"{kind}/{mode}"
                server = servers.get(kind)
                if server is None or row in failures:
                    continue
                if not server.alive():
                    failures[row] = f"server crashed (exit {server.proc.returncode})"
                    continue
                cpu0 = server.cpu_seconds()
                try:
                    got = run_client(
                        [*margs, "--port", str(server.port), *timing],
                        timeout=opts.duration + opts.warmup + 60,
                    )
                except Exception as exc:
                    failures[row] = str(exc)
                    continue
                total = got.get("calls_total")
                if total:
                    # The server's CPU (every thread, user + system) over the client's run per
                    # call answered, warm-up included: steadier than rates on a shared machine.
                    got["server_cpu_us_per_call"] = 1e6 * (server.cpu_seconds() - cpu0) / total
                samples.setdefault(kind, {}).setdefault(mode, []).append(got)
                print(f"round {rnd}: {row}: {got['calls_per_s']:.0f} calls/s", file=sys.stderr)
        noise.append(noise_since(before))
    for server in servers.values():
        server.stop()

    rows: dict[str, Any] = {}
    for kind in kinds:
        for mode in modes:
            if mode == "c1_impacket" and kind != "winaio":
                continue
            row = f"{kind}/{mode}"
            runs = samples.get(kind, {}).get(mode, [])
            if kind in unavailable:
                rows[row] = {"unavailable": unavailable[kind]}
            elif row in failures:
                rows[row] = {"unavailable": failures[row], "completed_rounds": len(runs)}
            elif runs:
                rates = [r["calls_per_s"] for r in runs]
                median = statistics.median(rates)
                rows[row] = {
                    "calls_per_s_median": median,
                    "p50_us_median": statistics.median(r["p50_us"] for r in runs),
                    "p99_us_median": statistics.median(r["p99_us"] for r in runs),
                    "calls_per_s_rounds": rates,
                    "spread_pct": 100.0 * (max(rates) - min(rates)) / median,
                    "errors": sum(r["errors"] for r in runs),
                }
                cpu = [r["server_cpu_us_per_call"] for r in runs if "server_cpu_us_per_call" in r]
                if cpu:
                    rows[row]["server_cpu_us_per_call_median"] = round(statistics.median(cpu), 3)

    memory: dict[str, Any] = {}
    for kind in opts.idle_servers.split(","):
        try:
            memory[kind] = measure_idle(kind, opts.connections)
        except Exception as exc:
            memory[kind] = {"unavailable": str(exc)}
        print(f"idle {kind}: {memory[kind]}", file=sys.stderr)

    def get(row: str, key: str) -> Any:
        return rows.get(row, {}).get(key)

    c64 = ratio(get("winaio/c64_pipelined", "calls_per_s_median"),
                get("uvloop_protocol/c64_pipelined", "calls_per_s_median"))  # fmt: skip
    c1 = ratio(get("winaio/c1_pingpong", "p50_us_median"),
               get("raw_threaded/c1_pingpong", "p50_us_median"))  # fmt: skip
    per_conn = memory.get("winaio", {}).get("kib_per_connection")
    targets = {
        "c64_calls_vs_uvloop_protocol": {"ratio": c64, "threshold": ">= 0.5",
                                         "met": c64 is not None and c64 >= 0.5},
        "c1_p50_vs_raw_threaded": {"ratio": c1, "threshold": "<= 1.25",
                                   "met": c1 is not None and c1 <= 1.25},
        "idle_kib_per_connection": {"value": per_conn, "threshold": "<= 16",
                                    "met": per_conn is not None and per_conn <= 16},
    }  # fmt: skip
    info = {
        "c64_winaio_vs_raw_threaded": ratio(
            get("winaio/c64_pipelined", "calls_per_s_median"),
            get("raw_threaded/c64_pipelined", "calls_per_s_median"),
        ),
        "c64_winaio_vs_asyncio_protocol": ratio(
            get("winaio/c64_pipelined", "calls_per_s_median"),
            get("asyncio_protocol/c64_pipelined", "calls_per_s_median"),
        ),
        "c1_calls_winaio_vs_uvloop_protocol": ratio(
            get("winaio/c1_pingpong", "calls_per_s_median"),
            get("uvloop_protocol/c1_pingpong", "calls_per_s_median"),
        ),
        "c1_p50_uvloop_protocol_vs_raw_threaded": ratio(
            get("uvloop_protocol/c1_pingpong", "p50_us_median"),
            get("raw_threaded/c1_pingpong", "p50_us_median"),
        ),
        "c64_server_cpu_per_call_winaio_vs_uvloop_protocol": ratio(
            get("winaio/c64_pipelined", "server_cpu_us_per_call_median"),
            get("uvloop_protocol/c64_pipelined", "server_cpu_us_per_call_median"),
        ),
        "c1_server_cpu_per_call_winaio_vs_uvloop_protocol": ratio(
            get("winaio/c1_pingpong", "server_cpu_us_per_call_median"),
            get("uvloop_protocol/c1_pingpong", "server_cpu_us_per_call_median"),
        ),
        "c64_calls_winaio_vs_winaio_baseline": ratio(
            get("winaio/c64_pipelined", "calls_per_s_median"),
            get("winaio_baseline/c64_pipelined", "calls_per_s_median"),
        ),
        "c64_server_cpu_per_call_winaio_vs_winaio_baseline": ratio(
            get("winaio/c64_pipelined", "server_cpu_us_per_call_median"),
            get("winaio_baseline/c64_pipelined", "server_cpu_us_per_call_median"),
        ),
        "c1_p50_winaio_vs_winaio_baseline": ratio(
            get("winaio/c1_pingpong", "p50_us_median"),
            get("winaio_baseline/c1_pingpong", "p50_us_median"),
        ),
        "c1_server_cpu_per_call_winaio_vs_winaio_baseline": ratio(
            get("winaio/c1_pingpong", "server_cpu_us_per_call_median"),
            get("winaio_baseline/c1_pingpong", "server_cpu_us_per_call_median"),
        ),
        "c1_winaio_own_client_vs_impacket_client": ratio(
            get("winaio/c1_pingpong", "calls_per_s_median"),
            get("winaio/c1_impacket", "calls_per_s_median"),
        ),
    }
    return {
        "benchmark": "bench_rpc_server",
        "method": "perf-anchors.md §0/§4: loopback, client and server in separate processes, "
        f"{opts.duration}s runs after {opts.warmup}s warm-up, {opts.rounds} interleaved rounds, "
        "medians",
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            **source_info(),
            "baseline_src": os.environ.get("WINAIO_BASELINE_SRC"),
        },
        "rows": rows,
        "idle_memory": memory,
        "targets": targets,
        "info_ratios": info,
        "noise": noise,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=sorted(SERVE))
    parser.add_argument("--client", choices=["pipelined", "pingpong", "impacket", "idle"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--idle-servers", default="winaio,raw_threaded,uvloop_protocol")
    parser.add_argument("--quick", action="store_true", help="1 s runs, 1 round, 200 idle conns")
    parser.add_argument("--output", help="also write the JSON there")
    parser.add_argument(
        "--baseline-src",
        help="a src/ directory holding another winaio (e.g. `git archive REV src | tar -x`): "
        "adds its server as the winaio_baseline rows, interleaved with the others",
    )
    opts = parser.parse_args()
    if opts.baseline_src:
        # Inherited by the server processes (the winaio_baseline one reads it).
        os.environ["WINAIO_BASELINE_SRC"] = os.path.abspath(opts.baseline_src)
        if "winaio_baseline" not in opts.servers.split(","):
            opts.servers += ",winaio_baseline"
    if opts.serve:
        raise_nofile()
        SERVE[opts.serve]()
        return 0
    if opts.client:
        if opts.client == "idle":
            client_idle(opts.port, opts.connections)
            return 0
        if opts.client == "pipelined":
            out = client_pipelined(opts.port, opts.duration, opts.warmup, opts.depth)
        elif opts.client == "pingpong":
            out = client_pingpong(opts.port, opts.duration, opts.warmup)
        else:
            out = client_impacket(opts.port, opts.duration, opts.warmup)
        print(json.dumps(out))
        return 0
    if opts.quick:
        opts.duration, opts.rounds, opts.connections = 1.0, 1, 200
    raise_nofile()
    bench_procs.emit(harness(opts), opts.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
