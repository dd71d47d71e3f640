"""E-mail: the message, its MIME form, and the backends that deliver it (file or SMTP).

Messages are queued through the outbox (``econtract.notifications.jobs``) and delivered by the
worker, so ``send`` may be called again for the same message after a crash or a failed attempt.
Both backends take a ``message_id`` that stays the same across retries: the file backend rewrites
the same file, and recipients' mail software can recognise a resent SMTP message by its
Message-ID.

Attachments come in two forms. Small ones (:class:`EmailAttachment`) travel inline, base64, in
the outbox payload. Contract PDFs do not: a sealed contract with its embedded attachments can
weigh tens of megabytes, and it goes to every party, so inlining it would copy it into one
outbox row per recipient. A :class:`StoredAttachment` is only a reference — organisation,
contract, blob key and SHA-256 — and the worker reads, decrypts and checks the bytes from the
blob store when it sends (``econtract.notifications.jobs``). The document stays encrypted at rest
in one place, the payload stays a few hundred bytes, and a blob that changed is refused
(``integrity_error``) instead of mailed. Both backends send the resolved message as MIME
``multipart/mixed`` (the file backend writes exactly what SMTP would send).
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.policy
import email.utils
import hashlib
import logging
import re
import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from econtract.context import utcnow
from econtract.errors import ConfigurationError, UpstreamError, ValidationFailed
from econtract.fsutil import write_atomically
from econtract.settings import Settings

logger = logging.getLogger(__name__)

_MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class EmailAttachment:
    filename: str
    content_type: str
    data: bytes

    def __post_init__(self) -> None:
        _check_header_text("attachment file name", self.filename)
        _check_content_type(self.content_type)


def _check_content_type(content_type: str) -> None:
    maintype, _, subtype = content_type.partition("/")
    if not maintype or not subtype or any(c.isspace() for c in content_type):
        raise ValidationFailed(f"invalid attachment content type {content_type!r}")


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment that stays in the blob store until the worker sends the message.

    The outbox keeps only this reference; the bytes are read (decrypted, SHA-256 checked) when
    the message is sent, see :meth:`EmailMessage.resolved`.
    """

    filename: str
    content_type: str
    org_id: uuid.UUID
    contract_id: uuid.UUID
    key: str
    """The blob key (``<org>/<contract>/<name>``)."""
    sha256: str
    """The plaintext's SHA-256 (hex), as the database records it."""

    def __post_init__(self) -> None:
        _check_header_text("attachment file name", self.filename)
        _check_content_type(self.content_type)
        if not _SHA256.fullmatch(self.sha256):
            raise ValidationFailed("a stored attachment needs the SHA-256 of its content")
        if not self.key.startswith(f"{self.org_id}/{self.contract_id}/"):
            raise ValidationFailed("the attachment's blob key belongs to another contract")

    def to_payload(self) -> dict[str, str]:
        return {"filename": self.filename, "content_type": self.content_type,
                "org_id": str(self.org_id), "contract_id": str(self.contract_id),
                "key": self.key, "sha256": self.sha256}

    @classmethod
    def from_payload(cls, item: dict[str, Any]) -> StoredAttachment:
        return cls(filename=str(item["filename"]), content_type=str(item["content_type"]),
                   org_id=uuid.UUID(str(item["org_id"])),
                   contract_id=uuid.UUID(str(item["contract_id"])), key=str(item["key"]),
                   sha256=str(item["sha256"]))


#: Reads a stored attachment's bytes (the worker passes the blob store's ``get``).
AttachmentLoader = Callable[[StoredAttachment], bytes]


