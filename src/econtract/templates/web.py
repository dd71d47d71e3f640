"""HTML: templates (list, editor, versions, preview, archive), the clause library, and new
contracts from a template.

Handlers are thin, as in ``contracts.web``: parse the form, call ``templates.service`` or
``contracts.from_template`` inside ``page_unit``, render. A refused form is shown again with what
was typed and the reasons, each template value's next to its field (``details.problems``). The
new-contract form reuses ``contracts.web.ContractForm`` for title, signers, dates and clauses.
Previews are rendered once and shown as page images (``data:`` URLs: one request, no state).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from econtract.contracts import from_template, previews
from econtract.contracts import service as contracts
from econtract.contracts.schemas import ContractCreate
from econtract.contracts.web import ContractForm, _error_lines, _read_form
from econtract.errors import NotFound, ValidationFailed
from econtract.http import read_upload, runtime
from econtract.templates import policy, service
from econtract.templates.models import ContractTemplate, TemplateVersion
from econtract.templates.render import RenderedPdf
from econtract.templates.schemas import LibraryClauseIn, TemplateCreate, TemplateUpdate
from econtract.templates.variables import (
    Variable,
    VarType,
    convert,
    money_in_capitals,
    resolve,
)
from econtract.web.i18n import N_, Gettext
from econtract.web.render import PageUnit, page_unit, parse_id, render, see_other, translator

router = APIRouter(include_in_schema=False)

PREVIEW_PAGES = 3
PREVIEW_WIDTH = 800
BLANK_ROWS = 2
PARTY_FIELDS = ("name", "id_number", "address", "contact")
TYPE_LABELS = {VarType.TEXT: N_("Plain text"), VarType.NUMBER: N_("Number"),
               VarType.MONEY: N_("Amount (yuan)"), VarType.DATE: N_("Date"),
               VarType.PARTY: N_("Party")}
# What ``templates.variables`` says about a value, for the extractor and the catalog.
VALUE_PROBLEMS = (N_("required"), N_("not a number"), N_("not a date (use YYYY-MM-DD)"),
                  N_("not a valid date"), N_("an amount cannot be negative"),
                  N_("an amount has at most two decimals (fen)"), N_("the amount is too large"),
                  N_("the number is too large"), N_("a party needs a name"),
                  N_("not a variable of this template"))


# --- forms ---------------------------------------------------------------------------------

@dataclass
class VariableRow:
    key: str
    name: str = ""
    type: str = VarType.TEXT.value
    label: str = ""
    required: bool = True
    default: str = ""
    help: str = ""

    @property
    def blank(self) -> bool:
        return not (self.name.strip() or self.label.strip() or self.default.strip())


@dataclass
class TemplateForm:
    """The template editor as typed (strings, so a refused form comes back unchanged)."""

    name: str = ""
    description: str = ""
    category: str = ""
    locale: str = "zh_CN"
    body: str = ""
    variables: list[VariableRow] = field(default_factory=list)
    csrf_token: str = ""

    @classmethod
    def of(cls, template: ContractTemplate | None, version: TemplateVersion | None,
           locale: str = "zh_CN") -> TemplateForm:
        rows = [VariableRow(key=str(i), name=v.name, type=v.type.value, label=v.label,
                            required=v.required, help=v.help,
                            default="" if v.default is None else str(v.default))
                for i, v in enumerate(service.variables_of(version) if version else [])]
        form = cls(variables=_padded(rows), locale=locale)
        if template is not None and version is not None:
            form.name, form.description, form.category = (
                template.name, template.description, template.category or "")
            form.locale, form.body = template.locale, version.body
        return form

    @classmethod
    def parse(cls, form: FormData) -> TemplateForm:
        def texts(name: str) -> list[str]:
            return [v if isinstance(v, str) else "" for v in form.getlist(name)]

        required = set(texts("var_required"))
        rows = [VariableRow(key=key or "", name=(name or "").strip(), type=kind or "text",
                            label=label or "", required=(key or "") in required,
                            default=default or "", help=help_ or "")
                for key, name, kind, label, default, help_ in zip_longest(
                    texts("var_key"), texts("var_name"), texts("var_type"), texts("var_label"),
                    texts("var_default"), texts("var_help"))]
        fields = {name: _text(form, name) for name in ("name", "description", "category",
                                                       "locale", "body", "csrf_token")}
        return cls(variables=_padded([r for r in rows if not r.blank]), **fields)

    def declarations(self, previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows as declarations; a default shown as text keeps its stored value (3, not
        "3"), so saving an unchanged form adds no version."""
        before = {str(item.get("name")): item.get("default") for item in previous}
        out = []
        for row in (r for r in self.variables if not r.blank):
            default: Any = row.default.strip() or None
            if default is not None and str(before.get(row.name)) == default:
                default = before[row.name]
            out.append({"name": row.name, "type": row.type, "label": row.label.strip(),
                        "required": row.required, "default": default,
                        "help": row.help.strip()})
        return out

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "category": self.category.strip() or None, "locale": self.locale,
                "body": self.body}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _padded(rows: list[VariableRow]) -> list[VariableRow]:
    """Blank rows to add variables without JavaScript (templates.js adds more)."""
    start = max((int(r.key) for r in rows if r.key.isdigit()), default=-1) + 1
    return rows + [VariableRow(key=str(start + i)) for i in range(BLANK_ROWS)]


