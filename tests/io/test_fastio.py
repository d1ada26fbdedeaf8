"""The cached-read fast path's C accelerator (``winaio._io._fastio``) against its Python reference,
and the descriptor-reuse race of the Python paths.

- Differential (Hypothesis): ``start_read``, ``read_now`` and ``winaio.win32.ReadFile`` /
  ``GetQueuedCompletionStatusEx`` (whose hot shapes have C versions too, so that the alias
  layer keeps its cost beside the core's) through C and through Python give
  the same result or the same typed error, the same IOSB, bytes, event/file signal states and
  packets, over notification configurations, buffer kinds (read-only, non-contiguous, wider
  formats, released, not a buffer, empty), sizes and offsets (negative, at and past EOF, 2**63).
- Resources: many C reads leave no reference, object, memory nor descriptor behind, on the
  success, refused and end-of-file paths.
- Classes the C code does not know exactly (an Overlapped subclass that redefines ``offset``, a
  DiskFile subclass that overrides ``read_now``) get the Python behaviour.
- Selection: WINAIO_PURE_PYTHON=1 keeps the Python methods; under CI (WINAIO_REQUIRE_ACCEL=1)
  the accelerator must have been built.
- The race (fixed): a close and a reopen from another thread between the Python fast path's
  fetch of the descriptor and its ``preadv2`` let the read take the reopened file's bytes and
  report them as a success. ``read_now`` now fetches and reads under LOCK (which every release
  of the descriptor holds); the general path's first attempt and a synchronous handle's read
  count themselves in (``DiskFile.fd_users``, ``_io/_fd_users.py``) and the close leaves the
  descriptor open until they are out.
"""

from __future__ import annotations

import array
import gc
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import winaio
import winaio.testing as wt
import winaio.win32 as w
from winaio._io import _disk, _ops
from winaio._io._overlapped import STATUS_PENDING
from winaio._kernel._dispatcher import LOCK

BLOCK = 4096
DATA = bytes(range(251)) * 66  # 16566 bytes: not a multiple of the block size
OTHER = b"\xee" * len(DATA)

needs_c = pytest.mark.skipif(
    not _disk.accelerator_available() and not os.environ.get("WINAIO_REQUIRE_ACCEL"),
    reason="the C accelerator (winaio._io._fastio) was not built",
)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    p = str(tmp_path_factory.mktemp("fastio") / "data.bin")
    with open(p, "wb") as f:
        f.write(DATA)
    with open(p, "rb") as f:
        f.read()  # in the page cache
    return p


@pytest.fixture
def other_path(tmp_path: Path) -> str:
    p = str(tmp_path / "other.bin")
    with open(p, "wb") as f:
        f.write(OTHER)
    return p


@pytest.fixture
def impl() -> Iterator[Callable[[bool], None]]:
    """Switch the fast path's implementation (C when True); restored afterwards."""
    before = _disk.accelerated()
    yield lambda c: _disk.use_accelerator(c)
    _disk.use_accelerator(before)


def _open(path: str) -> winaio.DiskFile:
    file, _ = winaio.open_file(
        path, read=True, write=False, disposition=_disk.OPEN_EXISTING, overlapped=True
    )
    return file


def _signaled(obj: Any) -> bool:
    return winaio.wait(obj, 0).code == 0


def _released() -> memoryview:
    m = memoryview(bytearray(BLOCK))
    m.release()
    return m


