"""Reminders with a controlled clock (both databases): automatic reminders at the configured
interval up to the maximum and none after signing, organisation defaults, sequential groups, the
sweep's SKIP LOCKED claim, "remind now" (API, web, CLI), the organisation's defaults API, and the
worker's periodic hook that runs the sweep."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.accounts import service as accounts
from econtract.accounts.policy import Role
from econtract.app import create_app
from econtract.audit.models import AuditEvent
from econtract.cli import main
from econtract.context import Actor, Ctx, utcnow
from econtract.contracts import sending
from econtract.contracts.models import Contract
from econtract.db import is_postgres
from econtract.jobs import Worker
from econtract.jobs.models import OutboxJob
from econtract.jobs.worker import PeriodicTask
from econtract.parties import reminders
from econtract.runtime import SWEEP_TASK, Runtime
from tests.conftest import FakeClock
from tests.contracts.test_api import api_key
from tests.factories import add_org, add_user, create_contract, owner, system_ctx, user_ctx
from tests.parties.test_links import LINK, TWO, body, deliver, header, inbox
from tests.parties.test_otp import problem
from tests.parties.test_sign import SIGNERS, sign_as
from tests.web.test_pages import csrf, login

ZHANG, BOB, WANG = "zhang@example.com", "bob@example.com", "wang@example.com"


# --- helpers -------------------------------------------------------------------------------

def start_clock() -> FakeClock:
    """Real time to begin with (certificates and timestamps are real), then moved by hand."""
    return FakeClock(utcnow().replace(microsecond=0))


def send(rt: Runtime, clock: FakeClock, signers: list[dict[str, object]] = TWO,
         **meta: Any) -> Contract:
    """Create and send a contract as the owner, at the clock's time."""
    contract = create_contract(rt, owner(rt), clock=clock, signers=signers, **meta)
    with rt.uow() as session:
        return sending.send(session, user_ctx(owner(rt), clock), blobs=rt.blobs,
                            engine=rt.signing_engine(), contract_id=contract.id)


def row(rt: Runtime, contract_id: uuid.UUID) -> Contract:
    with rt.uow() as session:
        return session.get_one(Contract, contract_id)


def queued_reminders(rt: Runtime) -> list[str]:
    """Recipients of the reminder e-mails in the outbox (delivered or not), oldest first."""
    with rt.uow() as session:
        jobs = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send")
                               .order_by(OutboxJob.id))
        return [job.payload["to"][0] for job in jobs if "Reminder" in job.payload["subject"]]


def reminded_events(rt: Runtime, contract_id: uuid.UUID) -> list[dict[str, Any]]:
    with rt.uow() as session:
        return [e.data for e in session.scalars(
            select(AuditEvent).where(AuditEvent.contract_id == contract_id,
                                     AuditEvent.kind == "signer.reminded")
            .order_by(AuditEvent.seq))]


def reminder_mails(rt: Runtime, address: str) -> list[str]:
    """Bodies of the reminder .eml files written for ``address``."""
    return [body(m) for m in inbox(rt, address) if "Reminder" in str(m["Subject"])]


# --- automatic reminders -------------------------------------------------------------------

