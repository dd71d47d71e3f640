"""HTML: the dashboard, the contract list, the new-contract form, the detail page and voiding.

Handlers are thin: parse the form or query, call ``contracts.service`` inside ``page_unit`` (which
commits), render. A rejected new-contract form is shown again with the user's values (files
excepted: browsers cannot pre-fill file inputs) and the error code, with status 422.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import zip_longest
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, QueryParams, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from econtract.accounts.models import User
from econtract.audit.events import EventKind
from econtract.audit.models import AuditEvent
from econtract.context import Ctx
from econtract.contracts import (
    approval,
    archive,
    export,
    from_template,
    policy,
    search,
    sending,
    service,
)
from econtract.contracts import dashboard as charts
from econtract.contracts.api import csv_response
from econtract.contracts.models import Contract
from econtract.contracts.schemas import ContractCreate, ContractFilter
from econtract.contracts.states import Event, Status, allowed_events
from econtract.errors import ValidationFailed
from econtract.http import read_upload, runtime
from econtract.parties import reminders
from econtract.web import i18n
from econtract.web.i18n import N_, Gettext
from econtract.web.render import PageUnit, page_unit, parse_id, render, see_other, translator

router = APIRouter(include_in_schema=False)

PER_PAGE = 20
RECENT = 5
PREVIEW_PAGES = 3
SIGNER_ROWS = 3
DEFAULT_TZ_OFFSET = 8 * 60  # minutes east of UTC when the browser sent none (JS off): China time
FILTER_FIELDS = ("q", "category", "tag", "created_from", "created_to", "expiry_from",
                 "expiry_to", "sort")
VIEW_FIELDS = ("archived", "expiring")
"""List views besides the filter form: archived contracts, contracts expiring within N days."""
SORTS = (("-created_at", N_("Newest first")), ("created_at", N_("Oldest first")),
         ("-updated_at", N_("Recently updated")), ("title", N_("Title (A–Z)")),
         ("expiry_date", N_("Expiry date (soonest first)")),
         ("sign_deadline", N_("Sign deadline (soonest first)")), ("status", N_("Status")))


# --- dashboard -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    status: str
    count: int
    width: int
    y: int


def _chart(counts: dict[str, int]) -> list[Bar]:
    """Rows of the server-drawn SVG bar chart (widths in viewBox units, no JS)."""
    most = max(counts.values(), default=0) or 1
    return [Bar(status=status, count=n, width=round(260 * n / most) if n else 0, y=i * 30)
            for i, (status, n) in enumerate(counts.items())]


@router.get("/")
def dashboard(request: Request) -> Response:
    with page_unit(request) as page:
        counts = service.status_counts(page.session, page.ctx)
        recent, _ = service.list_(page.session, page.ctx, filters=ContractFilter(
            sort="-updated_at", per_page=RECENT))
        funnel = charts.signing_funnel(page.session, page.ctx)
        expiring = charts.expiring_counts(page.session, page.ctx)
        return render(request, "dashboard.html", viewer=page.viewer, counts=counts,
                      total=sum(counts.values()), chart=_chart(counts), recent=recent,
                      funnel=charts.bars(funnel),
                      expiring=charts.bars({str(d): n for d, n in expiring.items()}))


# --- list ----------------------------------------------------------------------------------

def _filters(params: QueryParams) -> ContractFilter:
    raw: dict[str, Any] = {name: params.get(name) or None for name in FILTER_FIELDS}
    raw["sort"] = raw["sort"] or "-created_at"
    raw["status"] = [s for s in params.getlist("status") if s] or None
    page = params.get("page") or "1"
    raw["page"] = int(page) if page.isdigit() else 1
    raw["per_page"] = PER_PAGE
    raw["archived"] = archive.archived_filter(params.get("archived"))
    expiring = params.get("expiring") or ""
    raw["expiring_within_days"] = int(expiring) if expiring.isdigit() else None
    try:
        return ContractFilter.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(_pydantic_summary(exc), code="invalid_filter") from exc


def _page_url(params: QueryParams, page: int) -> str:
    kept = [(k, v) for k, v in params.multi_items() if k != "page" and v]
    return "/contracts?" + urlencode([*kept, ("page", str(page))])


@router.get("/contracts")
def contract_list(request: Request) -> Response:
    params = request.query_params
    with page_unit(request) as page:
        filters = _filters(params)
        items, total = service.list_(page.session, page.ctx, filters=filters)
        pages = max(math.ceil(total / PER_PAGE), 1)
        highlights = search.highlight(page.session, [c.id for c in items],
                                      search.terms_of(filters.q or ""))
        return render(
            request, "contracts/list.html", viewer=page.viewer, items=items, total=total,
            total_capped=total > service.COUNT_CAP, cap=service.COUNT_CAP, highlights=highlights,
            page_no=filters.page, pages=pages, statuses=[s.value for s in Status],
            categories=service.categories(page.session, page.ctx), sorts=SORTS,
            form={name: params.get(name, "") for name in (*FILTER_FIELDS, *VIEW_FIELDS)},
            windows=charts.EXPIRING_WINDOWS,
            view_url=lambda **kw: _view_url(params, **kw),
            export_url="/contracts/export.csv?" + urlencode(
                [(k, v) for k, v in params.multi_items() if k != "page" and v]),
            selected_statuses=set(params.getlist("status")),
            more_open=any(params.get(n) for n in FILTER_FIELDS[1:7]),
            prev_url=_page_url(params, filters.page - 1) if filters.page > 1 else None,
            next_url=_page_url(params, filters.page + 1) if filters.page < pages else None)


def _view_url(params: QueryParams, **changes: str) -> str:
    """The list URL with the current filters, some changed (an empty value drops one)."""
    kept = [(k, v) for k, v in params.multi_items() if k not in changes and k != "page" and v]
    return "/contracts?" + urlencode([*kept, *((k, v) for k, v in changes.items() if v)])


@router.get("/contracts/export.csv")
def contract_export(request: Request) -> Response:
    """Every contract matching the list's filters, as CSV (see ``contracts.export``)."""
    with page_unit(request) as page:
        filters = _filters(request.query_params)
        started = export.start(page.session, page.ctx, filters=filters)
        ctx = page.ctx
    return csv_response(runtime(request).engine, ctx, started)


