"""What the periodic sweeps share (signing deadlines and reminders in ``parties.reminders``;
expiry and renewal reminders in ``contracts.validity``): claiming a batch of due contracts, and
handling each in a savepoint so one broken contract cannot hold up the others."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session, lazyload

from econtract.contracts.models import Contract
from econtract.db import is_postgres

logger = logging.getLogger(__name__)

T = TypeVar("T")


def claim(session: Session, query: Select[Contract], batch: int) -> list[Contract]:
    """Up to ``batch`` contracts of ``query``, locked, without their tags, clauses, attachments
    and approvals (a sweep does not need them). On PostgreSQL rows another sweeper (or a signer)
    holds are skipped, not waited for: they are being handled, and a row committed meanwhile is
    re-checked against the WHERE."""
    query = query.limit(batch).options(lazyload(Contract.tags), lazyload(Contract.clauses),
                                       lazyload(Contract.attachments),
                                       lazyload(Contract.approvals))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def isolated(session: Session, sweep: str, failed: list[uuid.UUID], contract_id: uuid.UUID,
             work: Callable[[], T]) -> T | None:
    """``work`` in a savepoint; ``None`` (logged, rolled back to the savepoint, ``contract_id``
    added to ``failed``) if it fails, so one broken contract cannot hold up the others or the
    sweep forever: it is retried next time."""
    try:
        with session.begin_nested():
            return work()
    except Exception:
        logger.exception("%s sweep: contract %s failed; it is retried next time", sweep,
                         contract_id)
        failed.append(contract_id)
        return None
