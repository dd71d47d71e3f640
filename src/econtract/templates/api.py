"""REST: contract templates (versions, preview, the shipped starters) and the clause library.

Reading is for everyone in the organisation; writing is for managers and above (the service
decides, see ``templates.policy``). Another organisation's ids are 404s.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from econtract.http import api_unit
from econtract.templates import service
from econtract.templates.models import ContractTemplate
from econtract.templates.schemas import (
    LibraryClauseIn,
    LibraryClauseRead,
    RenderIn,
    TemplateCreate,
    TemplateRead,
    TemplateSummary,
    TemplateUpdate,
    TemplateVersionRead,
)

router = APIRouter(prefix="/templates", tags=["templates"])
clause_router = APIRouter(prefix="/clauses", tags=["clause library"])


def template_read(session: Session, template: ContractTemplate,
                  number: int | None = None) -> TemplateRead:
    """The template with the body and variables of its current (or the given) version."""
    chosen = service.version(session, template=template, number=number)
    summary = TemplateSummary.model_validate(template).model_dump()
    return TemplateRead.model_validate({
        **summary, "version": chosen.number, "body": chosen.body,
        "variables": [v.as_dict() for v in service.variables_of(chosen)]})


@router.get("", response_model=list[TemplateSummary], summary="List templates")
def list_templates(request: Request, archived: bool = False) -> list[TemplateSummary]:
    """Active templates by name; `?archived=true` lists the archived ones too."""
    with api_unit(request) as (session, ctx):
        found = service.list_(session, ctx, include_archived=archived)
        return [TemplateSummary.model_validate(t) for t in found]


@router.post("", response_model=TemplateRead, status_code=status.HTTP_201_CREATED,
             summary="Create a template (version 1)")
def create_template(request: Request, data: TemplateCreate) -> TemplateRead:
    with api_unit(request) as (session, ctx):
        template = service.create(session, ctx, data=data)
        return template_read(session, template)


@router.post("/starters", response_model=list[TemplateSummary],
             summary="Install the shipped starter templates the organisation lacks")
def install_starters(request: Request) -> list[TemplateSummary]:
    """Idempotent: returns the templates installed by this call (empty when all are there)."""
    with api_unit(request) as (session, ctx):
        return [TemplateSummary.model_validate(t) for t in service.install_starters(session, ctx)]


@router.get("/{template_id}", response_model=TemplateRead, summary="One template")
def read_template(request: Request, template_id: uuid.UUID,
                  version: Annotated[int | None, Query(ge=1)] = None) -> TemplateRead:
    """With the body and variables of the current version, or of `?version=N`."""
    with api_unit(request) as (session, ctx):
        return template_read(session, service.get(session, ctx, template_id=template_id),
                             version)


@router.patch("/{template_id}", response_model=TemplateRead, summary="Edit a template")
def update_template(request: Request, template_id: uuid.UUID,
                    patch: TemplateUpdate) -> TemplateRead:
    """Name, description, category and locale change in place; a changed body or variable
    list becomes a new version (contracts made earlier keep pointing at theirs)."""
    with api_unit(request) as (session, ctx):
        template = service.revise(session, ctx, template_id=template_id, patch=patch)
        return template_read(session, template)


@router.post("/{template_id}/archive", response_model=TemplateRead,
             summary="Archive: no new contracts from it")
def archive_template(request: Request, template_id: uuid.UUID) -> TemplateRead:
    with api_unit(request) as (session, ctx):
        template = service.set_archived(session, ctx, template_id=template_id, archived=True)
        return template_read(session, template)


@router.post("/{template_id}/restore", response_model=TemplateRead,
             summary="Restore an archived template")
def restore_template(request: Request, template_id: uuid.UUID) -> TemplateRead:
    with api_unit(request) as (session, ctx):
        template = service.set_archived(session, ctx, template_id=template_id, archived=False)
        return template_read(session, template)


@router.get("/{template_id}/versions", response_model=list[TemplateVersionRead],
            summary="Every version, oldest first")
def list_versions(request: Request, template_id: uuid.UUID) -> list[TemplateVersionRead]:
    with api_unit(request) as (session, ctx):
        template = service.get(session, ctx, template_id=template_id)
        return [TemplateVersionRead.model_validate(v)
                for v in service.versions(session, template=template)]


@router.post("/{template_id}/preview", response_class=Response,
             summary="Fill the template and return the PDF (nothing is stored)",
             responses={200: {"content": {"application/pdf": {}}},
                        422: {"description": "Variables missing or ill-typed "
                                             "(`template_variables_invalid`, with `problems`)"}})
def preview_template(request: Request, template_id: uuid.UUID, data: RenderIn) -> Response:
    with api_unit(request) as (session, ctx):
        rendered = service.fill(session, ctx, template_id=template_id, values=data.variables,
                                title=data.title, number=data.version)
    return Response(rendered.pdf.pdf, media_type="application/pdf", headers={
        "Content-Disposition": 'inline; filename="preview.pdf"',
        "X-Template-Version": str(rendered.version.number),
        "X-Page-Count": str(rendered.pdf.page_count), "Cache-Control": "private, no-store"})


# --- the clause library --------------------------------------------------------------------

@clause_router.get("", response_model=list[LibraryClauseRead], summary="The clause library")
def list_clauses(request: Request) -> list[LibraryClauseRead]:
    with api_unit(request) as (session, ctx):
        return [LibraryClauseRead.model_validate(c) for c in service.list_clauses(session, ctx)]


@clause_router.post("", response_model=LibraryClauseRead, status_code=status.HTTP_201_CREATED,
                    summary="Add a clause to the library")
def add_clause(request: Request, data: LibraryClauseIn) -> LibraryClauseRead:
    with api_unit(request) as (session, ctx):
        return LibraryClauseRead.model_validate(service.save_clause(session, ctx, data=data))


@clause_router.get("/{clause_id}", response_model=LibraryClauseRead, summary="One clause")
def read_clause(request: Request, clause_id: uuid.UUID) -> LibraryClauseRead:
    with api_unit(request) as (session, ctx):
        return LibraryClauseRead.model_validate(
            service.get_clause(session, ctx, clause_id=clause_id))


@clause_router.put("/{clause_id}", response_model=LibraryClauseRead, summary="Change a clause")
def save_clause(request: Request, clause_id: uuid.UUID,
                data: LibraryClauseIn) -> LibraryClauseRead:
    with api_unit(request) as (session, ctx):
        return LibraryClauseRead.model_validate(
            service.save_clause(session, ctx, data=data, clause_id=clause_id))


@clause_router.delete("/{clause_id}", status_code=status.HTTP_204_NO_CONTENT,
                      summary="Remove a clause from the library")
def delete_clause(request: Request, clause_id: uuid.UUID) -> Response:
    with api_unit(request) as (session, ctx):
        service.delete_clause(session, ctx, clause_id=clause_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
