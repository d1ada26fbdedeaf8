"""64-byte echo over loopback: winaio's overlapped sockets and completion port vs asyncio/uvloop.

Not a test and not run in CI: it prints one JSON document on stdout (progress on stderr). The
method is ``shared/spec/perf-anchors.md`` section 0: interleaved rounds, medians, ratios, each
server in its own process, every client in its own process too.

Servers (``--serve KIND``, one process each, one port printed on stdout):

- ``winaio``: winaio overlapped sockets associated with one completion port, one port thread
  (``get_many``) echoing: a WSARecv (``start_read``) per connection; each completion sends the
  bytes back (``start_write``) and reads again. ``FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`` is on
  (``set_completion_modes``), as in every high-rate IOCP server: what completes inside the call
  is handled inline, without a packet. Connections are accepted by a plain thread.
- ``asyncio`` / ``uvloop``: an ``asyncio.Protocol`` echo server (``data_received`` ->
  ``transport.write``) on the default event loop / on uvloop.
- ``raw``: a blocking socket echo, one thread per connection (the ceiling).

Clients (``--client KIND``): ``winaio`` (the same overlapped-socket + completion-port code,
one thread: send with ``start_write``, then ``start_read`` the echo, ``get_many``) drives the
winaio, asyncio and uvloop servers - so those three rows differ only by their server - and
``raw`` (blocking sockets, one thread per connection) drives the raw server.

Workloads: ``c1``: one connection, ping-pong, the latency of every call (send to the last byte
of the echo) -> p50 and p99 in microseconds; ``c64``: 64 connections, one call in flight on each
-> calls per second.

A missing anchor (uvloop not installed) or one that crashes (a signal, an exit status) makes its
row ``{"unavailable": "<why>"}``; the run goes on. ``targets`` holds the issue's targets with the
measured ratios: C=1 p50 <= 1.1x asyncio Protocol's, C=64 calls/s >= 1.0x asyncio Protocol's.

Usage: ``.venv/bin/python benchmarks/bench_sockets.py [--seconds 2] [--rounds 3]
[--servers winaio,asyncio,uvloop,raw] [--output FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

MSG = bytes(range(64))
SIZE = len(MSG)
CONNS = 64
SERVERS = ("winaio", "asyncio", "uvloop", "raw")
CLIENT_OF = {"winaio": "winaio", "asyncio": "winaio", "uvloop": "winaio", "raw": "raw"}


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# -- servers -----------------------------------------------------------------------------------


def _listener() -> socket.socket:
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(256)
    print(lsock.getsockname()[1], flush=True)
    return lsock


def serve_winaio() -> None:
    import winaio

    port = winaio.CompletionPort(1)

    class Conn:
        __slots__ = ("file", "ov", "rbuf", "view", "wov")

        def __init__(self, sock: socket.socket) -> None:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.file = winaio.Socket(sock.fileno(), overlapped=True, sock=sock)
            self.file.associate(port, self)
            self.file.set_completion_modes(True, True)
            self.rbuf = bytearray(4096)
            self.view = memoryview(self.rbuf)
            self.ov = winaio.Overlapped()
            self.wov = winaio.Overlapped()

        def read(self) -> None:
            # Immediate completions (skip_port_on_success) are handled inline, in a loop.
            while self.file.start_read(self.rbuf, self.ov):
                if not self.echo(self.ov.information):
                    return

        def echo(self, n: int) -> bool:
            if n == 0:
                self.file.close()
                return False
            # 64 bytes on loopback: the send completes inside the call (skip mode: no packet).
            self.file.start_write(self.view[:n], self.wov)
            return True

    def worker() -> None:
        while True:
            _, packets = port.get_many(64)
            for p in packets:
                conn = p.key
                # Reads only: a send that pended (never on loopback at 64 bytes) is ignored.
                if p.overlapped is conn.ov and p.status == 0 and conn.echo(p.bytes_transferred):
                    conn.read()

    winaio.start_thread(worker)
    lsock = _listener()
    while True:
        s, _ = lsock.accept()
        Conn(s).read()


def serve_asyncio(use_uvloop: bool) -> None:
    import asyncio

    if use_uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lsock = _listener()
        server = await loop.create_server(Echo, sock=lsock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def serve_raw() -> None:
    def conn(s: socket.socket) -> None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = s.recv(4096)
            if not data:
                s.close()
                return
            s.sendall(data)

    lsock = _listener()
    while True:
        s, _ = lsock.accept()
        threading.Thread(target=conn, args=(s,), daemon=True).start()


# -- clients -----------------------------------------------------------------------------------


def client_winaio(port_no: int, conns: int, seconds: float) -> dict[str, Any]:
    import winaio

    port = winaio.CompletionPort(1)
    clock = time.perf_counter_ns

    class Conn:
        __slots__ = ("file", "got", "ov", "rbuf", "started", "view", "wov")

        def __init__(self) -> None:
            sock = socket.create_connection(("127.0.0.1", port_no))
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.file = winaio.Socket(sock.fileno(), overlapped=True, sock=sock)
            self.file.associate(port, self)
            self.file.set_completion_modes(True, True)
            self.rbuf = bytearray(SIZE)
            self.view = memoryview(self.rbuf)
            self.ov = winaio.Overlapped()
            self.wov = winaio.Overlapped()
            self.got = 0
            self.started = 0

        def call(self) -> None:
            self.started = clock()
            self.got = 0
            self.file.start_write(MSG, self.wov)
            self.read()

        def read(self) -> bool:
            """Read the rest of the echo; True when it is complete (inside the call)."""
            while self.file.start_read(self.view[self.got :], self.ov):
                self.got += self.ov.information
                if self.got == SIZE:
                    return True
                if not self.ov.information:
                    raise ConnectionError("the server closed the connection")
            return False

    clients = [Conn() for _ in range(conns)]
    latencies: list[int] = []
    calls = 0
    done = list(clients)
    deadline = clock() + int(seconds * 1e9)
    t0 = clock()
    while True:
        now = clock()
        for c in done:
            if c.started:
                latencies.append(now - c.started)
                calls += 1
        if now >= deadline:
            break
        ready = []
        for c in done:
            c.call()
            if c.got == SIZE:  # the echo was already there (never at C=1 in practice)
                ready.append(c)
        done = ready
        if done:
            continue
        _, packets = port.get_many(conns)
        for p in packets:
            c = p.key
            if p.overlapped is not c.ov:
                continue  # a send that pended (never here)
            if p.status:
                raise ConnectionError(f"read failed: {p.error}")
            c.got += p.bytes_transferred
            if c.got == SIZE or c.read():
                done.append(c)
    elapsed = (clock() - t0) / 1e9
    for c in clients:
        c.file.close()
    return _result(latencies, calls, elapsed)


def client_raw(port_no: int, conns: int, seconds: float) -> dict[str, Any]:
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    per: list[list[int]] = []

    def run(samples: list[int]) -> None:
        s = socket.create_connection(("127.0.0.1", port_no))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            t = clock()
            if t >= deadline:
                break
            s.sendall(MSG)
            got = 0
            while got < SIZE:
                chunk = s.recv(SIZE - got)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                got += len(chunk)
            samples.append(clock() - t)
        s.close()

    t0 = clock()
    threads = []
    for _ in range(conns):
        samples: list[int] = []
        per.append(samples)
        threads.append(threading.Thread(target=run, args=(samples,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = (clock() - t0) / 1e9
    latencies = [x for samples in per for x in samples]
    return _result(latencies, len(latencies), elapsed)


def _result(latencies: list[int], calls: int, elapsed: float) -> dict[str, Any]:
    latencies.sort()
    pick = lambda f: round(latencies[int(f * (len(latencies) - 1))] / 1000, 1)  # noqa: E731
    return {
        "calls": calls,
        "seconds": round(elapsed, 3),
        "calls_per_s": round(calls / elapsed),
        "p50_us": pick(0.5) if latencies else None,
        "p99_us": pick(0.99) if latencies else None,
    }


# -- the driver --------------------------------------------------------------------------------


def _start_server(kind: str) -> tuple[subprocess.Popen[str] | None, int | str]:
    if kind == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError as exc:
            return None, f"uvloop not installed ({exc})"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        return None, _died(proc.returncode, err)
    return proc, int(line)


def _died(code: int | None, err: str) -> str:
    if code is not None and code < 0:
        return f"died with {signal.Signals(-code).name}"
    tail = err.strip().splitlines()[-1:] if err else []
    return f"exit status {code}: {' '.join(tail)}"


def _run_client(kind: str, port_no: int, conns: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--client", kind, "--port", str(port_no),
         "--conns", str(conns), "--seconds", str(seconds)],
        capture_output=True, text=True, timeout=seconds * 10 + 60,
    )  # fmt: skip
    if out.returncode != 0:
        return {"unavailable": "client " + _died(out.returncode, out.stderr)}
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _measure(kind: str, seconds: float) -> dict[str, Any]:
    proc, port_no = _start_server(kind)
    if proc is None:
        return {"unavailable": str(port_no)}
    assert isinstance(port_no, int)
    try:
        client = CLIENT_OF[kind]
        c1 = _run_client(client, port_no, 1, seconds)
        c64 = _run_client(client, port_no, CONNS, seconds)
        if proc.poll() is not None:
            _, err = proc.communicate(timeout=10)
            return {"unavailable": "server " + _died(proc.returncode, err)}
        if "unavailable" in c1 or "unavailable" in c64:
            return {"unavailable": c1.get("unavailable") or c64.get("unavailable")}
        return {"c1": c1, "c64": c64}
    finally:
        proc.kill()
        proc.wait(10)


def _median(runs: list[dict[str, Any]], workload: str, key: str) -> float | None:
    values = [r[workload][key] for r in runs if "unavailable" not in r]
    return statistics.median(values) if values else None


def _machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, cwd=os.path.dirname(__file__) or ".",
        ).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    return {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "commit": commit,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", choices=SERVERS)
    ap.add_argument("--client", choices=("winaio", "raw"))
    ap.add_argument("--port", type=int)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--output", default=None, help="also write the JSON to this file")
    args = ap.parse_args()
    if args.serve:
        if args.serve == "winaio":
            serve_winaio()
        elif args.serve in ("asyncio", "uvloop"):
            serve_asyncio(args.serve == "uvloop")
        else:
            serve_raw()
        return
    if args.client:
        fn = client_winaio if args.client == "winaio" else client_raw
        print(json.dumps(fn(args.port, args.conns, args.seconds)))
        return

    servers = [s for s in args.servers.split(",") if s]
    machine = _machine()
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in servers}
    for r in range(args.rounds):
        for kind in servers:
            result = _measure(kind, args.seconds)
            runs[kind].append(result)
            log(f"round {r + 1}/{args.rounds} {kind}: {json.dumps(result)}")
    rows: dict[str, Any] = {}
    for kind in servers:
        ok = [r for r in runs[kind] if "unavailable" not in r]
        if not ok:
            rows[kind] = {"unavailable": runs[kind][-1]["unavailable"], "client": CLIENT_OF[kind]}
            continue
        rows[kind] = {
            "client": CLIENT_OF[kind],
            "c1_p50_us": _median(ok, "c1", "p50_us"),
            "c1_p99_us": _median(ok, "c1", "p99_us"),
            "c64_calls_per_s": _median(ok, "c64", "calls_per_s"),
            "rounds": len(ok),
        }
    targets: dict[str, Any] = {}
    win, aio = rows.get("winaio", {}), rows.get("asyncio", {})
    if "c1_p50_us" in win and "c1_p50_us" in aio:
        ratio = win["c1_p50_us"] / aio["c1_p50_us"]
        targets["c1_p50_vs_asyncio_protocol"] = {
            "target": "<= 1.1",
            "ratio": round(ratio, 3),
            "met": ratio <= 1.1,
        }
        ratio = win["c64_calls_per_s"] / aio["c64_calls_per_s"]
        targets["c64_calls_per_s_vs_asyncio_protocol"] = {
            "target": ">= 1.0",
            "ratio": round(ratio, 3),
            "met": ratio >= 1.0,
        }
    machine["loadavg_after"] = os.getloadavg()
    doc = {
        "benchmark": "bench_sockets",
        "message_bytes": SIZE,
        "c64_connections": CONNS,
        "seconds": args.seconds,
        "machine": machine,
        "rows": rows,
        "targets": targets,
        "runs": runs,
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
