"""REST: contracts, their documents, attachments and audit timeline."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from pydantic import ValidationError
from sqlalchemy.orm import Session

from econtract.context import Ctx
from econtract.contracts import policy, previews, sending, service
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
    DocumentRead,
    SortKey,
    VoidRequest,
)
from econtract.contracts.states import Status, allowed_events
from econtract.errors import ValidationFailed
from econtract.http import api_unit, read_upload, runtime

router = APIRouter(prefix="/contracts", tags=["contracts"])


def contract_read(session: Session, ctx: Ctx, contract: Contract) -> ContractRead:
    document = service.current_version(session, contract=contract)
    actions = [e.value for e in allowed_events(Status(contract.status))]
    if not policy.can_edit_contract(ctx.actor, contract):
        actions = []
    return ContractRead.model_validate(contract).model_copy(
        update={"document": DocumentRead.model_validate(document), "allowed_actions": actions})


@router.post("", response_model=ContractRead, status_code=status.HTTP_201_CREATED,
             summary="Create a draft contract from an uploaded PDF")
def create_contract(
    request: Request,
    file: Annotated[UploadFile, File(description="The contract PDF")],
    meta: Annotated[str, Form(description="ContractCreate as JSON: title, signers[], "
                                          "effective_date, expiry_date, sign_deadline, "
                                          "clauses[], category, tags[]")],
    attachments: Annotated[list[UploadFile] | None, File()] = None,
) -> ContractRead:
    try:
        contract_in = ContractCreate.model_validate(json.loads(meta))
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"meta is not valid JSON: {exc.msg}", code="invalid_json") from exc
    rt = runtime(request)
    limit = rt.settings.max_upload_bytes
    document = read_upload(file, limit)
    extra = [read_upload(a, limit) for a in attachments or []]
    with api_unit(request) as (session, ctx):
        contract = service.create(session, ctx, blobs=rt.blobs, limits=rt.limits,
                                  contract_in=contract_in, document=document, attachments=extra)
        return contract_read(session, ctx, contract)


@router.get("", response_model=ContractPage, summary="List and filter contracts")
def list_contracts(
    request: Request,
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
) -> ContractPage:
    try:
        filters = ContractFilter.model_validate({
            "q": q, "status": status_, "category": category, "tag": tag,
            "created_from": created_from, "created_to": created_to, "expiry_from": expiry_from,
            "expiry_to": expiry_to, "sort": sort, "page": page, "per_page": per_page})
    except ValidationError as exc:
        raise ValidationFailed(str(exc.errors()[0]["msg"]), code="invalid_filter") from exc
    with api_unit(request) as (session, ctx):
        items, total = service.list_(session, ctx, filters=filters)
        return ContractPage(items=[ContractSummary.model_validate(c) for c in items],
                            total=total, page=filters.page, per_page=filters.per_page)


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
