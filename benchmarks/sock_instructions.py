"""User-space instructions per pended socket receive, counted with callgrind: the noise-free
measure behind the socket path's decisions (issue 9, "Sockets"; ``docs/design.md``, "The
pended socket receive" and "Where a socket echo server's CPU goes"). Prints one JSON object.

Two workloads, each on a completion port with one port thread (the calling thread, which
leads the io_uring ring), over loopback TCP, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS set:

- ``qd1``: one connection; a receive that pends (nothing there yet), the peer's 64-byte send,
  the packet dequeued (``get_many``): the C=1 server's receive path, wait included.
- ``echo1`` / ``echo1_win32`` (not run by default): the C=1 echo server's work per echo, the
  ``qd1`` receive plus the echo's send and the peer's read, through the core (``start_read``,
  ``get_many``, ``start_write``) or through ``winaio.win32`` as ``bench_sockets``'s Win32 server
  calls it (WSARecv, GetQueuedCompletionStatusEx, WSASend, WSAGetLastError).
- ``c64``: 64 connections; every peer sends 64 bytes, the port thread dequeues batches of 64
  packets and, per packet, echoes the bytes (``start_write``, inside the call) and issues the
  next receive (which pends: the peer has not answered yet); the peers read their echoes. The
  C=64 echo server's work per echo (plus the peers' own send and receive).
- ``c64_asyncio`` (not run by default): the same rounds against the anchor, an
  ``asyncio.Protocol`` whose ``data_received`` writes the data back (``sock_anchors``'
  ``asyncio_protocol``) on the default (selector) event loop run by the calling thread until
  the round's 64 echoes are written: what the user side of winaio's echo compares with.

Each workload runs twice under ``valgrind --tool=callgrind --separate-threads=yes`` with a
different number of iterations; the main thread's instruction count difference over the
iteration difference is the cost per iteration, without start-up (imports, connections,
warm-up). The ring thread's count is reported the same way (it must stay near 0: the port
thread reaps), and the sum over every thread of the process (``all_threads``). Syscalls'
kernel time is not counted (``bench_sockets.py`` reports the server's user and kernel CPU per
echo).

Usage: ``.venv/bin/python benchmarks/sock_instructions.py [--workloads qd1,c64]`` (valgrind
from apt), or ``--run qd1|c64 --iterations N`` for one in-process run (what valgrind runs; it
prints the wall-clock time per iteration on stderr), or ``--opcodes qd1|c64 [--iterations N]``
for the interpreter opcodes per iteration unit on every thread of the process, thread by thread
and function by function (``sys.settrace`` with opcode events, installed on every thread before
the backend starts: ``Opcodes``; one JSON object: the all-threads total per unit, then each
thread's, the costliest functions first). Only the all-threads total compares between trees:
which thread reaps moves with the design (the port thread leading the ring, the ring thread).
The ring thread's watch is held off as under valgrind unless ``--free-ring`` (then the ring
thread takes the ring over from the traced, slow port thread and reaps part of the echoes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from threading import get_ident
from typing import Any

WORKLOADS = ("qd1", "c64", "echo1", "echo1_win32", "c64_asyncio")
#: What a run measures unless ``--workloads`` says otherwise.
DEFAULT_WORKLOADS = ("qd1", "c64")
#: Iterations of the two runs per workload (rounds of 64 echoes for c64).
ITERATIONS = {
    "qd1": (1000, 3000),
    "c64": (20, 60),
    "echo1": (1000, 4000),
    "echo1_win32": (1000, 4000),
    "c64_asyncio": (20, 60),
}
CONNECTIONS = 64
MSG = b"x" * 64
WARMUP = {"qd1": 500, "c64": 20, "echo1": 500, "echo1_win32": 500, "c64_asyncio": 20}
#: The workloads whose unit is a C=64 echo (rounds of ``CONNECTIONS`` echoes).
C64 = ("c64", "c64_asyncio")


def _tcp_pair(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    """A connected loopback pair through ``listener`` (the peer, the accepted end), both
    TCP_NODELAY (as the bench's clients and servers)."""
    peer = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    for s in (peer, conn):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return peer, conn


def _timed(
    step: Callable[[], None], warmup: int, iterations: int, window: Callable[[bool], None] | None
) -> float:
    """Seconds per ``step()`` over ``iterations`` after ``warmup`` untimed ones; ``window``
    (the instruction counter's) is open around the timed ones only."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    if window is not None:
        window(True)
    try:
        for _ in range(iterations):
            step()
    finally:
        if window is not None:
            window(False)
    return (time.perf_counter() - start) / iterations


def _pair(listener: socket.socket, port: Any, key: Any) -> tuple[Any, socket.socket]:
    import winaio

    peer, conn = _tcp_pair(listener)
    conn.setblocking(False)
    f = winaio.Socket(conn.fileno(), overlapped=True, sock=conn)
    f.set_completion_modes(True, True)
    f.associate(port, key)
    return f, peer


def run(
    workload: str,
    iterations: int,
    warmup: int | None = None,
    window: Callable[[bool], None] | None = None,
) -> float:
    """Run ``workload`` in this process; returns the seconds per iteration (after ``warmup``
    iterations, by default ``WARMUP``). Closes what it opened. ``window``: called with True
    before the measured iterations and with False after them (``Opcodes.count``)."""
    if workload == "c64_asyncio":
        return _run_asyncio(iterations, WARMUP[workload] if warmup is None else warmup, window)
    import winaio

    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = winaio.CompletionPort(1)
    opened: list[Any] = [listener]
    try:
        if workload == "qd1":
            f, peer = _pair(listener, port, None)
            opened += [f, peer]
            buf = bytearray(65536)
            ov = winaio.Overlapped()

            def step() -> None:
                if not f.start_read(buf, ov):
                    peer.send(MSG)
                    port.get_many(64)
                else:  # (data there: cannot happen, the peer sends after the receive)
                    raise RuntimeError("the receive did not pend")

        elif workload == "echo1":
            f, peer = _pair(listener, port, None)
            opened += [f, peer]
            buf = bytearray(65536)
            view = memoryview(buf)
            rov, wov = winaio.Overlapped(), winaio.Overlapped()
            back = bytearray(256)

            def step() -> None:
                if f.start_read(buf, rov):
                    raise RuntimeError("the receive did not pend")
                peer.send(MSG)
                _, packets = port.get_many(64)
                for packet in packets:
                    f.start_write(view[: packet.bytes_transferred], wov)
                peer.recv_into(back)

        elif workload == "echo1_win32":
            step, more = _echo1_win32(listener)
            opened += more
        else:
            conns: list[list[Any]] = []
            for _ in range(CONNECTIONS):
                entry: list[Any] = []
                f, peer = _pair(listener, port, entry)
                opened += [f, peer]
                buf = bytearray(65536)
                entry += [f, peer, buf, memoryview(buf), winaio.Overlapped(), winaio.Overlapped()]
                conns.append(entry)
                f.start_read(buf, entry[4])
            back = bytearray(256)

            def step() -> None:
                for _, peer, _, _, _, _ in conns:
                    peer.send(MSG)
                got = 0
                while got < CONNECTIONS:
                    _, packets = port.get_many(64)
                    got += len(packets)
                    for packet in packets:
                        f, _, buf, view, rov, wov = packet.key
                        f.start_write(view[: packet.bytes_transferred], wov)
                        f.start_read(buf, rov)
                for _, peer, _, _, _, _ in conns:
                    peer.recv_into(back)

        return _timed(step, WARMUP[workload] if warmup is None else warmup, iterations, window)
    finally:
        for thing in opened:
            thing.close()  # a pending receive completes aborted: its packet is dropped below
        port.close()


def _run_asyncio(iterations: int, warmup: int, window: Callable[[bool], None] | None) -> float:
    """``c64_asyncio``: ``run``'s c64 rounds against an asyncio Protocol echo (module
    docstring); the loop runs until the round's echoes are written (``loop.stop``)."""
    import asyncio

    loop = asyncio.new_event_loop()
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    peers: list[socket.socket] = []
    transports: list[Any] = []
    echoed = [0]

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.write = transport.write
            transports.append(transport)

        def data_received(self, data: bytes) -> None:
            self.write(data)
            echoed[0] += 1
            if echoed[0] == CONNECTIONS:
                loop.stop()

    try:
        for _ in range(CONNECTIONS):
            peer, conn = _tcp_pair(listener)
            peers.append(peer)
            loop.run_until_complete(loop.connect_accepted_socket(Echo, conn))
        back = bytearray(256)

        def step() -> None:
            echoed[0] = 0
            for peer in peers:
                peer.send(MSG)
            loop.run_forever()
            for peer in peers:
                peer.recv_into(back)

        return _timed(step, warmup, iterations, window)
    finally:
        for transport in transports:
            transport.close()
        for peer in peers:
            peer.close()
        listener.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


