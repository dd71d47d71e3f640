"""The worker: claims due outbox jobs, runs their handlers, retries with backoff.

Life of a job: ``pending`` --claim--> ``running`` --handler ok--> ``done``; a failing handler sends
it back to ``pending`` with a later ``run_after``, or to ``failed`` once ``max_attempts`` is used.

Every step is its own short transaction, and every step after the claim is a compare-and-set on
``claimed_by``: a claim has a lease, and when a worker dies (or stalls past its lease) another one
claims the job again. The stale worker must then not finish it, so whatever it did rolls back.

Delivery is therefore at-least-once for side effects outside the database (a worker can die after
sending an e-mail but before committing); handlers make such effects idempotent (see the e-mail
backends) and their database writes commit exactly once, with the job being marked done.

Besides jobs, ``run_forever`` runs periodic tasks (the reminder and deadline sweep) every so many
seconds. Every worker process runs them, so a task must be safe to run in several at once (the
sweep claims its rows with ``SKIP LOCKED``) and opens its own transactions.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from econtract.context import utcnow
from econtract.db import is_postgres, unit_of_work
from econtract.jobs.models import OutboxAttempt, OutboxJob
from econtract.jobs.registry import JobContext, JobHandler, JobRegistry

logger = logging.getLogger(__name__)

_JITTER = 0.1
"""Retries wait up to this fraction longer, so jobs that failed together do not retry together."""
_MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class PeriodicTask:
    """``run(now)`` every ``every_seconds`` while the worker loop runs (first at its start)."""

    name: str
    every_seconds: float
    run: Callable[[datetime], object]


class _ClaimLost(Exception):
    """The job is no longer this worker's: its lease expired and another worker claimed it."""


def _default_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _describe(exc: BaseException) -> str:
    # Type and message only: tracebacks go to the log, not into a table users can read.
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]


