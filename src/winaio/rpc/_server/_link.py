"""One server connection: drives a ``ServerConnection`` and dispatches its calls.

A ``Link`` is the protocol object the transport engine calls (asyncio's duck-typed Protocol:
``connection_made``, ``data_received``, ``eof_received``, ``connection_lost``); it runs on the
engine's loop thread only, except ``finish``/``forget``, which any thread may call and which
hop to the loop thread when needed.

Per wake-up (``data_received``): feed the bytes, take every event until NEED_DATA, dispatch each
complete request, and write everything the batch produced (bind_acks, faults, replies of calls
completed inline) with one ``write`` (the "all ready PDUs in one batch" rule: ``_output``,
the base class ``LinkOutput``, with the flow control of [out] pipes pushed from other threads
and of streamed [in] pipes).

Checks before a manager is entered, each answered with a fault carrying PFC_DID_NOT_EXECUTE
(spec A11, B8): the interface was unregistered (nca_s_unk_if, rpc #58); the server is not
listening and the interface is not AUTOLISTEN (RPC_S_NOT_LISTENING -> nca_s_server_too_busy);
no manager for the opnum (nca_s_op_rng_error, rpc #57); MaxCalls reached
(RPC_S_SERVER_TOO_BUSY); request stub over MaxRpcSize, ALLOW_SECURE_ONLY with our
unauthenticated calls, ALLOW_LOCAL_ONLY on a non-ncalrpc transport, or a security callback that
does not return 0 (RPC_S_ACCESS_DENIED 5, rpc #34-#36); stub that does not decode (0x6F7 or the
NDR status, rpc #59); an unknown context handle (0x1C00001A, rpc #87).

Connection loss (``connection_lost``): every pending call gets CLIENT_DISCONNECT and its late
completion is dropped (the call is forgotten, nothing is written); the association's context
handles are run down when this was its last connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ...codes import RpcStatus
from ...errors import NdrError, RemoteProtocolError, RpcError
from .._connection import (
    NEED_DATA,
    BindRefused,
    CallOrphaned,
    CancelRequested,
    RequestFragment,
    RequestReceived,
    RequestRejected,
    ServerConnection,
)
from .._ndr import IN, OUT, drep_byteorder
from ._call import CallEvent, ServerCall, inline_frame
from ._contexts import CONTEXT_MISMATCH, Entry
from ._fast import FastPath
from ._interface import IfFlags, ManagerKind, Operation, Registration
from ._output import LinkOutput
from ._pipes import InStream, OutStream, PipeIn, empty_chunk

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["Link"]

log = logging.getLogger("winaio.rpc.server")

_UNKNOWN_IF: Final = int(RpcStatus.RPC_S_UNKNOWN_IF)
_NOT_LISTENING: Final = int(RpcStatus.RPC_S_NOT_LISTENING)
_OP_RANGE: Final = int(RpcStatus.RPC_S_PROCNUM_OUT_OF_RANGE)
_TOO_BUSY: Final = int(RpcStatus.RPC_S_SERVER_TOO_BUSY)
_ACCESS_DENIED: Final = int(RpcStatus.RPC_S_ACCESS_DENIED)
_THREAD: Final = ManagerKind.THREAD
_COROUTINE: Final = ManagerKind.COROUTINE
_INLINE: Final = ManagerKind.INLINE
_LAST_FRAG: Final = 0x02  # PFC_LAST_FRAG: a RequestReceived without it is a streamed request
_CANCELLED: Final = int(RpcStatus.RPC_S_CALL_CANCELLED)
_frame: Final = inline_frame
_DEBUG: Final = logging.DEBUG


def _streamed(reg: Registration, opnum: int) -> bool:
    """ServerConnection's stream_requests: dispatch at the first fragment the calls whose [in]
    pipes a manager can pull while they arrive (not @inline: it would block the loop; not with
    pre-dispatch size checks, which need the whole stub)."""
    op = reg.operations.get(opnum)
    return op is not None and bool(op.in_pipes) and op.kind is not _INLINE and not reg.checks


class Link(LinkOutput):
    """The server side of one client connection (see the module docstring); its writes and
    back-pressure: ``LinkOutput`` (``_output``)."""

    def __init__(self, server: Server, protseq: str) -> None:
        super().__init__(server)
        self.protseq = protseq
        self.peer: Any = None
        self.local: Any = None
        self.conn: ServerConnection[Registration] = None  # type: ignore[assignment]
        self.calls: dict[int, ServerCall] = {}
        self._timer: Any = None
        self.fast = FastPath(self)
        self._handle = self.fast.handle  # answer_inline's handler, bound once
        #: Streamed requests whose [in] pipes are still arriving: call_id -> (InStream, reg, op,
        #: object UUID); the InStream also reaches the call once it is dispatched.
        self.streams: dict[int, tuple[InStream, Registration, Operation, Any]] = {}

    # -- transport callbacks (loop thread) -------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        server = self.server
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer
        sock = transport.get_extra_info("sockname")
        self.local = sock
        local_port = str(sock[1]) if isinstance(sock, tuple) else ""
        self.conn = ServerConnection(
            server.registry,
            assoc_groups=server.groups,
            sec_addr=local_port,
            peer=peer[0] if isinstance(peer, tuple) else None,
            max_request_size=server.max_request_size,
            stream_requests=_streamed,
        )
        if not server.link_opened(self):
            self.closed = True
            log.warning("%s %s: over the connection limit, closed", self.protseq, peer)
            transport.abort()  # over the connection limit: refuse this one only
            return
        log.info("%s %s: connected (to %s)", self.protseq, peer, sock)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        # The inline fast path is skipped while per-call debug lines are wanted (--verbose).
        if log.isEnabledFor(_DEBUG):
            self._dispatch_all(None)
            return
        server = self.server
        server.dispatching += 1
        _frame.path = self.fast
        try:
            answered = conn.answer_inline(self._handle)
        finally:
            _frame.path = None
            server.dispatching -= 1
        if not answered or conn.buffered:
            self._dispatch_all(self._handle, answered)
            return
        # The common wake-up: every PDU taken by the fast path, one write.
        stats = server.stats
        stats.calls_in += answered
        fast = self.fast
        if fast.deferred:
            answered -= fast.deferred
            fast.deferred = 0
        stats.calls_out += answered
        stats.pkts_in += 1
        data = conn.data_to_send()
        if data and not self.closed:
            self.transport.write(data)
            stats.pkts_out += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if server._waiting:
            server.notify()

    def _dispatch_all(self, inline: Callable[..., Any] | None, answered: int = 0) -> None:
        """The general loop: every event of the buffered bytes, inline answers in between
        (``answered``: calls the fast path already answered in this wake-up)."""
        conn = self.conn
        server = self.server
        out: list[bytes] = []
        self._batch = out
        server.dispatching += 1
        try:
            while True:
                if inline is not None:
                    _frame.path = self.fast
                    try:
                        answered += conn.answer_inline(inline)
                    finally:
                        _frame.path = None
                event = conn.next_event()
                if event is NEED_DATA:
                    break
                kind = type(event)
                if kind is RequestReceived:
                    if event.pfc_flags & _LAST_FRAG:  # type: ignore[union-attr]
                        self._request(event)  # type: ignore[arg-type]
                    else:
                        self._stream_start(event)  # type: ignore[arg-type]
                elif kind is RequestFragment:
                    self._stream_feed(event.call_id, event.stub, event.last)  # type: ignore[union-attr]
                elif kind is CancelRequested:
                    call = self.calls.get(event.call_id)  # type: ignore[union-attr]
                    if call is not None:
                        call.raise_event(CallEvent.CLIENT_CANCEL)
                    elif event.call_id in self.streams:  # type: ignore[union-attr]
                        self.streams[event.call_id][0].cancels += 1  # type: ignore[union-attr]
                elif kind is CallOrphaned:
                    self._orphaned(event.call_id)  # type: ignore[union-attr]
                elif kind is RequestRejected:
                    log.warning(
                        "%s %s: call_id %d refused by the connection: %s (status 0x%x)",
                        self.protseq, self.peer, event.call_id, event.reason,  # type: ignore[union-attr]
                        event.status,  # type: ignore[union-attr]
                    )  # fmt: skip
                    server.stats.calls_in += 1
                elif kind is BindRefused:
                    log.info(
                        "%s %s: bind refused, reason %d",
                        self.protseq, self.peer, event.provider_reject_reason,  # type: ignore[union-attr]
                    )  # fmt: skip
        except RemoteProtocolError as exc:
            log.info("%s %s: protocol error, closing: %s", self.protseq, self.peer, exc)
            self._batch = None
            pending = conn.data_to_send()
            if pending:
                out.append(pending)
            self._write(out)
            self.transport.close()
            return
        finally:
            server.dispatching -= 1
            if answered:
                stats = server.stats
                stats.calls_in += answered
                stats.calls_out += answered - self.fast.deferred
                self.fast.deferred = 0
            if server._waiting:
                server.notify()
        self._batch = None
        pending = conn.data_to_send()
        if pending:
            out.append(pending)
        if out:
            self._write(out)
        server.stats.pkts_in += 1
        if conn.buffered:
            self._arm_idle()
        elif self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.closed or self in self.server.links:
            log.info("%s %s: closed%s", self.protseq, self.peer, f" ({exc})" if exc else "")
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        closed = self.conn.close()
        calls, self.calls = self.calls, {}
        self.streams.clear()
        gone = RpcError(_CANCELLED, "the client went away")
        for call in calls.values():
            if call.in_stream is not None:
                call.in_stream.fail(gone)
            call.raise_event(CallEvent.CLIENT_DISCONNECT)
        self.release_pushers()
        server = self.server
        if closed.association_ended:
            server.association_ended(closed.assoc_group_id)
        server.link_closed(self, calls.values())

    # -- helpers ---------------------------------------------------------------------------------

    def _arm_idle(self) -> None:
        timeout = self.server.idle_timeout
        if timeout is not None and self._timer is None:
            self._timer = self.server.engine.call_later(timeout, self._idle)

    def _idle(self) -> None:
        self._timer = None
        if not self.closed and self.conn.buffered:
            log.info("%s %s: stopped in the middle of a PDU, closing", self.protseq, self.peer)
            self.transport.abort()

    def _fault(self, call_id: int, status: int) -> None:
        log.warning(
            "%s %s: call_id %d refused before dispatch: status 0x%x",
            self.protseq, self.peer, call_id, status,
        )  # fmt: skip
        self._emit(self.conn.send_fault(call_id, status, did_not_execute=True))

    def _orphaned(self, call_id: int) -> None:
        stream = self.streams.pop(call_id, None)
        call = self.calls.pop(call_id, None)
        if call is not None:
            if call.in_stream is not None:
                call.in_stream.fail(RpcError(_CANCELLED, "the client orphaned the call"))
            call.raise_event(CallEvent.CLIENT_CANCEL)
            call.raise_event(CallEvent.CLIENT_DISCONNECT)
        elif stream is not None:
            # A streamed request orphaned before its parameters arrived: end its record
            # (an orphaned call sends nothing, but earlier queued bytes may leave now).
            self._emit(self.conn.send_fault(call_id, _CANCELLED))

    # -- dispatch (loop thread) ------------------------------------------------------------------

    def _request(self, ev: RequestReceived[Registration]) -> None:
        op = self._admit(ev)
        if op is None:
            return
        drep = ev.drep
        try:
            if drep[0] == 0x10:
                args = op.decode(ev.stub)
            else:
                args = op.procedure.decode_request(ev.stub, byteorder=drep_byteorder(drep))
        except NdrError as exc:
            return self._fault(ev.call_id, exc.status)
        self._start(ev.interface, op, ev.call_id, ev.object, args, ev.cancel_count, None)
        return None

    def _admit(self, ev: RequestReceived[Registration]) -> Operation | None:
        """The checks before a request's stub is decoded; a fault and None if one fails."""
        server = self.server
        reg = ev.interface
        call_id = ev.call_id
        server.stats.calls_in += 1
        if not reg.active:
            self._fault(call_id, _UNKNOWN_IF)
            return None
        if not (server.listening or reg.autolisten):
            self._fault(call_id, _NOT_LISTENING)
            return None
        op = reg.operations.get(ev.opnum)
        if op is None:
            self._fault(call_id, _OP_RANGE)
            return None
        if reg.checks and self._denied(reg, len(ev.stub)):
            self._fault(call_id, _ACCESS_DENIED)
            return None
        return op

    def _start(
        self,
        reg: Registration,
        op: Operation,
        call_id: int,
        obj: Any,
        args: dict[str, Any],
        cancels: int,
        stream: InStream | None,
    ) -> ServerCall | None:
        """The checks after decoding, then the manager: the call, or None if refused."""
        server = self.server
        call = ServerCall(self, reg, op, call_id, obj, args, cancels)
        if reg.security_callback is not None:
            try:
                verdict = reg.security_callback(reg.interface, call)
            except Exception:
                log.exception("security callback failed")
                verdict = _ACCESS_DENIED
            if verdict:
                self._fault(call_id, _ACCESS_DENIED)
                return None
        kwargs = args
        if op.context_params or op.in_pipes or op.out_pipes:
            kwargs = dict(args)
            status = self._bind_handles(call, kwargs)
            if status:
                self._fault(call_id, status)
                return None
            if stream is not None:
                call.in_stream = stream
                kwargs.update(zip(op.in_pipes, stream.pipes, strict=True))
            else:
                for name, pipe in zip(op.in_pipes, op.in_pipe_types, strict=True):
                    kwargs[name] = PipeIn(kwargs[name], empty=empty_chunk(pipe))
            if op.out_pipes:
                out = call.out_stream = OutStream(self, call, list(op.out_pipe_types))
                kwargs.update(zip(op.out_pipes, out.pipes, strict=True))
        if not server.call_started(reg):
            if call.handles:
                server.contexts.release([e for e in call.handles.values() if e is not None])
            self._fault(call_id, _TOO_BUSY)
            return None
        self.calls[call_id] = call
        kind = op.kind
        if kind is _THREAD:
            server.executor.submit(call.run_thread, kwargs)
        elif kind is _COROUTINE:
            server.engine.create_task(call.run_coroutine(kwargs))
        elif kind is ManagerKind.ASYNC_CALL_THREAD:
            server.executor.submit(call.run_async, kwargs)
        elif kind is _INLINE:
            call.run_thread(kwargs)  # the general path of an @inline manager: right here
        else:
            call.run_async(kwargs)
        return call

    # -- streamed requests: [in] pipes read as their fragments arrive (loop thread) ---------------

    def _stream_start(self, ev: RequestReceived[Registration]) -> None:
        op = self._admit(ev)
        if op is None:
            return
        try:
            byteorder = "little" if ev.drep[0] == 0x10 else drep_byteorder(ev.drep)
        except NdrError as exc:
            self._fault(ev.call_id, exc.status)
            return
        stream = InStream(self, op.procedure, byteorder, list(op.in_pipe_types))
        stream.cancels = ev.cancel_count
        self.streams[ev.call_id] = (stream, ev.interface, op, ev.object)
        self._stream_feed(ev.call_id, ev.stub, False)

    def _stream_feed(self, call_id: int, data: bytes, last: bool) -> None:
        entry = self.streams.get(call_id)
        if entry is None:
            return  # refused, failed or orphaned: its remaining fragments are dropped
        if last:
            del self.streams[call_id]
        stream, reg, op, obj = entry
        result = stream.feed(data, last)
        if result is None:
            return
        if isinstance(result, int):  # the [in] parameters will never decode
            self.streams.pop(call_id, None)
            self._fault(call_id, result)
            return
        if self._start(reg, op, call_id, obj, result, stream.cancels, stream) is None:
            self.streams.pop(call_id, None)

    def _denied(self, reg: Registration, size: int) -> bool:
        if reg.max_rpc_size is not None and size > reg.max_rpc_size:
            return True  # rpc #34
        if reg.flags & IfFlags.ALLOW_SECURE_ONLY:
            return True  # every winaio call is auth level NONE (rpc #36)
        # ALLOW_LOCAL_ONLY: only ncalrpc (and ncacn_np) calls are processed
        # [MSL:interface-registration-flags].
        return bool(reg.flags & IfFlags.ALLOW_LOCAL_ONLY) and self.protseq != "ncalrpc"

    def _bind_handles(self, call: ServerCall, kwargs: dict[str, Any]) -> int:
        tables = self.server.contexts
        group = self.conn.assoc_group_id
        used: dict[str, Entry | None] = {}
        for name, direction, _type_name in call.operation.context_params:
            if not direction & IN:
                continue
            value = kwargs[name]
            if value.is_null:
                if direction & OUT:
                    used[name] = None
                    kwargs[name] = None
                    continue
                tables.release([e for e in used.values() if e is not None])
                return CONTEXT_MISMATCH  # [in] NULL handle: RPC_X_SS_IN_NULL_CONTEXT
            entry = tables.acquire(group, value)
            if entry is None:
                tables.release([e for e in used.values() if e is not None])
                return CONTEXT_MISMATCH
            used[name] = entry
            kwargs[name] = entry.obj
        call.handles = used
        return 0

    # -- completion (any thread) -----------------------------------------------------------------

    def encode_reply(self, call: ServerCall, result: Any) -> bytes:
        op = call.operation
        outputs = op.outputs(result)
        if op.context_params:
            tables = self.server.contexts
            group = self.conn.assoc_group_id
            handles = call.handles or {}
            for name, direction, type_name in op.context_params:
                if direction & OUT:
                    outputs[name] = tables.output(
                        group, handles.get(name), outputs[name], type_name
                    )
        if call.out_stream is not None:
            # The [out] pipes were streamed: the rest of the stub follows them.
            held, base = call.out_stream.finish()
            values = {**call.args, **outputs}
            return held + op.procedure.encode_response_tail(values, base=base)
        args = call.args
        if args:
            # [in] values size [out] arrays (size_is="len"); call.args itself stays as the
            # manager received it.
            return op.encode({**args, **outputs})
        return op.encode(outputs)

    def finish(self, call: ServerCall, stub: bytes | None, status: int) -> None:
        """Send the call's reply (``stub``) or fault (``status``); any thread."""
        if threading.get_ident() == self.loop_thread:
            self._finish(call, stub, status)
        else:
            self.server.inbox.push(self._finish, call, stub, status)

    def _finish(self, call: ServerCall, stub: bytes | None, status: int) -> None:
        fast = self.fast
        if call is fast.capture:
            fast.captured = (stub, status)  # completed inside its manager: FastPath answers
            return
        if self.calls.pop(call.call_id, None) is None:
            self.server.call_finished(call)
            return  # orphaned or disconnected meanwhile: nothing is sent
        if stub is not None:
            data = self.conn.send_response(call.call_id, stub)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s: %s call_id %d done", self.protseq, self.peer, call, call.call_id)
        else:
            data = self.conn.send_fault(call.call_id, status)
            self.log_fault(call, status)
        self._emit(data)
        server = self.server
        server.stats.calls_out += 1
        server.call_finished(call)

    def log_fault(self, call: ServerCall, status: int) -> None:
        log.warning(
            "%s %s: %s.%s (opnum %d) failed: status 0x%x",
            self.protseq, self.peer, call.registration.interface.name,
            call.operation.procedure.name, call.opnum, status,
        )  # fmt: skip

    def forget(self, call: ServerCall) -> None:
        """A completion after the client went away: release the call, send nothing."""
        if threading.get_ident() == self.loop_thread:
            self._forget(call)
        else:
            self.server.inbox.push(self._forget, call)

    def _forget(self, call: ServerCall) -> None:
        self.calls.pop(call.call_id, None)
        self.server.call_finished(call)

    def close(self) -> None:
        """Close the connection once its queued bytes are written (loop thread)."""
        if not self.closed and self.transport is not None:
            self.transport.close()