def _echo1_win32(listener: socket.socket) -> tuple[Any, list[Any]]:
    """``echo1`` through ``winaio.win32``: the connection's SOCKET handle on a port, skip mode."""
    import winaio
    from winaio import win32 as w
    from winaio.win32 import _base

    peer, conn = _tcp_pair(listener)
    conn.setblocking(False)
    hport = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 1)
    s = _base.HANDLE_TABLE.insert(winaio.Socket(conn.fileno(), overlapped=True, sock=conn))
    w.CreateIoCompletionPort(s, hport, 1, 0)
    w.SetFileCompletionNotificationModes(s, 3)  # skip the port and the event on success
    buf = bytearray(65536)
    view, bufs, sbufs = memoryview(buf), [buf], [b""]
    rov, wov = w.OVERLAPPED(), w.OVERLAPPED()
    flags, nbytes, removed = w.Ref(0), w.Ref(0), w.Ref(0)
    entries = [w.OVERLAPPED_ENTRY() for _ in range(64)]
    back = bytearray(256)

    def step() -> None:
        flags.value = 0
        if w.WSARecv(s, bufs, 1, nbytes, flags, rov, None) == 0:
            raise RuntimeError("the receive did not pend")
        if w.WSAGetLastError() != w.WSA_IO_PENDING:
            raise RuntimeError(f"WSARecv: {w.WSAGetLastError()}")
        peer.send(MSG)
        w.GetQueuedCompletionStatusEx(hport, entries, 64, removed, w.INFINITE, False)
        for i in range(removed.value):
            entry = entries[i]
            sbufs[0] = view[: entry.dwNumberOfBytesTransferred]
            w.WSASend(s, sbufs, 1, nbytes, 0, wov, None)
        peer.recv_into(back)

    class Handles:
        def close(self) -> None:
            w.closesocket(s)
            w.CloseHandle(hport)

    return step, [peer, Handles()]


