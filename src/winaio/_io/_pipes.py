"""Named pipes ``\\\\.\\pipe\\<name>`` on AF_UNIX socket pairs (win32-async-spec §10).

Scope: the namespace is process-local (a documented deviation: no other process can open our
pipe names). Each connection is a ``socketpair(AF_UNIX, SOCK_STREAM)``; message-type pipes frame
every write as ``u32 length (little endian) + payload``, so that a reader can honour message
boundaries and keep the unread rest of a message for the next read.

Facts encoded here:
- ConnectNamedPipe(ov) with no client -> pending, completing (0 bytes) when a client opens; with
  a client already connected -> ERROR_PIPE_CONNECTED, which is a success: no notification,
  Internal untouched (#118, #119); after the client left without DisconnectNamedPipe ->
  ERROR_NO_DATA [W:k32/pipe.c:test_overlapped_error].
- Clients attach to instances in the order they started listening, then to idle instances in
  creation order; none free -> ERROR_PIPE_BUSY; unknown name -> ERROR_FILE_NOT_FOUND
  [W:k32/pipe.c:test_multiple_instances].
- Message read mode: a read into a buffer smaller than the message returns what fits with
  STATUS_BUFFER_OVERFLOW (ERROR_MORE_DATA), the rest stays for the next read (#65). Byte read
  mode reads across message boundaries.
- Reads/writes on an instance that has no client yet fail with ERROR_PIPE_LISTENING; after
  DisconnectNamedPipe the peer's pending and new requests fail with ERROR_PIPE_NOT_CONNECTED
  (#120); a peer that closed makes reads fail with ERROR_BROKEN_PIPE and new writes with
  ERROR_NO_DATA.
- PIPE_NOWAIT: a read of an empty pipe fails at once with ERROR_NO_DATA.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import termios
import threading
from collections.abc import Sequence

from ..codes import NtStatus, WinError
from ..errors import Win32Error
from ._backend import OpKind
from ._ops import CompletionRoutine, Operation, StreamWriteOp, errno_to_status, zero_byte_read
from ._overlapped import Overlapped
from ._streams import StreamFile

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

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_OVERFLOW = int(NtStatus.STATUS_BUFFER_OVERFLOW)
_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
_CLOSING = int(NtStatus.STATUS_PIPE_CLOSING)
_LISTENING = int(NtStatus.STATUS_PIPE_LISTENING)
_CONNECTED = int(NtStatus.STATUS_PIPE_CONNECTED)
_DISCONNECTED = int(NtStatus.STATUS_PIPE_DISCONNECTED)
_EMPTY = int(NtStatus.STATUS_PIPE_EMPTY)
_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_HEADER = struct.Struct("<I")
_GONE = frozenset(
    {_BROKEN, int(NtStatus.STATUS_CONNECTION_RESET), int(NtStatus.STATUS_PIPE_DISCONNECTED)}
)
_PREFIX = "\\\\.\\pipe\\"

_registry_lock = threading.Lock()
_servers: dict[str, _PipeServer] = {}


def pipe_name(path: str) -> str | None:
    """The pipe name of a ``\\\\.\\pipe\\name`` path (case-insensitive prefix), else None."""
    if path[: len(_PREFIX)].lower() == _PREFIX:
        return path[len(_PREFIX) :]
    return None


class _PipeServer:
    __slots__ = ("access", "instances", "listening", "max_instances", "message_type", "name")

    def __init__(self, name: str, access: int, message_type: bool, max_instances: int) -> None:
        self.name = name
        self.access = access
        self.message_type = message_type
        self.max_instances = max_instances
        self.instances: list[PipeEnd] = []
        self.listening: list[PipeEnd] = []


class PipeEnd(StreamFile):
    """One end of a named pipe: a server instance or a client."""

    __slots__ = (
        "can_read",
        "can_write",
        "connect_op",
        "disconnected",
        "header",
        "is_server",
        "message_type",
        "nowait",
        "peer",
        "read_message",
        "remaining",
        "server",
        "state",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        server: _PipeServer,
        is_server: bool,
        overlapped: bool,
        can_read: bool,
        can_write: bool,
    ) -> None:
        sock.setblocking(False)
        super().__init__(sock.fileno(), overlapped=overlapped, sock=sock)
        self.server = server
        self.is_server = is_server
        self.message_type = server.message_type
        self.read_message = False
        self.nowait = False
        self.can_read = can_read
        self.can_write = can_write
        #: server instances: idle | listening | connected | closing | disconnected
        self.state = "idle" if is_server else "connected"
        self.peer: PipeEnd | None = None
        self.disconnected = False
        self.connect_op: ConnectPipeOp | None = None
        #: Payload bytes left in the message being read, and a partially read header.
        self.remaining = 0
        self.header = bytearray()

    def gone_status(self, reading: bool) -> int:
        """The status of I/O that finds the connection gone."""
        if self.disconnected or self.state == "disconnected":
            return _DISCONNECTED
        return _BROKEN if reading else _CLOSING

    def state_status(self) -> int | None:
        """A status that fails any I/O on an instance without a live client, else None."""
        if self.is_server and self.state in ("idle", "listening"):
            return _LISTENING
        if self.disconnected or (self.is_server and self.state == "disconnected"):
            return _DISCONNECTED
        return None

    def read_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        if not self.can_read:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "pipe end opened without read access")
        return PipeReadOp(self, overlapped, buffers, routine)

    def write_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        if not self.can_write:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "pipe end opened without write access")
        return PipeMessageWriteOp(self, overlapped, buffers, routine)

    def connect_request(self, overlapped: Overlapped) -> Operation:
        """ConnectNamedPipe's request object."""
        if not self.is_server:
            raise Win32Error(WinError.ERROR_INVALID_FUNCTION, "not a server instance")
        return ConnectPipeOp(self, overlapped)

    def disconnect(self) -> None:
        """DisconnectNamedPipe: drop the client (its requests fail ERROR_PIPE_NOT_CONNECTED)."""
        if not self.is_server:
            raise Win32Error(WinError.ERROR_INVALID_FUNCTION, "not a server instance")
        with _registry_lock:
            peer, self.peer = self.peer, None
            if self in self.server.listening:
                self.server.listening.remove(self)
            self.state = "disconnected"
            self.remaining = 0
            self.header.clear()
            if peer is not None:
                peer.disconnected = True
                peer.peer = None
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

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
        """PeekNamedPipe: (data up to ``size``, total payload bytes available, bytes left in the
        current message)."""
        if (status := self.state_status()) is not None:
            raise Win32Error(_win(status))
        sock = self.sock
        assert sock is not None
        available = struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        raw = sock.recv(available, socket.MSG_PEEK) if available else b""
        if not self.message_type:
            return raw[:size], len(raw), 0
        payload = bytearray()
        remaining, pos, header = self.remaining, 0, bytes(self.header)
        left_this = remaining
        while pos < len(raw):
            if remaining == 0:
                need = 4 - len(header)
                header += raw[pos : pos + need]
                pos += need
                if len(header) < 4:
                    break
                remaining = _HEADER.unpack(header)[0]
                header = b""
                if not payload and not left_this:
                    left_this = remaining
                continue
            take = raw[pos : pos + remaining]
            payload += take
            pos += len(take)
            remaining -= len(take)
        return bytes(payload[:size]), len(payload), left_this

    def sock_has_data(self) -> bool:
        """Whether unread bytes are waiting (as opposed to an end-of-stream)."""
        sock = self.sock
        assert sock is not None
        try:
            return bool(sock.recv(1, socket.MSG_PEEK))
        except OSError:
            return False

    def _fresh_socket(self) -> None:
        """A disconnected instance gets a new unconnected socket under the same descriptor."""
        placeholder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        os.dup2(placeholder.fileno(), self.fd)
        placeholder.close()

    def _last_handle_closed(self) -> None:
        with _registry_lock:
            peer, self.peer = self.peer, None
            if peer is not None:
                peer.peer = None
                if peer.is_server and peer.state == "connected":
                    peer.state = "closing"
            if self.is_server:
                server = self.server
                if self in server.instances:
                    server.instances.remove(self)
                if self in server.listening:
                    server.listening.remove(self)
                if not server.instances and _servers.get(server.name) is server:
                    del _servers[server.name]
        super()._last_handle_closed()