# --- new contract --------------------------------------------------------------------------

@dataclass
class SignerRow:
    name: str = ""
    email: str = ""
    phone: str = ""
    order: str = ""

    @property
    def blank(self) -> bool:
        return not (self.name.strip() or self.email.strip() or self.phone.strip())


@dataclass
class ContractForm:
    """The new-contract form as typed, kept as strings so it can be shown again unchanged."""

    title: str = ""
    signers: list[SignerRow] = field(default_factory=list)
    effective_date: str = ""
    expiry_date: str = ""
    sign_deadline: str = ""
    tz_offset: str = ""
    clauses: str = ""
    category: str = ""
    tags: str = ""
    csrf_token: str = ""

    @classmethod
    def blank(cls) -> ContractForm:
        return cls(signers=[SignerRow(order=str(i)) for i in range(1, SIGNER_ROWS + 1)])

    @classmethod
    def parse(cls, form: FormData) -> ContractForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        def texts(name: str) -> list[str]:
            return [v if isinstance(v, str) else "" for v in form.getlist(name)]

        rows = [SignerRow(*(v or "" for v in values)) for values in zip_longest(
            texts("signer_name"), texts("signer_email"), texts("signer_phone"),
            texts("signer_order"))]
        rows += [SignerRow(order=str(len(rows) + i + 1)) for i in range(SIGNER_ROWS - len(rows))]
        names = ("title", "effective_date", "expiry_date", "sign_deadline", "tz_offset",
                 "clauses", "category", "tags", "csrf_token")
        return cls(signers=rows, **{name: text(name) for name in names})

    def deadline(self) -> datetime | None:
        """The datetime-local value in the browser's offset (sent by app.js; else UTC+8)."""
        if not self.sign_deadline.strip():
            return None
        try:
            offset = int(self.tz_offset) if self.tz_offset.strip() else DEFAULT_TZ_OFFSET
            if not -16 * 60 <= offset <= 16 * 60:
                raise ValueError("offset out of range")
            local = datetime.fromisoformat(self.sign_deadline.strip())
        except ValueError as exc:
            raise ValidationFailed("The sign deadline is not a valid date and time.",
                                   code="invalid_deadline") from exc
        return local.replace(tzinfo=timezone(timedelta(minutes=offset)))

    def to_create(self) -> ContractCreate:
        data = {
            "title": self.title, "effective_date": self.effective_date.strip() or None,
            "expiry_date": self.expiry_date.strip() or None, "sign_deadline": self.deadline(),
            "signers": [{"name": r.name, "email": r.email, "phone": r.phone.strip() or None,
                         "order": r.order.strip() or str(i)}
                        for i, r in enumerate((r for r in self.signers if not r.blank), 1)],
            "clauses": [c for c in re.split(r"\n\s*\n", self.clauses.replace("\r", "")) if
                        c.strip()],
            "category": self.category.strip() or None,
            "tags": [t for t in re.split(r"[,，、]", self.tags) if t.strip()]}
        return ContractCreate.model_validate(data)