BUFFERS: dict[str, Callable[[int], Any]] = {
    "bytearray": bytearray,
    "memoryview": lambda n: memoryview(bytearray(n)),
    "slice": lambda n: memoryview(bytearray(n + 8))[8:],
    "array": lambda n: array.array("B", bytes(n)),
    "words": lambda n: memoryview(array.array("I", bytes(4 * max(1, n // 4)))),
    "bytes": bytes,
    "readonly": lambda n: memoryview(bytearray(n)).toreadonly(),
    "strided": lambda n: memoryview(bytearray(2 * n))[::2],
    "released": lambda n: _released(),
    "none": lambda n: None,
    "str": lambda n: "x" * n,
}

OFFSETS = [
    0,
    1,
    BLOCK,
    len(DATA) - 50,
    len(DATA),
    len(DATA) + BLOCK,
    -1,
    -BLOCK,
    (1 << 63) - 1,
    1 << 63,
    1 << 64,
]


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except Exception as exc:
        return ("raised", type(exc).__name__, getattr(exc, "winerror", None))


def _bytes_of(buf: Any) -> Any:
    try:
        return bytes(memoryview(buf).cast("B"))
    except (TypeError, ValueError):
        return None


def _run(
    path: str, c: bool, api: str, config: tuple[bool, ...], kind: str, n: int, offset: int
) -> dict[str, Any]:
    _disk.use_accelerator(c)
    event_on, skip_port, port_on, skip_success, skip_set = config
    file = _open(path)
    port = winaio.CompletionPort()
    try:
        if port_on:
            file.associate(port, "key")
        file.set_completion_modes(skip_success, skip_set)
        event = winaio.Event(manual_reset=True, initial_state=True) if event_on else None
        ov = winaio.Overlapped(offset, event, skip_port=skip_port)
        ov.status, ov.information = 0x77, 5
        buf = BUFFERS[kind](n)
        if api == "start_read":
            result = _outcome(lambda: file.start_read(buf, ov))
        elif api == "read_now":
            result = _outcome(lambda: file.read_now((buf,), ov, None))
        else:  # a list of one buffer (what ``read_file`` passes)
            result = _outcome(lambda: file.read_now([buf], ov, None))
        deadline = time.monotonic() + 10
        while ov.status == STATUS_PENDING and time.monotonic() < deadline:
            time.sleep(0.001)
        with LOCK:  # a delivery finishes under LOCK: everything below is settled
            pass
        return {
            "result": result,
            "iosb": (ov.status, ov.information),
            "data": _bytes_of(buf),
            "event": None if event is None else _signaled(event),
            "file": _signaled(file),
            "packets": [
                (p.key, p.overlapped is ov, p.status, p.bytes_transferred)
                for p in port.get_many(8, 0)[1]
            ],
        }
    finally:
        file.close()
        port.close()


CONFIG = st.tuples(*(st.booleans() for _ in range(5))).filter(lambda c: not (c[1] and not c[0]))


@needs_c
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    api=st.sampled_from(["start_read", "read_now", "read_now_list"]),
    config=CONFIG,
    kind=st.sampled_from(sorted(BUFFERS)),
    n=st.sampled_from([0, 1, 100, BLOCK, BLOCK + 904]),
    offset=st.sampled_from(OFFSETS),
)
def test_c_and_python_fast_paths_agree(
    data_path: str,
    impl: Callable[[bool], None],
    api: str,
    config: tuple[bool, ...],
    kind: str,
    n: int,
    offset: int,
) -> None:
    # spec: win32 §1.5, §4.2, §4.4, §6.2, §6.10, #50-#53, #55 (the Python reference pins them)
    c = _run(data_path, True, api, config, kind, n, offset)
    py = _run(data_path, False, api, config, kind, n, offset)
    assert c == py


WIN32_OFFSETS = [
    (0, 0),
    (BLOCK, 0),
    (len(DATA) - 50, 0),
    (len(DATA), 0),
    (0x3FFFFFFF, 0),
    (0x40000000, 0),
    (0xFFFFFFFF, 0),
    (-1, 0),
    (0, 1),
    (1 << 64, 0),
    (1.5, 0),
    (0, None),
]


def _run_readfile(
    path: str,
    c: bool,
    config: tuple[bool, ...],
    kind: str,
    n: int,
    size_delta: int,
    offset: tuple[Any, Any],
    handle_kind: str,
    count: bool,
) -> dict[str, Any]:
    _disk.use_accelerator(c)
    event_on, skip_port, port_on, skip_success, skip_set = config
    handle = w.CreateFile(
        path, w.GENERIC_READ, w.FILE_SHARE_READ, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, None
    )  # fmt: skip
    port = w.CreateIoCompletionPort(handle, None, 5, 0) if port_on else 0
    event = w.CreateEvent(None, True, True, None) if event_on else 0
    try:
        w.SetFileCompletionNotificationModes(
            handle,
            (w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS if skip_success else 0)
            | (w.FILE_SKIP_SET_EVENT_ON_HANDLE if skip_set else 0),
        )
        ov = w.OVERLAPPED(hEvent=(event | 1) if skip_port else event)
        ov.Offset, ov.OffsetHigh = offset
        ov.Internal, ov.InternalHigh = 0x77, 5
        buf = BUFFERS[kind](n)
        ref = w.Ref(-1) if count else None
        target = {"valid": handle, "invalid": handle + 4000, "none": None}[handle_kind]
        w.SetLastError(0)
        result = _outcome(lambda: w.ReadFile(target, buf, n + size_delta, ref, ov))
        error = w.GetLastError()
        deadline = time.monotonic() + 10
        while ov.Internal == STATUS_PENDING and time.monotonic() < deadline:
            time.sleep(0.001)
        with LOCK:
            pass
        packets = []
        if port:
            nbytes, key, lpov = w.Ref(0), w.Ref(None), w.Ref(None)
            while w.GetQueuedCompletionStatus(port, nbytes, key, lpov, 0):
                packets.append((nbytes.value, key.value, lpov.value is ov))
        return {
            "result": result,
            "error": error,
            "count": None if ref is None else ref.value,
            "iosb": (ov.Internal, ov.InternalHigh),
            "data": _bytes_of(buf),
            "event": None if not event else w.WaitForSingleObject(event, 0),
            "file": w.WaitForSingleObject(handle, 0),
            "packets": packets,
        }
    finally:
        w.CloseHandle(handle)
        if port:
            w.CloseHandle(port)
        if event:
            w.CloseHandle(event)


@needs_c
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    config=CONFIG,
    kind=st.sampled_from(sorted(BUFFERS)),
    n=st.sampled_from([0, 1, 100, BLOCK]),
    size_delta=st.sampled_from([0, 0, 0, -1, 1]),
    offset=st.sampled_from(WIN32_OFFSETS),
    handle_kind=st.sampled_from(["valid", "valid", "valid", "invalid", "none"]),
    count=st.booleans(),
)
def test_c_and_python_readfile_agree(
    data_path: str,
    impl: Callable[[bool], None],
    config: tuple[bool, ...],
    kind: str,
    n: int,
    size_delta: int,
    offset: tuple[Any, Any],
    handle_kind: str,
    count: bool,
) -> None:
    # winaio.win32.ReadFile: the C accelerator's hot shape against the Python function (BOOL,
    # last error, *lpNumberOfBytesRead, OVERLAPPED, bytes, event/file, packets).
    args = (config, kind, n, size_delta, offset, handle_kind, count)
    c = _run_readfile(data_path, True, *args)
    py = _run_readfile(data_path, False, *args)
    assert c == py


class _NotAnEntry:
    __slots__ = ("lpCompletionKey",)


def _run_gqcs(
    c: bool, queued: int, entries_kind: str, count: int, removed_kind: str, port_kind: str
) -> dict[str, Any]:
    _disk.use_accelerator(c)
    port = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 0)
    ovs = [w.OVERLAPPED() for _ in range(queued)]
    try:
        for i, ov in enumerate(ovs):
            assert w.PostQueuedCompletionStatus(port, 100 + i, f"key{i}", ov)
        size = 4
        if entries_kind == "list":
            entries: Any = [w.OVERLAPPED_ENTRY() for _ in range(size)]
        elif entries_kind == "tuple":
            entries = tuple(w.OVERLAPPED_ENTRY() for _ in range(size))
        elif entries_kind == "mixed":
            entries = [w.OVERLAPPED_ENTRY(), _NotAnEntry(), w.OVERLAPPED_ENTRY(), None]
        else:
            entries = None
        removed = {"ref": w.Ref(-1), "none": None, "object": object()}[removed_kind]
        target = {"port": port, "closed": port, "invalid": port + 4000, "none": None}[port_kind]
        if port_kind == "closed":
            w.CloseHandle(port)
        w.SetLastError(0)
        gqcs = w.GetQueuedCompletionStatusEx
        result = _outcome(lambda: gqcs(target, entries, count, removed, w.INFINITE, False))
        error = w.GetLastError()
        filled = []
        for e in entries if isinstance(entries, (list, tuple)) else ():
            if isinstance(e, w.OVERLAPPED_ENTRY):
                index = ovs.index(e.lpOverlapped) if e.lpOverlapped in ovs else None
                filled.append((e.lpCompletionKey, index, e.Internal, e.dwNumberOfBytesTransferred))
        left = []
        if port_kind != "closed":
            nbytes, key, lpov = w.Ref(0), w.Ref(None), w.Ref(None)
            while w.GetQueuedCompletionStatus(port, nbytes, key, lpov, 0):
                left.append((nbytes.value, key.value))
        return {
            "result": result,
            "error": error,
            "removed": getattr(removed, "value", None),
            "filled": filled,
            "left": left,
        }
    finally:
        if port_kind != "closed":
            w.CloseHandle(port)


@needs_c
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    queued=st.integers(1, 6),
    entries_kind=st.sampled_from(["list", "list", "tuple", "mixed", "none"]),
    count=st.sampled_from([0, 1, 2, 4, 5]),
    removed_kind=st.sampled_from(["ref", "ref", "none", "object"]),
    port_kind=st.sampled_from(["port", "port", "port", "closed", "invalid", "none"]),
)
def test_c_and_python_gqcs_ex_agree(
    impl: Callable[[bool], None],
    queued: int,
    entries_kind: str,
    count: int,
    removed_kind: str,
    port_kind: str,
) -> None:
    # winaio.win32.GetQueuedCompletionStatusEx (INFINITE, not alertable: the C hot shape; at
    # least one packet is queued, so no call blocks): the C accelerator against the Python
    # function (BOOL, last error, count, entries written, packets left or put back).
    args = (queued, entries_kind, count, removed_kind, port_kind)
    assert _run_gqcs(True, *args) == _run_gqcs(False, *args)


