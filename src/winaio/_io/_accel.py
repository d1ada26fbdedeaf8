"""The one switch of the optional C accelerator (``winaio._io._fastio``).

Every module with functions accelerated in C registers an installer (``install(on)``: put the
C functions in place when ``on``, else the Python ones, which stay the reference and the
fallback). :func:`use` switches them all at once, so that a test or a benchmark compares the
whole C path with the whole Python path; ``WINAIO_PURE_PYTHON=1`` in the environment starts
with the Python functions. Not for use while other threads run the switched paths (tests,
benchmarks). Invariant: every installer has been called with the current state.

:func:`install_methods` is the installers' common step: per method, the C function or the
Python one put on the class (``type.__setattr__``, as the C functions are method descriptors of
that class).

The sockets' receive slots (``_slot``, docs/plans/receive-slot.md) have their own switch,
:func:`use_slots`: ``off`` (every pended receive is a request, today's path), ``py`` (the
Python ``ReceiveSlot`` and its Python functions), ``c`` (the C slot, with the C accelerators;
``py`` where the C slot is not built or the accelerators are off). :func:`slots` is the mode in
effect; installers read it (it changes with :func:`use` too). ``WINAIO_SLOTS`` in the
environment gives the starting mode; by default ``c`` (so ``py`` where the C slot does not
run: ``WINAIO_PURE_PYTHON=1``, CPython 3.13+): measured in docs/design.md, "The receive slot".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

try:
    from . import _fastio
except ImportError:  # not built (no C compiler): the Python functions run
    _fastio = None  # type: ignore[assignment]

__all__ = [
    "BUILT",
    "C_SLOTS",
    "SLOT_MODES",
    "enabled",
    "install_methods",
    "register",
    "slots",
    "use",
    "use_slots",
]

#: The accelerator was built and imports.
BUILT: bool = _fastio is not None

_installers: list[Callable[[bool], None]] = []
_state = [BUILT and os.environ.get("WINAIO_PURE_PYTHON", "") in ("", "0")]
SLOT_MODES = ("off", "py", "c")
#: The receive slots' mode asked for (:func:`use_slots`).
_slot_mode = [os.environ.get("WINAIO_SLOTS", "") or "c"]
if _slot_mode[0] not in SLOT_MODES:
    raise ValueError(f"WINAIO_SLOTS={_slot_mode[0]!r}: one of {', '.join(SLOT_MODES)}")
#: The C receive slot is built and configured (set by its configuration, ``_fastslot.c``).
C_SLOTS = [False]


def slots() -> str:
    """The receive slots' mode in effect: ``off``, ``py`` or ``c`` (module docstring)."""
    mode = _slot_mode[0]
    if mode == "c" and not (_state[0] and C_SLOTS[0]):
        return "py"
    return mode


def use_slots(mode: str) -> str:
    """Ask for the receive slots' ``mode`` (``off``, ``py``, ``c``) and put it in place
    everywhere (not while other threads pend receives: tests, benchmarks); returns the mode
    asked for before. Slots armed meanwhile finish as they started.

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in SLOT_MODES:
        raise ValueError(f"receive slots: {mode!r} is not one of {', '.join(SLOT_MODES)}")
    before = _slot_mode[0]
    _slot_mode[0] = mode
    for install in _installers:
        install(_state[0])
    return before


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


def install_methods(cls: type, methods: Mapping[str, tuple[object, object]], on: bool) -> None:
    """Put on ``cls`` each method ``name: (c, python)`` of ``methods``: the C function when
    ``on`` and it exists (not None: built and configured), else the Python one; a Python one
    of None means the class inherits it (its own attribute, if any, is removed)."""
    for name, (c, python) in methods.items():
        method = c if on and c is not None else python
        if method is not None:
            type.__setattr__(cls, name, method)
        elif name in cls.__dict__:
            type.__delattr__(cls, name)
