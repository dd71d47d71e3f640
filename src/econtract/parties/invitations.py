"""E-mails to the people around a signature: invitations and reminders with a personal link, and
the notices when signing ends without completing (declined, voided, expired). All of them go
through the outbox, in the caller's transaction, so a message exists only if the change that
caused it committed.

Who hears that signing ended: the owner, and every signer who was already involved (invited,
viewed, verified or signed). Signers still ``waiting`` (a later sequential group) and copy
recipients never heard of the contract, so they are not told that it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.orm import Session

from econtract.accounts import service as accounts
from econtract.accounts.models import User
from econtract.context import Ctx
from econtract.contracts.models import Contract
from econtract.notifications import messages
from econtract.notifications.email import EmailMessage
from econtract.notifications.jobs import queue_email
from econtract.parties import links
from econtract.parties.models import Signer

PENDING_STATUSES = frozenset({"invited", "viewed", "verified"})
"""Invited and not signed yet: who a reminder is for."""
INVOLVED_STATUSES = PENDING_STATUSES | {"signed"}
"""Who has heard of the contract and is told when it ends unsigned."""


def deadline_text(deadline: datetime | None) -> str | None:
    # UTC with the zone spelled out: the recipient's time zone is not known.
    return deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if deadline else None


def contract_url(ctx: Ctx, contract: Contract) -> str:
    return f"{ctx.base_url.rstrip('/')}/contracts/{contract.id}"


def involved(contract: Contract, *, but: Signer | None = None) -> list[Signer]:
    """Signers who have heard of the contract (see the module docstring), except ``but``."""
    return [s for s in contract.signers
            if s.status in INVOLVED_STATUSES and (but is None or s.id != but.id)]


def _org_name(session: Session, contract: Contract) -> str:
    org = accounts.organisation(session, contract.org_id)
    return org.name if org else "econtract"


def _sender_name(session: Session, contract: Contract) -> str:
    owner = session.get(User, contract.owner_id)
    return owner.name if owner else ""


def _active_owner(session: Session, contract: Contract) -> User | None:
    owner = session.get(User, contract.owner_id)
    return owner if owner is not None and owner.is_active else None


def _queue(session: Session, ctx: Ctx, contract: Contract, message: EmailMessage) -> None:
    queue_email(session, message=message, now=ctx.now(), org_id=contract.org_id)


class LinkMessage(Protocol):
    def __call__(self, *, email: str, name: str, title: str, org_name: str, sender_name: str,
                 link: str, deadline: str | None) -> EmailMessage: ...


def _mail_links(session: Session, ctx: Ctx, contract: Contract, signers: Sequence[Signer],
                message: LinkMessage) -> None:
    # A new link for every e-mail: tokens are stored only hashed, so none can be sent twice.
    if not signers:
        return
    org_name, sender = _org_name(session, contract), _sender_name(session, contract)
    now = ctx.now()
    for signer in signers:
        token = links.issue(session, signer=signer, contract=contract, now=now)
        _queue(session, ctx, contract, message(
            email=signer.email, name=signer.name, title=contract.title, org_name=org_name,
            sender_name=sender, link=links.link_url(ctx.base_url, token),
            deadline=deadline_text(contract.sign_deadline)))


def invite(session: Session, ctx: Ctx, *, contract: Contract, signers: Sequence[Signer]) -> None:
    """Issue a link to each of ``signers`` and queue their invitation e-mail."""
    _mail_links(session, ctx, contract, signers, messages.signing_invitation)


def remind(session: Session, ctx: Ctx, *, contract: Contract, signers: Sequence[Signer]) -> None:
    """Queue a reminder to each of ``signers``, each with a fresh link (the invitation's token
    cannot be sent again)."""
    _mail_links(session, ctx, contract, signers, messages.signing_reminder)


def revoke_links(session: Session, *, contract: Contract, now: datetime) -> None:
    """Kill every signer link of ``contract`` explicitly (they are already dead by the
    contract's state; this also makes the record say so)."""
    for signer in contract.signers:
        links.revoke_for_signer(session, signer=signer, now=now)


def notify_declined(session: Session, ctx: Ctx, *, contract: Contract, signer: Signer,
                    reason: str) -> None:
    """Tell the owner who declined and why, and the other signers already involved that
    signing has ended (without the reason, which is for the sender)."""
    owner = _active_owner(session, contract)
    if owner is not None:
        _queue(session, ctx, contract, messages.contract_declined(
            email=owner.email, title=contract.title, signer_name=signer.name,
            signer_email=signer.email, reason=reason, contract_url=contract_url(ctx, contract)))
    org_name = _org_name(session, contract)
    for other in involved(contract, but=signer):
        _queue(session, ctx, contract, messages.contract_declined_to_signer(
            email=other.email, name=other.name, title=contract.title, org_name=org_name,
            decliner_name=signer.name))


def notify_voided(session: Session, ctx: Ctx, *, contract: Contract, reason: str,
                  signing_was_open: bool) -> None:
    """Tell the signers involved (when signing was still open: after a decline they have been
    told already) and the owner, unless the owner voided it."""
    org_name = _org_name(session, contract)
    if signing_was_open:
        for signer in involved(contract):
            _queue(session, ctx, contract, messages.contract_voided(
                email=signer.email, title=contract.title, org_name=org_name, reason=reason))
    owner = _active_owner(session, contract)
    if owner is not None and owner.id != ctx.actor.id:
        _queue(session, ctx, contract, messages.contract_voided(
            email=owner.email, title=contract.title, org_name=org_name, reason=reason,
            contract_url=contract_url(ctx, contract)))


def notify_expired(session: Session, ctx: Ctx, *, contract: Contract) -> None:
    """Tell the owner and the signers involved that the deadline passed unsigned."""
    org_name = _org_name(session, contract)
    deadline = deadline_text(contract.sign_deadline) or ""
    for signer in involved(contract):
        _queue(session, ctx, contract, messages.contract_expired(
            email=signer.email, title=contract.title, org_name=org_name, deadline=deadline))
    owner = _active_owner(session, contract)
    if owner is not None:
        _queue(session, ctx, contract, messages.contract_expired(
            email=owner.email, title=contract.title, org_name=org_name, deadline=deadline,
            contract_url=contract_url(ctx, contract)))
