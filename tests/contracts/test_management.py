"""Contract management (合同管理), on both databases: archive and unarchive (rules, audit, API,
web), the list filters for archived and expiring contracts, the CSV export (content, BOM,
formula guard, filters, tenant isolation, audit) and the dashboard's charts."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.app import create_app
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.contracts import archive, export
from econtract.contracts import service as contracts
from econtract.contracts.export import safe_cell
from econtract.contracts.schemas import ContractFilter
from econtract.errors import Conflict, InvalidTransition, NotFound
from econtract.parties.models import Signer
from econtract.runtime import Runtime
from tests.conftest import FakeClock
from tests.contracts.test_api import api_key
from tests.factories import PASSWORD, add_org, create_contract, force_status, owner, user_ctx
from tests.web.test_pages import csrf, login

TODAY = date(2026, 11, 28)  # FakeClock's day (09:00 UTC = 17:00 in China)


def contract_in(rt: Runtime, status: str, **meta: object) -> uuid.UUID:
    meta.setdefault("effective_date", "2026-01-01")
    contract = create_contract(rt, owner(rt), **meta)
    if status != "draft":
        with rt.uow() as session:
            force_status(session, contract.id, status)
    return contract.id


def listed(rt: Runtime, clock: FakeClock, **filters: object) -> set[uuid.UUID]:
    ctx = user_ctx(owner(rt), clock)
    with rt.uow() as session:
        items, total = contracts.list_(session, ctx, filters=ContractFilter.model_validate(
            {"per_page": 200, **filters}))
    assert total == len(items)
    return {c.id for c in items}


@pytest.fixture
def api(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as client:
        yield client


@pytest.fixture
def web(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as client:
        assert login(client).status_code == 303
        yield client


# --- archive -------------------------------------------------------------------------------

def test_archive_rules_and_the_default_list(rt: Runtime, clock: FakeClock) -> None:
    done = contract_in(rt, "completed")
    draft = contract_in(rt, "draft")
    sent = contract_in(rt, "signing")
    ctx = user_ctx(owner(rt), clock)
    with rt.uow() as session:
        for refused in (draft, sent):
            with pytest.raises(InvalidTransition) as caught:
                archive.archive(session, ctx, contract_id=refused)
            assert caught.value.code == "not_archivable"
        assert archive.archive(session, ctx, contract_id=done).archived_at == clock.now
    with rt.uow() as session, pytest.raises(Conflict):
        archive.archive(session, ctx, contract_id=done)
    assert listed(rt, clock) == {draft, sent}
    assert listed(rt, clock, archived=True) == {done}
    assert listed(rt, clock, archived=None) == {done, draft, sent}
    with rt.uow() as session:
        assert archive.unarchive(session, ctx, contract_id=done).archived_at is None
    with rt.uow() as session, pytest.raises(Conflict):
        archive.unarchive(session, ctx, contract_id=done)
    assert listed(rt, clock) == {done, draft, sent}
    with rt.uow() as session:
        kinds = list(session.scalars(select(AuditEvent.kind).where(
            AuditEvent.contract_id == done).order_by(AuditEvent.seq)))
    assert kinds[-2:] == [EventKind.CONTRACT_ARCHIVED, EventKind.CONTRACT_UNARCHIVED]
    for status in ("lapsed", "voided", "declined", "expired"):
        other = contract_in(rt, status)
        with rt.uow() as session:
            archive.archive(session, ctx, contract_id=other)


def test_archive_api_and_another_organisation(rt: Runtime, api: TestClient) -> None:
    done = contract_in(rt, "completed")
    auth = api_key(rt, owner(rt))
    response = api.post(f"/api/v1/contracts/{done}/archive", headers=auth)
    assert response.status_code == 200 and response.json()["id"] == str(done)
    assert api.post(f"/api/v1/contracts/{done}/archive", headers=auth).status_code == 409
    assert api.get("/api/v1/contracts", headers=auth).json()["total"] == 0
    only = api.get("/api/v1/contracts?archived=true", headers=auth).json()
    assert [c["id"] for c in only["items"]] == [str(done)]
    assert api.get("/api/v1/contracts?archived=all", headers=auth).json()["total"] == 1
    assert api.get("/api/v1/contracts?archived=maybe", headers=auth).status_code == 422
    stranger = api_key(rt, add_org(rt, name="Other", email="boss@other.test"))
    assert api.post(f"/api/v1/contracts/{done}/unarchive",
                    headers=stranger).status_code == 404
    assert api.post(f"/api/v1/contracts/{done}/unarchive", headers=auth).status_code == 200
    draft = contract_in(rt, "draft")
    refused = api.post(f"/api/v1/contracts/{draft}/archive", headers=auth)
    assert refused.status_code == 409 and refused.json()["code"] == "not_archivable"


def test_archive_from_the_detail_page(rt: Runtime, web: TestClient) -> None:
    done = contract_in(rt, "completed")
    page = web.get(f"/contracts/{done}").text
    assert f'action="/contracts/{done}/archive"' in page
    moved = web.post(f"/contracts/{done}/archive", data={"csrf_token": csrf(page)},
                     follow_redirects=False)
    assert moved.status_code == 303
    page = web.get(f"/contracts/{done}").text
    assert f'action="/contracts/{done}/unarchive"' in page
    assert web.post(f"/contracts/{done}/unarchive", data={"csrf_token": "forged"},
                    follow_redirects=False).status_code == 403
    draft = contract_in(rt, "draft")
    assert f'action="/contracts/{draft}/archive"' not in web.get(f"/contracts/{draft}").text


# --- expiring soon -------------------------------------------------------------------------

def test_expiring_within_days(rt: Runtime, clock: FakeClock, api: TestClient) -> None:
    in_10 = contract_in(rt, "completed", expiry_date="2026-12-08")
    in_45 = contract_in(rt, "completed", expiry_date="2027-01-12")
    today = contract_in(rt, "completed", expiry_date=TODAY.isoformat())
    contract_in(rt, "completed", expiry_date="2026-11-27")  # yesterday: about to lapse
    contract_in(rt, "signing", expiry_date="2026-12-08")  # not completed
    contract_in(rt, "completed", expiry_date="2027-06-01")
    assert listed(rt, clock, expiring_within_days=30) == {in_10, today}
    assert listed(rt, clock, expiring_within_days=60) == {in_10, in_45, today}
    auth = api_key(rt, owner(rt))
    got = api.get("/api/v1/contracts?expiring_within_days=60", headers=auth).json()
    assert got["total"] == 3
    assert api.get("/api/v1/contracts?expiring_within_days=-1",
                   headers=auth).status_code == 422


# --- CSV export ----------------------------------------------------------------------------

def rows_of(data: bytes) -> list[dict[str, str]]:
    assert data.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_api_export(rt: Runtime, api: TestClient) -> None:
    lease = contract_in(rt, "completed", title="房屋租赁合同", category="lease",
                        tags=["租赁", "2026"])
    evil = contract_in(rt, "draft", title="=HYPERLINK(\"http://evil.test\")", category="lease",
                       signers=[{"name": "+cmd", "email": "evil@example.com", "order": 1}])
    contract_in(rt, "draft", title="Other category", category="nda")
    auth = api_key(rt, owner(rt))
    response = api.get("/api/v1/contracts/export.csv?category=lease", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["x-total-count"] == "2"
    rows = rows_of(response.content)
    assert list(rows[0]) == ["id", "title", "status", "category", "tags", "signers",
                             "effective_date", "expiry_date", "sign_deadline", "created_at",
                             "updated_at", "completed_at", "archived_at", "owner"]
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {str(lease), str(evil)}
    first = by_id[str(lease)]
    assert first["title"] == "房屋租赁合同" and first["status"] == "completed"
    assert first["tags"] == "2026; 租赁"
    assert first["signers"] == "张三 <zhang@example.com>; Bob Lee <bob@example.com>"
    assert first["expiry_date"] == "2027-12-31" and first["owner"].endswith("<owner@acme.test>")
    assert by_id[str(evil)]["title"] == "'=HYPERLINK(\"http://evil.test\")"
    assert by_id[str(evil)]["signers"] == "'+cmd <evil@example.com>"
    only_done = rows_of(api.get("/api/v1/contracts/export.csv?status=completed",
                                headers=auth).content)
    assert [r["id"] for r in only_done] == [str(lease)]
    stranger = api_key(rt, add_org(rt, name="Other", email="boss@other.test"))
    assert rows_of(api.get("/api/v1/contracts/export.csv", headers=stranger).content) == []
    assert api.get("/api/v1/contracts/export.csv").status_code == 401
    with rt.uow() as session:
        exports = list(session.scalars(select(AuditEvent).where(
            AuditEvent.kind == EventKind.CONTRACTS_EXPORTED).order_by(AuditEvent.seq)))
    lease_export = [e.data for e in exports if e.data["filters"] == {"category": "lease"}]
    assert len(lease_export) == 1
    assert lease_export[0]["rows"] == lease_export[0]["matching"] == 2
    assert len(exports) == 3  # the owner's two and the stranger's one


def test_formula_guard() -> None:
    assert [safe_cell(v) for v in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "plain", "")] == [
        "'=1+2", "'+1", "'-1", "'@SUM(A1)", "'\tx", "plain", ""]


def test_export_is_capped(rt: Runtime, api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = contract_in(rt, "draft"), contract_in(rt, "draft")
    monkeypatch.setattr(export, "MAX_ROWS", 1)
    response = api.get("/api/v1/contracts/export.csv", headers=api_key(rt, owner(rt)))
    assert response.headers["x-total-count"] == "2"
    assert response.headers["x-export-truncated"] == "true"
    assert [r["id"] for r in rows_of(response.content)] == [str(first)]  # oldest first
    assert second != first


def test_web_export_keeps_the_list_filters(rt: Runtime, web: TestClient) -> None:
    done = contract_in(rt, "completed", category="lease")
    contract_in(rt, "draft", category="nda")
    archived = contract_in(rt, "voided", category="lease")
    with rt.uow() as session:
        archive.archive(session, user_ctx(owner(rt)), contract_id=archived)
    page = web.get("/contracts?category=lease").text
    assert 'href="/contracts/export.csv?category=lease"' in page
    rows = rows_of(web.get("/contracts/export.csv?category=lease").content)
    assert [r["id"] for r in rows] == [str(done)]
    rows = rows_of(web.get("/contracts/export.csv?category=lease&archived=all").content)
    assert {r["id"] for r in rows} == {str(done), str(archived)}
    assert rows_of(web.get("/contracts/export.csv?archived=true").content)[0]["archived_at"]
    anonymous = TestClient(create_app(rt))
    assert anonymous.get("/contracts/export.csv", follow_redirects=False).status_code in (
        303, 307)


# --- list page views and the dashboard -----------------------------------------------------

def test_list_views(rt: Runtime, web: TestClient) -> None:
    done = contract_in(rt, "completed", expiry_date="2026-12-20", title="Expiring lease")
    page = web.get("/contracts").text
    assert "/contracts?expiring=30&amp;archived=all" in page and "archived=true" in page
    expiring = web.get("/contracts?expiring=30&archived=all").text
    assert "Expiring lease" in expiring
    with rt.uow() as session:
        archive.archive(session, user_ctx(owner(rt)), contract_id=done)
    assert "Expiring lease" not in web.get("/contracts").text
    assert "Expiring lease" in web.get("/contracts?archived=true").text
    zh = web.get("/contracts", headers={"Accept-Language": "zh-CN"}).text
    assert "导出 CSV" in zh and "已归档" in zh


def chart_value(html: str, group: str) -> int:
    found = re.search(rf'class="{group}">.*?class="chart-value">(\d+)<', html, re.DOTALL)
    assert found, group
    return int(found.group(1))


def test_dashboard_charts(rt: Runtime, web: TestClient) -> None:
    signing = contract_in(rt, "signing")
    contract_in(rt, "completed", expiry_date="2026-12-10")  # within 30 days
    contract_in(rt, "completed", expiry_date="2027-01-12")  # within 60
    contract_in(rt, "draft")
    with rt.uow() as session:
        zhang, bob = session.scalars(select(Signer).where(Signer.contract_id == signing)
                                     .order_by(Signer.order)).all()
        zhang.status, bob.status = "signed", "viewed"
    html = web.get("/").text
    assert chart_value(html, "funnel-invited") == 2
    assert chart_value(html, "funnel-viewed") == 2
    assert chart_value(html, "funnel-verified") == 1
    assert chart_value(html, "funnel-signed") == 1
    assert chart_value(html, "expiring-30") == 1
    assert chart_value(html, "expiring-60") == 2
    assert chart_value(html, "expiring-90") == 2
    assert html.count('role="img"') >= 3
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # no inline script (CSP)
    assert "Signing funnel" in html
    add_org(rt, name="Other", email="boss@other.test")
    with TestClient(create_app(rt)) as stranger:
        assert login(stranger, "boss@other.test", PASSWORD).status_code == 303
        other = stranger.get("/").text
    assert chart_value(other, "funnel-signed") == 0 and chart_value(other, "expiring-90") == 0
    zh = web.get("/", headers={"Accept-Language": "zh-CN"}).text
    assert "签署漏斗" in zh and "即将到期" in zh


def test_not_found_across_organisations(rt: Runtime, clock: FakeClock) -> None:
    done = contract_in(rt, "completed")
    boss = add_org(rt, name="Other", email="boss@other.test")
    with rt.uow() as session, pytest.raises(NotFound):
        archive.archive(session, user_ctx(boss, clock), contract_id=done)
