"""The RPC server's I/O engine, behind one seam (docs/design.md §5, "Transport engine").

The server runtime talks to an :class:`Engine`: an event loop on its own thread that runs
listeners (ncacn_ip_tcp over IPv4/IPv6, ncalrpc over Unix sockets) and connection protocols,
plus ``call_soon_threadsafe`` for completions arriving from other threads and ``create_task``
for ``async def`` managers. Connection protocols follow asyncio's duck-typed Protocol interface
(``connection_made``, ``data_received``, ``eof_received``, ``connection_lost``; the transport
has ``write``, ``close``, ``abort``, ``get_extra_info``), so the server never imports asyncio.

Engine choice (measured, ``benchmarks/bench_rpc_engine.py``): asyncio with uvloop when it is
installed, else the stdlib asyncio loop. The engine module is imported only when a server
starts one, so ``import winaio.rpc`` never imports asyncio (tests/win32/test_win32_surface.py).
"""

from __future__ import annotations

import importlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

__all__ = ["Engine", "Inbox", "Listener", "TimerHandle", "start_engine"]

_log = logging.getLogger("winaio.rpc.server")


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Listener(Protocol):
    """A listening endpoint: ``address`` is (host, port) for TCP, the path for a Unix socket."""

    address: Any

    def close(self) -> None: ...


class Engine(Protocol):
    """An event loop running on its own thread."""

    name: str
    thread_id: int

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None: ...

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle: ...

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> Any: ...

    def create_future(self) -> Any:
        """An awaitable future of the loop (loop thread only): ``set_result``/``done``."""
        ...

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the loop thread and return its result (or raise its exception)."""
        ...

    def listen_tcp(
        self, factory: Callable[[], Any], host: str, port: int, backlog: int
    ) -> Listener: ...

    def listen_unix(self, factory: Callable[[], Any], path: str, backlog: int) -> Listener: ...

    def close(self) -> None: ...


def start_engine(name: str | None = None) -> Engine:
    """Start an engine thread. ``name``: "uvloop", "asyncio" or None (uvloop when installed)."""
    module = importlib.import_module("winaio.rpc._transport._asyncio")
    engine: Engine = module.AsyncioEngine(name)
    return engine


class Inbox:
    """Completions handed to the loop thread from other threads, one wake-up per burst."""

    __slots__ = ("_armed", "_engine", "_items")

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._armed = False

    def push(self, fn: Callable[..., Any], *args: Any) -> None:
        self._items.append((fn, args))
        if not self._armed:
            self._armed = True
            self._engine.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._armed = False  # before draining: a push racing with us re-arms
        items = self._items
        while items:
            fn, args = items.popleft()
            try:
                fn(*args)
            except Exception:
                _log.exception("completion %r failed", fn)
