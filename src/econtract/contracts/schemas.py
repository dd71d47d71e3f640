"""Pydantic I/O for contracts: ``ContractCreate`` / ``ContractUpdate`` in, ``ContractRead`` out."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from econtract.contracts.states import Status

SignerRole = Literal["signer", "approver", "cc"]
IdentityMethod = Literal["email_otp", "sms_otp"]
Routing = Literal["sequential", "parallel"]
ApprovalMode = Literal["sequential", "any"]
Approver = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320,
                                            pattern=r"^[^@\s]+@[^@\s]+$")]
SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title",
                  "expiry_date", "-expiry_date", "effective_date", "-effective_date",
                  "sign_deadline", "-sign_deadline", "status", "-status"]


class SignerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()-]{5,40}$")
    order: int = Field(default=1, ge=1, le=100)
    role: SignerRole = "signer"
    identity_method: IdentityMethod = "email_otp"
    """How the signer proves who they are: a code by e-mail (default) or by SMS (needs a phone)."""
    access_code: str | None = Field(default=None, min_length=4, max_length=32)
    """Optional: a code the sender tells the signer by another channel; asked before anything
    else. Stored hashed and never shown again."""

    @model_validator(mode="after")
    def _sms_needs_phone(self) -> SignerIn:
        if self.identity_method == "sms_otp" and not self.phone:
            raise ValueError("identity_method sms_otp needs a phone number")
        return self


class ClauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(default="", max_length=300)
    body: str = Field(min_length=1, max_length=20_000)


def _clause(value: Any) -> Any:
    # A bare string is a clause without a title: the common case in API calls.
    return {"body": value} if isinstance(value, str) else value


def _tags(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for raw in values:
        tag = raw.strip()
        if not tag:
            continue
        if len(tag) > 50:
            raise ValueError("each tag must be at most 50 characters")
        seen.setdefault(tag, None)
    if len(seen) > 20:
        raise ValueError("at most 20 tags")
    return list(seen)


class _ContractFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("clauses", mode="before", check_fields=False)
    @classmethod
    def _clauses(cls, value: Any) -> Any:
        return [_clause(v) for v in value] if isinstance(value, list) else value

    @field_validator("tags", check_fields=False)
    @classmethod
    def _normalise_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _tags(value)

    @field_validator("signers", check_fields=False)
    @classmethod
    def _unique_signers(cls, value: list[SignerIn] | None) -> list[SignerIn] | None:
        emails = [s.email.lower() for s in value or []]
        if len(emails) != len(set(emails)):
            raise ValueError("each signer needs a different e-mail address")
        return value

    @model_validator(mode="after")
    def _dates(self) -> _ContractFields:
        effective = getattr(self, "effective_date", None)
        expiry = getattr(self, "expiry_date", None)
        if effective and expiry and expiry < effective:
            raise ValueError("expiry_date must not be before effective_date")
        deadline = getattr(self, "sign_deadline", None)
        if deadline is not None and deadline.tzinfo is None:
            raise ValueError("sign_deadline needs a time zone, e.g. 2026-12-31T18:00:00+08:00")
        return self


class ContractCreate(_ContractFields):
    title: str = Field(min_length=1, max_length=300)
    signers: list[SignerIn] = Field(default_factory=list, max_length=50)
    effective_date: date | None = None
    expiry_date: date | None = None
    sign_deadline: datetime | None = None
    clauses: list[ClauseIn] = Field(default_factory=list, max_length=100)
    category: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list)
    routing: Routing = "sequential"
    approvers: list[Approver] = Field(default_factory=list, max_length=10)
    """E-mail addresses of users of the organisation who must approve before the contract may
    be sent (合同审批); checked against the organisation's users, not as deliverable addresses."""
    approval_mode: ApprovalMode = "sequential"
    reminder_interval_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    """Hours between automatic reminders; empty takes the organisation's default."""
    reminder_max: int | None = Field(default=None, ge=0, le=20)
    """At most this many automatic reminders (0 = none); empty takes the organisation's."""


