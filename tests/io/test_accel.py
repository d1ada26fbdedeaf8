"""The accelerators' one switch (``winaio._io._accel``): :func:`install_methods`, the step every
module's installer shares (the C function or the Python one put on the class), and the switch
putting every registered C method in place and taking it back."""

from __future__ import annotations

import pytest

from winaio._backends.uring import deferral as deferral_mod
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring import ring as ring_mod
from winaio._io import _accel, _disk, _sockets
from winaio._io._disk import DiskFile
from winaio._io._sockets import Socket


def c_impl(self: object) -> str:
    return "c"


def py_impl(self: object) -> str:
    return "python"


class _Base:
    def inherited(self) -> str:
        return "base"


def _fresh() -> type:
    class Target(_Base):
        def own(self) -> str:
            return "own"

    return Target


def test_install_methods_puts_the_c_function_when_on_and_the_python_one_when_off() -> None:
    cls = _fresh()
    methods = {"own": (c_impl, py_impl)}
    _accel.install_methods(cls, methods, True)
    assert cls.__dict__["own"] is c_impl and cls().own() == "c"
    _accel.install_methods(cls, methods, False)
    assert cls.__dict__["own"] is py_impl and cls().own() == "python"


def test_install_methods_without_a_c_function_keeps_the_python_one() -> None:
    # (not built, or not configured on this CPython: None)
    cls = _fresh()
    _accel.install_methods(cls, {"own": (None, py_impl)}, True)
    assert cls.__dict__["own"] is py_impl


def test_install_methods_gives_an_inherited_method_back_to_the_base() -> None:
    # A Python method of None: the class inherits it; the C one is removed when off (as
    # ``BackendRing``'s methods inherited from ``RingQueue``).
    cls = _fresh()
    methods = {"inherited": (c_impl, None)}
    _accel.install_methods(cls, methods, True)
    assert cls().inherited() == "c"
    _accel.install_methods(cls, methods, False)
    assert "inherited" not in cls.__dict__ and cls().inherited() == "base"
    _accel.install_methods(cls, methods, False)  # (nothing to remove: no error)
    assert cls().inherited() == "base"


def test_install_methods_sets_methods_on_a_slotted_class() -> None:
    class Slotted:
        __slots__ = ("x",)

        def own(self) -> str:
            return "own"

    _accel.install_methods(Slotted, {"own": (c_impl, Slotted.own)}, True)
    assert Slotted().own() == "c"


#: (class, method name, the module's C methods or None) of the modules switched here.
_SWITCHED = [
    (DiskFile, "read_now", _disk._C_METHODS and _disk._C_METHODS[0], _disk._PY_METHODS[0]),
    (DiskFile, "start_read", _disk._C_METHODS and _disk._C_METHODS[1], _disk._PY_METHODS[1]),
    (
        Socket,
        "start_read",
        _sockets._C_SOCKET_METHODS and _sockets._C_SOCKET_METHODS[0],
        _sockets._PY_SOCKET_METHODS[0],
    ),
    (
        Socket,
        "start_write",
        _sockets._C_SOCKET_METHODS and _sockets._C_SOCKET_METHODS[1],
        _sockets._PY_SOCKET_METHODS[1],
    ),
    (
        deferral_mod.Deferral,
        "take_burst",
        deferral_mod._C_METHODS and deferral_mod._C_METHODS["take_burst"],
        deferral_mod._PY_METHODS["take_burst"],
    ),
    (
        reaper_mod.Reaper,
        "reap",
        reaper_mod._C_METHODS and reaper_mod._C_METHODS["reap"],
        reaper_mod._PY_REAP,
    ),
    (
        reaper_mod.Reaper,
        "process",
        reaper_mod._C_DONE and reaper_mod._C_DONE[2],
        reaper_mod._PY_PROCESS,
    ),
    (
        ring_mod.BackendRing,
        "sq_ready",
        ring_mod._C_METHODS and ring_mod._C_METHODS["sq_ready"],
        ring_mod._PY_METHODS["sq_ready"] if "sq_ready" in ring_mod._OWN else None,
    ),
]


@pytest.mark.parametrize("cls, name, c, py", _SWITCHED, ids=lambda v: getattr(v, "__name__", ""))
def test_the_switch_installs_every_module_s_methods(
    cls: type, name: str, c: object, py: object
) -> None:
    before = _accel.use(True)
    try:
        if _accel.BUILT and c is not None:
            assert cls.__dict__[name] is c
        _accel.use(False)
        if py is None:
            assert name not in cls.__dict__
        else:
            assert cls.__dict__[name] is py
    finally:
        _accel.use(before)
