"""Typed NDR 2.0 descriptors: what an IDL declaration says, as frozen Python objects.

Purpose: describe a wire type once, as data, so that ``_compile`` can turn it into specialised
encode/decode closures. Nothing here touches bytes.

Rules:
- Descriptors are immutable values (frozen dataclasses): equal descriptors mean equal wire
  formats, and one descriptor may be shared by many parents.
- No strings are evaluated. A correlation (``size_is``, ``length_is``, ``first_is``,
  ``switch_is``) is a :class:`Ref` naming a sibling field of the enclosing struct or a parameter
  of the procedure; it is looked up by name, never parsed as an expression [MS-RPCE §2.2.4.7
  allows C expressions; we support ``name / divide + add``, enough for RPC_UNICODE_STRING].
- Invalid declarations fail here, at construction time (``TypeError``/``ValueError``), never
  while marshalling: a conformant member that is not last [C706 §14.3.7], an empty struct, an
  array of zero-size elements, a pipe of pointers [C706 §14.3, pipes].
- Imports only the standard library.

Spec: [C706 ch.14] NDR; [MS-RPCE §2.2.4] Microsoft extensions (v1_enum, ms_union, wchar_t,
arrays of strings, pointer_default(unique)).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "BOOLEAN",
    "BYTE",
    "CHAR",
    "CONTEXT_HANDLE",
    "DOUBLE",
    "ENUM16",
    "ERROR_STATUS_T",
    "FLOAT",
    "GUID",
    "HYPER",
    "LONG",
    "SHORT",
    "SMALL",
    "UHYPER",
    "ULONG",
    "USHORT",
    "USMALL",
    "V1_ENUM",
    "VOID",
    "WCHAR",
    "ConformantArray",
    "ConformantVaryingArray",
    "ContextHandle",
    "ContextHandleValue",
    "Corr",
    "EncapsulatedUnion",
    "Enum16",
    "Enum32",
    "FixedArray",
    "Guid",
    "Lazy",
    "NdrType",
    "Pipe",
    "Pointer",
    "PointerKind",
    "Primitive",
    "Range",
    "Ref",
    "String",
    "Struct",
    "Union",
    "VaryingArray",
    "VaryingString",
    "Void",
    "full",
    "is_conformant",
    "ref",
    "unique",
]


class NdrType:
    """Base class of every descriptor. Do not instantiate directly."""

    __slots__ = ()


# -- primitives [C706 §14.2] -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Primitive(NdrType):
    """A fixed-size primitive; ``fmt`` is its :mod:`struct` code, alignment equals its size.

    Python values: int for the integer types, bool for boolean, float for float/double,
    ``bytes`` of length 1 for ``char`` and ``str`` of length 1 (one UTF-16 code unit) for
    ``wchar_t`` [MS-RPCE §2.2.4.1.1].
    """

    name: str
    fmt: str
    size: int


BYTE = Primitive("byte", "B", 1)
CHAR = Primitive("char", "c", 1)
SMALL = Primitive("small", "b", 1)
USMALL = Primitive("unsigned small", "B", 1)
BOOLEAN = Primitive("boolean", "?", 1)  # 0 = false, any other octet = true [C706 §14.2]
SHORT = Primitive("short", "h", 2)
USHORT = Primitive("unsigned short", "H", 2)
WCHAR = Primitive("wchar_t", "H", 2)  # an unsigned short on the wire [MS-RPCE §2.2.4.1.1]
LONG = Primitive("long", "i", 4)  # also int, __int32, __int3264 in NDR [MS-RPCE §2.2.4.1]
ULONG = Primitive("unsigned long", "I", 4)
ERROR_STATUS_T = Primitive("error_status_t", "I", 4)
HYPER = Primitive("hyper", "q", 8)
UHYPER = Primitive("unsigned hyper", "Q", 8)
FLOAT = Primitive("float", "f", 4)  # IEEE only; drep float rep must be 0 [C706 §14.2]
DOUBLE = Primitive("double", "d", 8)

_INTEGER_FMTS = frozenset("bBhHiIqQ?")


@dataclass(frozen=True, slots=True)
class Enum16(NdrType):
    """A plain IDL ``enum``: 2 octets on the wire, values 0..32767 [MS-RPCE §2.2.4.11].

    Encoding a value outside that range raises RPC_X_ENUM_VALUE_OUT_OF_RANGE (1781), and so does
    decoding one.
    """


@dataclass(frozen=True, slots=True)
class Enum32(NdrType):
    """A ``[v1_enum]`` enum: a signed 32-bit integer on the wire [MS-RPCE §2.2.4.6]."""


ENUM16 = Enum16()
V1_ENUM = Enum32()


@dataclass(frozen=True, slots=True)
class Guid(NdrType):
    """``GUID``/``UUID``: ``{u32 Data1; u16 Data2; u16 Data3; byte Data4[8]}``, alignment 4.

    The integer fields follow the drep byte order, so little-endian is ``uuid.bytes_le``.
    Python value: :class:`uuid.UUID`.
    """


GUID = Guid()


@dataclass(frozen=True, slots=True)
class ContextHandleValue:
    """The 20-octet wire form of a context handle [MS-RPCE §2.2.1.1.4]: an opaque token.

    All zeros is the NULL handle: what an [in] NULL handle and a closed [out] handle look like.
    """

    attributes: int
    uuid: uuid.UUID

    NULL: ClassVar[ContextHandleValue]

    @property
    def is_null(self) -> bool:
        return self.attributes == 0 and self.uuid.int == 0


ContextHandleValue.NULL = ContextHandleValue(0, uuid.UUID(int=0))


@dataclass(frozen=True, slots=True)
class ContextHandle(NdrType):
    """``ndr_context_handle {u32 attributes; GUID uuid}``: 20 octets, alignment 4.

    Python value: :class:`ContextHandleValue`. ``name`` is the ``[context_handle]`` typedef's
    name: the server runtime runs that type's rundown routine for handles left open when their
    association ends; an unnamed handle (``CONTEXT_HANDLE``) has no rundown
    [MSL:server-context-run-down-routine].
    """

    name: str = ""


CONTEXT_HANDLE = ContextHandle()


@dataclass(frozen=True, slots=True)
class Void(NdrType):
    """An empty union arm (``[case(n)] ;``): no wire representation, Python value ``None``."""


VOID = Void()


@dataclass(frozen=True, slots=True)
class Range(NdrType):
    """An integer primitive limited by ``[range(low, high)]`` [MS-RPCE §2.2.4.14].

    Out-of-range values fail to encode and fail to decode (RPC_X_BAD_STUB_DATA), as the strict
    consistency checks ask [MS-RPCE §3.1.1.5.3.2.2.4].
    """

    base: Primitive
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.base.fmt not in _INTEGER_FMTS or self.base.fmt == "?":
            raise TypeError(f"[range] applies to integer primitives, not {self.base.name}")
        if self.low > self.high:
            raise ValueError(f"empty range {self.low}..{self.high}")


# -- correlations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """A correlation: the value of field/parameter ``name``, then ``// divide + add``.

    ``Ref("Length", divide=2)`` is IDL ``length_is(Length/2)``; ``Ref("n", add=1)`` is
    ``max_is(n)`` expressed as a size. When the named value is not available (for example the
    [in] parameter ``max_towers`` while decoding a response without the request), the count on the
    wire is used unchecked; otherwise the two must agree [MS-RPCE §3.1.1.5.3.1].
    """

    name: str
    divide: int = 1
    add: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a correlation must name a field or parameter")
        if self.divide < 1:
            raise ValueError("divide must be >= 1")


Corr = Ref | str | None
"""What ``size_is=`` and friends accept: a :class:`Ref`, a bare name, or None (no correlation)."""


def _corr(value: Corr) -> Ref | None:
    if value is None or isinstance(value, Ref):
        return value
    if isinstance(value, str):
        return Ref(value)
    raise TypeError(f"a correlation is a field name or a Ref, not {value!r}")


# -- arrays and strings [C706 §14.3.3-14.3.5] ------------------------------------------------


def _check_element(element: NdrType, what: str) -> None:
    if not isinstance(element, NdrType):
        raise TypeError(f"{what} element must be an NdrType, not {element!r}")
    if isinstance(element, Void | Pipe):
        raise TypeError(f"{what} of {type(element).__name__} is not a valid NDR type")
    if isinstance(element, Struct) and is_conformant(element):
        raise TypeError(f"{what} of a conformant structure is not allowed [C706 §14.3.7]")


@dataclass(frozen=True, slots=True)
class FixedArray(NdrType):
    """``T x[count]``: ``count`` elements, no header. ``FixedArray(FixedArray(T, m), n)`` is
    ``T x[n][m]``. Values: ``bytes`` for byte/char elements, ``str`` for wchar_t, else a list.
    """

    element: NdrType
    count: int

    def __post_init__(self) -> None:
        _check_element(self.element, "fixed array")
        if isinstance(self.element, ConformantArray | ConformantVaryingArray | String):
            raise TypeError("only the first dimension of an array may be conformant")
        if self.count < 0:
            raise ValueError("array count must be >= 0")


@dataclass(frozen=True, init=False, slots=True)
class ConformantArray(NdrType):
    """``[size_is(n)] T x[]``: ``u32 max_count`` then ``max_count`` elements [C706 §14.3.3].

    A ConformantArray whose element is a ConformantArray is one multidimensional array
    (``[size_is(n, m)] T x[][]``): all max_counts come first, then the elements in row-major
    order [C706 §14.3.3]; its value is a list of rows of equal length.
    """

    element: NdrType
    size_is: Ref | None

    def __init__(self, element: NdrType, size_is: Corr = None) -> None:
        _check_element(element, "conformant array")
        if isinstance(element, ConformantVaryingArray | String):
            raise TypeError("mix of conformant and conformant-varying dimensions")
        object.__setattr__(self, "element", element)
        object.__setattr__(self, "size_is", _corr(size_is))


@dataclass(frozen=True, init=False, slots=True)
class VaryingArray(NdrType):
    """``[length_is(k)] T x[count]``: ``u32 offset, u32 actual_count`` then the transmitted
    elements [C706 §14.3.3]. The value holds only the transmitted elements.
    """

    element: NdrType
    count: int
    length_is: Ref | None
    first_is: Ref | None

    def __init__(
        self, element: NdrType, count: int, length_is: Corr = None, first_is: Corr = None
    ) -> None:
        _check_element(element, "varying array")
        if isinstance(element, ConformantArray | ConformantVaryingArray | String):
            raise TypeError("only the first dimension of an array may be conformant")
        if count < 0:
            raise ValueError("array count must be >= 0")
        object.__setattr__(self, "element", element)
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "length_is", _corr(length_is))
        object.__setattr__(self, "first_is", _corr(first_is))


@dataclass(frozen=True, init=False, slots=True)
class ConformantVaryingArray(NdrType):
    """``[size_is(n), length_is(k)] T x[]``: ``max_count, offset, actual_count``, elements.

    Nested ConformantVaryingArrays form one multidimensional array: every max_count first, then
    every (offset, actual_count) pair, then the elements [C706 §14.3.3].
    """

    element: NdrType
    size_is: Ref | None
    length_is: Ref | None
    first_is: Ref | None

    def __init__(
        self,
        element: NdrType,
        size_is: Corr = None,
        length_is: Corr = None,
        first_is: Corr = None,
    ) -> None:
        _check_element(element, "conformant varying array")
        if isinstance(element, ConformantArray | String):
            raise TypeError("mix of conformant and conformant-varying dimensions")
        if isinstance(element, ConformantVaryingArray) and element.first_is is not None:
            raise TypeError("first_is is supported on one-dimensional arrays only")
        object.__setattr__(self, "element", element)
        object.__setattr__(self, "size_is", _corr(size_is))
        object.__setattr__(self, "length_is", _corr(length_is))
        object.__setattr__(self, "first_is", _corr(first_is))


def _check_char(char: Primitive) -> None:
    if char not in (CHAR, WCHAR):
        raise TypeError("[string] applies to char or wchar_t elements")


@dataclass(frozen=True, init=False, slots=True)
class String(NdrType):
    """``[string] char *`` / ``[string] wchar_t *``: a conformant varying array whose counts
    include the terminating NUL, offset 0 [C706 §14.3.4], [MS-RPCE §2.2.4.1.1].

    Python value: ``str`` without the terminator (wchar_t as UTF-16 code units, lone surrogates
    kept; char as Latin-1, i.e. octet-transparent). With ``size_is`` the max_count comes from the
    correlation (``[size_is(n), string]``), otherwise it equals actual_count.
    """

    char: Primitive
    size_is: Ref | None

    def __init__(self, char: Primitive = WCHAR, size_is: Corr = None) -> None:
        _check_char(char)
        object.__setattr__(self, "char", char)
        object.__setattr__(self, "size_is", _corr(size_is))


@dataclass(frozen=True, slots=True)
class VaryingString(NdrType):
    """``[string] char x[count]``: a varying (not conformant) string: ``offset, actual_count``,
    characters incl. NUL, at most ``count`` of them (e.g. the EPM annotation, char[64])."""

    char: Primitive
    count: int

    def __post_init__(self) -> None:
        _check_char(self.char)
        if self.count < 1:
            raise ValueError("a varying string needs room for its terminator")


# -- structures, pointers, unions --------------------------------------------------------------


@dataclass(frozen=True, init=False, slots=True)
class Struct(NdrType):
    """``struct {...}``: members in order, each aligned; the struct is aligned to its largest
    member alignment [C706 §14.3.7]. Python value: ``dict`` (field name -> value).

    A conformant member (conformant array, conformant string, or conformant struct) may only be
    the last one; the struct is then conformant and its max_count(s) are hoisted to its start
    [C706 §14.3.7.1-2].
    """

    fields: tuple[tuple[str, NdrType], ...]
    name: str

    def __init__(
        self, fields: Iterable[tuple[str, NdrType]] | Mapping[str, NdrType], name: str = ""
    ) -> None:
        items = tuple(fields.items()) if isinstance(fields, Mapping) else tuple(fields)
        if not items:
            raise ValueError("an NDR structure needs at least one member")
        seen: set[str] = set()
        for position, (field_name, field_type) in enumerate(items):
            if not isinstance(field_type, NdrType):
                raise TypeError(f"field {field_name!r} must be an NdrType, not {field_type!r}")
            if field_name in seen:
                raise ValueError(f"duplicate field name {field_name!r}")
            seen.add(field_name)
            if isinstance(field_type, Void | Pipe):
                raise TypeError(f"field {field_name!r}: {type(field_type).__name__} not allowed")
            if position != len(items) - 1 and is_conformant(field_type):
                raise TypeError(f"conformant field {field_name!r} must be the last member")
        object.__setattr__(self, "fields", items)
        object.__setattr__(self, "name", name)


PointerKind = Literal["ref", "unique", "full"]


@dataclass(frozen=True, slots=True)
class Pointer(NdrType):
    """``[ref]``, ``[unique]`` (the MS default [MS-RPCE §2.2.4.9]) or ``[ptr]`` (full) pointer.

    Python value: the pointee, or ``None`` for NULL. Top-level (parameter) ref pointers have no
    wire form; the other pointers are a u32 referent id, and the referents of embedded pointers
    are deferred [C706 §14.3.10-14.3.12]. Full pointers alias by Python object identity.
    """

    target: NdrType
    kind: PointerKind = "unique"

    def __post_init__(self) -> None:
        if not isinstance(self.target, NdrType):
            raise TypeError(f"pointer target must be an NdrType, not {self.target!r}")
        if isinstance(self.target, Void | Pipe):
            raise TypeError(f"pointer to {type(self.target).__name__} is not allowed")
        if self.kind not in ("ref", "unique", "full"):
            raise ValueError(f"unknown pointer kind {self.kind!r}")


def unique(target: NdrType) -> Pointer:
    """``[unique] T *``."""
    return Pointer(target, "unique")


def ref(target: NdrType) -> Pointer:
    """``[ref] T *``."""
    return Pointer(target, "ref")


def full(target: NdrType) -> Pointer:
    """``[ptr] T *`` (full pointer)."""
    return Pointer(target, "full")


def _discriminant(switch_type: NdrType) -> None:
    integer = isinstance(switch_type, Primitive) and switch_type.fmt in _INTEGER_FMTS
    if not (integer or isinstance(switch_type, Enum16 | Enum32)):
        raise TypeError(f"a union discriminant must be an integer type, not {switch_type!r}")


def _arms(arms: Mapping[int, NdrType]) -> tuple[tuple[int, NdrType], ...]:
    items = tuple(arms.items())
    for tag, arm in items:
        if not isinstance(tag, int):
            raise TypeError(f"union case labels are integers, not {tag!r}")
        if not isinstance(arm, NdrType) or isinstance(arm, Pipe):
            raise TypeError(f"union arm {tag} must be an NdrType, not {arm!r}")
        if is_conformant(arm):
            raise TypeError(f"union arm {tag} is conformant; use a pointer to it")
    return items


@dataclass(frozen=True, init=False, slots=True)
class Union(NdrType):
    """A non-encapsulated union ``[switch_type(T), switch_is(d)] union {...}`` [C706 §14.3.8].

    The discriminant is marshalled again as the first part of the union, in addition to the
    field/parameter ``d`` [MS-RPCE §2.2.4.8]; it is aligned to its own type. By default the arm
    is then aligned to its own type, as MIDL (without ``/ms_union``), Samba pidl and Wine widl
    do; ``ms_union=True`` selects MIDL's legacy ``/ms_union`` rule, every arm aligned to the
    largest arm alignment [MS-RPCE §2.2.4.5]. Samba's rpcecho TestCall2/TestEnum interoperate
    only with the default (docs/design.md §7). An empty arm adds no padding.
    Python value: ``(tag, arm_value)``. An unknown tag without ``default`` is
    RPC_S_INVALID_TAG (1733).
    """

    switch_type: NdrType
    arms: tuple[tuple[int, NdrType], ...]
    default: NdrType | None
    switch_is: Ref | None
    ms_union: bool

    def __init__(
        self,
        switch_type: NdrType,
        arms: Mapping[int, NdrType],
        *,
        default: NdrType | None = None,
        switch_is: Corr = None,
        ms_union: bool = False,
    ) -> None:
        _discriminant(switch_type)
        object.__setattr__(self, "switch_type", switch_type)
        object.__setattr__(self, "arms", _arms(arms))
        if default is not None and (not isinstance(default, NdrType) or is_conformant(default)):
            raise TypeError(f"invalid default arm {default!r}")
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "switch_is", _corr(switch_is))
        object.__setattr__(self, "ms_union", ms_union)


@dataclass(frozen=True, init=False, slots=True)
class EncapsulatedUnion(NdrType):
    """``union switch (T d) {...}``: a struct of the discriminant and the union, aligned to the
    larger of the two; the arm is aligned to the largest arm [C706 §14.3.8].
    Python value: ``(tag, arm_value)``.
    """

    switch_type: NdrType
    arms: tuple[tuple[int, NdrType], ...]
    default: NdrType | None

    def __init__(
        self,
        switch_type: NdrType,
        arms: Mapping[int, NdrType],
        *,
        default: NdrType | None = None,
    ) -> None:
        _discriminant(switch_type)
        object.__setattr__(self, "switch_type", switch_type)
        object.__setattr__(self, "arms", _arms(arms))
        if default is not None and (not isinstance(default, NdrType) or is_conformant(default)):
            raise TypeError(f"invalid default arm {default!r}")
        object.__setattr__(self, "default", default)


@dataclass(frozen=True, slots=True)
class Pipe(NdrType):
    """``pipe T``: a stream of chunks, each ``u32 count`` + elements, ended by a 0 chunk
    [C706 §14.3, pipes]. Elements must be fixed-size: no pointers, no conformant or varying parts.
    Python value (whole-message mode): a list of chunks, each ``bytes``/``str``/list like an array.
    """

    element: NdrType

    def __post_init__(self) -> None:
        if not _fixed_size(self.element):
            raise TypeError(f"pipe elements must be fixed-size types, not {self.element!r}")


@dataclass(frozen=True, slots=True)
class Lazy(NdrType):
    """A forward reference for recursive types (a linked list's ``next``): ``resolve()`` returns
    the real descriptor when it is compiled. Only valid as a :class:`Pointer` target."""

    resolve: Callable[[], NdrType]
    name: str = ""


# -- predicates ------------------------------------------------------------------------------


def is_conformant(t: NdrType) -> bool:
    """True when ``t`` carries a max_count that a containing struct must hoist [C706 §14.3.7]."""
    if isinstance(t, ConformantArray | ConformantVaryingArray | String):
        return True
    if isinstance(t, Struct):
        return is_conformant(t.fields[-1][1])
    return False


def _fixed_size(t: NdrType) -> bool:
    if isinstance(t, Primitive | Enum16 | Enum32 | Guid | ContextHandle | Range):
        return True
    if isinstance(t, FixedArray):
        return t.count > 0 and _fixed_size(t.element)
    if isinstance(t, Struct):
        return all(_fixed_size(field_type) for _, field_type in t.fields)
    return False
