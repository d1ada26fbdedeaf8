"""Named pipes ``\\\\.\\pipe\\<name>``: an exact, in-process model of the NPFS data queue.

Scope (a documented deviation): pipe names are process-local. Within the process the pipe is
modelled like the Windows named-pipe file system does it, which a kernel socket cannot do: a
socket cannot take back bytes of a write that is cancelled while pending (spec §7). Each
direction of a connection is a ``_pipe_queue.Stream``: a FIFO of chunks, one per write.

- A write whose bytes fit in the quota (the buffer size given to CreateNamedPipe) is copied into
  the queue and completes at once. A bigger one stays **pending and holding its own data**, which
  is readable at once; it completes when the reader has consumed it, or as soon as its unread
  rest fits in the quota. Cancelling it removes its unread bytes (§7, [W:k32/pipe.c:
  test_blocking_rw]); FlushFileBuffers waits until the reader consumed everything, and is
  released when the only pending write is cancelled.
- Message-type pipes keep write boundaries. Message read mode returns one message per read; a
  buffer too small gives STATUS_BUFFER_OVERFLOW (ERROR_MORE_DATA) and keeps the rest (#65).
  Byte read mode reads across boundaries.
- ConnectNamedPipe(ov) with no client pends and completes (0 bytes) when a client opens; with a
  client already there -> ERROR_PIPE_CONNECTED, a success with no notification (#118, #119);
  after the client left without DisconnectNamedPipe -> ERROR_NO_DATA. Clients attach to
  instances in the order they started listening, then to idle ones in creation order; none free
  -> ERROR_PIPE_BUSY; no such pipe -> ERROR_FILE_NOT_FOUND [W:k32/pipe.c:test_multiple_instances].
- I/O on an instance without a client fails with ERROR_PIPE_LISTENING; after
  DisconnectNamedPipe the peer's requests fail with ERROR_PIPE_NOT_CONNECTED (#120); when the
  peer closed, reads fail with ERROR_BROKEN_PIPE once the queue is empty, pending writes with
  ERROR_BROKEN_PIPE and new writes with ERROR_NO_DATA. PIPE_NOWAIT: reading an empty pipe fails
  at once with ERROR_NO_DATA.

Every request is a LOCAL operation (never given to a backend): it completes through the usual
funnel (``_dispatch.deliver``), so events, the file object, completion ports, completion
routines, CancelIo/CancelIoEx/CancelSynchronousIo and the thread-exit rule all apply unchanged.
State is guarded by one module lock; completions are delivered after releasing it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..codes import NtStatus, WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._backend import OpKind
from ._files import FileObject, run_sync
from ._ops import CompletionRoutine, Operation
from ._overlapped import Overlapped
from ._pipe_queue import Chunk, Done, Stream, deliver
from ._requests import RequestMethods

__all__ = [
    "PIPE_ACCESS_DUPLEX",
    "PIPE_ACCESS_INBOUND",
    "PIPE_ACCESS_OUTBOUND",
    "PIPE_NOWAIT",
    "PIPE_READMODE_MESSAGE",
    "PIPE_TYPE_MESSAGE",
    "PipeEnd",
    "create_named_pipe",
    "open_named_pipe",
    "pipe_name",
]

PIPE_ACCESS_INBOUND = 0x1
PIPE_ACCESS_OUTBOUND = 0x2
PIPE_ACCESS_DUPLEX = 0x3
PIPE_TYPE_MESSAGE = 0x4
PIPE_READMODE_MESSAGE = 0x2
PIPE_NOWAIT = 0x1
PIPE_UNLIMITED_INSTANCES = 255
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
_DEFAULT_QUOTA = 4096

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_OVERFLOW = int(NtStatus.STATUS_BUFFER_OVERFLOW)
_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
_CLOSING = int(NtStatus.STATUS_PIPE_CLOSING)
_LISTENING = int(NtStatus.STATUS_PIPE_LISTENING)
_CONNECTED = int(NtStatus.STATUS_PIPE_CONNECTED)
_DISCONNECTED = int(NtStatus.STATUS_PIPE_DISCONNECTED)
_EMPTY = int(NtStatus.STATUS_PIPE_EMPTY)
_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_PREFIX = "\\\\.\\pipe\\"

_lock = threading.RLock()
_servers: dict[str, _PipeServer] = {}


def pipe_name(path: str) -> str | None:
    """The pipe name of a ``\\\\.\\pipe\\name`` path (case-insensitive prefix), else None."""
    if path[: len(_PREFIX)].lower() == _PREFIX:
        return path[len(_PREFIX) :]
    return None


class _PipeServer:
    __slots__ = ("access", "in_quota", "instances", "listening", "max_instances", "message",
                 "name", "out_quota")  # fmt: skip

    def __init__(self, name: str, access: int, message: bool, limit: int) -> None:
        self.name = name
        self.access = access
        self.message = message
        self.max_instances = limit
        self.instances: list[PipeEnd] = []
        self.listening: list[PipeEnd] = []
        self.out_quota = self.in_quota = _DEFAULT_QUOTA


class PipeEnd(RequestMethods, FileObject):
    """One end of a named pipe: a server instance or a client."""

    __slots__ = ("can_read", "can_write", "connect_op", "incoming", "is_server", "nowait",
                 "outgoing", "peer", "read_message", "server", "state")  # fmt: skip

    def __init__(
        self, server: _PipeServer, *, is_server: bool, overlapped: bool, read: bool, write: bool
    ) -> None:
        super().__init__(-1, overlapped=overlapped, path=_PREFIX + server.name)
        self.server = server
        self.is_server = is_server
        self.can_read = read
        self.can_write = write
        self.read_message = False
        self.nowait = False
        #: server instances: idle | listening | connected | closing | disconnected
        self.state = "idle" if is_server else "connected"
        self.peer: PipeEnd | None = None
        self.incoming: Stream | None = None
        self.outgoing: Stream | None = None
        self.connect_op: ConnectPipeOp | None = None

    @property
    def message_type(self) -> bool:
        """True for PIPE_TYPE_MESSAGE pipes."""
        return self.server.message

    def state_status(self) -> int | None:
        """The status that fails I/O on an end without a live connection, else None."""
        if self.is_server and self.state in ("idle", "listening"):
            return _LISTENING
        if self.incoming is None or (self.is_server and self.state == "disconnected"):
            return _DISCONNECTED
        return None

    # ------------------------------------------------------------------ requests
    def read_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """The request object for ReadFile/ReadFileEx."""
        if not self.can_read:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "pipe end opened without read access")
        return PipeReadOp(self, overlapped, buffers, routine)

    def write_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """The request object for WriteFile/WriteFileEx."""
        if not self.can_write:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "pipe end opened without write access")
        return PipeWriteOp(self, overlapped, buffers, routine)

    def connect_request(self, overlapped: Overlapped) -> Operation:
        """ConnectNamedPipe's request object."""
        if not self.is_server:
            raise Win32Error(WinError.ERROR_INVALID_FUNCTION, "not a server instance")
        return ConnectPipeOp(self, overlapped)

    def flush(self, timeout: float | None = None) -> None:
        """FlushFileBuffers: wait until the reader consumed everything this end wrote.

        Raises:
            Win32Error: ERROR_BROKEN_PIPE / ERROR_PIPE_NOT_CONNECTED if the connection ends.
        """
        status, _ = run_sync(PipeFlushOp(self, Overlapped()))
        if status:
            raise Win32Error(ntstatus_to_winerror(status))

    # ------------------------------------------------------------------ connection control
    def disconnect(self) -> None:
        """DisconnectNamedPipe: drop the client; both ends' requests fail PIPE_NOT_CONNECTED."""
        if not self.is_server:
            raise Win32Error(WinError.ERROR_INVALID_FUNCTION, "not a server instance")
        done: Done = []
        with _lock:
            if self in self.server.listening:
                self.server.listening.remove(self)
            if self.connect_op is not None:
                done.append((self.connect_op, _DISCONNECTED, 0))
                self.connect_op = None
            for stream in (self.incoming, self.outgoing):
                if stream is not None:
                    stream.shut(_DISCONNECTED, done, drop_data=True)
            peer, self.peer = self.peer, None
            if peer is not None:
                peer.peer = None
            self.incoming = self.outgoing = None
            self.state = "disconnected"
        deliver(done)

    def set_mode(self, read_message: bool | None, nowait: bool | None) -> None:
        """SetNamedPipeHandleState.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for message read mode on a byte-type pipe.
        """
        if read_message and not self.message_type:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "byte-type pipe")
        if read_message is not None:
            self.read_message = read_message
        if nowait is not None:
            self.nowait = nowait

    def peek(self, size: int) -> tuple[bytes, int, int]:
        """PeekNamedPipe: (data up to ``size``, total bytes available, bytes left in the current
        message)."""
        with _lock:
            status = self.state_status()
            stream = self.incoming
            if status is not None or stream is None:
                raise Win32Error(ntstatus_to_winerror(status or _DISCONNECTED))
            data = bytearray()
            for chunk in stream.chunks:
                if len(data) >= size:
                    break
                data += chunk.data[chunk.pos : chunk.pos + size - len(data)]
            left = stream.chunks[0].left if stream.message and stream.chunks else 0
            return bytes(data), stream.available(), left

    def _last_handle_closed(self) -> None:
        done: Done = []
        with _lock:
            peer, self.peer = self.peer, None
            if self.outgoing is not None:
                self.outgoing.shut(_BROKEN, done, drop_data=False)  # the reader may finish
            if self.incoming is not None:
                self.incoming.shut(_BROKEN, done, drop_data=True)  # nobody will read it
            if peer is not None:
                peer.peer = None
                if peer.is_server and peer.state == "connected":
                    peer.state = "closing"
            if self.is_server:
                server = self.server
                for pool in (server.instances, server.listening):
                    if self in pool:
                        pool.remove(self)
                if not server.instances and _servers.get(server.name) is server:
                    del _servers[server.name]
        deliver(done)
        super()._last_handle_closed()


