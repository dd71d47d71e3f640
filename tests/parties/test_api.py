"""The signer API end to end, using only what arrives by e-mail: two sequential signers open
their links, prove their identity with a code, set up a PIN and sign; the seal job completes the
contract and the platform's verifier says it is valid. Also consent, PINs and declining."""

from __future__ import annotations

import base64
import io
import time
import uuid

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from econtract.audit.models import AuditEvent
from econtract.context import utcnow
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.credentials.models import SignerCredential
from econtract.parties.models import Signer, SignerOtp
from econtract.parties.schemas import CONSENT_TEXT
from econtract.runtime import Runtime
from econtract.signing.report import Verdict
from econtract.signing.verify import verify_pdf
from tests.factories import owner, user_ctx
from tests.parties.test_links import (
    TWO,
    body,
    client,
    deliver,
    header,
    inbox,
    link_token,
    mailed_code,
)
from tests.parties.test_otp import problem
from tests.parties.test_sign import sent_contract

ZHANG, BOB = "zhang@example.com", "bob@example.com"


def drawn_png() -> str:
    image = Image.new("RGBA", (300, 100), (255, 255, 255, 0))
    for x in range(20, 280):
        image.putpixel((x, 50 + (x % 20) - 10), (0, 0, 160, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def open_link_in_browser(web: TestClient, token: str) -> dict[str, str]:
    """What the signing page does: open the link, then send the CSRF token with each POST."""
    opened = web.get(f"/s/{token}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/s"
    return {"X-CSRF-Token": web.get("/api/v1/signer").json()["csrf_token"]}


def verify_by_email(rt: Runtime, web: TestClient, address: str,
                    auth: dict[str, str]) -> None:
    assert web.post("/api/v1/signer/otp", headers=auth).status_code == 200
    code = mailed_code(rt, address)
    verified = web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code})
    assert verified.status_code == 200, verified.text


def test_two_sequential_signers_from_their_mailboxes(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    deliver(rt)
    assert inbox(rt, BOB) == []
    # signer 1: a browser with the cookie from the link
    first = client(rt)
    csrf = open_link_in_browser(first, link_token(rt, ZHANG))
    me = first.get("/api/v1/signer").json()
    assert me["your_turn"] is True and me["key_set_up"] is False
    assert me["contract"]["organisation"] == "Acme" and me["consent_text"] == CONSENT_TEXT
    assert [c["body"] for c in me["contract"]["clauses"]] == ["押金两个月。", "No pets allowed."]
    assert me["contract"]["attachments"][0]["filename"] == "notes.txt"
    problem(first.post("/api/v1/signer/sign", headers=csrf,
                       json={"pin": "482915", "consent": True}), 403, "identity_not_verified")
    verify_by_email(rt, first, ZHANG, csrf)
    pdf = first.get("/api/v1/signer/document")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    signed = first.post("/api/v1/signer/sign", headers=csrf, json={
        "pin": "482915", "consent": True, "appearance": {"type": "typed", "text": "张三"}})
    assert signed.json() == {"signer_status": "signed", "contract_status": "signing"}
    problem(first.get("/api/v1/signer"), 410, "link_gone")
    # signer 2: invited only now, and an integrator's client with the header
    second = client(rt)
    auth = header(link_token(rt, BOB))
    assert second.get("/api/v1/signer", headers=auth).json()["your_turn"] is True
    verify_by_email(rt, second, BOB, auth)
    signed = second.post("/api/v1/signer/sign", headers=auth, json={
        "pin": "739261", "consent": True,
        "appearance": {"type": "drawn", "image_png_base64": drawn_png()}})
    assert signed.status_code == 200, signed.text
    deliver(rt)  # the seal job
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        assert session.get_one(Contract, contract.id).status == "completed"
        trust = rt.signing_engine().trust(session, utcnow())
        events = contracts.timeline(session, ctx, contract_id=contract.id)
    _, data = _current(rt, contract.id)
    assert verify_pdf(data, trust).verdict is Verdict.VALID
    _check_trail(events)


def _current(rt: Runtime, contract_id: uuid.UUID) -> tuple[object, bytes]:
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        return contracts.download_document(session, ctx, blobs=rt.blobs,
                                           contract_id=contract_id, audit_as=None)


def _check_trail(events: list[AuditEvent]) -> None:
    kinds = [e.kind for e in events]
    for kind in ("signer.invited", "signer.link_opened", "signer.otp_sent",
                 "signer.identity_verified", "signer.consented", "signer.signed",
                 "document.downloaded", "document.sealed", "contract.completed"):
        assert kind in kinds, kind
    assert kinds.count("signer.identity_verified") == 2 and kinds.count("signer.signed") == 2
    consents = [e for e in events if e.kind == "signer.consented"]
    assert all(e.data["text"] == CONSENT_TEXT for e in consents)
    assert all(e.ip and e.user_agent for e in events if e.actor_kind == "signer")
    # signer 2 was invited after signer 1 signed, never before
    assert kinds.index("signer.signed") < [i for i, e in enumerate(events)
                                           if e.kind == "signer.invited"][1]


def test_consent_pin_and_appearance_rules(rt: Runtime) -> None:
    sent_contract(rt, signers=TWO[:1])
    web = client(rt)
    auth = header(link_token(rt, ZHANG))
    verify_by_email(rt, web, ZHANG, auth)
    for consent in (False, "true", 1):
        response = web.post("/api/v1/signer/sign", headers=auth,
                            json={"pin": "482915", "consent": consent})
        assert response.status_code == 422, consent
    problem(web.post("/api/v1/signer/sign", headers=auth, json={"pin": "482915"}),
            422, "validation_failed")
    problem(web.post("/api/v1/signer/sign", headers=auth, json={
        "pin": "482915", "consent": True,
        "appearance": {"type": "drawn", "image_png_base64": base64.b64encode(b"GIF89a").decode()}}),
        422, "invalid_image")
    assert web.post("/api/v1/signer/sign", headers=auth,
                    json={"pin": "482915", "consent": True}).status_code == 200
    # the same person on another contract: the key exists, the PIN is asked (and counted)
    sent_contract(rt, signers=TWO[:1])
    other = header(link_token(rt, ZHANG))
    assert web.get("/api/v1/signer", headers=other).json()["key_set_up"] is True
    verify_by_email(rt, web, ZHANG, other)
    wrong = problem(web.post("/api/v1/signer/sign", headers=other,
                             json={"pin": "000000", "consent": True}), 401, "pin_incorrect")
    assert wrong["attempts_left"] == 4
    with rt.uow() as session:
        assert session.scalars(select(SignerCredential)).one().pin_failures == 1
    locked = web.post("/api/v1/signer/sign", headers=other,
                      json={"pin": "482915", "consent": True})
    problem(locked, 429, "signing_locked")  # the short wait after a wrong PIN
    assert "retry-after" in locked.headers
    time.sleep(1.1)
    assert web.post("/api/v1/signer/sign", headers=other,
                    json={"pin": "482915", "consent": True}).status_code == 200


def test_decline_ends_the_contract_and_tells_the_owner(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    web = client(rt)
    auth = header(link_token(rt, ZHANG))
    problem(web.post("/api/v1/signer/decline", headers=auth, json={"reason": "  "}),
            422, "reason_required")
    problem(web.post("/api/v1/signer/decline", headers=auth, json={}), 422, "validation_failed")
    declined = web.post("/api/v1/signer/decline", headers=auth,
                        json={"reason": "租金太高 / the rent is too high"})
    assert declined.json() == {"signer_status": "declined", "contract_status": "declined"}
    problem(web.post("/api/v1/signer/sign", headers=auth,
                     json={"pin": "482915", "consent": True}), 410, "link_gone")
    deliver(rt)
    notice = inbox(rt, "owner@acme.test")[-1]
    assert "declined" in str(notice["Subject"])
    assert "租金太高" in body(notice) and f"/contracts/{contract.id}" in body(notice)
    assert inbox(rt, BOB) == []  # never invited
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        events = contracts.timeline(session, ctx, contract_id=contract.id)
        row = session.get_one(Contract, contract.id)
        assert row.status == "declined"
        assert {s.email: s.status for s in row.signers} == {ZHANG: "declined", BOB: "waiting"}
    declines = [e for e in events if e.kind in ("signer.declined", "contract.declined")]
    assert [e.data["reason"] for e in declines] == ["租金太高 / the rent is too high"] * 2


# --- ids of other contracts and signers ----------------------------------------------------

SAMPLE_BODIES: dict[str, dict[str, object]] = {
    "/api/v1/signer/otp": {},
    "/api/v1/signer/otp/verify": {"code": "123456"},
    "/api/v1/signer/access-code": {"code": "0000"},
    "/api/v1/signer/sign": {"pin": "482915", "consent": True},
    "/api/v1/signer/decline": {"reason": "no"},
}
"""A valid body for every POST route of the signer API (a new route must be added here)."""


def signer_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the signer API, path parameters filled in."""
    from fastapi.routing import APIRoute

    from econtract.parties.api import router

    found = []
    for route in router.routes:
        assert isinstance(route, APIRoute)
        path = "/api/v1" + route.path.replace("{page}", "1").replace(
            "{attachment_id}", str(uuid.uuid4()))
        found.extend((method, path) for method in sorted(route.methods))
    return found


def test_other_ids_in_any_signer_body_or_url_are_404(rt: Runtime) -> None:
    mine = sent_contract(rt, signers=TWO)
    token = header(link_token(rt, ZHANG))
    theirs = sent_contract(rt, signers=[{"name": "王五", "email": "wang@example.com",
                                         "order": 1}])
    with rt.uow() as session:
        own_signer = session.scalars(select(Signer).where(Signer.contract_id == mine.id,
                                                          Signer.email == ZHANG)).one()
        other = session.scalars(select(Signer).where(Signer.contract_id == theirs.id)).one()
    web = client(rt)
    routes = signer_routes()
    posts = [path for method, path in routes if method == "POST"]
    assert sorted(posts) == sorted(SAMPLE_BODIES)
    strangers = [{"contract_id": str(theirs.id)}, {"signer_id": str(other.id)},
                 {"contract_id": str(uuid.uuid4())}, {"signer_id": str(uuid.uuid4())},
                 {"contract_id": str(mine.id), "signer_id": str(other.id)},
                 {"contract_id": str(other.id)}, {"signer_id": str(mine.id)}]
    answers = set()
    for method, path in routes:
        for ids in strangers:
            if method == "POST":
                response = web.post(path, headers=token, json={**SAMPLE_BODIES[path], **ids})
            else:
                response = web.get(path, headers=token, params=ids)
            data = problem(response, 404, "not_found")
            answers.add((data["title"], data["detail"]))
    assert len(answers) == 1  # an id that exists reads like one that does not
    # nothing happened to either contract
    with rt.uow() as session:
        assert session.get_one(Contract, mine.id).status == "sent"
        assert session.get_one(Contract, theirs.id).status == "sent"
        assert session.get_one(Signer, other.id).status == "invited"
        assert session.scalars(select(SignerOtp)).all() == []
    # the token's own ids are fine, and other unknown fields are still refused
    own = {"contract_id": str(mine.id), "signer_id": str(own_signer.id)}
    assert web.get("/api/v1/signer", headers=token, params=own).status_code == 200
    assert web.post("/api/v1/signer/otp", headers=token, json=own).status_code == 200
    problem(web.post("/api/v1/signer/otp/verify", headers=token,
                     json={"code": "000000", **own}), 401, "otp_incorrect")
    problem(web.post("/api/v1/signer/decline", headers=token,
                     json={"reason": "no", "document_id": str(uuid.uuid4())}),
            422, "validation_failed")
    problem(web.post("/api/v1/signer/otp", headers=token, json={"contract_id": "x"}),
            422, "validation_failed")
    # ids in the path: no route takes one
    for path in (f"/api/v1/signer/{theirs.id}", f"/api/v1/signer/{other.id}",
                 f"/api/v1/signer/{other.id}/document", f"/api/v1/signer/{theirs.id}/sign",
                 f"/api/v1/signer/contracts/{theirs.id}", f"/api/v1/signer/{mine.id}"):
        assert web.get(path, headers=token).status_code == 404, path
        assert web.post(path, headers=token, json={}).status_code in (404, 405), path
