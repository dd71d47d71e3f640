"""certify and sign_field: certification first (DocMDP P=2), then PAdES B-T approvals in order."""

from __future__ import annotations

import io
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import read_certification_data
from pyhanko.sign.validation.status import ModificationLevel, SignatureCoverageLevel

from econtract.errors import SigningError, UpstreamError, ValidationFailed
from econtract.signing import CERTIFICATION_FIELD, AppearanceSpec, SigningKey, TsaClient, sign_field
from econtract.signing.keys import pyhanko_signer, reserve_for
from econtract.signing.sign import format_signing_time
from tests.signing.conftest import (
    Flow,
    appearance,
    assert_fully_valid,
    signatures,
    validate_all,
)
from tests.signing.testpki import SIGNERS, TestPki

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "signing"


def test_certification_comes_first_with_docmdp_p2(flow: Flow, pki: TestPki) -> None:
    ((name, status),) = validate_all(pki, flow.certified)
    assert name == CERTIFICATION_FIELD
    assert_fully_valid(name, status)
    reader = PdfFileReader(io.BytesIO(flow.certified), strict=True)
    certification = read_certification_data(reader)
    assert certification is not None and certification.permission == MDPPerm.FILL_FORMS
    sig = signatures(flow.certified)[0]
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert sig.signer_cert.subject.native["common_name"] == "econtract Platform Seal"


def test_every_step_validates(flow: Flow, pki: TestPki) -> None:
    for step, pdf in enumerate(flow.signed, start=1):
        results = list(validate_all(pki, pdf))
        expected = [CERTIFICATION_FIELD, *(f"signer-{i}" for i in range(1, step + 1))]
        assert [name for name, _ in results] == expected
        for name, status in results:
            assert_fully_valid(name, status)
            assert status.modification_level in (ModificationLevel.NONE,
                                                 ModificationLevel.FORM_FILLING), name
        assert results[-1][1].coverage == SignatureCoverageLevel.ENTIRE_FILE


def test_each_signer_signs_with_their_own_certificate(flow: Flow) -> None:
    sigs = signatures(flow.signed[-1])[1:]
    names = [sig.signer_cert.subject.native["common_name"] for sig in sigs]
    assert names == [name for name, _ in SIGNERS]
    assert len({sig.signer_cert.sha256 for sig in sigs}) == 3


def test_signatures_are_pades_baseline_t(flow: Flow) -> None:
    for sig in signatures(flow.signed[-1]):
        assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        signed = {attr["type"].native for attr in sig.signer_info["signed_attrs"]}
        assert "signing_certificate_v2" in signed
        assert "signing_time" not in signed  # PAdES: the claimed time is /M
        unsigned = {attr["type"].native for attr in sig.signer_info["unsigned_attrs"]}
        assert "signature_time_stamp_token" in unsigned
        assert sig.sig_object["/M"]  # the claimed time is recorded


def test_signing_a_missing_field_is_refused(flow: Flow, pki: TestPki) -> None:
    with pytest.raises(SigningError) as caught:
        sign_field(flow.certified, field_name="signer-9", key=pki.signer_keys[0],
                   appearance=appearance(0), tsa=pki.tsa_client, signing_time=flow.signing_time)
    assert caught.value.code == "signing_no_field"


@pytest.mark.parametrize("field", ["signer-1", CERTIFICATION_FIELD])
def test_signing_a_signed_field_is_refused(flow: Flow, pki: TestPki, field: str) -> None:
    with pytest.raises(SigningError) as caught:
        sign_field(flow.signed[0], field_name=field, key=pki.signer_keys[1],
                   appearance=appearance(1), tsa=pki.tsa_client, signing_time=flow.signing_time)
    assert caught.value.code == "signing_field_signed"


