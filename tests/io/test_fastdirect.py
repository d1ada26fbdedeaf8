"""The O_DIRECT read's issue in C (``_io/_fastdirect.c``, qd1 2026-12-06): ``DiskFile.start_read``'s
hot case, ``pinned_read`` and ``submit_pending_file`` in C, against the Python reference.

- the hot shape runs none of the Python issue functions (only ``_hand_to_backend`` and what
  the backend calls) and builds the request ``pinned_read`` builds, slot for slot;
- every other shape (misaligned or read-only buffers, odd offsets, other formats, a released
  view, an event, a closed file...) gives the C and the Python method the same outcome: same
  result or same typed error (Win32 code), same IOSB, same bytes;
- a failed allocation at any step leaves no half state (nothing registered and no
  completion, or an issued read that completes once), in a child under the debug allocator;
- an interrupt at any cut point of the C path (the entry of a Python function it calls, its
  return) leaves LOCK free and the read either never issued or completed exactly once.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio._backends import uring
from winaio._io import _disk
from winaio._io._disk import DiskFile
from winaio._io._ops import pinned_read
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._kernel._dispatcher import LOCK
from winaio._kernel._objects import Event
from winaio.errors import Win32Error
from winaio.testing import (
    Sweep,
    left_behind,
    nomem_sweep,
    profiled,
    python_frames,
    require_c_path,
    sweep_cut_points,
    wait_until,
)

OK, REASON = uring.probe_backend()
pytestmark = pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")

BLOCK = 4096
SIZE = 1 << 20
LONG = 5.0


@pytest.fixture
def c_path() -> Iterator[None]:
    """The C accelerator on (skips where it was not built; fails under WINAIO_REQUIRE_ACCEL=1)."""
    require_c_path(_disk.accelerator_available())
    before = _disk.use_accelerator(True)
    try:
        yield
    finally:
        _disk.use_accelerator(before)


@pytest.fixture
def memory() -> Iterator[mmap.mmap]:
    """Two pages of anonymous, page-aligned memory."""
    m = mmap.mmap(-1, 2 * BLOCK)
    yield m
    m.close()


@pytest.mark.usefixtures("c_path")
def test_the_hot_shape_runs_no_python_issue_function(
    disk: DiskFile, port: CompletionPort, memory: mmap.mmap, disk_data: tuple[Path, bytes]
) -> None:
    """# spec: win32 #40. One aligned page, no event: issued from C (no ``start_read``,
    ``pinned_read`` or ``submit_pending_file`` frame), FALSE + pending, then one packet with
    the file's bytes."""
    with memoryview(memory) as whole:
        view = whole[:BLOCK]
        ov = Overlapped(3 * BLOCK)
        disk.start_read(view, ov)  # (the thread's state made, remembered)
        assert port.get(LONG) is not None
        ov = Overlapped(5 * BLOCK)
        result: list[object] = []
        names = python_frames(lambda: result.append(disk.start_read(view, ov)))
        assert result == [False]
        assert not names & {"start_read", "pinned_read", "submit_pending_file"}, names
        assert "_hand_to_backend" in names  # (the backend's submit: Python, as before)
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov
        assert (packet.status, packet.bytes_transferred) == (0, BLOCK)
        assert bytes(view) == disk_data[1][5 * BLOCK : 6 * BLOCK]
        view.release()
    wait_until(lambda: disk.pending_requests == 0, LONG, "delivered")


@pytest.mark.usefixtures("c_path")
def test_the_c_request_is_the_one_pinned_read_builds(
    disk: DiskFile, port: CompletionPort, memory: mmap.mmap
) -> None:
    """Every slot of the request the C path registers equals ``pinned_read``'s for the same
    arguments (the pin apart: a memoryview of the buffer holding the same export)."""
    with memoryview(memory) as whole:
        view = whole[:BLOCK]
        ov = Overlapped(7 * BLOCK)
        assert disk.start_read(view, ov) is False
        with LOCK:
            (op,) = list(disk._pending)  # (in flight until the port hands the packet over)
        anchor = op.anchor
        assert isinstance(anchor, memoryview) and anchor.obj is memory
        address = op.address
        ref = pinned_read(disk, ov, view, 7 * BLOCK, anchor, address, BLOCK)
        slots = {n for cls in type(op).__mro__ for n in getattr(cls, "__slots__", ())}
        for name in sorted(slots - {"__weakref__", "registered", "submitted", "token"}):
            assert getattr(op, name) == getattr(ref, name), name
        assert op.registered and op.submitted and op.token is not None
        assert type(op.buffers) is tuple and op.buffers[0] is view
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov
        del op, ref, anchor, view
    wait_until(lambda: disk.pending_requests == 0, LONG, "delivered")


