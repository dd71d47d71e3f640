"""The contract aggregate: contract, tags, clauses, immutable document versions, attachments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from econtract.db import Base
from econtract.parties.models import Signer


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        Index("ix_contracts_org_status", "org_id", "status"),
        Index("ix_contracts_org_created", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(30))
    """Only ``contracts.states.transition`` writes this column."""
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    effective_date: Mapped[date | None]
    expiry_date: Mapped[date | None]
    sign_deadline: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    status_changed_at: Mapped[datetime]
    void_reason: Mapped[str | None] = mapped_column(Text)
    routing: Mapped[str] = mapped_column(String(20), default="sequential",
                                         server_default="sequential")
    """``sequential``: groups by order number, one after the other; ``parallel``: all at once."""
    reminder_interval_hours: Mapped[int | None]
    """Hours between automatic reminders to pending signers; ``None`` takes the organisation's."""
    reminder_max: Mapped[int | None]
    """At most this many automatic reminders; ``None`` takes the organisation's, 0 turns off."""
    reminders_sent: Mapped[int] = mapped_column(default=0, server_default="0")
    next_reminder_at: Mapped[datetime | None] = mapped_column(index=True)
    """When the reminder sweep should next remind this contract's pending signers."""
    certificate_blob_key: Mapped[str | None] = mapped_column(String(200))
    """The sealed certificate of completion (encrypted blob), once the contract is completed."""
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    template_version_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("template_versions.id"))
    """The template version the document was rendered from (``None`` for an uploaded PDF)."""
    template_values: Mapped[dict[str, Any] | None]
    """The variable values given when it was created from a template, as JSON."""
    approval_mode: Mapped[str] = mapped_column(String(20), default="sequential",
                                               server_default="sequential")
    """``sequential``: every approver in order; ``any``: the first approval is enough."""
    archived_at: Mapped[datetime | None] = mapped_column(index=True)
    """Archived contracts leave the default lists (归档); unarchiving clears this."""
    renewal_reminded_at: Mapped[datetime | None]
    """When the owner was told this contract expires soon (合同到期提醒); once per expiry."""
    approver_ids: Mapped[dict[str, Any] | None]
    """``{"users": [user id, …]}``: who must approve before the contract may be sent."""

    signers: Mapped[list[Signer]] = relationship(
        order_by="(Signer.order, Signer.created_at)", cascade="all, delete-orphan",
        lazy="selectin")
    tags: Mapped[list[ContractTag]] = relationship(
        order_by="ContractTag.tag", cascade="all, delete-orphan", lazy="selectin")
    clauses: Mapped[list[ContractClause]] = relationship(
        order_by="ContractClause.position", cascade="all, delete-orphan", lazy="selectin")
    attachments: Mapped[list[Attachment]] = relationship(
        order_by="Attachment.created_at", cascade="all, delete-orphan", lazy="selectin")
    approvals: Mapped[list[Approval]] = relationship(
        order_by="(Approval.round, Approval.position)", cascade="all, delete-orphan",
        lazy="selectin")


class ContractTag(Base):
    __tablename__ = "contract_tags"

    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class ContractClause(Base):
    """An additional clause (附加条款), appended to the document as a page when it is sent."""

    __tablename__ = "contract_clauses"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)


class DocumentVersion(Base):
    """One immutable revision of the contract PDF; rows are only ever inserted."""

    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("contract_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    number: Mapped[int]
    kind: Mapped[str] = mapped_column(String(30))
    """``original`` (as uploaded), later ``prepared``, ``signed``, ``sealed``."""
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    page_count: Mapped[int]
    blob_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class Attachment(Base):
    """A file attachment (文件附件), embedded into the PDF at send time so signatures cover it."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ContractText(Base):
    """What keyword search looks in: the title, parties, tags and category (``content``) and the
    text of the document's pages (``body``, extracted when the document is uploaded or rendered).

    ``contracts.search.index`` keeps the search indexes current with it: on SQLite
    ``contract_search_docs`` and two contentless FTS5 tables, on PostgreSQL the table
    ``contract_search`` with GIN indexes. Migration 0010 makes them; they are not SQLAlchemy
    models (see ``contracts.search``).
    """

    __tablename__ = "contract_texts"

    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]


class Approval(Base):
    """One approver's decision in one approval round (合同审批); a rejection ends the round and
    returns the contract to draft, a new submission starts the next round."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("contract_id", "round", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    approver_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    round: Mapped[int]
    position: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    """``waiting`` (sequential, not their turn), ``pending``, ``approved``, ``rejected``,
    ``skipped`` (the round ended without them)."""
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class BulkRun(Base):
    """A bulk send (批量发送): one CSV for one template; each row becomes one contract."""

    __tablename__ = "bulk_runs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"), index=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    template_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("contract_templates.id"))
    filename: Mapped[str] = mapped_column(String(255))
    csv_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    """``invalid`` (rows refused, nothing sent), ``ready``, ``sending``, ``done``."""
    total: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BulkItem(Base):
    """One row of a bulk send; ``contract_id`` is set in the same transaction that creates and
    sends its contract, so a resumed run never sends a row twice."""

    __tablename__ = "bulk_items"
    __table_args__ = (UniqueConstraint("run_id", "row_number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("bulk_runs.id", ondelete="CASCADE"), index=True)
    row_number: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    """``invalid``, ``pending``, ``sent``, ``failed``."""
    data: Mapped[dict[str, Any]]
    """The row as read from the CSV (column → text)."""
    errors: Mapped[dict[str, Any] | None]
    contract_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("contracts.id"))
    updated_at: Mapped[datetime]
