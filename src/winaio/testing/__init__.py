"""Public test helpers: wait for a state instead of sleeping, and move the wall clock.

Only tests import this package. The waits poll the kernel's state with a short back-off and
fail with AssertionError at their deadline, so a suite using them fails instead of hanging
(the trio ``wait_all_tasks_blocked`` idea).
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import threading
import time
import unittest
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import rpc
from .._clock import reset_wall_clock as reset_wall_clock
from .._clock import shift_wall_clock as shift_wall_clock
from .._io import _accel, _sockets
from .._kernel._dispatcher import DispatcherObject
from .._kernel._handles import HANDLE_TABLE
from .._kernel._threads import KThread, thread_state_by_id
from .._kernel._wait import test_alert
from .._pool._clock import ManualClock as ManualClock
from .._runtime import available_backends as available_backends
from .._runtime import using_backend as using_backend
from ._kits import WORKER_FAILED, HandleKit, Win32Worker, apcs_drained, load_kit
from ._rigs import DiskRig, RingThreadGate, connected_pair
from ._slots import (
    SLOT_TAG,
    HookedLock,
    call_failing,
    close_files,
    file_request,
    left_behind,
    null_file,
    pinned_slot,
    port_getter,
    reaped_slots,
    receive_settled,
    registered_read,
    ring_thread_asleep,
    waiting_on,
)
from ._sweeps import PyParker, Sweep, SweepInterrupt, profiled, sweep_cut_points

__all__ = [
    "SLOT_TAG",
    "WORKER_FAILED",
    "DiskRig",
    "HandleKit",
    "HookedLock",
    "ManualClock",
    "PyParker",
    "Sweep",
    "SweepInterrupt",
    "available_backends",
    "Interrupted",
    "accelerator_for_test",
    "apcs_drained",
    "backend_for_test",
    "call_failing",
    "close_files",
    "connected_pair",
    "drain_apcs",
    "file_request",
    "hex_reader",
    "impossible_slot_combination",
    "interrupt_after_acquire",
    "load_kit",
    "left_behind",
    "mapper_on_135",
    "nomem_sweep",
    "null_file",
    "pinned_slot",
    "port_getter",
    "profiled",
    "python_frames",
    "reaped_slots",
    "receive_settled",
    "registered_read",
    "require_c_path",
    "require_peer",
    "ring_thread_asleep",
    "RingThreadGate",
    "run_child",
    "reset_wall_clock",
    "shift_wall_clock",
    "slots_for_test",
    "split_impossible_slot_items",
    "sweep_cut_points",
    "using_backend",
    "wait_until",
    "wait_until_blocked",
    "wait_until_waiters",
    "Win32Worker",
    "waiting_on",
]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Return once ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.0001
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what or predicate}")
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


def wait_until_waiters(obj: int | DispatcherObject, count: int, timeout: float = 5.0) -> None:
    """Return once at least ``count`` threads block waiting on ``obj`` (a handle or object)."""
    target = obj if isinstance(obj, DispatcherObject) else HANDLE_TABLE.resolve(obj)[0]
    wait_until(
        lambda: target.waiter_count >= count, timeout, f"{count} waiters block on {target!r}"
    )


def wait_until_blocked(thread: int | KThread, timeout: float = 5.0) -> None:
    """Return once the thread (a Win32 thread id or a thread object) is blocked in a winaio wait."""
    if isinstance(thread, KThread):
        state = thread.state
    else:
        found = thread_state_by_id(thread)
        if found is None:
            raise AssertionError(f"no live thread with id {thread}")
        state = found
    wait_until(lambda: state.wait is not None, timeout, f"thread {state.tid} blocks")


@contextlib.contextmanager
def backend_for_test(name: str) -> Iterator[str]:
    """Run the block with ``name`` as the I/O backend of the handles it creates.

    A missing io_uring (an old kernel, a seccomp policy) raises ``unittest.SkipTest``, which
    pytest reports as a skip; any other missing backend is a failure (AssertionError): the
    thread backend is always there.
    """
    available = list(available_backends())
    if name not in available:
        if name == "io_uring":
            raise unittest.SkipTest(f"io_uring unavailable (available_backends() = {available})")
        raise AssertionError(f"backend {name!r} missing from available_backends() {available}")
    with using_backend(name):
        yield name


@contextlib.contextmanager
def accelerator_for_test(impl: str) -> Iterator[str]:
    """Run the block with every C-accelerated path in C (``impl == "c"``) or in Python
    (``"python"``), as ``_accel.use`` switches them, then restore. A C run without the sockets'
    C path (not built, or another CPython layout) raises ``unittest.SkipTest`` (a pytest skip),
    or fails (AssertionError) under CI's WINAIO_REQUIRE_ACCEL=1."""
    if impl == "c":
        require_c_path(
            _sockets.sockets_accelerator_available(), "the sockets' C path (winaio._io._fastio)"
        )
    before = _accel.use(impl == "c")
    try:
        assert _sockets.sockets_accelerated() is (impl == "c")
        yield impl
    finally:
        _accel.use(before)


