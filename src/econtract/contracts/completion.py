"""Completion: the certificate of completion (完成证书) and the e-mails that close a contract.

``issue_certificate`` runs as the ``contract.certificate`` job, which ``sending.ensure_sealed``
queues in the transaction that completes the contract. It is idempotent: once the contract has a
certificate it does nothing, and the certificate, its audit event and the completion e-mails
commit together, so a retry after a crash neither loses nor repeats any of them.

What the certificate states, and where each fact comes from:

* the document's SHA-256 at send and at completion: the ``certified`` and the ``sealed`` rows of
  ``document_versions`` (the same values the API and the timeline show);
* per signer: identity method and time (the signer row), IP address and user agent (the audit
  event of their signature), and the signing time the RFC 3161 timestamp of their signature
  proves — read by our own verifier from the sealed PDF, matched by field name or certificate
  serial, not taken from our clock;
* the approvals: the ``contract.submitted/approved/rejected`` events, if any;
* the head (seq, hash) of the organisation's audit chain when the certificate was issued. The
  ``contract.certificate_issued`` event is recorded right after, with that hash as its
  ``prev_hash``, so anyone can place the certificate in the chain ``econtract audit verify``
  checks. Rendering and sealing take about a second, so the head is first read without a lock and
  the work redone under the lock only if another event came in meanwhile (rare) — the lock on the
  head row serialises every audit write of the organisation and is not held longer than needed.

The certificate is certified by the platform seal (DocMDP P=1, timestamped), verified by our own
verifier before it is stored (encrypted, like every document), and mailed with the final PDF to
every party and the owner. The mails carry the PDFs by reference (see
``econtract.notifications.email``), not as copies in the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.accounts.models import Organisation, User
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent, AuditHead
from econtract.context import Ctx
from econtract.contracts import sending
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract, DocumentVersion
from econtract.contracts.states import Status
from econtract.credentials.engine import SigningEngine
from econtract.errors import IntegrityError, InvalidTransition, NotFound
from econtract.notifications import messages
from econtract.notifications.email import StoredAttachment
from econtract.notifications.jobs import queue_email
from econtract.parties import routing
from econtract.parties.models import Signer
from econtract.signing.certificate import (
    CertificateApproval,
    CertificateData,
    CertificateSigner,
    render_certificate,
    seal_certificate,
)
from econtract.signing.report import SignatureKind, SignatureReport, VerificationReport
from econtract.signing.verify import verify_pdf
from econtract.storage import BlobStore, StoredBlob

CERTIFICATE_FILENAME = "certificate-of-completion.pdf"
APPROVAL_KINDS = (EventKind.CONTRACT_SUBMITTED, EventKind.CONTRACT_APPROVED,
                  EventKind.CONTRACT_REJECTED)
_FINISHED = (Status.COMPLETED, Status.LAPSED)

Head = tuple[int, str]


def issue_certificate(session: Session, ctx: Ctx, *, blobs: BlobStore, engine: SigningEngine,
                      contract_id: uuid.UUID) -> Contract:
    """Issue, store and mail the certificate of completion, once (idempotent)."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    if contract.certificate_sha256 is not None:
        return contract
    if Status(contract.status) not in _FINISHED:
        raise InvalidTransition(f"A contract that is {contract.status} has no certificate of "
                                "completion yet.", code="certificate_not_ready")
    certified, sealed = _version(session, contract, "certified"), \
        _version(session, contract, "sealed")
    now = ctx.now()
    final = blobs.get(org_id=contract.org_id, contract_id=contract.id, key=sealed.blob_key,
                      sha256=sealed.sha256)
    facts = _Facts(contract=contract, certified=certified, sealed=sealed,
                   report=verify_pdf(final, engine.trust(session, now)),
                   events=audit.contract_events(session, org_id=contract.org_id,
                                                contract_id=contract.id),
                   organisation=_org_name(session, contract), base_url=ctx.base_url)

    def build(head: Head) -> bytes:
        rendered = render_certificate(facts.data(head, now))
        pdf = seal_certificate(rendered, key=engine.seal_key, tsa=engine.tsa, signing_time=now,
                               location=engine.base_url)
        sending.self_check(session, engine, pdf, now, step="certificate of completion")
        return pdf

    head, pdf = _at_head(session, contract.org_id, build)
    blob = blobs.put(org_id=contract.org_id, contract_id=contract.id, data=pdf,
                     kind="certificate")
    contract.certificate_blob_key, contract.certificate_sha256 = blob.key, blob.sha256
    event = audit.record(session, ctx, EventKind.CERTIFICATE_ISSUED, org_id=contract.org_id,
                         contract_id=contract.id,
                         data={"sha256": blob.sha256, "size": blob.size,
                               "document_sha256": sealed.sha256, "version": sealed.number,
                               "audit_head_seq": head[0], "audit_head_hash": head[1]})
    if (event.seq, event.prev_hash) != (head[0] + 1, head[1]):
        # Cannot happen while the head row is locked; a certificate naming the wrong
        # predecessor must never be stored, so stop here rather than trust it.
        raise IntegrityError("the audit chain moved while the certificate was issued")
    _queue_emails(session, ctx, contract, sealed=sealed, certificate=blob,
                  org_name=facts.organisation)
    session.flush()
    return contract