def _win(status: int) -> int:
    from ..codes import ntstatus_to_winerror

    return ntstatus_to_winerror(status)


class PipeReadOp(Operation):
    """ReadFile on a named pipe end: raw bytes, or message-aware for message-type pipes."""

    __slots__ = ("buffer", "got", "target")
    poll_events = select.POLLIN

    def __init__(
        self,
        end: PipeEnd,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None,
    ) -> None:
        super().__init__(end, overlapped, routine)
        joined = buffers[0] if len(buffers) == 1 else memoryview(bytearray(sum(map(len, buffers))))
        self.buffer = joined.cast("B") if joined.format != "B" else joined
        self.got = 0
        self.target = -1

    def _recv(self, view: memoryview) -> int | None:
        """recv into ``view``: bytes read, None when it would block; raises _Gone on EOF."""
        sock = self.file.sock
        assert sock is not None
        try:
            n = sock.recv_into(view)
        except BlockingIOError:
            return None
        if n == 0 and len(view):
            raise _Gone
        return n

    def try_now(self) -> tuple[int, int] | None:
        end = self.file
        assert isinstance(end, PipeEnd)
        status = end.state_status()
        if status is not None:
            return status, 0
        if not len(self.buffer):
            result = zero_byte_read(end)
            if result is not None and result[0] == _SUCCESS and not end.sock_has_data():
                result = end.gone_status(reading=True), 0
            return result
        try:
            result = self._message_read(end) if end.message_type else self._byte_read()
        except _Gone:
            return end.gone_status(reading=True), self.got
        except OSError as exc:
            return errno_to_status(exc.errno or 0), self.got
        if result is None and end.nowait and not self.submitted:
            return _EMPTY, 0
        return result

    def _byte_read(self) -> tuple[int, int] | None:
        n = self._recv(self.buffer)
        return None if n is None else (_SUCCESS, n)

    def _read_header(self, end: PipeEnd) -> bool:
        """Complete the next message header; False if it would block."""
        while len(end.header) < 4:
            chunk = bytearray(4 - len(end.header))
            n = self._recv(memoryview(chunk))
            if n is None:
                return False
            end.header += chunk[:n]
        end.remaining = _HEADER.unpack(end.header)[0]
        end.header.clear()
        return True

    def _message_read(self, end: PipeEnd) -> tuple[int, int] | None:
        buf = self.buffer
        if end.read_message:
            # Message read mode: one message per read; what does not fit stays (ERROR_MORE_DATA).
            if self.target < 0:
                if end.remaining == 0 and not self._read_header(end):
                    return None
                self.target = min(len(buf), end.remaining)
            while self.got < self.target:
                n = self._recv(buf[self.got : self.target])
                if n is None:
                    return None
                self.got += n
                end.remaining -= n
            return (_OVERFLOW if end.remaining else _SUCCESS), self.got
        # Byte read mode on a message pipe: across message boundaries, whatever is available.
        while self.got < len(buf):
            if end.remaining == 0:
                if not self._read_header(end):
                    break
                continue
            want = min(len(buf) - self.got, end.remaining)
            n = self._recv(buf[self.got : self.got + want])
            if n is None:
                break
            self.got += n
            end.remaining -= n
        return (_SUCCESS, self.got) if self.got else None


