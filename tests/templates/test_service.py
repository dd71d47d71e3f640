"""Templates in the database: versions, starters, permissions, filling; the clause library."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from econtract.accounts.policy import Role
from econtract.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from econtract.runtime import Runtime
from econtract.templates import service as templates
from econtract.templates.schemas import LibraryClauseIn, TemplateCreate, TemplateUpdate
from econtract.templates.starters import STARTER_KEYS
from tests.factories import add_org, add_user, owner, user_ctx

BODY = "<h1>{{ title }}</h1><p>甲方：{{ buyer.name }}，金额 {{ amount|money_cn }}。</p>"
VARIABLES = [{"name": "buyer", "type": "party", "label": "甲方"},
             {"name": "amount", "type": "money", "label": "金额"}]


def _create(rt: Runtime, name: str = "服务合同") -> str:
    with rt.uow() as session:
        data = TemplateCreate.model_validate({"name": name, "body": BODY,
                                              "variables": VARIABLES})
        template = templates.create(session, user_ctx(owner(rt)), data=data)
        return str(template.id)


def test_starters_install_once(rt: Runtime) -> None:
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        first = templates.install_starters(session, ctx)
        again = templates.install_starters(session, ctx)
        listed = templates.list_(session, ctx)
    assert sorted(t.starter or "" for t in first) == sorted(STARTER_KEYS)
    assert again == []
    assert {t.name for t in listed} >= {"劳动合同（固定期限）", "房屋租赁合同（住宅）", "采购合同",
                                        "Mutual Non-Disclosure Agreement"}


def test_a_changed_body_is_a_new_version_and_old_versions_stay(rt: Runtime) -> None:
    template_id = uuid.UUID(_create(rt))
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        templates.revise(session, ctx, template_id=template_id,
                         patch=TemplateUpdate(description="只改说明"))
        same = templates.get(session, ctx, template_id=template_id)
        assert same.current_version == 1
        templates.revise(session, ctx, template_id=template_id,
                         patch=TemplateUpdate(body=BODY + "<p>新增条款。</p>"))
        revised = templates.get(session, ctx, template_id=template_id)
        assert revised.current_version == 2
        assert "新增条款" not in templates.version(session, template=revised, number=1).body
        filled = templates.fill(session, ctx, template_id=template_id, number=1,
                                values={"buyer": "甲公司", "amount": "100.05"})
    assert filled.version.number == 1
    assert filled.values["amount"] == Decimal("100.05")
    assert filled.pdf.pdf.startswith(b"%PDF") and filled.pdf.page_count == 1


def test_missing_and_ill_typed_values_are_listed(rt: Runtime) -> None:
    template_id = uuid.UUID(_create(rt))
    with rt.uow() as session, pytest.raises(ValidationFailed) as caught:
        templates.fill(session, user_ctx(owner(rt)), template_id=template_id,
                       values={"amount": "abc"})
    assert caught.value.code == "template_variables_invalid"
    assert caught.value.details["problems"] == {"buyer": "required", "amount": "not a number"}


def test_bad_templates_are_refused(rt: Runtime) -> None:
    ctx = user_ctx(owner(rt))
    _create(rt)
    with rt.uow() as session:
        with pytest.raises(Conflict):
            templates.create(session, ctx, data=TemplateCreate(name="服务合同", body="<p>x</p>"))
        with pytest.raises(ValidationFailed) as caught:
            templates.create(session, ctx, data=TemplateCreate(name="n", body="{{ undeclared }}"))
        assert caught.value.details["variables"] == ["undeclared"]


def test_roles_and_organisations(rt: Runtime) -> None:
    template_id = uuid.UUID(_create(rt))
    member = add_user(rt, email="member@acme.test", role=Role.MEMBER)
    stranger = add_org(rt, name="Other Co", email="boss@other.test")
    with rt.uow() as session:
        assert templates.get(session, user_ctx(member), template_id=template_id)
        with pytest.raises(PermissionDenied):
            templates.revise(session, user_ctx(member), template_id=template_id,
                             patch=TemplateUpdate(description="x"))
        with pytest.raises(NotFound):
            templates.get(session, user_ctx(stranger), template_id=template_id)
        assert templates.list_(session, user_ctx(stranger)) == []


def test_archived_templates_leave_the_list(rt: Runtime) -> None:
    template_id = uuid.UUID(_create(rt))
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        templates.set_archived(session, ctx, template_id=template_id, archived=True)
        assert templates.list_(session, ctx) == []
        assert len(templates.list_(session, ctx, include_archived=True)) == 1


def test_clause_library(rt: Runtime) -> None:
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        clause = templates.save_clause(session, ctx, data=LibraryClauseIn(
            title="保密条款", body="双方对本合同内容负有保密义务。", category="通用"))
        templates.save_clause(session, ctx, clause_id=clause.id, data=LibraryClauseIn(
            title="保密条款", body="双方对本合同内容及履行情况负有保密义务。"))
        listed = templates.list_clauses(session, ctx)
        assert [c.body for c in listed] == ["双方对本合同内容及履行情况负有保密义务。"]
        templates.delete_clause(session, ctx, clause_id=clause.id)
        assert templates.list_clauses(session, ctx) == []
