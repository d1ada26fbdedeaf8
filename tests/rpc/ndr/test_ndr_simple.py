"""The struct-based codecs of simple procedures (``_ndr/_simple.py``) against the generic ones.

Equivalence rule: whenever a fast codec returns a value it is exactly what the generic codec
returns for the same input; whenever the generic codec raises, the fast one returns None (the
caller then takes the generic path). And on well-formed input the fast codec does answer.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio.errors import NdrError
from winaio.rpc._ndr import (
    BOOLEAN,
    BYTE,
    CHAR,
    DOUBLE,
    FLOAT,
    HYPER,
    IN,
    IN_OUT,
    LONG,
    OUT,
    SHORT,
    SMALL,
    UHYPER,
    ULONG,
    USHORT,
    USMALL,
    V1_ENUM,
    WCHAR,
    ConformantArray,
    FixedArray,
    NdrType,
    Param,
    Pipe,
    Procedure,
    Ref,
    String,
    ref,
    unique,
)
from winaio.rpc._ndr._simple import simple_decoder, simple_encoder

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS: list[NdrType] = [
    BYTE, CHAR, SMALL, USMALL, BOOLEAN, SHORT, USHORT, LONG, ULONG, HYPER, UHYPER, FLOAT, DOUBLE,
    V1_ENUM,
]  # fmt: skip
INTEGERS = [t for t in SCALARS if t not in (CHAR, FLOAT, DOUBLE)]


def scalar_values(t: NdrType) -> st.SearchStrategy[Any]:
    if t is CHAR:
        return st.binary(min_size=1, max_size=1)
    if t is BOOLEAN:
        return st.booleans()
    if t is FLOAT:
        return st.floats(width=32, allow_nan=False)
    if t is DOUBLE:
        return st.floats(allow_nan=False)
    if t is V1_ENUM:
        return st.integers(-(2**31), 2**31 - 1)
    fmt = {"b": 8, "B": 8, "h": 16, "H": 16, "i": 32, "I": 32, "q": 64, "Q": 64}[t.fmt]  # type: ignore[attr-defined]
    if t.fmt.islower():  # type: ignore[attr-defined]
        return st.integers(-(2 ** (fmt - 1)), 2 ** (fmt - 1) - 1)
    return st.integers(0, 2**fmt - 1)


@st.composite
def simple_params(draw: Any, direction: Any, prefix: str) -> list[Param]:
    """A list of simple parameters; arrays correlate with an integer parameter or nothing."""
    params: list[Param] = []
    for i in range(draw(st.integers(0, 5))):
        name = f"{prefix}{i}"
        ints = [p.name for p in params if p.type in INTEGERS]
        if draw(st.booleans()) or not ints:
            t = draw(st.sampled_from(SCALARS))
            if t is not BOOLEAN and draw(st.integers(0, 5)) == 0:
                t = ref(t)  # (a [ref] boolean is not simple: struct would pack None as false)
        else:
            element = draw(st.sampled_from([BYTE, USMALL, CHAR]))
            size_is: Any = None
            if draw(st.integers(0, 3)):
                size_is = draw(st.sampled_from(ints))
                if draw(st.integers(0, 3)) == 0:
                    size_is = Ref(
                        size_is, divide=draw(st.integers(1, 3)), add=draw(st.integers(0, 2))
                    )
            t = ConformantArray(element, size_is=size_is)
        params.append(Param(name, t, direction))
    return params


def base_of(t: NdrType) -> NdrType:
    return t.target if hasattr(t, "target") else t  # type: ignore[attr-defined]


@st.composite
def values_for(draw: Any, params: list[Param], scope: dict[str, Any]) -> dict[str, Any]:
    """Values satisfying every correlation (arrays sized from their correlated integer)."""
    values: dict[str, Any] = {}
    for p in params:
        t = base_of(p.type)
        if isinstance(t, ConformantArray):
            corr = t.size_is
            if corr is not None:
                source = values.get(corr.name, scope.get(corr.name))
                if not isinstance(source, int) or source < 0:
                    n = draw(st.integers(0, 40))
                else:
                    n = source // corr.divide + corr.add
                    if n > 200:
                        n = -1
            else:
                n = draw(st.integers(0, 40))
            values[p.name] = draw(st.binary(min_size=n, max_size=n)) if n >= 0 else None
        else:
            base = t
            if (
                base in INTEGERS
                and base not in (BOOLEAN,)
                and any(
                    isinstance(base_of(q.type), ConformantArray)
                    and base_of(q.type).size_is is not None  # type: ignore[attr-defined]
                    and base_of(q.type).size_is.name == p.name  # type: ignore[attr-defined]
                    for q in params
                )
            ):
                values[p.name] = draw(st.integers(0, 60))  # a size: keep it small
            else:
                values[p.name] = draw(scalar_values(base))
    if any(v is None for v in values.values()):
        # An impossible size (say a negative one): fall back to empty arrays and zero sizes.
        return {
            p.name: (b"" if isinstance(base_of(p.type), ConformantArray) else 0) for p in params
        }
    return values


def mutate(data: Any, stub: bytes) -> bytes:
    draw = data.draw
    choice = draw(st.integers(0, 4))
    if choice == 0 or not stub:
        return stub
    if choice == 1:
        return stub[: draw(st.integers(0, len(stub)))]
    if choice == 2:
        return stub + draw(st.binary(max_size=8))
    pos = draw(st.integers(0, len(stub) - 1))
    return stub[:pos] + bytes([draw(st.integers(0, 255))]) + stub[pos + 1 :]


def generic_decode(proc: Procedure, stub: bytes) -> list[Any] | None:
    try:
        scope = proc.decode_request(stub)
    except NdrError:
        return None
    return [scope[p.name] for p in proc.in_params]


@SETTINGS
@given(st.data())
def test_decoder_agrees_with_the_generic_decoder(data: Any) -> None:
    params = data.draw(simple_params(IN, "i"))
    proc = Procedure("P", 0, params)
    decode, _ = proc.simple_codecs()
    assert decode is not None
    values = data.draw(values_for(params, {}))
    stub = proc.encode_request(values)
    # Well-formed input: the fast decoder answers, with the generic decoder's values.
    pad = data.draw(st.binary(max_size=9))
    buf = pad + stub + data.draw(st.binary(max_size=9))
    got = decode(buf, len(pad), len(pad) + len(stub))
    assert got is not None
    assert list(got) == generic_decode(proc, stub)
    # Anything else: the same values or None, never another answer, never an exception.
    bad = mutate(data, stub)
    got = decode(pad + bad + b"\xff" * 16, len(pad), len(pad) + len(bad))
    expected = generic_decode(proc, bad)
    if got is not None:  # (repr: a mutated double may be a NaN)
        assert expected is not None and repr(list(got)) == repr(expected)


@SETTINGS
@given(st.data())
def test_encoder_agrees_with_the_generic_encoder(data: Any) -> None:
    ins = data.draw(simple_params(IN, "i"))
    outs = data.draw(simple_params(OUT, "o"))
    returns = data.draw(st.sampled_from([None, *SCALARS]))
    proc = Procedure("P", 0, ins + outs, returns=returns)
    _, encode = proc.simple_codecs()
    assert encode is not None
    in_values = data.draw(values_for(ins, {}))
    out_values = data.draw(values_for(outs, in_values))
    names = [p.name for p in outs]
    if returns is not None:
        out_values["return"] = data.draw(scalar_values(returns))
        names.append("return")
    corrupt = data.draw(st.integers(0, 3)) == 0 and bool(names)
    if corrupt:
        # A wrong value: a string, an int for an array, a bytearray, a too long array...
        name = data.draw(st.sampled_from(names))
        out_values[name] = data.draw(
            st.one_of(
                st.text(max_size=3),
                st.integers(-(2**70), 2**70),  # an int for an array: NdrError, no bytes(n)
                st.none(),
                st.binary(max_size=70).map(bytearray),
                st.binary(max_size=70),
            )
        )
    ins_seq = [in_values[p.name] for p in ins]
    seq = [out_values[n] for n in names]
    fast = encode(seq[0] if len(seq) == 1 else seq, ins_seq)
    try:
        expected: bytes | None = proc.encode_response({**in_values, **out_values})
    except NdrError:
        expected = None
    if fast is not None:
        assert fast == expected
    elif not corrupt:
        # Declining (the generic path decides) is for unusual values only: with well-typed
        # values the fast encoder answers whenever the generic one does.
        assert expected is None


def test_in_out_parameter_correlation_uses_the_output_value() -> None:
    proc = Procedure(
        "P",
        0,
        [
            Param("n", ULONG, IN_OUT),
            Param("data", ConformantArray(BYTE, size_is="n"), OUT),
        ],
    )
    _, encode = proc.simple_codecs()
    assert encode is not None
    assert encode([3, b"abc"], [7]) == proc.encode_response({"n": 3, "data": b"abc"})
    assert encode([7, b"abc"], [3]) is None  # the generic encoder refuses it too
    with pytest.raises(NdrError):
        proc.encode_response({"n": 7, "data": b"abc"})


@pytest.mark.parametrize(
    "t",
    [
        WCHAR,
        String(CHAR),
        unique(ULONG),
        ref(BOOLEAN),
        Pipe(ULONG),
        ConformantArray(ULONG, size_is="n"),
    ],
)
def test_other_types_are_not_simple(t: NdrType) -> None:
    assert simple_decoder(["n", "x"], [ULONG, t]) is None
    assert simple_encoder(["n", "x"], [ULONG, t], []) is None


def test_echo_data_shape() -> None:
    proc = Procedure(
        "EchoData",
        1,
        [
            Param("len", ULONG),
            Param("in_data", ConformantArray(BYTE, size_is="len")),
            Param("out_data", ConformantArray(BYTE, size_is="len"), OUT),
        ],
    )
    decode, encode = proc.simple_codecs()
    assert decode is not None and encode is not None
    stub = struct.pack("<II", 3, 3) + b"abc"
    assert decode(b"xx" + stub, 2, 2 + len(stub)) == (3, b"abc")
    assert decode(stub, 0, len(stub) - 1) is None  # truncated
    assert decode(struct.pack("<II", 3, 2) + b"ab", 0, 10) is None  # max_count != len
    assert encode(b"abc", (3, b"abc")) == struct.pack("<I", 3) + b"abc"
    assert encode(b"ab", (3, b"abc")) is None  # size_is(len) says 3


@pytest.mark.parametrize("value", [25_278_966_234, 2**40, 7, -1, True])
def test_an_int_for_an_octet_array_is_refused_without_allocating(value: int) -> None:
    # Regression (Hypothesis, the coordinator's report): bytes(25278966234) tried to allocate
    # 25 GB in the generic encoder. An int is not an octet array: NdrError, at once.
    proc = Procedure("P", 0, [Param("o", ConformantArray(BYTE), OUT)])
    with pytest.raises(NdrError):
        proc.encode_response({"o": value})
    fixed = Procedure("F", 0, [Param("o", FixedArray(BYTE, 4), OUT)])
    with pytest.raises(NdrError):
        fixed.encode_response({"o": value})
    _, encode = proc.simple_codecs()
    assert encode is not None and encode(value, ()) is None  # the fast one declines
