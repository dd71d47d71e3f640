"""Inputs and outputs of the signing core: frozen dataclasses, validated on construction.

Everything here is plain data (bytes, strings, ``cryptography`` objects); pyHanko types never
appear in this module, so callers outside ``econtract.signing`` need not import pyHanko.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from econtract.errors import SigningError, ValidationFailed

#: A rectangle in PDF user space (points, origin bottom-left): ``(llx, lly, urx, ury)``.
Box = tuple[int, int, int, int]

#: The display zone of signature captions unless a caller chooses another one: the platform's
#: users are mainly in mainland China, and every caption prints its offset, so it is unambiguous.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "UTC+8")

#: The field that holds the platform's certification signature (always the first signature).
CERTIFICATION_FIELD = "econtract-certification"

_FIELD_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

SigningPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A private key with its certificate and chain, parsed once and reused for every signature.

    Compared by identity: the pyHanko adapter built from it is cached per instance
    (see :func:`econtract.signing.keys.pyhanko_signer`), so keep one instance alive per key.
    """

    private_key: SigningPrivateKey
    """The key itself (RSA ≥ 2048 bits or ECDSA), already loaded: never re-parsed per signature."""
    certificate: x509.Certificate
    """The certificate of ``private_key``; its subject names the signer."""
    chain: tuple[x509.Certificate, ...] = ()
    """Issuer certificates, the direct issuer first, up to and including the root."""

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SigningError("Only RSA and ECDSA signing keys are supported")
        if isinstance(self.private_key, rsa.RSAPrivateKey) and self.private_key.key_size < 2048:
            raise SigningError("RSA signing keys must have at least 2048 bits")
        if self.private_key.public_key() != self.certificate.public_key():
            raise SigningError("The private key does not belong to the certificate")
        object.__setattr__(self, "chain", tuple(self.chain))


@dataclass(frozen=True)
class SignerSlot:
    """One signer's place on the signature page, and the name of their signature field."""

    field_name: str
    """PDF field name (``[A-Za-z0-9_-]{1,64}``), unique in the document, e.g. ``signer-3``."""
    name: str
    """The signer's display name, printed in their box (any script; CJK is rendered)."""
    email: str
    """The signer's e-mail address, printed under the name."""
    role: str = ""
    """Their role in the contract, e.g. ``甲方 / Party A``; printed above the name."""
    page: int | None = None
    """0-based page of the *uploaded* document where the field is placed (with ``rect``);
    ``None``: the field is a box on the signature page."""
    rect: tuple[float, float, float, float] | None = None
    """The placed field's rectangle ``(x1, y1, x2, y2)`` in PDF points (default user space of
    that page, origin bottom-left); rounded to whole points. Checked against the page's visible
    area by :func:`~econtract.signing.prepare.prepare_document`."""

    def __post_init__(self) -> None:
        if not _FIELD_NAME.fullmatch(self.field_name) or self.field_name == CERTIFICATION_FIELD:
            raise ValidationFailed(f"Invalid signature field name: {self.field_name!r}")
        if (self.page is None) != (self.rect is None):
            raise ValidationFailed("A placed field needs both a page and a rectangle",
                                   code="placement_incomplete")
        if self.rect is not None:
            object.__setattr__(self, "rect", check_placement_rect(self.rect))
        if self.page is not None and self.page < 0:
            raise ValidationFailed("The page of a placed field does not exist",
                                   code="placement_page")

    @property
    def box(self) -> Box | None:
        """The placed rectangle in whole points, or ``None`` on the signature page."""
        return None if self.rect is None else cast(Box, tuple(int(v) for v in self.rect))


#: Smallest and largest placed signature field, in points (width, height): below the minimum
#: the caption cannot be read; above the maximum a "signature" would cover half a page.
MIN_FIELD_SIZE = (60, 24)
MAX_FIELD_SIZE = (420, 240)


def check_placement_rect(rect: Sequence[float]) -> tuple[float, float, float, float]:
    """``rect`` normalised (``x1 < x2``, ``y1 < y2``, whole points) and checked for size.

    :raises ValidationFailed: not four finite numbers (``placement_rect``), smaller than
        :data:`MIN_FIELD_SIZE` (``placement_too_small``) or larger than :data:`MAX_FIELD_SIZE`
        (``placement_too_large``).
    """
    try:
        values = [float(v) for v in rect]
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("A field rectangle is four numbers",
                               code="placement_rect") from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValidationFailed("A field rectangle is four numbers", code="placement_rect")
    x1, x2 = sorted(round(v) for v in values[0::2])
    y1, y2 = sorted(round(v) for v in values[1::2])
    width, height = x2 - x1, y2 - y1
    if width < MIN_FIELD_SIZE[0] or height < MIN_FIELD_SIZE[1]:
        raise ValidationFailed(
            f"A signature field must be at least {MIN_FIELD_SIZE[0]}×{MIN_FIELD_SIZE[1]} pt",
            code="placement_too_small")
    if width > MAX_FIELD_SIZE[0] or height > MAX_FIELD_SIZE[1]:
        raise ValidationFailed(
            f"A signature field must be at most {MAX_FIELD_SIZE[0]}×{MAX_FIELD_SIZE[1]} pt",
            code="placement_too_large")
    return (float(x1), float(y1), float(x2), float(y2))


