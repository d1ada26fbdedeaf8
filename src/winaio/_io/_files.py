"""File objects: the kernel object behind a file, socket or pipe handle, and its pending requests.

A :class:`FileObject` is the kernel object behind a file, socket or pipe handle; duplicated handles
share it, with its port association, completion modes and pending requests (spec §0). Requests are
issued by ``_issue`` (which registers them here) and cancelled through :func:`request_cancel`
(CancelIo & co. and thread exit: ``_cancel``).

Invariants:
- ``_pending`` holds every request issued on the object and not yet delivered (registered and
  forgotten under LOCK: ``_issue`` registers, ``_forget_locked`` is called by delivery); a request
  that will not outlive its issuer (spec §8) is also in its issuer's ``extensions[_IO_KEY]``.
- Ordering (spec #66): a STREAM request may not overtake earlier pending ones in its direction.
  Each file object counts its pending STREAM requests per direction (``stream_in``/``stream_out``,
  kept under LOCK by registration and delivery), so that the check is one integer test: the
  sockets' immediate fast path (``_sockets.Socket.start_read``/``start_write``) reads it without
  the lock (a request registered before that read is seen; one issued concurrently from another
  thread has no order with it, on Windows either).
- Cancellation (spec §7) only *marks* a request and asks the backend (:func:`request_cancel`);
  the request then completes through all its channels with STATUS_CANCELLED (or with its real
  result if it won the race).
- Close: when the last handle goes, pending requests are cancelled (sockets: "closesocket cancels
  pending overlapped ops of all threads"), and the descriptor is closed only after every request
  has been delivered, because the backend may still be using it (backend invariant 2).
"""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK, DispatcherObject, ThreadState
from ..codes import WinError
from ..errors import Win32Error
from ._backend import Backend, OpKind, get_backend
from ._interrupts import interrupt
from ._port import CompletionPort
from ._slot import demote_locked

if TYPE_CHECKING:
    from ._ops import Operation

__all__ = ["FileObject", "request_cancel"]

_STREAM = OpKind.STREAM
_POLLIN = select.POLLIN
#: The issuer's ``ThreadState.extensions`` key of its requests that die with it (spec §8).
_IO_KEY = "io"


