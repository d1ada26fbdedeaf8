"""creview's adversarial review of the sockets' C paths (``_fastpend.c``, ``_fastsock.c``,
``_fastdone.c``, ``_fastring.c``; 2026-12-05): one test per bug found, each failing before
its fix.

- ``_fastpend.c``'s ``pend_receive`` read the OVERLAPPED's ``event`` and ``skip_port`` slots
  as borrowed references and only took its own when it stored them in the request, after
  allocating (the request, its buffer list): on CPython 3.11 an allocation may run a garbage
  collection, whose callbacks and finalizers are Python code that may rebind the slot. The
  event was then freed under the C code, which stored a dangling pointer in ``op.event``.
  The Python reference reads ``overlapped.event`` into a local first: the request keeps
  the event it was issued with. Checked in a child process (a use after free may crash it)
  with PYTHONMALLOC=debug, on both implementations.
- The C sources must build on CPython 3.12 and 3.13+ (SOCKC.md: 3.13+ builds and falls back):
  ``_fastsock.c`` called ``_PyErr_ChainExceptions`` outside its version guard (deprecated in
  3.12, gone from the headers in 3.13: an implicit declaration, an error with GCC 14, so the
  whole ``_fastio`` module was not built). Checked by compiling every source with the version
  macro set to 3.13 and the names 3.13 removed poisoned, against this interpreter's headers;
  and against the headers of any other CPython 3.12+ installed (pyenv), as the build does.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._io import _accel
from winaio._io._fd_users import FdUsers
from winaio._io._overlapped import Overlapped
from winaio._io._sockets import sockets_accelerator_available
from winaio.codes import WinError
from winaio.errors import Win32Error
from winaio.testing import require_c_path, run_child

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "src" / "winaio" / "_io").glob("_fast*.c"))
OK, REASON = uring.probe_backend()

# ---------------------------------------------------------------------- a borrowed event

_CHILD = textwrap.dedent(
    """
    import sys, threading, time
    from winaio._backends import uring
    from winaio._io import _accel
    from winaio._io._overlapped import STATUS_PENDING, Overlapped
    from winaio._kernel._objects import Event
    from winaio.testing import connected_pair

    _accel.use(sys.argv[1] == "c")
    b = uring.IoUringBackend()
    f, peer = connected_pair(b)
    ov = Overlapped(event=Event(True))  # the slot holds the event's only reference
    ov.status = STATUS_PENDING
    view = memoryview(bytearray(64))
    real = threading.current_thread
    fired = []

    def current_thread():
        # Python code run while the receive is issued (here: the issuing thread's adoption,
        # as its first request; elsewhere a finalizer, a gc callback, another thread): the
        # OVERLAPPED's event is rebound, its last reference dropped.
        if threading.get_ident() == issuer_id[0] and not fired:
            fired.append(True)
            ov.event = None
        return real()

    threading.current_thread = current_thread
    issuer_id = [0]
    errors = []
    seen = []

    def issue():
        issuer_id[0] = threading.get_ident()
        try:
            b.pend_receive(f, ov, view)  # this thread's first request: it is adopted
            (op,) = f._pending  # (before this thread exits: its exit cancels the request)
            seen.append(type(op.event).__name__)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=issue)
    t.start()
    t.join()
    threading.current_thread = real
    assert not errors, errors
    print(*seen, bool(fired), flush=True)
    deadline = time.monotonic() + 5
    while ov.status == STATUS_PENDING and time.monotonic() < deadline:
        time.sleep(0.01)
    f.close()
    peer.close()
    b.close()
    """
)


@pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")
@pytest.mark.parametrize("impl", ["python", "c"])
def test_pend_receive_keeps_the_event_it_was_issued_with(impl: str) -> None:
    if impl == "c":
        require_c_path(_accel.BUILT)
    run = run_child(_CHILD, impl)  # (the debug allocator: a use after free aborts it)
    # The event was rebound during the call and the request kept the one it was issued with.
    assert run.stdout.split() == ["Event", "True"], run.stdout + run.stderr[-3000:]


# ---------------------------------------------------------------------- other CPythons


def _compiler() -> list[str]:
    cc = sysconfig.get_config_var("CC") or "cc"
    argv = shlex.split(cc)
    if shutil.which(argv[0]) is None:
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            pytest.fail(f"WINAIO_REQUIRE_ACCEL=1 but there is no C compiler ({cc})")
        pytest.skip(f"no C compiler ({cc})")
    return argv


_SIMULATED = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#undef PY_VERSION_HEX
#define PY_VERSION_HEX 0x030D0000
/* what CPython 3.13 removed from its headers, among the names the sources use */
#pragma GCC poison _PyErr_ChainExceptions _PyTime_t
#include "{source}"
"""