class _Gone(Exception):
    """The peer closed (EOF)."""


class PipeMessageWriteOp(StreamWriteOp):
    """WriteFile on a named pipe end; message-type pipes send one framed message per write."""

    __slots__ = ("framed",)

    def __init__(
        self,
        end: PipeEnd,
        overlapped: Overlapped,
        buffers: Sequence[memoryview],
        routine: CompletionRoutine | None,
    ) -> None:
        super().__init__(end, overlapped, buffers, routine)
        self.framed = end.message_type
        if self.framed:
            header = memoryview(_HEADER.pack(self.nbytes))
            self.buffers.insert(0, header)

    def try_now(self) -> tuple[int, int] | None:
        end = self.file
        assert isinstance(end, PipeEnd)
        status = end.state_status()
        if status is not None:
            return status, 0
        if self.nbytes == 0 and not self.framed:
            return _SUCCESS, 0  # a zero-length write never blocks
        result = super().try_now()
        if result is None:
            return None
        status, sent = result
        payload = max(0, sent - _HEADER.size) if self.framed else sent
        if status:
            payload = 0  # a failed write reports no bytes
        if status in _GONE:
            # The reader went away: a new write reports ERROR_NO_DATA, a pending one
            # ERROR_BROKEN_PIPE; after DisconnectNamedPipe both ERROR_PIPE_NOT_CONNECTED.
            status = (
                _DISCONNECTED if end.disconnected else (_BROKEN if self.submitted else _CLOSING)
            )
        return status, payload


