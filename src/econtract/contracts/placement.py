"""Signature placement (签署位置): where each signer's field goes on a draft's own pages.

A signer with a placement (``Signer.field_page``, 1-based, and ``field_rect``) signs in a field
created on that page of the document when the contract is sent; the others sign in a box on the
added signature page, which lists every party either way (``signing.prepare``). Placements are
set by a template's anchors (``from_template.place_at_anchors``) or here, by the placement editor
and ``PUT /contracts/{id}/fields``, on drafts only, checked against the current document's pages
with the same rules the signing core applies when sending (sizes, page, visible area, no
overlap), so a placement accepted here does not fail the send — unless the document is replaced
afterwards, in which case sending names the placement that no longer fits.
"""

from __future__ import annotations

import uuid
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.contracts import policy
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.contracts.states import EDITABLE, Status
from econtract.errors import ContractNotEditable, NotFound, ValidationFailed
from econtract.parties import routing
from econtract.parties.models import Signer
from econtract.signing.prepare import page_areas
from econtract.signing.specs import MAX_FIELD_SIZE, MIN_FIELD_SIZE, check_placement_rect
from econtract.storage import BlobStore

#: The field size the editor starts with (points).
DEFAULT_FIELD_SIZE = (160, 64)

Rect = tuple[float, float, float, float]


class FieldPlacementIn(BaseModel):
    """One signer's placement: ``page`` (1-based) and ``rect`` ``[x1, y1, x2, y2]`` in PDF
    points from the page's bottom left, or ``clear: true`` (back to the signature page)."""

    model_config = ConfigDict(extra="forbid")

    signer_id: uuid.UUID
    page: int | None = Field(default=None, ge=1, le=10_000)
    rect: list[float] | None = Field(default=None, min_length=4, max_length=4)
    clear: bool = False

    @model_validator(mode="after")
    def _either_place_or_clear(self) -> Self:
        if self.clear and (self.page is not None or self.rect is not None):
            raise ValueError("give either page and rect, or clear")
        if not self.clear and (self.page is None or self.rect is None):
            raise ValueError("page and rect are both required (or clear: true)")
        return self


class PlacementsIn(BaseModel):
    """``PUT /contracts/{id}/fields``: signers not listed keep their placement."""

    model_config = ConfigDict(extra="forbid")

    placements: list[FieldPlacementIn] = Field(max_length=50)


class PageRead(BaseModel):
    """A page of the document: its visible area in PDF points (``None`` when rotated: fields
    cannot be placed there)."""

    page: int
    box: list[float] | None


class SignerFieldRead(BaseModel):
    """A signing party and where their field is (``page``/``rect`` ``None``: signature page)."""

    signer_id: uuid.UUID
    number: int
    """1-based position in signing order: the ``signer-N`` of templates' anchors."""
    name: str
    email: str
    page: int | None
    rect: list[float] | None


class PlacementRead(BaseModel):
    contract_id: uuid.UUID
    editable: bool
    pages: list[PageRead]
    fields: list[SignerFieldRead]
    min_size: tuple[int, int] = MIN_FIELD_SIZE
    max_size: tuple[int, int] = MAX_FIELD_SIZE
    default_size: tuple[int, int] = DEFAULT_FIELD_SIZE


def read_fields(session: Session, ctx: Ctx, *, blobs: BlobStore,
                contract_id: uuid.UUID) -> PlacementRead:
    """The document's pages and every signing party's placement."""
    contract = contracts.get(session, ctx, contract_id=contract_id)
    return _read(session, ctx, blobs, contract)


