"""The alias layer's C handle lookup (``_io/_fastwin32.h``: ``fio_handle_object``, used by the C
ReadFile, GetQueuedCompletionStatusEx, WSARecv and WSASend) against the Python functions.

- An interrupt raised while the handle is looked up (a Ctrl-C's KeyboardInterrupt landing in
  the handle's ``__hash__``) propagates from WSARecv and WSASend, as from the Python functions,
  with nothing received or sent (ReadFile's and GQCSEx's: ``tests/io/test_fastio_review.py``).
- A handle whose table entry is another object type (an event, a port, a file), a handle
  subclass of int, a stale handle: the C hands the call to the Python function, which gives
  the same result and last error.
- The lookup's new reference is released: handles and objects stay flat over many calls.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import winaio.win32 as w
from winaio import testing as wt
from winaio.win32 import _winsock_overlapped


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt (a BaseException raised by a signal handler)."""


class _Handle(int):
    """A handle whose hash raises the exception ``raising`` holds, once (as a signal handler
    would during the lookup)."""

    raising: ClassVar[list[BaseException]] = []

    def __hash__(self) -> int:
        if self.raising:
            raise self.raising.pop()
        return int.__hash__(self)


@pytest.fixture(params=["c", "python"])
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "c":
        wt.require_c_path(
            not isinstance(w.WSARecv, type(_winsock_overlapped._WSARecv)), "the alias C paths"
        )
    with wt.accelerator_for_test(request.param) as mode:
        yield mode
    _Handle.raising.clear()


@pytest.fixture
def pair() -> Iterator[tuple[int, int]]:
    """A connected loopback pair of overlapped SOCKET handles (client, server)."""
    made: list[int] = []

    def sock() -> int:
        s = w.WSASocket(w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, w.WSA_FLAG_OVERLAPPED)
        made.append(s)
        return s

    lst = sock()
    assert w.bind(lst, ("127.0.0.1", 0)) == 0 and w.listen(lst, 1) == 0
    client = sock()
    assert w.connect(client, w.getsockname(lst)) == 0, w.WSAGetLastError()
    server = w.accept(lst)
    made.append(server)
    try:
        yield client, server
    finally:
        for h in made:
            w.closesocket(h)


def _peer_bytes(h: int) -> bytes:
    sock = w._base.handle_entry(h)[0].sock
    sock.setblocking(False)
    try:
        return bytes(sock.recv(64))
    except BlockingIOError:
        return b""


@pytest.mark.usefixtures("impl")
def test_an_interrupt_in_wsasends_handle_lookup_propagates(pair: tuple[int, int]) -> None:
    client, server = pair
    _Handle.raising.append(Interrupted())
    with pytest.raises(Interrupted):
        w.WSASend(_Handle(client), [b"lost"], 1, w.Ref(0), 0, w.OVERLAPPED(), None)
    assert _peer_bytes(server) == b""  # nothing was sent
    # the lookup's next call (nothing to raise) takes the handle as any int
    assert w.WSASend(_Handle(client), [b"sent"], 1, w.Ref(0), 0, w.OVERLAPPED(), None) == 0
    wt.wait_until(lambda: _peek(server) == b"sent", 5.0, "the bytes reach the peer")


def _peek(h: int) -> bytes:
    sock = w._base.handle_entry(h)[0].sock
    sock.setblocking(False)
    try:
        return bytes(sock.recv(64, 0x2))  # MSG_PEEK
    except BlockingIOError:
        return b""


@pytest.mark.usefixtures("impl")
def test_an_interrupt_in_wsarecvs_handle_lookup_propagates(pair: tuple[int, int]) -> None:
    client, server = pair
    assert w.send(client, b"kept", 0) == 4
    wt.wait_until(lambda: _peek(server) == b"kept", 5.0, "the bytes arrive")
    buf = bytearray(8)
    _Handle.raising.append(Interrupted())
    with pytest.raises(Interrupted):
        w.WSARecv(_Handle(server), [buf], 1, w.Ref(0), w.Ref(0), w.OVERLAPPED(), None)
    assert buf == bytearray(8) and _peek(server) == b"kept"  # nothing was received