@needs_c
def test_the_hot_shapes_run_in_c(data_path: str, impl: Callable[[bool], None]) -> None:
    # The accelerator really serves the hot shapes (the differential tests above would pass if
    # it handed everything to Python): no Python frame of the fast path runs for a cached read.
    file = _open(data_path)
    handle = w.CreateFile(
        data_path, w.GENERIC_READ, w.FILE_SHARE_READ, None, w.OPEN_EXISTING,
        w.FILE_FLAG_OVERLAPPED, None,
    )  # fmt: skip
    port = w.CreateIoCompletionPort(handle, None, 1, 0)
    buf = bytearray(BLOCK)
    try:
        for c in (True, False):
            impl(c)
            core = wt.python_frames(lambda: file.start_read(buf, winaio.Overlapped(0)))
            now = wt.python_frames(lambda: file.read_now((buf,), winaio.Overlapped(0), None))
            alias = wt.python_frames(lambda: w.ReadFile(handle, buf, BLOCK, None, w.OVERLAPPED()))
            out, removed = [w.OVERLAPPED_ENTRY()], w.Ref(0)

            def dequeue(out: list[Any] = out, removed: Any = removed) -> Any:
                return w.GetQueuedCompletionStatusEx(port, out, 1, removed, w.INFINITE, False)

            gqcs = wt.python_frames(dequeue)
            assert removed.value == 1 and out[0].dwNumberOfBytesTransferred == BLOCK
            big = wt.python_frames(
                lambda: file.read_now((bytearray(512 * 1024),), winaio.Overlapped(0), None)
            )
            assert "read_now" in big  # over 256 KiB: the Python method, its copy without the GIL
            if c:
                assert not core & {"start_read", "read_now"}
                assert not now & {"read_now"}
                assert not alias & {"_ReadFile", "read_now"}
                assert not gqcs & {"_GetQueuedCompletionStatusEx", "_gqcs_after"}
                assert "get_many" in gqcs  # the core's, as the Python function calls it
            else:
                assert {"start_read", "read_now"} <= core
                assert {"_ReadFile", "read_now"} <= alias
                assert {"_GetQueuedCompletionStatusEx", "get_many"} <= gqcs
    finally:
        file.close()
        w.CloseHandle(handle)
        w.CloseHandle(port)


