"""Keyword search (关键字检索): the document's own text, Chinese included, on both databases;
every word must match; combined with filters; highlighted; scoped to what the actor may see."""

from __future__ import annotations

import uuid

import pytest

from econtract.accounts.policy import Role
from econtract.contracts import search
from econtract.contracts import service as contracts
from econtract.contracts.schemas import ContractFilter, ContractUpdate
from econtract.runtime import Runtime
from econtract.templates import render
from tests.factories import add_org, add_user, create_contract, owner, user_ctx


def _pdf(text: str) -> bytes:
    return render.render_pdf(render.render_html(f"<p>{text}</p>", {}, title="t")).pdf


def _found(rt: Runtime, q: str, user: object = None, **filters: object) -> list[uuid.UUID]:
    with rt.uow() as session:
        rows, total = contracts.list_(session, user_ctx(user or owner(rt)),  # type: ignore[arg-type]
                                      filters=ContractFilter(q=q, **filters))  # type: ignore[arg-type]
        assert total == len(rows)
        return [c.id for c in rows]


def test_a_chinese_word_only_in_the_body_is_found(rt: Runtime) -> None:
    lease = create_contract(rt, owner(rt), title="合同甲",
                            pdf=_pdf("承租人应按时缴纳物业管理费，不得擅自转租。"))
    other = create_contract(rt, owner(rt), title="合同乙", pdf=_pdf("买卖双方约定交货地点。"))
    assert _found(rt, "物业管理费") == [lease.id]  # 5 characters: through the trigram index
    assert _found(rt, "转租") == [lease.id]  # 2 characters: shorter than a trigram
    assert _found(rt, "交货") == [other.id]
    assert _found(rt, "不存在的词") == []


def test_every_word_must_match_and_filters_combine(rt: Runtime) -> None:
    first = create_contract(rt, owner(rt), title="Lease A", category="租赁",
                            pdf=_pdf("Deposit of three months. 押金三个月。"))
    create_contract(rt, owner(rt), title="Lease B", category="租赁",
                    pdf=_pdf("Deposit of one month."))
    assert _found(rt, "deposit 押金") == [first.id]
    assert sorted(_found(rt, "DEPOSIT")) == sorted(_found(rt, "deposit"))
    assert len(_found(rt, "deposit", category="租赁")) == 2
    assert _found(rt, "deposit", category="采购") == []
    assert _found(rt, "deposit", status=["sent"]) == []


def test_title_parties_and_tags_are_searched_and_kept_current(rt: Runtime) -> None:
    contract = create_contract(rt, owner(rt), title="采购框架协议", tags=["重点客户"],
                               signers=[{"name": "欧阳娜娜", "email": "nana@example.com"}])
    assert _found(rt, "框架协议") == [contract.id]
    assert _found(rt, "欧阳") == [contract.id]
    assert _found(rt, "nana@example") == [contract.id]
    assert _found(rt, "重点客户") == [contract.id]
    with rt.uow() as session:
        contracts.update(session, user_ctx(owner(rt)), contract_id=contract.id,
                         patch=ContractUpdate(title="年度采购合同"))
    assert _found(rt, "框架协议") == []
    assert _found(rt, "年度采购") == [contract.id]


def test_search_is_scoped_to_what_the_actor_may_see(rt: Runtime) -> None:
    mine = create_contract(rt, owner(rt), title="保密协议", pdf=_pdf("保密信息的范围"))
    member = add_user(rt, email="member@acme.test", role=Role.MEMBER)
    theirs = create_contract(rt, member, title="保密协议二", pdf=_pdf("保密信息的范围"))
    stranger = add_org(rt, name="Other Co", email="boss@other.test")
    assert sorted(_found(rt, "保密信息")) == sorted([mine.id, theirs.id])
    assert _found(rt, "保密信息", user=member) == [theirs.id]
    assert _found(rt, "保密信息", user=stranger) == []


def test_matches_are_highlighted_safely(rt: Runtime) -> None:
    contract = create_contract(rt, owner(rt), title="<b>押金</b>说明",
                               pdf=_pdf("第三条 押金为人民币壹万元整，退还押金时不计利息。"))
    with rt.uow() as session:
        marks = search.highlight(session, [contract.id], search.terms_of("押金"))
    snippet = str(marks[contract.id])
    assert snippet.startswith("&lt;b&gt;<mark>押金</mark>&lt;/b&gt;说明")
    assert snippet.count("<mark>押金</mark>") == 3 and "<b>" not in snippet


def test_counting_stops_at_the_cap(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    for title in ("租赁一", "租赁二", "租赁三"):
        create_contract(rt, owner(rt), title=title, pdf=_pdf("房屋租赁押金条款"))
    monkeypatch.setattr(contracts, "COUNT_CAP", 1)
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        rows, total = contracts.list_(session, ctx, filters=ContractFilter(q="押金条款",
                                                                          per_page=2))
        assert len(rows) == 2 and total == 2  # "more than one"; the exact 3 is not counted
        _, exact = contracts.list_(session, ctx, filters=ContractFilter())
        assert exact == 3  # without a keyword the count stays exact
