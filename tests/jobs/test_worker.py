from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from econtract.context import utcnow
from econtract.db import unit_of_work
from econtract.jobs import JobContext, JobRegistry, Worker, enqueue
from econtract.jobs.models import OutboxAttempt, OutboxJob

from .support import T0, FakeClock, job_runs

SessionFactory = sessionmaker[Session]


def add_jobs(sf: SessionFactory, count: int, *, kind: str = "count", now: Any = T0) -> list[int]:
    with unit_of_work(sf) as session:
        return [enqueue(session, kind=kind, payload={"i": i}, now=now).id for i in range(count)]


def load(sf: SessionFactory, job_id: int) -> OutboxJob:
    with unit_of_work(sf) as session:
        job = session.get(OutboxJob, job_id)
        assert job is not None
        return job


def attempts_of(sf: SessionFactory, job_id: int) -> list[OutboxAttempt]:
    with unit_of_work(sf) as session:
        return list(session.scalars(select(OutboxAttempt).where(OutboxAttempt.job_id == job_id)
                                    .order_by(OutboxAttempt.number)))


def recorded_runs(sf: SessionFactory) -> list[tuple[int, str]]:
    with unit_of_work(sf) as session:
        rows = session.execute(select(job_runs.c.job_id, job_runs.c.worker)).all()
        return [(row.job_id, row.worker) for row in rows]


def recording_registry(calls: list[tuple[int, int, dict[str, Any]]]) -> JobRegistry:
    """A ``count`` handler that records each call in ``calls`` and in the scratch table."""
    def record(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append((ctx.job.id, ctx.attempt, payload))
        ctx.session.execute(insert(job_runs).values(job_id=ctx.job.id, worker="handler"))

    registry = JobRegistry()
    registry.register("count", record)
    return registry


def test_runs_a_due_job_and_marks_it_done(session_factory: SessionFactory,
                                          clock: FakeClock) -> None:
    calls: list[tuple[int, int, dict[str, Any]]] = []
    [job_id] = add_jobs(session_factory, 1)
    worker = Worker(session_factory, recording_registry(calls), name="w1", clock=clock)
    clock.advance(seconds=5)
    assert worker.run_once() == 1
    assert calls == [(job_id, 1, {"i": 0})]
    job = load(session_factory, job_id)
    assert (job.status, job.attempts, job.claimed_by, job.lease_until) == ("done", 1, None, None)
    assert job.finished_at == clock.now
    [attempt] = attempts_of(session_factory, job_id)
    assert (attempt.number, attempt.worker, attempt.ok, attempt.error) == (1, "w1", True, None)
    assert attempt.started_at == clock.now and attempt.finished_at == clock.now
    assert recorded_runs(session_factory) == [(job_id, "handler")]
    assert worker.run_once() == 0


def test_job_waits_for_run_after(session_factory: SessionFactory, clock: FakeClock) -> None:
    with unit_of_work(session_factory) as session:
        job = enqueue(session, kind="count", payload={}, now=T0,
                      run_after=T0 + timedelta(minutes=5))
    worker = Worker(session_factory, recording_registry([]), clock=clock)
    assert worker.claim() == []
    clock.advance(seconds=300)
    assert worker.claim() == [job.id]
    assert load(session_factory, job.id).status == "running"


def test_claim_takes_at_most_a_batch(session_factory: SessionFactory, clock: FakeClock) -> None:
    ids = add_jobs(session_factory, 7)
    worker = Worker(session_factory, JobRegistry(), name="w1", clock=clock, batch_size=5,
                    lease_seconds=60)
    assert worker.claim() == ids[:5]
    assert worker.claim() == ids[5:]
    assert worker.claim() == []
    job = load(session_factory, ids[0])
    assert (job.status, job.claimed_by) == ("running", "w1")
    assert job.lease_until == T0 + timedelta(seconds=60)


def test_four_threads_run_every_job_exactly_once(session_factory: SessionFactory) -> None:
    ids = add_jobs(session_factory, 200, now=utcnow())
    calls: list[tuple[int, int, dict[str, Any]]] = []  # list.append is atomic under the GIL
    registry = recording_registry(calls)
    workers = [Worker(session_factory, registry, name=f"thread-{n}", batch_size=5)
               for n in range(4)]
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def drain(worker: Worker) -> None:
        try:
            start.wait(10)
            while worker.run_once():
                pass
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert sorted(job_id for job_id, _, _ in calls) == ids  # each handler called once
    assert sorted(job_id for job_id, _ in recorded_runs(session_factory)) == ids
    with unit_of_work(session_factory) as session:
        assert set(session.scalars(select(OutboxJob.status))) == {"done"}
        assert len(set(session.scalars(select(OutboxAttempt.worker)))) > 1


def failing_registry(calls: list[int]) -> JobRegistry:
    def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append(ctx.attempt)
        ctx.session.execute(insert(job_runs).values(job_id=ctx.job.id, worker="failing"))
        ctx.session.flush()
        raise ValueError(f"boom on attempt {ctx.attempt}")

    registry = JobRegistry()
    registry.register("fail", fail)
    return registry


def assert_backoff(run_after: Any, now: Any, seconds: float) -> None:
    # The formula's delay plus up to 10 % jitter.
    assert now + timedelta(seconds=seconds) <= run_after <= now + timedelta(seconds=seconds * 1.1)


def test_failing_job_backs_off_retries_and_fails(session_factory: SessionFactory,
                                                 clock: FakeClock) -> None:
    calls: list[int] = []
    with unit_of_work(session_factory) as session:
        job_id = enqueue(session, kind="fail", payload={}, now=T0, max_attempts=4).id
    worker = Worker(session_factory, failing_registry(calls), name="w1", clock=clock,
                    base_backoff_seconds=10, max_backoff_seconds=25)
    for attempt, delay in [(1, 10), (2, 20), (3, 25)]:  # 10 * 2**(n-1), capped at 25
        assert worker.run_once() == 1
        job = load(session_factory, job_id)
        assert (job.status, job.attempts, job.claimed_by) == ("pending", attempt, None)
        assert job.last_error == f"ValueError: boom on attempt {attempt}"
        assert_backoff(job.run_after, clock.now, delay)
        assert worker.run_once() == 0  # not due yet
        clock.now = job.run_after
    assert worker.run_once() == 1
    job = load(session_factory, job_id)
    assert (job.status, job.attempts, job.finished_at) == ("failed", 4, clock.now)
    assert job.last_error == "ValueError: boom on attempt 4"
    assert calls == [1, 2, 3, 4]
    attempts = attempts_of(session_factory, job_id)
    assert [(a.number, a.ok, a.error) for a in attempts] == [
        (n, False, f"ValueError: boom on attempt {n}") for n in (1, 2, 3, 4)]
    assert all(a.finished_at is not None for a in attempts)
    assert recorded_runs(session_factory) == []  # the handler's writes rolled back every time
    clock.advance(seconds=10_000)
    assert worker.run_once() == 0


def test_backoff_formula() -> None:
    worker = Worker(sessionmaker(), JobRegistry(), base_backoff_seconds=30,
                    max_backoff_seconds=3600)
    for attempts, seconds in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (500, 3600)]:
        delay = worker.backoff(attempts).total_seconds()
        assert seconds <= delay <= seconds * 1.1


