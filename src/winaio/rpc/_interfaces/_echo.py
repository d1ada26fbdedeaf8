"""rpcecho's managers: what Samba's echo server answers, opnum by opnum.

[samba:source4/rpc_server/echo/rpc_echo.c]: AddOne returns in+1; EchoData the same octets;
SinkData nothing; SourceData ``len`` octets 0, 1, 2, ... (mod 256); TestCall its string;
TestCall2 fixed values per union level (1: 10, 2: 20, 3: 30, 4: 40, 5: 50/60, 6: 70/80,
7: 80/90) and NTSTATUS 0; TestSleep answers ``seconds`` after that many seconds from a timer of
winaio's default thread pool (the call is asynchronous: no thread waits for it; all timers share
the pool's one wait thread); TestEnum sets ``foo2.e1`` to ECHO_ENUM2 and
returns the rest unchanged; TestSurrounding doubles ``x`` and returns that many zeros;
TestDoublePointer returns ``***data`` or 0 when a pointer is NULL.

Bounds (a client must not make us allocate what it did not send): SourceData's ``len`` and
TestSleep's ``seconds`` are client-chosen integers, so SourceData refuses more than
``MAX_SOURCE`` octets with nca_s_fault_remote_no_memory and TestSleep more than ``MAX_SLEEP``
seconds with RPC_S_INVALID_ARG. TestCall2 with an unknown level faults 0x6F7, as Samba does
(its NDR push of the union fails: DCERPC_FAULT_NDR).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from ..._pool import PoolTimer, default_pool
from ...codes import NcaStatus, RpcStatus
from ...errors import RpcError
from ._echo_idl import ECHO_ENUM2

__all__ = [
    "MAX_SLEEP",
    "MAX_SOURCE",
    "add_one",
    "echo_data",
    "sink_data",
    "source_data",
    "test_call",
    "test_call2",
    "test_sleep",
    "test_enum",
    "test_surrounding",
    "test_double_pointer",
    "pending_sleeps",
]

#: Largest SourceData reply (the 4 MiB request limit of [MS-RPCE §3.3.3.5.4], the other way).
MAX_SOURCE: Final = 4 * 1024 * 1024
#: Longest TestSleep (an hour: enough for any test, bounded for a hostile client).
MAX_SLEEP: Final = 3600

_LEVELS: Final[dict[int, dict[str, Any]]] = {
    1: {"v": 10},
    2: {"v": 20},
    3: {"v": 30},
    4: {"v": 40},
    5: {"v1": 50, "v2": 60},
    6: {"v1": 70, "info1": {"v": 80}},
    7: {"v1": 80, "info4": {"v": 90}},
}


class AsyncCall(Protocol):
    """What TestSleep needs of the runtime's call object (rpc.ServerCall)."""

    def complete(self, result: Any = None) -> None: ...

    def abort(self, status: int) -> None: ...

    def on_event(self, fn: Any) -> None: ...


def add_one(in_data: int) -> int:
    return (in_data + 1) & 0xFFFFFFFF


def echo_data(len: int, in_data: bytes) -> bytes:
    return in_data


def sink_data(len: int, data: bytes) -> None:
    return None


def source_data(len: int) -> bytes:
    if len > MAX_SOURCE:
        raise RpcError(NcaStatus.NCA_S_FAULT_REMOTE_NO_MEMORY, f"SourceData of {len} octets")
    return bytes(range(256)) * (len // 256) + bytes(range(len % 256))


def test_call(s1: str) -> str:
    return s1


def test_call2(level: int) -> dict[str, Any]:
    arm = _LEVELS.get(level)
    if arm is None:
        raise RpcError(RpcStatus.RPC_X_BAD_STUB_DATA, f"TestCall2 level {level}")
    return {"info": (level, arm), "return": 0}


#: TestSleep timers armed and not yet ended (fired, cancelled or disconnected). The dict is the
#: "exactly once" switch: whoever pops a timer first (its callback on a pool worker, or the
#: call's cancel/disconnect event on the server's loop) ends the call.
_sleeping: dict[PoolTimer, bool] = {}


def pending_sleeps() -> int:
    """How many TestSleep calls are waiting for their timer (a leak check for tests)."""
    return len(_sleeping)


def test_sleep(call: AsyncCall, seconds: int) -> None:
    """The MS asynchronous form: arm a pool timer and return; the timer completes the call."""
    if seconds > MAX_SLEEP:
        raise RpcError(RpcStatus.RPC_S_INVALID_ARG, f"TestSleep of {seconds} s")

    def fire(instance: object) -> None:
        if _sleeping.pop(timer, False):
            timer.close()
            call.complete(seconds)

    def on_event(event: Any) -> None:
        # Client cancel or disconnect: stop the timer and end the call; a cancelled call
        # answers nca_s_fault_cancel (rpc #16), a disconnected one sends nothing (the runtime
        # drops it) but must still be ended to be released.
        if _sleeping.pop(timer, False):
            timer.set(None)
            timer.close()
            call.abort(RpcStatus.RPC_S_CALL_CANCELLED)

    timer = default_pool().create_timer(fire)
    _sleeping[timer] = True
    call.on_event(on_event)
    timer.set(seconds)


def test_enum(foo1: int, foo2: dict[str, Any], foo3: tuple[int, Any]) -> dict[str, Any]:
    return {"foo1": foo1, "foo2": {**foo2, "e1": ECHO_ENUM2}, "foo3": foo3}


def test_surrounding(data: dict[str, Any]) -> dict[str, Any]:
    # x equals the number of elements the client sent (the conformant struct's max_count is
    # checked against it), so the reply is bounded by twice the request.
    x = 2 * data["x"]
    return {"x": x, "surrounding": [0] * x}


def test_double_pointer(data: int | None) -> int:
    return data or 0
