"""Conventions shared by every Win32 alias: out-parameters, last-error, milliseconds, BOOL.

Rules (docs/design.md "Alias layer"):
- A failing call stores the core exception's ``winerror`` as the thread's last-error and returns
  the function's failure value (FALSE, NULL handle, WAIT_FAILED...). Nothing else sets it, except
  functions documented to set it on success (CreateEvent & co.: ERROR_ALREADY_EXISTS or 0).
- ``INFINITE`` (0xFFFFFFFF) is the only "no timeout"; other DWORDs are milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import index as _index
from typing import Any, Generic, TypeVar

from .._kernel._handles import HANDLE_TABLE
from .._kernel._threads import current_thread_state
from ..codes import INFINITE, WinError
from ..errors import Win32Error

__all__ = [
    "FALSE",
    "INFINITE",
    "INVALID_HANDLE_VALUE",
    "MAXIMUM_WAIT_OBJECTS",
    "NULL",
    "TRUE",
    "GetLastError",
    "Ref",
    "SetLastError",
]

T = TypeVar("T")

TRUE = True
FALSE = False
NULL = 0
INVALID_HANDLE_VALUE = -1
MAXIMUM_WAIT_OBJECTS = 64

#: The handle table's entry lookup (``HandleTable.get``'s own hot path), bound once for the
#: aliases' fast paths. It returns None for an unknown handle; the fast paths index it inside
#: ``try`` and take TypeError (``None[0]``, or an unhashable "handle") as "not a plain handle",
#: so it is typed as if it never returned None.
handle_entry: Callable[[Any], tuple[Any, int]] = HANDLE_TABLE._entries.get  # type: ignore[assignment]


class Ref(Generic[T]):
    """An out-parameter box for a C pointer: ``prev = Ref(0); ReleaseSemaphore(h, 1, prev)``.

    Pass ``None`` where C passes NULL.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Ref({self.value!r})"


def GetLastError() -> int:
    """The calling thread's last-error code [MS:GetLastError]."""
    return current_thread_state().last_error


def SetLastError(dwErrCode: int) -> None:
    """Set the calling thread's last-error code [MS:SetLastError]."""
    current_thread_state().last_error = int(dwErrCode)


def fail(exc: Win32Error) -> None:
    """Record ``exc`` as the thread's last-error (the failure path of every alias)."""
    current_thread_state().last_error = exc.winerror


def set_last_error(code: int) -> None:
    """Success paths that document a last-error value (ERROR_ALREADY_EXISTS...)."""
    current_thread_state().last_error = code


def integer(value: int, what: str = "value") -> int:
    """An integer argument, unchanged: ``int(x)`` would parse a string and truncate a float.

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER if ``value`` is not an integer (bool and
            ``__index__`` types are).
    """
    try:
        return _index(value)
    except TypeError:
        raise Win32Error(
            WinError.ERROR_INVALID_PARAMETER, f"{what} {value!r} is not an integer"
        ) from None


def dword(value: int, what: str = "value") -> int:
    """An integer argument as C converts it to a DWORD (modulo 2**32: ``-1`` is 0xFFFFFFFF).
    Only integers are DWORDs (``bool`` and ``__index__`` types included): a float, a string
    or None is refused rather than truncated or parsed, as ctypes and pywin32 refuse them.

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER if ``value`` is not an integer (the alias
            functions turn it into their failure value and last-error).
    """
    try:
        return _index(value) & 0xFFFFFFFF
    except TypeError:
        raise Win32Error(
            WinError.ERROR_INVALID_PARAMETER, f"{what} {value!r} is not a DWORD"
        ) from None


def seconds(milliseconds: int) -> float | None:
    """A DWORD millisecond timeout (:func:`dword`) -> core seconds (None for INFINITE).

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER if ``milliseconds`` is not an integer.
    """
    ms = dword(milliseconds, "timeout")
    return None if ms == INFINITE else ms / 1000.0
