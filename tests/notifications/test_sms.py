"""SMS: phone numbers to E.164 and masked, the ``log`` provider, the ``sms.send`` outbox job
(delivered, retried, the text gone from the database afterwards) and the choice of provider."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from econtract.db import unit_of_work
from econtract.errors import ConfigurationError, UpstreamError, ValidationFailed
from econtract.jobs import JobRegistry, Worker
from econtract.jobs.models import OutboxJob
from econtract.notifications import messages
from econtract.notifications.sms import (
    SEND_SMS,
    DisabledSmsBackend,
    LogSmsBackend,
    SmsBackend,
    make_send_sms_handler,
    mask_phone,
    normalise_phone,
    queue_sms,
    sms_backend_from_settings,
)
from econtract.settings import Settings, load_settings

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class RecordingSms:
    """A provider plug-in as a real one would be written (``python:…:RecordingSms``)."""

    sent: list[tuple[str, str, str]] = []  # noqa: RUF012 - shared on purpose, for the test

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, to: str, text: str, *, idempotency_key: str) -> None:
        self.sent.append((to, text, idempotency_key))


class FlakySms:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def send(self, to: str, text: str, *, idempotency_key: str) -> None:
        self.calls.append(idempotency_key)
        if len(self.calls) == 1:
            raise UpstreamError("provider timed out")


class NotAProvider:
    """Built like a provider (from the settings) but without ``send``: the loader refuses it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


# --- phone numbers -------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "e164"), [
    ("13812345678", "+8613812345678"),
    ("138 1234 5678", "+8613812345678"),
    ("+86 138-1234-5678", "+8613812345678"),
    ("0086 13812345678", "+8613812345678"),
    ("+1 (415) 555-0100", "+14155550100"),
    ("+44 7911 123456", "+447911123456"),
    ("+852 9123 4567", "+85291234567"),
])
def test_numbers_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize("raw", ["", "12345", "abc", "+86 010 1234 5678", "+0123456789",
                                 "+8612345678901", "１３８１２３４５６７８", "+1234567890123456",
                                 "138 1234 567x"])
def test_numbers_that_cannot_get_a_text_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        normalise_phone(raw)
    assert refused.value.code == "invalid_phone"


def test_the_default_country_code_applies_to_numbers_without_plus() -> None:
    assert normalise_phone("07911 123456", default_country_code="44") == "+447911123456"
    assert normalise_phone("+8613812345678", default_country_code="44") == "+8613812345678"


def test_masked_numbers_keep_the_country_and_the_last_four_digits() -> None:
    assert mask_phone("+8613812345678") == "+86 138****5678"
    assert mask_phone("+14155550100") == "+1 415***0100"
    assert mask_phone("+85291234567") == "+852 912*4567"
    assert mask_phone("+35312345") == "+353 ***45"


# --- the job -------------------------------------------------------------------------------

def sms_worker(session_factory: sessionmaker[Session], backend: SmsBackend) -> Worker:
    registry = JobRegistry()
    registry.register(SEND_SMS, make_send_sms_handler(backend))
    return Worker(session_factory, registry, clock=lambda: T0, base_backoff_seconds=0)


def queue(session_factory: sessionmaker[Session], text: str) -> OutboxJob:
    with unit_of_work(session_factory) as session:
        return queue_sms(session, to="+8613812345678", text=text, now=T0)


