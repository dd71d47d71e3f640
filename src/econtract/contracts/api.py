"""REST: contracts, their documents, attachments and audit timeline."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as FormFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from econtract.audit import evidence
from econtract.context import Ctx
from econtract.contracts import (
    approval,
    archive,
    completion,
    export,
    from_template,
    placement,
    policy,
    previews,
    search,
    sending,
    service,
)
from econtract.contracts.from_template import ContractFromTemplate
from econtract.contracts.models import Contract
from econtract.contracts.schemas import (
    AttachmentRead,
    AuditEventRead,
    ContractCreate,
    ContractFilter,
    ContractPage,
    ContractRead,
    ContractSummary,
    ContractUpdate,
    DecisionIn,
    DocumentRead,
    SortKey,
    VoidRequest,
)
from econtract.contracts.states import Status, allowed_events
from econtract.errors import ValidationFailed
from econtract.http import api_unit, read_upload, runtime
from econtract.parties import reminders

router = APIRouter(prefix="/contracts", tags=["contracts"])
ArchivedParam = Literal["false", "true", "all"]


def contract_read(session: Session, ctx: Ctx, contract: Contract) -> ContractRead:
    document = service.current_version(session, contract=contract)
    actions = [e.value for e in allowed_events(Status(contract.status))]
    if not policy.can_edit_contract(ctx.actor, contract):
        actions = []
    origin = from_template.origin(session, contract)
    return ContractRead.model_validate(contract).model_copy(
        update={"document": DocumentRead.model_validate(document), "allowed_actions": actions,
                "template_id": origin.template_id if origin else None,
                "template_version": origin.version if origin else None})


@dataclass(frozen=True)
class _CreateBody:
    """``POST /contracts`` as sent: multipart (an uploaded PDF) or JSON (a template)."""

    form: FormData | None = None
    json: Any = None


async def _create_body(request: Request) -> _CreateBody:
    # Async, so the sync handler below gets the parsed body; multipart parts beyond the
    # attachment limit are refused by the parser instead of being spooled to disk.
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            return _CreateBody(json=json.loads(await request.body()))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValidationFailed("The body is not valid JSON.", code="invalid_json") from exc
    if media_type == "multipart/form-data":
        limit = runtime(request).settings.max_attachments + 2
        try:
            return _CreateBody(form=await request.form(max_files=limit, max_fields=100))
        except StarletteHTTPException as exc:
            raise ValidationFailed(str(exc.detail), code="invalid_form") from exc
    raise ValidationFailed("Send multipart/form-data (file + meta) to upload a PDF, or "
                           "application/json (template_id + variables) to use a template.",
                           code="unsupported_media_type")


def _inline_defs(schema: dict[str, Any]) -> Any:
    # OpenAPI resolves "#/..." against the whole document, so a model's own "$defs" references
    # would point nowhere: they are written in place (the contract schemas are not recursive).
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        return [walk(item) for item in node] if isinstance(node, list) else node

    return walk(schema)


_CREATE_BODY_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "meta"], "properties": {
            "file": {"type": "string", "format": "binary", "description": "The contract PDF"},
            "meta": {"type": "string", "description": "ContractCreate as JSON: title, "
                     "signers[], effective_date, expiry_date, sign_deadline, clauses[], "
                     "category, tags[]"},
            "attachments": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": _inline_defs(ContractFromTemplate.model_json_schema())}}}}


@router.post("", response_model=ContractRead, status_code=status.HTTP_201_CREATED,
             summary="Create a draft contract from an uploaded PDF or from a template",
             openapi_extra=_CREATE_BODY_DOC,
             responses={404: {"description": "No such template (`template_not_found`)"},
                        422: {"description": "A refused file, invalid fields, or template "
                                             "variables missing or ill-typed "
                                             "(`template_variables_invalid`, with `problems`: "
                                             "variable → reason)"}})
def create_contract(request: Request,
                    body: Annotated[_CreateBody, Depends(_create_body)]) -> ContractRead:
    """Multipart: `file` (the PDF), `meta` (ContractCreate as JSON) and optional `attachments`.
    JSON: the ContractCreate fields plus `template_id` and `variables`; the template's current
    version is filled in and becomes the document."""
    rt = runtime(request)
    if body.form is None:
        from_template_in = ContractFromTemplate.model_validate(body.json)
        with api_unit(request) as (session, ctx):
            contract = from_template.create_from_template(
                session, ctx, blobs=rt.blobs, limits=rt.limits, contract_in=from_template_in,
                template_id=from_template_in.template_id, values=from_template_in.variables)
            origin = from_template.origin(session, contract)
            return contract_read(session, ctx, contract).model_copy(update={
                "template_id": origin.template_id if origin else None,
                "template_version": origin.version if origin else None})
    file, meta = body.form.get("file"), body.form.get("meta")
    for name, value in (("file", file), ("meta", meta)):
        if value is None:
            raise ValidationFailed(f"{name}: Field required", details={"errors": [
                {"loc": ["body", name], "msg": "Field required", "type": "missing"}]})
    if not isinstance(file, FormFile) or not isinstance(meta, str):
        raise ValidationFailed("`file` must be a file and `meta` a text field.")
    try:
        contract_in = ContractCreate.model_validate(json.loads(meta))
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"meta is not valid JSON: {exc.msg}", code="invalid_json") from exc
    limit = rt.settings.max_upload_bytes
    document = read_upload(file, limit)
    extra = [read_upload(a, limit) for a in body.form.getlist("attachments")
             if isinstance(a, FormFile)]
    with api_unit(request) as (session, ctx):
        contract = service.create(session, ctx, blobs=rt.blobs, limits=rt.limits,
                                  contract_in=contract_in, document=document, attachments=extra)
        return contract_read(session, ctx, contract)


def contract_filter(
    q: str | None = None,
    status_: Annotated[list[Status] | None, Query(alias="status")] = None,
    category: str | None = None,
    tag: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    expiry_from: str | None = None,
    expiry_to: str | None = None,
    sort: SortKey = "-created_at",
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 20,
    archived: ArchivedParam = "false",
    expiring_within_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
) -> ContractFilter:
    """The list's query parameters (shared by the list and its CSV export). ``archived``:
    ``false`` (default) hides archived contracts, ``true`` lists only them, ``all`` both;
    ``expiring_within_days``: completed contracts expiring within N days."""
    try:
        return ContractFilter.model_validate({
            "q": q, "status": status_, "category": category, "tag": tag,
            "created_from": created_from, "created_to": created_to, "expiry_from": expiry_from,
            "expiry_to": expiry_to, "sort": sort, "page": page, "per_page": per_page,
            "archived": archive.archived_filter(archived),
            "expiring_within_days": expiring_within_days})
    except ValidationError as exc:
        raise ValidationFailed(str(exc.errors()[0]["msg"]), code="invalid_filter") from exc


Filters = Annotated[ContractFilter, Depends(contract_filter)]


@router.get("", response_model=ContractPage, summary="List and filter contracts")
def list_contracts(request: Request, filters: Filters) -> ContractPage:
    with api_unit(request) as (session, ctx):
        items, total = service.list_(session, ctx, filters=filters)
        marks = search.highlight(session, [c.id for c in items], search.terms_of(filters.q or ""))
        return ContractPage(
            items=[ContractSummary.model_validate(c).model_copy(
                update={"highlight": str(marks[c.id]) if c.id in marks else None})
                for c in items],
            total=min(total, service.COUNT_CAP), total_capped=total > service.COUNT_CAP,
            page=filters.page, per_page=filters.per_page)


@router.get("/export.csv", summary="Export every contract matching the filters as CSV",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_contracts(request: Request, filters: Filters) -> StreamingResponse:
    """The list's filters (``sort``, ``page`` and ``per_page`` are ignored); every matching
    contract (at most 50,000, oldest first), UTF-8 with a BOM for Excel, formula-like cells
    prefixed with ``'``. ``X-Total-Count`` says how many matched; ``X-Export-Truncated: true``
    when that is more than the file holds."""
    with api_unit(request) as (session, ctx):
        started = export.start(session, ctx, filters=filters)
    return csv_response(runtime(request).engine, ctx, started)


def csv_response(engine: Engine, ctx: Ctx, started: export.Export) -> StreamingResponse:
    """The streamed CSV download of an export already recorded (the API and the web page)."""
    headers = {"Content-Disposition": f'attachment; filename="{started.filename}"',
               "X-Total-Count": str(started.total), "Cache-Control": "no-store"}
    if started.truncated:
        headers["X-Export-Truncated"] = "true"
    return StreamingResponse(export.stream(engine, ctx, started), media_type=export.MEDIA_TYPE,
                             headers=headers)


@router.get("/{contract_id}", response_model=ContractRead, summary="One contract")
def read_contract(request: Request, contract_id: uuid.UUID) -> ContractRead:
    with api_unit(request) as (session, ctx):
        contract = service.view(session, ctx, contract_id=contract_id)
        return contract_read(session, ctx, contract)


@router.patch("/{contract_id}", response_model=ContractRead, summary="Edit a draft")
def update_contract(request: Request, contract_id: uuid.UUID,
                    patch: ContractUpdate) -> ContractRead:
    with api_unit(request) as (session, ctx):
        contract = service.update(session, ctx, contract_id=contract_id, patch=patch)
        return contract_read(session, ctx, contract)


@router.post("/{contract_id}/send", response_model=ContractRead,
             summary="Send: prepare and certify the document, open signing")
def send_contract(request: Request, contract_id: uuid.UUID) -> ContractRead:
    rt = runtime(request)
    with api_unit(request) as (session, ctx):
        contract = sending.send(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                                contract_id=contract_id)
        return contract_read(session, ctx, contract)


@router.post("/{contract_id}/void", response_model=ContractRead, summary="Void a contract")
def void_contract(request: Request, contract_id: uuid.UUID, body: VoidRequest) -> ContractRead:
    with api_unit(request) as (session, ctx):
        contract = service.void(session, ctx, contract_id=contract_id, reason=body.reason)
        return contract_read(session, ctx, contract)


@router.get("/{contract_id}/document", summary="The current PDF (or ?version=N)",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def download_document(request: Request, contract_id: uuid.UUID,
                      version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    with api_unit(request) as (session, ctx):
        doc, data = service.download_document(session, ctx, blobs=runtime(request).blobs,
                                              contract_id=contract_id, number=version)
    return _file_response(data, "application/pdf", doc.filename, doc.sha256)


@router.put("/{contract_id}/document", response_model=DocumentRead,
            summary="Replace the PDF of a draft (a new immutable version)")
def replace_document(request: Request, contract_id: uuid.UUID,
                     file: Annotated[UploadFile, File()]) -> DocumentRead:
    rt = runtime(request)
    upload = read_upload(file, rt.settings.max_upload_bytes)
    with api_unit(request) as (session, ctx):
        version = service.replace_document(session, ctx, blobs=rt.blobs, limits=rt.limits,
                                           contract_id=contract_id, document=upload)
        return DocumentRead.model_validate(version)


@router.get("/{contract_id}/versions", response_model=list[DocumentRead],
            summary="Every version of the PDF, oldest first")
def list_versions(request: Request, contract_id: uuid.UUID) -> list[DocumentRead]:
    with api_unit(request) as (session, ctx):
        contract = service.get(session, ctx, contract_id=contract_id)
        return [DocumentRead.model_validate(v) for v in service.versions(session,
                                                                          contract=contract)]


@router.get("/{contract_id}/pages/{page}.png", response_class=Response,
            summary="A preview image of one page of the current PDF",
            responses={200: {"content": {"image/png": {}}}})
def page_preview(request: Request, contract_id: uuid.UUID, page: int,
                 width: Annotated[int, Query(ge=100, le=1600)] = 800) -> Response:
    with api_unit(request) as (session, ctx):
        _, data = service.download_document(session, ctx, blobs=runtime(request).blobs,
                                            contract_id=contract_id, audit_as=None)
    png = previews.render_page_png(data, page=page, width=width)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.post("/{contract_id}/attachments", response_model=AttachmentRead,
             status_code=status.HTTP_201_CREATED, summary="Add an attachment to a draft")
def add_attachment(request: Request, contract_id: uuid.UUID,
                   file: Annotated[UploadFile, File()]) -> AttachmentRead:
    rt = runtime(request)
    upload = read_upload(file, rt.settings.max_upload_bytes)
    with api_unit(request) as (session, ctx):
        attachment = service.add_attachment(session, ctx, blobs=rt.blobs, limits=rt.limits,
                                            contract_id=contract_id, upload=upload)
        return AttachmentRead.model_validate(attachment)


@router.get("/{contract_id}/attachments/{attachment_id}", response_class=Response,
            summary="Download an attachment")
def download_attachment(request: Request, contract_id: uuid.UUID,
                        attachment_id: uuid.UUID) -> Response:
    with api_unit(request) as (session, ctx):
        attachment, data = service.download_attachment(
            session, ctx, blobs=runtime(request).blobs, contract_id=contract_id,
            attachment_id=attachment_id)
    return _file_response(data, attachment.content_type, attachment.filename, attachment.sha256)


@router.delete("/{contract_id}/attachments/{attachment_id}",
               status_code=status.HTTP_204_NO_CONTENT, summary="Remove an attachment (draft)")
def remove_attachment(request: Request, contract_id: uuid.UUID,
                      attachment_id: uuid.UUID) -> Response:
    with api_unit(request) as (session, ctx):
        service.remove_attachment(session, ctx, contract_id=contract_id,
                                  attachment_id=attachment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{contract_id}/audit", response_model=list[AuditEventRead],
            summary="The contract's audit timeline, oldest first")
def contract_audit(request: Request, contract_id: uuid.UUID) -> list[AuditEventRead]:
    with api_unit(request) as (session, ctx):
        events = service.timeline(session, ctx, contract_id=contract_id)
        return [AuditEventRead.model_validate(e) for e in events]


def _file_response(data: bytes, media_type: str, filename: str, sha256: str) -> Response:
    from urllib.parse import quote

    disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": disposition, "X-Content-SHA256": sha256,
        "Cache-Control": "private, no-store"})


@router.get("/{contract_id}/certificate", summary="The certificate of completion (PDF)",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {}}},
                       404: {"description": "No such contract, or not completed yet "
                                            "(code `certificate_not_ready`)"}})
def download_certificate(request: Request, contract_id: uuid.UUID) -> Response:
    with api_unit(request) as (session, ctx):
        contract, data = completion.download_certificate(
            session, ctx, blobs=runtime(request).blobs, contract_id=contract_id)
        sha256 = contract.certificate_sha256 or ""
        filename = f"certificate-of-completion-{contract.id}.pdf"
    return _file_response(data, "application/pdf", filename, sha256)


@router.post("/{contract_id}/remind", response_model=ContractRead,
             summary="Remind the signers whose turn it is, now",
             responses={409: {"description": "Not out for signing, nobody to remind "
                                             "(`nothing_to_remind`), or reminded less than 10 "
                                             "minutes ago (`remind_too_soon`, with "
                                             "`retry_after` seconds)"}})
def remind_contract(request: Request, contract_id: uuid.UUID) -> ContractRead:
    """Each pending signer gets a reminder with a fresh link; this does not count against the
    automatic reminders, and the next automatic one is pushed back a full interval."""
    with api_unit(request) as (session, ctx):
        contract = reminders.remind(session, ctx, contract_id=contract_id)
        return contract_read(session, ctx, contract)


# --- internal approval and the evidence package ------------------------------------------------


@router.post("/{contract_id}/submit", response_model=ContractRead,
             summary="Submit a draft for internal approval (合同审批)")
def submit_contract(request: Request, contract_id: uuid.UUID) -> ContractRead:
    """The approvers named on the contract are asked (in order, or all at once for ``any``);
    until the contract is ``approved``, sending it is refused with ``approval_required``."""
    with api_unit(request) as (session, ctx):
        contract = approval.submit(session, ctx, contract_id=contract_id)
        return contract_read(session, ctx, contract)


@router.post("/{contract_id}/approve", response_model=ContractRead,
             summary="Approve, as the approver whose turn it is")
def approve_contract(request: Request, contract_id: uuid.UUID,
                     body: DecisionIn | None = None) -> ContractRead:
    with api_unit(request) as (session, ctx):
        contract = approval.decide(session, ctx, contract_id=contract_id, approve=True,
                                   comment=body.comment if body else "")
        return contract_read(session, ctx, contract)


@router.post("/{contract_id}/reject", response_model=ContractRead,
             summary="Reject with a comment: the contract returns to draft")
def reject_contract(request: Request, contract_id: uuid.UUID, body: DecisionIn) -> ContractRead:
    with api_unit(request) as (session, ctx):
        contract = approval.decide(session, ctx, contract_id=contract_id, approve=False,
                                   comment=body.comment)
        return contract_read(session, ctx, contract)


@router.get("/{contract_id}/evidence", summary="The evidence package (证据包) as a zip",
            response_class=Response,
            responses={200: {"content": {"application/zip": {}}},
                       409: {"description": "Not completed yet (`evidence_not_ready`)"}})
def download_evidence(request: Request, contract_id: uuid.UUID) -> Response:
    """The final PDF, the certificate of completion, the audit events with their hash chain,
    every certificate, the CRLs and a verification report, in a zip whose manifest the platform
    seal signs; check it offline with ``econtract verify-evidence``."""
    rt = runtime(request)
    with api_unit(request) as (session, ctx):
        package = evidence.build(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                                 contract_id=contract_id)
    return _file_response(package.data, "application/zip", package.filename, package.sha256)


# --- archive (归档) --------------------------------------------------------------------------


@router.post("/{contract_id}/archive", response_model=ContractRead,
             summary="Archive a contract whose signing has ended",
             responses={409: {"description": "Still a draft or out for signing "
                                             "(`not_archivable`), or already archived"}})
def archive_contract(request: Request, contract_id: uuid.UUID) -> ContractRead:
    """Completed, lapsed, voided, declined and expired contracts may be archived: they leave
    the default lists (``?archived=true`` lists them)."""
    with api_unit(request) as (session, ctx):
        contract = archive.archive(session, ctx, contract_id=contract_id)
        return contract_read(session, ctx, contract)


@router.post("/{contract_id}/unarchive", response_model=ContractRead,
             summary="Bring an archived contract back into the lists")
def unarchive_contract(request: Request, contract_id: uuid.UUID) -> ContractRead:
    with api_unit(request) as (session, ctx):
        contract = archive.unarchive(session, ctx, contract_id=contract_id)
        return contract_read(session, ctx, contract)


@router.get("/{contract_id}/fields", response_model=placement.PlacementRead,
            summary="Signature placement: the pages and each signer's field")
def read_fields(request: Request, contract_id: uuid.UUID) -> placement.PlacementRead:
    with api_unit(request) as (session, ctx):
        return placement.read_fields(session, ctx, blobs=runtime(request).blobs,
                                     contract_id=contract_id)


@router.put("/{contract_id}/fields", response_model=placement.PlacementRead,
            summary="Place signers' fields on a draft's pages (or clear them)",
            responses={409: {"description": "Not a draft (`contract_not_editable`)"},
                       422: {"description": "`placement_page`, `placement_off_page`, "
                                            "`placement_too_small`, `placement_too_large`, "
                                            "`placement_overlap`, `placement_rotated_page`"}})
def place_fields(request: Request, contract_id: uuid.UUID,
                 body: placement.PlacementsIn) -> placement.PlacementRead:
    """Rectangles are ``[x1, y1, x2, y2]`` in PDF points from the page's bottom left; pages are
    1-based; signers not listed keep their placement; ``{"signer_id", "clear": true}`` moves a
    signer back to the signature page."""
    with api_unit(request) as (session, ctx):
        return placement.place_fields(session, ctx, blobs=runtime(request).blobs,
                                      contract_id=contract_id, placements=body.placements)