def _outcome(
    disk: DiskFile, port: CompletionPort, buffer: Any, ov: Overlapped, content: bytes
) -> tuple[object, ...]:
    """What one start_read does: its result or typed error, then the IOSB and the bytes of the
    completion it queued, if any."""
    try:
        result: object = disk.start_read(buffer, ov)
    except Win32Error as exc:
        return ("raised", type(exc).__name__, exc.winerror)
    except (TypeError, ValueError, BufferError, OverflowError) as exc:
        return ("raised", type(exc).__name__)
    packet = port.get(LONG)  # (an event's request on an associated file posts too)
    assert packet is not None and packet.overlapped is ov
    event = ov.event
    assert event is None or event.is_set()
    wait_until(lambda: disk.pending_requests == 0, LONG, "delivered")
    n = ov.information
    start = ov.offset
    same = bytes(memoryview(buffer).cast("B")[:n]) == content[start : start + n]
    return ("issued", result, ov.status, n, same)


def test_every_other_shape_has_the_python_methods_outcome(
    disk: DiskFile, port: CompletionPort, memory: mmap.mmap, disk_data: tuple[Path, bytes]
) -> None:
    """# spec: win32 #40, #55. Each shape through the C path and through the Python method (the
    same objects, one after the other): same result or typed error, same IOSB, same bytes."""
    require_c_path(_disk.accelerator_available())
    content = disk_data[1]
    whole = memoryview(memory)
    with open(disk_data[0], "rb") as f:
        readonly = mmap.mmap(f.fileno(), BLOCK, access=mmap.ACCESS_READ)
    released = memoryview(memory)
    released.release()
    # One bytearray for both sides, not page-aligned (malloc's address decides otherwise: an
    # aligned one is issued, a misaligned one raises ERROR_INVALID_PARAMETER): made again
    # until it is, the ones set aside kept so that the address differs.
    set_aside = [bytearray(BLOCK)]
    while ctypes.addressof(ctypes.c_char.from_buffer(set_aside[-1])) % BLOCK == 0:
        set_aside.append(bytearray(BLOCK))
    misaligned = set_aside[-1]
    shapes: dict[str, Callable[[], tuple[Any, Overlapped]]] = {
        "aligned view": lambda: (whole[:BLOCK], Overlapped(BLOCK)),
        "two pages": lambda: (whole, Overlapped(4 * BLOCK)),
        "misaligned view": lambda: (whole[1 : BLOCK + 1], Overlapped(BLOCK)),
        "odd length": lambda: (whole[: BLOCK - 512], Overlapped(BLOCK)),
        "misaligned offset": lambda: (whole[:BLOCK], Overlapped(100)),
        "negative offset": lambda: (whole[:BLOCK], Overlapped(-BLOCK)),
        "offset 2**63": lambda: (whole[:BLOCK], Overlapped(1 << 63)),
        "past the end": lambda: (whole[:BLOCK], Overlapped(SIZE + BLOCK)),
        "read-only": lambda: (memoryview(readonly), Overlapped(0)),
        "strided": lambda: (whole[::2], Overlapped(0)),
        "empty": lambda: (whole[:0], Overlapped(0)),
        "uint32 format": lambda: (whole[:BLOCK].cast("I"), Overlapped(0)),
        "two dimensions": lambda: (whole[:BLOCK].cast("B", (BLOCK, 1)), Overlapped(0)),
        "released": lambda: (released, Overlapped(0)),
        "misaligned bytearray": lambda: (misaligned, Overlapped(0)),
        "bytes": lambda: (bytes(BLOCK), Overlapped(0)),
        "an event": lambda: (whole[:BLOCK], Overlapped(2 * BLOCK, Event(manual_reset=True))),
    }
    try:
        for name, make in shapes.items():
            outcomes = []
            for impl in (True, False):
                before = _disk.use_accelerator(impl)
                try:
                    buffer, ov = make()
                    outcomes.append(_outcome(disk, port, buffer, ov, content))
                finally:
                    _disk.use_accelerator(before)
            assert outcomes[0] == outcomes[1], name
    finally:
        readonly.close()
        whole.release()


def test_a_closed_or_unreadable_file_fails_the_same_in_c_and_python(
    disk: DiskFile, port: CompletionPort, memory: mmap.mmap
) -> None:
    """# spec: win32 #52. A handle without read access: ERROR_ACCESS_DENIED; a closed file:
    ERROR_INVALID_HANDLE; nothing registered in either path."""
    require_c_path(_disk.accelerator_available())
    with memoryview(memory) as whole:
        view = whole[:BLOCK]
        errors = []
        for impl in (True, False):
            before = _disk.use_accelerator(impl)
            disk.readable = False
            try:
                with pytest.raises(Win32Error) as denied:
                    disk.start_read(view, Overlapped(0))
            finally:
                disk.readable = True
                _disk.use_accelerator(before)
            errors.append(denied.value.winerror)
        assert errors[0] == errors[1] == 5  # ERROR_ACCESS_DENIED
        assert disk.pending_requests == 0
        disk.close()
        for impl in (True, False):
            before = _disk.use_accelerator(impl)
            try:
                with pytest.raises(Win32Error) as closed:
                    disk.start_read(view, Overlapped(0))
            finally:
                _disk.use_accelerator(before)
            assert closed.value.winerror == 6  # ERROR_INVALID_HANDLE
        assert disk.pending_requests == 0
        del view, denied, closed  # (their tracebacks hold the pinned buffer)