def _validated(build: type[BaseModel], data: dict[str, Any]) -> Any:
    """``build`` from form data; pydantic's complaints as one ``invalid_form`` error."""
    try:
        return build.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("; ".join(_pydantic_line(e) for e in exc.errors()),
                               code="invalid_form") from exc


def _pydantic_line(error: Any) -> str:
    loc = [str(p + 1) if isinstance(p, int) else str(p) for p in error.get("loc", ())]
    return f"{' '.join(loc)}: {error.get('msg', '')}"


def _lines(error: ValidationFailed | None, _: Gettext) -> list[str]:
    if error is None:
        return []
    lines = [] if error.code == "template_variables_invalid" else _error_lines(error, _)
    if error.details.get("problems"):
        lines.append(_("Some template values are missing or invalid: see the marked fields."))
    return lines


# --- list and starters ---------------------------------------------------------------------

@router.get("/templates")
def template_list(request: Request) -> Response:
    archived = request.query_params.get("archived") == "1"
    with page_unit(request) as page:
        items = service.list_(page.session, page.ctx, include_archived=archived)
        return render(request, "templates/list.html", viewer=page.viewer, items=items,
                      archived=archived, can_manage=policy.can_manage_templates(page.ctx.actor),
                      installed=request.query_params.get("installed"))


