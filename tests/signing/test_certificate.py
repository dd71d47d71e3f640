"""The certificate of completion, pure: rendered text (Chinese intact), embedded fonts, and the
platform's certification (P=1) as our verifier and poppler's pdfsig see it. No database."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyhanko.pdf_utils.generic import NameObject, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from econtract.errors import ValidationFailed
from econtract.signing.certificate import (
    CertificateApproval,
    CertificateData,
    CertificateSigner,
    render_certificate,
    seal_certificate,
)
from econtract.signing.report import SignatureKind, Verdict
from econtract.signing.verify import TrustSpec, verify_pdf
from tests.signing.test_pdfsig import _blocks, _nss_db
from tests.signing.testpki import TestPki

NOW = datetime(2026, 11, 28, 9, 30, 15, tzinfo=UTC)
USER_AGENT = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like "
              "Gecko) Version/17.1 Safari/605.1.15")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def signer(index: int, name: str, email: str) -> CertificateSigner:
    return CertificateSigner(
        name=name, email=email, identity_method="email_otp",
        verified_at=NOW + timedelta(minutes=index),
        signed_at=NOW + timedelta(minutes=index, seconds=7),
        signed_at_proven=True, ip=f"198.51.100.{10 + index}", user_agent=f"{USER_AGENT} #{index}",
        certificate_serial=f"{0x5eed + index:040x}", field_name=f"signer-{index}",
        timestamp_authority="econtract Test TSA")


def sample(*, signers: int = 2, approvals: bool = False) -> CertificateData:
    people = [("张三", "zhang@example.com"), ("Bob Lee", "bob@example.com"),
              ("王五", "wang@example.com"), ("李四", "li@example.com")]
    return CertificateData(
        contract_id="0b7d9f0e-5a51-4c3e-9f2e-6f1c1d6a0c11", title="房屋租赁合同 Lease 2026",
        organisation="Acme 科技有限公司", sha256_at_send=digest("sent"),
        sha256_at_completion=digest("sealed"), version_at_send=2, version_at_completion=5,
        sent_at=NOW - timedelta(hours=2), completed_at=NOW + timedelta(minutes=20),
        generated_at=NOW + timedelta(minutes=21),
        audit_chain="6c1e5d2a-9a3b-4f8e-8d7c-1b2a3c4d5e6f",
        audit_head_seq=41, audit_head_hash=digest("head"),
        signers=[signer(i + 1, n, e) for i, (n, e) in enumerate(people[:signers])],
        approvals=[CertificateApproval("contract.submitted", "Mia 经理", NOW - timedelta(hours=3)),
                   CertificateApproval("contract.approved", "Ann Approver",
                                       NOW - timedelta(hours=2, minutes=30), "看过了 OK")]
        if approvals else [],
        verify_url="http://testserver/verify")


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"`{name}` is missing: install poppler-utils (`make test` does)"
    return path


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    done = subprocess.run([tool("pdftotext"), "-enc", "UTF-8", str(path), "-"],
                          capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8")


@pytest.fixture(scope="module")
def sealed(pki: TestPki) -> bytes:
    return seal_certificate(render_certificate(sample(approvals=True)), key=pki.seal_key,
                            tsa=pki.tsa_client, signing_time=datetime.now(UTC),
                            location="http://testserver")


def test_text_in_chinese_and_english(tmp_path: Path) -> None:
    data = sample()
    text = pdf_text(render_certificate(data), tmp_path)
    for expected in ("完成证书 / Certificate of completion", "房屋租赁合同 Lease 2026",
                     "Acme 科技有限公司", "合同编号 / Contract ID", data.contract_id,
                     "文件哈希 / Document SHA-256", data.sha256_at_send, data.sha256_at_completion,
                     "签署方 1 / Signer 1: 张三", "签署方 2 / Signer 2: Bob Lee",
                     "邮箱验证码 / E-mail one-time code", "198.51.100.11", "198.51.100.12",
                     "审批记录 / Approvals", "无 / none", "审计链 / Audit chain",
                     data.audit_head_hash, "41", "第 1 页", "Page 1 of",
                     "http://testserver/verify"):
        assert expected in text, expected
    for person in data.signers:
        assert person.certificate_serial and person.certificate_serial in text
    # times are printed in UTC+8 with seconds; the signing time is marked as proven
    assert "2026-11-28 17:31:22 UTC+8" in text and "proven by timestamp" in text
    assert "生成时间 / Generated at 2026-11-28 17:51:15 UTC+8" in text
    # long user agents wrap, but every word of them is there
    assert all(word in text for word in USER_AGENT.split())


def test_page_numbers_count_every_page(tmp_path: Path) -> None:
    text = pdf_text(render_certificate(sample(signers=4, approvals=True)), tmp_path)
    pages = int(re.findall(r"Page 1 of (\d+)", text)[0])
    assert pages >= 2
    for number in range(1, pages + 1):
        assert f"第 {number} 页，共 {pages} 页 / Page {number} of {pages}" in text
    assert "批准 / Approved" in text and "Ann Approver" in text and "看过了 OK" in text
    assert "提交审批 / Submitted for approval" in text and "无 / none" not in text


def test_every_font_is_embedded(tmp_path: Path) -> None:
    path = tmp_path / "certificate.pdf"
    path.write_bytes(render_certificate(sample()))
    done = subprocess.run([tool("pdffonts"), str(path)], capture_output=True, text=True,
                          check=True, timeout=60)
    rows = done.stdout.splitlines()[2:]
    assert rows, done.stdout
    for row in rows:
        emb = row.split()[-5]  # name type encoding emb sub uni object ID
        assert emb == "yes", row


def test_hostile_text_is_drawn_as_plain_text(tmp_path: Path) -> None:
    data = sample()
    tricky = CertificateSigner(name="Eve\u202eFDP.exe\x07", email="eve@example.com",
                               identity_method="unknown_method", verified_at=None, signed_at=None,
                               signed_at_proven=False, ip=None, user_agent="line1\nline2")
    text = pdf_text(render_certificate(CertificateData(**{
        **data.__dict__, "signers": (tricky,)})), tmp_path)
    assert "EveFDP.exe" in text and "\u202e" not in text and "line1 line2" in text
    assert "unknown_method" in text


def test_bad_data_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        CertificateData(**{**sample().__dict__, "audit_head_hash": "ABC"})
    with pytest.raises(ValidationFailed):
        CertificateData(**{**sample().__dict__, "generated_at": datetime(2026, 1, 1)})


def test_sealed_certificate_is_certified_and_locked(sealed: bytes, pki: TestPki) -> None:
    trust = TrustSpec(roots=(pki.root.cert,), crls=pki.crls)
    report = verify_pdf(sealed, trust)
    assert report.verdict is Verdict.VALID, report.to_dict()
    [signature] = report.signatures
    assert signature.kind is SignatureKind.CERTIFICATION and signature.docmdp == 1
    assert signature.timestamp_proven and signature.signer is not None
    assert signature.signer.common_name == "econtract Platform Seal"
    # P=1: not even an innocuous incremental update is permitted afterwards
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    writer.root[NameObject("/EcNote")] = pdf_string("added later")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    assert verify_pdf(out.getvalue(), trust).verdict is Verdict.MODIFIED
    # and a changed byte inside the signed range breaks it outright
    index = sealed.index(b"/Producer")
    flipped = sealed[:index] + b"/Producex" + sealed[index + 9:]
    assert verify_pdf(flipped, trust).verdict is not Verdict.VALID
    # the signing core refuses to certify it a second time
    with pytest.raises(Exception, match="already signed"):
        seal_certificate(sealed, key=pki.seal_key, tsa=None, signing_time=NOW,
                         location="http://testserver")


def test_pdfsig_trusts_the_certification(sealed: bytes, pki: TestPki, tmp_path: Path) -> None:
    db = _nss_db(pki, tmp_path / "nss")
    document = tmp_path / "certificate.pdf"
    document.write_bytes(sealed)
    done = subprocess.run([tool("pdfsig"), "-nssdir", db, str(document)], capture_output=True,
                          text=True, timeout=120, check=False)
    block = _blocks(done.stdout)["econtract-certification"]
    assert "Signature Validation: Signature is Valid." in block, done.stdout
    assert "Certificate Validation: Certificate is Trusted." in block, done.stdout
    assert "Total document signed" in block and "Not total document signed" not in block
    assert "Signature Type: ETSI.CAdES.detached" in block
