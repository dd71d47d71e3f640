"""Putting jobs in the outbox, inside the caller's transaction.

A job is a row written in the same transaction as the change that causes it, so the two commit or
roll back together: no e-mail for a contract that was never saved, no saved contract whose e-mail
was forgotten. ``enqueue`` therefore only flushes; the edge's ``unit_of_work`` commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from econtract.jobs.models import OutboxJob


def enqueue(session: Session, *, kind: str, payload: dict[str, Any], now: datetime,
            org_id: uuid.UUID | None = None, run_after: datetime | None = None,
            dedupe_key: str | None = None, max_attempts: int = 8) -> OutboxJob:
    """Add a job to the outbox and flush (never commit); ``run_after`` defaults to ``now``.

    With a ``dedupe_key`` that is already in the outbox, the existing job is returned unchanged,
    whatever its status: the key says "this must happen once", not "once at a time".
    """
    if now.tzinfo is None or (run_after is not None and run_after.tzinfo is None):
        raise ValueError("enqueue needs aware UTC datetimes")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if dedupe_key is not None:
        existing = _find_by_dedupe_key(session, dedupe_key)
        if existing is not None:
            return existing
    job = OutboxJob(kind=kind, payload=dict(payload), org_id=org_id, status="pending",
                    attempts=0, max_attempts=max_attempts, run_after=run_after or now,
                    dedupe_key=dedupe_key, created_at=now)
    if dedupe_key is None:
        session.add(job)
        session.flush()
        return job
    return _insert_deduplicated(session, job, dedupe_key)


def _find_by_dedupe_key(session: Session, dedupe_key: str) -> OutboxJob | None:
    return session.scalars(select(OutboxJob).where(OutboxJob.dedupe_key == dedupe_key)).first()


def _insert_deduplicated(session: Session, job: OutboxJob, dedupe_key: str) -> OutboxJob:
    # Two transactions can both pass the check above (PostgreSQL; SQLite serialises writers). The
    # unique constraint stops the second; the savepoint keeps the caller's transaction usable so
    # we can hand back the job the other transaction committed.
    session.flush()  # the caller's own pending rows must not fail inside our savepoint
    try:
        with session.begin_nested():
            session.add(job)
    except DbIntegrityError:
        existing = _find_by_dedupe_key(session, dedupe_key)
        if existing is None:
            raise
        return existing
    return job
