"""The core's I/O calls given an object of the wrong kind where a file or a port belongs (the
core's equivalent of a handle of the wrong type): ERROR_INVALID_HANDLE, as ``read_file`` /
``write_file`` already say for an object that cannot be read or written, never a bare
AttributeError from deep inside.

- CancelIo / CancelIoEx on an event, a port, None, a string;
- FileObject.associate with something that is not a completion port (ERROR_INVALID_HANDLE,
  as CreateIoCompletionPort says for a handle that is not a port) - and the file stays
  unassociated, so a real port can still be associated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import winaio
from winaio.codes import WinError

INVALID_HANDLE = int(WinError.ERROR_INVALID_HANDLE)

NOT_FILES: list[Callable[[], Any]] = [
    lambda: None,
    lambda: "file",
    lambda: 5,
    lambda: winaio.Event(),
    lambda: winaio.CompletionPort(),
]
IDS = ["None", "str", "int", "event", "port"]


@pytest.mark.parametrize("make", NOT_FILES, ids=IDS)
@pytest.mark.parametrize(
    "cancel", [winaio.cancel_io, winaio.cancel_io_ex], ids=["CancelIo", "CancelIoEx"]
)
def test_cancelling_the_io_of_something_that_is_not_a_file_is_an_invalid_handle(
    make: Callable[[], Any], cancel: Callable[[Any], None]
) -> None:
    with pytest.raises(winaio.Win32Error) as info:
        cancel(make())
    assert info.value.winerror == INVALID_HANDLE


@pytest.mark.parametrize(
    "make", [lambda: None, lambda: "port", lambda: winaio.Event()], ids=[*IDS[:2], "event"]
)
def test_associating_with_something_that_is_not_a_port_is_an_invalid_handle(
    make: Callable[[], Any], socket_pair: Any
) -> None:
    s, _ = socket_pair()
    port = winaio.CompletionPort()
    try:
        with pytest.raises(winaio.Win32Error) as info:
            s.associate(make(), "key")
        assert info.value.winerror == INVALID_HANDLE
        assert s.port is None
        s.associate(port, "key")  # still free to be associated
        assert s.port is port
    finally:
        port.close()