class Opcodes:
    """Interpreter opcodes per thread and function, counted by a ``sys.settrace`` function
    with opcode events on every thread of the process: :meth:`install` sets it on the calling
    thread and, through ``threading.settrace``, on every thread started afterwards (CPython
    3.11 cannot set a trace function on a thread already running; 3.12's
    ``threading.settrace_all_threads`` could, but the rule here is the same on every version:
    install before the backend starts its threads). Every thread of the process runs its
    Python through ``threading.Thread`` (the port thread is the main thread; the ring thread,
    the pool's workers, timers...), so every thread is traced; :meth:`untraced` names the
    threads alive without the trace function (started before :meth:`install`), and
    :func:`opcodes` refuses to report a count with any: a per-echo count of some threads only
    is what misled before (the port thread's count moved 802 -> 792 with the receive slot
    while the all-threads sum moved 1099 -> 931: docs/design.md, "The receive slot...").

    Counting is on between ``count(True)`` and ``count(False)`` (``run``'s measured
    iterations); opcodes of functions defined in ``exclude`` (the workload's own loop, the
    echo server's code and the peers') are not counted."""

    def __init__(self, exclude: str) -> None:
        self.exclude = exclude
        self.counting = False
        #: thread ident -> its name, for every thread the trace function ran on
        self.traced: dict[int, str] = {}
        #: thread ident -> function -> opcodes counted
        self.counts: dict[int, dict[str, int]] = {}

    def install(self) -> None:
        threading.settrace(self._trace)
        sys.settrace(self._trace)

    def uninstall(self) -> None:
        """Stop counting; no new thread is traced and the calling thread's trace function is
        removed (the other threads keep theirs, which count nothing any more)."""
        self.counting = False
        threading.settrace(None)  # type: ignore[arg-type]  # (typeshed wants a function)
        sys.settrace(None)

    def count(self, on: bool) -> None:
        self.counting = on

    def untraced(self) -> list[str]:
        """The names of the threads alive that the trace function never ran on."""
        return sorted(t.name for t in threading.enumerate() if t.ident not in self.traced)

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        ident = get_ident()
        if ident not in self.traced:
            self.traced[ident] = threading.current_thread().name
            self.counts[ident] = {}
        if event == "opcode" and self.counting:
            code = frame.f_code
            if code.co_filename != self.exclude:
                counts = self.counts[ident]
                name = f"{os.path.basename(code.co_filename)}:{code.co_qualname}"
                counts[name] = counts.get(name, 0) + 1
        return self._trace

    def report(self, unit: int) -> dict[str, Any]:
        """Opcodes per unit: the total over all threads, each thread's total and costliest
        functions (threads keyed by name; a thread that ran no counted opcode is listed with
        0: it was traced), and the costliest functions over all threads."""
        threads: dict[str, Any] = {}
        merged: dict[str, int] = {}
        for ident, counts in sorted(self.counts.items(), key=lambda kv: -sum(kv[1].values())):
            name = self.traced[ident]
            key = name if name not in threads else f"{name}#{ident}"
            threads[key] = {
                "total": round(sum(counts.values()) / unit, 1),
                "functions": _costliest(counts, unit),
            }
            for fn, n in counts.items():
                merged[fn] = merged.get(fn, 0) + n
        return {
            "total": round(sum(merged.values()) / unit, 1),
            "threads": threads,
            "functions": _costliest(merged, unit),
        }


