"""The platform's PKI at run time, and each signer's key: set up, unlock with the PIN, revoke.

``PlatformAuthority`` holds the four platform certificates with their keys, decrypted and parsed
once per process (parsing an RSA key costs ~40 ms; performance.md). Everything that changes state
takes a session and never commits.

PIN attempts: after each wrong PIN the next attempt must wait longer (1, 2, 4, 8 s); the fifth
wrong PIN in a row locks signing for ``PIN_LOCK_MINUTES``, and every further wrong PIN after a lock
doubles the lock. A correct PIN resets the count. The count is stored with the credential, so it
holds across processes and restarts.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import pki
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.credentials.models import IssuedCertificate, PlatformCredential, SignerCredential
from econtract.errors import (
    ConfigurationError,
    NotFound,
    PinIncorrect,
    SigningLocked,
    ValidationFailed,
)
from econtract.storage import MasterKeyring

PIN_MAX_FAILURES = 5
PIN_LOCK_MINUTES = 15
CRL_VALIDITY = timedelta(days=1)
SIGNER_CERT_DAYS = 730


@dataclass(frozen=True)
class PlatformAuthority:
    """The decrypted platform PKI of this installation (keys parsed once, then reused)."""

    root: pki.CaMaterial
    issuing: pki.CaMaterial
    tsa: pki.CaMaterial
    seal: pki.CaMaterial
    tsa_service: pki.TimeStampAuthority

    @property
    def cas(self) -> tuple[pki.CaMaterial, ...]:
        return (self.root, self.issuing)

    def ca(self, slug: str) -> pki.CaMaterial:
        for material in (self.root, self.issuing, self.tsa, self.seal):
            if material.slug == slug:
                return material
        raise NotFound(f"No certificate authority {slug!r}.", code="ca_not_found")

    @classmethod
    def load(cls, session: Session, keyring: MasterKeyring) -> PlatformAuthority:
        rows = {row.slug: row for row in session.scalars(select(PlatformCredential))}
        missing = {pki.ROOT_SLUG, pki.SIGNER_CA_SLUG, pki.TSA_SLUG, pki.SEAL_SLUG} - set(rows)
        if missing:
            raise ConfigurationError(
                f"the platform PKI is incomplete (missing {', '.join(sorted(missing))}); "
                "was `econtract init` run with this database?")

        def material(slug: str) -> pki.CaMaterial:
            row = rows[slug]
            return pki.CaMaterial(slug, x509.load_der_x509_certificate(row.certificate),
                                  pki.open_platform_key(keyring, row.key_blob, label=slug))

        root, issuing = material(pki.ROOT_SLUG), material(pki.SIGNER_CA_SLUG)
        tsa, seal = material(pki.TSA_SLUG), material(pki.SEAL_SLUG)
        service = pki.TimeStampAuthority(tsa.certificate, tsa.private_key,
                                         chain=(root.certificate,))
        return cls(root=root, issuing=issuing, tsa=tsa, seal=seal, tsa_service=service)


# --- set-up ----------------------------------------------------------------------------------

def install_platform_pki(session: Session, keyring: MasterKeyring, platform: pki.PlatformPki,
                         *, now: datetime) -> None:
    """Store a freshly created platform PKI (``econtract init``); keys only sealed."""
    for material, kind, issuer in ((platform.root, "ca", pki.ROOT_SLUG),
                                   (platform.issuing, "ca", pki.ROOT_SLUG),
                                   (platform.tsa, "tsa", pki.ROOT_SLUG),
                                   (platform.seal, "seal", pki.SIGNER_CA_SLUG)):
        session.add(PlatformCredential(
            slug=material.slug, certificate=material.cert_der, created_at=now,
            key_blob=pki.seal_platform_key(keyring, material.private_key, label=material.slug)))
        register_certificate(session, material.certificate, kind=kind, issuer_slug=issuer,
                             now=now)
    session.flush()


def register_certificate(session: Session, certificate: x509.Certificate, *, kind: str,
                         issuer_slug: str, now: datetime) -> IssuedCertificate:
    row = IssuedCertificate(
        serial=format(certificate.serial_number, "x"), issuer_slug=issuer_slug, kind=kind,
        subject=certificate.subject.rfc4514_string()[:500],
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
        created_at=now)
    session.add(row)
    return row


# --- publication: CA certificates, CRLs, OCSP, time stamps --------------------------------

def crl(session: Session, authority: PlatformAuthority, *, slug: str, now: datetime) -> bytes:
    """A fresh CRL of ``slug`` (made on each request, so a revocation shows at once)."""
    ca = authority.ca(slug)
    if ca not in authority.cas:
        raise NotFound(f"{slug!r} does not issue certificates.", code="ca_not_found")
    rows = session.scalars(select(IssuedCertificate).where(
        IssuedCertificate.issuer_slug == slug, IssuedCertificate.revoked_at.is_not(None)))
    revoked = [pki.Revocation(int(r.serial, 16), r.revoked_at, _reason(r.revocation_reason))
               for r in rows if r.revoked_at is not None]
    # Milliseconds since the epoch: strictly increasing across processes and restarts.
    number = int(now.timestamp() * 1000)
    return pki.build_crl(ca, revoked, now=now, next_update=now + CRL_VALIDITY, number=number)


def _reason_flag(reason: str) -> x509.ReasonFlags:
    """``key_compromise`` or ``keyCompromise`` (RFC 5280's spelling)."""
    try:
        return x509.ReasonFlags[reason] if reason in x509.ReasonFlags.__members__ else \
            x509.ReasonFlags(reason)
    except ValueError:
        raise ValidationFailed(f"Unknown revocation reason {reason!r}.",
                               code="invalid_reason") from None


def _reason(name: str | None) -> x509.ReasonFlags | None:
    return x509.ReasonFlags(name) if name else None


def ocsp(session: Session, authority: PlatformAuthority, *, request_der: bytes,
         now: datetime) -> bytes:
    """Answer an OCSP request for any certificate the platform's CAs issued."""
    def status_of(issuer_slug: str, serial: int) -> pki.CertStatus:
        row = session.get(IssuedCertificate, format(serial, "x"))
        if row is None or row.issuer_slug != issuer_slug:
            return pki.CertStatus.unknown()
        if row.revoked_at is not None:
            return pki.CertStatus.revoked(row.revoked_at, _reason(row.revocation_reason))
        return pki.CertStatus.good()

    return pki.respond(request_der, cas=authority.cas, status_of=status_of, now=now)


def timestamp(authority: PlatformAuthority, *, request_der: bytes, now: datetime) -> bytes:
    """The built-in RFC 3161 TSA; 63 random bits make serials unique without shared state."""
    return authority.tsa_service.respond(request_der, now=now, serial=secrets.randbits(63) + 1)


def certificate_pem(authority: PlatformAuthority, slug: str) -> bytes:
    return authority.ca(slug).certificate.public_bytes(serialization.Encoding.PEM)


# --- signer credentials ----------------------------------------------------------------------

def _aad(credential_id: str) -> bytes:
    return f"econtract-signer-key-v1|{credential_id}".encode()


def active_credential(session: Session, *, email: str) -> SignerCredential | None:
    return session.scalar(select(SignerCredential).where(
        SignerCredential.email == email.strip().lower(), SignerCredential.status == "active"))


def set_up_credential(session: Session, ctx: Ctx, *, keyring: MasterKeyring,
                      authority: PlatformAuthority, name: str, email: str, pin: str,
                      base_url: str) -> tuple[SignerCredential, pki.PrivateKey]:
    """Key setup (密钥设置): a new key pair, a certificate naming the verified identity, the key
    stored under the PIN and the master key. Returns the unlocked key for the first signature."""
    pki.check_pin_rules(pin)
    now = ctx.now()
    key = pki.new_signer_key()
    certificate = pki.issue_signer_certificate(
        authority.issuing, public_key=key.public_key(), name=name, email=email,
        base_url=base_url, now=now, days=SIGNER_CERT_DAYS)
    issued = register_certificate(session, certificate, kind="signer",
                                  issuer_slug=pki.SIGNER_CA_SLUG, now=now)
    credential = SignerCredential(
        id=uuid.uuid4(), email=email.strip().lower(), name=name,
        serial=issued.serial, certificate=certificate.public_bytes(serialization.Encoding.DER),
        key_blob=b"", created_at=now)
    credential.key_blob = pki.protect_signer_key(key, pin=pin, keyring=keyring,
                                                 aad=_aad(str(credential.id)))
    session.add(credential)
    session.flush()
    audit.record(session, ctx, EventKind.SIGNER_KEY_CREATED, org_id=ctx.org_id,
                 data={"email": credential.email, "serial": issued.serial,
                       "subject": issued.subject})
    return credential, key


@dataclass(frozen=True)
class UnlockOutcome:
    """The unlocked key, or the refusal; the caller commits either way so failures count."""

    key: pki.PrivateKey | None
    error: PinIncorrect | SigningLocked | None


def unlock(session: Session, ctx: Ctx, *, keyring: MasterKeyring, credential: SignerCredential,
           pin: str) -> UnlockOutcome:
    """Check the PIN (意愿认证: every signature needs it) with growing delays and a lock."""
    now = ctx.now()
    wait = _pin_wait(credential, now)
    if wait is not None:
        seconds = max(int(wait.total_seconds()) + 1, 1)
        message = (f"Too many wrong PINs. Signing is locked; try again in {seconds} seconds."
                   if credential.pin_failures >= PIN_MAX_FAILURES else
                   f"Please wait {seconds} seconds before entering the PIN again.")
        return UnlockOutcome(None, SigningLocked(message, details={"retry_after": seconds}))
    try:
        key = pki.unlock_signer_key(credential.key_blob, pin=pin, keyring=keyring,
                                    aad=_aad(str(credential.id)))
    except PinIncorrect:
        return UnlockOutcome(None, _count_pin_failure(session, ctx, credential, now))
    credential.pin_failures, credential.pin_locked_until = 0, None
    credential.last_used_at = now
    return UnlockOutcome(key, None)


def _pin_wait(credential: SignerCredential, now: datetime) -> timedelta | None:
    if credential.pin_locked_until and credential.pin_locked_until > now:
        return credential.pin_locked_until - now
    return None


def _count_pin_failure(session: Session, ctx: Ctx, credential: SignerCredential,
                       now: datetime) -> PinIncorrect | SigningLocked:
    credential.pin_failures += 1
    failures = credential.pin_failures
    if failures >= PIN_MAX_FAILURES:
        minutes = PIN_LOCK_MINUTES * 2 ** (failures - PIN_MAX_FAILURES)
        credential.pin_locked_until = now + timedelta(minutes=min(minutes, 24 * 60))
    else:
        credential.pin_locked_until = now + timedelta(seconds=2 ** (failures - 1))
    session.flush()
    audit.record(session, ctx, EventKind.SIGNER_PIN_FAILED, org_id=ctx.org_id,
                 data={"email": credential.email, "failures": failures})
    if failures >= PIN_MAX_FAILURES:
        return SigningLocked("Too many wrong PINs: signing is locked for a while.",
                             details={"retry_after": int((credential.pin_locked_until - now)
                                                         .total_seconds())})
    left = PIN_MAX_FAILURES - failures
    return PinIncorrect(f"The signing PIN is not correct ({left} attempts left).",
                        details={"attempts_left": left})


def revoke_credential(session: Session, ctx: Ctx, *, credential: SignerCredential,
                      reason: str = "superseded") -> None:
    """Retire a signer's key: its certificate is listed at once in the CRL and OCSP."""
    now = ctx.now()
    credential.status, credential.revoked_at = "revoked", now
    issued = session.get_one(IssuedCertificate, credential.serial)
    if issued.revoked_at is None:
        issued.revoked_at, issued.revocation_reason = now, _reason_flag(reason).value
    session.flush()
    audit.record(session, ctx, EventKind.SIGNER_KEY_REVOKED, org_id=ctx.org_id,
                 data={"email": credential.email, "serial": credential.serial,
                       "reason": reason})
