"""How signing ends without completing — decline, void, deadline expiry — on both databases: the
status, who is e-mailed what, the timeline, dead links, and no signing afterwards. Also parallel
routing, where everyone is invited at send and signs in any order."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.accounts.policy import Role
from econtract.app import create_app
from econtract.audit.models import AuditEvent
from econtract.context import utcnow
from econtract.contracts import service as contracts
from econtract.contracts.models import Contract
from econtract.errors import InvalidTransition, PermissionDenied
from econtract.parties import reminders
from econtract.parties.models import SignerLink
from econtract.runtime import Runtime
from tests.conftest import FakeClock
from tests.contracts.test_api import api_key
from tests.factories import add_user, create_contract, owner, user_ctx
from tests.parties.test_links import TWO, body, deliver, header, inbox, link_token
from tests.parties.test_otp import problem
from tests.parties.test_reminders import send
from tests.parties.test_sign import PINS, SIGNERS, sent_contract, sign_as, signer_row

OWNER, ZHANG, BOB, WANG = "owner@acme.test", "zhang@example.com", "bob@example.com", \
    "wang@example.com"
EVERYONE = (OWNER, ZHANG, BOB, WANG, "cc@example.com")


ROUTINE = ("请签署", "econtract 验证码", "欢迎使用")
"""Subjects of invitations, codes and welcomes: not what these tests are about."""


def subjects(rt: Runtime, clock: Callable[[], datetime] = utcnow) -> dict[str, list[str]]:
    """Every address's e-mail subjects, in English, routine ones left out (delivered first,
    as of ``clock``)."""
    deliver(rt, clock)
    return {address: [str(m["Subject"]).split(" / ")[1].split(":")[0]
                      for m in inbox(rt, address) if not str(m["Subject"]).startswith(ROUTINE)]
            for address in EVERYONE}


def kinds(rt: Runtime, contract_id: uuid.UUID) -> list[str]:
    with rt.uow() as session:
        events = contracts.timeline(session, user_ctx(owner(rt)), contract_id=contract_id,
                                    record_view=False)
    return [e.kind for e in events]


def status(rt: Runtime, contract_id: uuid.UUID) -> str:
    with rt.uow() as session:
        return session.get_one(Contract, contract_id).status


def signing_refused(rt: Runtime, web: TestClient, contract_id: uuid.UUID, email: str,
                    token: str) -> None:
    """The old link is dead for every signer route, and the service refuses to sign."""
    problem(web.get("/api/v1/signer", headers=header(token)), 410, "link_gone")
    problem(web.post("/api/v1/signer/sign", headers=header(token),
                     json={"pin": PINS[email], "consent": True}), 410, "link_gone")
    with pytest.raises((InvalidTransition, PermissionDenied)):
        sign_as(rt, contract_id, email)


def all_links_revoked(rt: Runtime, contract_id: uuid.UUID) -> bool:
    with rt.uow() as session:
        rows = list(session.scalars(select(SignerLink)
                                    .where(SignerLink.contract_id == contract_id)))
    return bool(rows) and all(r.revoked_at is not None for r in rows)


# --- decline -------------------------------------------------------------------------------

def test_decline_ends_signing_and_tells_the_owner_and_the_signers_involved(rt: Runtime) -> None:
    contract = sent_contract(rt)  # three sequential signers
    zhang_token = link_token(rt, ZHANG)
    assert sign_as(rt, contract.id, ZHANG).error is None
    bob_token = link_token(rt, BOB)
    web = TestClient(create_app(rt), base_url="http://testserver")
    declined = web.post("/api/v1/signer/decline", headers=header(bob_token),
                        json={"reason": "租金有误 / wrong rent"})
    assert declined.json() == {"signer_status": "declined", "contract_status": "declined"}

    assert status(rt, contract.id) == "declined"
    mail = subjects(rt)
    assert mail == {OWNER: ["Contract declined"], ZHANG: ["Contract declined"], BOB: [],
                    WANG: [], "cc@example.com": []}  # wang was never invited
    owner_mail = body(inbox(rt, OWNER)[-1])
    assert "租金有误 / wrong rent" in owner_mail and "Bob Lee" in owner_mail
    zhang_mail = body(inbox(rt, ZHANG)[-1])
    assert "Bob Lee" in zhang_mail and "wrong rent" not in zhang_mail  # the reason is private
    assert kinds(rt, contract.id)[-2:] == ["signer.declined", "contract.declined"]
    signing_refused(rt, web, contract.id, BOB, bob_token)
    problem(web.get("/api/v1/signer", headers=header(zhang_token)), 410, "link_gone")
    with pytest.raises(InvalidTransition):
        sign_as(rt, contract.id, WANG)
    # reminders stop: the sweep forgets a contract that is no longer out for signing
    rt.sweep(utcnow() + timedelta(days=30))
    with rt.uow() as session:
        assert session.get_one(Contract, contract.id).next_reminder_at is None


# --- void ----------------------------------------------------------------------------------

def test_void_while_signing_tells_everyone_involved_and_kills_the_links(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=[
        {**SIGNERS[0], "order": 1}, {**SIGNERS[1], "order": 1}, {**SIGNERS[2], "order": 2},
        {"name": "Copy", "email": "cc@example.com", "order": 3, "role": "cc"}])
    tokens = {ZHANG: link_token(rt, ZHANG), BOB: link_token(rt, BOB)}
    assert sign_as(rt, contract.id, ZHANG).error is None
    manager = add_user(rt, email="manager@acme.test", role=Role.MANAGER)
    web = TestClient(create_app(rt), base_url="http://testserver")
    voided = web.post(f"/api/v1/contracts/{contract.id}/void", headers=api_key(rt, manager),
                      json={"reason": "对方主体变更"})
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert voided.json()["next_reminder_at"] is None

    mail = subjects(rt)
    # zhang signed, bob was invited; wang (a later group) and the copy recipient never heard
    # of it; the owner is told because someone else voided
    assert mail == {OWNER: ["Contract voided"], ZHANG: ["Contract voided"],
                    BOB: ["Contract voided"], WANG: [], "cc@example.com": []}
    assert "对方主体变更" in body(inbox(rt, BOB)[-1])
    assert f"/contracts/{contract.id}" in body(inbox(rt, OWNER)[-1])
    assert "/contracts/" not in body(inbox(rt, BOB)[-1])  # signers have no account
    with rt.uow() as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.contract_id == contract.id, AuditEvent.kind == "contract.voided")).one()
    assert event.data["reason"] == "对方主体变更" and event.actor_label == "manager@acme.test"
    assert all_links_revoked(rt, contract.id)
    signing_refused(rt, web, contract.id, BOB, tokens[BOB])
    problem(web.get("/api/v1/signer", headers=header(tokens[ZHANG])), 410, "link_gone")


def test_void_by_the_owner_of_a_draft_or_a_declined_contract_sends_nothing(
        rt: Runtime) -> None:
    draft = create_contract(rt, owner(rt))
    declined = sent_contract(rt, signers=TWO)
    web = TestClient(create_app(rt), base_url="http://testserver")
    assert web.post("/api/v1/signer/decline", headers=header(link_token(rt, ZHANG)),
                    json={"reason": "no"}).status_code == 200
    before = subjects(rt)
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        for contract in (draft, declined):
            contracts.void(session, ctx, contract_id=contract.id, reason="cleanup")
    assert subjects(rt) == before  # nobody new to tell: the decline already ended signing
    assert status(rt, draft.id) == status(rt, declined.id) == "voided"


# --- deadline ------------------------------------------------------------------------------

def test_deadline_expiry(rt: Runtime) -> None:
    clock = FakeClock(utcnow().replace(microsecond=0))
    deadline = clock.now + timedelta(days=2)
    contract = send(rt, clock, signers=TWO, sign_deadline=deadline.isoformat(),
                    reminder_interval_hours=24, reminder_max=5)
    token = link_token(rt, ZHANG)
    assert rt.sweep(deadline - timedelta(minutes=1)).expired == []
    assert status(rt, contract.id) == "sent"
    late = user_ctx(owner(rt), FakeClock(deadline))
    with pytest.raises(InvalidTransition) as refused, rt.uow() as session:
        reminders.remind(session, late, contract_id=contract.id)  # before the sweep expires it
    assert refused.value.code == "deadline_passed"
    report = rt.sweep(deadline)
    assert report.expired == [contract.id]
    assert contract.id not in report.reminded  # expired first: no reminder at the deadline
    with rt.uow() as session:
        expired = session.get_one(Contract, contract.id)
        assert expired.status == "expired" and expired.next_reminder_at is None
    assert rt.sweep(deadline + timedelta(days=1)).expired == []  # once only

    clock.now = deadline
    mail = subjects(rt, clock)
    # the reminder of day one, then the expiry notice; bob's turn never came
    assert mail == {OWNER: ["Contract expired"], ZHANG: ["Reminder, please sign",
                                                         "Contract expired"],
                    BOB: [], WANG: [], "cc@example.com": []}
    assert deadline.strftime("%Y-%m-%d %H:%M UTC") in body(inbox(rt, ZHANG)[-1])
    with rt.uow() as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.contract_id == contract.id, AuditEvent.kind == "contract.expired")).one()
    assert event.actor_kind == "system" and event.occurred_at == deadline
    assert event.data["from"] == "sent" and event.data["to"] == "expired"
    assert all_links_revoked(rt, contract.id)
    web = TestClient(create_app(rt), base_url="http://testserver")
    signing_refused(rt, web, contract.id, ZHANG, token)


def test_signed_and_pending_signers_both_hear_of_the_expiry(rt: Runtime) -> None:
    clock = FakeClock(utcnow().replace(microsecond=0))
    deadline = clock.now + timedelta(hours=6)
    contract = send(rt, clock, signers=TWO, routing="parallel",
                    sign_deadline=deadline.isoformat())
    assert sign_as(rt, contract.id, BOB).error is None
    assert rt.sweep(deadline).expired == [contract.id]
    clock.now = deadline
    mail = subjects(rt, clock)
    assert mail[ZHANG] == mail[BOB] == mail[OWNER] == ["Contract expired"]


# --- parallel routing ----------------------------------------------------------------------

def test_parallel_routing_invites_everyone_at_send_and_any_order_completes(
        rt: Runtime) -> None:
    clock = FakeClock(utcnow().replace(microsecond=0))
    contract = send(rt, clock, signers=SIGNERS, routing="parallel", reminder_interval_hours=1)
    assert [signer_row(rt, contract.id, str(s["email"])).status for s in SIGNERS] == [
        "invited"] * 3
    for signer in SIGNERS:
        link_token(rt, str(signer["email"]))  # each has an invitation now
    # everyone pending is reminded together
    assert rt.sweep(clock.now + timedelta(hours=1)).reminded == {contract.id: 3}
    for email in (WANG, ZHANG, BOB):  # the reverse of the order numbers
        assert sign_as(rt, contract.id, email).error is None
        assert status(rt, contract.id) == "signing"  # until the seal job has run
    deliver(rt)  # the seal job
    assert status(rt, contract.id) == "completed"
    assert kinds(rt, contract.id).count("signer.signed") == 3
