"""Contract services: create, read, edit while in draft, void, list, download, timeline.

Plain keyword-only functions over an explicit session and ``Ctx``; they flush, never commit. Every
read or write of a contract goes through ``_load`` (organisation scope and policy), and every access
is written to the audit trail in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, lazyload

from econtract.accounts.security import hash_password
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.context import Ctx
from econtract.contracts import approval, policy, previews, search, uploads, validity
from econtract.contracts.models import (
    Attachment,
    Contract,
    ContractClause,
    ContractTag,
    DocumentVersion,
)
from econtract.contracts.schemas import ContractCreate, ContractFilter, ContractUpdate, SignerIn
from econtract.contracts.states import EDITABLE, Event, Status, transition
from econtract.errors import ContractNotEditable, NotFound, PermissionDenied, ValidationFailed
from econtract.parties import invitations
from econtract.parties.models import Signer
from econtract.storage import BlobStore


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_pages: int
    max_attachments: int


# --- create and edit ---------------------------------------------------------------------

def create(session: Session, ctx: Ctx, *, blobs: BlobStore, limits: UploadLimits,
           contract_in: ContractCreate, document: Upload,
           attachments: Sequence[Upload] = ()) -> Contract:
    """A draft contract from an uploaded PDF; every file is checked before anything is stored."""
    if ctx.org_id is None or not policy.can_create_contract(ctx.actor) or ctx.actor.id is None:
        raise PermissionDenied("You may not create contracts.")
    pdf = uploads.inspect_pdf(document.data, max_bytes=limits.max_bytes,
                              max_pages=limits.max_pages)
    checked = _check_attachments(attachments, limits, existing=0)
    now = ctx.now()
    contract = Contract(org_id=ctx.org_id, owner_id=ctx.actor.id, title=contract_in.title,
                        status=Status.DRAFT.value, created_at=now, updated_at=now,
                        status_changed_at=now)
    session.add(contract)
    _apply_fields(contract, contract_in.model_dump(exclude={"title"}), now)
    approval.configure(session, contract, contract_in.approvers)
    session.flush()
    version = _store_document(session, ctx, blobs, contract, document, pdf)
    for upload, info in checked:
        _store_attachment(session, ctx, blobs, contract, upload, info)
    session.flush()
    audit.record(session, ctx, EventKind.CONTRACT_CREATED, org_id=contract.org_id,
                 contract_id=contract.id, data={
                     "title": contract.title, "document_sha256": version.sha256,
                     "pages": version.page_count, "signers": len(contract.signers),
                     "attachments": len(checked)})
    search.index(session, contract, body=pdf.text)
    return contract


def update(session: Session, ctx: Ctx, *, contract_id: uuid.UUID,
           patch: ContractUpdate) -> Contract:
    """Change fields of a draft; lists given replace the old ones."""
    contract = _load_for_edit(session, ctx, contract_id)
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        return contract
    if "title" in changes:
        if changes["title"] is None:
            raise ValidationFailed("title cannot be empty", code="invalid_title")
        contract.title = changes.pop("title")
    now = ctx.now()
    _apply_fields(contract, changes, now)
    if changes.get("approvers") is not None:
        approval.configure(session, contract, changes["approvers"])
    contract.updated_at = now
    session.flush()
    fields = sorted(patch.model_fields_set)
    audit.record(session, ctx, EventKind.CONTRACT_UPDATED, org_id=contract.org_id,
                 contract_id=contract.id, data={"fields": fields})
    search.index(session, contract)
    return contract


def replace_document(session: Session, ctx: Ctx, *, blobs: BlobStore, limits: UploadLimits,
                     contract_id: uuid.UUID, document: Upload) -> DocumentVersion:
    """A new version of the draft's PDF; the old version stays, immutable."""
    contract = _load_for_edit(session, ctx, contract_id)
    pdf = uploads.inspect_pdf(document.data, max_bytes=limits.max_bytes,
                              max_pages=limits.max_pages)
    version = _store_document(session, ctx, blobs, contract, document, pdf)
    contract.updated_at = ctx.now()
    search.index(session, contract, body=pdf.text)
    return version


