"""Bulk send (批量发送): one CSV for one template, one contract per row.

``prepare`` reads and checks the whole file before anything is sent: every row is validated as a
contract (title, signers, dates: ``ContractCreate``) and against the template's variables
(``templates.variables.resolve``, which reports every problem of a row at once), without rendering
any PDF. The run is stored with one item per row — ``invalid`` with its errors (CSV column →
message) or ``pending`` — and the run is ``invalid`` if any row is, else ``ready``. Only a
``ready`` run can be started (``start``); it becomes ``sending`` and one ``bulk.send`` job runs it.

The job sends the pending items in small batches, **each item in its own transaction**: the item
row is locked (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers),
skipped unless still ``pending``, its contract is created from the template and sent, and the item
becomes ``sent`` with its ``contract_id`` in that same transaction. A worker killed before the
commit leaves the item ``pending`` and no contract behind; after it, the item is ``sent``. So a
resumed run (the job's lease runs out and another worker claims it, or the next batch's job runs)
starts again at the first pending row and sends nothing twice. A row refused at send time (say, a
render error) becomes ``failed`` with its error and the run goes on; other errors (the database
gone) leave the item pending and the job is retried. Once no item is pending the run is ``done``.

CSV format
----------
UTF-8 (with or without a byte-order mark); a file that is not UTF-8 is read as GB18030 (what
Excel saves in China). The first row names the columns; every later row is one contract; blank
rows are skipped. Row numbers count the header as row 1. At most 5,000 rows and 2 MB.

=========================  ===============================================================
``title``                  required: the contract's title
``signerN_name``           N = 1 … 10; ``signer1_name`` and ``signer1_email`` are required
``signerN_email``          columns, a row may leave later signers empty
``signerN_phone``          optional
``signerN_order``          optional signing order (1 = first); signers without one sign at
                           once (order 1), as in the API
``sign_deadline``          optional: ISO 8601 with a zone (``2027-01-31T18:00:00+08:00``), or
                           ``YYYY-MM-DD`` = the end of that day in China (23:59:59 UTC+8)
``effective_date``         optional ``YYYY-MM-DD``
``expiry_date``            optional ``YYYY-MM-DD``
``category``               optional
``tags``                   optional, separated by ``;``
*variable*                 each template variable by its name (``amount``, ``start_date`` …)
*party*\\ ``.``\\ *field*     a party variable's ``name``, ``id_number``, ``address``,
                           ``contact`` (``employer.name`` …); a plain ``employer`` column is
                           the name
=========================  ===============================================================

Any other column is refused, as is a file without ``title``, ``signer1_name``,
``signer1_email`` or a column for each required variable that has no default. Contracts made
in bulk have no approvers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from econtract.accounts import service as accounts
from econtract.accounts.models import User
from econtract.accounts.policy import Role, at_least, is_system, same_org
from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Actor, Ctx
from econtract.contracts import from_template, policy, sending
from econtract.contracts.models import BulkItem, BulkRun
from econtract.contracts.schemas import ContractCreate
from econtract.contracts.service import UploadLimits
from econtract.credentials.engine import SigningEngine
from econtract.errors import (
    Conflict,
    EContractError,
    NotFound,
    PermissionDenied,
    UploadRejected,
    ValidationFailed,
)
from econtract.jobs import enqueue
from econtract.jobs.registry import JobContext, JobHandler
from econtract.storage import BlobStore
from econtract.templates import service as templates
from econtract.templates.variables import Variable, VarType, resolve

log = logging.getLogger(__name__)

BULK_JOB = "bulk.send"
MAX_ROWS = 5000
MAX_BYTES = 2 * 2**20
MAX_SIGNERS = 10
BATCH = 10
"""Items one job run sends (1–2 s each) before it queues the next batch: well inside a lease."""
CHINA = timezone(timedelta(hours=8))
FIXED = ("title", "sign_deadline", "effective_date", "expiry_date", "category", "tags")
SIGNER_FIELDS = ("name", "email", "phone", "order")
PARTY_FIELDS = ("name", "id_number", "address", "contact")
_SIGNER_COLUMN = re.compile(r"signer([1-9]|10)_(name|email|phone|order)")
STATUSES = ("pending", "sent", "failed", "invalid")


# --- reading the file ----------------------------------------------------------------------

def decode(data: bytes) -> str:
    """The text of the file: UTF-8 (a BOM is dropped), else GB18030."""
    with suppress(UnicodeDecodeError):
        return data.decode("utf-8-sig")
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ValidationFailed("The file is neither UTF-8 nor GB18030 text.",
                               code="bulk_csv_encoding") from None


@dataclass(frozen=True)
class Columns:
    """The header row checked against the template: where each value of a row comes from."""

    names: list[str]
    variables: list[Variable]
    signers: list[int] = field(default_factory=list)
    """The signer numbers that have columns, in order."""


def check_header(header: Sequence[str], variables: list[Variable]) -> Columns:
    """Refuses unknown, repeated and missing columns (one ``bulk_csv_columns`` error)."""
    names = [h.strip() for h in header]
    by_name = {v.name: v for v in variables}
    problems: dict[str, str] = {}
    seen: set[str] = set()
    signers: set[int] = set()
    for name in names:
        if not name:
            problems["(empty)"] = "a column without a name"
            continue
        if name in seen:
            problems[name] = "named twice"
        seen.add(name)
        signer = _SIGNER_COLUMN.fullmatch(name)
        if signer:
            signers.add(int(signer[1]))
            continue
        base, _, part = name.partition(".")
        if name in FIXED or (name in by_name) or (
                part and base in by_name and by_name[base].type is VarType.PARTY
                and part in PARTY_FIELDS):
            continue
        problems[name] = "not a column of this template"
    for needed in ("title", "signer1_name", "signer1_email"):
        if needed not in seen:
            problems[needed] = "missing column"
    for variable in variables:
        has = variable.name in seen or f"{variable.name}.name" in seen
        if variable.required and variable.default in (None, "") and not has:
            problems[variable.name] = "missing column"
    if problems:
        listing = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise ValidationFailed(f"The CSV's columns do not fit the template — {listing}.",
                               code="bulk_csv_columns", details={"problems": problems})
    return Columns(names=names, variables=variables, signers=sorted(signers))


def read_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the non-blank rows with their numbers (the header is row 1); a row with
    more cells than the header keeps them under ``""`` so validation can refuse it."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise ValidationFailed("The CSV is empty: the first row must name the columns.",
                                   code="bulk_csv_empty")
        names = [h.strip() for h in header]
        while names and not names[-1]:
            names.pop()  # Excel adds empty columns at the end; a cell under one is "extra"
        rows: list[tuple[int, dict[str, str]]] = []
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise ValidationFailed(f"At most {MAX_ROWS} rows per file.",
                                       code="bulk_too_many_rows")
            row = {name: cells[i].strip() if i < len(cells) else ""
                   for i, name in enumerate(names)}
            if len(cells) > len(names) and any(c.strip() for c in cells[len(names):]):
                row[""] = "extra"
            rows.append((number, row))
    except csv.Error as exc:
        raise ValidationFailed(f"The CSV cannot be read: {exc}.", code="bulk_csv_invalid") \
            from None
    if not rows:
        raise ValidationFailed("The CSV has a header but no rows.", code="bulk_csv_empty")
    return names, rows


# --- one row -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowInput:
    contract_in: ContractCreate
    values: dict[str, Any]


def _deadline(text: str) -> str | datetime:
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if not match:
        return text  # pydantic parses ISO 8601 and insists on a zone
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return text
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA)


def _contract_fields(row: Mapping[str, str], signers: list[int]) -> tuple[dict[str, Any],
                                                                           list[int]]:
    data: dict[str, Any] = {"title": row.get("title", "")}
    for name in ("effective_date", "expiry_date", "category"):
        if row.get(name):
            data[name] = row[name]
    if row.get("sign_deadline"):
        data["sign_deadline"] = _deadline(row["sign_deadline"])
    if row.get("tags"):
        data["tags"] = [t for t in row["tags"].split(";") if t.strip()]
    people: list[dict[str, Any]] = []
    numbers: list[int] = []
    for n in signers:
        cells = {f: row.get(f"signer{n}_{f}", "") for f in SIGNER_FIELDS}
        if not any(cells.values()):
            continue
        person: dict[str, Any] = {"name": cells["name"], "email": cells["email"]}
        if cells["phone"]:
            person["phone"] = cells["phone"]
        if cells["order"]:
            person["order"] = cells["order"]
        people.append(person)
        numbers.append(n)
    data["signers"] = people
    return data, numbers


def _column_of(loc: Sequence[Any], numbers: list[int], message: str) -> str:
    if not loc:  # the model's own checks (dates) name their field in the message
        return next((name for name in FIXED if message.startswith(name)), "row")
    if loc[0] == "signers" and len(loc) >= 3 and isinstance(loc[1], int) and \
            loc[1] < len(numbers):
        return f"signer{numbers[loc[1]]}_{loc[2]}"
    if loc[0] == "signers" and len(loc) == 1 and not numbers:
        return "signer1_email"
    return str(loc[0])


def _message(error: Mapping[str, Any]) -> str:
    return str(error.get("msg", "")).removeprefix("Value error, ")


def _variable_values(row: Mapping[str, str], variables: list[Variable]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for variable in variables:
        if variable.type is VarType.PARTY:
            party = {f: row.get(f"{variable.name}.{f}", "") for f in PARTY_FIELDS}
            if not party["name"]:
                party["name"] = row.get(variable.name, "")
            if any(party.values()):
                values[variable.name] = party
        elif row.get(variable.name):
            values[variable.name] = row[variable.name]
    return values


def _variable_column(name: str, columns: Columns) -> str:
    if name not in columns.names and f"{name}.name" in columns.names:
        return f"{name}.name"
    return name


def check_row(row: Mapping[str, str], columns: Columns,
              now: datetime) -> tuple[RowInput | None, dict[str, str]]:
    """The row as a contract and its typed values, or its errors (column → message)."""
    errors: dict[str, str] = {}
    if "" in row:
        errors["row"] = "more cells than columns"
    data, numbers = _contract_fields(row, columns.signers)
    if not numbers:
        errors.setdefault("signer1_name", "required")
        errors.setdefault("signer1_email", "required")
    contract_in: ContractCreate | None = None
    try:
        contract_in = ContractCreate.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            message = _message(error)
            errors.setdefault(_column_of(error.get("loc", ()), numbers, message), message)
    if contract_in is not None and contract_in.sign_deadline is not None and \
            contract_in.sign_deadline <= now:
        errors.setdefault("sign_deadline", "already passed")
    values = _variable_values(row, columns.variables)
    try:
        resolve(columns.variables, values)
    except ValidationFailed as exc:
        for name, message in exc.details.get("problems", {}).items():
            errors.setdefault(_variable_column(name, columns), message)
    if errors or contract_in is None:
        return None, errors
    return RowInput(contract_in=contract_in, values=values), {}


# --- services ------------------------------------------------------------------------------

def _require_create(ctx: Ctx) -> uuid.UUID:
    if ctx.org_id is None or not policy.can_create_contract(ctx.actor):
        raise PermissionDenied("You may not create contracts.")
    return ctx.org_id


def prepare(session: Session, ctx: Ctx, *, template_id: uuid.UUID, filename: str,
            data: bytes) -> BulkRun:
    """Read and check every row; store the run (``invalid`` or ``ready``) and its items."""
    org_id = _require_create(ctx)
    if ctx.actor.id is None:
        raise PermissionDenied("You may not create contracts.")
    if len(data) > MAX_BYTES:
        raise UploadRejected(f"The CSV is larger than {MAX_BYTES // 2**20} MB.",
                             code="upload_too_large")
    template = from_template.usable_template(session, ctx, template_id=template_id)
    variables = templates.variables_of(templates.version(session, template=template))
    header, rows = read_rows(decode(data))
    columns = check_header(header, variables)
    now = ctx.now()
    run = BulkRun(org_id=org_id, owner_id=ctx.actor.id, template_id=template.id,
                  filename=(filename or "bulk.csv")[:255],
                  csv_sha256=hashlib.sha256(data).hexdigest(), status="ready", total=len(rows),
                  created_at=now, updated_at=now)
    session.add(run)
    session.flush()
    invalid = 0
    for number, row in rows:
        _, errors = check_row(row, columns, now)
        invalid += bool(errors)
        session.add(BulkItem(run_id=run.id, row_number=number,
                             status="invalid" if errors else "pending",
                             data={k: v for k, v in row.items() if k}, errors=errors or None,
                             updated_at=now))
    run.status = "invalid" if invalid else "ready"
    session.flush()
    audit.record(session, ctx, EventKind.BULK_PREPARED, org_id=org_id, data={
        "run_id": str(run.id), "template_id": str(template.id), "filename": run.filename,
        "csv_sha256": run.csv_sha256, "rows": run.total, "invalid": invalid})
    return run


def can_view(actor: Actor, run: BulkRun) -> bool:
    """The run's owner, and managers and up of its organisation."""
    if not same_org(actor, run.org_id):
        return False
    return actor.id == run.owner_id or is_system(actor) or at_least(actor, Role.MANAGER)


