"""Shared helpers of the built-in services' tests (EPM, mgmt, rpcecho, ``python -m winaio serve``).

Real peers (rpc-spec part C): impacket (the ``test`` extra), Samba's ``rpcclient`` (Debian
smbclient) and Samba's Python bindings (python3-samba, run by the *system* python3 in a
subprocess). A peer that is missing skips its tests with the reason, except under CI, where
``.ci/run`` installs them all and sets ``WINAIO_REQUIRE_PEERS=1``: there a missing peer fails.

Helpers reach tests through fixtures (tests run with --import-mode=importlib).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
REQUIRE_PEERS = os.environ.get("WINAIO_REQUIRE_PEERS") == "1"


def need_peer(available: bool, reason: str) -> None:
    """Skip (or, with WINAIO_REQUIRE_PEERS=1, fail) when a real peer is missing."""
    if available:
        return
    if REQUIRE_PEERS:
        pytest.fail(f"required peer missing (WINAIO_REQUIRE_PEERS=1): {reason}")
    pytest.skip(reason)


def _samba_python() -> str | None:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return None
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import samba.dcerpc.echo, samba.ndr"],
        capture_output=True,
        timeout=30,
    )
    return SYSTEM_PYTHON if probe.returncode == 0 else None


@pytest.fixture(scope="session")
def samba_python() -> str:
    """The system python3 that imports Samba's bindings (python3-samba)."""
    path = _samba_python()
    need_peer(path is not None, "Samba's Python bindings missing (apt-get install python3-samba)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def rpcclient() -> str:
    """Samba's rpcclient (Debian smbclient)."""
    path = shutil.which("rpcclient")
    need_peer(path is not None, "rpcclient missing (apt-get install smbclient)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def impacket() -> Any:
    try:
        import impacket.dcerpc.v5.epm as epm
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        need_peer(False, f"impacket missing: {exc}")
        raise
    return epm


class StubDce:
    """Enough of impacket's DCERPC_v5 for its ``h*`` helpers: ``request()`` marshals the
    impacket request, hands the stub to ``answer(opnum, stub) -> response stub`` and parses the
    response with impacket's ``<Request>Response`` class, checking the last 4 octets as impacket
    does. No socket: the NDR of both sides meets in memory."""

    def __init__(self, answer: Callable[[int, bytes], bytes]) -> None:
        self.answer = answer
        self.requests: list[tuple[int, bytes]] = []

    def bind(self, *args: Any, **kwargs: Any) -> None:
        return None

    def disconnect(self) -> None:
        return None

    def request(self, request: Any, uuid: Any = None, checkError: bool = True) -> Any:
        import sys

        stub = request.getData()
        self.requests.append((request.opnum, stub))
        answer = self.answer(request.opnum, stub)
        module = sys.modules[request.__module__]
        response = getattr(module, type(request).__name__ + "Response")(answer)
        if checkError and answer[-4:] != b"\x00\x00\x00\x00":
            raise RuntimeError(f"status 0x{int.from_bytes(answer[-4:], 'little'):08x}")
        return response


@pytest.fixture
def stub_dce() -> type[StubDce]:
    return StubDce