async def _read_form(request: Request) -> FormData:
    # Async dependency so the sync handler gets the parsed multipart body; file parts beyond
    # the attachment limit are refused by the parser instead of being spooled to disk.
    limit = runtime(request).settings.max_attachments + 2
    try:
        return await request.form(max_files=limit, max_fields=1000)
    except StarletteHTTPException as exc:
        raise ValidationFailed(str(exc.detail), code="invalid_form") from exc


def _uploads(form: FormData, max_bytes: int) -> tuple[service.Upload, list[service.Upload]]:
    document = form.get("document")
    if not isinstance(document, UploadFile) or not document.filename:
        raise ValidationFailed("Choose the contract PDF.", code="document_required")
    extra = [a for a in form.getlist("attachments") if isinstance(a, UploadFile) and a.filename]
    return read_upload(document, max_bytes), [read_upload(a, max_bytes) for a in extra]


@router.get("/contracts/new")
def new_contract_form(request: Request) -> Response:
    return _new_page(request, ContractForm.blank(), None)


@router.post("/contracts/new")
def new_contract_submit(request: Request,
                        form: Annotated[FormData, Depends(_read_form)]) -> Response:
    data = ContractForm.parse(form)
    rt = runtime(request)
    try:
        with page_unit(request) as page:
            page.check_csrf(data.csrf_token)
            try:
                contract_in = data.to_create()
            except ValidationError as exc:
                raise ValidationFailed(_pydantic_summary(exc), code="invalid_form",
                                       details={"errors": exc.errors()}) from exc
            document, attachments = _uploads(form, rt.settings.max_upload_bytes)
            contract = service.create(page.session, page.ctx, blobs=rt.blobs, limits=rt.limits,
                                      contract_in=contract_in, document=document,
                                      attachments=attachments)
            contract_id = contract.id
    except ValidationFailed as exc:
        return _new_page(request, data, exc)
    return see_other(f"/contracts/{contract_id}")


def _new_page(request: Request, data: ContractForm, error: ValidationFailed | None) -> Response:
    # Its own unit of work: after a rejected submission the failed one has been rolled back.
    with page_unit(request) as page:
        rt = runtime(request)
        return render(request, "contracts/new.html", viewer=page.viewer, form=data,
                      error_code=error.code if error else None,
                      errors=_error_lines(error, translator(request)) if error else [],
                      categories=service.categories(page.session, page.ctx),
                      max_upload_mb=rt.settings.max_upload_mb,
                      max_attachments=rt.settings.max_attachments,
                      status=error.status if error else 200)


# --- detail and void -----------------------------------------------------------------------

