"""Keyword search (关键字检索): the document's own text, Chinese included, on both databases;
terms of every length; every word must match; combined with filters; highlighted; scoped to what
the actor may see; kept current; backfilled by the migration."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text

from econtract import migrate
from econtract.accounts.policy import Role
from econtract.cli import main
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


@pytest.fixture(params=["listed", "walked"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both SQLite statement shapes: matches listed first, or checked per contract in order."""
    monkeypatch.setattr(search, "DENSE_SHARE", 2.0 if request.param == "listed" else 0.0)
    return str(request.param)


def test_terms_of_every_length_and_case(rt: Runtime, plan: str) -> None:
    lease = create_contract(rt, owner(rt), title="租赁合同",
                            pdf=_pdf("承租人应按时缴纳租金，押金为三个月租金。"))
    sale = create_contract(rt, owner(rt), title="Sale Agreement",
                           pdf=_pdf("买卖双方约定交货地点。Deposit of THREE months."))
    assert _found(rt, "押") == [lease.id]  # one character
    assert _found(rt, "货") == [sale.id]
    assert _found(rt, "押金") == [lease.id]  # two characters
    assert _found(rt, "金押") == []  # both characters occur, never side by side
    assert _found(rt, "三个月") == [lease.id]  # three characters and more
    assert _found(rt, "约定交货地点") == [sale.id]
    assert _found(rt, "DePoSiT") == [sale.id]  # any case, either side
    assert _found(rt, "sale") == [sale.id]  # the title
    assert _found(rt, "three months") == [sale.id]  # two terms, both required
    assert _found(rt, "押金 租金") == [lease.id]
    assert _found(rt, "押金 交货") == []
    assert _found(rt, "押金 deposit") == []  # a short and a long term together
    assert _found(rt, "交货 deposit") == [sale.id]
    assert sorted(_found(rt, "租")) == sorted([lease.id, sale.id])  # the tag 租赁


def test_wildcards_quotes_and_backslashes_are_plain_characters(rt: Runtime, plan: str) -> None:
    marked = create_contract(rt, owner(rt), title='费率50%_a_b "引号" C:\\docs\\x',
                             signers=[{"name": "张伟", "email": "zhang_wei@example.com"}])
    plain = create_contract(rt, owner(rt), title="费率500 axb 引号 C:/docs/x",
                            signers=[{"name": "李娜", "email": "lina@example.com"}])
    assert _found(rt, "%") == [marked.id]
    assert _found(rt, "_") == [marked.id]
    assert _found(rt, "50%") == [marked.id]
    assert _found(rt, "a_b") == [marked.id]
    assert _found(rt, "zhang_wei") == [marked.id]
    assert _found(rt, '"') == [marked.id]
    assert _found(rt, '"引号"') == [marked.id]
    assert _found(rt, "\\") == [marked.id]
    assert _found(rt, "c:\\docs\\x") == [marked.id]
    assert _found(rt, "c:/docs") == [plain.id]
    assert _found(rt, "axb") == [plain.id]


def test_reindexing_forgets_old_words(rt: Runtime, plan: str) -> None:
    contract = create_contract(rt, owner(rt), title="采购框架协议", tags=["重点客户"])
    for title, tags in (("年度维保合同", ["续签"]), ("年度维保合同（修订）", ["续签", "加急"])):
        with rt.uow() as session:
            contracts.update(session, user_ctx(owner(rt)), contract_id=contract.id,
                             patch=ContractUpdate(title=title, tags=tags))
    for gone in ("框架", "框架协议", "重点客户", "采"):
        assert _found(rt, gone) == []
    for now in ("维保", "修订", "加急", "续签", "年度维保合同"):
        assert _found(rt, now) == [contract.id]


def test_short_terms_stay_in_the_organisation(rt: Runtime, plan: str) -> None:
    mine = create_contract(rt, owner(rt), title="保密协议", pdf=_pdf("保密信息的范围"))
    stranger = add_org(rt, name="Other Co", email="boss@other.test")
    theirs = create_contract(rt, stranger, title="保密协议", pdf=_pdf("保密信息的范围"))
    for term in ("密", "保密", "保密信息"):
        assert _found(rt, term) == [mine.id]
        assert _found(rt, term, user=stranger) == [theirs.id]


def test_the_migration_indexes_existing_contracts(rt: Runtime) -> None:
    lease = create_contract(rt, owner(rt), title="租赁合同",
                            pdf=_pdf("押金为三个月租金，Deposit of three months。"))
    migrate.downgrade(rt.engine, "0009")  # the revision 0009 search structures, filled again
    assert "contract_search_docs" not in inspect(rt.engine).get_table_names()
    migrate.upgrade(rt.engine)  # 0010 indexes what contract_texts holds
    for term in ("押", "押金", "三个月", "DEPOSIT", "租赁合同"):
        assert _found(rt, term) == [lease.id]
    newer = create_contract(rt, owner(rt), title="租赁合同二", pdf=_pdf("押金两个月"))
    assert sorted(_found(rt, "押金")) == sorted([lease.id, newer.id])


def _stale_rowids(rt: Runtime, phrase: str) -> int:
    """SQLite: FTS rows whose text holds ``phrase``, reachable or not."""
    with rt.engine.connect() as conn:
        return len(conn.execute(text(
            "SELECT rowid FROM contract_search_trgm WHERE contract_search_trgm MATCH :q"),
            {"q": f'"{phrase}"'}).all())


def test_rebuild_reclaims_left_rows_and_finds_the_same(rt: Runtime) -> None:
    kept = create_contract(rt, owner(rt), title="采购框架协议", pdf=_pdf("押金为三个月租金。"))
    edited = create_contract(rt, owner(rt), title="旧标题合同")
    for title in ("年度维保合同", "年度维保合同（修订）"):
        with rt.uow() as session:
            contracts.update(session, user_ctx(owner(rt)), contract_id=edited.id,
                             patch=ContractUpdate(title=title))
    terms = ("押金", "三个月", "框架协议", "维保", "修订", "旧标题", "合同", "押")
    before = {term: sorted(_found(rt, term)) for term in terms}
    sqlite = rt.engine.dialect.name == "sqlite"
    if sqlite:
        assert _stale_rowids(rt, "旧标题") == 1  # left behind by the edits, unreachable
    with rt.uow() as session:
        steps: list[int] = []
        assert search.rebuild(session, progress=steps.append) == 2
        assert sum(steps) == search.indexed_contracts(session) == 2
    assert {term: sorted(_found(rt, term)) for term in terms} == before
    assert before["旧标题"] == [] and before["押金"] == [kept.id]
    if sqlite:
        assert _stale_rowids(rt, "旧标题") == 0
        assert _stale_rowids(rt, "维保合同") == 1  # the current row only


def test_search_rebuild_command(rt: Runtime) -> None:
    create_contract(rt, owner(rt), title="采购框架协议")
    env = {"ECONTRACT_DATA_DIR": str(rt.settings.data_dir),
           "ECONTRACT_DATABASE_URL": rt.settings.database_url}
    result = CliRunner().invoke(main, ["search", "rebuild"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "search index rebuilt: 1 contracts" in result.output
    assert _found(rt, "框架") != []
