"""Helpers shared by the outbox tests (and importable by worker processes started with spawn)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from econtract.db import make_engine, make_session_factory
from econtract.jobs import JobContext, JobRegistry, Worker

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

# A scratch table (test-only, not in the migrations) where handlers record what they did, inside
# their own transaction, so a rolled-back handler leaves no row.
scratch = MetaData()
job_runs = Table("test_job_runs", scratch,
                 Column("id", Integer, primary_key=True, autoincrement=True),
                 Column("job_id", Integer, nullable=False),
                 Column("worker", String(100), nullable=False))


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def drain_in_process(db_url: str, log_path: str, name: str, start: Any) -> None:
    """Body of one worker process: drain the outbox, logging every handler call to a file."""
    engine = make_engine(db_url)
    try:
        registry = JobRegistry()

        def record(ctx: JobContext, payload: dict[str, Any]) -> None:
            # Logged outside the transaction on purpose: this counts handler *calls*, so a job
            # run twice shows up even if one of the two runs rolled back.
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"{ctx.job.id} {name}\n")
            ctx.session.execute(insert(job_runs).values(job_id=ctx.job.id, worker=name))
            time.sleep(0.002)  # let the processes interleave

        registry.register("count", record)
        worker = Worker(make_session_factory(engine), registry, name=name, batch_size=5)
        start.wait(60)  # drain together, not one after the other as each finishes importing
        while worker.run_once():
            pass
    finally:
        engine.dispose()