@needs_c
def test_repeated_c_reads_leave_nothing_behind(
    data_path: str, impl: Callable[[bool], None]
) -> None:
    # Reference counting of the C path: a read that succeeds (packet posted, event and file
    # signalled), a refused buffer, a read at EOF; nothing grows over many rounds.
    impl(True)
    file = _open(data_path)
    port = winaio.CompletionPort()
    key = object()
    file.associate(port, key)
    event = winaio.Event(manual_reset=True)
    ovs = [winaio.Overlapped(0) for _ in range(8)] + [winaio.Overlapped(0, event)]
    bufs = [bytearray(BLOCK) for _ in ovs]
    readonly = bytes(BLOCK)
    at_eof = winaio.Overlapped(len(DATA))

    handle = w.CreateFile(
        data_path, w.GENERIC_READ, w.FILE_SHARE_READ, None, w.OPEN_EXISTING,
        w.FILE_FLAG_OVERLAPPED, None,
    )  # fmt: skip
    wport = w.CreateIoCompletionPort(handle, None, 9, 0)
    wovs = [w.OVERLAPPED() for _ in range(4)]
    entries = [w.OVERLAPPED_ENTRY() for _ in range(8)]
    count, removed = w.Ref(0), w.Ref(0)
    view = memoryview(bufs[1])

    def rounds(count_: int) -> None:
        for i in range(count_):
            for ov, buf in zip(ovs, bufs, strict=True):
                ov.offset = (i % 4) * BLOCK
                assert file.start_read(buf, ov) is True
            got = port.get_many(16, 0)[1]
            assert len(got) == len(ovs)
            del got
            assert file.read_now((readonly,), ovs[0], None) is None
            assert file.read_now((bufs[0],), at_eof, None) == _disk.WOULD_BLOCK
            for wov in wovs:  # the alias layer's C ReadFile
                wov.Offset = (i % 4) * BLOCK
                assert w.ReadFile(handle, view, BLOCK, count, wov) is True
            assert w.GetQueuedCompletionStatusEx(wport, entries, 8, removed, 0, False)
            assert removed.value == len(wovs)

    watched_w = [count, removed, view, *wovs, *entries]  # (handles are small ints)

    try:
        rounds(200)  # warm-up: caches, interned objects, the deque's blocks
        gc.collect()
        watched = [file, port, key, event, readonly, at_eof, *ovs, *bufs, *watched_w]
        refs = [sys.getrefcount(o) for o in watched]
        fds = len(os.listdir("/proc/self/fd"))
        objects = len(gc.get_objects())
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            rounds(2000)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert [sys.getrefcount(o) for o in watched] == refs
        assert len(os.listdir("/proc/self/fd")) == fds
        assert len(gc.get_objects()) - objects < 100
        assert grown < 64 * 1024, grown  # 26K reads: a leak of one object each is ~1 MiB
    finally:
        file.close()
        port.close()
        w.CloseHandle(handle)
        w.CloseHandle(wport)


