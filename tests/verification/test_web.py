"""The public verify page (both databases): the form in both languages with a double-submit CSRF
token, the report of a real sealed contract, tampered and non-PDF files, upload errors, and
security.md checklist 4 — nothing that comes from the PDF reaches the page unescaped."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from econtract.app import create_app
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.runtime import Runtime
from econtract.verification import service
from econtract.web.render import LOGIN_CSRF_COOKIE
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD
from tests.signing import attacks as at
from tests.signing import verifypki as vp

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VERDICT = re.compile(r'class="verdict-kicker">[^<]*<code>([a-z-]+)</code>')
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    # The real clock: the platform PKI and the signatures are dated by the wall clock.
    with TestClient(create_app(rt)) as test_client:
        yield test_client


def token(client: TestClient, headers: dict[str, str] | None = None) -> str:
    page = client.get("/verify", headers=headers)
    assert page.status_code == 200
    found = CSRF_FIELD.search(page.text, page.text.index('action="/verify"'))
    assert found, "no CSRF field in the verify form"
    return found.group(1)


def verify(client: TestClient, data: bytes, filename: str = "contract.pdf",
           headers: dict[str, str] | None = None) -> Response:
    csrf = token(client, headers)
    response: Response = client.post(
        "/verify", data={"csrf_token": csrf}, headers=headers,
        files={"file": (filename, data, "application/pdf")})
    return response


def verdict_of(html: str) -> str:
    found = VERDICT.search(html)
    assert found, "no verdict on the page"
    return found.group(1)


def verified_events(rt: Runtime) -> int:
    with rt.uow() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == EventKind.DOCUMENT_VERIFIED.value)) or 0


# --- the form ------------------------------------------------------------------------------

def test_form_in_english_and_chinese_without_signing_in(client: TestClient) -> None:
    page = client.get("/verify")
    assert page.status_code == 200
    html = page.text
    assert "Verify a signed PDF" in html and 'enctype="multipart/form-data"' in html
    assert 'type="file" name="file"' in html
    for check in ("Integrity", "Trust", "Timestamps", "Changes after signing"):
        assert f"<strong>{check}</strong>" in html
    assert 'href="/verify" class="active"' in html  # the top-bar link, shown to anyone
    assert 'href="/contracts"' not in html  # no signed-in navigation for an anonymous visitor
    cookie = page.headers["set-cookie"].lower()
    assert f"{LOGIN_CSRF_COOKIE}=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert CSRF_FIELD.search(html).group(1) in page.headers["set-cookie"]  # type: ignore[union-attr]

    zh = client.get("/verify", headers=ZH).text
    assert 'lang="zh-CN"' in zh
    for text in ("验证已签署的 PDF", "完整性", "可信性", "时间戳", "签署后的修改", ">验证</a>"):
        assert text in zh, text


def test_signed_in_users_see_their_chrome(client: TestClient) -> None:
    login = client.get("/login")
    found = CSRF_FIELD.search(login.text)
    assert found
    signed_in = client.post("/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD,
                                            "csrf_token": found.group(1), "next": "/"},
                            follow_redirects=False)
    assert signed_in.status_code == 303
    html = client.get("/verify").text
    assert OWNER_EMAIL in html and 'href="/contracts"' in html and 'href="/verify"' in html
    answer = verify(client, b"%PDF-1.7\nnot really\n")
    assert answer.status_code == 200 and OWNER_EMAIL in answer.text


# --- reports -------------------------------------------------------------------------------

def test_sealed_contract_is_valid_and_tampering_is_not(
        client: TestClient, rt: Runtime, sealed_pdf: bytes) -> None:
    answer = verify(client, sealed_pdf, filename="租赁合同.pdf")
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert verdict_of(html) == "valid"
    assert 'class="verdict verdict-ok"' in html and "<h2 class=\"verdict-title\">Valid</h2>" in html
    for name in ("张三", "Bob Lee", "王五"):
        assert name in html, name
    assert "租赁合同.pdf" in html and hashlib.sha256(sealed_pdf).hexdigest() in html
    assert html.count('class="card sig-card sig-ok"') == 5  # seal, three signers, timestamp
    for text in ("Certification signature", "Approval signature", "Document timestamp",
                 "proven by timestamp (TSA", "zhang@example.com", "Acme Root CA",
                 "signature added in field", "Level 2: form filling and signing allowed"):
        assert text in html, text
    assert verified_events(rt) == 1

    zh = verify(client, sealed_pdf, headers=ZH).text
    for text in ("有效", "认证签名", "批准签名", "文件时间戳", "由时间戳证明", "张三", "王五"):
        assert text in zh, text

    start = sealed_pdf.index(b"stream", 2000) + 40  # inside a stream the first signature covers
    broken = verify(client, at.flip_byte(sealed_pdf, start))
    assert broken.status_code == 200
    assert verdict_of(broken.text) == "invalid-integrity"
    assert 'class="verdict verdict-bad"' in broken.text and "Signature broken or forged" in \
        broken.text
    appended = verify(client, sealed_pdf + b"\n1 0 obj\n(evil)\nendobj\n").text
    assert verdict_of(appended) not in ("valid", "no-signature")
    assert 'class="verdict verdict-bad"' in appended or 'verdict verdict-warn' in appended


def test_non_pdf_and_unsigned_pdf(client: TestClient, rt: Runtime) -> None:
    junk = verify(client, b"<html>hi</html>", filename="notes.txt")
    assert junk.status_code == 200
    assert verdict_of(junk.text) == "not-a-pdf"
    assert 'class="verdict verdict-warn"' in junk.text and "Not a PDF" in junk.text
    unsigned = verify(client, at.text_pdf())
    assert verdict_of(unsigned.text) == "no-signature"
    assert 'class="verdict verdict-warn"' in unsigned.text
    assert "The document carries no signature." in unsigned.text
    zh = verify(client, b"\x00\x01binary", headers=ZH).text
    assert "不是 PDF 文件" in zh and "无法将该文件读取为 PDF。" in zh
    assert verified_events(rt) == 3


def test_untrusted_signer_is_reported_not_trusted(client: TestClient) -> None:
    html = verify(client, at.corpus().single).text
    assert verdict_of(html) == "invalid-trust"
    assert "Signer not trusted" in html and "Not trusted" in html and "Alice" in html


# --- security.md checklist 4: everything from the PDF is escaped ---------------------------

def test_hostile_file_name_is_escaped(client: TestClient) -> None:
    answer = verify(client, b"not a pdf", filename=f"{SCRIPT}.pdf")
    assert answer.status_code == 200
    assert f"{ESCAPED}.pdf" in answer.text
    assert "<script>alert" not in answer.text
    trojan = verify(client, b"not a pdf", filename="invoice\u202efdp.exe.pdf").text
    assert "invoicefdp.exe.pdf" in trojan and "\u202e" not in trojan


def test_hostile_signature_strings_are_escaped(client: TestClient) -> None:
    p = vp.pki()
    data = vp.sign(at.text_pdf(), p.alice, f"Field{SCRIPT}", reason=SCRIPT, name=SCRIPT)
    html = verify(client, data, filename=f"{SCRIPT}.pdf").text
    assert verdict_of(html) == "invalid-trust"  # the test PKI is not the platform's
    assert html.count(ESCAPED) >= 4  # file name, field name, stated reason, stated name
    assert f"Field{ESCAPED}" in html
    assert "<script>alert" not in html
    zh = verify(client, data, headers=ZH).text
    assert ESCAPED in zh and "<script>alert" not in zh


# --- refusals ------------------------------------------------------------------------------

def test_missing_or_wrong_csrf_token_is_refused(client: TestClient, rt: Runtime) -> None:
    client.get("/verify")
    files = {"file": ("c.pdf", at.text_pdf(), "application/pdf")}
    missing = client.post("/verify", files=files)
    assert missing.status_code == 403
    assert "csrf_failed" in missing.text and "The form has expired" in missing.text
    assert CSRF_FIELD.search(missing.text)  # the form is there again, with a token
    forged = client.post("/verify", data={"csrf_token": "x" * 43}, files=files)
    assert forged.status_code == 403
    client.cookies.clear()  # a cross-site post has a token but not our cookie
    no_cookie = client.post("/verify", data={"csrf_token": "x" * 43}, files=files)
    assert no_cookie.status_code == 403
    zh = client.post("/verify", files=files, headers=ZH)
    assert zh.status_code == 403 and "表单已过期" in zh.text
    assert verified_events(rt) == 0


def test_upload_errors_show_the_form_with_a_code(client: TestClient, rt: Runtime,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "MAX_VERIFY_BYTES", 4096)
    big = verify(client, b"%PDF-1.7\n" + b"0" * 5000)
    assert big.status_code == 422
    assert "upload_too_large" in big.text and "larger than the limit of" in big.text
    assert 'type="file" name="file"' in big.text and 'class="verdict' not in big.text
    nothing = client.post("/verify", data={"csrf_token": token(client)})
    assert nothing.status_code == 422
    assert "file_required" in nothing.text and "Choose the PDF file to verify." in nothing.text
    empty_name = client.post("/verify", data={"csrf_token": token(client)},
                             files={"file": ("", b"", "application/octet-stream")})
    assert empty_name.status_code == 422 and "file_required" in empty_name.text
    zh = verify(client, b"0" * 5000, headers=ZH)
    assert zh.status_code == 422 and "upload_too_large" in zh.text
    assert "文件超过了 4.0 KB 的上限。" in zh.text
    assert verified_events(rt) == 0