class _PipeOp(Operation):
    """A request on a pipe end: LOCAL (completed in-process); on cancel it withdraws itself
    from the queue that holds it (``_withdraw_locked``) before completing cancelled."""

    __slots__ = ()
    kind = OpKind.LOCAL

    @property
    def end(self) -> PipeEnd:
        """The pipe end this request is on."""
        end = self.file
        assert isinstance(end, PipeEnd)
        return end

    def _withdraw_locked(self, done: Done) -> None:
        raise NotImplementedError

    def cancel_local(self) -> None:
        done: Done = []
        with _lock:
            self._withdraw_locked(done)
        deliver(done)
        self.complete(_CANCELLED, 0)


class PipeReadOp(_PipeOp):
    """ReadFile on a pipe end (message aware)."""

    __slots__ = ("buffer",)

    def __init__(
        self,
        end: PipeEnd,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None,
    ) -> None:
        super().__init__(end, overlapped, routine)
        self.buffer = buffers[0] if len(buffers) == 1 else memoryview(
            bytearray(sum(len(b) for b in buffers))
        )  # fmt: skip

    def take(self, stream: Stream, done: Done) -> tuple[int, int]:
        """Complete from ``stream`` (data is there, or the stream is closed)."""
        if not stream.chunks:
            return stream.closed or _BROKEN, 0
        if not len(self.buffer):
            return _SUCCESS, 0  # a zero-byte read waits for data without consuming it
        end = self.end
        return stream.read_into(self.buffer, end.read_message, done)

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        done: Done = []
        with _lock:
            status = end.state_status()
            stream = end.incoming
            if status is not None or stream is None:
                return status or _DISCONNECTED, 0
            if stream.readers or not (stream.chunks or stream.closed is not None):
                if end.nowait and not self.submitted:
                    return _EMPTY, 0
                stream.readers.append(self)  # wait in line (issue order, #66)
                return None
            result = self.take(stream, done)
            stream.pump(done)
        deliver(done)
        return result

    def _withdraw_locked(self, done: Done) -> None:
        stream = self.end.incoming
        if stream is not None and self in stream.readers:
            stream.readers.remove(self)


