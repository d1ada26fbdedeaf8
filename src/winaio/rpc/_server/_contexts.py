"""Context handles: per-association tables of open handles, and their rundown.

Rules (spec A13, rpc #86-#89) [MS-RPCE §3.3.1.4.1], [MSL:server-context-run-down-routine]:
- Scope is the association group: every connection of the group sees the same handles.
- An [out] handle gets a fresh random UUID (attributes 0) bound to the manager's object; a
  manager returning None closes it (20 zero octets on the wire). An [in,out] handle that stays
  non-None keeps its wire value and takes the new object.
- An [in] handle that is unknown, closed or NULL where NULL is not allowed faults
  nca_s_fault_context_mismatch 0x1C00001A (client: ERROR_INVALID_HANDLE) (rpc #87).
- While a call uses a handle its ``users`` count is > 0. When the association's last connection
  closes, every still-open handle is run down exactly once with its typedef's rundown routine
  (unnamed handles have none), but only after the calls using it have returned (rpc #88, #89).
  Rundown routines run on the server's worker threads; their exceptions are logged.
- Thread-safe: one lock guards all tables (calls complete on any thread).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, Final

from .._ndr import ContextHandleValue

__all__ = ["CONTEXT_MISMATCH", "ContextTables", "Entry"]

log = logging.getLogger("winaio.rpc.server")

#: nca_s_fault_context_mismatch [MS-RPCE §2.2.2.8], [wine:rpc_message.c RPC2NCA_STATUS].
CONTEXT_MISMATCH: Final = 0x1C00001A


class Entry:
    """One open context handle."""

    __slots__ = ("closed", "obj", "rundown", "type_name", "users", "wire")

    def __init__(self, obj: Any, type_name: str) -> None:
        self.wire = ContextHandleValue(0, uuid.uuid4())
        self.obj = obj
        self.type_name = type_name
        self.users = 0
        self.closed = False
        self.rundown: Callable[[Any], Any] | None = None  # set when the association ended


class ContextTables:
    """Every association group's open handles, with the rundown bookkeeping."""

    def __init__(self, run: Callable[[Callable[[], Any]], Any]) -> None:
        self._lock = threading.Lock()
        self._tables: dict[int, dict[uuid.UUID, Entry]] = {}
        self._run = run  # runs a rundown routine (the server's worker threads)

    def open_count(self, assoc_group_id: int | None = None) -> int:
        with self._lock:
            if assoc_group_id is not None:
                return len(self._tables.get(assoc_group_id, {}))
            return sum(len(t) for t in self._tables.values())

    def acquire(self, assoc_group_id: int, value: ContextHandleValue) -> Entry | None:
        """The open entry for a wire handle, its ``users`` count raised; None if unknown."""
        with self._lock:
            entry = self._tables.get(assoc_group_id, {}).get(value.uuid)
            if entry is None or entry.closed or entry.rundown is not None:
                return None
            entry.users += 1
            return entry

    def output(
        self, assoc_group_id: int, entry: Entry | None, obj: Any, type_name: str
    ) -> ContextHandleValue:
        """The wire value of an [out]/[in,out] handle whose manager returned ``obj``."""
        with self._lock:
            table = self._tables.setdefault(assoc_group_id, {})
            if obj is None:
                if entry is not None and not entry.closed:
                    entry.closed = True
                    table.pop(entry.wire.uuid, None)
                return ContextHandleValue.NULL
            if entry is not None and not entry.closed:
                entry.obj = obj
                return entry.wire
            new = Entry(obj, type_name)
            table[new.wire.uuid] = new
            return new.wire

    def release(self, entries: list[Entry]) -> None:
        """The calls using ``entries`` are over: run down those waiting for it (rpc #89)."""
        due = []
        with self._lock:
            for entry in entries:
                entry.users -= 1
                if entry.users == 0 and entry.rundown is not None and not entry.closed:
                    entry.closed = True
                    due.append(entry)
        for entry in due:
            self._schedule(entry)

    def association_ended(
        self, assoc_group_id: int, rundowns: Callable[[str], Callable[[Any], Any] | None]
    ) -> None:
        """Run down every open handle of the group, now or when its last user returns."""
        due = []
        with self._lock:
            table = self._tables.pop(assoc_group_id, {})
            for entry in table.values():
                routine = rundowns(entry.type_name) if entry.type_name else None
                if routine is None or entry.closed:
                    entry.closed = True
                    continue
                entry.rundown = routine
                if entry.users == 0:
                    entry.closed = True
                    due.append(entry)
        for entry in due:
            self._schedule(entry)

    def _schedule(self, entry: Entry) -> None:
        routine = entry.rundown
        assert routine is not None

        def run() -> None:
            try:
                routine(entry.obj)
            except Exception:
                log.exception("context handle rundown %r failed", routine)

        self._run(run)
