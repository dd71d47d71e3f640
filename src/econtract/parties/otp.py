"""One-time codes (身份验证): proving the signer reads the invited mailbox or phone.

The channel is the one the sender chose for the signer (``Signer.auth_method``): ``email_otp``
(the default) mails the code, ``sms_otp`` texts it to ``Signer.phone`` through the SMS outbox
job; the method that proved the identity is kept in ``Signer.identity_method``.

Six digits from the OS CSPRNG, five minutes, one use. Only the newest code works; five wrong
tries in a row lock the signer out for fifteen minutes and retire the code, so an attacker gets
at most five guesses per code out of 10^6. Sends are rate-limited per signer (one a minute, five
an hour) because each one is a message we send on someone's behalf, and per client address (ten
an hour across all signers) so one machine holding many links cannot flood inboxes and phones.

Wrong tries and refused sends must be audited even though the request fails: ``verify_code`` and
``send_code`` return the refusal instead of raising it, the caller commits, then raises (the
pattern of ``SignOutcome``).
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
from econtract.errors import (
    AccountLocked,
    AuthenticationFailed,
    EContractError,
    PermissionDenied,
    UpstreamError,
)
from econtract.notifications import messages, sms
from econtract.notifications.jobs import queue_email
from econtract.parties import routing
from econtract.parties.links import SignerAccess
from econtract.parties.models import Signer, SignerOtp

METHOD = "email_otp"
"""The default method; ``SMS_METHOD`` when the sender asked for codes by text message."""
SMS_METHOD = "sms_otp"
CHANNELS = {METHOD: "email", SMS_METHOD: "sms"}
CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=5)
MAX_FAILURES = 5
LOCK_TIME = timedelta(minutes=15)
SEND_INTERVAL = timedelta(seconds=60)
SENDS_PER_HOUR = 5
SENDS_PER_IP_PER_HOUR = 10
_CODE = re.compile(rf"\d{{{CODE_DIGITS}}}")


@dataclass(frozen=True)
class CodeSent:
    channel: str
    sent_to: str
    """The address, or the phone number masked (``+86 138****5678``)."""
    expires_at: datetime
    resend_after: datetime


@dataclass(frozen=True)
class SendOutcome:
    """``error`` is ``None`` when a code went out; otherwise commit (the refusal is audited),
    then raise it."""

    sent: CodeSent | None
    error: EContractError | None = None


@dataclass(frozen=True)
class VerifyOutcome:
    """``error`` is ``None`` when the identity is proven; otherwise commit, then raise it."""

    error: EContractError | None
    method: str = METHOD
    """The method that proved the identity (the code's channel)."""


def _hash(otp_id: uuid.UUID, code: str) -> str:
    # Salted with the row id so equal codes never share a hash. Six digits fall to brute force
    # offline anyway; what protects them is the five-minute life and the lock, not the hash.
    return hashlib.sha256(f"econtract-otp-v1|{otp_id}|{code}".encode()).hexdigest()


def method_of(signer: Signer) -> str:
    """The method the signer proves their identity with (``email_otp`` or ``sms_otp``)."""
    return signer.auth_method if signer.auth_method in CHANNELS else METHOD


def _require_turn(access: SignerAccess) -> None:
    if access.signer.status == "waiting" or not routing.is_turn_of(access.contract,
                                                                   access.signer):
        raise PermissionDenied("It is not your turn to sign yet.", code="not_your_turn")


def locked_for(signer: Signer, now: datetime) -> int | None:
    """Seconds left of the signer's verification lock (wrong one-time or access codes)."""
    if signer.otp_locked_until is not None and signer.otp_locked_until > now:
        return max(math.ceil((signer.otp_locked_until - now).total_seconds()), 1)
    return None


def _locked(seconds: int) -> AccountLocked:
    return AccountLocked(f"Too many wrong codes. Try again in {seconds} seconds.",
                         code="otp_locked", details={"retry_after": seconds})


def send_code(session: Session, ctx: Ctx, *, access: SignerAccess,
              sms_enabled: bool = True, default_country_code: str = "86") -> SendOutcome:
    """Make a new code (retiring older ones) and queue it by the signer's channel.

    ``sms_enabled`` is false when the installation has no SMS provider
    (``ECONTRACT_SMS_BACKEND=none``): a code by SMS is then refused before one is made.
    """
    signer, contract = access.signer, access.contract
    now = ctx.now()
    _require_turn(access)
    seconds = locked_for(signer, now)
    if seconds is not None:
        return SendOutcome(None, _locked(seconds))
    method = method_of(signer)
    phone = None
    if method == SMS_METHOD:
        if not sms_enabled:
            return SendOutcome(None, UpstreamError(
                "Codes by text message are not available here. Ask the sender to choose "
                "e-mail.", code="sms_unavailable"))
        phone = sms.normalise_phone(signer.phone or "",
                                    default_country_code=default_country_code)
    refusal = _check_send_rate(session, ctx, access, now)
    if refusal is not None:
        return SendOutcome(None, refusal)
    _retire_codes(session, signer, now)
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    channel = CHANNELS[method]
    otp = SignerOtp(id=uuid.uuid4(), signer_id=signer.id, channel=channel, ip=ctx.ip,
                    created_at=now, expires_at=now + CODE_LIFETIME, code_hash="")
    otp.code_hash = _hash(otp.id, code)
    session.add(otp)
    to = _queue(session, access, code=code, phone=phone, now=now)
    audit.record(session, ctx, EventKind.SIGNER_OTP_SENT, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"signer_id": str(signer.id), "channel": channel, "to": to,
                       "expires_at": otp.expires_at.isoformat()})
    return SendOutcome(CodeSent(channel=channel, sent_to=sms.mask_phone(to) if phone else to,
                                expires_at=otp.expires_at, resend_after=now + SEND_INTERVAL))


