"""Invitation links: 256-bit tokens stored hashed, bound to one signer of one contract, dead when
they expire, after signing or declining, and when the contract ends; ``/s/{token}`` moves the
token into a cookie. Also the helpers the other signer tests read their e-mail with."""

from __future__ import annotations

import email.message
import email.policy
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from email.parser import BytesParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.accounts.security import token_hash
from econtract.app import create_app
from econtract.audit.models import AuditEvent
from econtract.context import utcnow
from econtract.contracts import service as contracts
from econtract.errors import NotFound
from econtract.jobs import Worker
from econtract.parties import links
from econtract.parties.links import LinkGone
from econtract.parties.models import Signer, SignerLink
from econtract.runtime import Runtime
from tests.factories import owner, user_ctx
from tests.parties.test_sign import SIGNERS, sent_contract, sign_as, signer_row

TWO = SIGNERS[:2]
LINK = re.compile(r"/s/([A-Za-z0-9_-]{22,})")
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


# --- helpers shared by the signer tests ----------------------------------------------------

def deliver(rt: Runtime, clock: Callable[[], datetime] = utcnow) -> None:
    """Run the outbox until it is empty (e-mails to files, the seal job)."""
    worker = Worker(rt.session_factory, rt.registry, clock=clock)
    while worker.run_once():
        pass


