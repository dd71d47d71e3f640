"""E-mail one-time codes through the signer API with a controlled clock: six digits, stored
hashed, five minutes, once; five wrong tries lock for fifteen minutes; sends are rate-limited."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.audit.models import AuditEvent
from econtract.context import utcnow
from econtract.parties import links
from econtract.parties.models import Signer, SignerOtp
from econtract.runtime import Runtime
from tests.conftest import FakeClock
from tests.parties.test_links import TWO, client, header, link_token, mailed_code
from tests.parties.test_sign import sent_contract, signer_row

ZHANG = "zhang@example.com"


def setup(rt: Runtime) -> tuple[FakeClock, TestClient, dict[str, str]]:
    """A contract sent for real (signing needs real time), then a clock we can move."""
    sent_contract(rt, signers=TWO)
    clock = FakeClock(utcnow())
    token = link_token(rt, ZHANG)
    return clock, client(rt, clock), header(token)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    assert data["code"] == code, data
    assert response.headers["content-type"].startswith("application/problem+json")
    return data


def test_a_code_is_six_digits_stored_hashed_and_works_once(rt: Runtime) -> None:
    clock, web, auth = setup(rt)
    sent = web.post("/api/v1/signer/otp", headers=auth)
    assert sent.status_code == 200 and sent.json()["sent_to"] == ZHANG
    code = mailed_code(rt, ZHANG, clock)
    assert len(code) == 6 and code.isdigit()
    with rt.uow() as session:
        row = session.scalars(select(SignerOtp)).one()
        assert len(row.code_hash) == 64 and code not in row.code_hash
        assert (row.expires_at - row.created_at).total_seconds() == 300
    verified = web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code})
    assert verified.status_code == 200
    assert verified.json() == {"identity_verified": True, "method": "email_otp",
                               "signer_status": "verified"}
    problem(web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code}),
            401, "otp_expired")
    me = web.get("/api/v1/signer", headers=auth).json()
    assert me["identity_verified"] is True and me["signer"]["status"] == "verified"
    with rt.uow() as session:
        kinds = [e.kind for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "signer.identity_verified")).one()
        assert event.data["method"] == "email_otp" and event.ip and event.user_agent
    assert kinds.count("signer.otp_sent") == 1 and kinds.count("signer.otp_failed") == 1


def test_a_code_expires_after_five_minutes(rt: Runtime) -> None:
    clock, web, auth = setup(rt)
    web.post("/api/v1/signer/otp", headers=auth)
    code = mailed_code(rt, ZHANG, clock)
    clock.advance(minutes=5, seconds=1)
    problem(web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code}),
            401, "otp_expired")
    clock.advance(seconds=60)
    web.post("/api/v1/signer/otp", headers=auth)
    fresh = mailed_code(rt, ZHANG, clock)
    clock.advance(minutes=4, seconds=59)
    assert web.post("/api/v1/signer/otp/verify", headers=auth,
                    json={"code": fresh}).status_code == 200


def test_only_the_newest_code_works(rt: Runtime) -> None:
    clock, web, auth = setup(rt)
    web.post("/api/v1/signer/otp", headers=auth)
    old = mailed_code(rt, ZHANG, clock)
    clock.advance(seconds=61)
    web.post("/api/v1/signer/otp", headers=auth)
    new = mailed_code(rt, ZHANG, clock)
    if old != new:
        problem(web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": old}),
                401, "otp_incorrect")
    assert web.post("/api/v1/signer/otp/verify", headers=auth,
                    json={"code": new}).status_code == 200


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_five_wrong_codes_lock_for_fifteen_minutes(rt: Runtime) -> None:
    clock, web, auth = setup(rt)
    web.post("/api/v1/signer/otp", headers=auth)
    code = mailed_code(rt, ZHANG, clock)
    for attempt in range(1, 5):
        data = problem(web.post("/api/v1/signer/otp/verify", headers=auth,
                                json={"code": wrong(code)}), 401, "otp_incorrect")
        assert data["attempts_left"] == 5 - attempt
    fifth = web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": wrong(code)})
    problem(fifth, 429, "otp_locked")
    assert int(fifth.headers["retry-after"]) == 900
    # the sixth try is refused even with the right code, and no new code can be asked for
    problem(web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code}),
            429, "otp_locked")
    problem(web.post("/api/v1/signer/otp", headers=auth), 429, "otp_locked")
    assert signer_row(rt, contract_of(rt), ZHANG).status == "invited"  # not verified
    clock.advance(minutes=15, seconds=1)
    problem(web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code}),
            401, "otp_expired")  # the lock retired the code in flight
    web.post("/api/v1/signer/otp", headers=auth)
    assert web.post("/api/v1/signer/otp/verify", headers=auth,
                    json={"code": mailed_code(rt, ZHANG, clock)}).status_code == 200
    with rt.uow() as session:
        failed = list(session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "signer.otp_failed").order_by(AuditEvent.seq)))
        assert [e.data["reason"] for e in failed] == ["wrong"] * 5 + ["locked", "expired"]
        assert failed[4].data["locked"] is True
        assert all(e.ip and e.user_agent for e in failed)


def contract_of(rt: Runtime) -> Any:
    with rt.uow() as session:
        return session.scalars(select(Signer.contract_id).where(Signer.email == ZHANG)).one()


def test_sends_are_rate_limited(rt: Runtime) -> None:
    clock, web, auth = setup(rt)
    assert web.post("/api/v1/signer/otp", headers=auth).status_code == 200
    soon = web.post("/api/v1/signer/otp", headers=auth)
    problem(soon, 429, "otp_rate_limited")
    assert 1 <= int(soon.headers["retry-after"]) <= 60
    for _ in range(4):
        clock.advance(seconds=61)
        assert web.post("/api/v1/signer/otp", headers=auth).status_code == 200
    clock.advance(seconds=61)
    sixth = web.post("/api/v1/signer/otp", headers=auth)
    problem(sixth, 429, "otp_rate_limited")
    assert int(sixth.headers["retry-after"]) > 3000  # five an hour
    clock.advance(seconds=int(sixth.headers["retry-after"]))
    assert web.post("/api/v1/signer/otp", headers=auth).status_code == 200


def test_no_code_before_your_turn(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=TWO)
    bob = signer_row(rt, contract.id, "bob@example.com")
    with rt.uow() as session:  # a link made early (an integrator's embedded link, say)
        from econtract.contracts.models import Contract

        token = links.issue(session, signer=session.get_one(Signer, bob.id),
                            contract=session.get_one(Contract, contract.id), now=utcnow())
    web = client(rt)
    me = web.get("/api/v1/signer", headers=header(token)).json()
    assert me["your_turn"] is False and me["signer"]["status"] == "waiting"
    problem(web.post("/api/v1/signer/otp", headers=header(token)), 403, "not_your_turn")
    problem(web.get("/api/v1/signer/document", headers=header(token)), 403, "not_your_turn")
    problem(web.post("/api/v1/signer/otp/verify", headers=header(token),
                     json={"code": "123456"}), 403, "not_your_turn")