def test_unknown_kind_fails_permanently(session_factory: SessionFactory,
                                        clock: FakeClock) -> None:
    [job_id] = add_jobs(session_factory, 1, kind="no.such.kind")
    worker = Worker(session_factory, JobRegistry(), clock=clock)
    assert worker.run_once() == 1
    job = load(session_factory, job_id)
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.last_error == "no handler registered for job kind 'no.such.kind'"
    [attempt] = attempts_of(session_factory, job_id)
    assert attempt.error == job.last_error and not attempt.ok


def make_running(sf: SessionFactory, job_id: int, *, by: str, lease_until: Any,
                 attempts: int = 1) -> None:
    with unit_of_work(sf) as session:
        session.execute(update(OutboxJob).where(OutboxJob.id == job_id).values(
            status="running", claimed_by=by, lease_until=lease_until, attempts=attempts))


def test_expired_lease_is_claimed_again(session_factory: SessionFactory,
                                        clock: FakeClock) -> None:
    calls: list[tuple[int, int, dict[str, Any]]] = []
    dead, alive = add_jobs(session_factory, 2)
    make_running(session_factory, dead, by="dead-worker", lease_until=T0 - timedelta(seconds=1))
    make_running(session_factory, alive, by="busy-worker", lease_until=T0 + timedelta(seconds=1))
    worker = Worker(session_factory, recording_registry(calls), name="w2", clock=clock)
    assert worker.claim() == [dead]  # the live lease is left alone
    assert worker.run_job(dead) is True
    assert calls == [(dead, 2, {"i": 0})]
    assert (load(session_factory, dead).status, load(session_factory, alive).status) == (
        "done", "running")