def get(session: Session, ctx: Ctx, *, run_id: uuid.UUID, lock: bool = False) -> BulkRun:
    run = session.get(BulkRun, run_id, with_for_update=lock)
    if run is None or not can_view(ctx.actor, run):
        raise NotFound("No such bulk send.", code="bulk_not_found")
    return run


def start(session: Session, ctx: Ctx, *, run_id: uuid.UUID) -> BulkRun:
    """Queue the sending of a ``ready`` run; a run already started is returned as it is."""
    _require_create(ctx)
    run = get(session, ctx, run_id=run_id, lock=True)
    if run.status == "invalid":
        raise Conflict("Some rows are invalid: fix the CSV and upload it again.",
                       code="bulk_invalid")
    if run.status != "ready":
        return run
    now = ctx.now()
    run.status, run.updated_at = "sending", now
    enqueue(session, kind=BULK_JOB, payload={"run_id": str(run.id)}, now=now,
            org_id=run.org_id, dedupe_key=f"bulk:{run.id}")
    session.flush()
    audit.record(session, ctx, EventKind.BULK_STARTED, org_id=run.org_id,
                 data={"run_id": str(run.id), "rows": run.total})
    return run


def items(session: Session, *, run: BulkRun) -> list[BulkItem]:
    """The run's items in file order (``run`` comes from ``get``)."""
    return list(session.scalars(select(BulkItem).where(BulkItem.run_id == run.id)
                                .order_by(BulkItem.row_number)))


