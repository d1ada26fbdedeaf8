"""The shared test helpers of ``winaio.testing`` that the conftests build their fixtures on."""

from __future__ import annotations

import unittest
from pathlib import Path

import pytest

import winaio
import winaio.testing as wt


def test_backend_for_test_selects_the_backend_of_new_handles() -> None:
    with wt.backend_for_test("threads") as name:
        assert name == "threads"
        reader, writer = winaio.create_pipe(overlapped=True)
    try:
        assert type(reader.backend).__name__ == type(writer.backend).__name__
        assert "thread" in type(reader.backend).__name__.lower()
    finally:
        reader.close()
        writer.close()


def test_a_missing_io_uring_is_a_skip_and_any_other_backend_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wt, "available_backends", lambda: ("threads",))
    with (
        pytest.raises(unittest.SkipTest, match="io_uring unavailable"),
        wt.backend_for_test("io_uring"),
    ):
        pass
    with pytest.raises(AssertionError, match="'bogus' missing"), wt.backend_for_test("bogus"):
        pass


def test_drain_apcs_runs_queued_apcs_and_survives_a_raising_one() -> None:
    ran: list[str] = []

    def boom() -> None:
        ran.append("boom")
        raise RuntimeError("an APC that fails")

    winaio.queue_apc(winaio.current_thread(), boom)
    winaio.queue_apc(winaio.current_thread(), ran.append, "second")
    wt.drain_apcs()
    wt.drain_apcs()  # a raising APC may stop the first pass; nothing stays queued after two
    assert ran == ["boom", "second"]
    wt.drain_apcs()
    assert ran == ["boom", "second"]


def test_require_c_path_passes_skips_or_fails_under_require_accel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WINAIO_REQUIRE_ACCEL", raising=False)
    wt.require_c_path(True)  # available: the test goes on
    with pytest.raises(unittest.SkipTest, match="the sockets' C path is not available"):
        wt.require_c_path(False, "the sockets' C path")
    monkeypatch.setenv("WINAIO_REQUIRE_ACCEL", "0")
    with pytest.raises(unittest.SkipTest, match=r"winaio._io._fastio\) is not available"):
        wt.require_c_path(None)
    monkeypatch.setenv("WINAIO_REQUIRE_ACCEL", "1")
    with pytest.raises(AssertionError, match="WINAIO_REQUIRE_ACCEL=1 but the sockets' C path"):
        wt.require_c_path(False, "the sockets' C path")
    wt.require_c_path(object())  # any true value


def test_split_impossible_slot_items_keeps_what_can_run_and_other_directories() -> None:
    class Spec:
        def __init__(self, **params: str) -> None:
            self.params = params

    class Item:
        def __init__(self, path: str, spec: Spec | None) -> None:
            self.path = path
            if spec is not None:
                self.callspec = spec

    c_on_py = Item("/t/io/test_a.py", Spec(slot_impl="c", sock_impl="python"))
    c_on_fast_py = Item("/t/io/test_a.py", Spec(slot_impl="c", fast_path_impl="python"))
    c_on_c = Item("/t/io/test_a.py", Spec(slot_impl="c", sock_impl="c"))
    py_on_py = Item("/t/io/test_a.py", Spec(slot_impl="py", sock_impl="python"))
    plain = Item("/t/io/test_b.py", None)
    elsewhere = Item("/t/io2/test_c.py", Spec(slot_impl="c", sock_impl="python"))
    items = [c_on_py, c_on_fast_py, c_on_c, py_on_py, plain, elsewhere]
    kept, impossible = wt.split_impossible_slot_items(items, "/t/io")
    assert impossible == [c_on_py, c_on_fast_py]
    assert kept == [c_on_c, py_on_py, plain, elsewhere]  # ("/t/io2" is not under "/t/io")


def test_run_child_runs_this_winaio_with_the_c_paths_and_the_debug_allocator() -> None:
    script = (
        "import os, sys, winaio\n"
        "print(os.environ['PYTHONMALLOC'], os.environ['WINAIO_PURE_PYTHON'], *sys.argv[1:])\n"
        "print(winaio.__file__)\n"
    )
    run = wt.run_child(script, "a", "b")
    first, where = run.stdout.splitlines()
    assert first == "debug 0 a b"
    assert Path(where).resolve() == Path(winaio.__file__).resolve()


@pytest.mark.parametrize(
    ("script", "seen"),
    [
        ("import sys; sys.stderr.write('boom'); sys.exit(3)", "boom"),
        ("import os; os.abort()", "Fatal Python error: Aborted"),  # (faulthandler's report)
    ],
)
def test_run_child_fails_on_a_failed_or_crashed_child(script: str, seen: str) -> None:
    with pytest.raises(AssertionError, match=seen):
        wt.run_child(script)


def test_nomem_sweep_wants_an_empty_list_last() -> None:
    wt.nomem_sweep("print('swept 3'); print([])")
    with pytest.raises(AssertionError, match="half"):
        wt.nomem_sweep("print(['half state'])")


def test_hex_reader_reads_digits_and_drops_white_space_and_comments(tmp_path: Path) -> None:
    (tmp_path / "pdu.hex").write_text("# a header\n05 00 0b 03  # version, bind\n\t1000\n")
    (tmp_path / "odd.hex").write_text("05 0\n")
    (tmp_path / "stray.hex").write_text("05 zz\n")
    read = wt.hex_reader(tmp_path)
    assert read("pdu") == bytes([5, 0, 0x0B, 3, 0x10, 0])
    for bad in ("odd", "stray"):
        with pytest.raises(ValueError):
            read(bad)


def test_require_peer_passes_skips_or_fails_under_require_peers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WINAIO_REQUIRE_PEERS", "1")
    wt.require_peer(True, "rpcclient missing")
    with pytest.raises(AssertionError, match=r"required peer missing .*: rpcclient missing"):
        wt.require_peer(False, "rpcclient missing")
    monkeypatch.delenv("WINAIO_REQUIRE_PEERS")
    with pytest.raises(unittest.SkipTest, match=r"^rpcclient missing$"):
        wt.require_peer(False, "rpcclient missing")
