"""Which I/O engine should carry the RPC server? (docs/design.md §5, "Transport engine").

Same DCE/RPC echo (bind once, then requests of 64 stub bytes answered with the same 64 bytes,
through ``ServerConnection``: framing, call bookkeeping, response building; no NDR) on each
engine, each server in its own process, driven by the same raw client from this process:

- ``uvloop`` / ``asyncio``: an asyncio Protocol (one ``data_received`` = every ready PDU
  parsed in one batch, one ``write`` per batch);
- ``iocp``: winaio's own overlapped sockets associated with a completion port, one port thread
  (``get_many``) reading, parsing and writing, which is how rpcrt4 works;
- ``raw``: a threaded blocking socket echo of the same bytes (the ceiling: no DCE/RPC at all);
- ``runtime-inline`` / ``runtime-async`` / ``runtime-thread``: the whole ``rpc.Server``
  answering an EchoData-shaped call (NDR decode and encode, dispatch) with an ``@rpc.inline``
  function, an ``@rpc.async_manager`` completing inline, or a plain function on a worker thread
  of the server's default executor; ``runtime-tpe`` / ``runtime-pool``: the plain function on
  an explicit ``concurrent.futures.ThreadPoolExecutor`` / ``winaio.ThreadPool`` (the executor
  choice, docs/design.md §5). Not in the default ``--engines`` list: pass them.

C=64: 64 request frames per ``sendall`` then 64 responses read (pipelined, conc_mpx bind);
C=1: ping-pong, latency per call. Interleaved rounds, medians, JSON on stdout
(``../shared/spec/perf-anchors.md`` §0, §4). Usage: ``python benchmarks/bench_rpc_engine.py
[--seconds 2] [--rounds 3]``.
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

from bench_procs import commit_label

IFACE_UUID = UUID("60a15ec5-4de8-11d7-a637-005056a20182")
STUB = bytes(range(64))
NDR_STUB = struct.pack("<II", 64, 64) + STUB  # EchoData [in]: len, then the conformant array
REQ = struct.Struct("<BBBBIHHIIHH")
FRAME = 24 + len(STUB)


def _registry() -> Any:
    from winaio import rpc

    reg: Any = rpc.SimpleRegistry()
    reg.register(rpc.SyntaxId(IFACE_UUID, 1, 0), "echo")
    return reg


# -- servers -----------------------------------------------------------------------------------


def serve_asyncio(use_uvloop: bool) -> None:
    import asyncio

    from winaio import rpc

    registry = _registry()
    groups = rpc.AssociationGroups()
    received = rpc.RequestReceived

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.c: Any = rpc.ServerConnection(registry, assoc_groups=groups)

        def data_received(self, data: bytes) -> None:
            c = self.c
            c.receive_data(data)
            out = []
            while True:
                ev = c.next_event()
                if ev is rpc.NEED_DATA:
                    break
                if type(ev) is received:
                    out.append(c.send_response(ev.call_id, ev.stub))
            pending = c.data_to_send()
            if pending:
                out.append(pending)
            if out:
                self.t.write(b"".join(out))

        def connection_lost(self, exc: Any) -> None:
            self.c.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Proto, "127.0.0.1", 0)
        sock = server.sockets[0]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print(sock.getsockname()[1], flush=True)
        await server.serve_forever()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def serve_iocp() -> None:
    import winaio
    from winaio import rpc

    registry = _registry()
    groups = rpc.AssociationGroups()
    port = winaio.CompletionPort(1)
    received = rpc.RequestReceived

    class Conn:
        def __init__(self, sock: socket.socket) -> None:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            self.file = winaio.Socket(sock.fileno(), overlapped=True, sock=sock)
            self.file.associate(port, self)
            self.file.set_completion_modes(True, True)
            self.buf = bytearray(65536)
            self.view = memoryview(self.buf)
            self.ov = winaio.Overlapped()
            self.c: Any = rpc.ServerConnection(registry, assoc_groups=groups)

        def read(self) -> None:
            # Immediate completions (skip_port_on_success) are handled inline, in a loop.
            while self.file.start_read(self.buf, self.ov):
                if not self.on_read(self.ov.information):
                    return

        def on_read(self, n: int) -> bool:
            c = self.c
            if n == 0:
                c.close()
                self.file.close()
                return False
            c.receive_data(bytes(self.view[:n]))
            out = []
            while True:
                ev = c.next_event()
                if ev is rpc.NEED_DATA:
                    break
                if type(ev) is received:
                    out.append(c.send_response(ev.call_id, ev.stub))
            pending = c.data_to_send()
            if pending:
                out.append(pending)
            if out:
                self.sock.sendall(b"".join(out))  # loopback: never blocks at these sizes
            return True

    def worker() -> None:
        while True:
            _, packets = port.get_many(64)
            for p in packets:
                conn = p.key
                if p.status == 0 and conn.on_read(p.bytes_transferred):
                    conn.read()

    winaio.start_thread(worker)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    print(lsock.getsockname()[1], flush=True)
    while True:
        s, _ = lsock.accept()
        Conn(s).read()


def serve_runtime(form: str) -> None:
    """The full server runtime: NDR decode of EchoData's [in], manager, NDR encode, reply."""
    from winaio import rpc

    proc = rpc.Procedure(
        "EchoData",
        0,
        [
            rpc.Param("len", rpc.ULONG),
            rpc.Param("in_data", rpc.ConformantArray(rpc.BYTE, size_is="len")),
            rpc.Param("out_data", rpc.ConformantArray(rpc.BYTE, size_is="len"), rpc.OUT),
        ],
    )
    iface = rpc.Interface("echo", IFACE_UUID, (1, 0), [proc])

    @rpc.async_manager
    def echo_async(call: Any, len: int, in_data: bytes) -> None:
        call.complete(in_data)

    def echo_plain(len: int, in_data: bytes) -> bytes:
        return in_data

    executor: Any = None  # the server's default
    if form == "tpe":
        import concurrent.futures

        executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="tpe")
    elif form == "pool":
        import winaio

        executor = winaio.ThreadPool()  # concurrency = number of processors
    if form in ("thread", "tpe", "pool"):
        manager: Any = echo_plain
    else:
        manager = {"async": echo_async, "inline": rpc.inline(echo_plain)}[form]
    server = rpc.Server(executor=executor)
    server.register_interface(iface, {"EchoData": manager})
    binding = server.use_protseq("ncacn_ip_tcp")
    server.listen()  # before the port is announced: the client's first call finds it listening
    print(binding.endpoint, flush=True)
    server.wait()


