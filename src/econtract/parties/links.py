"""Invitation links ``{base_url}/s/{token}``: one signer of one contract, stored hashed.

A token carries 256 random bits from the OS CSPRNG; the database keeps only its SHA-256, so a
copy of the database opens nothing. A link works while the contract is out for signing, the
signer has neither signed nor declined, it is not revoked and it has not expired (at the sign
deadline, or ``DEFAULT_LINK_DAYS`` after it was issued). These rules are checked on every use
rather than by revoking rows when something ends, so a void, a decline by someone else or an
expiry kills every link at once without having to find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from econtract.accounts.security import new_token, token_hash
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts.models import Contract
from econtract.contracts.states import Status
from econtract.errors import NotFound
from econtract.parties.models import Signer, SignerLink

DEFAULT_LINK_DAYS = 30
MAX_TOKEN_LENGTH = 200
OPEN_STATUSES = frozenset({Status.SENT, Status.SIGNING})
ENDED_SIGNER_STATUSES = frozenset({"signed", "declined"})

INVALID_MESSAGE = "This signing link is not valid. Check that you copied the whole address."
GONE_MESSAGE = "This signing link can no longer be used."


class LinkGone(NotFound):
    """A real link that no longer works (expired, used, contract ended): 410, same title as 404,
    and the same message whatever the reason, so the answer tells nothing about the contract."""

    code = "link_gone"
    status = 410


@dataclass(frozen=True)
class SignerAccess:
    """What a live token resolves to: exactly one signer and their contract."""

    link: SignerLink
    signer: Signer
    contract: Contract


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}"


def issue(session: Session, *, signer: Signer, contract: Contract, now: datetime) -> str:
    """A new link for ``signer``; returns the token, which exists nowhere else after this."""
    token = new_token()
    expires_at = contract.sign_deadline or now + timedelta(days=DEFAULT_LINK_DAYS)
    session.add(SignerLink(token_hash=token_hash(token), signer_id=signer.id,
                           contract_id=contract.id, org_id=contract.org_id, created_at=now,
                           expires_at=expires_at))
    session.flush()
    return token


def resolve(session: Session, *, token: str, now: datetime, lock: bool = False) -> SignerAccess:
    """The signer and contract of a live ``token``, or ``NotFound`` / ``LinkGone``.

    ``lock`` takes the contract's row lock first, the same lock signing takes, so every write a
    signer makes is ordered the same way (contract, then audit head, then signer).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise NotFound(INVALID_MESSAGE, code="link_invalid")
    # An equality lookup on the hash: timing reveals nothing useful about a SHA-256 digest.
    link = session.scalar(select(SignerLink).where(SignerLink.token_hash == token_hash(token)))
    if link is None:
        raise NotFound(INVALID_MESSAGE, code="link_invalid")
    query = select(Contract).where(Contract.id == link.contract_id,
                                   Contract.org_id == link.org_id)
    contract = session.scalar(query.with_for_update() if lock else query)
    signer = session.get(Signer, link.signer_id)
    if contract is None or signer is None or signer.contract_id != contract.id:
        raise NotFound(INVALID_MESSAGE, code="link_invalid")
    if not _alive(link, signer, contract, now):
        raise LinkGone(GONE_MESSAGE)
    return SignerAccess(link=link, signer=signer, contract=contract)


def _alive(link: SignerLink, signer: Signer, contract: Contract, now: datetime) -> bool:
    deadline_passed = contract.sign_deadline is not None and contract.sign_deadline <= now
    return (link.revoked_at is None and link.expires_at > now and not deadline_passed
            and signer.status not in ENDED_SIGNER_STATUSES
            and Status(contract.status) in OPEN_STATUSES)


def record_open(session: Session, ctx: Ctx, access: SignerAccess, *, via: str) -> None:
    """Audit an opening of the link and move the signer from ``invited`` to ``viewed``."""
    access.link.last_opened_at = ctx.now()
    # Conditional, so a concurrent identity check that already made the signer ``verified``
    # is never set back.
    session.execute(update(Signer)
                    .where(Signer.id == access.signer.id, Signer.status == "invited")
                    .values(status="viewed").execution_options(synchronize_session=False))
    session.refresh(access.signer, ["status"])
    audit.record(session, ctx, EventKind.SIGNER_LINK_OPENED, org_id=access.contract.org_id,
                 contract_id=access.contract.id,
                 data={"signer_id": str(access.signer.id), "email": access.signer.email,
                       "via": via})


def revoke_for_signer(session: Session, *, signer: Signer, now: datetime) -> None:
    """Kill every link of ``signer`` (after signing or declining), explicitly as well."""
    session.execute(update(SignerLink)
                    .where(SignerLink.signer_id == signer.id, SignerLink.revoked_at.is_(None))
                    .values(revoked_at=now).execution_options(synchronize_session=False))
