"""The Win32 alias layer: exact Win32 names and calling conventions over the Pythonic core.

Conventions (the ones a C programmer expects, see docs/design.md "Alias layer"):
- Times are DWORD milliseconds, ``INFINITE`` = 0xFFFFFFFF.
- BOOL functions return ``True``/``False``; on failure the thread's last-error is set and is
  read with :func:`GetLastError`. DWORD wait functions return their code (``WAIT_FAILED`` + last
  error on failure).
- Handles are ints. Output parameters are :class:`Ref` boxes (``prev = Ref(0)``), or ``None`` for
  a NULL pointer.
- Every function delegates to one core function and only adapts conventions.

The core never imports this package.
"""

from __future__ import annotations

__all__: list[str] = []
