"""Pydantic I/O for templates and the clause library."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from econtract.templates.variables import VarType


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class VariableIn(_In):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    type: VarType = VarType.TEXT
    label: str = Field(default="", max_length=200)
    required: bool = True
    default: Any = None
    help: str = Field(default="", max_length=500)


class TemplateCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    category: str | None = Field(default=None, max_length=100)
    locale: Literal["zh_CN", "en"] = "zh_CN"
    body: str = Field(min_length=1, max_length=200_000)
    """HTML with Jinja2 expressions; see README "Templates" for the filters and anchors."""
    variables: list[VariableIn] = Field(default_factory=list, max_length=100)


class TemplateUpdate(_In):
    """Changing ``body`` or ``variables`` adds a version; the other fields change in place."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, max_length=100)
    locale: Literal["zh_CN", "en"] | None = None
    body: str | None = Field(default=None, min_length=1, max_length=200_000)
    variables: list[VariableIn] | None = Field(default=None, max_length=100)


class VariableRead(BaseModel):
    name: str
    type: str
    label: str
    required: bool
    default: Any
    help: str


class TemplateSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    category: str | None
    locale: str
    current_version: int
    starter: str | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TemplateRead(TemplateSummary):
    version: int
    """The version whose ``body`` and ``variables`` these are (``current_version`` unless
    another one was asked for)."""
    body: str
    variables: list[VariableRead]


class TemplateVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    created_at: datetime
    created_by: str


class RenderIn(_In):
    """Values for a preview: the same shape ``POST /contracts`` takes with ``template_id``."""

    variables: dict[str, Any] = Field(default_factory=dict)
    title: str | None = Field(default=None, max_length=300)
    version: int | None = Field(default=None, ge=1)


class LibraryClauseIn(_In):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20_000)
    category: str | None = Field(default=None, max_length=100)


class LibraryClauseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    body: str
    category: str | None
    created_at: datetime
    updated_at: datetime
