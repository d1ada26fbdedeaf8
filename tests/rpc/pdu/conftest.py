"""Fixtures for the PDU codec tests: the golden vectors of tests/data/pdu."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from winaio.testing import hex_reader

DATA = Path(__file__).resolve().parents[2] / "data" / "pdu"


#: Bytes of tests/data/pdu/<name>.hex (hex digits, whitespace ignored, '#' comments).
read_hex = hex_reader(DATA)


@pytest.fixture
def golden() -> Callable[[str], bytes]:
    return read_hex
