"""Reminders and deadlines: automatic reminders to pending signers, "remind now", and expiry.

Each contract carries its own schedule: ``next_reminder_at`` (indexed) and ``reminders_sent``.
Inviting a group (``routing.open_next_group``) starts it: the count goes back to zero and the first
reminder is due one interval later, so every group gets the same reminders counted from its own
invitation. The interval and maximum come from the contract, or from its organisation when the
contract sets none; a maximum of 0 turns automatic reminders off.

``sweep`` is run periodically by the worker (and by ``econtract sweep``). It expires contracts
whose sign deadline has passed, then reminds the pending signers of the contracts that are due.
It claims contracts with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so sweepers running in several
workers at once pass over each other's contracts instead of sending twice; on SQLite the whole
transaction holds the database's write lock (``BEGIN IMMEDIATE``), which serialises sweepers.

Only contracts out for signing (``sent``/``signing``) are ever reminded: the sweep filters on the
status, and also clears the schedule of contracts that have left those states, so the index does
not fill up with contracts that will never be reminded again. A pending signer is one who was
invited and has not signed: only the current group is ever invited, so these are exactly the
current group's signers still to sign.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from econtract.accounts import service as accounts
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.context import Ctx
from econtract.contracts import service as contracts
from econtract.contracts import sweeping
from econtract.contracts.models import Contract
from econtract.contracts.states import Event, Status, transition
from econtract.db import is_postgres
from econtract.errors import Conflict, InvalidTransition
from econtract.parties import invitations
from econtract.parties.models import Signer

OPEN_STATUSES = (Status.SENT.value, Status.SIGNING.value)
SWEEP_BATCH = 50
"""Contracts expired, and contracts reminded, per sweep transaction."""
REMIND_COOLDOWN = timedelta(minutes=10)
"""A manual reminder is refused this soon after the previous reminder to the same contract."""


@dataclass(frozen=True)
class ReminderPolicy:
    """The reminder settings in force for one contract (its own, else its organisation's)."""

    interval_hours: int
    max_reminders: int

    @property
    def interval(self) -> timedelta:
        return timedelta(hours=self.interval_hours)


@dataclass
class SweepReport:
    """What one sweep did."""

    expired: list[uuid.UUID] = field(default_factory=list)
    reminded: dict[uuid.UUID, int] = field(default_factory=dict)
    """Contract id → how many signers were reminded."""
    failed: list[uuid.UUID] = field(default_factory=list)
    full: bool = False
    """A batch was full: more contracts may be due, run again."""

    @property
    def signers_reminded(self) -> int:
        return sum(self.reminded.values())

    def add(self, other: SweepReport) -> None:
        self.expired += other.expired
        self.reminded.update(other.reminded)
        self.failed += other.failed
        self.full = other.full


def policy_for(session: Session, contract: Contract) -> ReminderPolicy:
    org = accounts.organisation(session, contract.org_id)
    interval = contract.reminder_interval_hours or (org.reminder_interval_hours if org else 72)
    maximum = contract.reminder_max if contract.reminder_max is not None else \
        (org.reminder_max if org else 0)
    return ReminderPolicy(interval_hours=interval, max_reminders=maximum)


def pending_signers(contract: Contract) -> list[Signer]:
    """The signers a reminder is for (see the module docstring)."""
    return [s for s in contract.signers if s.status in invitations.PENDING_STATUSES]


def schedule(session: Session, *, contract: Contract, now: datetime) -> None:
    """A group has just been invited: its reminders count from zero and from ``now``."""
    policy = policy_for(session, contract)
    contract.reminders_sent = 0
    contract.next_reminder_at = now + policy.interval if policy.max_reminders > 0 else None


def _record_and_send(session: Session, ctx: Ctx, contract: Contract, signers: list[Signer], *,
                     automatic: bool) -> None:
    invitations.remind(session, ctx, contract=contract, signers=signers)
    # Automatic reminders are numbered (1 … the maximum) within the invited group.
    number = contract.reminders_sent + 1 if automatic else None
    for signer in signers:
        audit.record(session, ctx, EventKind.SIGNER_REMINDED, org_id=contract.org_id,
                     contract_id=contract.id,
                     data={"signer_id": str(signer.id), "email": signer.email,
                           "automatic": automatic, "reminder": number})


# --- remind now ------------------------------------------------------------------------------

def remind_again_at(session: Session, contract: Contract, *, now: datetime) -> datetime | None:
    """When "remind now" is allowed again, or ``None`` if it is now: ``REMIND_COOLDOWN`` after
    the last reminder of either kind (read from the audit trail, the record of every one)."""
    last = session.scalar(select(func.max(AuditEvent.occurred_at)).where(
        AuditEvent.contract_id == contract.id, AuditEvent.kind == EventKind.SIGNER_REMINDED.value))
    return last + REMIND_COOLDOWN if last is not None and now < last + REMIND_COOLDOWN else None


def remind(session: Session, ctx: Ctx, *, contract_id: uuid.UUID) -> Contract:
    """Remind the pending signers now (who may send may remind). It does not count against the
    automatic maximum, and pushes the next automatic reminder back to a full interval from now."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    contracts.require_edit(ctx, contract)
    if contract.status not in OPEN_STATUSES:
        raise InvalidTransition(f"A contract that is {contract.status} cannot be reminded.",
                                details={"status": contract.status})
    now = ctx.now()
    if contract.sign_deadline is not None and contract.sign_deadline <= now:
        # The sweep has not expired it yet, but the links are already dead.
        raise InvalidTransition("The signing deadline has passed.", code="deadline_passed")
    pending = pending_signers(contract)
    if not pending:
        raise Conflict("No signer is waiting for a reminder.", code="nothing_to_remind")
    again = remind_again_at(session, contract, now=now)
    if again is not None:
        wait = math.ceil((again - now).total_seconds())
        raise Conflict("The signers were reminded a few minutes ago; please wait before "
                       "reminding them again.", code="remind_too_soon",
                       details={"retry_after": wait})
    _record_and_send(session, ctx, contract, pending, automatic=False)
    if contract.next_reminder_at is not None:
        later = now + policy_for(session, contract).interval
        contract.next_reminder_at = max(contract.next_reminder_at, later)
    session.flush()
    return contract


# --- the sweep -------------------------------------------------------------------------------

def sweep(session: Session, ctx: Ctx, *, now: datetime, batch: int = SWEEP_BATCH) -> SweepReport:
    """Expire contracts past their sign deadline, then send the reminders that are due; at most
    ``batch`` of each. Everything is recorded at ``now``. One contract that fails is logged and
    skipped (its own savepoint), so it cannot hold up the others."""
    ctx = replace(ctx, clock=lambda: now)
    report = SweepReport()
    _forget_closed(session, now)
    overdue = sweeping.claim(session, select(Contract).where(
        Contract.status.in_(OPEN_STATUSES), Contract.sign_deadline <= now)
        .order_by(Contract.sign_deadline, Contract.id), batch)
    for contract in overdue:
        if sweeping.isolated(session, "reminder", report.failed, contract.id,
                             partial(expire, session, ctx, contract=contract)) is not None:
            report.expired.append(contract.id)
    # Past the deadline means expiring, never reminding (even if expiring it failed above).
    due = sweeping.claim(session, select(Contract).where(
        Contract.status.in_(OPEN_STATUSES), Contract.next_reminder_at <= now,
        or_(Contract.sign_deadline.is_(None), Contract.sign_deadline > now))
        .order_by(Contract.next_reminder_at, Contract.id), batch)
    for contract in due:
        reminded = sweeping.isolated(session, "reminder", report.failed, contract.id,
                                     partial(_remind_due, session, ctx, contract, now))
        if reminded:
            report.reminded[contract.id] = reminded
    report.full = len(overdue) == batch or len(due) == batch
    return report


def _forget_closed(session: Session, now: datetime) -> None:
    """Clear the schedule of contracts that left ``sent``/``signing`` by completing or being
    declined (voiding and expiry clear it themselves)."""
    stale = select(Contract.id).where(Contract.next_reminder_at <= now,
                                      Contract.status.not_in(OPEN_STATUSES))
    if is_postgres(session):
        stale = stale.with_for_update(skip_locked=True)
    session.execute(update(Contract).where(Contract.id.in_(stale.limit(SWEEP_BATCH)))
                    .values(next_reminder_at=None).execution_options(synchronize_session=False))


def expire(session: Session, ctx: Ctx, *, contract: Contract) -> Contract:
    """The sign deadline has passed: the contract expires, its links die, everyone involved is
    told. The caller holds the contract's row lock."""
    deadline = contract.sign_deadline
    transition(session, ctx, contract, Event.EXPIRE,
               {"sign_deadline": deadline.isoformat() if deadline else None})
    contract.next_reminder_at = None
    invitations.revoke_links(session, contract=contract, now=ctx.now())
    invitations.notify_expired(session, ctx, contract=contract)
    return contract


def _remind_due(session: Session, ctx: Ctx, contract: Contract, now: datetime) -> int:
    """One automatic reminder round for ``contract``; returns how many signers were reminded."""
    policy = policy_for(session, contract)
    pending = pending_signers(contract)
    if contract.reminders_sent >= policy.max_reminders or not pending:
        contract.next_reminder_at = None
        return 0
    _record_and_send(session, ctx, contract, pending, automatic=True)
    contract.reminders_sent += 1
    more = contract.reminders_sent < policy.max_reminders
    contract.next_reminder_at = now + policy.interval if more else None
    session.flush()
    return len(pending)