def inbox(rt: Runtime, address: str) -> list[email.message.EmailMessage]:
    """The .eml files written for ``address``, oldest first."""
    parser = BytesParser(policy=email.policy.default)
    files = sorted(rt.settings.outbox_dir.glob("job-*.eml"),
                   key=lambda p: int(p.stem.removeprefix("job-")))
    found = []
    for path in files:
        message = parser.parsebytes(path.read_bytes())
        assert isinstance(message, email.message.EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_token(rt: Runtime, address: str, clock: Callable[[], datetime] = utcnow) -> str:
    """The token of the newest invitation e-mail to ``address``."""
    deliver(rt, clock)
    invitations = [m for m in inbox(rt, address) if "Please sign" in str(m["Subject"])]
    assert invitations, f"no invitation for {address}"
    found = LINK.search(body(invitations[-1]))
    assert found is not None
    return found.group(1)


def mailed_code(rt: Runtime, address: str, clock: Callable[[], datetime] = utcnow) -> str:
    deliver(rt, clock)
    codes = [m for m in inbox(rt, address) if "Verification code" in str(m["Subject"])]
    assert codes, f"no code for {address}"
    found = CODE.search(body(codes[-1]))
    assert found is not None
    return found.group(1)


def client(rt: Runtime, clock: Callable[[], datetime] = utcnow) -> TestClient:
    return TestClient(create_app(rt, clock=clock), base_url="http://testserver")


def header(token: str) -> dict[str, str]:
    return {"X-Signer-Token": token}


# --- tokens --------------------------------------------------------------------------------

def test_invitation_token_is_long_random_and_stored_hashed(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    token = link_token(rt, "zhang@example.com")
    assert len(token) >= 43  # 256 bits in URL-safe base64
    mail = inbox(rt, "zhang@example.com")[-1]
    text = body(mail)
    assert "房屋租赁合同 Lease 2026" in text and "Acme" in text and f"/s/{token}" in text
    assert inbox(rt, "bob@example.com") == []  # sequential: not invited yet
    with rt.uow() as session:
        rows = list(session.scalars(select(SignerLink)))
        assert len(rows) == 1
        assert rows[0].token_hash == token_hash(token) and token not in rows[0].token_hash
        assert rows[0].contract_id == contract.id
        assert rows[0].expires_at - utcnow() > timedelta(days=29)  # no deadline: 30 days
        found = links.resolve(session, token=token, now=utcnow())
        assert found.signer.email == "zhang@example.com" and found.contract.id == contract.id
    second = sent_contract(rt, signers=TWO)
    assert link_token(rt, "zhang@example.com") != token
    with rt.uow() as session:
        assert links.resolve(session, token=token, now=utcnow()).contract.id != second.id


def test_unknown_expired_used_and_ended_links_are_refused(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    token = link_token(rt, "zhang@example.com")
    with rt.uow() as session:
        for bad in ("", "x" * 500, token[:-1], token + "A"):
            with pytest.raises(NotFound) as info:
                links.resolve(session, token=bad, now=utcnow())
            assert info.value.code == "link_invalid" and info.value.status == 404
        with pytest.raises(LinkGone) as gone:
            links.resolve(session, token=token, now=utcnow() + timedelta(days=31))
        assert gone.value.status == 410 and gone.value.code == "link_gone"
    assert sign_as(rt, contract.id, "zhang@example.com").error is None
    bob_token = link_token(rt, "bob@example.com")
    with rt.uow() as session:
        with pytest.raises(LinkGone):  # used: the signer has signed
            links.resolve(session, token=token, now=utcnow())
        links.resolve(session, token=bob_token, now=utcnow())
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        contracts.void(session, ctx, contract_id=contract.id, reason="wrong rent")
    with rt.uow() as session, pytest.raises(LinkGone):  # voided contract
        links.resolve(session, token=bob_token, now=utcnow())


def test_link_expires_with_the_sign_deadline(rt: Runtime) -> None:
    from econtract.contracts.models import Contract

    contract = sent_contract(rt, signers=TWO)
    token = link_token(rt, "zhang@example.com")
    deadline = utcnow() + timedelta(days=3)
    with rt.uow() as session:
        session.get_one(Contract, contract.id).sign_deadline = deadline
    with rt.uow() as session:
        links.resolve(session, token=token, now=deadline - timedelta(seconds=1))
        with pytest.raises(LinkGone):
            links.resolve(session, token=token, now=deadline)


# --- /s/{token} ----------------------------------------------------------------------------

def test_opening_the_link_moves_the_token_into_a_cookie(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    token = link_token(rt, "zhang@example.com")
    web = client(rt)
    response = web.get(f"/s/{token}", follow_redirects=False,
                       headers={"User-Agent": "Mobile Safari"})
    assert response.status_code == 303 and response.headers["location"] == "/s"
    assert response.headers["referrer-policy"] == "no-referrer"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"econtract_signer={token};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http base URL; https turns it on
    assert web.get("/s").status_code == 200
    assert signer_row(rt, contract.id, "zhang@example.com").status == "viewed"
    me = web.get("/api/v1/signer")  # the cookie alone authenticates
    assert me.status_code == 200 and me.json()["signer"]["email"] == "zhang@example.com"
    with rt.uow() as session:
        opened = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "signer.link_opened")).one()
        assert opened.contract_id == contract.id and opened.user_agent == "Mobile Safari"
        assert opened.ip and opened.actor_kind == "signer"
        assert token not in str(opened.data)


def test_refused_links_show_an_error_page_without_the_contract(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    token = link_token(rt, "zhang@example.com")
    web = client(rt)
    unknown = web.get(f"/s/{'A' * 43}", follow_redirects=False)
    assert unknown.status_code == 404 and "set-cookie" not in unknown.headers
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        contracts.void(session, ctx, contract_id=contract.id, reason="test")
    gone = web.get(f"/s/{token}", follow_redirects=False)
    assert gone.status_code == 410 and "set-cookie" not in gone.headers
    assert "Lease" not in gone.text and "link_gone" in gone.text
    assert gone.headers["referrer-policy"] == "no-referrer"
    api = web.get("/api/v1/signer", headers=header(token))
    assert api.status_code == 410 and api.json()["code"] == "link_gone"
    assert "Lease" not in api.text


def test_cookie_posts_need_the_csrf_header(rt: Runtime) -> None:
    sent_contract(rt, signers=TWO)
    token = link_token(rt, "zhang@example.com")
    web = client(rt)
    web.get(f"/s/{token}", follow_redirects=False)
    csrf = web.get("/api/v1/signer").json()["csrf_token"]
    refused = web.post("/api/v1/signer/otp")
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    assert web.post("/api/v1/signer/otp", headers={"X-CSRF-Token": "x" * 64}).status_code == 403
    assert web.post("/api/v1/signer/otp", headers={"X-CSRF-Token": csrf}).status_code == 200
    none = TestClient(create_app(rt)).get("/api/v1/signer")
    assert none.status_code == 401 and none.json()["code"] == "signer_token_required"


def test_a_token_reaches_only_its_own_contract(rt: Runtime) -> None:
    first = sent_contract(rt, signers=TWO)
    token_a = link_token(rt, "zhang@example.com")
    second = sent_contract(rt, signers=[{"name": "王五", "email": "wang@example.com",
                                         "order": 1}])
    web = client(rt)
    me = web.get("/api/v1/signer", headers=header(token_a)).json()
    assert me["signer"]["email"] == "zhang@example.com"
    other = signer_row(rt, second.id, "wang@example.com")
    for path in (f"/api/v1/signer/{second.id}", f"/api/v1/signer/{other.id}/document",
                 f"/api/v1/signer/contracts/{second.id}", f"/s/{second.id}"):
        assert web.get(path, headers=header(token_a), follow_redirects=False).status_code \
            == 404, path
    # another contract's or signer's id in a body or the query: 404, and nothing happens to
    # the other contract (tests/parties/test_api.py walks every route)
    for payload in ({"reason": "no", "contract_id": str(second.id)},
                    {"reason": "no", "signer_id": str(other.id)}):
        assert web.post("/api/v1/signer/decline", headers=header(token_a),
                        json=payload).status_code == 404
    assert web.get(f"/api/v1/signer/document?contract_id={second.id}",
                   headers=header(token_a)).status_code == 404
    # the token's own ids are fine: the token decides which document comes back
    doc = web.get(f"/api/v1/signer/document?contract_id={first.id}", headers=header(token_a))
    assert doc.status_code == 200
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        mine = contracts.current_version(session, contract=contracts.get(
            session, ctx, contract_id=first.id))
        assert doc.headers["x-content-sha256"] == mine.sha256
        assert session.get_one(Signer, other.id).status == "invited"
    org_api = web.get(f"/api/v1/contracts/{second.id}", headers=header(token_a))
    assert org_api.status_code == 401  # a signer token is no organisation credential


def test_a_decline_ends_every_link(rt: Runtime) -> None:
    sent_contract(rt, signers=[SIGNERS[0], {**SIGNERS[1], "order": 1}])
    zhang = link_token(rt, "zhang@example.com")
    bob = link_token(rt, "bob@example.com")  # a parallel group: both invited at once
    web = client(rt)
    declined = web.post("/api/v1/signer/decline", headers=header(bob),
                        json={"reason": "租金太高 / rent too high"})
    assert declined.status_code == 200
    assert declined.json() == {"signer_status": "declined", "contract_status": "declined"}
    for token in (zhang, bob):  # the contract has ended: every link is dead
        assert web.get("/api/v1/signer", headers=header(token)).status_code == 410
    assert web.get(f"/s/{uuid.uuid4()}", follow_redirects=False).status_code == 404


def test_past_the_sign_deadline_every_signer_call_is_refused(rt: Runtime) -> None:
    from econtract.contracts.models import Contract
    from tests.conftest import FakeClock

    contract = sent_contract(rt, signers=TWO)
    token = link_token(rt, "zhang@example.com")
    clock = FakeClock(utcnow())
    with rt.uow() as session:
        session.get_one(Contract, contract.id).sign_deadline = clock() + timedelta(hours=2)
    web = client(rt, clock)
    assert web.get("/api/v1/signer", headers=header(token)).status_code == 200
    clock.advance(hours=2)
    calls = [("GET", "/api/v1/signer", None), ("GET", "/api/v1/signer/document", None),
             ("POST", "/api/v1/signer/otp", None),
             ("POST", "/api/v1/signer/otp/verify", {"code": "123456"}),
             ("POST", "/api/v1/signer/access-code", {"code": "1234"}),
             ("POST", "/api/v1/signer/sign", {"pin": "482915", "consent": True}),
             ("POST", "/api/v1/signer/decline", {"reason": "late"})]
    for method, path, payload in calls:
        response = web.request(method, path, headers=header(token), json=payload)
        assert response.status_code == 410, (path, response.text)
        assert response.json()["code"] == "link_gone" and "Lease" not in response.text
    assert web.get(f"/s/{token}", follow_redirects=False).status_code == 410
    assert signer_row(rt, contract.id, "zhang@example.com").status == "viewed"  # no further
