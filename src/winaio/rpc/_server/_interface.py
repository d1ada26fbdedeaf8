"""Interfaces (IDL as data) and the managers bound to them (the EPV).

Purpose: ``Interface`` declares an RPC interface once (UUID, version, ``Procedure`` descriptors
indexed by opnum); ``Registration`` is one interface registered on a server with its managers,
flags and limits (RpcServerRegisterIf3). ``Operation`` is the per-opnum plan the dispatcher uses
on every call: the procedure, its manager and manager kind, which parameters are context handles
or pipes, and how the manager's return value maps to the [out] parameters.

Rules (spec A1, A7, A11, A13 and rpc-api.md §2):
- Manager kinds: a plain function runs on a worker thread (rpcrt4 runs managers on its pool);
  an ``async def`` runs on the server's event loop; a function marked with
  :func:`async_manager` (MIDL's ``[async]``) receives the call object first and completes it
  later with ``call.complete`` / ``call.abort``.
- Values in, values out: managers get the [in] and [in,out] parameters as keyword arguments and
  return the outputs: nothing, the only output itself, or (several outputs) a mapping by name or
  a sequence in declaration order ([out] parameters, then the return value). [out] pipes are
  not outputs: the manager pushes into the ``PipeOut`` it is given.
- A partial EPV is allowed: a procedure without manager answers like an unknown opnum
  (nca_s_op_rng_error, PFC_DID_NOT_EXECUTE); managers naming no procedure are refused.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, overload
from uuid import UUID

from ...codes import RpcStatus
from ...errors import RpcError
from .._ndr import RETURN, ContextHandle, Direction, Pipe, Procedure
from .._pdu import SyntaxId

__all__ = [
    "ASYNC_MANAGER",
    "IfFlags",
    "Interface",
    "ManagerKind",
    "Operation",
    "Registration",
    "async_manager",
    "inline",
    "LISTEN_MAX_CALLS_DEFAULT",
]

#: RPC_C_LISTEN_MAX_CALLS_DEFAULT [MSL:RpcServerListen].
LISTEN_MAX_CALLS_DEFAULT: Final = 1234
ASYNC_MANAGER: Final = "__winaio_rpc_async_manager__"

F = TypeVar("F", bound=Callable[..., Any])


@overload
def async_manager(fn: F, /) -> F: ...
@overload
def async_manager(*, thread: bool = False) -> Callable[[F], F]: ...


def async_manager(fn: F | None = None, /, *, thread: bool = False) -> F | Callable[[F], F]:
    """Mark ``fn`` as a Microsoft asynchronous manager ([async] in the ACF).

    It is called with the :class:`ServerCall` first and the [in] parameters as keyword
    arguments; it returns at once and the call completes when ``call.complete(result)`` or
    ``call.abort(status)`` is called, from any thread or task (RpcAsyncCompleteCall /
    RpcAsyncAbortCall) [MSL:handling-asynchronous-calls]. By default it is entered on the
    server's event loop; ``@async_manager(thread=True)`` enters it on a worker thread from the
    server's executor, as rpcrt4 does (the thread may end long before the call completes).
    """

    def mark(f: F) -> F:
        setattr(f, ASYNC_MANAGER, "thread" if thread else "loop")
        return f

    return mark(fn) if fn is not None else mark


def inline(fn: F, /) -> F:
    """Mark a plain function as a declared non-blocking manager: it runs on the thread that
    received the request (the server's loop thread), values in and values out, and the call
    completes when it returns, with no thread hand-off either way.

    This is how rpcrt4 runs every manager (on the thread that received the call); winaio's
    default for a plain function is a worker thread instead, because a Python manager that
    blocks would stall every connection of the loop. Use ``@inline`` for managers that only
    compute (no blocking I/O, no waits, no long loops): they cost a few microseconds instead
    of two cross-thread wake-ups (about 30 us each). For a simple procedure (integers and
    byte buffers, see ``_ndr._simple``) the whole call then takes the runtime's fast path.
    ``rpc.current_call()`` works inside it; the call cannot be completed or aborted through
    the call object (it completes by returning or raising).
    """
    mark = getattr(fn, ASYNC_MANAGER, None)
    if inspect.iscoroutinefunction(fn) or mark not in (None, "inline"):
        raise TypeError(f"@inline takes a plain function, not {fn!r}")
    setattr(fn, ASYNC_MANAGER, "inline")
    return fn


class IfFlags(enum.IntFlag):
    """Interface registration flags [MSL:interface-registration-flags]."""

    NONE = 0
    AUTOLISTEN = 0x01
    OLE = 0x02
    ALLOW_UNKNOWN_AUTHORITY = 0x04
    ALLOW_SECURE_ONLY = 0x08
    ALLOW_CALLBACKS_WITH_NO_AUTH = 0x10
    ALLOW_LOCAL_ONLY = 0x20
    SEC_NO_CACHE = 0x40


class ManagerKind(enum.Enum):
    THREAD = "thread"
    COROUTINE = "coroutine"
    ASYNC_CALL = "async_call"
    ASYNC_CALL_THREAD = "async_call_thread"
    INLINE = "inline"


class Interface:
    """An RPC interface: name, UUID, (major, minor) version and its procedures by opnum."""

    __slots__ = ("_by_name", "_by_opnum", "name", "syntax")

    def __init__(
        self,
        name: str,
        uuid: str | UUID,
        version: tuple[int, int] | int,
        procedures: Iterable[Procedure],
    ) -> None:
        major, minor = (version, 0) if isinstance(version, int) else version
        if not (0 <= major <= 0xFFFF and 0 <= minor <= 0xFFFF):
            raise ValueError(f"interface version {major}.{minor} out of range")
        self.name = name
        self.syntax = SyntaxId(uuid if isinstance(uuid, UUID) else UUID(uuid), major, minor)
        self._by_opnum: dict[int, Procedure] = {}
        self._by_name: dict[str, Procedure] = {}
        for proc in procedures:
            if proc.opnum in self._by_opnum or proc.name in self._by_name:
                raise ValueError(f"{name}: procedure {proc.name} (opnum {proc.opnum}) twice")
            self._by_opnum[proc.opnum] = proc
            self._by_name[proc.name] = proc

    @property
    def uuid(self) -> UUID:
        return self.syntax.uuid

    @property
    def version(self) -> tuple[int, int]:
        return self.syntax.major, self.syntax.minor

    @property
    def procedures(self) -> tuple[Procedure, ...]:
        """The procedures in opnum order."""
        return tuple(self._by_opnum[k] for k in sorted(self._by_opnum))

    def procedure(self, key: int | str) -> Procedure:
        """The procedure with that opnum or name (KeyError if none)."""
        return self._by_opnum[key] if isinstance(key, int) else self._by_name[key]

    def __repr__(self) -> str:
        return f"Interface({self.name!r}, {self.syntax})"


def _kind(fn: Callable[..., Any]) -> ManagerKind:
    mark = getattr(fn, ASYNC_MANAGER, None)
    if mark == "inline":
        return ManagerKind.INLINE
    if mark == "thread":
        return ManagerKind.ASYNC_CALL_THREAD
    if mark:
        return ManagerKind.ASYNC_CALL
    if inspect.iscoroutinefunction(fn):
        return ManagerKind.COROUTINE
    return ManagerKind.THREAD


class Operation:
    """The dispatcher's plan for one opnum of a registration (built once, used per call)."""

    __slots__ = (
        "context_params",
        "decode",
        "encode",
        "fast_decode",
        "fast_manager",
        "fast_reply",
        "in_names",
        "in_pipe_types",
        "in_pipes",
        "kind",
        "manager",
        "ms_async",
        "out_names",
        "out_pipe_types",
        "out_pipes",
        "procedure",
    )

    def __init__(self, procedure: Procedure, manager: Callable[..., Any]) -> None:
        self.procedure = procedure
        self.manager = manager
        self.kind = _kind(manager)
        #: An @async_manager entered on the loop (the fast path's one test per call).
        self.ms_async = self.kind is ManagerKind.ASYNC_CALL
        #: Little-endian request decoder / reply encoder, bound once (the per-call path).
        self.decode, self.encode = procedure.little_endian_codecs()
        ins = procedure.in_params
        self.in_names = tuple(p.name for p in ins)
        self.in_pipes = tuple(p.name for p in ins if isinstance(p.type, Pipe))
        self.out_pipes = tuple(p.name for p in procedure.out_params if isinstance(p.type, Pipe))
        self.in_pipe_types = tuple(p.type for p in ins if isinstance(p.type, Pipe))
        self.out_pipe_types = tuple(
            p.type for p in procedure.out_params if isinstance(p.type, Pipe)
        )
        outs = [p.name for p in procedure.out_params if not isinstance(p.type, Pipe)]
        if procedure.returns is not None:
            outs.append(RETURN)
        self.out_names = tuple(outs)
        #: (name, direction, typedef name) of each context-handle parameter.
        self.context_params: tuple[tuple[str, Direction, str], ...] = tuple(
            (p.name, p.direction, p.type.name)
            for p in procedure.params
            if isinstance(p.type, ContextHandle)
        )
        #: The inline fast path (``_fast.FastPath``), for an ``@inline`` or loop
        #: ``@async_manager`` manager of a simple procedure: ``fast_decode(buf, start, end) ->
        #: [in] values | None`` and ``fast_reply(result, ins) -> stub | None`` (None: the
        #: generic encoder decides); ``fast_decode`` None = generic path. ``fast_manager`` is
        #: called with the values positionally (after the call object for @async_manager): the
        #: manager itself when its signature allows, else an adapter passing keywords.
        self.fast_manager: Callable[..., Any] = manager
        self.fast_decode: Callable[[bytes, int, int], Any] | None = None
        self.fast_reply: Callable[[Any, Any], bytes | None] = _no_reply
        fast_kind = self.kind in (ManagerKind.INLINE, ManagerKind.ASYNC_CALL)
        if fast_kind and not self.context_params:
            decode, encode = procedure.simple_codecs()
            if decode is not None:
                self.fast_decode = decode
                if encode is not None:
                    self.fast_reply = _replier(encode, self.out_names)
                skip = 0 if self.kind is ManagerKind.INLINE else 1  # the call object first
                if not _positional(manager, self.in_names, skip):
                    self.fast_manager = _by_keyword(manager, self.in_names, skip)

    def outputs(self, result: Any) -> dict[str, Any]:
        """The manager's return value as {output name: value} (rpc-api.md §2)."""
        names = self.out_names
        if not names:
            return {}
        if len(names) == 1:
            return {names[0]: result}
        if isinstance(result, Mapping):
            missing = [n for n in names if n not in result]
            if missing:
                raise RpcError(
                    RpcStatus.RPC_X_BAD_STUB_DATA,
                    f"{self.procedure.name}: manager result lacks {', '.join(missing)}",
                )
            return {n: result[n] for n in names}
        if isinstance(result, tuple | list) and len(result) == len(names):
            return dict(zip(names, result, strict=True))
        raise RpcError(
            RpcStatus.RPC_X_BAD_STUB_DATA,
            f"{self.procedure.name}: return a mapping or a {len(names)}-tuple of {names}",
        )


def _positional(fn: Callable[..., Any], names: tuple[str, ...], skip: int) -> bool:
    """Can ``fn(*first, *values)`` stand for ``fn(*first, **dict(zip(names, values)))``
    (``skip``: how many leading arguments ``first`` are)?"""
    try:
        params = list(inspect.signature(fn).parameters.values())[skip:]
    except (TypeError, ValueError):
        return False
    head, rest = params[: len(names)], params[len(names) :]
    if [p.name for p in head] != list(names):
        return False
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in head):
        return False
    return all(
        p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        or p.default is not inspect.Parameter.empty
        for p in rest
    )


