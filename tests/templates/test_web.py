"""The template pages through TestClient (both databases): list, starters, editor and versions,
preview, the clause library, and a new contract from a template — in Chinese and English."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from econtract.accounts.policy import Role
from econtract.app import create_app
from econtract.contracts.models import Contract
from econtract.runtime import Runtime
from econtract.templates import service as templates
from econtract.templates.models import ContractTemplate
from econtract.templates.schemas import LibraryClauseIn
from tests.conftest import FakeClock
from tests.factories import PASSWORD, add_org, add_user, owner, user_ctx
from tests.web.test_pages import csrf, login


@pytest.fixture
def client(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def owner_client(client: TestClient) -> TestClient:
    assert login(client).status_code == 303
    return client


def install(client: TestClient) -> dict[str, str]:
    token = csrf(client.get("/templates").text)
    response = client.post("/templates/starters", data={"csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/templates?installed=4"
    page = client.get("/templates").text
    found = dict(re.findall(r'<a href="/templates/([0-9a-f-]{36})">([^<]+)</a>', page))
    return {name: tid for tid, name in found.items()}


def assert_clean(html: str) -> None:
    """The CSP allows no inline script or style."""
    assert " style=" not in html and "<style" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html)


EMPLOYMENT = "劳动合同（固定期限）"
VALUES = {
    "v_employer.name": "上海示例科技有限公司", "v_employer.id_number": "91310000MA1234567X",
    "v_employer.address": "上海市浦东新区世纪大道100号", "v_employer.contact": "",
    "v_legal_representative": "李四", "v_employee.name": "王小明",
    "v_employee.id_number": "310101199001011234", "v_employee.address": "",
    "v_employee.contact": "13800000000", "v_position": "软件工程师", "v_work_location": "上海市",
    "v_start_date": "2027-01-01", "v_end_date": "2029-12-31", "v_probation_months": "3",
    "v_monthly_salary": "20000", "v_probation_salary": "16000", "v_payday": "15",
    "v_working_hours": "标准工时制",
}


def use(client: TestClient, tid: str, **fields: Any) -> Response:
    data: dict[str, Any] = {
        "csrf_token": csrf(client.get(f"/templates/{tid}/use").text), "title": "劳动合同 — 王小明",
        "signer_name": ["张三", "王小明", ""], "signer_email": ["zhang@example.com",
                                                          "wang@example.com", ""],
        "signer_phone": ["", "", ""], "signer_order": ["1", "2", "3"], "tz_offset": "480",
        "clauses": "竞业限制另行约定。", "action": "create", **VALUES}
    data.update(fields)
    response: Response = client.post(f"/templates/{tid}/use", data=data,
                                     follow_redirects=False)
    return response


def contract_count(rt: Runtime) -> int:
    with rt.uow() as session:
        return session.scalar(select(func.count()).select_from(Contract)) or 0


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_pages_render_in_both_languages(owner_client: TestClient, lang: str) -> None:
    owner_client.get(f"/lang/{lang}")
    empty = owner_client.get("/templates").text
    assert ("安装入门模板" if lang == "zh_CN" else "Install starter templates") in empty
    names = install(owner_client)
    tid = names[EMPLOYMENT]
    pages = {path: owner_client.get(path) for path in (
        "/templates", f"/templates/{tid}", f"/templates/{tid}/use", "/templates/new",
        "/templates/clauses", f"/templates/{tid}?version=1")}
    for path, response in pages.items():
        assert response.status_code == 200, path
        assert_clean(response.text)
    detail, form = pages[f"/templates/{tid}"].text, pages[f"/templates/{tid}/use"].text
    assert 'name="body"' in detail and "{{ employer.name }}" in detail  # escaped in the editor
    assert 'name="var_name" value="monthly_salary"' in detail
    assert 'name="v_employer.id_number"' in form and 'type="date" name="v_start_date"' in form
    assert 'data-capitals="cap-monthly_salary"' in form
    assert 'value="3"' in form  # a default fills its field
    if lang == "zh_CN":
        assert "模板" in pages["/templates"].text and "条款库" in pages["/templates/clauses"].text
        assert "新建模板合同" in form and "模板变量" in form and "签署人" in form
    else:
        assert "Clause library" in pages["/templates/clauses"].text
        assert "New contract from a template" in form and "Template values" in form
    preview = owner_client.get(f"/templates/{tid}/preview")
    assert preview.status_code == 200 and preview.text.count('src="data:image/jpeg;base64,') == 2


def test_create_from_the_form_redirects_to_the_contract(owner_client: TestClient,
                                                        rt: Runtime) -> None:
    tid = install(owner_client)[EMPLOYMENT]
    with rt.uow() as session:
        clause = templates.save_clause(session, user_ctx(owner(rt)), data=LibraryClauseIn(
            title="保密条款", body="双方对本合同内容负有保密义务。"))
        clause_id = str(clause.id)
    response = use(owner_client, tid, library_clause=[clause_id])
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/contracts/")
    with rt.uow() as session:
        contract = session.get_one(Contract, uuid.UUID(location.removeprefix("/contracts/")))
        assert contract.template_version_id is not None
        assert contract.template_values and contract.template_values["monthly_salary"] == "20000.00"
        assert contract.template_values["employer"]["name"] == "上海示例科技有限公司"
        assert [c.body for c in contract.clauses] == ["竞业限制另行约定。",
                                                      "双方对本合同内容负有保密义务。"]
        assert [s.email for s in contract.signers] == ["zhang@example.com", "wang@example.com"]
        version_id = contract.template_version_id
    detail = owner_client.get(location).text
    assert 'id="template-origin"' in detail
    link = owner_client.get(f"/templates/versions/{version_id}", follow_redirects=False)
    assert link.status_code == 303 and link.headers["location"] == f"/templates/{tid}?version=1"


def test_bad_values_show_the_form_again_with_each_error(owner_client: TestClient,
                                                       rt: Runtime) -> None:
    owner_client.get("/lang/zh_CN")
    tid = install(owner_client)[EMPLOYMENT]
    response = use(owner_client, tid, v_monthly_salary="两万", v_position="",
                   **{"v_employee.name": "", "v_employee.id_number": "",
                      "v_employee.contact": ""}, signer_email=["bad", "wang@example.com", ""])
    assert response.status_code == 422
    page = response.text
    assert "template_variables_invalid" in page or "invalid_form" in page
    salary = page[page.index('id="var-monthly_salary"'):]
    assert salary.index("不是有效的数字") < salary.index("</label>")
    position = page[page.index('id="var-position"'):]
    assert position.index("必填") < position.index("</label>")
    employee = page[page.index('id="var-employee"'):]
    assert employee.index("必填") < employee.index("</fieldset>")
    assert "不是有效的电子邮箱地址" in page  # the contract fields are checked in the same go
    assert 'value="两万"' in page and 'value="上海示例科技有限公司"' in page
    assert contract_count(rt) == 0
    # a preview with good values shows the pages and the amount in capitals, and stores nothing
    preview = use(owner_client, tid, action="preview")
    assert preview.status_code == 200
    assert 'src="data:image/jpeg;base64,' in preview.text and "人民币贰万元整" in preview.text
    assert contract_count(rt) == 0


def test_editor_versions_and_archive(owner_client: TestClient, rt: Runtime) -> None:
    token = csrf(owner_client.get("/templates/new").text)
    rows = {"var_key": ["0", "1", "2"], "var_name": ["buyer", "amount", ""],
            "var_type": ["party", "money", "text"], "var_label": ["买方", "金额", ""],
            "var_required": ["0"], "var_default": ["", "100", ""], "var_help": ["", "", ""]}
    body = "<h1>{{ title }}</h1><p>{{ buyer.name }}：{{ amount|money_cn }}</p>"
    created = owner_client.post("/templates/new", data={
        "csrf_token": token, "name": "服务合同", "category": "服务", "locale": "zh_CN",
        "description": "", "body": body, **rows}, follow_redirects=False)
    assert created.status_code == 303, created.text
    tid = created.headers["location"].removeprefix("/templates/")
    with rt.uow() as session:
        template = session.get_one(ContractTemplate, uuid.UUID(tid))
        version = templates.version(session, template=template)
        assert [(v.name, v.required, v.default) for v in templates.variables_of(version)] == [
            ("buyer", True, None), ("amount", False, "100")]

    def save(**changes: Any) -> Response:
        data = {"csrf_token": token, "name": "服务合同", "category": "服务", "locale": "zh_CN",
                "description": "", "body": body, **rows, **changes}
        response: Response = owner_client.post(f"/templates/{tid}", data=data,
                                               follow_redirects=False)
        return response

    assert save().status_code == 303  # nothing changed: no new version
    with rt.uow() as session:
        assert session.get_one(ContractTemplate, uuid.UUID(tid)).current_version == 1
    assert save(body=body + "<p>新条款</p>").status_code == 303
    refused = save(body="<p>{{ nobody }}</p>")
    assert refused.status_code == 422 and "template_invalid" in refused.text
    assert "nobody" in refused.text and "{{ nobody }}" in refused.text  # the typed body is kept
    with rt.uow() as session:
        assert session.get_one(ContractTemplate, uuid.UUID(tid)).current_version == 2
    old = owner_client.get(f"/templates/{tid}?version=1").text
    assert "新条款" not in old and 'name="body"' not in old  # old versions are read-only
    archived = owner_client.post(f"/templates/{tid}/archive", data={"csrf_token": token},
                                 follow_redirects=False)
    assert archived.status_code == 303
    assert f"/templates/{tid}/use" not in owner_client.get("/templates?archived=1").text
    refused_use = use(owner_client, tid, **{"v_buyer.name": "甲方"})
    assert refused_use.status_code == 409 and "template_archived" in refused_use.text
    assert contract_count(rt) == 0


def test_clause_library_pages(owner_client: TestClient, rt: Runtime) -> None:
    token = csrf(owner_client.get("/templates/clauses").text)
    added = owner_client.post("/templates/clauses", data={
        "csrf_token": token, "title": "保密条款", "category": "通用", "body": "双方保密。"},
        follow_redirects=False)
    assert added.status_code == 303
    with rt.uow() as session:
        (clause,) = templates.list_clauses(session, user_ctx(owner(rt)))
    edit = owner_client.get(f"/templates/clauses/{clause.id}").text
    assert ">双方保密。</textarea>" in edit
    owner_client.post(f"/templates/clauses/{clause.id}", data={
        "csrf_token": token, "title": "保密条款", "category": "", "body": "双方严格保密。"})
    assert "双方严格保密。" in owner_client.get("/templates/clauses").text
    empty = owner_client.post("/templates/clauses", data={"csrf_token": token, "title": "",
                                                          "body": "x"})
    assert empty.status_code == 422 and "invalid_form" in empty.text
    owner_client.post(f"/templates/clauses/{clause.id}/delete", data={"csrf_token": token})
    assert "双方严格保密。" not in owner_client.get("/templates/clauses").text


def test_members_read_only_and_strangers_not_found(client: TestClient, rt: Runtime) -> None:
    with rt.uow() as session:
        (template, *_) = templates.install_starters(session, user_ctx(owner(rt)))
        tid = str(template.id)
    add_user(rt, email="member@acme.test", role=Role.MEMBER)
    assert login(client, "member@acme.test", PASSWORD).status_code == 303
    page = client.get(f"/templates/{tid}").text
    assert 'name="body"' not in page and "/archive" not in page and f"/templates/{tid}/use" in page
    assert "/templates/new" not in client.get("/templates").text
    token = csrf(client.get(f"/templates/{tid}/use").text)
    denied = client.post(f"/templates/{tid}/archive", data={"csrf_token": token})
    assert denied.status_code == 403
    client.cookies.clear()
    add_org(rt, name="Globex", email="boss@globex.test")
    assert login(client, "boss@globex.test", PASSWORD).status_code == 303
    for path in (f"/templates/{tid}", f"/templates/{tid}/use", f"/templates/{tid}/preview"):
        assert client.get(path).status_code == 404, path
    assert EMPLOYMENT not in client.get("/templates").text
