"""The contract lifecycle: one transitions table and the only code that writes ``status``.

::

    draft ──submit──> pending_approval ──approve──> approved
      │                     └──reject──> draft
      └──────────────send (also from approved)──────────────> sent
    sent ──sign_partially──> signing ──complete──> completed ──lapse──> lapsed
    sent/signing ──decline──> declined ──void──> voided
    draft/pending_approval/approved/sent/signing ──void──> voided
    sent/signing ──expire──> expired

``transition`` is a compare-and-set ``UPDATE … WHERE id = :id AND status = :from``: when two
requests race, exactly one wins and the other gets ``InvalidTransition``; the audit event is
written in the same transaction as the change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts.models import Contract
from econtract.errors import InvalidTransition


class Status(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENT = "sent"
    SIGNING = "signing"
    COMPLETED = "completed"
    DECLINED = "declined"
    VOIDED = "voided"
    EXPIRED = "expired"
    LAPSED = "lapsed"


class Event(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    SEND = "send"
    SIGN_PARTIALLY = "sign_partially"
    COMPLETE = "complete"
    DECLINE = "decline"
    VOID = "void"
    EXPIRE = "expire"
    LAPSE = "lapse"


S, E = Status, Event
TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (S.DRAFT, E.SUBMIT): S.PENDING_APPROVAL,
    (S.PENDING_APPROVAL, E.APPROVE): S.APPROVED,
    (S.PENDING_APPROVAL, E.REJECT): S.DRAFT,
    (S.DRAFT, E.SEND): S.SENT,
    (S.APPROVED, E.SEND): S.SENT,
    (S.SENT, E.SIGN_PARTIALLY): S.SIGNING,
    (S.SIGNING, E.SIGN_PARTIALLY): S.SIGNING,
    (S.SENT, E.COMPLETE): S.COMPLETED,
    (S.SIGNING, E.COMPLETE): S.COMPLETED,
    (S.SENT, E.DECLINE): S.DECLINED,
    (S.SIGNING, E.DECLINE): S.DECLINED,
    (S.SENT, E.EXPIRE): S.EXPIRED,
    (S.SIGNING, E.EXPIRE): S.EXPIRED,
    (S.COMPLETED, E.LAPSE): S.LAPSED,
    **{(state, E.VOID): S.VOIDED for state in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.SENT,
                                              S.SIGNING, S.DECLINED)},
}

EVENT_KINDS: dict[Event, EventKind] = {
    E.SUBMIT: EventKind.CONTRACT_SUBMITTED, E.APPROVE: EventKind.CONTRACT_APPROVED,
    E.REJECT: EventKind.CONTRACT_REJECTED, E.SEND: EventKind.CONTRACT_SENT,
    E.SIGN_PARTIALLY: EventKind.CONTRACT_SIGNED_PARTIALLY,
    E.COMPLETE: EventKind.CONTRACT_COMPLETED, E.DECLINE: EventKind.CONTRACT_DECLINED,
    E.VOID: EventKind.CONTRACT_VOIDED, E.EXPIRE: EventKind.CONTRACT_EXPIRED,
    E.LAPSE: EventKind.CONTRACT_LAPSED,
}

SIGNING_OPEN = frozenset({S.SENT, S.SIGNING})
"""Invitations, reminders and signing links are alive only here."""

EDITABLE = frozenset({S.DRAFT})
"""Authoring edits are allowed only here: once a contract leaves draft, what is signed is frozen."""

def allowed_events(status: Status) -> list[Event]:
    return [event for (source, event) in TRANSITIONS if source is status]


def target_of(status: Status, event: Event) -> Status:
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(
            f"A contract that is {status.value} cannot be {_past(event)}.",
            details={"status": status.value, "event": event.value}) from None


def _past(event: Event) -> str:
    return {E.SUBMIT: "submitted for approval", E.APPROVE: "approved", E.REJECT: "rejected",
            E.SEND: "sent", E.SIGN_PARTIALLY: "signed", E.COMPLETE: "completed",
            E.DECLINE: "declined", E.VOID: "voided", E.EXPIRE: "expired",
            E.LAPSE: "marked lapsed"}[event]


def transition(session: Session, ctx: Ctx, contract: Contract, event: Event,
               data: dict[str, Any] | None = None) -> Status:
    """Move ``contract`` along ``event`` atomically and audit it; returns the new status."""
    source = Status(contract.status)
    target = target_of(source, event)
    now = ctx.now()
    # Leaving signing (complete, decline, void, expire) ends the automatic reminders too.
    closing = {"next_reminder_at": None} if target not in SIGNING_OPEN else {}
    result = session.execute(
        update(Contract)
        .where(Contract.id == contract.id, Contract.status == source.value)
        .values(status=target.value, status_changed_at=now, updated_at=now, **closing)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        # Someone else moved it first: report what it is now, not what we read earlier.
        session.refresh(contract, ["status"])
        raise InvalidTransition(
            f"The contract changed meanwhile; it is now {contract.status}.",
            details={"status": contract.status, "event": event.value})
    # The row now holds exactly these values: set them as loaded, without another SELECT.
    for name, value in (("status", target.value), ("status_changed_at", now),
                        ("updated_at", now), *closing.items()):
        set_committed_value(contract, name, value)
    audit.record(session, ctx, EVENT_KINDS[event], org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"from": source.value, "to": target.value, **(data or {})})
    return target
