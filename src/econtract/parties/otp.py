"""E-mail one-time codes (身份验证): proving the signer reads the invited mailbox.

Six digits from the OS CSPRNG, five minutes, one use. Only the newest code works; five wrong
tries in a row lock the signer out for fifteen minutes and retire the code, so an attacker gets
at most five guesses per code out of 10^6. Sends are rate-limited per signer (one a minute, five
an hour) because each one is an e-mail we send on someone's behalf.

Wrong tries must be counted even though the request fails: ``verify_code`` returns the refusal
instead of raising it, the caller commits, then raises (the pattern of ``SignOutcome``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.errors import AccountLocked, AuthenticationFailed, EContractError, PermissionDenied
from econtract.notifications import messages
from econtract.notifications.jobs import queue_email
from econtract.parties import routing
from econtract.parties.links import SignerAccess
from econtract.parties.models import Signer, SignerOtp

METHOD = "email_otp"
CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=5)
MAX_FAILURES = 5
LOCK_TIME = timedelta(minutes=15)
SEND_INTERVAL = timedelta(seconds=60)
SENDS_PER_HOUR = 5
_CODE = re.compile(rf"\d{{{CODE_DIGITS}}}")


@dataclass(frozen=True)
class CodeSent:
    channel: str
    sent_to: str
    expires_at: datetime
    resend_after: datetime


@dataclass(frozen=True)
class VerifyOutcome:
    """``error`` is ``None`` when the identity is proven; otherwise commit, then raise it."""

    error: EContractError | None


def _hash(otp_id: uuid.UUID, code: str) -> str:
    # Salted with the row id so equal codes never share a hash. Six digits fall to brute force
    # offline anyway; what protects them is the five-minute life and the lock, not the hash.
    return hashlib.sha256(f"econtract-otp-v1|{otp_id}|{code}".encode()).hexdigest()


def _require_turn(access: SignerAccess) -> None:
    if access.signer.status == "waiting" or not routing.is_turn_of(access.contract,
                                                                   access.signer):
        raise PermissionDenied("It is not your turn to sign yet.", code="not_your_turn")


def _locked_for(signer: Signer, now: datetime) -> int | None:
    if signer.otp_locked_until is not None and signer.otp_locked_until > now:
        return max(math.ceil((signer.otp_locked_until - now).total_seconds()), 1)
    return None


def _locked(seconds: int) -> AccountLocked:
    return AccountLocked(f"Too many wrong codes. Try again in {seconds} seconds.",
                         code="otp_locked", details={"retry_after": seconds})


def send_code(session: Session, ctx: Ctx, *, access: SignerAccess) -> CodeSent:
    """Make a new code (retiring older ones) and queue it to the signer's address."""
    signer, contract = access.signer, access.contract
    now = ctx.now()
    _require_turn(access)
    seconds = _locked_for(signer, now)
    if seconds is not None:
        raise _locked(seconds)
    _check_send_rate(session, signer, now)
    _retire_codes(session, signer, now)
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    otp = SignerOtp(id=uuid.uuid4(), signer_id=signer.id, channel="email", created_at=now,
                    expires_at=now + CODE_LIFETIME, code_hash="")
    otp.code_hash = _hash(otp.id, code)
    session.add(otp)
    queue_email(session, message=messages.signing_code(
        email=signer.email, code=code, minutes=int(CODE_LIFETIME.total_seconds() // 60),
        title=contract.title), now=now, org_id=contract.org_id)
    audit.record(session, ctx, EventKind.SIGNER_OTP_SENT, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"signer_id": str(signer.id), "channel": "email", "to": signer.email,
                       "expires_at": otp.expires_at.isoformat()})
    return CodeSent(channel="email", sent_to=signer.email, expires_at=otp.expires_at,
                    resend_after=now + SEND_INTERVAL)


