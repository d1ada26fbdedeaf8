"""Generate docs/win32-coverage.md: every name ``winaio.win32`` exports, with its status.

Run ``python tools/gen_win32_coverage.py`` after adding or changing alias-layer names;
tests/win32/test_win32_coverage.py fails (listing the names) when the document is behind.

Statuses:
- **exact**: behaves as on Windows for everything Wine's conformance tests and the MS Learn page
  pin down (the alias's tests name them).
- **deviation**: differs where Linux/CPython makes the Windows behaviour impossible; the reason
  comes from a paragraph starting with ``Deviation:`` in the alias's docstring (preferred), or
  from ``DEVIATIONS`` below for names defined in modules whose docstrings are not ours to edit.
- **missing**: Win32 names a port of real code reaches for that the layer does not export
  (``MISSING``); the test checks none of them is exported.
"""

from __future__ import annotations

import inspect
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import winaio.win32 as win32  # noqa: E402

TARGET = ROOT / "docs" / "win32-coverage.md"

#: name -> reason, for aliases whose docstring carries no ``Deviation:`` paragraph.
DEVIATIONS: dict[str, str] = {
    "CreateFile": "named pipes are process-local; share modes are enforced between handles of "
    "this process only (other processes see no share mode)",
    "TerminateThread": "exit effects apply at once; the victim unwinds at its next bytecode "
    "boundary (a thread inside a foreign C call unwinds when that call returns)",
    "QueueUserAPC2": "a special APC interrupts an alertable wait of its target (which returns "
    "WAIT_IO_COMPLETION) or runs when the target's current wait returns; Windows interrupts "
    "any user code",
    "WaitForMultipleObjects": "the same handle twice is refused with ERROR_INVALID_PARAMETER in "
    "wait-any too (NT only detects it for wait-all)",
    "WaitForMultipleObjectsEx": "as WaitForMultipleObjects",
    "CreatePipe": "a Linux pipe: nSize sets the kernel pipe size (F_SETPIPE_SZ, rounded up to "
    "pages; GetNamedPipeInfo reports nSize), so a writer blocks later than on Windows",
    "socket": "address families and socket types take the Linux values of AF_*/SOCK_*",
    "WSASocket": "address families and socket types take the Linux values of AF_*/SOCK_*",
}

#: Win32 names a port may need that winaio.win32 does not export, with the reason.
MISSING: dict[str, str] = {
    "CreateProcess": "no process creation (winaio models one process)",
    "DeviceIoControl": "no device drivers; the pipe and socket IOCTLs have their own functions",
    "MsgWaitForMultipleObjects": "no window message queues",
    "MsgWaitForMultipleObjectsEx": "no window message queues",
    "WSAAsyncSelect": "needs a window to post messages to",
    "WSAPoll": "not implemented; select and WSAEventSelect report readiness",
    "WSASendMsg": "not implemented (WSASendTo covers datagrams; no control data)",
    "WSARecvMsg": "not implemented (WSARecvFrom covers datagrams; no control data)",
    "WSADuplicateSocket": "one process: DuplicateHandle shares a socket",
    "ReadDirectoryChangesExW": "the extended records (FILE_NOTIFY_EXTENDED_INFORMATION) are "
    "not implemented; ReadDirectoryChangesW is",
    "GetFileInformationByHandleEx": "not implemented (GetFileSizeEx, GetFileType cover the "
    "common queries)",
    "SetFileInformationByHandle": "not implemented (SetEndOfFile, FILE_FLAG_DELETE_ON_CLOSE "
    "cover the common uses)",
    "GetNamedPipeClientComputerName": "not implemented (pipes are local to the process)",
    "ImpersonateNamedPipeClient": "no security tokens",
    "GetNamedPipeClientSessionId": "no logon sessions",
    "GetNamedPipeServerSessionId": "no logon sessions",
    "CreateMailslot": "no mailslot file system",
    "NtReadFile": "the NT native layer is not exposed (the Win32 functions are)",
    "NtWriteFile": "the NT native layer is not exposed (the Win32 functions are)",
}

_DEVIATION = re.compile(r"^Deviation:\s*(.+)$", re.S)
_MS_PAGE = re.compile(r"\[(MS:[^\]]+|Nt[A-Za-z]+)\]")


