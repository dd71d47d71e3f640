"""Sending and sealing: the platform's two signatures around the signers' own.

``send`` rewrites the uploaded PDF clean (clauses page, attachments, a signature page with every
signer's field) and certifies it with the platform seal first (DocMDP P=2). ``ensure_sealed``
runs as a job after the last signature: validation data and a document timestamp (PAdES B-LTA),
then the contract is ``completed`` and the certificate job is queued in the same transaction
(``econtract.contracts.completion``: the certificate of completion and the final e-mails), so a
crash between the two steps resumes with the certificate. After every step the platform verifies
its own output and stores nothing that is not ``valid``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import approval
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract, DocumentVersion
from econtract.contracts.states import Event, Status, transition
from econtract.credentials.engine import SigningEngine
from econtract.errors import InvalidTransition, SigningError, ValidationFailed
from econtract.jobs import enqueue
from econtract.parties import routing
from econtract.parties.models import Signer
from econtract.signing import (
    Attachment,
    PrepareSpec,
    SignerSlot,
    certify,
    prepare_document,
    seal_document,
)
from econtract.signing.report import Verdict
from econtract.signing.verify import verify_pdf
from econtract.storage import BlobStore

SEAL_JOB = "contract.seal"
CERTIFICATE_JOB = "contract.certificate"
ROLE_LABELS = {"signer": "签署方 / Signer", "approver": "审批人 / Approver"}


def send(session: Session, ctx: Ctx, *, blobs: BlobStore, engine: SigningEngine,
         contract_id: uuid.UUID) -> Contract:
    """Prepare and certify the document, freeze the contract and open signing."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    contracts.require_edit(ctx, contract)
    if Status(contract.status) not in (Status.DRAFT, Status.APPROVED):
        raise InvalidTransition(f"A contract that is {contract.status} cannot be sent.")
    approval.require_approved(contract)
    _check_ready(contract, ctx.now())
    now = ctx.now()
    source, data = contracts.download_document(session, ctx, blobs=blobs,
                                              contract_id=contract.id, audit_as=None)
    signers = routing.signing_parties(contract)
    for index, signer in enumerate(signers, start=1):
        signer.field_name = f"signer-{index}"
    spec = PrepareSpec(
        title=contract.title, created_at=now, locale=ctx.locale if ctx.locale == "en" else "zh_CN",
        signers=[SignerSlot(s.field_name or "", s.name, s.email, ROLE_LABELS.get(s.role, ""),
                            **_placement(s)) for s in signers],
        clauses=[(c.title, c.body) for c in contract.clauses],
        attachments=[Attachment(a.filename, blobs.get(org_id=contract.org_id,
                                                      contract_id=contract.id, key=a.blob_key,
                                                      sha256=a.sha256),
                                a.content_type.split(";")[0].strip())
                     for a in contract.attachments])
    prepared = prepare_document(data, spec)
    certified = certify(prepared.pdf, key=engine.seal_key, tsa=engine.tsa,
                        reason="Certified by econtract: only signing is allowed from here on",
                        location=engine.base_url, signing_time=now)
    self_check(session, engine, certified, now, step="certification")
    version = contracts.store_version(session, ctx, blobs=blobs, contract=contract,
                                      data=certified, kind="certified", filename=source.filename)
    transition(session, ctx, contract, Event.SEND,
               {"document_sha256": version.sha256, "version": version.number,
                "source_sha256": source.sha256, "signers": len(signers)})
    routing.open_next_group(session, ctx, contract)
    return contract


def _placement(signer: Signer) -> dict[str, Any]:
    """The signer's field placement (1-based page in the database, 0-based in the core)."""
    rect = (signer.field_rect or {}).get("rect")
    if signer.field_page is None or rect is None:
        return {}
    return {"page": signer.field_page - 1, "rect": tuple(rect)}


def _check_ready(contract: Contract, now: datetime) -> None:
    if not routing.signing_parties(contract):
        raise ValidationFailed("Add at least one signer before sending.", code="no_signers")
    if contract.sign_deadline is not None and contract.sign_deadline <= now:
        raise ValidationFailed("The signing deadline has already passed.",
                               code="deadline_passed")


def self_check(session: Session, engine: SigningEngine, pdf: bytes, now: datetime, *,
               step: str) -> None:
    """Verify our own output with our own verifier; anything but ``valid`` stops the step."""
    report = verify_pdf(pdf, engine.trust(session, now))
    if report.verdict is not Verdict.VALID:
        reasons = "; ".join(s.reason for s in report.signatures if s.reason) or \
            "; ".join(report.messages)
        raise SigningError(f"The {step} did not verify ({report.verdict.value}): {reasons}",
                           code="self_check_failed")


def queue_seal(session: Session, *, contract: Contract, now: datetime) -> None:
    """Seal once every signer has signed; the dedupe key makes a second request harmless, and
    a seal job that gave up earlier (say, after repeated worker crashes) is given a new start."""
    job = enqueue(session, kind=SEAL_JOB, payload={"contract_id": str(contract.id)}, now=now,
                  org_id=contract.org_id, dedupe_key=f"seal:{contract.id}")
    if job.status == "failed":
        job.status, job.attempts, job.run_after, job.last_error = "pending", 0, now, None


def queue_certificate(session: Session, *, contract: Contract, now: datetime) -> None:
    """Issue the certificate of completion (and send the final e-mails) once; like
    ``queue_seal``, a certificate job that gave up earlier is given a new start."""
    job = enqueue(session, kind=CERTIFICATE_JOB, payload={"contract_id": str(contract.id)},
                  now=now, org_id=contract.org_id, dedupe_key=f"certificate:{contract.id}")
    if job.status == "failed":
        job.status, job.attempts, job.run_after, job.last_error = "pending", 0, now, None


def ensure_sealed(session: Session, ctx: Ctx, *, blobs: BlobStore, engine: SigningEngine,
                  contract_id: uuid.UUID) -> Contract:
    """Idempotent: seals the signed document if not done yet, completes the contract and
    queues its certificate of completion."""
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    if Status(contract.status) is Status.COMPLETED:
        if contract.certificate_sha256 is None:
            queue_certificate(session, contract=contract, now=ctx.now())
        return contract
    if Status(contract.status) not in (Status.SENT, Status.SIGNING) or \
            not routing.all_signed(contract):
        raise InvalidTransition(f"A contract that is {contract.status} cannot be sealed yet.")
    current = contracts.current_version(session, contract=contract)
    if current.kind != "sealed":
        current = _seal(session, ctx, blobs=blobs, engine=engine, contract=contract,
                        signed=current)
    transition(session, ctx, contract, Event.COMPLETE,
               {"document_sha256": current.sha256, "version": current.number})
    queue_certificate(session, contract=contract, now=ctx.now())
    return contract


def _seal(session: Session, ctx: Ctx, *, blobs: BlobStore, engine: SigningEngine,
          contract: Contract, signed: DocumentVersion) -> DocumentVersion:
    now = ctx.now()
    data = blobs.get(org_id=contract.org_id, contract_id=contract.id, key=signed.blob_key,
                     sha256=signed.sha256)
    sealed = seal_document(data, tsa=engine.tsa,
                           validation=engine.validation_material(session, now))
    self_check(session, engine, sealed, now, step="seal")
    version = contracts.store_version(session, ctx, blobs=blobs, contract=contract, data=sealed,
                                      kind="sealed", filename=signed.filename,
                                      page_count=signed.page_count)
    audit.record(session, ctx, EventKind.DOCUMENT_SEALED, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"version": version.number, "sha256": version.sha256})
    return version
