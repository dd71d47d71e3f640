"""REST: ``POST /api/v1/verify`` — anyone may verify a signed PDF (no login)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile

from econtract.http import base_ctx, read_upload, runtime
from econtract.verification import service

router = APIRouter(tags=["verify"])


@router.post("/verify", summary="Verify a signed PDF: verdict and one report per signature")
def verify(request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    upload = read_upload(file, service.MAX_VERIFY_BYTES)
    rt = runtime(request)
    ctx = base_ctx(request)
    engine = rt.signing_engine()
    with rt.uow() as session:
        report = service.verify_with_platform(session, ctx, engine, data=upload.data,
                                              filename=upload.filename)
    return report.to_dict()
