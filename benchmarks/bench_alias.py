"""The cost of the Win32 alias layer: each common call shape through ``winaio.win32`` against the
core call it wraps, in nanoseconds per call. Prints one JSON object (progress on stderr).

Issue 9 asks that the common shapes of ReadFile / WriteFile / GetQueuedCompletionStatus(Ex) /
WSARecv / WSASend cost at most a fifth more than the core calls they wrap (``ratio`` =
win32 / core <= 1.2), and that the event and APC aliases stay close to the core too. Every pair is
measured in the same process, interleaved (win32, core, core, win32, ... with the order rotated
every round), and the median of ``--rounds`` rounds is reported: on a shared 2-vCPU VM only the
ratio is meaningful.

The shapes (everything completes inside the call, so this is the alias layer's own cost plus the
core's fast path, with no thread hand-off):

- ``read_port_qd1``: a 4 KiB page-cache read on an overlapped handle associated with a port, then
  one dequeue: ``ReadFile`` + ``GetQueuedCompletionStatusEx(1)`` vs ``File.start_read`` +
  ``CompletionPort.get_many(1)`` (bench_io's buffered QD1 loop without the clock).
- ``read_port_qd32``: 32 such reads, then one dequeue of 32 entries (the QD32 loop).
- ``gqcs``: ``GetQueuedCompletionStatus`` of one posted packet vs ``CompletionPort.get_many(1)``.
- ``wsasend`` / ``writefile_socket``: a 64-byte send on a connected overlapped socket that
  completes at once (``WSASend`` / ``WriteFile``) vs ``Socket.start_write``.
- ``wsarecv``: a 64-byte receive of data already queued (``WSARecv``) vs ``Socket.start_read``.
- ``set_event`` / ``wait_signaled``: ``SetEvent`` vs ``Event.set``; ``WaitForSingleObject`` on a
  signaled manual-reset event vs ``winaio.wait``.
- ``apc``: ``QueueUserAPC`` to the calling thread + its dispatch by ``SleepEx(0, TRUE)`` (batches
  of 100) vs ``winaio.queue_apc`` + ``winaio.sleep(0, alertable=True)``.

Usage: ``.venv/bin/python benchmarks/bench_alias.py [--rounds 7] [--n 20000]``
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_procs import commit_label

import winaio
from winaio import win32

BLOCK = 4096
TARGET_IO = 1.2  # issue 9: "at most a fifth more than the core calls they wrap"
IO_SHAPES = ("read_port_qd1", "read_port_qd32", "gqcs", "wsasend", "writefile_socket", "wsarecv")

#: A shape runs ``n`` calls and returns the seconds they took (setup and draining excluded).
Shape = Callable[[int], float]


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Files:
    """A small cached file, opened once through each API and associated with its own port."""

    def __init__(self, size: int = 8 << 20) -> None:
        fd, self.path = tempfile.mkstemp(prefix="winaio-bench-alias-")
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(size))
        with open(self.path, "rb") as f:  # into the page cache
            while f.read(1 << 20):
                pass
        self.blocks = size // BLOCK
        self.handle = win32.CreateFile(
            self.path,
            win32.GENERIC_READ,
            win32.FILE_SHARE_READ,
            None,
            win32.OPEN_EXISTING,
            win32.FILE_FLAG_OVERLAPPED,
            None,
        )
        self.hport = win32.CreateIoCompletionPort(self.handle, None, 1, 0)
        self.file, _ = winaio.open_file(
            self.path, read=True, write=False, disposition=win32.OPEN_EXISTING, overlapped=True
        )
        self.port = winaio.CompletionPort()
        self.file.associate(self.port, 1)
        self.mem = mmap.mmap(-1, 32 * BLOCK)
        whole = memoryview(self.mem)
        self.views = [whole[i * BLOCK : (i + 1) * BLOCK] for i in range(32)]

    def close(self) -> None:
        win32.CloseHandle(self.handle)
        win32.CloseHandle(self.hport)
        self.file.close()
        self.port.close()
        os.unlink(self.path)


def read_port_win32(files: Files, qd: int) -> Shape:
    ReadFile, gqcs = win32.ReadFile, win32.GetQueuedCompletionStatusEx
    handle, port, views, blocks = files.handle, files.hport, files.views, files.blocks
    ovs = [win32.OVERLAPPED() for _ in range(qd)]
    entries = [win32.OVERLAPPED_ENTRY() for _ in range(qd)]
    removed = win32.Ref(0)
    infinite = win32.INFINITE

    def run(n: int) -> float:
        k = 0
        start = time.perf_counter()
        for _ in range(n // qd):
            for i in range(qd):
                ov = ovs[i]
                ov.Offset = (k % blocks) * BLOCK
                k += 7
                ReadFile(handle, views[i], BLOCK, None, ov)
            gqcs(port, entries, qd, removed, infinite, False)
        return time.perf_counter() - start

    return run


def read_port_core(files: Files, qd: int) -> Shape:
    start_read, get_many = files.file.start_read, files.port.get_many
    views, blocks = files.views, files.blocks
    ovs = [winaio.Overlapped() for _ in range(qd)]

    def run(n: int) -> float:
        k = 0
        start = time.perf_counter()
        for _ in range(n // qd):
            for i in range(qd):
                ov = ovs[i]
                ov.offset = (k % blocks) * BLOCK
                k += 7
                start_read(views[i], ov)
            get_many(qd, None)
        return time.perf_counter() - start

    return run


def gqcs_win32(files: Files) -> Shape:
    gqcs = win32.GetQueuedCompletionStatus
    port = files.hport
    nbytes, key, ov = win32.Ref(0), win32.Ref(0), win32.Ref(None)
    infinite = win32.INFINITE
    core_port = win32_port_object(port)

    def run(n: int) -> float:
        for _ in range(n):
            core_port.post(64, 1, None)
        start = time.perf_counter()
        for _ in range(n):
            gqcs(port, nbytes, key, ov, infinite)
        return time.perf_counter() - start

    return run


def gqcs_core(files: Files) -> Shape:
    port = files.port
    get_many, post = port.get_many, port.post

    def run(n: int) -> float:
        for _ in range(n):
            post(64, 1, None)
        start = time.perf_counter()
        for _ in range(n):
            get_many(1, None)
        return time.perf_counter() - start

    return run


def win32_port_object(handle: int) -> winaio.CompletionPort:
    """The core port behind a port handle (to post packets without timing PostQueued...)."""
    from winaio._kernel._handles import HANDLE_TABLE

    port = HANDLE_TABLE.resolve(handle)[0]
    assert isinstance(port, winaio.CompletionPort)
    return port


class Sockets:
    """A connected loopback TCP pair: one overlapped socket per API, and their peers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        addr = self.listener.getsockname()
        self.handle = win32.WSASocket(
            win32.AF_INET, win32.SOCK_STREAM, win32.IPPROTO_TCP, None, 0, win32.WSA_FLAG_OVERLAPPED
        )
        win32.connect(self.handle, addr)
        self.peer_w, _ = self.listener.accept()
        self.sock = winaio.create_socket()
        self.sock.sock.setblocking(True)  # type: ignore[union-attr]
        self.sock.sock.connect(addr)  # type: ignore[union-attr]
        self.sock.sock.setblocking(False)  # type: ignore[union-attr]
        self.peer_c, _ = self.listener.accept()
        for peer in (self.peer_w, self.peer_c):
            peer.setblocking(False)

    @staticmethod
    def drain(peer: socket.socket, nbytes: int) -> None:
        buf = bytearray(1 << 16)
        while nbytes > 0:
            try:
                nbytes -= peer.recv_into(buf)
            except BlockingIOError:
                time.sleep(0.0005)

    @staticmethod
    def fill(peer: socket.socket, nbytes: int) -> None:
        peer.setblocking(True)
        peer.sendall(b"x" * nbytes)
        peer.setblocking(False)

    def close(self) -> None:
        win32.closesocket(self.handle)
        self.sock.close()
        for s in (self.peer_w, self.peer_c, self.listener):
            s.close()