def _other_handles(tmp_path: Path) -> dict[str, Callable[[], int]]:
    name = tmp_path / "f"
    name.write_bytes(b"x" * 64)
    return {
        "event": lambda: w.CreateEvent(None, True, False, None),
        "port": lambda: w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 0),
        "file": lambda: w.CreateFileW(
            str(name), w.GENERIC_READ, 0, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, None
        ),
    }


def _calls() -> dict[str, Callable[[int], Any]]:
    return {
        "WSARecv": lambda h: w.WSARecv(
            h, [bytearray(8)], 1, w.Ref(0), w.Ref(0), w.OVERLAPPED(), None
        ),
        "WSASend": lambda h: w.WSASend(h, [b"x"], 1, w.Ref(0), 0, w.OVERLAPPED(), None),
        "ReadFile": lambda h: w.ReadFile(h, bytearray(8), 8, None, w.OVERLAPPED()),
        "GQCSEx": lambda h: w.GetQueuedCompletionStatusEx(
            h, [w.OVERLAPPED_ENTRY()], 1, w.Ref(0), w.INFINITE, False
        ),
    }


def _observe(call: str, other: str, tmp_path: Path) -> tuple[Any, int]:
    made = _other_handles(tmp_path)[other]()
    try:
        w.SetLastError(0xDEADBEEF)
        try:
            result: Any = _calls()[call](made)
        except Exception as exc:  # (the same exception from both, if any)
            result = type(exc).__name__
        return result, w.GetLastError()
    finally:
        w.CloseHandle(made)


# (GQCSEx on a file or an event: the Python function reports ERROR_INVALID_HANDLE; on a port it
# would wait: left out.)
CASES = [
    (call, other)
    for call in ("WSARecv", "WSASend", "ReadFile", "GQCSEx")
    for other in ("event", "port", "file")
    if not (call == "GQCSEx" and other == "port") and not (call == "ReadFile" and other == "file")
]


@pytest.mark.parametrize(("call", "other"), CASES)
def test_a_handle_of_another_type_gets_the_python_functions_answer(
    call: str, other: str, tmp_path: Path
) -> None:
    seen = {}
    for mode in ("c", "python"):
        with wt.accelerator_for_test(mode):
            seen[mode] = _observe(call, other, tmp_path)
    assert seen["c"] == seen["python"]


@pytest.mark.usefixtures("impl")
def test_the_lookups_references_are_released(pair: tuple[int, int], tmp_path: Path) -> None:
    client, _ = pair
    name = tmp_path / "g"
    name.write_bytes(os.urandom(4096))
    f = w.CreateFileW(
        str(name), w.GENERIC_READ, 0, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, None
    )
    port = w.CreateIoCompletionPort(f, None, 1, 0)
    buf = bytearray(4096)

    def once() -> None:
        assert w.WSASend(client, [b"p"], 1, w.Ref(0), 0, w.OVERLAPPED(), None) == 0
        ov = w.OVERLAPPED()
        w.ReadFile(f, buf, 4096, None, ov)
        entries = [w.OVERLAPPED_ENTRY()]
        assert w.GetQueuedCompletionStatusEx(port, entries, 1, w.Ref(0), w.INFINITE, False)

    try:
        for _ in range(50):
            once()
        gc.collect()
        before = len(gc.get_objects())
        objs = [w._base.handle_entry(h)[0] for h in (client, f, port)]  # what the lookups take
        refs = [sys.getrefcount(o) for o in objs]
        for _ in range(500):
            once()
        gc.collect()
        assert [sys.getrefcount(o) for o in objs] == refs
        assert len(gc.get_objects()) - before < 50
    finally:
        w.CloseHandle(f)
        w.CloseHandle(port)
