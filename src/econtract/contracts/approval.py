"""Internal approval (合同审批) before a contract may be sent.

The sender names approvers (users of the organisation) and a mode: ``sequential`` (each in turn;
all must approve) or ``any`` (every approver is asked at once; the first approval suffices).
``submit`` moves a draft to ``pending_approval`` and opens a round; each decision is recorded with
its comment; the last needed approval makes the contract ``approved`` (then it can be sent), and a
rejection returns it to ``draft`` with the comment on the timeline (fix, then submit again: a new
round). Sending a contract that has approvers is refused until it is approved.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from econtract.accounts.models import User
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import service as contracts
from econtract.contracts.models import Approval, Contract
from econtract.contracts.states import Event, Status, transition
from econtract.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from econtract.notifications import messages
from econtract.notifications.jobs import queue_email

MAX_COMMENT = 2000


def approver_ids(contract: Contract) -> list[uuid.UUID]:
    return [uuid.UUID(i) for i in (contract.approver_ids or {}).get("users", [])]


def needs_approval(contract: Contract) -> bool:
    return bool(approver_ids(contract))


def configure(session: Session, contract: Contract, emails: Sequence[str]) -> None:
    """Set the approvers by e-mail: active users of the contract's organisation, no repeats."""
    ids: list[str] = []
    for email in emails:
        user = session.scalar(select(User).where(func.lower(User.email) == email.lower(),
                                                 User.org_id == contract.org_id))
        if user is None or not user.is_active:
            raise ValidationFailed(f"{email} is not an active user of this organisation.",
                                   code="approver_not_found", details={"email": email})
        if str(user.id) in ids:
            raise ValidationFailed(f"{email} is named twice as an approver.",
                                   code="approver_repeated", details={"email": email})
        ids.append(str(user.id))
    contract.approver_ids = {"users": ids} if ids else None


def require_approved(contract: Contract) -> None:
    """The guard ``send`` calls: a contract with approvers goes out only once approved."""
    if needs_approval(contract) and Status(contract.status) is not Status.APPROVED:
        raise InvalidTransition("This contract needs internal approval before it is sent.",
                                code="approval_required")


def current_round(session: Session, contract: Contract) -> list[Approval]:
    last = session.scalar(select(func.max(Approval.round))
                          .where(Approval.contract_id == contract.id))
    if last is None:
        return []
    return list(session.scalars(select(Approval).where(
        Approval.contract_id == contract.id, Approval.round == last)
        .order_by(Approval.position)))


def submit(session: Session, ctx: Ctx, *, contract_id: uuid.UUID) -> Contract:
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    contracts.require_edit(ctx, contract)
    ids = approver_ids(contract)
    if not ids:
        raise ValidationFailed("Name at least one approver first.", code="no_approvers")
    previous = current_round(session, contract)
    number = (previous[0].round + 1) if previous else 1
    now = ctx.now()
    sequential = contract.approval_mode == "sequential"
    rows = [Approval(contract_id=contract.id, org_id=contract.org_id, approver_id=user_id,
                     round=number, position=index,
                     status="waiting" if sequential and index > 1 else "pending",
                     created_at=now)
            for index, user_id in enumerate(ids, start=1)]
    session.add_all(rows)
    transition(session, ctx, contract, Event.SUBMIT,
               {"round": number, "mode": contract.approval_mode,
                "approvers": [str(i) for i in ids]})
    _ask(session, ctx, contract, [r for r in rows if r.status == "pending"])
    return contract


def decide(session: Session, ctx: Ctx, *, contract_id: uuid.UUID, approve: bool,
           comment: str = "") -> Contract:
    """The acting user's decision, when it is their turn in the open round."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    if Status(contract.status) is not Status.PENDING_APPROVAL:
        raise InvalidTransition(f"A contract that is {contract.status} is not awaiting "
                                "approval.", code="not_pending_approval")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise ValidationFailed(f"A comment may be at most {MAX_COMMENT} characters.",
                               code="comment_too_long")
    if not approve and not comment:
        raise ValidationFailed("Say why the contract is rejected.", code="comment_required")
    rows = current_round(session, contract)
    mine = next((r for r in rows if r.approver_id == ctx.actor.id), None)
    if mine is None:
        raise PermissionDenied("You are not an approver of this contract.",
                               code="not_an_approver")
    if mine.status != "pending":
        raise Conflict(f"Your decision is not expected now ({mine.status}).",
                       code=f"approval_{mine.status}")
    now = ctx.now()
    mine.status, mine.comment, mine.decided_at = (
        "approved" if approve else "rejected", comment or None, now)
    audit.record(session, ctx, EventKind.APPROVAL_DECIDED, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"round": mine.round, "position": mine.position,
                       "decision": mine.status, "comment": comment,
                       "approver": ctx.actor.label})
    if not approve:
        _close(rows)
        transition(session, ctx, contract, Event.REJECT,
                   {"round": mine.round, "comment": comment, "by": ctx.actor.label})
        _tell_owner(session, ctx, contract, approved=False, comment=comment)
        return contract
    waiting = [r for r in rows if r.status == "waiting"]
    if contract.approval_mode == "any" or not waiting:
        _close(rows)
        transition(session, ctx, contract, Event.APPROVE,
                   {"round": mine.round, "by": ctx.actor.label})
        _tell_owner(session, ctx, contract, approved=True, comment=comment)
    else:
        waiting[0].status = "pending"
        _ask(session, ctx, contract, [waiting[0]])
    session.flush()
    return contract


def _close(rows: Sequence[Approval]) -> None:
    for row in rows:
        if row.status in ("waiting", "pending"):
            row.status = "skipped"


def pending_for(session: Session, ctx: Ctx) -> list[Contract]:
    """Contracts waiting for the acting user's decision (the "to approve" list)."""
    if ctx.actor.id is None:
        return []
    ids = select(Approval.contract_id).where(Approval.approver_id == ctx.actor.id,
                                             Approval.status == "pending")
    return list(session.scalars(select(Contract).where(
        Contract.id.in_(ids), Contract.status == Status.PENDING_APPROVAL.value)
        .order_by(Contract.updated_at.desc())))


def _contract_url(ctx: Ctx, contract: Contract) -> str:
    return f"{ctx.base_url.rstrip('/')}/contracts/{contract.id}"


def _ask(session: Session, ctx: Ctx, contract: Contract, rows: Sequence[Approval]) -> None:
    owner = session.get(User, contract.owner_id)
    for row in rows:
        approver = session.get(User, row.approver_id)
        if approver is None or not approver.is_active:
            continue
        queue_email(session, now=ctx.now(), org_id=contract.org_id,
                    message=messages.approval_request(
                        email=approver.email, name=approver.name, title=contract.title,
                        sender_name=owner.name if owner else "",
                        contract_url=_contract_url(ctx, contract)))


def _tell_owner(session: Session, ctx: Ctx, contract: Contract, *, approved: bool,
                comment: str) -> None:
    owner = session.get(User, contract.owner_id)
    if owner is None or not owner.is_active:
        return
    queue_email(session, now=ctx.now(), org_id=contract.org_id,
                message=messages.approval_outcome(
                    email=owner.email, title=contract.title, approved=approved,
                    approver_name=ctx.actor.label, comment=comment,
                    contract_url=_contract_url(ctx, contract)))
