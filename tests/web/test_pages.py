"""The server-rendered UI end to end through TestClient (both databases): sign-in, sessions, CSRF,
the contract pages, languages and tenant isolation."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from pypdf import PdfWriter
from sqlalchemy import func, select

from econtract.app import create_app
from econtract.audit.models import AuditEvent
from econtract.contracts import web as contracts_web
from econtract.contracts.models import Contract
from econtract.http import SESSION_COOKIE
from econtract.runtime import Runtime
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, FakeClock
from tests.factories import PASSWORD, add_org, create_contract, owner

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def csrf(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def app(rt: Runtime, clock: FakeClock) -> FastAPI:
    return create_app(rt, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def login(client: TestClient, email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD,
          next_path: str = "/") -> Response:
    token = csrf(client.get("/login").text)
    response: Response = client.post("/login", data={
        "email": email, "password": password, "csrf_token": token, "next": next_path},
        follow_redirects=False)
    return response


@pytest.fixture
def owner_client(client: TestClient) -> TestClient:
    assert login(client).status_code == 303
    return client


def page_token(client: TestClient, path: str = "/contracts/new") -> str:
    return csrf(client.get(path).text)


def new_contract(client: TestClient, *, title: str = "Lease 租赁合同", files: bool = True,
                 **fields: object) -> Response:
    data: dict[str, object] = {
        "csrf_token": page_token(client), "title": title,
        "signer_name": ["张三", "Bob Lee", ""], "signer_email": ["zhang@example.com",
                                                             "bob@example.com", ""],
        "signer_phone": ["", "+86 138 0000 0000", ""], "signer_order": ["1", "2", "3"],
        "effective_date": "2027-01-01", "expiry_date": "2027-12-31",
        "sign_deadline": "2026-12-31T18:00", "tz_offset": "480", "category": "lease",
        "tags": "租赁，2026, vip", "clauses": "押金两个月。\r\n\r\nNo pets allowed.\n  \nKeys: 2",
    }
    data.update(fields)
    upload = [("document", ("lease.pdf", blank_pdf(), "application/pdf")),
              ("attachments", ("notes.txt", "钥匙两把".encode(), "text/plain"))] if files else []
    response: Response = client.post("/contracts/new", data=data, files=upload,
                                     follow_redirects=False)
    return response


def created_id(response: Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/contracts/")
    return location.removeprefix("/contracts/")


# --- sign-in and sessions ------------------------------------------------------------------

def test_login_success_sets_a_browser_session_cookie(client: TestClient) -> None:
    form = client.get("/login")
    assert form.status_code == 200
    csrf_cookie = form.headers["set-cookie"].lower()
    assert "econtract_csrf=" in csrf_cookie and "httponly" in csrf_cookie
    assert "samesite=lax" in csrf_cookie
    response = login(client, next_path="/contracts?q=x")
    assert response.status_code == 303 and response.headers["location"] == "/contracts?q=x"
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith(f"{SESSION_COOKIE}="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "max-age" not in flags and "expires" not in flags  # dies with the browser
    assert "secure" not in flags  # base_url is plain http in tests
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    assert login(client, next_path=target).headers["location"] == "/"


def test_failed_logins_look_identical_and_are_recorded(client: TestClient,
                                                       rt: Runtime) -> None:
    unknown = login(client, email="nobody@acme.test", password="whatever it is")
    wrong = login(client, email=OWNER_EMAIL, password="not the password at all")
    assert unknown.status_code == wrong.status_code == 401
    assert "The e-mail address or password is wrong." in unknown.text

    def normalised(response: Response, email: str) -> str:
        return CSRF_FIELD.sub("", response.text).replace(email, "EMAIL")

    assert normalised(unknown, "nobody@acme.test") == normalised(wrong, OWNER_EMAIL)
    assert SESSION_COOKIE not in client.cookies
    with rt.uow() as session:  # committed although the login failed
        failures = session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.kind == "auth.login_failed"))
    assert failures == 2


def test_too_fast_retry_is_throttled_with_retry_after(client: TestClient) -> None:
    assert login(client, password="wrong password one").status_code == 401
    locked = login(client, password="wrong password two")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "account_locked" in locked.text


def test_login_without_the_csrf_cookie_is_refused(app: FastAPI) -> None:
    with TestClient(app) as fresh:
        response = fresh.post("/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD,
                                              "csrf_token": "x" * 43}, follow_redirects=False)
    assert response.status_code == 403 and "csrf_failed" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_login_issues_a_new_session_id(app: FastAPI, owner_client: TestClient) -> None:
    first = owner_client.cookies[SESSION_COOKIE]
    assert login(owner_client).status_code == 303
    second = owner_client.cookies[SESSION_COOKIE]
    assert second != first
    with TestClient(app, cookies={SESSION_COOKIE: first}) as stale:
        assert stale.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_server_side(app: FastAPI, owner_client: TestClient) -> None:
    token = owner_client.cookies[SESSION_COOKIE]
    response = owner_client.post("/logout", data={"csrf_token": page_token(owner_client, "/")},
                                 follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    with TestClient(app, cookies={SESSION_COOKIE: token}) as replay:
        again = replay.get("/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_logout_with_a_forged_token_is_refused(owner_client: TestClient) -> None:
    response = owner_client.post("/logout", data={"csrf_token": "forged"},
                                 follow_redirects=False)
    assert response.status_code == 403 and "csrf_failed" in response.text
    assert owner_client.get("/").status_code == 200  # still signed in


def test_idle_session_expires(owner_client: TestClient, clock: FakeClock) -> None:
    assert owner_client.get("/").status_code == 200
    clock.advance(minutes=29)
    assert owner_client.get("/").status_code == 200  # activity keeps it alive
    clock.advance(minutes=31)
    response = owner_client.get("/contracts", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/contracts&expired=1"
    assert "expired" in owner_client.get(response.headers["location"]).text


def test_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/contracts?q=lease", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/contracts%3Fq%3Dlease"


# --- contracts -----------------------------------------------------------------------------

def test_create_with_upload(owner_client: TestClient, rt: Runtime) -> None:
    cid = created_id(new_contract(owner_client))
    with rt.uow() as session:
        contract = session.get(Contract, uuid.UUID(cid))
        assert contract is not None
        assert contract.title == "Lease 租赁合同" and contract.status == "draft"
        assert [t.tag for t in contract.tags] == sorted(["租赁", "2026", "vip"])
        assert [c.body for c in contract.clauses] == ["押金两个月。", "No pets allowed.", "Keys: 2"]
        assert [(s.name, s.order) for s in contract.signers] == [("张三", 1), ("Bob Lee", 2)]
        assert contract.sign_deadline == datetime(2026, 12, 31, 10, 0, tzinfo=UTC)
        assert [a.filename for a in contract.attachments] == ["notes.txt"]


def test_deadline_defaults_to_china_time_without_js(owner_client: TestClient,
                                                    rt: Runtime) -> None:
    cid = created_id(new_contract(owner_client, tz_offset=""))
    with rt.uow() as session:
        contract = session.get(Contract, uuid.UUID(cid))
        assert contract is not None
        assert contract.sign_deadline == datetime(2026, 12, 31, 10, 0, tzinfo=UTC)


def test_invalid_form_is_shown_again_with_the_values(owner_client: TestClient,
                                                     rt: Runtime) -> None:
    response = new_contract(owner_client, title="Keep me 保留", signer_email=[
        "not-an-email", "bob@example.com", ""], clauses="Clause kept")
    assert response.status_code == 422
    page = response.text
    assert "invalid_form" in page and "Signer 1 · E-mail: is not a valid e-mail address" in page
    assert 'value="Keep me 保留"' in page and 'value="not-an-email"' in page
    assert ">Clause kept</textarea>" in page and 'value="张三"' in page
    with rt.uow() as session:
        assert session.scalar(select(func.count()).select_from(Contract)) == 0


def test_upload_errors_are_shown_with_their_code(owner_client: TestClient) -> None:
    missing = new_contract(owner_client, files=False)
    assert missing.status_code == 422 and "document_required" in missing.text
    not_pdf = owner_client.post("/contracts/new", data={
        "csrf_token": page_token(owner_client), "title": "Not a PDF"},
        files=[("document", ("x.pdf", b"hello, plain text", "application/pdf"))])
    assert not_pdf.status_code == 422 and "upload_not_pdf" in not_pdf.text
    assert 'value="Not a PDF"' in not_pdf.text


def test_too_many_files_are_refused_before_reading(owner_client: TestClient) -> None:
    files = [("attachments", (f"a{n}.txt", b"x", "text/plain")) for n in range(30)]
    response = owner_client.post("/contracts/new", data={
        "csrf_token": page_token(owner_client), "title": "Many"}, files=files)
    assert response.status_code == 422 and "invalid_form" in response.text


def test_forged_form_post_is_refused(owner_client: TestClient, rt: Runtime) -> None:
    response = new_contract(owner_client, csrf_token="forged-token")
    assert response.status_code == 403 and "csrf_failed" in response.text
    with rt.uow() as session:
        assert session.scalar(select(func.count()).select_from(Contract)) == 0


def test_detail_page_shows_everything_and_the_timeline(owner_client: TestClient) -> None:
    cid = created_id(new_contract(owner_client))
    page = owner_client.get(f"/contracts/{cid}").text
    assert "Lease 租赁合同" in page and 'class="badge badge-draft"' in page
    assert "Contract created" in page and "Document uploaded" in page
    assert "2026-11-28 09:00 UTC" in page and "owner@acme.test" in page
    assert f'/api/v1/contracts/{cid}/pages/1.png?width=600' in page and 'loading="lazy"' in page
    assert f'href="/api/v1/contracts/{cid}/document"' in page
    assert re.search(rf'href="/api/v1/contracts/{cid}/attachments/[0-9a-f-]+"', page)
    assert "押金两个月。" in page and "zhang@example.com" in page and "Waiting" in page
    assert f'action="/contracts/{cid}/void"' in page


def test_void(owner_client: TestClient) -> None:
    cid = created_id(new_contract(owner_client))
    token = page_token(owner_client, f"/contracts/{cid}")
    empty = owner_client.post(f"/contracts/{cid}/void", data={"csrf_token": token, "reason": " "})
    assert empty.status_code == 422 and "reason_required" in empty.text
    forged = owner_client.post(f"/contracts/{cid}/void", data={"csrf_token": "x", "reason": "r"})
    assert forged.status_code == 403
    done = owner_client.post(f"/contracts/{cid}/void",
                             data={"csrf_token": token, "reason": "Duplicate <b>entry</b>"},
                             follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/contracts/{cid}"
    page = owner_client.get(f"/contracts/{cid}").text
    assert 'class="badge badge-voided"' in page and "Duplicate &lt;b&gt;entry&lt;/b&gt;" in page
    assert "/void" not in page  # no second void form
    again = owner_client.post(f"/contracts/{cid}/void", data={"csrf_token": token, "reason": "r"})
    assert again.status_code == 409 and "invalid_transition" in again.text


def stat(page: str, status: str) -> int:
    found = re.search(rf'stat-card stat-{status}[^"]*".*?class="stat-count">(\d+)<', page, re.S)
    assert found, status
    return int(found.group(1))


def test_dashboard_counts_and_recent(owner_client: TestClient) -> None:
    empty = owner_client.get("/").text
    assert stat(empty, "draft") == 0 and "No contracts yet." in empty
    first = created_id(new_contract(owner_client, title="First one"))
    created_id(new_contract(owner_client, title="Second one"))
    owner_client.post(f"/contracts/{first}/void", data={
        "csrf_token": page_token(owner_client, "/"), "reason": "test"})
    page = owner_client.get("/").text
    assert stat(page, "draft") == 1 and stat(page, "voided") == 1 and stat(page, "sent") == 0
    assert "2 contracts in total" in page
    assert "First one" in page and "Second one" in page
    assert '<svg class="chart"' in page and 'class="chart-bar bar-voided"' in page


def test_list_filters_and_empty_state(owner_client: TestClient) -> None:
    created_id(new_contract(owner_client, title="Alpha supply", category="purchase",
                            tags="steel"))
    beta = created_id(new_contract(owner_client, title="Beta lease", category="lease",
                                   tags="租赁"))
    owner_client.post(f"/contracts/{beta}/void", data={
        "csrf_token": page_token(owner_client, "/"), "reason": "test"})

    def titles(query: str) -> set[str]:
        page = owner_client.get(f"/contracts?{query}").text
        return {t for t in ("Alpha supply", "Beta lease") if f">{t}</a>" in page}

    assert titles("") == {"Alpha supply", "Beta lease"}
    assert titles("q=alpha") == {"Alpha supply"}
    assert titles("q=zhang%40example") == {"Alpha supply", "Beta lease"}  # signer e-mail
    assert titles("category=lease") == {"Beta lease"}
    assert titles("tag=%E7%A7%9F%E8%B5%81") == {"Beta lease"}
    assert titles("status=draft") == {"Alpha supply"}
    assert titles("status=draft&status=voided") == {"Alpha supply", "Beta lease"}
    assert titles("created_from=2026-11-28&created_to=2026-11-28") == {"Alpha supply",
                                                                       "Beta lease"}
    assert titles("created_from=2026-11-29") == set()
    assert titles("expiry_from=2027-12-31&expiry_to=2027-12-31") == {"Alpha supply",
                                                                     "Beta lease"}
    kept = owner_client.get("/contracts?q=nothing-matches&category=lease&sort=title").text
    assert "No contracts match these filters." in kept
    assert 'value="nothing-matches"' in kept
    assert '<option value="lease" selected>' in kept and '<option value="title" selected>' in kept
    assert owner_client.get("/contracts?created_from=not-a-date").status_code == 422


def test_list_pagination_keeps_the_filters(owner_client: TestClient, rt: Runtime,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contracts_web, "PER_PAGE", 2)  # three contracts make two pages
    user = owner(rt)
    for n in range(3):
        create_contract(rt, user, title=f"Bulk {n:02d}")
    page = owner_client.get("/contracts?q=Bulk&sort=title").text
    assert "Page 1 of 2" in page and "Bulk 01" in page and "Bulk 02" not in page
    assert 'href="/contracts?q=Bulk&amp;sort=title&amp;page=2"' in page
    second = owner_client.get("/contracts?q=Bulk&sort=title&page=2").text
    assert "Bulk 02" in second and "Page 2 of 2" in second and "Bulk 00" not in second
    assert 'href="/contracts?q=Bulk&amp;sort=title&amp;page=1"' in second


def test_other_organisation_gets_not_found(app: FastAPI, owner_client: TestClient,
                                           rt: Runtime) -> None:
    cid = created_id(new_contract(owner_client))
    add_org(rt, name="Globex", email="boss@globex.test")
    with TestClient(app) as other:
        assert login(other, email="boss@globex.test", password=PASSWORD).status_code == 303
        page = other.get(f"/contracts/{cid}")
        assert page.status_code == 404 and "contract_not_found" in page.text
        assert "Lease 租赁合同" not in page.text
        assert "boss@globex.test" in page.text  # the error page keeps the signed-in chrome
        assert "Lease 租赁合同" not in other.get("/contracts").text
        voided = other.post(f"/contracts/{cid}/void", data={
            "csrf_token": page_token(other, "/"), "reason": "mine now"})
        assert voided.status_code == 404
    assert 'badge badge-draft' in owner_client.get(f"/contracts/{cid}").text


def test_unknown_pages_are_friendly_404s(owner_client: TestClient) -> None:
    for path in ("/contracts/not-a-uuid", f"/contracts/{uuid.uuid4()}", "/no/such/page"):
        response = owner_client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
    assert owner_client.get("/api/v1/nothing").headers["content-type"] == "application/json"


# --- languages -----------------------------------------------------------------------------

def test_language_from_accept_language(client: TestClient) -> None:
    zh = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}).text
    assert '<html lang="zh-CN">' in zh and "登录 econtract 电子合同" in zh
    en = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert '<html lang="en">' in en and "Sign in to econtract" in en
    other = client.get("/login", headers={"Accept-Language": "fr-FR"}).text
    assert '<html lang="en">' in other


def test_language_cookie_wins_and_switch_sets_it(owner_client: TestClient) -> None:
    response = owner_client.get("/lang/zh_CN?next=/contracts", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/contracts"
    assert "econtract_lang=zh_CN" in response.headers["set-cookie"]
    page = owner_client.get("/contracts", headers={"Accept-Language": "en"}).text
    assert '<html lang="zh-CN">' in page and "全部状态" in page and "新建合同" in page
    cid = created_id(new_contract(owner_client))
    detail = owner_client.get(f"/contracts/{cid}").text
    assert "创建合同" in detail and "草稿" in detail and "时间线" in detail
    assert owner_client.get("/lang/en?next=//evil.example",
                            follow_redirects=False).headers["location"] == "/"
    assert '<html lang="en">' in owner_client.get("/").text


def test_error_pages_are_translated(owner_client: TestClient) -> None:
    owner_client.get("/lang/zh_CN")
    page = owner_client.get(f"/contracts/{uuid.uuid4()}")
    assert page.status_code == 404
    assert "未找到" in page.text and "合同不存在。" in page.text
    assert "contract_not_found" in page.text


def test_pages_have_no_inline_script_or_style(owner_client: TestClient) -> None:
    cid = created_id(new_contract(owner_client))
    for path in ("/", "/contracts", "/contracts/new", f"/contracts/{cid}", "/login"):
        html = owner_client.get(path).text
        assert " style=" not in html and "<style" not in html, path
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html)), path
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), path  # no onclick= handlers