def download_certificate(session: Session, ctx: Ctx, *, blobs: BlobStore,
                         contract_id: uuid.UUID) -> tuple[Contract, bytes]:
    """The sealed certificate of completion, decrypted and hash-checked; audited."""
    contract = contracts.get(session, ctx, contract_id=contract_id)
    if contract.certificate_blob_key is None or contract.certificate_sha256 is None:
        raise NotFound("The certificate of completion is not ready yet.",
                       code="certificate_not_ready")
    data = blobs.get(org_id=contract.org_id, contract_id=contract.id,
                     key=contract.certificate_blob_key, sha256=contract.certificate_sha256)
    audit.record(session, ctx, EventKind.CERTIFICATE_DOWNLOADED, org_id=contract.org_id,
                 contract_id=contract.id, data={"sha256": contract.certificate_sha256})
    return contract, data


# --- the audit head --------------------------------------------------------------------------


def _at_head(session: Session, org_id: uuid.UUID, build: Callable[[Head], bytes]) -> tuple[
        Head, bytes]:
    """``build(head)`` for the chain head the next event will follow; the head stays locked."""
    row = session.execute(select(AuditHead.seq, AuditHead.hash)
                          .where(AuditHead.chain == audit.chain_for(org_id))).one_or_none()
    seen: Head = (row.seq, row.hash) if row is not None else (0, audit.GENESIS)
    pdf = build(seen)
    head = audit.current_head(session, org_id)  # locked until this transaction ends
    if head != seen:
        pdf = build(head)  # an event came in meanwhile; none can now until we commit
    return head, pdf


# --- gathering the facts ---------------------------------------------------------------------


def _version(session: Session, contract: Contract, kind: str) -> DocumentVersion:
    found = session.scalar(select(DocumentVersion)
                           .where(DocumentVersion.contract_id == contract.id,
                                  DocumentVersion.kind == kind)
                           .order_by(DocumentVersion.number.desc()).limit(1))
    if found is None:
        raise NotFound(f"The contract has no {kind} document.", code="document_not_found")
    return found


def _org_name(session: Session, contract: Contract) -> str:
    org = session.get(Organisation, contract.org_id)
    return org.name if org is not None else ""