class PipeWriteOp(_PipeOp):
    """WriteFile on a pipe end: buffered at once when it fits the quota, else pending."""

    __slots__ = ("chunk", "data", "nbytes")

    def __init__(
        self,
        end: PipeEnd,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None,
    ) -> None:
        super().__init__(end, overlapped, routine)
        self.data: memoryview | bytes = buffers[0] if len(buffers) == 1 else b"".join(buffers)
        self.nbytes = len(self.data)
        self.chunk: Chunk | None = None

    def may_overtake(self) -> bool:
        return not self.nbytes

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        done: Done = []
        with _lock:
            status = end.state_status()
            stream = end.outgoing
            if status is not None or stream is None:
                return status or _DISCONNECTED, 0
            if stream.closed is not None:
                return (_CLOSING if stream.closed == _BROKEN else stream.closed), 0
            if not self.nbytes and not stream.message:
                return _SUCCESS, 0  # a zero-length write never blocks
            pending_before = any(chunk.op is not None for chunk in stream.chunks)
            if not pending_before and stream.buffered + self.nbytes <= stream.quota:
                stream.chunks.append(Chunk(bytes(self.data), None))
                stream.buffered += self.nbytes
                stream.pump(done)
                result: tuple[int, int] | None = (_SUCCESS, self.nbytes)
            else:
                # Pending, holding its own data (readable at once, removable on cancel).
                self.chunk = Chunk(memoryview(self.data), self)
                stream.chunks.append(self.chunk)
                stream.pump(done)
                result = None
                for index, (op, status, information) in enumerate(done):
                    if op is self:  # a waiting reader took all of it: finished inside the call
                        del done[index]
                        result = (status, information)
                        break
        deliver(done)
        return result

    def _withdraw_locked(self, done: Done) -> None:
        stream = self.end.outgoing
        chunk = self.chunk
        if stream is not None and chunk is not None and chunk in stream.chunks:
            stream.chunks.remove(chunk)  # its unread bytes leave the pipe (§7)
            self.chunk = None
            stream.pump(done)