def test_reminders_at_the_interval_up_to_the_maximum(rt: Runtime) -> None:
    clock = start_clock()
    t0 = clock.now
    contract = send(rt, clock, reminder_interval_hours=24, reminder_max=2)
    sent = row(rt, contract.id)
    assert sent.next_reminder_at == t0 + timedelta(hours=24) and sent.reminders_sent == 0

    assert rt.sweep(t0 + timedelta(hours=23, minutes=59)).reminded == {}
    first = rt.sweep(t0 + timedelta(hours=24))
    assert first.reminded == {contract.id: 1}  # zhang only: bob's turn has not come
    assert row(rt, contract.id).next_reminder_at == t0 + timedelta(hours=48)
    assert rt.sweep(t0 + timedelta(hours=47)).reminded == {}
    assert rt.sweep(t0 + timedelta(hours=48)).reminded == {contract.id: 1}
    done = row(rt, contract.id)
    assert done.reminders_sent == 2 and done.next_reminder_at is None
    assert rt.sweep(t0 + timedelta(days=20)).reminded == {}  # the maximum is reached

    assert queued_reminders(rt) == [ZHANG, ZHANG]
    assert [(e["automatic"], e["reminder"]) for e in reminded_events(rt, contract.id)] == [
        (True, 1), (True, 2)]
    clock.advance(hours=48)
    deliver(rt, clock)
    mails = reminder_mails(rt, ZHANG)
    assert len(mails) == 2 and reminder_mails(rt, BOB) == []
    tokens = [LINK.search(text).group(1) for text in mails]  # type: ignore[union-attr]
    assert len(set(tokens)) == 2  # each reminder carries a fresh link, and each one works
    web = TestClient(create_app(rt, clock=clock), base_url="http://testserver")
    for token in tokens:
        me = web.get("/api/v1/signer", headers=header(token))
        assert me.status_code == 200 and me.json()["signer"]["email"] == ZHANG


def test_no_reminder_after_signing(rt: Runtime) -> None:
    clock = start_clock()
    contract = send(rt, clock, signers=[SIGNERS[0]], reminder_interval_hours=1, reminder_max=3)
    assert sign_as(rt, contract.id, ZHANG).error is None
    report = rt.sweep(clock.now + timedelta(hours=1))
    assert report.reminded == {} and row(rt, contract.id).next_reminder_at is None
    deliver(rt)  # the seal job completes it; nothing is ever due again
    assert row(rt, contract.id).status == "completed"
    assert rt.sweep(clock.now + timedelta(days=3)).reminded == {}
    assert queued_reminders(rt) == []


def test_organisation_defaults_when_the_contract_sets_none(rt: Runtime) -> None:
    with rt.uow() as session:
        org = accounts.first_org(session)
        assert org is not None and (org.reminder_interval_hours, org.reminder_max) == (72, 3)
        accounts.set_reminder_defaults(session, system_ctx(), org_id=org.id, interval_hours=5,
                                       reminder_max=1)
    clock = start_clock()
    contract = send(rt, clock)
    assert row(rt, contract.id).next_reminder_at == clock.now + timedelta(hours=5)
    assert rt.sweep(clock.now + timedelta(hours=5)).reminded == {contract.id: 1}
    assert row(rt, contract.id).next_reminder_at is None  # the organisation's maximum: 1
    # the contract's own values win over the organisation's
    own = send(rt, clock, reminder_interval_hours=2)
    assert row(rt, own.id).next_reminder_at == clock.now + timedelta(hours=2)


def test_reminder_max_zero_sends_none(rt: Runtime) -> None:
    clock = start_clock()
    contract = send(rt, clock, reminder_interval_hours=1, reminder_max=0)
    assert row(rt, contract.id).next_reminder_at is None
    for hours in (1, 2, 24, 24 * 20):
        assert rt.sweep(clock.now + timedelta(hours=hours)).reminded == {}
    assert queued_reminders(rt) == []


def test_sequential_groups_each_get_their_own_reminders(rt: Runtime) -> None:
    clock = start_clock()
    contract = send(rt, clock, reminder_interval_hours=10, reminder_max=1)
    assert rt.sweep(clock.now + timedelta(hours=10)).reminded == {contract.id: 1}
    assert queued_reminders(rt) == [ZHANG]
    assert row(rt, contract.id).next_reminder_at is None  # group 1 used its one reminder
    assert sign_as(rt, contract.id, ZHANG).error is None  # (real time) bob is invited now
    with rt.uow() as session:
        invited = session.scalars(select(AuditEvent).where(
            AuditEvent.contract_id == contract.id, AuditEvent.kind == "signer.invited")
            .order_by(AuditEvent.seq)).all()[-1]
    assert invited.data["email"] == BOB
    opened = row(rt, contract.id)
    assert opened.reminders_sent == 0  # counted afresh for the new group
    assert opened.next_reminder_at is not None
    due = opened.next_reminder_at  # (the real clock ticked between the two records)
    assert abs(due - (invited.occurred_at + timedelta(hours=10))) < timedelta(seconds=1)
    assert rt.sweep(due - timedelta(hours=1)).reminded == {}
    assert rt.sweep(due).reminded == {contract.id: 1}
    assert queued_reminders(rt) == [ZHANG, BOB]


