"""Archive (归档) and unarchive: file away contracts whose signing is over.

Archiving sets ``archived_at``; it is not a status (a lapsed contract stays lapsed, an archived
completed contract still lapses and its owner is still reminded). Archived contracts leave the
default lists (``ContractFilter.archived``) and are found with the "Archived" filter. Only
contracts whose signing has ended may be archived, never one still out for signing or a draft;
who may edit a contract may archive it.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import service
from econtract.contracts.models import Contract
from econtract.contracts.states import Status
from econtract.errors import Conflict, InvalidTransition

ARCHIVABLE = frozenset({Status.COMPLETED, Status.LAPSED, Status.VOIDED, Status.DECLINED,
                        Status.EXPIRED})
"""Signing has ended for good in these states."""


def can_archive(contract: Contract) -> bool:
    return Status(contract.status) in ARCHIVABLE and contract.archived_at is None


def archive(session: Session, ctx: Ctx, *, contract_id: uuid.UUID) -> Contract:
    """File the contract away: it leaves the default lists."""
    contract = service.get(session, ctx, contract_id=contract_id, lock=True)
    service.require_edit(ctx, contract)
    if Status(contract.status) not in ARCHIVABLE:
        raise InvalidTransition(
            f"A contract that is {contract.status} cannot be archived; only contracts whose "
            "signing has ended can.", code="not_archivable", details={"status": contract.status})
    if contract.archived_at is not None:
        raise Conflict("The contract is already archived.", code="already_archived")
    now = ctx.now()
    contract.archived_at = now
    contract.updated_at = now
    session.flush()
    audit.record(session, ctx, EventKind.CONTRACT_ARCHIVED, org_id=contract.org_id,
                 contract_id=contract.id, data={"status": contract.status})
    return contract


def unarchive(session: Session, ctx: Ctx, *, contract_id: uuid.UUID) -> Contract:
    """Bring an archived contract back into the default lists."""
    contract = service.get(session, ctx, contract_id=contract_id, lock=True)
    service.require_edit(ctx, contract)
    if contract.archived_at is None:
        raise Conflict("The contract is not archived.", code="not_archived")
    archived_at = contract.archived_at
    contract.archived_at = None
    contract.updated_at = ctx.now()
    session.flush()
    audit.record(session, ctx, EventKind.CONTRACT_UNARCHIVED, org_id=contract.org_id,
                 contract_id=contract.id, data={"archived_at": archived_at.isoformat()})
    return contract


ARCHIVED_CHOICES: dict[str, bool | None] = {"": False, "false": False, "true": True, "all": None}
"""The ``archived`` list parameter: hide archived contracts (default), only them, or all."""


def archived_filter(value: str | None) -> bool | None:
    """``ContractFilter.archived`` from the query parameter (unknown values: the default)."""
    return ARCHIVED_CHOICES.get((value or "").strip().lower(), False)