def _check_send_rate(session: Session, signer: Signer, now: datetime) -> None:
    recent = list(session.scalars(select(SignerOtp.created_at).where(
        SignerOtp.signer_id == signer.id, SignerOtp.created_at > now - timedelta(hours=1))))
    wait = timedelta(0)
    if recent and max(recent) > now - SEND_INTERVAL:
        wait = max(recent) + SEND_INTERVAL - now
    if len(recent) >= SENDS_PER_HOUR:
        wait = max(wait, sorted(recent)[-SENDS_PER_HOUR] + timedelta(hours=1) - now)
    if wait > timedelta(0):
        seconds = max(math.ceil(wait.total_seconds()), 1)
        raise AccountLocked(f"A code was sent recently. Ask for another in {seconds} seconds.",
                            code="otp_rate_limited", details={"retry_after": seconds})


def _retire_codes(session: Session, signer: Signer, now: datetime) -> None:
    session.execute(update(SignerOtp)
                    .where(SignerOtp.signer_id == signer.id, SignerOtp.used_at.is_(None))
                    .values(used_at=now).execution_options(synchronize_session=False))


def _active_code(session: Session, signer: Signer, now: datetime) -> SignerOtp | None:
    return session.scalar(select(SignerOtp).where(
        SignerOtp.signer_id == signer.id, SignerOtp.used_at.is_(None),
        SignerOtp.expires_at > now).order_by(SignerOtp.created_at.desc()).limit(1))


def verify_code(session: Session, ctx: Ctx, *, access: SignerAccess, code: str) -> VerifyOutcome:
    """Check ``code``; right → the signer is ``verified``; wrong → counted (and maybe locked)."""
    signer, now = access.signer, ctx.now()
    _require_turn(access)
    seconds = _locked_for(signer, now)
    if seconds is not None:
        _audit_failure(session, ctx, access, reason="locked")
        return VerifyOutcome(_locked(seconds))
    code = code.strip()
    active = _active_code(session, signer, now)
    if active is not None and _CODE.fullmatch(code) and \
            hmac.compare_digest(active.code_hash, _hash(active.id, code)):
        _accept(session, ctx, access, active)
        return VerifyOutcome(None)
    return VerifyOutcome(_count_failure(session, ctx, access, now, expired=active is None))


def _accept(session: Session, ctx: Ctx, access: SignerAccess, otp: SignerOtp) -> None:
    signer, now = access.signer, ctx.now()
    otp.used_at = now
    signer.otp_failures, signer.otp_locked_until = 0, None
    if signer.status in ("invited", "viewed"):
        signer.status = "verified"
    signer.verified_at, signer.identity_method = now, METHOD
    session.flush()
    audit.record(session, ctx, EventKind.SIGNER_IDENTITY_VERIFIED,
                 org_id=access.contract.org_id, contract_id=access.contract.id,
                 data={"signer_id": str(signer.id), "email": signer.email, "method": METHOD})


def _count_failure(session: Session, ctx: Ctx, access: SignerAccess, now: datetime, *,
                   expired: bool) -> EContractError:
    signer = access.signer
    signer.otp_failures += 1
    failures = signer.otp_failures
    locked = failures >= MAX_FAILURES
    if locked:
        # The counter starts again after the lock; the code in flight is dead either way.
        signer.otp_failures, signer.otp_locked_until = 0, now + LOCK_TIME
        _retire_codes(session, signer, now)
    session.flush()
    _audit_failure(session, ctx, access, reason="expired" if expired else "wrong",
                   failures=failures, locked=locked)
    if locked:
        return _locked(int(LOCK_TIME.total_seconds()))
    left = MAX_FAILURES - failures
    if expired:
        return AuthenticationFailed("The code has expired or was already used. Ask for a new "
                                    "code.", code="otp_expired", details={"attempts_left": left})
    return AuthenticationFailed(f"The code is not correct ({left} attempts left).",
                                code="otp_incorrect", details={"attempts_left": left})


def _audit_failure(session: Session, ctx: Ctx, access: SignerAccess, *, reason: str,
                   failures: int | None = None, locked: bool = False) -> None:
    audit.record(session, ctx, EventKind.SIGNER_OTP_FAILED, org_id=access.contract.org_id,
                 contract_id=access.contract.id,
                 data={"signer_id": str(access.signer.id), "email": access.signer.email,
                       "channel": "email", "reason": reason, "failures": failures,
                       "locked": locked})