class Worker:
    def __init__(self, session_factory: sessionmaker[Session], registry: JobRegistry, *,
                 name: str | None = None, clock: Callable[[], datetime] = utcnow,
                 batch_size: int = 10, lease_seconds: int = 300,
                 base_backoff_seconds: float = 30, max_backoff_seconds: float = 3600,
                 periodic: Sequence[PeriodicTask] = ()) -> None:
        self.name = name or _default_name()
        if len(self.name) > 100:  # OutboxJob.claimed_by / OutboxAttempt.worker are String(100)
            raise ValueError("worker name is longer than 100 characters")
        if batch_size < 1 or lease_seconds < 1 or base_backoff_seconds < 0:
            raise ValueError("batch_size and lease_seconds must be positive, backoff non-negative")
        self._session_factory = session_factory
        self._registry = registry
        self._clock = clock
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.base_backoff_seconds = base_backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        if any(task.every_seconds <= 0 for task in periodic):
            raise ValueError("a periodic task needs a positive interval")
        self._periodic = list(periodic)
        self._periodic_next: dict[str, float] = {}
        """Task name → ``time.monotonic()`` of its next run; absent: due now."""

    # -- claiming ------------------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Claim up to ``batch_size`` due jobs for this worker; returns their ids."""
        now = self._clock()
        lease_until = now + timedelta(seconds=self.lease_seconds)
        with unit_of_work(self._session_factory) as session:
            if is_postgres(session):
                ids = self._claim_postgres(session, now, lease_until)
            else:
                ids = self._claim_sqlite(session, now, lease_until)
        return sorted(ids)

    def _due(self, now: datetime) -> ColumnElement[bool]:
        # Due: pending and its time has come, or running under a lease that has run out (the
        # worker holding it died or stalled).
        return or_(and_(OutboxJob.status == "pending", OutboxJob.run_after <= now),
                   and_(OutboxJob.status == "running", OutboxJob.lease_until < now))

    def _claim_postgres(self, session: Session, now: datetime, lease_until: datetime) -> list[int]:
        # SKIP LOCKED: concurrent claimers pass over each other's rows instead of queueing; a row
        # another claimer committed meanwhile is re-checked against the WHERE and drops out.
        ids = list(session.scalars(
            select(OutboxJob.id).where(self._due(now))
            .order_by(OutboxJob.run_after, OutboxJob.id).limit(self.batch_size)
            .with_for_update(skip_locked=True)))
        if ids:
            session.execute(
                update(OutboxJob).where(OutboxJob.id.in_(ids))
                .values(status="running", claimed_by=self.name, lease_until=lease_until)
                .execution_options(synchronize_session=False))
        return ids

    def _claim_sqlite(self, session: Session, now: datetime, lease_until: datetime) -> list[int]:
        # One statement, and the transaction began with BEGIN IMMEDIATE (econtract.db): it holds
        # the database's only write lock, so no other process can claim the same rows meanwhile.
        due_ids = (select(OutboxJob.id).where(self._due(now))
                   .order_by(OutboxJob.run_after, OutboxJob.id).limit(self.batch_size))
        return list(session.scalars(
            update(OutboxJob).where(OutboxJob.id.in_(due_ids))
            .values(status="running", claimed_by=self.name, lease_until=lease_until)
            .returning(OutboxJob.id)
            .execution_options(synchronize_session=False)))

    def _release(self, job_ids: Sequence[int]) -> None:
        """Hand claimed jobs that will not run now straight back, rather than at lease expiry."""
        with unit_of_work(self._session_factory) as session:
            session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_(job_ids), OutboxJob.status == "running",
                       OutboxJob.claimed_by == self.name)
                .values(status="pending", claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False))

    # -- running one job -----------------------------------------------------------------------

    def run_job(self, job_id: int) -> bool:
        """Run one job this worker has claimed and record the outcome.

        Returns False when nothing was run or settled: the claim is not (or no longer) this
        worker's, or the job had already used up its attempts (it is failed instead).
        """
        begun = self._begin_attempt(job_id)
        if begun is None:
            return False
        job, attempt_id, now = begun
        handler = self._registry.get(job.kind)
        if handler is None:
            error = f"no handler registered for job kind {job.kind!r}"
            logger.error("outbox job %s failed permanently: %s", job_id, error)
            self._record_failure(job_id, attempt_id, error, permanent=True)
            return True
        try:
            self._run_handler(handler, job, attempt_id, now)
        except _ClaimLost as lost:
            logger.warning("outbox job %s: %s; its work was rolled back", job_id, lost)
            self._close_attempt(attempt_id, str(lost))
            return False
        except Exception as exc:
            logger.warning("outbox job %s (%s) attempt %s failed", job_id, job.kind,
                           job.attempts, exc_info=True)
            self._record_failure(job_id, attempt_id, _describe(exc), permanent=False)
        return True

    def _holds(self, job: OutboxJob) -> bool:
        return job.status == "running" and job.claimed_by == self.name

    def _begin_attempt(self, job_id: int) -> tuple[OutboxJob, int, datetime] | None:
        # Committed before the handler runs, so an attempt that kills the worker is still counted
        # (and a job that keeps killing workers ends up failed instead of looping forever).
        now = self._clock()
        with unit_of_work(self._session_factory) as session:
            job = session.get(OutboxJob, job_id, with_for_update=True)
            if job is None or not self._holds(job):
                return None
            if job.attempts >= job.max_attempts:
                self._give_up(job, now)
                return None
            job.attempts += 1
            job.lease_until = now + timedelta(seconds=self.lease_seconds)
            attempt = OutboxAttempt(job_id=job.id, number=job.attempts, worker=self.name,
                                    started_at=now, ok=False)
            session.add(attempt)
            session.flush()
            return job, attempt.id, now

    def _give_up(self, job: OutboxJob, now: datetime) -> None:
        job.last_error = (f"gave up after {job.attempts} attempts; the last one never finished "
                          "(its worker died or overran its lease)")
        logger.error("outbox job %s failed permanently: %s", job.id, job.last_error)
        self._settle(job, "failed", now)

    @staticmethod
    def _settle(job: OutboxJob, status: str, now: datetime) -> None:
        job.status = status
        job.claimed_by = None
        job.lease_until = None
        if status in ("done", "failed"):
            job.finished_at = now

    def _run_handler(self, handler: JobHandler, job: OutboxJob, attempt_id: int,
                     now: datetime) -> None:
        with unit_of_work(self._session_factory) as session:
            # load=False attaches our copy without a query: on SQLite the first statement takes
            # the write lock, and a handler that does no database work (e-mail) should not hold
            # it while it talks to the outside world.
            attached = session.merge(job, load=False)
            handler(JobContext(session=session, job=attached, now=now, attempt=job.attempts),
                    dict(job.payload))
            self._mark_done(session, job.id, attempt_id)

    def _mark_done(self, session: Session, job_id: int, attempt_id: int) -> None:
        now = self._clock()
        result = cast(CursorResult[Any], session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job_id, OutboxJob.status == "running",
                   OutboxJob.claimed_by == self.name)
            .values(status="done", finished_at=now, claimed_by=None, lease_until=None,
                    last_error=None)
            .execution_options(synchronize_session=False)))
        if result.rowcount != 1:
            raise _ClaimLost("its lease expired and another worker claimed it")
        session.execute(update(OutboxAttempt).where(OutboxAttempt.id == attempt_id)
                        .values(ok=True, finished_at=now)
                        .execution_options(synchronize_session=False))

    def _record_failure(self, job_id: int, attempt_id: int, error: str, *,
                        permanent: bool) -> None:
        now = self._clock()
        with unit_of_work(self._session_factory) as session:
            job = session.get(OutboxJob, job_id, with_for_update=True)
            self._finish_attempt(session, attempt_id, now, error)
            if job is None or not self._holds(job):
                logger.warning("outbox job %s: claim lost before its failure was recorded", job_id)
                return
            job.last_error = error
            if permanent or job.attempts >= job.max_attempts:
                self._settle(job, "failed", now)
            else:
                self._settle(job, "pending", now)
                job.run_after = now + self.backoff(job.attempts)

    def _close_attempt(self, attempt_id: int, error: str) -> None:
        with unit_of_work(self._session_factory) as session:
            self._finish_attempt(session, attempt_id, self._clock(), error)

    @staticmethod
    def _finish_attempt(session: Session, attempt_id: int, now: datetime, error: str) -> None:
        session.execute(update(OutboxAttempt).where(OutboxAttempt.id == attempt_id)
                        .values(ok=False, finished_at=now, error=error)
                        .execution_options(synchronize_session=False))

    def backoff(self, attempts: int) -> timedelta:
        """Wait before retry number ``attempts + 1``: base * 2**(attempts-1), capped, + jitter."""
        exponent = min(max(attempts - 1, 0), 62)  # beyond this the cap applies anyway
        delay = min(self.base_backoff_seconds * 2.0 ** exponent, self.max_backoff_seconds)
        return timedelta(seconds=delay * (1 + random.uniform(0, _JITTER)))

    # -- loops ---------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim one batch and run it; returns how many jobs ran (successfully or not)."""
        return self._run_batch(self.claim(), stop=None)

    def _run_batch(self, job_ids: list[int], stop: threading.Event | None) -> int:
        ran = 0
        for index, job_id in enumerate(job_ids):
            if stop is not None and stop.is_set():
                self._release(job_ids[index:])
                break
            try:
                ran += self.run_job(job_id)
            except Exception:  # bookkeeping failed (database down?); the lease will expire
                logger.exception("outbox worker %s: could not run job %s", self.name, job_id)
        return ran

    def run_periodic(self) -> int:
        """Run the periodic tasks whose time has come; returns how many ran. A failing task is
        logged and tried again at its next time."""
        ran = 0
        for task in self._periodic:
            started = time.monotonic()
            if started < self._periodic_next.get(task.name, started):
                continue
            # Measured from the start, so a slow run does not drift the schedule.
            self._periodic_next[task.name] = started + task.every_seconds
            try:
                task.run(self._clock())
            except Exception:
                logger.exception("worker %s: periodic task %s failed", self.name, task.name)
            ran += 1
        return ran

    def _until_next_periodic(self, poll_seconds: float) -> float:
        now = time.monotonic()
        waits = [self._periodic_next.get(task.name, now) - now for task in self._periodic]
        return max(min([poll_seconds, *waits]), 0.0)

    def run_forever(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Run batches (and periodic tasks when due) until ``stop`` is set; sleep
        ``poll_seconds`` whenever there is no work."""
        logger.info("outbox worker %s started", self.name)
        while not stop.is_set():
            self.run_periodic()
            try:
                ran = self._run_batch(self.claim(), stop)
            except Exception:
                # A worker that dies silently is worse than one that logs and tries again.
                logger.exception("outbox worker %s: unexpected error; continuing", self.name)
                ran = 0
            if ran == 0:
                stop.wait(self._until_next_periodic(poll_seconds))
        logger.info("outbox worker %s stopped", self.name)
