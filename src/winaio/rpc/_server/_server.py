"""The RPC server: endpoints, registered interfaces, the listen state machine and its limits.

State machine (spec A11; Wine's tests/rpc.c and tests/server.c are the oracle):

- ``use_protseq`` opens the endpoint at once (dynamic endpoint when ``endpoint`` is None;
  repeating a protseq + endpoint is a no-op). Unknown-but-valid protocol sequences raise
  RPC_S_PROTSEQ_NOT_SUPPORTED (1703), invalid names RPC_S_INVALID_RPC_PROTSEQ (1704), bad
  endpoints RPC_S_INVALID_ENDPOINT_FORMAT (1706) (rpc #31).
- ``listen``: no endpoint -> RPC_S_NO_PROTSEQS_REGISTERED (1714, rpc #26); already listening
  -> RPC_S_ALREADY_LISTENING (1713, rpc #27). ``wait=True`` blocks like RpcServerListen with
  DontWait = FALSE.
- ``stop_listening`` before any listen -> RPC_S_NOT_LISTENING (1715, rpc #28); afterwards calls
  to non-AUTOLISTEN interfaces are refused (nca_s_server_too_busy, PFC_DID_NOT_EXECUTE) while
  the calls in flight finish normally.
- ``wait``: 1715 if never listening or already waited (rpc #28, #30); else blocks until the
  server is stopped and every call has finished, then closes the connections after their
  queued replies are written (rpc #30, #98). ``is_listening`` is True only between listen and
  stop (rpc #29).
- AUTOLISTEN interfaces are served without ``listen`` and regardless of stops (rpc #33); their
  MaxCalls is their own, the others share ``listen``'s.

Threads: all connections live on the engine's loop thread (``_transport``); counters touched
per call are mutated there only; ``wait``/``unregister_interface(wait=True)`` sleep on one
Condition that the loop thread notifies only when a count reaches zero with a waiter present.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..._pool import ThreadPool
from ...codes import RpcStatus
from ...errors import RpcError
from .._connection import AssociationGroups, SimpleRegistry
from .._connection._base import MAX_REQUEST_SIZE
from .._transport import Engine, Inbox, Listener, start_engine
from ._call import ServerCall
from ._contexts import ContextTables
from ._interface import LISTEN_MAX_CALLS_DEFAULT, IfFlags, Interface, Registration
from ._link import Link

if TYPE_CHECKING:
    pass

__all__ = ["Binding", "Server", "ServerStats", "default_server", "reset_default_server"]

log = logging.getLogger("winaio.rpc.server")

SUPPORTED_PROTSEQS: Final = ("ncacn_ip_tcp", "ncalrpc")
#: Concurrency value of the server's own thread pool: as many managers as a
#: ThreadPoolExecutor's default workers may block outside winaio waits at once (a manager blocked
#: in a winaio wait frees its slot, like an IOCP thread on Windows); measured in
#: docs/design.md §5 ("Executor").
DEFAULT_CONCURRENCY: Final = min(32, (os.cpu_count() or 1) + 4)
#: Valid DCE/MS protocol sequences winaio does not implement -> RPC_S_PROTSEQ_NOT_SUPPORTED.
KNOWN_PROTSEQS: Final = frozenset(
    {
        "ncacn_np", "ncacn_http", "ncacn_spx", "ncacn_nb_tcp", "ncacn_nb_ipx", "ncacn_nb_nb",
        "ncacn_at_dsp", "ncacn_dnet_nsp", "ncacn_vns_spp", "ncacn_hvsocket", "ncadg_ip_udp",
        "ncadg_ipx", "ncadg_mq", "ncacn_unix_stream",
    }
)  # fmt: skip
_PROTSEQ_SYNTAX: Final = re.compile(r"^nca(cn|dg|lrpc)(_[a-z0-9]+)*$")
_LRPC_NAME: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")

_IDLE, _LISTENING, _STOPPED = "idle", "listening", "stopped"


@dataclass(frozen=True, slots=True)
class Binding:
    """One endpoint the server listens on (RpcServerInqBindings' entries)."""

    protseq: str
    address: str
    endpoint: str

    @property
    def string_binding(self) -> str:
        """``ncacn_ip_tcp:127.0.0.1[49152]`` / ``ncalrpc:[name]`` [MSL:string-binding]."""
        return f"{self.protseq}:{self.address}[{self.endpoint}]"


@dataclass(slots=True)
class ServerStats:
    """rpc_c_stats_* counters (mgmt inq_stats): calls and PDUs (batches) in and out."""

    calls_in: int = 0
    calls_out: int = 0
    pkts_in: int = 0
    pkts_out: int = 0


class _Endpoint:
    __slots__ = ("binding", "key", "listener", "path")

    def __init__(self, key: tuple[str, str, str | None], binding: Binding, listener: Listener):
        self.key = key
        self.binding = binding
        self.listener = listener
        self.path: str | None = None


class Server:
    """An RPC server (see the module docstring).

    Args:
        executor: where plain-function managers and rundown routines run; anything with
            ``submit(fn, *args)`` (default: a ``winaio.ThreadPool`` owned by the server, as
            rpcrt4 runs managers on its thread pool; closed with the server).
        engine: "uvloop", "asyncio" or None (uvloop when installed).
        max_connections: connections beyond this are closed at once (None: no limit).
        idle_timeout: seconds a connection may sit in the middle of a PDU before it is closed.
        max_request_size: largest reassembled request stub (4 MiB, [MS-RPCE §3.3.3.5.4]).
        lrpc_dir: directory of the ncalrpc Unix sockets (default: a per-user temp directory).
    """

    def __init__(
        self,
        *,
        executor: Any = None,
        engine: str | None = None,
        max_connections: int | None = None,
        idle_timeout: float | None = 60.0,
        max_request_size: int = MAX_REQUEST_SIZE,
        lrpc_dir: str | None = None,
    ) -> None:
        self._own_executor = executor is None
        self.executor: Any = (
            ThreadPool(concurrency=DEFAULT_CONCURRENCY) if executor is None else executor
        )
        self._engine_name = engine
        self._engine: Engine | None = None
        self._inbox: Inbox | None = None
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_request_size = max_request_size
        self.lrpc_dir = lrpc_dir or os.path.join(tempfile.gettempdir(), f"winaio-rpc-{os.getuid()}")
        self.registry: SimpleRegistry[Registration] = SimpleRegistry()
        self.groups = AssociationGroups()
        self.contexts = ContextTables(self._run_rundown)
        self.stats = ServerStats()
        self._registrations: dict[Interface, Registration] = {}
        self._endpoints: dict[tuple[str, str, str | None], _Endpoint] = {}
        self._links: set[Link] = set()
        self._state = _IDLE
        #: Read per call by the dispatcher (a plain bool: cheaper than comparing states).
        self.listening = False
        self._max_calls = LISTEN_MAX_CALLS_DEFAULT
        #: MaxCalls while listening, else 0: the fast path's one admission test for calls of
        #: interfaces that are not AUTOLISTEN (``_active >= fast_limit``: refuse).
        self.fast_limit = 0
        self._active = 0
        #: Batches the loop thread is dispatching right now: inline calls are never counted
        #: as active (they start and end inside one batch), so waiters also wait for this.
        self.dispatching = 0
        self._waiting = 0
        self._waiter = False  # a thread is in wait() (RpcMgmtWaitServerListen)
        self._cond = threading.Condition()
        self._lock = threading.Lock()  # API calls from several threads
        self._observers: list[Callable[[Server], Any]] = []
        self._closed = False

    # -- engine ----------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is None:
            with self._lock:
                engine = self._engine
                if engine is None:
                    engine = start_engine(self._engine_name)
                    self._inbox = Inbox(engine)
                    self._engine = engine
        return engine

    @property
    def inbox(self) -> Inbox:
        inbox = self._inbox
        assert inbox is not None
        return inbox

    # -- interfaces ------------------------------------------------------------------------------

    def register_interface(
        self,
        interface: Interface,
        managers: Mapping[int | str, Callable[..., Any]],
        *,
        flags: int = 0,
        max_calls: int = LISTEN_MAX_CALLS_DEFAULT,
        max_rpc_size: int | None = None,
        security_callback: Callable[[Interface, ServerCall], int] | None = None,
        rundowns: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> Registration:
        """RpcServerRegisterIf3: serve ``interface`` with ``managers`` (rpc-api.md §3).

        Registering the same interface again replaces its managers (RpcServerRegisterIf on an
        already registered interface with the same manager type succeeds on Windows).
        """
        reg = Registration(
            interface,
            managers,
            flags=flags,
            max_calls=max_calls,
            max_rpc_size=max_rpc_size,
            security_callback=security_callback,
            rundowns=rundowns,
        )
        with self._lock:
            old = self._registrations.get(interface)
            if old is not None:
                old.deactivate()
            self._registrations[interface] = reg
            self.registry.register(interface.syntax, reg)
        if reg.flags & IfFlags.AUTOLISTEN:
            _ = self.engine  # autolisten: the endpoints serve at once
        self._changed()
        return reg

    def unregister_interface(self, interface: Interface | None, *, wait: bool = False) -> None:
        """RpcServerUnregisterIf: ``None`` = every non-AUTOLISTEN interface (rpc #32).

        Raises:
            RpcError: RPC_S_UNKNOWN_IF (1717) for an interface that is not registered.
        """
        with self._lock:
            if interface is None:
                regs = [r for r in self._registrations.values() if not r.autolisten]
            else:
                reg = self._registrations.get(interface)
                if reg is None:
                    raise RpcError(RpcStatus.RPC_S_UNKNOWN_IF, f"{interface} is not registered")
                regs = [reg]
            for reg in regs:
                reg.deactivate()
                del self._registrations[reg.interface]
                self.registry.unregister(reg.interface.syntax)
        self._changed()
        if wait:
            self._wait_until(
                lambda: self.dispatching == 0 and all(r.active_calls == 0 for r in regs), None
            )

    @property
    def interfaces(self) -> tuple[Interface, ...]:
        """Registered interfaces (mgmt inq_if_ids)."""
        with self._lock:
            return tuple(self._registrations)

    def registration(self, interface: Interface) -> Registration | None:
        return self._registrations.get(interface)

    # -- endpoints -------------------------------------------------------------------------------

    def use_protseq(
        self,
        protseq: str,
        endpoint: str | int | None = None,
        *,
        host: str = "127.0.0.1",
        backlog: int = 128,
    ) -> Binding:
        """RpcServerUseProtseq(Ep): listen on ``protseq`` at ``endpoint`` (None: dynamic)."""
        _check_protseq(protseq)
        ep = None if endpoint is None else str(endpoint)
        if protseq == "ncalrpc":
            host = ""
            if ep is not None and not _LRPC_NAME.match(ep):
                raise RpcError(RpcStatus.RPC_S_INVALID_ENDPOINT_FORMAT, f"endpoint {ep!r}")
        elif ep is not None and not (ep.isdigit() and int(ep) <= 0xFFFF):
            raise RpcError(RpcStatus.RPC_S_INVALID_ENDPOINT_FORMAT, f"TCP port {ep!r}")
        key = (protseq, host, ep)
        with self._lock:
            if self._closed:
                raise RpcError(RpcStatus.RPC_S_NOT_LISTENING, "the server is closed")
            existing = self._endpoints.get(key)
            if existing is not None:
                return existing.binding
            # A dynamic endpoint that became known under its real name counts too.
            for other in self._endpoints.values():
                same = other.binding.protseq == protseq and host == other.key[1]
                if same and ep is not None and other.binding.endpoint == ep:
                    return other.binding
        engine = self.engine
        try:
            if protseq == "ncacn_ip_tcp":
                listener = engine.listen_tcp(
                    lambda: Link(self, "ncacn_ip_tcp"), host, int(ep or 0), backlog
                )
                binding = Binding(protseq, host, str(listener.address[1]))
                path = None
            else:
                name = ep or f"LRPC-{uuid.uuid4().hex[:16]}"
                os.makedirs(self.lrpc_dir, mode=0o700, exist_ok=True)
                path = os.path.join(self.lrpc_dir, name)
                listener = engine.listen_unix(lambda: Link(self, "ncalrpc"), path, backlog)
                binding = Binding(protseq, "", name)
        except OSError as exc:
            raise RpcError(RpcStatus.RPC_S_CANT_CREATE_ENDPOINT, str(exc)) from exc
        entry = _Endpoint(key, binding, listener)
        entry.path = path
        with self._lock:
            self._endpoints[key] = entry
        self._changed()
        return binding

    @property
    def bindings(self) -> tuple[Binding, ...]:
        """RpcServerInqBindings."""
        with self._lock:
            return tuple(e.binding for e in self._endpoints.values())

    def on_endpoints_changed(self, fn: Callable[[Server], Any]) -> None:
        """Call ``fn(server)`` whenever an endpoint or interface is added or removed."""
        self._observers.append(fn)

    def _changed(self) -> None:
        for fn in tuple(self._observers):
            try:
                fn(self)
            except Exception:
                log.exception("endpoint observer %r failed", fn)

    # -- listening -------------------------------------------------------------------------------

    def is_listening(self) -> bool:
        """RpcMgmtIsServerListening (rpc #29)."""
        return self._state == _LISTENING

    def listen(self, max_calls: int = LISTEN_MAX_CALLS_DEFAULT, *, wait: bool = False) -> None:
        """RpcServerListen (rpc #26, #27); ``wait`` blocks until stopped and drained."""
        with self._lock:
            if not self._endpoints:
                raise RpcError(RpcStatus.RPC_S_NO_PROTSEQS_REGISTERED)
            if self._state == _LISTENING:
                raise RpcError(RpcStatus.RPC_S_ALREADY_LISTENING)
            self._max_calls = max_calls
            self._state = _LISTENING
            self.listening = True
            self.fast_limit = max_calls
        if wait:
            self.wait()

    def stop_listening(self) -> None:
        """RpcMgmtStopServerListening: new calls refused, calls in flight finish (rpc #28)."""
        with self._lock:
            if self._state == _IDLE:
                raise RpcError(RpcStatus.RPC_S_NOT_LISTENING)
            if self._state == _LISTENING:
                self._state = _STOPPED
                self.listening = False
                self.fast_limit = 0
        with self._cond:
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> None:
        """RpcMgmtWaitServerListen (rpc #28, #30, #98).

        Raises:
            RpcError: RPC_S_NOT_LISTENING if the server never listened or was already waited
                for; RPC_S_ALREADY_LISTENING while another thread waits [MSL:
                RpcMgmtWaitServerListen]; RPC_S_ASYNC_CALL_PENDING (997) if ``timeout`` expired.
        """
        with self._lock:
            if self._state == _IDLE:
                raise RpcError(RpcStatus.RPC_S_NOT_LISTENING)
            if self._waiter:
                raise RpcError(RpcStatus.RPC_S_ALREADY_LISTENING, "another thread is waiting")
            self._waiter = True
        try:
            self._wait(timeout)
        finally:
            self._waiter = False

    def _wait(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        # Two phases: while listening, the waiter is not counted in ``_waiting``, so calls
        # finishing meanwhile do not wake it (a wake-up per call would cost the loop thread the
        # GIL); stop_listening/close notify it.
        self._wait_until(lambda: self._state != _LISTENING, timeout, drain=False)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._wait_until(
            lambda: self._state != _LISTENING and self._active == 0 and self.dispatching == 0,
            remaining,
        )
        if not self._closed and not any(r.autolisten for r in self._registrations.values()):
            try:
                self._close_links(timeout)
            except RuntimeError:
                pass  # close() shut the loop down meanwhile: its connections are gone too
        with self._lock:
            if self._state == _STOPPED:
                self._state = _IDLE

    def _wait_until(
        self, done: Callable[[], bool], timeout: float | None, *, drain: bool = True
    ) -> None:
        """Sleep until ``done()``. ``drain``: the condition depends on calls and connections
        ending, so the loop thread notifies while this waiter is counted in ``_waiting``."""
        if self._engine is not None and threading.get_ident() == self._engine.thread_id:
            raise RpcError(RpcStatus.RPC_S_CALL_IN_PROGRESS, "cannot wait on the RPC loop thread")
        with self._cond:
            if drain:
                self._waiting += 1
            try:
                if not self._cond.wait_for(done, timeout):
                    raise RpcError(RpcStatus.RPC_S_ASYNC_CALL_PENDING, "timed out")
            finally:
                if drain:
                    self._waiting -= 1

    def _close_links(self, timeout: float | None) -> None:
        engine = self._engine
        if engine is None:
            return

        def close_all() -> None:
            for link in tuple(self._links):
                link.close()

        engine.run(close_all)
        self._wait_until(lambda: not self._links, timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop, let calls in flight finish and their replies go out, close everything."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            state = self._state
            if state == _LISTENING:
                self._state = _STOPPED
                self.listening = False
                self.fast_limit = 0
            endpoints = list(self._endpoints.values())
            self._endpoints.clear()
        with self._cond:
            self._cond.notify_all()  # a listen(wait=True) / wait() elsewhere returns
        with self._lock:
            for reg in self._registrations.values():
                reg.flags &= ~IfFlags.AUTOLISTEN
                reg.autolisten = False
        try:
            for ep in endpoints:
                ep.listener.close()
                if ep.path is not None:
                    try:
                        os.unlink(ep.path)
                    except OSError:
                        pass
            if self._engine is not None:
                self._wait_until(lambda: self._active == 0 and self.dispatching == 0, timeout)
                self._close_links(timeout)
        finally:
            if self._engine is not None:
                self._engine.close()
            if self._own_executor:
                self.executor.close()  # joins its workers (not from one of them)
            self._state = _IDLE

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runtime hooks (loop thread) -------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """A thread sleeps in wait/unregister_interface(wait=True)/close."""
        return self._waiting > 0

    def notify(self) -> None:
        """Wake the waiters to re-check their condition (loop thread)."""
        with self._cond:
            self._cond.notify_all()

    def link_opened(self, link: Link) -> bool:
        if self.max_connections is not None and len(self._links) >= self.max_connections:
            return False
        self._links.add(link)
        return True

    def link_closed(self, link: Link, calls: Iterable[ServerCall]) -> None:
        self._links.discard(link)
        if not self._links and self._waiting:
            with self._cond:
                self._cond.notify_all()

    @property
    def links(self) -> set[Link]:
        return self._links

    @property
    def connection_count(self) -> int:
        return len(self._links)

    @property
    def active_calls(self) -> int:
        return self._active

    def busy(self, reg: Registration) -> bool:
        if reg.autolisten:
            return reg.active_calls >= reg.max_calls
        return self._active >= self._max_calls

    def call_started(self, reg: Registration) -> bool:
        """Count a call in, unless MaxCalls is reached (then False: refuse it)."""
        if reg.autolisten:
            if reg.active_calls >= reg.max_calls:
                return False
        elif self._active >= self._max_calls:
            return False
        reg.active_calls += 1
        self._active += 1
        return True

    def call_finished(self, call: ServerCall) -> None:
        call.registration.active_calls -= 1
        self._active -= 1
        handles = call.handles
        if handles:
            self.contexts.release([e for e in handles.values() if e is not None])
        if self._waiting and (self._active == 0 or call.registration.active_calls == 0):
            with self._cond:
                self._cond.notify_all()

    def association_ended(self, assoc_group_id: int) -> None:
        if self.contexts.open_count(assoc_group_id):
            self.contexts.association_ended(assoc_group_id, self._rundown_for)

    def _rundown_for(self, type_name: str) -> Callable[[Any], Any] | None:
        for reg in self._registrations.values():
            fn = reg.rundowns.get(type_name)
            if fn is not None:
                return fn
        return None

    def _run_rundown(self, fn: Callable[[], Any]) -> None:
        self.executor.submit(fn)


def _check_protseq(protseq: str) -> None:
    if protseq in SUPPORTED_PROTSEQS:
        return
    if protseq in KNOWN_PROTSEQS:
        raise RpcError(RpcStatus.RPC_S_PROTSEQ_NOT_SUPPORTED, protseq)
    if _PROTSEQ_SYNTAX.match(protseq):
        raise RpcError(RpcStatus.RPC_S_PROTSEQ_NOT_SUPPORTED, protseq)
    raise RpcError(RpcStatus.RPC_S_INVALID_RPC_PROTSEQ, repr(protseq))


_default: Server | None = None
_default_lock = threading.Lock()


def default_server() -> Server:
    """The process-wide server that the ``winaio.win32`` Rpc* functions act on (rpcrt4 has one
    per process). Created on first use."""
    global _default
    server = _default
    if server is None:
        with _default_lock:
            server = _default
            if server is None:
                server = _default = Server()
    return server


def reset_default_server() -> None:
    """Close the process-wide server and forget it (tests; a new one is made on next use)."""
    global _default
    with _default_lock:
        server, _default = _default, None
    if server is not None:
        server.close()