def _by_keyword(fn: Callable[..., Any], names: tuple[str, ...], skip: int) -> Callable[..., Any]:
    """``fn`` called with ``skip`` leading arguments, then ``values`` passed by ``names``."""
    if skip:

        def after_call(first: Any, *values: Any) -> Any:
            return fn(first, **dict(zip(names, values, strict=True)))

        return after_call

    def by_name(*values: Any) -> Any:
        return fn(**dict(zip(names, values, strict=True)))

    return by_name


def _no_reply(result: Any, ins: Any) -> None:
    """No fast encoder: the generic one decides."""
    return None


def _replier(
    encode: Callable[[Any, Any], bytes | None], names: tuple[str, ...]
) -> Callable[[Any, Any], bytes | None]:
    """``reply(result, ins) -> stub | None``: the manager's result mapped to the outputs as
    :meth:`Operation.outputs` does, then fast-encoded; None when the generic path must decide."""
    count = len(names)
    if count == 0:

        def nothing(result: Any, ins: Any) -> bytes | None:
            return encode((), ins)

        return nothing
    if count == 1:
        return encode  # simple_codecs: a single output is encoded from the value itself

    def several(result: Any, ins: Any) -> bytes | None:
        kind = type(result)
        if kind is tuple or kind is list:
            return encode(result, ins) if len(result) == count else None
        if isinstance(result, Mapping):
            try:
                return encode([result[n] for n in names], ins)
            except KeyError:
                return None
        return None

    return several


