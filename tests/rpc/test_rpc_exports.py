"""One public face per package: every public name is listed once, in exactly one public module.

Like trio's test_exports: ``dir(module)`` holds no public name that ``__all__`` omits, every
``__all__`` entry exists, and no object is exported by two public modules (a user must never
wonder which of two spellings is the real one). Applies to winaio, winaio.rpc, winaio.win32,
winaio.codes, winaio.errors and winaio.testing.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

PUBLIC_MODULES = (
    "winaio",
    "winaio.rpc",
    "winaio.win32",
    "winaio.codes",
    "winaio.errors",
    "winaio.testing",
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_lists_each_name_once_and_every_name_exists(name: str) -> None:
    module = _module(name)
    listed = list(module.__all__)
    assert len(listed) == len(set(listed)), [n for n in listed if listed.count(n) > 1]
    missing = [n for n in listed if not hasattr(module, n)]
    assert missing == []


def test_rpc_namespace_has_no_unlisted_public_names() -> None:
    rpc = _module("winaio.rpc")
    public = {n for n in dir(rpc) if not n.startswith("_") and n != "annotations"}
    assert public - set(rpc.__all__) == set()


def _exported_objects(name: str) -> dict[int, tuple[str, object]]:
    module = _module(name)
    out: dict[int, tuple[str, object]] = {}
    for attr in module.__all__:
        obj = getattr(module, attr)
        # Plain values (ints, strings, enum members...) may legitimately be equal across
        # modules; what must not be exported twice are the things a user imports by name.
        # (winaio re-exports its submodules codes and errors: those are not names.)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            out[id(obj)] = (f"{name}.{attr}", obj)
    return out


def test_no_rpc_object_is_exported_by_another_public_module() -> None:
    # (winaio itself re-exports a few winaio.errors classes by design; that is its business.)
    rpc = _exported_objects("winaio.rpc")
    clashes = [
        (rpc[key][0], where)
        for name in PUBLIC_MODULES
        if name != "winaio.rpc"
        for key, (where, _obj) in _exported_objects(name).items()
        if key in rpc
    ]
    assert clashes == []


def test_rpc_public_classes_and_functions_are_documented() -> None:
    rpc = _module("winaio.rpc")
    undocumented = [
        n
        for n in rpc.__all__
        if (inspect.isclass(getattr(rpc, n)) or inspect.isfunction(getattr(rpc, n)))
        and not inspect.getdoc(getattr(rpc, n))
    ]
    assert undocumented == []