class ContractUpdate(_ContractFields):
    """Only the fields given are changed; lists given replace the old list."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    signers: list[SignerIn] | None = Field(default=None, max_length=50)
    effective_date: date | None = None
    expiry_date: date | None = None
    sign_deadline: datetime | None = None
    clauses: list[ClauseIn] | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=100)
    tags: list[str] | None = None
    routing: Routing | None = None
    approvers: list[Approver] | None = Field(default=None, max_length=10)
    approval_mode: ApprovalMode | None = None
    reminder_interval_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    reminder_max: int | None = Field(default=None, ge=0, le=20)


class VoidRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(BaseModel):
    """An approver's comment; required to reject."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class SignerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    phone: str | None
    order: int
    role: str
    status: str
    identity_method: str = Field(validation_alias="auth_method")
    has_access_code: bool = False
    signed_at: datetime | None
    declined_at: datetime | None
    decline_reason: str | None

    @model_validator(mode="before")
    @classmethod
    def _access_code_flag(cls, value: Any) -> Any:
        # Only whether a code is set goes out, never its hash.
        if hasattr(value, "access_code_hash"):
            return {**{k: getattr(value, k) for k in (
                "id", "name", "email", "phone", "order", "role", "status", "auth_method",
                "signed_at", "declined_at", "decline_reason")},
                "has_access_code": value.access_code_hash is not None}
        return value


class ClauseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    title: str
    body: str


class AttachmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int
    kind: str
    filename: str
    sha256: str
    size: int
    page_count: int
    created_at: datetime


class ApprovalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    approver_id: uuid.UUID
    round: int
    position: int
    status: str
    comment: str | None
    decided_at: datetime | None


class ContractSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    status: Status
    category: str | None
    tags: list[str]
    effective_date: date | None
    expiry_date: date | None
    sign_deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    owner_id: uuid.UUID
    highlight: str | None = None
    """With a keyword search (``q``): an excerpt of the matching text, the matches wrapped in
    ``<mark>`` and everything else HTML-escaped."""

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> Any:
        return [getattr(t, "tag", t) for t in value]


class ContractRead(ContractSummary):
    @field_validator("approver_ids", mode="before")
    @classmethod
    def _approver_list(cls, value: Any) -> Any:
        return (value or {}).get("users", []) if isinstance(value, dict) or value is None \
            else value

    signers: list[SignerRead]
    clauses: list[ClauseRead]
    attachments: list[AttachmentRead]
    document: DocumentRead | None = None
    void_reason: str | None
    status_changed_at: datetime
    routing: str
    reminder_interval_hours: int | None
    reminder_max: int | None
    reminders_sent: int
    next_reminder_at: datetime | None
    allowed_actions: list[str] = Field(default_factory=list)
    approval_mode: str = "sequential"
    approver_ids: list[uuid.UUID] = Field(default_factory=list)
    """Who must approve before sending, in order (empty: no approval needed)."""
    approvals: list[ApprovalRead] = Field(default_factory=list)
    """Every approval decision, round by round."""
    template_id: uuid.UUID | None = None
    """The template the document was rendered from (``None`` for an uploaded PDF)."""
    template_version: int | None = None
    """That template's version number at the time."""


class ContractPage(BaseModel):
    items: list[ContractSummary]
    total: int
    """With ``q``, counting stops after 1,000: ``total_capped`` is then true and ``total``
    1000 (there are more)."""
    total_capped: bool = False
    page: int
    per_page: int


class ContractFilter(BaseModel):
    """List filters; every one combines with the others."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, max_length=200)
    status: list[Status] | None = None
    category: str | None = None
    tag: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    expiry_from: date | None = None
    expiry_to: date | None = None
    archived: bool | None = False
    """``False`` (default): archived contracts hidden; ``True``: only archived; ``None``: all."""
    expiring_within_days: int | None = Field(default=None, ge=0, le=3650)
    """Only completed contracts whose expiry date is today (UTC+8) or within this many days."""
    sort: SortKey = "-created_at"
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=20, ge=1, le=200)


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    kind: str
    occurred_at: datetime
    actor_kind: str
    actor_label: str
    ip: str | None
    user_agent: str | None
    data: dict[str, Any]
    hash: str
    prev_hash: str