def add_attachment(session: Session, ctx: Ctx, *, blobs: BlobStore, limits: UploadLimits,
                   contract_id: uuid.UUID, upload: Upload) -> Attachment:
    contract = _load_for_edit(session, ctx, contract_id)
    ((_, info),) = _check_attachments([upload], limits, existing=len(contract.attachments))
    attachment = _store_attachment(session, ctx, blobs, contract, upload, info)
    contract.updated_at = ctx.now()
    return attachment


def remove_attachment(session: Session, ctx: Ctx, *, contract_id: uuid.UUID,
                      attachment_id: uuid.UUID) -> None:
    contract = _load_for_edit(session, ctx, contract_id)
    attachment = _attachment_of(contract, attachment_id)
    contract.attachments.remove(attachment)
    contract.updated_at = ctx.now()
    audit.record(session, ctx, EventKind.ATTACHMENT_REMOVED, org_id=contract.org_id,
                 contract_id=contract.id,
                 data={"attachment_id": str(attachment.id), "filename": attachment.filename,
                       "sha256": attachment.sha256})


def void(session: Session, ctx: Ctx, *, contract_id: uuid.UUID, reason: str) -> Contract:
    """Cancel a contract that is not finished; a reason is required and recorded. Every signer
    link dies, reminders stop, and the people involved are told (see ``parties.invitations``)."""
    contract = _load(session, ctx, contract_id, lock=True)
    require_edit(ctx, contract)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("A reason is required to void a contract.", code="reason_required")
    was_open = Status(contract.status) in (Status.SENT, Status.SIGNING)
    transition(session, ctx, contract, Event.VOID, {"reason": reason})
    contract.void_reason = reason
    contract.next_reminder_at = None
    invitations.revoke_links(session, contract=contract, now=ctx.now())
    invitations.notify_voided(session, ctx, contract=contract, reason=reason,
                              signing_was_open=was_open)
    return contract


def _apply_fields(contract: Contract, fields: dict[str, Any], now: datetime) -> None:
    simple = ("effective_date", "expiry_date", "sign_deadline", "category", "routing",
              "approval_mode", "reminder_interval_hours", "reminder_max")
    for name in simple:
        if name in fields and not (name in ("routing", "approval_mode")
                                   and fields[name] is None):
            setattr(contract, name, fields[name])
    if contract.sign_deadline is not None:
        contract.sign_deadline = contract.sign_deadline.astimezone(UTC)
    if contract.expiry_date and contract.effective_date and \
            contract.expiry_date < contract.effective_date:
        raise ValidationFailed("expiry_date must not be before effective_date",
                               code="invalid_dates")
    if fields.get("signers") is not None:
        # A party is its e-mail address: one who stays keeps the field placed for them (fixing
        # a name or changing the order must not undo the placement); a new party has none.
        placed = {s.email: (s.field_page, s.field_rect) for s in contract.signers
                  if s.field_page is not None}
        contract.signers = [_signer(contract, SignerIn.model_validate(s), now, placed)
                            for s in fields["signers"]]
    if fields.get("clauses") is not None:
        contract.clauses = [ContractClause(position=i, title=c["title"], body=c["body"])
                            for i, c in enumerate(fields["clauses"], start=1)]
    if fields.get("tags") is not None:
        contract.tags = [ContractTag(tag=tag) for tag in fields["tags"]]


def _signer(contract: Contract, signer_in: SignerIn, now: datetime,
            placed: Mapping[str, tuple[int | None, dict[str, Any] | None]]) -> Signer:
    email = signer_in.email.lower()
    page, rect = placed.get(email, (None, None))
    return Signer(org_id=contract.org_id, name=signer_in.name, email=email,
                  phone=signer_in.phone, order=signer_in.order, role=signer_in.role,
                  auth_method=signer_in.identity_method,
                  access_code_hash=(hash_password(signer_in.access_code)
                                    if signer_in.access_code else None),
                  status="waiting", created_at=now, field_page=page, field_rect=rect)


