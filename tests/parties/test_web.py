"""The signing page ``/s`` and what it reads: a friendly page without a link, the contract in
Chinese and English (escaped), page images and attachments only for the token's own contract and
only in the signer's turn, with cache headers; the pages a finished link shows instead."""

from __future__ import annotations

import base64
import io
import json
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from econtract.context import utcnow
from econtract.contracts import previews, sending
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.errors import ValidationFailed
from econtract.parties import links
from econtract.parties.api import _appearance
from econtract.parties.schemas import AppearanceIn
from econtract.runtime import Runtime
from econtract.web import i18n
from tests.factories import create_contract, owner, user_ctx
from tests.parties.test_api import drawn_png, open_link_in_browser, verify_by_email
from tests.parties.test_links import TWO, client, link_token
from tests.parties.test_otp import problem
from tests.parties.test_sign import sent_contract, signer_row

ZHANG = "zhang@example.com"
EVIL = '<script>alert("x")</script> 租赁'


def signer_browser(rt: Runtime, address: str = ZHANG) -> tuple[TestClient, dict[str, str]]:
    """A browser that opened ``address``'s newest invitation link (cookie + CSRF header)."""
    browser = client(rt)
    return browser, open_link_in_browser(browser, link_token(rt, address))


def waiting_browser(rt: Runtime, contract: Contract) -> TestClient:
    """Signer 2 of a sequential contract with a link of their own before their turn (as an
    integrator's embedded link could be), to show that the turn rule is the server's."""
    bob = signer_row(rt, contract.id, "bob@example.com")
    assert bob.status == "waiting"
    with rt.uow() as session:
        token = links.issue(session, signer=bob, contract=session.get_one(Contract, contract.id),
                            now=utcnow())
    browser = client(rt)
    browser.cookies.set("econtract_signer", token)
    return browser


def test_without_a_link_the_page_explains_instead_of_asking_to_sign_in(rt: Runtime) -> None:
    page = client(rt).get("/s", follow_redirects=False)
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "Open your signing link" in page.text and "/login" not in page.headers.get(
        "location", "")
    zh = client(rt).get("/s", headers={"Accept-Language": "zh-CN"})
    assert "请打开您的签署链接" in zh.text
    unknown = client(rt)
    unknown.cookies.set("econtract_signer", "x" * 43)
    invalid = unknown.get("/s")
    assert invalid.status_code == 404 and "link_invalid" in invalid.text


def test_page_in_english_and_chinese_escapes_the_contract(rt: Runtime) -> None:
    contract = create_contract(rt, owner(rt), signers=TWO, title=EVIL,
                               clauses=["押金两个月。",
                                        {"title": "<b>Pets</b>", "body": "No <i>pets</i>."}])
    with rt.uow() as session:
        sending.send(session, user_ctx(owner(rt)), blobs=rt.blobs, engine=rt.signing_engine(),
                     contract_id=contract.id)
    browser, _ = signer_browser(rt)
    en = browser.get("/s", headers={"Accept-Language": "en"})
    assert en.status_code == 200 and en.headers["cache-control"] == "no-store"
    html = en.text
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;Pets&lt;/b&gt;" in html and "No &lt;i&gt;pets&lt;/i&gt;." in html
    assert "Send code" in html and "Acme" in html and "notes.txt" in html
    assert 'lang="en"' in html and "Set up your signing key and sign" in html
    assert re.search(r'<script src="/static/signing\.js\?v=\w+" defer>', html)
    assert "script-src 'self'" in en.headers["content-security-policy"]
    me = browser.get("/api/v1/signer").json()
    assert f'data-page-count="{me["page_count"]}"' in html and me["page_count"] >= 3
    assert f'/api/v1/signer/attachments/{me["contract"]["attachments"][0]["id"]}' in html
    browser.cookies.set(i18n.LANG_COOKIE, i18n.ZH_CN)
    zh = browser.get("/s").text
    assert 'lang="zh-CN"' in zh and "发送验证码" in zh and "密钥设置" in zh
    assert "&lt;script&gt;" in zh
    messages = re.search(r'<script type="application/json" id="signing-messages">(.*?)</script>',
                         zh, flags=re.S)
    assert messages and "<" not in messages.group(1)
    catalog = json.loads(messages.group(1))
    assert catalog["send_code"] == "发送验证码"
    assert catalog["otp_incorrect"] == "验证码不正确（还可尝试 %(left)s 次）。"  # filled in by JS


