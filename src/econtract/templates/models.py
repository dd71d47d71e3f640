"""Contract templates (合同模板) with immutable versions, and the clause library (条款库)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from econtract.db import Base


class ContractTemplate(Base):
    __tablename__ = "contract_templates"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    current_version: Mapped[int] = mapped_column(default=1)
    """Number of the version new contracts are made from; every edit adds a version."""
    starter: Mapped[str | None] = mapped_column(String(50))
    """The shipped starter template this one was installed from (``employment`` …), if any."""
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TemplateVersion(Base):
    """One immutable revision of a template's body and variables; rows are only inserted."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    template_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contract_templates.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    variables: Mapped[dict[str, Any]]
    """``{"items": [variable declaration, …]}`` (see ``templates.variables.Variable``)."""
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class LibraryClause(Base):
    """A reusable clause, inserted into a contract's additional clauses or a template."""

    __tablename__ = "library_clauses"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