def _check_attachments(attachments: Sequence[Upload], limits: UploadLimits,
                       existing: int) -> list[tuple[Upload, uploads.AttachmentInfo]]:
    if existing + len(attachments) > limits.max_attachments:
        raise ValidationFailed(f"At most {limits.max_attachments} attachments per contract.",
                               code="too_many_attachments")
    return [(a, uploads.inspect_attachment(a.data, a.filename, max_bytes=limits.max_bytes,
                                           max_pages=limits.max_pages)) for a in attachments]


def _store_document(session: Session, ctx: Ctx, blobs: BlobStore, contract: Contract,
                    document: Upload, pdf: uploads.PdfInfo) -> DocumentVersion:
    version = store_version(session, ctx, blobs=blobs, contract=contract, data=document.data,
                            kind="original", page_count=pdf.page_count,
                            filename=uploads.safe_filename(document.filename,
                                                           default="contract.pdf"))
    audit.record(session, ctx, EventKind.DOCUMENT_UPLOADED, org_id=contract.org_id,
                 contract_id=contract.id, data={"version": version.number,
                                                "sha256": version.sha256, "size": version.size,
                                                "pages": version.page_count,
                                                "filename": version.filename})
    return version


def store_version(session: Session, ctx: Ctx, *, blobs: BlobStore, contract: Contract,
                  data: bytes, kind: str, filename: str, page_count: int | None = None,
                  after: DocumentVersion | None = None) -> DocumentVersion:
    """A new immutable version of the contract PDF (encrypted blob + row with its SHA-256).

    The blob is written first: if the transaction then fails, an unreferenced blob remains, never
    a row pointing at nothing, and the previous version stays the current one. ``after`` is the
    current version when the caller holds it (and the contract's row lock): it spares a query.
    """
    if after is not None:
        number = after.number + 1
    else:
        number = int(session.scalar(select(func.coalesce(func.max(DocumentVersion.number), 0))
                                    .where(DocumentVersion.contract_id == contract.id)) or 0) + 1
    blob = blobs.put(org_id=contract.org_id, contract_id=contract.id, data=data,
                     kind="document")
    version = DocumentVersion(
        contract_id=contract.id, org_id=contract.org_id, number=number, kind=kind,
        filename=filename, sha256=blob.sha256, size=blob.size,
        page_count=page_count if page_count is not None else previews.page_count(data),
        blob_key=blob.key, created_at=ctx.now(), created_by=ctx.actor.label)
    session.add(version)
    session.flush()
    return version


def _store_attachment(session: Session, ctx: Ctx, blobs: BlobStore, contract: Contract,
                      upload: Upload, info: uploads.AttachmentInfo) -> Attachment:
    blob = blobs.put(org_id=contract.org_id, contract_id=contract.id, data=upload.data,
                     kind="attachment")
    attachment = Attachment(org_id=contract.org_id, filename=uploads.safe_filename(
        upload.filename), content_type=info.content_type, size=blob.size, sha256=blob.sha256,
        blob_key=blob.key, created_at=ctx.now())
    contract.attachments.append(attachment)
    session.flush()
    audit.record(session, ctx, EventKind.ATTACHMENT_ADDED, org_id=contract.org_id,
                 contract_id=contract.id, data={"attachment_id": str(attachment.id),
                                                "filename": attachment.filename,
                                                "sha256": attachment.sha256,
                                                "size": attachment.size})
    return attachment


# --- read ----------------------------------------------------------------------------------

def _load(session: Session, ctx: Ctx, contract_id: uuid.UUID, *, lock: bool = False) -> Contract:
    query = select(Contract).where(Contract.id == contract_id)
    if ctx.org_id is not None:
        query = query.where(Contract.org_id == ctx.org_id)
    if lock:
        # Locking paths (send, sign, seal) rarely need tags, clauses or attachments: load those
        # on first use instead of eagerly (four fewer queries per signature).
        query = query.with_for_update().options(lazyload(Contract.tags),
                                                lazyload(Contract.clauses),
                                                lazyload(Contract.attachments),
                                                lazyload(Contract.approvals))
    contract = session.scalar(query)
    if contract is None or not policy.can_view_contract(ctx.actor, contract):
        raise NotFound("No such contract.", code="contract_not_found")
    return contract