@router.get("/contracts/{contract_id}")
def contract_detail(request: Request, contract_id: str) -> Response:
    cid = parse_id(contract_id)
    with page_unit(request) as page:
        contract = service.view(page.session, page.ctx, contract_id=cid)
        events = service.timeline(page.session, page.ctx, contract_id=cid, record_view=False)
        document = service.current_version(page.session, contract=contract)
        _ = translator(request)
        return render(request, "contracts/detail.html", viewer=page.viewer, contract=contract,
                      document=document, can_void=_can_void(page.ctx, contract),
                      archive_box=_archive_box(page.ctx, contract),
                      preview_pages=range(1, min(document.page_count, PREVIEW_PAGES) + 1),
                      timeline=[(e, _event_detail(e, _)) for e in events],
                      reminder=_reminder_box(page.session, page.ctx, contract,
                                             request.query_params.get("reminded")),
                      template_origin=from_template.origin(page.session, contract),
                      actions=_action_box(page.session, page.ctx, contract))


def _archive_box(ctx: Ctx, contract: Contract) -> str | None:
    """``archive`` or ``unarchive`` when the actor may do that now, else ``None``."""
    if not policy.can_edit_contract(ctx.actor, contract):
        return None
    if contract.archived_at is not None:
        return "unarchive"
    return "archive" if archive.can_archive(contract) else None


def _can_void(ctx: Ctx, contract: Contract) -> bool:
    # The same rule as the API's allowed_actions: the state machine, then the edit policy.
    return Event.VOID in allowed_events(Status(contract.status)) and \
        policy.can_edit_contract(ctx.actor, contract)


