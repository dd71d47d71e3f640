"""Pydantic I/O of the signer API (``/api/v1/signer``): what a signer sends and may see.

Request bodies forbid unknown fields: the API takes no ids at all (the token names the signer and
the contract), so a body that carries one is a mistake or a probe, and is refused.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

CONSENT_TEXT = (
    "我同意使用电子签名签署本合同，电子签名与手写签名或盖章具有同等法律效力。"
    " / I agree to sign this contract electronically; my electronic signature has the same "
    "legal effect as a handwritten signature or seal."
)
"""Shown next to the consent box and recorded verbatim in the audit trail when it is ticked."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ClauseView(_Out):
    title: str
    body: str


class AttachmentView(_Out):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str


class ContractView(_Out):
    title: str
    status: str
    organisation: str
    sender: str
    effective_date: date | None
    expiry_date: date | None
    sign_deadline: datetime | None
    clauses: list[ClauseView]
    attachments: list[AttachmentView]


class SignerSelf(_Out):
    name: str
    email: str
    role: str
    order: int
    status: str


class SignerSession(BaseModel):
    """``GET /api/v1/signer``: everything the signing page needs to decide what to show."""

    contract: ContractView
    signer: SignerSelf
    your_turn: bool
    identity_verified: bool
    identity_methods: list[str]
    key_set_up: bool
    """True: ask for the existing PIN; false: the first signature sets one up (ask twice)."""
    consent_text: str
    csrf_token: str
    """Send back as ``X-CSRF-Token`` on POSTs authenticated by the cookie (not needed with the
    ``X-Signer-Token`` header)."""
    link_expires_at: datetime


class CodeSentRead(BaseModel):
    channel: str
    sent_to: str
    expires_at: datetime
    resend_after: datetime


class CodeIn(_In):
    code: str = Field(min_length=1, max_length=20)


class VerifiedRead(BaseModel):
    identity_verified: bool
    method: str
    signer_status: str


class AppearanceIn(_In):
    type: Literal["typed", "drawn"] = "typed"
    text: str | None = Field(default=None, max_length=80)
    image_png_base64: str | None = Field(default=None, max_length=2_800_000)


class SignIn(_In):
    pin: str = Field(min_length=1, max_length=128)
    consent: StrictBool
    appearance: AppearanceIn = Field(default_factory=AppearanceIn)


class DeclineIn(_In):
    reason: str = Field(max_length=2000)


class OutcomeRead(BaseModel):
    signer_status: str
    contract_status: str
