"""A signer signs with their own key: set it up at the first signature, unlock it with the PIN
for every signature after that (意愿认证), sign their field (PAdES B-T), store the new version.

Signing one contract is serialised by the contract's row lock (``FOR UPDATE`` on PostgreSQL;
SQLite runs one writer at a time), so two signers never sign the same revision. The new PDF blob
is written before the transaction commits: a crash at any point leaves either the previous
version current with the signer still unsigned, or everything recorded — never half of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from sqlalchemy.orm import Session

from econtract import pki
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Actor, ActorKind, Ctx
from econtract.contracts import sending
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.contracts.states import Event, Status, transition
from econtract.credentials import service as credentials
from econtract.credentials.engine import SigningEngine
from econtract.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PinIncorrect,
    SigningLocked,
    ValidationFailed,
)
from econtract.parties import invitations, links, routing
from econtract.parties.models import Signer
from econtract.signing import AppearanceSpec, SigningKey, sign_field
from econtract.storage import BlobStore, MasterKeyring


@dataclass(frozen=True)
class Appearance:
    """How the signature looks: a typed name or a drawn/uploaded PNG."""

    kind: Literal["typed", "drawn"]
    text: str | None = None
    image_png: bytes | None = None
    seal_png: bytes | None = None


@dataclass(frozen=True)
class SignOutcome:
    """Either the signed contract, or a PIN refusal; the caller commits either way, so wrong
    PINs are counted, then raises ``error``."""

    contract: Contract | None
    error: PinIncorrect | SigningLocked | None


def signer_actor(signer: Signer) -> Actor:
    return Actor(kind=ActorKind.SIGNER, id=signer.id, org_id=signer.org_id, label=signer.email)


def get_signer(session: Session, *, contract_id: uuid.UUID, signer_id: uuid.UUID) -> Signer:
    signer = session.get(Signer, signer_id)
    if signer is None or signer.contract_id != contract_id:
        raise NotFound("No such signer.", code="signer_not_found")
    return signer


def sign(session: Session, ctx: Ctx, *, blobs: BlobStore, engine: SigningEngine,
         keyring: MasterKeyring, contract_id: uuid.UUID, signer_id: uuid.UUID, pin: str,
         appearance: Appearance) -> SignOutcome:
    """Sign ``contract_id`` as ``signer_id`` (the actor must be that signer)."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    signer = get_signer(session, contract_id=contract.id, signer_id=signer_id)
    _check_may_sign(ctx, contract, signer)
    key_outcome = _signing_key(session, ctx, engine=engine, keyring=keyring, signer=signer,
                               pin=pin)
    if isinstance(key_outcome, PinIncorrect | SigningLocked):
        return SignOutcome(None, key_outcome)
    signing_key, serial = key_outcome
    current = contracts.current_version(session, contract=contract)
    data = blobs.get(org_id=contract.org_id, contract_id=contract.id, key=current.blob_key,
                     sha256=current.sha256)
    now = ctx.now()
    signed = sign_field(data, field_name=signer.field_name or "", key=signing_key,
                        appearance=_appearance_spec(signer, appearance), tsa=engine.tsa,
                        signing_time=now, reason="签署 / Signed", location=engine.base_url)
    sending.self_check(session, engine, signed, now, step="signature")
    version = contracts.store_version(session, ctx, blobs=blobs, contract=contract, data=signed,
                                      kind="signed", filename=current.filename,
                                      page_count=current.page_count, after=current)
    _record_signature(session, ctx, contract, signer, version.sha256, version.number, serial)
    return SignOutcome(contract, None)


MAX_REASON_LENGTH = 2000