def _check(argv: list[str], what: str) -> None:
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{what}:\n{run.stderr[-4000:]}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_every_source_builds_with_the_guards_of_cpython_3_13(source: Path, tmp_path: Path) -> None:
    cc = _compiler()
    include = sysconfig.get_paths()["include"]
    unit = tmp_path / f"sim_{source.stem}.c"
    unit.write_text(_SIMULATED.format(source=source))
    _check(
        [
            *cc,
            "-fsyntax-only",
            "-Werror=implicit-function-declaration",
            f"-I{include}",
            f"-I{source.parent}",
            str(unit),
        ],
        f"{source.name} with PY_VERSION_HEX 3.13",
    )


def _other_headers() -> list[str]:
    found = []
    for inc in sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/include/python3.*"))
    ):
        if Path(inc, "Python.h").is_file() and Path(inc) != Path(sysconfig.get_paths()["include"]):
            found.append(inc)
    return found


def test_the_module_builds_on_the_other_cpythons_installed(tmp_path: Path) -> None:
    cc = _compiler()
    headers = _other_headers()
    for include in headers:  # (none on a machine without pyenv's: the test above stands)
        _check(
            [
                *cc,
                "-fsyntax-only",
                "-Werror=implicit-function-declaration",
                "-Werror=deprecated-declarations",
                f"-I{include}",
                *map(str, SOURCES),
            ],
            f"_fastio against {include}",
        )


# ---------------------------------------------------------------------- the chained exception


class _LeftFailed(RuntimeError):
    """What a failing ``FdUsers.left`` raises here."""


def _left_failed(self: object) -> None:
    raise _LeftFailed("left")


@pytest.mark.parametrize("impl", ["python", "c"])
def test_a_send_on_a_closing_socket_chains_the_exceptions_as_python(
    impl: str,
    socket_pair: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Socket.start_write``'s ``finally``: the closed socket's Win32Error, then ``left()``
    raising: the second exception propagates with the first as its ``__context__`` (the
    chaining ``_fastsock.c`` now does with the public API, every CPython)."""
    if impl == "c":
        require_c_path(sockets_accelerator_available(), "the sockets' C path")
    before = _accel.use(impl == "c")
    try:
        f, _peer = socket_pair()
        monkeypatch.setattr(FdUsers, "left", _left_failed)
        f.closing = True  # (a close from another thread, seen once counted in)
        try:
            with pytest.raises(_LeftFailed) as info:
                f.start_write(b"x", Overlapped())
        finally:
            f.closing = False
            monkeypatch.undo()
        context = info.value.__context__
        assert isinstance(context, Win32Error)
        assert context.winerror == int(WinError.ERROR_INVALID_HANDLE)
        assert not f.fd_users and f.send_claim is not None and not f.send_claim.locked()
    finally:
        _accel.use(before)


# ---------------------------------------------------------------------- a closed ring


@pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")
@pytest.mark.parametrize("impl", ["python", "c"])
def test_a_closed_rings_methods_raise_as_python(impl: str) -> None:
    """A closed ring's views are released (and its memory unmapped): its C methods hand the
    call to Python, which raises ValueError. ``_fastring.c`` tested the release flag only
    below CPython 3.13: there ``cq_ready()`` read the unmapped CQ ring (a segfault, seen with
    3.13.0). Run in a child process (a crash must fail the test, not the run)."""
    if impl == "c":
        require_c_path(_accel.BUILT)
    child = textwrap.dedent(
        """
        import sys
        from winaio._backends import uring
        from winaio._io import _accel
        _accel.use(sys.argv[1] == "c")
        b = uring.IoUringBackend()
        ring = b._ring
        b.close()
        for name in ("cq_ready", "cq_has_overflow", "sq_ready", "reap", "publish"):
            try:
                getattr(ring, name)()
            except ValueError:
                print(name, "ValueError")
        """
    )
    run = run_child(child, impl)
    assert run.stdout.split() == [
        "cq_ready", "ValueError", "cq_has_overflow", "ValueError", "sq_ready", "ValueError",
        "reap", "ValueError", "publish", "ValueError",
    ]  # fmt: skip
