"""CSV export of any contract list (导出): the same filters as the list, every matching row.

``start`` runs in the request's transaction: it checks the filters, counts the rows and writes
the ``contracts.exported`` audit event, so an export is on record even if the download is broken
off. ``stream`` then yields the file in pieces from its own read-only session, ``yield_per``
rows at a time, so a large export never sits in memory whole; it stops at ``MAX_ROWS``.

The file is UTF-8 with a byte order mark, which Excel needs to read Chinese correctly. Cells are
user input (titles, names, tags): one starting with ``= + - @`` (or a tab or carriage return)
would be run as a formula by a spreadsheet (CSV injection), so it gets a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from econtract.accounts.models import User
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.context import Ctx
from econtract.contracts import service
from econtract.contracts.models import Contract
from econtract.contracts.schemas import ContractFilter
from econtract.db import read_only_unit

MAX_ROWS = 50_000
"""At most this many rows per export; narrow the filters for more."""
BATCH = 500
COLUMNS = ("id", "title", "status", "category", "tags", "signers", "effective_date",
           "expiry_date", "sign_deadline", "created_at", "updated_at", "completed_at",
           "archived_at", "owner")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPE = "text/csv; charset=utf-8"


@dataclass(frozen=True)
class Export:
    """An export recorded and ready to stream."""

    filters: ContractFilter
    total: int
    """How many contracts match (the file holds at most ``MAX_ROWS`` of them)."""
    filename: str

    @property
    def truncated(self) -> bool:
        return self.total > MAX_ROWS


def safe_cell(value: str) -> str:
    """The cell as text a spreadsheet shows and never evaluates."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def start(session: Session, ctx: Ctx, *, filters: ContractFilter) -> Export:
    """Count what matches and record the export (the caller's transaction)."""
    query = service.filtered(session, ctx, filters=filters)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    audit.record(session, ctx, EventKind.CONTRACTS_EXPORTED, org_id=ctx.org_id,
                 data={"filters": filters.model_dump(mode="json", exclude={"page", "per_page"},
                                                     exclude_defaults=True),
                       "rows": min(total, MAX_ROWS), "matching": total})
    stamp = ctx.now().strftime("%Y%m%d-%H%M%S")
    return Export(filters=filters, total=total, filename=f"contracts-{stamp}.csv")


def stream(engine: Engine, ctx: Ctx, export: Export) -> Iterator[bytes]:
    """The CSV file, in pieces (a generator for a streaming response)."""
    yield "\ufeff".encode()
    yield _line(COLUMNS)
    with read_only_unit(engine) as session:
        query = (service.filtered(session, ctx, filters=export.filters)
                 .add_columns(User.name, User.email)
                 .join(User, User.id == Contract.owner_id)
                 .order_by(Contract.created_at, Contract.id).limit(MAX_ROWS)
                 .execution_options(yield_per=BATCH))
        for part in session.execute(query).partitions():
            completed = _completed_at(session, [row[0].id for row in part])
            yield b"".join(_line(_row(contract, completed.get(contract.id), owner))
                           for contract, *owner in part)


def _completed_at(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    # No column holds it (status_changed_at moves on when a contract lapses): the audit
    # trail's contract.completed event does.
    rows = session.execute(select(AuditEvent.contract_id, func.min(AuditEvent.occurred_at))
                           .where(AuditEvent.contract_id.in_(ids),
                                  AuditEvent.kind == EventKind.CONTRACT_COMPLETED.value)
                           .group_by(AuditEvent.contract_id))
    return {cid: at for cid, at in rows if cid is not None}


def _row(contract: Contract, completed_at: datetime | None, owner: list[str]) -> list[str]:
    signers = "; ".join(f"{s.name} <{s.email}>" for s in contract.signers)
    return [str(contract.id), contract.title, contract.status, contract.category or "",
            "; ".join(t.tag for t in contract.tags), signers, _text(contract.effective_date),
            _text(contract.expiry_date), _text(contract.sign_deadline),
            _text(contract.created_at), _text(contract.updated_at), _text(completed_at),
            _text(contract.archived_at), f"{owner[0]} <{owner[1]}>"]


def _text(value: date | datetime | None) -> str:
    # Dates as YYYY-MM-DD, times as ISO 8601 in UTC (what the database holds).
    return value.isoformat() if value is not None else ""


def _line(cells: Iterable[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    return out.getvalue().encode()
