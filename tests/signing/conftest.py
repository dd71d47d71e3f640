"""Fixtures for the signing core: a test PKI, a contract, and the whole flow built once per session.

``flow`` runs prepare → certify → three signers → seal once and keeps every intermediate
document, so each test checks one step without paying for the others again.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from asn1crypto import crl as asn1_crl
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from econtract.signing import (
    AppearanceSpec,
    Attachment,
    PreparedDocument,
    PrepareSpec,
    SignerSlot,
    certify,
    prepare_document,
    seal_document,
    sign_field,
)
from econtract.signing.keys import as_asn1_certificate
from econtract.signing.pages import cjk_font_path
from tests.signing.testpki import SIGNERS, TestPki

ROLES = ("甲方 / Party A", "乙方 / Party B", "见证人 / Witness")
CLAUSES = (
    ("付款 / Payment", "甲方应在本合同签署后三十日内支付全部款项。"
                      "The Client pays the full amount within thirty days of signing."),
    ("保密 / Confidentiality", "双方对本合同内容负有保密义务。Both parties keep this contract "
                              "confidential."),
)
ATTACHMENTS = (
    Attachment("报价单.csv", "项目,金额\n开发,100000\n".encode(), "text/csv", "报价单 / Quote"),
    Attachment("scope.txt", b"Scope of work: everything.\n", "text/plain"),
)


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki()


def contract_pdf(text: str = "This agreement is made between the parties.") -> bytes:
    """A plain one-page upload, as a customer's word processor would produce it."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def prepare_spec(signers: int = 3) -> PrepareSpec:
    slots = [SignerSlot(f"signer-{i + 1}", name, email, ROLES[i])
             for i, (name, email) in enumerate(SIGNERS[:signers])]
    return PrepareSpec(title="软件开发服务合同 / Software development agreement", signers=slots,
                       clauses=CLAUSES, attachments=ATTACHMENTS, locale="zh_CN",
                       created_at=datetime(2026, 11, 28, 2, 0, tzinfo=UTC))


def signature_png() -> bytes:
    """A blue handwritten-looking stroke on a transparent background."""
    img = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    points = [(40 + x, 110 + 45 * math.sin(x / 38) * math.exp(-x / 700)) for x in range(0, 520, 4)]
    draw.line(points, fill=(20, 40, 140, 255), width=7, joint="curve")
    draw.line([(120, 160), (430, 150)], fill=(20, 40, 140, 255), width=4)
    return _png(img)


def seal_png() -> bytes:
    """A red round company seal (公章) with Chinese text."""
    img = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    red = (205, 30, 30, 255)
    draw.ellipse((12, 12, 388, 388), outline=red, width=14)
    draw.regular_polygon((200, 190, 55), 5, rotation=90, fill=red)
    font = ImageFont.truetype(str(cjk_font_path()), 36)
    draw.text((200, 295), "测试科技有限公司", font=font, fill=red, anchor="mm")
    return _png(img)


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def appearance(index: int, *, image: bool = False, seal: bool = False) -> AppearanceSpec:
    name, email = SIGNERS[index]
    return AppearanceSpec(name=name, email=email, image_png=signature_png() if image else None,
                          seal_png=seal_png() if seal else None)


@dataclass(frozen=True)
class Flow:
    """Every document of one contract's life, in order."""

    upload: bytes
    prepared: PreparedDocument
    certified: bytes
    signed: tuple[bytes, ...]  # after signer 1, 2, 3
    sealed: bytes
    signing_time: datetime


@pytest.fixture(scope="session")
def flow(pki: TestPki) -> Flow:
    upload = contract_pdf()
    prepared = prepare_document(upload, prepare_spec())
    now = datetime.now(UTC)
    pdf = certify(prepared.pdf, key=pki.seal_key, tsa=pki.tsa_client,
                  reason="econtract 平台认证 / platform certification", location="econtract",
                  signing_time=now)
    certified, signed = pdf, []
    # signer 1 draws, signer 2 types and adds the company seal, signer 3 types
    looks = (appearance(0, image=True), appearance(1, seal=True), appearance(2))
    for info, key, look in zip(prepared.fields, pki.signer_keys, looks, strict=True):
        pdf = sign_field(pdf, field_name=info.name, key=key, appearance=look,
                         tsa=pki.tsa_client, signing_time=now, reason="同意 / Agreed")
        signed.append(pdf)
    sealed = seal_document(pdf, tsa=pki.tsa_client, validation=pki.material())
    return Flow(upload, prepared, certified, tuple(signed), sealed, now)


def validation_context(pki: TestPki, moment: datetime | None = None) -> ValidationContext:
    """Trust only the test root; revocation from the supplied CRLs; never fetch."""
    return ValidationContext(
        trust_roots=[as_asn1_certificate(pki.root.cert)],
        other_certs=[as_asn1_certificate(pki.ca.cert)],
        crls=[asn1_crl.CertificateList.load(der) for der in pki.crls],
        allow_fetching=False, revocation_mode="hard-fail", moment=moment)


def signatures(pdf: bytes) -> list[EmbeddedPdfSignature]:
    return list(PdfFileReader(io.BytesIO(pdf), strict=True).embedded_regular_signatures)


def validate_all(pki: TestPki, pdf: bytes) -> Iterator[tuple[str, PdfSignatureStatus]]:
    """pyHanko's verdict on every approval/certification signature of ``pdf``."""
    for sig in signatures(pdf):
        yield sig.field_name, validate_pdf_signature(sig, validation_context(pki))


def assert_fully_valid(name: str, status: PdfSignatureStatus) -> None:
    assert status.intact and status.valid, (name, status.summary())
    assert status.trusted, (name, status.summary())
    assert status.docmdp_ok is not False, (name, status.summary())
    assert status.timestamp_validity is not None, f"{name}: no signature timestamp"
    assert status.timestamp_validity.valid and status.timestamp_validity.trusted, name
    assert status.bottom_line, (name, status.pretty_print_details())
