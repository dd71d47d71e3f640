"""E-mail one-time codes through the signer API with a controlled clock: six digits, stored
hashed, five minutes, once; five wrong tries lock for fifteen minutes; sends are rate-limited."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract.app import create_app
from econtract.audit.models import AuditEvent
from econtract.context import utcnow
from econtract.jobs.models import OutboxJob
from econtract.parties import links
from econtract.parties.models import Signer, SignerOtp
from econtract.runtime import Runtime
from tests.conftest import FakeClock
from tests.parties.test_links import (
    CODE,
    TWO,
    client,
    deliver,
    header,
    inbox,
    link_token,
    mailed_code,
)
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


# --- by SMS, and the limit per client address ------------------------------------------------

PHONE = "+8613812345678"
BY_SMS = [{"name": "张三", "email": ZHANG, "order": 1, "phone": "138 1234 5678",
           "identity_method": "sms_otp"}]


def texts(rt: Runtime, phone: str, clock: FakeClock | None = None) -> list[dict[str, Any]]:
    """The messages the ``log`` SMS provider wrote for ``phone``, oldest first."""
    deliver(rt, clock or utcnow)
    files = sorted(rt.settings.sms_outbox_dir.glob("job-*.json"),
                   key=lambda p: int(p.stem.split("-")[1]))
    found = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    return [m for m in found if m["to"] == phone]


def texted_code(rt: Runtime, phone: str, clock: FakeClock | None = None) -> str:
    messages = texts(rt, phone, clock)
    assert messages, f"no SMS for {phone}"
    found = CODE.search(messages[-1]["text"])
    assert found is not None
    return found.group(1)


def test_a_code_by_sms_through_the_outbox(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=BY_SMS)
    clock = FakeClock(utcnow())
    web, auth = client(rt, clock), header(link_token(rt, ZHANG))
    assert web.get("/api/v1/signer", headers=auth).json()["identity_method"] == "sms_otp"
    sent = web.post("/api/v1/signer/otp", headers=auth)
    assert sent.status_code == 200, sent.text
    assert sent.json()["channel"] == "sms" and sent.json()["sent_to"] == "+86 138****5678"
    code = texted_code(rt, PHONE, clock)
    message = texts(rt, PHONE)[-1]["text"]
    assert "验证码" in message and "code" in message and "Lease" not in message
    assert not [m for m in inbox(rt, ZHANG) if "Verification code" in str(m["Subject"])]
    with rt.uow() as session:
        row = session.scalars(select(SignerOtp)).one()
        assert row.channel == "sms" and row.ip == "testclient"
        job = session.scalars(select(OutboxJob).where(OutboxJob.kind == "sms.send")).one()
        assert job.status == "done" and job.payload == {"delivered": True, "to": PHONE}
    verified = web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code})
    assert verified.status_code == 200
    assert verified.json()["method"] == "sms_otp"
    problem(web.post("/api/v1/signer/otp/verify", headers=auth, json={"code": code}),
            401, "otp_expired")  # once
    signer = signer_row(rt, contract.id, ZHANG)
    assert signer.identity_method == "sms_otp" and signer.status == "verified"
    with rt.uow() as session:
        events = {e.kind: e for e in session.scalars(select(AuditEvent))}
    assert events["signer.otp_sent"].data["channel"] == "sms"
    assert events["signer.otp_sent"].data["to"] == PHONE
    assert events["signer.identity_verified"].data["method"] == "sms_otp"
    assert code not in str(events["signer.otp_sent"].data)


def test_with_sms_off_no_code_is_made(rt: Runtime) -> None:
    sent_contract(rt, signers=BY_SMS)
    token = link_token(rt, ZHANG)
    off = Runtime.open(rt.settings.model_copy(update={"sms_backend": "none"}))
    try:
        response = client(off).post("/api/v1/signer/otp", headers=header(token))
    finally:
        off.close()
    problem(response, 502, "sms_unavailable")
    with rt.uow() as session:
        assert session.scalars(select(SignerOtp)).all() == []


def test_sends_are_limited_per_client_address(rt: Runtime) -> None:
    people = [{"name": f"Signer {n}", "email": f"s{n}@example.com", "order": 1}
              for n in range(3)]
    sent_contract(rt, signers=people)
    clock = FakeClock(utcnow())
    tokens = [header(link_token(rt, str(p["email"]))) for p in people]
    web = client(rt, clock)
    for _ in range(5):  # ten codes from one address, within each signer's own limit
        clock.advance(seconds=61)
        for auth in tokens[:2]:
            assert web.post("/api/v1/signer/otp", headers=auth).status_code == 200
    refused = web.post("/api/v1/signer/otp", headers=tokens[2])
    data = problem(refused, 429, "otp_rate_limited")
    # the oldest of the ten was 4 × 61 s before this refusal
    assert data["scope"] == "ip" and int(refused.headers["retry-after"]) == 3600 - 61 * 4
    elsewhere = TestClient(create_app(rt, clock=clock), client=("203.0.113.7", 40000))
    assert elsewhere.post("/api/v1/signer/otp", headers=tokens[2]).status_code == 200
    clock.advance(seconds=int(refused.headers["retry-after"]))
    assert web.post("/api/v1/signer/otp", headers=tokens[0]).status_code == 200
    with rt.uow() as session:
        limited = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "signer.otp_rate_limited")).one()
        by_ip = dict(session.execute(
            select(SignerOtp.ip, func.count()).group_by(SignerOtp.ip)).all())
    assert limited.ip == "testclient" and limited.data["scope"] == "ip"
    assert by_ip == {"testclient": 11, "203.0.113.7": 1}