def place_fields(session: Session, ctx: Ctx, *, blobs: BlobStore, contract_id: uuid.UUID,
                 placements: list[FieldPlacementIn]) -> PlacementRead:
    """Place (or clear) signers' fields on a draft's pages, all or nothing, audited."""
    # Locked, then checked: a concurrent send cannot slip between the check and the edit.
    contract = contracts.get(session, ctx, contract_id=contract_id, lock=True)
    contracts.require_edit(ctx, contract)
    if Status(contract.status) not in EDITABLE:
        raise ContractNotEditable(
            f"The contract is {contract.status}; only drafts can be edited.",
            details={"status": contract.status})
    parties = {s.id: s for s in routing.signing_parties(contract)}
    areas = page_areas(_document(session, blobs, contract))
    wanted: dict[uuid.UUID, tuple[int, Rect] | None] = {
        s.id: _current(s) for s in parties.values()}
    changes: list[dict[str, object]] = []
    for item in placements:
        if item.signer_id not in parties:
            raise NotFound("No such signer on this contract.", code="signer_not_found")
        if item.clear:
            wanted[item.signer_id] = None
            changes.append({"signer_id": str(item.signer_id), "clear": True})
            continue
        assert item.page is not None and item.rect is not None
        rect = _check_on_page(areas, item.page, check_placement_rect(item.rect))
        wanted[item.signer_id] = (item.page, rect)
        changes.append({"signer_id": str(item.signer_id), "page": item.page, "rect": list(rect)})
    _check_no_overlap(wanted, parties)
    for signer_id, place in wanted.items():
        signer = parties[signer_id]
        signer.field_page = place[0] if place else None
        signer.field_rect = {"rect": list(place[1])} if place else None
    session.flush()
    audit.record(session, ctx, EventKind.CONTRACT_FIELDS_PLACED, org_id=contract.org_id,
                 contract_id=contract.id, data={"fields": changes})
    return _view(contract, areas, editable=True)


def _document(session: Session, blobs: BlobStore, contract: Contract) -> bytes:
    version = contracts.current_version(session, contract=contract)
    return blobs.get(org_id=contract.org_id, contract_id=contract.id, key=version.blob_key,
                     sha256=version.sha256)


def _current(signer: Signer) -> tuple[int, Rect] | None:
    rect = (signer.field_rect or {}).get("rect")
    if signer.field_page is None or not rect or len(rect) != 4:
        return None
    return signer.field_page, (float(rect[0]), float(rect[1]), float(rect[2]), float(rect[3]))


def _check_on_page(areas: list[Rect | None], page: int, rect: Rect) -> Rect:
    if not 1 <= page <= len(areas):
        raise ValidationFailed(f"The document has no page {page}.", code="placement_page",
                               details={"pages": len(areas)})
    area = areas[page - 1]
    if area is None:
        raise ValidationFailed(f"Page {page} is rotated; fields cannot be placed on it.",
                               code="placement_rotated_page")
    if rect[0] < area[0] or rect[1] < area[1] or rect[2] > area[2] or rect[3] > area[3]:
        raise ValidationFailed(f"The field is not inside page {page}.",
                               code="placement_off_page", details={"page_box": list(area)})
    return rect


def _check_no_overlap(wanted: dict[uuid.UUID, tuple[int, Rect] | None],
                      parties: dict[uuid.UUID, Signer]) -> None:
    placed = [(sid, p) for sid, p in wanted.items() if p is not None]
    for i, (a_id, (a_page, a)) in enumerate(placed):
        for b_id, (b_page, b) in placed[i + 1:]:
            if a_page == b_page and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                raise ValidationFailed(
                    f"The fields of {parties[a_id].name} and {parties[b_id].name} overlap.",
                    code="placement_overlap")


def _read(session: Session, ctx: Ctx, blobs: BlobStore, contract: Contract) -> PlacementRead:
    areas = page_areas(_document(session, blobs, contract))
    editable = (Status(contract.status) in EDITABLE
                and policy.can_edit_contract(ctx.actor, contract))
    return _view(contract, areas, editable=editable)


def _view(contract: Contract, areas: list[Rect | None], *, editable: bool) -> PlacementRead:
    fields = []
    for number, signer in enumerate(routing.signing_parties(contract), start=1):
        place = _current(signer)
        fields.append(SignerFieldRead(
            signer_id=signer.id, number=number, name=signer.name, email=signer.email,
            page=place[0] if place else None, rect=list(place[1]) if place else None))
    pages = [PageRead(page=i, box=list(area) if area else None)
             for i, area in enumerate(areas, start=1)]
    return PlacementRead(contract_id=contract.id, editable=editable, pages=pages, fields=fields)