@router.post("/templates/starters")
def install_starters(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        installed = service.install_starters(page.session, page.ctx)
    return see_other(f"/templates?installed={len(installed)}")


# --- the clause library (before /templates/{id}, which would take "clauses" for an id) -----

@router.get("/templates/clauses")
def clause_list(request: Request) -> Response:
    return _clauses_page(request, None, LibraryClauseForm(), None)


@router.get("/templates/clauses/{clause_id}")
def clause_edit(request: Request, clause_id: str) -> Response:
    cid = parse_id(clause_id, "clause")
    with page_unit(request) as page:
        clause = service.get_clause(page.session, page.ctx, clause_id=cid)
        form = LibraryClauseForm(clause.title, clause.body, clause.category or "")
    return _clauses_page(request, cid, form, None)


@dataclass
class LibraryClauseForm:
    title: str = ""
    body: str = ""
    category: str = ""


@router.post("/templates/clauses")
@router.post("/templates/clauses/{clause_id}")
def clause_save(request: Request, form: Annotated[FormData, Depends(_read_form)],
                clause_id: str | None = None) -> Response:
    cid = parse_id(clause_id, "clause") if clause_id else None
    typed = LibraryClauseForm(_text(form, "title"), _text(form, "body"), _text(form, "category"))
    try:
        with page_unit(request) as page:
            page.check_csrf(_text(form, "csrf_token"))
            data = _validated(LibraryClauseIn, {"title": typed.title, "body": typed.body,
                                                "category": typed.category.strip() or None})
            service.save_clause(page.session, page.ctx, data=data, clause_id=cid)
    except ValidationFailed as exc:
        return _clauses_page(request, cid, typed, exc)
    return see_other("/templates/clauses")


@router.post("/templates/clauses/{clause_id}/delete")
def clause_delete(request: Request, clause_id: str,
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    cid = parse_id(clause_id, "clause")
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        service.delete_clause(page.session, page.ctx, clause_id=cid)
    return see_other("/templates/clauses")


def _clauses_page(request: Request, editing: uuid.UUID | None, form: LibraryClauseForm,
                  error: ValidationFailed | None) -> Response:
    with page_unit(request) as page:
        return render(request, "templates/clauses.html", viewer=page.viewer,
                      items=service.list_clauses(page.session, page.ctx), editing=editing,
                      form=form, errors=[translator(request)(error.message)] if error else [],
                      error_code=error.code if error else None,
                      can_manage=policy.can_manage_templates(page.ctx.actor),
                      status=error.status if error else 200)


# --- the editor ----------------------------------------------------------------------------

@router.get("/templates/new")
def template_new(request: Request) -> Response:
    with page_unit(request) as page:
        form = TemplateForm.of(None, None, locale=page.ctx.locale)
        return render(request, "templates/new.html", viewer=page.viewer, form=form,
                      type_labels=TYPE_LABELS, errors=[], error_code=None)


@router.post("/templates/new")
def template_create(request: Request,
                    form: Annotated[FormData, Depends(_read_form)]) -> Response:
    data = TemplateForm.parse(form)
    try:
        with page_unit(request) as page:
            page.check_csrf(data.csrf_token)
            created = _validated(TemplateCreate, {**data.meta(),
                                                  "variables": data.declarations([])})
            template_id = service.create(page.session, page.ctx, data=created).id
    except ValidationFailed as exc:
        with page_unit(request) as page:
            return render(request, "templates/new.html", viewer=page.viewer, form=data,
                          type_labels=TYPE_LABELS, errors=[translator(request)(exc.message)],
                          error_code=exc.code, status=exc.status)
    return see_other(f"/templates/{template_id}")


@router.get("/templates/versions/{version_id}")
def template_version_link(request: Request, version_id: str) -> Response:
    """Where "created from a template" on a contract points: that template at that version."""
    vid = parse_id(version_id, "template")
    with page_unit(request) as page:
        version = page.session.get(TemplateVersion, vid)
        template = service.get(page.session, page.ctx, template_id=version.template_id) \
            if version else None
        if version is None or template is None:
            raise NotFound("No such template.", code="template_not_found")
        return see_other(f"/templates/{template.id}?version={version.number}")


@router.get("/templates/{template_id}")
def template_detail(request: Request, template_id: str) -> Response:
    return _detail_page(request, parse_id(template_id, "template"), None, None)


@router.get("/templates/{template_id}/preview")
def template_preview(request: Request, template_id: str) -> Response:
    """The template filled with its defaults and sample values, as page images."""
    tid = parse_id(template_id, "template")
    number = _version_param(request)
    with page_unit(request) as page:
        template = service.get(page.session, page.ctx, template_id=tid)
        chosen = service.version(page.session, template=template, number=number)
        samples = _sample_values(service.variables_of(chosen), page)
        rendered = service.fill(page.session, page.ctx, template_id=tid, values=samples,
                                number=chosen.number)
    return _detail_page(request, tid, None, None, images=_page_images(rendered.pdf))


@router.post("/templates/{template_id}")
def template_save(request: Request, template_id: str,
                  form: Annotated[FormData, Depends(_read_form)]) -> Response:
    tid = parse_id(template_id, "template")
    data = TemplateForm.parse(form)
    try:
        with page_unit(request) as page:
            page.check_csrf(data.csrf_token)
            template = service.get(page.session, page.ctx, template_id=tid)
            current = service.version(page.session, template=template)
            patch = _validated(TemplateUpdate, {
                **data.meta(), "variables": data.declarations(current.variables["items"])})
            service.revise(page.session, page.ctx, template_id=tid, patch=patch)
    except ValidationFailed as exc:
        return _detail_page(request, tid, data, exc)
    return see_other(f"/templates/{tid}?saved=1")


@router.post("/templates/{template_id}/archive")
@router.post("/templates/{template_id}/restore")
def template_archive(request: Request, template_id: str,
                     csrf_token: Annotated[str, Form()] = "") -> Response:
    tid = parse_id(template_id, "template")
    with page_unit(request) as page:
        page.check_csrf(csrf_token)
        service.set_archived(page.session, page.ctx, template_id=tid,
                             archived=request.url.path.endswith("/archive"))
    return see_other(f"/templates/{tid}")


def _version_param(request: Request) -> int | None:
    raw = request.query_params.get("version", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def _detail_page(request: Request, tid: uuid.UUID, form: TemplateForm | None,
                 error: ValidationFailed | None, images: list[str] | None = None) -> Response:
    with page_unit(request) as page:
        template = service.get(page.session, page.ctx, template_id=tid)
        shown = service.version(page.session, template=template,
                                number=_version_param(request))
        return render(request, "templates/detail.html", viewer=page.viewer, tpl=template,
                      version=shown, variables=service.variables_of(shown),
                      versions=service.versions(page.session, template=template),
                      form=form or TemplateForm.of(template, shown),
                      can_manage=policy.can_manage_templates(page.ctx.actor),
                      type_labels=TYPE_LABELS, images=images or [],
                      saved=request.query_params.get("saved") == "1",
                      errors=[translator(request)(error.message)] if error else [],
                      error_code=error.code if error else None,
                      status=error.status if error else 200)


def _sample_values(variables: list[Variable], page: PageUnit) -> dict[str, Any]:
    samples: dict[str, Any] = {}
    for v in variables:
        example = {VarType.TEXT: f"〔{v.label}〕", VarType.NUMBER: "1",
                   VarType.MONEY: "10000", VarType.DATE: page.ctx.now().date().isoformat(),
                   VarType.PARTY: {"name": f"〔{v.label}〕"}}[v.type]
        samples[v.name] = v.default if v.default not in (None, "") else example
    return samples


def _page_images(pdf: RenderedPdf) -> list[str]:
    pages = range(1, min(pdf.page_count, PREVIEW_PAGES) + 1)
    return ["data:image/jpeg;base64," + base64.b64encode(
        previews.render_page_jpeg(pdf.pdf, page=n, width=PREVIEW_WIDTH)).decode() for n in pages]


# --- a new contract from a template --------------------------------------------------------

def _values(form: FormData) -> dict[str, Any]:
    """Template values from ``v_<name>`` fields (a party: ``v_<name>.<part>``); a party left
    wholly empty is a missing party, not one without a name."""
    values: dict[str, Any] = {}
    for key, raw in form.multi_items():
        if not key.startswith("v_") or not isinstance(raw, str):
            continue
        name, _, part = key[2:].partition(".")
        if not part:
            values[name] = raw
        elif part in PARTY_FIELDS and isinstance(values.setdefault(name, {}), dict):
            values[name][part] = raw
    return {n: None if isinstance(v, dict) and not "".join(v.values()).strip() else v
            for n, v in values.items()}


def _capitals(variables: list[Variable], values: dict[str, Any]) -> dict[str, str]:
    """Amounts in Chinese capitals next to their fields (templates.js keeps them live)."""
    out = {}
    for v in (v for v in variables if v.type is VarType.MONEY and values.get(v.name)):
        try:
            out[v.name] = money_in_capitals(convert(v, values[v.name]))
        except ValueError:
            continue
    return out


@router.get("/templates/{template_id}/use")
def use_form(request: Request, template_id: str) -> Response:
    tid = parse_id(template_id, "template")
    with page_unit(request) as page:
        template = service.get(page.session, page.ctx, template_id=tid)
        variables = service.variables_of(service.version(page.session, template=template))
    values = {v.name: {"name": str(v.default)} if v.type is VarType.PARTY else str(v.default)
              for v in variables if v.default not in (None, "")}
    return _use_page(request, tid, UseForm(ContractForm.blank(), values, []), None)


@dataclass
class UseForm:
    contract: ContractForm
    values: dict[str, Any]
    clause_ids: list[str]


@router.post("/templates/{template_id}/use")
def use_submit(request: Request, template_id: str,
               form: Annotated[FormData, Depends(_read_form)]) -> Response:
    tid = parse_id(template_id, "template")
    typed = UseForm(ContractForm.parse(form), _values(form),
                    [c for c in form.getlist("library_clause") if isinstance(c, str)])
    rt = runtime(request)
    try:
        with page_unit(request) as page:
            page.check_csrf(typed.contract.csrf_token)
            if form.get("action") == "preview":
                rendered = service.fill(page.session, page.ctx, template_id=tid,
                                        values=typed.values,
                                        title=typed.contract.title.strip() or None)
            else:
                contract_in = _contract_in(page, tid, typed)
                attachments = [read_upload(a, rt.settings.max_upload_bytes)
                               for a in form.getlist("attachments")
                               if isinstance(a, UploadFile) and a.filename]
                contract = from_template.create_from_template(
                    page.session, page.ctx, blobs=rt.blobs, limits=rt.limits,
                    contract_in=contract_in, template_id=tid, values=typed.values,
                    attachments=attachments)
                return see_other(f"/contracts/{contract.id}")
    except ValidationFailed as exc:
        return _use_page(request, tid, typed, exc)
    return _use_page(request, tid, typed, None, images=_page_images(rendered.pdf))


def _contract_in(page: PageUnit, tid: uuid.UUID, typed: UseForm) -> ContractCreate:
    """The contract fields and the template values checked together, so one submission shows
    every problem; library clauses chosen join the typed ones."""
    template = from_template.usable_template(page.session, page.ctx, template_id=tid)
    variables = service.variables_of(service.version(page.session, template=template))
    problems: dict[str, str] = {}
    try:
        resolve(variables, typed.values)
    except ValidationFailed as exc:
        problems = dict(exc.details.get("problems") or {})
    try:
        contract_in = typed.contract.to_create()
        chosen = [service.get_clause(page.session, page.ctx, clause_id=parse_id(c, "clause"))
                  for c in typed.clause_ids]
        if chosen:
            dumped = contract_in.model_dump()
            dumped["clauses"] += [{"title": c.title, "body": c.body} for c in chosen]
            contract_in = ContractCreate.model_validate(dumped)
    except ValidationError as exc:
        raise ValidationFailed(str(exc), code="invalid_form",
                               details={"errors": exc.errors(), "problems": problems}) from exc
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, code=exc.code,
                               details={**exc.details, "problems": problems}) from exc
    if problems:
        raise ValidationFailed("Template values are missing or invalid.",
                               code="template_variables_invalid", details={"problems": problems})
    return contract_in


def _use_page(request: Request, tid: uuid.UUID, typed: UseForm, error: ValidationFailed | None,
              images: list[str] | None = None) -> Response:
    # Its own unit of work: after a rejected submission the failed one has been rolled back.
    _ = translator(request)
    with page_unit(request) as page:
        rt = runtime(request)
        template = service.get(page.session, page.ctx, template_id=tid)
        version = service.version(page.session, template=template)
        variables = service.variables_of(version)
        if not typed.contract.title:
            typed.contract.title = template.name
        problems = {name: _(message) for name, message in
                    (error.details.get("problems") or {}).items()} if error else {}
        return render(request, "templates/use.html", viewer=page.viewer, tpl=template,
                      version=version, variables=variables, form=typed.contract,
                      values=typed.values, capitals=_capitals(variables, typed.values),
                      problems=problems, clause_ids=set(typed.clause_ids),
                      library=service.list_clauses(page.session, page.ctx),
                      categories=contracts.categories(page.session, page.ctx),
                      errors=_lines(error, _), error_code=error.code if error else None,
                      images=images or [], max_upload_mb=rt.settings.max_upload_mb,
                      max_attachments=rt.settings.max_attachments,
                      status=error.status if error else 200)
