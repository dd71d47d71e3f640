"""Contracts made from a template (合同模板): the template filled in becomes the draft's document.

``create_from_template`` fills the template's current version with the caller's values
(``templates.service.fill``: every missing or ill-typed value is reported at once, before anything
is stored), then creates the draft through ``contracts.service.create`` with the rendered PDF as
its upload — so the PDF goes through the same sandboxed inspection, encrypted storage and audit as
an uploaded one — and records which template version it came from and the values it was given.

Additional clauses: the contract's ``clauses`` are *not* passed into the template's
``{% for clause in clauses %}`` loop. They stay the contract's own clauses, editable while it is a
draft, and sending appends them as the clauses page exactly as for an uploaded PDF. Printing them
in the body as well would either print them twice or freeze a copy that later edits of the draft
would no longer match.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import policy
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.contracts.schemas import ContractCreate
from econtract.errors import Conflict, PermissionDenied
from econtract.parties import routing
from econtract.signing.specs import MAX_FIELD_SIZE, MIN_FIELD_SIZE
from econtract.storage import BlobStore
from econtract.templates import service as templates
from econtract.templates.models import ContractTemplate, TemplateVersion
from econtract.templates.render import Anchor
from econtract.templates.variables import Party


class ContractFromTemplate(ContractCreate):
    """``POST /contracts`` as JSON: the ``ContractCreate`` fields, the template and its values."""

    template_id: uuid.UUID
    variables: dict[str, Any] = Field(default_factory=dict)
    """Variable name → value: text, a number or decimal string, ``YYYY-MM-DD``, or for a party
    a name or ``{"name", "id_number", "address", "contact"}``."""


@dataclass(frozen=True)
class TemplateOrigin:
    """Where a contract's document came from: shown on the contract and in ``ContractRead``."""

    template_id: uuid.UUID
    name: str
    version: int


def create_from_template(session: Session, ctx: Ctx, *, blobs: BlobStore,
                         limits: contracts.UploadLimits, contract_in: ContractCreate,
                         template_id: uuid.UUID, values: Mapping[str, Any],
                         attachments: Sequence[contracts.Upload] = ()) -> Contract:
    """A draft contract whose document is the template's current version filled with
    ``values``; nothing is stored unless every value checks out and the PDF passes inspection."""
    if ctx.org_id is None or not policy.can_create_contract(ctx.actor):
        raise PermissionDenied("You may not create contracts.")
    template = usable_template(session, ctx, template_id=template_id)
    rendered = templates.fill(session, ctx, template_id=template.id, values=dict(values),
                              title=contract_in.title)
    document = contracts.Upload(f"{contract_in.title}.pdf", rendered.pdf.pdf)
    contract = contracts.create(session, ctx, blobs=blobs, limits=limits,
                                contract_in=contract_in, document=document,
                                attachments=attachments)
    stored = json_values(rendered.values)
    place_at_anchors(contract, rendered.pdf.anchors)
    contract.template_version_id = rendered.version.id
    contract.template_values = stored
    session.flush()
    audit.record(session, ctx, EventKind.CONTRACT_FROM_TEMPLATE, org_id=contract.org_id,
                 contract_id=contract.id, data={
                     "template_id": str(template.id), "template": template.name,
                     "version": rendered.version.number,
                     "template_version_id": str(rendered.version.id),
                     "variables": sorted(stored),
                     # The values themselves stay on the contract row: the hash chain cannot
                     # forget, and parties' ID numbers should not outlive the contract there.
                     "values_sha256": _digest(stored)})
    return contract


def place_at_anchors(contract: Contract, anchors: Sequence[Anchor]) -> None:
    """Anchor ``signer-N`` places the N-th signing party's field (in signing order), its
    rectangle brought within the allowed field sizes; anchors beyond the number of signers are
    ignored, signers without an anchor sign on the signature page."""
    parties = routing.signing_parties(contract)
    for anchor in anchors:
        number = anchor.name.removeprefix("signer-")
        if not number.isdigit() or not 1 <= int(number) <= len(parties):
            continue
        signer = parties[int(number) - 1]
        signer.field_page = anchor.page
        signer.field_rect = {"rect": fit_field_rect(anchor.rect)}


def fit_field_rect(rect: Sequence[float]) -> list[float]:
    """``rect`` grown or shrunk to the field size limits, keeping its top-left corner (where a
    template's anchor starts)."""
    x1, y1, x2, y2 = rect
    width = min(max(abs(x2 - x1), MIN_FIELD_SIZE[0]), MAX_FIELD_SIZE[0])
    height = min(max(abs(y2 - y1), MIN_FIELD_SIZE[1]), MAX_FIELD_SIZE[1])
    left, top = min(x1, x2), max(y1, y2)
    return [round(left), round(top - height), round(left + width), round(top)]


def usable_template(session: Session, ctx: Ctx, *, template_id: uuid.UUID) -> ContractTemplate:
    """A template new contracts may be made from: visible to the actor and not archived."""
    template = templates.get(session, ctx, template_id=template_id)
    if template.archived_at is not None:
        raise Conflict("This template is archived; restore it to make contracts from it.",
                       code="template_archived")
    return template


def origin(session: Session, contract: Contract) -> TemplateOrigin | None:
    """The template and version a contract was made from (``None`` for an uploaded PDF).

    The caller has already been allowed to see ``contract``; its template is in the same
    organisation, since only that organisation's templates can be filled for it."""
    if contract.template_version_id is None:
        return None
    version = session.get(TemplateVersion, contract.template_version_id)
    template = session.get(ContractTemplate, version.template_id) if version else None
    if version is None or template is None:
        return None
    return TemplateOrigin(template_id=template.id, name=template.name, version=version.number)


def json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values as JSON: dates ISO, amounts and numbers as decimal strings (no float
    rounding), parties as objects. ``templates.variables.resolve`` reads them back unchanged."""
    return {name: _json_value(value) for name, value in values.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Party):
        return asdict(value)
    return value


def _digest(values: dict[str, Any]) -> str:
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