class Registration:
    """One interface registered on a server (RpcServerRegisterIf3's arguments)."""

    __slots__ = (
        "active",
        "active_calls",
        "autolisten",
        "checks",
        "flags",
        "inline_ops",
        "interface",
        "max_calls",
        "max_rpc_size",
        "operations",
        "rundowns",
        "security_callback",
    )

    def __init__(
        self,
        interface: Interface,
        managers: Mapping[int | str, Callable[..., Any]],
        *,
        flags: int = 0,
        max_calls: int = LISTEN_MAX_CALLS_DEFAULT,
        max_rpc_size: int | None = None,
        security_callback: Callable[[Interface, Any], int] | None = None,
        rundowns: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.interface = interface
        self.flags = IfFlags(flags)
        #: Plain-bool copies of the flags the dispatcher reads per call (IntFlag ops are slow).
        self.autolisten = bool(flags & IfFlags.AUTOLISTEN)
        self.checks = bool(
            flags & (IfFlags.ALLOW_SECURE_ONLY | IfFlags.ALLOW_LOCAL_ONLY)
            or max_rpc_size is not None
        )
        self.max_calls = max_calls
        self.max_rpc_size = max_rpc_size
        self.security_callback = security_callback
        self.rundowns: dict[str, Callable[[Any], Any]] = dict(rundowns or {})
        self.operations: dict[int, Operation] = {}
        for key, fn in managers.items():
            try:
                proc = interface.procedure(key)
            except KeyError:
                raise ValueError(f"{interface.name} has no procedure {key!r}") from None
            if not callable(fn):
                raise TypeError(f"manager for {proc.name} is not callable: {fn!r}")
            self.operations[proc.opnum] = Operation(proc, fn)
        #: Operations the inline fast path may answer (``Link._inline``): none when a check
        #: must run before dispatch (MaxRpcSize, ALLOW_* flags, a security callback).
        self.inline_ops: dict[int, Operation] = (
            {}
            if self.checks or security_callback is not None
            else {k: op for k, op in self.operations.items() if op.fast_decode is not None}
        )
        self.active = True
        self.active_calls = 0

    def deactivate(self) -> None:
        """Unregistered or replaced: refuse new calls (the fast path sees no operation)."""
        self.active = False
        self.inline_ops = {}
