from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from econtract.db import unit_of_work
from econtract.errors import ConfigurationError
from econtract.jobs import JobRegistry, enqueue
from econtract.jobs.models import OutboxJob

from .support import T0


def count_jobs(session_factory: sessionmaker[Session]) -> int:
    with unit_of_work(session_factory) as session:
        return session.scalar(select(func.count()).select_from(OutboxJob)) or 0


def test_enqueue_flushes_and_commits_with_the_caller(
        session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        job = enqueue(session, kind="demo", payload={"n": 1, "名": "合同"}, now=T0)
        assert job.id is not None  # flushed, so the id is known inside the transaction
    with unit_of_work(session_factory) as session:
        stored = session.get(OutboxJob, job.id)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.max_attempts) == ("pending", 0, 8)
        assert stored.payload == {"n": 1, "名": "合同"}
        assert stored.run_after == T0 and stored.created_at == T0
        assert stored.run_after.tzinfo is not None


def test_enqueue_rolls_back_with_the_caller(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), unit_of_work(session_factory) as session:
        enqueue(session, kind="demo", payload={}, now=T0)
        raise RuntimeError("the change that caused the job failed")
    assert count_jobs(session_factory) == 0


def test_dedupe_key_returns_the_existing_job(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        first = enqueue(session, kind="demo", payload={"v": 1}, now=T0, dedupe_key="k1")
        again = enqueue(session, kind="demo", payload={"v": 2}, now=T0, dedupe_key="k1")
        assert again is first
    with unit_of_work(session_factory) as session:
        later = enqueue(session, kind="demo", payload={"v": 3}, now=T0, dedupe_key="k1")
        other = enqueue(session, kind="demo", payload={"v": 4}, now=T0, dedupe_key="k2")
        assert later.id == first.id and later.payload == {"v": 1}
        assert other.id != first.id
    assert count_jobs(session_factory) == 2


def test_dedupe_key_race_returns_the_job_the_other_transaction_committed(
        session_factory: sessionmaker[Session]) -> None:
    # Transaction A holds its new job uncommitted while B enqueues the same key: B waits (on the
    # unique index in PostgreSQL, on the write lock in SQLite) and then gets A's job, no error.
    results: dict[str, int] = {}
    a_has_enqueued = threading.Event()

    def b() -> None:
        a_has_enqueued.wait(10)
        with unit_of_work(session_factory) as session:
            results["b"] = enqueue(session, kind="demo", payload={"by": "b"}, now=T0,
                                   dedupe_key="race").id

    thread = threading.Thread(target=b)
    thread.start()
    with unit_of_work(session_factory) as session:
        results["a"] = enqueue(session, kind="demo", payload={"by": "a"}, now=T0,
                               dedupe_key="race").id
        a_has_enqueued.set()
        time.sleep(0.3)  # let B reach its check and block behind us
    thread.join(30)
    assert results["a"] == results["b"]
    assert count_jobs(session_factory) == 1


def test_enqueue_refuses_naive_datetimes(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="aware"), unit_of_work(session_factory) as session:
        enqueue(session, kind="demo", payload={}, now=datetime(2026, 1, 1))


def test_enqueue_run_after_and_max_attempts(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        job = enqueue(session, kind="demo", payload={}, now=T0,
                      run_after=T0 + timedelta(hours=1), max_attempts=2)
    assert job.run_after == T0 + timedelta(hours=1) and job.max_attempts == 2


def test_registry() -> None:
    registry = JobRegistry()

    def handler(ctx: object, payload: object) -> None:
        return None

    registry.register("b", handler)
    registry.register("a", handler)
    assert registry.get("a") is handler and registry.get("zzz") is None
    assert registry.kinds() == ["a", "b"]
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register("a", handler)
