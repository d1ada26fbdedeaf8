"""Every acceptance behaviour the open issues require has a live test naming it.

The map comes from ``tools/acceptance_coverage.py`` (spec tags, see its docstring and
tests/README.md). Required numbers: RPC 15-22, 26-36, 44-66, 86-98 (issue 11) and Win32 1-120
(issues 3, 4 and 10; #112-#117 belong to the thread pool). A number counts as covered when at
least one test tagged with it is neither ``xfail`` nor ``skip``-marked.

Run ``python tools/acceptance_coverage.py --uncovered`` to see the table.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import textwrap
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOW = "see: python tools/acceptance_coverage.py --uncovered"

REQUIRED = {
    "rpc": "15-22,26-36,44-66,86-98",
    "win32": "1-120",
}

#: Tags outside any test function, known and accepted (they cover nothing; the behaviour is
#: tagged in a test elsewhere). A new orphan fails the suite: move the tag into the test.
KNOWN_ORPHANS = {
    # a fault-parsing helper of the rpcsvc tests; #60 is tagged in the tests that use it too
    ("tests/rpc_services/test_bad_input.py", "rpc", (60,)),
}


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "acceptance_coverage", ROOT / "tools" / "acceptance_coverage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _tool()


@pytest.fixture(scope="module")
def coverage(tool: ModuleType) -> object:
    return tool.scan()


@pytest.mark.parametrize("area", sorted(REQUIRED))
def test_required_behaviours_have_a_live_test(
    tool: ModuleType, coverage: object, area: str
) -> None:
    wanted = tool.parse_ranges(REQUIRED[area])
    missing = coverage.missing(area, wanted)  # type: ignore[attr-defined]
    broken = coverage.broken(area, wanted)  # type: ignore[attr-defined]
    assert not missing, (
        f"{area} acceptance numbers with no live test: {missing} "
        f"(of which only xfail: {broken}); {HOW}"
    )


def test_no_new_tag_outside_a_test(coverage: object) -> None:
    orphans = {
        (t.path, t.area, t.numbers)
        for t in coverage.orphans  # type: ignore[attr-defined]
    }
    assert orphans <= KNOWN_ORPHANS, f"spec tags outside any test: {orphans - KNOWN_ORPHANS}"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    # spec: rpc #27", [("rpc", (27,))]),
        ("# spec: rpc #26, #27, #28", [("rpc", (26, 27, 28))]),
        ("# spec: rpc #26-#29 (the listen state machine)", [("rpc", (26, 27, 28, 29))]),
        ("# spec: rpc #26-28", [("rpc", (26, 27, 28))]),
        ("# spec: rpc #26\u2013#28", [("rpc", (26, 27, 28))]),
        ("# spec: win32 #67 #109 #108 (alertable routine", [("win32", (67, 108, 109))]),
        ("# spec: win32 §10 / #49 (pending: ...)", [("win32", (49,))]),
        ("# spec: win32 #52, §4.2 step 1 [W:k32/pipe.c]", [("win32", (52,))]),
        ("# spec: rpc #95 (cursor), #87 (a handle that is not ours)", [("rpc", (87, 95))]),
        ("# spec: win32 §0 (last-error is thread-local; #1/#2 rely on it)", [("win32", ())]),
        ("x = 1  # spec: rpc #60", [("rpc", (60,))]),
        ("# spec: rpc #15; spec: win32 #112", [("rpc", (15,)), ("win32", (112,))]),
        ("# nothing here #12", []),
    ],
)
def test_tag_variants_are_normalised(tool: ModuleType, line: str, expected: list[object]) -> None:
    got = [(area, tuple(sorted(ns))) for area, ns in tool.parse_tags(line)]
    assert got == expected


def test_tags_belong_to_their_test_and_marks_count(
    tool: ModuleType, tmp_path: pathlib.Path
) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        textwrap.dedent(
            """
            import pytest

            # spec: rpc #1 (module level: an orphan)

            def helper():
                return 1  # spec: rpc #2

            def test_live():
                # spec: rpc #3, #4
                text = "# spec: rpc #10 (a string, not a tag)"
                def nested():
                    pass  # spec: rpc #5

            @pytest.mark.xfail(strict=True, reason="bug")
            def test_broken():
                # spec: rpc #4, #6
                pass

            @pytest.mark.skip(reason="no")
            def test_skipped():
                # spec: rpc #7
                pass

            class TestGroup:
                def test_method(self):
                    # spec: win32 #8
                    pass

            class Helper:
                def test_not_collected(self):
                    # spec: win32 #9
                    pass
            """
        )
    )
    cov = tool.scan(tests, tmp_path)
    assert {(t.numbers, t.line) for t in cov.orphans} == {((1,), 4), ((2,), 7), ((9,), 32)}
    assert cov.missing("rpc", range(1, 11)) == [1, 2, 6, 7, 8, 9, 10]
    assert cov.broken("rpc", range(1, 8)) == [6]
    assert {r.qualname for r in cov.tests("rpc", 5)} == {"test_live"}
    assert {(r.qualname, r.status) for r in cov.tests("rpc", 4)} == {
        ("test_live", "live"),
        ("test_broken", "xfail"),
    }
    assert {r.nodeid for r in cov.live("win32", 8)} == {"tests/test_x.py::TestGroup::test_method"}
    assert tool.main(["--require", "rpc:3-5"]) in (0, 1)  # runs on the real tree
    # The parametrized strings of this very file tag nothing.
    real = tool.scan()
    assert not any(
        r.path == "tests/test_acceptance_coverage.py"
        for area in ("rpc", "win32")
        for n in range(1, 121)
        for r in real.tests(area, n)
    )


def test_required_ranges_parse(tool: ModuleType) -> None:
    assert tool.parse_ranges("15-17,20, 26-27") == [15, 16, 17, 20, 26, 27]
