"""SMS: phone numbers, the provider interface, the ``log`` provider and the ``sms.send`` job.

Messages go through the outbox like e-mail: ``queue_sms`` adds a job in the caller's
transaction and the worker hands it to the configured provider, so a code is sent only if the
request that made it commits, and a provider that is down means a retry, not a lost message.

Providers (``ECONTRACT_SMS_BACKEND``):

- ``log`` (default): each message becomes ``<data dir>/sms-outbox/<key>.json`` and a log line,
  so development and tests can read the codes. It sends nothing: never use it in production.
- ``none``: SMS is off; asking for a code by SMS is refused before any code is made.
- ``python:package.module:Class``: a plug-in for a real provider. ``Class(settings)`` is built
  once at start-up (an import error or a bad class stops the program with a clear message) and
  must have the method of ``SmsBackend``. Its own configuration (API keys, sender id, template
  id) it reads itself, for example from environment variables of its own; it raises
  ``econtract.errors.UpstreamError`` when a send fails so that the job is retried, and passes
  ``idempotency_key`` to providers that support it so a retry cannot deliver twice.

Numbers are stored as the sender typed them and normalised to E.164 (``+8613812345678``) when a
message is queued; ``mask_phone`` gives the form shown back to the signer (``+86 138****5678``).
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import secrets
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from econtract.context import utcnow
from econtract.errors import ConfigurationError, UpstreamError, ValidationFailed
from econtract.fsutil import write_atomically
from econtract.jobs import JobContext, JobHandler, enqueue
from econtract.jobs.models import OutboxJob
from econtract.settings import Settings

logger = logging.getLogger(__name__)

SEND_SMS = "sms.send"
MAX_TEXT = 500

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SEPARATORS = re.compile(r"[\s().-]")
# E.164 country codes are prefix-free: these are the one- and two-digit ones, all others have
# three digits. Enough to show a number as "+CC national" without a numbering-plan library.
_ONE_DIGIT = frozenset("17")
_TWO_DIGITS = frozenset({
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
    "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"})
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")

INVALID_PHONE = "The phone number cannot receive text messages. Ask the sender to correct it."


# --- phone numbers -------------------------------------------------------------------------

def normalise_phone(raw: str, *, default_country_code: str = "86") -> str:
    """``raw`` as an E.164 number (``+`` and 8 to 15 digits), or ``ValidationFailed``.

    Spaces, dots, dashes and brackets are dropped; ``00`` counts as ``+``; a number without
    either gets ``default_country_code`` (a leading trunk ``0`` is dropped first). Mainland China
    numbers must be mobile numbers (SMS cannot reach a landline).
    """
    number = _SEPARATORS.sub("", raw or "")
    if number.startswith("00"):
        number = "+" + number[2:]
    if not number.startswith("+"):
        number = f"+{default_country_code}{number.removeprefix('0')}"
    digits = number[1:]
    if not digits.isascii() or not digits.isdigit() or not 8 <= len(digits) <= 15 \
            or digits.startswith("0"):
        raise ValidationFailed(INVALID_PHONE, code="invalid_phone")
    country, national = split_phone(number)
    if country == "86" and not _CN_MOBILE.fullmatch(national):
        raise ValidationFailed(INVALID_PHONE, code="invalid_phone")
    return number


def split_phone(e164: str) -> tuple[str, str]:
    """(country code, national number) of an E.164 number."""
    digits = e164.removeprefix("+")
    size = 1 if digits[:1] in _ONE_DIGIT else 2 if digits[:2] in _TWO_DIGITS else 3
    return digits[:size], digits[size:]


def mask_phone(e164: str) -> str:
    """``+86 138****5678``: enough for the signer to recognise their phone, not to learn it."""
    country, national = split_phone(e164)
    if len(national) >= 8:
        shown = national[:3] + "*" * (len(national) - 7) + national[-4:]
    else:
        shown = "*" * max(len(national) - 2, 1) + national[-2:]
    return f"+{country} {shown}"


# --- providers -----------------------------------------------------------------------------

@runtime_checkable
class SmsBackend(Protocol):
    def send(self, to: str, text: str, *, idempotency_key: str) -> None:
        """Deliver ``text`` to the E.164 number ``to``; raise ``UpstreamError`` when that fails
        (the job is retried, with the same ``idempotency_key``)."""


class LogSmsBackend:
    """Writes each message to ``<outbox_dir>/<idempotency_key>.json`` and logs it (development,
    tests). A retry rewrites the same file."""

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = Path(outbox_dir)

    def path_for(self, idempotency_key: str) -> Path:
        if not _KEY.fullmatch(idempotency_key):  # it becomes a file name
            raise ValueError(f"invalid idempotency key {idempotency_key!r}")
        return self.outbox_dir / f"{idempotency_key}.json"

    def send(self, to: str, text: str, *, idempotency_key: str) -> None:
        target = self.path_for(idempotency_key)
        record = {"to": to, "text": text, "idempotency_key": idempotency_key,
                  "written_at": utcnow().isoformat()}
        try:
            # Codes are secrets for five minutes: only our own user may read them.
            self.outbox_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(target, json.dumps(record, ensure_ascii=False).encode("utf-8"))
        except OSError as exc:
            raise UpstreamError(f"could not write SMS to {target}: {exc}") from exc
        logger.info("SMS (log provider, not sent) to %s [%s]: %s", to, idempotency_key, text)


class DisabledSmsBackend:
    """``ECONTRACT_SMS_BACKEND=none``: nothing is sent (codes by SMS are refused up front)."""

    def send(self, to: str, text: str, *, idempotency_key: str) -> None:
        raise UpstreamError("SMS is turned off (ECONTRACT_SMS_BACKEND=none).",
                            code="sms_unavailable")


def sms_backend_from_settings(settings: Settings) -> SmsBackend:
    spec = settings.sms_backend
    if spec == "log":
        return LogSmsBackend(settings.sms_outbox_dir)
    if spec == "none":
        return DisabledSmsBackend()
    return _load_plugin(spec, settings)


def _load_plugin(spec: str, settings: Settings) -> SmsBackend:
    module_name, _, class_name = spec.removeprefix("python:").partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"ECONTRACT_SMS_BACKEND: cannot import {module_name}: "
                                 f"{exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ConfigurationError(f"ECONTRACT_SMS_BACKEND: {module_name} has no class "
                                 f"{class_name}")
    try:
        backend = cls(settings)
    except ConfigurationError:
        raise
    except Exception as exc:  # a plug-in's own start-up failure, reported as configuration
        raise ConfigurationError(f"ECONTRACT_SMS_BACKEND: {class_name}(settings) failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(backend, SmsBackend):
        raise ConfigurationError(f"ECONTRACT_SMS_BACKEND: {class_name} has no "
                                 "send(to, text, *, idempotency_key) method")
    return backend


# --- the job -------------------------------------------------------------------------------

def queue_sms(session: Session, *, to: str, text: str, now: datetime,
              org_id: uuid.UUID | None = None) -> OutboxJob:
    """Queue ``text`` to the E.164 number ``to``; it is sent only if the transaction commits."""
    if not re.fullmatch(r"\+[1-9]\d{7,14}", to):
        raise ValidationFailed(INVALID_PHONE, code="invalid_phone")
    if not text.strip() or len(text) > MAX_TEXT:
        raise ValidationFailed(f"an SMS needs 1 to {MAX_TEXT} characters of text")
    # The key survives retries (it is in the payload) but not a reset database, where job ids
    # start again at 1 and a provider could take a new message for a duplicate.
    return enqueue(session, kind=SEND_SMS, now=now, org_id=org_id,
                   payload={"to": to, "text": text, "nonce": secrets.token_hex(4)})


def make_send_sms_handler(backend: SmsBackend) -> JobHandler:
    def send_sms(ctx: JobContext, payload: dict[str, Any]) -> None:
        try:
            to, text, nonce = str(payload["to"]), str(payload["text"]), str(payload["nonce"])
        except KeyError as exc:
            raise ValidationFailed(f"malformed SMS payload: missing {exc}") from exc
        backend.send(to, text, idempotency_key=f"job-{ctx.job.id}-{nonce}")
        # Delivered: the code leaves the database, only who got a message stays.
        ctx.job.payload = {"delivered": True, "to": to}

    return send_sms
