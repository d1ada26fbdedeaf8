"""The one switch of the optional C accelerator (``winaio._io._fastio``).

Every module with functions accelerated in C registers an installer (``install(on)``: put the
C functions in place when ``on``, else the Python ones, which stay the reference and the
fallback). :func:`use` switches them all at once, so that a test or a benchmark compares the
whole C path with the whole Python path; ``WINAIO_PURE_PYTHON=1`` in the environment starts
with the Python functions. Not for use while other threads run the switched paths (tests,
benchmarks). Invariant: every installer has been called with the current state.
"""

from __future__ import annotations

import os
from collections.abc import Callable

try:
    from . import _fastio
except ImportError:  # not built (no C compiler): the Python functions run
    _fastio = None  # type: ignore[assignment]

__all__ = ["BUILT", "enabled", "register", "use"]

#: The accelerator was built and imports.
BUILT: bool = _fastio is not None

_installers: list[Callable[[bool], None]] = []
_state = [BUILT and os.environ.get("WINAIO_PURE_PYTHON", "") in ("", "0")]


def enabled() -> bool:
    """The C functions are in place (built, and not switched off)."""
    return _state[0]


def register(install: Callable[[bool], None]) -> None:
    """Add an installer and call it with the current state."""
    _installers.append(install)
    install(_state[0])


def use(on: bool) -> bool:
    """Put the C functions (``on``, when built) or the Python ones in place everywhere;
    returns whether the C ones were in place before."""
    before = _state[0]
    _state[0] = on and BUILT
    for install in _installers:
        install(_state[0])
    return before
