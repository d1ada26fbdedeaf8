"""Win32 aliases: the RPC server API (rpcdce.h / rpcasync.h) over ``winaio.rpc``.

Conventions: every function returns an RPC_STATUS (``RPC_S_OK`` = 0) instead of raising; out
parameters are ``Ref`` boxes. The functions act on the process-wide ``rpc.default_server()``,
as rpcrt4 has one server per process. An interface handle (``RPC_IF_HANDLE``) is an
``rpc.Interface``; a manager EPV is a mapping {procedure name or opnum: function} (the manager
type UUID is accepted and ignored: winaio has one manager per interface). Server-side async
handles (``PRPC_ASYNC_STATE``) and call handles are the ``rpc.ServerCall`` a manager received.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..codes import RpcStatus
from ..errors import RpcError
from ..rpc import IfFlags, Interface, ServerCall, current_call, default_server
from ._base import Ref

__all__ = [
    "RPC_C_LISTEN_MAX_CALLS_DEFAULT",
    "RPC_C_PROTSEQ_MAX_REQS_DEFAULT",
    "RPC_IF_AUTOLISTEN",
    "RPC_IF_OLE",
    "RPC_IF_ALLOW_UNKNOWN_AUTHORITY",
    "RPC_IF_ALLOW_SECURE_ONLY",
    "RPC_IF_ALLOW_CALLBACKS_WITH_NO_AUTH",
    "RPC_IF_ALLOW_LOCAL_ONLY",
    "RPC_IF_SEC_NO_CACHE",
    "RpcAsyncAbortCall",
    "RpcAsyncCompleteCall",
    "RpcAsyncGetCallHandle",
    "RpcMgmtIsServerListening",
    "RpcMgmtStopServerListening",
    "RpcMgmtWaitServerListen",
    "RpcServerInqBindings",
    "RpcServerListen",
    "RpcServerRegisterIf",
    "RpcServerRegisterIf2",
    "RpcServerRegisterIf3",
    "RpcServerRegisterIfEx",
    "RpcServerTestCancel",
    "RpcServerUnregisterIf",
    "RpcServerUseProtseq",
    "RpcServerUseProtseqEp",
]

RPC_C_LISTEN_MAX_CALLS_DEFAULT: Final = 1234
RPC_C_PROTSEQ_MAX_REQS_DEFAULT: Final = 10
RPC_IF_AUTOLISTEN: Final = int(IfFlags.AUTOLISTEN)
RPC_IF_OLE: Final = int(IfFlags.OLE)
RPC_IF_ALLOW_UNKNOWN_AUTHORITY: Final = int(IfFlags.ALLOW_UNKNOWN_AUTHORITY)
RPC_IF_ALLOW_SECURE_ONLY: Final = int(IfFlags.ALLOW_SECURE_ONLY)
RPC_IF_ALLOW_CALLBACKS_WITH_NO_AUTH: Final = int(IfFlags.ALLOW_CALLBACKS_WITH_NO_AUTH)
RPC_IF_ALLOW_LOCAL_ONLY: Final = int(IfFlags.ALLOW_LOCAL_ONLY)
RPC_IF_SEC_NO_CACHE: Final = int(IfFlags.SEC_NO_CACHE)

_OK: Final = int(RpcStatus.RPC_S_OK)
_UINT_MAX: Final = 0xFFFFFFFF

Epv = Mapping[int | str, Callable[..., Any]]


def _status(fn: Callable[[], Any]) -> int:
    try:
        fn()
    except RpcError as exc:
        return exc.status
    return _OK


def RpcServerUseProtseq(Protseq: str, MaxCalls: int, SecurityDescriptor: Any = None) -> int:
    """[MS:RpcServerUseProtseq] -> core ``Server.use_protseq(protseq)`` (dynamic endpoint).

    Deviation: ncacn_ip_tcp and ncalrpc only (others: RPC_S_PROTSEQ_NOT_SUPPORTED); TCP listens
    on 127.0.0.1 (Windows: every interface); MaxCalls and the security descriptor are ignored;
    ncalrpc endpoints are Unix sockets in the server's lrpc directory.
    """
    return _status(lambda: default_server().use_protseq(Protseq))


def RpcServerUseProtseqEp(
    Protseq: str, MaxCalls: int, Endpoint: str | None, SecurityDescriptor: Any = None
) -> int:
    """[MS:RpcServerUseProtseqEp] -> core ``Server.use_protseq(protseq, endpoint)``.

    Deviation: as RpcServerUseProtseq (two protocol sequences, 127.0.0.1, Unix-socket ncalrpc).
    """
    return _status(lambda: default_server().use_protseq(Protseq, Endpoint))


def RpcServerRegisterIf3(
    IfSpec: Interface,
    MgrTypeUuid: Any,
    MgrEpv: Epv,
    Flags: int,
    MaxCalls: int,
    MaxRpcSize: int,
    IfCallback: Callable[[Interface, ServerCall], int] | None,
    SecurityDescriptor: Any = None,
) -> int:
    """[MS:RpcServerRegisterIf3] -> core ``Server.register_interface``.

    ``MaxRpcSize`` (UINT)-1 means no limit.

    Deviation: the interface handle is an ``rpc.Interface`` and the EPV a mapping of managers;
    the manager type UUID and the security descriptor are ignored (one manager per interface);
    every call is unauthenticated, so ALLOW_SECURE_ONLY refuses all calls.
    """
    size = None if MaxRpcSize & _UINT_MAX == _UINT_MAX else MaxRpcSize
    return _status(
        lambda: default_server().register_interface(
            IfSpec,
            MgrEpv,
            flags=Flags,
            max_calls=MaxCalls,
            max_rpc_size=size,
            security_callback=IfCallback,
        )
    )


def RpcServerRegisterIf2(
    IfSpec: Interface,
    MgrTypeUuid: Any,
    MgrEpv: Epv,
    Flags: int,
    MaxCalls: int,
    MaxRpcSize: int,
    IfCallbackFn: Callable[[Interface, ServerCall], int] | None,
) -> int:
    """[MS:RpcServerRegisterIf2] -> core ``Server.register_interface``.

    Deviation: as RpcServerRegisterIf3 (rpc.Interface handle, manager mapping, no auth).
    """
    return RpcServerRegisterIf3(
        IfSpec, MgrTypeUuid, MgrEpv, Flags, MaxCalls, MaxRpcSize, IfCallbackFn
    )


def RpcServerRegisterIfEx(
    IfSpec: Interface,
    MgrTypeUuid: Any,
    MgrEpv: Epv,
    Flags: int,
    MaxCalls: int,
    IfCallback: Callable[[Interface, ServerCall], int] | None,
) -> int:
    """[MS:RpcServerRegisterIfEx] -> core ``Server.register_interface`` (no size limit).

    Deviation: as RpcServerRegisterIf3 (rpc.Interface handle, manager mapping, no auth).
    """
    return RpcServerRegisterIf3(IfSpec, MgrTypeUuid, MgrEpv, Flags, MaxCalls, -1, IfCallback)


def RpcServerRegisterIf(IfSpec: Interface, MgrTypeUuid: Any, MgrEpv: Epv) -> int:
    """[MS:RpcServerRegisterIf] -> core ``Server.register_interface`` (flags 0, defaults).

    Deviation: as RpcServerRegisterIf3 (rpc.Interface handle, manager mapping, no auth).
    """
    return RpcServerRegisterIf3(
        IfSpec, MgrTypeUuid, MgrEpv, 0, RPC_C_LISTEN_MAX_CALLS_DEFAULT, -1, None
    )


def RpcServerUnregisterIf(
    IfSpec: Interface | None, MgrTypeUuid: Any, WaitForCallsToComplete: int
) -> int:
    """[MS:RpcServerUnregisterIf] -> core ``Server.unregister_interface``; an interface that is
    not registered gives RPC_S_UNKNOWN_IF (rpc #32).

    Deviation: the interface handle is an ``rpc.Interface`` (None: every interface but the
    AUTOLISTEN ones, as Wine does) and the manager type UUID is ignored (winaio has one manager
    EPV per interface, so there is no per-type unregistration).
    """
    return _status(
        lambda: default_server().unregister_interface(IfSpec, wait=bool(WaitForCallsToComplete))
    )


def RpcServerListen(MinimumCallThreads: int, MaxCalls: int, DontWait: int) -> int:
    """[MS:RpcServerListen] -> core ``Server.listen(max_calls, wait=not DontWait)``.

    Deviation: MinimumCallThreads is ignored (managers run on the server's executor).
    """
    return _status(lambda: default_server().listen(MaxCalls, wait=not DontWait))


def RpcMgmtStopServerListening(Binding: Any) -> int:
    """[MS:RpcMgmtStopServerListening] -> core ``Server.stop_listening`` of the process-wide
    ``rpc.default_server()``.

    Deviation: only the local server can be stopped: a binding handle (on Windows, a remote stop
    through the server's mgmt interface, subject to its authorization function) gives
    RPC_S_WRONG_KIND_OF_BINDING, as Wine does.
    """
    if Binding is not None:
        return int(RpcStatus.RPC_S_WRONG_KIND_OF_BINDING)
    return _status(default_server().stop_listening)


def RpcMgmtWaitServerListen() -> int:
    """[MS:RpcMgmtWaitServerListen] -> core ``Server.wait`` of ``rpc.default_server()``:
    RPC_S_NOT_LISTENING before RpcServerListen (or after a completed wait),
    RPC_S_ALREADY_LISTENING while another thread waits, RPC_S_OK once stopped and every call
    has completed.

    Deviation: after the calls have drained it also closes the server's client connections
    (their queued replies written first) unless an AUTOLISTEN interface is registered; rpcrt4
    documents nothing about connections there.
    """
    return _status(default_server().wait)


def RpcMgmtIsServerListening(Binding: Any) -> int:
    """[MS:RpcMgmtIsServerListening] -> core ``Server.is_listening`` of
    ``rpc.default_server()``: RPC_S_OK or RPC_S_NOT_LISTENING.

    Deviation: only the local server: a binding handle (on Windows, a query of a remote server
    through its mgmt interface) gives RPC_S_WRONG_KIND_OF_BINDING.
    """
    if Binding is not None:
        return int(RpcStatus.RPC_S_WRONG_KIND_OF_BINDING)
    return _OK if default_server().is_listening() else int(RpcStatus.RPC_S_NOT_LISTENING)


def RpcServerInqBindings(BindingVector: Ref[Any]) -> int:
    """[MS:RpcServerInqBindings] -> core ``Server.bindings``; RPC_S_NO_BINDINGS when there is
    no endpoint.

    Deviation: the Ref receives a list of string bindings, not an RPC_BINDING_VECTOR of binding
    handles (there is no RpcBindingVectorFree to call).
    """
    bindings = default_server().bindings
    if not bindings:
        return int(RpcStatus.RPC_S_NO_BINDINGS)
    BindingVector.value = [b.string_binding for b in bindings]
    return _OK


def RpcServerTestCancel(BindingHandle: Any) -> int:
    """[MS:RpcServerTestCancel] -> core ``ServerCall.test_cancel``: RPC_S_OK if the client
    cancelled, RPC_S_CALL_IN_PROGRESS if not, RPC_S_NO_CALL_ACTIVE outside a call (rpc #15).

    Deviation: the call handle is the ``rpc.ServerCall`` (None: the calling manager's call).
    """
    try:
        call = BindingHandle if BindingHandle is not None else current_call()
    except RpcError as exc:
        return exc.status
    if not isinstance(call, ServerCall):
        return int(RpcStatus.RPC_S_INVALID_BINDING)
    if call.done:
        return int(RpcStatus.RPC_S_NO_CALL_ACTIVE)
    return _OK if call.test_cancel() else int(RpcStatus.RPC_S_CALL_IN_PROGRESS)


def RpcAsyncGetCallHandle(pAsync: Any) -> ServerCall | None:
    """[MS:RpcAsyncGetCallHandle] -> the ``ServerCall`` itself; None (NULL) for anything else.

    Deviation: the async handle is the ``rpc.ServerCall`` a manager received, and it is also
    the call handle returned (winaio has no separate RPC_ASYNC_STATE and server binding handle;
    the call object is what RpcServerTestCancel and the rest take).
    """
    return pAsync if isinstance(pAsync, ServerCall) else None


def RpcAsyncCompleteCall(pAsync: Any, Reply: Any = None) -> int:
    """[MS:RpcAsyncCompleteCall] (server side) -> core ``ServerCall.complete(Reply)``;
    RPC_S_INVALID_ASYNC_HANDLE for a call already completed (rpc #19).

    Deviation: the async handle is the rpc.ServerCall and the reply argument carries every output
    (values out: the return value, or a mapping / tuple when there are [out] parameters); the
    client side of RpcAsyncCompleteCall is not in this layer yet.
    """
    if not isinstance(pAsync, ServerCall):
        return int(RpcStatus.RPC_S_INVALID_ASYNC_HANDLE)
    return _status(lambda: pAsync.complete(Reply))


def RpcAsyncAbortCall(pAsync: Any, ExceptionCode: int) -> int:
    """[MS:RpcAsyncAbortCall] -> core ``ServerCall.abort(code)`` (rpc #18, #19);
    RPC_S_INVALID_ASYNC_HANDLE for a call already completed, ERROR_INVALID_PARAMETER for a code
    that does not fit 32 bits (the call stays open).

    Deviation: the async handle is the ``rpc.ServerCall`` a manager received, not an
    RPC_ASYNC_STATE; server side only (a client aborting its own call is not in this layer).
    """
    if not isinstance(pAsync, ServerCall):
        return int(RpcStatus.RPC_S_INVALID_ASYNC_HANDLE)
    return _status(lambda: pAsync.abort(ExceptionCode))
