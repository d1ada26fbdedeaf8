"""Server-side rules that need no connection state: context negotiation and fault statuses.

Presentation-context negotiation [MS-RPCE §3.3.1.5.3, §3.3.1.5.6], [C706 §12.6.4.3], spec B4:
- One result per proposed element, in the same order.
- Unknown abstract syntax (UUID not registered, or no compatible version, see
  :func:`select_interface`) -> provider_rejection / abstract_syntax_not_supported (rpc #47).
- Known interface: the element proposing NDR 2.0 is accepted (the only transfer syntax
  winaio implements, so it is also the "preferred" one), at most one element per abstract
  syntax; every other element -> provider_rejection / proposed_transfer_syntaxes_not_supported
  with a zero transfer syntax (rpc #48). All rejected is still a bind_ack, not a bind_nak.
- Bind time feature negotiation: an element whose *first* transfer syntax is
  6cb71c2c-9812-4540-<bitmask> v1.0 is answered negotiate_ack, reason = the client's bitmask &
  the features we implement (KeepConnectionOnOrphan only: the server never closes on orphan;
  there is no security context multiplexing without security), transfer syntax zero (rpc #49).
- Refused as a whole (:class:`NegotiationError`; bind_nak reason 0 for a bind, fault +
  disconnect for an alter_context, as Samba does): an element without transfer syntaxes, a
  p_cont_id proposed twice, two feature-negotiation elements, or a p_cont_id that is already
  bound to a different interface.

Fault statuses [MS-RPCE §3.3.3.5.1], spec B8: see :func:`fault_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

from ...codes import NcaStatus, WinError, rpc_to_nca_status
from ...errors import LocalProtocolError
from .._pdu import (
    NDR20_SYNTAX,
    NULL_SYNTAX,
    BindTimeFeatures,
    ContDefResult,
    ContextElement,
    ContextResult,
    ProviderReason,
    SyntaxId,
    bind_time_features_of,
)
from ._base import FORBIDDEN_FAULT_STATUSES, InterfaceRegistry
from ._events import AcceptedContext

__all__ = [
    "SUPPORTED_BIND_TIME_FEATURES",
    "NegotiationError",
    "fault_status",
    "negotiate_contexts",
    "select_interface",
]

IfT = TypeVar("IfT")

#: Bind time features this server implements [MS-RPCE §2.2.2.15].
SUPPORTED_BIND_TIME_FEATURES: Final = int(BindTimeFeatures.KEEP_CONNECTION_ON_ORPHAN_SUPPORTED)
_STATUS_ACCESS_VIOLATION: Final = 0xC0000005
_REJECT_ABSTRACT: Final = ContextResult(
    ContDefResult.PROVIDER_REJECTION, ProviderReason.ABSTRACT_SYNTAX_NOT_SUPPORTED, NULL_SYNTAX
)
_REJECT_TRANSFER: Final = ContextResult(
    ContDefResult.PROVIDER_REJECTION,
    ProviderReason.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED,
    NULL_SYNTAX,
)
_ACCEPT_NDR: Final = ContextResult(ContDefResult.ACCEPTANCE, 0, NDR20_SYNTAX)


class NegotiationError(Exception):
    """A bind/alter_context context list that must be refused as a whole."""


def select_interface(versions: Mapping[tuple[int, int], IfT], offered: SyntaxId) -> IfT | None:
    """Pick the registered interface compatible with the client's abstract syntax.

    Compatible = same UUID (already matched by the lookup), same major version, client minor
    <= server minor (C706 compatibility rule, spec A11). An exact version wins; otherwise the
    highest compatible minor. None if nothing is compatible (rpc #50).
    """
    exact = versions.get((offered.major, offered.minor))
    if exact is not None:
        return exact
    best: tuple[int, IfT] | None = None
    for (major, minor), token in versions.items():
        if major == offered.major and minor >= offered.minor and (best is None or minor > best[0]):
            best = (minor, token)
    return None if best is None else best[1]


def negotiate_contexts(
    registry: InterfaceRegistry[IfT],
    existing: Mapping[int, AcceptedContext[IfT]],
    elements: tuple[ContextElement, ...],
) -> tuple[tuple[ContextResult, ...], tuple[AcceptedContext[IfT], ...], int | None]:
    """Answer a p_cont_list: (results in order, newly accepted contexts, feature bitmask or
    None if no feature element was offered). ``existing`` are the connection's contexts; an
    element re-proposing one of them with the same interface is accepted again (not new)."""
    results: list[ContextResult] = []
    accepted: list[AcceptedContext[IfT]] = []
    features: int | None = None
    seen_ids: set[int] = set()
    chosen: set[SyntaxId] = set()
    for el in elements:
        if not el.transfer_syntaxes:
            raise NegotiationError(f"p_cont_id {el.p_cont_id} has no transfer syntax")
        if el.p_cont_id in seen_ids:
            raise NegotiationError(f"p_cont_id {el.p_cont_id} proposed twice")
        seen_ids.add(el.p_cont_id)
        bitmask = bind_time_features_of(el.transfer_syntaxes[0])  # only the first, like Samba
        if bitmask is not None:
            if features is not None:
                raise NegotiationError("more than one bind time feature element")
            features = bitmask & SUPPORTED_BIND_TIME_FEATURES
            results.append(ContextResult(ContDefResult.NEGOTIATE_ACK, features, NULL_SYNTAX))
            continue
        old = existing.get(el.p_cont_id)
        if old is not None and old.abstract_syntax != el.abstract_syntax:
            raise NegotiationError(f"p_cont_id {el.p_cont_id} is bound to another interface")
        token = select_interface(registry.lookup(el.abstract_syntax.uuid), el.abstract_syntax)
        if token is None:
            results.append(_REJECT_ABSTRACT)
        elif NDR20_SYNTAX not in el.transfer_syntaxes or el.abstract_syntax in chosen:
            results.append(_REJECT_TRANSFER)
        else:
            chosen.add(el.abstract_syntax)
            results.append(_ACCEPT_NDR)
            if old is None:
                accepted.append(
                    AcceptedContext(el.p_cont_id, el.abstract_syntax, NDR20_SYNTAX, token)
                )
    return tuple(results), tuple(accepted), features


def fault_status(status: int) -> int:
    """The status to put in a fault PDU for an RPC_STATUS / exception code (rpc #18, #61).

    Maps RPC_STATUS values to nca_s_* ([wine:rpc_message.c RPC2NCA_STATUS] via
    ``codes.rpc_to_nca_status``); negative codes (HRESULTs held in a signed int) are taken
    modulo 2**32; STATUS_ACCESS_VIOLATION becomes ERROR_NOACCESS (998) as in Wine; 0 and the
    other codes a server must never send become nca_s_fault_unspec.
    """
    if not -0x80000000 <= status <= 0xFFFFFFFF:
        raise LocalProtocolError(f"fault status {status} does not fit in 32 bits")
    wire = rpc_to_nca_status(status & 0xFFFFFFFF)
    if wire == _STATUS_ACCESS_VIOLATION:
        return int(WinError.ERROR_NOACCESS)
    if wire in FORBIDDEN_FAULT_STATUSES:
        return int(NcaStatus.NCA_S_FAULT_UNSPEC)
    return wire
