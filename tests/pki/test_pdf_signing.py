"""End to end: pyHanko signs a PDF with a signer certificate of our PKI and a token of our TSA;
pyHanko and poppler's pdfsig both accept the result."""

from __future__ import annotations

import io
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator.registry import SimpleCertificateStore

from econtract.pki import PlatformPki, Revocation, TimeStampAuthority
from tests.pki._support import (
    ISSUED,
    InProcessTimeStamper,
    Signer,
    asn1_cert,
    asn1_key,
    blank_pdf,
    crl_for,
    validation_context,
)
from tests.pki.conftest import make_signer


def sign(pki: PlatformPki, signer: Signer, tsa: TimeStampAuthority) -> bytes:
    pdf_signer = signers.SimpleSigner(
        signing_cert=asn1_cert(signer.certificate), signing_key=asn1_key(signer.key),
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert(pki.issuing.certificate)]))
    meta = signers.PdfSignatureMetadata(field_name="Signer1", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES)
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(blank_pdf())), meta,
                           signer=pdf_signer, timestamper=InProcessTimeStamper(tsa),
                           bytes_reserved=16384)
    return out.getvalue()


def validate(pki: PlatformPki, pdf: bytes, signer_crl: bytes) -> PdfSignatureStatus:
    context = validation_context(pki, crls=[crl_for(pki.root), signer_crl])
    reader = PdfFileReader(io.BytesIO(pdf))
    return validate_pdf_signature(reader.embedded_signatures[0], signer_validation_context=context,
                                  ts_validation_context=context)


@pytest.fixture(scope="module")
def signed_pdf(pki: PlatformPki, signer: Signer, tsa: TimeStampAuthority) -> bytes:
    return sign(pki, signer, tsa)


def test_pyhanko_accepts_signature_and_timestamp(pki: PlatformPki, signed_pdf: bytes) -> None:
    status = validate(pki, signed_pdf, crl_for(pki.issuing))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.signing_cert.subject.native["common_name"] == "张三"
    assert status.timestamp_validity is not None
    ts = status.timestamp_validity
    assert ts.intact and ts.valid and ts.trusted, ts.trust_problem_indic
    assert ts.signing_cert.subject.native["common_name"].endswith("Time Stamping")


def test_revoked_signer_is_not_trusted(pki: PlatformPki, tsa: TimeStampAuthority) -> None:
    victim = make_signer(pki, "赵六", "zhaoliu@example.cn")
    pdf = sign(pki, victim, tsa)
    crl = crl_for(pki.issuing, [Revocation(victim.certificate.serial_number,
                                           ISSUED + timedelta(minutes=5),
                                           x509.ReasonFlags.key_compromise)], number=3)
    status = validate(pki, pdf, crl)
    assert status.intact and status.valid  # the bytes are fine ...
    assert not status.trusted and status.revoked  # ... the signer is not


def test_pdfsig_reports_valid_and_trusted(pki: PlatformPki, signed_pdf: bytes,
                                          tmp_path: Path) -> None:
    nss = tmp_path / "nss"
    nss.mkdir()
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-n", "econtract-root", "-t", "CT,C,C", "-i",
                    str(root_pem), "-d", f"sql:{nss}"], check=True)
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(signed_pdf)
    # -no-ocsp: the AIA points at http://testserver, which does not exist in this test.
    result = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", "-no-ocsp", str(pdf)],
                            capture_output=True, text=True, check=False, timeout=60)
    assert "Signature is Valid." in result.stdout, result.stdout + result.stderr
    assert "Certificate is Trusted." in result.stdout, result.stdout
    assert "张三" in result.stdout