def _costliest(counts: dict[str, int], unit: int) -> dict[str, float]:
    per = sorted(((n / unit, name) for name, n in counts.items()), reverse=True)
    return {name: round(n, 1) for n, name in per if n >= 0.5}


def opcodes(workload: str, iterations: int, tracer: Opcodes, held: bool = True) -> dict[str, Any]:
    """Interpreter opcodes per unit (an echo for c64, a pended receive for qd1) over
    ``iterations`` after the warm-up, on every thread of the process (``tracer`` installed
    before the backend started: ``main``), per thread and per function. Raises RuntimeError if
    a thread alive at the end was never traced (its opcodes would be missing). ``held``: the
    ring thread's watch was held off (``_hold_the_ring``), for the note."""
    run(workload, iterations, window=tracer.count)
    missing = tracer.untraced()
    tracer.uninstall()
    if missing:
        raise RuntimeError(f"threads not traced (started before the tracer): {missing}")
    unit = iterations * (CONNECTIONS if workload in C64 else 1)
    return {
        "workload": workload,
        "per": "pended receive" if workload == "qd1" else "echo",
        "note": "all threads of the process; the workload's own loop (the echo server's code "
        "and the peers') excluded; "
        + (
            "the ring thread's watch held at 100 s (_hold_the_ring)"
            if held
            else "the ring thread free to take the ring over from the slow traced port thread"
        ),
        "iterations": iterations,
        **tracer.report(unit),
    }


