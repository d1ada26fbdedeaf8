"""The public exception tree.

Every error the library raises carries the Win32 or RPC status a C program would have seen,
so that the ``winaio.win32`` alias layer can turn any exception into ``GetLastError()`` /
an ``RPC_STATUS`` without a lookup table of exception types.

Tree::

    WinaioError
    ├── Win32Error (also OSError)           .winerror  (ERROR_INVALID_HANDLE, ERROR_IO_PENDING...)
    │   └── IoError                         .bytes_transferred of a failed/partial request
    └── RpcError                            .status    (RPC_S_*, or a raw fault / exception code)
        ├── RpcFaultError                   a fault PDU came back; .nca_status is the wire value
        ├── NdrError                        stub data could not be (un)marshalled; .offset
        └── ProtocolError                   the DCE/RPC CO protocol was broken (h11 style)
            ├── LocalProtocolError          ...by us (API misuse)
            └── RemoteProtocolError         ...by the peer (malformed or out-of-order PDUs)

    ThreadTerminated (SystemExit)           unwinds a thread killed by TerminateThread

Rules: no imports from the package except ``codes``; exceptions are plain data.
"""

from __future__ import annotations

import errno as _errno

from .codes import RpcStatus, WinError

__all__ = [
    "IoError",
    "LocalProtocolError",
    "NdrError",
    "ProtocolError",
    "RemoteProtocolError",
    "RpcError",
    "RpcFaultError",
    "ThreadTerminated",
    "Win32Error",
    "WinaioError",
]

# Win32 error -> closest POSIX errno, so that ``except OSError`` code written for Python sees a
# meaningful ``.errno``. Unmapped codes get errno None.
_ERRNO: dict[int, int] = {
    WinError.ERROR_FILE_NOT_FOUND: _errno.ENOENT,
    WinError.ERROR_PATH_NOT_FOUND: _errno.ENOENT,
    WinError.ERROR_ACCESS_DENIED: _errno.EACCES,
    WinError.ERROR_INVALID_HANDLE: _errno.EBADF,
    WinError.ERROR_NOT_ENOUGH_MEMORY: _errno.ENOMEM,
    WinError.ERROR_OUTOFMEMORY: _errno.ENOMEM,
    WinError.ERROR_INVALID_PARAMETER: _errno.EINVAL,
    WinError.ERROR_BROKEN_PIPE: _errno.EPIPE,
    WinError.ERROR_NO_DATA: _errno.EPIPE,
    WinError.ERROR_ALREADY_EXISTS: _errno.EEXIST,
    WinError.ERROR_FILE_EXISTS: _errno.EEXIST,
    WinError.ERROR_NOT_SUPPORTED: _errno.EOPNOTSUPP,
    WinError.ERROR_OPERATION_ABORTED: _errno.ECANCELED,
    WinError.ERROR_IO_PENDING: _errno.EINPROGRESS,
    WinError.ERROR_IO_INCOMPLETE: _errno.EAGAIN,
    WinError.ERROR_NOT_FOUND: _errno.ENOENT,
    WinError.ERROR_NETNAME_DELETED: _errno.ECONNRESET,
    WinError.ERROR_CONNECTION_ABORTED: _errno.ECONNABORTED,
    WinError.ERROR_CONNECTION_REFUSED: _errno.ECONNREFUSED,
    WinError.ERROR_TIMEOUT: _errno.ETIMEDOUT,
    WinError.ERROR_SEM_TIMEOUT: _errno.ETIMEDOUT,
    WinError.ERROR_PIPE_BUSY: _errno.EBUSY,
    WinError.ERROR_NOACCESS: _errno.EFAULT,
}


def _name(enum_type: type[WinError] | type[RpcStatus], code: int) -> str:
    try:
        return enum_type(code).name
    except ValueError:
        return f"0x{code:08X}" if code > 0xFFFF else str(code)


class WinaioError(Exception):
    """Base class of every exception raised by winaio."""


