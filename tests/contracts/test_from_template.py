"""Contracts from a template (both databases): ``POST /contracts`` as JSON with ``template_id`` and
``variables`` fills the template into the draft's PDF (Chinese intact, fonts embedded); bad values
are listed one by one and nothing is stored; a contract from the employment starter goes through
the whole flow — sent, signed by both parties, sealed, valid."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract.accounts.policy import Role
from econtract.app import create_app
from econtract.audit.models import AuditEvent
from econtract.context import utcnow
from econtract.contracts import from_template, sending
from econtract.contracts.models import Contract
from econtract.runtime import Runtime
from econtract.signing.report import Verdict
from econtract.signing.verify import verify_pdf
from econtract.templates import service as templates
from econtract.templates.variables import resolve
from tests.conftest import FakeClock
from tests.contracts.test_api import api_key
from tests.factories import add_org, add_user, owner, user_ctx
from tests.parties.test_sign import current_pdf, sign_as

EMPLOYER = {"name": "上海示例科技有限公司", "id_number": "91310000MA1234567X",
            "address": "上海市浦东新区世纪大道100号", "contact": "021-12345678"}
EMPLOYEE = {"name": "王小明", "id_number": "310101199001011234",
            "address": "上海市黄浦区人民路1号", "contact": "13800000000"}
VALUES: dict[str, dict[str, Any]] = {
    "employment": {"employer": EMPLOYER, "legal_representative": "李四", "employee": EMPLOYEE,
                   "position": "软件工程师", "work_location": "上海市", "start_date": "2027-01-01",
                   "end_date": "2029-12-31", "monthly_salary": "20000",
                   "probation_salary": "16,000.00"},
    "lease": {"landlord": {"name": "张房东"}, "tenant": "李租客",
              "address": "北京市朝阳区建国路88号",
              "area": "89.5", "start_date": "2027-02-01", "end_date": "2028-01-31",
              "monthly_rent": "6500", "deposit": "13000"},
    "purchase": {"buyer": EMPLOYER, "seller": {"name": "深圳供应链有限公司"},
                 "goods_name": "服务器", "specification": "2U 机架式", "quantity": 10,
                 "unit_price": "35000", "total_price": "350000",
                 "delivery_date": "2027-04-30", "delivery_place": "上海市浦东新区仓库"},
    "nda": {"party_a": {"name": "Acme Trading Ltd"}, "party_b": "北京乙方科技有限公司",
            "effective_date": "2027-03-01"},
}
EXPECTED = {
    "employment": ["上海示例科技有限公司", "王小明", "软件工程师", "人民币贰万元整",
                   "人民币壹万陆仟元整", "2027年1月1日", "2029年12月31日"],
    "lease": ["张房东", "李租客", "北京市朝阳区建国路88号", "人民币陆仟伍佰元整",
              "人民币壹万叁仟元整"],
    "purchase": ["深圳供应链有限公司", "服务器", "人民币叁拾伍万元整", "2027年4月30日"],
    "nda": ["Acme Trading Ltd", "北京乙方科技有限公司", "1 March 2027"],
}
SIGNERS = [{"name": "张三", "email": "zhang@example.com", "order": 1},
           {"name": "Bob Lee", "email": "bob@example.com", "order": 2}]


@pytest.fixture
def client(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as test_client:
        yield test_client


def starter_ids(rt: Runtime) -> dict[str, uuid.UUID]:
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        installed = templates.install_starters(session, ctx)
        return {t.starter or "": t.id for t in installed}


def create(client: TestClient, headers: dict[str, str], template_id: uuid.UUID,
           variables: dict[str, Any], **fields: Any) -> Any:
    return client.post("/api/v1/contracts", headers=headers, json={
        "title": "合同（模板）", "signers": SIGNERS, "template_id": str(template_id),
        "variables": variables, "clauses": ["双方另行约定的其他事项。"], **fields})


def pdf_tool(tool: str, pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{uuid.uuid4()}.pdf"
    path.write_bytes(pdf)
    args = [tool, str(path)] + (["-"] if tool == "pdftotext" else [])
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def flat(text: str) -> str:
    """Without white space: lines break anywhere in Chinese text."""
    return "".join(text.split())


def stored(rt: Runtime) -> tuple[int, int, int]:
    """Contract rows, ``contract.created`` events and blob files."""
    with rt.uow() as session:
        contracts = session.scalar(select(func.count()).select_from(Contract)) or 0
        created = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == "contract.created")) or 0
    blobs = rt.settings.data_dir / "blobs"
    files = sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0
    return contracts, created, files


@pytest.mark.parametrize("key", list(VALUES))
def test_each_starter_makes_a_draft_with_its_values(client: TestClient, rt: Runtime,
                                                    tmp_path: Path, key: str) -> None:
    headers = api_key(rt, owner(rt))
    template_id = starter_ids(rt)[key]
    response = create(client, headers, template_id, VALUES[key], tags=["模板"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "draft" and body["title"] == "合同（模板）"
    assert body["template_id"] == str(template_id) and body["template_version"] == 1
    assert body["document"]["filename"] == "合同（模板）.pdf"
    assert [c["body"] for c in body["clauses"]] == ["双方另行约定的其他事项。"]
    pdf = client.get(f"/api/v1/contracts/{body['id']}/document", headers=headers).content
    text = flat(pdf_tool("pdftotext", pdf, tmp_path))
    for expected in EXPECTED[key]:
        assert flat(expected) in text, (expected, text)
    assert "双方另行约定的其他事项" not in text  # clauses are appended at send, not printed twice
    fonts = [line.split() for line in pdf_tool("pdffonts", pdf, tmp_path).splitlines()[2:]]
    assert fonts and all(row[-5] == "yes" and row[-4] == "yes" for row in fonts), fonts
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        contract = session.get_one(Contract, uuid.UUID(body["id"]))
        version = templates.version(session, template=templates.get(
            session, ctx, template_id=template_id))
        assert contract.template_version_id == version.id
        values = contract.template_values or {}
        # stored as JSON that reads back to the same typed values
        assert resolve(templates.variables_of(version), values) == resolve(
            templates.variables_of(version), VALUES[key])
        origin = from_template.origin(session, contract)
    assert origin is not None and origin.version == 1 and origin.template_id == template_id
    audit = client.get(f"/api/v1/contracts/{body['id']}/audit", headers=headers).json()
    event = next(e for e in audit if e["kind"] == "contract.from_template")
    assert event["data"]["version"] == 1 and event["data"]["template_id"] == str(template_id)
    assert "values" not in event["data"] and len(event["data"]["values_sha256"]) == 64


def test_missing_and_ill_typed_values_store_nothing(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    template_id = starter_ids(rt)["employment"]
    before = stored(rt)
    values = {**VALUES["employment"], "monthly_salary": "二万", "start_date": "2027-02-30",
              "employee": {"id_number": "310101199001011234"}, "bonus": "1"}
    del values["position"]
    response = create(client, headers, template_id, values)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "template_variables_invalid"
    assert problem["problems"] == {
        "position": "required", "monthly_salary": "not a number",
        "start_date": "not a valid date", "employee": "a party needs a name",
        "bonus": "not a variable of this template"}
    for name in ("position", "monthly_salary", "start_date", "employee", "bonus"):
        assert name in problem["detail"]
    assert stored(rt) == before


def test_refusals(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    template_id = starter_ids(rt)["nda"]
    before = stored(rt)
    unknown = create(client, headers, uuid.uuid4(), {})
    assert unknown.status_code == 404 and unknown.json()["code"] == "template_not_found"
    stranger = api_key(rt, add_org(rt, name="Globex", email="boss@globex.test"))
    foreign = create(client, stranger, template_id, VALUES["nda"])
    assert foreign.status_code == 404 and foreign.json()["code"] == "template_not_found"
    viewer = api_key(rt, add_user(rt, email="viewer@acme.test", role=Role.VIEWER))
    assert create(client, viewer, template_id, VALUES["nda"]).status_code == 403
    bad_fields = create(client, headers, template_id, VALUES["nda"], expiry_date="2020-01-01",
                        effective_date="2021-01-01")
    assert bad_fields.status_code == 422 and bad_fields.json()["code"] == "validation_failed"
    not_json = client.post("/api/v1/contracts", headers={**headers,
                                                        "Content-Type": "application/json"},
                           content=b"{nope")
    assert not_json.status_code == 422 and not_json.json()["code"] == "invalid_json"
    odd = client.post("/api/v1/contracts", headers={**headers, "Content-Type": "text/plain"},
                      content=b"hello")
    assert odd.status_code == 422 and odd.json()["code"] == "unsupported_media_type"
    no_file = client.post("/api/v1/contracts", headers=headers,
                          files={"meta": (None, '{"title": "x"}')})
    assert no_file.status_code == 422 and "file" in no_file.json()["detail"]
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        templates.set_archived(session, ctx, template_id=template_id, archived=True)
    archived = create(client, headers, template_id, VALUES["nda"])
    assert archived.status_code == 409 and archived.json()["code"] == "template_archived"
    assert stored(rt) == before


def test_employment_contract_is_signed_by_both_and_sealed(client: TestClient, rt: Runtime,
                                                         tmp_path: Path) -> None:
    """Acceptance: a contract made from a starter can be signed through the whole flow."""
    headers = api_key(rt, owner(rt))
    template_id = starter_ids(rt)["employment"]
    body = create(client, headers, template_id, VALUES["employment"],
                  title="劳动合同 — 王小明").json()
    contract_id = uuid.UUID(body["id"])
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        sending.send(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                     contract_id=contract_id)
    for signer in SIGNERS:
        assert sign_as(rt, contract_id, str(signer["email"])).error is None
    assert rt.worker().run_once() >= 1  # the seal job
    version, pdf = current_pdf(rt, contract_id)
    assert version.kind == "sealed"
    with rt.uow() as session:
        assert session.get_one(Contract, contract_id).status == "completed"
        trust = rt.signing_engine().trust(session, utcnow())
    report = verify_pdf(pdf, trust)
    assert report.verdict is Verdict.VALID, report.to_dict()
    approvals = [s for s in report.signatures if s.kind.value == "approval"]
    assert [s.signer.common_name for s in approvals] == ["张三", "Bob Lee"]  # type: ignore[union-attr]
    text = flat(pdf_tool("pdftotext", pdf, tmp_path))
    for expected in [*EXPECTED["employment"], "双方另行约定的其他事项"]:
        assert flat(expected) in text, expected
