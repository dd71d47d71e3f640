"""Parties of a contract; each signer has a status of its own, apart from the contract's."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from econtract.db import Base


class Signer(Base):
    __tablename__ = "signers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    order: Mapped[int] = mapped_column(default=1)
    """Signing order; signers with the same number form a parallel group."""
    role: Mapped[str] = mapped_column(String(20), default="signer")
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    field_name: Mapped[str | None] = mapped_column(String(64))
    """The PDF signature field made for this signer when the contract is sent."""
    credential_serial: Mapped[str | None] = mapped_column(String(48))
    """Serial of the certificate this signer signed with."""
    created_at: Mapped[datetime]
    signed_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)
