"""The REST API end to end (both databases): problem+json, uploads, tenant isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from econtract.accounts import service as accounts
from econtract.accounts.models import User
from econtract.app import create_app
from econtract.runtime import Runtime
from tests.conftest import FakeClock
from tests.factories import (
    add_org,
    add_user,
    encrypted_pdf,
    javascript_pdf,
    make_pdf,
    owner,
    user_ctx,
)

META = {
    "title": "采购合同 Purchase", "category": "purchase", "tags": ["supplier", "华东"],
    "signers": [{"name": "王五", "email": "wang@example.com", "order": 1},
                {"name": "Ann", "email": "ann@example.com", "order": 2}],
    "effective_date": "2027-01-01", "expiry_date": "2028-01-01",
    "sign_deadline": "2026-12-31T18:00:00+08:00", "clauses": ["质保一年。"],
}


def api_key(rt: Runtime, user: User) -> dict[str, str]:
    with rt.uow() as session:
        _, secret = accounts.create_api_key(session, user_ctx(user), user_id=user.id)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def client(rt: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(rt, clock=clock)) as test_client:
        yield test_client


def create(client: TestClient, headers: dict[str, str], pdf: bytes | None = None,
           **meta: object) -> dict[str, object]:
    response = client.post("/api/v1/contracts", headers=headers,
                           data={"meta": json.dumps({**META, **meta})},
                           files=[("file", ("合同.pdf", pdf or make_pdf(2), "application/pdf")),
                                  ("attachments", ("清单.txt", "一、钢材".encode(), "text/plain"))])
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_create_read_edit_void(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    body = create(client, headers)
    cid = body["id"]
    assert body["status"] == "draft" and body["tags"] == ["supplier", "华东"]
    assert body["document"]["page_count"] == 2  # type: ignore[index]
    assert set(body["allowed_actions"]) >= {"send", "void", "submit"}  # type: ignore[arg-type]
    got = client.get(f"/api/v1/contracts/{cid}", headers=headers).json()
    assert got["signers"][0]["name"] == "王五" and got["clauses"][0]["body"] == "质保一年。"
    patched = client.patch(f"/api/v1/contracts/{cid}", headers=headers,
                           json={"title": "Renamed", "tags": ["x"]})
    assert patched.status_code == 200 and patched.json()["title"] == "Renamed"
    pdf = client.get(f"/api/v1/contracts/{cid}/document", headers=headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"
    attachment = got["attachments"][0]
    file = client.get(f"/api/v1/contracts/{cid}/attachments/{attachment['id']}", headers=headers)
    assert file.content == "一、钢材".encode()
    png = client.get(f"/api/v1/contracts/{cid}/pages/1.png?width=300", headers=headers)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    voided = client.post(f"/api/v1/contracts/{cid}/void", headers=headers,
                         json={"reason": "duplicate"})
    assert voided.json()["status"] == "voided"
    again = client.post(f"/api/v1/contracts/{cid}/void", headers=headers, json={"reason": "x"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    kinds = [e["kind"] for e in client.get(f"/api/v1/contracts/{cid}/audit",
                                           headers=headers).json()]
    for kind in ("contract.created", "document.uploaded", "attachment.added",
                 "contract.viewed", "contract.updated", "document.downloaded",
                 "attachment.downloaded", "contract.voided"):
        assert kind in kinds, kind


def test_list_filters(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    create(client, headers, title="Alpha", tags=["one"])
    create(client, headers, title="Beta 采购", tags=["two"], category="other")
    page = client.get("/api/v1/contracts?q=采购&sort=title", headers=headers).json()
    assert [c["title"] for c in page["items"]] == ["Beta 采购"] and page["total"] == 1
    page = client.get("/api/v1/contracts?tag=one&status=draft&per_page=1", headers=headers).json()
    assert page["total"] == 1 and page["per_page"] == 1
    bad = client.get("/api/v1/contracts?status=nonsense", headers=headers)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("payload", "code"), [
    (b"<html><script>alert(1)</script></html>", "upload_not_pdf"),
    ("encrypted", "upload_encrypted"),
    ("javascript", "upload_javascript"),
    (b"%PDF-1.4\n" + b"x" * (2 * 2**20 + 10), "upload_too_large"),
])
def test_refused_uploads(client: TestClient, rt: Runtime, payload: bytes | str,
                         code: str) -> None:
    headers = api_key(rt, owner(rt))
    data = {"encrypted": encrypted_pdf, "javascript": javascript_pdf}[payload]() \
        if isinstance(payload, str) else payload
    response = client.post("/api/v1/contracts", headers=headers,
                           data={"meta": json.dumps(META)},
                           files={"file": ("contract.pdf", data, "application/pdf")})
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == code and problem["status"] == 422 and problem["detail"]
    assert client.get("/api/v1/contracts", headers=headers).json()["total"] == 0


def test_problem_json_shape(client: TestClient, rt: Runtime) -> None:
    anonymous = client.get("/api/v1/contracts")
    assert anonymous.status_code == 401
    body = anonymous.json()
    assert set(body) >= {"type", "title", "status", "detail", "code", "instance"}
    assert body["code"] == "authentication_required" and "WWW-Authenticate" in anonymous.headers
    forged = client.get("/api/v1/contracts", headers={"Authorization": "Bearer ek_nope_nope"})
    assert forged.json()["code"] == "invalid_api_key"
    headers = api_key(rt, owner(rt))
    bad_meta = client.post("/api/v1/contracts", headers=headers, data={"meta": "{not json"},
                           files={"file": ("c.pdf", make_pdf(), "application/pdf")})
    assert bad_meta.status_code == 422 and bad_meta.json()["code"] == "invalid_json"
    invalid = client.post("/api/v1/contracts", headers=headers,
                          data={"meta": json.dumps({**META, "expiry_date": "2026-01-01"})},
                          files={"file": ("c.pdf", make_pdf(), "application/pdf")})
    assert invalid.status_code == 422 and invalid.json()["code"] == "validation_failed"
    assert "expiry_date" in invalid.json()["detail"]


def test_openapi_document(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/contracts", "/api/v1/contracts/{contract_id}",
                 "/api/v1/contracts/{contract_id}/void", "/api/v1/contracts/{contract_id}/audit",
                 "/api/v1/contracts/{contract_id}/document", "/api/v1/api-keys"):
        assert path in spec["paths"], path


def test_viewer_key_is_read_only(client: TestClient, rt: Runtime) -> None:
    cid = create(client, api_key(rt, owner(rt)))["id"]
    from econtract.accounts.policy import Role

    viewer = api_key(rt, add_user(rt, email="auditor@acme.test", role=Role.VIEWER))
    assert client.get(f"/api/v1/contracts/{cid}", headers=viewer).status_code == 200
    denied = client.post(f"/api/v1/contracts/{cid}/void", headers=viewer, json={"reason": "x"})
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"


def test_cookie_session_needs_csrf_header(client: TestClient, rt: Runtime,
                                          clock: FakeClock) -> None:
    from econtract.context import Actor, Ctx

    with rt.uow() as session:
        outcome = accounts.login(session, Ctx(actor=Actor.anonymous(), clock=clock),
                                 email="owner@acme.test", password="correct horse battery staple",
                                 max_failures=5, lock_minutes=15, absolute_hours=12)
    assert outcome.token and outcome.csrf_token
    client.cookies.set("econtract_session", outcome.token)
    assert client.get("/api/v1/me").json()["email"] == "owner@acme.test"
    forged = client.post("/api/v1/api-keys", json={"name": "x"})
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    ok = client.post("/api/v1/api-keys", json={"name": "x"},
                     headers={"X-CSRF-Token": outcome.csrf_token})
    assert ok.status_code == 201 and ok.json()["key"].startswith("ek_")
    client.cookies.clear()


def _session_of(rt: Runtime, email: str) -> tuple[str, str]:
    from econtract.context import Actor, Ctx
    from tests.factories import PASSWORD

    with rt.uow() as session:
        outcome = accounts.login(session, Ctx(actor=Actor.anonymous()), email=email,
                                 password=PASSWORD, max_failures=5, lock_minutes=15,
                                 absolute_hours=12)
    assert outcome.token and outcome.csrf_token
    return outcome.token, outcome.csrf_token


def test_second_organisation_gets_404_everywhere(client: TestClient, rt: Runtime) -> None:
    """Acceptance: every contract, document, attachment and audit URL of organisation A is a
    404 for organisation B's API key, and for its browser session."""
    body = create(client, api_key(rt, owner(rt)))
    cid, aid = body["id"], body["attachments"][0]["id"]  # type: ignore[index]
    stranger = add_org(rt, name="Globex", email="boss@globex.test")
    urls = [
        ("GET", f"/api/v1/contracts/{cid}", None), ("PATCH", f"/api/v1/contracts/{cid}", {}),
        ("POST", f"/api/v1/contracts/{cid}/void", {"reason": "x"}),
        ("POST", f"/api/v1/contracts/{cid}/send", None),
        ("GET", f"/api/v1/contracts/{cid}/document", None),
        ("GET", f"/api/v1/contracts/{cid}/document?version=1", None),
        ("GET", f"/api/v1/contracts/{cid}/versions", None),
        ("GET", f"/api/v1/contracts/{cid}/pages/1.png", None),
        ("GET", f"/api/v1/contracts/{cid}/attachments/{aid}", None),
        ("DELETE", f"/api/v1/contracts/{cid}/attachments/{aid}", None),
        ("GET", f"/api/v1/contracts/{cid}/audit", None),
    ]
    headers = api_key(rt, stranger)
    for method, url, payload in urls:
        response = client.request(method, url, headers=headers, json=payload)
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["code"].endswith("not_found"), url
    # the same walk as organisation B's signed-in user (browser session + CSRF header)
    token, csrf = _session_of(rt, "boss@globex.test")
    client.cookies.set("econtract_session", token)
    for method, url, payload in urls:
        response = client.request(method, url, json=payload, headers={"X-CSRF-Token": csrf})
        assert response.status_code == 404, ("session", method, url, response.status_code)
    client.cookies.clear()
    for method, url in [("PUT", f"/api/v1/contracts/{cid}/document"),
                        ("POST", f"/api/v1/contracts/{cid}/attachments")]:
        response = client.request(method, url, headers=headers,
                                  files={"file": ("x.pdf", make_pdf(), "application/pdf")})
        assert response.status_code == 404, url
    assert client.get("/api/v1/contracts", headers=headers).json()["total"] == 0
    assert all(e["kind"] != "contract.created"
               for e in client.get("/api/v1/audit", headers=headers).json())
    # and nothing of A changed
    mine = client.get(f"/api/v1/contracts/{cid}", headers=api_key(rt, owner(rt))).json()
    assert mine["status"] == "draft" and len(mine["attachments"]) == 1


