"""Several worker *processes* on one SQLite file: BEGIN IMMEDIATE makes each claim exclusive."""

from __future__ import annotations

import multiprocessing
import shutil
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from econtract.context import utcnow
from econtract.db import make_engine, make_session_factory, unit_of_work
from econtract.jobs import enqueue
from econtract.jobs.models import OutboxAttempt, OutboxJob

from .support import drain_in_process, job_runs, scratch


def test_three_processes_run_every_job_exactly_once(tmp_path: Path,
                                                    sqlite_template: Path) -> None:
    db_file = tmp_path / "econtract.db"
    shutil.copyfile(sqlite_template, db_file)
    db_url = f"sqlite:///{db_file}"
    engine = make_engine(db_url)
    scratch.create_all(engine)
    session_factory = make_session_factory(engine)
    with unit_of_work(session_factory) as session:
        ids = [enqueue(session, kind="count", payload={"i": i}, now=utcnow()).id
               for i in range(150)]
    log = tmp_path / "calls.log"
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(3)
    processes = [spawn.Process(target=drain_in_process, args=(db_url, str(log), f"proc-{n}", start))
                 for n in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    try:
        assert [p.exitcode for p in processes] == [0, 0, 0]
        calls = Counter(int(line.split()[0]) for line in log.read_text().splitlines())
        assert sorted(calls) == ids and set(calls.values()) == {1}  # each handler called once
        with unit_of_work(session_factory) as session:
            committed = Counter(session.scalars(select(job_runs.c.job_id)))
            assert sorted(committed) == ids and set(committed.values()) == {1}
            assert set(session.scalars(select(OutboxJob.status))) == {"done"}
            assert len(set(session.scalars(select(OutboxAttempt.worker)))) > 1
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        engine.dispose()
