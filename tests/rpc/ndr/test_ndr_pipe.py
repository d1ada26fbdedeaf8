"""Incremental NDR pipes: PipeWriter / PipeReader [C706 §14.3, pipes], rpc-spec §A9 and #25."""

from __future__ import annotations

import struct

import pytest

from winaio.errors import NdrError
from winaio.rpc._ndr import (
    BYTE,
    ENUM16,
    HYPER,
    IN,
    ULONG,
    WCHAR,
    Codec,
    Param,
    Pipe,
    PipeReader,
    PipeWriter,
    Procedure,
    Struct,
)


def test_chunk_is_count_then_elements_and_zero_terminates() -> None:
    # spec: rpc #25
    writer = PipeWriter(Pipe(ULONG))
    assert writer.chunk([1, 2]) == struct.pack("<3I", 2, 1, 2)
    assert writer.chunk([]) == b""
    assert writer.end() == bytes(4)
    assert writer.finished and writer.offset == 16
    with pytest.raises(ValueError):
        writer.chunk([3])


def test_writer_aligns_relative_to_the_stub() -> None:
    writer = PipeWriter(Pipe(HYPER), offset=5)
    # 3 octets of gap to 4, the count, then 4 more to reach 8 for the hyper
    assert writer.chunk([5]) == bytes(3) + struct.pack("<I", 1) + bytes(4) + struct.pack("<q", 5)
    assert writer.offset == 24
    assert writer.end() == bytes(4)


def test_writer_output_equals_whole_message_encoding() -> None:
    pipe = Pipe(Struct([("tag", BYTE), ("value", ULONG)]))
    chunks = [[{"tag": 1, "value": 2}, {"tag": 3, "value": 4}], [{"tag": 5, "value": 6}]]
    proc = Procedure("push", 0, [Param("n", BYTE, IN), Param("data", pipe, IN)])
    stub = proc.encode_request({"n": 7, "data": chunks})
    writer = PipeWriter(pipe, offset=1)
    assert stub == b"\x07" + writer.chunks(chunks) + writer.end()


@pytest.mark.parametrize("piece", [1, 3, 7, 1000])
def test_reader_reassembles_chunks_from_any_pieces(piece: int) -> None:
    pipe = Pipe(WCHAR)
    writer = PipeWriter(pipe, byteorder="big", offset=2)
    stream = writer.chunk("hello") + writer.chunk("\u20ac") + writer.end() + b"rest"
    reader = PipeReader(pipe, byteorder="big", offset=2)
    chunks = []
    for start in range(0, len(stream), piece):
        chunks += reader.feed(stream[start : start + piece])
    assert chunks == ["hello", "\u20ac"]
    assert reader.finished
    assert reader.unused == b"rest"


def test_reader_waits_for_complete_chunks() -> None:
    reader = PipeReader(Pipe(ULONG))
    assert reader.feed(struct.pack("<2I", 2, 1)) == []
    assert reader.feed(struct.pack("<I", 2)) == [[1, 2]]
    assert not reader.finished
    assert reader.feed(bytes(4)) == [] and reader.finished


def test_reader_refuses_oversized_chunks_without_waiting_for_them() -> None:
    reader = PipeReader(Pipe(BYTE), max_chunk_octets=1024)
    with pytest.raises(NdrError) as info:
        reader.feed(struct.pack("<I", 0xFFFFFFFF))
    assert info.value.status == 0x6F7


def test_reader_reports_bad_elements() -> None:
    reader = PipeReader(Pipe(ENUM16))
    with pytest.raises(NdrError) as info:
        reader.feed(struct.pack("<I", 1) + b"\xff\xff")
    assert info.value.status == 1781


def test_whole_message_pipe_decodes_chunks() -> None:
    data = struct.pack("<I", 3) + b"abc" + bytes(1) + struct.pack("<I", 0)
    assert Codec(Pipe(BYTE)).decode(data) == [b"abc"]


def test_pipe_element_type_must_be_fixed_size() -> None:
    with pytest.raises(TypeError):
        PipeWriter(ULONG)  # type: ignore[arg-type]
