"""The cached-read fast path (``DiskFile.start_read``/``read_now``: Windows' fast I/O read) and the
port's direct hand-off, pinned without timing.

- Differential: a page-cache hit served by ``read_now`` (no request object) has exactly the
  effects of the general path (``_files.start`` + ``deliver``) on the IOSB, the event, the file
  object and the port, for every notification configuration (spec §1.5, §4.2, §6.2, §6.10).
- ``read_now`` makes the syscall first: a buffer or an offset the syscall refuses leaves
  everything untouched (no issue-time reset) and the general path reports it.
- A closed file object takes no fast path (``close`` clears ``cached_reads``).
- A packet posted while a thread waits in GQCS and nothing is queued goes straight to the most
  recent waiter (never queued, the port never signaled); with running(P) >= C it is queued.
"""

from __future__ import annotations

import array
import os
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

import winaio
from winaio import testing
from winaio._io import _disk
from winaio.codes import WinError
from winaio.errors import Win32Error

BLOCK = 4096
DATA = bytes(range(256)) * 64  # 16 KiB

# Every test here runs against both implementations of the fast path: the C accelerator
# (``winaio._io._fastio``) and the Python methods (``tests/io/conftest.py``).
pytestmark = pytest.mark.usefixtures("fast_path_impl")


@pytest.fixture(params=testing.available_backends())
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    with testing.using_backend(name):
        yield name


@pytest.fixture
def path(tmp_path: Any) -> str:
    p = str(tmp_path / "data.bin")
    with open(p, "wb") as f:
        f.write(DATA)
    with open(p, "rb") as f:
        f.read()  # in the page cache
    return p


def _open(path: str) -> winaio.DiskFile:
    file, _ = winaio.open_file(
        path, read=True, write=False, disposition=_disk.OPEN_EXISTING, overlapped=True
    )
    return file


def _signaled(obj: Any) -> bool:
    return winaio.wait(obj, 0).code == 0


class _CountingReadOp(_disk.FileReadOp):
    __slots__ = ()
    made = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made += 1
        super().__init__(*args, **kwargs)


@pytest.fixture
def read_ops(monkeypatch: pytest.MonkeyPatch) -> type[_CountingReadOp]:
    """Counts the request objects DiskFile builds for reads."""
    _CountingReadOp.made = 0
    monkeypatch.setattr(_disk, "FileReadOp", _CountingReadOp)
    return _CountingReadOp


CONFIGS = [
    # (event, hEvent|1, associated, SKIP_COMPLETION_PORT_ON_SUCCESS, SKIP_SET_EVENT_ON_HANDLE)
    (event, skip_port, port, skip_success, skip_set)
    for event in (False, True)
    for skip_port in (False, True)
    for port in (False, True)
    for skip_success in (False, True)
    for skip_set in (False, True)
    if not (skip_port and not event)  # hEvent|1 needs an event
]


def _one_read(path: str, config: tuple[bool, ...], fast: bool) -> dict[str, Any]:
    event_on, skip_port, port_on, skip_success, skip_set = config
    file = _open(path)
    port = winaio.CompletionPort()
    try:
        if port_on:
            file.associate(port, "key")
        file.set_completion_modes(skip_success, skip_set)
        if not fast:
            file.cached_reads = False  # the general path: a request object, start + deliver
        event = winaio.Event(manual_reset=True, initial_state=True) if event_on else None
        ov = winaio.Overlapped(BLOCK, event, skip_port=skip_port)
        buf = bytearray(BLOCK)
        done = file.start_read(buf, ov)
        _, got = port.get_many(8, 0)
        return {
            "done": done,
            "iosb": (ov.status, ov.information),
            "data": bytes(buf) == DATA[BLOCK : 2 * BLOCK],
            "event": None if event is None else _signaled(event),
            "file": _signaled(file),
            "packets": [(p.key, p.overlapped is ov, p.status, p.bytes_transferred) for p in got],
        }
    finally:
        file.close()
        port.close()


@pytest.mark.parametrize("config", CONFIGS)
def test_a_cached_read_has_the_effects_of_the_general_path(
    backend: str, path: str, config: tuple[bool, ...], read_ops: type[_CountingReadOp]
) -> None:
    # spec: win32 §1.5 (IOSB, then E or F, then the packet), §4.2 (issue-time reset), §6.2
    # (no packet: hEvent|1, or an immediate success with SKIP_COMPLETION_PORT_ON_SUCCESS), §6.10
    fast = _one_read(path, config, True)
    assert read_ops.made == 0  # served inside the call, no request object
    general = _one_read(path, config, False)
    assert read_ops.made == 1
    assert fast == general
    assert fast["done"] and fast["iosb"] == (0, BLOCK) and fast["data"]
    event_on, skip_port, port_on, skip_success, skip_set = config
    assert fast["event"] == (True if event_on else None)
    assert fast["file"] == (not event_on and not skip_set)
    posted = port_on and not skip_port and not skip_success
    assert fast["packets"] == ([("key", True, 0, BLOCK)] if posted else [])


