"""E-mails to the people around a signature: invitations with a personal link, and the owner's
notice when a signer declines. All of them go through the outbox, in the caller's transaction, so
an invitation exists only if the send (or the signature that opened the next group) committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from econtract.accounts.models import Organisation, User
from econtract.context import Ctx
from econtract.contracts.models import Contract
from econtract.notifications import messages
from econtract.notifications.jobs import queue_email
from econtract.parties import links
from econtract.parties.models import Signer


def deadline_text(deadline: datetime | None) -> str | None:
    # UTC with the zone spelled out: the recipient's time zone is not known.
    return deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if deadline else None


def invite(session: Session, ctx: Ctx, *, contract: Contract, signers: Sequence[Signer]) -> None:
    """Issue a link to each of ``signers`` and queue their invitation e-mail."""
    if not signers:
        return
    org = session.get(Organisation, contract.org_id)
    owner = session.get(User, contract.owner_id)
    now = ctx.now()
    for signer in signers:
        token = links.issue(session, signer=signer, contract=contract, now=now)
        message = messages.signing_invitation(
            email=signer.email, name=signer.name, title=contract.title,
            org_name=org.name if org else "econtract", sender_name=owner.name if owner else "",
            link=links.link_url(ctx.base_url, token),
            deadline=deadline_text(contract.sign_deadline))
        queue_email(session, message=message, now=now, org_id=contract.org_id)


def notify_declined(session: Session, ctx: Ctx, *, contract: Contract, signer: Signer,
                    reason: str) -> None:
    """Tell the contract's owner who declined and why."""
    owner = session.get(User, contract.owner_id)
    if owner is None or not owner.is_active:
        return
    message = messages.contract_declined(
        email=owner.email, title=contract.title, signer_name=signer.name,
        signer_email=signer.email, reason=reason,
        contract_url=f"{ctx.base_url.rstrip('/')}/contracts/{contract.id}")
    queue_email(session, message=message, now=ctx.now(), org_id=contract.org_id)
