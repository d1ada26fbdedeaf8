"""Access masks of Open*/Create*Ex handles to named objects: validation and generic mapping.

Facts encoded here ([MS:Synchronization Object Security and Access Rights],
[W:k32/sync.c:test_mutex] - the todo_wine lines show Windows):
- A handle's mask is what was asked for, with GENERIC_* bits mapped to the type's rights
  (GENERIC_READ -> READ_CONTROL | QUERY_STATE, GENERIC_WRITE -> READ_CONTROL | MODIFY_STATE,
  GENERIC_EXECUTE -> READ_CONTROL | SYNCHRONIZE, GENERIC_ALL and MAXIMUM_ALLOWED -> all rights).
- Asking for nothing, or for a bit the type does not define, fails with ERROR_ACCESS_DENIED;
  ACCESS_SYSTEM_SECURITY with ERROR_PRIVILEGE_NOT_HELD (no SeSecurityPrivilege here).
- Waiting needs SYNCHRONIZE (a handle opened GENERIC_READ | GENERIC_WRITE cannot be waited on);
  ReleaseMutex needs no right at all.
"""

from __future__ import annotations

from ..codes import WinError
from ..errors import Win32Error

__all__ = ["ACCESS_SYSTEM_SECURITY", "MAXIMUM_ALLOWED", "map_access"]

ACCESS_SYSTEM_SECURITY = 0x01000000
MAXIMUM_ALLOWED = 0x02000000
_DELETE, _READ_CONTROL, _WRITE_DAC, _WRITE_OWNER, _SYNCHRONIZE = (
    0x00010000, 0x00020000, 0x00040000, 0x00080000, 0x00100000,
)  # fmt: skip
_STANDARD = _DELETE | _READ_CONTROL | _WRITE_DAC | _WRITE_OWNER | _SYNCHRONIZE
_GENERIC_READ, _GENERIC_WRITE, _GENERIC_EXECUTE, _GENERIC_ALL = (
    0x80000000, 0x40000000, 0x20000000, 0x10000000,
)  # fmt: skip
_QUERY_STATE, _MODIFY_STATE = 0x0001, 0x0002

#: type name -> (specific rights defined, GENERIC_READ, GENERIC_WRITE)
_TYPES: dict[str, tuple[int, int, int]] = {
    "Event": (_QUERY_STATE | _MODIFY_STATE, _QUERY_STATE, _MODIFY_STATE),
    "Semaphore": (_QUERY_STATE | _MODIFY_STATE, _QUERY_STATE, _MODIFY_STATE),
    "Timer": (_QUERY_STATE | _MODIFY_STATE, _QUERY_STATE, _MODIFY_STATE),
    "Mutant": (_QUERY_STATE, _QUERY_STATE, 0),
}


def map_access(type_name: str, access: int) -> int:
    """The mask a new handle to a ``type_name`` object gets for ``access``.

    Raises:
        Win32Error: ERROR_ACCESS_DENIED (nothing asked, or undefined bits),
            ERROR_PRIVILEGE_NOT_HELD (ACCESS_SYSTEM_SECURITY).
    """
    specific, read, write = _TYPES.get(type_name, (0xFFFF, 0xFFFF, 0xFFFF))
    access = int(access) & 0xFFFFFFFF
    if access & ACCESS_SYSTEM_SECURITY:
        raise Win32Error(WinError.ERROR_PRIVILEGE_NOT_HELD, "ACCESS_SYSTEM_SECURITY")
    allowed = specific | _STANDARD | MAXIMUM_ALLOWED
    allowed |= _GENERIC_READ | _GENERIC_WRITE | _GENERIC_EXECUTE | _GENERIC_ALL
    if not access or access & ~allowed:
        raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"access 0x{access:X} for a {type_name}")
    mapped = access & (specific | _STANDARD)
    if access & _GENERIC_READ:
        mapped |= _READ_CONTROL | read
    if access & _GENERIC_WRITE:
        mapped |= _READ_CONTROL | write
    if access & _GENERIC_EXECUTE:
        mapped |= _READ_CONTROL | _SYNCHRONIZE
    if access & (_GENERIC_ALL | MAXIMUM_ALLOWED):
        mapped |= specific | _STANDARD
    return mapped
