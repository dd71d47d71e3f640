"""The signing process that ``test_crash.py`` kills with ``SIGKILL``.

Run as ``python -m tests.parties.crash_worker DATA_DIR DATABASE_URL BASE_URL`` from the repository
root. The process imports the whole signing stack once (several seconds) and then acts as a small
fork server: for every ``spawn`` line on stdin it forks a fresh signer process, which opens the
runtime (``Runtime.open``), signs every pending signer of every contract, runs the seal jobs and
exits. The test kills that forked process, never this one, so a restart costs a fork and a
``Runtime.open`` instead of a new interpreter; the process killed is still a complete signing
process with its own database connections, key unlocking and blob writes.

Every line on stdout is one ``write`` shorter than ``PIPE_BUF`` (atomic on a pipe):

* from the fork server: ``spawned PID`` and ``exit PID STATUS`` (STATUS is the exit code, or minus
  the signal number, as ``subprocess`` reports it);
* from a signer process: ``PID EVENT ...`` with EVENT one of ``ready``, ``verified``,
  ``sign-begin``, ``signed``, ``seal-begin``, ``seal-end`` (the seal job), ``job-begin``,
  ``job-end`` (another job: an invitation e-mail), ``waiting``, ``done``.

A signer process that meets an unexpected error writes the traceback to stderr and exits 3.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

# Every real entry point (``econtract.cli``, ``econtract.app``) imports the accounts models. The
# foreign-key columns ``*.org_id`` are declared without a type and take it from
# ``organisations.id`` only once that model is imported; before, they load as ``str`` on SQLite.
import econtract.accounts.models  # noqa: F401
from econtract.context import Ctx
from econtract.contracts import sending
from econtract.contracts.models import Contract
from econtract.contracts.states import Status
from econtract.jobs import Worker
from econtract.jobs.models import OutboxJob
from econtract.parties import routing
from econtract.parties import service as parties
from econtract.parties.models import Signer
from econtract.runtime import Runtime
from econtract.settings import Settings

# Known to the test (which creates the contracts) and to the signer processes (which sign).
PEOPLE = [("张三", "zhang@example.com"), ("Bob Lee", "bob@example.com"),
          ("王五", "wang@example.com"), ("Dana Smith", "dana@example.com")]
PINS = {"zhang@example.com": "482915", "bob@example.com": "739261",
        "wang@example.com": "615384", "dana@example.com": "270358"}

LEASE_SECONDS = 2
"""The seal job's lease in the signer processes. ``rt.worker()`` leases for 300 s; a job whose
worker was killed is claimed again only when its lease has run out, so a short lease keeps the
test short. A seal takes about half a second; one that overran the lease would still finish,
since only one signing process runs at a time and nobody else claims the job meanwhile."""


def emit(*parts: object) -> None:
    line = " ".join(str(p) for p in parts) + "\n"
    os.write(1, line.encode())  # one write: unbuffered, atomic on a pipe, nothing left to flush


@dataclass(frozen=True)
class Todo:
    contract_id: uuid.UUID
    signer_id: uuid.UUID
    email: str
    status: str


def next_work(rt: Runtime) -> tuple[Todo | None, bool, bool]:
    """The next signer to act (in title order), whether a contract waits for its seal, and
    whether every contract is completed."""
    with rt.uow() as session:
        contracts = list(session.scalars(select(Contract).order_by(Contract.title)))
        todo: Todo | None = None
        awaiting_seal = False
        for contract in contracts:
            status = Status(contract.status)
            if status in (Status.SENT, Status.SIGNING):
                if routing.all_signed(contract):
                    awaiting_seal = True
                elif todo is None:
                    signer = routing.current_group(contract)[0]
                    todo = Todo(contract.id, signer.id, signer.email, signer.status)
        done = all(Status(c.status) is Status.COMPLETED for c in contracts)
    return todo, awaiting_seal, done


def verify_identity(rt: Runtime, todo: Todo) -> None:
    """Stands in for the e-mail code step of the signing journey (as the service tests do)."""
    with rt.uow() as session:
        signer = session.get_one(Signer, todo.signer_id)
        if signer.status in ("invited", "viewed"):
            signer.status = "verified"


def sign(rt: Runtime, todo: Todo) -> None:
    with rt.uow() as session:
        signer = session.get_one(Signer, todo.signer_id)
        ctx = Ctx(actor=parties.signer_actor(signer), ip="198.51.100.20", user_agent="crash")
        outcome = parties.sign(session, ctx, blobs=rt.blobs, engine=rt.signing_engine(),
                               keyring=rt.keyring, contract_id=todo.contract_id,
                               signer_id=todo.signer_id, pin=PINS[todo.email],
                               appearance=parties.Appearance(kind="typed"))
        if outcome.error is not None:
            raise outcome.error


def failed_seal(rt: Runtime) -> str | None:
    """A seal job that failed for a reason of its own (not a killed worker)."""
    with rt.uow() as session:
        for job in session.scalars(select(OutboxJob).where(OutboxJob.kind == sending.SEAL_JOB,
                                                           OutboxJob.status != "done")):
            if job.last_error or job.status == "failed":
                return f"seal job {job.id} ({job.status}): {job.last_error}"
    return None


def run_signer(settings: Settings) -> None:
    pid = os.getpid()
    rt = Runtime.open(settings)
    rt.signing_engine()  # loads the platform PKI, as the first request would
    worker = Worker(rt.session_factory, rt.registry, name=f"crash-worker:{pid}", batch_size=1,
                    lease_seconds=LEASE_SECONDS, base_backoff_seconds=1)
    emit(pid, "ready")
    while True:
        todo, awaiting_seal, done = next_work(rt)
        if done:
            emit(pid, "done")
            return
        if awaiting_seal:
            # What ``worker.run_once()`` does (one job per batch), with a line around the job.
            # Other due jobs (the signers' invitation e-mails) run too, as in any worker.
            claimed = worker.claim()
            if claimed:
                (job_id,) = claimed
                with rt.uow() as session:
                    kind = session.get_one(OutboxJob, job_id).kind
                step = "seal" if kind == sending.SEAL_JOB else "job"
                emit(pid, f"{step}-begin", kind, job_id)
                worker.run_job(job_id)
                emit(pid, f"{step}-end", kind, job_id)
                problem = failed_seal(rt)
                if problem is not None:
                    raise RuntimeError(problem)
                continue
        if todo is None:
            # Only seals are left and their jobs are leased by a killed worker: wait it out.
            emit(pid, "waiting")
            time.sleep(0.25)
            continue
        if todo.status in ("invited", "viewed"):
            verify_identity(rt, todo)
            emit(pid, "verified", todo.contract_id, todo.email)
            continue
        emit(pid, "sign-begin", todo.contract_id, todo.email)
        sign(rt, todo)
        emit(pid, "signed", todo.contract_id, todo.email)


def serve(settings: Settings) -> None:
    """The fork server: ``spawn`` forks a signer process, ``quit`` (or end of input) stops."""
    for command in sys.stdin:
        if command.strip() != "spawn":
            return
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            code = 0
            try:
                run_signer(settings)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                code = 3
            os._exit(code)
        emit("spawned", child)
        _, status = os.waitpid(child, 0)
        emit("exit", child, os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> None:
    data_dir, database_url, base_url = argv
    serve(Settings(data_dir=Path(data_dir), database_url=database_url, base_url=base_url))


if __name__ == "__main__":
    main(sys.argv[1:])
