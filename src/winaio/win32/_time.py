"""Win32 time structures: FILETIME and LARGE_INTEGER, and how aliases take and fill them.

- FILETIME [MS:FILETIME]: 100 ns intervals since 1601-01-01 UTC, split in dwLowDateTime /
  dwHighDateTime. GetSystemTimeAsFileTime fills one (or a ``Ref``) like the C out-parameter.
- LARGE_INTEGER [MS:LARGE_INTEGER]: a signed 64-bit QuadPart (LowPart / HighPart views).
  SetWaitableTimer's lpDueTime takes one, a FILETIME (absolute), a ``Ref`` to an int, or a
  plain int - always the same LARGE_INTEGER value: negative = relative, positive = absolute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..codes import WinError
from ..errors import Win32Error
from ._base import Ref

__all__ = ["FILETIME", "LARGE_INTEGER", "due_time_value", "store_filetime"]


@dataclass
class FILETIME:
    """The FILETIME structure [MS:FILETIME]."""

    dwLowDateTime: int = 0
    dwHighDateTime: int = 0

    @property
    def value(self) -> int:
        """The 64-bit count of 100 ns intervals."""
        return ((self.dwHighDateTime & 0xFFFFFFFF) << 32) | (self.dwLowDateTime & 0xFFFFFFFF)

    @value.setter
    def value(self, value: int) -> None:
        self.dwLowDateTime = value & 0xFFFFFFFF
        self.dwHighDateTime = (value >> 32) & 0xFFFFFFFF


@dataclass
class LARGE_INTEGER:  # noqa: N801 - the Win32 union name
    """The LARGE_INTEGER union [MS:LARGE_INTEGER]: ``QuadPart`` is the signed 64-bit value."""

    QuadPart: int = 0

    @property
    def LowPart(self) -> int:
        """The low DWORD."""
        return self.QuadPart & 0xFFFFFFFF

    @property
    def HighPart(self) -> int:
        """The high LONG (signed)."""
        return self.QuadPart >> 32


def due_time_value(due: Any) -> int:
    """The LARGE_INTEGER value behind SetWaitableTimer's lpDueTime (module docstring).

    Raises:
        Win32Error: ERROR_NOACCESS for NULL (lpDueTime is required), ERROR_INVALID_PARAMETER
            for anything else that is not a 64-bit time.
    """
    if due is None:
        raise Win32Error(WinError.ERROR_NOACCESS, "lpDueTime is NULL")
    if isinstance(due, LARGE_INTEGER):
        return due.QuadPart
    if isinstance(due, FILETIME):
        return due.value
    if isinstance(due, Ref):
        due = due.value
    if isinstance(due, bool) or not isinstance(due, int):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"due time {due!r}")
    return due


def store_filetime(target: Any, value: int) -> None:
    """Fill a FILETIME / LARGE_INTEGER / ``Ref`` out-parameter with ``value`` (None: NULL)."""
    if isinstance(target, FILETIME):
        target.value = value
    elif isinstance(target, LARGE_INTEGER):
        target.QuadPart = value
    elif isinstance(target, Ref):
        target.value = value
