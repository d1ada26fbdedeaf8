"""Thread-pool I/O objects and BindIoCompletionCallback (win32-async-spec §9, #112-#116).

Facts encoded here [MS:StartThreadpoolIo] [MS:CancelThreadpoolIo]
[MS:WaitForThreadpoolIoCallbacks] [W:nt/threadpool.c:test_tp_io, test_kernel32_tp_io]:
- ``create_io(file, ...)`` binds the overlapped file to the pool's completion port for good
  (key = the I/O object); a synchronous or already-bound file -> ERROR_INVALID_PARAMETER.
- ``start()`` before **every** overlapped request counts one expected notification;
  ``cancel()`` takes one back after a request failed at once (or succeeded at once on a file
  with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS). A completion packet runs the callback
  ``callback(instance, *args, overlapped, error, bytes_transferred)`` (``error`` a Win32 code:
  0, ERROR_OPERATION_ABORTED...) only while a start is outstanding, and consumes it; a packet
  that arrives with none outstanding is dropped - Windows runs no callback for a request whose
  start was cancelled [W:nt/threadpool.c:test_tp_io, "callback is not called later"].
- ``wait_callbacks(False)`` blocks while a start is outstanding or a callback runs;
  ``wait_callbacks(True)`` first forgets the outstanding starts (never the I/O itself).
- The callback runs on the worker that dequeued the packet; a request issued by a thread that
  has exited still completes there (§8: port-bound I/O outlives its thread).

BindIoCompletionCallback [W:k32/sync.c:test_iocp_callback]: ``fn(error, bytes, overlapped)`` on
a pool thread for every completion of the file, no start/cancel protocol; binding twice, a
synchronous file or no function -> ERROR_INVALID_PARAMETER.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._io._files import FileObject
from .._io._port import CompletionPacket
from .._kernel._dispatcher import LOCK, ThreadState
from ..codes import WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._env import CallbackEnvironment
from ._objects import PoolObject, report_callback_error

if TYPE_CHECKING:
    from ._pool import ThreadPool

__all__ = ["IoBinding", "PoolIo"]


def _file_of(file: Any) -> FileObject:
    if not isinstance(file, FileObject):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{file!r} is not a file object")
    return file


class PoolIo(PoolObject):
    """A thread-pool I/O object (module docstring)."""

    __slots__ = ("_io_pending", "_tail", "file")

    def __init__(
        self,
        pool: ThreadPool,
        file: FileObject,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        environment: CallbackEnvironment | None,
        context: Any,
    ) -> None:
        _file_of(file)
        super().__init__(pool, callback, args, environment, context)
        self.file = file
        self._io_pending = 0
        #: Arguments after (overlapped, error, bytes): the Win32 alias passes the TP_IO there.
        self._tail: tuple[Any, ...] = ()
        try:
            file.associate(pool.port, self)
            pool._ios.add(self)
        except Win32Error:
            if self._group is not None:
                self._group._discard(self)
            self._discard()
            raise

    @property
    def outstanding(self) -> int:
        """Starts not yet matched by a callback or a cancel."""
        return self._io_pending

    def start(self) -> None:
        """StartThreadpoolIo: one more overlapped request is about to be issued.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the I/O object is closed.
        """
        with LOCK:
            self._check_open_locked()
            self._io_pending += 1

    def cancel(self) -> None:
        """CancelThreadpoolIo: the request announced by the last ``start`` will not notify.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER without an outstanding start.
        """
        with LOCK:
            if self._io_pending <= 0:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "no StartThreadpoolIo to cancel")
            self._io_pending -= 1
            self._notify_locked()

    def _on_packet(self, packet: CompletionPacket, ts: ThreadState) -> None:
        """A completion of the bound file was dequeued by a worker."""
        pool = self._pool
        with LOCK:
            if self._io_pending <= 0:
                return  # its start was cancelled: no callback
            self._io_pending -= 1
            self._running += 1
            self._associated += 1
            spawn = pool._grow_locked()
        if spawn:
            pool._spawn()
        _, overlapped, status, information = packet
        error = ntstatus_to_winerror(status) if status else 0
        self._execute(ts, (overlapped, error, information, *self._tail))

    def _busy_locked(self, group: bool, own: bool) -> bool:
        return self._io_pending > 0 or super()._busy_locked(group, own)

    def _cancel_pending_locked(self) -> int:
        dropped = self._io_pending
        self._io_pending = 0
        return super()._cancel_pending_locked() + dropped

    def wait_callbacks(self, cancel_pending: bool = False) -> None:
        """WaitForThreadpoolIoCallbacks (module docstring)."""
        super().wait_callbacks(cancel_pending)


class IoBinding:
    """BindIoCompletionCallback: every completion of ``file`` runs ``fn(error, bytes, ov)``."""

    __slots__ = ("file", "fn", "pool")

    def __init__(self, pool: ThreadPool, file: Any, fn: Callable[[int, int, Any], object]) -> None:
        if not callable(fn):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "no completion function")
        _file_of(file)
        self.pool = pool
        self.file = file
        self.fn = fn
        pool.check_open()
        file.associate(pool.port, self)
        spawn = False
        try:
            with LOCK:
                # A binding lasts as long as the file: the pool keeps a worker for it.
                pool._objects += 1
                spawn = pool._ensure_worker_locked()
            if spawn:
                pool._spawn()
        except BaseException as exc:  # (Ctrl-C: the worker counted, started)
            pool._woken_again(exc, spawn)
            raise

    def _on_packet(self, packet: CompletionPacket, ts: ThreadState) -> None:
        pool = self.pool
        with LOCK:
            spawn = pool._grow_locked()
        if spawn:
            pool._spawn()
        _, overlapped, status, information = packet
        error = ntstatus_to_winerror(status) if status else 0
        try:
            self.fn(error, information, overlapped)
        except Exception:
            report_callback_error()

    def __repr__(self) -> str:
        return f"<IoBinding {self.file!r} -> {self.fn!r}>"
