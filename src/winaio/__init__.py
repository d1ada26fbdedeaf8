"""winaio: the Windows asynchronous I/O model and Microsoft asynchronous RPC, for Python on Linux.

Layers (each imports only the ones below it; see docs/design.md):

- ``winaio.codes`` / ``winaio.errors``: status codes with their Win32/RPC spellings, exceptions.
- kernel objects, waits and APCs (this package's top level): Pythonic, seconds, exceptions.
- ``winaio.win32``: the same functionality under the exact Win32 names and conventions.
- ``winaio.rpc``: DCE/RPC (NDR 2.0, connection-oriented PDUs) and the MS async RPC model.
"""

from __future__ import annotations

from . import codes as codes
from . import errors as errors
from .errors import Win32Error as Win32Error
from .errors import WinaioError as WinaioError

__all__ = [
    "Win32Error",
    "WinaioError",
    "codes",
    "errors",
]

__version__ = "0.1.0"
