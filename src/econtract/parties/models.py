"""Parties of a contract; each signer has a status of its own, apart from the contract's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from econtract.db import Base


class Signer(Base):
    __tablename__ = "signers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    order: Mapped[int] = mapped_column(default=1)
    """Signing order; signers with the same number form a parallel group."""
    role: Mapped[str] = mapped_column(String(20), default="signer")
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    field_name: Mapped[str | None] = mapped_column(String(64))
    """The PDF signature field made for this signer when the contract is sent."""
    field_page: Mapped[int | None]
    """Where the signature field goes (1-based page), when placed on the document itself —
    by a template's anchor or the placement editor; ``None``: on the added signature page."""
    field_rect: Mapped[dict[str, Any] | None]
    """``{"rect": [x1, y1, x2, y2]}`` in PDF points from the page's bottom left."""
    credential_serial: Mapped[str | None] = mapped_column(String(48))
    """Serial of the certificate this signer signed with."""
    created_at: Mapped[datetime]
    signed_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None]
    identity_method: Mapped[str | None] = mapped_column(String(30))
    """How the identity was proven (``email_otp`` …), for the certificate of completion."""
    otp_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    """Wrong one-time codes in a row; reset by a right one."""
    otp_locked_until: Mapped[datetime | None]
    auth_method: Mapped[str] = mapped_column(String(20), default="email_otp",
                                             server_default="email_otp")
    """The one-time code's channel chosen by the sender: ``email_otp`` or ``sms_otp``."""
    access_code_hash: Mapped[str | None] = mapped_column(String(200))
    """An optional access code the sender tells the signer out of band (Argon2id hash)."""
    access_code_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    access_granted_at: Mapped[datetime | None]
    """When the access code was entered right (``None`` while one is required)."""


class SignerLink(Base):
    """An invitation link ``{base_url}/s/{token}``: only the token's SHA-256 is stored.

    A signer may hold several live links (the invitation, later reminders): each e-mail carries a
    fresh token because the plaintext of an earlier one is not kept anywhere.
    """

    __tablename__ = "signer_links"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    signer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("signers.id", ondelete="CASCADE"), index=True)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organisations.id"))
    purpose: Mapped[str] = mapped_column(String(20), default="sign")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_opened_at: Mapped[datetime | None]


class SignerOtp(Base):
    """A one-time code sent to a signer; stored hashed, used at most once."""

    __tablename__ = "signer_otps"
    __table_args__ = (Index("ix_signer_otps_signer_created", "signer_id", "created_at"),
                      Index("ix_signer_otps_ip_created", "ip", "created_at"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    signer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("signers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20), default="email")
    ip: Mapped[str | None] = mapped_column(String(64))
    """The address that asked for the code, for the per-IP send limit."""
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    """Set when the code is accepted, or when a newer code or a lock replaces it."""
