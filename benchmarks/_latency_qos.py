"""Keep idle CPUs polling while latency rows are measured (PM QoS: ``/dev/cpu_dma_latency``).

Why: on the project's KVM guests the cpuidle driver is ``haltpoll`` with
``guest_halt_poll_ns`` = 0, so an idle vCPU executes HLT at once; HLT exits to the host, and the
wake-up that follows (an IPI or a device interrupt for the sleeping vCPU) costs ~50 us. A C=1
ping-pong sleeps on both ends every round trip: every row, the raw ceilings included, then sits at
50-65 us and nothing measured is the software's (session 7: the raw Python ping-pong went 51 ->
13.5 us, the raw threaded echo's C=1 p50 ~55 -> 20 us, with the request held).

What: a process that holds ``/dev/cpu_dma_latency`` open after writing a 32-bit 0 asks the kernel
for 0 us of wake-up latency on every CPU; the cpuidle governor then only picks states whose exit
latency is 0, i.e. the polling state, and the idle vCPU spins instead of halting. The request
lasts exactly as long as the descriptor is open (closing it, or the process ending, drops it):
:class:`LatencyQoS` holds it for a ``with`` block. It is what cyclictest and netperf latency runs
do; it needs write access to the device (root here). It costs a busy idle CPU, which is why it is
held for the measurement only.

Invariants: entering never raises for a missing device or a refused open: the state is then
``unavailable`` with the reason (the run goes on, capped); the descriptor is always closed on exit;
:meth:`LatencyQoS.record` says what held, for the JSON of the run.
"""

from __future__ import annotations

import errno
import os
import struct
from types import TracebackType
from typing import Any

DEVICE = "/dev/cpu_dma_latency"
CPUIDLE = "/sys/devices/system/cpu/cpuidle"
HALTPOLL_NS = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
#: Held (the request is in force), unavailable (asked for, could not), off (not asked for).
HELD, UNAVAILABLE, OFF = "held", "unavailable", "off"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpuidle_info() -> dict[str, Any]:
    """The machine's cpuidle driver and governor (``None`` where the kernel has none) and, under
    ``haltpoll``, how long an idle vCPU polls before it halts (``guest_halt_poll_ns``)."""
    info: dict[str, Any] = {
        "cpuidle_driver": _read(f"{CPUIDLE}/current_driver"),
        "cpuidle_governor": _read(f"{CPUIDLE}/current_governor")
        or _read(f"{CPUIDLE}/current_governor_ro"),
    }
    poll = _read(HALTPOLL_NS)
    if poll is not None:
        info["guest_halt_poll_ns"] = int(poll) if poll.isdigit() else poll
    return info


class LatencyQoS:
    """``with LatencyQoS(): ...``: the PM QoS CPU latency request (``target_us``, default 0) is
    held for the block when ``enabled`` and the device can be opened; :meth:`record` says
    whether it was and why not."""

    def __init__(self, enabled: bool = True, device: str = DEVICE, target_us: int = 0) -> None:
        self.enabled, self.device, self.target_us = enabled, device, target_us
        self.state = OFF
        self.reason: str | None = "not asked for (--no-latency-qos)" if not enabled else None
        self.effective_us: int | None = None
        self._fd: int | None = None

    def __enter__(self) -> LatencyQoS:
        if not self.enabled:
            return self
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            self.state, self.reason = UNAVAILABLE, _why(self.device, exc)
            return self
        try:
            os.write(fd, struct.pack("i", self.target_us))
        except OSError as exc:
            os.close(fd)
            self.state, self.reason = UNAVAILABLE, _why(self.device, exc)
            return self
        self._fd, self.state = fd, HELD
        self.effective_us = self._effective()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop the request (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _effective(self) -> int | None:
        """The machine-wide constraint now in force (the device reads back the minimum of every
        holder's request; 2000000000 when nobody holds one), or ``None`` when it cannot be read
        (missing, or a test's stand-in file)."""
        try:
            fd = os.open(self.device, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            data = os.read(fd, 4)
        except OSError:
            return None
        finally:
            os.close(fd)
        return struct.unpack("i", data)[0] if len(data) == 4 else None

    def record(self) -> dict[str, Any]:
        """What the run's JSON says about it: ``state`` (held / unavailable / off), the reason when
        not held, the request and what the kernel reports in force, and the cpuidle driver."""
        out: dict[str, Any] = {"state": self.state, "device": self.device}
        if self.state == HELD:
            out["request_us"] = self.target_us
        else:
            out["reason"] = self.reason
        # Machine-wide: another process holding a request (another run's) shows here even when
        # this run holds none; read at the end of the run when not held by it.
        out["effective_us"] = self.effective_us if self.state == HELD else self._effective()
        out.update(cpuidle_info())
        return out


def _why(device: str, exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    hint = ""
    if exc.errno in (errno.EACCES, errno.EPERM):
        hint = " (needs write access: root)"
    elif exc.errno == errno.ENOENT:
        hint = " (no PM QoS device: kernel without CONFIG_CPU_IDLE / a container without /dev)"
    return f"{device}: {exc.strerror or exc} [{name}]{hint}"
