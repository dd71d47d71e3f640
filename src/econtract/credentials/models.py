"""Platform keys and certificates, and each signer's own key and certificate.

Private keys are stored only encrypted: platform keys under the master key, signer keys under a
key derived from the signer's PIN *and* the master key (``econtract.pki.keystore``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from econtract.db import Base


class PlatformCredential(Base):
    """One of the platform's CA, TSA and seal certificates with its sealed private key."""

    __tablename__ = "platform_credentials"

    slug: Mapped[str] = mapped_column(String(30), primary_key=True)
    """``root``, ``signer-ca``, ``tsa`` or ``seal`` (the names used in URLs)."""
    certificate: Mapped[bytes] = mapped_column(LargeBinary)
    key_blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class IssuedCertificate(Base):
    """Every certificate the platform's CAs issued: what CRLs and OCSP answers are made of."""

    __tablename__ = "issued_certificates"
    __table_args__ = (Index("ix_issued_certificates_issuer_revoked", "issuer_slug",
                            "revoked_at"),)

    serial: Mapped[str] = mapped_column(String(48), primary_key=True)
    """Hex, lower case (serials are up to 159 bits: too big for a BIGINT)."""
    issuer_slug: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(20))
    """``ca``, ``tsa``, ``seal`` or ``signer``."""
    subject: Mapped[str] = mapped_column(String(500))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(40))


class SignerCredential(Base):
    """A signer's own key pair and certificate, set up at their first signature (密钥设置).

    Keyed by the verified e-mail address: the same person signs every later contract, of any
    organisation on this installation, with the same key and PIN.
    """

    __tablename__ = "signer_credentials"
    __table_args__ = (Index("ix_signer_credentials_email_status", "email", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")
    """``active`` or ``revoked`` (a PIN reset revokes the old credential)."""
    serial: Mapped[str] = mapped_column(ForeignKey("issued_certificates.serial"))
    certificate: Mapped[bytes] = mapped_column(LargeBinary)
    key_blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    pin_failures: Mapped[int] = mapped_column(default=0)
    pin_locked_until: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
