"""Pydantic I/O for accounts."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from econtract.accounts.policy import Role


class UserCreate(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field(default="", max_length=200)
    role: Role = Role.MEMBER


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class ApiKeyCreate(BaseModel):
    name: str = Field(default="default", min_length=1, max_length=100)


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str
    """The full key, shown once and never again."""


class ReminderDefaults(BaseModel):
    """The organisation's reminder defaults, for contracts that set none of their own."""

    model_config = ConfigDict(from_attributes=True)

    reminder_interval_hours: int
    """Hours between automatic reminders to the signers whose turn it is."""
    reminder_max: int
    """At most this many automatic reminders per signing group (0 = none)."""
    renewal_reminder_days: int
    """Days before a completed contract's expiry date its owner is reminded (0 = never)."""


class ReminderDefaultsUpdate(BaseModel):
    """Fields left out stay as they are."""

    reminder_interval_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    reminder_max: int | None = Field(default=None, ge=0, le=20)
    renewal_reminder_days: int | None = Field(default=None, ge=0, le=365)