def test_job_that_keeps_killing_workers_ends_failed(session_factory: SessionFactory,
                                                    clock: FakeClock) -> None:
    with unit_of_work(session_factory) as session:
        job_id = enqueue(session, kind="count", payload={}, now=T0, max_attempts=3).id
    make_running(session_factory, job_id, by="dead", lease_until=T0 - timedelta(seconds=1),
                 attempts=3)
    calls: list[tuple[int, int, dict[str, Any]]] = []
    worker = Worker(session_factory, recording_registry(calls), clock=clock)
    assert worker.run_once() == 0
    job = load(session_factory, job_id)
    assert job.status == "failed" and calls == []
    assert job.last_error is not None and "never finished" in job.last_error


def test_stale_worker_cannot_start_a_job_taken_over(session_factory: SessionFactory) -> None:
    calls: list[tuple[int, int, dict[str, Any]]] = []
    [job_id] = add_jobs(session_factory, 1)
    registry = recording_registry(calls)
    stale = Worker(session_factory, registry, name="stale", clock=FakeClock(), lease_seconds=60)
    fresh = Worker(session_factory, registry, name="fresh",
                   clock=FakeClock(T0 + timedelta(seconds=61)))
    assert stale.claim() == [job_id]
    assert fresh.claim() == [job_id]  # stale's lease ran out
    assert stale.run_job(job_id) is False
    assert calls == [] and attempts_of(session_factory, job_id) == []
    assert fresh.run_job(job_id) is True
    assert load(session_factory, job_id).status == "done"


def test_stale_worker_cannot_finish_a_job_taken_over(session_factory: SessionFactory) -> None:
    [job_id] = add_jobs(session_factory, 1)
    fresh_clock = FakeClock()
    registry = JobRegistry()
    stale = Worker(session_factory, registry, name="stale", clock=FakeClock(), lease_seconds=60)
    fresh = Worker(session_factory, registry, name="fresh", clock=fresh_clock)

    def slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        if ctx.attempt == 1:  # the stale worker overruns its lease; fresh takes the job over
            fresh_clock.advance(seconds=61)
            assert fresh.claim() == [job_id]
        ctx.session.execute(insert(job_runs).values(job_id=ctx.job.id, worker=f"a{ctx.attempt}"))

    registry.register("count", slow)
    assert stale.claim() == [job_id]
    assert stale.run_job(job_id) is False
    assert recorded_runs(session_factory) == []  # stale's work rolled back
    job = load(session_factory, job_id)
    assert (job.status, job.claimed_by) == ("running", "fresh")
    [attempt] = attempts_of(session_factory, job_id)
    assert attempt.worker == "stale" and not attempt.ok and "another worker" in str(attempt.error)
    assert fresh.run_job(job_id) is True
    assert load(session_factory, job_id).status == "done"
    assert recorded_runs(session_factory) == [(job_id, "a2")]


def test_run_forever_stops_promptly(session_factory: SessionFactory) -> None:
    worker = Worker(session_factory, JobRegistry())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,),
                              kwargs={"poll_seconds": 30})
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10  # far below the 30 s poll: the event woke it


def test_run_forever_survives_unexpected_errors(session_factory: SessionFactory,
                                                caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[int, int, dict[str, Any]]] = []
    [job_id] = add_jobs(session_factory, 1, now=utcnow())
    worker = Worker(session_factory, recording_registry(calls))
    real_claim = worker.claim
    failures = iter([RuntimeError("database went away")])

    def flaky_claim() -> list[int]:
        for exc in failures:
            raise exc
        return real_claim()

    worker.claim = flaky_claim  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop, 0.05))
    with caplog.at_level(logging.ERROR, logger="econtract.jobs.worker"):
        thread.start()
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert [c[0] for c in calls] == [job_id]
    assert "unexpected error" in caplog.text and "database went away" in caplog.text


def test_stopping_hands_back_claimed_jobs_not_started(session_factory: SessionFactory) -> None:
    ids = add_jobs(session_factory, 5, now=utcnow())
    stop = threading.Event()

    def first_then_stop(ctx: JobContext, payload: dict[str, Any]) -> None:
        stop.set()

    registry = JobRegistry()
    registry.register("count", first_then_stop)
    Worker(session_factory, registry, batch_size=5).run_forever(stop, poll_seconds=0.01)
    statuses = [(load(session_factory, i).status, load(session_factory, i).claimed_by)
                for i in ids]
    assert statuses == [("done", None)] + [("pending", None)] * 4
