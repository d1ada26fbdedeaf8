"""The seeds' central point, runnable: asynchronous I/O inside an asynchronous RPC server procedure.

Run: ``python examples/seeds_async_io.py`` (from the repository, with winaio installed: ``make``
builds ``.venv``). It starts an RPC server on 127.0.0.1, calls it with impacket, and prints what
happens to each call. The document (*asynchronous I/O and asynchronous RPC*) says:

- Vista and later: a server procedure may start I/O **bound to an I/O completion port** and
  return; the RPC call is completed later by whatever thread dequeues the completion, long after
  the dispatching thread is gone (``ReadPipe``, ``RecvSocket``).
- Before Vista, I/O belonged to the thread that issued it: if the RPC runtime ended the dispatch
  thread, the pending I/O was **cancelled** (``ReadUnbound``: the I/O is not port-bound, the
  dispatch thread exits, the read completes with ERROR_OPERATION_ABORTED, and that status
  reaches the client as a fault).
- So pre-Vista servers forwarded such work to an **application-managed thread pool** whose
  threads stay alive (``ReadViaPool``).

Every dispatch here runs on a thread created for that call that exits as soon as the manager
returns (``ThreadPerCall``, the server's executor): the MS asynchronous manager form
(``@rpc.async_manager(thread=True)``) is entered on it, issues its I/O and returns at once.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import winaio
from winaio import rpc, win32

SEEDS = rpc.Interface(
    "seeds",
    "8f5e2a4c-6b1d-4e3a-9c7f-5d2b1a0e9c31",
    (1, 0),
    [
        rpc.Procedure(
            name,
            opnum,
            [
                rpc.Param("size", rpc.ULONG, rpc.IN),
                rpc.Param("length", rpc.ULONG, rpc.OUT),
                rpc.Param("data", rpc.ConformantArray(rpc.BYTE, size_is="length"), rpc.OUT),
            ],
        )
        for opnum, name in enumerate(["ReadPipe", "RecvSocket", "ReadUnbound", "ReadViaPool"])
    ],
)

_STOP_KEY = 0xDEAD
_OPEN = win32.PIPE_ACCESS_DUPLEX | win32.FILE_FLAG_OVERLAPPED
_RW = win32.GENERIC_READ | win32.GENERIC_WRITE


class ThreadPerCall:
    """An executor whose every task runs on a new winaio thread that ends with the task: a
    dispatch thread the RPC runtime gets rid of as soon as the manager returns."""

    def __init__(self) -> None:
        self.threads: list[Any] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> int:
            fn(*args)
            return 0

        name = f"dispatch-{len(self.threads) + 1}"
        self.threads.append(winaio.start_thread(run, name=name))

    def shutdown(self, wait: bool = True, **_: Any) -> None:
        if wait:
            for t in self.threads:
                winaio.wait(t, 10)


def _pipe_pair(tag: str) -> tuple[int, int]:
    name = rf"\\.\pipe\winaio-seeds-{tag}-{uuid.uuid4().hex[:8]}"
    server = win32.CreateNamedPipe(name, _OPEN, win32.PIPE_TYPE_BYTE, 1, 65536, 65536, 0, None)
    client = win32.CreateFile(
        name, _RW, 0, None, win32.OPEN_EXISTING, win32.FILE_FLAG_OVERLAPPED, 0
    )
    return server, client


class SeedsServer:
    """The RPC server and the I/O sources its procedures read from.

    ``feed_pipe`` / ``feed_socket`` / ``feed_unbound`` / ``feed_pool`` write the data a
    pending call is waiting for (a test calls them once it has seen the dispatch thread end).
    ``log`` records, per call, the dispatching and the completing thread.
    """

    def __init__(self) -> None:
        self.log: list[str] = []
        self.dispatch = ThreadPerCall()
        self.port = win32.CreateIoCompletionPort(win32.INVALID_HANDLE_VALUE, 0, 0, 0)
        # Port-bound sources: a named pipe and a TCP connection.
        self.pipe, self._pipe_writer = _pipe_pair("port")
        win32.CreateIoCompletionPort(self.pipe, self.port, 1, 0)
        listener = socket.create_server(("127.0.0.1", 0))
        self.sock = win32.WSASocket(win32.AF_INET, win32.SOCK_STREAM, 0, None, 0,
                                    win32.WSA_FLAG_OVERLAPPED)  # fmt: skip
        win32.connect(self.sock, listener.getsockname())
        self._sock_writer, _ = listener.accept()
        listener.close()
        win32.CreateIoCompletionPort(self.sock, self.port, 2, 0)
        # Not port-bound: a second pipe whose reads signal an event.
        self.unbound, self._unbound_writer = _pipe_pair("unbound")
        self.pool_pipe, self._pool_writer = _pipe_pair("pool")
        # The application's own pool (winaio's thread pool, two threads at most).
        self.app_pool = winaio.ThreadPool(max_threads=2)
        self.pending: dict[int, tuple[Any, bytearray, Any]] = {}
        self.port_worker = winaio.start_thread(self._port_loop, name="port-worker")
        self.server = rpc.Server(executor=self.dispatch)
        self.server.register_interface(
            SEEDS,
            {
                "ReadPipe": self.read_pipe,
                "RecvSocket": self.recv_socket,
                "ReadUnbound": self.read_unbound,
                "ReadViaPool": self.read_via_pool,
            },
        )
        self.server.use_protseq("ncacn_ip_tcp", None, host="127.0.0.1")
        self.server.listen(wait=False)
        self.binding = self.server.bindings[0].string_binding

    # -- managers (each entered on its own dispatch thread, which ends when it returns) -------

    def _note(self, call: Any, what: str) -> None:
        self.log.append(f"{call.procedure.name}: {what} on thread {threading.current_thread().name}"
                        f" ({threading.get_ident()})")  # fmt: skip

    @rpc.async_manager(thread=True)
    def read_pipe(self, call: Any, size: int) -> None:
        buf, ov = bytearray(size), win32.OVERLAPPED()
        self.pending[id(ov)] = (call, buf, ov)
        win32.ReadFile(self.pipe, buf, size, None, ov)  # pends: port-bound, outlives us
        self._note(call, "ReadFile issued, manager returns")

    @rpc.async_manager(thread=True)
    def recv_socket(self, call: Any, size: int) -> None:
        buf, ov = bytearray(size), win32.OVERLAPPED()
        self.pending[id(ov)] = (call, buf, ov)
        flags = win32.Ref(0)
        win32.WSARecv(self.sock, [buf], 1, None, flags, ov, None)
        self._note(call, "WSARecv issued, manager returns")

    @rpc.async_manager(thread=True)
    def read_unbound(self, call: Any, size: int) -> None:
        # The failure the seed warns about, on purpose: no port, only an event. When this
        # dispatch thread ends, the read is cancelled; a watcher reports the result.
        buf = bytearray(size)
        event = win32.CreateEvent(None, True, False, None)
        ov = win32.OVERLAPPED(hEvent=event)
        win32.ReadFile(self.unbound, buf, size, None, ov)
        self._note(call, "ReadFile issued without a port, manager returns")
        winaio.start_thread(self._watch_unbound, call, buf, ov, event, name="unbound-watcher")

    def _watch_unbound(self, call: Any, buf: bytearray, ov: Any, event: int) -> None:
        win32.WaitForSingleObject(event, win32.INFINITE)
        n = win32.Ref(0)
        if win32.GetOverlappedResult(self.unbound, ov, n, False):
            call.complete({"length": n.value, "data": bytes(buf[: n.value])})
        else:
            error = win32.GetLastError()
            self._note(call, f"read ended with error {error}, call aborted")
            call.abort(error)
        win32.CloseHandle(event)

    @rpc.async_manager(thread=True)
    def read_via_pool(self, call: Any, size: int) -> None:
        # Pre-Vista: hand the I/O to a thread the application owns and keeps alive.
        self.app_pool.submit(self._pool_read, call, size)
        self._note(call, "work forwarded to the application pool, manager returns")

    def _pool_read(self, call: Any, size: int) -> None:
        buf, ov, n = bytearray(size), win32.OVERLAPPED(), win32.Ref(0)
        win32.ReadFile(self.pool_pipe, buf, size, None, ov)
        if win32.GetOverlappedResult(self.pool_pipe, ov, n, True):  # the pool thread waits
            self._note(call, "pool thread read the data, completes the call")
            call.complete({"length": n.value, "data": bytes(buf[: n.value])})
        else:
            call.abort(win32.GetLastError())

    # -- the completion port's worker ------------------------------------------------------------

    def _port_loop(self) -> None:
        n, key, ov = win32.Ref(0), win32.Ref(0), win32.Ref(None)
        while True:
            ok = win32.GetQueuedCompletionStatus(self.port, n, key, ov, win32.INFINITE)
            if key.value == _STOP_KEY:
                return
            call, buf, _ = self.pending.pop(id(ov.value))
            if ok:
                self._note(call, f"port completion dequeued ({n.value} bytes), completes call")
                call.complete({"length": n.value, "data": bytes(buf[: n.value])})
            else:
                call.abort(win32.GetLastError())

    # -- feeding the sources and stopping ---------------------------------------------------------

    def feed_pipe(self, data: bytes) -> None:
        win32.WriteFile(self._pipe_writer, data, len(data), win32.Ref(0), win32.OVERLAPPED())

    def feed_socket(self, data: bytes) -> None:
        self._sock_writer.sendall(data)

    def feed_unbound(self, data: bytes) -> None:
        win32.WriteFile(self._unbound_writer, data, len(data), win32.Ref(0), win32.OVERLAPPED())

    def feed_pool(self, data: bytes) -> None:
        win32.WriteFile(self._pool_writer, data, len(data), win32.Ref(0), win32.OVERLAPPED())

    def close(self) -> None:
        self.server.close()
        win32.PostQueuedCompletionStatus(self.port, 0, _STOP_KEY, None)
        winaio.wait(self.port_worker, 10)
        self.app_pool.close()
        self._sock_writer.close()
        win32.closesocket(self.sock)
        for h in (self.pipe, self._pipe_writer, self.unbound, self._unbound_writer,
                  self.pool_pipe, self._pool_writer, self.port):  # fmt: skip
            win32.CloseHandle(h)


def main() -> int:
    from impacket.dcerpc.v5 import transport
    from impacket.dcerpc.v5.rpcrt import DCERPCException
    from impacket.uuid import uuidtup_to_bin

    seeds = SeedsServer()
    print(f"server on {seeds.binding}")
    dce = transport.DCERPCTransportFactory(seeds.binding).get_dce_rpc()
    dce.connect()
    dce.bind(uuidtup_to_bin((str(SEEDS.uuid), "1.0")))
    ok = True
    for opnum, feed, data in [
        (0, seeds.feed_pipe, b"via the port (pipe)"),
        (1, seeds.feed_socket, b"via the port (socket)"),
        (3, seeds.feed_pool, b"via the app pool"),
        (2, seeds.feed_unbound, b"never read"),
    ]:
        name = SEEDS.procedure(opnum).name
        print(f"\n{name}:")
        dce.call(opnum, len(data).to_bytes(4, "little"))
        for t in list(seeds.dispatch.threads):
            winaio.wait(t, 10)  # the dispatch thread has ended...
        print("  dispatch thread ended; now the data arrives")
        if opnum != 2:
            feed(data)  # ...and only now does the data arrive
        try:
            stub = dce.recv()
            got = stub[8:]
            print(f"  client received {got!r}")
            ok = ok and got == data
        except DCERPCException as exc:
            print(f"  client received a fault: {exc}")
            ok = ok and opnum == 2 and "3e3" in str(exc).lower()
        for line in seeds.log:
            print(f"    {line}")
        seeds.log.clear()
    dce.disconnect()
    seeds.close()
    print("\nas the seed says" if ok else "\nUNEXPECTED RESULT")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
