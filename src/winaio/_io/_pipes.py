"""Named pipes ``\\\\.\\pipe\\<name>``: an exact, in-process model of the NPFS (a documented
deviation: pipe names are process-local). Names live in ``_pipe_names``; the data queue of one
direction is ``_pipe_queue.Stream``. The reference model is Wine's ``server/named_pipe.c``, whose
behaviour the kernel32/ntdll pipe tests pin down on real Windows.

States of an end (``PipeEnd.state``, FILE_PIPE_*_STATE):
- server: ``listening`` (created, or ConnectNamedPipe after a disconnect; in the pipe's FIFO of
  listeners, with or without pending ConnectNamedPipe requests) -> ``connected`` (a client
  opened it) -> ``closing`` (the client closed its handle) -> ``disconnected``
  (DisconnectNamedPipe) -> ``listening`` again (ConnectNamedPipe).
- client: ``connected`` -> ``closing`` (the server closed its handle) or ``disconnected`` (the
  server called DisconnectNamedPipe: the client is cut from the pipe, ``pipe`` is None).

What each state gives (Wine pipe_end_read/write/peek/transceive/flush, [W:nt/pipe.c:
test_pipe_state, test_pipe_with_data_state]): I/O on a listening server fails with
ERROR_PIPE_LISTENING, on a disconnected end ERROR_PIPE_NOT_CONNECTED; a closing end reads what
is left then ERROR_BROKEN_PIPE, and writes fail ERROR_NO_DATA. PeekNamedPipe and
TransactNamedPipe on a listening/disconnected server fail ERROR_BAD_PIPE (a cut client:
ERROR_PIPE_NOT_CONNECTED). FlushFileBuffers waits until the peer read everything; it succeeds at
once when there is no connection, except on a cut client.

Writes: one that fits in the quota (the reader's buffer size given to CreateNamedPipe) is copied
and completes at once; a bigger one stays pending holding its own data, readable at once,
removable by a cancel (§7). PIPE_NOWAIT ends never wait: reading an empty pipe fails
ERROR_NO_DATA; a byte-mode write that cannot be buffered completes with the bytes that waiting
readers took (its rest is dropped); a message that cannot be taken whole is not written at all
(0 bytes, TRUE) [W:k32/pipe.c:test_nowait]; ConnectNamedPipe fails ERROR_PIPE_LISTENING instead
of pending.

Every request is a LOCAL operation (never given to a backend, ``_pipe_ops``): it completes
through the usual funnel (``_dispatch.deliver``), so events, the file object, completion ports,
completion routines, CancelIo/CancelIoEx/CancelSynchronousIo and the thread-exit rule all apply
unchanged. State is guarded by ``_pipe_queue.LOCK``; completions are delivered after releasing it.
This module is the pipe object (``NamedPipe``), its ends (``PipeEnd``: state, connection control,
queries) and the connection of a client (``connect_client``); the requests are ``_pipe_ops``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .._kernel._objects import Event
from ..codes import NtStatus, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._files import FileObject
from ._ops import CompletionRoutine, Operation
from ._overlapped import Overlapped, is_error
from ._pipe_ops import ConnectPipeOp, PipeFlushOp, PipeReadOp, PipeTransactOp, PipeWriteOp
from ._pipe_queue import LOCK, Done, Stream, deliver
from ._requests import RequestMethods
from ._sync import run_sync

__all__ = [
    "PIPE_ACCESS_DUPLEX",
    "PIPE_ACCESS_INBOUND",
    "PIPE_ACCESS_OUTBOUND",
    "PIPE_NOWAIT",
    "PIPE_READMODE_MESSAGE",
    "PIPE_TYPE_MESSAGE",
    "NamedPipe",
    "PipeEnd",
    "PipeInfo",
]

PIPE_ACCESS_INBOUND = 0x1
PIPE_ACCESS_OUTBOUND = 0x2
PIPE_ACCESS_DUPLEX = 0x3
PIPE_TYPE_MESSAGE = 0x4
PIPE_READMODE_MESSAGE = 0x2
PIPE_NOWAIT = 0x1
PIPE_SERVER_END = 0x1

_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
_LISTENING = int(NtStatus.STATUS_PIPE_LISTENING)
_DISCONNECTED = int(NtStatus.STATUS_PIPE_DISCONNECTED)
_BAD_STATE = int(NtStatus.STATUS_INVALID_PIPE_STATE)
_PREFIX = "\\\\.\\pipe\\"


class NamedPipe:
    """The pipe object behind one name: its fixed parameters and its server instances.

    ``listeners`` is the FIFO a new client takes an instance from: instances join it when
    created and when they listen again after a disconnect [W:k32/pipe.c:test_multiple_instances].
    """

    __slots__ = ("access", "default_timeout", "in_size", "instances", "key", "listeners",
                 "max_instances", "message", "name", "out_size", "registry", "waiters")  # fmt: skip

    def __init__(
        self,
        name: str,
        registry: dict[str, NamedPipe],
        *,
        access: int,
        message: bool,
        max_instances: int,
        out_size: int,
        in_size: int,
        default_timeout: float,
    ) -> None:
        self.name = name
        self.key = name.casefold()
        self.registry = registry
        self.access = access
        self.message = message
        #: None = PIPE_UNLIMITED_INSTANCES.
        self.max_instances: int | None = max_instances
        self.out_size = out_size
        self.in_size = in_size
        self.default_timeout = default_timeout
        self.instances: list[PipeEnd] = []
        self.listeners: list[PipeEnd] = []
        #: WaitNamedPipe callers, woken when an instance starts listening.
        self.waiters: list[Event] = []

    def listen(self, end: PipeEnd) -> None:
        """``end`` becomes available to clients (caller holds LOCK)."""
        end.state = "listening"
        if end not in self.listeners:
            self.listeners.append(end)
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.set()

    def remove(self, end: PipeEnd) -> None:
        """The last handle of server instance ``end`` is closed (caller holds LOCK)."""
        for pool in (self.instances, self.listeners):
            if end in pool:
                pool.remove(end)
        if not self.instances and self.registry.get(self.key) is self:
            del self.registry[self.key]


class PipeInfo:
    """GetNamedPipeInfo / GetNamedPipeHandleState's view of one end."""

    __slots__ = ("flags", "in_size", "instances", "max_instances", "out_size")

    def __init__(
        self, flags: int, out_size: int, in_size: int, max_instances: int, instances: int
    ) -> None:
        self.flags = flags  #: PIPE_SERVER_END | PIPE_TYPE_MESSAGE bits
        self.out_size = out_size
        self.in_size = in_size
        self.max_instances = max_instances  #: 0xFFFFFFFF when unlimited
        self.instances = instances