class _Facts:
    """What the certificate states, gathered once (a rebuild at a new head reuses it)."""

    def __init__(self, *, contract: Contract, certified: DocumentVersion,
                 sealed: DocumentVersion, report: VerificationReport,
                 events: Sequence[AuditEvent], organisation: str, base_url: str) -> None:
        self.contract, self.certified, self.sealed = contract, certified, sealed
        self.report, self.events, self.organisation = report, events, organisation
        self.base_url = base_url.rstrip("/")

    def data(self, head: Head, now: datetime) -> CertificateData:
        contract = self.contract
        return CertificateData(
            contract_id=str(contract.id), title=contract.title, organisation=self.organisation,
            sha256_at_send=self.certified.sha256, sha256_at_completion=self.sealed.sha256,
            version_at_send=self.certified.number, version_at_completion=self.sealed.number,
            sent_at=self._first(EventKind.CONTRACT_SENT),
            completed_at=self._first(EventKind.CONTRACT_COMPLETED) or contract.status_changed_at,
            generated_at=now, audit_chain=audit.chain_for(contract.org_id),
            audit_head_seq=head[0], audit_head_hash=head[1],
            signers=[self._signer(s) for s in routing.signing_parties(contract)],
            approvals=[CertificateApproval(action=e.kind, actor=e.actor_label, at=e.occurred_at,
                                           comment=_comment(e))
                       for e in self.events if e.kind in APPROVAL_KINDS],
            verify_url=f"{self.base_url}/verify")

    def _first(self, kind: EventKind) -> datetime | None:
        return next((e.occurred_at for e in self.events if e.kind == kind), None)

    def _signer(self, signer: Signer) -> CertificateSigner:
        signed = next((e for e in reversed(self.events) if e.kind == EventKind.SIGNER_SIGNED
                       and (e.data or {}).get("signer_id") == str(signer.id)), None)
        signature = self._signature_of(signer)
        proven = signature is not None and signature.timestamp_proven and \
            signature.timestamp_time is not None
        if proven and signature is not None:
            signed_at = signature.timestamp_time
        else:
            signed_at = (signature.claimed_time if signature else None) or signer.signed_at
        return CertificateSigner(
            name=signer.name, email=signer.email, identity_method=signer.identity_method,
            verified_at=signer.verified_at, signed_at=signed_at, signed_at_proven=proven,
            ip=signed.ip if signed else None, user_agent=signed.user_agent if signed else None,
            certificate_serial=signer.credential_serial, field_name=signer.field_name,
            timestamp_authority=signature.tsa if proven and signature else None)

    def _signature_of(self, signer: Signer) -> SignatureReport | None:
        """The verifier's report on this signer's signature: by field, else by certificate."""
        approvals = [s for s in self.report.signatures if s.kind is SignatureKind.APPROVAL]
        by_field = [s for s in approvals if signer.field_name and s.field_name == signer.field_name]
        by_serial = [s for s in approvals if signer.credential_serial and s.signer is not None
                     and s.signer.serial == signer.credential_serial.lower()]
        found = by_field or by_serial
        return found[0] if found else None


def _comment(event: AuditEvent) -> str | None:
    data = event.data or {}
    value = data.get("comment") or data.get("reason")
    return str(value) if value else None


# --- the completion e-mails ------------------------------------------------------------------


def _recipients(session: Session, contract: Contract) -> list[tuple[str, str, bool]]:
    """(name, e-mail, is owner) of every party — signers, approvers, copy recipients — and
    the owner, each address once."""
    found: dict[str, tuple[str, str, bool]] = {}
    owner = session.get(User, contract.owner_id)
    if owner is not None and owner.is_active:
        found[owner.email.lower()] = (owner.name, owner.email, True)
    for party in contract.signers:
        found.setdefault(party.email.lower(), (party.name, party.email, False))
    return list(found.values())


def _queue_emails(session: Session, ctx: Ctx, contract: Contract, *, sealed: DocumentVersion,
                  certificate: StoredBlob, org_name: str) -> None:
    attachments = (
        StoredAttachment(filename=sealed.filename, content_type="application/pdf",
                         org_id=contract.org_id, contract_id=contract.id, key=sealed.blob_key,
                         sha256=sealed.sha256),
        StoredAttachment(filename=CERTIFICATE_FILENAME, content_type="application/pdf",
                         org_id=contract.org_id, contract_id=contract.id, key=certificate.key,
                         sha256=certificate.sha256))
    base = ctx.base_url.rstrip("/")
    for name, email, is_owner in _recipients(session, contract):
        message = messages.contract_completed(
            email=email, name=name, title=contract.title, org_name=org_name,
            document_sha256=sealed.sha256, certificate_sha256=certificate.sha256,
            verify_url=f"{base}/verify", attachments=attachments,
            contract_url=f"{base}/contracts/{contract.id}" if is_owner else None)
        queue_email(session, message=message, now=ctx.now(), org_id=contract.org_id)
