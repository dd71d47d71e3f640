"""The hash chain detects edited, deleted, inserted and reordered events — on both databases."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import delete, select, update

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.runtime import Runtime
from tests.factories import create_contract, owner, system_ctx, user_ctx


def _events(rt: Runtime) -> list[AuditEvent]:
    with rt.uow() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _verify(rt: Runtime) -> audit.ChainReport:
    with rt.uow() as session:
        return audit.verify_chains(session)


@pytest.fixture
def trail(rt: Runtime) -> list[AuditEvent]:
    create_contract(rt, owner(rt))
    create_contract(rt, owner(rt), title="Second")
    events = _events(rt)
    assert len(events) >= 8
    assert _verify(rt).ok
    return events


def test_events_carry_actor_ip_agent_time_and_link(rt: Runtime, trail: list[AuditEvent]) -> None:
    created = [e for e in trail if e.kind == EventKind.CONTRACT_CREATED]
    assert created and created[0].actor_label == "owner@acme.test"
    assert created[0].ip == "203.0.113.7" and created[0].user_agent == "pytest"
    assert created[0].occurred_at.tzinfo is not None
    by_chain: dict[str, list[AuditEvent]] = {}
    for event in trail:
        by_chain.setdefault(event.chain, []).append(event)
    for events in by_chain.values():
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash and after.seq == before.seq + 1


def test_edited_event_is_named(rt: Runtime, trail: list[AuditEvent]) -> None:
    victim = trail[4]
    with rt.uow() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == victim.id)
                        .values(actor_label="mallory@evil.test"))
    report = _verify(rt)
    assert report.broken is not None and report.broken.event_id == victim.id
    assert "content changed" in report.broken.reason


def test_edited_data_is_named(rt: Runtime, trail: list[AuditEvent]) -> None:
    victim = next(e for e in trail if e.kind == EventKind.CONTRACT_CREATED)
    with rt.uow() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == victim.id)
                        .values(data={**victim.data, "title": "forged"}))
    assert _verify(rt).broken.event_id == victim.id  # type: ignore[union-attr]


def test_deleted_event_is_named(rt: Runtime, trail: list[AuditEvent]) -> None:
    victim = trail[3]
    with rt.uow() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id == victim.id))
    report = _verify(rt)
    assert report.broken is not None
    assert report.broken.chain == victim.chain and report.broken.seq == victim.seq + 1


def test_deleted_newest_event_is_detected(rt: Runtime, trail: list[AuditEvent]) -> None:
    newest = trail[-1]
    with rt.uow() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id == newest.id))
    report = _verify(rt)
    assert report.broken is not None and "head mismatch" in report.broken.reason


def test_reordered_events_are_named(rt: Runtime, trail: list[AuditEvent]) -> None:
    chain = [e for e in trail if e.chain == trail[-1].chain]
    first, second = chain[2], chain[3]
    with rt.uow() as session:  # swap their places in the sequence
        session.execute(update(AuditEvent).where(AuditEvent.id == first.id).values(seq=-1))
        session.execute(update(AuditEvent).where(AuditEvent.id == second.id).values(seq=first.seq))
        session.execute(update(AuditEvent).where(AuditEvent.id == first.id)
                        .values(seq=second.seq))
    report = _verify(rt)
    assert report.broken is not None and report.broken.event_id == second.id


def test_concurrent_appends_keep_one_chain(rt: Runtime) -> None:
    user = owner(rt)
    errors: list[BaseException] = []

    def append(n: int) -> None:
        try:
            for i in range(10):
                with rt.uow() as session:
                    audit.record(session, user_ctx(user), EventKind.CONTRACT_VIEWED,
                                 data={"thread": n, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = _verify(rt)
    assert report.ok, report.broken
    assert report.events >= 40


def test_system_chain_for_events_without_org(rt: Runtime) -> None:
    with rt.uow() as session:
        event = audit.record(session, system_ctx(), EventKind.LOGIN_FAILED,
                             data={"email": "nobody@example.com"})
    assert event.chain == audit.SYSTEM_CHAIN
    assert _verify(rt).ok
