"""Fixtures for the PDU codec tests: the golden vectors of tests/data/pdu."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "pdu"


def read_hex(name: str) -> bytes:
    """Bytes of tests/data/pdu/<name>.hex (hex digits, whitespace ignored, '#' comments)."""
    text = (DATA / f"{name}.hex").read_text()
    digits = "".join(re.sub(r"#.*", "", line) for line in text.splitlines())
    return bytes.fromhex("".join(digits.split()))


@pytest.fixture
def golden() -> Callable[[str], bytes]:
    return read_hex