@dataclass(frozen=True)
class EmailMessage:
    """One e-mail. ``to`` holds addresses, optionally with a display name (``张三 <z@x.cn>``)."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[EmailAttachment, ...] = ()
    stored_attachments: tuple[StoredAttachment, ...] = ()
    """Attachments by reference, resolved by the worker (see the module docstring)."""

    def __post_init__(self) -> None:
        # Checked here, when the message is queued, rather than in the worker: a message that
        # can never be built would otherwise be retried until it runs out of attempts.
        if not self.to:
            raise ValidationFailed("an e-mail needs at least one recipient")
        for address in self.to:
            _check_header_text("recipient", address)
            if "@" not in email.utils.parseaddr(address)[1]:
                raise ValidationFailed(f"invalid recipient address {address!r}")
        _check_header_text("subject", self.subject)

    def to_payload(self) -> dict[str, Any]:
        """A JSON-safe form for the outbox payload (attachments as base64)."""
        return {
            "to": list(self.to),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type,
                 "data": base64.b64encode(a.data).decode("ascii")}
                for a in self.attachments
            ],
            "stored_attachments": [a.to_payload() for a in self.stored_attachments],
        }

    def resolved(self, load: AttachmentLoader) -> EmailMessage:
        """This message with every stored attachment read in (``load`` checks each SHA-256)."""
        if not self.stored_attachments:
            return self
        loaded = tuple(EmailAttachment(a.filename, a.content_type, load(a))
                       for a in self.stored_attachments)
        return replace(self, attachments=self.attachments + loaded, stored_attachments=())

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EmailMessage:
        try:
            return cls(
                to=tuple(str(address) for address in payload["to"]),
                subject=str(payload["subject"]),
                text=str(payload["text"]),
                html=None if payload.get("html") is None else str(payload["html"]),
                attachments=tuple(
                    EmailAttachment(filename=str(a["filename"]),
                                    content_type=str(a["content_type"]),
                                    data=base64.b64decode(a["data"], validate=True))
                    for a in payload.get("attachments", ())
                ),
                stored_attachments=tuple(StoredAttachment.from_payload(a)
                                         for a in payload.get("stored_attachments") or ()),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ValidationFailed(f"malformed e-mail payload: {_describe(exc)}") from exc


def _check_header_text(what: str, value: str) -> None:
    # A line break in a header value would let the text inject headers of its own.
    if "\r" in value or "\n" in value:
        raise ValidationFailed(f"the {what} must not contain line breaks")
    if not value.strip():
        raise ValidationFailed(f"the {what} must not be empty")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _check_message_id(message_id: str) -> None:
    # It becomes a file name and part of a header, so keep it to a safe alphabet.
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"invalid message id {message_id!r}: use letters, digits, '.', '_', '-'")


def _message_id_header(message: EmailMessage, *, sender: str, message_id: str) -> str:
    # The same message_id can come back after a database is reset (job ids restart at 1), and
    # some mail services silently drop a message whose Message-ID they have seen. A digest of
    # the content tells such messages apart while a retry of one job keeps the same header.
    # Attachments enter by their SHA-256: a contract PDF need not be base64-encoded for this.
    summary = (message.to, message.subject, message.text, message.html,
               [(a.filename, a.content_type, hashlib.sha256(a.data).hexdigest())
                for a in message.attachments],
               [a.to_payload() for a in message.stored_attachments])
    digest = hashlib.sha256(repr(summary).encode("utf-8")).hexdigest()[:16]
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2]
    if not domain.isascii() or not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
        domain = "localhost"
    return f"<{message_id}.{digest}@{domain}>"


def build_mime(message: EmailMessage, *, sender: str,
               message_id: str) -> email.message.EmailMessage:
    """The RFC 5322 form of ``message``: UTF-8 throughout, CRLF line ends (``policy.SMTP``)."""
    _check_message_id(message_id)
    if message.stored_attachments:
        # A bug, not bad input: the worker resolves stored attachments before sending.
        raise ValidationFailed("resolve the stored attachments before building the message")
    mime = email.message.EmailMessage(policy=email.policy.SMTP)
    mime["From"] = sender
    mime["To"] = ", ".join(message.to)
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.format_datetime(utcnow())
    mime["Message-ID"] = _message_id_header(message, sender=sender, message_id=message_id)
    # Non-ASCII text goes base64 rather than 8bit, which not every relay accepts.
    mime.set_content(message.text, cte=None if message.text.isascii() else "base64")
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html",
                             cte=None if message.html.isascii() else "base64")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mime.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                            filename=attachment.filename)
    return mime


class EmailBackend(Protocol):
    def send(self, message: EmailMessage, *, message_id: str) -> None:
        """Deliver ``message``; raise ``UpstreamError`` when that fails (the job is retried)."""


class FileEmailBackend:
    """Writes each message to ``<outbox_dir>/<message_id>.eml`` (development, tests, air-gapped)."""

    def __init__(self, outbox_dir: Path, sender: str) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.sender = sender

    def path_for(self, message_id: str) -> Path:
        _check_message_id(message_id)
        return self.outbox_dir / f"{message_id}.eml"

    def send(self, message: EmailMessage, *, message_id: str) -> None:
        target = self.path_for(message_id)
        data = build_mime(message, sender=self.sender, message_id=message_id).as_bytes()
        try:
            # Mail holds personal data and signing links: only our own user may read it.
            self.outbox_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(target, data)
        except OSError as exc:
            raise UpstreamError(f"could not write e-mail to {target}: {_describe(exc)}") from exc


class SmtpEmailBackend:
    """Sends through an SMTP relay with the standard library's ``smtplib``."""

    def __init__(self, host: str, port: int, sender: str, user: str = "", password: str = "",
                 starttls: bool = False, timeout: float = 20.0) -> None:
        if not (user + password).isascii():
            # smtplib encodes AUTH credentials as ASCII; fail at start-up, not on every send.
            raise ConfigurationError("the SMTP user name and password must be ASCII")
        self.host = host
        self.port = port
        self.sender = sender
        self.user = user
        self._password = password
        self.starttls = starttls
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpEmailBackend(host={self.host!r}, port={self.port}, user={self.user!r})"

    def send(self, message: EmailMessage, *, message_id: str) -> None:
        mime = build_mime(message, sender=self.sender, message_id=message_id)
        recipients = [email.utils.parseaddr(address)[1] for address in message.to]
        try:
            refused = self._deliver(mime, recipients)
        except smtplib.SMTPAuthenticationError as exc:
            raise UpstreamError(self._scrub(
                f"SMTP server {self.host}:{self.port} refused the login of user {self.user!r}: "
                f"{exc.smtp_code} {_reply_text(exc.smtp_error)}")) from None
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            raise UpstreamError(self._scrub(
                f"sending e-mail through SMTP server {self.host}:{self.port} failed: "
                f"{_describe(exc)}")) from exc
        if refused:
            # Not raised: a retry would send the message again to everyone who did get it.
            logger.warning("SMTP server %s:%s refused some recipients of %s: %s",
                           self.host, self.port, message_id, sorted(refused))

    def _deliver(self, mime: email.message.EmailMessage,
                 recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self._password)
            return smtp.send_message(mime, from_addr=email.utils.parseaddr(self.sender)[1],
                                     to_addrs=recipients)

    def _scrub(self, text: str) -> str:
        # Belt and braces: error text is logged and stored on the job, the password never is.
        return text.replace(self._password, "***") if self._password else text


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def email_backend_from_settings(settings: Settings) -> EmailBackend:
    if settings.email_backend == "smtp":
        return SmtpEmailBackend(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.email_from,
            user=settings.smtp_user, password=settings.smtp_password.get_secret_value(),
            starttls=settings.smtp_starttls, timeout=settings.smtp_timeout)
    return FileEmailBackend(settings.outbox_dir, settings.email_from)
