"""The optional access code (访问码): a secret the sender tells the signer by another channel.

When the sender set one (``Signer.access_code_hash``, Argon2id), the link alone shows only the
contract's title and organisation: every other signer call is refused with 403
``access_code_required`` (``require_granted``) until the code is entered right, which sets
``Signer.access_granted_at``. So a forwarded or leaked invitation e-mail is not enough to read
the contract, ask for codes or sign.

Wrong codes count in ``Signer.access_code_failures``; the fifth in a row locks entry for fifteen
minutes, as with one-time codes. The lock is kept in ``Signer.otp_locked_until``, the signer's
one verification lock: before the access code is granted no one-time code can be asked for or
checked, and after it no access code is asked, so the two never hold it at the same time.

Like ``otp.verify_code``, ``enter_code`` returns its refusal so that the caller commits the
counted failure and its audit event before raising it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from econtract.accounts.security import verify_password
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.errors import AccountLocked, AuthenticationFailed, EContractError, PermissionDenied
from econtract.parties import otp
from econtract.parties.links import SignerAccess
from econtract.parties.models import Signer

MAX_FAILURES = 5
LOCK_TIME = timedelta(minutes=15)
MAX_CODE_LENGTH = 64


@dataclass(frozen=True)
class AccessOutcome:
    """``error`` is ``None`` when access is granted; otherwise commit, then raise it."""

    error: EContractError | None


def required(signer: Signer) -> bool:
    """True while the signer still has to enter the sender's access code."""
    return signer.access_code_hash is not None and signer.access_granted_at is None


def require_granted(access: SignerAccess) -> None:
    """The gate every signer call passes (``parties.api.signer_unit`` calls it by default):
    403 ``access_code_required`` until the access code has been entered."""
    if required(access.signer):
        raise PermissionDenied("Enter the access code the sender gave you first.",
                               code="access_code_required")


def _locked(seconds: int) -> AccountLocked:
    return AccountLocked(f"Too many wrong access codes. Try again in {seconds} seconds.",
                         code="access_code_locked", details={"retry_after": seconds})


def enter_code(session: Session, ctx: Ctx, *, access: SignerAccess, code: str) -> AccessOutcome:
    """Check the access code: right → access granted; wrong → counted (the fifth locks)."""
    signer, now = access.signer, ctx.now()
    if not required(signer):
        return AccessOutcome(None)  # no code asked, or already entered: nothing to prove
    seconds = otp.locked_for(signer, now)
    if seconds is not None:
        _audit_failure(session, ctx, access, reason="locked")
        return AccessOutcome(_locked(seconds))
    code = code.strip()
    # Argon2id costs the same for every wrong code, so timing tells nothing about the code.
    if 0 < len(code) <= MAX_CODE_LENGTH and verify_password(signer.access_code_hash, code):
        signer.access_granted_at, signer.access_code_failures = now, 0
        signer.otp_locked_until = None
        session.flush()
        audit.record(session, ctx, EventKind.SIGNER_ACCESS_GRANTED,
                     org_id=access.contract.org_id, contract_id=access.contract.id,
                     data={"signer_id": str(signer.id), "email": signer.email})
        return AccessOutcome(None)
    return AccessOutcome(_count_failure(session, ctx, access, now))


def _count_failure(session: Session, ctx: Ctx, access: SignerAccess,
                   now: datetime) -> EContractError:
    signer = access.signer
    signer.access_code_failures += 1
    failures = signer.access_code_failures
    locked = failures >= MAX_FAILURES
    if locked:  # the count starts again after the lock
        signer.access_code_failures, signer.otp_locked_until = 0, now + LOCK_TIME
    session.flush()
    _audit_failure(session, ctx, access, reason="wrong", failures=failures, locked=locked)
    if locked:
        return _locked(int(LOCK_TIME.total_seconds()))
    left = MAX_FAILURES - failures
    return AuthenticationFailed(f"The access code is not correct ({left} attempts left).",
                                code="access_code_incorrect", details={"attempts_left": left})


def _audit_failure(session: Session, ctx: Ctx, access: SignerAccess, *, reason: str,
                   failures: int | None = None, locked: bool = False) -> None:
    audit.record(session, ctx, EventKind.SIGNER_ACCESS_CODE_FAILED,
                 org_id=access.contract.org_id, contract_id=access.contract.id,
                 data={"signer_id": str(access.signer.id), "email": access.signer.email,
                       "reason": reason, "failures": failures, "locked": locked})