class Win32Error(WinaioError, OSError):
    """A Win32 API failure; ``winerror`` is the code ``GetLastError()`` would return.

    Args:
        winerror: the Win32 error code (a :class:`~winaio.codes.WinError` member or any int).
        message: optional human-readable detail.
    """

    winerror: int

    def __init__(self, winerror: int, message: str | None = None) -> None:
        code = int(winerror)
        detail = message or _name(WinError, code)
        super().__init__(_ERRNO.get(code), detail)
        self.winerror = code

    def __reduce__(self) -> tuple[type[Win32Error], tuple[int, str | None]]:
        return (type(self), (self.winerror, self.strerror))

    def __str__(self) -> str:
        name = _name(WinError, self.winerror)
        if self.strerror and self.strerror != name:
            return f"[WinError {self.winerror}] {name}: {self.strerror}"
        return f"[WinError {self.winerror}] {name}"


class IoError(Win32Error):
    """An I/O request failed; ``bytes_transferred`` is OVERLAPPED.InternalHigh (spec §4.3).

    Warning statuses also land here: a message-pipe read into a short buffer raises
    ERROR_MORE_DATA with the bytes it did deliver.
    """

    def __init__(self, winerror: int, bytes_transferred: int = 0, message: str | None = None):
        super().__init__(winerror, message)
        self.bytes_transferred = bytes_transferred

    def __reduce__(self) -> tuple[type[IoError], tuple[int, int, str | None]]:  # type: ignore[override]
        return (type(self), (self.winerror, self.bytes_transferred, self.strerror))


class ThreadTerminated(SystemExit):
    """Raised inside a thread that another thread ended with ``TerminateThread``.

    It derives from SystemExit (a BaseException) so that ordinary ``except Exception`` blocks do
    not swallow it and a plain Python thread ends quietly; the winaio thread bootstrap catches it
    and records the exit code. CPython raises it asynchronously without arguments, hence the
    default.
    """

    def __init__(self, exit_code: int = 0) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


class RpcError(WinaioError):
    """An RPC failure; ``status`` is the RPC_STATUS (or exception code) the caller sees."""

    status: int

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = int(status)
        name = _name(RpcStatus, self.status)
        super().__init__(f"[RPC {self.status}] {name}" + (f": {message}" if message else ""))


class RpcFaultError(RpcError):
    """The server answered with a fault PDU.

    ``nca_status`` is the raw 32-bit status from the PDU; ``status`` is its client-side mapping
    (``codes.nca_to_rpc_status``), e.g. nca_s_op_rng_error -> RPC_S_PROCNUM_OUT_OF_RANGE.
    """

    def __init__(self, status: int, nca_status: int, message: str | None = None) -> None:
        super().__init__(status, message or f"fault 0x{nca_status:08X}")
        self.nca_status = int(nca_status)


class NdrError(RpcError):
    """NDR stub data could not be marshalled or unmarshalled.

    ``status`` defaults to RPC_X_BAD_STUB_DATA (0x6F7); bound and tag violations use
    RPC_S_INVALID_BOUND / RPC_S_INVALID_TAG. ``offset`` is the stub offset where it happened.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = RpcStatus.RPC_X_BAD_STUB_DATA,
        offset: int | None = None,
    ) -> None:
        where = f" at stub offset {offset}" if offset is not None else ""
        super().__init__(status, message + where)
        self.offset = offset


class ProtocolError(RpcError):
    """The DCE/RPC connection-oriented protocol was violated. Do not raise directly.

    ``status`` is the status a fault PDU should carry (nca_s_proto_error by default); PDUs that
    must be answered with a bind_nak set ``reject_reason``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0x1C01000B,
        reject_reason: int | None = None,
    ) -> None:
        if type(self) is ProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError, not ProtocolError")
        super().__init__(status, message)
        self.reject_reason = reject_reason


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol forbids (e.g. send a request before binding)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed or out of sequence."""