def _queue(session: Session, access: SignerAccess, *, code: str, phone: str | None,
           now: datetime) -> str:
    """Queue the code by SMS to ``phone``, or else by e-mail; returns the recipient."""
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    org_id = access.contract.org_id
    if phone is not None:
        sms.queue_sms(session, to=phone, now=now, org_id=org_id,
                      text=messages.signing_code_sms(code=code, minutes=minutes))
        return phone
    queue_email(session, message=messages.signing_code(
        email=access.signer.email, code=code, minutes=minutes, title=access.contract.title),
        now=now, org_id=org_id)
    return access.signer.email


def _check_send_rate(session: Session, ctx: Ctx, access: SignerAccess,
                     now: datetime) -> EContractError | None:
    """The refusal when this signer or this client address asked too often (audited)."""
    hour_ago = now - timedelta(hours=1)
    recent = list(session.scalars(select(SignerOtp.created_at).where(
        SignerOtp.signer_id == access.signer.id, SignerOtp.created_at > hour_ago)))
    wait = timedelta(0)
    if recent and max(recent) > now - SEND_INTERVAL:
        wait = max(recent) + SEND_INTERVAL - now
    if len(recent) >= SENDS_PER_HOUR:
        wait = max(wait, sorted(recent)[-SENDS_PER_HOUR] + timedelta(hours=1) - now)
    scope = "signer"
    if wait <= timedelta(0) and ctx.ip:
        # Across every signer and contract: the address is the only thing tying them together.
        by_ip = sorted(session.scalars(select(SignerOtp.created_at).where(
            SignerOtp.ip == ctx.ip, SignerOtp.created_at > hour_ago)))
        if len(by_ip) >= SENDS_PER_IP_PER_HOUR:
            wait, scope = by_ip[-SENDS_PER_IP_PER_HOUR] + timedelta(hours=1) - now, "ip"
    if wait <= timedelta(0):
        return None
    seconds = max(math.ceil(wait.total_seconds()), 1)
    audit.record(session, ctx, EventKind.SIGNER_OTP_RATE_LIMITED,
                 org_id=access.contract.org_id, contract_id=access.contract.id,
                 data={"signer_id": str(access.signer.id), "scope": scope,
                       "retry_after": seconds})
    message = (f"A code was sent recently. Ask for another in {seconds} seconds."
               if scope == "signer" else
               f"Too many codes were asked for from this network. Try again in {seconds} "
               "seconds.")
    return AccountLocked(message, code="otp_rate_limited",
                         details={"retry_after": seconds, "scope": scope})


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
    seconds = locked_for(signer, now)
    if seconds is not None:
        _audit_failure(session, ctx, access, reason="locked")
        return VerifyOutcome(_locked(seconds))
    code = code.strip()
    active = _active_code(session, signer, now)
    if active is not None and _CODE.fullmatch(code) and \
            hmac.compare_digest(active.code_hash, _hash(active.id, code)):
        return VerifyOutcome(None, _accept(session, ctx, access, active))
    return VerifyOutcome(_count_failure(session, ctx, access, now, expired=active is None))


def _accept(session: Session, ctx: Ctx, access: SignerAccess, otp: SignerOtp) -> str:
    signer, now = access.signer, ctx.now()
    # The channel the code went by is what was proven, whatever the setting says now.
    method = SMS_METHOD if otp.channel == "sms" else METHOD
    otp.used_at = now
    signer.otp_failures, signer.otp_locked_until = 0, None
    if signer.status in ("invited", "viewed"):
        signer.status = "verified"
    signer.verified_at, signer.identity_method = now, method
    session.flush()
    data = {"signer_id": str(signer.id), "email": signer.email, "method": method}
    if method == SMS_METHOD:
        data["phone"] = signer.phone or ""
    audit.record(session, ctx, EventKind.SIGNER_IDENTITY_VERIFIED,
                 org_id=access.contract.org_id, contract_id=access.contract.id, data=data)
    return method


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
                       "channel": CHANNELS[method_of(access.signer)], "reason": reason,
                       "failures": failures,
                       "locked": locked})

