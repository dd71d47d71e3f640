"""Signature placement on the platform (both databases): ``GET``/``PUT /contracts/{id}/fields``,
the refusals, and the whole flow — placed fields end up at the stored rectangles in the certified
PDF, every party signs there, the sealed document is ``valid``; a template's anchors place the
fields the same way."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from econtract.accounts.policy import Role
from econtract.app import create_app
from econtract.context import utcnow
from econtract.contracts import placement, sending
from econtract.contracts.models import Contract
from econtract.errors import ValidationFailed
from econtract.runtime import Runtime
from econtract.signing.report import Verdict
from econtract.signing.verify import verify_pdf
from tests.conftest import FakeClock
from tests.contracts.test_api import api_key
from tests.contracts.test_from_template import VALUES, starter_ids
from tests.contracts.test_from_template import create as create_from_template
from tests.factories import add_org, add_user, create_contract, owner, user_ctx
from tests.parties.test_sign import current_pdf, sign_as

RECT_1 = [72.0, 100.0, 232.0, 164.0]
RECT_2 = [300.0, 400.0, 460.0, 464.0]


@pytest.fixture
def client(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as test_client:
        yield test_client


def signer_ids(client: TestClient, headers: dict[str, str], contract_id: uuid.UUID) -> list[str]:
    body = client.get(f"/api/v1/contracts/{contract_id}/fields", headers=headers).json()
    return [f["signer_id"] for f in body["fields"]]


def put(client: TestClient, headers: dict[str, str], contract_id: uuid.UUID,
        *placements: dict[str, Any]) -> Any:
    return client.put(f"/api/v1/contracts/{contract_id}/fields", headers=headers,
                      json={"placements": list(placements)})


def widgets(pdf: bytes) -> dict[str, tuple[int, list[float]]]:
    """Signature field name → (1-based page, /Rect)."""
    found = {}
    for number, page in enumerate(PdfReader(io.BytesIO(pdf)).pages, start=1):
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/FT") == "/Sig" and str(annot["/T"]).startswith("signer-"):
                found[str(annot["/T"])] = (number, [float(v) for v in annot["/Rect"]])
    return found


def test_place_read_and_clear(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    contract = create_contract(rt, owner(rt))
    body = client.get(f"/api/v1/contracts/{contract.id}/fields", headers=headers).json()
    assert body["editable"] is True
    assert body["pages"] == [{"page": 1, "box": [0, 0, 595, 842]},
                             {"page": 2, "box": [0, 0, 595, 842]}]
    assert [(f["number"], f["name"], f["page"]) for f in body["fields"]] == [
        (1, "张三", None), (2, "Bob Lee", None)]
    first, second = (f["signer_id"] for f in body["fields"])
    placed = put(client, headers, contract.id,
                 {"signer_id": first, "page": 1, "rect": [72.4, 100, 232.2, 164]},
                 {"signer_id": second, "page": 2, "rect": RECT_2})
    assert placed.status_code == 200, placed.text
    fields = placed.json()["fields"]
    assert [(f["page"], f["rect"]) for f in fields] == [(1, RECT_1), (2, RECT_2)]
    again = client.get(f"/api/v1/contracts/{contract.id}/fields", headers=headers).json()
    assert again["fields"] == fields
    cleared = put(client, headers, contract.id, {"signer_id": second, "clear": True})
    assert [(f["page"], f["rect"]) for f in cleared.json()["fields"]] == [(1, RECT_1),
                                                                          (None, None)]
    audit = client.get(f"/api/v1/contracts/{contract.id}/audit", headers=headers).json()
    events = [e for e in audit if e["kind"] == "contract.fields_placed"]
    assert [e["data"]["fields"] for e in events] == [
        [{"signer_id": first, "page": 1, "rect": RECT_1},
         {"signer_id": second, "page": 2, "rect": RECT_2}],
        [{"signer_id": second, "clear": True}]]


def test_editing_the_signers_keeps_the_placement_of_those_who_stay(client: TestClient,
                                                                   rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    contract = create_contract(rt, owner(rt))
    first, second = signer_ids(client, headers, contract.id)
    assert put(client, headers, contract.id, {"signer_id": first, "page": 1, "rect": RECT_1},
               {"signer_id": second, "page": 2, "rect": RECT_2}).status_code == 200
    edited = client.patch(f"/api/v1/contracts/{contract.id}", headers=headers, json={
        "signers": [{"name": "王五", "email": "wang@example.com", "order": 1},
                    {"name": "张三丰", "email": "Zhang@Example.com", "order": 2}]})
    assert edited.status_code == 200, edited.text
    fields = client.get(f"/api/v1/contracts/{contract.id}/fields", headers=headers).json()
    # Bob left (his placement with him), 张三 was renamed and moved (kept), 王五 is new (none).
    assert [(f["name"], f["page"], f["rect"]) for f in fields["fields"]] == [
        ("王五", None, None), ("张三丰", 1, RECT_1)]


@pytest.mark.parametrize(("page", "rect", "status", "code"), [
    (3, RECT_1, 422, "placement_page"),
    (1, [500, 100, 660, 164], 422, "placement_off_page"),
    (1, [72, -4, 232, 60], 422, "placement_off_page"),
    (1, [72, 100, 100, 164], 422, "placement_too_small"),
    (1, [0, 0, 595, 842], 422, "placement_too_large"),
    (0, RECT_1, 422, "validation_failed"),
    (1, [1, 2, 3], 422, "validation_failed"),
])
def test_refused_placements(client: TestClient, rt: Runtime, page: int, rect: list[float],
                            status: int, code: str) -> None:
    headers = api_key(rt, owner(rt))
    contract = create_contract(rt, owner(rt))
    first = signer_ids(client, headers, contract.id)[0]
    response = put(client, headers, contract.id, {"signer_id": first, "page": page,
                                                  "rect": rect})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert client.get(f"/api/v1/contracts/{contract.id}/fields",
                      headers=headers).json()["fields"][0]["page"] is None


def test_refusals_by_state_owner_and_signer(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    contract = create_contract(rt, owner(rt))
    first, second = signer_ids(client, headers, contract.id)
    overlap = put(client, headers, contract.id, {"signer_id": first, "page": 1, "rect": RECT_1},
                  {"signer_id": second, "page": 1, "rect": [200, 150, 360, 214]})
    assert overlap.status_code == 422 and overlap.json()["code"] == "placement_overlap"
    both = put(client, headers, contract.id, {"signer_id": first, "clear": True, "page": 1})
    assert both.status_code == 422
    unknown = put(client, headers, contract.id, {"signer_id": str(uuid.uuid4()), "clear": True})
    assert unknown.status_code == 404 and unknown.json()["code"] == "signer_not_found"
    stranger = api_key(rt, add_org(rt, name="Globex", email="boss@globex.test"))
    for response in (client.get(f"/api/v1/contracts/{contract.id}/fields", headers=stranger),
                     put(client, stranger, contract.id, {"signer_id": first, "clear": True})):
        assert response.status_code == 404 and response.json()["code"] == "contract_not_found"
    viewer = api_key(rt, add_user(rt, email="viewer@acme.test", role=Role.VIEWER))
    assert put(client, viewer, contract.id, {"signer_id": first, "clear": True}
               ).status_code == 403
    assert client.get(f"/api/v1/contracts/{contract.id}/fields",
                      headers=viewer).json()["editable"] is False
    assert client.post(f"/api/v1/contracts/{contract.id}/send", headers=headers
                       ).status_code == 200
    sent = put(client, headers, contract.id, {"signer_id": first, "page": 1, "rect": RECT_1})
    assert sent.status_code == 409 and sent.json()["code"] == "contract_not_editable"


def test_placed_fields_are_signed_and_sealed_valid(rt: Runtime) -> None:
    contract = create_contract(rt, owner(rt))
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        read = placement.read_fields(session, ctx, blobs=rt.blobs, contract_id=contract.id)
        first, second = (f.signer_id for f in read.fields)
        placement.place_fields(session, ctx, blobs=rt.blobs, contract_id=contract.id,
                               placements=[
                                   placement.FieldPlacementIn(signer_id=first, page=1,
                                                              rect=RECT_1),
                                   placement.FieldPlacementIn(signer_id=second, page=2,
                                                              rect=RECT_2)])
    with rt.uow() as session:
        sending.send(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                     contract_id=contract.id)
    version, certified = current_pdf(rt, contract.id)
    assert version.kind == "certified"
    assert widgets(certified) == {"signer-1": (1, RECT_1), "signer-2": (2, RECT_2)}
    for email in ("zhang@example.com", "bob@example.com"):
        assert sign_as(rt, contract.id, email).error is None
    assert rt.worker().run_once() >= 1  # the seal job
    version, sealed = current_pdf(rt, contract.id)
    assert version.kind == "sealed"
    with rt.uow() as session:
        assert session.get_one(Contract, contract.id).status == "completed"
        trust = rt.signing_engine().trust(session, utcnow())
    report = verify_pdf(sealed, trust)
    assert report.verdict is Verdict.VALID, report.to_dict()
    assert widgets(sealed) == {"signer-1": (1, RECT_1), "signer-2": (2, RECT_2)}


def test_service_refuses_what_the_core_would(rt: Runtime) -> None:
    contract = create_contract(rt, owner(rt))
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        first = placement.read_fields(session, ctx, blobs=rt.blobs,
                                      contract_id=contract.id).fields[0].signer_id
        with pytest.raises(ValidationFailed) as caught:
            placement.place_fields(session, ctx, blobs=rt.blobs, contract_id=contract.id,
                                   placements=[placement.FieldPlacementIn(
                                       signer_id=first, page=1, rect=[560, 100, 640, 164])])
    assert caught.value.code == "placement_off_page"


def test_template_anchors_place_the_fields(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    body = create_from_template(client, headers, starter_ids(rt)["employment"],
                                VALUES["employment"]).json()
    contract_id = uuid.UUID(body["id"])
    fields = client.get(f"/api/v1/contracts/{contract_id}/fields", headers=headers).json()
    placed = [(f["number"], f["page"], f["rect"]) for f in fields["fields"]]
    assert all(page is not None for _, page, _ in placed), placed
    with rt.uow() as session:
        sending.send(session, user_ctx(owner(rt)), blobs=rt.blobs,
                     engine=rt.signing_engine(), contract_id=contract_id)
    _, certified = current_pdf(rt, contract_id)
    assert widgets(certified) == {f"signer-{n}": (page, rect) for n, page, rect in placed}
