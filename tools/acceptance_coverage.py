"""Which test checks which acceptance behaviour: a map from the specs' numbered lists to tests.

The two specs end with numbered acceptance behaviours (``rpc-spec.md`` "ACCEPTANCE BEHAVIORS",
``win32-async-spec.md`` §11). A test names the behaviours it checks with a *spec tag*, a comment
inside the test function (only comments count: a string that mentions a tag is not one)::

    def test_second_listen_while_listening(make_server):
        # spec: rpc #27 [wine:tests/rpc.c]
        ...

The tag convention (one rule, tolerant parsing):

- ``spec: <area>`` with area ``rpc`` or ``win32``, then the numbers: ``#N``, several separated
  by spaces or commas (``#44 #45``, ``#72, #71``) and ranges ``#26-#36`` (also ``#26-36``
  and an en dash). Section references (``§6.5``) and sources (``[W:k32/sync.c]``) may follow.
- Numbers inside parentheses or brackets are prose, not tags: ``spec: win32 §0 (#1/#2 rely on
  it)`` tags nothing. Put the numbers a test checks before any parenthesised note.
- The tag belongs to the innermost enclosing test (``def test_*`` or a method of ``class
  Test*``; a nested helper counts for the test it is in). A tag outside any test (module level,
  a fixture, a helper) covers nothing; the report lists it as an orphan so it can be moved.
- A test marked ``xfail`` counts as *broken* coverage (the behaviour is checked and does not
  hold yet), one marked ``skip`` as *skipped*; neither makes a number covered. (``skipif``
  and runtime skips such as a missing real peer are not visible statically: CI installs the
  peers and fails when one is missing.)

Usage::

    python tools/acceptance_coverage.py                      # table of both areas
    python tools/acceptance_coverage.py --area rpc --uncovered
    python tools/acceptance_coverage.py --require rpc:15-22,26-36,44-66,86-98 --require win32:1-120
    python tools/acceptance_coverage.py --json

With ``--require`` the exit status is 1 when a required number has no live test.
tests/test_acceptance_coverage.py runs the same check for the numbers the open issues require.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import pathlib
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SPECS = {
    "rpc": ROOT.parent / "shared" / "spec" / "rpc-spec.md",
    "win32": ROOT.parent / "shared" / "spec" / "win32-async-spec.md",
}
#: Number of acceptance behaviours each spec lists (used when the spec file is not at hand).
TOTALS = {"rpc": 100, "win32": 120}

_TAG = re.compile(r"spec:\s*(rpc|win32)\b")
_NUMBER = re.compile(r"#(\d+)(?:\s*(?:-|\u2013|\.\.)\s*#?(\d+))?")


@dataclass(frozen=True, order=True)
class TaggedTest:
    """One test function: ``path::Class::test_name`` plus its static marks."""

    path: str
    qualname: str
    status: str = "live"  # "live", "xfail" or "skip"

    @property
    def nodeid(self) -> str:
        return f"{self.path}::{self.qualname}"


@dataclass(frozen=True)
class Tag:
    area: str
    numbers: tuple[int, ...]
    path: str
    line: int
    text: str


@dataclass
class Coverage:
    """area -> number -> tests that carry a tag for it; plus tags that belong to no test."""

    by_number: dict[str, dict[int, set[TaggedTest]]] = field(default_factory=dict)
    orphans: list[Tag] = field(default_factory=list)

    def tests(self, area: str, number: int) -> set[TaggedTest]:
        return self.by_number.get(area, {}).get(number, set())

    def live(self, area: str, number: int) -> set[TaggedTest]:
        return {t for t in self.tests(area, number) if t.status == "live"}

    def missing(self, area: str, numbers: Iterable[int]) -> list[int]:
        """Numbers with no live test (uncovered, or covered only by xfail/skip tests)."""
        return [n for n in numbers if not self.live(area, n)]

    def broken(self, area: str, numbers: Iterable[int]) -> list[int]:
        """Numbers whose only tests are xfail: checked, and known not to hold."""
        return [
            n
            for n in numbers
            if not self.live(area, n) and any(t.status == "xfail" for t in self.tests(area, n))
        ]


def _strip_notes(text: str) -> str:
    """Drop parenthesised and bracketed prose (nesting-aware): numbers there are not tags."""
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def parse_tags(line: str) -> list[tuple[str, tuple[int, ...]]]:
    """Every ``spec: <area> ...`` tag on one source line, as (area, numbers)."""
    found: list[tuple[str, tuple[int, ...]]] = []
    matches = list(_TAG.finditer(line))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        rest = _strip_notes(line[m.end() : end])
        numbers: list[int] = []
        for num in _NUMBER.finditer(rest):
            lo = int(num.group(1))
            hi = int(num.group(2)) if num.group(2) else lo
            if hi < lo or hi - lo > 200:
                raise ValueError(f"bad range in spec tag: {line.strip()!r}")
            numbers.extend(range(lo, hi + 1))
        found.append((m.group(1), tuple(numbers)))
    return found


def _mark_status(decorators: list[ast.expr]) -> str:
    """'xfail' / 'skip' for ``@pytest.mark.xfail(...)`` / ``@pytest.mark.skip(...)``."""
    for dec in decorators:
        node = dec.func if isinstance(dec, ast.Call) else dec
        name = ast.unparse(node)
        if name.endswith("mark.xfail"):
            return "xfail"
        if name.endswith("mark.skip"):
            return "skip"
    return "live"


@dataclass
class _Scope:
    start: int
    end: int
    names: tuple[str, ...]
    is_test: bool
    status: str


def _scopes(tree: ast.Module) -> Iterator[_Scope]:
    def walk(
        body: list[ast.stmt], names: tuple[str, ...], in_test_class: bool, status: str
    ) -> Iterator[_Scope]:
        for node in body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            end = node.end_lineno or node.lineno
            own = _mark_status(node.decorator_list)
            st = own if own != "live" else status
            if isinstance(node, ast.ClassDef):
                is_test = node.name.startswith("Test")
                yield _Scope(start, end, (*names, node.name), False, st)
                yield from walk(node.body, (*names, node.name), is_test, st)
            else:
                is_test = node.name.startswith("test") and (not names or in_test_class)
                yield _Scope(start, end, (*names, node.name), is_test, st)
                yield from walk(node.body, (*names, node.name), False, st)

    yield from walk(tree.body, (), False, "live")


def scan_file(
    path: pathlib.Path, root: pathlib.Path = ROOT
) -> tuple[list[Tag], dict[int, TaggedTest]]:
    """Tags of one file, and for each tag line the test it belongs to (absent: orphan)."""
    source = path.read_text()
    rel = path.relative_to(root).as_posix()
    tags: list[Tag] = []
    if "spec:" not in source:
        return [], {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT or "spec:" not in tok.string:
            continue
        lineno = tok.start[0]
        for area, numbers in parse_tags(tok.string):
            tags.append(Tag(area, numbers, rel, lineno, lines[lineno - 1].strip()))
    if not tags:
        return [], {}
    scopes = list(_scopes(ast.parse(source, filename=str(path))))
    owner: dict[int, TaggedTest] = {}
    for tag in tags:
        # Innermost test scope containing the line (scopes nest; later = inner at equal start).
        best: _Scope | None = None
        for sc in scopes:
            inside = sc.is_test and sc.start <= tag.line <= sc.end
            if inside and (best is None or (sc.end - sc.start) <= (best.end - best.start)):
                best = sc
        if best is not None:
            owner[tag.line] = TaggedTest(rel, "::".join(best.names), best.status)
    return tags, owner


def scan(tests_dir: pathlib.Path = TESTS, root: pathlib.Path = ROOT) -> Coverage:
    cov = Coverage()
    for path in sorted(tests_dir.rglob("*.py")):
        tags, owner = scan_file(path, root)
        for tag in tags:
            ref = owner.get(tag.line)
            if ref is None:
                if tag.numbers:
                    cov.orphans.append(tag)
                continue
            for n in tag.numbers:
                cov.by_number.setdefault(tag.area, {}).setdefault(n, set()).add(ref)
    return cov


def spec_total(area: str) -> int:
    """How many acceptance behaviours the spec lists (falls back to TOTALS)."""
    spec = SPECS[area]
    if not spec.exists():
        return TOTALS[area]
    text = spec.read_text()
    head = text.rfind("ACCEPTANCE BEHAVIORS")
    numbers = [int(m.group(1)) for m in re.finditer(r"^(\d+)\. ", text[head:], re.M)]
    return max(numbers, default=TOTALS[area])


def parse_ranges(spec: str) -> list[int]:
    """'15-22,26-36,44' -> [15, ..., 22, 26, ..., 36, 44]."""
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _compress(numbers: Iterable[int]) -> str:
    ns = sorted(set(numbers))
    runs: list[str] = []
    i = 0
    while i < len(ns):
        j = i
        while j + 1 < len(ns) and ns[j + 1] == ns[j] + 1:
            j += 1
        runs.append(str(ns[i]) if i == j else f"{ns[i]}-{ns[j]}")
        i = j + 1
    return ",".join(runs) or "-"


def render(cov: Coverage, areas: list[str], uncovered_only: bool = False) -> str:
    lines: list[str] = []
    for area in areas:
        total = spec_total(area)
        missing = cov.missing(area, range(1, total + 1))
        lines.append(f"## {area}: {total - len(missing)}/{total} behaviours have a live test")
        lines.append(f"uncovered: {_compress(missing)}")
        broken = cov.broken(area, range(1, total + 1))
        if broken:
            lines.append(f"only xfail (known broken): {_compress(broken)}")
        for n in range(1, total + 1):
            refs = sorted(cov.tests(area, n))
            if uncovered_only and cov.live(area, n):
                continue
            if not refs:
                lines.append(f"{area} #{n}: -")
                continue
            shown = [r.nodeid + ("" if r.status == "live" else f" [{r.status}]") for r in refs]
            lines.append(f"{area} #{n}: {len(refs)} test(s)")
            lines.extend(f"    {s}" for s in shown)
        lines.append("")
    if cov.orphans:
        lines.append("## tags outside any test (cover nothing; move them into the test)")
        lines.extend(f"{t.path}:{t.line}: {t.text}" for t in cov.orphans)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--area", choices=sorted(SPECS), action="append")
    parser.add_argument("--uncovered", action="store_true", help="list only uncovered numbers")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="AREA:RANGES",
        help="e.g. rpc:15-22,26-36; exit 1 when one has no live test",
    )
    args = parser.parse_args(argv)
    areas = args.area or sorted(SPECS)
    cov = scan()
    if args.json:
        doc = {
            area: {
                str(n): [{"test": r.nodeid, "status": r.status} for r in sorted(cov.tests(area, n))]
                for n in range(1, spec_total(area) + 1)
            }
            for area in areas
        }
        print(json.dumps(doc, indent=1))
    else:
        print(render(cov, areas, args.uncovered))
    failed = False
    for req in args.require:
        area, _, ranges = req.partition(":")
        missing = cov.missing(area, parse_ranges(ranges))
        if missing:
            failed = True
            print(f"REQUIRED {area} numbers without a live test: {_compress(missing)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