def test_one_tsa_request_per_signature_and_no_key_parsing(
        flow: Flow, pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the signing key was parsed again")

    from pyhanko.sign.signers import pdf_cms

    monkeypatch.setattr(pdf_cms.serialization, "load_der_private_key", refuse)
    before = pki.tsa_calls
    sign_field(flow.certified, field_name="signer-1", key=pki.signer_keys[0],
               appearance=appearance(0), tsa=pki.tsa_client, signing_time=flow.signing_time)
    assert pki.tsa_calls == before + 1  # no dry-run timestamp: the reserve is fixed
    signer = pyhanko_signer(pki.signer_keys[0])
    assert signer is pyhanko_signer(pki.signer_keys[0])


def test_reserves_are_tight_but_sufficient(flow: Flow, pki: TestPki) -> None:
    """Even the first signature (the certification) is sized from a real token, not a guess."""
    for sig in signatures(flow.sealed):
        used = len(cms.ContentInfo.load(sig.pkcs7_content).dump())
        reserved = len(sig.pkcs7_content)
        assert used < reserved <= used + 2048 + 1024 + 1536, (sig.field_name, used, reserved)
    assert reserve_for(3000, None) > reserve_for(3000, 2500) >= 2 * (3000 + 2500)


@pytest.fixture
def http_tsa(pki: TestPki) -> Iterator[str]:
    """The test TSA behind a real HTTP server (RFC 3161 over HTTP)."""
    responder = pki.tsa_client.responder
    assert responder is not None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            if self.path != "/tsa":
                self.send_error(404)
                return
            body = responder(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.shutdown()
    server.server_close()


def test_external_tsa_over_http(flow: Flow, pki: TestPki, http_tsa: str) -> None:
    pdf = sign_field(flow.certified, field_name="signer-1", key=pki.signer_keys[0],
                     appearance=appearance(0), tsa=TsaClient(url=http_tsa),
                     signing_time=flow.signing_time)
    for name, status in validate_all(pki, pdf):
        assert_fully_valid(name, status)


def test_unreachable_tsa_is_an_upstream_error(flow: Flow, pki: TestPki, http_tsa: str) -> None:
    dead = TsaClient(url=http_tsa.replace("/tsa", "/nothing-here"), timeout=5)
    with pytest.raises(UpstreamError):
        sign_field(flow.certified, field_name="signer-1", key=pki.signer_keys[0],
                   appearance=appearance(0), tsa=dead, signing_time=flow.signing_time)
    garbage = TsaClient(responder=lambda _: b"not DER")
    with pytest.raises(UpstreamError):
        sign_field(flow.certified, field_name="signer-1", key=pki.signer_keys[0],
                   appearance=appearance(0), tsa=garbage, signing_time=flow.signing_time)


@pytest.mark.parametrize("image", [b"GIF89a not a png", b"\x89PNG\r\n\x1a\nbroken"])
def test_bad_signature_images_are_refused(flow: Flow, pki: TestPki, image: bytes) -> None:
    look = AppearanceSpec(name="张伟", email="zhang.wei@example.cn", image_png=image)
    with pytest.raises(ValidationFailed):
        sign_field(flow.certified, field_name="signer-1", key=pki.signer_keys[0],
                   appearance=look, tsa=pki.tsa_client, signing_time=flow.signing_time)


def test_signing_time_must_be_aware(flow: Flow, pki: TestPki) -> None:
    with pytest.raises(ValidationFailed):
        sign_field(flow.certified, field_name="signer-1", key=pki.signer_keys[0],
                   appearance=appearance(0), tsa=pki.tsa_client,
                   signing_time=datetime(2026, 11, 28, 10, 0))


def test_a_key_must_match_its_certificate(pki: TestPki) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SigningError):
        SigningKey(stranger, pki.signers[0].cert)


def test_caption_time_names_its_zone() -> None:
    moment = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert format_signing_time(moment, timezone(timedelta(hours=8))) == "2026-11-28 10:00 UTC+8"
    assert format_signing_time(moment, UTC) == "2026-11-28 02:00 UTC"
    india = timezone(timedelta(hours=5, minutes=30))
    assert format_signing_time(moment, india) == "2026-11-28 07:30 UTC+5:30"
    assert format_signing_time(moment, timezone(timedelta(hours=-3))) == "2026-11-27 23:00 UTC-3"


def test_signature_page_renders(flow: Flow, tmp_path: Path) -> None:
    """Render the signed signature page (kept in test-artifacts/ for a human look)."""
    source = tmp_path / "sealed.pdf"
    source.write_bytes(flow.sealed)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "100", "-png", "-f", "3", "-l", "3", "-singlefile",
                    str(source), str(ARTIFACTS / "signature-page")], check=True, timeout=60)
    from PIL import Image

    with Image.open(ARTIFACTS / "signature-page.png") as img:
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    reddish = sum(n for n, (r, g, b) in colours if r > 150 and g < 120 and b < 120)
    bluish = sum(n for n, (r, g, b) in colours if b > 90 and r < 80)
    assert reddish > 200, "the company seal is not visible"
    assert bluish > 200, "the signatures are not visible"