_BATCH = 1000  # socket calls per batch: 64 KB, well inside the socket buffers


def send_win32(socks: Sockets, api: str) -> Shape:
    handle = socks.handle
    data = bytearray(64)
    ov = win32.OVERLAPPED()
    sent = win32.Ref(0)
    if api == "wsasend":
        WSASend = win32.WSASend
        bufs = [data]

        def call() -> Any:
            return WSASend(handle, bufs, 1, sent, 0, ov, None)

    else:
        WriteFile = win32.WriteFile

        def call() -> Any:
            return WriteFile(handle, data, 64, sent, ov)

    return _batched_send(call, socks.peer_w)


def send_core(socks: Sockets) -> Shape:
    start_write = socks.sock.start_write
    data = bytearray(64)
    ov = winaio.Overlapped()
    return _batched_send(lambda: start_write(data, ov), socks.peer_c)


def _batched_send(call: Callable[[], Any], peer: socket.socket) -> Shape:
    def run(n: int) -> float:
        total = 0.0
        for _ in range(max(1, n // _BATCH)):
            start = time.perf_counter()
            for _ in range(_BATCH):
                call()
            total += time.perf_counter() - start
            Sockets.drain(peer, 64 * _BATCH)
        return total

    return run


def recv_win32(socks: Sockets) -> Shape:
    WSARecv, handle = win32.WSARecv, socks.handle
    bufs = [bytearray(64)]
    ov = win32.OVERLAPPED()
    got, flags = win32.Ref(0), win32.Ref(0)

    def call() -> Any:
        flags.value = 0
        return WSARecv(handle, bufs, 1, got, flags, ov, None)

    return _batched_recv(call, socks.peer_w)


def recv_core(socks: Sockets) -> Shape:
    start_read = socks.sock.start_read
    buf = bytearray(64)
    ov = winaio.Overlapped()
    return _batched_recv(lambda: start_read(buf, ov), socks.peer_c)


def _batched_recv(call: Callable[[], Any], peer: socket.socket) -> Shape:
    def run(n: int) -> float:
        total = 0.0
        for _ in range(max(1, n // _BATCH)):
            Sockets.fill(peer, 64 * _BATCH)
            time.sleep(0.002)  # let loopback deliver it all
            start = time.perf_counter()
            for _ in range(_BATCH):
                call()
            total += time.perf_counter() - start
        return total

    return run


def set_event_win32() -> Shape:
    handle = win32.CreateEvent(None, True, False, None)
    SetEvent = win32.SetEvent

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            SetEvent(handle)
        return time.perf_counter() - start

    return run


def set_event_core() -> Shape:
    event_set = winaio.Event(manual_reset=True).set

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            event_set()
        return time.perf_counter() - start

    return run


def wait_win32() -> Shape:
    handle = win32.CreateEvent(None, True, True, None)
    wait, infinite = win32.WaitForSingleObject, win32.INFINITE

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            wait(handle, infinite)
        return time.perf_counter() - start

    return run


def wait_core() -> Shape:
    event = winaio.Event(manual_reset=True, initial_state=True)
    wait = winaio.wait

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            wait(event)
        return time.perf_counter() - start

    return run


def apc_win32() -> Shape:
    queue_apc, sleep_ex, me = win32.QueueUserAPC, win32.SleepEx, win32.GetCurrentThread()

    def apc(_: object) -> None:
        pass

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(max(1, n // 100)):
            for _ in range(100):
                queue_apc(apc, me, None)
            sleep_ex(0, True)
        return time.perf_counter() - start

    return run


def apc_core() -> Shape:
    queue_apc, sleep, me = winaio.queue_apc, winaio.sleep, winaio.current_thread()

    def apc() -> None:
        pass

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(max(1, n // 100)):
            for _ in range(100):
                queue_apc(me, apc)
            sleep(0, alertable=True)
        return time.perf_counter() - start

    return run


def build(files: Files, socks: Sockets) -> dict[str, tuple[Shape, Shape]]:
    return {
        "read_port_qd1": (read_port_win32(files, 1), read_port_core(files, 1)),
        "read_port_qd32": (read_port_win32(files, 32), read_port_core(files, 32)),
        "gqcs": (gqcs_win32(files), gqcs_core(files)),
        "wsasend": (send_win32(socks, "wsasend"), send_core(socks)),
        "writefile_socket": (send_win32(socks, "writefile"), send_core(socks)),
        "wsarecv": (recv_win32(socks), recv_core(socks)),
        "set_event": (set_event_win32(), set_event_core()),
        "wait_signaled": (wait_win32(), wait_core()),
        "apc": (apc_win32(), apc_core()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    ap.add_argument("--n", type=int, default=20000, help="calls per measurement")
    ap.add_argument("--shapes", default="", help="comma-separated subset")
    args = ap.parse_args(argv)
    files, socks = Files(), Sockets()
    try:
        shapes = build(files, socks)
        if args.shapes:
            shapes = {k: v for k, v in shapes.items() if k in args.shapes.split(",")}
        ns: dict[str, dict[str, list[float]]] = {k: {"win32": [], "core": []} for k in shapes}
        for shape_w, shape_c in shapes.values():  # warm-up: caches, lazy thread state
            shape_w(min(args.n, 2000))
            shape_c(min(args.n, 2000))
        for rnd in range(args.rounds):
            names = list(shapes)
            names = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in names:
                shape_w, shape_c = shapes[name]
                pair = [("win32", shape_w), ("core", shape_c)]
                if rnd % 2:
                    pair.reverse()
                for api, shape in pair:
                    ns[name][api].append(shape(args.n) / args.n * 1e9)
            log(f"round {rnd + 1}/{args.rounds} done")
    finally:
        files.close()
        socks.close()
    rows = {}
    targets = []
    for name, per_api in ns.items():
        w, c = statistics.median(per_api["win32"]), statistics.median(per_api["core"])
        per_round = [a / b for a, b in zip(per_api["win32"], per_api["core"], strict=True)]
        rows[name] = {
            "win32_ns": round(w),
            "core_ns": round(c),
            "ratio": round(w / c, 3),
            "ratio_median_of_rounds": round(statistics.median(per_round), 3),
            "win32_rounds_ns": [round(x) for x in per_api["win32"]],
            "core_rounds_ns": [round(x) for x in per_api["core"]],
        }
        if name in IO_SHAPES:
            targets.append(
                {
                    "target": f"{name}: winaio.win32 costs <= {TARGET_IO}x the core call it wraps",
                    "ratio": round(w / c, 3),
                    "threshold_max": TARGET_IO,
                    "met": w / c <= TARGET_IO,
                }
            )
    report = {
        "benchmark": "bench_alias: winaio.win32 per-call cost vs the core",
        "machine": {
            "commit": commit_label(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1m": round(os.getloadavg()[0], 2),
        },
        "config": {"rounds": args.rounds, "n": args.n},
        "rows": rows,
        "targets": targets,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
