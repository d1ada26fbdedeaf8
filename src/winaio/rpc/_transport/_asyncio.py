"""The asyncio engine: one event loop thread (uvloop when installed) for every RPC listener.

The only module of the RPC server allowed to import asyncio (import-linter contract). Why
asyncio and not winaio's own completion port: measured on this machine with the same
``ServerConnection`` echo (``benchmarks/bench_rpc_engine.py``, docs/design.md §5): uvloop has a
third of the C=1 latency of both the stdlib loop and the completion-port engine, and the best
pipelined throughput; the completion port's pending-socket path needs a cross-thread hand-off
per wake-up (ring thread -> port thread). The seam (``_transport.Engine``) keeps the choice
revisable.

Rules:
- Every listener and connection lives on the loop thread; other threads reach it only through
  ``call_soon_threadsafe`` / ``run``.
- TCP connections get TCP_NODELAY (asyncio sets it on TCP transports; we set it again on the
  listening socket for uvloop); one ``data_received`` delivers every byte read in one wake-up,
  so the server parses all ready PDUs in one batch.
- ``close()`` stops the loop and joins the thread; nothing else is left running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["AsyncioEngine"]


def _new_loop(name: str | None) -> tuple[str, asyncio.AbstractEventLoop]:
    if name in (None, "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return "uvloop", uvloop.new_event_loop()
    if name not in (None, "asyncio", "uvloop"):
        raise ValueError(f"unknown RPC engine {name!r}")
    return "asyncio", asyncio.new_event_loop()


class _Listener:
    def __init__(self, engine: AsyncioEngine, server: asyncio.AbstractServer, address: Any):
        self._engine = engine
        self._server = server
        self.address = address

    def close(self) -> None:
        self._engine.run(self._server.close)


class AsyncioEngine:
    """An asyncio (or uvloop) event loop on a daemon thread named ``winaio-rpc-loop``."""

    def __init__(self, name: str | None = None) -> None:
        self.name, self.loop = _new_loop(name)
        started = threading.Event()
        self.thread = threading.Thread(
            target=self._main, args=(started,), name="winaio-rpc-loop", daemon=True
        )
        self.thread.start()
        started.wait()
        self.thread_id: int = self.thread.ident or 0

    def _main(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                tasks = asyncio.all_tasks(self.loop)
                for task in tasks:
                    task.cancel()
                if tasks:
                    self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    # -- the seam ------------------------------------------------------------------------------

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Any:
        return self.loop.call_later(delay, fn, *args)

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.create_task(coro)

    def create_future(self) -> Any:
        return self.loop.create_future()

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if threading.get_ident() == self.thread_id:
            return fn(*args)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def step() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.loop.call_soon_threadsafe(step)
        return future.result()

    def _await(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if threading.get_ident() == self.thread_id:
            raise RuntimeError("cannot block the RPC loop thread on itself")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def listen_tcp(
        self, factory: Callable[[], Any], host: str, port: int, backlog: int
    ) -> _Listener:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        address = sock.getsockname()[:2]

        async def start() -> asyncio.AbstractServer:
            return await self.loop.create_server(factory, sock=sock, backlog=backlog)

        return _Listener(self, self._await(start()), address)

    def listen_unix(self, factory: Callable[[], Any], path: str, backlog: int) -> _Listener:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.exists(path):
                os.unlink(path)  # a stale endpoint left by a dead server
            sock.bind(path)
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise

        async def start() -> asyncio.AbstractServer:
            return await self.loop.create_unix_server(factory, sock=sock, backlog=backlog)

        return _Listener(self, self._await(start()), path)

    def close(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            if threading.get_ident() != self.thread_id:
                self.thread.join()
