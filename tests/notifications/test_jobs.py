from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from econtract.db import unit_of_work
from econtract.jobs import JobRegistry, Worker
from econtract.jobs.models import OutboxAttempt, OutboxJob
from econtract.notifications.email import EmailMessage, FileEmailBackend, SmtpEmailBackend
from econtract.notifications.jobs import SEND_EMAIL, make_send_email_handler, queue_email

from .conftest import SmtpServer, free_port
from .test_email import SENDER, assert_is_contract_mail, contract_mail, parse

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def email_worker(session_factory: sessionmaker[Session], backend: object,
                 clock: Clock) -> Worker:
    registry = JobRegistry()
    registry.register(SEND_EMAIL, make_send_email_handler(backend))  # type: ignore[arg-type]
    return Worker(session_factory, registry, clock=clock, base_backoff_seconds=30)


def queue(session_factory: sessionmaker[Session], message: EmailMessage) -> OutboxJob:
    with unit_of_work(session_factory) as session:
        return queue_email(session, message=message, now=T0)


def test_queued_email_is_written_by_the_worker(session_factory: sessionmaker[Session],
                                               tmp_path: Path) -> None:
    job = queue(session_factory, contract_mail())
    assert (job.kind, job.status) == (SEND_EMAIL, "pending")
    backend = FileEmailBackend(tmp_path / "outbox", SENDER)
    assert email_worker(session_factory, backend, Clock()).run_once() == 1
    assert_is_contract_mail(parse((tmp_path / "outbox" / f"job-{job.id}.eml").read_bytes()))
    with unit_of_work(session_factory) as session:
        assert session.scalar(select(OutboxJob.status)) == "done"


def test_smtp_down_means_retry_not_loss(session_factory: sessionmaker[Session]) -> None:
    job = queue(session_factory, contract_mail())
    port = free_port()
    clock = Clock()
    worker = email_worker(session_factory,
                          SmtpEmailBackend("127.0.0.1", port, SENDER, timeout=5), clock)
    assert worker.run_once() == 1
    with unit_of_work(session_factory) as session:
        stored = session.get(OutboxJob, job.id)
        assert stored is not None
        assert (stored.status, stored.attempts) == ("pending", 1)
        assert stored.run_after >= T0 + timedelta(seconds=30)
        [attempt] = session.scalars(select(OutboxAttempt))
        assert attempt.error is not None and attempt.error.startswith("UpstreamError: ")
        assert f"127.0.0.1:{port}" in attempt.error
        clock.now = stored.run_after
    server = SmtpServer(port=port)  # the server comes back; the retry delivers
    try:
        assert worker.run_once() == 1
        [envelope] = server.inbox.envelopes
        assert isinstance(envelope.content, bytes)
        assert parse(envelope.content)["Message-ID"].startswith(f"<job-{job.id}.")
    finally:
        server.stop()
    with unit_of_work(session_factory) as session:
        assert session.scalar(select(OutboxJob.status)) == "done"


def test_delivered_mail_leaves_no_body_in_the_outbox(tmp_path: Path, db_url: str) -> None:
    from econtract.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    registry = JobRegistry()
    registry.register(SEND_EMAIL, make_send_email_handler(
        FileEmailBackend(tmp_path / "outbox", sender="econtract <a@b.c>")))
    secret = "https://example.test/s/SECRET-TOKEN code 123456"
    with unit_of_work(factory) as session:
        job = queue_email(session, now=datetime.now(UTC), message=EmailMessage(
            to=("x@example.com",), subject="Invitation", text=secret))
        job_id = job.id
    assert Worker(factory, registry).run_once() == 1
    with unit_of_work(factory) as session:
        done = session.get_one(OutboxJob, job_id)
        assert done.status == "done" and "SECRET-TOKEN" not in str(done.payload)
        assert done.payload["to"] == ["x@example.com"]
    engine.dispose()
