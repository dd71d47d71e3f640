"""Validity tracking with a controlled clock (acceptance 5), on both databases: the renewal
reminder goes to the owner once, the configured number of days before the expiry date, and the
contract turns ``lapsed`` after it (the owner told, the timeline showing it); the sweep is a
periodic task of every worker and part of ``econtract sweep``; admins set the number of days."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.accounts.models import Organisation
from econtract.accounts.policy import Role
from econtract.app import create_app
from econtract.audit.events import EventKind
from econtract.contracts import service as contracts
from econtract.contracts import validity
from econtract.contracts.models import Contract
from econtract.runtime import SWEEP_TASK, VALIDITY_TASK, Runtime
from tests.contracts.test_api import api_key
from tests.factories import add_user, create_contract, force_status, owner, user_ctx
from tests.parties.test_links import body, deliver, inbox
from tests.parties.test_reminders import cli
from tests.parties.test_sign import sent_contract, sign_as
from tests.web.test_pages import login

OWNER = "owner@acme.test"
EXPIRY = date(2027, 3, 1)


def at(day: date, hour: int = 9) -> datetime:
    """``hour`` o'clock UTC on ``day`` (17:00 in China for the default)."""
    return datetime.combine(day, time(hour), tzinfo=UTC)


def completed(rt: Runtime, expiry: date = EXPIRY, **meta: object) -> uuid.UUID:
    meta.setdefault("effective_date", "2027-01-01")
    contract = create_contract(rt, owner(rt), expiry_date=expiry.isoformat(), **meta)
    with rt.uow() as session:
        force_status(session, contract.id, "completed")
    return contract.id


def later() -> datetime:
    """The worker's clock: past every time the tests sweep at, so queued e-mails are due."""
    return datetime(2030, 1, 1, tzinfo=UTC)


def renewal_mails(rt: Runtime) -> list[str]:
    deliver(rt, later)
    return [body(m) for m in inbox(rt, OWNER) if "expires soon" in str(m["Subject"])]


def status_of(rt: Runtime, contract_id: uuid.UUID) -> str:
    with rt.uow() as session:
        return session.get_one(Contract, contract_id).status


def set_days(rt: Runtime, days: int) -> None:
    with rt.uow() as session:
        for org in session.scalars(select(Organisation)):
            org.renewal_reminder_days = days


def test_reminder_once_at_the_configured_days_then_lapsed(rt: Runtime) -> None:
    contract_id = completed(rt)
    report = rt.validity_sweep(at(EXPIRY - timedelta(days=31)))
    assert report.renewal_reminded == [] and renewal_mails(rt) == []

    report = rt.validity_sweep(at(EXPIRY - timedelta(days=30)))
    assert report.renewal_reminded == [contract_id] and report.lapsed == []
    mails = renewal_mails(rt)
    assert len(mails) == 1
    assert "2027-03-01" in mails[0] and "还有 30 天到期" in mails[0]
    assert "expires in 30 days" in mails[0]
    assert f"http://testserver/contracts/{contract_id}" in mails[0]

    for days_before in (29, 1, 0):  # once per contract
        assert rt.validity_sweep(at(EXPIRY - timedelta(days=days_before))).renewal_reminded == []
    assert len(renewal_mails(rt)) == 1
    assert status_of(rt, contract_id) == "completed"

    # Valid through its expiry date in China (UTC+8): 23:59 there is 15:59 UTC ...
    assert rt.validity_sweep(at(EXPIRY, 15)).lapsed == []
    assert status_of(rt, contract_id) == "completed"
    # ... and 00:30 the next day there is 16:30 UTC on the expiry date.
    lapse_time = at(EXPIRY, 16).replace(minute=30)
    assert rt.validity_sweep(lapse_time).lapsed == [contract_id]
    assert status_of(rt, contract_id) == "lapsed"
    assert rt.validity_sweep(at(EXPIRY + timedelta(days=2))).lapsed == []  # once

    deliver(rt, later)
    lapsed = [m for m in inbox(rt, OWNER) if "Contract lapsed" in str(m["Subject"])]
    assert len(lapsed) == 1 and "2027-03-01" in body(lapsed[0]) and "已失效" in body(lapsed[0])
    with rt.uow() as session:
        events = contracts.timeline(session, user_ctx(owner(rt)), contract_id=contract_id,
                                    record_view=False)
        kinds = [e.kind for e in events]
        assert kinds.count(EventKind.CONTRACT_RENEWAL_REMINDED) == 1
        assert kinds.count(EventKind.CONTRACT_LAPSED) == 1
        lapse_event = next(e for e in events if e.kind == EventKind.CONTRACT_LAPSED)
        assert lapse_event.data == {"from": "completed", "to": "lapsed",
                                    "expiry_date": "2027-03-01"}
        assert lapse_event.occurred_at == lapse_time
        assert lapse_event.actor_label == "validity sweep"
        reminded = next(e for e in events if e.kind == EventKind.CONTRACT_RENEWAL_REMINDED)
        assert reminded.data["days_left"] == 30
        contract = session.get_one(Contract, contract_id)
        assert contract.renewal_reminded_at == at(EXPIRY - timedelta(days=30))
    client = TestClient(create_app(rt))
    auth = api_key(rt, owner(rt))
    timeline = client.get(f"/api/v1/contracts/{contract_id}/audit", headers=auth).json()
    assert "contract.lapsed" in [e["kind"] for e in timeline]
    with TestClient(create_app(rt)) as browser:
        assert login(browser).status_code == 303
        page = browser.get(f"/contracts/{contract_id}").text
    assert "expires on 2027-03-01, 30 days left" in page and "Lapsed" in page