def decline(session: Session, ctx: Ctx, *, contract_id: uuid.UUID, signer_id: uuid.UUID,
            reason: str) -> Contract:
    """The signer refuses to sign: a reason is required; signing ends for everyone, the owner
    is told, and the signer's links die (the others' die with the contract's state)."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    signer = get_signer(session, contract_id=contract.id, signer_id=signer_id)
    if ctx.actor.kind is not ActorKind.SIGNER or ctx.actor.id != signer.id:
        raise PermissionDenied("Only the invited signer can decline in their place.")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("A reason is required to decline.", code="reason_required")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationFailed(f"The reason may be at most {MAX_REASON_LENGTH} characters.",
                               code="reason_too_long")
    if Status(contract.status) not in (Status.SENT, Status.SIGNING):
        raise InvalidTransition(f"A contract that is {contract.status} cannot be declined.")
    if signer.status in ("signed", "declined"):
        raise Conflict(f"You have already {signer.status} this contract.",
                       code=f"already_{signer.status}")
    if signer.role not in routing.SIGNING_ROLES or signer.status == "waiting":
        raise PermissionDenied("It is not your turn to sign yet.", code="not_your_turn")
    now = ctx.now()
    signer.status, signer.declined_at, signer.decline_reason = "declined", now, reason
    session.flush()
    audit.record(session, ctx, EventKind.SIGNER_DECLINED, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"signer_id": str(signer.id), "email": signer.email, "name": signer.name,
                       "reason": reason})
    transition(session, ctx, contract, Event.DECLINE,
               {"signer_id": str(signer.id), "reason": reason})
    links.revoke_for_signer(session, signer=signer, now=now)
    invitations.notify_declined(session, ctx, contract=contract, signer=signer, reason=reason)
    return contract


def _check_may_sign(ctx: Ctx, contract: Contract, signer: Signer) -> None:
    if ctx.actor.kind is not ActorKind.SIGNER or ctx.actor.id != signer.id:
        raise PermissionDenied("Only the invited signer can sign in their place.")
    if Status(contract.status) not in (Status.SENT, Status.SIGNING):
        raise InvalidTransition(f"A contract that is {contract.status} cannot be signed.")
    if contract.sign_deadline is not None and contract.sign_deadline <= ctx.now():
        raise InvalidTransition("The signing deadline has passed.", code="deadline_passed")
    if signer.status == "signed":
        raise Conflict("You have already signed this contract.", code="already_signed")
    if signer.role not in routing.SIGNING_ROLES or signer.status == "declined":
        raise PermissionDenied("This party does not sign the contract.")
    if signer.status == "waiting" or not routing.is_turn_of(contract, signer):
        raise PermissionDenied("It is not your turn to sign yet.", code="not_your_turn")
    if signer.status != "verified":
        raise PermissionDenied("Verify your identity before signing.",
                               code="identity_not_verified")


def _signing_key(session: Session, ctx: Ctx, *, engine: SigningEngine, keyring: MasterKeyring,
                 signer: Signer, pin: str) -> tuple[SigningKey, str] | PinIncorrect | SigningLocked:
    """The signer's key: set up now (first signature ever, 密钥设置) or unlocked with the PIN."""
    credential = credentials.active_credential(session, email=signer.email)
    if credential is None:
        credential, private_key = credentials.set_up_credential(
            session, ctx, keyring=keyring, authority=engine.authority, name=signer.name,
            email=signer.email, pin=pin, base_url=engine.base_url)
    else:
        outcome = credentials.unlock(session, ctx, keyring=keyring, credential=credential,
                                     pin=pin)
        if outcome.error is not None or outcome.key is None:
            return outcome.error or PinIncorrect()
        private_key = outcome.key
    certificate = x509.load_der_x509_certificate(credential.certificate)
    return engine.signer_key(private_key, certificate), credential.serial


def _appearance_spec(signer: Signer, appearance: Appearance) -> AppearanceSpec:
    if appearance.kind == "drawn" and not appearance.image_png:
        raise PermissionDenied("Draw or upload your signature first.", code="appearance_missing")
    return AppearanceSpec(name=signer.name, email=signer.email,
                          image_png=appearance.image_png if appearance.kind == "drawn" else None,
                          typed_name=(appearance.text or signer.name)[:80],
                          seal_png=appearance.seal_png)


def _record_signature(session: Session, ctx: Ctx, contract: Contract, signer: Signer,
                      sha256: str, number: int, serial: str) -> None:
    now = ctx.now()
    signer.status, signer.signed_at, signer.credential_serial = "signed", now, serial
    session.flush()
    audit.record(session, ctx, EventKind.SIGNER_SIGNED, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"signer_id": str(signer.id), "email": signer.email, "name": signer.name,
                       "certificate_serial": serial, "version": number, "sha256": sha256})
    transition(session, ctx, contract, Event.SIGN_PARTIALLY,
               {"signer_id": str(signer.id), "version": number})
    if routing.all_signed(contract):
        sending.queue_seal(session, contract=contract, now=now)
    else:
        routing.open_next_group(session, ctx, contract)


def reset_pin(session: Session, ctx: Ctx, *, engine: SigningEngine, keyring: MasterKeyring,
              contract_id: uuid.UUID, signer_id: uuid.UUID, new_pin: str) -> None:
    """A forgotten PIN: with identity proven again (the signer is ``verified`` on this contract),
    the old certificate is revoked and a new key with a new PIN replaces it."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    signer = get_signer(session, contract_id=contract.id, signer_id=signer_id)
    if ctx.actor.kind is not ActorKind.SIGNER or ctx.actor.id != signer.id:
        raise PermissionDenied("Only the signer can reset their own PIN.")
    if signer.status != "verified":
        raise PermissionDenied("Verify your identity again before choosing a new PIN.",
                               code="identity_not_verified")
    pki.check_pin_rules(new_pin)  # before revoking anything: a weak PIN changes nothing
    old = credentials.active_credential(session, email=signer.email)
    if old is not None:
        credentials.revoke_credential(session, ctx, credential=old, reason="superseded")
    credentials.set_up_credential(session, ctx, keyring=keyring, authority=engine.authority,
                                  name=signer.name, email=signer.email, pin=new_pin,
                                  base_url=engine.base_url)
