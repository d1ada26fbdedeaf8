"""A rename whose inotify MOVED_FROM and MOVED_TO land in different reads is still one rename
(RENAMED_OLD_NAME, RENAMED_NEW_NAME), not a removal and an addition: the kernel queues the two
events one after the other and a read can fall between them (a flake of
tests/conformance_wine/test_wine_dirwatch.py::test_thousand_changes_in_order_through_a_port)."""

from __future__ import annotations

import os
import pathlib
import struct

from winaio._io import _dirwatch as dw

_EVENT = struct.Struct("iIII")
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE = 0x40, 0x80, 0x100


def _event(wd: int, mask: int, cookie: int, name: str) -> bytes:
    raw = os.fsencode(name) + b"\0"
    raw += bytes(-len(raw) % 16)
    return _EVENT.pack(wd, mask, cookie, len(raw)) + raw


class _Feed:
    """Stands in for the inotify descriptor: one chunk per read; ``wait`` says whether another
    chunk "arrives" within the pairing wait."""

    def __init__(self, watch: dw._Watch, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.waits: list[float] = []
        watch._read_queued = self.read  # type: ignore[method-assign]
        watch._wait_readable = self.wait  # type: ignore[method-assign]

    def read(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return bool(self.chunks)


def _watch(tmp_path: pathlib.Path) -> tuple[dw._Watch, int]:
    watch = dw._Watch(str(tmp_path), False, dw.NOTIFY_FILTER_ALL, 65536)
    (wd,) = watch.wds
    return watch, wd


def test_a_rename_split_across_reads_is_one_rename(tmp_path: pathlib.Path) -> None:
    watch, wd = _watch(tmp_path)
    try:
        feed = _Feed(
            watch,
            [
                _event(wd, _IN_CREATE, 0, "a") + _event(wd, _IN_MOVED_FROM, 7, "f0599"),
                _event(wd, _IN_MOVED_TO, 7, "g0599") + _event(wd, _IN_CREATE, 0, "b"),
            ],
        )
        watch.drain()
        assert watch.records == [
            dw.DirectoryChange(dw.FILE_ACTION_ADDED, "a"),
            dw.DirectoryChange(dw.FILE_ACTION_RENAMED_OLD_NAME, "f0599"),
            dw.DirectoryChange(dw.FILE_ACTION_RENAMED_NEW_NAME, "g0599"),
            dw.DirectoryChange(dw.FILE_ACTION_ADDED, "b"),
        ]
        assert feed.waits == [dw._PAIR_WAIT]
    finally:
        watch.close()


def test_a_trailing_move_out_is_a_removal_after_the_wait(tmp_path: pathlib.Path) -> None:
    watch, wd = _watch(tmp_path)
    try:
        feed = _Feed(watch, [_event(wd, _IN_MOVED_FROM, 9, "gone")])
        watch.drain()
        assert watch.records == [dw.DirectoryChange(dw.FILE_ACTION_REMOVED, "gone")]
        assert feed.waits == [dw._PAIR_WAIT]
    finally:
        watch.close()


def test_a_move_out_followed_by_other_events_needs_no_wait(tmp_path: pathlib.Path) -> None:
    watch, wd = _watch(tmp_path)
    try:
        feed = _Feed(
            watch, [_event(wd, _IN_MOVED_FROM, 9, "gone") + _event(wd, _IN_CREATE, 0, "new")]
        )
        watch.drain()
        assert watch.records == [
            dw.DirectoryChange(dw.FILE_ACTION_REMOVED, "gone"),
            dw.DirectoryChange(dw.FILE_ACTION_ADDED, "new"),
        ]
        assert feed.waits == []
    finally:
        watch.close()


def test_a_real_rename_is_reported_as_one(tmp_path: pathlib.Path) -> None:
    watch, _wd = _watch(tmp_path)
    try:
        (tmp_path / "x").write_bytes(b"")
        os.rename(tmp_path / "x", tmp_path / "y")
        watch.drain()
        actions = [(c.action, c.name) for c in watch.records if c.action != 3]
        assert actions == [
            (dw.FILE_ACTION_ADDED, "x"),
            (dw.FILE_ACTION_RENAMED_OLD_NAME, "x"),
            (dw.FILE_ACTION_RENAMED_NEW_NAME, "y"),
        ]
    finally:
        watch.close()