class FileObject(DispatcherObject):
    """The kernel object behind a file, socket or pipe handle.

    Args:
        fd: the descriptor, owned by this object from now on.
        overlapped: opened for overlapped I/O (FILE_FLAG_OVERLAPPED / WSA_FLAG_OVERLAPPED).
        sock: the Python socket owning ``fd``, for sockets.
        direct: opened with FILE_FLAG_NO_BUFFERING (O_DIRECT).
        seekable: a regular file (positioned I/O) rather than a stream.
        backend: the I/O engine finishing this object's requests (default: the process one).
    """

    __slots__ = (
        "_pending",
        "_rslot",
        "_signaled",
        "backend",
        "close_hooks",
        "closing",
        "direct",
        "fd",
        "key",
        "overlapped",
        "path",
        "port",
        "position",
        "readable",
        "seekable",
        "send_claim",
        "skip_port_on_success",
        "skip_set_event",
        "sock",
        "stream_in",
        "stream_out",
        "winsock",
        "writable",
    )
    type_name = "File"
    #: ``DiskFile`` overrides it per instance: its page-cache fast path applies.
    cached_reads = False
    #: ReadFile/WriteFile with a NULL OVERLAPPED on an overlapped handle: files and sockets need
    #: the offset (ERROR_INVALID_PARAMETER); named pipes override it and wait.
    waits_without_overlapped = False

    def __init__(
        self,
        fd: int,
        *,
        overlapped: bool,
        sock: socket.socket | None = None,
        direct: bool = False,
        seekable: bool = False,
        backend: Backend | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__()
        self.fd = fd
        self.sock = sock
        #: Sockets: held while a send is issued (checked, tried, registered), so that a partial
        #: send's remainder is registered before any other send can go (module docstring).
        self.send_claim: threading.Lock | None = None
        self.overlapped = overlapped
        self.direct = direct
        self.seekable = seekable
        self.path = path
        self.backend: Backend = backend if backend is not None else get_backend()
        self.port: CompletionPort | None = None
        self.key: Any = 0
        self.skip_port_on_success = False
        self.skip_set_event = False
        #: The file pointer of synchronous handles (overlapped I/O never uses it, spec §4.1).
        self.position = 0
        self.closing = False
        #: Access the handle was opened with (GENERIC_READ / GENERIC_WRITE).
        self.readable = True
        self.writable = True
        self._signaled = True  # a file object starts signaled (spec §1.2)
        self._pending: dict[Operation, None] = {}
        #: The socket's receive slot (``_slot``: io_uring's pended receive without a request
        #: object), made at its first eligible pended receive; None for every other file.
        self._rslot: Any = None
        #: Pending STREAM requests per direction (receive-like, send-like): module docstring.
        self.stream_in = 0
        self.stream_out = 0
        #: Run once when the last handle closes (share modes, byte-range locks).
        self.close_hooks: list[Callable[[], object]] | None = None
        #: Winsock modes of a socket (``_netevents.SocketMode``), created on first use.
        self.winsock: Any = None

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._signaled

    @property
    def pending_requests(self) -> int:
        """Requests issued on this file object and not yet delivered (a receive slot's
        incarnation included: ``_slot``)."""
        slot = self._rslot
        return len(self._pending) + (0 if slot is None else slot.pending())

    def pending_ops(self) -> list[Operation]:
        """A snapshot of the undelivered requests. A receive slot's incarnation (``_slot``)
        is demoted first, so that the snapshot holds its request (that incarnation's: a
        later cancel of it cannot touch the next one)."""
        slot = self._rslot
        with LOCK:
            due = slot is not None and demote_locked(slot)
            ops = list(self._pending)
        if due:
            self.backend.settle_slot(slot)  # type: ignore[attr-defined]  # (io_uring's)
        return ops

    # ------------------------------------------------------------------ completion modes, port
    def set_completion_modes(self, skip_port_on_success: bool, skip_set_event: bool) -> None:
        """SetFileCompletionNotificationModes: the flags are cumulative, never cleared (§6.10).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for SKIP_COMPLETION_PORT_ON_SUCCESS on a
                synchronous handle.
        """
        if skip_port_on_success and not self.overlapped:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "synchronous handle")
        with LOCK:
            self.skip_port_on_success |= skip_port_on_success
            self.skip_set_event |= skip_set_event

    def associate(self, port: CompletionPort, key: Any) -> None:
        """Bind this file object to ``port`` with ``key``, for good (§6.1).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for a synchronous handle or a file object that
                is already associated (with any port).
        """
        if not isinstance(port, CompletionPort):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{port!r} is not a completion port")
        if not self.overlapped:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "not opened for overlapped I/O")
        with LOCK:
            if self.port is not None:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "already associated")
            if port.closed:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the completion port is closed")
            self.port = port
            self.key = key

    # ------------------------------------------------------------------ bookkeeping
    def _forget_locked(self, op: Operation) -> None:
        """``op`` was delivered (or failed at once): drop it everywhere. Caller holds LOCK."""
        if not op.registered:
            return
        op.registered = False
        if op.kind is _STREAM:  # (with the flag: no call in between, no interrupt)
            if op.poll_events & _POLLIN:
                self.stream_in -= 1
            else:
                self.stream_out -= 1
        try:  # (the statements of _forget_rest, inline: no call more per request)
            self._pending.pop(op, None)
            ops = op.issuer.extensions.get(_IO_KEY)
            if ops is not None:
                ops.pop(op, None)
            if self.closing and not self._pending:
                self._release_fd()
        except BaseException as exc:  # (Ctrl-C) the rest once more: idempotent (review8)
            if interrupt(exc):
                self._forget_rest(op)
            raise

    def _forget_rest(self, op: Operation) -> None:
        """:meth:`_forget_locked`'s steps after the flag and the counters, made again after an
        interrupt cut them (each is idempotent)."""
        self._pending.pop(op, None)
        ops = op.issuer.extensions.get(_IO_KEY)
        if ops is not None:
            ops.pop(op, None)
        if self.closing and not self._pending:
            slot = self._rslot
            if slot is None or not slot.pending():
                self._release_fd()

    def adopt_connection(self, conn: socket.socket) -> None:
        """AcceptEx: this (pre-created) socket becomes the accepted connection ``conn``."""
        conn.setblocking(False)
        os.dup2(conn.fileno(), self.fd)
        conn.close()

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Cancel every pending request; close the descriptor once they are all delivered."""
        slot = self._rslot
        with LOCK:
            if self.closing:
                return
            self.closing = True
            # A receive slot's incarnation becomes its request, cancelled below (``_slot``).
            due = slot is not None and demote_locked(slot)
            pending = list(self._pending)
            if not pending and (slot is None or not slot.pending()):
                self._release_fd()
        if due:
            self.backend.settle_slot(slot)  # type: ignore[attr-defined]  # (io_uring's)
        hooks, self.close_hooks = self.close_hooks, None
        for hook in hooks or ():
            hook()
        for op in pending:
            request_cancel(op)

    def add_close_hook(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` once when the file object closes (its last handle is closed)."""
        with LOCK:
            if self.close_hooks is None:
                self.close_hooks = []
            if hook not in self.close_hooks:
                self.close_hooks.append(hook)

    def _last_handle_closed(self) -> None:
        self.close()

    def __del__(self) -> None:
        # A file object nobody references has no request in flight (requests reference it):
        # just make sure its descriptor does not leak.
        if self.fd >= 0:
            self._release_fd()

    def _release_fd(self) -> None:
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        if self.sock is not None:
            try:
                self.sock.close()
            except BaseException as exc:  # (Ctrl-C) again: closing a closed socket is a no-op
                if interrupt(exc):
                    self.sock.close()
                raise
        else:
            try:
                os.close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        what = self.path or (f"socket fd={self.fd}" if self.sock is not None else f"fd={self.fd}")
        return f"<FileObject {what}{' overlapped' if self.overlapped else ''}>"


def request_cancel(op: Operation) -> bool:
    """Mark ``op`` cancelled and ask its backend; False if it was done or already cancelled."""
    with LOCK:
        if op.done or op.cancel_requested:
            return False
        op.cancel_requested = True
        submitted = op.submitted
    if submitted:
        if op.kind is OpKind.LOCAL:
            op.cancel_local()
        else:
            op.file.backend.cancel(op)
    return True