def test_two_sweeps_send_once(rt: Runtime) -> None:
    clock = start_clock()
    contract = send(rt, clock, signers=[SIGNERS[0], {**SIGNERS[1], "order": 1}],
                    reminder_interval_hours=1, reminder_max=5)
    due = clock.now + timedelta(hours=1)
    ctx = Ctx(actor=Actor.system("sweep"), base_url=rt.settings.base_url)
    with rt.uow() as first:
        assert reminders.sweep(first, ctx, now=due).reminded == {contract.id: 2}
        if is_postgres(first):
            # A second sweeper while the first still holds its rows: it skips them.
            with rt.uow() as second:
                assert reminders.sweep(second, ctx, now=due).reminded == {}
    assert rt.sweep(due).reminded == {}  # and after the first committed: no longer due
    assert sorted(queued_reminders(rt)) == [BOB, ZHANG]


def test_sweep_batches_and_reports(rt: Runtime) -> None:
    clock = start_clock()
    ids = {send(rt, clock, signers=[SIGNERS[0]], reminder_interval_hours=1).id for _ in range(3)}
    ctx = Ctx(actor=Actor.system("sweep"), base_url=rt.settings.base_url)
    with rt.uow() as session:
        report = reminders.sweep(session, ctx, now=clock.now + timedelta(hours=1), batch=2)
    assert report.full and len(report.reminded) == 2
    rest = rt.sweep(clock.now + timedelta(hours=1))  # the runtime runs batches until done
    assert set(rest.reminded) | set(report.reminded) == ids and not rest.full


# --- remind now ----------------------------------------------------------------------------

def test_remind_now_through_the_api(rt: Runtime) -> None:
    clock = start_clock()
    t0 = clock.now
    contract = send(rt, clock, reminder_interval_hours=1, reminder_max=2)
    web = TestClient(create_app(rt, clock=clock))
    auth = api_key(rt, owner(rt))
    clock.advance(minutes=30)
    reminded = web.post(f"/api/v1/contracts/{contract.id}/remind", headers=auth)
    assert reminded.status_code == 200, reminded.text
    data = reminded.json()
    assert data["reminders_sent"] == 0  # not counted against the automatic maximum
    assert data["next_reminder_at"] is not None  # pushed back a full interval from now
    assert row(rt, contract.id).next_reminder_at == t0 + timedelta(minutes=90)
    assert queued_reminders(rt) == [ZHANG]
    assert reminded_events(rt, contract.id)[0]["automatic"] is False

    clock.advance(minutes=9)
    too_soon = problem(web.post(f"/api/v1/contracts/{contract.id}/remind", headers=auth),
                       409, "remind_too_soon")
    assert 0 < too_soon["retry_after"] <= 60
    clock.advance(minutes=1, seconds=1)
    assert web.post(f"/api/v1/contracts/{contract.id}/remind", headers=auth).status_code == 200
    assert queued_reminders(rt) == [ZHANG, ZHANG]
    # the automatic ones still come, a full interval after the last manual one
    assert row(rt, contract.id).next_reminder_at == clock.now + timedelta(hours=1)
    assert rt.sweep(clock.now + timedelta(minutes=59)).reminded == {}
    assert rt.sweep(clock.now + timedelta(minutes=60)).reminded == {contract.id: 1}