def _deviation(name: str, obj: object) -> str | None:
    doc = inspect.getdoc(obj) or ""
    for paragraph in doc.split("\n\n"):
        found = _DEVIATION.match(paragraph.strip())
        if found:
            return " ".join(found.group(1).split())
    return DEVIATIONS.get(name)


def _is_type(obj: object) -> bool:
    return inspect.isclass(obj)


def _canonical(name: str, obj: object) -> str | None:
    """The primary name when ``name`` is a second spelling (CreateEventW = CreateEvent)."""
    real = getattr(obj, "__name__", name)
    return real if real != name and real in win32.__all__ else None


def classify() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], list[str]]:
    """(functions, types, constants): rows of (name, status, notes) and constant names."""
    functions: list[tuple[str, str, str]] = []
    types: list[tuple[str, str, str]] = []
    constants: list[str] = []
    for name in sorted(set(win32.__all__), key=str.casefold):
        obj = getattr(win32, name)
        if not callable(obj):
            constants.append(name)
            continue
        canonical = _canonical(name, obj)
        reason = _deviation(canonical or name, obj)
        pages = _MS_PAGE.findall(inspect.getdoc(obj) or "")
        notes = []
        if canonical:
            notes.append(f"same function as `{canonical}`")
        if pages:
            notes.append(f"[{pages[0]}]")
        if reason:
            notes.append(reason)
        row = (name, "deviation" if reason else "exact", "; ".join(notes))
        (types if _is_type(obj) else functions).append(row)
    return functions, types, constants


def _prefix(name: str) -> str:
    head = name.split("_", 1)[0]
    return head + "_*" if "_" in name else "other"


def render() -> str:
    functions, types, constants = classify()
    out = [
        "# Win32 coverage of `winaio.win32`",
        "",
        "GENERATED by `tools/gen_win32_coverage.py` from `winaio.win32.__all__`: do not edit by "
        "hand. After adding or changing alias-layer names run `python "
        "tools/gen_win32_coverage.py`; `tests/win32/test_win32_coverage.py` lists the names "
        "this file is missing.",
        "",
        "Statuses: **exact** - behaves as on Windows for everything Wine's conformance tests "
        "and the MS Learn page pin down (the tests name them); **deviation** - differs where "
        "Linux or CPython makes the Windows behaviour impossible, with the reason; **missing** "
        "- a Win32 name ported code reaches for that the layer does not export.",
        "",
        f"{len(functions)} functions, {len(types)} types, {len(constants)} constants; "
        f"{sum(1 for row in functions + types if row[1] == 'deviation')} deviations, "
        f"{len(MISSING)} missing names.",
        "",
        "## Functions",
        "",
        "| Name | Status | Notes |",
        "|---|---|---|",
    ]
    out += [f"| `{name}` | {status} | {notes} |" for name, status, notes in functions]
    out += ["", "## Types", "", "| Name | Status | Notes |", "|---|---|---|"]
    out += [f"| `{name}` | {status} | {notes} |" for name, status, notes in types]
    out += [
        "",
        "## Constants",
        "",
        "Values from the Windows SDK headers (winerror.h, ntstatus.h, winbase.h, winnt.h, "
        "winsock2.h), status exact unless noted in a function's row.",
        "",
        "| Group | Names |",
        "|---|---|",
    ]
    groups: dict[str, list[str]] = {}
    for name in constants:
        groups.setdefault(_prefix(name), []).append(name)
    for group in sorted(groups, key=str.casefold):
        out.append(f"| {group} | " + ", ".join(f"`{n}`" for n in groups[group]) + " |")
    out += ["", "## Missing", "", "| Name | Reason |", "|---|---|"]
    out += [f"| {name} | {reason} |" for name, reason in sorted(MISSING.items())]
    return "\n".join(out) + "\n"


def documented_names(text: str) -> set[str]:
    """Every exported name the document lists (all but the Missing section)."""
    body = text.split("\n## Missing", 1)[0]
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", body.split("## Functions", 1)[-1]))


def main() -> None:
    TARGET.write_text(render())


if __name__ == "__main__":
    main()