@pytest.mark.parametrize(
    ("make_buffer", "offset", "winerror"),
    [
        (lambda: bytes(BLOCK), 0, WinError.ERROR_INVALID_USER_BUFFER),  # read-only
        (lambda: memoryview(bytearray(2 * BLOCK))[::2], 0, WinError.ERROR_INVALID_USER_BUFFER),
        (lambda: None, 0, WinError.ERROR_NOACCESS),  # a NULL buffer for 4096 bytes... or none
        (lambda: bytearray(BLOCK), -BLOCK, WinError.ERROR_NEGATIVE_SEEK),
    ],
)
def test_a_refused_buffer_or_offset_touches_nothing(
    backend: str, path: str, make_buffer: Any, offset: int, winerror: int
) -> None:
    # spec: win32 #50-#53 (a call that fails before issuing leaves E and F as they were)
    file = _open(path)
    port = winaio.CompletionPort()
    file.associate(port, 1)
    try:
        event = winaio.Event(manual_reset=True, initial_state=True)
        ov = winaio.Overlapped(offset, event)
        ov.status, ov.information = 0x77, 5
        buffer = make_buffer()
        if buffer is None:
            # NULL with a size: the general path's rule (ERROR_NOACCESS for a read).
            with pytest.raises(Win32Error) as info:
                file.start_read(buffer, ov, size=BLOCK)
        else:
            with pytest.raises(Win32Error) as info:
                file.start_read(buffer, ov)
        assert info.value.winerror == winerror
        assert (ov.status, ov.information) == (0x77, 5)
        assert _signaled(event) and _signaled(file)
        assert port.queued == 0
    finally:
        file.close()
        port.close()


def test_a_wider_format_buffer_is_read_as_its_bytes(backend: str, path: str) -> None:
    file = _open(path)
    try:
        words = array.array("I", bytes(BLOCK))
        ov = winaio.Overlapped(0)
        assert file.start_read(memoryview(words), ov) is True
        assert (ov.status, ov.information) == (0, BLOCK)
        assert words.tobytes() == DATA[:BLOCK]
    finally:
        file.close()


def test_a_closed_file_takes_no_fast_path(backend: str, path: str) -> None:
    file = _open(path)
    assert file.cached_reads
    file.close()
    assert not file.cached_reads
    ov = winaio.Overlapped(0)
    assert file.read_now((bytearray(BLOCK),), ov, None) is None
    with pytest.raises(Win32Error) as info:
        file.start_read(bytearray(BLOCK), ov)
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE


def test_exactly_one_packet_per_cached_read(backend: str, path: str) -> None:
    # spec: win32 §6.2 (one packet per request), the QD32 shape of bench_io's a.core row
    file = _open(path)
    port = winaio.CompletionPort()
    file.associate(port, 7)
    try:
        ovs = [winaio.Overlapped((i % 4) * BLOCK) for i in range(32)]
        bufs = [bytearray(BLOCK) for _ in ovs]
        seen: dict[int, int] = {}
        for ov, buf in zip(ovs, bufs, strict=True):
            assert file.start_read(buf, ov) is True
        for _ in range(4):  # re-arm every packet, as the benchmark does
            _, packets = port.get_many(64, 0)
            assert len(packets) == 32
            for p in packets:
                assert (p.key, p.status, p.bytes_transferred) == (7, 0, BLOCK)
                seen[id(p.overlapped)] = seen.get(id(p.overlapped), 0) + 1
                i = ovs.index(p.overlapped)
                assert bufs[i] == DATA[p.overlapped.offset : p.overlapped.offset + BLOCK]
                file.start_read(bufs[i], p.overlapped)
        assert port.get_many(64, 0)[1] != []  # the last round's 32
        assert sorted(seen.values()) == [4] * 32
        assert port.queued == 0
    finally:
        file.close()
        port.close()


def test_a_packet_goes_straight_to_the_most_recent_waiter(backend: str, path: str) -> None:
    # spec: win32 §6 (LIFO release; a packet handed to a GQCS waiter never signals the port)
    file = _open(path)
    port = winaio.CompletionPort()
    file.associate(port, 3)
    got: dict[str, Any] = {}

    def getter(name: str) -> int:
        got[name] = port.get_many(8, None)[1]
        return 0

    def direct_waiter() -> int:
        got["direct"] = winaio.wait(port, None).code
        return 0

    try:
        direct = winaio.start_thread(direct_waiter)
        testing.wait_until_blocked(direct)
        first = winaio.start_thread(getter, "first")
        testing.wait_until_blocked(first)
        second = winaio.start_thread(getter, "second")
        testing.wait_until_blocked(second)
        ov = winaio.Overlapped(0)
        assert file.start_read(bytearray(BLOCK), ov) is True
        winaio.wait(second, 5)
        assert [(p.key, p.overlapped) for p in got["second"]] == [(3, ov)]
        assert "first" not in got and "direct" not in got  # never queued, never signaled
        assert port.queued == 0
        testing.wait_until_blocked(first)
        testing.wait_until_blocked(direct)
        port.post(0, "wake")  # the first getter takes it; the direct waiter stays put
        winaio.wait(first, 5)
        assert [p.key for p in got["first"]] == ["wake"]
        assert "direct" not in got
        port.post(0, "signal")  # nobody in GQCS now: queued, the port signaled
        winaio.wait(direct, 5)
        assert got["direct"] == 0 and port.queued == 1
    finally:
        file.close()
        port.close()