def test_remind_now_is_scoped_and_checked(rt: Runtime) -> None:
    clock = start_clock()
    contract = send(rt, clock)
    web = TestClient(create_app(rt, clock=clock))
    other = add_org(rt, name="Globex", email="boss@globex.test")
    problem(web.post(f"/api/v1/contracts/{contract.id}/remind", headers=api_key(rt, other)),
            404, "contract_not_found")
    viewer = add_user(rt, email="viewer@acme.test", role=Role.VIEWER)
    problem(web.post(f"/api/v1/contracts/{contract.id}/remind", headers=api_key(rt, viewer)),
            403, "permission_denied")
    member = add_user(rt, email="member@acme.test", role=Role.MEMBER)
    problem(web.post(f"/api/v1/contracts/{contract.id}/remind", headers=api_key(rt, member)),
            404, "contract_not_found")  # a member sees only their own contracts
    draft = create_contract(rt, owner(rt))
    auth = api_key(rt, owner(rt))
    problem(web.post(f"/api/v1/contracts/{draft.id}/remind", headers=auth),
            409, "invalid_transition")
    problem(web.post(f"/api/v1/contracts/{uuid.uuid4()}/remind", headers=auth),
            404, "contract_not_found")
    assert queued_reminders(rt) == []


def test_remind_now_button_on_the_contract_page(rt: Runtime) -> None:
    clock = start_clock()
    contract = send(rt, clock, reminder_interval_hours=12, reminder_max=2)
    draft = create_contract(rt, owner(rt))
    with TestClient(create_app(rt, clock=clock)) as web:
        assert login(web).status_code == 303
        assert "Remind now" not in web.get(f"/contracts/{draft.id}").text
        page = web.get(f"/contracts/{contract.id}").text
        assert "Remind now" in page and "Every 12 hours, at most 2" in page
        done = web.post(f"/contracts/{contract.id}/remind", data={"csrf_token": csrf(page)},
                        follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == f"/contracts/{contract.id}?reminded=1"
        shown = web.get(done.headers["location"]).text
        assert "Reminder sent to 1 signer(s)." in shown and "reminded by hand" in shown
        assert "Remind now" not in shown and "you can remind them again from" in shown
        again = web.post(f"/contracts/{contract.id}/remind", data={"csrf_token": csrf(page)})
        assert again.status_code == 409 and "reminded a few minutes ago" in again.text
        clock.advance(minutes=10)
        assert "Remind now" in web.get(f"/contracts/{contract.id}").text
        forged = web.post(f"/contracts/{contract.id}/remind", data={"csrf_token": "x"})
        assert forged.status_code == 403
        zh = web.get(f"/contracts/{contract.id}", headers={"Accept-Language": "zh-CN"}).text
        assert "立即提醒" in zh and "每 12 小时一次，最多 2 次" in zh
    assert queued_reminders(rt) == [ZHANG]


# --- organisation defaults, CLI ------------------------------------------------------------

def test_organisation_reminder_defaults_api(rt: Runtime) -> None:
    web = TestClient(create_app(rt))
    auth = api_key(rt, owner(rt))
    assert web.get("/api/v1/organisation/reminders", headers=auth).json() == {
        "reminder_interval_hours": 72, "reminder_max": 3, "renewal_reminder_days": 30}
    changed = web.patch("/api/v1/organisation/reminders", headers=auth,
                        json={"reminder_interval_hours": 24})
    assert changed.json() == {"reminder_interval_hours": 24, "reminder_max": 3,
                              "renewal_reminder_days": 30}
    problem(web.patch("/api/v1/organisation/reminders", headers=auth,
                      json={"reminder_max": 21}), 422, "validation_failed")
    manager = api_key(rt, add_user(rt, email="manager@acme.test", role=Role.MANAGER))
    assert web.get("/api/v1/organisation/reminders", headers=manager).status_code == 200
    problem(web.patch("/api/v1/organisation/reminders", headers=manager,
                      json={"reminder_max": 0}), 403, "permission_denied")
    other = api_key(rt, add_org(rt, name="Globex", email="boss@globex.test"))
    assert web.get("/api/v1/organisation/reminders", headers=other).json()[
        "reminder_interval_hours"] == 72  # each organisation has its own
    with rt.uow() as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "org.reminder_defaults_changed")).one()
    assert event.data["previous"] == {"reminder_interval_hours": 72, "reminder_max": 3}
    assert (event.data["reminder_interval_hours"], event.data["reminder_max"]) == (24, 3)