def test_zero_days_turns_reminders_off_but_contracts_still_lapse(rt: Runtime) -> None:
    set_days(rt, 0)
    contract_id = completed(rt)
    for days_before in (30, 10, 0):
        assert rt.validity_sweep(at(EXPIRY - timedelta(days=days_before))).renewal_reminded == []
    assert renewal_mails(rt) == []
    assert rt.validity_sweep(at(EXPIRY + timedelta(days=1))).lapsed == [contract_id]


def test_only_completed_contracts_and_each_orgs_window(rt: Runtime) -> None:
    set_days(rt, 7)
    soon = completed(rt, title="Soon")
    draft = create_contract(rt, owner(rt), expiry_date=EXPIRY.isoformat())
    expired = completed(rt, title="Expired unsigned")
    with rt.uow() as session:
        force_status(session, expired, "expired")
    assert rt.validity_sweep(at(EXPIRY - timedelta(days=8))).renewal_reminded == []
    assert rt.validity_sweep(at(EXPIRY - timedelta(days=7))).renewal_reminded == [soon]
    report = rt.validity_sweep(at(EXPIRY + timedelta(days=5)))
    assert report.lapsed == [soon]
    assert status_of(rt, draft.id) == "draft" and status_of(rt, expired) == "expired"


def test_completed_inside_the_window_is_reminded_with_the_days_left(rt: Runtime) -> None:
    contract_id = completed(rt)
    report = rt.validity_sweep(at(EXPIRY - timedelta(days=3)))
    assert report.renewal_reminded == [contract_id]
    mails = renewal_mails(rt)
    assert len(mails) == 1 and "还有 3 天到期" in mails[0] and "expires in 3 days" in mails[0]


def test_batches_and_a_missing_expiry_date(rt: Runtime) -> None:
    ids = [completed(rt, title=f"C{i}") for i in range(3)]
    no_expiry = create_contract(rt, owner(rt), expiry_date=None)
    ctx = user_ctx(owner(rt))
    with rt.uow() as session:
        force_status(session, no_expiry.id, "completed")
        report = validity.sweep(session, ctx, now=at(EXPIRY + timedelta(days=1)), batch=2)
    assert len(report.lapsed) == 2 and report.full
    total = rt.validity_sweep(at(EXPIRY + timedelta(days=1)))
    assert len(total.lapsed) == 1 and not total.full
    assert {status_of(rt, i) for i in ids} == {"lapsed"}
    assert status_of(rt, no_expiry.id) == "completed"