def _hold_the_ring(hold: bool = True) -> None:
    """Start the process's backend. In the valgrind child (and under ``--opcodes`` unless
    ``--free-ring``): the ring thread's watch must not take the ring over while callgrind (the
    tracer) slows this thread down (it would reap in its place): a watch of 100 s, set once
    the leaders' poke is armed (the ring thread's first round)."""
    from winaio import _runtime

    backend: Any = _runtime.backend()
    if hold and hasattr(backend, "_lead"):
        # (the module whose loop reads them: ``backend`` until 3b0fb6b moved the loop out,
        # after which this hold set a name nobody read - review8)
        import winaio._backends.uring.ringthread as ringthread

        ringthread.WATCH_MIN = ringthread.WATCH_MAX = 100.0
        while backend._lead.closed:
            time.sleep(0.01)


def _totals(prefix: Path) -> dict[int, int]:
    """Instructions per thread (callgrind's ``-NN`` files: 1 is the main thread)."""
    out = {}
    for path in prefix.parent.glob(prefix.name + "-*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                out[int(path.name.rsplit("-", 1)[1])] = int(line.split()[1])
                break
    return out


def measure(workload: str, valgrind: str, workdir: Path) -> dict[str, Any]:
    low, high = ITERATIONS[workload]
    counts = []
    for n in (low, high):
        prefix = workdir / f"cg.{workload}.{n}"
        subprocess.run(
            [
                valgrind, "--tool=callgrind", "--separate-threads=yes",
                f"--callgrind-out-file={prefix}", sys.executable, __file__,
                "--run", workload, "--iterations", str(n),
            ],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        counts.append(_totals(prefix))
    per = high - low
    if workload in C64:
        per *= CONNECTIONS
    main = (counts[1].get(1, 0) - counts[0].get(1, 0)) / per
    ring = (counts[1].get(2, 0) - counts[0].get(2, 0)) / per
    every = (sum(counts[1].values()) - sum(counts[0].values())) / per
    unit = "pended receive" if workload == "qd1" else "echo"
    return {
        "workload": workload,
        "per": unit,
        "main_thread": round(main),
        "ring_thread": round(ring),
        "all_threads": round(every),
    }


def _commit() -> str:
    git = ["git", "rev-parse", "--short", "HEAD"]
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.run(git, capture_output=True, text=True, cwd=here).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS))
    parser.add_argument("--run", choices=WORKLOADS, help="(child) run one workload in-process")
    parser.add_argument(
        "--iterations", type=int, help="(--run: 1000, --opcodes: the workload's second run)"
    )
    parser.add_argument(
        "--opcodes", choices=WORKLOADS, help="opcodes per thread and function (settrace)"
    )
    parser.add_argument(
        "--free-ring",
        action="store_true",
        help="(--opcodes) leave the ring thread's watch alone: it reaps part of the echoes",
    )
    opts = parser.parse_args(argv)
    if opts.opcodes:
        tracer = Opcodes(exclude=__file__)
        tracer.install()  # before the backend starts its threads: every thread is traced
        _hold_the_ring(not opts.free_ring)  # traced, the port thread is slow too
        n = opts.iterations or ITERATIONS[opts.opcodes][1]
        print(json.dumps(opcodes(opts.opcodes, n, tracer, not opts.free_ring), indent=2))
        return 0
    if opts.run:
        if opts.run != "c64_asyncio":  # (no winaio backend in the anchor's process)
            _hold_the_ring()
        seconds = run(opts.run, opts.iterations or 1000)
        print(f"{opts.run}: {1e6 * seconds:.2f} us per iteration", file=sys.stderr)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print(json.dumps({"benchmark": "sock_instructions", "unavailable": "no valgrind"}))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(w, valgrind, Path(tmp)) for w in opts.workloads.split(",") if w]
    result = {
        "benchmark": "sock_instructions",
        "method": "callgrind instructions per thread, (I(n2) - I(n1)) / (n2 - n1)",
        "python": sys.version.split()[0],
        "commit": _commit(),
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
