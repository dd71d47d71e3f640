"""REST: the organisation's audit log (administrators and viewers)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from econtract.accounts import policy
from econtract.audit import service
from econtract.contracts.schemas import AuditEventRead
from econtract.errors import PermissionDenied
from econtract.http import api_unit

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=list[AuditEventRead],
            summary="The organisation's audit events, newest first")
def org_audit(request: Request, limit: int = Query(100, ge=1, le=1000),
              before_seq: int | None = Query(None, ge=1)) -> list[AuditEventRead]:
    with api_unit(request) as (session, ctx):
        if ctx.org_id is None or not policy.can_view_org_audit(ctx.actor):
            raise PermissionDenied("Only administrators and viewers can read the audit log.")
        events = service.org_events(session, org_id=ctx.org_id, limit=limit,
                                    before_seq=before_seq)
        return [AuditEventRead.model_validate(e) for e in events]