def require_edit(ctx: Ctx, contract: Contract) -> None:
    if not policy.can_edit_contract(ctx.actor, contract):
        raise PermissionDenied("You may not change this contract.")


def _load_for_edit(session: Session, ctx: Ctx, contract_id: uuid.UUID) -> Contract:
    # Locked, then checked: a concurrent send cannot slip between the check and the edit.
    contract = _load(session, ctx, contract_id, lock=True)
    require_edit(ctx, contract)
    if Status(contract.status) not in EDITABLE:
        raise ContractNotEditable(
            f"The contract is {contract.status}; only drafts can be edited.",
            details={"status": contract.status})
    return contract


def get(session: Session, ctx: Ctx, *, contract_id: uuid.UUID, lock: bool = False) -> Contract:
    """The contract if the actor may see it (no audit event: for internal use); ``lock`` takes
    the row lock that serialises sending, signing and sealing of one contract."""
    return _load(session, ctx, contract_id, lock=lock)


def view(session: Session, ctx: Ctx, *, contract_id: uuid.UUID) -> Contract:
    """The contract, recording that the actor looked at it."""
    contract = _load(session, ctx, contract_id)
    audit.record(session, ctx, EventKind.CONTRACT_VIEWED, org_id=contract.org_id,
                 contract_id=contract.id)
    return contract


def versions(session: Session, *, contract: Contract) -> list[DocumentVersion]:
    return list(session.scalars(select(DocumentVersion)
                                .where(DocumentVersion.contract_id == contract.id)
                                .order_by(DocumentVersion.number)))


def current_version(session: Session, *, contract: Contract) -> DocumentVersion:
    version = session.scalar(select(DocumentVersion)
                             .where(DocumentVersion.contract_id == contract.id)
                             .order_by(DocumentVersion.number.desc()).limit(1))
    if version is None:
        raise NotFound("The contract has no document.", code="document_not_found")
    return version


def download_document(session: Session, ctx: Ctx, *, blobs: BlobStore, contract_id: uuid.UUID,
                      number: int | None = None, audit_as: EventKind | None =
                      EventKind.DOCUMENT_DOWNLOADED) -> tuple[DocumentVersion, bytes]:
    """A version of the PDF (the current one by default), decrypted and hash-checked."""
    contract = _load(session, ctx, contract_id)
    if number is None:
        version = current_version(session, contract=contract)
    else:
        found = session.scalar(select(DocumentVersion).where(
            DocumentVersion.contract_id == contract.id, DocumentVersion.number == number))
        if found is None:
            raise NotFound("No such document version.", code="document_not_found")
        version = found
    data = blobs.get(org_id=contract.org_id, contract_id=contract.id, key=version.blob_key,
                     sha256=version.sha256)
    if audit_as is not None:
        audit.record(session, ctx, audit_as, org_id=contract.org_id, contract_id=contract.id,
                     data={"version": version.number, "sha256": version.sha256})
    return version, data


def _attachment_of(contract: Contract, attachment_id: uuid.UUID) -> Attachment:
    for attachment in contract.attachments:
        if attachment.id == attachment_id:
            return attachment
    raise NotFound("No such attachment.", code="attachment_not_found")


def download_attachment(session: Session, ctx: Ctx, *, blobs: BlobStore, contract_id: uuid.UUID,
                        attachment_id: uuid.UUID) -> tuple[Attachment, bytes]:
    contract = _load(session, ctx, contract_id)
    attachment = _attachment_of(contract, attachment_id)
    data = blobs.get(org_id=contract.org_id, contract_id=contract.id, key=attachment.blob_key,
                     sha256=attachment.sha256)
    audit.record(session, ctx, EventKind.ATTACHMENT_DOWNLOADED, org_id=contract.org_id,
                 contract_id=contract.id, data={"attachment_id": str(attachment.id),
                                                "filename": attachment.filename})
    return attachment, data


