"""Command line: ``python -m winaio serve`` (the main job of ``make run``) and ``demo``.

``serve`` runs the RPC demo server (``rpc._interfaces._services.DemoServices``): the endpoint
mapper on 127.0.0.1:135 (or a fallback port), rpcecho + mgmt on a dynamic port and an ncalrpc
endpoint; it prints the endpoints and commands to try with rpcclient, Samba's Python client and
impacket, logs one line per connection and per failed call (``--verbose``: one per call) and
stops cleanly on Ctrl-C or SIGTERM.

The demo walks through the seeds' two documents with real I/O:

1. *Alertable I/O*: ReadFileEx on a named pipe; the data arrives while the issuing thread does
   something else; the completion routine runs **on the issuing thread**, only once it waits
   alertably (SleepEx(..., TRUE) then returns WAIT_IO_COMPLETION).
2. *Asynchronous I/O and completion ports* (the seeds' central point): a short-lived thread issues
   an overlapped read on a handle bound to a completion port and exits; the read survives its
   thread (Vista+ rule) and completes later on a port worker. The same read on a handle that is
   *not* port-bound is cancelled when its thread exits.

No logic of its own beyond printing: everything goes through the public ``winaio.win32`` API.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from . import _runtime, win32

_OPEN = win32.PIPE_ACCESS_DUPLEX | win32.FILE_FLAG_OVERLAPPED
_RW = win32.GENERIC_READ | win32.GENERIC_WRITE


def _pipe_pair() -> tuple[int, int]:
    name = rf"\\.\pipe\winaio-demo-{uuid.uuid4().hex[:8]}"
    # Message pipes: each ReadFileEx receives exactly one of the writer's messages.
    mode = win32.PIPE_TYPE_MESSAGE | win32.PIPE_READMODE_MESSAGE
    server = win32.CreateNamedPipe(name, _OPEN, mode, 1, 4096, 4096, 0, None)
    client = win32.CreateFile(
        name, _RW, 0, None, win32.OPEN_EXISTING, win32.FILE_FLAG_OVERLAPPED, 0
    )
    return server, client


def _alertable(messages: int) -> bool:
    print("1. alertable I/O: ReadFileEx completion routines run on the issuing thread")
    server, client = _pipe_pair()
    me = win32.GetCurrentThreadId()
    got: list[bytes] = []
    buffers = [bytearray(32) for _ in range(messages)]
    overlapped = [win32.OVERLAPPED() for _ in range(messages)]

    def routine(error: int, count: int, ov: Any) -> None:
        index = overlapped.index(ov)
        got.append(bytes(buffers[index][:count]))
        where = "the issuing thread" if win32.GetCurrentThreadId() == me else "ANOTHER thread"
        print(f"   routine: error={error} bytes={count} data={got[-1]!r} on {where}")

    for buf, ov in zip(buffers, overlapped, strict=True):
        win32.ReadFileEx(server, buf, len(buf), ov, routine)

    def writer(_: object) -> int:
        for i in range(messages):
            n = win32.Ref(0)
            win32.WriteFile(client, f"message {i}".encode(), 9, n, win32.OVERLAPPED())
        return 0

    thread = win32.CreateThread(None, 0, writer, None, 0, None)
    win32.WaitForSingleObject(thread, 5000)
    print(f"   data written by another thread; routines run so far: {len(got)}")
    while len(got) < messages:
        code = win32.SleepEx(2000, True)
        print(f"   SleepEx(2000, TRUE) -> {'WAIT_IO_COMPLETION' if code == 0xC0 else code}")
        if code != win32.WAIT_IO_COMPLETION:
            break
    for handle in (thread, server, client):
        win32.CloseHandle(handle)
    return len(got) == messages


def _survives_thread_exit(port_bound: bool) -> bool:
    server, client = _pipe_pair()
    port = win32.CreateIoCompletionPort(server, 0, 7, 0) if port_bound else 0
    event = 0 if port_bound else win32.CreateEvent(None, True, False, None)
    ov = win32.OVERLAPPED(hEvent=event)
    buf = bytearray(16)

    def issuer(_: object) -> int:
        win32.ReadFile(server, buf, len(buf), None, ov)  # pending: no data yet
        return 0  # ...and the thread exits at once

    thread = win32.CreateThread(None, 0, issuer, None, 0, None)
    win32.WaitForSingleObject(thread, 5000)
    win32.WriteFile(client, b"after the exit", 14, win32.Ref(0), win32.OVERLAPPED())
    n, key, done = win32.Ref(0), win32.Ref(0), win32.Ref(None)
    if port_bound:
        ok = win32.GetQueuedCompletionStatus(port, n, key, done, 5000)
        print(
            f"   port-bound: GetQueuedCompletionStatus -> {ok}, key={key.value}, "
            f"data={bytes(buf[: n.value])!r}: the read outlived its thread"
        )
        result = ok and done.value is ov
    else:
        win32.WaitForSingleObject(event, 5000)
        ok = win32.GetOverlappedResult(server, ov, n, False)
        error = win32.GetLastError()
        print(
            f"   not port-bound: GetOverlappedResult -> {ok}, error={error} "
            "(ERROR_OPERATION_ABORTED): cancelled when its thread exited"
        )
        result = not ok and error == win32.ERROR_OPERATION_ABORTED
    for handle in (thread, server, client, port, event):
        if handle:
            win32.CloseHandle(handle)
    return bool(result)


def _demo(messages: int) -> int:
    selection = _runtime.selection()
    print(f"I/O backend: {selection.name} ({selection.reason})\n")
    ok = _alertable(messages)
    print("\n2. I/O issued by a thread that exits (the seeds' central point)")
    ok = _survives_thread_exit(port_bound=True) and ok
    ok = _survives_thread_exit(port_bound=False) and ok
    print("\nall demonstrated behaviours held" if ok else "\nUNEXPECTED RESULT")
    return 0 if ok else 1


def _commands(services: Any) -> list[str]:
    """Ready-to-paste commands for the endpoints ``services`` listens on."""
    tcp = next(b for b in services.app.bindings if b.protseq == "ncacn_ip_tcp")
    mapper = next(b for b in services.mapper.bindings if b.protseq == "ncacn_ip_tcp")
    host, port, epm = tcp.address, tcp.endpoint, mapper.endpoint
    lines = []
    if epm == "135":
        lines += [
            f"rpcclient -U% -N ncacn_ip_tcp:{host} -c 'echoaddone 5'",
            f"rpcclient -U% -N ncacn_ip_tcp:{host} -c 'echodata 8; sourcedata 8; sinkdata 8'",
            f"rpcclient -U% -N ncacn_ip_tcp:{host} -c epmlookup",
            f"rpcdump.py -port 135 {host}    # impacket",
        ]
    else:
        lines.append("(rpcclient asks the mapper on port 135 only: run as root to try it)")
    lines += [
        f"rpcmap.py -auth-level 1 'ncacn_ip_tcp:{host}[{port}]'    # impacket, via mgmt",
        '/usr/bin/python3 -c "from samba.dcerpc import echo; '
        f"print(echo.rpcecho('ncacn_ip_tcp:{host}[{port}]').AddOne(41))\"",
    ]
    return lines


def _serve(args: argparse.Namespace) -> int:
    from .rpc._interfaces._services import DemoServices

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    options: dict[str, Any] = {}
    if args.max_connections:
        options["max_connections"] = args.max_connections
    if args.idle_timeout:
        options["idle_timeout"] = args.idle_timeout
    ncalrpc = args.ncalrpc or f"winaio-rpcecho-{os.getpid()}"
    services = DemoServices.start(
        args.host,
        port=args.port,
        epm_port=args.epm_port,
        epm_fallback_port=args.epm_fallback_port,
        ncalrpc=ncalrpc,
        allow_remote_stop=args.allow_remote_stop,
        server_options=options,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("winaio RPC server")
        if services.mapper_fallback:
            print(f"  note: {services.mapper_fallback}")
        for b in services.mapper.bindings:
            print(f"  endpoint mapper (epmapper, mgmt)  {b.string_binding}")
        for b in services.app.bindings:
            print(f"  rpcecho, mgmt, epmapper          {b.string_binding}")
        print("try:")
        for line in _commands(services):
            print(f"  {line}")
        print("Ctrl-C or SIGTERM stops the server.", flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping: in-flight calls finish, then the connections close", flush=True)
    finally:
        services.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m winaio``."""
    parser = argparse.ArgumentParser(prog="python -m winaio", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="the RPC demo server: endpoint mapper, mgmt, rpcecho")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=0, help="rpcecho's TCP port (0: dynamic)")
    serve.add_argument("--epm-port", type=int, default=135, help="endpoint mapper port")
    serve.add_argument(
        "--epm-fallback-port", type=int, default=0, help="mapper port if --epm-port is busy"
    )
    serve.add_argument("--ncalrpc", help="ncalrpc endpoint name (default: per process)")
    serve.add_argument("--max-connections", type=int, default=0)
    serve.add_argument("--idle-timeout", type=float, default=0.0)
    serve.add_argument("--allow-remote-stop", action="store_true",
                       help="let mgmt stop_server_listening stop the server")  # fmt: skip
    serve.add_argument("-v", "--verbose", action="store_true", help="log every call")
    demo = sub.add_parser("demo", help="alertable I/O and port-bound I/O outliving its thread")
    demo.add_argument("--messages", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _demo(args.messages)


if __name__ == "__main__":
    sys.exit(main())
