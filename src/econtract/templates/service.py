"""Templates and the clause library: create, revise (a new immutable version), archive, render.

A contract made from a template records the version it came from and the values it was given, so
what was signed can always be traced back to the exact template text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.audit import service as audit
from econtract.audit.events import EventKind
from econtract.context import Ctx
from econtract.errors import Conflict, NotFound, PermissionDenied
from econtract.templates import policy, render, starters
from econtract.templates.models import ContractTemplate, LibraryClause, TemplateVersion
from econtract.templates.schemas import LibraryClauseIn, TemplateCreate, TemplateUpdate
from econtract.templates.variables import Variable, parse_variables, resolve


@dataclass(frozen=True)
class Rendered:
    """A template filled in: the version used, the typed values and the PDF."""

    version: TemplateVersion
    values: dict[str, Any]
    pdf: render.RenderedPdf


def _org(ctx: Ctx) -> uuid.UUID:
    if ctx.org_id is None:
        raise PermissionDenied("Templates belong to an organisation.")
    return ctx.org_id


def _require_manage(ctx: Ctx) -> uuid.UUID:
    org_id = _org(ctx)
    if not policy.can_manage_templates(ctx.actor):
        raise PermissionDenied("Only managers and administrators may change templates.")
    return org_id


def _checked(body: str, raw_variables: Sequence[dict[str, Any]]) -> list[Variable]:
    variables = parse_variables(list(raw_variables))
    render.check_body(body, [v.name for v in variables])
    return variables


def _name_free(session: Session, org_id: uuid.UUID, name: str,
               except_id: uuid.UUID | None = None) -> None:
    query = select(ContractTemplate.id).where(ContractTemplate.org_id == org_id,
                                              ContractTemplate.name == name)
    found = session.scalar(query)
    if found is not None and found != except_id:
        raise Conflict(f"A template named {name!r} exists already.", code="template_name_taken")


def create(session: Session, ctx: Ctx, *, data: TemplateCreate,
           starter: str | None = None) -> ContractTemplate:
    org_id = _require_manage(ctx)
    raw_variables = [v.model_dump(mode="json") for v in data.variables]
    _checked(data.body, raw_variables)
    _name_free(session, org_id, data.name)
    now = ctx.now()
    template = ContractTemplate(org_id=org_id, name=data.name, description=data.description,
                                category=data.category, locale=data.locale, current_version=1,
                                starter=starter, created_at=now, updated_at=now)
    session.add(template)
    session.flush()
    _add_version(session, ctx, template, 1, data.body, raw_variables)
    audit.record(session, ctx, EventKind.TEMPLATE_CREATED, org_id=org_id,
                 data={"template_id": str(template.id), "name": template.name,
                       "starter": starter})
    return template


def _add_version(session: Session, ctx: Ctx, template: ContractTemplate, number: int,
                 body: str, raw_variables: list[dict[str, Any]]) -> TemplateVersion:
    version = TemplateVersion(template_id=template.id, number=number, body=body,
                              variables={"items": raw_variables}, created_at=ctx.now(),
                              created_by=ctx.actor.label)
    session.add(version)
    session.flush()
    return version


def revise(session: Session, ctx: Ctx, *, template_id: uuid.UUID,
           patch: TemplateUpdate) -> ContractTemplate:
    """Metadata changes in place; a changed body or variable list becomes a new version."""
    _require_manage(ctx)
    template = get(session, ctx, template_id=template_id)
    changes = patch.model_dump(exclude_unset=True, mode="json")
    if changes.get("name") and changes["name"] != template.name:
        _name_free(session, template.org_id, changes["name"], except_id=template.id)
    for field in ("name", "description", "category", "locale"):
        if changes.get(field) is not None or (field == "category" and "category" in changes):
            setattr(template, field, changes[field])
    new_version = None
    if changes.get("body") is not None or changes.get("variables") is not None:
        current = version(session, template=template)
        body = changes.get("body") or current.body
        raw_variables = changes["variables"] if changes.get("variables") is not None \
            else current.variables["items"]
        _checked(body, raw_variables)
        if body != current.body or raw_variables != current.variables["items"]:
            new_version = template.current_version + 1
            _add_version(session, ctx, template, new_version, body, raw_variables)
            template.current_version = new_version
    template.updated_at = ctx.now()
    session.flush()
    audit.record(session, ctx, EventKind.TEMPLATE_REVISED, org_id=template.org_id,
                 data={"template_id": str(template.id), "fields": sorted(changes),
                       "version": template.current_version, "new_version": new_version})
    return template


def set_archived(session: Session, ctx: Ctx, *, template_id: uuid.UUID,
                 archived: bool) -> ContractTemplate:
    _require_manage(ctx)
    template = get(session, ctx, template_id=template_id)
    template.archived_at = ctx.now() if archived else None
    template.updated_at = ctx.now()
    session.flush()
    audit.record(session, ctx,
                 EventKind.TEMPLATE_ARCHIVED if archived else EventKind.TEMPLATE_RESTORED,
                 org_id=template.org_id, data={"template_id": str(template.id)})
    return template


def get(session: Session, ctx: Ctx, *, template_id: uuid.UUID) -> ContractTemplate:
    template = session.get(ContractTemplate, template_id)
    if template is None or not policy.can_view_templates(ctx.actor, template.org_id):
        raise NotFound("No such template.", code="template_not_found")
    return template


def version(session: Session, *, template: ContractTemplate,
            number: int | None = None) -> TemplateVersion:
    found = session.scalar(select(TemplateVersion).where(
        TemplateVersion.template_id == template.id,
        TemplateVersion.number == (number or template.current_version)))
    if found is None:
        raise NotFound(f"The template has no version {number}.",
                       code="template_version_not_found")
    return found


def versions(session: Session, *, template: ContractTemplate) -> list[TemplateVersion]:
    """Every version of ``template``, oldest first (``template`` comes from ``get``)."""
    return list(session.scalars(select(TemplateVersion).where(
        TemplateVersion.template_id == template.id).order_by(TemplateVersion.number)))


def variables_of(template_version: TemplateVersion) -> list[Variable]:
    return parse_variables(list(template_version.variables["items"]))


def list_(session: Session, ctx: Ctx, *, include_archived: bool = False) -> list[ContractTemplate]:
    org_id = _org(ctx)
    if not policy.can_view_templates(ctx.actor, org_id):
        return []
    query = select(ContractTemplate).where(ContractTemplate.org_id == org_id)
    if not include_archived:
        query = query.where(ContractTemplate.archived_at.is_(None))
    return list(session.scalars(query.order_by(ContractTemplate.name)))


def install_starters(session: Session, ctx: Ctx,
                     keys: Sequence[str] | None = None) -> list[ContractTemplate]:
    """Add the shipped starter templates the organisation does not have yet (idempotent)."""
    org_id = _require_manage(ctx)
    have = set(session.scalars(select(ContractTemplate.starter).where(
        ContractTemplate.org_id == org_id, ContractTemplate.starter.is_not(None))))
    installed = []
    for item in starters.starters():
        if (keys is not None and item.key not in keys) or item.key in have:
            continue
        data = TemplateCreate.model_validate({
            "name": item.name, "description": item.description, "category": item.category,
            "locale": item.locale, "body": item.body,
            "variables": [v.as_dict() for v in item.variables]})
        installed.append(create(session, ctx, data=data, starter=item.key))
    return installed


def fill(session: Session, ctx: Ctx, *, template_id: uuid.UUID, values: dict[str, Any],
         title: str | None = None, number: int | None = None,
         clauses: Sequence[tuple[str, str]] = ()) -> Rendered:
    """The template (current or given version) filled with ``values`` and laid out as a PDF;
    every missing or ill-typed value is reported at once (``template_variables_invalid``)."""
    template = get(session, ctx, template_id=template_id)
    chosen = version(session, template=template, number=number)
    typed = resolve(variables_of(chosen), values)
    html = render.render_html(chosen.body, typed, title=title or template.name, clauses=clauses,
                              locale=template.locale)
    return Rendered(version=chosen, values=typed,
                    pdf=render.render_pdf(html, locale=template.locale))


# --- clause library ----------------------------------------------------------------------------

def save_clause(session: Session, ctx: Ctx, *, data: LibraryClauseIn,
                clause_id: uuid.UUID | None = None) -> LibraryClause:
    org_id = _require_manage(ctx)
    now = ctx.now()
    if clause_id is None:
        clause = LibraryClause(org_id=org_id, created_at=now, updated_at=now, title="", body="")
        session.add(clause)
    else:
        clause = get_clause(session, ctx, clause_id=clause_id)
    clause.title, clause.body, clause.category, clause.updated_at = (
        data.title, data.body, data.category, now)
    session.flush()
    audit.record(session, ctx, EventKind.CLAUSE_SAVED, org_id=org_id,
                 data={"clause_id": str(clause.id), "title": clause.title})
    return clause


def get_clause(session: Session, ctx: Ctx, *, clause_id: uuid.UUID) -> LibraryClause:
    clause = session.get(LibraryClause, clause_id)
    if clause is None or not policy.can_view_templates(ctx.actor, clause.org_id):
        raise NotFound("No such clause.", code="clause_not_found")
    return clause


def delete_clause(session: Session, ctx: Ctx, *, clause_id: uuid.UUID) -> None:
    _require_manage(ctx)
    clause = get_clause(session, ctx, clause_id=clause_id)
    session.delete(clause)
    audit.record(session, ctx, EventKind.CLAUSE_DELETED, org_id=clause.org_id,
                 data={"clause_id": str(clause.id), "title": clause.title})


def list_clauses(session: Session, ctx: Ctx) -> list[LibraryClause]:
    org_id = _org(ctx)
    if not policy.can_view_templates(ctx.actor, org_id):
        return []
    # NULLS LAST spelled out: PostgreSQL and SQLite disagree about where NULLs sort otherwise.
    return list(session.scalars(select(LibraryClause).where(LibraryClause.org_id == org_id)
                                .order_by(LibraryClause.category.asc().nulls_last(),
                                          LibraryClause.title)))