def progress(session: Session, run: BulkRun) -> dict[str, int]:
    """How many items are in each status, and ``total``."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in session.execute(
            select(BulkItem.status, func.count()).where(BulkItem.run_id == run.id)
            .group_by(BulkItem.status)):
        counts[str(status)] = int(count)
    counts["total"] = run.total
    return counts


# --- the job -------------------------------------------------------------------------------

Uow = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Sender:
    """What sending needs, bound when the process starts (see ``runtime``)."""

    uow: Uow
    blobs: BlobStore
    engine: Callable[[], SigningEngine]
    limits: UploadLimits
    base_url: str
    batch: int = BATCH

    def handler(self) -> JobHandler:
        def run_batch(job: JobContext, payload: dict[str, Any]) -> None:
            run_id = uuid.UUID(str(payload["run_id"]))
            if self.send_batch(run_id) > 0:
                # The next batch is a job of its own; the key ties it to this job, so a retry
                # of this one cannot queue it twice.
                enqueue(job.session, kind=BULK_JOB, payload={"run_id": str(run_id)},
                        now=job.now, org_id=job.job.org_id,
                        dedupe_key=f"bulk:{run_id}:after:{job.job.id}")
            else:
                finish(job.session, run_id=run_id, now=job.now)
        return run_batch

    def send_batch(self, run_id: uuid.UUID) -> int:
        """Send up to ``batch`` pending items, each in its own transaction; returns how many
        are still pending afterwards."""
        for item_id in self._pending(run_id, self.batch):
            self.send_item(item_id)
        return len(self._pending(run_id, 1))

    def _pending(self, run_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
        with self.uow() as session:
            return list(session.scalars(
                select(BulkItem.id).where(BulkItem.run_id == run_id,
                                          BulkItem.status == "pending")
                .order_by(BulkItem.row_number).limit(limit)))

    def send_item(self, item_id: uuid.UUID) -> None:
        """Create and send one row's contract and mark the item, all in one transaction; a
        row the services refuse is marked ``failed`` in a transaction of its own."""
        try:
            with self.uow() as session:
                item, run = _locked_item(session, item_id)
                if item is None or run is None:
                    return
                contract_id = self._create_and_send(session, run, item)
                item.status, item.contract_id = "sent", contract_id
                item.updated_at = datetime.now(UTC)
        except (EContractError, ValidationError) as exc:
            error = {"code": exc.code, "message": exc.message} \
                if isinstance(exc, EContractError) else \
                {"code": "validation_failed", "message": str(exc)[:500]}
            log.info("bulk item %s failed: %s", item_id, error)
            with self.uow() as session:
                item, _ = _locked_item(session, item_id)
                if item is not None:
                    item.status, item.errors = "failed", {"send": error}
                    item.updated_at = datetime.now(UTC)

    def _create_and_send(self, session: Session, run: BulkRun, item: BulkItem) -> uuid.UUID:
        owner = session.get(User, run.owner_id)
        if owner is None or not owner.is_active:
            raise PermissionDenied("The user who started this bulk send is no longer active.")
        ctx = Ctx(actor=accounts.actor_for(owner), base_url=self.base_url)
        template = templates.get(session, ctx, template_id=run.template_id)
        # The document's language is the template's (send lays out its pages in that locale).
        ctx = replace(ctx, locale=template.locale)
        columns = check_header(list(item.data), templates.variables_of(
            templates.version(session, template=template)))
        row_in, errors = check_row(item.data, columns, ctx.now())
        if row_in is None:
            listing = "; ".join(f"{k}: {v}" for k, v in errors.items())
            raise ValidationFailed(f"The row is no longer valid — {listing}.",
                                   code="bulk_row_invalid", details={"problems": errors})
        contract = from_template.create_from_template(
            session, ctx, blobs=self.blobs, limits=self.limits, contract_in=row_in.contract_in,
            template_id=run.template_id, values=row_in.values)
        sending.send(session, ctx, blobs=self.blobs, engine=self.engine(),
                     contract_id=contract.id)
        return contract.id


def _locked_item(session: Session, item_id: uuid.UUID) -> tuple[BulkItem | None,
                                                                 BulkRun | None]:
    # The item row first, before anything else is locked (the audit head comes later), so two
    # workers on the same run queue up here and the second one sees the item already sent.
    item = session.scalars(select(BulkItem).where(BulkItem.id == item_id)
                           .with_for_update()).first()
    if item is None or item.status != "pending":
        return None, None
    run = session.get(BulkRun, item.run_id)
    if run is None or run.status != "sending":
        return None, None
    return item, run


def finish(session: Session, *, run_id: uuid.UUID, now: datetime) -> None:
    """Mark a run whose items are all settled ``done`` (once) and record it."""
    run = session.get(BulkRun, run_id, with_for_update=True)
    if run is None or run.status != "sending":
        return
    counts = progress(session, run)
    if counts["pending"]:
        return
    run.status, run.updated_at = "done", now
    session.flush()
    ctx = Ctx(actor=Actor.system("bulk send"), clock=lambda: now)
    audit.record(session, ctx, EventKind.BULK_FINISHED, org_id=run.org_id, data={
        "run_id": str(run.id), "sent": counts["sent"], "failed": counts["failed"]})


def iter_sample(variables: list[Variable]) -> Iterator[list[str]]:
    """A header row and one example row for a template (``GET /bulk/sample.csv``)."""
    header = ["title", "signer1_name", "signer1_email", "signer1_phone", "signer2_name",
              "signer2_email", "sign_deadline", "effective_date", "expiry_date", "category",
              "tags"]
    example = ["Contract 2027-001", "张三", "zhang@example.com", "+86 138 0000 0000", "", "",
               "2027-01-31", "2027-02-01", "2028-01-31", "", "2027;bulk"]
    samples = {VarType.TEXT: "text", VarType.NUMBER: "10", VarType.MONEY: "12000.00",
               VarType.DATE: "2027-02-01"}
    for variable in variables:
        if variable.type is VarType.PARTY:
            for part in PARTY_FIELDS:
                header.append(f"{variable.name}.{part}")
                example.append({"name": "上海示例科技有限公司", "id_number": "91310000MA1234567X",
                                "address": "上海市浦东新区世纪大道100号",
                                "contact": "021-12345678"}[part])
        else:
            header.append(variable.name)
            default = variable.default
            example.append(str(default) if default not in (None, "") else
                           samples[variable.type])
    yield header
    yield example


def sample_csv(session: Session, ctx: Ctx, *, template_id: uuid.UUID) -> bytes:
    """The sample file as UTF-8 with a BOM, so Excel opens the Chinese text correctly."""
    template = templates.get(session, ctx, template_id=template_id)
    variables = templates.variables_of(templates.version(session, template=template))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(iter_sample(variables))
    return out.getvalue().encode("utf-8-sig")