class PipeEnd(RequestMethods, FileObject):
    """One end of a named pipe: a server instance or a client."""

    __slots__ = ("can_read", "can_set_state", "can_write", "client_pid", "connect_ops",
                 "incoming", "is_server", "nowait", "outgoing", "peer", "pipe", "read_message",
                 "state")  # fmt: skip
    waits_without_overlapped = True  # [W:k32/pipe.c:test_overlapped]

    def __init__(
        self, pipe: NamedPipe, *, is_server: bool, overlapped: bool, read: bool, write: bool
    ) -> None:
        super().__init__(-1, overlapped=overlapped, path=_PREFIX + pipe.name)
        #: None once a client has been cut by DisconnectNamedPipe.
        self.pipe: NamedPipe | None = pipe
        self.is_server = is_server
        self.can_read = read
        self.can_write = write
        #: The handle has FILE_WRITE_ATTRIBUTES, which SetNamedPipeHandleState needs
        #: [W:nt/pipe.c:test_filepipeinfo]: GENERIC_WRITE includes it, GENERIC_READ does not.
        self.can_set_state = write
        self.read_message = False
        self.nowait = False
        self.state = "listening" if is_server else "connected"
        self.peer: PipeEnd | None = None
        self.incoming: Stream | None = None
        self.outgoing: Stream | None = None
        self.connect_ops: list[ConnectPipeOp] = []
        #: The connected client's process id (server ends; None when there is none).
        self.client_pid: int | None = None if is_server else os.getpid()

    @property
    def message_type(self) -> bool:
        """True for PIPE_TYPE_MESSAGE pipes."""
        return self.pipe is not None and self.pipe.message

    def state_status(self) -> int | None:
        """The status that fails a read or write on an end without a live connection."""
        state = self.state
        if state == "listening":
            return _LISTENING
        if state == "disconnected" or self.incoming is None:
            return _DISCONNECTED
        return None

    def _no_connection_status(self) -> int:
        # Peek / transact without a connection: a cut client is "disconnected", anything else
        # is in the wrong state [W:nt/pipe.c:test_pipe_state].
        return _DISCONNECTED if self.pipe is None else _BAD_STATE

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
        """ConnectNamedPipe's request object.

        Raises:
            Win32Error: ERROR_INVALID_FUNCTION on a client end.
        """
        if not self.is_server:
            raise Win32Error(WinError.ERROR_INVALID_FUNCTION, "not a server instance")
        return ConnectPipeOp(self, overlapped)

    def transact_request(
        self, data: memoryview | bytes, buffer: memoryview, overlapped: Overlapped
    ) -> Operation:
        """TransactNamedPipe's request: write one message, then read one message."""
        if not (self.can_read and self.can_write):
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "transact needs read and write access")
        return PipeTransactOp(self, overlapped, [buffer], data)

    def transact(self, data: bytes, size: int) -> tuple[bytes, bool]:
        """TransactNamedPipe, waiting (non-alertably) for the reply: (reply, whether the whole
        reply message fit in ``size`` bytes - the rest stays queued otherwise).

        Raises:
            IoError: ERROR_BAD_PIPE (not in message read mode), ERROR_PIPE_BUSY (data queued),
                ERROR_BROKEN_PIPE / ERROR_PIPE_NOT_CONNECTED (the connection ended).
        """
        buffer = bytearray(size)
        status, count = run_sync(self.transact_request(data, memoryview(buffer), Overlapped()))
        if is_error(status):
            raise IoError(ntstatus_to_winerror(status), count)
        return bytes(buffer[:count]), not status

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
        """DisconnectNamedPipe: cut the client; both ends' requests fail PIPE_NOT_CONNECTED.

        Raises:
            Win32Error: ERROR_INVALID_FUNCTION on a client, ERROR_PIPE_LISTENING on a
                listening instance, ERROR_PIPE_NOT_CONNECTED when already disconnected.
        """
        if not self.is_server:
            raise Win32Error(WinError.ERROR_INVALID_FUNCTION, "not a server instance")
        done: Done = []
        with LOCK:
            if self.state == "listening":
                raise Win32Error(WinError.ERROR_PIPE_LISTENING, "no client to disconnect")
            if self.state == "disconnected":
                raise Win32Error(WinError.ERROR_PIPE_NOT_CONNECTED, "already disconnected")
            for stream in (self.incoming, self.outgoing):
                if stream is not None:
                    stream.shut(_DISCONNECTED, done, drop_data=True)
            peer, self.peer = self.peer, None
            if peer is not None:  # the client is cut from the pipe
                peer.peer = None
                peer.pipe = None
                peer.state = "disconnected"
                peer.incoming = peer.outgoing = None
            self.incoming = self.outgoing = None
            self.state = "disconnected"
            self.client_pid = None
        deliver(done)

    def set_mode(self, read_message: bool | None, nowait: bool | None) -> None:
        """SetNamedPipeHandleState.

        Raises:
            Win32Error: ERROR_ACCESS_DENIED without FILE_WRITE_ATTRIBUTES access,
                ERROR_INVALID_PARAMETER for message read mode on a byte-type pipe,
                ERROR_PIPE_NOT_CONNECTED on a client cut by DisconnectNamedPipe.
        """
        with LOCK:
            if not self.can_set_state:
                raise Win32Error(WinError.ERROR_ACCESS_DENIED, "no FILE_WRITE_ATTRIBUTES access")
            if self.pipe is None:
                raise Win32Error(WinError.ERROR_PIPE_NOT_CONNECTED, "the server disconnected")
            if read_message and not self.pipe.message:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "byte-type pipe")
            if read_message is not None:
                self.read_message = read_message
            if nowait is not None:
                self.nowait = nowait

    def mode(self) -> tuple[bool, bool, int]:
        """GetNamedPipeHandleState: (message read mode, PIPE_NOWAIT, current instances).

        Raises:
            Win32Error: ERROR_PIPE_NOT_CONNECTED on a client cut by DisconnectNamedPipe.
        """
        with LOCK:
            pipe = self.pipe
            if pipe is None:
                raise Win32Error(WinError.ERROR_PIPE_NOT_CONNECTED, "the server disconnected")
            return self.read_message, self.nowait, len(pipe.instances)

    def info(self) -> PipeInfo:
        """GetNamedPipeInfo.

        Raises:
            Win32Error: ERROR_PIPE_NOT_CONNECTED on a client cut by DisconnectNamedPipe.
        """
        with LOCK:
            pipe = self.pipe
            if pipe is None:
                raise Win32Error(WinError.ERROR_PIPE_NOT_CONNECTED, "the server disconnected")
            flags = (PIPE_SERVER_END if self.is_server else 0) | (
                PIPE_TYPE_MESSAGE if pipe.message else 0
            )
            limit = 0xFFFFFFFF if pipe.max_instances is None else pipe.max_instances
            return PipeInfo(flags, pipe.out_size, pipe.in_size, limit, len(pipe.instances))

    def process_ids(self) -> tuple[int | None, int]:
        """(client process id or None, server process id): GetNamedPipeClient/ServerProcessId.

        Raises:
            Win32Error: ERROR_PIPE_NOT_CONNECTED on a client cut by DisconnectNamedPipe.
        """
        with LOCK:
            if self.pipe is None:
                raise Win32Error(WinError.ERROR_PIPE_NOT_CONNECTED, "the server disconnected")
            return self.client_pid, os.getpid()

    def peek(self, size: int) -> tuple[bytes, int, int]:
        """PeekNamedPipe: (data up to ``size``, total bytes available, length of the head
        message - 0 on byte pipes).

        Raises:
            Win32Error: ERROR_BAD_PIPE (listening or disconnected server), ERROR_PIPE_NOT_CONNECTED
                (client cut by DisconnectNamedPipe), ERROR_BROKEN_PIPE (peer gone, nothing left).
        """
        with LOCK:
            stream = self.incoming
            if self.state == "closing" and stream is not None:
                if not stream.chunks:
                    raise Win32Error(WinError.ERROR_BROKEN_PIPE, "the peer closed the pipe")
            elif self.state != "connected" or stream is None:
                raise Win32Error(ntstatus_to_winerror(self._no_connection_status()))
            return stream.peek(size)

    def _last_handle_closed(self) -> None:
        done: Done = []
        with LOCK:
            peer, self.peer = self.peer, None
            if self.outgoing is not None:
                self.outgoing.shut(_BROKEN, done, drop_data=False)  # the reader may finish
            if self.incoming is not None:
                self.incoming.shut(_BROKEN, done, drop_data=True)  # nobody will read it
            if peer is not None:
                peer.peer = None
                peer.state = "closing"
            if self.is_server and self.pipe is not None:
                self.pipe.remove(self)
        deliver(done)
        super()._last_handle_closed()


def connect_client(instance: PipeEnd, client: PipeEnd) -> list[ConnectPipeOp]:
    """Attach ``client`` to the listening ``instance`` (caller holds LOCK); returns the
    ConnectNamedPipe requests to complete once the lock is released."""
    pipe = instance.pipe
    assert pipe is not None
    to_client = Stream(pipe.out_size, pipe.message)
    to_server = Stream(pipe.in_size, pipe.message)
    instance.outgoing = client.incoming = to_client
    instance.incoming = client.outgoing = to_server
    instance.state = "connected"
    instance.peer, client.peer = client, instance
    instance.client_pid = client.client_pid
    if instance in pipe.listeners:
        pipe.listeners.remove(instance)
    pending, instance.connect_ops = instance.connect_ops, []
    return pending
