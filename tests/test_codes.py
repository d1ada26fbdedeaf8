"""Status tables and the exception tree."""

from __future__ import annotations

import errno
import pickle

import pytest

from winaio import codes, errors
from winaio.codes import NcaStatus, NtStatus, RpcStatus, WaitCode, WinError


def test_wait_codes_have_win32_values() -> None:
    # spec: win32 §1.6
    assert WaitCode.WAIT_OBJECT_0 == 0
    assert WaitCode.WAIT_ABANDONED_0 == 0x80
    assert WaitCode.WAIT_IO_COMPLETION == 0xC0
    assert WaitCode.WAIT_TIMEOUT == 258
    assert WaitCode.WAIT_FAILED == 0xFFFFFFFF
    assert codes.INFINITE == 0xFFFFFFFF


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (NtStatus.STATUS_SUCCESS, WinError.ERROR_SUCCESS),
        (NtStatus.STATUS_CANCELLED, WinError.ERROR_OPERATION_ABORTED),
        (NtStatus.STATUS_END_OF_FILE, WinError.ERROR_HANDLE_EOF),
        (NtStatus.STATUS_PIPE_BROKEN, WinError.ERROR_BROKEN_PIPE),
        (NtStatus.STATUS_BUFFER_OVERFLOW, WinError.ERROR_MORE_DATA),
        (NtStatus.STATUS_INVALID_HANDLE, WinError.ERROR_INVALID_HANDLE),
        (NtStatus.STATUS_PIPE_DISCONNECTED, WinError.ERROR_PIPE_NOT_CONNECTED),
        (NtStatus.STATUS_CONNECTION_RESET, WinError.ERROR_NETNAME_DELETED),
        (NtStatus.STATUS_USER_APC, WaitCode.WAIT_IO_COMPLETION),
    ],
)
def test_ntstatus_mapping(status: int, error: int) -> None:
    # spec: win32 §1.7
    assert codes.ntstatus_to_winerror(status) == error


def test_unknown_status_passes_through() -> None:
    assert codes.ntstatus_to_winerror(12345) == 12345
    assert codes.nca_to_rpc_status(0x6F7) == 0x6F7
    assert codes.rpc_to_nca_status(5) == 5


def test_nca_mapping_both_ways() -> None:
    # rpc-spec §A14
    assert codes.nca_to_rpc_status(NcaStatus.NCA_S_OP_RNG_ERROR) == 1745
    assert codes.nca_to_rpc_status(NcaStatus.NCA_S_FAULT_CANCEL) == 1818
    assert codes.nca_to_rpc_status(NcaStatus.NCA_S_FAULT_CONTEXT_MISMATCH) == 6
    assert codes.rpc_to_nca_status(RpcStatus.RPC_S_PROCNUM_OUT_OF_RANGE) == 0x1C010002
    assert codes.rpc_to_nca_status(RpcStatus.RPC_S_NOT_LISTENING) == 0x1C010014


def test_win32_error_is_an_oserror_with_winerror() -> None:
    exc = errors.Win32Error(WinError.ERROR_INVALID_HANDLE)
    assert isinstance(exc, OSError)
    assert exc.winerror == 6
    assert exc.errno == errno.EBADF
    assert "ERROR_INVALID_HANDLE" in str(exc)
    again = pickle.loads(pickle.dumps(exc))
    assert again.winerror == 6


def test_protocol_error_base_is_abstract() -> None:
    with pytest.raises(TypeError):
        errors.ProtocolError("x")
    exc = errors.RemoteProtocolError("bad header", reject_reason=4)
    assert exc.status == NcaStatus.NCA_S_PROTO_ERROR
    assert exc.reject_reason == 4
    assert isinstance(exc, errors.RpcError)


def test_ndr_error_defaults_to_bad_stub_data() -> None:
    exc = errors.NdrError("truncated", offset=12)
    assert exc.status == RpcStatus.RPC_X_BAD_STUB_DATA == 0x6F7
    assert exc.offset == 12
