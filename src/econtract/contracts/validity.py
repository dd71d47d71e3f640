"""Validity tracking (有效期管理): completed contracts lapse after their expiry date, and their
owners are reminded before it (合同到期提醒).

Expiry dates are calendar dates without a time zone, and organisations have none either. The
platform serves China, so a calendar day is the day in China Standard Time (UTC+8, no daylight
saving): ``today`` is ``now`` in UTC+8. A contract is valid through its expiry date D; it lapses
in the sweep on the first run of D+1 (from 16:00 UTC on D). The renewal reminder goes out once,
on the first sweep of the day ``renewal_reminder_days`` before D (or later, if the contract was
completed inside that window), and never when the organisation's setting is 0.

``sweep`` is run periodically by the worker (``runtime.py``) and by ``econtract sweep``. As in
``parties.reminders``, it claims at most ``batch`` contracts per kind with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL (sweepers in several workers pass over each other's rows; SQLite's
``BEGIN IMMEDIATE`` serialises them), and each contract runs in its own savepoint so one broken
contract cannot hold up the others. Archived contracts are tracked like any other: archiving
files a contract away, it does not end it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.accounts.models import Organisation, User
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import sweeping
from econtract.contracts.models import Contract
from econtract.contracts.states import Event, Status, transition
from econtract.notifications import messages
from econtract.notifications.email import EmailMessage
from econtract.notifications.jobs import queue_email

CALENDAR_TZ = timezone(timedelta(hours=8), "UTC+08:00")
"""The zone in which expiry dates are read (see the module docstring)."""
SWEEP_BATCH = 50
"""Contracts lapsed, and owners reminded, per sweep transaction."""


@dataclass
class ValiditySweepReport:
    """What one validity sweep did."""

    lapsed: list[uuid.UUID] = field(default_factory=list)
    renewal_reminded: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    full: bool = False
    """A batch was full: more contracts may be due, run again."""

    def add(self, other: ValiditySweepReport) -> None:
        self.lapsed += other.lapsed
        self.renewal_reminded += other.renewal_reminded
        self.failed += other.failed
        self.full = other.full


def today(now: datetime) -> date:
    """The calendar day ``now`` falls on, in ``CALENDAR_TZ``."""
    return now.astimezone(CALENDAR_TZ).date()


def days_left(contract: Contract, now: datetime) -> int | None:
    """Days from today to the expiry date (0 on the day itself, negative after)."""
    return (contract.expiry_date - today(now)).days if contract.expiry_date else None


def sweep(session: Session, ctx: Ctx, *, now: datetime,
          batch: int = SWEEP_BATCH) -> ValiditySweepReport:
    """Lapse completed contracts past their expiry date, then remind the owners of those that
    expire within their organisation's reminder window; at most ``batch`` of each."""
    ctx = replace(ctx, clock=lambda: now)
    day = today(now)
    report = ValiditySweepReport()
    overdue = sweeping.claim(session, select(Contract).where(
        Contract.status == Status.COMPLETED.value, Contract.expiry_date < day)
        .order_by(Contract.expiry_date, Contract.id), batch)
    for contract in overdue:
        if sweeping.isolated(session, "validity", report.failed, contract.id,
                             partial(lapse, session, ctx, contract=contract)) is not None:
            report.lapsed.append(contract.id)
    due = _due_for_reminder(session, day, batch)
    for contract in due:
        if sweeping.isolated(session, "validity", report.failed, contract.id,
                             partial(remind_renewal, session, ctx,
                                     contract=contract)) is not None:
            report.renewal_reminded.append(contract.id)
    report.full = len(overdue) == batch or len(due) == batch
    return report


def _due_for_reminder(session: Session, day: date, batch: int) -> list[Contract]:
    # One query per distinct window length in use (a handful): the window is compared as a date
    # computed here, so the SQL is the same on SQLite and PostgreSQL (no date arithmetic).
    windows = session.scalars(select(Organisation.renewal_reminder_days).distinct()
                              .where(Organisation.renewal_reminder_days > 0))
    due: list[Contract] = []
    for days in sorted(windows):
        if len(due) >= batch:
            break
        orgs = select(Organisation.id).where(Organisation.renewal_reminder_days == days)
        due += sweeping.claim(session, select(Contract).where(
            Contract.status == Status.COMPLETED.value, Contract.renewal_reminded_at.is_(None),
            Contract.expiry_date >= day, Contract.expiry_date <= day + timedelta(days=days),
            Contract.org_id.in_(orgs))
            .order_by(Contract.expiry_date, Contract.id), batch - len(due))
    return due


def lapse(session: Session, ctx: Ctx, *, contract: Contract) -> Contract:
    """The expiry date has passed: the contract is lapsed and its owner told. The caller holds
    the contract's row lock."""
    expiry = contract.expiry_date.isoformat() if contract.expiry_date else ""
    transition(session, ctx, contract, Event.LAPSE, {"expiry_date": expiry})
    owner = _active_owner(session, contract)
    if owner is not None:
        _queue(session, ctx, contract, messages.contract_lapsed(
            email=owner.email, name=owner.name, title=contract.title,
            org_name=_org_name(session, contract), expiry_date=expiry,
            contract_url=_contract_url(ctx, contract)))
    return contract


def remind_renewal(session: Session, ctx: Ctx, *, contract: Contract) -> Contract:
    """Tell the owner the contract expires soon (once: ``renewal_reminded_at`` is set)."""
    now = ctx.now()
    left = days_left(contract, now) or 0
    expiry = contract.expiry_date.isoformat() if contract.expiry_date else ""
    owner = _active_owner(session, contract)
    if owner is not None:
        _queue(session, ctx, contract, messages.renewal_reminder(
            email=owner.email, name=owner.name, title=contract.title,
            org_name=_org_name(session, contract), expiry_date=expiry, days_left=left,
            contract_url=_contract_url(ctx, contract)))
    contract.renewal_reminded_at = now
    session.flush()
    audit.record(session, ctx, EventKind.CONTRACT_RENEWAL_REMINDED, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"expiry_date": expiry, "days_left": left,
                       "owner": owner.email if owner else None})
    return contract


def _active_owner(session: Session, contract: Contract) -> User | None:
    owner = session.get(User, contract.owner_id)
    return owner if owner is not None and owner.is_active else None


def _org_name(session: Session, contract: Contract) -> str:
    org = session.get(Organisation, contract.org_id)
    return org.name if org else "econtract"


def _contract_url(ctx: Ctx, contract: Contract) -> str:
    return f"{ctx.base_url.rstrip('/')}/contracts/{contract.id}"


def _queue(session: Session, ctx: Ctx, contract: Contract, message: EmailMessage) -> None:
    queue_email(session, message=message, now=ctx.now(), org_id=contract.org_id)