@dataclass(frozen=True)
class Attachment:
    """A file embedded in the contract PDF, so that every signature covers it."""

    name: str
    """File name shown by PDF viewers (made unique within the document if repeated)."""
    data: bytes
    """The file's content."""
    mime_type: str = "application/octet-stream"
    """MIME type, recorded as the embedded file's ``/Subtype``."""
    description: str | None = None
    """Optional description (``/Desc``)."""
    modified: datetime | None = None
    """Last modification time (``/Params /ModDate``); defaults to the document's creation time."""

    def __post_init__(self) -> None:
        if not self.name.strip() or "/" in self.name or "\\" in self.name:
            raise ValidationFailed(f"Invalid attachment name: {self.name!r}")
        if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", self.mime_type):
            raise ValidationFailed(f"Invalid MIME type: {self.mime_type!r}")


@dataclass(frozen=True)
class PrepareSpec:
    """What :func:`~econtract.signing.prepare.prepare_document` adds to an uploaded PDF."""

    title: str
    """Contract title: document ``/Title`` and the heading of the added pages."""
    signers: Sequence[SignerSlot]
    """Every signer, in signing order; each is listed on the signature page and gets a field:
    a box there, or where the slot's ``page``/``rect`` places it on the uploaded document."""
    clauses: Sequence[tuple[str, str]] = ()
    """Additional clauses as ``(heading, text)`` pairs; none means no clauses page."""
    attachments: Sequence[Attachment] = ()
    """Files to embed (``/EmbeddedFiles`` + catalog ``/AF``)."""
    locale: str = "zh_CN"
    """``zh_CN`` or ``en``: clause numbering and the document language (``/Lang``)."""
    created_at: datetime | None = None
    """Creation time recorded in the document information; ``None`` means now."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "signers", tuple(self.signers))
        object.__setattr__(self, "clauses", tuple(self.clauses))
        object.__setattr__(self, "attachments", tuple(self.attachments))
        if not self.signers:
            raise ValidationFailed("A contract needs at least one signer")
        names = [slot.field_name for slot in self.signers]
        if len(set(names)) != len(names):
            raise ValidationFailed("Signature field names must be unique")


@dataclass(frozen=True)
class FieldInfo:
    """A signature field as placed in a PDF."""

    name: str
    """The field name (``/T``)."""
    page: int
    """0-based page index of the field's widget."""
    box: Box
    """The widget rectangle in PDF points."""


@dataclass(frozen=True)
class PreparedDocument:
    """The clean, unsigned contract: ready for :func:`~econtract.signing.prepare.certify`."""

    pdf: bytes
    """The rewritten PDF (a single revision)."""
    fields: tuple[FieldInfo, ...]
    """Every signer's empty signature field, in signing order."""
    sha256: str
    """Hex SHA-256 of ``pdf``."""


@dataclass(frozen=True)
class AppearanceSpec:
    """The visible signature drawn into a signer's field."""

    name: str
    """The signer's name, printed in the caption (and drawn large when there is no image)."""
    email: str
    """The signer's e-mail address, printed in the caption."""
    image_png: bytes | None = None
    """The drawn or uploaded signature, a PNG (transparency kept); ``None`` → typed name."""
    typed_name: str | None = None
    """Text drawn in place of an image; defaults to ``name``."""
    seal_png: bytes | None = None
    """Optional company seal (PNG), drawn semi-transparent over the right part of the box."""
    display_tz: tzinfo = field(default=CHINA_STANDARD_TIME)
    """Zone of the signing time printed in the caption (the offset is always printed)."""


@dataclass(frozen=True)
class ValidationMaterial:
    """Long-term validation data written into the document security store (DSS) when sealing."""

    certificates: tuple[x509.Certificate, ...] = ()
    """Certificates beyond those embedded in the signatures: issuing CAs, roots, OCSP signers."""
    crls: tuple[bytes, ...] = ()
    """DER-encoded CRLs covering every certificate in every chain, current at sealing time."""
    ocsp_responses: tuple[bytes, ...] = ()
    """DER-encoded OCSP responses (``OCSPResponse``), an alternative or complement to CRLs."""

    def __post_init__(self) -> None:
        for name in ("certificates", "crls", "ocsp_responses"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