class _PropertyOffset(winaio.Overlapped):
    """An OVERLAPPED whose ``offset`` is computed: the C code must not read the base slot."""

    __slots__ = ("base",)

    def __init__(self, base: int) -> None:
        super().__init__(0)
        self.base = base

    @property  # type: ignore[override]
    def offset(self) -> int:
        return self.base + BLOCK

    @offset.setter
    def offset(self, value: int) -> None:
        self.base = value


class _TracingFile(_disk.DiskFile):
    __slots__ = ("calls",)

    def read_now(self, *args: Any) -> int | None:
        self.calls += 1
        return super().read_now(*args)


@needs_c
@pytest.mark.parametrize("c", [True, False])
def test_classes_the_c_code_does_not_know_exactly(
    data_path: str, impl: Callable[[bool], None], c: bool
) -> None:
    impl(c)
    file = _open(data_path)
    try:
        buf = bytearray(BLOCK)
        ov = _PropertyOffset(0)
        assert file.start_read(buf, ov) is True
        assert bytes(buf) == DATA[BLOCK : 2 * BLOCK]
        assert file.read_now((buf,), _PropertyOffset(BLOCK), None) == 0
        assert bytes(buf) == DATA[2 * BLOCK : 3 * BLOCK]
    finally:
        file.close()
    fd = os.open(data_path, os.O_RDONLY | os.O_CLOEXEC)
    traced = _TracingFile(fd, overlapped=True, seekable=True, path=data_path)
    traced.calls = 0
    try:
        assert traced.start_read(bytearray(BLOCK), winaio.Overlapped(0)) is True
        assert traced.calls == 1  # start_read called the override
    finally:
        traced.close()


@needs_c
def test_the_c_path_waits_for_a_held_dispatcher_lock(
    data_path: str, impl: Callable[[bool], None]
) -> None:
    # A contended LOCK: the C code's non-blocking attempt fails and it blocks in LOCK's own
    # acquire (the GIL released) until the holder lets go; the read then completes.
    impl(True)
    if sys.version_info < (3, 13):
        assert _disk.C_LOCK_DIRECT
    file = _open(data_path)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with LOCK:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        held.wait(10)
        timer = threading.Timer(0.2, release.set)
        timer.start()
        buf = bytearray(BLOCK)
        ov = winaio.Overlapped(0)
        started = time.monotonic()
        assert file.start_read(buf, ov) is True
        assert time.monotonic() - started >= 0.15
        assert (ov.status, ov.information) == (0, BLOCK) and bytes(buf) == DATA[:BLOCK]
        timer.join()
    finally:
        release.set()
        thread.join()
        file.close()