def test_a_really_signed_contract_lapses(rt: Runtime) -> None:
    contract = sent_contract(rt, signers=[{"name": "张三", "email": "zhang@example.com",
                                           "order": 1}])
    assert sign_as(rt, contract.id, "zhang@example.com").error is None
    deliver(rt)  # the seal job completes it
    assert status_of(rt, contract.id) == "completed"
    expiry = date(2027, 12, 31)  # contract_meta's
    assert rt.validity_sweep(at(expiry - timedelta(days=30))).renewal_reminded == [contract.id]
    assert rt.validity_sweep(at(expiry + timedelta(days=1))).lapsed == [contract.id]
    assert status_of(rt, contract.id) == "lapsed"


def test_the_worker_runs_the_validity_sweep_and_so_does_the_cli(rt: Runtime) -> None:
    tasks = {task.name: task for task in rt.worker()._periodic}
    assert {SWEEP_TASK, VALIDITY_TASK} <= set(tasks)
    assert tasks[VALIDITY_TASK].every_seconds == rt.settings.sweep_seconds
    contract_id = completed(rt, expiry=date(2020, 1, 1), effective_date="2019-01-01")
    code, out = cli(rt, "sweep")
    assert code == 0, out
    assert "lapsed 1 contract(s)" in out and f"lapsed {contract_id}" in out
    assert status_of(rt, contract_id) == "lapsed"
    tasks[VALIDITY_TASK].run(datetime.now(UTC))  # nothing more to do, no error


def test_admins_set_the_renewal_days_through_the_api(rt: Runtime) -> None:
    client = TestClient(create_app(rt))
    auth = api_key(rt, owner(rt))
    got = client.get("/api/v1/organisation/reminders", headers=auth).json()
    assert got["renewal_reminder_days"] == 30
    changed = client.patch("/api/v1/organisation/reminders", headers=auth,
                           json={"renewal_reminder_days": 60})
    assert changed.status_code == 200 and changed.json()["renewal_reminder_days"] == 60
    assert client.patch("/api/v1/organisation/reminders", headers=auth,
                        json={"renewal_reminder_days": 366}).status_code == 422
    member = api_key(rt, add_user(rt, email="member@acme.test", role=Role.MEMBER))
    assert client.patch("/api/v1/organisation/reminders", headers=member,
                        json={"renewal_reminder_days": 5}).status_code == 403
    set_days_back = client.patch("/api/v1/organisation/reminders", headers=auth,
                                 json={"renewal_reminder_days": 0})
    assert set_days_back.json()["renewal_reminder_days"] == 0


def test_two_sweepers_lapse_a_contract_once(rt: Runtime) -> None:
    """On PostgreSQL a sweeper skips rows another holds (SKIP LOCKED); on SQLite, BEGIN IMMEDIATE
    serialises the sweepers. Either way the second one finds nothing left to do."""
    contract_id = completed(rt)
    lapse_at = at(EXPIRY + timedelta(days=1))
    if rt.settings.resolved_database_url.startswith("postgresql"):
        holder = rt.session_factory()
        try:
            holder.execute(select(Contract).where(Contract.id == contract_id).with_for_update())
            assert rt.validity_sweep(lapse_at).lapsed == []  # skipped, not waited for
        finally:
            holder.rollback()
            holder.close()
    assert rt.validity_sweep(lapse_at).lapsed == [contract_id]
    assert rt.validity_sweep(lapse_at).lapsed == []


@pytest.mark.parametrize("now, expected", [
    (datetime(2027, 2, 28, 15, 59, tzinfo=UTC), date(2027, 2, 28)),
    (datetime(2027, 2, 28, 16, 0, tzinfo=UTC), date(2027, 3, 1)),
])
def test_calendar_days_are_china_days(now: datetime, expected: date) -> None:
    assert validity.today(now) == expected
