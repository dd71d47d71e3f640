"""The templates and clause-library REST API (both databases): CRUD, versions, preview, starters,
roles and tenant isolation."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from econtract.accounts.policy import Role
from econtract.app import create_app
from econtract.runtime import Runtime
from econtract.templates.starters import STARTER_KEYS
from tests.conftest import FakeClock
from tests.contracts.test_api import api_key
from tests.factories import add_org, add_user, owner

BODY = ("<h1>{{ title }}</h1>"
        "<p>甲方：{{ buyer.name }}，金额 {{ amount|money }}（{{ amount|money_cn }}）。</p>")
VARIABLES = [{"name": "buyer", "type": "party", "label": "甲方"},
             {"name": "amount", "type": "money", "label": "金额"}]


@pytest.fixture
def client(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as test_client:
        yield test_client


def create(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/templates", headers=headers, json={
        "name": "服务合同", "body": BODY, "variables": VARIABLES, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "preview.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                         text=True).stdout
    return "".join(out.split())


def test_crud_versions_archive(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    created = create(client, headers, category="服务")
    tid = created["id"]
    assert created["version"] == created["current_version"] == 1
    assert [v["name"] for v in created["variables"]] == ["buyer", "amount"]
    renamed = client.patch(f"/api/v1/templates/{tid}", headers=headers,
                           json={"name": "技术服务合同", "description": "只改说明"}).json()
    assert renamed["name"] == "技术服务合同" and renamed["current_version"] == 1
    revised = client.patch(f"/api/v1/templates/{tid}", headers=headers,
                           json={"body": BODY + "<p>新增条款。</p>"}).json()
    assert revised["current_version"] == revised["version"] == 2
    assert "新增条款" in revised["body"]
    first = client.get(f"/api/v1/templates/{tid}?version=1", headers=headers).json()
    assert first["version"] == 1 and "新增条款" not in first["body"]
    assert first["current_version"] == 2
    missing = client.get(f"/api/v1/templates/{tid}?version=9", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "template_version_not_found"
    versions = client.get(f"/api/v1/templates/{tid}/versions", headers=headers).json()
    assert [v["number"] for v in versions] == [1, 2]
    assert versions[0]["created_by"]
    archived = client.post(f"/api/v1/templates/{tid}/archive", headers=headers).json()
    assert archived["archived_at"] is not None
    assert client.get("/api/v1/templates", headers=headers).json() == []
    listed = client.get("/api/v1/templates?archived=true", headers=headers).json()
    assert [t["name"] for t in listed] == ["技术服务合同"]
    restored = client.post(f"/api/v1/templates/{tid}/restore", headers=headers).json()
    assert restored["archived_at"] is None
    assert len(client.get("/api/v1/templates", headers=headers).json()) == 1


def test_refused_templates_are_problems(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    create(client, headers)
    taken = client.post("/api/v1/templates", headers=headers,
                        json={"name": "服务合同", "body": "<p>x</p>"})
    assert taken.status_code == 409 and taken.json()["code"] == "template_name_taken"
    undeclared = client.post("/api/v1/templates", headers=headers,
                             json={"name": "n", "body": "{{ nobody }}"})
    assert undeclared.status_code == 422
    assert undeclared.headers["content-type"] == "application/problem+json"
    assert undeclared.json()["code"] == "template_invalid"
    assert undeclared.json()["variables"] == ["nobody"]
    syntax = client.post("/api/v1/templates", headers=headers,
                         json={"name": "m", "body": "{% for %}"})
    assert syntax.status_code == 422 and syntax.json()["code"] == "template_invalid"


def test_preview_returns_a_pdf_and_lists_bad_values(client: TestClient, rt: Runtime,
                                                    tmp_path: Path) -> None:
    headers = api_key(rt, owner(rt))
    tid = create(client, headers)["id"]
    response = client.post(f"/api/v1/templates/{tid}/preview", headers=headers, json={
        "title": "预览合同", "variables": {"buyer": {"name": "上海甲方有限公司"},
                                         "amount": "1,004.50"}})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-template-version"] == "1"
    text = pdftotext(response.content, tmp_path)
    assert "预览合同" in text and "上海甲方有限公司" in text
    assert "人民币壹仟零肆元伍角整" in text and "¥1,004.50" in text
    bad = client.post(f"/api/v1/templates/{tid}/preview", headers=headers,
                      json={"variables": {"amount": "12.345", "extra": "x"}})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    problem = bad.json()
    assert problem["code"] == "template_variables_invalid"
    assert set(problem["problems"]) == {"buyer", "amount", "extra"}
    assert problem["problems"]["buyer"] == "required"
    # an optional variable left empty prints nothing (not "None")
    client.patch(f"/api/v1/templates/{tid}", headers=headers, json={
        "body": BODY + "<p>备注：[{{ note }}]</p>",
        "variables": [*VARIABLES, {"name": "note", "type": "text", "required": False}]})
    optional = client.post(f"/api/v1/templates/{tid}/preview", headers=headers, json={
        "variables": {"buyer": "甲方", "amount": "1"}})
    assert optional.headers["x-template-version"] == "2"
    assert "备注：[]" in pdftotext(optional.content, tmp_path)


def test_starters_install_once_and_preview(client: TestClient, rt: Runtime,
                                          tmp_path: Path) -> None:
    headers = api_key(rt, owner(rt))
    installed = client.post("/api/v1/templates/starters", headers=headers)
    assert installed.status_code == 200
    assert sorted(t["starter"] for t in installed.json()) == sorted(STARTER_KEYS)
    assert client.post("/api/v1/templates/starters", headers=headers).json() == []
    nda = next(t for t in installed.json() if t["starter"] == "nda")
    read = client.get(f"/api/v1/templates/{nda['id']}", headers=headers).json()
    assert read["locale"] == "en" and "{{ party_a.name }}" in read["body"]
    pdf = client.post(f"/api/v1/templates/{nda['id']}/preview", headers=headers, json={
        "variables": {"party_a": "Acme Ltd", "party_b": {"name": "北京乙方科技有限公司"},
                      "effective_date": "2027-03-01"}})
    assert pdf.status_code == 200, pdf.text
    text = pdftotext(pdf.content, tmp_path)
    assert "AcmeLtd" in text and "北京乙方科技有限公司" in text and "1March2027" in text


def test_members_read_and_use_but_do_not_edit(client: TestClient, rt: Runtime) -> None:
    tid = create(client, api_key(rt, owner(rt)))["id"]
    member = api_key(rt, add_user(rt, email="member@acme.test", role=Role.MEMBER))
    viewer = api_key(rt, add_user(rt, email="viewer@acme.test", role=Role.VIEWER))
    for headers in (member, viewer):
        assert client.get("/api/v1/templates", headers=headers).json()[0]["id"] == tid
        assert client.get(f"/api/v1/templates/{tid}", headers=headers).status_code == 200
        assert client.get("/api/v1/clauses", headers=headers).status_code == 200
    denied = [
        client.post("/api/v1/templates", headers=member, json={"name": "x", "body": "<p>x</p>"}),
        client.patch(f"/api/v1/templates/{tid}", headers=member, json={"description": "x"}),
        client.post(f"/api/v1/templates/{tid}/archive", headers=member),
        client.post("/api/v1/templates/starters", headers=member),
        client.post("/api/v1/clauses", headers=member, json={"title": "t", "body": "b"}),
    ]
    for response in denied:
        assert response.status_code == 403, response.request.url
        assert response.json()["code"] == "permission_denied"
    manager = api_key(rt, add_user(rt, email="manager@acme.test", role=Role.MANAGER))
    assert client.patch(f"/api/v1/templates/{tid}", headers=manager,
                        json={"description": "ok"}).status_code == 200


def test_another_organisation_gets_404(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    tid = create(client, headers)["id"]
    cid = client.post("/api/v1/clauses", headers=headers,
                      json={"title": "保密", "body": "双方保密。"}).json()["id"]
    stranger = api_key(rt, add_org(rt, name="Globex", email="boss@globex.test"))
    for method, url, payload in [
        ("GET", f"/api/v1/templates/{tid}", None),
        ("PATCH", f"/api/v1/templates/{tid}", {"description": "x"}),
        ("POST", f"/api/v1/templates/{tid}/archive", None),
        ("POST", f"/api/v1/templates/{tid}/restore", None),
        ("GET", f"/api/v1/templates/{tid}/versions", None),
        ("POST", f"/api/v1/templates/{tid}/preview", {"variables": {}}),
        ("GET", f"/api/v1/clauses/{cid}", None),
        ("PUT", f"/api/v1/clauses/{cid}", {"title": "x", "body": "y"}),
        ("DELETE", f"/api/v1/clauses/{cid}", None),
    ]:
        response = client.request(method, url, headers=stranger, json=payload)
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["code"] in ("template_not_found", "clause_not_found")
    assert client.get("/api/v1/templates", headers=stranger).json() == []
    assert client.get("/api/v1/clauses", headers=stranger).json() == []
    assert client.get(f"/api/v1/clauses/{cid}", headers=headers).json()["body"] == "双方保密。"


def test_clause_library(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    added = client.post("/api/v1/clauses", headers=headers, json={
        "title": "保密条款", "body": "双方对本合同内容负有保密义务。", "category": "通用"})
    assert added.status_code == 201
    cid = added.json()["id"]
    client.post("/api/v1/clauses", headers=headers,
                json={"title": "争议解决", "body": "协商解决。"})
    changed = client.put(f"/api/v1/clauses/{cid}", headers=headers, json={
        "title": "保密条款", "body": "双方对本合同内容及履行情况负有保密义务。",
        "category": "通用"})
    assert changed.status_code == 200 and "履行情况" in changed.json()["body"]
    listed = client.get("/api/v1/clauses", headers=headers).json()
    assert [c["title"] for c in listed] == ["保密条款", "争议解决"]  # uncategorised last
    assert client.delete(f"/api/v1/clauses/{cid}", headers=headers).status_code == 204
    assert [c["title"] for c in client.get("/api/v1/clauses", headers=headers).json()] == [
        "争议解决"]
    empty = client.post("/api/v1/clauses", headers=headers, json={"title": "", "body": "x"})
    assert empty.status_code == 422 and empty.json()["code"] == "validation_failed"
    kinds = [e["kind"] for e in client.get("/api/v1/audit", headers=headers).json()]
    assert "clause.saved" in kinds and "clause.deleted" in kinds


def test_openapi_documents_templates_and_both_create_bodies(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/templates", "/api/v1/templates/{template_id}",
                 "/api/v1/templates/{template_id}/preview", "/api/v1/templates/starters",
                 "/api/v1/templates/{template_id}/versions", "/api/v1/clauses",
                 "/api/v1/clauses/{clause_id}"):
        assert path in spec["paths"], path
    content = spec["paths"]["/api/v1/contracts"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    json_body = content["application/json"]["schema"]
    assert {"template_id", "variables", "title", "signers"} <= set(json_body["properties"])

    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    yield value
                yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(spec):  # every reference in the document resolves
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
