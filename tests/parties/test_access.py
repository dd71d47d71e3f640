"""The sender's access code (访问码): before it is entered the link shows the title and the
organisation only and every other signer call is refused; wrong codes are counted and audited,
five lock entry for fifteen minutes; a right code opens the contract."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from econtract.audit.models import AuditEvent
from econtract.context import Ctx, utcnow
from econtract.errors import PermissionDenied
from econtract.parties import access, links
from econtract.parties import service as parties
from econtract.parties.models import Signer
from econtract.runtime import Runtime
from tests.conftest import FakeClock
from tests.parties.test_api import SAMPLE_BODIES, signer_routes
from tests.parties.test_links import client, header, link_token, mailed_code
from tests.parties.test_otp import problem
from tests.parties.test_sign import sent_contract, signer_row

ZHANG = "zhang@example.com"
CODE = "K7-2049"
GUARDED = [{"name": "张三", "email": ZHANG, "order": 1, "access_code": CODE},
           {"name": "Bob Lee", "email": "bob@example.com", "order": 2}]


def setup(rt: Runtime) -> tuple[Any, FakeClock, Any, dict[str, str]]:
    contract = sent_contract(rt, signers=GUARDED)
    clock = FakeClock(utcnow())
    token = link_token(rt, ZHANG)
    return contract, clock, client(rt, clock), header(token)


def test_before_the_code_the_link_shows_title_and_organisation_only(rt: Runtime) -> None:
    _, _, web, auth = setup(rt)
    response = web.get("/api/v1/signer", headers=auth)
    assert response.status_code == 200
    me = response.json()
    assert me["access_code_required"] is True and me["identity_method"] == "email_otp"
    assert me["contract"]["title"] == "房屋租赁合同 Lease 2026"
    assert me["contract"]["organisation"] == "Acme"
    assert me["contract"]["clauses"] == [] and me["contract"]["attachments"] == []
    assert me["contract"]["sender"] is None and me["contract"]["sign_deadline"] is None
    assert me["signer"] is None and me["link_expires_at"] is None
    assert me["your_turn"] is False and me["key_set_up"] is False
    assert me.get("page_count") is None and me.get("document_sha256") is None
    for secret in (ZHANG, "张三", "押金", "No pets", "notes.txt", "bob@example.com"):
        assert secret not in response.text, secret


def test_every_other_signer_call_is_refused_until_the_code(rt: Runtime) -> None:
    contract, _, web, auth = setup(rt)
    for method, path in signer_routes():
        if (method, path) in (("GET", "/api/v1/signer"), ("POST", "/api/v1/signer/access-code")):
            continue
        response = web.request(method, path, headers=auth, json=SAMPLE_BODIES.get(path))
        problem(response, 403, "access_code_required")
    zhang = signer_row(rt, contract.id, ZHANG)
    assert zhang.status == "invited" and zhang.access_granted_at is None  # nothing happened
    # the gate is a service rule: any edge that resolves a link can call it
    with rt.uow() as session:
        found = links.resolve(session, token=auth["X-Signer-Token"], now=utcnow())
        assert access.required(found.signer)
        with pytest.raises(PermissionDenied) as refused:
            access.require_granted(found)
        assert refused.value.code == "access_code_required"


def test_the_right_code_opens_the_contract(rt: Runtime) -> None:
    contract, clock, web, auth = setup(rt)
    wrong = problem(web.post("/api/v1/signer/access-code", headers=auth,
                             json={"code": "0000"}), 401, "access_code_incorrect")
    assert wrong["attempts_left"] == 4
    granted = web.post("/api/v1/signer/access-code", headers={**auth, "User-Agent": "Phone"},
                       json={"code": f" {CODE} "})
    assert granted.status_code == 200 and granted.json() == {"access_granted": True}
    me = web.get("/api/v1/signer", headers=auth).json()
    assert me["access_code_required"] is False and me["signer"]["email"] == ZHANG
    assert me["contract"]["attachments"][0]["filename"] == "notes.txt"
    # entering it again changes nothing; the rest of the journey is open
    assert web.post("/api/v1/signer/access-code", headers=auth,
                    json={"code": "whatever"}).status_code == 200
    assert web.post("/api/v1/signer/otp", headers=auth).status_code == 200
    code = mailed_code(rt, ZHANG, clock)
    assert web.post("/api/v1/signer/otp/verify", headers=auth,
                    json={"code": code}).status_code == 200
    row = signer_row(rt, contract.id, ZHANG)
    assert row.access_granted_at is not None and row.access_code_failures == 0
    with rt.uow() as session:
        failed = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "signer.access_code_failed")).one()
        ok = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "signer.access_granted")).one()
    assert failed.data["reason"] == "wrong" and failed.data["failures"] == 1
    assert failed.ip and failed.user_agent and failed.contract_id == contract.id
    assert ok.user_agent == "Phone" and ok.ip and ok.actor_kind == "signer"
    assert CODE not in str(failed.data) + str(ok.data)


def test_five_wrong_access_codes_lock_for_fifteen_minutes(rt: Runtime) -> None:
    contract, clock, web, auth = setup(rt)
    for attempt in range(1, 5):
        data = problem(web.post("/api/v1/signer/access-code", headers=auth,
                                json={"code": f"wrong{attempt}"}), 401, "access_code_incorrect")
        assert data["attempts_left"] == 5 - attempt
    fifth = web.post("/api/v1/signer/access-code", headers=auth, json={"code": "wrong5"})
    problem(fifth, 429, "access_code_locked")
    assert int(fifth.headers["retry-after"]) == 900
    # the sixth try is refused even with the right code
    problem(web.post("/api/v1/signer/access-code", headers=auth, json={"code": CODE}),
            429, "access_code_locked")
    assert signer_row(rt, contract.id, ZHANG).access_granted_at is None
    clock.advance(minutes=14, seconds=59)
    problem(web.post("/api/v1/signer/access-code", headers=auth, json={"code": CODE}),
            429, "access_code_locked")
    clock.advance(seconds=2)
    assert web.post("/api/v1/signer/access-code", headers=auth,
                    json={"code": CODE}).status_code == 200
    with rt.uow() as session:
        failed = list(session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "signer.access_code_failed").order_by(AuditEvent.seq)))
        row = session.scalars(select(Signer).where(Signer.email == ZHANG)).one()
    assert [e.data["reason"] for e in failed] == ["wrong"] * 5 + ["locked"] * 2
    assert [e.data["locked"] for e in failed][:5] == [False] * 4 + [True]
    assert all(e.ip and e.user_agent for e in failed)
    assert row.otp_locked_until is None and row.access_code_failures == 0


def test_cookie_holders_enter_the_code_with_the_csrf_header(rt: Runtime) -> None:
    sent_contract(rt, signers=GUARDED)
    token = link_token(rt, ZHANG)
    web = client(rt)
    assert web.get(f"/s/{token}", follow_redirects=False).status_code == 303
    csrf = web.get("/api/v1/signer").json()["csrf_token"]
    problem(web.post("/api/v1/signer/access-code", json={"code": CODE}), 403, "csrf_failed")
    assert web.post("/api/v1/signer/access-code", headers={"X-CSRF-Token": csrf},
                    json={"code": CODE}).status_code == 200


def test_without_an_access_code_nothing_is_asked(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=GUARDED[1:])
    web = client(rt)
    auth = header(link_token(rt, "bob@example.com"))
    assert web.get("/api/v1/signer", headers=auth).json()["access_code_required"] is False
    assert web.post("/api/v1/signer/access-code", headers=auth,
                    json={"code": "anything"}).json() == {"access_granted": True}
    bob = signer_row(rt, contract.id, "bob@example.com")
    with rt.uow() as session:
        found = links.resolve(session, token=auth["X-Signer-Token"], now=utcnow())
        ctx = Ctx(actor=parties.signer_actor(bob))
        assert access.enter_code(session, ctx, access=found, code="x").error is None
    assert bob.access_granted_at is None  # nothing to grant, nothing recorded