class ConnectPipeOp(Operation):
    """ConnectNamedPipe: completed in-process by the client's CreateFile (kind LOCAL)."""

    __slots__ = ()
    kind = OpKind.LOCAL

    def try_now(self) -> tuple[int, int] | None:
        end = self.file
        assert isinstance(end, PipeEnd)
        with _registry_lock:
            state = end.state
            if state == "connected":
                return _CONNECTED, 0
            if state == "closing":
                return _CLOSING, 0
            if state == "listening":
                return _LISTENING, 0
            if state == "disconnected":
                end._fresh_socket()
            end.state = "listening"
            end.disconnected = False
            end.connect_op = self
            end.server.listening.append(end)
        return None

    def complete(self, status: int, information: int) -> None:
        end = self.file
        assert isinstance(end, PipeEnd)
        if status != _SUCCESS:
            with _registry_lock:
                if end.connect_op is self:
                    end.connect_op = None
                    if end in end.server.listening:
                        end.server.listening.remove(end)
                    if end.state == "listening":
                        end.state = "idle"
        super().complete(status, information)


def create_named_pipe(
    name: str,
    open_mode: int,
    pipe_mode: int,
    max_instances: int,
    out_size: int = 0,
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
    message_type = bool(pipe_mode & PIPE_TYPE_MESSAGE)
    if pipe_mode & PIPE_READMODE_MESSAGE and not message_type:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "message read mode on a byte pipe")
    limit = 1 << 30 if max_instances == PIPE_UNLIMITED_INSTANCES else max_instances
    with _registry_lock:
        server = _servers.get(name)
        if server is None:
            server = _servers[name] = _PipeServer(name, access, message_type, limit)
        elif open_mode & FILE_FLAG_FIRST_PIPE_INSTANCE or server.access != access:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"pipe {name!r} exists")
        elif len(server.instances) >= server.max_instances:
            raise Win32Error(WinError.ERROR_PIPE_BUSY, f"pipe {name!r}: all instances exist")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = PipeEnd(
            sock,
            server=server,
            is_server=True,
            overlapped=bool(open_mode & 0x40000000),
            can_read=bool(access & PIPE_ACCESS_INBOUND),
            can_write=bool(access & PIPE_ACCESS_OUTBOUND),
        )
        end.read_message = bool(pipe_mode & PIPE_READMODE_MESSAGE)
        end.nowait = bool(pipe_mode & PIPE_NOWAIT)
        server.instances.append(end)
    if out_size > 0:
        _set_buffer(sock, out_size)
    return end


def open_named_pipe(name: str, *, read: bool, write: bool, overlapped: bool) -> PipeEnd:
    """CreateFile(``\\\\.\\pipe\\name``): connect a client to a free instance.

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND (no such pipe), ERROR_PIPE_BUSY (no free instance),
            ERROR_ACCESS_DENIED (asked for a direction the pipe does not offer).
    """
    with _registry_lock:
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
        server_sock, client_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        server_sock.setblocking(False)
        os.dup2(server_sock.fileno(), instance.fd)
        server_sock.close()
        client = PipeEnd(
            client_sock,
            server=server,
            is_server=False,
            overlapped=overlapped,
            can_read=read,
            can_write=write,
        )
        instance.state = "connected"
        instance.peer, client.peer = client, instance
        if instance in server.listening:
            server.listening.remove(instance)
        pending, instance.connect_op = instance.connect_op, None
    if pending is not None:
        pending.complete(_SUCCESS, 0)
    return client


def _set_buffer(sock: socket.socket, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError:
        pass
