"""E-mail through the outbox: queue in the caller's transaction, send from the worker.

A message's stored attachments (contract PDFs, the certificate of completion) are read from the
blob store here, when the message is sent — never copied into the outbox (see
``econtract.notifications.email``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from econtract.errors import ConfigurationError
from econtract.jobs import JobContext, JobHandler, enqueue
from econtract.jobs.models import OutboxJob
from econtract.notifications.email import EmailBackend, EmailMessage, StoredAttachment
from econtract.storage import BlobStore

SEND_EMAIL = "email.send"


def queue_email(session: Session, *, message: EmailMessage, now: datetime,
                org_id: uuid.UUID | None = None) -> OutboxJob:
    """Queue ``message``; it is sent only if the caller's transaction commits."""
    return enqueue(session, kind=SEND_EMAIL, payload=message.to_payload(), now=now,
                   org_id=org_id)


def make_send_email_handler(backend: EmailBackend, *,
                            blobs: BlobStore | None = None) -> JobHandler:
    """The ``email.send`` handler; ``blobs`` resolves stored attachments (none: refused)."""

    def load(attachment: StoredAttachment) -> bytes:
        if blobs is None:
            raise ConfigurationError("this worker has no blob store to read attachments from")
        # Decrypts under the organisation/contract binding and checks the recorded SHA-256.
        return blobs.get(org_id=attachment.org_id, contract_id=attachment.contract_id,
                         key=attachment.key, sha256=attachment.sha256)

    def send_email(ctx: JobContext, payload: dict[str, Any]) -> None:
        # Derived from the job, not the attempt: a retry rewrites the same file or reuses the
        # same Message-ID instead of producing a second, different message.
        queued = EmailMessage.from_payload(payload)
        message = queued.resolved(load)
        backend.send(message, message_id=f"job-{ctx.job.id}")
        # Once delivered, the body leaves the database: invitation links and one-time codes
        # are bearer secrets, and a done job needs only who got what, for the record.
        ctx.job.payload = {"delivered": True, "to": list(message.to),
                           "subject": message.subject,
                           "attachments": [a.filename for a in message.attachments],
                           "attachment_sha256": [a.sha256 for a in queued.stored_attachments]}

    return send_email
