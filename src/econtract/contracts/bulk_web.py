"""HTML: bulk send (批量发送) — choose a template, upload a CSV, read the report, send, follow.

Thin, as ``contracts.web``: parse the form, call ``contracts.bulk`` inside ``page_unit``, render.
The progress page polls ``GET /api/v1/bulk/{id}`` with the session cookie (``static/bulk.js``;
no inline script, for the CSP).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from starlette.datastructures import FormData, UploadFile

from econtract.contracts import bulk
from econtract.contracts.web import _read_form
from econtract.errors import EContractError, ValidationFailed
from econtract.http import read_upload
from econtract.templates import service as templates
from econtract.web.i18n import N_
from econtract.web.render import page_unit, parse_id, render, see_other, translator

router = APIRouter(include_in_schema=False)

ERROR_LABELS = {"required": N_("required"), "missing column": N_("missing column"),
                "already passed": N_("already passed"),
                "not a column of this template": N_("not a column of this template")}


def _template_id(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def _new_page(request: Request, template_id: uuid.UUID | None,
              error: EContractError | None = None) -> Response:
    with page_unit(request) as page:
        items = templates.list_(page.session, page.ctx)
        _ = translator(request)
        problems = error.details.get("problems", {}) if error else {}
        lines = [f"{name}: {_(ERROR_LABELS.get(msg, msg))}" for name, msg in problems.items()]
        return render(request, "bulk/new.html", viewer=page.viewer, templates=items,
                      template_id=str(template_id or ""),
                      error=_(error.message) if error and not lines else
                      (_("The CSV's columns do not fit the template:") if error else None),
                      error_lines=lines, error_code=error.code if error else "",
                      status=error.status if error else 200)


@router.get("/bulk/new")
def new(request: Request) -> Response:
    return _new_page(request, _template_id(request.query_params.get("template_id")))


@router.get("/bulk/sample.csv")
def sample(request: Request) -> Response:
    template_id = parse_id(request.query_params.get("template_id") or "", "template")
    with page_unit(request) as page:
        data = bulk.sample_csv(page.session, page.ctx, template_id=template_id)
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="bulk-sample.csv"'})


@router.post("/bulk")
def upload(request: Request, form: Annotated[FormData, Depends(_read_form)]) -> Response:
    raw_id = form.get("template_id")
    template_id = _template_id(raw_id if isinstance(raw_id, str) else None)
    try:
        with page_unit(request) as page:
            token = form.get("csrf_token")
            page.check_csrf(token if isinstance(token, str) else None)
            if template_id is None:
                raise ValidationFailed(N_("Choose a template."), code="template_required")
            file = form.get("file")
            if not isinstance(file, UploadFile) or not file.filename:
                raise ValidationFailed(N_("Choose the CSV file."), code="file_required")
            csv_file = read_upload(file, bulk.MAX_BYTES)
            run = bulk.prepare(page.session, page.ctx, template_id=template_id,
                               filename=csv_file.filename, data=csv_file.data)
            run_id = run.id
    except ValidationFailed as exc:
        return _new_page(request, template_id, exc)
    return see_other(f"/bulk/{run_id}")


@router.get("/bulk/{run_id}")
def detail(request: Request, run_id: str) -> Response:
    rid = parse_id(run_id, "bulk")
    with page_unit(request) as page:
        run = bulk.get(page.session, page.ctx, run_id=rid)
        template = templates.get(page.session, page.ctx, template_id=run.template_id)
        _ = translator(request)
        rows = bulk.items(page.session, run=run)
        bad = [(item.row_number, [(column, _(ERROR_LABELS.get(str(msg), str(msg))))
                                  for column, msg in (item.errors or {}).items()
                                  if column != "send"])
               for item in rows if item.status == "invalid"]
        return render(request, "bulk/detail.html", viewer=page.viewer, run=run,
                      tpl=template, counts=bulk.progress(page.session, run), bad=bad,
                      items=rows)


@router.post("/bulk/{run_id}/start")
def start(request: Request, run_id: str, csrf_token: Annotated[str, Form()] = "") -> Response:
    rid = parse_id(run_id, "bulk")
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        bulk.start(page.session, page.ctx, run_id=rid)
    return see_other(f"/bulk/{rid}")