class PipeFlushOp(_PipeOp):
    """FlushFileBuffers: completes when this end's outgoing queue is empty."""

    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        with _lock:
            stream = end.outgoing
            if stream is None:
                return end.state_status() or _DISCONNECTED, 0
            if not stream.chunks:
                return _SUCCESS, 0
            if stream.closed is not None:
                return stream.closed, 0
            stream.flushers.append(self)
            return None

    def _withdraw_locked(self, done: Done) -> None:
        stream = self.end.outgoing
        if stream is not None and self in stream.flushers:
            stream.flushers.remove(self)


class ConnectPipeOp(_PipeOp):
    """ConnectNamedPipe: completed in-process by a client's CreateFile."""

    __slots__ = ()

    def try_now(self) -> tuple[int, int] | None:
        end = self.end
        with _lock:
            state = end.state
            if state == "connected":
                return _CONNECTED, 0
            if state == "closing":
                return _CLOSING, 0
            if state == "listening":
                return _LISTENING, 0
            end.state = "listening"
            end.connect_op = self
            end.server.listening.append(end)
        return None

    def _withdraw_locked(self, done: Done) -> None:
        end = self.end
        if end.connect_op is self:
            end.connect_op = None
            if end in end.server.listening:
                end.server.listening.remove(end)
            if end.state == "listening":
                end.state = "idle"


def create_named_pipe(
    name: str,
    open_mode: int,
    pipe_mode: int,
    max_instances: int,
    out_size: int = 0,
    in_size: int = 0,
) -> PipeEnd:
    """CreateNamedPipe: a new server instance of pipe ``name``.

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER (bad mode/count), ERROR_ACCESS_DENIED (mode differs
            from the existing instances, or FILE_FLAG_FIRST_PIPE_INSTANCE on an existing name),
            ERROR_PIPE_BUSY (max instances reached).
    """
    access = open_mode & PIPE_ACCESS_DUPLEX
    if not access or not 1 <= max_instances <= PIPE_UNLIMITED_INSTANCES:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "pipe access or instance count")
    message = bool(pipe_mode & PIPE_TYPE_MESSAGE)
    if pipe_mode & PIPE_READMODE_MESSAGE and not message:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "message read mode on a byte pipe")
    limit = 1 << 30 if max_instances == PIPE_UNLIMITED_INSTANCES else max_instances
    with _lock:
        server = _servers.get(name)
        if server is None:
            server = _servers[name] = _PipeServer(name, access, message, limit)
            server.out_quota = out_size or _DEFAULT_QUOTA
            server.in_quota = in_size or _DEFAULT_QUOTA
        elif open_mode & FILE_FLAG_FIRST_PIPE_INSTANCE or server.access != access:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"pipe {name!r} exists")
        elif len(server.instances) >= server.max_instances:
            raise Win32Error(WinError.ERROR_PIPE_BUSY, f"pipe {name!r}: all instances exist")
        end = PipeEnd(
            server,
            is_server=True,
            overlapped=bool(open_mode & 0x40000000),
            read=bool(access & PIPE_ACCESS_INBOUND),
            write=bool(access & PIPE_ACCESS_OUTBOUND),
        )
        end.read_message = bool(pipe_mode & PIPE_READMODE_MESSAGE)
        end.nowait = bool(pipe_mode & PIPE_NOWAIT)
        server.instances.append(end)
    return end


def open_named_pipe(name: str, *, read: bool, write: bool, overlapped: bool) -> PipeEnd:
    """CreateFile(``\\\\.\\pipe\\name``): connect a client to a free instance.

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND (no such pipe), ERROR_PIPE_BUSY (no free instance),
            ERROR_ACCESS_DENIED (asked for a direction the pipe does not offer).
    """
    with _lock:
        server = _servers.get(name)
        if server is None:
            raise Win32Error(WinError.ERROR_FILE_NOT_FOUND, f"no pipe named {name!r}")
        if (read and not server.access & PIPE_ACCESS_OUTBOUND) or (
            write and not server.access & PIPE_ACCESS_INBOUND
        ):
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "direction not offered by the pipe")
        instance = next(iter(server.listening), None) or next(
            (i for i in server.instances if i.state == "idle"), None
        )
        if instance is None:
            raise Win32Error(WinError.ERROR_PIPE_BUSY, f"pipe {name!r}: no free instance")
        client = PipeEnd(server, is_server=False, overlapped=overlapped, read=read, write=write)
        to_client = Stream(server.out_quota, server.message)
        to_server = Stream(server.in_quota, server.message)
        instance.outgoing = client.incoming = to_client
        instance.incoming = client.outgoing = to_server
        instance.state = "connected"
        instance.peer, client.peer = client, instance
        if instance in server.listening:
            server.listening.remove(instance)
        pending, instance.connect_op = instance.connect_op, None
    if pending is not None:
        pending.complete(_SUCCESS, 0)
    return client