def test_the_log_provider_writes_a_file_and_a_log_line(session_factory: sessionmaker[Session],
                                                       tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    text = messages.signing_code_sms(code="204816", minutes=5)
    assert len(text) <= 134  # two UCS-2 segments
    assert "204816" in text and "验证码" in text and "code" in text
    job = queue(session_factory, text)
    assert job.kind == SEND_SMS
    outbox = tmp_path / "sms-outbox"
    with caplog.at_level(logging.INFO, logger="econtract.notifications.sms"):
        assert sms_worker(session_factory, LogSmsBackend(outbox)).run_once() == 1
    [path] = outbox.glob("*.json")
    assert path.name.startswith(f"job-{job.id}-")
    assert path.stat().st_mode & 0o077 == 0 and outbox.stat().st_mode & 0o077 == 0
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["to"] == "+8613812345678" and written["text"] == text
    assert written["idempotency_key"] == path.stem
    assert "204816" in caplog.text and "+8613812345678" in caplog.text
    with unit_of_work(session_factory) as session:
        done = session.scalars(select(OutboxJob)).one()
        assert done.status == "done"
        assert done.payload == {"delivered": True, "to": "+8613812345678"}  # no code kept


def test_a_failed_send_is_retried_with_the_same_key(session_factory: sessionmaker[Session]
                                                    ) -> None:
    queue(session_factory, "code 111111")
    flaky = FlakySms()
    worker = sms_worker(session_factory, flaky)
    assert worker.run_once() == 1
    with unit_of_work(session_factory) as session:
        job = session.scalars(select(OutboxJob)).one()
        assert job.status == "pending" and job.attempts == 1
        assert job.payload["text"] == "code 111111"
    assert worker.run_once() == 1
    assert len(flaky.calls) == 2 and flaky.calls[0] == flaky.calls[1]
    with unit_of_work(session_factory) as session:
        assert session.scalars(select(OutboxJob.status)).one() == "done"


def test_only_e164_numbers_and_short_texts_are_queued(session_factory: sessionmaker[Session]
                                                      ) -> None:
    with unit_of_work(session_factory) as session:
        for to, text in (("13812345678", "hi"), ("+86 138", "hi"), ("+8613812345678", " "),
                         ("+8613812345678", "x" * 501)):
            with pytest.raises(ValidationFailed):
                queue_sms(session, to=to, text=text, now=T0)


# --- choosing the provider -----------------------------------------------------------------

def test_settings_choose_the_provider(tmp_path: Path) -> None:
    log = sms_backend_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(log, LogSmsBackend) and log.outbox_dir == tmp_path / "sms-outbox"
    off = sms_backend_from_settings(Settings(data_dir=tmp_path, sms_backend="none"))
    assert isinstance(off, DisabledSmsBackend)
    with pytest.raises(UpstreamError) as refused:
        off.send("+8613812345678", "x", idempotency_key="k")
    assert refused.value.code == "sms_unavailable"
    settings = Settings(data_dir=tmp_path,
                        sms_backend="python:tests.notifications.test_sms:RecordingSms")
    plugin = sms_backend_from_settings(settings)
    assert isinstance(plugin, RecordingSms) and plugin.settings is settings
    plugin.send("+8613812345678", "hello", idempotency_key="job-1-ab")
    assert RecordingSms.sent[-1] == ("+8613812345678", "hello", "job-1-ab")


@pytest.mark.parametrize("spec", ["smtp", "python:", "python:os", "tests.x:Y", "python:a b:C"])
def test_a_bad_provider_setting_stops_start_up(spec: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(sms_backend=spec)
    assert "ECONTRACT_SMS_BACKEND" in refused.value.message


@pytest.mark.parametrize(("spec", "why"), [
    ("python:tests.notifications.no_such_module:Sms", "cannot import"),
    ("python:tests.notifications.test_sms:Missing", "no class"),
    ("python:tests.notifications.test_sms:NotAProvider", "send"),
])
def test_a_plugin_that_cannot_load_stops_start_up(tmp_path: Path, spec: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        sms_backend_from_settings(Settings(data_dir=tmp_path, sms_backend=spec))
    assert why in refused.value.message


def test_the_default_country_code_is_checked() -> None:
    assert load_settings(sms_default_country_code="+44").sms_default_country_code == "44"
    for bad in ("0", "1234", "abc", ""):
        with pytest.raises(ConfigurationError):
            load_settings(sms_default_country_code=bad)