def test_the_accelerator_is_built_when_required() -> None:
    # CI (.ci/run) sets WINAIO_REQUIRE_ACCEL=1: a machine that failed to build the extension
    # (optional=True only warns) fails here instead of silently running the Python path.
    if os.environ.get("WINAIO_REQUIRE_ACCEL", "") in ("", "0"):
        pytest.skip("WINAIO_REQUIRE_ACCEL is not set (the accelerator is optional)")
    assert _disk.accelerator_available()
    pure = os.environ.get("WINAIO_PURE_PYTHON", "") not in ("", "0")
    assert _disk.accelerated() is not pure


@needs_c
@pytest.mark.parametrize(("pure", "expected"), [("1", "False"), ("", "True"), ("0", "True")])
def test_winaio_pure_python_selects_the_python_methods(pure: str, expected: str) -> None:
    env = dict(os.environ, WINAIO_PURE_PYTHON=pure)
    out = subprocess.run(
        [sys.executable, "-c", "from winaio._io import _disk; print(_disk.accelerated())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == expected


# ---------------------------------------------------------------------------- the fd-reuse race


class _Race:
    """Wraps a ``preadv``: the first call closes ``file`` and opens ``other`` from another
    thread before making the syscall (a close racing with the fast path in the window between
    its fetch of the descriptor and the read). The closer gets up to 0.5 s: the read may hold
    what the close needs (``read_now`` holds LOCK over its syscall) and go on without it."""

    def __init__(self, real: Callable[..., int], file: winaio.DiskFile, other: str) -> None:
        self.real, self.file, self.other = real, file, other
        self.opened: list[int] = []
        self.fd = file.fd
        self.thread: threading.Thread | None = None

    def __call__(self, fd: int, *args: Any) -> int:
        if self.thread is None:

            def close_and_reopen() -> None:
                self.file.close()
                self.opened.append(os.open(self.other, os.O_RDONLY | os.O_CLOEXEC))

            self.thread = threading.Thread(target=close_and_reopen)
            self.thread.start()
            self.thread.join(0.5)
        return self.real(fd, *args)

    def check(self, buf: bytearray, reported: int | None) -> None:
        # The bytes a read reports are the file's own, never the reopened file's, and the
        # file's descriptor is closed once the read is out of it (no leak).
        assert self.thread is not None
        self.thread.join(10)
        assert self.opened
        assert bytes(buf) != OTHER[:BLOCK], "the read reported the reopened file's bytes"
        if reported:
            assert bytes(buf[:reported]) == DATA[:reported]
        assert self.file.fd == -1 and not self.file.fd_users and self.file.fd_users.release is None
        try:
            os.fstat(self.fd)
        except OSError:
            pass
        else:
            assert self.fd in self.opened  # its number went to the reopened file, after us
        for fd in self.opened:
            os.close(fd)


def test_a_close_racing_with_read_now_never_lends_a_reopened_descriptor(
    data_path: str, other_path: str, impl: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    impl(False)  # the Python path (the C path holds the GIL from the fetch to the syscall)
    file = _open(data_path)
    race = _Race(_disk._preadv, file, other_path)
    monkeypatch.setattr(_disk, "_preadv", race)
    buf = bytearray(BLOCK)
    ov = winaio.Overlapped(0)
    status = file.read_now((buf,), ov, None)
    # Served from the file it was issued on (Windows keeps the file object for the call).
    assert status == 0 and ov.information == BLOCK
    race.check(buf, ov.information)


def test_a_close_racing_with_a_request_s_first_attempt(
    data_path: str, other_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The general path (``_files.start`` -> ``FileReadOp.try_now``): the request is not
    # registered during its first attempt, so close() does not wait for it.
    file = _open(data_path)
    file.cached_reads = False
    race = _Race(_ops._preadv, file, other_path)
    monkeypatch.setattr(_ops, "_preadv", race)
    buf = bytearray(BLOCK)
    ov = winaio.Overlapped(0)
    assert file.start_read(buf, ov) is True
    assert (ov.status, ov.information) == (0, BLOCK)
    race.check(buf, ov.information)


def test_a_close_racing_with_a_synchronous_read(
    data_path: str, other_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A synchronous handle's disk read (``run_sync``: run_blocking, not registered).
    file, _ = winaio.open_file(
        data_path, read=True, write=False, disposition=_disk.OPEN_EXISTING, overlapped=False
    )
    race = _Race(_ops._preadv, file, other_path)
    monkeypatch.setattr(_ops, "_preadv", race)
    buf = bytearray(BLOCK)
    assert file.read(buf, 0) == BLOCK
    race.check(buf, BLOCK)
