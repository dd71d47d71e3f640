"""Acceptance of the signing engine on the platform's own output: a contract signed by three
people and sealed is valid for our verifier (CLI, API) and for poppler's pdfsig, still valid past
the signers' certificate expiry, and a revoked signer is reported through the CRL and OCSP."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.app import create_app
from econtract.cli import main
from econtract.context import Actor, Ctx, utcnow
from econtract.credentials import service as credentials
from econtract.credentials.models import SignerCredential
from econtract.runtime import Runtime
from econtract.signing import AppearanceSpec, sign_field
from econtract.signing.report import Verdict
from econtract.signing.verify import TrustSpec, verify_pdf
from tests.parties.test_sign import SIGNERS, current_pdf, sent_contract, sign_as


def test_cli_and_api_say_valid(rt: Runtime, sealed_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "合同.pdf"
    path.write_bytes(sealed_pdf)
    env = {"ECONTRACT_DATA_DIR": str(rt.settings.data_dir),
           "ECONTRACT_DATABASE_URL": rt.settings.resolved_database_url}
    result = CliRunner().invoke(main, ["verify", str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "valid"
    kinds = [s["kind"] for s in report["signatures"]]
    assert kinds.count("approval") == 3 and "certification" in kinds
    human = CliRunner().invoke(main, ["verify", str(path)], env=env)
    assert human.exit_code == 0 and "张三" in human.output and "verdict: valid" in human.output
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(sealed_pdf + b"\n1 0 obj\n(evil)\nendobj\n")
    bad = CliRunner().invoke(main, ["verify", str(tampered), "--json"], env=env)
    assert bad.exit_code == 1 and json.loads(bad.stdout)["verdict"] != "valid"
    missing = CliRunner().invoke(main, ["verify", str(tmp_path / "nope.pdf")], env=env)
    assert missing.exit_code == 2
    with TestClient(create_app(rt)) as client:
        answer = client.post("/api/v1/verify", files={"file": ("c.pdf", sealed_pdf)})
        assert answer.status_code == 200 and answer.json()["verdict"] == "valid"
        junk = client.post("/api/v1/verify", files={"file": ("x.pdf", b"<html>hi</html>")})
        assert junk.json()["verdict"] == "not-a-pdf"


def test_outside_trust_is_not_trusted(rt: Runtime, sealed_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "c.pdf"
    path.write_bytes(sealed_pdf)
    result = CliRunner().invoke(main, ["verify", str(path), "--json"],
                                env={"ECONTRACT_DATA_DIR": str(tmp_path / "empty")})
    assert result.exit_code == 1
    assert json.loads(result.stdout)["verdict"] == "invalid-trust"
    root = tmp_path / "root.pem"
    root.write_bytes(rt.authority().root.certificate.public_bytes(serialization.Encoding.PEM))
    trusted = CliRunner().invoke(main, ["verify", str(path), "--trust", str(root), "--json"],
                                 env={"ECONTRACT_DATA_DIR": str(tmp_path / "empty")})
    # the DSS carries the revocation data of signing time; the newest timestamp still needs
    # current CRLs, which an offline verifier without the data dir can pass with --crl
    with rt.uow() as session:
        crls = rt.signing_engine().crls(session, utcnow())
    crl_args = []
    for index, crl in enumerate(crls):
        crl_path = tmp_path / f"{index}.crl"
        crl_path.write_bytes(crl)
        crl_args += ["--crl", str(crl_path)]
    offline = CliRunner().invoke(main, ["verify", str(path), "--trust", str(root), *crl_args,
                                        "--json"], env={"ECONTRACT_DATA_DIR": str(tmp_path)})
    assert offline.exit_code == 0, offline.output
    assert json.loads(trusted.stdout)["verdict"] in ("valid", "invalid-trust")


def test_long_term_validation_past_expiry(rt: Runtime, sealed_pdf: bytes) -> None:
    # signer certificates live 730 days; the platform's CAs 10 and 20 years
    later = utcnow() + timedelta(days=800)
    with rt.uow() as session:
        crls = rt.signing_engine().crls(session, later)
    report = verify_pdf(sealed_pdf, TrustSpec(roots=(rt.authority().root.certificate,),
                                              crls=crls, moment=later))
    assert report.verdict is Verdict.VALID, report.to_dict()


def test_pdfsig_valid_and_trusted(rt: Runtime, sealed_pdf: bytes, tmp_path: Path) -> None:
    for tool in ("pdfsig", "certutil"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y poppler-utils libnss3-tools")
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{nss}"], check=True)
    root = tmp_path / "root.der"
    root.write_bytes(rt.authority().root.cert_der)
    subprocess.run(["certutil", "-A", "-n", "econtract-root", "-t", "CT,C,C", "-i", str(root),
                    "-d", f"sql:{nss}"], check=True)
    pdf = tmp_path / "sealed.pdf"
    pdf.write_bytes(sealed_pdf)
    out = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", "-no-ocsp", str(pdf)],
                         capture_output=True, text=True, check=False).stdout
    blocks = [b for b in out.split("Signature #")[1:] if "Signer Certificate Common Name" in b]
    signers = [b for b in blocks if any(str(s["name"]) in b for s in SIGNERS)]
    assert len(signers) == 3, out
    for block in signers:
        assert "Signature is Valid." in block and "Certificate is Trusted." in block, block


def _ocsp_for(rt: Runtime, cert: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(
        cert, rt.authority().issuing.certificate, hashes.SHA256()).build()
    with rt.uow() as session:
        return credentials.ocsp(session, rt.authority(),
                                request_der=request.public_bytes(serialization.Encoding.DER),
                                now=utcnow())


def test_revoked_signer_is_invalid_trust_via_crl_and_ocsp(rt: Runtime) -> None:
    """A key used after its certificate was revoked (say, a stolen key): the signature's
    timestamp proves it was made after the revocation, so no point of existence saves it."""
    first = sent_contract(rt, signers=[SIGNERS[0]])
    assert sign_as(rt, first.id, "zhang@example.com").error is None
    time.sleep(1.1)  # CRLs and OCSP carry whole seconds: keep signing and revoking apart
    with rt.uow() as session:
        row = session.scalars(select(SignerCredential)).one()
        cert = x509.load_der_x509_certificate(row.certificate)
        ctx = Ctx(actor=Actor.system("test"))
        stolen = credentials.unlock(session, ctx, keyring=rt.keyring, credential=row,
                                    pin="482915").key
        credentials.revoke_credential(session, ctx, credential=row, reason="key_compromise")
    assert stolen is not None
    second = sent_contract(rt, signers=[SIGNERS[0]])
    _, certified = current_pdf(rt, second.id)
    engine = rt.signing_engine()
    forged = sign_field(certified, field_name="signer-1", key=engine.signer_key(stolen, cert),
                        appearance=AppearanceSpec(name="张三", email="zhang@example.com"),
                        tsa=engine.tsa, signing_time=utcnow())
    root = rt.authority().root.certificate
    now = utcnow()
    with rt.uow() as session:
        via_crl = verify_pdf(forged, engine.trust(session, now))
        root_crl = engine.crls(session, now)[0]
    assert via_crl.verdict is Verdict.INVALID_TRUST, via_crl.to_dict()
    via_ocsp = verify_pdf(forged, TrustSpec(roots=(root,), crls=(root_crl,),
                                            ocsps=(_ocsp_for(rt, cert),), moment=now))
    assert via_ocsp.verdict is Verdict.INVALID_TRUST, via_ocsp.to_dict()
    assert any("revoked" in s.reason.lower() for s in via_ocsp.signatures)
    # the signature made before the revocation keeps its value (proven by its timestamp)
    _, honest = current_pdf(rt, first.id)
    with rt.uow() as session:
        assert verify_pdf(honest, engine.trust(session, now)).verdict is Verdict.VALID