_NOMEM = textwrap.dedent(
    """
    import sys
    from winaio._backends import uring
    from winaio._io._overlapped import Overlapped
    from winaio.testing import DiskRig, call_failing, left_behind, ring_thread_asleep

    backend = uring.IoUringBackend()
    rig = DiskRig(backend, sys.argv[2])  # (a first read: the thread's state made, path warmed)
    disk, port, view = rig.disk, rig.port, rig.view
    # The sweep is the issue's (this file's C path down to the backend's ``submit``): the
    # backend's own allocations are its tests'. Its ``submit`` records the request (no
    # allocation) and the real one takes it after the call.
    submit = uring.IoUringBackend.submit
    handed = [None]
    uring.IoUringBackend.submit = lambda self, op: handed.__setitem__(0, op)
    bad = set()
    for k in range(int(sys.argv[1])):
        ov = Overlapped(4096 * (k % 16))
        ring_thread_asleep(backend)  # (the failing allocation is this thread's)
        raised = call_failing(k, disk.start_read, view, ov)
        bad.update(left_behind(port))
        op, handed[0] = handed[0], None
        if op is not None:
            submit(backend, op)
        if raised is not None:
            if op is not None:
                bad.add("raised once handed over")
            elif disk.pending_requests:
                bad.add("raised with the read registered, not handed over")
            elif port.get(0.05) is not None:
                bad.add("a completion for a call that raised")
        elif op is None:
            bad.add("returned without handing the read over")
        else:
            packet = port.get(5.0)
            if packet is None or packet.overlapped is not ov or packet.status:
                bad.add("an issued read did not complete")
            elif port.get(0.02) is not None:
                bad.add("a read completed twice")
        if disk.pending_requests:
            bad.add("a request left registered")
            break
        del raised, op  # (a traceback's frames may hold the request, so the pin)
    uring.IoUringBackend.submit = submit
    del view
    bad.update(rig.close())
    print(sorted(bad))
    """
)


def test_a_failed_allocation_in_the_c_issue_leaves_no_half_state(tmp_path: Path) -> None:
    """Every allocation of the C issue path made to fail in turn (``_testcapi.set_nomemory``:
    the k-th allocation from the call on), under the debug allocator: no crash, LOCK free,
    and either nothing registered and no completion, or the read issued and completed once."""
    require_c_path(_disk.accelerator_available())
    try:
        os.close(os.open(tmp_path / "probe", os.O_CREAT | os.O_RDONLY | os.O_DIRECT))
    except OSError as exc:
        pytest.skip(f"no O_DIRECT here: {exc}")
    nomem_sweep(_NOMEM, "60", str(tmp_path))


@pytest.mark.usefixtures("c_path")
def test_an_interrupt_anywhere_in_the_c_issue_issues_the_read_once_or_not_at_all(
    disk: DiskFile, port: CompletionPort, memory: mmap.mmap
) -> None:
    """# spec: win32 #54. A stand-in for KeyboardInterrupt at each cut point of the C path (the
    entry of each Python function it calls - ``_hand_to_backend``, ``_handed_again`` - and its
    return): LOCK free; a read registered is handed to the backend and completes exactly once
    (registered and never handed over, it would pend for ever); one not registered never
    completes."""
    with memoryview(memory) as whole:
        view = whole[:BLOCK]
        disk.start_read(view, Overlapped(0))  # (the thread's state made and remembered)
        assert port.get(LONG) is not None

        def run(k: int) -> tuple[Sweep, list[str]]:
            ov = Overlapped(BLOCK * (k % 8))
            issue = lambda: disk.start_read(view, ov)  # noqa: E731 (the swept caller's frame)
            sweep = Sweep(k, {issue.__code__})
            profiled(sweep, issue)
            bad = left_behind()
            with LOCK:
                registered = any(op.overlapped is ov for op in disk._pending)
            packet = port.get(LONG if registered else 0.05)
            if registered and (packet is None or packet.overlapped is not ov):
                bad.append("registered and never completed")
            if not registered and packet is not None:
                if packet.overlapped is not ov or port.get(0.05) is not None:
                    bad.append("an unexpected completion")
            elif registered and port.get(0.05) is not None:
                bad.append("completed twice")
            return sweep, bad

        assert sweep_cut_points(run, limit=50, at_least=2) == {}
        view.release()
    wait_until(lambda: disk.pending_requests == 0, LONG, "delivered")