def test_no_hand_off_beyond_the_concurrency_value(backend: str, path: str) -> None:
    # spec: win32 §6.7 (a packet goes to a waiter only while running(P) < C)
    file = _open(path)
    port = winaio.CompletionPort(1)
    file.associate(port, 3)
    got: dict[str, Any] = {}

    def getter() -> int:
        try:
            got["waiter"] = port.get_many(8, None)[1]
        except Win32Error as exc:
            got["waiter"] = exc.winerror
        return 0

    try:
        assert port.get_many(1, 0)[1] == []  # this thread is associated and running: C = 1 used
        waiter = winaio.start_thread(getter)
        testing.wait_until_blocked(waiter)
        ov = winaio.Overlapped(0)
        assert file.start_read(bytearray(BLOCK), ov) is True
        assert port.queued == 1 and "waiter" not in got
        assert [p.overlapped for p in port.get_many(8, 0)[1]] == [ov]
        port.close()
        winaio.wait(waiter, 5)
        assert got["waiter"] == WinError.ERROR_ABANDONED_WAIT_0
    finally:
        file.close()
        port.close()


def test_the_fast_path_reads_at_the_overlapped_offset_only(backend: str, path: str) -> None:
    # spec: win32 #55 (an overlapped handle never uses nor moves the file pointer)
    file = _open(path)
    try:
        buf = bytearray(100)
        ov = winaio.Overlapped(len(DATA) - 50)  # a short read at the end of the file
        assert file.start_read(buf, ov) is True
        assert (ov.status, ov.information) == (0, 50)
        assert bytes(buf[:50]) == DATA[-50:]
        assert file.position == 0
        assert os.lseek(file.fd, 0, os.SEEK_CUR) == 0
    finally:
        file.close()


class _RecordingDeque(deque[Any]):
    appended = 0

    def append(self, item: Any) -> None:
        type(self).appended += 1
        super().append(item)


def test_a_completion_handed_to_a_waiter_is_never_queued() -> None:
    # The direct hand-off (``CompletionPort._post_locked``): a waiter in GQCS and an empty queue
    # take the packet without a trip through the queue; with a packet already queued, the new
    # one queues behind it (FIFO) and the waiter gets the oldest.
    port = winaio.CompletionPort()
    _RecordingDeque.appended = 0  # (a class counter: the test runs once per implementation)
    recorder = _RecordingDeque()
    port._packets = recorder
    got: list[Any] = []

    def getter() -> int:
        got.extend(port.get_many(8, None)[1])
        return 0

    try:
        waiter = winaio.start_thread(getter)
        testing.wait_until_blocked(waiter)
        port.post(1, "direct")
        winaio.wait(waiter, 5)
        assert [p.key for p in got] == ["direct"]
        assert _RecordingDeque.appended == 0
        got.clear()
        port.post(2, "queued")  # nobody waits: queued
        assert _RecordingDeque.appended == 1 and port.queued == 1
        waiter = winaio.start_thread(getter)
        winaio.wait(waiter, 5)
        assert [p.key for p in got] == ["queued"]
    finally:
        port.close()


def _one_routine_read(path: str, skip_set: bool, fast: bool) -> dict[str, Any]:
    file = _open(path)
    try:
        file.set_completion_modes(False, skip_set)
        if not fast:
            file.cached_reads = False
        event = winaio.Event(manual_reset=True)  # ignored by ReadFileEx: never signaled
        ov = winaio.Overlapped(BLOCK, event, skip_port=True)
        calls: list[tuple[int, int, Any]] = []
        done = file.start_read(bytearray(BLOCK), ov, routine=lambda *a: calls.append(a))
        before = list(calls)  # queued as an APC, never run inside the call
        assert winaio.sleep(0, alertable=True) is True  # WAIT_IO_COMPLETION
        return {
            "done": done,
            "before": before,
            "calls": [(e, n, o is ov) for e, n, o in calls],
            "ov": (ov.status, ov.information, ov.event, ov.skip_port),
            "event": _signaled(event),
            "file": _signaled(file),
        }
    finally:
        file.close()


@pytest.mark.parametrize("skip_set", [False, True])
def test_a_cached_readfileex_has_the_effects_of_the_general_path(
    backend: str, path: str, skip_set: bool, read_ops: type[_CountingReadOp]
) -> None:
    # spec: win32 §5 (ReadFileEx ignores hEvent; the routine is an APC to the issuing thread)
    fast = _one_routine_read(path, skip_set, True)
    assert read_ops.made == 0
    general = _one_routine_read(path, skip_set, False)
    assert read_ops.made == 1
    assert fast == general
    assert fast["done"] and fast["before"] == [] and fast["calls"] == [(0, BLOCK, True)]
    assert fast["ov"] == (0, BLOCK, None, False) and fast["event"] is False
    assert fast["file"] is (not skip_set)
