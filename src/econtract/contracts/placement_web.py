"""HTML: the placement editor (签署位置) — drag each signer's field onto the draft's pages.

The page shows the current document's pages as images with their visible areas in PDF points
(``data-box``), and each signing party's field as a box; ``web/static/placement.js`` converts
between screen pixels and points and saves through ``PUT /api/v1/contracts/{id}/fields`` (the
session cookie plus the ``X-CSRF-Token`` header), so the rules live in ``contracts.placement``
alone. Without JavaScript the page still lists where each party signs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from econtract.contracts import placement
from econtract.contracts import service as contracts
from econtract.http import runtime
from econtract.web.render import page_unit, parse_id, render

router = APIRouter(include_in_schema=False)

#: Preview width requested for each page image (CSS scales it down to the column).
PAGE_WIDTH_PX = 1000


@router.get("/contracts/{contract_id}/fields")
def placement_page(request: Request, contract_id: str) -> Response:
    cid = parse_id(contract_id)
    with page_unit(request) as page:
        contract = contracts.get(page.session, page.ctx, contract_id=cid)
        data = placement.read_fields(page.session, page.ctx, blobs=runtime(request).blobs,
                                     contract_id=cid)
        return render(request, "contracts/placement.html", viewer=page.viewer,
                      contract=contract, data=data, page_width=PAGE_WIDTH_PX)