@router.post("/contracts/{contract_id}/void")
def contract_void(request: Request, contract_id: str,
                  reason: Annotated[str, Form(max_length=2000)] = "",
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    cid = parse_id(contract_id)
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        service.void(page.session, page.ctx, contract_id=cid, reason=reason)
    return see_other(f"/contracts/{cid}")


def _act(request: Request, contract_id: str, csrf_token: str,
         act: Callable[[PageUnit, uuid.UUID], object]) -> Response:
    """A contract button's POST: the CSRF check, the action, back to the contract page."""
    cid = parse_id(contract_id)
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        act(page, cid)
    return see_other(f"/contracts/{cid}")


@router.post("/contracts/{contract_id}/archive")
def contract_archive(request: Request, contract_id: str,
                     csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, contract_id, csrf_token,
                lambda page, cid: archive.archive(page.session, page.ctx, contract_id=cid))


@router.post("/contracts/{contract_id}/unarchive")
def contract_unarchive(request: Request, contract_id: str,
                       csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, contract_id, csrf_token,
                lambda page, cid: archive.unarchive(page.session, page.ctx, contract_id=cid))


@router.post("/contracts/{contract_id}/send")
def contract_send(request: Request, contract_id: str,
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    """Prepare and certify the document, then invite the first signers (as the API does)."""
    rt = runtime(request)
    return _act(request, contract_id, csrf_token,
                lambda page, cid: sending.send(page.session, page.ctx, blobs=rt.blobs,
                                               engine=rt.signing_engine(), contract_id=cid))


@router.post("/contracts/{contract_id}/submit")
def contract_submit(request: Request, contract_id: str,
                    csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, contract_id, csrf_token,
                lambda page, cid: approval.submit(page.session, page.ctx, contract_id=cid))


@router.post("/contracts/{contract_id}/decide")
def contract_decide(request: Request, contract_id: str,
                    decision: Annotated[str, Form()] = "",
                    comment: Annotated[str, Form(max_length=2000)] = "",
                    csrf_token: Annotated[str, Form()] = "") -> Response:
    """An approver's approve or reject (with the comment) from the detail page."""
    cid = parse_id(contract_id)
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        approval.decide(page.session, page.ctx, contract_id=cid,
                        approve=decision == "approve", comment=comment)
    return see_other(f"/contracts/{cid}")


@dataclass(frozen=True)
class ActionBox:
    """What the viewer may do next with the contract, for the detail page."""

    can_send: bool
    can_submit: bool
    my_decision: bool
    """The viewer is the approver whose decision is awaited."""
    approvers: list[tuple[str, str, str | None]]
    """(name, status, comment) of the latest round, or of the named approvers before one."""
    evidence: bool


def _action_box(session: Session, ctx: Ctx, contract: Contract) -> ActionBox:
    status = Status(contract.status)
    editor = policy.can_edit_contract(ctx.actor, contract)
    needs = approval.needs_approval(contract)
    latest = approval.current_round(session, contract)
    names = {u.id: u.name or u.email for u in session.scalars(
        select(User).where(User.id.in_(approval.approver_ids(contract)
                                       + [a.approver_id for a in latest])))}
    if latest:
        approvers = [(names.get(a.approver_id, "?"), a.status, a.comment) for a in latest]
    else:
        approvers = [(names.get(i, "?"), "", None) for i in approval.approver_ids(contract)]
    return ActionBox(
        can_send=editor and (status is Status.APPROVED or (status is Status.DRAFT
                                                            and not needs)),
        can_submit=editor and status is Status.DRAFT and needs,
        my_decision=status is Status.PENDING_APPROVAL and any(
            a.approver_id == ctx.actor.id and a.status == "pending" for a in latest),
        approvers=approvers,
        evidence=status in (Status.COMPLETED, Status.LAPSED))


@dataclass(frozen=True)
class ReminderBox:
    """The reminders card of the detail page (shown while the contract is out for signing)."""

    policy: reminders.ReminderPolicy
    sent: int
    next_at: datetime | None
    pending: int
    can_remind: bool
    again_at: datetime | None
    """While "Remind now" would be refused as too soon: from when it is allowed."""
    reminded: int | None
    """How many signers "Remind now" just reached (after the redirect), else ``None``."""


def _reminder_box(session: Session, ctx: Ctx, contract: Contract,
                  reminded: str | None) -> ReminderBox | None:
    if contract.status not in reminders.OPEN_STATUSES:
        return None
    pending = len(reminders.pending_signers(contract))
    return ReminderBox(policy=reminders.policy_for(session, contract),
                       sent=contract.reminders_sent, next_at=contract.next_reminder_at,
                       pending=pending,
                       can_remind=pending > 0 and policy.can_edit_contract(ctx.actor, contract),
                       again_at=reminders.remind_again_at(session, contract, now=ctx.now()),
                       reminded=int(reminded) if reminded and reminded.isdigit() else None)


@router.post("/contracts/{contract_id}/remind")
def contract_remind(request: Request, contract_id: str,
                    csrf_token: Annotated[str, Form()] = "") -> Response:
    cid = parse_id(contract_id)
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        contract = reminders.remind(page.session, page.ctx, contract_id=cid)
        count = len(reminders.pending_signers(contract))
    return see_other(f"/contracts/{cid}?reminded={count}")


def _event_detail(event: AuditEvent, _: Gettext) -> str:
    """A one-line summary of an event's data for the timeline."""
    data = event.data or {}
    if event.kind == EventKind.CONTRACT_RENEWAL_REMINDED:
        return _("expires on %(date)s, %(days)s days left") % {
            "date": data.get("expiry_date", ""), "days": data.get("days_left", "")}
    if event.kind == EventKind.SIGNER_REMINDED:
        if data.get("automatic"):
            return _("%(email)s, automatic reminder %(number)s") % {
                "email": data.get("email", ""), "number": data.get("reminder") or ""}
        return _("%(email)s, reminded by hand") % {"email": data.get("email", "")}
    if "from" in data and "to" in data:
        moved = _("%(old)s → %(new)s") % {
            "old": i18n.label(i18n.STATUS_LABELS, str(data["from"]), _),
            "new": i18n.label(i18n.STATUS_LABELS, str(data["to"]), _)}
        reason = data.get("reason")
        return moved + (_("; reason: %(reason)s") % {"reason": reason} if reason else "")
    if "filename" in data and "version" in data:
        return _("Version %(version)s: %(filename)s") % data
    if "filename" in data:
        return str(data["filename"])
    if "pages" in data and "signers" in data:
        return _("Pages: %(pages)s, signers: %(signers)s, attachments: %(attachments)s") % {
            "attachments": 0, **data}
    return ""


# --- error messages ------------------------------------------------------------------------

FIELD_LABELS = {
    "title": N_("Title"), "signers": N_("Signers"), "effective_date": N_("Effective date"),
    "expiry_date": N_("Expiry date"), "sign_deadline": N_("Sign deadline"),
    "clauses": N_("Additional clauses"), "category": N_("Category"), "tags": N_("Tags"),
    "name": N_("Name"), "email": N_("E-mail"), "phone": N_("Phone"), "order": N_("Order"),
    "body": N_("Text"),
}
PROBLEMS = {
    "missing": N_("is required"), "string_too_short": N_("is required"),
    "too_short": N_("is required"), "string_too_long": N_("is too long"),
    "too_long": N_("has too many entries"), "string_pattern_mismatch": N_("has an invalid format"),
    "date_parsing": N_("is not a valid date"), "date_from_datetime_parsing":
        N_("is not a valid date"), "int_parsing": N_("must be a whole number"),
    "greater_than_equal": N_("is too small"), "less_than_equal": N_("is too large"),
}
FORM_MESSAGES = {
    "document_required": N_("Choose the contract PDF."),
    "upload_empty": N_("The file is empty."),
    "upload_too_large": N_("The file is larger than the upload limit."),
    "upload_not_pdf": N_("The contract file is not a PDF."),
    "upload_unreadable": N_("The file could not be read; it may be damaged or too complex."),
    "upload_encrypted": N_("The PDF is password-protected. Please upload an unprotected copy."),
    "upload_javascript": N_("The PDF contains JavaScript, which is not allowed."),
    "upload_launch_action": N_("The PDF contains an action that starts other programs."),
    "upload_xfa": N_("The PDF contains an XFA form, which is not supported."),
    "upload_too_many_pages": N_("The PDF has more pages than allowed."),
    "upload_type_not_allowed": N_("This type of attachment is not allowed."),
    "too_many_attachments": N_("Too many attachments."),
    "invalid_deadline": N_("The sign deadline is not a valid date and time."),
    "invalid_dates": N_("The expiry date must not be before the effective date."),
}


def _pydantic_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def _error_lines(error: ValidationFailed, _: Gettext) -> list[str]:
    """Translated, field-labelled messages for the form's error box."""
    errors = error.details.get("errors")
    if error.code == "invalid_form" and isinstance(errors, list):
        return [_field_problem(e, _) for e in errors]
    message = FORM_MESSAGES.get(error.code)
    # Where no translation exists (English), the service's own sentence carries the specifics.
    if message and _(message) != message:
        return [_(message)]
    return [_(error.message)]


def _field_problem(err: Any, _: Gettext) -> str:
    loc: Sequence[Any] = err.get("loc", ())
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int) and index > 0 and loc[index - 1] == "signers":
            parts[-1] = _("Signer %(n)s") % {"n": part + 1}
        elif isinstance(part, int) and index > 0 and loc[index - 1] == "clauses":
            parts[-1] = _("Clause %(n)s") % {"n": part + 1}
        elif isinstance(part, str) and part in FIELD_LABELS:
            parts.append(_(FIELD_LABELS[part]))
    kind = str(err.get("type", ""))
    if kind == "value_error":
        text = str(err.get("msg", "")).removeprefix("Value error, ")
        problem = _("is not a valid e-mail address") if loc and loc[-1] == "email" else _(text)
    else:
        problem = _(PROBLEMS[kind]) if kind in PROBLEMS else str(err.get("msg", ""))
    return _("%(field)s: %(problem)s") % {"field": " · ".join(parts), "problem": problem} \
        if parts else problem[:1].upper() + problem[1:]