def timeline(session: Session, ctx: Ctx, *, contract_id: uuid.UUID,
             record_view: bool = True) -> list[AuditEvent]:
    """The contract's audit events, oldest first."""
    contract = _load(session, ctx, contract_id)
    events = audit.contract_events(session, org_id=contract.org_id, contract_id=contract.id)
    if record_view:
        audit.record(session, ctx, EventKind.AUDIT_VIEWED, org_id=contract.org_id,
                     contract_id=contract.id)
    return events


# --- lists ---------------------------------------------------------------------------------

def _visible(ctx: Ctx) -> Select[Contract]:
    if ctx.org_id is None:
        raise PermissionDenied("No organisation.")
    query = select(Contract).where(Contract.org_id == ctx.org_id)
    if policy.sees_only_own(ctx.actor):
        query = query.where(Contract.owner_id == ctx.actor.id)
    return query


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


COUNT_CAP = 1000
"""With a keyword search, counting stops here: an exact count of every match of a common word
costs far more than the page itself, and "1,000+" tells a reader as much (see
``docs/benchmarks.md``)."""


def list_(session: Session, ctx: Ctx, *, filters: ContractFilter) -> tuple[list[Contract], int]:
    """One page of the contracts the actor may see, and the total count (with a keyword
    search, at most ``COUNT_CAP + 1``: more than ``COUNT_CAP`` means "over a thousand")."""
    query = filtered(session, ctx, filters=filters)
    terms = search.terms_of(filters.q or "")
    counted = query.limit(COUNT_CAP + 1) if terms else query
    column = getattr(Contract, filters.sort.lstrip("-"))
    order = column.desc() if filters.sort.startswith("-") else column.asc()
    with search.planned(session, terms):
        total = int(session.scalar(select(func.count()).select_from(counted.subquery())) or 0)
        rows = list(session.scalars(
            query.order_by(order, Contract.id)
            .offset((filters.page - 1) * filters.per_page).limit(filters.per_page)))
    return rows, total


def filtered(session: Session, ctx: Ctx, *, filters: ContractFilter) -> Select[Contract]:
    """Every contract the actor may see that matches ``filters`` (unordered, unpaged): the
    list page and the CSV export share it, so an export holds exactly what the list shows."""
    query = _visible(ctx)
    terms = search.terms_of(filters.q or "")
    if terms:
        query = query.where(search.matching(session, terms))
    if filters.status:
        query = query.where(Contract.status.in_([s.value for s in filters.status]))
    if filters.category:
        query = query.where(Contract.category == filters.category)
    if filters.tag:
        query = query.where(Contract.id.in_(
            select(ContractTag.contract_id).where(ContractTag.tag == filters.tag)))
    if filters.created_from:
        query = query.where(Contract.created_at >= _day_start(filters.created_from))
    if filters.created_to:
        query = query.where(Contract.created_at
                            < _day_start(filters.created_to) + timedelta(days=1))
    if filters.expiry_from:
        query = query.where(Contract.expiry_date >= filters.expiry_from)
    if filters.expiry_to:
        query = query.where(Contract.expiry_date <= filters.expiry_to)
    if filters.archived is not None:
        query = query.where(Contract.archived_at.is_not(None) if filters.archived
                            else Contract.archived_at.is_(None))
    if filters.expiring_within_days is not None:
        today = validity.today(ctx.now())
        query = query.where(
            Contract.status == Status.COMPLETED.value, Contract.expiry_date >= today,
            Contract.expiry_date <= today + timedelta(days=filters.expiring_within_days))
    return query


def status_counts(session: Session, ctx: Ctx) -> dict[str, int]:
    """Contracts per status, for the dashboard (only what the actor may see)."""
    visible = _visible(ctx).subquery()
    rows = session.execute(select(visible.c.status, func.count()).group_by(visible.c.status))
    counts = {status.value: 0 for status in Status}
    counts.update({status: int(n) for status, n in rows})
    return counts


def categories(session: Session, ctx: Ctx) -> list[str]:
    visible = _visible(ctx).subquery()
    return [c for c in session.scalars(select(visible.c.category).distinct()
                                       .order_by(visible.c.category)) if c]