def serve_raw() -> None:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    print(lsock.getsockname()[1], flush=True)

    def echo(s: socket.socket) -> None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = s.recv(65536)
            if not data:
                return
            s.sendall(data)

    while True:
        s, _ = lsock.accept()
        threading.Thread(target=echo, args=(s,), daemon=True).start()


# -- client ------------------------------------------------------------------------------------


def _bind_bytes() -> bytes:
    from winaio import rpc

    client = rpc.ClientConnection()
    el = rpc.ContextElement(0, rpc.SyntaxId(IFACE_UUID, 1, 0), (rpc.NDR20_SYNTAX,))
    return client.bind([el], conc_mpx=True)


def _recv_exactly(s: socket.socket, n: int) -> None:
    view = memoryview(bytearray(n))
    got = 0
    while got < n:
        k = s.recv_into(view[got:])
        if not k:
            raise ConnectionError("server closed")
        got += k


def _frames(first_call_id: int, count: int, stub: bytes) -> bytes:
    pack = REQ.pack
    n = len(stub)
    return b"".join(
        pack(5, 0, 0, 3, 0x10, 24 + n, 0, first_call_id + i, n, 0, 0) + stub for i in range(count)
    )


def drive(
    port: int, seconds: float, depth: int, rpc_bind: bool, ndr: bool = False
) -> dict[str, float]:
    stub = NDR_STUB if ndr else STUB
    reply = 24 + (len(STUB) + 4 if ndr else len(STUB))
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)  # a server answering something else (a fault) fails the row, never hangs
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    call_id = 1
    if rpc_bind:
        s.sendall(_bind_bytes())
        hdr = s.recv(16, socket.MSG_PEEK)
        (frag,) = struct.unpack_from("<H", hdr, 8)
        _recv_exactly(s, frag)
        call_id = 2
    lat: list[float] = []
    calls = 0
    warm_end = time.perf_counter() + 0.3
    end = warm_end + seconds
    while True:
        batch = _frames(call_id, depth, stub)
        call_id += depth
        t0 = time.perf_counter()
        s.sendall(batch)
        _recv_exactly(s, reply * depth)
        t1 = time.perf_counter()
        if t0 >= warm_end:
            calls += depth
            lat.append(t1 - t0)
        if t1 >= end:
            break
    s.close()
    lat.sort()
    return {
        "calls_per_s": calls / seconds,
        "p50_us": lat[len(lat) // 2] * 1e6,
        "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--serve",
        choices=[
            "asyncio", "uvloop", "iocp", "raw", "runtime-inline", "runtime-async",
            "runtime-thread", "runtime-tpe", "runtime-pool",
        ],
    )  # fmt: skip
    ap.add_argument(
        "--engines", default="raw,uvloop,asyncio,iocp,runtime-inline,runtime-async,runtime-thread"
    )
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.serve == "asyncio":
        return serve_asyncio(False)
    if args.serve == "uvloop":
        return serve_asyncio(True)
    if args.serve == "iocp":
        return serve_iocp()
    if args.serve == "raw":
        return serve_raw()
    if args.serve and args.serve.startswith("runtime-"):
        return serve_runtime(args.serve.split("-")[1])
    rows: dict[str, dict[str, list[float]]] = {}
    load_start = os.getloadavg()
    for _ in range(args.rounds):
        for engine in args.engines.split(","):
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", engine], stdout=subprocess.PIPE, text=True
            )
            try:
                assert proc.stdout is not None
                port = int(proc.stdout.readline())
                for depth in (1, 64):
                    r = drive(
                        port, args.seconds, depth, engine != "raw", engine.startswith("runtime")
                    )
                    row = rows.setdefault(f"{engine}_C{depth}", {})
                    for k, v in r.items():
                        row.setdefault(k, []).append(v)
            except Exception as exc:  # an anchor that fails marks its row unavailable
                rows.setdefault(f"{engine}_unavailable", {}).setdefault(str(exc), [])
            finally:
                proc.kill()
                proc.wait()
    medians = {
        name: {k: round(statistics.median(v), 1) for k, v in row.items() if v}
        for name, row in rows.items()
    }
    print(
        json.dumps(
            {
                "bench": "rpc_engine",
                "machine": {
                    "node": platform.node(),
                    "kernel": platform.release(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "commit": commit_label(),
                },
                "noise": {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
                "seconds": args.seconds,
                "rounds": args.rounds,
                "rows": medians,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