def test_send_certifies_and_freezes(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    cid = create(client, headers)["id"]
    sent = client.post(f"/api/v1/contracts/{cid}/send", headers=headers)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "sent" and body["document"]["kind"] == "certified"
    assert body["document"]["page_count"] == 4  # 2 uploaded + a clauses page + a signature page
    assert [s["status"] for s in body["signers"]] == ["invited", "waiting"]
    pdf = client.get(f"/api/v1/contracts/{cid}/document", headers=headers).content
    verdict = client.post("/api/v1/verify", files={"file": ("c.pdf", pdf)}).json()
    assert verdict["verdict"] == "valid"
    assert [s["kind"] for s in verdict["signatures"]] == ["certification"]
    again = client.post(f"/api/v1/contracts/{cid}/send", headers=headers)
    assert again.status_code == 409
    frozen = client.patch(f"/api/v1/contracts/{cid}", headers=headers, json={"title": "x"})
    assert frozen.status_code == 409 and frozen.json()["code"] == "contract_not_editable"
    kinds = [e["kind"] for e in client.get(f"/api/v1/contracts/{cid}/audit",
                                           headers=headers).json()]
    assert "contract.sent" in kinds and "signer.invited" in kinds


def test_send_needs_a_signer(client: TestClient, rt: Runtime) -> None:
    headers = api_key(rt, owner(rt))
    cid = create(client, headers, signers=[])["id"]
    refused = client.post(f"/api/v1/contracts/{cid}/send", headers=headers)
    assert refused.status_code == 422 and refused.json()["code"] == "no_signers"


def test_parallel_page_previews_do_not_crash(client: TestClient, rt: Runtime) -> None:
    """PDFium is not thread-safe; a detail page asks for several pages at once."""
    from concurrent.futures import ThreadPoolExecutor

    headers = api_key(rt, owner(rt))
    cid = create(client, headers, pdf=make_pdf(4))["id"]

    def fetch(page: int) -> int:
        answer = client.get(f"/api/v1/contracts/{cid}/pages/{page}.png?width=400",
                            headers=headers)
        assert answer.content.startswith(b"\x89PNG")
        return answer.status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(fetch, [1, 2, 3, 4] * 5)) == {200}
