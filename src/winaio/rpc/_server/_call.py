"""The server call object: one dispatched RPC call, owned by itself until it completes.

Rules (spec A6, A7, A8, B7; rpc-api.md §5):
- The call's lifetime belongs to this object, never to the thread or task that dispatched it:
  it completes when ``complete(result)`` or ``abort(status)`` is called, exactly once, from any
  thread or task (RpcAsyncCompleteCall / RpcAsyncAbortCall). A second completion raises
  RpcError RPC_S_INVALID_ASYNC_HANDLE (1914) and sends nothing (rpc #19). The exactly-once latch
  is ``next(itertools.count())``: atomic under the GIL, no lock.
- ``complete`` encodes the reply on the completing thread (values in, values out: little-endian
  NDR, see docs/design.md §5), then hands the bytes to the connection's loop thread.
- Cancel [B7]: a co_cancel (or the orphaned PDU) makes ``test_cancel()`` true and raises the
  CLIENT_CANCEL event; a client disconnect raises CLIENT_DISCONNECT. Callbacks registered with
  ``on_event`` run once per event, at once if the event already happened, on the loop thread
  (or the registering thread for a late registration); their exceptions are logged.
- After a disconnect or orphan, completion is still accepted (exactly once) and silently
  dropped: the manager need not know, and nothing leaks (the link forgets the call).
- ``current_call()`` is a context variable set while a manager runs (threads and tasks).
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from ...codes import RpcStatus, WinError
from ...errors import NdrError, RpcError, Win32Error

if TYPE_CHECKING:
    from ._interface import Operation, Registration
    from ._link import Link
    from ._pipes import InStream, OutStream

__all__ = [
    "CallEvent",
    "ServerCall",
    "current_call",
    "inline_frame",
    "status_of",
]

log = logging.getLogger("winaio.rpc.server")

_INVALID_ASYNC_HANDLE = int(RpcStatus.RPC_S_INVALID_ASYNC_HANDLE)
_INVALID_PARAMETER = int(WinError.ERROR_INVALID_PARAMETER)
_CALL_FAILED = int(RpcStatus.RPC_S_CALL_FAILED)
_BAD_STUB = int(RpcStatus.RPC_X_BAD_STUB_DATA)

_current: ContextVar[ServerCall | None] = ContextVar("winaio_rpc_call", default=None)


class _InlineFrame(threading.local):
    """The fast path of the connection whose batch this thread is dispatching (``path``, set
    once per batch by the Link); its ``current`` is set while an ``@inline`` manager runs and
    its ``capture`` while an ``@async_manager`` runs (slot stores per call are cheaper than a
    thread-local or ContextVar set/reset)."""

    path: Any = None


inline_frame: Final = _InlineFrame()


def current_call() -> ServerCall:
    """The call whose manager is running (in its thread or task).

    Raises:
        RpcError: RPC_S_NO_CALL_ACTIVE (1725) outside a manager.
    """
    call = _current.get()
    if call is None:
        path = inline_frame.path
        if path is None:
            raise RpcError(RpcStatus.RPC_S_NO_CALL_ACTIVE, "not inside an RPC manager")
        running: ServerCall | None = path.capture  # an @async_manager of the fast path
        if running is not None:
            return running
        current = path.current  # an @inline manager of the fast path
        if current is None:
            raise RpcError(RpcStatus.RPC_S_NO_CALL_ACTIVE, "not inside an RPC manager")
        if type(current) is tuple:
            # Built on demand and already latched: complete/abort raise
            # RPC_S_INVALID_ASYNC_HANDLE (an inline call completes by returning).
            reg, op, call_id, ins = current
            call = ServerCall(path.link, reg, op, call_id, None, None, 0, ins)
            next(call._once)
            path.current = call
        else:
            call = current
    return call


class CallEvent(enum.IntEnum):
    """RPC_ASYNC_EVENT values a server call can raise [MSL:RPC_ASYNC_EVENT]."""

    CALL_COMPLETE = 0
    SEND_COMPLETE = 1
    RECEIVE_COMPLETE = 2
    CLIENT_DISCONNECT = 3
    CLIENT_CANCEL = 4


def _fits(status: int) -> bool:
    """A 32-bit code (unsigned, or an HRESULT held in a signed int): what a fault can carry."""
    return -0x80000000 <= status <= 0xFFFFFFFF


def status_of(exc: BaseException) -> int:
    """The fault status for an exception raised by a manager (rpc #22); a status that is no
    32-bit code becomes RPC_S_CALL_FAILED (a fault cannot carry it)."""
    if isinstance(exc, RpcError):
        status = exc.status
    elif isinstance(exc, Win32Error):
        status = int(exc.winerror)
    else:
        return _CALL_FAILED
    return status if _fits(status) else _CALL_FAILED


class ServerCall:
    """One dispatched call (see the module docstring). Created by the runtime only."""

    # No __slots__: a call is built per request, and with class-level defaults the
    # constructor stores only what differs (CPython 3.11+ keeps instance attributes inline).
    #: The object UUID of the request (PFC_OBJECT_UUID), else None.
    object: UUID | None = None
    #: The fast path's decoded [in] values in declaration order (``args`` is built from them
    #: on first use), else None.
    ins: Any = None
    #: context-handle parameter name -> table entry it came in with (runtime use).
    handles: dict[str, Any] | None = None
    #: A streamed request's [in] pipes / the call's [out] pipes (``_pipes``), else None.
    in_stream: InStream | None = None
    out_stream: OutStream | None = None
    _args: dict[str, Any] | None = None
    _done = False
    _cancelled = False
    _gone = False
    # Created on first use: most calls never see an event or a handler.
    _events: list[CallEvent] | None = None
    _handlers: list[Callable[[CallEvent], Any]] | None = None

    def __init__(
        self,
        link: Link,
        registration: Registration,
        operation: Operation,
        call_id: int,
        obj: UUID | None,
        args: dict[str, Any] | None,
        cancel_count: int,
        ins: Any = None,
    ) -> None:
        self._link = link
        self.registration = registration
        self.operation = operation
        self.call_id = call_id
        self._once = itertools.count()
        if obj is not None:
            self.object = obj
        if args is not None:
            self._args = args
        if ins is not None:
            self.ins = ins
        if cancel_count:
            self._cancelled = True
            self._events = [CallEvent.CLIENT_CANCEL]

    # -- what the manager can read ---------------------------------------------------------------

    @property
    def args(self) -> dict[str, Any]:
        """The decoded [in] values, as the manager received them (by IDL name)."""
        args = self._args
        if args is None:
            args = self._args = dict(zip(self.operation.in_names, self.ins or (), strict=True))
        return args

    @property
    def interface(self) -> Any:
        return self.registration.interface

    @property
    def procedure(self) -> Any:
        return self.operation.procedure

    @property
    def opnum(self) -> int:
        return int(self.operation.procedure.opnum)

    @property
    def protseq(self) -> str:
        return self._link.protseq

    @property
    def client_address(self) -> Any:
        return self._link.peer

    @property
    def local_address(self) -> Any:
        """The address the client connected to (sockname; the path for ncalrpc)."""
        return self._link.local

    @property
    def assoc_group_id(self) -> int:
        return int(self._link.conn.assoc_group_id)

    @property
    def done(self) -> bool:
        """complete() or abort() has been called."""
        return self._done

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def disconnected(self) -> bool:
        """The client went away (disconnect or orphaned PDU): the reply will not be sent."""
        return self._gone

    def test_cancel(self) -> bool:
        """RpcServerTestCancel: has the client cancelled this call? (rpc #15)."""
        return self._cancelled

    def on_event(self, handler: Callable[[CallEvent], Any]) -> None:
        """Call ``handler(event)`` for CLIENT_CANCEL / CLIENT_DISCONNECT (at once if past)."""
        if self._handlers is None:
            self._handlers = []
        self._handlers.append(handler)
        for event in tuple(self._events or ()):
            self._notify(handler, event)

    # -- completing ------------------------------------------------------------------------------

    def complete(self, result: Any = None) -> None:
        """RpcAsyncCompleteCall: send the reply built from ``result`` (rpc-api.md §2).

        Raises:
            RpcError: RPC_S_INVALID_ASYNC_HANDLE (1914) if the call was already completed.
        """
        if next(self._once):
            raise RpcError(_INVALID_ASYNC_HANDLE, "the call was already completed or aborted")
        self._done = True
        link = self._link
        if self._gone:
            link.forget(self)
            return
        try:
            # A call of the fast path: its fast encoder first (None: the generic one decides).
            ins = self.ins
            stub = None if ins is None else self.operation.fast_reply(result, ins)
            if stub is None:
                stub = link.encode_reply(self, result)
        except (RpcError, Win32Error) as exc:
            link.finish(self, None, status_of(exc))
        except Exception as exc:  # a manager value the stub cannot marshal
            log.warning("%s: cannot marshal the reply: %r", self.operation.procedure.name, exc)
            link.finish(self, None, _BAD_STUB)
        else:
            fast = link.fast
            if fast.capture is self and threading.get_ident() == link.loop_thread:
                fast.captured = (stub, 0)  # completed inside its manager: answered in place
            else:
                link.finish(self, stub, 0)

    def abort(self, status: int) -> None:
        """RpcAsyncAbortCall: the client gets a fault with ``status`` (rpc #18).

        Raises:
            RpcError: ERROR_INVALID_PARAMETER (87) if ``status`` is no 32-bit code (the call
                stays open); RPC_S_INVALID_ASYNC_HANDLE (1914) if the call was already
                completed.
        """
        code = int(status)
        if not _fits(code):
            raise RpcError(_INVALID_PARAMETER, f"fault status {status} is not a 32-bit code")
        if next(self._once):
            raise RpcError(_INVALID_ASYNC_HANDLE, "the call was already completed or aborted")
        self._done = True
        if self._gone:
            self._link.forget(self)
            return
        self._link.finish(self, None, code)

    def fail(self, exc: BaseException) -> None:
        """End the call with the fault an exception maps to, unless it already ended."""
        if isinstance(exc, NdrError | RpcError | Win32Error):
            status = status_of(exc)
        else:
            log.warning("manager %s raised", self.operation.procedure.name, exc_info=exc)
            status = _CALL_FAILED
        try:
            self.abort(status)
        except RpcError:
            pass  # the manager completed the call before raising: the reply stands

    # -- runtime side ----------------------------------------------------------------------------

    def raise_event(self, event: CallEvent) -> None:
        if event == CallEvent.CLIENT_CANCEL:
            self._cancelled = True
        elif event == CallEvent.CLIENT_DISCONNECT:
            self._gone = True
        if self._events is None:
            self._events = []
        elif event in self._events:
            return
        self._events.append(event)
        for handler in tuple(self._handlers or ()):
            self._notify(handler, event)

    def _notify(self, handler: Callable[[CallEvent], Any], event: CallEvent) -> None:
        try:
            handler(event)
        except Exception:
            log.exception("call event handler %r failed", handler)

    def run_thread(self, kwargs: dict[str, Any]) -> None:
        """Worker-thread body of a plain-function manager."""
        token = _current.set(self)
        try:
            result = self.operation.manager(**kwargs)
        except BaseException as exc:
            self.fail(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            try:
                self.complete(result)
            except RpcError as exc:
                # The manager completed or aborted its own call (current_call()) before it
                # returned: that reply stands and the return value is ignored, as in rpcrt4.
                # Nothing may escape into the pool's worker thread.
                if exc.status != _INVALID_ASYNC_HANDLE:
                    raise
        finally:
            _current.reset(token)

    def run_async(self, kwargs: dict[str, Any]) -> None:
        """Body of an ``@async_manager`` manager (on the loop, or on a worker thread with
        ``thread=True``): it gets the call and returns; the call completes whenever
        ``complete``/``abort`` is called. ``current_call()`` is the call meanwhile."""
        token = _current.set(self)
        try:
            self.operation.manager(self, **kwargs)
        except BaseException as exc:
            self.fail(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            _current.reset(token)

    async def run_coroutine(self, kwargs: dict[str, Any]) -> None:
        """Task body of an ``async def`` manager (the task has its own context copy)."""
        _current.set(self)
        try:
            result = await self.operation.manager(**kwargs)
        except BaseException as exc:
            self.fail(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            try:
                self.complete(result)
            except RpcError as exc:
                if exc.status != _INVALID_ASYNC_HANDLE:  # completed itself: as run_thread
                    raise

    def __repr__(self) -> str:
        return f"<ServerCall {self.operation.procedure.name} call_id={self.call_id}>"