def test_page_images_only_in_turn_with_cache_headers(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    waiting = waiting_browser(rt, contract)
    assert "Waiting for others" in waiting.get("/s").text
    assert waiting.get("/api/v1/signer").json()["page_count"] is None
    problem(waiting.get("/api/v1/signer/pages/1"), 403, "not_your_turn")
    browser, _ = signer_browser(rt)
    me = browser.get("/api/v1/signer").json()
    first = browser.get("/api/v1/signer/pages/1", params={"width": 600})
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(first.content)).size[0] == 600
    assert first.headers["cache-control"].startswith("private, max-age=")
    etag = first.headers["etag"]
    assert me["document_sha256"][:40] in etag
    again = browser.get("/api/v1/signer/pages/1", params={"width": 600},
                        headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    assert previews.SIGNER_PAGES.get((me["document_sha256"], 1, 600)) == first.content
    problem(browser.get(f"/api/v1/signer/pages/{me['page_count'] + 1}"), 404, "page_not_found")
    problem(browser.get("/api/v1/signer/pages/0"), 404, "page_not_found")
    problem(browser.get("/api/v1/signer/pages/1", params={"width": 5000}), 422,
            "validation_failed")
    last = browser.get(f"/api/v1/signer/pages/{me['page_count']}")  # the signature page
    assert last.status_code == 200 and last.content.startswith(b"\xff\xd8")


def test_attachments_of_the_own_contract_only(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    other = sent_contract(rt, signers=TWO)
    with rt.uow() as session:
        own_id = session.get_one(Contract, contract.id).attachments[0].id
        foreign_id = session.get_one(Contract, other.id).attachments[0].id
    problem(waiting_browser(rt, contract).get(f"/api/v1/signer/attachments/{own_id}"), 403,
            "not_your_turn")
    browser = client(rt)
    open_link_in_browser(browser, link_token(rt, ZHANG))  # the newest: the other contract's
    assert browser.get("/api/v1/signer").json()["contract"]["attachments"][0]["id"] == str(
        foreign_id)
    got = browser.get(f"/api/v1/signer/attachments/{foreign_id}")
    assert got.status_code == 200 and got.content == "附件：钥匙两把".encode()
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["content-type"] == "application/octet-stream"
    # the first contract's attachment, through the second contract's link: it does not exist
    problem(browser.get(f"/api/v1/signer/attachments/{own_id}"), 404, "attachment_not_found")
    problem(browser.get(f"/api/v1/signer/attachments/{uuid.uuid4()}"), 404,
            "attachment_not_found")
    problem(browser.get("/api/v1/signer/attachments/not-a-uuid"), 422, "validation_failed")


def seal_png() -> str:
    image = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    for x in range(120):
        for y in (10, 11, 108, 109):
            image.putpixel((x, y), (200, 0, 0, 255))
            image.putpixel((y, x), (200, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_seal_image_passes_through_and_bad_images_are_refused() -> None:
    appearance = _appearance(AppearanceIn(type="drawn", image_png_base64=drawn_png(),
                                          seal_png_base64="data:image/png;base64," + seal_png()))
    assert appearance.seal_png is not None and appearance.seal_png.startswith(b"\x89PNG")
    assert appearance.image_png is not None
    for bad in ("not base64!", base64.b64encode(b"GIF89a....").decode()):
        with pytest.raises(ValidationFailed) as refused:
            _appearance(AppearanceIn(seal_png_base64=bad))
        assert refused.value.code == "invalid_image"


def test_finished_links_say_why(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    browser, csrf = signer_browser(rt)
    verify_by_email(rt, browser, ZHANG, csrf)
    signed = browser.post("/api/v1/signer/sign", headers=csrf, json={
        "pin": "482915", "consent": True,
        "appearance": {"type": "drawn", "image_png_base64": drawn_png(),
                       "seal_png_base64": seal_png()}})
    assert signed.status_code == 200, signed.text
    page = browser.get("/s")
    assert page.status_code == 410 and "You have signed this contract" in page.text
    bob, bob_csrf = signer_browser(rt, "bob@example.com")
    declined = bob.post("/api/v1/signer/decline", headers=bob_csrf, json={"reason": "价格有误"})
    assert declined.status_code == 200
    assert "You declined to sign this contract" in bob.get("/s").text
    voided = sent_contract(rt, signers=TWO)
    other, _ = signer_browser(rt)
    with rt.uow() as session:
        contracts.void(session, user_ctx(owner(rt)), contract_id=voided.id, reason="typo")
    assert "The contract was voided" in other.get("/s").text
    assert contract.id != voided.id


def test_access_code_first_then_the_contract(rt: Runtime) -> None:
    guarded = [{**TWO[0], "access_code": "K7-harbour"}, TWO[1]]
    sent_contract(rt, signers=guarded)
    browser, csrf = signer_browser(rt)
    html = browser.get("/s").text
    assert 'id="access-form"' in html and "Acme" in html
    for hidden in ('id="step-summary"', 'id="send-code"', "notes.txt", "押金两个月"):
        assert hidden not in html, hidden  # nothing but title and organisation before the code
    problem(browser.get("/api/v1/signer/pages/1"), 403, "access_code_required")
    granted = browser.post("/api/v1/signer/access-code", headers=csrf,
                           json={"code": "K7-harbour"})
    assert granted.status_code == 200, granted.text
    html = browser.get("/s").text
    assert 'id="access-form"' not in html and 'id="send-code"' in html and "notes.txt" in html