def require_c_path(available: object, what: str = "the C accelerator (winaio._io._fastio)") -> None:
    """A test of a C path: return if ``available`` is true, else skip the test
    (``unittest.SkipTest``: not built, or a CPython layout the C code does not know) - or fail
    it (AssertionError) under CI's WINAIO_REQUIRE_ACCEL=1, where a missing C path is a broken
    build. ``what`` names the C path in the message."""
    if available:
        return
    if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
        raise AssertionError(f"WINAIO_REQUIRE_ACCEL=1 but {what} is not available")
    raise unittest.SkipTest(f"{what} is not available")


@contextlib.contextmanager
def slots_for_test(mode: str) -> Iterator[str]:
    """Run the block with the sockets' receive slots (``_io._slot``) in ``mode``, then
    restore: ``off`` (every pended receive a request), ``py`` (the Python slot; the other
    accelerated paths as they are), ``c`` (the C slot, with the C accelerators as they are:
    on). A ``c`` run without the C slot in this build (``_accel.C_SLOTS``) or with the C
    accelerators switched off (by another fixture: enter this one last) raises
    ``unittest.SkipTest`` (a pytest skip); the accelerators missing under
    WINAIO_REQUIRE_ACCEL=1 fail instead (AssertionError)."""
    if mode == "c":
        if not _accel.BUILT and os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            raise AssertionError("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
        if not (_accel.BUILT and _accel.C_SLOTS[0]):
            raise unittest.SkipTest("the C receive slot is not in this build")
        if not _accel.enabled():  # (another fixture of the test switched the C paths off)
            raise unittest.SkipTest("the C receive slot runs with the C accelerators only")
    before = _accel.use_slots(mode)
    try:
        assert _accel.slots() == mode
        yield mode
    finally:
        _accel.use_slots(before)


def impossible_slot_combination(params: Mapping[str, object]) -> bool:
    """True for a test parametrisation that cannot run: the C receive slot (``slot_impl``
    ``c``) with the C accelerators switched off by another fixture (``sock_impl`` or
    ``fast_path_impl`` ``python``), which :func:`slots_for_test` would skip."""
    return params.get("slot_impl") == "c" and "python" in (
        params.get("sock_impl"),
        params.get("fast_path_impl"),
    )


def split_impossible_slot_items(items: list[Any], directory: str) -> tuple[list[Any], list[Any]]:
    """The collected test items (pytest's) as (kept, impossible): the impossible ones are
    those under ``directory`` whose parametrisation :func:`impossible_slot_combination`
    refuses. The suites' conftests deselect them at collection, so a run reports no skip
    for them (a collection hook sees the whole session's items: each conftest its own)."""
    prefix = os.path.join(directory, "")
    kept: list[Any] = []
    impossible: list[Any] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (
            callspec is not None
            and str(item.path).startswith(prefix)
            and impossible_slot_combination(callspec.params)
        ):
            impossible.append(item)
        else:
            kept.append(item)
    return kept, impossible


def run_child(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (``python -X faulthandler -c script *args``) in a child with the C paths
    on (``WINAIO_PURE_PYTHON=0``), this ``winaio`` first on its path and the debug allocator
    (``PYTHONMALLOC=debug``: a use after free or a buffer overrun aborts it); check that it
    exited with status 0 (a crash must fail the test, not the run) and return it, for the
    caller's checks of its output. The C paths' children (fault injection, a rebound slot, a
    closed ring) run through it."""
    env = dict(os.environ, PYTHONMALLOC="debug", WINAIO_PURE_PYTHON="0")
    src = str(Path(__file__).resolve().parents[2])  # (the directory holding ``winaio``)
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", script, *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def nomem_sweep(script: str, *args: str, timeout: float = 300) -> None:
    """Run ``script`` (a fault-injection sweep: ``_testcapi.set_nomemory`` over each
    allocation in turn) in a child under the debug allocator with the C paths on
    (:func:`run_child`), and check that it exited cleanly and that its last line is ``[]``
    (the sweep's list of half states found: none). Skips (``unittest.SkipTest``) where this
    CPython has no ``_testcapi``."""
    if importlib.util.find_spec("_testcapi") is None:
        raise unittest.SkipTest("this CPython has no _testcapi (fault injection)")
    run = run_child(script, *args, timeout=timeout)
    assert run.stdout.split("\n")[-2] == "[]", run.stdout[-3000:]


def hex_reader(directory: Path) -> Callable[[str], bytes]:
    """``read(name)``: the bytes ``directory/<name>.hex`` spells (a golden vector or a captured
    PDU: hex digits, white space ignored, ``#`` to the end of a line a comment); ValueError for
    anything else in it (an odd digit count, a stray character)."""

    def read(name: str) -> bytes:
        text = (directory / f"{name}.hex").read_text()
        digits = "".join(re.sub(r"#.*", "", line) for line in text.splitlines())
        return bytes.fromhex("".join(digits.split()))

    return read


def require_peer(available: bool, reason: str) -> None:
    """A test that needs a real peer (impacket, Samba's rpcclient, TCP port 135): return if
    ``available``, else skip it (``unittest.SkipTest``) - or fail it (AssertionError) under
    CI's WINAIO_REQUIRE_PEERS=1, where every peer is installed and a missing one is a broken
    set-up."""
    if available:
        return
    if os.environ.get("WINAIO_REQUIRE_PEERS") == "1":
        raise AssertionError(f"required peer missing (WINAIO_REQUIRE_PEERS=1): {reason}")
    raise unittest.SkipTest(reason)


def mapper_on_135(
    endpoints: rpc.EndpointMap, *, mgmt: bool = False, patience: float = 40.0
) -> rpc.Server:
    """A listening endpoint mapper server on 127.0.0.1:135 sharing ``endpoints`` (impacket's
    rpcdump.py and Samba's rpcclient only ask there), with the mgmt interface too if
    ``mgmt``; the caller closes it. Several work trees may run tests at once on one machine:
    retry while the port is busy, for ``patience`` seconds (less than the test timeout); then
    :func:`require_peer` (a skip, a failure under CI, where the suite runs alone)."""
    deadline = time.monotonic() + patience
    while True:
        server = rpc.Server()
        rpc.register_epm(server, endpoints)
        if mgmt:
            rpc.register_mgmt(server)
        try:
            server.use_protseq("ncacn_ip_tcp", "135", host="127.0.0.1")
        except Exception as exc:
            server.close()
            if time.monotonic() > deadline:
                require_peer(False, f"TCP port 135 stayed busy or denied: {exc}")
            time.sleep(0.5)
            continue
        rpc.publish_endpoints(server, endpoints)
        server.listen(wait=False)
        return server


def python_frames(call: Callable[[], object]) -> set[str]:
    """The names of the Python functions ``call`` ran (a profile hook: C functions are seen
    apart, as ``c_call`` events, and not counted). The C paths' tests check with it that a hot
    shape runs no Python frame."""
    names: set[str] = set()

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            names.add(frame.f_code.co_name)

    gc.collect()
    was = gc.isenabled()
    gc.disable()  # (a collection meanwhile runs finalizers and gc callbacks: frames not call's)
    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
        if was:
            gc.enable()
    return names


def drain_apcs() -> None:
    """Run the user APCs queued to the calling thread, ignoring what they raise.

    A test that fails with APCs (completion routines) still queued to the long-lived pytest
    thread must not leak them into the next test's alertable waits.
    """
    try:
        test_alert()
    except Exception:
        pass


@dataclass
class Interrupted:
    """What :func:`interrupt_after_acquire` saw: the exception ``call`` raised (None if it
    returned), and whether the lock was still held once it had (released then, so that the
    suite goes on: the caller asserts ``not leaked``)."""

    raised: BaseException | None
    leaked: bool


def interrupt_after_acquire(
    lock: Any,
    call: Callable[[], object],
    where: Callable[..., Any],
    markers: tuple[str, ...] = ("acquire(", "with "),
    timeout: float = 5.0,
    ready: Callable[[], bool] | None = None,
) -> Interrupted:
    """Run ``call()`` on the main thread with a Ctrl-C landing just after ``lock`` is acquired
    inside ``where`` (a function ``call`` reaches): a real signal handler's KeyboardInterrupt,
    at the first point CPython checks for signals after the acquire returned.

    The lock is held by a helper thread until the main thread blocks on it in ``where`` (its
    innermost frame is ``where``'s code, on a line with one of ``markers``); the helper then
    trips the SIGINT flag without interrupting the wait (``_thread.interrupt_main``) and
    releases the lock: the main thread gets it and the handler runs at the next check. After
    ``lock.acquire(); try:`` that check is the acquire call's own end, outside the ``try``:
    the lock stays held (``leaked``). After ``with lock:`` it is inside the block, whose exit
    releases it.

    With ``ready``, the helper takes the lock only once ``ready()`` is true (``call`` needs the
    lock free first: a wait that registers, parks, then re-takes the lock when it wakes).
    """
    if threading.current_thread() is not threading.main_thread():
        raise AssertionError("interrupt_after_acquire runs on the main thread (signals)")
    code = getattr(where, "__func__", where).__code__
    source, first = inspect.getsourcelines(code)
    lines = {first + i for i, text in enumerate(source) if any(m in text for m in markers)}
    main = threading.main_thread().ident
    assert main is not None
    failure: list[str] = []

    taken = threading.Event()

    def helper() -> None:
        deadline = time.monotonic() + timeout
        if ready is not None:
            while not ready():
                if time.monotonic() > deadline:
                    failure.append(f"{ready} never became true")
                    return
                time.sleep(0.0002)
            lock.acquire()
        taken.set()
        try:
            while True:
                frame = sys._current_frames().get(main)
                if frame is not None and frame.f_code is code and frame.f_lineno in lines:
                    break
                if time.monotonic() > deadline:
                    failure.append(f"the main thread never blocked on the lock in {where}")
                    return
                time.sleep(0.0002)
            time.sleep(0.002)  # (in the wait, not just on its line)
            _thread.interrupt_main()
        finally:
            lock.release()

    if ready is None and not lock.acquire(True, timeout):
        raise AssertionError(f"{lock!r} is held: cannot stage the interrupt")
    thread = threading.Thread(target=helper, name="winaio-test-interrupter", daemon=True)
    raised: BaseException | None = None
    try:
        thread.start()
        try:
            call()
            thread.join(timeout)
            time.sleep(0)  # (a check: an interrupt still pending lands here, not later)
        except BaseException as exc:  # the interrupt (or what the call made of it)
            raised = exc
            thread.join(timeout)
    finally:
        leaked = taken.is_set() and lock.locked()
        if leaked:
            lock.release()
    if failure:
        raise AssertionError(failure[0])
    return Interrupted(raised, leaked)
