"""REST: bulk send (批量发送) — upload a CSV for a template, read the report, start, follow.

``POST /bulk`` checks every row and answers the run with its report (nothing is sent);
``POST /bulk/{id}/start`` sends a run whose rows are all valid (409 ``bulk_invalid`` otherwise);
``GET /bulk/{id}`` is the progress. The CSV format is described in ``contracts.bulk``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from econtract.contracts import bulk
from econtract.contracts.models import BulkRun
from econtract.http import api_unit, read_upload

router = APIRouter(prefix="/bulk", tags=["bulk send"])


class BulkItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row_number: int
    """The row in the file, the header being row 1."""
    status: str
    """``invalid``, ``pending``, ``sent``, ``failed``."""
    errors: dict[str, Any] | None
    """Column → message for an invalid row; ``send`` → {code, message} for a failed one."""
    contract_id: uuid.UUID | None


class BulkRunRead(BaseModel):
    id: uuid.UUID
    template_id: uuid.UUID
    filename: str
    csv_sha256: str
    status: str
    """``invalid`` (rows refused, nothing can be sent), ``ready``, ``sending``, ``done``."""
    total: int
    pending: int
    sent: int
    failed: int
    invalid: int
    created_at: datetime
    updated_at: datetime
    invalid_rows: list[BulkItemRead]
    """The report: every refused row with its errors (left out with ``?items=false``)."""
    items: list[BulkItemRead]
    """Every row, in file order (left out with ``?items=false``)."""


def run_read(session: Session, run: BulkRun, *, with_items: bool = True) -> BulkRunRead:
    counts = bulk.progress(session, run)
    rows = [BulkItemRead.model_validate(i) for i in bulk.items(session, run=run)] \
        if with_items else []
    return BulkRunRead(
        id=run.id, template_id=run.template_id, filename=run.filename,
        csv_sha256=run.csv_sha256, status=run.status, total=run.total,
        pending=counts["pending"], sent=counts["sent"], failed=counts["failed"],
        invalid=counts["invalid"], created_at=run.created_at, updated_at=run.updated_at,
        invalid_rows=[r for r in rows if r.status == "invalid"], items=rows)


@router.post("", response_model=BulkRunRead, status_code=status.HTTP_201_CREATED,
             summary="Check a CSV for a template: one contract per row, nothing sent yet",
             responses={404: {"description": "No such template"},
                        422: {"description": "The file cannot be read, or its columns do not "
                                             "fit the template (`bulk_csv_columns`)"}})
def prepare(request: Request, template_id: Annotated[uuid.UUID, Form()],
            file: Annotated[UploadFile, File()]) -> BulkRunRead:
    """Every row is checked; the answer lists every invalid row with its errors (status
    `invalid`) or the run is `ready` to start."""
    with api_unit(request) as (session, ctx):
        upload = read_upload(file, bulk.MAX_BYTES)
        run = bulk.prepare(session, ctx, template_id=template_id, filename=upload.filename,
                           data=upload.data)
        return run_read(session, run)


@router.get("/{run_id}", response_model=BulkRunRead, summary="A bulk send and its progress")
def read(request: Request, run_id: uuid.UUID, items: bool = True) -> BulkRunRead:
    """`?items=false` leaves out the rows: the counts are enough to follow a large run."""
    with api_unit(request) as (session, ctx):
        return run_read(session, bulk.get(session, ctx, run_id=run_id), with_items=items)


@router.post("/{run_id}/start", response_model=BulkRunRead,
             summary="Send every row's contract (idempotent)",
             responses={409: {"description": "Some rows are invalid (`bulk_invalid`)"}})
def start(request: Request, run_id: uuid.UUID) -> BulkRunRead:
    with api_unit(request) as (session, ctx):
        return run_read(session, bulk.start(session, ctx, run_id=run_id))
