"""The runtime's fast path: calls dispatched, and usually answered, inside the wake-up that
brought them (``ServerConnection.answer_inline`` calls :meth:`FastPath.handle` per request).

Purpose: most calls are small and computed at once. For them the general path (an event per
request, two call records, generic NDR over a scope dict, a reply built and queued through the
call object) costs several times the bytes it moves. The fast path takes a request when:

- its operation is in ``Registration.inline_ops``: a manager in the ``@inline`` or the
  ``@async_manager`` (entered on the loop) form, for a procedure whose [in] direction is simple
  (``_ndr._simple``: integers, floats, octet arrays), of a registration without pre-dispatch
  checks (MaxRpcSize, ALLOW_* flags, security callback);
- the interface is active, the server listening (or the interface AUTOLISTEN), MaxCalls not
  reached, and the fast decoder takes the stub.

Otherwise it declines (returns None) *before anything observable happened*, and the general
path applies every rule to the same bytes. tests/rpc/server/test_server_inline.py checks with
Hypothesis that a connection writes the same bytes with and without the fast path.

Forms:
- ``@inline``: called with the decoded values (``fn(*ins)`` when its signature allows, else
  keywords); the return value is fast-encoded (``Operation.fast_reply``; the generic encoder
  decides when it declines). The call is never counted as active, never gets a ServerCall
  unless the manager asks ``rpc.current_call()`` (the thread-local ``inline_frame``), and
  cannot be cancelled or orphaned: it ends before the next PDU is read.
  ``Server.dispatching`` covers it for the waiters of stop/unregister.
- ``@async_manager``: a ServerCall is made (counted as active) and the manager entered; a
  completion during the manager (the common case) is captured by :meth:`Link._finish` and
  answered here; otherwise the call becomes pending (``DISPATCHED``) and completes later
  through the general reply path, like any call.

Faults and their WARNING lines are exactly the general path's (``ServerCall.fail``/``complete``
and ``Link._finish``).
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any, Final

from ...codes import RpcStatus
from ...errors import NdrError, RpcError, Win32Error
from .._connection import DISPATCHED
from ._call import ServerCall, status_of
from ._interface import Operation, Registration

if TYPE_CHECKING:
    from ._link import Link

__all__ = ["FastPath"]

log = logging.getLogger("winaio.rpc.server")

_CALL_FAILED: Final = int(RpcStatus.RPC_S_CALL_FAILED)
_BAD_STUB: Final = int(RpcStatus.RPC_X_BAD_STUB_DATA)
_new: Final = object.__new__
_count: Final = itertools.count


class FastPath:
    """The fast path of one connection (owned by its ``Link``; loop thread only)."""

    __slots__ = (
        "capture",
        "captured",
        "current",
        "deferred",
        "link",
        "server",
    )

    def __init__(self, link: Link) -> None:
        self.link = link
        self.server = link.server
        #: The MS-async call whose manager is running: its completion is captured here.
        self.capture: ServerCall | None = None
        self.captured: tuple[bytes | None, int] | None = None
        #: Calls of this batch left pending (counted in calls_in, not in calls_out yet).
        self.deferred = 0
        #: The ``@inline`` call running, for ``rpc.current_call()`` (``inline_frame.path`` is
        #: this object during a batch): (registration, operation, call_id, [in] values) while
        #: its manager runs, replaced by its ServerCall once current_call() asked; else None.
        #: One store and one reset per call.
        self.current: tuple[Registration, Operation, int, Any] | ServerCall | None = None

    def handle(
        self, reg: Registration, opnum: int, call_id: int, buf: bytes, start: int, end: int
    ) -> Any:
        """``answer_inline``'s handler: the response stub, a fault status, DISPATCHED, or None
        (declined: nothing happened)."""
        op = reg.inline_ops.get(opnum)  # emptied when the interface is unregistered
        if op is None:
            return None
        if reg.autolisten:
            if reg.active_calls >= reg.max_calls:
                return None
        elif self.server._active >= self.server.fast_limit:  # (0 when not listening)
            return None
        ins = op.fast_decode(buf, start, end)  # type: ignore[misc]
        if ins is None:
            return None
        if op.ms_async:
            return self._async_call(reg, op, call_id, ins)
        self.current = (reg, op, call_id, ins)
        try:
            result = op.fast_manager(*ins)
        except Exception as exc:
            return self._failed(reg, op, exc)
        finally:
            self.current = None  # (a call object made by current_call() is freed at once)
        stub = op.fast_reply(result, ins)
        if stub is None:
            return self._encode(reg, op, result, ins)
        return stub

    def _async_call(self, reg: Registration, op: Operation, call_id: int, ins: Any) -> Any:
        server = self.server
        link = self.link
        reg.active_calls += 1
        server._active += 1
        # ServerCall(link, reg, op, call_id, None, None, 0, ins) without its __init__ frame
        # (~300 ns of a ~2 us call here): the same stores, the class defaults do the rest.
        call = _new(ServerCall)
        call._link = link
        call.registration = reg
        call.operation = op
        call.call_id = call_id
        call._once = _count()
        call.ins = ins
        self.capture = call  # also rpc.current_call() while the manager runs
        try:
            op.fast_manager(call, *ins)
        except BaseException as exc:
            call.fail(exc)
            if not isinstance(exc, Exception):
                if self.captured is not None:
                    self.captured = None
                    server.call_finished(call)
                raise
        finally:
            self.capture = None
        captured = self.captured
        if captured is not None:  # completed while its manager ran: released here
            self.captured = None
            reg.active_calls -= 1  # Server.call_finished, less what a simple call never has
            server._active -= 1  # (context handles; the waiters are woken after the batch)
            stub, status = captured
            if stub is not None:
                return stub
            link.log_fault(call, status)
            return status
        link.calls[call_id] = call  # completes later, through Link.finish
        self.deferred += 1
        return DISPATCHED

    def _encode(self, reg: Registration, op: Operation, result: Any, ins: Any) -> bytes | int:
        # The generic encoder decides (and raises the precise error) when the fast one declined.
        try:
            args = dict(zip(op.in_names, ins, strict=True))
            args.update(op.outputs(result))
            stub: bytes = op.encode(args)
            return stub
        except (RpcError, Win32Error) as exc:
            return self._failed(reg, op, exc)
        except Exception as exc:
            log.warning("%s: cannot marshal the reply: %r", op.procedure.name, exc)
            return self._failed(reg, op, RpcError(_BAD_STUB, str(exc)))

    def _failed(self, reg: Registration, op: Operation, exc: Exception) -> int:
        # The same faults and log lines as ServerCall.fail/complete and Link._finish.
        if isinstance(exc, NdrError | RpcError | Win32Error):
            status = status_of(exc)
        else:
            log.warning("manager %s raised", op.procedure.name, exc_info=exc)
            status = _CALL_FAILED
        link = self.link
        log.warning(
            "%s %s: %s.%s (opnum %d) failed: status 0x%x",
            link.protseq, link.peer, reg.interface.name, op.procedure.name,
            op.procedure.opnum, status,
        )  # fmt: skip
        return status
