"""The Win32 alias layer: exact Win32 names and calling conventions over the Pythonic core.

Conventions (the ones a C programmer expects, see docs/design.md "Alias layer"):
- Times are DWORD milliseconds, ``INFINITE`` = 0xFFFFFFFF.
- BOOL functions return ``True``/``False``; on failure the thread's last-error is set and is
  read with :func:`GetLastError`. DWORD wait functions return their code (``WAIT_FAILED`` + last
  error on failure). Functions that create handles return 0 (NULL) on failure.
- Handles are ints. Output parameters are :class:`Ref` boxes (``prev = Ref(0)``), or ``None`` for
  a NULL pointer. Callbacks are Python callables with the documented parameters.
- Every function delegates to one core function and only adapts conventions.

The core never imports this package.
"""

from __future__ import annotations

# issue 12 (fidelity): _dirwatch, _files, _locks, _sync_ex, _winsock_ext,
# _winsock_modes; issue 10 (pool): _threadpool, _threadpool_env, _threadpool_legacy
from . import (
    _base,
    _constants,
    _dirwatch,
    _files,
    _io,
    _locks,
    _overlapped,
    _pipes,
    _port,
    _rpc,
    _sync,
    _sync_ex,
    _threadpool,
    _threadpool_env,
    _threadpool_legacy,
    _threads,
    _winsock,
    _winsock_ext,
    _winsock_modes,
    _winsock_overlapped,
)
from ._base import *  # noqa: F403
from ._constants import *  # noqa: F403
from ._dirwatch import *  # noqa: F403
from ._files import *  # noqa: F403
from ._io import *  # noqa: F403
from ._locks import *  # noqa: F403
from ._overlapped import *  # noqa: F403
from ._pipes import *  # noqa: F403
from ._port import *  # noqa: F403
from ._rpc import *  # noqa: F403
from ._sync import *  # noqa: F403
from ._sync_ex import *  # noqa: F403
from ._threadpool import *  # noqa: F403
from ._threadpool_env import *  # noqa: F403
from ._threadpool_legacy import *  # noqa: F403
from ._threads import *  # noqa: F403
from ._winsock import *  # noqa: F403
from ._winsock_ext import *  # noqa: F403
from ._winsock_modes import *  # noqa: F403
from ._winsock_overlapped import *  # noqa: F403

WAIT_ABANDONED = _constants.WAIT_ABANDONED_0

__all__ = [
    *_base.__all__,
    *_constants.__all__,
    *_io.__all__,
    *_overlapped.__all__,
    *_pipes.__all__,
    *_port.__all__,
    *_rpc.__all__,
    *_sync.__all__,
    *_threadpool.__all__,
    *_threadpool_env.__all__,
    *_threadpool_legacy.__all__,
    *_threads.__all__,
    *_winsock.__all__,
    *_winsock_overlapped.__all__,
    "WAIT_ABANDONED",
    # issue 12 (fidelity)
    *_dirwatch.__all__,
    *_files.__all__,
    *_locks.__all__,
    *_sync_ex.__all__,
    *_winsock_ext.__all__,
    *_winsock_modes.__all__,
]
