"""Pydantic I/O of the signer API (``/api/v1/signer``): what a signer sends and may see.

Request bodies forbid unknown fields (422). The API needs no ids at all — the token names the
signer and the contract — but every request body (``ScopedIn``) may carry ``contract_id`` and
``signer_id``, for clients that like to say what they act on: absent or equal to the token's own,
the call proceeds; anything else is 404 ``not_found``, with the same message whether or not that
id exists, so a probe learns nothing (``parties.api`` checks it; query parameters of the same
names are checked the same way).

While an access code is required (``access_code_required``), ``GET /api/v1/signer`` answers
with the title and organisation only: the other members are empty, ``false`` or ``null``.
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


class ScopedIn(_In):
    """A request body: optional ids, which must be the token's own (else 404)."""

    contract_id: uuid.UUID | None = None
    signer_id: uuid.UUID | None = None


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
    """Only ``title`` and ``organisation`` are filled while an access code is required."""

    title: str
    organisation: str
    status: str | None = None
    sender: str | None = None
    effective_date: date | None = None
    expiry_date: date | None = None
    sign_deadline: datetime | None = None
    clauses: list[ClauseView] = []
    attachments: list[AttachmentView] = []


class SignerSelf(_Out):
    name: str
    email: str
    role: str
    order: int
    status: str


class SignerSession(BaseModel):
    """``GET /api/v1/signer``: everything the signing page needs to decide what to show."""

    contract: ContractView
    signer: SignerSelf | None
    """``None`` while an access code is required."""
    access_code_required: bool = False
    """True: ask for the sender's access code (``POST /api/v1/signer/access-code``) before
    anything else; until then every other call is refused with ``access_code_required``."""
    identity_method: str
    """How the identity is proven: ``email_otp`` or ``sms_otp`` (``POST /otp`` sends by it)."""
    your_turn: bool
    identity_verified: bool
    identity_methods: list[str]
    key_set_up: bool
    """True: ask for the existing PIN; false: the first signature sets one up (ask twice)."""
    consent_text: str
    csrf_token: str
    """Send back as ``X-CSRF-Token`` on POSTs authenticated by the cookie (not needed with the
    ``X-Signer-Token`` header)."""
    link_expires_at: datetime | None
    """``None`` while an access code is required."""
    page_count: int | None = None
    """Pages of the current document (``GET /api/v1/signer/pages/{n}``); ``None`` before your
    turn."""
    document_sha256: str | None = None
    """SHA-256 of the current document, as in ``X-Content-SHA256``; ``None`` before your turn.
    Add it to page image URLs (``?v=…``) so a browser never shows a cached page of an older
    version."""


class CodeSentRead(BaseModel):
    channel: str
    sent_to: str
    expires_at: datetime
    resend_after: datetime


class CodeIn(ScopedIn):
    code: str = Field(min_length=1, max_length=20)


class AccessCodeIn(ScopedIn):
    code: str = Field(min_length=1, max_length=64)


class AccessGrantedRead(BaseModel):
    access_granted: bool


class VerifiedRead(BaseModel):
    identity_verified: bool
    method: str
    signer_status: str


class AppearanceIn(_In):
    type: Literal["typed", "drawn"] = "typed"
    text: str | None = Field(default=None, max_length=80)
    image_png_base64: str | None = Field(default=None, max_length=2_800_000)
    """The drawn or uploaded signature (``type`` ``drawn``): a PNG of at most 2 MB."""
    seal_png_base64: str | None = Field(default=None, max_length=2_800_000)
    """Optional company seal (公章) drawn over the signature box: a PNG of at most 2 MB."""


class SignIn(ScopedIn):
    pin: str = Field(min_length=1, max_length=128)
    consent: StrictBool
    appearance: AppearanceIn = Field(default_factory=AppearanceIn)


class DeclineIn(ScopedIn):
    reason: str = Field(max_length=2000)


class OutcomeRead(BaseModel):
    signer_status: str
    contract_status: str