def cli(rt: Runtime, *args: str) -> tuple[int, str]:
    env = {"ECONTRACT_DATA_DIR": str(rt.settings.data_dir),
           "ECONTRACT_DATABASE_URL": rt.settings.resolved_database_url,
           "ECONTRACT_BASE_URL": rt.settings.base_url}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_sweep_and_org_set_reminders(rt: Runtime) -> None:
    code, out = cli(rt, "org", "set-reminders", "--interval-hours", "48", "--max", "1")
    assert code == 0 and "every 48 hours, at most 1" in out
    code, out = cli(rt, "org", "set-reminders", "--org", "Nope", "--max", "1")
    assert code == 1 and "error[org_not_found]" in out
    code, out = cli(rt, "org", "set-reminders", "--interval-hours", "0")
    assert code == 1 and "error[invalid_reminder_interval]" in out
    clock = FakeClock(utcnow() - timedelta(hours=2))  # sent two hours ago, due now
    contract = send(rt, clock, signers=[SIGNERS[0]], reminder_interval_hours=1)
    code, out = cli(rt, "sweep")
    assert code == 0, out
    assert "reminded 1 signer(s) on 1 contract(s)" in out and str(contract.id) in out
    code, out = cli(rt, "sweep")
    assert code == 0 and "reminded 0 signer(s)" in out


# --- the worker's periodic hook ------------------------------------------------------------

def test_the_runtime_registers_the_sweep_with_every_worker(rt: Runtime) -> None:
    worker = rt.worker()
    tasks = {task.name: task for task in worker._periodic}
    assert SWEEP_TASK in tasks
    assert tasks[SWEEP_TASK].every_seconds == rt.settings.sweep_seconds == 60


def test_periodic_tasks_run_when_due() -> None:
    calls: list[datetime] = []
    clock = FakeClock()
    worker = Worker(None, None, clock=clock,  # type: ignore[arg-type]
                    periodic=[PeriodicTask("t", 0.2, calls.append)])
    assert worker.run_periodic() == 1 and calls == [clock.now]  # due at start
    assert worker.run_periodic() == 0
    time.sleep(0.25)
    assert worker.run_periodic() == 1 and len(calls) == 2
    failing = Worker(None, None, periodic=[  # type: ignore[arg-type]
        PeriodicTask("boom", 60, lambda now: 1 / 0)])
    assert failing.run_periodic() == 1  # logged, and the loop goes on
    with pytest.raises(ValueError):
        Worker(None, None, periodic=[PeriodicTask("bad", 0, calls.append)])  # type: ignore[arg-type]


def test_worker_loop_sends_due_reminders(rt: Runtime) -> None:
    clock = FakeClock(utcnow() - timedelta(hours=2))
    contract = send(rt, clock, signers=[SIGNERS[0]], reminder_interval_hours=1)
    worker = rt.worker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,),
                              kwargs={"poll_seconds": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not reminder_mails(rt, ZHANG):
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=30)
    mails = reminder_mails(rt, ZHANG)  # swept, queued and delivered by the same loop
    assert len(mails) == 1 and re.search(r"/s/[A-Za-z0-9_-]{22,}", mails[0])
    assert row(rt, contract.id).reminders_sent == 1
